#![no_main]
//! Input: see `portcullis::fuzzing::authorized_keys`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::authorized_keys(data));
