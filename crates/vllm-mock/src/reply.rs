//! A reply before delivery ([`Reply`]) and the response body that delivers it
//! ([`ReplyBody`]): in pieces, with delays, cut off where asked, and for a generating
//! request paced by the simulated engine, its events made one at a time as the client reads
//! them.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;
use serde_json::Value;

use crate::behavior::{Behavior, error_type};
use crate::engine::{Admission, Engine};
use crate::json::{python_display, python_str};
use crate::shape::{detail_body, error_body, status_code};
use crate::track::Tracker;

/// What to send, before the delivery settings of a [`Behavior`] apply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: Payload,
    /// For a generating request: its way through the engine (boxed: most replies have none).
    pub(crate) generation: Option<Box<Generation>>,
}

/// A generating request: its tracker, and how many tokens a whole answer holds.
#[derive(Debug)]
pub(crate) struct Generation {
    pub(crate) tracker: Tracker,
    /// The output tokens of the whole answer (for an answer that is not streamed).
    pub(crate) tokens: u32,
}

/// Where a stream's events come from: made one at a time, as the client reads them.
pub(crate) trait EventSource: Send + fmt::Debug {
    /// The next event (`data: …\n\n`) and how many output tokens it carries; `None` after
    /// the last.
    fn next_event(&mut self) -> Option<(Bytes, u32)>;
}

/// Events made already.
#[derive(Debug)]
struct Prepared(std::vec::IntoIter<Bytes>);

