//! Streaming: [`MessageStream`] (chat), [`CompletionStream`] (legacy completions), their
//! [`StreamEvent`]s and [`StreamTimings`].
//!
//! Both stream types are one engine ([`StreamCore`]) over a chunk [`Processor`]: SSE events
//! come from the transport, each chunk is parsed into one typed `vllm-types` chunk kept for
//! the whole stream ([`vllm_types::from_str_in_place`], so a chunk reuses the last one's
//! allocations), and the processor turns it into events and adds it to the response so far.

mod chat;
mod completion;
mod event;
mod timings;

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_core::Stream;
use serde::de::DeserializeOwned;
use vllm_transport::EventStream;
use vllm_types::{ErrorResponse, Extra, JsonObject};

pub(crate) use chat::ChatProcessor;
pub(crate) use completion::CompletionProcessor;
use event::Sink;
pub use event::StreamEvent;
pub use timings::StreamTimings;

use crate::completions::CompletionResponse;
use crate::error::VllmError;
use crate::head::ResponseHead;
use crate::request::Opened;
use crate::response::ChatCompletionResponse;

/// What a kind of stream does with its chunks: a pure state machine, no I/O.
pub(crate) trait Processor: Default + fmt::Debug + Send + Unpin + 'static {
    /// The typed chunk.
    type Chunk: DeserializeOwned + Default + fmt::Debug + Send + Unpin;
    /// What the chunks add up to.
    type Response;
    /// What a chunk is called in errors.
    const WHAT: &'static str;
    /// Whether a parsed chunk is really an error object.
    fn is_error(chunk: &Self::Chunk) -> bool;
    /// Whether the chunk carries reasoning text, and answer text.
    fn has_text(chunk: &Self::Chunk) -> (bool, bool);
    /// Adds a chunk to the response so far; its events go to `sink`.
    fn apply(&mut self, chunk: &Self::Chunk, sink: &mut Sink<'_>);
    /// The server sent `[DONE]`.
    fn done(&mut self, sink: &mut Sink<'_>);
    /// The response so far, with the head the stream came with.
    fn response(&self, head: ResponseHead) -> Self::Response;
}

/// Where a stream is.
#[derive(Debug)]
enum State {
    /// Reading chunks.
    Open,
    /// `[DONE]` arrived; `returned`: the end was reported to the caller.
    Done { returned: bool },
    /// The stream failed; the error until it is handed out.
    Failed(Option<VllmError>),
}

/// What one read of the event stream gave.
enum Read {
    Chunk,
    Done,
    Failed,
}

/// After `[DONE]`, how long the rest of the body is read in the background (so the connection
/// can be reused) before it is closed.
const DRAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The engine of a stream: reads SSE events, parses chunks, keeps the state.
pub(crate) struct StreamCore<P: Processor> {
    events: EventStream,
    head: ResponseHead,
    chunk: P::Chunk,
    /// `chunk` holds the last chunk read (not a half-parsed or error one).
    has_chunk: bool,
    processor: P,
    queue: VecDeque<(Option<u32>, StreamEvent)>,
    choice: Option<u32>,
    state: State,
    timings: StreamTimings,
    /// The body was read to its end (the connection can go back to the pool).
    body_ended: bool,
    /// Counts the stream on its replica (with several base URLs) until it is dropped.
    _in_flight: Option<crate::balance::InFlight>,
}

impl<P: Processor> StreamCore<P> {
    pub(crate) fn new(opened: Opened) -> Self {
        let Opened {
            events,
            head,
            started,
            in_flight,
        } = opened;
        StreamCore {
            events,
            head,
            chunk: P::Chunk::default(),
            has_chunk: false,
            processor: P::default(),
            queue: VecDeque::new(),
            choice: None,
            state: State::Open,
            timings: StreamTimings::new(started, Instant::now()),
            body_ended: false,
            _in_flight: in_flight,
        }
    }

    fn fail(&mut self, error: VllmError) -> Read {
        self.has_chunk = false;
        self.state = State::Failed(Some(error));
        Read::Failed
    }

    /// Reads one SSE event and processes it (events queued when `emit`).
    fn poll_read(&mut self, cx: &mut Context<'_>, emit: bool) -> Poll<Read> {
        let event = match ready!(Pin::new(&mut self.events).poll_next(cx)) {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Poll::Ready(self.fail(e.into())),
            None => {
                self.body_ended = true;
                return Poll::Ready(self.fail(VllmError::stream(
                    "the stream ended before the server sent [DONE]",
                )));
            }
        };
        let at = self.events.arrived().unwrap_or_else(Instant::now);
        self.timings.event(at);
        let mut sink = Sink::new(emit.then_some(&mut self.queue));
        let data = event.data();
        if data == "[DONE]" {
            self.processor.done(&mut sink);
            self.state = State::Done { returned: false };
            return Poll::Ready(Read::Done);
        }
        if event.event() == "error" {
            if let Some(error) = parse_error_event(data) {
                return Poll::Ready(self.fail(error));
            }
        }
        match vllm_types::from_str_in_place(data, &mut self.chunk) {
            Ok(()) if P::is_error(&self.chunk) => Poll::Ready(self.fail(error_event(data))),
            Ok(()) => {
                self.has_chunk = true;
                let (reasoning, content) = P::has_text(&self.chunk);
                self.timings.chunk(at, reasoning, content);
                self.processor.apply(&self.chunk, &mut sink);
                Poll::Ready(Read::Chunk)
            }
            Err(e) => Poll::Ready(self.fail(VllmError::decode(P::WHAT, data, e))),
        }
    }

    /// The next event (the 0.1 API: `Done` and `Error` are events).
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        loop {
            if let Some((choice, event)) = self.queue.pop_front() {
                self.choice = choice;
                return Poll::Ready(Some(event));
            }
            self.choice = None;
            match &mut self.state {
                State::Open => {
                    ready!(self.poll_read(cx, true));
                }
                State::Done { returned } if !*returned => {
                    *returned = true;
                    return Poll::Ready(Some(StreamEvent::Done));
                }
                State::Done { .. } => return self.poll_drain(cx).map(|()| None),
                State::Failed(error) => return Poll::Ready(error.take().map(StreamEvent::Error)),
            }
        }
    }

    /// The next event, failures as `Err` and the clean end as `Ok(None)`.
    fn poll_try(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<StreamEvent>, VllmError>> {
        loop {
            if let Some((choice, event)) = self.queue.pop_front() {
                self.choice = choice;
                return Poll::Ready(Ok(Some(event)));
            }
            self.choice = None;
            match &mut self.state {
                State::Open => {
                    ready!(self.poll_read(cx, true));
                }
                State::Done { .. } => return self.poll_end(cx).map(|()| Ok(None)),
                State::Failed(_) => return Poll::Ready(Err(self.take_error())),
            }
        }
    }

    /// The next chunk (`Ok(true)`, the chunk in `self.chunk`), or the clean end
    /// (`Ok(false)`). Events not yet read are dropped; no new ones are made.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, VllmError>> {
        self.queue.clear();
        self.choice = None;
        loop {
            match &self.state {
                State::Open => {
                    if let Read::Chunk = ready!(self.poll_read(cx, false)) {
                        return Poll::Ready(Ok(true));
                    }
                }
                State::Done { .. } => return self.poll_end(cx).map(|()| Ok(false)),
                State::Failed(_) => return Poll::Ready(Err(self.take_error())),
            }
        }
    }

    /// The end after `[DONE]`, reported: reads the rest of the body.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let State::Done { returned } = &mut self.state {
            *returned = true;
        }
        self.poll_drain(cx)
    }

    /// The stream's error, or (once it was handed out) one saying so.
    fn take_error(&mut self) -> VllmError {
        match &mut self.state {
            State::Failed(error) => error.take().unwrap_or_else(|| {
                VllmError::stream("the stream failed earlier; its error was returned then")
            }),
            _ => VllmError::stream("the stream has not failed"),
        }
    }

    /// After `[DONE]`, takes in what is left of the body if it is already here, so that the
    /// connection goes back to the pool; a body not over yet is read to its end in the
    /// background (for at most [`DRAIN_WITHIN`], then closed). Never waits.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.body_ended {
            return Poll::Ready(());
        }
        loop {
            match Pin::new(&mut self.events).poll_next(cx) {
                Poll::Ready(None) | Poll::Ready(Some(Err(_))) => break,
                // Bytes after [DONE] carry nothing for the caller.
                Poll::Ready(Some(Ok(_))) => continue,
                // The rest of the body is not here yet (uvicorn sends the last chunk in a
                // write of its own after [DONE]; a server may also keep the body open): the
                // caller does not wait for it.
                Poll::Pending => {
                    self.events.finish_in_background(DRAIN_WITHIN);
                    break;
                }
            }
        }
        self.body_ended = true;
        Poll::Ready(())
    }

    fn chunk(&self) -> Option<&P::Chunk> {
        self.has_chunk.then_some(&self.chunk)
    }

    fn final_response(&self) -> Option<P::Response> {
        matches!(self.state, State::Done { .. }).then(|| self.processor.response(self.head.clone()))
    }

    fn is_finished(&self) -> bool {
        !matches!(self.state, State::Open)
    }
}

