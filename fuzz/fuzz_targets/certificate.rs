#![no_main]
//! Input: see `portcullis::fuzzing::certificate`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::certificate(data));
