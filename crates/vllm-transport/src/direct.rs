//! Plain `http://` requests over HTTP/1.1 connections whose body this crate reads itself.
//!
//! hyper-util's pooled client runs each connection in its own task and hands a response body
//! over through a channel, one HTTP chunk at a time: every chunk costs two task wake-ups and
//! a channel hand-off. A vLLM stream sends one HTTP chunk per token, so that hand-off was
//! most of a streamed token's client CPU. Here the task that reads the body reads the socket
//! itself: one read takes in everything that arrived (up to 64 KiB, many chunks), and the
//! chunked framing is decoded in place, in the caller's poll, with no task and no channel.
//!
//! The response head is parsed by `httparse` (what hyper uses); the request is written as
//! one buffer, and writing stops if the server answers first. Connections are kept alive in
//! a per-host pool of idle sockets, checked for a hang-up before reuse and every few seconds
//! while idle. A request that gets no response byte on a reused connection goes out once
//! more, on a new connection, whatever its method: that is what a server's keep-alive timeout
//! does to an idle connection it closes just as the request goes out (uvicorn, which vLLM
//! runs on, closes idle connections after 5 s). Sending a `POST` twice is safe for this API:
//! an inference request changes nothing on the server, so the worst case of a server that
//! did read it before the connection dropped is tokens generated twice, which is also why
//! openai-python and the other OpenAI clients retry such requests. A new connection that
//! fails the same way is an error (the server is not merely closing idle connections).
//! `https://` stays on hyper-util's client (TLS, HTTP/2 over ALPN).

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::connect::Connector;
use crate::error::{ConnectTimedOut, TimeoutKind, TransportError, find_in_chain};
use crate::proxy::{ProxyFailed, ProxyRoute};

/// The largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines a response head may have.
const MAX_HEADERS: usize = 128;
/// The longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Request bodies up to this size are written in the same buffer as the head.
const MAX_INLINE_BODY: usize = 64 * 1024;
/// First read size of a body; doubled while reads fill the buffer, up to [`MAX_READ`].
const MIN_READ: usize = 8 * 1024;
/// Largest read size of a body.
const MAX_READ: usize = 64 * 1024;

/// How often idle connections are checked for a hang-up or expiry while any are pooled.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// The idle connections of the direct path, per `host:port`.
///
/// While it holds any, a task checks them every [`REAP_EVERY`] and closes the ones the server
/// closed (so they do not linger half-closed) or that passed the idle timeout. The task holds
/// the pool weakly and ends when the pool is empty or gone.
pub(crate) struct DirectPool {
    idle: Mutex<Idle>,
    idle_timeout: Option<Duration>,
    max_idle_per_host: usize,
}

#[derive(Default)]
struct Idle {
    hosts: HashMap<Box<str>, Vec<IdleConn>>,
    reaper_running: bool,
}

struct IdleConn {
    stream: TcpStream,
    since: Instant,
}

impl DirectPool {
    pub(crate) fn new(idle_timeout: Option<Duration>, max_idle_per_host: usize) -> Self {
        DirectPool {
            idle: Mutex::new(Idle::default()),
            idle_timeout,
            max_idle_per_host,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_expired(&self, conn: &IdleConn, now: Instant) -> bool {
        self.idle_timeout
            .is_some_and(|timeout| now.saturating_duration_since(conn.since) >= timeout)
    }

    /// The most recently used idle connection to `key` that is still open, if any.
    fn checkout(&self, key: &str) -> Option<TcpStream> {
        let mut idle = self.lock();
        let conns = idle.hosts.get_mut(key)?;
        let now = Instant::now();
        while let Some(conn) = conns.pop() {
            if !self.is_expired(&conn, now) && is_open(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Keeps `stream` for reuse (or closes it when the host already has enough idle ones).
    fn checkin(self: &Arc<Self>, key: &str, stream: TcpStream) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let now = Instant::now();
        let start_reaper = {
            let mut idle = self.lock();
            let conns = idle.hosts.entry(key.into()).or_default();
            conns.retain(|c| !self.is_expired(c, now));
            if conns.len() >= self.max_idle_per_host {
                return;
            }
            conns.push(IdleConn { stream, since: now });
            !std::mem::replace(&mut idle.reaper_running, true)
        };
        if start_reaper {
            self.start_reaper();
        }
    }

    fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.lock().reaper_running = false;
            return;
        };
        let pool = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(REAP_EVERY).await;
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                if !pool.prune() {
                    return;
                }
            }
        });
    }

    /// Closes idle connections that expired or were closed by the server. Returns whether
    /// any are left (if not, the reaper stops; the next check-in starts it again).
    fn prune(&self) -> bool {
        let now = Instant::now();
        let mut idle = self.lock();
        idle.hosts.retain(|_, conns| {
            conns.retain(|c| !self.is_expired(c, now) && is_open(&c.stream));
            !conns.is_empty()
        });
        let any = !idle.hosts.is_empty();
        idle.reaper_running = any;
        any
    }
}

