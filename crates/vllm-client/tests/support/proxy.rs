//! An HTTP proxy on `127.0.0.1:0` for the proxy tests, built on hyper's HTTP/1 server:
//!
//! - an absolute-form request (`POST http://host:port/path HTTP/1.1`, for an `http://`
//!   target) is forwarded to the target in origin form, without its `Proxy-Authorization`,
//!   and the answer is relayed back as it arrives (streams included);
//! - `CONNECT host:port` is answered `200 Connection established`, then the bytes are relayed
//!   both ways (an `https://` target: TLS inside the tunnel).
//!
//! It records what it saw of each request (its request line and headers) and every byte each
//! client connection sent, tunnelled bytes included: what a proxy can read. It can require a
//! `Proxy-Authorization` value and answer `407` without it. It only connects to loopback
//! targets (`127.0.0.1`, `localhost`, `::1`) and answers `502` for any other.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy saw of one request (a forwarded one, or a `CONNECT`).
#[derive(Debug, Clone)]
pub struct ProxySeen {
    /// `POST http://127.0.0.1:1234/v1/chat/completions HTTP/1.1`, `CONNECT 127.0.0.1:1234 HTTP/1.1`.
    pub request_line: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// The status the proxy itself answered (200 for a tunnel, 407, 502), or the target's.
    pub status: u16,
}

impl ProxySeen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn proxy_authorization(&self) -> Option<&str> {
        self.header("proxy-authorization")
    }

    pub fn is_connect(&self) -> bool {
        self.method == "CONNECT"
    }
}

struct State {
    /// The `Proxy-Authorization` value required, if any.
    require: Option<String>,
    seen: Mutex<Vec<ProxySeen>>,
    /// Every byte each client connection sent, in accept order.
    raw: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
    connections: AtomicUsize,
}

/// The proxy. Stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy that asks for no credentials.
    pub async fn start() -> Proxy {
        Proxy::start_with(None).await
    }

    /// A proxy that answers `407` unless a request carries `Proxy-Authorization: {value}`.
    pub async fn requiring(value: &str) -> Proxy {
        Proxy::start_with(Some(value.to_owned())).await
    }

    async fn start_with(require: Option<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            require,
            seen: Mutex::new(Vec::new()),
            raw: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection and tunnel ends with the proxy.
            let mut tasks = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let log = Arc::new(Mutex::new(Vec::new()));
                shared.raw.lock().unwrap().push(log.clone());
                let io = TokioIo::new(Recording { inner: tcp, log });
                let state = shared.clone();
                let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
                tasks.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Proxy { addr, state, task }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://{userinfo}@127.0.0.1:{port}`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}@{}", self.addr)
    }

    /// Every request it saw, in order.
    pub fn seen(&self) -> Vec<ProxySeen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The `CONNECT` requests it saw.
    pub fn connects(&self) -> Vec<ProxySeen> {
        self.seen()
            .into_iter()
            .filter(ProxySeen::is_connect)
            .collect()
    }

    /// The requests it forwarded (or refused) in absolute form.
    pub fn forwarded(&self) -> Vec<ProxySeen> {
        self.seen()
            .into_iter()
            .filter(|s| !s.is_connect())
            .collect()
    }

    /// Client connections accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The bytes each client connection sent, in clear text as the proxy got them.
    pub fn client_bytes(&self) -> Vec<Vec<u8>> {
        self.state
            .raw
            .lock()
            .unwrap()
            .iter()
            .map(|log| log.lock().unwrap().clone())
            .collect()
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn empty(status: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<ProxyBody>, Infallible> {
    let mut seen = ProxySeen {
        request_line: format!("{} {} {:?}", req.method(), req.uri(), req.version()),
        method: req.method().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: 0,
    };
    let response = respond(req, &state, &seen).await;
    seen.status = response.status().as_u16();
    state.seen.lock().unwrap().push(seen);
    Ok(response)
}

async fn respond(req: Request<Incoming>, state: &State, seen: &ProxySeen) -> Response<ProxyBody> {
    if let Some(required) = &state.require {
        if seen.proxy_authorization() != Some(required.as_str()) {
            let mut response = empty(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
            response.headers_mut().insert(
                http::header::PROXY_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"test proxy\""),
            );
            return response;
        }
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return empty(StatusCode::BAD_REQUEST);
    };
    if !is_loopback(authority.host()) {
        return empty(StatusCode::BAD_GATEWAY);
    }
    let Ok(upstream) = TcpStream::connect(authority.as_str()).await else {
        return empty(StatusCode::BAD_GATEWAY);
    };

    if req.method() == Method::CONNECT {
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let mut client = TokioIo::new(upgraded);
            let mut upstream = upstream;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        let mut response = empty(StatusCode::OK);
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(
                b"Connection established",
            ));
        return response;
    }

    // Forward in origin form, without the proxy's own headers.
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await
    else {
        return empty(StatusCode::BAD_GATEWAY);
    };
    tokio::spawn(connection);
    let (mut parts, body) = req.into_parts();
    let origin = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::try_from(origin).unwrap();
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    parts.headers.remove("proxy-connection");
    match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => empty(StatusCode::BAD_GATEWAY),
    }
}

/// A connection that keeps a copy of every byte read from it.
struct Recording {
    inner: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            self.log
                .lock()
                .unwrap()
                .extend_from_slice(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
