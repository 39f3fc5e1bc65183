//! HTTP transport for vLLM clients.
//!
//! This crate is the engine under the `vllm-client` facade:
//!
//! - [`sse`]: a pure Server-Sent Events decoder (bytes in, events out, no I/O).
#![deny(missing_docs)]

pub mod sse;
