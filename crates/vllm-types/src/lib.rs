//! Serde models of vLLM's OpenAI-compatible API, in both directions.
//!
//! Every request and response of the server is here as a plain struct with public fields:
//! a client serializes requests and parses responses, and a server or a mock does the
//! opposite, with nothing but `serde` and `serde_json` underneath (no runtime, no HTTP).
//!
//! - [`chat`]: `/v1/chat/completions`: [`ChatCompletionRequest`], [`Message`], [`Tool`],
//!   [`ChatCompletion`], and the stream's [`ChatCompletionChunk`].
//! - [`completions`]: the legacy `/v1/completions`.
//! - [`models`], [`embeddings`], [`tokenize`], [`pooling`] (pooling, classify, score, rerank),
//!   [`audio`] (transcriptions, whole and streamed), [`version`].
//! - [`error`]: [`ErrorResponse`], the server's error body in all its shapes.
//!
//! # Conventions
//!
//! - Every type is `Serialize + Deserialize + Debug + Clone + PartialEq`, with `Default`, so
//!   values can be built with struct literals and `..Default::default()`.
//! - Optional fields are `Option`s and are not serialized when `None`.
//! - Members a type does not model are kept in its `extra` field ([`Extra`]) and written back,
//!   so a newer server's fields are not lost and `serialize(parse(json))` gives `json` again
//!   (explicit `null`s included).
//! - Values that are open-ended on the wire ([`Role`], [`FinishReason`], …) are enums with an
//!   `Other(String)` variant rather than a parse error.
//! - [`from_str_in_place`] parses into an existing value, reusing its allocations: a stream's
//!   chunks parsed one after another into one [`ChatCompletionChunk`] cost no allocation
//!   once it has grown to fit them.
//!
//! # Example
//!
//! ```
//! use vllm_types::{ChatCompletionChunk, ChatCompletionRequest, Message, StreamOptions};
//!
//! let request = ChatCompletionRequest {
//!     stream: Some(true),
//!     stream_options: Some(StreamOptions::include_usage()),
//!     ..ChatCompletionRequest::new("smollm2-135m", vec![Message::user("Hi")])
//! };
//! let body = serde_json::to_string(&request).unwrap();
//! assert!(body.contains(r#""stream_options":{"include_usage":true}"#));
//!
//! let chunk: ChatCompletionChunk = serde_json::from_str(
//!     r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"smollm2-135m",
//!         "choices":[{"index":0,"delta":{"reasoning":"Hmm"},"logprobs":null,"finish_reason":null}]}"#,
//! ).unwrap();
//! assert_eq!(chunk.choices[0].delta.reasoning_text(), Some("Hmm"));
//! assert!(chunk.choices[0].finish_reason.is_none());
//! ```
#![deny(missing_docs)]

mod macros;
mod sampling;

pub mod audio;
pub mod chat;
pub mod common;
pub mod completions;
pub mod embeddings;
pub mod error;
mod extra;
pub mod models;
pub mod pooling;
pub mod tokenize;
pub mod version;

pub use audio::*;
pub use chat::*;
pub use common::*;
pub use completions::*;
pub use embeddings::*;
pub use error::*;
pub use extra::Extra;
pub use models::*;
pub use pooling::*;
pub use tokenize::*;
pub use version::*;

/// Parses the JSON text `json` into `place`, overwriting the value there and reusing its
/// allocations.
///
/// The result is what [`serde_json::from_str`] gives (the same fields, the same JSON written
/// back), but strings, vectors and nested values already in `place` are overwritten where
/// they are instead of being dropped and allocated again. Parsing a stream's chunks one after
/// another into one value therefore allocates nothing once the value has grown to fit them
/// (but `serde_json`'s scratch buffer, for a chunk with an escaped string), which makes
/// parsing a chat chunk about 30 % cheaper (`chunk_parse` in `benches/README.md`).
///
/// # Errors
///
/// As [`serde_json::from_str`]: the text is not JSON, not a `T`, or has trailing characters.
/// `place` then holds a valid value that is part old and part new; parse into it again
/// before reading it.
///
/// ```
/// use vllm_types::ChatCompletionChunk;
///
/// # fn main() -> Result<(), serde_json::Error> {
/// let mut chunk = ChatCompletionChunk::default();
/// let mut text = String::new();
/// for data in [
///     r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
///     r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
/// ] {
///     vllm_types::from_str_in_place(data, &mut chunk)?;
///     text.push_str(chunk.choices[0].delta.content.as_deref().unwrap_or(""));
/// }
/// assert_eq!(text, "Hello");
/// # Ok(())
/// # }
/// ```
pub fn from_str_in_place<T>(json: &str, place: &mut T) -> serde_json::Result<()>
where
    T: serde::de::DeserializeOwned,
{
    let mut deserializer = serde_json::Deserializer::from_str(json);
    T::deserialize_in_place(&mut deserializer, place)?;
    deserializer.end()
}

/// The crate's README, compiled as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
