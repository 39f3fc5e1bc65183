//! HTTP transport for vLLM clients.
//!
//! This crate is the engine under the `vllm-client` facade. It sends JSON that the caller
//! has already serialized and hands back status, headers and body bytes; it knows nothing
//! about the OpenAI API or serde.
//!
//! - [`Transport`]: a pooled HTTP client with keep-alive connection reuse, timeouts and
//!   retries. Cheap to clone; clones share the pools. `https://` goes through hyper 1 and
//!   hyper-util's pooled client: TLS via rustls (the default `rustls` feature), HTTP/1.1, and
//!   HTTP/2 when the server offers it (ALPN). `http://` goes over HTTP/1.1 connections whose
//!   response bodies the reading task decodes itself, straight from the socket (response
//!   heads parsed by `httparse`, hyper's parser): a streamed token then costs no task
//!   switch and no channel hand-off (the transport's share of a streamed chunk went from
//!   0.72 µs to 0.04 µs in `benches/client-comparison.md`).
//! - [`Response`]: a success response whose body is read [buffered](Response::bytes),
//!   [streamed](Response::into_body) as a [`BodyStream`], or decoded as
//!   [Server-Sent Events](Response::into_events) by an [`EventStream`].
//! - [`TransportError`]: the one error type, with predicates to inspect it.
//! - [`sse`]: a pure Server-Sent Events decoder (bytes in, events out, no I/O).
//!
//! # Sending a request
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use vllm_transport::Transport;
//!
//! # async fn run() -> Result<(), vllm_transport::TransportError> {
//! let transport = Transport::builder()
//!     .api_key("sk-secret")
//!     .connect_timeout(Duration::from_secs(5))
//!     .total_timeout(Duration::from_secs(120))
//!     .build()?;
//!
//! // Buffered: the whole body, bounded by the total timeout and a maximum size.
//! let body = br#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#;
//! let response = transport
//!     .post("http://localhost:8000/v1/chat/completions")
//!     .json(&body[..])
//!     .send()
//!     .await?;
//! let json: bytes::Bytes = response.bytes().await?;
//! # let _ = json;
//!
//! // Streamed: Server-Sent Events, with the idle timeout between chunks.
//! let body = br#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
//! let mut events = transport
//!     .post("http://localhost:8000/v1/chat/completions")
//!     .header("accept", "text/event-stream")
//!     .json(&body[..])
//!     .send()
//!     .await?
//!     .into_events();
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     if event.data() == "[DONE]" {
//!         break;
//!     }
//!     println!("{}", event.data());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! A status outside `200..=299` is an error from `send()` that keeps the status, headers
//! and (up to 1 MiB) body, so the caller can show the server's message:
//!
//! ```no_run
//! # async fn run(transport: vllm_transport::Transport) {
//! match transport.get("http://localhost:8000/v1/models").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(err) if err.is_status() => {
//!         let body = err.body().map(|b| String::from_utf8_lossy(b).into_owned());
//!         eprintln!("{err}: {}", body.unwrap_or_default());
//!     }
//!     Err(err) if err.is_timeout() => eprintln!("{err} ({:?})", err.timeout_kind()),
//!     Err(err) => eprintln!("{err}"),
//! }
//! # }
//! ```
//!
//! # Timeouts and retries
//!
//! | Setting | Default | Bounds |
//! |---|---|---|
//! | [`connect_timeout`](TransportBuilder::connect_timeout) | 10 s | DNS, TCP and TLS handshake of one connection |
//! | [`response_head_timeout`](TransportBuilder::response_head_timeout) | off | each attempt, until the response head |
//! | [`idle_timeout`](TransportBuilder::idle_timeout) | 300 s | the gap between body chunks (buffered or streamed) |
//! | [`total_timeout`](TransportBuilder::total_timeout) | 600 s | `send()` with all retries, and [`Response::bytes`]; not streamed bodies |
//!
//! Connect errors and the statuses 408, 429, 500, 502, 503 and 504 are retried (2 times by
//! default, [`max_retries`](TransportBuilder::max_retries)) with exponential backoff and
//! jitter, or after the delay the server asks for with `retry-after-ms` or `Retry-After`
//! (seconds or an HTTP date; capped at 60 s). Retries happen inside `send()`, so never
//! after any of a success response's body reached the caller. A retry that could not
//! start before the total timeout is not attempted: the last error is returned.
//!
//! # Features
//!
//! - `tracing` (off by default): a `vllm.request` span per request, with the fields `method`,
//!   `path`, `status`, `attempts`, `retries` and `ttfb_ms` (from `send()` to the response
//!   head), and events for retries and connections sent again. Without the feature, none of
//!   it is compiled in.
//! - `rustls` (default): `https://` through rustls with the aws-lc-rs provider, Mozilla's
//!   roots by default or the system's (`TlsRoots`). Without it, `https://` URLs are
//!   rejected by `send()` with a builder error.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod trace;

mod connect;
mod direct;
mod error;
mod event_stream;
#[doc(hidden)]
pub mod fuzzing;
mod proxy;
mod response;
mod retry;
pub mod sse;
mod transport;

pub use error::{TimeoutKind, TransportError};
pub use event_stream::EventStream;
pub use response::{BodyStream, Response};
#[cfg(feature = "rustls")]
pub use transport::TlsRoots;
pub use transport::{
    DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_ERROR_BODY_SIZE, DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_RETRY_AFTER_MAX, DEFAULT_TOTAL_TIMEOUT, DEFAULT_USER_AGENT,
    RequestBuilder, Transport, TransportBuilder,
};
