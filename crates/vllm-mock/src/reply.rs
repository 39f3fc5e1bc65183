//! A reply before delivery ([`Reply`]) and the response body that delivers it
//! ([`ReplyBody`]): in pieces, with delays, cut off where asked.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;
use serde_json::Value;

use crate::behavior::{Behavior, error_type};
use crate::json::{python_display, python_str};
use crate::shape::{detail_body, error_body, status_code};

/// What to send, before the delivery settings of a [`Behavior`] apply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: Payload,
}

/// The body of a [`Reply`].
#[derive(Debug)]
pub(crate) enum Payload {
    /// No body.
    Empty,
    /// A complete body of this content type (sent with `Content-Length`).
    Full(&'static str, Bytes),
    /// A complete body of a content type the user chose.
    Custom(String, Bytes),
    /// A complete body sent without a content type (as vLLM's plain `Response`s are).
    Untyped(Bytes),
    /// Server-sent events, each complete (`data: …\n\n`), sent with chunked encoding.
    Events(Vec<Bytes>),
}

impl Reply {
    /// `status` with a JSON body.
    pub(crate) fn json(status: u16, body: &impl Serialize) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|e| {
            format!(r#"{{"error":{{"message":"the mock could not encode its answer: {e}"}}}}"#)
                .into_bytes()
        });
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Full("application/json", Bytes::from(bytes)),
        }
    }

    /// `200` with a JSON body.
    pub(crate) fn ok(body: &impl Serialize) -> Reply {
        Reply::json(200, body)
    }

    /// `200` with a body of `content_type`.
    pub(crate) fn text(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Full(content_type, Bytes::from(body)),
        }
    }

    /// `200` with a body and no content type (vLLM's `Response(content=…)`).
    pub(crate) fn untyped(body: String) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Untyped(Bytes::from(body)),
        }
    }

    /// `200` with no body.
    pub(crate) fn empty() -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    /// `200` with server-sent events.
    pub(crate) fn events(events: Vec<Bytes>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Events(events),
        }
    }

    /// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`.
    pub(crate) fn error(status: u16, kind: &str, param: Option<&str>, message: &str) -> Reply {
        Reply::json(
            status,
            &error_body(message, kind, param, status_code(status)),
        )
    }

    /// A `400` of vLLM's own checks (`BadRequestError`).
    pub(crate) fn bad_request(param: Option<&str>, message: &str) -> Reply {
        Reply::error(400, error_type(400), param, message)
    }

    /// A `400` for a request body that failed validation, in pydantic's words as vLLM
    /// relays them.
    pub(crate) fn validation(kind: &str, loc: &str, msg: &str, input: &Value) -> Reply {
        Reply::validation_with_ctx(kind, loc, msg, input, None)
    }

    /// [`validation`](Self::validation) with pydantic's `ctx`.
    pub(crate) fn validation_with_ctx(
        kind: &str,
        loc: &str,
        msg: &str,
        input: &Value,
        ctx: Option<&str>,
    ) -> Reply {
        Reply::validation_errors(&[FieldError {
            kind: kind.to_owned(),
            loc: loc.to_owned(),
            msg: msg.to_owned(),
            input: input.clone(),
            ctx: ctx.map(str::to_owned),
        }])
    }

    /// The `400` vLLM sends for a body that failed validation with `errors` (at least one),
    /// as its handler words it: `N validation errors:` and each error on a line, at most 10
    /// of them, with `param` the location of the first.
    pub(crate) fn validation_errors(errors: &[FieldError]) -> Reply {
        let lines: Vec<String> = errors
            .iter()
            .take(MAX_REPORTED_ERRORS)
            .map(FieldError::line)
            .collect();
        let param = errors.first().map(|e| e.loc.as_str());
        Reply::validation_lines(errors.len(), &lines, param)
    }

    /// vLLM's `400` for a request whose `Content-Type` is not `application/json`.
    pub(crate) fn unsupported_media_type() -> Reply {
        let line = "Unsupported Media Type: Only 'application/json' is allowed".to_owned();
        Reply::validation_lines(1, &[line], None)
    }

    fn validation_lines(count: usize, lines: &[String], param: Option<&str>) -> Reply {
        let label = if count == 1 { "error" } else { "errors" };
        let mut message = format!("{count} validation {label}:\n");
        for line in lines {
            message.push_str(&format!("  {line}\n"));
        }
        if count > lines.len() {
            message.push_str(&format!("  ...and {} more {label}\n", count - lines.len()));
        }
        let message = message.trim_end();
        Reply::error(400, "Bad Request", param, message)
    }

    /// FastAPI's `{"detail": …}` with `status`.
    pub(crate) fn detail(status: u16, detail: &str) -> Reply {
        Reply::json(status, &detail_body(detail))
    }

    /// A scripted error.
    pub(crate) fn scripted(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload: Payload::Custom(content_type.to_owned(), Bytes::from(body.to_owned())),
        }
    }
}

