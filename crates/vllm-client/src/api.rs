//! The rest of vLLM's API: models, embeddings, tokenizer, pooling / classify / score / rerank,
//! server information and LoRA adapters, each as `client.<group>.<op>()…send()`.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use vllm_types::{
    ClassifyResponse, DetokenizeResponse, EmbeddingResponse, EmbeddingVector, ModelList,
    PoolingResponse, RerankResponse, ScoreResponse, TokenizeResponse, VersionResponse,
};

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::head::ResponseHead;
use crate::request::{Params, RequestCore, Route, parse_body};
use crate::response::Usage;

mod sealed {
    pub trait Sealed {}
}

/// An endpoint of the server, as a type: where it lives and what it answers. Implemented by
/// the marker types of this module; it cannot be implemented outside this crate.
pub trait Endpoint: sealed::Sealed {
    /// What `send()` returns.
    type Output;
    #[doc(hidden)]
    const ROUTE: Route<'static>;
    #[doc(hidden)]
    const GET: bool = false;
    #[doc(hidden)]
    const REQUIRED: &'static [&'static str] = &["model"];
    #[doc(hidden)]
    fn decode(body: &[u8]) -> Result<Self::Output, VllmError>;
}

macro_rules! endpoint {
    ($(#[$meta:meta])* $name:ident => $output:ty, $route:expr, $what:literal, get: $get:literal, required: [$($req:literal),*]) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Endpoint for $name {
            type Output = $output;
            const ROUTE: Route<'static> = $route;
            const GET: bool = $get;
            const REQUIRED: &'static [&'static str] = &[$($req),*];
            fn decode(body: &[u8]) -> Result<$output, VllmError> {
                parse_body($what, body)
            }
        }
    };
}

/// A request to one of the server's endpoints, being built; `send()` sends it.
///
/// Like the chat builder: setters never fail (the first invalid value is returned by
/// `send()`), nothing unset is sent, and `extra` members are merged in last.
#[must_use = "a request does nothing until `send()` is awaited"]
pub struct ApiRequest<E> {
    core: RequestCore<Params>,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for ApiRequest<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("core", &self.core)
            .finish()
    }
}

impl<E: Endpoint> ApiRequest<E> {
    fn new(inner: &Arc<ClientInner>) -> Self {
        ApiRequest {
            core: RequestCore::new(inner.clone(), Params::new(E::REQUIRED)),
            _endpoint: PhantomData,
        }
    }

    fn set(mut self, key: &str, value: impl Serialize) -> Self {
        if let Some(value) = self.core.typed::<Value>(key, value) {
            if let Some(required) = E::REQUIRED.iter().find(|r| **r == key) {
                if !value.is_null() {
                    self.core.give(required);
                }
            }
            self.core.body.set(key, value);
        }
        self
    }

    /// The model (an id from `/v1/models`).
    pub fn model(self, model: impl Into<String>) -> Self {
        self.set("model", model.into())
    }

    /// Any parameter, by name (for one this builder has no setter for).
    pub fn param(self, name: &str, value: impl Serialize) -> Self {
        self.set(name, value)
    }

    /// Parameters merged into the top level of the body, last (they win over the setters).
    /// Must serialize to a JSON object.
    pub fn extra(mut self, params: impl Serialize) -> Self {
        self.core.extra(params);
        self
    }

    /// This request's timeout, instead of the client's (`None`: no timeout).
    pub fn timeout(mut self, timeout: impl Into<Option<std::time::Duration>>) -> Self {
        self.core.timeout(timeout.into());
        self
    }

