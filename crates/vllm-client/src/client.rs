//! [`VllmClient`] and its [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use vllm_transport::Transport;

use crate::api::{Audio, EmbeddingsApi, Lora, Models, Pooling, Server, Tokenizer};
use crate::balance::{BalanceConfig, Balancer, ReplicaStatus};
use crate::chat::Chat;
use crate::completions::Completions;
use crate::error::VllmError;
use crate::head::ResponseHead;

/// The default for [`ClientBuilder::timeout`]: 10 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The default for [`ClientBuilder::connect_timeout`]: 10 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default for [`ClientBuilder::stream_idle_timeout`]: 5 minutes.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The default for [`ClientBuilder::health_check_interval`]: 5 seconds.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// The default for [`ClientBuilder::max_retries`].
pub const DEFAULT_MAX_RETRIES: u32 = 2;

const USER_AGENT: &str = concat!("vllm-client/", env!("CARGO_PKG_VERSION"));

/// A client for a vLLM server (or any OpenAI-compatible server).
///
/// Cheap to clone: clones share one connection pool, so make one client and clone it into
/// every task that needs it. It is `Send + Sync`.
///
/// ```no_run
/// use vllm_client::{VllmClient, json};
///
/// # async fn run() -> Result<(), vllm_client::VllmError> {
/// let client = VllmClient::new("http://localhost:8000/v1").timeout_secs(120);
/// let response = client.chat.completions().create()
///     .model("Qwen/Qwen2.5-7B-Instruct")
///     .messages(json!([{"role": "user", "content": "Hello!"}]))
///     .send()
///     .await?;
/// println!("{}", response.content.unwrap_or_default());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct VllmClient {
    /// Chat completions: `client.chat.completions().create()`.
    pub chat: Chat,
    /// Legacy completions: `client.completions.create()`.
    pub completions: Completions,
    /// Models: `client.models.list()`.
    pub models: Models,
    /// Embeddings: `client.embeddings.create()`.
    pub embeddings: EmbeddingsApi,
    /// The server's tokenizer: `client.tokenizer.tokenize()`, `.detokenize()`.
    pub tokenizer: Tokenizer,
    /// Pooling models: `client.pooling.pool()`, `.classify()`, `.score()`, `.rerank()`.
    pub pooling: Pooling,
    /// The server: `client.server.health()`, `.version()`, `.metrics()`.
    pub server: Server,
    /// LoRA adapters: `client.lora.load()`, `.unload()`.
    pub lora: Lora,
    /// Audio: `client.audio.transcriptions()`.
    pub audio: Audio,
    inner: Arc<ClientInner>,
}

/// What every request of a client shares.
pub(crate) struct ClientInner {
    pub(crate) base_url: String,
    /// With several base URLs: the replicas and their state.
    pub(crate) balancer: Option<Arc<Balancer>>,
    api_key: Option<String>,
    transport: Result<Transport, String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stream_idle_timeout: Option<Duration>,
    pub(crate) max_retries: u32,
    headers: HeaderMap,
}

impl ClientInner {
    /// The transport, or the reason it could not be built.
    pub(crate) fn transport(&self) -> Result<&Transport, VllmError> {
        self.transport.as_ref().map_err(|reason| {
            VllmError::builder(format!("the HTTP client could not be built: {reason}"))
        })
    }

    /// The headers every request carries: the defaults and the API key.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(key) = &self.api_key {
            if let Ok(mut value) = HeaderValue::try_from(format!("Bearer {key}")) {
                value.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, value);
            }
        }
        headers
    }
}

/// The URL of `route` under `base_url`: the base URL + path, or the server's root (the base
/// URL without a trailing `/v1`) + path.
pub(crate) fn route_url(base_url: &str, route: crate::request::Route<'_>) -> String {
    match route {
        crate::request::Route::Api(path) => {
            let mut url = String::with_capacity(base_url.len() + path.len());
            url.push_str(base_url);
            url.push_str(path);
            url
        }
        crate::request::Route::Root(path) => {
            let root = base_url.strip_suffix("/v1").unwrap_or(base_url);
            format!("{root}{path}")
        }
    }
}

