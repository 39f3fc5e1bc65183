//! A successful response and its body, buffered or streamed.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::direct::DirectBody;
use crate::error::{TimeoutKind, TransportError};
use crate::event_stream::EventStream;
use crate::sse::Decoder;

/// The total timeout of a call, carried from `send()` to [`Response::bytes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) total: Duration,
}

impl Deadline {
    pub(crate) fn error(self) -> TransportError {
        TransportError::timeout(TimeoutKind::Total, self.total)
    }
}

/// A response with a `2xx` status, its body not read yet.
///
/// Take the body in one of three ways:
///
/// - [`bytes`](Response::bytes): buffered whole, bounded by the total timeout, the idle
///   timeout and the maximum body size;
/// - [`into_body`](Response::into_body): streamed chunk by chunk as a [`BodyStream`], with
///   the idle timeout between chunks and no total timeout;
/// - [`into_events`](Response::into_events): decoded as Server-Sent Events, an
///   [`EventStream`], with the idle timeout between chunks.
///
/// Dropping a response (or a stream made from it) before its body ended closes the
/// connection instead of returning it to the pool.
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: BodyStream,
    deadline: Option<Deadline>,
    max_body_size: usize,
}

impl Response {
    pub(crate) fn new(
        parts: http::response::Parts,
        body: BodyStream,
        deadline: Option<Deadline>,
        max_body_size: usize,
    ) -> Self {
        Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            deadline,
            max_body_size,
        }
    }

    /// The response status (always a success, `200..=299`).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the response came over (HTTP/1.1, or HTTP/2 when negotiated).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Reads the whole body into memory.
    ///
    /// Bounded by the total timeout started by `send()` ([`TimeoutKind::Total`]), by the
    /// idle timeout between chunks ([`TimeoutKind::Idle`]) and by the maximum body size
    /// ([`TransportError::is_body`]). A body cut off before its end is a body error.
    pub async fn bytes(self) -> Result<Bytes, TransportError> {
        let Response {
            headers,
            mut body,
            deadline,
            max_body_size,
            ..
        } = self;
        if content_length(&headers).is_some_and(|len| len > max_body_size as u64) {
            return Err(TransportError::body_too_large(max_body_size));
        }
        let read = collect(&mut body, max_body_size);
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.at, read)
                .await
                .unwrap_or_else(|_elapsed| Err(deadline.error())),
            None => read.await,
        }
    }

    /// Streams the body without buffering it.
    ///
    /// The idle timeout applies between chunks; the total timeout does not (a long stream is
    /// not cut off by it).
    pub fn into_body(self) -> BodyStream {
        self.body
    }

    /// Decodes the body as Server-Sent Events with a default [`Decoder`] (16 MiB maximum
    /// event size).
    ///
    /// The idle timeout applies between chunks; the total timeout does not. The
    /// `Content-Type` is not checked.
    pub fn into_events(self) -> EventStream {
        self.into_events_with(Decoder::new())
    }

    /// Decodes the body as Server-Sent Events with the given decoder (for another maximum
    /// event size, see [`Decoder::with_max_event_size`]).
    pub fn into_events_with(self, decoder: Decoder) -> EventStream {
        EventStream::new(self.body, decoder)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads `body` to its end, failing when it grows past `limit`.
async fn collect(body: &mut BodyStream, limit: usize) -> Result<Bytes, TransportError> {
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut len = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        len = len.saturating_add(chunk.len());
        if len > limit {
            return Err(TransportError::body_too_large(limit));
        }
        match &first {
            None => first = Some(chunk),
            Some(head) => {
                if rest.is_empty() {
                    rest.reserve(len);
                    rest.extend_from_slice(head);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        rest.freeze()
    })
}

/// Reads `body` into `buf` until its end, an error, or `limit` bytes (the rest is dropped).
/// Used for error bodies, where whatever arrived is worth keeping.
pub(crate) async fn collect_truncated(body: &mut BodyStream, buf: &mut BytesMut, limit: usize) {
    while let Some(Ok(chunk)) = body.next().await {
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            break;
        }
    }
}

/// A response body read chunk by chunk, with the idle timeout applied between chunks.
///
/// It implements both [`http_body::Body`] (data and trailer frames) and
/// [`futures_core::Stream`] of data chunks; [`next`](BodyStream::next) is the same as the
/// stream's, without needing an extension trait. After an error the stream ends.
///
/// The idle timer only runs while the stream waits for data: time the consumer spends
/// between polls does not count. Dropping the stream before the body ended closes the
/// connection.
pub struct BodyStream {
    body: Option<Inner>,
    idle: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// When the current wait for the body times out. The timer is not moved at every new
    /// wait (moving it costs more than the wait itself on a fast stream): when it fires
    /// early, it is moved to this deadline then.
    wait_deadline: Option<Instant>,
}

/// Where a body comes from.
enum Inner {
    /// hyper-util's pooled client (`https://`).
    Hyper(Incoming),
    /// A connection read directly (`http://`).
    Direct(DirectBody),
    /// Chunks already in memory ([`BodyStream::from_chunks`]).
    Memory(std::collections::VecDeque<Bytes>),
}

impl BodyStream {
    pub(crate) fn new(body: Incoming, idle: Option<Duration>) -> Self {
        Self::with_inner(Inner::Hyper(body), idle)
    }

    pub(crate) fn direct(body: DirectBody, idle: Option<Duration>) -> Self {
        Self::with_inner(Inner::Direct(body), idle)
    }

    /// A body of these chunks, all already here (it never waits). For fuzzing and for
    /// tests of code that reads bodies; not part of the API.
    #[doc(hidden)]
    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self::with_inner(Inner::Memory(chunks.into_iter().collect()), None)
    }

    fn with_inner(body: Inner, idle: Option<Duration>) -> Self {
        BodyStream {
            body: Some(body),
            idle,
            sleep: None,
            waiting: false,
            wait_deadline: None,
        }
    }

    /// The next chunk of data, `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_data(cx)).await
    }

    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, TransportError>>> {
        loop {
            match Pin::new(&mut *self).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Poll::Ready(Some(Ok(data)));
                        }
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Polls the idle timer while the body is pending. A new wait sets its deadline (one
    /// clock read); the timer itself is moved only when it fires before that deadline.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<TransportError> {
        let Some(idle) = self.idle else {
            return Poll::Pending;
        };
        if !self.waiting {
            self.waiting = true;
            // A timeout too large to add to the clock is no timeout at all.
            self.wait_deadline = Instant::now().checked_add(idle);
        }
        let Some(deadline) = self.wait_deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Armed for an earlier wait: move it to this wait's deadline.
                Poll::Ready(()) if sleep.deadline() < deadline => sleep.as_mut().reset(deadline),
                Poll::Ready(()) => {
                    self.body = None;
                    return Poll::Ready(TransportError::timeout(TimeoutKind::Idle, idle));
                }
            }
        }
    }
}

