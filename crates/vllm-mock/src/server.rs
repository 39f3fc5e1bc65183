//! [`MockServer`], its [`MockServerBuilder`], and the state its connections share.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::behavior::Behavior;
use crate::engine::{Engine, Timing};
use crate::json::splitmix64;
use crate::metrics::Metrics;
use crate::record::RecordedRequest;
use crate::reply::{Generation, Payload, Reply, ReplyBody};
use crate::routes;
use crate::script::Script;
use crate::tokenizer;
use crate::track::Tracker;

/// The model the mock serves unless told otherwise: the deterministic echo model.
pub const DEFAULT_MODEL: &str = "echo";

/// The vLLM release whose response shapes the mock reproduces (and reports on `/version`).
pub const VLLM_VERSION: &str = "0.32.0";

/// The default context length of the served models, prompt plus output tokens.
pub const DEFAULT_MAX_MODEL_LEN: u32 = 4096;

/// The default length of the vectors of `/v1/embeddings`.
pub const DEFAULT_EMBEDDING_DIMENSIONS: usize = 32;

/// The header naming the replica ([`MockServerBuilder::replica_id`]).
const REPLICA_ID: HeaderName = HeaderName::from_static("x-replica-id");

/// The most pieces `/detokenize` remembers.
const MAX_VOCAB: usize = 200_000;

/// A vLLM-compatible server on a local port, for tests.
///
/// It serves the deterministic echo model ([`DEFAULT_MODEL`]) with vLLM's exact JSON and
/// stream shapes, answers with scripted [`Behavior`]s when told to, and records every request.
/// It runs on a thread of its own (so any test runtime, or none, can use it) and stops when
/// dropped: the listener and every open connection are closed before `drop` returns.
///
/// ```
/// use vllm_mock::{Behavior, MockServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mock = MockServer::start().await?;
/// assert!(mock.base_url().starts_with("http://127.0.0.1:"));
/// assert!(mock.base_url().ends_with("/v1"));
///
/// mock.enqueue(Behavior::error(503, "The server is overloaded.").retry_after(1));
/// mock.on_model("qwen3", Behavior::reply("Hi!").reasoning("A greeting."));
/// assert_eq!(mock.models(), ["echo", "qwen3"]);
/// assert!(mock.requests().is_empty());
/// # Ok(()) }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server with the defaults on `127.0.0.1` and a free port.
    pub async fn start() -> io::Result<MockServer> {
        Self::builder().start().await
    }

    /// Starts configuring a server.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::new()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the OpenAI-compatible API: `http://127.0.0.1:PORT/v1` (a server
    /// listening on all interfaces is reached through the loopback address).
    pub fn base_url(&self) -> String {
        self.url("/v1")
    }

    /// The URL of `path` on the server (`mock.url("/health")`).
    pub fn url(&self, path: &str) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}{path}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Answers the next request with `behavior` (behaviors queue up: each answers one
    /// request, in order). A behavior limited with [`Behavior::for_path`] waits for a request
    /// to its path. Queued behaviors come before those of [`on_model`](Self::on_model).
    pub fn enqueue(&self, behavior: Behavior) {
        self.shared.state().queue.push_back(behavior);
    }

    /// Answers request number `number` (from 1) with `behavior`: the `number`-th request to
    /// the behavior's path ([`Behavior::for_path`]), or to any path when it has none. It
    /// comes before queued behaviors and those of [`on_model`](Self::on_model).
    pub fn on_request(&self, number: usize, behavior: Behavior) {
        self.shared.state().numbered.push((number, behavior));
    }

    /// Applies a [`Script`]: its models' behaviors ([`on_model`](Self::on_model)), its queue
    /// ([`enqueue`](Self::enqueue)) and its numbered requests
    /// ([`on_request`](Self::on_request)).
    pub fn apply_script(&self, script: &Script) {
        for (model, behavior) in script.models() {
            self.on_model(model.clone(), behavior.clone());
        }
        for behavior in script.queue() {
            self.enqueue(behavior.clone());
        }
        for (number, behavior) in script.requests() {
            self.on_request(*number, behavior.clone());
        }
    }

    /// Requests generating now, and requests waiting for a slot (see [`Timing`]).
    pub fn load(&self) -> (usize, usize) {
        (self.shared.engine.running(), self.shared.engine.waiting())
    }

    /// Serves `model` (it is listed by `/v1/models` from now on) and answers every request
    /// to it (chat, completions, embeddings, pooling, classify, score, rerank, transcriptions)
    /// with `behavior` (replacing the behavior it had). `Behavior::new()` serves it as an
    /// echo model. A loaded LoRA adapter's name is a model too: it gets the behavior without
    /// becoming a base model.
    pub fn on_model(&self, model: impl Into<String>, behavior: Behavior) {
        let model = model.into();
        let mut state = self.shared.state();
        if !state.models.contains(&model) && !state.adapters.iter().any(|a| a.name == model) {
            state.models.push(model.clone());
        }
        state.behaviors.insert(model, behavior);
    }

    /// The served models, in the order `/v1/models` lists them: the base models, then the
    /// LoRA adapters loaded through `POST /v1/load_lora_adapter`.
    pub fn models(&self) -> Vec<String> {
        self.shared.models()
    }

    /// Every request received so far, in order (none if the server was built with
    /// [`record_requests(false)`](MockServerBuilder::record_requests)).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        let mut state = self.shared.state();
        state.requests.clear();
        state.received = 0;
    }

    /// How many [`enqueue`](Self::enqueue)d behaviors have not answered a request yet.
    pub fn queued(&self) -> usize {
        self.shared.state().queue.len()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only drops its runtime (and with it every connection) and returns.
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("models", &self.models())
            .finish_non_exhaustive()
    }
}