impl VllmClient {
    /// A client for the server at `base_url` (e.g. `http://localhost:8000/v1`; a trailing `/`
    /// is trimmed), with the default configuration. An invalid URL is reported by the first
    /// request.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientBuilder::new().base_url(base_url).build()
    }

    /// A client configured from the environment: `VLLM_BASE_URL` (else `OPENAI_BASE_URL`, else
    /// `http://localhost:8000/v1`) and `VLLM_API_KEY` (else `OPENAI_API_KEY`).
    pub fn from_env() -> Self {
        ClientBuilder::new().from_env().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The same client (sharing the connection pool) sending `Authorization: Bearer <key>`.
    pub fn with_api_key(self, key: impl Into<String>) -> Self {
        self.reconfigure(|c| c.api_key = Some(key.into()))
    }

    /// The same client (sharing the connection pool) with a timeout of `secs` seconds: on the
    /// whole request, or for a stream on the wait for the response head (a long stream is not
    /// cut off by it; see [`ClientBuilder::stream_idle_timeout`]).
    pub fn timeout_secs(self, secs: u64) -> Self {
        self.reconfigure(|c| c.timeout = Some(Duration::from_secs(secs)))
    }

    /// The base URL, without a trailing `/` (the first one, with several).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Every base URL the client sends to: the one, or the replicas of
    /// [`ClientBuilder::base_urls`].
    pub fn base_urls(&self) -> Vec<&str> {
        match &self.inner.balancer {
            Some(balancer) => balancer.base_urls().collect(),
            None => vec![self.inner.base_url.as_str()],
        }
    }

    /// With several base URLs, each replica's state (ejected or not, this client's requests
    /// in flight there); with one, an empty list.
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        self.inner
            .balancer
            .as_ref()
            .map(|b| b.status())
            .unwrap_or_default()
    }

    /// The API key, if one is set.
    pub fn api_key(&self) -> Option<&str> {
        self.inner.api_key.as_deref()
    }

    /// How many tokens `model` can still generate after `messages`: its context length minus
    /// the exact prompt length, both from the server's `/tokenize` (the messages rendered
    /// through the chat template, with the generation prompt; the context length from
    /// `/v1/models` if `/tokenize` does not report it). Servers that refuse a prompt plus
    /// `max_tokens` beyond the context (older vLLM releases, other OpenAI-compatible
    /// servers) answer that with a 400; vLLM 0.32 accepts it and stops at the end of the
    /// context, and refuses only a `max_tokens` above the context length. Either way, this is
    /// the exact room left — for these messages alone: a request that also sends tools or
    /// chat template options has a longer prompt; count it with `client.tokenizer.tokenize()`
    /// and the same options.
    pub async fn max_tokens_for(
        &self,
        model: &str,
        messages: impl serde::Serialize,
    ) -> Result<u32, VllmError> {
        let tokens = self
            .tokenizer
            .tokenize()
            .model(model)
            .messages(messages)
            .add_generation_prompt(true)
            .send()
            .await?;
        let prompt = tokens.count.unwrap_or(tokens.tokens.len() as u32);
        let context = match tokens.max_model_len {
            Some(len) => len,
            None => {
                let models = self.models.list().send().await?;
                models
                    .get(model)
                    .and_then(|m| m.max_model_len)
                    .ok_or_else(|| {
                        VllmError::builder(format!(
                            "the server reports no context length for `{model}`"
                        ))
                    })?
            }
        };
        match context.checked_sub(prompt) {
            Some(left) if left > 0 => Ok(left),
            _ => Err(VllmError::builder(format!(
                "the prompt ({prompt} tokens) leaves no room in the context of `{model}` ({context} tokens)"
            ))),
        }
    }

    /// Sends `body`, JSON as it is, with `POST` to `path` on the server, with the client's
    /// headers, retries and timeout, and returns the answer's body as it came. `path` is
    /// relative to the server's root: `/v1/chat/completions`, `/tokenize` (the base URL
    /// without its `/v1`, as for every endpoint outside `/v1`).
    ///
    /// For endpoints this crate has no builder for, and for tools that pass request bodies
    /// through unchanged (a batch runner): nothing is checked or parsed on the way. A status
    /// outside `200..=299` is an error, with the server's message, as everywhere.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), vllm_client::VllmError> {
    /// let client = vllm_client::VllmClient::new("http://localhost:8000/v1");
    /// let answer = client
    ///     .post_raw("/v1/chat/completions", r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#)
    ///     .await?;
    /// let json: vllm_client::Value = answer.json()?;
    /// println!("{} ({:?})", json["choices"][0]["message"]["content"], answer.request_id());
    /// # Ok(()) }
    /// ```
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<bytes::Bytes>,
    ) -> Result<RawResponse, VllmError> {
        let route = crate::request::Route::Root(path);
        let core = crate::request::RequestCore::new(self.inner.clone(), ());
        let (body, head) = core.post_bytes(route, body.into()).await?;
        Ok(RawResponse { body, head })
    }

    /// `wanted` tokens, lowered to [`max_tokens_for`](Self::max_tokens_for) when the context
    /// has less room.
    pub async fn clamp_max_tokens(
        &self,
        model: &str,
        messages: impl serde::Serialize,
        wanted: u32,
    ) -> Result<u32, VllmError> {
        Ok(wanted.min(self.max_tokens_for(model, messages).await?))
    }

    fn from_inner(inner: ClientInner) -> Self {
        let inner = Arc::new(inner);
        VllmClient {
            chat: Chat::new(inner.clone()),
            completions: Completions::new(inner.clone()),
            models: Models::new(inner.clone()),
            embeddings: EmbeddingsApi::new(inner.clone()),
            tokenizer: Tokenizer::new(inner.clone()),
            pooling: Pooling::new(inner.clone()),
            server: Server::new(inner.clone()),
            lora: Lora::new(inner.clone()),
            audio: Audio::new(inner.clone()),
            inner,
        }
    }

    fn reconfigure(self, change: impl FnOnce(&mut ClientInner)) -> Self {
        let mut inner = ClientInner {
            base_url: self.inner.base_url.clone(),
            balancer: self.inner.balancer.clone(),
            api_key: self.inner.api_key.clone(),
            transport: self.inner.transport.clone(),
            timeout: self.inner.timeout,
            stream_idle_timeout: self.inner.stream_idle_timeout,
            max_retries: self.inner.max_retries,
            headers: self.inner.headers.clone(),
        };
        change(&mut inner);
        Self::from_inner(inner)
    }
}

