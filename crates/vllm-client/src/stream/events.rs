//! From SSE event data to [`StreamEvent`]s: a pure state machine, no I/O.

use std::collections::VecDeque;

use serde::Deserialize;
use serde::de::IgnoredAny;
use vllm_types::{CompletionChunk, ErrorResponse, FinishReason, ToolCallDelta};

use super::StreamKind;

use crate::error::VllmError;
use crate::response::Usage;
use crate::tool_calls::{ToolCall, ToolCallAccumulator};

/// One event of a streamed chat completion.
///
/// A stream yields any number of `Content`, `Reasoning`, `ToolCallDelta`, `ToolCallComplete`,
/// `Finished` and `Usage` events, then exactly one `Done` (the server sent `data: [DONE]`) or
/// one `Error`, then nothing. With `n > 1`, [`MessageStream::choice_index`](super::MessageStream::choice_index)
/// tells which choice an event belongs to.
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
        /// Why it stopped.
        reason: String,
    },
    /// Token usage, as the server reported it (never estimated).
    Usage(Usage),
    /// The server ended the stream with `data: [DONE]`.
    Done,
    /// The stream failed: a mid-stream error from the server, a body cut off before
    /// `[DONE]`, an undecodable chunk, a timeout or a network error. Nothing follows it.
    Error(VllmError),
}

/// Per-choice state.
#[derive(Debug, Default)]
struct ChoiceState {
    index: u32,
    tools: ToolCallAccumulator,
}

/// Turns the data of SSE events into [`StreamEvent`]s, each tagged with its choice index.
#[derive(Debug)]
pub(crate) struct EventProcessor {
    kind: StreamKind,
    queue: VecDeque<(Option<u32>, StreamEvent)>,
    choices: Vec<ChoiceState>,
    finished: bool,
    scratch: Vec<ToolCall>,
}

impl EventProcessor {
    pub(crate) fn new(kind: StreamKind) -> Self {
        EventProcessor {
            kind,
            queue: VecDeque::new(),
            choices: Vec::new(),
            finished: false,
            scratch: Vec::new(),
        }
    }

    /// Whether the stream has ended (`Done` or `Error` queued).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next queued event and its choice index.
    pub(crate) fn pop(&mut self) -> Option<(Option<u32>, StreamEvent)> {
        self.queue.pop_front()
    }