/// Configures a [`MockServer`].
///
/// ```
/// use vllm_mock::MockServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mock = MockServer::builder()
///     .addr(([127, 0, 0, 1], 0))
///     .models(["Qwen/Qwen3-8B"])
///     .max_model_len(1024)
///     .api_key("sk-test")
///     .start()
///     .await?;
/// assert_eq!(mock.models(), ["Qwen/Qwen3-8B"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start()` is awaited"]
pub struct MockServerBuilder {
    addr: SocketAddr,
    models: Vec<String>,
    max_model_len: u32,
    embedding_dimensions: usize,
    api_key: Option<String>,
    timing: Timing,
    replica_id: Option<String>,
    record: bool,
}

impl Default for MockServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MockServerBuilder {
    /// The defaults: `127.0.0.1:0`, the model [`DEFAULT_MODEL`], a context of
    /// [`DEFAULT_MAX_MODEL_LEN`] tokens, [`DEFAULT_EMBEDDING_DIMENSIONS`]-long vectors, no
    /// API key.
    pub fn new() -> Self {
        MockServerBuilder {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            models: vec![DEFAULT_MODEL.to_owned()],
            max_model_len: DEFAULT_MAX_MODEL_LEN,
            embedding_dimensions: DEFAULT_EMBEDDING_DIMENSIONS,
            api_key: None,
            timing: Timing::default(),
            replica_id: None,
            record: true,
        }
    }

    /// The address to listen on (port 0: a free port).
    pub fn addr(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The port to listen on (0: a free port), keeping the address.
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// The served models, instead of [`DEFAULT_MODEL`]; each answers as the echo model.
    /// A request without `model` goes to the first.
    pub fn models<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// The context length of every model (`max_model_len`), prompt plus output tokens.
    pub fn max_model_len(mut self, tokens: u32) -> Self {
        self.max_model_len = tokens;
        self
    }

    /// The length of the vectors of `/v1/embeddings` (at least 1).
    pub fn embedding_dimensions(mut self, dimensions: usize) -> Self {
        self.embedding_dimensions = dimensions.max(1);
        self
    }

    /// Require `Authorization: Bearer <key>` on `/v1/…` routes, as `vllm serve --api-key`
    /// does (others answer `401` with `{"error": "Unauthorized"}`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// How generation is paced: time to first token, time per token, the number of requests
    /// that run at once (the rest wait in line), decode slowdown with batch size, a token rate
    /// cap. Default: instant, without limit.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Names this server in an `x-replica-id` header on every answer (to tell replicas apart
    /// behind a router).
    pub fn replica_id(mut self, name: impl Into<String>) -> Self {
        self.replica_id = Some(name.into());
        self
    }

    /// Whether to record every request for [`MockServer::requests`] (default: yes). A
    /// server that takes millions of requests (a load test, a benchmark) and is never asked
    /// for them should not: the record grows with every request.
    pub fn record_requests(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Binds the address and starts serving on a thread of its own.
    pub async fn start(self) -> io::Result<MockServer> {
        let listener = std::net::TcpListener::bind(self.addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let replica_id = match self.replica_id.map(HeaderValue::try_from) {
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the replica id is not a valid header value",
                ));
            }
            None => None,
        };
        let shared = Arc::new_cyclic(|me| Shared {
            config: Config {
                max_model_len: self.max_model_len,
                embedding_dimensions: self.embedding_dimensions,
                api_key: self.api_key,
            },
            started: now.as_secs(),
            seed: now.as_nanos() as u64 ^ (u64::from(addr.port()) << 48),
            counter: AtomicU64::new(0),
            state: Mutex::new(State {
                models: self.models,
                behaviors: HashMap::new(),
                adapters: Vec::new(),
                queue: VecDeque::new(),
                numbered: Vec::new(),
                per_path: HashMap::new(),
                received: 0,
                record: self.record,
                requests: Vec::new(),
            }),
            vocab: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            engine: Arc::new(Engine::new(self.timing)),
            replica_id,
            me: me.clone(),
        });
        let stop = Arc::new(Notify::new());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("vllm-mock-{}", addr.port()))
                .spawn(move || serve(listener, shared, stop, ready_tx))?
        };
        // The thread answers at once: its runtime and listener are ready, or failed.
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("the mock server's thread stopped")),
        }
        Ok(MockServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }
}

