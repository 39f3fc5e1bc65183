//! The single error type of this crate.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

/// A boxed error used as the cause of a [`TransportError`].
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How much of a status error's body `Debug` shows.
const DEBUG_BODY_PREVIEW: usize = 512;

/// Every error this crate returns.
///
/// One type for the whole transport: inspect it with the `is_*` predicates. The
/// [`Display`](fmt::Display) text describes what failed at this layer only; the underlying
/// cause (an I/O error, a TLS error, a hyper error, an SSE decoding error) is available
/// through [`source()`](StdError::source).
///
/// The error is one pointer wide (the details are boxed), `Send`, `Sync` and `'static`.
///
/// Each predicate says whether the request may have reached the server, which tells a caller
/// whether sending it again could run it twice.
pub struct TransportError {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
}

enum Kind {
    Builder(&'static str),
    Connect,
    Timeout(TimeoutKind, Duration),
    /// Failed before a response head; with what this layer saw go wrong, when it was not
    /// an I/O error (a malformed head, a close without an answer).
    Request(Option<Box<str>>),
    Status(Box<StatusParts>),
    Body,
    BodyTooLarge(usize),
    Decode,
}

struct StatusParts {
    method: Method,
    /// The request's path, without its query.
    path: Box<str>,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Which timeout fired; see [`TransportError::timeout_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the connection (DNS, TCP and TLS handshake) took too long.
    /// The request was not sent.
    Connect,
    /// The response head (status line and headers) did not arrive in time.
    /// The request may have reached the server.
    ResponseHead,
    /// No response body data arrived for too long between two chunks.
    /// The request reached the server.
    Idle,
    /// The whole call (all attempts, backoff waits and, for buffered bodies, reading the
    /// body) took too long. The request may have reached the server.
    Total,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::ResponseHead => "response head",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Total => "total",
        })
    }
}

impl TransportError {
    fn new(kind: Kind, source: Option<BoxError>) -> Self {
        TransportError {
            inner: Box::new(Inner { kind, source }),
        }
    }

    pub(crate) fn builder(msg: &'static str) -> Self {
        Self::new(Kind::Builder(msg), None)
    }

    pub(crate) fn builder_with(msg: &'static str, source: impl Into<BoxError>) -> Self {
        Self::new(Kind::Builder(msg), Some(source.into()))
    }

    pub(crate) fn connect(source: BoxError) -> Self {
        Self::new(Kind::Connect, Some(source))
    }

    pub(crate) fn timeout(kind: TimeoutKind, after: Duration) -> Self {
        Self::new(Kind::Timeout(kind, after), None)
    }

    pub(crate) fn request(source: BoxError) -> Self {
        Self::new(Kind::Request(None), Some(source))
    }

    /// A failure before the response head that this layer found itself (no cause below it):
    /// `reason` is its `Display`.
    pub(crate) fn request_reason(reason: impl Into<Box<str>>) -> Self {
        Self::new(Kind::Request(Some(reason.into())), None)
    }

    pub(crate) fn new_status(
        method: Method,
        path: &str,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        Self::new(
            Kind::Status(Box::new(StatusParts {
                method,
                path: path.into(),
                status,
                headers,
                body,
            })),
            None,
        )
    }

    pub(crate) fn new_body(source: BoxError) -> Self {
        Self::new(Kind::Body, Some(source))
    }

    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(Kind::BodyTooLarge(limit), None)
    }

    pub(crate) fn decode(source: BoxError) -> Self {
        Self::new(Kind::Decode, Some(source))
    }

    /// The request could not be built: an invalid URL or header, an unsupported scheme
    /// (`https://` without the `rustls` feature), or an invalid client configuration.
    ///
    /// Nothing was sent.
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder(_))
    }

