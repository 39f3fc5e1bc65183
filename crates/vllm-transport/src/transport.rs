//! The pooled client, its builder, and request execution (timeouts and retries).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::uri::Scheme;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::connect::Connector;
use crate::direct::{DirectPool, DirectRequest};
use crate::error::{ConnectTimedOut, TimeoutKind, TransportError, find_in_chain};
use crate::proxy::ProxySetting;
use crate::response::{BodyStream, Deadline, Response, collect_truncated};
use crate::retry::Backoff;

/// Default connect timeout (DNS, TCP and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout of a call (all attempts, and reading a buffered body).
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Default idle timeout between two chunks of a response body.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default delay before the first retry (before jitter); it doubles with each retry.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Default cap on the backoff delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Default cap on a server-requested `Retry-After` / `retry-after-ms` delay.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(60);
/// Default limit on a buffered response body ([`Response::bytes`]): 128 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 128 * 1024 * 1024;
/// Default limit on the body kept with a status error: 1 MiB.
pub const DEFAULT_MAX_ERROR_BODY_SIZE: usize = 1024 * 1024;
/// Default time an idle pooled connection is kept open: 4 s, below the 5 s after which
/// uvicorn (which vLLM's server runs on) and Node close idle keep-alive connections, so the
/// client gives up a connection before the server does rather than racing it.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The `User-Agent` sent unless overridden: `vllm-transport/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("vllm-transport/", env!("CARGO_PKG_VERSION"));

/// Header names whose values are marked sensitive (hidden from `Debug`) when set as headers.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// Where the trusted root certificates for `https://` come from.
#[cfg(feature = "rustls")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's root store compiled into the binary (the `webpki-roots` crate).
    #[default]
    WebPki,
    /// The operating system's trust store, loaded when the transport is built (honours
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`). Building fails if none can be loaded.
    Native,
}

/// An HTTP client for JSON requests with a shared connection pool.
///
/// Cheap to clone: clones share the pool and the configuration, and it is `Send + Sync`,
/// so one transport can serve many tasks. Keeps connections alive and reuses them,
/// speaks HTTP/1.1, and HTTP/2 when a TLS server offers it (ALPN).
///
/// Make one with [`Transport::builder`], then send requests with [`Transport::post`],
/// [`Transport::get`] or [`Transport::request`].
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    /// `https://` requests (TLS, HTTP/2 over ALPN).
    client: Client<Connector, Full<Bytes>>,
    /// `http://` requests: HTTP/1.1 connections whose bodies are read without a task in
    /// between (see the `direct` module).
    direct: Arc<DirectPool>,
    connector: Connector,
    /// Which requests go through which proxy (`None`: none do).
    proxies: Option<Arc<Matcher>>,
    config: Config,
}

struct Config {
    connect_timeout: Option<Duration>,
    response_head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    max_retries: u32,
    backoff: Backoff,
    /// Default headers, `User-Agent` and the `Authorization` built from the API key
    /// (marked sensitive).
    headers: HeaderMap,
    max_body_size: usize,
    max_error_body_size: usize,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
}

impl Transport {
    /// Starts configuring a transport.
    pub fn builder() -> TransportBuilder {
        TransportBuilder::new()
    }

    /// Starts a request with the given method and absolute `http://` or `https://` URL.
    ///
    /// An invalid URL is reported by [`RequestBuilder::send`].
    pub fn request<U>(&self, method: Method, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let (uri, error) = match url.try_into() {
            Ok(uri) => (Some(uri), None),
            Err(err) => (
                None,
                Some(TransportError::builder_with("invalid URL", err.into())),
            ),
        };
        RequestBuilder {
            transport: self.clone(),
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            total_timeout: None,
            response_head_timeout: None,
            idle_timeout: None,
            max_retries: None,
            error,
        }
    }