/// The server thread: a runtime of its own serving `listener` until `stop` is notified.
fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        tokio::select! {
            () = accept_loop(listener, shared) => {}
            () = stop.notified() => {}
        }
    });
    // Dropping the runtime drops every connection task: their sockets close.
    drop(runtime);
}

/// Accepts connections until the task is dropped.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one request.
async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<ReplyBody> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts.uri.path().to_owned();
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
        json: serde_json::from_slice(&body).ok(),
        aborted: false,
    };
    let authorization = recorded.header("authorization").map(str::to_owned);
    let content_type = recorded.header("content-type").map(str::to_owned);
    let index = {
        let mut state = shared.state();
        state.received += 1;
        if state.record {
            state.requests.push(recorded);
            Some(state.requests.len() - 1)
        } else {
            None
        }
    };

    let (mut reply, behavior) = routes::route(
        shared,
        &routes::Incoming {
            method: parts.method.as_str(),
            path: &path,
            authorization: authorization.as_deref(),
            content_type: content_type.as_deref(),
            body: &body,
        },
    );
    shared
        .metrics
        .http(routes::handler(&path), parts.method.as_str(), reply.status);
    if let Some(delay) = behavior.as_ref().and_then(|b| b.delay) {
        tokio::time::sleep(delay).await;
    }
    let mut pacing = None;
    if let Some(mut generation) = reply.generation.take() {
        if let Some(index) = index {
            generation.tracker.set_request(index);
        }
        if matches!(reply.payload, Payload::Stream(_)) {
            // The body paces its events.
            pacing = Some((shared.engine.clone(), generation.tracker));
        } else {
            // A whole answer goes out when its last token is made.
            generate_whole(&shared.engine, *generation).await;
        }
    }
    respond(shared, reply, behavior.as_ref(), pacing)
}

/// Waits as the engine takes to make a whole answer: a slot, the prefill, then every token
/// after the first. Dropped on the way (the client went away), the request counts as aborted.
async fn generate_whole(engine: &Arc<Engine>, generation: Generation) {
    let Generation {
        mut tracker,
        tokens,
    } = generation;
    let mut admission = engine.admit();
    let slot = std::future::poll_fn(|cx| admission.poll_slot(cx)).await;
    tracker.admitted(slot);
    let ttft = engine.timing.ttft_time();
    if !ttft.is_zero() {
        crate::clock::sleep_until(tokio::time::Instant::now() + ttft).await;
    }
    if tokens > 0 {
        if let Some(at) = engine.reserve(tokens) {
            crate::clock::sleep_until(at).await;
        }
        tracker.tokens(1);
        let rest = tokens - 1;
        let decode = engine.decode_time(rest);
        if !decode.is_zero() {
            crate::clock::sleep_until(tokio::time::Instant::now() + decode).await;
        }
        tracker.decoded(rest, decode.checked_div(rest).unwrap_or_default());
    }
    tracker.complete();
}

/// The response for `reply`, delivered as `behavior` says (and a stream paced by the engine).
fn respond(
    shared: &Shared,
    reply: Reply,
    behavior: Option<&Behavior>,
    pacing: Option<(Arc<Engine>, Tracker)>,
) -> Response<ReplyBody> {
    let (body, content_type) = ReplyBody::new(reply.payload, behavior, pacing);
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("vllm-mock"));
    if let Some(replica) = &shared.replica_id {
        headers.insert(REPLICA_ID, replica.clone());
    }
    if let Some(value) = content_type.and_then(|ct| HeaderValue::try_from(ct).ok()) {
        headers.insert(CONTENT_TYPE, value);
    }
    let extra = behavior.map(|b| b.headers.as_slice()).unwrap_or_default();
    for (name, value) in reply.headers.iter().chain(extra) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// The settings of a server.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) max_model_len: u32,
    pub(crate) embedding_dimensions: usize,
    pub(crate) api_key: Option<String>,
}