    /// This request's number of retries, instead of the client's.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.core.max_retries(retries);
        self
    }

    /// A header of this request only; it replaces a client default header of the same
    /// name. An invalid name or value is an error from `send()`.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.core.header(name.as_ref(), value.as_ref());
        self
    }

    /// Sends `X-Request-Id: id`, the id the server (and a router or gateway) logs the
    /// request under.
    pub fn request_id(mut self, id: impl AsRef<str>) -> Self {
        self.core.request_id_header(id.as_ref());
        self
    }

    /// This request's session, sent as `X-Session-ID` (see
    /// [`ClientBuilder::session_id`](crate::ClientBuilder::session_id)).
    pub fn session_id(mut self, id: impl AsRef<str>) -> Self {
        self.core.header(crate::SESSION_ID_HEADER, id.as_ref());
        self
    }

    /// The JSON body that `send()` would send (`null` for a `GET`). Needs no server.
    pub fn build_body(&self) -> Result<Value, VllmError> {
        if E::GET {
            return Ok(Value::Null);
        }
        self.core.body_value()
    }

    /// Sends the request and decodes the answer.
    pub async fn send(self) -> Result<E::Output, VllmError> {
        Ok(self.send_with_head().await?.0)
    }

    /// Sends the request and decodes the answer; returns it with the response's status and
    /// headers (the server's `x-request-id`, rate-limit headers, …).
    pub async fn send_with_head(self) -> Result<(E::Output, ResponseHead), VllmError> {
        let (body, head) = if E::GET {
            self.core.get(E::ROUTE).await?
        } else {
            self.core.post(E::ROUTE).await?
        };
        Ok((E::decode(&body)?, head))
    }
}

endpoint!(
    /// `GET /v1/models`: the models and LoRA adapters served.
    ListModels => ModelList, Route::Api("/models"), "the model list", get: true, required: []
);
endpoint!(
    /// `POST /tokenize`: a prompt or chat messages to token ids.
    Tokenize => TokenizeResponse, Route::Root("/tokenize"), "the tokenize response", get: false, required: ["model"]
);
endpoint!(
    /// `POST /detokenize`: token ids to text.
    Detokenize => DetokenizeResponse, Route::Root("/detokenize"), "the detokenize response", get: false, required: ["model", "tokens"]
);
endpoint!(
    /// `POST /pooling`: a pooling model's raw output.
    Pool => PoolingResponse, Route::Root("/pooling"), "the pooling response", get: false, required: ["model"]
);
endpoint!(
    /// `POST /classify`: class probabilities.
    Classify => ClassifyResponse, Route::Root("/classify"), "the classify response", get: false, required: ["model"]
);
endpoint!(
    /// `POST /score`: similarity scores of text pairs.
    Score => ScoreResponse, Route::Root("/score"), "the score response", get: false, required: ["model", "text_1", "text_2"]
);
endpoint!(
    /// `POST /rerank`: documents ordered by relevance to a query.
    Rerank => RerankResponse, Route::Root("/rerank"), "the rerank response", get: false, required: ["model", "query", "documents"]
);
endpoint!(
    /// `POST /v1/rerank`: the same, under `/v1`.
    RerankV1 => RerankResponse, Route::Api("/rerank"), "the rerank response", get: false, required: ["model", "query", "documents"]
);
endpoint!(
    /// `POST /v2/rerank`: the same, under `/v2` (Cohere's path).
    RerankV2 => RerankResponse, Route::Root("/v2/rerank"), "the rerank response", get: false, required: ["model", "query", "documents"]
);
endpoint!(
    /// `GET /version`: the server's vLLM version.
    Version => VersionResponse, Route::Root("/version"), "the version response", get: true, required: []
);

/// `POST /v1/embeddings`: vectors for texts, token ids or chat messages.
#[derive(Debug)]
pub enum Embed {}
impl sealed::Sealed for Embed {}
impl Endpoint for Embed {
    type Output = Embeddings;
    const ROUTE: Route<'static> = Route::Api("/embeddings");
    fn decode(body: &[u8]) -> Result<Embeddings, VllmError> {
        Embeddings::new(parse_body("the embeddings response", body)?)
    }
}

/// `GET /metrics`: the server's Prometheus metrics, as text.
#[derive(Debug)]
pub enum Metrics {}
impl sealed::Sealed for Metrics {}
impl Endpoint for Metrics {
    type Output = String;
    const ROUTE: Route<'static> = Route::Root("/metrics");
    const GET: bool = true;
    const REQUIRED: &'static [&'static str] = &[];
    fn decode(body: &[u8]) -> Result<String, VllmError> {
        text("the metrics", body)
    }
}

/// `POST /v1/load_lora_adapter`: loads a LoRA adapter (answers with the server's message).
#[derive(Debug)]
pub enum LoadLora {}
impl sealed::Sealed for LoadLora {}
impl Endpoint for LoadLora {
    type Output = String;
    const ROUTE: Route<'static> = Route::Api("/load_lora_adapter");
    const REQUIRED: &'static [&'static str] = &["lora_name", "lora_path"];
    fn decode(body: &[u8]) -> Result<String, VllmError> {
        text("the load_lora_adapter answer", body)
    }
}

