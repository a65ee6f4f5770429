#![no_main]
//! Input: see `portcullis::fuzzing::known_hosts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::known_hosts(data));
