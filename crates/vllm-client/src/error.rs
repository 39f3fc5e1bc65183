//! [`VllmError`]: every way a request can fail, with the server's message when there is one.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use vllm_transport::TransportError;
use vllm_types::ErrorResponse;

use crate::head::ResponseHead;

/// The error of every operation of this crate.
///
/// `Display` gives the server's own message when the server sent one (for a status error or a
/// mid-stream error event); otherwise it describes what failed, and [`source()`](StdError::source)
/// holds the cause. The predicates tell what kind of failure it was:
///
/// | predicate | the request… |
/// |---|---|
/// | [`is_builder`](Self::is_builder) | was never sent (bad parameters or configuration) |
/// | [`is_connect`](Self::is_connect) | never reached the server |
/// | [`is_timeout`](Self::is_timeout) | may have reached the server |
/// | [`is_status`](Self::is_status) | reached the server, which answered with an error status |
/// | [`is_server_event`](Self::is_server_event) | was streaming when the server sent an error event |
/// | [`is_stream`](Self::is_stream) | was streaming when the body was cut off or became unreadable |
/// | [`is_decode`](Self::is_decode) | got an answer that could not be decoded |
///
/// [`kind()`](Self::kind) gives the same as one [`ErrorKind`], for a `match`.
///
/// A status error names the request and the status before the server's message
/// (`POST /v1/chat/completions: 400 Bad Request: …`; the path never has its query, and no
/// header value is shown), and keeps the response's headers: [`headers`](Self::headers),
/// [`request_id`](Self::request_id).
///
/// It is `Send + Sync + 'static` and one pointer wide.
pub struct VllmError {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

enum Kind {
    /// The request was not sent: the reason.
    Builder(String),
    /// Connection, timeout, or I/O below HTTP (the transport error is the source).
    Transport(TransportError),
    /// A non-2xx answer.
    Status(Box<StatusError>),
    /// A `{"error": …}` event in a stream.
    ServerEvent(ErrorResponse),
    /// An answer that could not be decoded: what it was, and the start of it.
    Decode { what: String, snippet: String },
    /// A stream that ended before `[DONE]`, or whose bytes were not valid events.
    Stream(String),
}

/// A non-2xx answer: to which request, its status and headers, and its body as text and
/// parsed when it is one of the error shapes.
struct StatusError {
    /// The method and path (without the query) of the request, when known.
    request: Option<(http::Method, String)>,
    head: ResponseHead,
    parsed: Option<ErrorResponse>,
    text: String,
}

/// What kind of failure a [`VllmError`] is; see [`VllmError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was not sent: a parameter or the configuration was invalid.
    Builder,
    /// No connection could be made (the request never reached the server).
    Connect,
    /// A timeout fired; see [`VllmError::timeout_kind`].
    Timeout,
    /// The connection failed after the request went out, before an answer arrived.
    Request,
    /// The server answered with an error status.
    Status,
    /// The server sent an error event in the middle of a stream.
    ServerEvent,
    /// A stream or a body broke: cut off, or not valid events.
    Stream,
    /// An answer could not be decoded.
    Decode,
}

impl VllmError {
    fn new(kind: Kind) -> Self {
        VllmError {
            inner: Box::new(Inner { kind, source: None }),
        }
    }

    fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// The request was not sent because of `reason`.
    pub(crate) fn builder(reason: impl Into<String>) -> Self {
        Self::new(Kind::Builder(reason.into()))
    }

    /// The request was not sent because `source` failed.
    pub(crate) fn builder_from(
        reason: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::new(Kind::Builder(reason.into())).with_source(source)
    }

    /// A copy of a builder error (with its cause's text), for a builder asked for its body
    /// more than once.
    pub(crate) fn duplicate_builder(&self) -> Self {
        match (&self.inner.kind, &self.inner.source) {
            (Kind::Builder(reason), Some(source)) => Self::builder(format!("{reason}: {source}")),
            (Kind::Builder(reason), None) => Self::builder(reason.clone()),
            _ => Self::builder(self.to_string()),
        }
    }

