//! Entry points of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`), which `cargo test`
//! also runs on random and fixture inputs for a bounded time. Not part of the API: hidden
//! from the docs, and free to change.

use std::collections::BTreeMap;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use vllm_transport::{BodyStream, EventStream};

use crate::head::ResponseHead;
use crate::request::Opened;
use crate::stream::{MessageStream, StreamEvent};

/// What a stream gave: its events as text, and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<String>,
    /// `Ok(())` after `[DONE]`, else the error's text.
    end: Result<(), String>,
}

/// A chat stream over `data` as its body (after the cut sizes its first bytes give), read
/// to its end: never a panic; cut into pieces it gives the same events and end as whole;
/// after a clean end, `final_response()` holds every choice's text as the `Content` events
/// gave it, and the tool calls as the completed calls.
pub fn chat_stream(data: &[u8]) {
    let (sizes, body) = cuts(data);
    let (whole, content, calls, response) = read(body, &[]);
    let (pieces, ..) = read(body, &sizes);
    assert_eq!(whole, pieces, "the cuts {sizes:?} changed the stream");
    if whole.end.is_ok() {
        let response = response.expect("a stream that ended cleanly has a final response");
        let completion = response.completion();
        for (index, text) in &content {
            let choice = completion
                .choices
                .iter()
                .find(|c| c.index == *index)
                .expect("every choice with content is in the response");
            assert_eq!(choice.message.content.as_deref().unwrap_or(""), text);
        }
        let made: usize = completion
            .choices
            .iter()
            .map(|c| c.message.tool_calls.as_ref().map_or(0, Vec::len))
            .sum();
        assert!(
            made >= calls,
            "{made} tool calls in the response, {calls} completed"
        );
    }
}

/// Reads a stream whose body is `body` cut at `sizes`.
fn read(
    body: &[u8],
    sizes: &[usize],
) -> (
    Outcome,
    BTreeMap<u32, String>,
    usize,
    Option<crate::ChatCompletionResponse>,
) {
    let mut chunks = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (piece, after) = rest.split_at(size.min(rest.len()));
        chunks.push(Bytes::copy_from_slice(piece));
        rest = after;
        i += 1;
    }
    let opened = Opened {
        events: EventStream::from_body(BodyStream::from_chunks(chunks)),
        head: ResponseHead::new(200, http::HeaderMap::new()),
        started: Instant::now(),
        in_flight: None,
    };
    let mut stream = MessageStream::new(opened);
    let mut outcome = Outcome {
        events: Vec::new(),
        end: Ok(()),
    };
    let mut content: BTreeMap<u32, String> = BTreeMap::new();
    let mut calls = 0;
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // Everything is in memory: every poll is ready.
        let polled = {
            let next = stream.try_next();
            let mut next = std::pin::pin!(next);
            next.as_mut().poll(&mut cx)
        };
        let Poll::Ready(result) = polled else {
            panic!("a stream over a body in memory waited");
        };
        match result {
            Ok(Some(event)) => {
                if let StreamEvent::Content(text) = &event {
                    let index = stream.choice_index().unwrap_or(0);
                    content.entry(index).or_default().push_str(text);
                }
                if let StreamEvent::ToolCallComplete(_) = &event {
                    calls += 1;
                }
                outcome.events.push(format!("{event:?}"));
            }
            Ok(None) => break,
            Err(e) => {
                outcome.end = Err(e.to_string());
                break;
            }
        }
    }
    let response = stream.final_response();
    (outcome, content, calls, response)
}

/// An error answer: `data` as the body of a status error (the status from its first two
/// bytes) and as a stream's error event: never a panic, and the server's message, when the
/// body has one, is what `Display` shows.
pub fn error_body(data: &[u8]) {
    let (status, body) = match data {
        [a, b, rest @ ..] => (400 + (u16::from(*a) << 8 | u16::from(*b)) % 200, rest),
        _ => (500, data),
    };
    let err = crate::VllmError::status(status, body);
    let shown = err.to_string();
    let _ = (
        err.server_message(),
        err.body_text(),
        err.kind(),
        err.is_retryable(),
    );
    if let Ok(parsed) = serde_json::from_slice::<vllm_types::ErrorResponse>(body) {
        let message = parsed.message();
        if !message.trim().is_empty() {
            assert!(
                shown.contains(message.trim()),
                "{shown:?} lacks {message:?}"
            );
        }
        let _ = crate::VllmError::server_event(parsed).to_string();
    }
}

/// The piece sizes an input asks for, and the input: its first byte says how many sizes
/// follow (0 to 7), each the next byte (1 to 256).
fn cuts(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 8).min(rest.len());
    let sizes = rest[..n].iter().map(|&b| usize::from(b) + 1).collect();
    (sizes, &rest[n..])
}