/// The methods both stream types share.
macro_rules! stream_methods {
    ($chunk:ty, $response:ty) => {
        /// The next event; `Ok(None)` once the server ended the stream with `[DONE]`.
        ///
        /// Every failure is an `Err`: a mid-stream `{"error": …}` from the server, a body
        /// cut off before `[DONE]`, an undecodable chunk, an idle timeout, a network error.
        /// `Done` and `Error` events are never returned, so a `_ => {}` arm drops nothing.
        /// After an `Err`, the stream is over (calling again gives another `Err`).
        ///
        /// ```no_run
        /// use vllm_client::{StreamEvent, VllmClient, json};
        ///
        /// # async fn run() -> Result<(), vllm_client::VllmError> {
        /// # let client = VllmClient::new("http://localhost:8000/v1");
        /// let mut stream = client.chat.completions().create()
        ///     .model("Qwen/Qwen3-8B")
        ///     .messages(json!([{"role": "user", "content": "Hello!"}]))
        ///     .send_stream()
        ///     .await?;
        /// while let Some(event) = stream.try_next().await? {
        ///     if let StreamEvent::Content(text) = event {
        ///         print!("{text}");
        ///     }
        /// }
        /// # Ok(()) }
        /// ```
        pub async fn try_next(&mut self) -> Result<Option<StreamEvent>, VllmError> {
            poll_fn(|cx| self.core.poll_try(cx)).await
        }

        /// The next event, with `Done` and `Error` as events (the 0.1 API); `None` after
        /// either. Prefer [`try_next`](Self::try_next): with this one, a `_ => {}` arm
        /// silently drops `StreamEvent::Error`.
        pub async fn next(&mut self) -> Option<StreamEvent> {
            poll_fn(|cx| self.core.poll_event(cx)).await
        }

        /// The next chunk, typed and whole (every choice, log probabilities, `stop_reason`,
        /// token ids, members this crate does not model in `extra`); `Ok(None)` after
        /// `[DONE]`, failures as `Err` as for [`try_next`](Self::try_next).
        ///
        /// The chunk is borrowed from the stream, which reuses its allocations for the next
        /// one. Reading chunks keeps [`final_response`](Self::final_response) and
        /// [`timings`](Self::timings) up to date but makes no events: events of the current
        /// chunk that were not read yet are dropped.
        pub async fn try_next_chunk(&mut self) -> Result<Option<&$chunk>, VllmError> {
            if poll_fn(|cx| self.core.poll_chunk(cx)).await? {
                Ok(self.core.chunk())
            } else {
                Ok(None)
            }
        }

        /// The last chunk read, typed and whole: the one the events last returned came
        /// from. `None` before the first chunk and after a failure.
        pub fn chunk(&self) -> Option<&$chunk> {
            self.core.chunk()
        }

        /// The whole response, as if it had not been streamed (every choice with its text,
        /// reasoning, complete tool calls, finish reason, log probabilities; the usage),
        /// once the stream has ended with `[DONE]`; `None` before that or after a failure.
        pub fn final_response(&self) -> Option<$response> {
            self.core.final_response()
        }

        /// Reads the rest of the stream (making no events) and returns the whole response,
        /// as [`final_response`](Self::final_response) gives it.
        pub async fn collect_response(mut self) -> Result<$response, VllmError> {
            while self.try_next_chunk().await?.is_some() {}
            self.core
                .final_response()
                .ok_or_else(|| VllmError::stream("the stream ended without [DONE]"))
        }

        /// The stream's response status and headers (available as soon as `send_stream()`
        /// returned).
        pub fn head(&self) -> &ResponseHead {
            &self.core.head
        }

        /// The stream's response headers (the server's `x-request-id`, a router's headers).
        pub fn headers(&self) -> &crate::header::HeaderMap {
            self.core.head.headers()
        }

        /// The server's id for the request (its `x-request-id` header).
        pub fn request_id(&self) -> Option<&str> {
            self.core.head.request_id()
        }

        /// When the stream's parts arrived: response head, first reasoning and content
        /// tokens, last event, gaps between chunks.
        pub fn timings(&self) -> &StreamTimings {
            &self.core.timings
        }

        /// The choice the last event returned belongs to (`None` for events of the whole
        /// response: `Usage`, `Done`, `Error`). Tells the choices of an `n > 1` stream apart.
        pub fn choice_index(&self) -> Option<u32> {
            self.core.choice
        }

        /// Reads the stream to its end and returns the content of all choices, concatenated
        /// (see [`final_response`](Self::final_response) for each choice's). A failure is
        /// returned as the error.
        pub async fn collect_content(mut self) -> Result<String, VllmError> {
            let mut content = String::new();
            while let Some(event) = self.try_next().await? {
                if let StreamEvent::Content(text) = event {
                    content.push_str(&text);
                }
            }
            Ok(content)
        }

        /// The stream as a `Stream` of `Result`s for combinators: the items of
        /// [`try_next`](Self::try_next), ending after the first `Err`.
        pub fn into_try_stream(
            self,
        ) -> impl Stream<Item = Result<StreamEvent, VllmError>> + Send + Unpin {
            TryEvents {
                core: Some(self.core),
            }
        }

        /// The stream as a `Stream` value for combinators (it is one already, with the items
        /// of [`next`](Self::next); this names the intent).
        pub fn into_stream(self) -> impl Stream<Item = StreamEvent> + Send + Unpin {
            self
        }
    };
}