impl fmt::Debug for DirectPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectPool")
            .field("idle_timeout", &self.idle_timeout)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .finish_non_exhaustive()
    }
}

/// Whether an idle connection is still usable: nothing to read and no hang-up.
fn is_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// What a request needs to go out on the direct path.
pub(crate) struct DirectRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a Bytes,
    /// The proxy that forwards the request, if any.
    pub(crate) proxy: Option<&'a ProxyRoute>,
}

/// Sends `req` over a pooled or new connection and reads the response head.
pub(crate) async fn send(
    pool: &Arc<DirectPool>,
    connector: &Connector,
    req: DirectRequest<'_>,
) -> Result<(http::response::Parts, DirectBody), TransportError> {
    // Through a proxy, connections go to the proxy, which forwards to any host.
    let key = match req.proxy {
        Some(proxy) => format!("proxy {}", pool_key(&proxy.uri)).into_boxed_str(),
        None => pool_key(req.uri),
    };
    let head = encode_head(&req);
    let mut use_pool = true;
    loop {
        let (stream, reused) = match use_pool.then(|| pool.checkout(&key)).flatten() {
            Some(stream) => (stream, true),
            None => (connect(connector, req.uri, req.proxy).await?, false),
        };
        match exchange(stream, &head, req.body).await {
            Ok(exchanged) => {
                let Exchanged {
                    parts,
                    stream,
                    buf,
                    request_sent,
                } = exchanged;
                let framing = framing(req.method, &parts)?;
                let keep_alive = request_sent && keep_alive(&parts, &framing);
                let mut body = DirectBody {
                    stream: Some(stream),
                    buf,
                    framing,
                    read_size: MIN_READ,
                    trailers: Trailers::default(),
                    release: keep_alive.then(|| (Arc::clone(pool), key)),
                };
                body.release_if_done();
                return Ok((parts, body));
            }
            // The pooled connection closed with no byte of an answer (the server's
            // keep-alive timeout): the request goes out once more, on a new connection.
            Err(Failure::Resend(_err)) if reused => {
                trace_debug!(error = %_err, "pooled connection was closed; sending again");
                use_pool = false;
            }
            Err(Failure::Resend(err) | Failure::Other(err)) => return Err(err),
        }
    }
}

/// `host:port` of an `http://` URI.
fn pool_key(uri: &Uri) -> Box<str> {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    format!("{host}:{port}").into_boxed_str()
}

/// Connects to `uri`'s host, or to the proxy when there is one.
async fn connect(
    connector: &Connector,
    uri: &Uri,
    proxy: Option<&ProxyRoute>,
) -> Result<TcpStream, TransportError> {
    let to = proxy.map_or(uri, |p| &p.uri);
    match connector.connect_tcp(to).await {
        Ok(stream) => Ok(stream),
        Err(err) => {
            if let Some(timed_out) = find_in_chain::<ConnectTimedOut>(&*err) {
                return Err(TransportError::timeout(TimeoutKind::Connect, timed_out.0));
            }
            Err(TransportError::connect(match proxy {
                Some(proxy) => Box::new(ProxyFailed::new(&proxy.uri, err)),
                None => err,
            }))
        }
    }
}

