//! `vllm_transport::fuzzing::sse`: see its docs for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vllm_transport::fuzzing::sse(data));
