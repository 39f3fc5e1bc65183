//! [`StreamEvent`], and the queue that chunk processors push events into.

use std::collections::VecDeque;

use vllm_types::FinishReason;

use crate::error::VllmError;
use crate::response::Usage;
use crate::tool_calls::ToolCall;

/// One event of a streamed completion.
///
/// A stream yields any number of `Content`, `Reasoning`, `ToolCallDelta`, `ToolCallComplete`,
/// `Finished` and `Usage` events, then exactly one `Done` (the server sent `data: [DONE]`) or
/// one `Error`, then nothing. With `n > 1`,
/// [`MessageStream::choice_index`](super::MessageStream::choice_index) tells which choice an
/// event belongs to.
///
/// Read a stream with [`MessageStream::try_next`](super::MessageStream::try_next) and a
/// catch-all arm is safe: `Done` and `Error` never reach it (the end is `Ok(None)`, a failure
/// is `Err`). With [`MessageStream::next`](super::MessageStream::next) (the 0.1 API), a
/// `_ => {}` arm also swallows `Error`: match it explicitly.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamEvent {
    /// Generated text.
    Content(String),
    /// Reasoning text of a thinking model (from `reasoning` or the older `reasoning_content`).
    Reasoning(String),
    /// A piece of a tool call, as the server sent it. Pieces of one call share `index`.
    ToolCallDelta {
        /// Which call of the choice the piece belongs to.
        index: u32,
        /// The call's id (usually in its first piece).
        id: Option<String>,
        /// The function's name (usually once).
        name: Option<String>,
        /// A piece of the arguments' JSON text.
        arguments: Option<String>,
    },
    /// A tool call, complete with all its arguments. Sent once per call.
    ToolCallComplete(ToolCall),
    /// A choice finished, with the reason (`stop`, `length`, `tool_calls`, …).
    Finished {
        /// The choice.
        index: u32,
        /// Why it stopped. Compares with strings: `reason == "stop"`.
        reason: FinishReason,
    },
    /// Token usage, as the server reported it (never estimated).
    Usage(Usage),
    /// The server ended the stream with `data: [DONE]`.
    Done,
    /// The stream failed: a mid-stream error from the server, a body cut off before
    /// `[DONE]`, an undecodable chunk, a timeout or a network error. Nothing follows it.
    Error(VllmError),
}

/// Where a chunk processor puts the events of a chunk: a queue while the caller reads
/// events, nowhere while it reads chunks (the events are then not even built).
#[derive(Debug)]
pub(crate) struct Sink<'a>(Option<&'a mut VecDeque<(Option<u32>, StreamEvent)>>);

impl<'a> Sink<'a> {
    pub(crate) fn new(queue: Option<&'a mut VecDeque<(Option<u32>, StreamEvent)>>) -> Self {
        Sink(queue)
    }

    /// Whether events are wanted (build them only then).
    pub(crate) fn wants(&self) -> bool {
        self.0.is_some()
    }

    /// Queues the event that `make` builds, for `choice`, if events are wanted.
    pub(crate) fn push(&mut self, choice: Option<u32>, make: impl FnOnce() -> StreamEvent) {
        if let Some(queue) = self.0.as_deref_mut() {
            queue.push_back((choice, make()));
        }
    }
}