    /// Processes one SSE event (its `event` type and `data`).
    pub(crate) fn push_event(&mut self, event_type: &str, data: &str) {
        if self.finished {
            return;
        }
        if data == "[DONE]" {
            self.flush_all_tools();
            self.queue.push_back((None, StreamEvent::Done));
            self.finished = true;
            return;
        }
        if event_type == "error" {
            if let Some(error) = parse_error_event(data) {
                self.fail(error);
                return;
            }
        }
        match self.kind {
            StreamKind::Chat => match serde_json::from_str::<StreamChunk<'_>>(data) {
                Ok(chunk) if chunk.is_error_object() => self.fail_with_body(data),
                Ok(chunk) => self.push_chunk(chunk),
                Err(e) => self.fail(VllmError::decode("a stream chunk", data, e)),
            },
            StreamKind::Completion => match serde_json::from_str::<CompletionChunk>(data) {
                Ok(chunk) if is_error_completion_chunk(&chunk) => self.fail_with_body(data),
                Ok(chunk) => self.push_completion_chunk(chunk),
                Err(e) => self.fail(VllmError::decode("a completion stream chunk", data, e)),
            },
        }
    }

    /// A data line that parsed as a chunk but is an error object: the stream ends with it.
    fn fail_with_body(&mut self, data: &str) {
        let error = parse_error_event(data).unwrap_or_else(|| {
            VllmError::stream(format!("the server sent an error event: {data}"))
        });
        self.fail(error);
    }

    fn push_completion_chunk(&mut self, chunk: CompletionChunk) {
        for choice in chunk.choices {
            if !choice.text.is_empty() {
                self.queue
                    .push_back((Some(choice.index), StreamEvent::Content(choice.text)));
            }
            if let Some(reason) = choice.finish_reason {
                self.queue.push_back((
                    Some(choice.index),
                    StreamEvent::Finished {
                        index: choice.index,
                        reason: reason.as_str().to_owned(),
                    },
                ));
            }
        }
        if let Some(usage) = chunk.usage {
            self.queue
                .push_back((None, StreamEvent::Usage(usage.into())));
        }
    }

    /// The stream failed: queue the error and end.
    pub(crate) fn fail(&mut self, error: VllmError) {
        if !self.finished {
            self.queue.push_back((None, StreamEvent::Error(error)));
            self.finished = true;
        }
    }

    fn push_chunk(&mut self, chunk: StreamChunk<'_>) {
        for choice in chunk.choices {
            let index = choice.index;
            let delta = choice.delta;
            if let Some(reasoning) = delta
                .reasoning
                .or(delta.reasoning_content)
                .filter(|s| !s.is_empty())
            {
                self.queue
                    .push_back((Some(index), StreamEvent::Reasoning(reasoning)));
            }
            if let Some(content) = delta.content.filter(|s| !s.is_empty()) {
                self.queue
                    .push_back((Some(index), StreamEvent::Content(content)));
            }
            if let Some(deltas) = delta.tool_calls {
                let mut complete = std::mem::take(&mut self.scratch);
                let state = self.choice(index);
                for d in &deltas {
                    state.tools.push(d, &mut complete);
                }
                for d in deltas {
                    let (name, arguments) =
                        d.function.map_or((None, None), |f| (f.name, f.arguments));
                    self.queue.push_back((
                        Some(index),
                        StreamEvent::ToolCallDelta {
                            index: d.index,
                            id: d.id,
                            name,
                            arguments,
                        },
                    ));
                }
                self.queue_complete(index, &mut complete);
                self.scratch = complete;
            }
            if let Some(reason) = choice.finish_reason {
                let mut complete = std::mem::take(&mut self.scratch);
                self.choice(index).tools.finish(&mut complete);
                self.queue_complete(index, &mut complete);
                self.scratch = complete;
                self.queue.push_back((
                    Some(index),
                    StreamEvent::Finished {
                        index,
                        reason: reason.as_str().to_owned(),
                    },
                ));
            }
        }
        if let Some(usage) = chunk.usage {
            self.queue
                .push_back((None, StreamEvent::Usage(usage.into())));
        }
    }

    fn choice(&mut self, index: u32) -> &mut ChoiceState {
        let pos = match self.choices.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.choices.push(ChoiceState {
                    index,
                    ..ChoiceState::default()
                });
                self.choices.len() - 1
            }
        };
        &mut self.choices[pos]
    }

    fn queue_complete(&mut self, index: u32, complete: &mut Vec<ToolCall>) {
        for call in complete.drain(..) {
            self.queue
                .push_back((Some(index), StreamEvent::ToolCallComplete(call)));
        }
    }

    /// `[DONE]` without a finish for some choice: its open calls are complete now.
    fn flush_all_tools(&mut self) {
        let mut complete = std::mem::take(&mut self.scratch);
        for i in 0..self.choices.len() {
            if self.choices[i].tools.is_empty() {
                continue;
            }
            let index = self.choices[i].index;
            self.choices[i].tools.finish(&mut complete);
            self.queue_complete(index, &mut complete);
        }
        self.scratch = complete;
    }
}

/// What the event stream reads of a chat completion chunk (`vllm_types::ChatCompletionChunk`
/// in full is for callers that want the chunks themselves). The members it does not use
/// (`id`, `model`, `created`, …) are skipped without being copied, so a token costs one
/// allocation (its text) and little moving of large values.
#[derive(Deserialize)]
struct StreamChunk<'a> {
    #[serde(default, borrow)]
    object: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    choices: Vec<StreamChoice>,
    #[serde(default)]
    usage: Option<vllm_types::Usage>,
    /// `{"error": …}` in place of a chunk.
    #[serde(default)]
    error: Option<IgnoredAny>,
    /// FastAPI's `{"detail": …}` in place of a chunk.
    #[serde(default)]
    detail: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct StreamChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: StreamDelta,
    #[serde(default)]
    finish_reason: Option<FinishReason>,
}

#[derive(Deserialize, Default)]
struct StreamDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

impl StreamChunk<'_> {
    fn is_error_object(&self) -> bool {
        is_error_object(
            self.object.as_deref(),
            self.choices.is_empty(),
            self.error.is_some(),
            self.detail.is_some(),
        )
    }
}

/// Whether a parsed chunk is really an error object: `{"error": …}` (non-null), older
/// vLLM's `{"object": "error", …}` or FastAPI's `{"detail": …}` with no choices (chunks
/// parse leniently, so an error body parses as a chunk with no choices).
fn is_error_object(object: Option<&str>, no_choices: bool, error: bool, detail: bool) -> bool {
    object == Some("error") || error || (no_choices && detail)
}

/// [`is_error_object`] for a completion chunk, whose unmodelled members are in `extra`.
fn is_error_completion_chunk(chunk: &CompletionChunk) -> bool {
    let has = |key: &str| chunk.extra.get(key).is_some_and(|e| !e.is_null());
    is_error_object(
        Some(&chunk.object),
        chunk.choices.is_empty(),
        has("error"),
        has("detail"),
    )
}