/// `POST /v1/unload_lora_adapter`: unloads a LoRA adapter (answers with the server's message).
#[derive(Debug)]
pub enum UnloadLora {}
impl sealed::Sealed for UnloadLora {}
impl Endpoint for UnloadLora {
    type Output = String;
    const ROUTE: Route<'static> = Route::Api("/unload_lora_adapter");
    const REQUIRED: &'static [&'static str] = &["lora_name"];
    fn decode(body: &[u8]) -> Result<String, VllmError> {
        text("the unload_lora_adapter answer", body)
    }
}

fn text(what: &str, body: &[u8]) -> Result<String, VllmError> {
    String::from_utf8(body.to_vec())
        .map_err(|e| VllmError::decode_other(what, &String::from_utf8_lossy(body), e.utf8_error()))
}

impl ApiRequest<Tokenize> {
    /// Tokenize this text (the prompt form).
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.set("prompt", prompt.into())
    }

    /// Tokenize these messages rendered through the chat template (the chat form): a JSON
    /// array or `Vec<Message>`.
    pub fn messages(self, messages: impl Serialize) -> Self {
        self.set("messages", messages)
    }

    /// Add special tokens (such as BOS).
    pub fn add_special_tokens(self, add: bool) -> Self {
        self.set("add_special_tokens", add)
    }

    /// Chat form: add the generation prompt.
    pub fn add_generation_prompt(self, add: bool) -> Self {
        self.set("add_generation_prompt", add)
    }

    /// Also return each token's text.
    pub fn return_token_strs(self, ret: bool) -> Self {
        self.set("return_token_strs", ret)
    }
}

impl ApiRequest<Detokenize> {
    /// The token ids to turn back into text.
    pub fn tokens(self, tokens: impl IntoIterator<Item = u32>) -> Self {
        self.set("tokens", tokens.into_iter().collect::<Vec<_>>())
    }
}

/// Setters the input-taking pooling endpoints share.
macro_rules! input_setters {
    ($($endpoint:ty),*) => {$(
        impl ApiRequest<$endpoint> {
            /// What to process: a string, several strings, token ids, or several token-id
            /// sequences.
            pub fn input(self, input: impl Serialize) -> Self {
                self.set("input", input)
            }

            /// A conversation to process instead of `input` (rendered through the chat
            /// template).
            pub fn messages(self, messages: impl Serialize) -> Self {
                self.set("messages", messages)
            }

            /// Keep only the last N input tokens (-1: as many as the model allows).
            pub fn truncate_prompt_tokens(self, tokens: i32) -> Self {
                self.set("truncate_prompt_tokens", tokens)
            }

            /// Add special tokens to the input.
            pub fn add_special_tokens(self, add: bool) -> Self {
                self.set("add_special_tokens", add)
            }
        }
    )*};
}

input_setters!(Embed, Pool, Classify);

impl ApiRequest<Embed> {
    /// `float` (the default) or `base64` (smaller on the wire; decoded for you).
    pub fn encoding_format(self, format: impl Into<String>) -> Self {
        self.set("encoding_format", format.into())
    }

    /// Truncate the vectors to this many dimensions (models that support it).
    pub fn dimensions(self, dimensions: u32) -> Self {
        self.set("dimensions", dimensions)
    }

    /// Normalize the vectors.
    pub fn normalize(self, normalize: bool) -> Self {
        self.set("normalize", normalize)
    }
}

impl ApiRequest<Pool> {
    /// `float` (the default) or `base64`.
    pub fn encoding_format(self, format: impl Into<String>) -> Self {
        self.set("encoding_format", format.into())
    }

    /// The pooling task (`embed`, `classify`, `token_embed`, …) for models with several.
    pub fn task(self, task: impl Into<String>) -> Self {
        self.set("task", task.into())
    }
}

impl ApiRequest<Score> {
    /// The query side: one text, or one per document.
    pub fn text_1(self, text: impl Serialize) -> Self {
        self.set("text_1", text)
    }

    /// The documents side: one text or several.
    pub fn text_2(self, text: impl Serialize) -> Self {
        self.set("text_2", text)
    }