    /// How long to wait before retry number `retry` (0 for the first) after an error with
    /// these response `headers`: the configured exponential backoff with jitter, or the
    /// server's `Retry-After` / `retry-after-ms` (capped). The transport waits this long
    /// between its own attempts; a caller that retries itself (on another server, say) uses
    /// it to keep the same policy.
    pub fn retry_delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        self.shared.config.backoff.delay(retry, headers)
    }

    /// Starts a `POST` request; see [`request`](Self::request).
    pub fn post<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::POST, url)
    }

    /// Starts a `GET` request; see [`request`](Self::request).
    pub fn get<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::GET, url)
    }

    async fn execute(&self, req: Prepared, opts: Options) -> Result<Response, TransportError> {
        #[cfg(feature = "tracing")]
        {
            use tracing::Instrument as _;
            let span = tracing::info_span!(
                "vllm.request",
                method = %req.method,
                path = req.uri.path(),
                status = tracing::field::Empty,
                attempts = tracing::field::Empty,
                retries = tracing::field::Empty,
                ttfb_ms = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            let started = Instant::now();
            let (result, retries) = self.attempts(&req, &opts).instrument(span.clone()).await;
            span.record("attempts", retries + 1);
            span.record("retries", retries);
            match &result {
                Ok(response) => {
                    span.record("status", response.status().as_u16());
                    span.record("ttfb_ms", started.elapsed().as_secs_f64() * 1e3);
                }
                Err(err) => {
                    if let Some(status) = err.status() {
                        span.record("status", status.as_u16());
                    }
                    span.record("error", tracing::field::display(err));
                }
            }
            result
        }
        #[cfg(not(feature = "tracing"))]
        {
            self.attempts(&req, &opts).await.0
        }
    }

    /// Sends `req`, retrying as `opts` allow; returns the result and how many retries it took.
    async fn attempts(
        &self,
        req: &Prepared,
        opts: &Options,
    ) -> (Result<Response, TransportError>, u32) {
        let config = &self.shared.config;
        // A timeout too large to add to the clock is no timeout at all.
        let deadline = opts.total_timeout.and_then(|total| {
            Some(Deadline {
                at: Instant::now().checked_add(total)?,
                total,
            })
        });
        let mut retry = 0u32;
        loop {
            let err = match self.attempt(req, opts, deadline).await {
                Ok(response) => return (Ok(response), retry),
                Err(err) => err,
            };
            if retry >= opts.max_retries || !err.is_retryable() {
                return (Err(err), retry);
            }
            let delay = config.backoff.delay(retry, err.headers());
            if let Some(deadline) = deadline {
                if Instant::now()
                    .checked_add(delay)
                    .is_none_or(|at| at >= deadline.at)
                {
                    trace_debug!(
                        method = %req.method,
                        host = req.uri.host().unwrap_or_default(),
                        path = req.uri.path(),
                        error = %err,
                        "not retrying: the total timeout would pass before the next attempt",
                    );
                    return (Err(err), retry);
                }
            }
            retry += 1;
            trace_info!(
                method = %req.method,
                host = req.uri.host().unwrap_or_default(),
                path = req.uri.path(),
                retry,
                max_retries = opts.max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying request",
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: waits for the response head under the response head timeout and the
    /// total deadline; a non-success status becomes a status error with its body.
    async fn attempt(
        &self,
        req: &Prepared,
        opts: &Options,
        deadline: Option<Deadline>,
    ) -> Result<Response, TransportError> {
        let config = &self.shared.config;
        let head_limit = opts.response_head_timeout.and_then(|after| {
            let at = Instant::now().checked_add(after)?;
            Some((at, TimeoutKind::ResponseHead, after))
        });
        let total_limit = deadline.map(|d| (d.at, TimeoutKind::Total, d.total));
        let limit = match (head_limit, total_limit) {
            (Some(head), Some(total)) => Some(if total.0 <= head.0 { total } else { head }),
            (head, total) => head.or(total),
        };

        let pending = self.head(req, opts.idle_timeout);
        let (parts, mut body) = match limit {
            Some((at, kind, after)) => match tokio::time::timeout_at(at, pending).await {
                Ok(result) => result?,
                Err(_elapsed) => return Err(TransportError::timeout(kind, after)),
            },
            None => pending.await?,
        };
        if parts.status.is_success() {
            return Ok(Response::new(parts, body, deadline, config.max_body_size));
        }

        let mut buf = BytesMut::new();
        let read = collect_truncated(&mut body, &mut buf, config.max_error_body_size);
        match deadline {
            Some(deadline) => {
                // On timeout, keep what arrived: the status is the more useful error.
                let _ = tokio::time::timeout_at(deadline.at, read).await;
            }
            None => read.await,
        }
        Err(TransportError::new_status(
            req.method.clone(),
            req.uri.path(),
            parts.status,
            parts.headers,
            buf.freeze(),
        ))
    }

    /// Sends the request and waits for the response head: `http://` on the direct path,
    /// `https://` through hyper-util's pooled client.
    async fn head(
        &self,
        req: &Prepared,
        idle_timeout: Option<Duration>,
    ) -> Result<(http::response::Parts, BodyStream), TransportError> {
        if req.uri.scheme() == Some(&Scheme::HTTP) {
            let proxy = match self.shared.proxies.as_deref() {
                Some(matcher) => crate::proxy::route(matcher, &req.uri)?,
                None => None,
            };
            let direct = DirectRequest {
                method: &req.method,
                uri: &req.uri,
                headers: &req.headers,
                body: &req.body,
                proxy: proxy.as_ref(),
            };
            let (parts, body) =
                crate::direct::send(&self.shared.direct, &self.shared.connector, direct).await?;
            return Ok((parts, BodyStream::direct(body, idle_timeout)));
        }
        let mut resent = false;
        let response = loop {
            let mut request = http::Request::new(Full::new(req.body.clone()));
            *request.method_mut() = req.method.clone();
            *request.uri_mut() = req.uri.clone();
            *request.headers_mut() = req.headers.clone();
            match self.shared.client.request(request).await {
                Ok(response) => break response,
                // hyper-util resends a request its pooled connection never took; one the
                // server closed the connection on without a byte of an answer (its
                // keep-alive timeout racing the request) goes out once more here, on
                // another connection, as on the direct path (see `direct`'s docs for why
                // that is safe for this API).
                Err(err) if !resent && closed_without_answer(&err) => {
                    trace_debug!(error = %err, "connection closed without an answer; sending again");
                    resent = true;
                }
                Err(err) => return Err(client_error(err)),
            }
        };
        let (parts, incoming) = response.into_parts();
        Ok((parts, BodyStream::new(incoming, idle_timeout)))
    }
}

/// Whether the pooled client's connection closed before any byte of the answer.
fn closed_without_answer(err: &hyper_util::client::legacy::Error) -> bool {
    !err.is_connect()
        && find_in_chain::<hyper::Error>(err).is_some_and(hyper::Error::is_incomplete_message)
}

/// Classifies an error from the pooled client.
fn client_error(err: hyper_util::client::legacy::Error) -> TransportError {
    if err.is_connect() {
        if let Some(timed_out) = find_in_chain::<ConnectTimedOut>(&err) {
            return TransportError::timeout(TimeoutKind::Connect, timed_out.0);
        }
        TransportError::connect(Box::new(err))
    } else {
        TransportError::request(Box::new(err))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `headers` holds the API key as a sensitive value, which `HeaderMap` prints as
        // `Sensitive`.
        f.debug_struct("Config")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_head_timeout", &self.response_head_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("headers", &self.headers)
            .field("max_body_size", &self.max_body_size)
            .field("max_error_body_size", &self.max_error_body_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .finish()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Transport`].
///
/// Setters never fail: the first invalid value (a header that is not a valid header value,
/// for example) is kept and returned by [`build`](TransportBuilder::build).
///
/// Timeout setters take a `Duration` to set, or `None` to turn the timeout off.
#[must_use = "a builder does nothing until `build()` is called"]
pub struct TransportBuilder {
    connect_timeout: Option<Duration>,
    response_head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    max_retries: u32,
    backoff: Backoff,
    default_headers: HeaderMap,
    api_key: Option<HeaderValue>,
    user_agent: HeaderValue,
    max_body_size: usize,
    max_error_body_size: usize,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    #[cfg(feature = "rustls")]
    tls_roots: TlsRoots,
    #[cfg(feature = "rustls")]
    accept_invalid_certs: bool,
    #[cfg(feature = "rustls")]
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    proxy: ProxySetting,
    error: Option<TransportError>,
}

impl Default for TransportBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TransportBuilder {
    /// A builder with the defaults: connect timeout 10 s, no response head timeout, idle
    /// timeout 300 s, total timeout 600 s, 2 retries with backoff from 500 ms up to 8 s,
    /// `Retry-After` capped at 60 s, buffered bodies up to 128 MiB, error bodies kept up to
    /// 1 MiB, idle pooled connections kept 4 s with no per-host limit, `User-Agent`
    /// [`DEFAULT_USER_AGENT`], and (with the `rustls` feature) webpki roots.
    pub fn new() -> Self {
        TransportBuilder {
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            response_head_timeout: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            total_timeout: Some(DEFAULT_TOTAL_TIMEOUT),
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: Backoff {
                base: DEFAULT_BACKOFF_BASE,
                max: DEFAULT_BACKOFF_MAX,
                retry_after_max: DEFAULT_RETRY_AFTER_MAX,
            },
            default_headers: HeaderMap::new(),
            api_key: None,
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_error_body_size: DEFAULT_MAX_ERROR_BODY_SIZE,
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            pool_max_idle_per_host: usize::MAX,
            #[cfg(feature = "rustls")]
            tls_roots: TlsRoots::WebPki,
            #[cfg(feature = "rustls")]
            accept_invalid_certs: false,
            #[cfg(feature = "rustls")]
            extra_roots: Vec::new(),
            proxy: ProxySetting::Env,
            error: None,
        }
    }

    fn fail(mut self, err: TransportError) -> Self {
        self.error.get_or_insert(err);
        self
    }

    /// Bounds establishing a connection: DNS, TCP connect and TLS handshake together.
    /// Fails with [`TimeoutKind::Connect`]. Default 10 s.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// Bounds each attempt from sending the request (including getting a connection) to
    /// receiving the response head. Fails with [`TimeoutKind::ResponseHead`]. Default: off
    /// (the total timeout still applies).
    pub fn response_head_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.response_head_timeout = timeout.into();
        self
    }

    /// Bounds the wait for each chunk of a response body, buffered or streamed. Fails with
    /// [`TimeoutKind::Idle`]. Default 300 s.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Bounds a whole call: from `send()` through every attempt and backoff wait to the
    /// response head, and on through [`Response::bytes`] for buffered bodies. A streamed
    /// body ([`Response::into_body`], [`Response::into_events`]) is not bounded by it, only
    /// by the idle timeout. Fails with [`TimeoutKind::Total`]. Default 600 s.
    pub fn total_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.total_timeout = timeout.into();
        self
    }

    /// How many times a failed attempt is retried (connect errors and statuses 408, 429,
    /// 500, 502, 503, 504). Default 2; 0 turns retries off.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The delay before the first retry, doubled for each further retry, with jitter (each
    /// delay is drawn from `[d/2, d]`). Default 500 ms.
    pub fn backoff_base(mut self, base: Duration) -> Self {
        self.backoff.base = base;
        self
    }

    /// The cap on the backoff delay (before jitter). Default 8 s.
    pub fn backoff_max(mut self, max: Duration) -> Self {
        self.backoff.max = max;
        self
    }

    /// The cap on a delay the server asks for with `Retry-After` or `retry-after-ms`, which
    /// replaces the backoff delay when present. Default 60 s.
    pub fn retry_after_max(mut self, max: Duration) -> Self {
        self.backoff.retry_after_max = max;
        self
    }

    /// Adds a header sent with every request (a request's own headers replace it).
    /// Values of `Authorization`-like headers are marked sensitive.
    pub fn default_header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        match header_pair(name, value) {
            Ok((name, value)) => {
                let mut this = self;
                this.default_headers.append(name, value);
                this
            }
            Err(err) => self.fail(err),
        }
    }

    /// Adds headers sent with every request (replacing earlier default headers of the same
    /// names). Values of `Authorization`-like headers are marked sensitive.
    pub fn default_headers(mut self, headers: HeaderMap) -> Self {
        self.default_headers.extend(mark_sensitive(headers));
        self
    }

    /// Sends `Authorization: Bearer <key>` with every request.
    ///
    /// The value is marked sensitive: it never appears in `Debug` output, errors or logs.
    pub fn api_key(self, key: impl AsRef<str>) -> Self {
        match HeaderValue::try_from(format!("Bearer {}", key.as_ref())) {
            Ok(mut value) => {
                value.set_sensitive(true);
                let mut this = self;
                this.api_key = Some(value);
                this
            }
            // The error says nothing about the value, so the key cannot leak through it.
            Err(_) => self.fail(TransportError::builder(
                "the API key contains characters not allowed in a header",
            )),
        }
    }

    /// The `User-Agent` header. Default [`DEFAULT_USER_AGENT`].
    pub fn user_agent<V>(self, value: V) -> Self
    where
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                let mut this = self;
                this.user_agent = value;
                this
            }
            Err(err) => self.fail(TransportError::builder_with(
                "invalid User-Agent header value",
                err.into(),
            )),
        }
    }

    /// The largest body [`Response::bytes`] accepts. Default 128 MiB.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// How much of a non-success response's body is kept in the status error. Default 1 MiB.
    pub fn max_error_body_size(mut self, bytes: usize) -> Self {
        self.max_error_body_size = bytes;
        self
    }

    /// How long an unused pooled connection is kept for reuse. Default 4 s
    /// ([`DEFAULT_POOL_IDLE_TIMEOUT`], below common servers' keep-alive); `None` keeps
    /// idle connections until the server closes them. (`http://` connections past it are
    /// closed when the pool is next used for their host, not by a timer; one the server
    /// closed is never reused.)
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// The most idle connections kept per host. Default unlimited; 0 disables reuse.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Where trusted root certificates come from. Default [`TlsRoots::WebPki`].
    #[cfg(feature = "rustls")]
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }

    /// Trusts this root certificate too (a private CA, or a self-signed server certificate),
    /// besides the [`tls_roots`](Self::tls_roots): PEM (one or more `CERTIFICATE` blocks) or
    /// DER. One that does not parse is an error from [`build`](Self::build).
    #[cfg(feature = "rustls")]
    pub fn add_root_certificate(mut self, pem_or_der: impl AsRef<[u8]>) -> Self {
        match crate::connect::parse_certificates(pem_or_der.as_ref()) {
            Ok(certs) => {
                self.extra_roots.extend(certs);
                self
            }
            Err(err) => self.fail(err),
        }
    }

    /// Turns off verification of server certificates when `true`.
    ///
    /// **Dangerous**: any server can then impersonate the one you meant to reach. Only for
    /// local testing against self-signed certificates. Default `false`.
    #[cfg(feature = "rustls")]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Sends every request through the HTTP proxy at `url` (`http://host:port`, with
    /// `user:password@` for a proxy that wants `Proxy-Authorization`), except requests to
    /// the hosts in `NO_PROXY`. `http://` requests are forwarded by the proxy; `https://`
    /// ones go through a `CONNECT` tunnel, TLS inside. The credentials never appear in
    /// `Debug` output or errors. An invalid URL, or one that is not `http://`, is an error
    /// from [`build`](Self::build).
    ///
    /// Default: the proxies the environment names, as curl reads them (`HTTP_PROXY`,
    /// `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, or their lower-case forms), read when the
    /// transport is built.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Url(url.into());
        self
    }

    /// Sends every request directly, whatever the environment says about proxies.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Off;
        self
    }

    /// Uses the proxies the environment names (the default; see [`proxy`](Self::proxy)).
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxySetting::Env;
        self
    }

    /// Builds the transport, or returns the first configuration error.
    ///
    /// Does not need a running Tokio runtime; requests do.
    pub fn build(self) -> Result<Transport, TransportError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let proxies = self.proxy.matcher()?;
        #[cfg(feature = "rustls")]
        let connector = Connector::new(
            self.connect_timeout,
            proxies.clone(),
            crate::connect::tls_config(
                self.tls_roots,
                &self.extra_roots,
                self.accept_invalid_certs,
            )?,
        );
        #[cfg(not(feature = "rustls"))]
        let connector = Connector::new(self.connect_timeout, proxies.clone());

        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host);
        let client = builder.build(connector.clone());
        let direct = Arc::new(DirectPool::new(
            self.pool_idle_timeout,
            self.pool_max_idle_per_host,
        ));

        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, self.user_agent);
        if let Some(key) = self.api_key {
            headers.insert(AUTHORIZATION, key);
        }
        headers.extend(self.default_headers);

        Ok(Transport {
            shared: Arc::new(Shared {
                client,
                direct,
                connector,
                proxies,
                config: Config {
                    connect_timeout: self.connect_timeout,
                    response_head_timeout: self.response_head_timeout,
                    idle_timeout: self.idle_timeout,
                    total_timeout: self.total_timeout,
                    max_retries: self.max_retries,
                    backoff: self.backoff,
                    headers,
                    max_body_size: self.max_body_size,
                    max_error_body_size: self.max_error_body_size,
                    pool_idle_timeout: self.pool_idle_timeout,
                    pool_max_idle_per_host: self.pool_max_idle_per_host,
                },
            }),
        })
    }
}

