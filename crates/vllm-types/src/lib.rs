//! Serde models of vLLM's OpenAI-compatible API.
#![deny(missing_docs)]