impl EventSource for Prepared {
    fn next_event(&mut self) -> Option<(Bytes, u32)> {
        self.0.next().map(|event| (event, 0))
    }
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
    /// Server-sent events made as they are sent.
    Stream(Box<dyn EventSource>),
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
            generation: None,
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
            generation: None,
        }
    }

    /// `200` with a body and no content type (vLLM's `Response(content=…)`).
    pub(crate) fn untyped(body: String) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Untyped(Bytes::from(body)),
            generation: None,
        }
    }

    /// `200` with no body.
    pub(crate) fn empty() -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Empty,
            generation: None,
        }
    }

    /// `200` with server-sent events.
    pub(crate) fn events(events: Vec<Bytes>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Events(events),
            generation: None,
        }
    }

    /// `200` with server-sent events made as they are sent, paced by the engine.
    pub(crate) fn stream(source: impl EventSource + 'static, tracker: Tracker) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Stream(Box::new(source)),
            generation: Some(Box::new(Generation { tracker, tokens: 0 })),
        }
    }

    /// The same reply, a whole answer of `tokens` output tokens, paced by the engine.
    pub(crate) fn generated(mut self, tracker: Tracker, tokens: u32) -> Reply {
        self.generation = Some(Box::new(Generation { tracker, tokens }));
        self
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
            generation: None,
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
/// abrupt end. A stream's events are made as the body is read (so a long stream costs no
/// memory and back-pressure reaches the generator), and a generating request's are paced
/// by the engine.
#[derive(Debug)]
pub(crate) struct ReplyBody {
    parts: VecDeque<Part>,
    /// The events not made yet.
    source: Option<Box<dyn EventSource>>,
    delivery: Delivery,
    /// The next event's position in the stream as delivered (an error event included).
    event: usize,
    /// The bytes of the body sent so far.
    sent: usize,
    sleep: Option<Pin<Box<crate::clock::Sleep>>>,
    pacing: Option<Pacing>,
    exact_len: Option<u64>,
}

/// How a [`Behavior`] changes a body's delivery.
#[derive(Debug, Clone, Default)]
struct Delivery {
    event_delay: Option<Duration>,
    write_size: Option<usize>,
    cut_after_events: Option<usize>,
    cut_after_bytes: Option<usize>,
    /// After this many events, an error event and `[DONE]` instead of the rest.
    error: Option<(usize, Bytes)>,
}

/// A generating request's way through the engine while its events are sent.
#[derive(Debug)]
struct Pacing {
    engine: Arc<Engine>,
    tracker: Tracker,
    /// Waiting for a slot (`None` once admitted).
    admission: Option<Admission>,
    /// The prefill (time to first token) was waited for.
    prefilled: bool,
    /// An event made, held back until its tokens' decode time has passed.
    held: Option<(Bytes, u32)>,
    /// Whether `held` has waited its decode time.
    waited: bool,
    /// When the last token was due (the end of the prefill, before the first): tokens are
    /// timed from it, not from when the previous one went out, so that the timer's lateness
    /// does not add up over a stream.
    clock: Option<tokio::time::Instant>,
    /// When the request got its slot: the prefill runs from then, so the time to first
    /// token counts from the request's admission, the mock's own work before the first
    /// event (writing the head, the first poll of the body) included, as vLLM's does.
    admitted_at: Option<tokio::time::Instant>,
}

impl ReplyBody {
    /// The body of `payload` delivered as `behavior` says (no behavior: at once), and for a
    /// generating stream paced by `engine`. Returns the content type too.
    pub(crate) fn new(
        payload: Payload,
        behavior: Option<&Behavior>,
        pacing: Option<(Arc<Engine>, Tracker)>,
    ) -> (ReplyBody, Option<String>) {
        let default = Behavior::default();
        let b = behavior.unwrap_or(&default);
        let event_stream = || Some("text/event-stream; charset=utf-8".to_owned());
        let (content_type, whole, source): (_, _, Option<Box<dyn EventSource>>) = match payload {
            Payload::Empty => (None, Some(Bytes::new()), None),
            Payload::Full(ct, bytes) => (Some(ct.to_owned()), Some(bytes), None),
            Payload::Custom(ct, bytes) => (Some(ct), Some(bytes), None),
            Payload::Untyped(bytes) => (None, Some(bytes), None),
            Payload::Events(events) => (
                event_stream(),
                None,
                Some(Box::new(Prepared(events.into_iter()))),
            ),
            Payload::Stream(source) => (event_stream(), None, Some(source)),
        };
        let delivery = Delivery {
            event_delay: b.event_delay,
            write_size: b.write_size,
            cut_after_events: b.cut_after_events,
            cut_after_bytes: b.cut_after_bytes,
            error: b.stream_error.as_ref().map(|err| {
                let code = status_code(err.status);
                let body = error_body(&err.message, error_type(err.status), None, code);
                let body = serde_json::to_string(&body).unwrap_or_default();
                (err.after, Bytes::from(format!("data: {body}\n\n")))
            }),
        };
        let mut body = ReplyBody {
            parts: VecDeque::new(),
            source,
            delivery,
            event: 0,
            sent: 0,
            sleep: None,
            pacing: pacing.map(|(engine, tracker)| {
                let admission = engine.admit();
                let admitted_at =
                    matches!(admission, Admission::Ready(_)).then(tokio::time::Instant::now);
                Pacing {
                    admission: Some(admission),
                    engine,
                    tracker,
                    prefilled: false,
                    held: None,
                    waited: false,
                    clock: None,
                    admitted_at,
                }
            }),
            exact_len: None,
        };
        if body.delivery.write_size.is_some() {
            // The head goes out in a write of its own, before the first piece.
            body.parts.push_back(Part::Flush);
        }
        if let Some(whole) = whole {
            body.exact_len = Some(whole.len() as u64);
            body.push_piece(whole);
        }
        (body, content_type)
    }

    /// Queues `piece` as frames, cut off where the delivery says.
    fn push_piece(&mut self, mut piece: Bytes) {
        let mut cut = false;
        if let Some(limit) = self.delivery.cut_after_bytes {
            let room = limit.saturating_sub(self.sent);
            if piece.len() >= room {
                piece.truncate(room);
                cut = true;
            }
        }
        self.sent += piece.len();
        push_split(&mut self.parts, piece, self.delivery.write_size);
        if cut {
            self.abort();
        }
    }

    /// Ends the body abruptly, after the connection wrote out what it holds.
    fn abort(&mut self) {
        self.source = None;
        self.parts.push_back(Part::Flush);
        self.parts.push_back(Part::Abort);
    }

    /// Queues the next event of the stream as the delivery shapes it, or sets a wait (for a
    /// slot, the prefill, or the event's decode time) to be slept before coming back.
    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(pacing) = self.pacing.as_mut() {
            if let Some(admission) = pacing.admission.as_mut() {
                let slot = ready!(admission.poll_slot(cx));
                pacing.admission = None;
                pacing.tracker.admitted(slot);
                pacing
                    .admitted_at
                    .get_or_insert_with(tokio::time::Instant::now);
            }
            if !pacing.prefilled {
                pacing.prefilled = true;
                let ttft = pacing.engine.timing.ttft_time();
                let from = pacing.admitted_at.unwrap_or_else(tokio::time::Instant::now);
                let until = pacing.engine.on_step(from + ttft);
                pacing.clock = Some(until);
                if until > tokio::time::Instant::now() {
                    self.sleep = Some(Box::pin(crate::clock::sleep_until(until)));
                    return Poll::Ready(());
                }
            }
        }
        if self.delivery.cut_after_events == Some(self.event) {
            self.abort();
            return Poll::Ready(());
        }
        if self
            .delivery
            .error
            .as_ref()
            .is_some_and(|(after, _)| *after == self.event)
        {
            // The rest of the stream is the error, then [DONE].
            if let Some((_, error)) = self.delivery.error.take() {
                let rest = vec![error, Bytes::from_static(b"data: [DONE]\n\n")];
                self.source = Some(Box::new(Prepared(rest.into_iter())));
            }
            if let Some(pacing) = self.pacing.as_mut() {
                pacing.held = None;
            }
        }
        let held = self.pacing.as_mut().and_then(|p| p.held.take());
        let next = held.or_else(|| self.source.as_mut().and_then(|s| s.next_event()));
        let Some((event, tokens)) = next else {
            self.source = None;
            if let Some(pacing) = self.pacing.as_mut() {
                pacing.tracker.complete();
            }
            return Poll::Ready(());
        };
        if let Some(pacing) = self.pacing.as_mut() {
            if tokens > 0 && !pacing.waited {
                if let Some(until) = pacing.decode_until(tokens) {
                    pacing.held = Some((event, tokens));
                    pacing.waited = true;
                    self.sleep = Some(Box::pin(crate::clock::sleep_until(until)));
                    return Poll::Ready(());
                }
            }
            pacing.waited = false;
            pacing.tracker.tokens(tokens);
        }
        if self.event > 0 {
            if let Some(delay) = self.delivery.event_delay {
                self.parts.push_back(Part::Delay(delay));
            }
        }
        self.event += 1;
        let event = match &self.pacing {
            Some(pacing) if pacing.engine.timing.stamps_events() => stamp(event),
            _ => event,
        };
        self.push_piece(event);
        Poll::Ready(())
    }
}