/// The request line and headers, then the body if it is small (one write, one packet).
fn encode_head(req: &DirectRequest<'_>) -> BytesMut {
    let inline_body = req.body.len() <= MAX_INLINE_BODY;
    let mut out = BytesMut::with_capacity(
        256 + req.headers.len() * 64 + if inline_body { req.body.len() } else { 0 },
    );
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    if req.proxy.is_some() {
        // Absolute form for a proxy: scheme, host and port before the path (never the
        // URL's user information, which is not the proxy's business).
        out.extend_from_slice(b"http://");
        out.extend_from_slice(req.uri.host().unwrap_or_default().as_bytes());
        if let Some(port) = req.uri.port() {
            out.extend_from_slice(b":");
            out.extend_from_slice(port.as_str().as_bytes());
        }
    }
    // Origin form: the path ("/" when empty) and the query.
    let path = req.uri.path();
    out.extend_from_slice(if path.is_empty() { "/" } else { path }.as_bytes());
    if let Some(query) = req.uri.query() {
        out.extend_from_slice(b"?");
        out.extend_from_slice(query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req.headers.contains_key(HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(req.uri.host().unwrap_or_default().as_bytes());
        if let Some(port) = req.uri.port_u16().filter(|p| *p != 80) {
            out.extend_from_slice(format!(":{port}").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(auth) = req.proxy.and_then(|p| p.auth.as_ref()) {
        if !req.headers.contains_key(PROXY_AUTHORIZATION) {
            out.extend_from_slice(b"proxy-authorization: ");
            out.extend_from_slice(auth.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    for (name, value) in req.headers {
        // The body is always framed by its length, written below.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let has_body_method = matches!(*req.method, Method::POST | Method::PUT | Method::PATCH);
    if has_body_method || !req.body.is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n", req.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if inline_body {
        out.extend_from_slice(req.body);
    }
    out
}

/// Why an exchange failed. `Resend`: no byte of a response arrived, so on a reused
/// connection, which the server may have closed while it was idle, it can go out again.
enum Failure {
    Resend(TransportError),
    Other(TransportError),
}

struct Exchanged {
    parts: http::response::Parts,
    stream: TcpStream,
    /// What of the body arrived with the head.
    buf: BytesMut,
    /// Whether the whole request was written (the server may answer before reading it all;
    /// the connection is then not reused).
    request_sent: bool,
}

/// Writes the request and reads the response head. Stops writing if the server answers
/// first (an error status before it read a large body).
async fn exchange(stream: TcpStream, head: &[u8], body: &Bytes) -> Result<Exchanged, Failure> {
    let request_error = |err: io::Error| TransportError::request(Box::new(err));
    let mut buf = BytesMut::with_capacity(MIN_READ);
    let mut request_sent = write_unless_answered(&stream, head, &mut buf).await;
    if body.len() > MAX_INLINE_BODY && matches!(request_sent, Ok(true)) {
        request_sent = write_unless_answered(&stream, body, &mut buf).await;
    }
    let request_sent = match request_sent {
        Ok(sent) => sent,
        // The server did not get the whole request, so it did not process it.
        Err(err) if buf.is_empty() => return Err(Failure::Resend(request_error(err))),
        // It answered, then the connection failed: read what it answered.
        Err(_) => false,
    };
    let mut got_bytes = !buf.is_empty();
    loop {
        match parse_head(&buf).map_err(Failure::Other)? {
            Some((parts, len)) => {
                buf.advance(len);
                if parts.status.is_informational() {
                    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(Failure::Other(TransportError::request_reason(
                            "the server switched protocols (101), which this client does not do",
                        )));
                    }
                    // 100 Continue, 103 Early Hints: the real response follows.
                    continue;
                }
                return Ok(Exchanged {
                    parts,
                    stream,
                    buf,
                    request_sent,
                });
            }
            None if buf.len() >= MAX_HEAD => {
                return Err(Failure::Other(TransportError::request_reason(format!(
                    "the response head is larger than {} KiB",
                    MAX_HEAD / 1024
                ))));
            }
            None => {}
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(MIN_READ);
        }
        let err = match poll_fn(|cx| poll_read(&stream, &mut buf, cx)).await {
            Ok(0) if got_bytes => TransportError::request_reason(
                "the server closed the connection before the response head was complete",
            ),
            Ok(0) => TransportError::request_reason(
                "the server closed the connection without answering (closed before the response head)",
            ),
            Ok(_) => {
                got_bytes = true;
                continue;
            }
            Err(err) => request_error(err),
        };
        return Err(if !got_bytes {
            Failure::Resend(err)
        } else {
            Failure::Other(err)
        });
    }
}

/// Writes `bytes` unless the server starts to answer first, whose first bytes then go to
/// `buf`. `Ok(true)`: all written; `Ok(false)`: the server answered (or closed) first.
async fn write_unless_answered(
    stream: &TcpStream,
    mut bytes: &[u8],
    buf: &mut BytesMut,
) -> io::Result<bool> {
    poll_fn(|cx| {
        loop {
            if bytes.is_empty() {
                return Poll::Ready(Ok(true));
            }
            if let Poll::Ready(ready) = stream.poll_read_ready(cx) {
                ready?;
                match stream.try_read_buf(buf) {
                    Ok(_) => return Poll::Ready(Ok(false)),
                    // Readiness was stale; it is cleared now.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(bytes) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    })
    .await
}

/// Reads what the socket has into `buf`'s spare capacity; `Ok(0)` at the end of the stream.
fn poll_read(
    stream: &TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match stream.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            result => return Poll::Ready(result),
        }
    }
}

/// Parses a complete response head at the start of `buf`; `None` when more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<(http::response::Parts, usize)>, TransportError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        // The same limit on a head that arrived whole as on one still arriving.
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
            return Err(TransportError::request_reason(format!(
                "the response head is larger than {} KiB",
                MAX_HEAD / 1024
            )));
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(TransportError::request_reason(format!(
                "the response head has more than {MAX_HEADERS} headers"
            )));
        }
        Err(err) => {
            return Err(TransportError::request_reason(format!(
                "the server's answer is not an HTTP/1.x response ({err})"
            )));
        }
    };
    let invalid =
        |what: &str| TransportError::request_reason(format!("invalid HTTP response head: {what}"));
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| invalid("bad status code"))?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::with_capacity(response.headers.len());
    for header in response.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| invalid("bad header name"))?;
        let value =
            HeaderValue::from_bytes(header.value).map_err(|_| invalid("bad header value"))?;
        map.append(name, value);
    }
    let mut builder = http::Response::builder().status(status).version(version);
    if let Some(headers) = builder.headers_mut() {
        *headers = map;
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|_| invalid("bad response head"))?
        .into_parts();
    Ok(Some((parts, len)))
}

/// How the body's end is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`, at this point of a chunk.
    Chunked(Chunk),
    /// `Content-Length`: this many bytes left.
    Length(u64),
    /// Neither: the body ends when the server closes the connection.
    Eof,
    /// The body has ended.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, reading its line end.
    DataEnd,
    /// After the last chunk, reading trailer lines up to the empty one.
    Trailers,
}

/// The body framing of a response (RFC 9112, section 6.3).
fn framing(method: &Method, parts: &http::response::Parts) -> Result<Framing, TransportError> {
    let invalid =
        |what: &str| TransportError::request_reason(format!("invalid HTTP response head: {what}"));
    if *method == Method::HEAD
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        if parts.version != Version::HTTP_11 {
            return Err(invalid("transfer-encoding in an HTTP/1.0 response"));
        }
        // Every coding of every Transfer-Encoding line, in order. Only `chunked` (last, as
        // HTTP/1.1 requires) can be decoded here: a body compressed on the wire (`gzip,
        // chunked`) would reach the caller as undecodable bytes, so it is refused.
        let mut codings = Vec::new();
        for value in parts.headers.get_all(TRANSFER_ENCODING) {
            let value = value
                .to_str()
                .map_err(|_| invalid("transfer-encoding is not text"))?;
            codings.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")),
            );
        }
        return match codings.as_slice() {
            [] => Ok(Framing::Eof),
            [coding] if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked(Chunk::Size)),
            _ => Err(TransportError::request_reason(format!(
                "the response's transfer-encoding `{}` is not supported: this client decodes \
                 only `chunked` (ask the server or proxy not to compress the transfer)",
                codings.join(", ")
            ))),
        };
    }
    let mut length = None;
    for value in parts.headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let parsed =
                parse_digits(item.trim_ascii()).ok_or_else(|| invalid("bad content-length"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(invalid("conflicting content-length values"));
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::Eof, Framing::Length))
}

