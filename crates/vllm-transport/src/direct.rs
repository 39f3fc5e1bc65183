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
//! one buffer. Connections are kept alive in a small per-host pool of idle sockets, checked
//! for a hang-up before reuse; a request that fails on a reused connection before any
//! response byte arrived is sent again once on a new connection (the server had closed the
//! idle connection). `https://` stays on hyper-util's client (TLS, HTTP/2 over ALPN).

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::connect::Connector;
use crate::error::{ConnectTimedOut, TimeoutKind, TransportError, find_in_chain};

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

/// The idle connections of the direct path, per `host:port`.
pub(crate) struct DirectPool {
    idle: Mutex<HashMap<Box<str>, Vec<IdleConn>>>,
    idle_timeout: Option<Duration>,
    max_idle_per_host: usize,
}

struct IdleConn {
    stream: TcpStream,
    since: Instant,
}

impl DirectPool {
    pub(crate) fn new(idle_timeout: Option<Duration>, max_idle_per_host: usize) -> Self {
        DirectPool {
            idle: Mutex::new(HashMap::new()),
            idle_timeout,
            max_idle_per_host,
        }
    }

    /// The most recently used idle connection to `key` that is still open, if any.
    fn checkout(&self, key: &str) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let conns = idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(conn) = conns.pop() {
            let expired = self
                .idle_timeout
                .is_some_and(|timeout| now.saturating_duration_since(conn.since) >= timeout);
            if !expired && is_open(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Keeps `stream` for reuse (or closes it when the host already has enough idle ones).
    fn checkin(&self, key: &str, stream: TcpStream) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let conns = idle.entry(key.into()).or_default();
        // Expired ones go first, so a pool nobody checks out from does not keep them.
        if let Some(timeout) = self.idle_timeout {
            conns.retain(|c| now.saturating_duration_since(c.since) < timeout);
        }
        if conns.len() < self.max_idle_per_host {
            conns.push(IdleConn { stream, since: now });
        }
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
}

/// Sends `req` over a pooled or new connection and reads the response head.
pub(crate) async fn send(
    pool: &Arc<DirectPool>,
    connector: &Connector,
    req: DirectRequest<'_>,
) -> Result<(http::response::Parts, DirectBody), TransportError> {
    let key = pool_key(req.uri);
    let head = encode_head(&req);
    loop {
        let (stream, reused) = match pool.checkout(&key) {
            Some(stream) => (stream, true),
            None => (connect(connector, req.uri).await?, false),
        };
        match exchange(stream, &head, req.body).await {
            Ok((parts, stream, buf)) => {
                let framing = framing(req.method, &parts)?;
                let keep_alive = keep_alive(&parts, &framing);
                let mut body = DirectBody {
                    stream: Some(stream),
                    buf,
                    framing,
                    read_size: MIN_READ,
                    release: keep_alive.then(|| (Arc::clone(pool), key)),
                };
                body.release_if_done();
                return Ok((parts, body));
            }
            // The server closed the idle connection before reading the request: nothing
            // was processed, so the request goes out again on a new connection.
            Err(Failure::Stale(err)) if reused => {
                tracing::debug!(error = %err, "pooled connection was closed; reconnecting");
            }
            Err(Failure::Stale(err)) | Err(Failure::Other(err)) => return Err(err),
        }
    }
}

/// `host:port` of an `http://` URI.
fn pool_key(uri: &Uri) -> Box<str> {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    format!("{host}:{port}").into_boxed_str()
}

async fn connect(connector: &Connector, uri: &Uri) -> Result<TcpStream, TransportError> {
    match connector.connect_tcp(uri).await {
        Ok(stream) => Ok(stream),
        Err(err) => {
            if let Some(timed_out) = find_in_chain::<ConnectTimedOut>(&*err) {
                return Err(TransportError::timeout(TimeoutKind::Connect, timed_out.0));
            }
            Err(TransportError::connect(err))
        }
    }
}

/// The request line and headers, then the body if it is small (one write, one packet).
fn encode_head(req: &DirectRequest<'_>) -> BytesMut {
    let path = req
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let inline_body = req.body.len() <= MAX_INLINE_BODY;
    let mut out = BytesMut::with_capacity(
        256 + req.headers.len() * 64 + if inline_body { req.body.len() } else { 0 },
    );
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req.headers.contains_key(HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(req.uri.host().unwrap_or_default().as_bytes());
        if let Some(port) = req.uri.port_u16().filter(|p| *p != 80) {
            out.extend_from_slice(format!(":{port}").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
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

/// Why an exchange failed: `Stale` when the connection gave no response byte at all (it was
/// closed, or reset while writing), which on a reused connection means it had gone stale.
enum Failure {
    Stale(TransportError),
    Other(TransportError),
}

/// Writes the request and reads the response head. Returns the head, the connection and
/// whatever of the body was read with the head.
async fn exchange(
    stream: TcpStream,
    head: &[u8],
    body: &Bytes,
) -> Result<(http::response::Parts, TcpStream, BytesMut), Failure> {
    let stale = |err: io::Error| Failure::Stale(TransportError::request(Box::new(err)));
    write_all(&stream, head).await.map_err(stale)?;
    if body.len() > MAX_INLINE_BODY {
        write_all(&stream, body).await.map_err(stale)?;
    }
    let mut buf = BytesMut::with_capacity(MIN_READ);
    loop {
        match parse_head(&buf).map_err(Failure::Other)? {
            Some((parts, len)) => {
                buf.advance(len);
                if parts.status.is_informational() {
                    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(Failure::Other(TransportError::request(
                            "the server switched protocols (101), which this client does not do"
                                .into(),
                        )));
                    }
                    // 100 Continue, 103 Early Hints: the real response follows.
                    continue;
                }
                return Ok((parts, stream, buf));
            }
            None if buf.len() >= MAX_HEAD => {
                return Err(Failure::Other(TransportError::request(
                    format!("the response head is larger than {} KiB", MAX_HEAD / 1024).into(),
                )));
            }
            None => {}
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(MIN_READ);
        }
        let nothing_yet = buf.is_empty();
        let read = poll_fn(|cx| poll_read(&stream, &mut buf, cx)).await;
        match read {
            Ok(0) => {
                let err = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before the response head was complete",
                );
                return Err(if nothing_yet {
                    stale(err)
                } else {
                    Failure::Other(TransportError::request(Box::new(err)))
                });
            }
            Ok(_) => {}
            Err(err) if nothing_yet => return Err(stale(err)),
            Err(err) => return Err(Failure::Other(TransportError::request(Box::new(err)))),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => {
            return Err(TransportError::request(
                format!("invalid HTTP response head: {err}").into(),
            ));
        }
    };
    let invalid =
        |what: &str| TransportError::request(format!("invalid HTTP response head: {what}").into());
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
    if *method == Method::HEAD
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if let Some(te) = parts.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = te
            .to_str()
            .ok()
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim);
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunk::Size),
            _ => Framing::Eof,
        });
    }
    let mut length = None;
    for value in parts.headers.get_all(CONTENT_LENGTH) {
        for item in value.to_str().unwrap_or("x").split(',') {
            let parsed: u64 = item.trim().parse().map_err(|_| {
                TransportError::request("invalid HTTP response head: bad content-length".into())
            })?;
            if length.is_some_and(|l| l != parsed) {
                return Err(TransportError::request(
                    "invalid HTTP response head: conflicting content-length values".into(),
                ));
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::Eof, Framing::Length))
}

/// Whether the connection can carry another request after this response's body.
fn keep_alive(parts: &http::response::Parts, framing: &Framing) -> bool {
    if parts.version != Version::HTTP_11 || *framing == Framing::Eof {
        return false;
    }
    !parts.headers.get_all(CONNECTION).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    })
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

    /// Whether the body has been read to its end (or failed).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
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
                let (state, read, written) = decode_chunked(&mut self.buf, state)?;
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
/// is moved to its front. Returns the new state, how many input bytes were consumed and how
/// many data bytes are at the front.
fn decode_chunked(
    buf: &mut [u8],
    mut state: Chunk,
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
                    break;
                };
                let line = &buf[read..read + nl];
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
                Some([b'\n', ..]) => {
                    read += 1;
                    state = Chunk::Size;
                }
                Some([] | [b'\r']) | None => break,
                Some(_) => return Err(chunk_error("chunk data not followed by a line end")),
            },
            Chunk::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', &buf[read..]) else {
                    if len - read > MAX_LINE {
                        return Err(chunk_error("trailer line too long"));
                    }
                    break;
                };
                let line = &buf[read..read + nl];
                read += nl + 1;
                if line.is_empty() || line == b"\r" {
                    return Ok((Framing::Done, read, written));
                }
            }
        }
    }
    Ok((Framing::Chunked(state), read, written))
}

