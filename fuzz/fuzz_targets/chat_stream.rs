//! `vllm_client::fuzzing::chat_stream`: see its docs for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vllm_client::fuzzing::chat_stream(data));