impl fmt::Debug for TransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TransportBuilder");
        d.field("connect_timeout", &self.connect_timeout)
            .field("response_head_timeout", &self.response_head_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("default_headers", &self.default_headers)
            // Only whether there is one: the value is a secret.
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("user_agent", &self.user_agent)
            .field("max_body_size", &self.max_body_size)
            .field("max_error_body_size", &self.max_error_body_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host);
        #[cfg(feature = "rustls")]
        d.field("tls_roots", &self.tls_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("accept_invalid_certs", &self.accept_invalid_certs);
        d.field("proxy", &self.proxy)
            .field("error", &self.error)
            .finish()
    }
}

fn header_pair<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue), TransportError>
where
    HeaderName: TryFrom<K>,
    <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    HeaderValue: TryFrom<V>,
    <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
{
    let name = HeaderName::try_from(name)
        .map_err(|e| TransportError::builder_with("invalid header name", e.into()))?;
    let mut value = HeaderValue::try_from(value)
        .map_err(|e| TransportError::builder_with("invalid header value", e.into()))?;
    if is_sensitive(&name) {
        value.set_sensitive(true);
    }
    Ok((name, value))
}

fn is_sensitive(name: &HeaderName) -> bool {
    SENSITIVE_HEADERS.contains(&name.as_str())
}

