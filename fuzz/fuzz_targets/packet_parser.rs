#![no_main]
//! Input: [protection selector][chunking seed][byte stream from the peer].
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::packet_parser(data));