    /// A non-2xx answer with its body (to an unknown request).
    pub(crate) fn status(status: u16, body: &[u8]) -> Self {
        Self::status_of(
            None,
            ResponseHead::new(status, http::HeaderMap::new()),
            body,
        )
    }

    /// A non-2xx answer to `request` (method and path), with its head and body.
    fn status_of(request: Option<(http::Method, String)>, head: ResponseHead, body: &[u8]) -> Self {
        Self::new(Kind::Status(Box::new(StatusError {
            request,
            head,
            parsed: serde_json::from_slice::<ErrorResponse>(body).ok(),
            text: String::from_utf8_lossy(body).into_owned(),
        })))
    }

    /// An error event in a stream.
    pub(crate) fn server_event(body: ErrorResponse) -> Self {
        Self::new(Kind::ServerEvent(body))
    }

    /// `data` (what it is: `what`) could not be decoded.
    pub(crate) fn decode(what: impl Into<String>, data: &str, source: serde_json::Error) -> Self {
        Self::new(Kind::Decode {
            what: what.into(),
            snippet: snippet(data),
        })
        .with_source(source)
    }

    /// `data` (what it is: `what`) could not be decoded, because of `source`.
    pub(crate) fn decode_other(
        what: impl Into<String>,
        data: &str,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::new(Kind::Decode {
            what: what.into(),
            snippet: snippet(data),
        })
        .with_source(source)
    }

    /// A stream failed: `what` happened.
    pub(crate) fn stream(what: impl Into<String>) -> Self {
        Self::new(Kind::Stream(what.into()))
    }

    /// What kind of failure this is, as one value (the `is_*` predicates, for a `match`).
    pub fn kind(&self) -> ErrorKind {
        match &self.inner.kind {
            Kind::Builder(_) => ErrorKind::Builder,
            Kind::Transport(e) if e.is_timeout() => ErrorKind::Timeout,
            Kind::Transport(e) if e.is_connect() => ErrorKind::Connect,
            Kind::Transport(e) if e.is_body() || e.is_decode() => ErrorKind::Stream,
            Kind::Transport(_) => ErrorKind::Request,
            Kind::Status(_) => ErrorKind::Status,
            Kind::ServerEvent(_) => ErrorKind::ServerEvent,
            Kind::Decode { .. } => ErrorKind::Decode,
            Kind::Stream(_) => ErrorKind::Stream,
        }
    }

    /// The headers of the response, for a status error (`x-request-id`, `retry-after`,
    /// rate-limit headers, …).
    pub fn headers(&self) -> Option<&http::HeaderMap> {
        match &self.inner.kind {
            Kind::Status(status) => Some(status.head.headers()),
            _ => None,
        }
    }

    /// The server's id for the failed request (its `x-request-id` header), for a status
    /// error: the key to the server's logs.
    pub fn request_id(&self) -> Option<&str> {
        crate::head::request_id(self.headers()?)
    }