/// What the server's connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Unix time the server started, in seconds (the models' `created`).
    pub(crate) started: u64,
    seed: u64,
    counter: AtomicU64,
    state: Mutex<State>,
    /// The pieces seen so far by id, for `/detokenize`.
    vocab: Mutex<HashMap<u32, String>>,
    /// The counters of `/metrics`.
    pub(crate) metrics: Metrics,
    /// The simulated engine: slots and pacing.
    pub(crate) engine: Arc<Engine>,
    /// Sent as `x-replica-id` with every answer, when set.
    replica_id: Option<HeaderValue>,
    /// The server itself, for the trackers its requests hold.
    me: Weak<Shared>,
}

/// The scripts and the record.
#[derive(Debug)]
struct State {
    models: Vec<String>,
    adapters: Vec<Adapter>,
    behaviors: HashMap<String, Behavior>,
    queue: VecDeque<Behavior>,
    /// Behaviors for the n-th request (to their path, or to any).
    numbered: Vec<(usize, Behavior)>,
    /// Requests received so far, by path.
    per_path: HashMap<String, usize>,
    /// Requests received so far (since the last `clear_requests`).
    received: usize,
    /// Whether requests are recorded.
    record: bool,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// 16 fresh hex digits.
    pub(crate) fn hex16(&self) -> String {
        let mut state = self.seed ^ self.counter.fetch_add(1, Ordering::Relaxed).rotate_left(17);
        format!("{:016x}", splitmix64(&mut state))
    }