impl Body for BodyStream {
    type Data = Bytes;
    type Error = TransportError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TransportError>>> {
        let this = self.get_mut();
        let polled = match this.body.as_mut() {
            None => return Poll::Ready(None),
            Some(Inner::Hyper(body)) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|err| TransportError::new_body(Box::new(err))),
            Some(Inner::Direct(body)) => match body.poll_data(cx) {
                Poll::Ready(None) => {
                    Poll::Ready(body.take_trailers().map(|t| Ok(Frame::trailers(t))))
                }
                polled => polled.map_ok(Frame::data),
            },
            Some(Inner::Memory(chunks)) => {
                Poll::Ready(chunks.pop_front().map(|c| Ok(Frame::data(c))))
            }
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.body = None;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.body = None;
                Poll::Ready(None)
            }
            Poll::Pending => this.poll_idle(cx).map(|err| Some(Err(err))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            None => true,
            Some(Inner::Hyper(body)) => body.is_end_stream(),
            Some(Inner::Direct(body)) => body.is_end_stream(),
            Some(Inner::Memory(chunks)) => chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            None => SizeHint::with_exact(0),
            Some(Inner::Hyper(body)) => body.size_hint(),
            Some(Inner::Direct(body)) => match body.remaining() {
                Some(exact) => SizeHint::with_exact(exact),
                None => SizeHint::default(),
            },
            Some(Inner::Memory(chunks)) => {
                SizeHint::with_exact(chunks.iter().map(|c| c.len() as u64).sum())
            }
        }
    }
}

impl futures_core::Stream for BodyStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_data(cx)
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("ended", &self.body.is_none())
            .field("idle_timeout", &self.idle)
            .finish_non_exhaustive()
    }
}