/// A streamed chat completion: a [`Stream`] of [`StreamEvent`]s, typed chunks, the response
/// they add up to, and when they arrived.
///
/// Read it with [`try_next`](Self::try_next) (events; failures are `Err`) or
/// [`try_next_chunk`](Self::try_next_chunk) (the typed chunks). Reading pulls from the
/// connection as it goes (nothing is buffered ahead or spawned), and dropping the stream
/// closes the request.
///
/// ```no_run
/// use vllm_client::{StreamEvent, VllmClient, json};
///
/// # async fn run() -> Result<(), vllm_client::VllmError> {
/// let client = VllmClient::new("http://localhost:8000/v1");
/// let mut stream = client.chat.completions().create()
///     .model("Qwen/Qwen3-8B")
///     .messages(json!([{"role": "user", "content": "Hello!"}]))
///     .send_stream()
///     .await?;
/// while let Some(event) = stream.try_next().await? {
///     match event {
///         StreamEvent::Reasoning(text) => eprint!("{text}"),
///         StreamEvent::Content(text) => print!("{text}"),
///         StreamEvent::ToolCallComplete(call) => println!("\ncall {}({})", call.name, call.arguments),
///         _ => {}
///     }
/// }
/// let response = stream.final_response().expect("the stream ended with [DONE]");
/// println!("\n{:?} after {:?}", response.usage, stream.timings().elapsed());
/// # Ok(()) }
/// ```
pub struct MessageStream {
    core: StreamCore<ChatProcessor>,
}

