#![no_main]
//! Input: see `portcullis::fuzzing::svn_item`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::svn_item(data));
