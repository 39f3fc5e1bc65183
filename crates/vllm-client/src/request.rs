//! What the chat and completions builders share: the body being built, its first error, and
//! sending it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::stream::{MessageStream, StreamKind};

/// Where an endpoint lives.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub enum Route<'a> {
    /// Under the base URL (`…/v1` + path).
    Api(&'a str),
    /// At the server's root (the base URL without its `/v1`), like `/tokenize`.
    Root(&'a str),
}

/// A request body being built, with per-request options.
#[derive(Debug)]
pub(crate) struct RequestCore {
    inner: Arc<ClientInner>,
    body: Map<String, Value>,
    extra: Map<String, Value>,
    error: Option<VllmError>,
    timeout: Option<Option<Duration>>,
    max_retries: Option<u32>,
}

impl RequestCore {
    pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
        RequestCore {
            inner,
            body: Map::new(),
            extra: Map::new(),
            error: None,
            timeout: None,
            max_retries: None,
        }
    }

    fn fail(&mut self, error: VllmError) {
        self.error.get_or_insert(error);
    }

    /// Sets `key` to a JSON value.
    pub(crate) fn set(&mut self, key: &str, value: Value) {
        self.body.insert(key.to_owned(), value);
    }

    /// Sets `key` to `value` serialized; a value that does not serialize is the request's
    /// error.
    pub(crate) fn set_serialized(&mut self, key: &str, value: impl Serialize) {
        match serde_json::to_value(value) {
            Ok(v) => self.set(key, v),
            Err(e) => self.fail(VllmError::builder_from(
                format!("`{key}` could not be serialized"),
                e,
            )),
        }
    }

    /// Sets `key` to a float given as `f32`, sent as its shortest decimal (0.7, not
    /// 0.699999988…). NaN and infinities are the request's error.
    pub(crate) fn set_f32(&mut self, key: &str, value: f32) {
        // The shortest decimal that reads back as this f32, read as an f64.
        let number = value
            .is_finite()
            .then(|| value.to_string().parse::<f64>().ok())
            .flatten()
            .and_then(serde_json::Number::from_f64);
        match number {
            Some(n) => self.set(key, Value::Number(n)),
            None => self.fail(VllmError::builder(format!(
                "`{key}` must be a finite number, not {value}"
            ))),
        }
    }

    /// Merges the members of `params` (a JSON object) into the body, last: they win over
    /// every setter.
    pub(crate) fn extra(&mut self, params: impl Serialize) {
        match serde_json::to_value(params) {
            Ok(Value::Object(map)) => self.extra.extend(map),
            Ok(Value::Null) => {}
            Ok(other) => self.fail(VllmError::builder(format!(
                "`extra` must be a JSON object of parameters, not {}",
                json_kind(&other)
            ))),
            Err(e) => self.fail(VllmError::builder_from(
                "`extra` could not be serialized",
                e,
            )),
        }
    }

    pub(crate) fn timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = Some(timeout);
    }

    pub(crate) fn max_retries(&mut self, retries: u32) {
        self.max_retries = Some(retries);
    }

    /// The body that would be sent: the setters' members, then `extra`, checked to have the
    /// `required` members.
    pub(crate) fn body(&self, required: &[&str]) -> Result<Map<String, Value>, VllmError> {
        if let Some(e) = &self.error {
            return Err(e.duplicate_builder());
        }
        let mut body = self.body.clone();
        body.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_required(&body, required)?;
        Ok(body)
    }

    /// The body to send, moved out rather than copied (the request is being sent).
    fn take_body(&mut self, required: &[&str]) -> Result<Map<String, Value>, VllmError> {
        self.take_error()?;
        let mut body = std::mem::take(&mut self.body);
        body.extend(std::mem::take(&mut self.extra));
        check_required(&body, required)?;
        Ok(body)
    }

    fn take_error(&mut self) -> Result<(), VllmError> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn prepare(
        &self,
        route: Route<'_>,
        body: Option<&Map<String, Value>>,
    ) -> Result<vllm_transport::RequestBuilder, VllmError> {
        let transport = self.inner.transport()?;
        let url = self.inner.route_url(route);
        let mut request = match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body)
                    .map_err(|e| VllmError::builder_from("the body could not be serialized", e))?;
                transport.post(url).json(Bytes::from(bytes))
            }
            None => transport.get(url),
        };
        request = request
            .headers(self.inner.headers())
            .max_retries(self.max_retries.unwrap_or(self.inner.max_retries))
            .timeout(self.timeout.unwrap_or(self.inner.timeout));
        Ok(request)
    }

    /// GETs `route` and returns the response body (no request body is sent).
    pub(crate) async fn get(mut self, route: Route<'_>) -> Result<Bytes, VllmError> {
        self.take_error()?;
        let response = self.prepare(route, None)?.send().await?;
        Ok(response.bytes().await?)
    }

    /// GETs `route` and returns the status, whatever it is, with the body (for `/health`).
    pub(crate) async fn get_status(mut self, route: Route<'_>) -> Result<(u16, Bytes), VllmError> {
        self.take_error()?;
        match self.prepare(route, None)?.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                Ok((status, response.bytes().await?))
            }
            Err(e) if e.is_status() => {
                let status = e.status().map_or(0, |s| s.as_u16());
                let body = e.body().cloned().unwrap_or_default();
                Ok((status, body))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// POSTs the body (as built, `stream` kept) to `route` and returns the response body.
    pub(crate) async fn post(
        mut self,
        route: Route<'_>,
        required: &[&str],
    ) -> Result<Bytes, VllmError> {
        let body = self.take_body(required)?;
        self.post_body(route, &body).await
    }

    async fn post_body(
        &self,
        route: Route<'_>,
        body: &Map<String, Value>,
    ) -> Result<Bytes, VllmError> {
        let response = self.prepare(route, Some(body))?.send().await?;
        Ok(response.bytes().await?)
    }

    /// POSTs `bytes` with `content_type` (a multipart upload) to `route`, with `stream` set
    /// as given; returns the response.
    pub(crate) async fn post_raw(
        mut self,
        route: Route<'_>,
        content_type: &str,
        bytes: Bytes,
        stream: bool,
    ) -> Result<vllm_transport::Response, VllmError> {
        self.take_error()?;
        let transport = self.inner.transport()?;
        let timeout = self.timeout.unwrap_or(self.inner.timeout);
        let mut request = transport
            .post(self.inner.route_url(route))
            .headers(self.inner.headers())
            .header("content-type", content_type)
            .body(bytes)
            .max_retries(self.max_retries.unwrap_or(self.inner.max_retries));
        request = if stream {
            request
                .timeout(None)
                .response_head_timeout(timeout)
                .idle_timeout(self.inner.stream_idle_timeout)
        } else {
            request.timeout(timeout)
        };
        Ok(request.send().await?)
    }

    /// POSTs the body to `path` without `stream` and `stream_options` (the whole answer at
    /// once) and returns the response body.
    pub(crate) async fn send_json(
        mut self,
        path: &str,
        required: &[&str],
    ) -> Result<Bytes, VllmError> {
        let mut body = self.take_body(required)?;
        body.remove("stream");
        body.remove("stream_options");
        self.post_body(Route::Api(path), &body).await
    }

    /// POSTs the body to `path` with `stream: true` (and `stream_options.include_usage`
    /// unless set) and returns the event stream once the response head arrived.
    pub(crate) async fn send_stream(
        mut self,
        path: &str,
        required: &[&str],
        kind: StreamKind,
    ) -> Result<MessageStream, VllmError> {
        let mut body = self.take_body(required)?;
        body.insert("stream".into(), Value::Bool(true));
        if !body.contains_key("stream_options") {
            body.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        let timeout = self.timeout.unwrap_or(self.inner.timeout);
        let request = self
            .prepare(Route::Api(path), Some(&body))?
            // For a stream, the timeout bounds the wait for the head; the idle timeout
            // bounds each gap after it.
            .timeout(None)
            .response_head_timeout(timeout)
            .idle_timeout(self.inner.stream_idle_timeout)
            .header("accept", "text/event-stream");
        let response = request.send().await?;
        Ok(MessageStream::new(response.into_events(), kind))
    }
}

/// An error naming the first of `required` that `body` lacks (or has as `null`).
fn check_required(body: &Map<String, Value>, required: &[&str]) -> Result<(), VllmError> {
    match required
        .iter()
        .find(|key| body.get(**key).is_none_or(Value::is_null))
    {
        Some(key) => Err(VllmError::builder(format!(
            "`{key}` is required; set it with `.{key}(…)`"
        ))),
        None => Ok(()),
    }
}

/// Parses a response body as `T`, naming `what` in the error.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &[u8],
) -> Result<T, VllmError> {
    serde_json::from_slice(body)
        .map_err(|e| VllmError::decode(what, &String::from_utf8_lossy(body), e))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Setters that the chat and the completions builders share. Expands inside `impl` blocks of
/// types with a `core: RequestCore` field.
macro_rules! common_setters {
    () => {
        /// The model to use (an id from `/v1/models`). Required.
        pub fn model(mut self, name: impl Into<String>) -> Self {
            self.core
                .set("model", serde_json::Value::String(name.into()));
            self
        }

        /// Sampling temperature, 0 to 2; 0 is greedy (deterministic).
        pub fn temperature(mut self, temperature: f32) -> Self {
            self.core.set_f32("temperature", temperature);
            self
        }

        /// Maximum number of tokens to generate.
        pub fn max_tokens(mut self, tokens: u32) -> Self {
            self.core.set("max_tokens", tokens.into());
            self
        }

        /// Nucleus sampling threshold, 0 to 1.
        pub fn top_p(mut self, p: f32) -> Self {
            self.core.set_f32("top_p", p);
            self
        }

        /// vLLM: sample from the `k` most likely tokens (-1: all).
        pub fn top_k(mut self, k: i32) -> Self {
            self.core.set("top_k", k.into());
            self
        }

        /// vLLM: minimum probability of a token relative to the most likely one, 0 to 1.
        pub fn min_p(mut self, p: f32) -> Self {
            self.core.set_f32("min_p", p);
            self
        }

        /// vLLM: penalty on repeated tokens (1.0: none; above 1 discourages repeats).
        pub fn repetition_penalty(mut self, penalty: f32) -> Self {
            self.core.set_f32("repetition_penalty", penalty);
            self
        }

        /// Penalise tokens by whether they appeared so far, -2 to 2.
        pub fn presence_penalty(mut self, penalty: f32) -> Self {
            self.core.set_f32("presence_penalty", penalty);
            self
        }

        /// Penalise tokens by how often they appeared so far, -2 to 2.
        pub fn frequency_penalty(mut self, penalty: f32) -> Self {
            self.core.set_f32("frequency_penalty", penalty);
            self
        }

        /// Random seed, for reproducible sampling.
        pub fn seed(mut self, seed: i64) -> Self {
            self.core.set("seed", seed.into());
            self
        }

        /// Number of choices to generate.
        pub fn n(mut self, n: u32) -> Self {
            self.core.set("n", n.into());
            self
        }

        /// Stop sequences: a string or an array of strings (`json!(["END", "\n\n"])`).
        pub fn stop(mut self, sequences: impl serde::Serialize) -> Self {
            self.core.set_serialized("stop", sequences);
            self
        }

        /// vLLM: stop at any of these token ids.
        pub fn stop_token_ids(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
            self.core
                .set("stop_token_ids", ids.into_iter().collect::<Vec<_>>().into());
            self
        }

        /// vLLM: generate at least this many tokens before a stop may end the output.
        pub fn min_tokens(mut self, tokens: u32) -> Self {
            self.core.set("min_tokens", tokens.into());
            self
        }

        /// vLLM: keep generating past the end-of-sequence token.
        pub fn ignore_eos(mut self, ignore: bool) -> Self {
            self.core.set("ignore_eos", ignore.into());
            self
        }

        /// vLLM: leave special tokens out of the output text (default true).
        pub fn skip_special_tokens(mut self, skip: bool) -> Self {
            self.core.set("skip_special_tokens", skip.into());
            self
        }

        /// Output format: `{"type": "json_object"}`, a `json_schema`, or a
        /// [`ResponseFormat`](vllm_types::ResponseFormat).
        pub fn response_format(mut self, format: impl serde::Serialize) -> Self {
            self.core.set_serialized("response_format", format);
            self
        }

        /// vLLM: constrained decoding (`{"json": schema}`, `{"regex": …}`, `{"choice": [...]}`,
        /// `{"grammar": …}`), or a [`StructuredOutputs`](vllm_types::StructuredOutputs).
        pub fn structured_outputs(mut self, constraint: impl serde::Serialize) -> Self {
            self.core.set_serialized("structured_outputs", constraint);
            self
        }

        /// vLLM: scheduling priority (lower runs earlier; needs priority scheduling).
        pub fn priority(mut self, priority: i32) -> Self {
            self.core.set("priority", priority.into());
            self
        }

        /// vLLM: the id the server uses for this request in its logs and metrics.
        pub fn request_id(mut self, id: impl Into<String>) -> Self {
            self.core
                .set("request_id", serde_json::Value::String(id.into()));
            self
        }

        /// An end-user id, for abuse monitoring.
        pub fn user(mut self, user: impl Into<String>) -> Self {
            self.core
                .set("user", serde_json::Value::String(user.into()));
            self
        }

        /// Stream the response. [`send_stream`](Self::send_stream) always streams and
        /// [`send`](Self::send) never does, so this only matters for
        /// [`build_body`](Self::build_body).
        pub fn stream(mut self, enable: bool) -> Self {
            self.core.set("stream", enable.into());
            self
        }

        /// Options for streams. By default streams ask for usage
        /// (`{"include_usage": true}`); setting this replaces that.
        pub fn stream_options(mut self, options: impl serde::Serialize) -> Self {
            self.core.set_serialized("stream_options", options);
            self
        }

        /// Parameters merged into the top level of the body, last (they win over the
        /// setters): vLLM-only parameters this builder has no setter for. Must serialize to a
        /// JSON object.
        pub fn extra(mut self, params: impl serde::Serialize) -> Self {
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
    };
}

pub(crate) use common_setters;