    /// Keep only the last N input tokens.
    pub fn truncate_prompt_tokens(self, tokens: i32) -> Self {
        self.set("truncate_prompt_tokens", tokens)
    }
}

macro_rules! rerank_setters {
    ($($endpoint:ty),*) => {$(
        impl ApiRequest<$endpoint> {
            /// The query.
            pub fn query(self, query: impl Into<String>) -> Self {
                self.set("query", query.into())
            }

            /// The documents: strings, or multimodal content objects.
            pub fn documents(self, documents: impl Serialize) -> Self {
                self.set("documents", documents)
            }

            /// Return only the best N.
            pub fn top_n(self, n: u32) -> Self {
                self.set("top_n", n)
            }

            /// Keep only the last N input tokens.
            pub fn truncate_prompt_tokens(self, tokens: i32) -> Self {
                self.set("truncate_prompt_tokens", tokens)
            }
        }
    )*};
}

rerank_setters!(Rerank, RerankV1, RerankV2);

impl ApiRequest<LoadLora> {
    /// The name to serve the adapter under (use it as `model`).
    pub fn lora_name(self, name: impl Into<String>) -> Self {
        self.set("lora_name", name.into())
    }

    /// Where the server finds the adapter.
    pub fn lora_path(self, path: impl Into<String>) -> Self {
        self.set("lora_path", path.into())
    }
}

impl ApiRequest<UnloadLora> {
    /// The adapter's name.
    pub fn lora_name(self, name: impl Into<String>) -> Self {
        self.set("lora_name", name.into())
    }
}

/// The answer of `/v1/embeddings`, with the vectors decoded (from numbers or base64).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The model used.
    pub model: String,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Token usage.
    pub usage: Option<Usage>,
    response: EmbeddingResponse,
}

impl Embeddings {
    fn new(response: EmbeddingResponse) -> Result<Self, VllmError> {
        let mut data: Vec<_> = response.data.iter().collect();
        data.sort_by_key(|d| d.index);
        let vectors = data
            .iter()
            .map(|d| decode_vector(&d.embedding))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Embeddings {
            model: response.model.clone(),
            vectors,
            usage: response.usage.clone().map(Usage::from),
            response,
        })
    }

    /// The response as sent, typed.
    pub fn response(&self) -> &EmbeddingResponse {
        &self.response
    }
}

fn decode_vector(vector: &EmbeddingVector) -> Result<Vec<f32>, VllmError> {
    use base64::Engine as _;
    match vector {
        EmbeddingVector::Float(values) => Ok(values.iter().map(|&x| x as f32).collect()),
        EmbeddingVector::Base64(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| VllmError::decode_other("an embedding in base64", text, e))?;
            if bytes.len() % 4 != 0 {
                return Err(VllmError::decode_other(
                    "an embedding in base64",
                    text,
                    std::io::Error::other(format!(
                        "it holds {} bytes, not a whole number of f32s",
                        bytes.len()
                    )),
                ));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        }
    }
}

/// The server's health, from `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Whether the server answered 200.
    pub healthy: bool,
    /// The status it answered with (503 while the engine is down).
    pub status: u16,
}

macro_rules! group {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $op:ident => $endpoint:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            inner: Arc<ClientInner>,
        }

        impl $name {
            pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
                $name { inner }
            }

            $(
                $(#[$fmeta])*
                pub fn $op(&self) -> ApiRequest<$endpoint> {
                    ApiRequest::new(&self.inner)
                }
            )*
        }
    };
}

group!(
    /// Models: `client.models.list().send()`.
    Models {
        /// `GET /v1/models`.
        list => ListModels,
    }
);

group!(
    /// Embeddings: `client.embeddings.create().model(..).input(..).send()`.
    EmbeddingsApi {
        /// `POST /v1/embeddings`.
        create => Embed,
    }
);

group!(
    /// The server's tokenizer: `client.tokenizer.tokenize()` / `.detokenize()`.
    Tokenizer {
        /// `POST /tokenize`.
        tokenize => Tokenize,
        /// `POST /detokenize`.
        detokenize => Detokenize,
    }
);

group!(
    /// Pooling models: `client.pooling.pool() / classify() / score() / rerank()`.
    Pooling {
        /// `POST /pooling`.
        pool => Pool,
        /// `POST /classify`.
        classify => Classify,
        /// `POST /score`.
        score => Score,
        /// `POST /rerank`.
        rerank => Rerank,
        /// `POST /v1/rerank`.
        rerank_v1 => RerankV1,
        /// `POST /v2/rerank`.
        rerank_v2 => RerankV2,
    }
);

