#![no_main]
//! Input: see `portcullis::fuzzing::client_session`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::client_session(data));
