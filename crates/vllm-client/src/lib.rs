//! Rust client for vLLM's OpenAI-compatible server.
//!
//! ```no_run
//! use vllm_client::{VllmClient, json};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = VllmClient::new("http://localhost:8000/v1");
//!     let response = client.chat.completions().create()
//!         .model("Qwen/Qwen2.5-72B-Instruct")
//!         .messages(json!([{"role": "user", "content": "Hello!"}]))
//!         .send()
//!         .await?;
//!     println!("{}", response.content.unwrap_or_default());
//!     Ok(())
//! }
//! ```
//!
//! The request and response models live in [`types`] (the `vllm-types` crate).
#![deny(missing_docs)]

mod api;
mod balance;
mod chat;
mod client;
mod completions;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod head;
mod request;
mod response;
mod stream;
mod tool_calls;

pub use api::{
    ApiRequest, Audio, Classify, Detokenize, Embed, Embeddings, EmbeddingsApi, Endpoint, Health,
    ListModels, LoadLora, Lora, Metrics, Models, Pool, Pooling, Rerank, RerankV1, RerankV2, Score,
    Server, Tokenize, Tokenizer, Transcription, TranscriptionBuilder, UnloadLora, Version,
};
pub use balance::{ReplicaStatus, SESSION_ID_HEADER, USER_ID_HEADER};
pub use chat::{Chat, ChatCompletionBuilder, ChatCompletions};
pub use client::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_MAX_RETRIES,
    DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT, RawResponse, VllmClient,
};
pub use completions::{CompletionBuilder, CompletionResponse, Completions};
pub use error::{ErrorKind, VllmError};
pub use head::ResponseHead;
pub use http::header;
pub use response::{ChatCompletionResponse, Usage};
pub use serde_json::{Value, json};
pub use stream::{CompletionStream, MessageStream, StreamEvent, StreamTimings};
pub use tool_calls::ToolCall;
pub use vllm_transport::TimeoutKind;
pub use vllm_types as types;

/// The crate's README, compiled as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