fn parse_error_event(data: &str) -> Option<VllmError> {
    let body: ErrorResponse = serde_json::from_str(data).ok()?;
    Some(VllmError::server_event(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> Vec<(Option<u32>, StreamEvent)> {
        let mut p = EventProcessor::new(StreamKind::Chat);
        for data in events {
            p.push_event("message", data);
        }
        std::iter::from_fn(|| p.pop()).collect()
    }

    fn chunk(choices: &str) -> String {
        format!(
            r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{choices}]}}"#
        )
    }

    #[test]
    fn content_reasoning_finish_usage_done_in_order() {
        let events = run(&[
            &chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}}"#),
            &chunk(r#"{"index":0,"delta":{"reasoning":"think"}}"#),
            &chunk(r#"{"index":0,"delta":{"reasoning_content":"older"}}"#),
            &chunk(r#"{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}"#),
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
            "[DONE]",
        ]);
        let kinds: Vec<String> = events.iter().map(|(_, e)| format!("{e:?}")).collect();
        assert_eq!(
            kinds,
            vec![
                "Reasoning(\"think\")",
                "Reasoning(\"older\")",
                "Content(\"Hi\")",
                "Finished { index: 0, reason: \"stop\" }",
                "Usage(Usage { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: None, completion_tokens_details: None })",
                "Done",
            ]
        );
    }

    #[test]
    fn a_mid_stream_error_becomes_an_error_event_and_ends_the_stream() {
        let events = run(&[
            &chunk(r#"{"index":0,"delta":{"content":"a"}}"#),
            r#"{"error":{"message":"engine died","type":"InternalServerError","code":500}}"#,
            &chunk(r#"{"index":0,"delta":{"content":"never"}}"#),
            "[DONE]",
        ]);
        assert_eq!(events.len(), 2);
        let StreamEvent::Error(e) = &events[1].1 else {
            panic!("{events:?}")
        };
        assert_eq!(e.to_string(), "engine died");
        assert_eq!(e.status_code(), Some(500));
    }

    #[test]
    fn error_objects_in_any_spacing_or_shape_are_errors() {
        for data in [
            r#"{ "error": {"message": "spaced", "code": 500} }"#,
            r#"{"id":"c","error":{"message":"after id","type":"x","code":503}}"#,
            r#"{"object":"error","message":"older vLLM","type":"x","code":400}"#,
            r#"{"id":"c","object":"error","message":"older, reordered","code":400}"#,
            r#"{"detail":"Not Found"}"#,
            r#"{ "detail": [{"loc": ["body"], "msg": "Field required"}] }"#,
        ] {
            let events = run(&[data]);
            let StreamEvent::Error(e) = &events[0].1 else {
                panic!("{data}: {events:?}")
            };
            assert!(e.is_server_event(), "{data}: {e:?}");
            assert_eq!(events.len(), 1);
        }
    }

    #[test]
    fn an_undecodable_chunk_becomes_an_error_event_naming_it() {
        let events = run(&["{\"id\": 5, \"choices\": \"x\"}"]);
        let StreamEvent::Error(e) = &events[0].1 else {
            panic!("{events:?}")
        };
        assert!(e.is_decode(), "{e:?}");
        assert!(e.to_string().contains("stream chunk"), "{e}");
    }

    #[test]
    fn choices_are_kept_apart() {
        let events = run(&[
            &chunk(r#"{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}"#),
            &chunk(r#"{"index":1,"delta":{"content":"c"},"finish_reason":"length"}"#),
            "[DONE]",
        ]);
        let per_choice = |i: u32| -> String {
            events
                .iter()
                .filter_map(|(c, e)| match e {
                    StreamEvent::Content(s) if *c == Some(i) => Some(s.as_str()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(per_choice(0), "a");
        assert_eq!(per_choice(1), "bc");
    }

    #[test]
    fn tool_calls_complete_at_finish_and_open_ones_at_done() {
        let events = run(&[
            &chunk(
                r#"{"index":0,"delta":{"tool_calls":[{"id":"t1","type":"function","index":0}]}}"#,
            ),
            &chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f"}}]}}"#),
            &chunk(
                r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}"#,
            ),
            &chunk(
                r#"{"index":1,"delta":{"tool_calls":[{"id":"t2","index":0,"function":{"name":"g","arguments":"{\"a\":1}"}}]}}"#,
            ),
            "[DONE]",
        ]);
        let complete: Vec<(Option<u32>, &ToolCall)> = events
            .iter()
            .filter_map(|(c, e)| match e {
                StreamEvent::ToolCallComplete(call) => Some((*c, call)),
                _ => None,
            })
            .collect();
        assert_eq!(complete.len(), 2);
        assert_eq!(
            (
                complete[0].0,
                complete[0].1.id.as_str(),
                complete[0].1.name.as_str()
            ),
            (Some(0), "t1", "f")
        );
        assert_eq!(
            (complete[1].0, complete[1].1.arguments.as_str()),
            (Some(1), "{\"a\":1}")
        );
        assert!(matches!(events.last().unwrap().1, StreamEvent::Done));
    }
}