/// `1*DIGIT` as a `u64`; `None` for anything else (signs, spaces, overflow).
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Whether the connection can carry another request after this response's body.
fn keep_alive(parts: &http::response::Parts, framing: &Framing) -> bool {
    if parts.version != Version::HTTP_11 || *framing == Framing::Eof {
        return false;
    }
    // Both framings at once is a message a proxy may have read differently: close after it.
    if parts.headers.contains_key(TRANSFER_ENCODING) && parts.headers.contains_key(CONTENT_LENGTH) {
        return false;
    }
    !parts.headers.get_all(CONNECTION).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    })
}

/// The trailer section of a chunked body, as it is read.
#[derive(Debug, Default)]
struct Trailers {
    fields: Option<HeaderMap>,
    /// Bytes of trailer lines read so far (bounded by [`MAX_HEAD`]).
    len: usize,
}

impl Trailers {
    fn add_line(&mut self, line: &[u8]) -> Result<(), TransportError> {
        self.len += line.len();
        if self.len > MAX_HEAD {
            return Err(chunk_error("trailer section too large"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| chunk_error("bad trailer line"))?;
        let name =
            HeaderName::from_bytes(&line[..colon]).map_err(|_| chunk_error("bad trailer name"))?;
        // Optional whitespace is spaces and tabs only (a CR or LF is refused by the value).
        let value = &line[colon + 1..];
        let start = value.iter().position(|&b| b != b' ' && b != b'\t');
        let end = value.iter().rposition(|&b| b != b' ' && b != b'\t');
        let value = match (start, end) {
            (Some(start), Some(end)) => &value[start..=end],
            _ => &[][..],
        };
        let value = HeaderValue::from_bytes(value).map_err(|_| chunk_error("bad trailer value"))?;
        self.fields
            .get_or_insert_with(HeaderMap::new)
            .append(name, value);
        Ok(())
    }
}

/// A response body read straight from its connection.
///
/// Each poll decodes what is buffered; when that yields no data, it reads the socket once.
/// At the body's end the connection goes back to the pool (when the server keeps it alive);
/// dropping the body earlier closes it.
pub(crate) struct DirectBody {
    stream: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    read_size: usize,
    trailers: Trailers,
    /// Where the connection goes when the body has ended, if it can be reused.
    release: Option<(Arc<DirectPool>, Box<str>)>,
}

impl DirectBody {
    /// The next piece of body data, `None` at its end.
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, TransportError>>> {
        loop {
            let data = match self.decode() {
                Ok(data) => data,
                Err(err) => {
                    self.fail();
                    return Poll::Ready(Some(Err(err)));
                }
            };
            if self.framing == Framing::Done {
                self.release_if_done();
            }
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(data)));
            }
            if self.framing == Framing::Done {
                return Poll::Ready(None);
            }
            let Some(stream) = self.stream.as_ref() else {
                return Poll::Ready(None);
            };
            let spare = self.buf.capacity() - self.buf.len();
            if spare < self.read_size / 2 {
                self.buf.reserve(self.read_size);
            }
            let spare = self.buf.capacity() - self.buf.len();
            match ready!(poll_read(stream, &mut self.buf, cx)) {
                Ok(0) if self.framing == Framing::Eof => {
                    self.framing = Framing::Done;
                    self.stream = None;
                }
                Ok(0) => {
                    self.fail();
                    return Poll::Ready(Some(Err(TransportError::new_body(Box::new(
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the connection closed before the response body ended",
                        ),
                    )))));
                }
                Ok(n) => {
                    if n == spare && self.read_size < MAX_READ {
                        self.read_size *= 2;
                    }
                }
                Err(err) => {
                    self.fail();
                    return Poll::Ready(Some(Err(TransportError::new_body(Box::new(err)))));
                }
            }
        }
    }

    /// The trailer fields of a chunked body, once it has ended (if it had any).
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        if self.framing == Framing::Done {
            self.trailers.fields.take()
        } else {
            None
        }
    }

    /// Whether the body has been read to its end (or failed).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done && self.trailers.fields.is_none()
    }

    /// The body's remaining length, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            _ => None,
        }
    }

    fn fail(&mut self) {
        self.framing = Framing::Done;
        self.stream = None;
        self.release = None;
        self.trailers = Trailers::default();
        self.buf = BytesMut::new();
    }

    /// Returns the connection to the pool once the body ended, unless more bytes than the
    /// response arrived (the connection's state is then unknown).
    fn release_if_done(&mut self) {
        if self.framing != Framing::Done {
            return;
        }
        let stream = self.stream.take();
        if let (Some(stream), Some((pool, key))) = (stream, self.release.take()) {
            if self.buf.is_empty() {
                pool.checkin(&key, stream);
            }
        }
    }

    /// Decodes the buffered input: the body data it holds, possibly empty.
    fn decode(&mut self) -> Result<Bytes, TransportError> {
        match self.framing {
            Framing::Done => Ok(Bytes::new()),
            Framing::Eof => Ok(self.buf.split().freeze()),
            Framing::Length(left) => {
                let n = left.min(self.buf.len() as u64);
                let left = left - n;
                if left == 0 {
                    self.framing = Framing::Done;
                } else {
                    self.framing = Framing::Length(left);
                }
                Ok(self.buf.split_to(n as usize).freeze())
            }
            Framing::Chunked(state) => {
                let (state, read, written) =
                    decode_chunked(&mut self.buf, state, &mut self.trailers)?;
                self.framing = state;
                let data = self.buf.split_to(written).freeze();
                self.buf.advance(read - written);
                Ok(data)
            }
        }
    }
}

