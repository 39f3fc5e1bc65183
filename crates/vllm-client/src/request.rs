//! What the chat and completions builders share: the body being built, its first error, and
//! sending it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vllm_types::StreamOptions;

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::head::{REQUEST_ID, ResponseHead};

/// Where an endpoint lives.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub enum Route<'a> {
    /// Under the base URL (`…/v1` + path).
    Api(&'a str),
    /// At the server's root (the base URL without its `/v1`), like `/tokenize`.
    Root(&'a str),
}

/// A request body: what it must have before it is sent.
pub(crate) trait RequestBody: Serialize {
    /// The members that must be given (by a setter, or in `extra`).
    fn required(&self) -> &'static [&'static str];
}

/// A request body that can be streamed.
pub(crate) trait StreamBody: RequestBody {
    /// Its `stream` and `stream_options` fields.
    fn stream_fields(&mut self) -> (&mut Option<bool>, &mut Option<StreamOptions>);
}

/// No body (a `GET`, or a body built elsewhere, like a multipart upload).
impl RequestBody for () {
    fn required(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A body of parameters set by name, for the endpoints without a typed builder.
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: Map<String, Value>,
    required: &'static [&'static str],
}

impl Params {
    pub(crate) fn new(required: &'static [&'static str]) -> Self {
        Params {
            map: Map::new(),
            required,
        }
    }

    /// Sets the member `key`.
    pub(crate) fn set(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_owned(), value);
    }
}

impl Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(serializer)
    }
}

impl RequestBody for Params {
    fn required(&self) -> &'static [&'static str] {
        self.required
    }
}

/// A request being built: its body (typed), the `extra` members merged into it last, its
/// first error, and per-request options.
#[derive(Debug)]
pub(crate) struct RequestCore<B> {
    inner: Arc<ClientInner>,
    pub(crate) body: B,
    /// The required members a setter set.
    given: Vec<&'static str>,
    extra: Map<String, Value>,
    /// Headers of this request only (over the client's).
    headers: HeaderMap,
    error: Option<VllmError>,
    timeout: Option<Option<Duration>>,
    max_retries: Option<u32>,
}

impl<B: RequestBody> RequestCore<B> {
    pub(crate) fn new(inner: Arc<ClientInner>, body: B) -> Self {
        RequestCore {
            inner,
            body,
            given: Vec::new(),
            extra: Map::new(),
            headers: HeaderMap::new(),
            error: None,
            timeout: None,
            max_retries: None,
        }
    }

    /// Notes that the required member `key` was set.
    pub(crate) fn give(&mut self, key: &'static str) {
        if !self.given.contains(&key) {
            self.given.push(key);
        }
    }

    /// Keeps `error` as the request's error, unless it has one already.
    pub(crate) fn fail(&mut self, error: VllmError) {
        self.error.get_or_insert(error);
    }

    /// `value` as a `T` (through its JSON form); a value that does not convert is the
    /// request's error, naming `key`.
    pub(crate) fn typed<T: DeserializeOwned>(
        &mut self,
        key: &str,
        value: impl Serialize,
    ) -> Option<T> {
        match serde_json::to_value(value).and_then(serde_json::from_value) {
            Ok(typed) => Some(typed),
            Err(e) => {
                self.fail(VllmError::builder_from(
                    format!("`{key}` is not valid: {e}"),
                    e,
                ));
                None
            }
        }
    }

    /// A float given as `f32`, as the `f64` of its shortest decimal (0.7, not
    /// 0.699999988…). NaN and infinities are the request's error, naming `key`.
    pub(crate) fn float(&mut self, key: &str, value: f32) -> Option<f64> {
        // The shortest decimal that reads back as this f32, read as an f64.
        let number = value
            .is_finite()
            .then(|| value.to_string().parse::<f64>().ok())
            .flatten();
        if number.is_none() {
            self.fail(VllmError::builder(format!(
                "`{key}` must be a finite number, not {value}"
            )));
        }
        number
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

    /// A header of this request only; it replaces a client default of the same name. An
    /// invalid name or value is the request's error (naming the header, never its value).
    pub(crate) fn header(&mut self, name: &str, value: &str) {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            (Err(_), _) => self.fail(VllmError::builder(format!(
                "`{name}` is not a valid header name"
            ))),
            (_, Err(_)) => self.fail(VllmError::builder(format!(
                "the value of header `{name}` is not a valid header value"
            ))),
        }
    }