/// Parses `1a3f[;ext...][\r]`.
fn parse_chunk_size(line: &[u8]) -> Result<u64, TransportError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = match line.iter().position(|&b| b == b';') {
        Some(semi) => &line[..semi],
        None => line,
    };
    let digits = digits.trim_ascii();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], piece: usize) -> Result<(Vec<u8>, Framing), TransportError> {
        let mut body = DirectBody {
            stream: None,
            buf: BytesMut::new(),
            framing: Framing::Chunked(Chunk::Size),
            read_size: MIN_READ,
            release: None,
        };
        let mut out = Vec::new();
        for part in input.chunks(piece.max(1)) {
            body.buf.extend_from_slice(part);
            out.extend_from_slice(&body.decode()?);
        }
        Ok((out, body.framing))
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
            let (out, framing) = decode_all(input, piece).unwrap();
            assert_eq!(out, b"hello 0123456789", "piece {piece}");
            assert_eq!(framing, Framing::Done, "piece {piece}");
        }
    }

    #[test]
    fn chunked_bare_lf_and_unfinished() {
        let (out, framing) = decode_all(b"3\nabc\n2\nde", 4).unwrap();
        assert_eq!(out, b"abcde");
        assert_eq!(framing, Framing::Chunked(Chunk::DataEnd));
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
        assert!(
            chain(&err).contains("invalid HTTP response head"),
            "{}",
            chain(&err)
        );
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
        });
        assert_eq!(
            &head[..],
            b"POST /v1/chat?x=1 HTTP/1.1\r\nhost: example.test:8000\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        let uri: Uri = "http://example.test/".parse().unwrap();
        let head = encode_head(&DirectRequest {
            method: &Method::GET,
            uri: &uri,
            headers: &HeaderMap::new(),
            body: &Bytes::new(),
        });
        assert_eq!(&head[..], b"GET / HTTP/1.1\r\nhost: example.test\r\n\r\n");
    }
}
