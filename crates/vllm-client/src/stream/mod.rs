//! Streaming: [`MessageStream`] and its [`StreamEvent`]s.

mod events;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use vllm_transport::EventStream;

use events::EventProcessor;
pub use events::StreamEvent;

use crate::error::VllmError;

/// Which kind of chunks a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// `chat.completion.chunk`s.
    Chat,
    /// Legacy `text_completion` chunks.
    Completion,
}

/// A streamed response: a [`Stream`] of [`StreamEvent`]s.
///
/// Ends with exactly one `Done` (after the server's `data: [DONE]`) or one `Error`, then
/// yields `None`. Reading it pulls from the connection as it goes (nothing is buffered ahead
/// or spawned), and dropping it closes the request.
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
/// while let Some(event) = stream.next().await {
///     match event {
///         StreamEvent::Reasoning(text) => eprint!("{text}"),
///         StreamEvent::Content(text) => print!("{text}"),
///         StreamEvent::ToolCallComplete(call) => println!("\ncall {}({})", call.name, call.arguments),
///         StreamEvent::Usage(usage) => println!("\n{} tokens", usage.total_tokens),
///         StreamEvent::Error(e) => return Err(e),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct MessageStream {
    events: EventStream,
    processor: EventProcessor,
    choice: Option<u32>,
    /// The body was read to its end (the connection can go back to the pool).
    body_ended: bool,
    /// `Done` was returned: reading on only waits for the end of the body.
    after_done: bool,
    /// How long to wait for the end of the body after `[DONE]`.
    drain_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// After `[DONE]`, how long the next read waits for the end of the body (so the connection
/// can be reused) before giving up on it.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl MessageStream {
    pub(crate) fn new(events: EventStream, kind: StreamKind) -> Self {
        MessageStream {
            events,
            processor: EventProcessor::new(kind),
            choice: None,
            body_ended: false,
            after_done: false,
            drain_deadline: None,
        }
    }

    /// The next event; `None` after `Done` or `Error`.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The choice the last event returned belongs to (`None` for events of the whole
    /// response: `Usage`, `Done`, `Error`). Tells the choices of an `n > 1` stream apart.
    pub fn choice_index(&self) -> Option<u32> {
        self.choice
    }

    /// Reads the stream to its end and returns the content of all choices, concatenated
    /// (use [`choice_index`](Self::choice_index) to separate choices). An `Error` event is
    /// returned as the error.
    pub async fn collect_content(mut self) -> Result<String, VllmError> {
        let mut content = String::new();
        while let Some(event) = self.next().await {
            match event {
                StreamEvent::Content(text) => content.push_str(&text),
                StreamEvent::Error(e) => return Err(e),
                _ => {}
            }
        }
        Ok(content)
    }

    /// The stream as a `Stream` value for combinators (`MessageStream` is one already; this
    /// names the intent).
    pub fn into_stream(self) -> impl Stream<Item = StreamEvent> + Send + Unpin {
        self
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        loop {
            if let Some((choice, event)) = self.processor.pop() {
                self.choice = choice;
                self.after_done = matches!(event, StreamEvent::Done);
                return Poll::Ready(Some(event));
            }
            if self.processor.is_finished() {
                return self.poll_drain(cx);
            }
            match Pin::new(&mut self.events).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) => {
                    self.processor.push_event(event.event(), event.data())
                }
                Poll::Ready(Some(Err(e))) => self.processor.fail(e.into()),
                Poll::Ready(None) => {
                    self.body_ended = true;
                    self.processor.fail(VllmError::stream(
                        "the stream ended before the server sent [DONE]",
                    ));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// After `Done`, reads the end of the body (briefly) so that the connection goes back to
    /// the pool; after an error, ends at once (the connection is closed on drop).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.choice = None;
        if self.body_ended || !self.after_done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.events).poll_next(cx) {
                Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                    self.body_ended = true;
                    return Poll::Ready(None);
                }
                // Bytes after [DONE] carry nothing for the caller.
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Pending => break,
            }
        }
        let deadline = self
            .drain_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(DRAIN_WAIT)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.body_ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for MessageStream {
    type Item = StreamEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageStream")
            .field("finished", &self.processor.is_finished())
            .field("choice", &self.choice)
            .finish_non_exhaustive()
    }
}