impl fmt::Debug for DirectBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectBody")
            .field("framing", &self.framing)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

fn chunk_error(what: &str) -> TransportError {
    TransportError::new_body(format!("invalid chunked body: {what}").into())
}

/// Decodes chunked framing in place: the data of the complete and partial chunks in `buf`
/// is moved to its front, trailer fields go to `trailers`. Returns the new state, how many
/// input bytes were consumed and how many data bytes are at the front.
fn decode_chunked(
    buf: &mut [u8],
    mut state: Chunk,
    trailers: &mut Trailers,
) -> Result<(Framing, usize, usize), TransportError> {
    let len = buf.len();
    let mut read = 0usize;
    let mut written = 0usize;
    loop {
        match state {
            Chunk::Size => {
                let Some(nl) = memchr::memchr(b'\n', &buf[read..]) else {
                    if len - read > MAX_LINE {
                        return Err(chunk_error("chunk-size line too long"));
                    }
                    // A line that cannot become valid is refused now, not when it ends.
                    check_partial_chunk_size(&buf[read..])?;
                    break;
                };
                // The same limit on a whole line as on a partial one: the outcome must not
                // depend on how the bytes arrived.
                if nl > MAX_LINE {
                    return Err(chunk_error("chunk-size line too long"));
                }
                // CRLF only, as hyper (the `https://` path) and httparse read it.
                let Some(line) = buf[read..read + nl].strip_suffix(b"\r") else {
                    return Err(chunk_error("chunk-size line not ended by CRLF"));
                };
                let size = parse_chunk_size(line)?;
                read += nl + 1;
                state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                let n = left.min((len - read) as u64) as usize;
                if n == 0 {
                    break;
                }
                if written != read {
                    buf.copy_within(read..read + n, written);
                }
                read += n;
                written += n;
                let left = left - n as u64;
                state = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
            }
            Chunk::DataEnd => match buf.get(read..(read + 2).min(len)) {
                Some(b"\r\n") => {
                    read += 2;
                    state = Chunk::Size;
                }
                Some([] | [b'\r']) | None => break,
                Some(_) => return Err(chunk_error("chunk data not followed by CRLF")),
            },
            Chunk::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', &buf[read..]) else {
                    if len - read > MAX_LINE {
                        return Err(chunk_error("trailer line too long"));
                    }
                    break;
                };
                if nl > MAX_LINE {
                    return Err(chunk_error("trailer line too long"));
                }
                let Some(line) = buf[read..read + nl].strip_suffix(b"\r") else {
                    return Err(chunk_error("trailer line not ended by CRLF"));
                };
                read += nl + 1;
                if line.is_empty() {
                    return Ok((Framing::Done, read, written));
                }
                trailers.add_line(line)?;
            }
        }
    }
    Ok((Framing::Chunked(state), read, written))
}