/// How many errors vLLM lists in a validation error's message (it counts the rest).
const MAX_REPORTED_ERRORS: usize = 10;
/// How much of an offending input vLLM shows.
const MAX_INPUT_CHARS: usize = 200;
/// How much of one error vLLM shows.
const MAX_ERROR_CHARS: usize = 1000;

/// One of pydantic's validation errors: its type, where (`body.messages.0.role`), its
/// message, the offending input and pydantic's `ctx` (already as Python writes it).
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub(crate) kind: String,
    pub(crate) loc: String,
    pub(crate) msg: String,
    pub(crate) input: Value,
    pub(crate) ctx: Option<String>,
}

impl FieldError {
    pub(crate) fn new(
        kind: &str,
        loc: impl Into<String>,
        msg: impl Into<String>,
        input: &Value,
    ) -> Self {
        FieldError {
            kind: kind.to_owned(),
            loc: loc.into(),
            msg: msg.into(),
            input: input.clone(),
            ctx: None,
        }
    }

    pub(crate) fn with_ctx(mut self, ctx: impl Into<String>) -> Self {
        self.ctx = Some(ctx.into());
        self
    }

    /// The error as vLLM's handler writes it: the `str` of its dict, the input summarized
    /// (lists and dicts by their size, anything else as its `str`, long ones cut).
    fn line(&self) -> String {
        let ctx = self
            .ctx
            .as_ref()
            .map_or(String::new(), |c| format!(", 'ctx': {c}"));
        let text = format!(
            "{{'type': {}, 'loc': {}, 'msg': {}, 'input': {}{ctx}}}",
            python_str(&self.kind),
            python_str(&self.loc),
            python_str(&self.msg),
            python_str(&summarize_input(&self.input)),
        );
        truncate(&text, MAX_ERROR_CHARS)
    }
}

/// vLLM's stand-in for an error's input: `<list of N items>`, `<dict of N items>`, or the
/// value's `str`, cut after 200 characters.
fn summarize_input(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("<list of {} items>", items.len()),
        Value::Object(map) => format!("<dict of {} items>", map.len()),
        other => truncate(&python_display(other), MAX_INPUT_CHARS),
    }
}

/// `text` cut after `max` characters, marked as cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...[truncated]", &text[..at]),
        None => text.to_owned(),
    }
}

/// One step of a body's delivery.
#[derive(Debug)]
enum Part {
    /// Bytes to send as one frame.
    Data(Bytes),
    /// Wait.
    Delay(Duration),
    /// Let the connection flush what it holds before the next frame.
    Flush,
    /// Fail the body: the connection is closed at once.
    Abort,
}

/// A response body that sends its parts in order: frames, waits, flushes, and maybe an
/// abrupt end.
#[derive(Debug)]
pub(crate) struct ReplyBody {
    parts: VecDeque<Part>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    exact_len: Option<u64>,
}

impl ReplyBody {
    /// The body of `payload` delivered as `behavior` says (no behavior: at once). Returns the
    /// content type too.
    pub(crate) fn new(
        payload: Payload,
        behavior: Option<&Behavior>,
    ) -> (ReplyBody, Option<String>) {
        let default = Behavior::default();
        let b = behavior.unwrap_or(&default);
        let (content_type, pieces, exact) = match payload {
            Payload::Empty => (None, Vec::new(), true),
            Payload::Full(ct, bytes) => (Some(ct.to_owned()), vec![bytes], true),
            Payload::Custom(ct, bytes) => (Some(ct), vec![bytes], true),
            Payload::Untyped(bytes) => (None, vec![bytes], true),
            Payload::Events(events) => (
                Some("text/event-stream; charset=utf-8".to_owned()),
                stream_events(events, b),
                false,
            ),
        };
        let total: usize = pieces.iter().map(Bytes::len).sum();
        let mut parts = VecDeque::new();
        if b.write_size.is_some() {
            // The head goes out in a write of its own, before the first piece.
            parts.push_back(Part::Flush);
        }
        let mut sent = 0usize;
        let mut cut = false;
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 {
                if let (Some(delay), false) = (b.event_delay, exact) {
                    parts.push_back(Part::Delay(delay));
                }
            }
            let mut piece = piece;
            if let Some(limit) = b.cut_after_bytes {
                let room = limit.saturating_sub(sent);
                if piece.len() >= room {
                    piece.truncate(room);
                    cut = true;
                }
            }
            sent += piece.len();
            push_split(&mut parts, piece, b.write_size);
            if cut {
                break;
            }
        }
        let aborted_events = !exact && b.cut_after_events.is_some();
        if cut || aborted_events {
            // Let the connection write out what it holds, then close it.
            parts.push_back(Part::Flush);
            parts.push_back(Part::Abort);
        }
        let body = ReplyBody {
            parts,
            sleep: None,
            exact_len: exact.then_some(total as u64),
        };
        (body, content_type)
    }
}