impl MessageStream {
    pub(crate) fn new(opened: Opened) -> Self {
        MessageStream {
            core: StreamCore::new(opened),
        }
    }

    stream_methods!(vllm_types::ChatCompletionChunk, ChatCompletionResponse);
}

/// A streamed legacy completion (`client.completions.create()…send_stream()`): `Content`,
/// `Finished` and `Usage` events, typed [`CompletionChunk`](vllm_types::CompletionChunk)s,
/// and the [`CompletionResponse`] they add up to. Read it as a [`MessageStream`].
pub struct CompletionStream {
    core: StreamCore<CompletionProcessor>,
}

impl CompletionStream {
    pub(crate) fn new(opened: Opened) -> Self {
        CompletionStream {
            core: StreamCore::new(opened),
        }
    }

    stream_methods!(vllm_types::CompletionChunk, CompletionResponse);
}

macro_rules! stream_impls {
    ($name:ident) => {
        impl Stream for $name {
            type Item = StreamEvent;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
                self.get_mut().core.poll_event(cx)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("finished", &self.core.is_finished())
                    .field("chunks", &self.core.timings.chunks())
                    .field("choice", &self.core.choice)
                    .finish_non_exhaustive()
            }
        }
    };
}

stream_impls!(MessageStream);
stream_impls!(CompletionStream);