/// Refuses the start of a chunk-size line that no ending can make valid (a byte other than
/// a hex digit before the whitespace or `;`, too many digits, a CR not at the end).
fn check_partial_chunk_size(partial: &[u8]) -> Result<(), TransportError> {
    let mut digits = 0;
    let mut after_space = false;
    for (i, &b) in partial.iter().enumerate() {
        match b {
            b'\r' if i + 1 == partial.len() && digits > 0 => {}
            b'\r' => return Err(chunk_error("bad chunk size")),
            b';' if digits > 0 => {
                return match memchr::memchr(b'\r', &partial[i..]) {
                    Some(at) if i + at + 1 != partial.len() => Err(chunk_error("bad chunk size")),
                    _ => Ok(()),
                };
            }
            b' ' | b'\t' if digits > 0 => after_space = true,
            b if b.is_ascii_hexdigit() && !after_space && digits < 16 => digits += 1,
            _ => return Err(chunk_error("bad chunk size")),
        }
    }
    Ok(())
}

/// Parses `1a3f[ ][;ext...]` (the line without its CRLF): hex digits, then optional whitespace and extensions.
fn parse_chunk_size(line: &[u8]) -> Result<u64, TransportError> {
    // A CR in the line is a line end one reader sees and another does not: refused, as
    // httparse does.
    if memchr::memchr(b'\r', line).is_some() {
        return Err(chunk_error("bad chunk size"));
    }
    let digits = match line.iter().position(|&b| b == b';') {
        Some(semi) => &line[..semi],
        None => line,
    };
    let end = digits
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let digits = &digits[..end];
    if digits.is_empty() || digits.len() > 16 {
        return Err(chunk_error("bad chunk size"));
    }
    let mut size = 0u64;
    for &b in digits {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(chunk_error("bad chunk size")),
        };
        size = size << 4 | u64::from(digit);
    }
    Ok(size)
}