    /// `prefix` followed by 16 fresh hex digits.
    pub(crate) fn id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.hex16())
    }

    /// The behavior for this request to `path`: one for its number (counted per path and
    /// overall), else the first queued one for `path`, taken out of the queue.
    pub(crate) fn take_queued(&self, path: &str) -> Option<Behavior> {
        let mut state = self.state();
        let on_path = {
            let count = state.per_path.entry(path.to_owned()).or_default();
            *count += 1;
            *count
        };
        let overall = state.received;
        let numbered = state.numbered.iter().position(|(n, b)| match &b.path {
            Some(p) => p == path && *n == on_path,
            None => *n == overall,
        });
        if let Some(i) = numbered {
            return Some(state.numbered.remove(i).1);
        }
        let position = state.queue.iter().position(|b| b.matches(path))?;
        state.queue.remove(position)
    }

    /// Requests in flight in the engine (running and waiting), for `/load`.
    pub(crate) fn server_load(&self) -> usize {
        self.engine.running() + self.engine.waiting()
    }

    /// The behavior of `model` for a request to `path`, if it has one.
    pub(crate) fn model_behavior(&self, model: &str, path: &str) -> Option<Behavior> {
        self.state()
            .behaviors
            .get(model)
            .filter(|b| b.matches(path))
            .cloned()
    }

    /// The served models: the base models, then the LoRA adapters.
    pub(crate) fn models(&self) -> Vec<String> {
        let state = self.state();
        let adapters = state.adapters.iter().map(|a| a.name.clone());
        state.models.iter().cloned().chain(adapters).collect()
    }

    /// The base models.
    pub(crate) fn base_models(&self) -> Vec<String> {
        self.state().models.clone()
    }

    /// The loaded LoRA adapters, in the order they were loaded.
    pub(crate) fn adapters(&self) -> Vec<Adapter> {
        self.state().adapters.clone()
    }

    /// The base model of `model`: the parent of a LoRA adapter, else `model` itself.
    pub(crate) fn base_of(&self, model: &str) -> String {
        let state = self.state();
        if state.models.iter().any(|m| m == model) {
            return model.to_owned();
        }
        state
            .adapters
            .iter()
            .find(|a| a.name == model)
            .map_or_else(|| model.to_owned(), |a| a.parent.clone())
    }

    /// Loads the adapter `name` from `path` (replacing the one of that name when `in_place`).
    /// False: one of that name is loaded already (and `in_place` is not set).
    pub(crate) fn load_adapter(&self, name: &str, path: &str, in_place: bool) -> bool {
        let mut state = self.state();
        let parent = state.models.first().cloned().unwrap_or_default();
        match state.adapters.iter_mut().find(|a| a.name == name) {
            Some(_) if !in_place => false,
            Some(adapter) => {
                adapter.path = path.to_owned();
                true
            }
            None => {
                state.adapters.push(Adapter {
                    name: name.to_owned(),
                    path: path.to_owned(),
                    parent,
                });
                true
            }
        }
    }

    /// Unloads the adapter `name`. False: none of that name is loaded.
    pub(crate) fn unload_adapter(&self, name: &str) -> bool {
        let mut state = self.state();
        match state.adapters.iter().position(|a| a.name == name) {
            Some(position) => {
                state.adapters.remove(position);
                true
            }
            None => false,
        }
    }

    /// The model a request names (`None`: the first served model), or vLLM's `404`. A
    /// loaded LoRA adapter is a model.
    pub(crate) fn resolve_model(&self, requested: Option<&str>) -> Result<String, Reply> {
        let models = self.models();
        match requested {
            Some(name) if models.iter().any(|m| m == name) => Ok(name.to_owned()),
            None if !models.is_empty() => Ok(models[0].clone()),
            _ => {
                let name = requested.unwrap_or_default();
                let message = format!(
                    "The model `{name}` does not exist. Valid aliases: {}.",
                    models.join(", ")
                );
                Err(Reply::error(404, "NotFoundError", Some("model"), &message))
            }
        }
    }

    /// The model a request names ([`resolve_model`](Self::resolve_model)), with that model's
    /// behavior for `path` unless a queued one was taken already, and the reply it scripts
    /// instead of a real answer (an error), if any.
    pub(crate) fn model_and_script(
        &self,
        requested: Option<&str>,
        path: &str,
        behavior: &mut Option<Behavior>,
    ) -> Result<(String, Option<Reply>), Reply> {
        let model = self.resolve_model(requested)?;
        if behavior.is_none() {
            *behavior = self.model_behavior(&model, path);
        }
        let scripted = behavior
            .as_ref()
            .and_then(|b| b.error.as_ref())
            .map(|e| Reply::scripted(e.status, &e.content_type, &e.body));
        Ok((model, scripted))
    }

    /// Remembers the pieces of `text` for `/detokenize`.
    pub(crate) fn learn(&self, text: &str) {
        let mut vocab = self.vocab.lock().unwrap_or_else(|e| e.into_inner());
        for piece in tokenizer::pieces(text) {
            if vocab.len() >= MAX_VOCAB {
                return;
            }
            let id = tokenizer::token_id(piece);
            if id >= 256 {
                vocab.entry(id).or_insert_with(|| piece.to_owned());
            }
        }
    }

    /// The text of `ids`: one-byte ids are their byte, others must have been seen. Err: the
    /// first id that is not known.
    pub(crate) fn decode(&self, ids: &[u32]) -> Result<String, u32> {
        let vocab = self.vocab.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = Vec::new();
        for &id in ids {
            if let Ok(byte) = u8::try_from(id) {
                bytes.push(byte);
            } else if let Some(piece) = vocab.get(&id) {
                bytes.extend_from_slice(piece.as_bytes());
            } else {
                return Err(id);
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The text of `ids`, with ids not known left out.
    pub(crate) fn decode_lossy(&self, ids: &[u32]) -> String {
        let known: Vec<u32> = {
            let vocab = self.vocab.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .copied()
                .filter(|id| *id < 256 || vocab.contains_key(id))
                .collect()
        };
        self.decode(&known).unwrap_or_default()
    }

    /// A tracker for a generating request to `model` (resolved to its base model).
    pub(crate) fn tracker(
        &self,
        model: &str,
        prompt_tokens: u32,
        finishes: Vec<&'static str>,
    ) -> Tracker {
        let shared = self.me.upgrade().unwrap_or_else(|| {
            // The server is alive while it answers a request.
            unreachable!("a request outlived its server")
        });
        Tracker::new(&shared, self.base_of(model), prompt_tokens, finishes)
    }

    /// Marks recorded request number `index` as aborted by the client.
    pub(crate) fn mark_aborted(&self, index: usize) {
        if let Some(request) = self.state().requests.get_mut(index) {
            request.aborted = true;
        }
    }

    /// vLLM's `system_fingerprint`.
    pub(crate) fn fingerprint(&self) -> String {
        let hash = tokenizer::fnv1a(b"vllm-mock") as u32;
        format!("vllm-{VLLM_VERSION}-{hash:08x}")
    }
}

/// A LoRA adapter loaded through `POST /v1/load_lora_adapter`.
#[derive(Debug, Clone)]
pub(crate) struct Adapter {
    /// The name it is served under (a `model`).
    pub(crate) name: String,
    /// Where it was loaded from (its `root` in `/v1/models`).
    pub(crate) path: String,
    /// The base model it adapts (its `parent`).
    pub(crate) parent: String,
}

/// Unix time now, in seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