impl Pacing {
    /// When `tokens` more tokens may go out, if that is later than now: their decode time
    /// (for tokens after the first) after the last token was due, and the server's rate cap.
    fn decode_until(&mut self, tokens: u32) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        let decode = if self.tracker.has_tokens() {
            self.engine.decode_time(tokens)
        } else {
            Duration::ZERO
        };
        let mut until = self.engine.on_step(self.clock.unwrap_or(now) + decode);
        if let Some(at) = self.engine.reserve(tokens) {
            until = until.max(at);
        }
        self.clock = Some(until);
        (until > now).then_some(until)
    }
}

/// `event` (`data: {…}`) with `"mock_sent_ns"`, the monotonic clock now, as its first member;
/// other events (`[DONE]`) as they are.
fn stamp(event: Bytes) -> Bytes {
    const OPEN: &[u8] = b"data: {";
    let (Some(rest), Some(ns)) = (event.strip_prefix(OPEN), crate::clock::monotonic_ns()) else {
        return event;
    };
    let mut out = Vec::with_capacity(event.len() + 40);
    out.extend_from_slice(OPEN);
    out.extend_from_slice(format!("\"mock_sent_ns\":{ns}").as_bytes());
    if !rest.starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
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
                None if this.source.is_some() => {
                    ready!(this.poll_next_event(cx));
                }
                None => return Poll::Ready(None),
                Some(Part::Data(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Some(Part::Delay(delay)) => {
                    this.sleep = Some(Box::pin(crate::clock::sleep_until(
                        tokio::time::Instant::now() + delay,
                    )));
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
        self.parts.is_empty() && self.sleep.is_none() && self.source.is_none()
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

    /// Reads `body` to its end without a runtime (no delays in these bodies): its frames,
    /// and whether it ended abruptly.
    fn read(mut body: ReplyBody) -> (Vec<Vec<u8>>, bool) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut frames = Vec::new();
        for _ in 0..10_000 {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    frames.extend(frame.into_data().ok().map(|d| d.to_vec()));
                }
                Poll::Ready(Some(Err(_))) => return (frames, true),
                Poll::Ready(None) => return (frames, false),
                // A flush: the body asked to be polled again at once.
                Poll::Pending => {}
            }
        }
        panic!("the body did not end")
    }

    fn events() -> Vec<Bytes> {
        ["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"]
            .into_iter()
            .map(Bytes::from)
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn stamps_go_first_in_json_events_only() {
        let before = crate::clock::monotonic_ns().unwrap();
        let stamped = stamp(Bytes::from_static(b"data: {\"id\":\"x\"}\n\n"));
        let after = crate::clock::monotonic_ns().unwrap();
        let text = std::str::from_utf8(&stamped).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        let ns = json["mock_sent_ns"].as_u64().unwrap();
        assert!(
            (before..=after).contains(&ns),
            "{before} <= {ns} <= {after}"
        );
        assert_eq!(json["id"], "x");
        assert!(text.starts_with("data: {\"mock_sent_ns\":") && text.ends_with("}\n\n"));
        let empty = stamp(Bytes::from_static(b"data: {}\n\n"));
        let json: serde_json::Value = serde_json::from_slice(&empty[6..empty.len() - 2]).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1);
        let done = Bytes::from_static(b"data: [DONE]\n\n");
        assert_eq!(stamp(done.clone()), done);
    }

    #[test]
    fn write_size_splits_every_piece() {
        let b = Behavior::new().write_size(4);
        let (body, ct) = ReplyBody::new(Payload::Events(events()), Some(&b), None);
        assert_eq!(ct.as_deref(), Some("text/event-stream; charset=utf-8"));
        let (frames, aborted) = read(body);
        assert!(frames.iter().all(|f| f.len() <= 4));
        assert_eq!(frames.concat(), b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
        assert!(!aborted);
    }

    #[test]
    fn cut_after_events_drops_the_rest_and_aborts() {
        let b = Behavior::new().cut_after(1);
        let (body, _) = ReplyBody::new(Payload::Events(events()), Some(&b), None);
        let (frames, aborted) = read(body);
        assert_eq!(frames.concat(), b"data: 1\n\n");
        assert!(aborted);
    }

    #[test]
    fn stream_error_replaces_the_rest() {
        let b = Behavior::new().stream_error_after(1, 500, "boom");
        let (body, _) = ReplyBody::new(Payload::Events(events()), Some(&b), None);
        let (frames, aborted) = read(body);
        let text = String::from_utf8(frames.concat()).unwrap();
        assert_eq!(
            text,
            "data: 1\n\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n"
        );
        assert!(!aborted);
        // Cut before the error: the cut wins.
        let b = Behavior::new()
            .stream_error_after(1, 500, "boom")
            .cut_after(1);
        let (body, _) = ReplyBody::new(Payload::Events(events()), Some(&b), None);
        assert_eq!(read(body), (vec![b"data: 1\n\n".to_vec()], true));
    }

    #[test]
    fn full_bodies_announce_their_whole_length_even_when_cut() {
        let full = || Payload::Full("application/json", Bytes::from("{}"));
        let (body, _) = ReplyBody::new(full(), None, None);
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(read(body), (vec![b"{}".to_vec()], false));
        let b = Behavior::new().cut_after_bytes(1);
        let (body, _) = ReplyBody::new(full(), Some(&b), None);
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(read(body), (vec![b"{".to_vec()], true));
    }

    /// A source that counts how many events were made.
    #[derive(Debug)]
    struct Counting {
        made: Arc<std::sync::atomic::AtomicUsize>,
        left: usize,
    }

    impl EventSource for Counting {
        fn next_event(&mut self) -> Option<(Bytes, u32)> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some((Bytes::from_static(b"data: x\n\n"), 1))
        }
    }

    #[test]
    fn events_are_made_only_as_the_body_is_read() {
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let source = Counting {
            made: made.clone(),
            left: 1_000_000,
        };
        let (mut body, _) = ReplyBody::new(Payload::Stream(Box::new(source)), None, None);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 0);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..3 {
            assert!(matches!(
                Pin::new(&mut body).poll_frame(&mut cx),
                Poll::Ready(Some(Ok(_)))
            ));
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(!body.is_end_stream());
    }
}