    /// Sends `X-Request-Id: id` with the request.
    pub(crate) fn request_id_header(&mut self, id: &str) {
        self.header(REQUEST_ID, id);
    }

    pub(crate) fn timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = Some(timeout);
    }

    pub(crate) fn max_retries(&mut self, retries: u32) {
        self.max_retries = Some(retries);
    }

    /// The first required member that neither a setter nor `extra` gave.
    fn check_required(&self) -> Result<(), VllmError> {
        let missing = self.body.required().iter().find(|key| {
            !self.given.contains(key) && self.extra.get(**key).is_none_or(Value::is_null)
        });
        match missing {
            Some(key) => Err(VllmError::builder(format!(
                "`{key}` is required; set it with `.{key}(…)`"
            ))),
            None => Ok(()),
        }
    }

    /// The body that would be sent, as JSON: the typed body, then `extra`.
    pub(crate) fn body_value(&self) -> Result<Value, VllmError> {
        if let Some(e) = &self.error {
            return Err(e.duplicate_builder());
        }
        self.check_required()?;
        let mut value = serde_json::to_value(&self.body)
            .map_err(|e| VllmError::builder_from("the body could not be serialized", e))?;
        if let Value::Object(map) = &mut value {
            map.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(value)
    }

    /// The body to send, as bytes (the request is being sent: its error is taken).
    fn take_body_bytes(&mut self) -> Result<Bytes, VllmError> {
        self.take_error()?;
        self.check_required()?;
        let bytes = if self.extra.is_empty() {
            serde_json::to_vec(&self.body)
        } else {
            serde_json::to_value(&self.body).and_then(|value| match value {
                Value::Object(mut map) => {
                    map.extend(std::mem::take(&mut self.extra));
                    serde_json::to_vec(&map)
                }
                other => serde_json::to_vec(&other),
            })
        };
        bytes
            .map(Bytes::from)
            .map_err(|e| VllmError::builder_from("the body could not be serialized", e))
    }

    fn take_error(&mut self) -> Result<(), VllmError> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A `POST` (else a `GET`) to `route` under `base_url`, with the client's headers and
    /// this request's.
    fn prepare(
        &self,
        transport: &vllm_transport::Transport,
        base_url: &str,
        route: Route<'_>,
        post: bool,
    ) -> vllm_transport::RequestBuilder {
        let url = crate::client::route_url(base_url, route);
        let request = if post {
            transport.post(url)
        } else {
            transport.get(url)
        };
        request
            .headers(self.inner.headers())
            .headers(self.headers.clone())
    }

    /// Sends the request to `route` (a `POST` else a `GET`; `finish` adds its body and
    /// headers): to the server, or with several base URLs to a replica the balancer picks,
    /// trying another one when it fails before answering. With `stream`, the timeout bounds
    /// the wait for the response head and the idle timeout each gap after it; otherwise the
    /// timeout bounds the whole request, retries included.
    async fn dispatch(
        &self,
        route: Route<'_>,
        post: bool,
        stream: bool,
        finish: impl Fn(vllm_transport::RequestBuilder) -> vllm_transport::RequestBuilder,
    ) -> Result<Sent, VllmError> {
        let transport = self.inner.transport()?;
        let max_retries = self.max_retries.unwrap_or(self.inner.max_retries);
        let timeout = self.timeout.unwrap_or(self.inner.timeout);
        let Some(balancer) = self.inner.balancer.as_ref() else {
            let request = finish(self.prepare(transport, &self.inner.base_url, route, post));
            let request = self.timed(request.max_retries(max_retries), stream, timeout);
            return Ok(Sent {
                response: request.send().await?,
                in_flight: None,
            });
        };
        balancer.ensure_checker(transport, || self.inner.headers());
        let mut headers = self.inner.headers();
        headers.extend(self.headers.clone());
        // Without a stream the timeout covers every attempt together, as the transport's
        // own retries do.
        let deadline = timeout
            .filter(|_| !stream)
            .and_then(|t| Instant::now().checked_add(t));
        let mut tried = Vec::with_capacity(balancer.len());
        let mut retry = 0u32;
        loop {
            let index = balancer.pick(&headers, &tried);
            let in_flight = balancer.start(index);
            let request = finish(self.prepare(transport, balancer.base_url(index), route, post));
            let left = match deadline {
                Some(at) => Some(at.saturating_duration_since(Instant::now())),
                None => timeout,
            };
            let request = self.timed(request.max_retries(0), stream, left);
            let err = match request.send().await {
                Ok(response) => {
                    return Ok(Sent {
                        response,
                        in_flight: Some(in_flight),
                    });
                }
                Err(err) => err,
            };
            drop(in_flight);
            // Refused (or no connection in time): this replica is not serving, eject it. A
            // connection dropped before the response head is tried elsewhere but ejects
            // nothing: it is also what a healthy server's keep-alive timeout does to an
            // idle pooled connection.
            if err.is_connect() {
                balancer.failed(index);
            }
            let unanswered = err.is_connect() || err.is_request();
            if !tried.contains(&index) {
                tried.push(index);
            }
            if retry >= max_retries || !(err.is_retryable() || unanswered) {
                return Err(err.into());
            }
            // Another replica right away; the same ones again only after the backoff.
            let delay = if tried.len() < balancer.len() {
                Duration::ZERO
            } else {
                transport.retry_delay(retry, err.headers())
            };
            if deadline.is_some_and(|at| Instant::now() + delay >= at) {
                return Err(err.into());
            }
            retry += 1;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// GETs `route` and returns the response body (no request body is sent) and head.
    pub(crate) async fn get(
        mut self,
        route: Route<'_>,
    ) -> Result<(Bytes, ResponseHead), VllmError> {
        self.take_error()?;
        let sent = self.dispatch(route, false, false, |r| r).await?;
        read(sent).await
    }

    /// GETs `route` and returns the status, whatever it is, with the body (for `/health`).
    pub(crate) async fn get_status(mut self, route: Route<'_>) -> Result<(u16, Bytes), VllmError> {
        self.take_error()?;
        match self.dispatch(route, false, false, |r| r).await {
            Ok(sent) => {
                let status = sent.response.status().as_u16();
                Ok((status, sent.response.bytes().await?))
            }
            Err(e) if e.is_status() => {
                let status = e.status_code().unwrap_or(0);
                let body = Bytes::copy_from_slice(e.body_text().unwrap_or_default().as_bytes());
                Ok((status, body))
            }
            Err(e) => Err(e),
        }
    }

    /// POSTs the body to `route` and returns the response body and head.
    pub(crate) async fn post(
        mut self,
        route: Route<'_>,
    ) -> Result<(Bytes, ResponseHead), VllmError> {
        let body = self.take_body_bytes()?;
        let sent = self
            .dispatch(route, true, false, |r| r.json(body.clone()))
            .await?;
        read(sent).await
    }

    /// POSTs `bytes` with `content_type` (a multipart upload) to `route`, as a stream or
    /// not; returns the response.
    pub(crate) async fn post_raw(
        mut self,
        route: Route<'_>,
        content_type: &str,
        bytes: Bytes,
        stream: bool,
    ) -> Result<Sent, VllmError> {
        self.take_error()?;
        self.dispatch(route, true, stream, |r| {
            r.header("content-type", content_type).body(bytes.clone())
        })
        .await
    }

    /// The request's timeouts: for a stream, `timeout` bounds the wait for the head and
    /// the idle timeout each gap after it; otherwise `timeout` bounds the whole request.
    fn timed(
        &self,
        request: vllm_transport::RequestBuilder,
        stream: bool,
        timeout: Option<Duration>,
    ) -> vllm_transport::RequestBuilder {
        if stream {
            request
                .timeout(None)
                .response_head_timeout(timeout)
                .idle_timeout(self.inner.stream_idle_timeout)
        } else {
            request.timeout(timeout)
        }
    }
}

/// `sent`, unless a stream request was answered with JSON instead of an event stream (a
/// server or proxy that ignores `stream`, or a JSON error with a 200): then the server's
/// error, when the JSON is one, or an error saying what came instead.
pub(crate) async fn event_stream(sent: Sent) -> Result<Sent, VllmError> {
    let json = sent
        .response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim_start().as_bytes();
            ct.len() >= 16 && ct[..16].eq_ignore_ascii_case(b"application/json")
        });
    if !json {
        return Ok(sent);
    }
    let body = sent.response.bytes().await?;
    if let Ok(error) = serde_json::from_slice::<vllm_types::ErrorResponse>(&body) {
        return Err(VllmError::server_event(error));
    }
    Err(VllmError::stream(format!(
        "the server answered the stream request with JSON, not an event stream (does it \
         stream this endpoint?): {}",
        crate::error::snippet(&String::from_utf8_lossy(&body))
    )))
}