/// Reads `data` as one response to a `POST`, the way a connection of this path does, with
/// the socket handing it over in pieces of the sizes in `cuts` (cycled; 0 or none: whole):
/// the head (skipping `1xx`), the framing, then the body decoded piece by piece. Gives the
/// status, the body and whether its framing saw it end, or the error's text. For fuzzing
/// (the outcome must not depend on the cuts) and the differential tests.
pub(crate) fn read_response(data: &[u8], cuts: &[usize]) -> Result<(u16, Vec<u8>, bool), String> {
    let mut pieces = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let cut = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(0);
        let n = if cut == 0 {
            rest.len()
        } else {
            cut.min(rest.len())
        };
        pieces.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    let mut pieces = pieces.into_iter();
    let mut buf = BytesMut::new();
    let parts = loop {
        match parse_head(&buf).map_err(|e| e.to_string())? {
            Some((parts, len)) => {
                buf.advance(len);
                if parts.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err("switched protocols".into());
                }
                if parts.status.is_informational() {
                    continue;
                }
                break parts;
            }
            None if buf.len() >= MAX_HEAD => return Err("head too large".into()),
            None => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => return Err("closed before the head was complete".into()),
            },
        }
    };
    let framing = framing(&Method::POST, &parts).map_err(|e| e.to_string())?;
    let mut body = DirectBody {
        stream: None,
        buf,
        framing,
        read_size: MIN_READ,
        trailers: Trailers::default(),
        release: None,
    };
    let mut out = Vec::new();
    loop {
        let data = body.decode().map_err(|e| e.to_string())?;
        out.extend_from_slice(&data);
        if body.framing == Framing::Done {
            return Ok((parts.status.as_u16(), out, true));
        }
        if !data.is_empty() {
            continue;
        }
        match pieces.next() {
            Some(piece) => body.buf.extend_from_slice(piece),
            // The connection closed: the end of an until-close body, else a cut one.
            None if body.framing == Framing::Eof => return Ok((parts.status.as_u16(), out, true)),
            None => return Ok((parts.status.as_u16(), out, false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        input: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, Framing, Option<HeaderMap>), TransportError> {
        let mut body = DirectBody {
            stream: None,
            buf: BytesMut::new(),
            framing: Framing::Chunked(Chunk::Size),
            read_size: MIN_READ,
            trailers: Trailers::default(),
            release: None,
        };
        let mut out = Vec::new();
        for part in input.chunks(piece.max(1)) {
            body.buf.extend_from_slice(part);
            out.extend_from_slice(&body.decode()?);
        }
        Ok((out, body.framing, body.take_trailers()))
    }

    /// The error and its sources, joined.
    fn chain(err: &TransportError) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    #[test]
    fn chunked_any_split() {
        let input = b"5\r\nhello\r\n1;ext=1\r\n \r\n0A\r\n0123456789\r\n0\r\ntrailer: x\r\n\r\n";
        for piece in 1..input.len() {
            let (out, framing, trailers) = decode_all(input, piece).unwrap();
            assert_eq!(out, b"hello 0123456789", "piece {piece}");
            assert_eq!(framing, Framing::Done, "piece {piece}");
            assert_eq!(trailers.unwrap()["trailer"], "x", "piece {piece}");
        }
    }

    #[test]
    fn chunked_lines_end_in_crlf_and_unfinished_is_not_an_error() {
        let (out, framing, _) = decode_all(b"3\r\nabc\r\n2\r\nde", 4).unwrap();
        assert_eq!(out, b"abcde");
        assert_eq!(framing, Framing::Chunked(Chunk::DataEnd));
        // A bare LF is refused, as hyper and httparse refuse it.
        for bare in [
            &b"3\nabc\r\n"[..],
            b"3\r\nabc\n0\r\n\r\n",
            b"0\r\nx: y\n\r\n",
        ] {
            for piece in [1, 3, 64] {
                assert!(
                    decode_all(bare, piece).is_err(),
                    "{bare:?} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcX",
            b"\r\n",
            b"11111111111111111\r\n",
        ] {
            let err = decode_all(bad, bad.len()).unwrap_err();
            assert!(err.is_body(), "{err}");
            assert!(
                chain(&err).contains("invalid chunked body"),
                "{}",
                chain(&err)
            );
        }
        let long = vec![b'1'; MAX_LINE + 2];
        assert!(decode_all(&long, long.len()).is_err());
    }

    /// Inputs on which the differential test against httparse (tests/fuzz_targets.rs) found
    /// this reader accepting what httparse refuses, each refused now, in any pieces.
    #[test]
    fn regressions_found_against_httparse() {
        for bad in [
            // A CR inside the size line, before an extension.
            &b"0\r;\n\r\n"[..],
            // A CR inside a trailer value, which trimming took for whitespace.
            b"0\r\na: \r c: d\r\n\r\n",
            // Line ends without their CR.
            b"7;a=b\r\n\0\0\0\0\0\0\r\n\n0\r\n\r\n",
            b"0\r\n\n",
        ] {
            for piece in [1, 2, 5, bad.len()] {
                assert!(
                    decode_all(bad, piece).is_err(),
                    "{bad:?} in pieces of {piece}"
                );
            }
        }
        // A size line that cannot become valid is refused before it ends, as httparse does.
        assert!(decode_all(b"g0", 2).is_err());
        assert!(decode_all(b"1 2", 3).is_err());
        assert!(decode_all(b"12", 2).is_ok(), "a size line still arriving");
    }

    fn parts(head: &str) -> http::response::Parts {
        parse_head(head.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn framing_and_keep_alive() {
        let p = parts("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(
            framing(&Method::POST, &p).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert!(keep_alive(&p, &Framing::Chunked(Chunk::Size)));

        let p = parts("HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\n");
        assert_eq!(framing(&Method::POST, &p).unwrap(), Framing::Length(12));
        assert!(!keep_alive(&p, &Framing::Length(12)));
        assert_eq!(framing(&Method::HEAD, &p).unwrap(), Framing::Length(0));

        let p = parts("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(framing(&Method::GET, &p).unwrap(), Framing::Eof);
        assert!(!keep_alive(&p, &Framing::Eof));

        let p = parts("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n");
        assert!(framing(&Method::GET, &p).is_err());
        let p = parts("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n");
        assert!(framing(&Method::GET, &p).is_err());
        let p = parts("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(framing(&Method::GET, &p).unwrap(), Framing::Length(0));

        // Content-Length is 1*DIGIT: no sign, no inner space, no overflow; a list of
        // equal values is one value.
        for bad in ["+3", "3 3", "", "18446744073709551616", "0x10"] {
            let p = parts(&format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n"));
            assert!(framing(&Method::GET, &p).is_err(), "{bad:?}");
        }
        let p = parts("HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\n");
        assert_eq!(framing(&Method::GET, &p).unwrap(), Framing::Length(7));

        // Transfer-Encoding is HTTP/1.1 only; with Content-Length too, no reuse.
        let p = parts("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(framing(&Method::GET, &p).is_err());
        let p = parts("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n");
        let f = framing(&Method::GET, &p).unwrap();
        assert_eq!(f, Framing::Chunked(Chunk::Size));
        assert!(!keep_alive(&p, &f));
    }

    #[test]
    fn chunk_size_lines_and_trailer_limits() {
        // Whitespace may precede an extension, not the size.
        let (out, framing, _) = decode_all(b"3 ;x\r\nabc\r\n0\r\n\r\n", 64).unwrap();
        assert_eq!((out.as_slice(), framing), (&b"abc"[..], Framing::Done));
        assert!(decode_all(b" 3\r\nabc\r\n", 64).is_err());
        // A bad trailer line and an endless trailer section are errors.
        assert!(decode_all(b"0\r\nno colon\r\n\r\n", 64).is_err());
        let mut endless = b"0\r\n".to_vec();
        for i in 0..5000 {
            endless.extend_from_slice(format!("x-t{i}: vvvvvvvvvv\r\n").as_bytes());
        }
        let err = decode_all(&endless, 1460).unwrap_err();
        assert!(
            chain(&err).contains("trailer section too large"),
            "{}",
            chain(&err)
        );
    }

    #[test]
    fn head_parsing() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nx: y\r\n")
                .unwrap()
                .is_none()
        );
        let (p, len) = parse_head(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(len, 37);
        assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(p.headers["retry-after"], "1");
        let err = parse_head(b"HTTX/1.1 200 OK\r\n\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server's answer is not an HTTP/1.x response (invalid HTTP version)"
        );
        assert!(err.is_request() && !err.is_retryable());
    }

    #[test]
    fn request_encoding() {
        let uri: Uri = "http://example.test:8000/v1/chat?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        let body = Bytes::from_static(b"{}");
        let head = encode_head(&DirectRequest {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
            body: &body,
            proxy: None,
        });
        assert_eq!(
            &head[..],
            b"POST /v1/chat?x=1 HTTP/1.1\r\nhost: example.test:8000\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        // Through a proxy: the absolute form, and its credentials.
        let mut auth = HeaderValue::from_static("Basic dTpw");
        auth.set_sensitive(true);
        let proxy = ProxyRoute {
            uri: "http://proxy.test:3128/".parse().unwrap(),
            auth: Some(auth),
        };
        let head = encode_head(&DirectRequest {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
            body: &body,
            proxy: Some(&proxy),
        });
        assert_eq!(
            &head[..],
            b"POST http://example.test:8000/v1/chat?x=1 HTTP/1.1\r\nhost: example.test:8000\r\nproxy-authorization: Basic dTpw\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        // The target URL's user information is not sent to the proxy.
        let with_user: Uri = "http://user:secret@example.test:8000/v1".parse().unwrap();
        let head = encode_head(&DirectRequest {
            method: &Method::GET,
            uri: &with_user,
            headers: &HeaderMap::new(),
            body: &Bytes::new(),
            proxy: Some(&proxy),
        });
        let head = String::from_utf8(head.to_vec()).unwrap();
        assert!(
            head.starts_with("GET http://example.test:8000/v1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(!head.contains("secret"), "{head}");
        let uri: Uri = "http://example.test/".parse().unwrap();
        let head = encode_head(&DirectRequest {
            method: &Method::GET,
            uri: &uri,
            headers: &HeaderMap::new(),
            body: &Bytes::new(),
            proxy: None,
        });
        assert_eq!(&head[..], b"GET / HTTP/1.1\r\nhost: example.test\r\n\r\n");
    }
}