group!(
    /// LoRA adapters: `client.lora.load()` / `.unload()` (the server needs
    /// `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`).
    Lora {
        /// `POST /v1/load_lora_adapter`.
        load => LoadLora,
        /// `POST /v1/unload_lora_adapter`.
        unload => UnloadLora,
    }
);

group!(
    /// The server itself: `client.server.version()`, `.metrics()`, and `health()`.
    Server {
        /// `GET /version`.
        version => Version,
        /// `GET /metrics` (Prometheus text).
        metrics => Metrics,
    }
);

impl Server {
    /// `GET /health`: healthy on 200, not on 503 (or any other status). It is asked once,
    /// without retries, so a 503 is reported rather than waited out. A connection or timeout
    /// failure is an error.
    pub async fn health(&self) -> Result<Health, VllmError> {
        let mut core = RequestCore::new(self.inner.clone(), ());
        core.max_retries(0);
        let (status, _) = core.get_status(Route::Root("/health")).await?;
        Ok(Health {
            healthy: status == 200,
            status,
        })
    }
}

/// Escapes a form field's name or a file name for a `Content-Disposition` header.
fn disposition_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

/// A boundary that occurs in none of `parts`.
fn boundary(parts: &[&[u8]]) -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    for attempt in 0u64.. {
        let mut hasher = state.build_hasher();
        hasher.write_u64(attempt);
        let candidate = format!("vllm-rs-{:016x}{:08x}", hasher.finish(), attempt);
        let finder = memchr::memmem::Finder::new(candidate.as_bytes());
        if parts.iter().all(|p| finder.find(p).is_none()) {
            return candidate;
        }
    }
    unreachable!("a u64 counter does not run out")
}

/// A `multipart/form-data` body with text `fields` and one `file` (field name, file name,
/// bytes); returns the content type (with its boundary) and the body.
pub(crate) fn multipart(fields: &[(&str, &str)], file: (&str, &str, &Bytes)) -> (String, Bytes) {
    let (field, filename, data) = file;
    let mut parts: Vec<&[u8]> = fields.iter().map(|(_, v)| v.as_bytes()).collect();
    parts.push(data);
    let boundary = boundary(&parts);
    let mut out = Vec::with_capacity(data.len() + 512);
    for (name, value) in fields {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                disposition_value(name)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            disposition_value(field),
            disposition_value(filename)
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(out),
    )
}

/// Audio: `client.audio.transcriptions().file(..).model(..).send()`.
#[derive(Debug, Clone)]
pub struct Audio {
    inner: Arc<ClientInner>,
}

impl Audio {
    pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
        Audio { inner }
    }

    /// `POST /v1/audio/transcriptions` (a multipart upload).
    pub fn transcriptions(&self) -> TranscriptionBuilder {
        TranscriptionBuilder {
            core: RequestCore::new(self.inner.clone(), ()),
            fields: Vec::new(),
            file: None,
        }
    }
}

/// A transcription request being built: an audio file and form fields.
#[must_use = "a request does nothing until `send()` or `send_stream()` is awaited"]
pub struct TranscriptionBuilder {
    core: RequestCore<()>,
    fields: Vec<(String, String)>,
    file: Option<(String, Bytes)>,
}

impl std::fmt::Debug for TranscriptionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptionBuilder")
            .field("fields", &self.fields)
            .field(
                "file",
                &self.file.as_ref().map(|(name, data)| (name, data.len())),
            )
            .finish_non_exhaustive()
    }
}

impl TranscriptionBuilder {
    /// The audio file: its name (with the extension giving the format) and bytes. Required.
    pub fn file(mut self, filename: impl Into<String>, data: impl Into<Bytes>) -> Self {
        self.file = Some((filename.into(), data.into()));
        self
    }

    /// A form field, by name.
    pub fn field(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.fields.push((name.into(), value.to_string()));
        self
    }

    /// The model (a speech-to-text model served by vLLM). Required.
    pub fn model(self, model: impl Into<String>) -> Self {
        self.field("model", model.into())
    }

