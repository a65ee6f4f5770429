#![no_main]
//! Input: client payloads after the key exchange (length byte + bytes each; 0xff = valid login).
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::server_session(data));