/// The events of a stream as `behavior` changes them: an error event put in, or the
/// stream cut short.
fn stream_events(mut events: Vec<Bytes>, b: &Behavior) -> Vec<Bytes> {
    if let Some(err) = &b.stream_error {
        events.truncate(err.after);
        let code = status_code(err.status);
        let body = error_body(&err.message, error_type(err.status), None, code);
        let body = serde_json::to_string(&body).unwrap_or_default();
        events.push(Bytes::from(format!("data: {body}\n\n")));
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    if let Some(n) = b.cut_after_events {
        events.truncate(n);
    }
    events
}

/// `bytes` as frames of at most `size` bytes with a flush after each, or as one frame.
fn push_split(parts: &mut VecDeque<Part>, bytes: Bytes, size: Option<usize>) {
    if bytes.is_empty() {
        return;
    }
    match size {
        Some(size) => {
            let mut rest = bytes;
            while !rest.is_empty() {
                let piece = rest.split_to(size.min(rest.len()));
                parts.push_back(Part::Data(piece));
                parts.push_back(Part::Flush);
            }
        }
        None => parts.push_back(Part::Data(bytes)),
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            match this.parts.pop_front() {
                None => return Poll::Ready(None),
                Some(Part::Data(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Some(Part::Delay(delay)) => {
                    this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
                }
                Some(Part::Flush) => {
                    // Pending makes the connection write out what it holds; come back at once.
                    if !this.parts.is_empty() {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Some(Part::Abort) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the mock cut the response off as scripted",
                    ))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty() && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(body: &ReplyBody) -> Vec<Vec<u8>> {
        body.parts
            .iter()
            .filter_map(|p| match p {
                Part::Data(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect()
    }

    fn events() -> Vec<Bytes> {
        ["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"]
            .into_iter()
            .map(Bytes::from)
            .collect()
    }

    #[test]
    fn write_size_splits_every_piece() {
        let b = Behavior::new().write_size(4);
        let (body, ct) = ReplyBody::new(Payload::Events(events()), Some(&b));
        assert_eq!(ct.as_deref(), Some("text/event-stream; charset=utf-8"));
        let frames = data(&body);
        assert!(frames.iter().all(|f| f.len() <= 4));
        assert_eq!(frames.concat(), b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
    }

    #[test]
    fn cut_after_events_drops_the_rest_and_aborts() {
        let b = Behavior::new().cut_after(1);
        let (body, _) = ReplyBody::new(Payload::Events(events()), Some(&b));
        assert_eq!(data(&body).concat(), b"data: 1\n\n");
        assert!(matches!(body.parts.back(), Some(Part::Abort)));
    }

    #[test]
    fn stream_error_replaces_the_rest() {
        let b = Behavior::new().stream_error_after(1, 500, "boom");
        let (body, _) = ReplyBody::new(Payload::Events(events()), Some(&b));
        let text = String::from_utf8(data(&body).concat()).unwrap();
        assert_eq!(
            text,
            "data: 1\n\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn full_bodies_announce_their_whole_length_even_when_cut() {
        let (body, _) = ReplyBody::new(Payload::Full("application/json", Bytes::from("{}")), None);
        assert_eq!(body.size_hint().exact(), Some(2));
        let b = Behavior::new().cut_after_bytes(1);
        let (body, _) = ReplyBody::new(
            Payload::Full("application/json", Bytes::from("{}")),
            Some(&b),
        );
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(data(&body).concat(), b"{");
        assert!(matches!(body.parts.back(), Some(Part::Abort)));
    }
}
