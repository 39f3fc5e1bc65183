//! A response body decoded as Server-Sent Events.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::TransportError;
use crate::response::BodyStream;
use crate::sse::{Decoder, Event, SseError};

/// Pieces of a finished stream's body read at once, before its drain moves to a task.
const DRAIN_AT_ONCE: usize = 16;

/// The events of a `text/event-stream` response body, made by
/// [`Response::into_events`](crate::Response::into_events).
///
/// A [`futures_core::Stream`] of `Result<Event, TransportError>`, also usable without an
/// extension trait through the inherent [`next`](EventStream::next). It owns the response
/// body and polls it directly, feeding the [`Decoder`] as chunks arrive: no task is
/// spawned and nothing is buffered ahead of the consumer, so back-pressure reaches the
/// server.
///
/// - The idle timeout applies between body chunks ([`TimeoutKind::Idle`](crate::TimeoutKind::Idle)).
/// - A decoding error (invalid UTF-8, an event over the decoder's size limit) is a
///   [`TransportError::is_decode`] error whose source is the [`SseError`].
/// - A body that ends in the middle of an event yields a decode error with
///   [`SseError::UnexpectedEof`]; one cut off by the connection yields a body error
///   ([`TransportError::is_body`]).
/// - After an error the stream ends, and its connection is closed.
/// - Dropping the stream before the body ended closes the connection (it is not returned
///   to the pool), which cancels the request on the server.
pub struct EventStream {
    body: Option<BodyStream>,
    decoder: Decoder,
    done: bool,
    /// When the last piece of the body was read.
    arrived: Option<Instant>,
}

impl EventStream {
    pub(crate) fn new(body: BodyStream, decoder: Decoder) -> Self {
        EventStream {
            body: Some(body),
            decoder,
            done: false,
            arrived: None,
        }
    }

    /// The events of `body`, decoded with the default limits. For fuzzing and for tests of
    /// code that reads streams (with [`BodyStream::from_chunks`]); not part of the API.
    #[doc(hidden)]
    pub fn from_body(body: BodyStream) -> Self {
        Self::new(body, Decoder::new())
    }

    /// The next event, `None` once the body has ended cleanly (or after an error).
    pub async fn next(&mut self) -> Option<Result<Event, TransportError>> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// When the bytes that completed the last event returned arrived: the moment the piece of
    /// the body holding its end was read from the connection (`None` before the first piece).
    /// Events completed by one piece share its instant. One clock read per piece read.
    pub fn arrived(&self) -> Option<Instant> {
        self.arrived
    }

    /// Stops reading: the body is dropped at once (its connection closed, not pooled, unless
    /// it had already ended) and the stream ends (`None` from here on).
    pub fn close(&mut self) {
        self.body = None;
        self.done = true;
    }

    /// Ends the stream now (`None` from here on) and reads what is left of the body in the
    /// background, discarding it: if the body ends within `within`, its connection goes back
    /// to the pool; otherwise it is closed. For the end of a stream whose last event was
    /// the last that matters (`[DONE]`), so the caller need not wait for the body's end.
    /// Outside a Tokio runtime this is [`close`](Self::close).
    pub fn finish_in_background(&mut self, within: Duration) {
        self.done = true;
        let Some(mut body) = self.body.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Usually the body's end came with the last event: read what is already here first,
        // and only a body still open needs a task (and a timer) of its own. A few pieces at
        // most: a server that keeps sending after the last event is drained by the task,
        // within its bound, not here.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..DRAIN_AT_ONCE {
            match body.poll_data(&mut cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(_) => return,
                Poll::Pending => break,
            }
        }
        runtime.spawn(async move {
            let drain = async { while let Some(Ok(_)) = poll_fn(|cx| body.poll_data(cx)).await {} };
            // Past `within`, the body (and its connection) is dropped unfinished.
            let _ = tokio::time::timeout(within, drain).await;
        });
    }

    /// The decoder, for its stream state ([`Decoder::last_event_id`], [`Decoder::retry`]).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, TransportError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.decoder.next_event() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(err) => return Poll::Ready(Some(Err(self.fail(err)))),
            }
            let Some(body) = self.body.as_mut() else {
                // The body ended and every complete event was taken out.
                self.done = true;
                return match self.decoder.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(err) => Poll::Ready(Some(Err(self.fail(err)))),
                };
            };
            match body.poll_data(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.arrived = Some(Instant::now());
                    self.decoder.feed_bytes(chunk);
                }
                Poll::Ready(Some(Err(err))) => {
                    self.done = true;
                    self.body = None;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => self.body = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Ends the stream after a decoding error, closing the connection.
    fn fail(&mut self, err: SseError) -> TransportError {
        self.done = true;
        self.body = None;
        TransportError::decode(Box::new(err))
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<Event, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("body", &self.body)
            .field("decoder", &self.decoder)
            .field("done", &self.done)
            .finish()
    }
}