    /// The HTTP status of a status error, or the status a server's error event carried.
    pub fn status_code(&self) -> Option<u16> {
        match &self.inner.kind {
            Kind::Status(status) => Some(status.head.status()),
            Kind::ServerEvent(body) => body.code().and_then(|c| c.as_u16()),
            Kind::Transport(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The request was not sent: a parameter or the configuration was invalid.
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder(_))
    }

    /// No connection could be made: the request never reached the server, so retrying is
    /// safe.
    pub fn is_connect(&self) -> bool {
        matches!(&self.inner.kind, Kind::Transport(e) if e.is_connect())
    }

    /// A timeout fired (connect, response head, idle gap in a stream, or whole request). Except
    /// for a connect timeout, the request may have reached the server.
    pub fn is_timeout(&self) -> bool {
        matches!(&self.inner.kind, Kind::Transport(e) if e.is_timeout())
    }

    /// Which timeout fired, if one did.
    pub fn timeout_kind(&self) -> Option<vllm_transport::TimeoutKind> {
        match &self.inner.kind {
            Kind::Transport(e) => e.timeout_kind(),
            _ => None,
        }
    }

    /// The server answered with an error status (see [`status_code`](Self::status_code) and
    /// [`server_error`](Self::server_error)).
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status(_))
    }

    /// The server sent an error event in the middle of a stream.
    pub fn is_server_event(&self) -> bool {
        matches!(self.inner.kind, Kind::ServerEvent(_))
    }

    /// A stream broke: cut off before `[DONE]`, its bytes were not valid events, or the
    /// connection failed while reading it.
    pub fn is_stream(&self) -> bool {
        match &self.inner.kind {
            Kind::Stream(_) => true,
            Kind::Transport(e) => e.is_body() || e.is_decode(),
            _ => false,
        }
    }

    /// An answer (a response body, a stream chunk, tool-call arguments) could not be decoded.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, Kind::Decode { .. })
    }

    /// Whether sending the same request again may succeed: connect errors (except a server
    /// certificate the client rejected and a proxy asking for credentials, which fail the
    /// same way every time), timeouts, and the statuses 408, 429, 500, 502, 503 and 504.
    /// (The client already retried the connect errors and statuses as configured before
    /// returning the error.)
    pub fn is_retryable(&self) -> bool {
        match &self.inner.kind {
            // The transport's word on connect errors: it is what decided the retries.
            Kind::Transport(e) => e.is_timeout() || e.is_retryable(),
            Kind::Status(status) => {
                matches!(status.head.status(), 408 | 429 | 500 | 502 | 503 | 504)
            }
            _ => false,
        }
    }

    /// The server's error body, parsed, for a status error or an error event.
    pub fn server_error(&self) -> Option<&ErrorResponse> {
        match &self.inner.kind {
            Kind::Status(status) => status.parsed.as_ref(),
            Kind::ServerEvent(body) => Some(body),
            _ => None,
        }
    }

    /// The body of a status error as text, exactly as the server sent it (an HTML page from
    /// a proxy, an empty string, JSON).
    pub fn body_text(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::Status(status) => Some(&status.text),
            _ => None,
        }
    }

    /// The server's message: from its error body, if it sent one that parses.
    pub fn server_message(&self) -> Option<String> {
        self.server_error()
            .map(|e| e.message().into_owned())
            .filter(|m| !m.is_empty())
    }

    /// How long the timeout that fired was, if one did.
    pub fn timeout_duration(&self) -> Option<Duration> {
        match &self.inner.kind {
            Kind::Transport(e) => e.timeout_duration(),
            _ => None,
        }
    }
}

impl From<TransportError> for VllmError {
    fn from(e: TransportError) -> Self {
        if e.is_status() {
            let head = ResponseHead::new(
                e.status().map_or(0, |s| s.as_u16()),
                e.headers().cloned().unwrap_or_default(),
            );
            let request = e
                .request_line()
                .map(|(method, path)| (method.clone(), path.to_owned()));
            let body = e.body().cloned().unwrap_or_default();
            return VllmError::status_of(request, head, &body).with_source(e);
        }
        if e.is_builder() {
            return VllmError::builder(e.to_string()).with_source(e);
        }
        VllmError::new(Kind::Transport(e))
    }
}

pub(crate) fn snippet(data: &str) -> String {
    const MAX: usize = 200;
    if data.len() <= MAX {
        return data.to_owned();
    }
    let mut end = MAX;
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &data[..end], data.len())
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

impl fmt::Display for VllmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(reason) => write!(f, "invalid request: {reason}"),
            Kind::Transport(e) => fmt::Display::fmt(e, f),
            Kind::Status(status) => {
                let code = status.head.status();
                match &status.request {
                    Some((method, path)) => write!(f, "{method} {path}: ")?,
                    None => f.write_str("HTTP ")?,
                }
                write!(f, "{code} {}", reason_phrase(code))?;
                match self.server_message() {
                    Some(message) => write!(f, ": {message}"),
                    None if !status.text.trim().is_empty() => {
                        write!(f, ": {}", snippet(status.text.trim()))
                    }
                    None => Ok(()),
                }
            }
            Kind::ServerEvent(body) => {
                let message = body.message();
                if message.is_empty() {
                    f.write_str("the server sent an error event with no message")
                } else {
                    f.write_str(&message)
                }
            }
            Kind::Decode { what, snippet } => write!(f, "could not decode {what}: {snippet:?}"),
            Kind::Stream(what) => f.write_str(what),
        }
    }
}

