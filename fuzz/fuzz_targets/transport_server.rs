#![no_main]
//! Input: [chunk size][bytes a client sends to our server].
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::transport_server(data));
