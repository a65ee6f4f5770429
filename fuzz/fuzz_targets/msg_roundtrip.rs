#![no_main]
//! Input: one packet payload.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::msg_roundtrip(data));
