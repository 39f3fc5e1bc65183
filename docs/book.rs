//! The book's pages (`docs/src/`), compiled as documentation so that every Rust snippet in
//! them is built (and, unless marked `no_run`, run) by `cargo test`.
#![deny(missing_docs)]

#[doc = include_str!("src/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("src/configuration.md")]
pub mod configuration {}

#[doc = include_str!("src/chat-completions.md")]
pub mod chat_completions {}

#[doc = include_str!("src/streaming.md")]
pub mod streaming {}

#[doc = include_str!("src/tool-calling.md")]
pub mod tool_calling {}

#[doc = include_str!("src/vllm-extensions.md")]
pub mod vllm_extensions {}

#[doc = include_str!("src/errors.md")]
pub mod errors {}

#[doc = include_str!("src/deployment.md")]
pub mod deployment {}

#[doc = include_str!("src/scaling.md")]
pub mod scaling {}

#[doc = include_str!("src/testing.md")]
pub mod testing {}

#[doc = include_str!("src/cli.md")]
pub mod cli {}

#[doc = include_str!("src/performance.md")]
pub mod performance {}

#[doc = include_str!("src/architecture.md")]
pub mod architecture {}

#[doc = include_str!("README.md")]
pub mod readme {}