    /// No connection could be established (DNS, TCP or TLS handshake failed, or the connect
    /// timeout fired; [`is_timeout`](Self::is_timeout) tells the latter apart).
    ///
    /// The request did not reach the server, so sending it again is safe.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::Connect | Kind::Timeout(TimeoutKind::Connect, _)
        )
    }

    /// A timeout fired; [`timeout_kind`](Self::timeout_kind) says which one.
    ///
    /// Except for [`TimeoutKind::Connect`], the request may have reached the server.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(..))
    }

    /// Which timeout fired, if this is a timeout error.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self.inner.kind {
            Kind::Timeout(kind, _) => Some(kind),
            _ => None,
        }
    }

    /// The configured duration of the timeout that fired, if this is a timeout error.
    pub fn timeout_duration(&self) -> Option<Duration> {
        match self.inner.kind {
            Kind::Timeout(_, after) => Some(after),
            _ => None,
        }
    }

    /// The connection failed after it was established and before a response head arrived
    /// (for example the server closed it, or an HTTP protocol error).
    ///
    /// The request may have reached the server.
    pub fn is_request(&self) -> bool {
        matches!(self.inner.kind, Kind::Request(_))
    }

    /// The server answered with a status outside `200..=299`.
    ///
    /// The request reached the server. The status, headers and (up to the configured
    /// limit) body of the response are kept: see [`status`](Self::status),
    /// [`headers`](Self::headers) and [`body`](Self::body).
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status(_))
    }

    /// The response status, if this is a status error.
    pub fn status(&self) -> Option<StatusCode> {
        self.status_parts().map(|p| p.status)
    }

    /// The response headers, if this is a status error.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.status_parts().map(|p| &p.headers)
    }

    /// The method and the path (without the query) of the request that got the error
    /// status, if this is a status error.
    pub fn request_line(&self) -> Option<(&Method, &str)> {
        self.status_parts().map(|p| (&p.method, &*p.path))
    }

    /// The response body, if this is a status error.
    ///
    /// The body is read up to the configured error body limit (1 MiB by default); a longer
    /// body, or one whose reading failed or timed out, is kept as far as it was read.
    pub fn body(&self) -> Option<&Bytes> {
        self.status_parts().map(|p| &p.body)
    }

    /// Reading the response body failed: the connection was cut off before the body was
    /// complete, a read error occurred, or the body is larger than the configured limit.
    ///
    /// The request reached the server (a response head arrived).
    pub fn is_body(&self) -> bool {
        matches!(self.inner.kind, Kind::Body | Kind::BodyTooLarge(_))
    }

    /// The response body is not a valid event stream: invalid UTF-8, an event larger than
    /// the decoder's limit, or the body ended in the middle of an event. The
    /// [`sse::SseError`](crate::sse::SseError) is the [`source()`](StdError::source), also
    /// available from [`sse_error`](Self::sse_error).
    ///
    /// The request reached the server.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, Kind::Decode)
    }

    /// The SSE decoding error, if this is a decode error.
    pub fn sse_error(&self) -> Option<&crate::sse::SseError> {
        match self.inner.kind {
            Kind::Decode => self.inner.source.as_ref()?.downcast_ref(),
            _ => None,
        }
    }

    /// Whether the transport considers this error transient and safe to retry: a connect
    /// error (other than a rejected TLS certificate), or a status of 408, 429, 500, 502, 503
    /// or 504.
    ///
    /// The transport already retried such errors up to the configured maximum before
    /// returning them. A status error may have been processed by the server (for example a
    /// 504 from a proxy); a connect error was not.
    pub fn is_retryable(&self) -> bool {
        match &self.inner.kind {
            Kind::Connect | Kind::Timeout(TimeoutKind::Connect, _) => {
                !self.is_tls_rejection() && !self.is_proxy_auth_required()
            }
            Kind::Status(parts) => is_retryable_status(parts.status),
            _ => false,
        }
    }

    fn status_parts(&self) -> Option<&StatusParts> {
        match &self.inner.kind {
            Kind::Status(parts) => Some(parts),
            _ => None,
        }
    }

    /// The connection failed through a proxy: which one, and why.
    fn proxy_failure(&self) -> Option<&crate::proxy::ProxyFailed> {
        find_in_chain::<crate::proxy::ProxyFailed>(&**self.inner.source.as_ref()?)
    }

    fn is_proxy_auth_required(&self) -> bool {
        self.proxy_failure()
            .is_some_and(crate::proxy::ProxyFailed::is_auth_required)
    }

    #[cfg(feature = "rustls")]
    fn is_tls_rejection(&self) -> bool {
        match &self.inner.source {
            Some(source) => find_in_chain::<rustls::Error>(&**source).is_some(),
            None => false,
        }
    }

    #[cfg(not(feature = "rustls"))]
    fn is_tls_rejection(&self) -> bool {
        false
    }
}