    /// The spoken language, as ISO-639-1 (`en`).
    pub fn language(self, language: impl Into<String>) -> Self {
        self.field("language", language.into())
    }

    /// Text to guide the transcription's style.
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.field("prompt", prompt.into())
    }

    /// Sampling temperature.
    pub fn temperature(self, temperature: f32) -> Self {
        self.field("temperature", temperature)
    }

    /// This request's timeout, instead of the client's.
    pub fn timeout(mut self, timeout: impl Into<Option<std::time::Duration>>) -> Self {
        self.core.timeout(timeout.into());
        self
    }

    fn body(&self, stream: bool) -> Result<(String, Bytes), VllmError> {
        let Some((filename, data)) = &self.file else {
            return Err(VllmError::builder(
                "an audio file is required; set it with `.file(name, bytes)`",
            ));
        };
        if !self.fields.iter().any(|(k, _)| k == "model") {
            return Err(VllmError::builder(
                "`model` is required; set it with `.model(…)`",
            ));
        }
        let mut fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if stream {
            fields.push(("stream", "true"));
            // Like chat streams, ask for usage unless the caller said otherwise.
            if !self.fields.iter().any(|(k, _)| k == "stream_include_usage") {
                fields.push(("stream_include_usage", "true"));
            }
        }
        Ok(multipart(&fields, ("file", filename, data)))
    }

    /// The answer's format: `json` (the default), `text`, `srt`, `vtt`, `verbose_json`.
    pub fn response_format(self, format: impl Into<String>) -> Self {
        self.field("response_format", format.into())
    }

    /// This request's number of retries, instead of the client's.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.core.max_retries(retries);
        self
    }

    /// A header of this request only; it replaces a client default header of the same
    /// name. An invalid name or value is an error from `send()`.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.core.header(name.as_ref(), value.as_ref());
        self
    }

    /// Sends `X-Request-Id: id`, the id the server logs the request under.
    pub fn request_id(mut self, id: impl AsRef<str>) -> Self {
        self.core.request_id_header(id.as_ref());
        self
    }

    /// Sends the request and returns the transcription.
    pub async fn send(self) -> Result<Transcription, VllmError> {
        let (content_type, body) = self.body(false)?;
        let sent = self
            .core
            .post_raw(
                Route::Api("/audio/transcriptions"),
                &content_type,
                body,
                false,
            )
            .await?;
        let bytes = sent.response.bytes().await?;
        let raw: Value = parse_body("the transcription response", &bytes)?;
        Ok(Transcription {
            text: raw
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            raw,
        })
    }

    /// Sends the request as a stream: `Content` events carry the text as it is recognised.
    pub async fn send_stream(self) -> Result<crate::MessageStream, VllmError> {
        let started = std::time::Instant::now();
        let (content_type, body) = self.body(true)?;
        let sent = self
            .core
            .post_raw(
                Route::Api("/audio/transcriptions"),
                &content_type,
                body,
                true,
            )
            .await?;
        Ok(crate::MessageStream::new(crate::request::Opened::new(
            crate::request::event_stream(sent).await?,
            started,
        )))
    }
}

/// A transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The recognised text.
    pub text: String,
    /// The response as JSON (usage, segments, … as the server sent them), or as a JSON
    /// string for the `text`, `srt` and `vtt` formats.
    pub raw: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multipart_boundary_is_in_no_part_and_names_are_escaped() {
        // A file that contains a boundary-looking line cannot end the part early.
        let data = Bytes::from_static(b"\r\n--vllm-rs-0000000000000000000000--\r\nrest");
        let (content_type, body) = multipart(&[("model", "m")], ("file", "a\"b\r\n.wav", &data));
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let finder = memchr::memmem::Finder::new(boundary.as_bytes());
        assert!(finder.find(&data).is_none());
        assert_eq!(
            finder.find_iter(&body).count(),
            3,
            "two openings and the close"
        );
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(r#"filename="a\"b  .wav""#), "{text}");
    }

    #[test]
    fn broken_base64_embeddings_are_decode_errors() {
        for text in ["AAA", "@@@@", "AAAAAAA="] {
            let err = decode_vector(&EmbeddingVector::Base64(text.into())).unwrap_err();
            assert!(err.is_decode(), "{text}: {err:?}");
            assert!(!err.is_stream() && !err.is_builder());
        }
    }
}
