//! A mock of vLLM's OpenAI-compatible server, for tests.
//!
//! [`MockServer::start`] listens on `127.0.0.1` and a free port and serves a deterministic
//! model, [`DEFAULT_MODEL`] (`"echo"`), with the exact JSON and stream shapes of vLLM
//! ([`VLLM_VERSION`]): ids like `chatcmpl-<16 hex>`, the `null` members vLLM sends, usage
//! counted with the mock's [`tokenizer`], `data: [DONE]` at the end of streams, and vLLM's
//! error bodies for invalid requests. Its answers are built and serialized as [`vllm_types`]
//! values (the same models the client parses them into), with `set_null` for the `null`s.
//!
//! ```
//! use vllm_mock::{Behavior, MockServer};
//! use vllm_client::{VllmClient, json};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockServer::start().await?;
//! let client = VllmClient::new(mock.base_url());
//!
//! // The echo model repeats the last user message.
//! let response = client.chat.completions().create()
//!     .model("echo")
//!     .messages(json!([{"role": "user", "content": "Hello, world!"}]))
//!     .send()
//!     .await?;
//! assert_eq!(response.content.as_deref(), Some("Hello, world!"));
//! assert_eq!(response.usage.unwrap().completion_tokens, 4); // "Hello" "," " world" "!"
//!
//! // Script the next answer: a 503 first (the client retries), then a fixed reply.
//! mock.enqueue(Behavior::error(503, "overloaded").retry_after(0));
//! mock.enqueue(Behavior::reply("Paris."));
//! let response = client.chat.completions().create()
//!     .model("echo")
//!     .messages(json!([{"role": "user", "content": "Capital of France?"}]))
//!     .send()
//!     .await?;
//! assert_eq!(response.content.as_deref(), Some("Paris."));
//!
//! // Every request is recorded.
//! let requests = mock.requests();
//! assert_eq!(requests.len(), 3);
//! assert_eq!(requests[2].path, "/v1/chat/completions");
//! assert_eq!(requests[2].json.as_ref().unwrap()["model"], "echo");
//! # Ok(()) }
//! ```
//!
//! # The echo model
//!
//! - **Chat** (`POST /v1/chat/completions`): the content is the text of the last `user`
//!   message. When the last message is a `tool` result, the answer quotes it:
//!   `The tool get_weather returned: 22 C`.
//! - **Reasoning**: with `chat_template_kwargs.enable_thinking: true`, a
//!   `thinking_token_budget` above 0 or a `reasoning_effort` (and unless `enable_thinking` is
//!   `false`), a fixed sentence of reasoning comes first (the `reasoning` field and deltas),
//!   cut to `thinking_token_budget` pieces.
//! - **Tools**: with `tools` and `tool_choice: "required"` (the first tool) or a named
//!   function, the answer is a call (id `chatcmpl-tool-<16 hex>`) whose arguments are built
//!   from the parameter schema: each required property gets its `default`, `const` or first
//!   `enum` value, else the user's text for a string, `1` for a number, `true`, `[]`, or a
//!   nested object. With `tool_choice: "auto"` (the default) it calls the first tool whose
//!   name appears in the user's message. The finish reason is `tool_calls` (`stop` for a
//!   named function, as vLLM reports it).
//! - **Limits**: `max_tokens` / `max_completion_tokens` count reasoning and content pieces
//!   (finish reason `length`); `stop` sequences cut the content (finish reason `stop`,
//!   `stop_reason` the sequence); `n` gives `n` identical choices, streamed interleaved.
//! - **Streams**: a first delta `{"role": "assistant", "content": ""}` per choice, one delta
//!   per piece, the finish (on the last piece for `length`, else in a final delta), a usage
//!   chunk with `choices: []` when `stream_options.include_usage`, then `data: [DONE]`.
//! - **Completions** (`POST /v1/completions`): the completion is the prompt again (after
//!   the prompt itself with `echo: true`), with the same limits.
//! - **Embeddings** (`POST /v1/embeddings`): a unit vector per input, seeded by a hash of
//!   the input, [`DEFAULT_EMBEDDING_DIMENSIONS`] long (see
//!   [`MockServerBuilder::embedding_dimensions`]); `encoding_format: "base64"` gives base64
//!   of the little-endian `f32`s. `truncate_prompt_tokens` keeps the last tokens of each input.
//! - **Pooling** (`POST /pooling`): per input, one vector per token (`task` unset or
//!   `token_embed`: each token's vector, in nested arrays), the embedding (`embed`), the class
//!   probabilities (`classify`) or theirs per token (`token_classify`); numbers or base64.
//! - **Classify** (`POST /classify`): per input, probabilities over the labels `negative` and
//!   `positive` (a softmax of logits drawn from a hash of the input), the likeliest `label`,
//!   `num_classes: 2`.
//! - **Score** (`POST /score`): the cosine of the embeddings of `text_1` and each `text_2`
//!   (one to many), or of each pair (as many on both sides); 1 for the same text.
//! - **Rerank** (`POST /rerank`, `/v1/rerank`, `/v2/rerank`): the documents by that
//!   similarity to the query, best first, the best `top_n`; `document.text` for a string,
//!   `document.multi_modal` for `{"content": [parts]}` (scored by the text of its parts).
//! - **LoRA adapters** (`POST /v1/load_lora_adapter`, `/v1/unload_lora_adapter`): vLLM's
//!   plain-text answers; a loaded adapter is a model (listed by `/v1/models` with
//!   `parent` = the first base model and `root` = its path, and servable as `model`); `400`
//!   for a name loaded already, `404` for unloading one that is not.
//! - **Transcriptions** (`POST /v1/audio/transcriptions`, `multipart/form-data` with `file`
//!   and optionally `model`): `{"text": "Transcript of {filename} ({bytes} bytes).", "usage":
//!   {"type": "duration", "seconds": …}}` (the seconds of 16 kHz 16-bit mono audio); with
//!   `stream=true`, a `transcription.chunk` per token, the finish on the last, a usage chunk
//!   with `stream_include_usage`, then `data: [DONE]`. [`Behavior::reply`] sets the text.
//! - **Metrics** (`GET /metrics`): Prometheus text as vLLM names it:
//!   `vllm:num_requests_running` / `_waiting`, `vllm:prompt_tokens_total`,
//!   `vllm:generation_tokens_total` (tokens as they are sent), `vllm:request_success_total` by
//!   finish reason (`abort` for a client that went away), the histograms
//!   `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`,
//!   `vllm:e2e_request_latency_seconds` and `vllm:request_queue_time_seconds`, per base
//!   model, and `http_requests_total` by route, method and status class. `GET /load`:
//!   `{"server_load": N}`, the requests running or waiting.
//! - **`ignore_eos`**: the echo goes on, its text again and again, to `max_tokens` (finish
//!   reason `length`), as a model without an end of sequence would: what load tests ask for.
//! - **Others**: `GET /v1/models` (with `root`, `parent`, `max_model_len`), `POST /tokenize`
//!   (a prompt, or messages rendered exactly as the chat endpoint renders them, so `count` is
//!   the chat answer's `prompt_tokens`), `POST /detokenize` (ids the server has seen, and
//!   one-byte ids), `GET /health`, `GET /version`.
//!
//! # Validation
//!
//! The mock refuses what vLLM 0.32 refuses, with vLLM's status, error body and message (the
//! chat and completion cases are checked against captures of the real server, and against
//! the live server by the conformance suite): a `Content-Type` other than
//! `application/json`, invalid JSON, a missing or mistyped member → `400` with pydantic's
//! messages (every failing member, values coerced as pydantic's lax mode does) under
//! `{"error": {"message", "type": "Bad Request", "param", "code": 400}}`; values vLLM
//! refuses (sampling parameters out of range, `n > 1` with `temperature: 0`, a `tool_choice`
//! without matching `tools`, too many logprobs, empty stop strings, a prompt longer than the
//! context, `max_tokens` above the context length) → `400` `BadRequestError` with vLLM's
//! message and `param`; an unknown model → `404` `NotFoundError`; an unknown route → `404`
//! `{"detail": "Not Found"}`. A prompt plus `max_tokens` beyond the context is accepted,
//! as vLLM 0.32 does: the output stops at the end of the context.
//!
//! # A server under load
//!
//! [`MockServerBuilder::timing`] (or `--ttft-ms`, `--itl-ms`, `--max-num-seqs`,
//! `--decode-slowdown`, `--max-tokens-per-s`) gives the mock a [`Timing`]: requests wait for
//! one of `max_num_seqs` slots, spend the time to first token, then make a token every
//! `itl`. Streams are made as the client reads them (a long one costs no memory); a client
//! that goes away aborts its request, frees its slot and leaves the recorded request
//! [`aborted`](RecordedRequest::aborted). [`MockServer::load`] tells what runs and waits.
//!
//! # Scripting
//!
//! A [`Behavior`] says what to answer and how to deliver it. Give one to
//! [`MockServer::enqueue`] for the next request (limited to one route with
//! [`Behavior::for_path`], e.g. `/health`, `/v1/models` or `/version`), or to
//! [`MockServer::on_model`] for every request to a model. See [`Behavior`] for the knobs:
//! fixed replies, reasoning, tool calls (in vLLM's and Hermes' stream shapes), any error body
//! with `Retry-After`, delays, write sizes, streams cut off or failing mid-way.
//!
//! # The binary
//!
//! `vllm-mock --port 8000` serves the echo model until Ctrl-C (`--help` for the options):
//! the timing flags above, `--script FILE` for behaviors in JSON ([`Script`]), and
//! `--replica-id NAME` for an `x-replica-id` header on every answer.
#![deny(missing_docs)]

mod audio;
mod behavior;
mod chat;
mod clock;
mod completions;
mod engine;
mod json;
mod lora;
mod metrics;
mod multipart;
mod pooling;
mod record;
mod reply;
mod routes;
mod script;
mod server;
mod shape;
mod template;
pub mod tokenizer;
mod track;
mod validate;

pub use behavior::{Behavior, ToolCallStyle};
pub use engine::Timing;
pub use record::RecordedRequest;
pub use script::Script;
pub use server::{
    DEFAULT_EMBEDDING_DIMENSIONS, DEFAULT_MAX_MODEL_LEN, DEFAULT_MODEL, MockServer,
    MockServerBuilder, VLLM_VERSION,
};
