#![no_main]
//! Input: see `portcullis::fuzzing::git_command`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::git_command(data));