/// An answer as it came: its body, not parsed, and its head
/// ([`VllmClient::post_raw`]).
#[derive(Debug, Clone)]
pub struct RawResponse {
    body: bytes::Bytes,
    head: ResponseHead,
}

impl RawResponse {
    /// The body, as it came.
    pub fn body(&self) -> &bytes::Bytes {
        &self.body
    }

    /// The body, by value.
    pub fn into_body(self) -> bytes::Bytes {
        self.body
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, VllmError> {
        crate::request::parse_body("the response", &self.body)
    }

    /// The status and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The response headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.head.headers()
    }

    /// The server's id for the request (its `x-request-id` header).
    pub fn request_id(&self) -> Option<&str> {
        self.head.request_id()
    }
}

impl fmt::Debug for VllmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VllmClient")
            .field("base_url", &self.base_url)
            .field("replicas", &self.balancer)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Configures a [`VllmClient`].
///
/// ```
/// use std::time::Duration;
/// use vllm_client::VllmClient;
///
/// let client = VllmClient::builder()
///     .base_url("http://localhost:8000/v1/")
///     .api_key("sk-local")
///     .timeout_secs(300)
///     .connect_timeout(Duration::from_secs(5))
///     .max_retries(4)
///     .header("x-team", "search")
///     .build();
/// assert_eq!(client.base_url(), "http://localhost:8000/v1");
/// assert!(!format!("{client:?}").contains("sk-local"));
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    stream_idle_timeout: Option<Duration>,
    max_retries: u32,
    headers: HeaderMap,
    error: Option<String>,
    #[cfg(feature = "rustls")]
    native_roots: bool,
    #[cfg(feature = "rustls")]
    accept_invalid_certs: bool,
    #[cfg(feature = "rustls")]
    root_certificates: Vec<Vec<u8>>,
    proxy: Proxy,
    /// Every base URL given to `base_urls` (empty: only `base_url`).
    replicas: Vec<String>,
    balance: BalanceConfig,
}

/// Which proxy a client uses.
#[derive(Clone, Default)]
enum Proxy {
    /// The environment's (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    #[default]
    Env,
    /// This URL.
    Url(String),
    /// None.
    Off,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// The defaults: `http://localhost:8000/v1`, no API key, the `DEFAULT_*` timeouts and
    /// retries of this crate.
    pub fn new() -> Self {
        ClientBuilder {
            base_url: "http://localhost:8000/v1".into(),
            api_key: None,
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            stream_idle_timeout: Some(DEFAULT_STREAM_IDLE_TIMEOUT),
            max_retries: DEFAULT_MAX_RETRIES,
            headers: HeaderMap::new(),
            error: None,
            #[cfg(feature = "rustls")]
            native_roots: false,
            #[cfg(feature = "rustls")]
            accept_invalid_certs: false,
            #[cfg(feature = "rustls")]
            root_certificates: Vec::new(),
            proxy: Proxy::Env,
            replicas: Vec::new(),
            balance: BalanceConfig {
                health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
                by_load: false,
            },
        }
    }

