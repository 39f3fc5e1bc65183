//! Rust client for vLLM's OpenAI-compatible server.
//!
//! The request and response models live in [`types`] (the `vllm-types` crate).
#![deny(missing_docs)]

pub use serde_json::json;
pub use vllm_types as types;