/// A response whose head arrived, and the replica it counts on until it is dropped.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) response: vllm_transport::Response,
    pub(crate) in_flight: Option<crate::balance::InFlight>,
}

impl RequestCore<()> {
    /// POSTs `body`, JSON as it is, to `route` and returns the response body and head.
    pub(crate) async fn post_bytes(
        mut self,
        route: Route<'_>,
        body: Bytes,
    ) -> Result<(Bytes, ResponseHead), VllmError> {
        self.take_error()?;
        let sent = self
            .dispatch(route, true, false, |r| r.json(body.clone()))
            .await?;
        read(sent).await
    }
}

impl<B: StreamBody> RequestCore<B> {
    /// POSTs the body to `path` without `stream` and `stream_options` (the whole answer at
    /// once) and returns the response body and head.
    pub(crate) async fn send_json(
        mut self,
        path: &str,
    ) -> Result<(Bytes, ResponseHead), VllmError> {
        let (stream, options) = self.body.stream_fields();
        *stream = None;
        *options = None;
        self.extra.remove("stream");
        self.extra.remove("stream_options");
        self.post(Route::Api(path)).await
    }

    /// POSTs the body to `path` with `stream: true` (and `stream_options.include_usage`
    /// unless set) and returns the stream once the response head arrived.
    pub(crate) async fn send_stream(mut self, path: &str) -> Result<Opened, VllmError> {
        let started = Instant::now();
        let has_options = self.extra.contains_key("stream_options");
        let (stream, options) = self.body.stream_fields();
        *stream = Some(true);
        if options.is_none() && !has_options {
            *options = Some(StreamOptions::include_usage());
        }
        self.extra.remove("stream");
        let body = self.take_body_bytes()?;
        let sent = self
            .dispatch(Route::Api(path), true, true, |r| {
                r.json(body.clone()).header("accept", "text/event-stream")
            })
            .await?;
        Ok(Opened::new(event_stream(sent).await?, started))
    }
}