impl fmt::Debug for VllmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("VllmError");
        match &self.inner.kind {
            Kind::Builder(reason) => d.field("builder", reason),
            Kind::Transport(e) => d.field("transport", e),
            Kind::Status(status) => {
                if let Some((method, path)) = &status.request {
                    d.field("request", &format_args!("{method} {path}"));
                }
                d.field("status", &status.head.status());
                match &status.parsed {
                    Some(parsed) => d.field("body", parsed),
                    None => d.field("body_text", &status.text),
                }
            }
            Kind::ServerEvent(body) => d.field("server_event", body),
            Kind::Decode { what, snippet } => d.field("decode", what).field("data", snippet),
            Kind::Stream(what) => d.field("stream", what),
        };
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for VllmError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.inner.kind {
            Kind::Transport(e) => Some(e),
            _ => self
                .inner
                .source
                .as_deref()
                .map(|s| s as &(dyn StdError + 'static)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_sync_static_and_one_pointer_wide() {
        fn assert_bounds<T: Send + Sync + 'static + StdError>() {}
        assert_bounds::<VllmError>();
        assert_eq!(
            std::mem::size_of::<VllmError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn every_server_error_shape_gives_its_message() {
        for (body, message, code) in [
            (
                r#"{"error":{"message":"The model `x` does not exist.","type":"NotFoundError","param":"model","code":404}}"#,
                "The model `x` does not exist.",
                404,
            ),
            (
                r#"{"object":"error","message":"old shape","type":"BadRequestError","param":null,"code":400}"#,
                "old shape",
                400,
            ),
            (r#"{"error":"Unauthorized"}"#, "Unauthorized", 401),
            (
                r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                "Incorrect API key",
                401,
            ),
            (r#"{"detail":"Not Found"}"#, "Not Found", 404),
        ] {
            let e = VllmError::status(code, body.as_bytes());
            assert_eq!(
                e.to_string(),
                format!("HTTP {code} {}: {message}", reason_phrase(code))
            );
            assert_eq!(e.server_message().as_deref(), Some(message));
            assert_eq!(e.kind(), ErrorKind::Status);
            assert_eq!(e.status_code(), Some(code));
            assert!(e.is_status());
            assert!(e.server_error().is_some(), "{body}");
            assert_eq!(e.body_text(), Some(body));
        }
    }

    #[test]
    fn non_json_and_empty_bodies_are_kept_as_text() {
        let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        let e = VllmError::status(502, html.as_bytes());
        assert_eq!(e.to_string(), format!("HTTP 502 Bad Gateway: {html}"));
        assert_eq!(e.body_text(), Some(html));
        assert!(e.server_error().is_none());
        assert!(e.is_retryable());
        let e = VllmError::status(503, b"");
        assert_eq!(e.to_string(), "HTTP 503 Service Unavailable");
        assert_eq!(e.body_text(), Some(""));
        let e = VllmError::status(400, br#"{"error":{"message":"","type":"x","code":400}}"#);
        assert!(e.to_string().starts_with("HTTP 400 Bad Request: {"), "{e}");
        assert!(!VllmError::status(400, b"bad").is_retryable());
    }

    #[test]
    fn decode_errors_show_a_bounded_snippet_and_keep_the_cause() {
        let long = "x".repeat(1000);
        let cause = serde_json::from_str::<serde_json::Value>(&long).unwrap_err();
        let e = VllmError::decode("a response", &long, cause);
        assert!(e.is_decode());
        assert!(e.to_string().len() < 300, "{e}");
        assert!(e.to_string().contains("(1000 bytes)"), "{e}");
        assert!(e.source().is_some());
    }
}
