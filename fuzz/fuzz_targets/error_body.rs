//! `vllm_client::fuzzing::error_body`: see its docs for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vllm_client::fuzzing::error_body(data));