/// A stream whose response head arrived: its events, head, and when the request started.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) events: vllm_transport::EventStream,
    pub(crate) head: ResponseHead,
    pub(crate) started: Instant,
    /// Counts the stream on its replica until the stream is dropped.
    pub(crate) in_flight: Option<crate::balance::InFlight>,
}

impl Opened {
    pub(crate) fn new(sent: Sent, started: Instant) -> Self {
        let head = head_of(&sent.response);
        Opened {
            events: sent.response.into_events(),
            head,
            started,
            in_flight: sent.in_flight,
        }
    }
}

/// The status and headers of `response`.
fn head_of(response: &vllm_transport::Response) -> ResponseHead {
    ResponseHead::new(response.status().as_u16(), response.headers().clone())
}

/// Reads the whole body of `response`, with its head.
async fn read(sent: Sent) -> Result<(Bytes, ResponseHead), VllmError> {
    let head = head_of(&sent.response);
    let body = sent.response.bytes().await?;
    drop(sent.in_flight);
    Ok((body, head))
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

/// Setters that the chat and the completions builders share (their typed requests have the
/// same sampling fields). Expands inside `impl` blocks of types with a `core: RequestCore<_>`
/// field whose body is a `vllm-types` request.
macro_rules! common_setters {
    () => {
        /// The model to use (an id from `/v1/models`). Required.
        pub fn model(mut self, name: impl Into<String>) -> Self {
            self.core.body.model = Some(name.into());
            self.core.give("model");
            self
        }

        /// Sampling temperature, 0 to 2; 0 is greedy (deterministic).
        pub fn temperature(mut self, temperature: f32) -> Self {
            self.core.body.temperature = self.core.float("temperature", temperature);
            self
        }

        /// Maximum number of tokens to generate.
        pub fn max_tokens(mut self, tokens: u32) -> Self {
            self.core.body.max_tokens = Some(tokens);
            self
        }

        /// Nucleus sampling threshold, 0 to 1.
        pub fn top_p(mut self, p: f32) -> Self {
            self.core.body.top_p = self.core.float("top_p", p);
            self
        }

        /// vLLM: sample from the `k` most likely tokens (-1: all).
        pub fn top_k(mut self, k: i32) -> Self {
            self.core.body.top_k = Some(k);
            self
        }

        /// vLLM: minimum probability of a token relative to the most likely one, 0 to 1.
        pub fn min_p(mut self, p: f32) -> Self {
            self.core.body.min_p = self.core.float("min_p", p);
            self
        }

        /// vLLM: penalty on repeated tokens (1.0: none; above 1 discourages repeats).
        pub fn repetition_penalty(mut self, penalty: f32) -> Self {
            self.core.body.repetition_penalty = self.core.float("repetition_penalty", penalty);
            self
        }

        /// Penalise tokens by whether they appeared so far, -2 to 2.
        pub fn presence_penalty(mut self, penalty: f32) -> Self {
            self.core.body.presence_penalty = self.core.float("presence_penalty", penalty);
            self
        }

        /// Penalise tokens by how often they appeared so far, -2 to 2.
        pub fn frequency_penalty(mut self, penalty: f32) -> Self {
            self.core.body.frequency_penalty = self.core.float("frequency_penalty", penalty);
            self
        }

        /// Random seed, for reproducible sampling.
        pub fn seed(mut self, seed: i64) -> Self {
            self.core.body.seed = Some(seed);
            self
        }

        /// Number of choices to generate.
        pub fn n(mut self, n: u32) -> Self {
            self.core.body.n = Some(n);
            self
        }

        /// Stop sequences: a string or an array of strings (`json!(["END", "\n\n"])`), or a
        /// [`Stop`](vllm_types::Stop).
        pub fn stop(mut self, sequences: impl serde::Serialize) -> Self {
            self.core.body.stop = self.core.typed("stop", sequences);
            self
        }

        /// vLLM: stop at any of these token ids.
        pub fn stop_token_ids(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
            self.core.body.stop_token_ids = Some(ids.into_iter().collect());
            self
        }

        /// vLLM: generate at least this many tokens before a stop may end the output.
        pub fn min_tokens(mut self, tokens: u32) -> Self {
            self.core.body.min_tokens = Some(tokens);
            self
        }

        /// vLLM: keep generating past the end-of-sequence token.
        pub fn ignore_eos(mut self, ignore: bool) -> Self {
            self.core.body.ignore_eos = Some(ignore);
            self
        }

        /// vLLM: leave special tokens out of the output text (default true).
        pub fn skip_special_tokens(mut self, skip: bool) -> Self {
            self.core.body.skip_special_tokens = Some(skip);
            self
        }

        /// Output format: `{"type": "json_object"}`, a `json_schema`, or a
        /// [`ResponseFormat`](vllm_types::ResponseFormat).
        pub fn response_format(mut self, format: impl serde::Serialize) -> Self {
            self.core.body.response_format = self.core.typed("response_format", format);
            self
        }

        /// vLLM: constrained decoding (`{"json": schema}`, `{"regex": …}`, `{"choice": [...]}`,
        /// `{"grammar": …}`), or a [`StructuredOutputs`](vllm_types::StructuredOutputs).
        pub fn structured_outputs(mut self, constraint: impl serde::Serialize) -> Self {
            self.core.body.structured_outputs = self.core.typed("structured_outputs", constraint);
            self
        }

        /// vLLM: scheduling priority (lower runs earlier; needs priority scheduling).
        pub fn priority(mut self, priority: i32) -> Self {
            self.core.body.priority = Some(priority);
            self
        }

        /// vLLM: the id the server uses for this request in its logs, metrics and responses.
        /// Sent as the body's `request_id` and as the `X-Request-Id` header (which routers
        /// and gateways log, and vLLM echoes back).
        pub fn request_id(mut self, id: impl Into<String>) -> Self {
            let id = id.into();
            self.core.request_id_header(&id);
            self.core.body.request_id = Some(id);
            self
        }

        /// A header of this request only (a routing key for a router, a tenant header for a
        /// gateway); it replaces a client default header of the same name. An invalid name or
        /// value is an error from `send()`.
        pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
            self.core.header(name.as_ref(), value.as_ref());
            self
        }

        /// An end-user id: the body's `user` (OpenAI's field, for abuse monitoring) and the
        /// `X-User-ID` header, which routers hash for affinity when there is no session id
        /// (vllm-router's `consistent_hash` reads both; see
        /// [`ClientBuilder::user`](crate::ClientBuilder::user)).
        pub fn user(mut self, user: impl Into<String>) -> Self {
            let user = user.into();
            self.core.header($crate::USER_ID_HEADER, &user);
            self.core.body.user = Some(user);
            self
        }

        /// This request's session (a conversation's id), sent as `X-Session-ID`: routers
        /// with session affinity (vllm-router's `consistent_hash`, SGLang's router) and a
        /// client with several [`base_urls`](crate::ClientBuilder::base_urls) send every
        /// request of a session to the same replica, which keeps its prefix cache.
        pub fn session_id(mut self, id: impl AsRef<str>) -> Self {
            self.core.header($crate::SESSION_ID_HEADER, id.as_ref());
            self
        }

        /// Stream the response. [`send_stream`](Self::send_stream) always streams and
        /// [`send`](Self::send) never does, so this only matters for
        /// [`build_body`](Self::build_body).
        pub fn stream(mut self, enable: bool) -> Self {
            self.core.body.stream = Some(enable);
            self
        }

        /// Options for streams, or a [`StreamOptions`](vllm_types::StreamOptions). By default
        /// streams ask for usage (`{"include_usage": true}`); setting this replaces that.
        pub fn stream_options(mut self, options: impl serde::Serialize) -> Self {
            self.core.body.stream_options = self.core.typed("stream_options", options);
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

        /// The JSON body that `send()` would send (with `stream` as set; `send_stream()` also
        /// adds `stream: true` and, unless set, `stream_options: {"include_usage": true}`).
        /// Needs no server.
        pub fn build_body(&self) -> Result<serde_json::Value, VllmError> {
            self.core.body_value()
        }
    };
}

pub(crate) use common_setters;
