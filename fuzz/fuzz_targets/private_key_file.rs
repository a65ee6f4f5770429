#![no_main]
//! Input: see `portcullis::fuzzing::private_key_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::private_key_file(data));
