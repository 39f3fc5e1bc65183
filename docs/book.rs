//! The book's pages (`docs/src/`), compiled as documentation so that every Rust snippet in
//! them is built and run by `cargo test`.
#![deny(missing_docs)]

#[doc = include_str!("src/chat-completions.md")]
pub mod chat_completions {}

#[doc = include_str!("src/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../README.md")]
pub mod readme {}