/// Statuses the transport retries.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Finds an error of type `T` in a `source()` chain, looking inside `io::Error`s too
/// (whose `source()` skips the error they wrap).
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    mut err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    loop {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(found) = find_in_chain::<T>(inner) {
                    return Some(found);
                }
            }
        }
        err = err.source()?;
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(msg) => f.write_str(msg),
            Kind::Connect => match self.proxy_failure() {
                Some(proxy) => write!(f, "{proxy}"),
                None => f.write_str("failed to connect to the server"),
            },
            Kind::Timeout(TimeoutKind::Connect, after) => {
                write!(f, "connect timed out after {after:?}")
            }
            Kind::Timeout(TimeoutKind::ResponseHead, after) => {
                write!(f, "response head timed out after {after:?}")
            }
            Kind::Timeout(TimeoutKind::Idle, after) => {
                write!(f, "idle timeout: no response body data for {after:?}")
            }
            Kind::Timeout(TimeoutKind::Total, after) => {
                write!(f, "request timed out after {after:?} (total timeout)")
            }
            Kind::Request(Some(reason)) => f.write_str(reason),
            Kind::Request(None) => f.write_str("connection failed before a response arrived"),
            Kind::Status(parts) => write!(f, "{} {}: {}", parts.method, parts.path, parts.status),
            Kind::Body => f.write_str("failed to read the response body"),
            Kind::BodyTooLarge(limit) => {
                write!(f, "response body is larger than the limit of {limit} bytes")
            }
            Kind::Decode => f.write_str("invalid event stream in the response body"),
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TransportError");
        match &self.inner.kind {
            Kind::Builder(msg) => d.field("kind", &"Builder").field("message", msg),
            Kind::Connect => d.field("kind", &"Connect"),
            Kind::Timeout(kind, after) => d
                .field("kind", &"Timeout")
                .field("timeout", kind)
                .field("after", after),
            Kind::Request(reason) => {
                d.field("kind", &"Request");
                if let Some(reason) = reason {
                    d.field("reason", reason);
                }
                &mut d
            }
            Kind::Status(parts) => {
                let preview = &parts.body[..parts.body.len().min(DEBUG_BODY_PREVIEW)];
                d.field("kind", &"Status")
                    .field("method", &parts.method)
                    .field("path", &parts.path)
                    .field("status", &parts.status)
                    .field("headers", &parts.headers)
                    .field("body", &String::from_utf8_lossy(preview))
                    .field("body_len", &parts.body.len())
            }
            Kind::Body => d.field("kind", &"Body"),
            Kind::BodyTooLarge(limit) => d.field("kind", &"BodyTooLarge").field("limit", limit),
            Kind::Decode => d.field("kind", &"Decode"),
        };
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn StdError + 'static))
    }
}

/// The error a connect attempt fails with when the connect timeout fires.
#[derive(Debug)]
pub(crate) struct ConnectTimedOut(pub(crate) Duration);

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect timed out after {:?}", self.0)
    }
}

impl StdError for ConnectTimedOut {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_display_names_the_timeout() {
        let err = TransportError::timeout(TimeoutKind::ResponseHead, Duration::from_secs(5));
        assert_eq!(err.to_string(), "response head timed out after 5s");
        let err = TransportError::timeout(TimeoutKind::Connect, Duration::from_millis(250));
        assert_eq!(err.to_string(), "connect timed out after 250ms");
        assert!(err.is_connect() && err.is_timeout() && err.is_retryable());
    }

    #[test]
    fn status_error_keeps_parts() {
        let err = TransportError::new_status(
            Method::POST,
            "/v1/chat/completions",
            StatusCode::SERVICE_UNAVAILABLE,
            HeaderMap::new(),
            Bytes::from_static(b"busy"),
        );
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 503 Service Unavailable"
        );
        assert_eq!(
            err.request_line(),
            Some((&Method::POST, "/v1/chat/completions"))
        );
        assert_eq!(err.body().map(|b| &b[..]), Some(&b"busy"[..]));
        assert!(err.is_retryable());
        assert!(!err.is_connect() && !err.is_timeout() && !err.is_body());
    }

    #[test]
    fn find_in_chain_looks_inside_io_errors() {
        let inner = ConnectTimedOut(Duration::from_secs(1));
        let io = std::io::Error::other(inner);
        let boxed: BoxError = Box::new(io);
        assert!(find_in_chain::<ConnectTimedOut>(&*boxed).is_some());
    }
}