fn mark_sensitive(mut headers: HeaderMap) -> HeaderMap {
    for (name, value) in headers.iter_mut() {
        if is_sensitive(name) {
            value.set_sensitive(true);
        }
    }
    headers
}

/// A request being prepared; send it with [`send`](RequestBuilder::send).
///
/// Setters never fail: the first invalid value is kept and returned by `send()`.
#[must_use = "a request does nothing until `send()` is awaited"]
pub struct RequestBuilder {
    transport: Transport,
    method: Method,
    uri: Option<Uri>,
    headers: HeaderMap,
    body: Bytes,
    total_timeout: Option<Option<Duration>>,
    response_head_timeout: Option<Option<Duration>>,
    idle_timeout: Option<Option<Duration>>,
    max_retries: Option<u32>,
    error: Option<TransportError>,
}

/// What `execute` needs of a request, cheap to clone per attempt (the body is `Bytes`).
struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

struct Options {
    total_timeout: Option<Duration>,
    response_head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_retries: u32,
}

impl RequestBuilder {
    fn fail(mut self, err: TransportError) -> Self {
        self.error.get_or_insert(err);
        self
    }

    /// Adds a header (replacing a default header of the same name).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        match header_pair(name, value) {
            Ok((name, value)) => {
                let mut this = self;
                this.headers.append(name, value);
                this
            }
            Err(err) => self.fail(err),
        }
    }

    /// Adds headers (replacing default headers of the same names).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers.extend(mark_sensitive(headers));
        self
    }

    /// Sets an already serialized JSON body and `Content-Type: application/json`.
    pub fn json(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    /// Sets the body as is (set a `Content-Type` header yourself).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Overrides the transport's total timeout for this request.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.total_timeout = Some(timeout.into());
        self
    }

    /// Overrides the transport's response head timeout for this request.
    pub fn response_head_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.response_head_timeout = Some(timeout.into());
        self
    }

    /// Overrides the transport's idle timeout for this request's body.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = Some(timeout.into());
        self
    }

    /// Overrides the transport's maximum number of retries for this request.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Sends the request, retrying as configured, and waits for a success response head.
    ///
    /// A status outside `200..=299` is returned as an error
    /// ([`TransportError::is_status`]) that keeps the status, headers and body. Retries
    /// only happen here, before any of a success response's body reached the caller.
    pub async fn send(self) -> Result<Response, TransportError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let uri = self
            .uri
            .ok_or_else(|| TransportError::builder("invalid URL"))?;
        check_uri(&uri)?;
        let config = &self.transport.shared.config;
        let mut headers = config.headers.clone();
        headers.extend(self.headers);
        let req = Prepared {
            method: self.method,
            uri,
            headers,
            body: self.body,
        };
        let opts = Options {
            total_timeout: self.total_timeout.unwrap_or(config.total_timeout),
            response_head_timeout: self
                .response_head_timeout
                .unwrap_or(config.response_head_timeout),
            idle_timeout: self.idle_timeout.unwrap_or(config.idle_timeout),
            max_retries: self.max_retries.unwrap_or(config.max_retries),
        };
        self.transport.execute(req, opts).await
    }
}

fn check_uri(uri: &Uri) -> Result<(), TransportError> {
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::builder("the URL has no host"));
    }
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => Ok(()),
        #[cfg(feature = "rustls")]
        Some(s) if *s == Scheme::HTTPS => Ok(()),
        #[cfg(not(feature = "rustls"))]
        Some(s) if *s == Scheme::HTTPS => Err(TransportError::builder(
            "https:// URLs need the `rustls` feature of vllm-transport",
        )),
        _ => Err(TransportError::builder(
            "the URL scheme must be http:// or https://",
        )),
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