    /// The server's base URL, including `/v1` (a trailing `/` is trimmed).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.base_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// Several servers serving the same models (vLLM replicas, each URL with its `/v1`):
    /// the client spreads its requests over them itself, without a router. A request with
    /// a session key ([`session_id`](Self::session_id) or [`user`](Self::user), here or on
    /// the request) always goes to the same replica while it is healthy (rendezvous
    /// hashing: when a replica leaves, only its sessions move), so a conversation keeps its
    /// prefix cache; any other goes to the less busy of two replicas picked at random (its
    /// requests in flight from this client, or also the replica's `/load` with
    /// [`balance_by_load`](Self::balance_by_load)). A replica that refuses connections or
    /// fails its `/health` check is ejected until it answers again; a request that failed
    /// before any response byte (refused, or its connection dropped), or with a retryable
    /// status,
    /// is retried on another replica at once (counted in [`max_retries`](Self::max_retries);
    /// an LLM request that was dropped before its answer can be sent again, as
    /// openai-python does). A stream that fails after its head is not retried. One URL is
    /// the same as [`base_url`](Self::base_url).
    ///
    /// ```
    /// let client = vllm_client::VllmClient::builder()
    ///     .base_urls(["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"])
    ///     .build();
    /// assert_eq!(client.base_urls().len(), 2);
    /// ```
    pub fn base_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.replicas = urls
            .into_iter()
            .map(|url| url.into().trim_end_matches('/').to_owned())
            .collect();
        if let Some(first) = self.replicas.first() {
            self.base_url = first.clone();
        } else {
            self.error
                .get_or_insert_with(|| "`base_urls` needs at least one URL".into());
        }
        self
    }

    /// How often each replica's `/health` is checked, with [`base_urls`](Self::base_urls)
    /// (an ejected one is asked again after this, then after twice and four times as long,
    /// up to a minute). Default: [`DEFAULT_HEALTH_CHECK_INTERVAL`].
    pub fn health_check_interval(mut self, interval: Duration) -> Self {
        self.balance.health_check_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// With [`base_urls`](Self::base_urls), weigh each replica by the larger of this
    /// client's requests in flight there and the replica's own count from vLLM's `/load`
    /// (read with each health check), so requests from other clients count too.
    pub fn balance_by_load(mut self, enable: bool) -> Self {
        self.balance.by_load = enable;
        self
    }

    /// Sends `X-Session-ID: id` with every request (unless the request sets its own), the
    /// header routers hash for session affinity: vllm-router's `consistent_hash` policy
    /// reads it first (then `X-User-ID`), as SGLang's router does; with
    /// [`base_urls`](Self::base_urls) this client routes on it the same way. For one
    /// conversation, set it on the request instead (`.session_id(..)`).
    pub fn session_id(self, id: impl AsRef<str>) -> Self {
        self.header(crate::balance::SESSION_ID_HEADER, id)
    }

    /// Sends `X-User-ID: id` with every request (unless the request sets its own): the key
    /// routers fall back to without a session id (vllm-router's `consistent_hash`, and the
    /// header production-stack's session router is usually pointed at).
    pub fn user(self, id: impl AsRef<str>) -> Self {
        self.header(crate::balance::USER_ID_HEADER, id)
    }

    /// The API key, sent as `Authorization: Bearer <key>`. It never appears in `Debug`
    /// output, logs or errors.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Reads `VLLM_BASE_URL` (else `OPENAI_BASE_URL`) and `VLLM_API_KEY` (else
    /// `OPENAI_API_KEY`) where set and not empty.
    pub fn from_env(mut self) -> Self {
        if let Some(url) = env_var("VLLM_BASE_URL").or_else(|| env_var("OPENAI_BASE_URL")) {
            self = self.base_url(url);
        }
        if let Some(key) = env_var("VLLM_API_KEY").or_else(|| env_var("OPENAI_API_KEY")) {
            self = self.api_key(key);
        }
        self
    }

    /// The timeout of a request: on the whole request, or for a stream on the wait for the
    /// response head. `None` turns it off. Default: [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// [`timeout`](Self::timeout) in seconds.
    pub fn timeout_secs(self, secs: u64) -> Self {
        self.timeout(Duration::from_secs(secs))
    }

    /// The timeout on opening a connection (TCP and TLS). Default: [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// The longest gap allowed between two pieces of a stream's body. Default:
    /// [`DEFAULT_STREAM_IDLE_TIMEOUT`].
    pub fn stream_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.stream_idle_timeout = timeout.into();
        self
    }

    /// How many times a failed request is retried (connect errors and the statuses 408,
    /// 429, 500, 502, 503, 504; with exponential backoff and jitter, honouring
    /// `Retry-After`). 0 turns retries off. Default: [`DEFAULT_MAX_RETRIES`].
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// A header sent with every request. An invalid name or value is reported by the first
    /// request.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        match (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.as_ref()),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => {
                self.error
                    .get_or_insert_with(|| format!("invalid default header `{name}`"));
            }
        }
        self
    }

    /// Sends every request through the HTTP proxy at `url` (`http://host:port`, with
    /// `user:password@` for a proxy that asks for credentials, sent as
    /// `Proxy-Authorization`), except requests to hosts in `NO_PROXY`: `http://` requests are
    /// forwarded by the proxy, `https://` ones go through a `CONNECT` tunnel with TLS inside.
    /// The credentials never appear in `Debug` output or errors. An invalid URL, or one that is
    /// not `http://`, is reported by the first request.
    ///
    /// Without this, the client uses the proxies the environment names, as curl and reqwest
    /// do: `HTTP_PROXY` for `http://` servers, `HTTPS_PROXY` for `https://` ones, `ALL_PROXY`
    /// for both, `NO_PROXY` for the hosts to reach directly (lower-case names too).
    pub fn proxy(mut self, url: impl AsRef<str>) -> Self {
        self.proxy = Proxy::Url(url.as_ref().to_owned());
        self
    }

    /// Sends every request directly, whatever the environment says about proxies.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = Proxy::Off;
        self
    }

    /// Trusts this root certificate as well (a private CA, or a self-signed server's
    /// certificate): PEM (one or more `CERTIFICATE` blocks) or DER. One that does not parse is
    /// reported by the first request.
    #[cfg(feature = "rustls")]
    pub fn add_root_certificate(mut self, pem_or_der: impl AsRef<[u8]>) -> Self {
        self.root_certificates.push(pem_or_der.as_ref().to_vec());
        self
    }

    /// Trust the operating system's certificate store instead of the bundled webpki roots.
    #[cfg(feature = "rustls")]
    pub fn native_roots(mut self, native: bool) -> Self {
        self.native_roots = native;
        self
    }

    /// Accept any TLS certificate, including invalid or self-signed ones. Dangerous: anyone
    /// between the client and the server can read and change the traffic.
    #[cfg(feature = "rustls")]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Builds the client. A configuration error (an invalid header, a TLS setup failure) is
    /// reported by the first request; [`try_build`](Self::try_build) reports it here.
    pub fn build(self) -> VllmClient {
        let error = self.error.clone();
        let mut transport = Transport::builder()
            .connect_timeout(self.connect_timeout)
            .max_retries(self.max_retries)
            .user_agent(USER_AGENT);
        #[cfg(feature = "rustls")]
        {
            if self.native_roots {
                transport = transport.tls_roots(vllm_transport::TlsRoots::Native);
            }
            for cert in &self.root_certificates {
                transport = transport.add_root_certificate(cert);
            }
            transport = transport.danger_accept_invalid_certs(self.accept_invalid_certs);
        }
        transport = match &self.proxy {
            Proxy::Env => transport.proxy_from_env(),
            Proxy::Url(url) => transport.proxy(url.clone()),
            Proxy::Off => transport.no_proxy(),
        };
        let transport = match error {
            Some(e) => Err(e),
            None => transport.build().map_err(|e| e.to_string()),
        };
        let balancer =
            (self.replicas.len() > 1).then(|| Arc::new(Balancer::new(self.replicas, self.balance)));
        VllmClient::from_inner(ClientInner {
            base_url: self.base_url,
            balancer,
            api_key: self.api_key,
            transport,
            timeout: self.timeout,
            stream_idle_timeout: self.stream_idle_timeout,
            max_retries: self.max_retries,
            headers: self.headers,
        })
    }

    /// Builds the client, or says why it cannot be built.
    pub fn try_build(self) -> Result<VllmClient, VllmError> {
        let client = self.build();
        client.inner.transport()?;
        Ok(client)
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("max_retries", &self.max_retries)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proxy::Env => f.write_str("from the environment"),
            Proxy::Off => f.write_str("none"),
            // Without the credentials the URL may hold.
            Proxy::Url(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "http://***@{host}"),
                None => f.write_str(url),
            },
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