/// [`MessageStream::into_try_stream`]: the stream's `try_next` items as a `Stream`.
struct TryEvents<P: Processor> {
    core: Option<StreamCore<P>>,
}

impl<P: Processor> Stream for TryEvents<P> {
    type Item = Result<StreamEvent, VllmError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(core) = this.core.as_mut() else {
            return Poll::Ready(None);
        };
        let item = ready!(core.poll_try(cx)).transpose();
        if !matches!(item, Some(Ok(_))) {
            // The end, or the one error: nothing follows.
            this.core = None;
        }
        Poll::Ready(item)
    }
}

/// Whether a parsed chunk is really an error object: `{"error": …}` (non-null), older
/// vLLM's `{"object": "error", …}` or FastAPI's `{"detail": …}` with no choices (chunks
/// parse leniently, so an error body parses as a chunk with no choices).
fn is_error_object(object: &str, no_choices: bool, extra: &Extra) -> bool {
    let has = |key: &str| extra.get(key).is_some_and(|e| !e.is_null());
    object == "error" || has("error") || (no_choices && has("detail"))
}

/// The error of a data line that is an error object.
fn error_event(data: &str) -> VllmError {
    parse_error_event(data)
        .unwrap_or_else(|| VllmError::stream(format!("the server sent an error event: {data}")))
}

fn parse_error_event(data: &str) -> Option<VllmError> {
    let body: ErrorResponse = serde_json::from_str(data).ok()?;
    Some(VllmError::server_event(body))
}

/// What the chunks of a stream say about the whole response: the members chat and
/// completion chunks share.
#[derive(Debug, Default)]
pub(crate) struct Whole {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    pub(crate) system_fingerprint: Option<String>,
    pub(crate) service_tier: Option<String>,
    pub(crate) kv_transfer_params: Option<JsonObject>,
    pub(crate) usage: Option<vllm_types::Usage>,
}

/// A chunk's members about the whole response, borrowed.
pub(crate) struct Head<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) system_fingerprint: &'a Option<String>,
    pub(crate) service_tier: &'a Option<String>,
    pub(crate) kv_transfer_params: &'a Option<JsonObject>,
}

impl Whole {
    /// Takes what a chunk says about the response the first time it says it.
    pub(crate) fn note(&mut self, head: Head<'_>) {
        if self.id.is_empty() {
            self.id.push_str(head.id);
            self.created = head.created;
            self.model.push_str(head.model);
        }
        fill(&mut self.system_fingerprint, head.system_fingerprint);
        fill(&mut self.service_tier, head.service_tier);
        fill(&mut self.kv_transfer_params, head.kv_transfer_params);
    }

    /// Takes a chunk's usage, if it has one, and queues its event.
    pub(crate) fn usage(&mut self, usage: &Option<vllm_types::Usage>, sink: &mut Sink<'_>) {
        if let Some(usage) = usage {
            self.usage = Some(usage.clone());
            sink.push(None, || StreamEvent::Usage(usage.clone().into()));
        }
    }
}

/// Sets `slot` from `value` the first time `value` has one.
fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// Appends the items of `more`, if any, to `into`.
fn append<T: Clone>(into: &mut Option<Vec<T>>, more: &Option<Vec<T>>) {
    if let Some(more) = more {
        into.get_or_insert_default().extend_from_slice(more);
    }
}
