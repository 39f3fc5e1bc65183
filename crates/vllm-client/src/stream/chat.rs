//! Chat completion chunks: their events, and the response they add up to.

use vllm_types::{
    ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice, FinishReason,
    ResponseMessage, Role, StopReason,
};

use super::event::{Sink, StreamEvent};
use super::{Head, Processor, Whole, append, fill, is_error_object};
use crate::head::ResponseHead;
use crate::response::ChatCompletionResponse;
use crate::tool_calls::{ToolCall, ToolCallAccumulator};

/// What the chunks of a chat stream add up to so far.
#[derive(Debug, Default)]
pub(crate) struct ChatProcessor {
    whole: Whole,
    prompt_token_ids: Option<Vec<u32>>,
    choices: Vec<ChoiceState>,
    /// Calls completed by the current piece (kept to reuse its allocation).
    complete: Vec<ToolCall>,
}

/// One choice so far.
#[derive(Debug, Default)]
struct ChoiceState {
    index: u32,
    role: Option<Role>,
    content: String,
    reasoning: String,
    refusal: Option<String>,
    tools: ToolCallAccumulator,
    calls: Vec<ToolCall>,
    logprobs: Option<ChoiceLogprobs>,
    token_ids: Option<Vec<u32>>,
    finish_reason: Option<FinishReason>,
    stop_reason: Option<StopReason>,
}

impl Processor for ChatProcessor {
    type Chunk = ChatCompletionChunk;
    type Response = ChatCompletionResponse;
    const WHAT: &'static str = "a stream chunk";

    fn is_error(chunk: &ChatCompletionChunk) -> bool {
        is_error_object(&chunk.object, chunk.choices.is_empty(), &chunk.extra)
    }

    fn has_text(chunk: &ChatCompletionChunk) -> (bool, bool) {
        let nonempty = |s: Option<&str>| s.is_some_and(|s| !s.is_empty());
        chunk.choices.iter().fold((false, false), |(r, c), choice| {
            (
                r || nonempty(choice.delta.reasoning_text()),
                c || nonempty(choice.delta.content.as_deref()),
            )
        })
    }

    fn apply(&mut self, chunk: &ChatCompletionChunk, sink: &mut Sink<'_>) {
        self.whole.note(Head {
            id: &chunk.id,
            created: chunk.created,
            model: &chunk.model,
            system_fingerprint: &chunk.system_fingerprint,
            service_tier: &chunk.service_tier,
            kv_transfer_params: &chunk.kv_transfer_params,
        });
        fill(&mut self.prompt_token_ids, &chunk.prompt_token_ids);
        for choice in &chunk.choices {
            self.apply_choice(choice, sink);
        }
        self.whole.usage(&chunk.usage, sink);
    }

    fn done(&mut self, sink: &mut Sink<'_>) {
        // `[DONE]` without a finish for some choice: its open calls are complete now.
        for i in 0..self.choices.len() {
            if !self.choices[i].tools.is_empty() {
                self.finish_calls(i, sink);
            }
        }
    }

    fn response(&self, head: ResponseHead) -> ChatCompletionResponse {
        let mut choices: Vec<&ChoiceState> = self.choices.iter().collect();
        choices.sort_by_key(|c| c.index);
        let whole = &self.whole;
        let completion = ChatCompletion {
            id: whole.id.clone(),
            object: "chat.completion".into(),
            created: whole.created,
            model: whole.model.clone(),
            choices: choices.into_iter().map(ChoiceState::to_choice).collect(),
            usage: whole.usage.clone(),
            system_fingerprint: whole.system_fingerprint.clone(),
            service_tier: whole.service_tier.clone(),
            prompt_token_ids: self.prompt_token_ids.clone(),
            kv_transfer_params: whole.kv_transfer_params.clone(),
            ..ChatCompletion::default()
        };
        ChatCompletionResponse::from_completion(completion).with_head(head)
    }
}

impl ChatProcessor {
    fn apply_choice(&mut self, choice: &ChunkChoice, sink: &mut Sink<'_>) {
        let index = choice.index;
        let i = self.position(index);
        let state = &mut self.choices[i];
        let delta = &choice.delta;
        fill(&mut state.role, &delta.role);
        if let Some(text) = delta.reasoning_text().filter(|s| !s.is_empty()) {
            state.reasoning.push_str(text);
            sink.push(Some(index), || StreamEvent::Reasoning(text.to_owned()));
        }
        if let Some(text) = delta.content.as_deref().filter(|s| !s.is_empty()) {
            state.content.push_str(text);
            sink.push(Some(index), || StreamEvent::Content(text.to_owned()));
        }
        if let Some(text) = &delta.refusal {
            state.refusal.get_or_insert_default().push_str(text);
        }
        if let Some(logprobs) = &choice.logprobs {
            let into = state.logprobs.get_or_insert_default();
            append(&mut into.content, &logprobs.content);
            append(&mut into.refusal, &logprobs.refusal);
        }
        append(&mut state.token_ids, &choice.token_ids);
        if let Some(deltas) = &delta.tool_calls {
            for d in deltas {
                state.tools.push(d, &mut self.complete);
            }
            if sink.wants() {
                for d in deltas {
                    let function = d.function.as_ref();
                    sink.push(Some(index), || StreamEvent::ToolCallDelta {
                        index: d.index,
                        id: d.id.clone(),
                        name: function.and_then(|f| f.name.clone()),
                        arguments: function.and_then(|f| f.arguments.clone()),
                    });
                }
            }
            self.take_complete(i, sink);
        }
        if let Some(reason) = &choice.finish_reason {
            self.finish_calls(i, sink);
            let state = &mut self.choices[i];
            state.finish_reason = Some(reason.clone());
            state.stop_reason.clone_from(&choice.stop_reason);
            sink.push(Some(index), || StreamEvent::Finished {
                index,
                reason: reason.clone(),
            });
        }
    }

    /// The position of choice `index` in `choices`, added if new.
    fn position(&mut self, index: u32) -> usize {
        match self.choices.iter().position(|c| c.index == index) {
            Some(i) => i,
            None => {
                self.choices.push(ChoiceState {
                    index,
                    ..ChoiceState::default()
                });
                self.choices.len() - 1
            }
        }
    }

    /// Choice `i` finished: every call still open in it is complete.
    fn finish_calls(&mut self, i: usize, sink: &mut Sink<'_>) {
        self.choices[i].tools.finish(&mut self.complete);
        self.take_complete(i, sink);
    }

    /// Records the calls just completed in choice `i` and queues their events.
    fn take_complete(&mut self, i: usize, sink: &mut Sink<'_>) {
        let state = &mut self.choices[i];
        for call in self.complete.drain(..) {
            sink.push(Some(state.index), || {
                StreamEvent::ToolCallComplete(call.clone())
            });
            state.calls.push(call);
        }
    }
}

impl ChoiceState {
    fn to_choice(&self) -> Choice {
        let calls: Vec<vllm_types::ToolCall> = self.calls.iter().map(Into::into).collect();
        // As vLLM writes a whole answer: `""` beside tool calls and for an empty answer,
        // `null` when the output ended inside the reasoning.
        let content = if self.content.is_empty() && calls.is_empty() && !self.reasoning.is_empty() {
            None
        } else {
            Some(self.content.clone())
        };
        Choice {
            index: self.index,
            message: ResponseMessage {
                role: self.role.clone().unwrap_or(Role::Assistant),
                content,
                reasoning: (!self.reasoning.is_empty()).then(|| self.reasoning.clone()),
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: self.refusal.clone(),
                ..ResponseMessage::default()
            },
            logprobs: self.logprobs.clone(),
            finish_reason: self.finish_reason.clone(),
            stop_reason: self.stop_reason.clone(),
            token_ids: self.token_ids.clone(),
            ..Choice::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// The events and the final response of `chunks` (then `[DONE]`).
    fn run(chunks: &[&str]) -> (Vec<(Option<u32>, String)>, ChatCompletionResponse) {
        let mut processor = ChatProcessor::default();
        let mut queue = VecDeque::new();
        for data in chunks {
            let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
            assert!(!ChatProcessor::is_error(&chunk), "{data}");
            processor.apply(&chunk, &mut Sink::new(Some(&mut queue)));
        }
        processor.done(&mut Sink::new(Some(&mut queue)));
        let events = queue
            .into_iter()
            .map(|(c, e)| (c, format!("{e:?}")))
            .collect();
        (events, processor.response(ResponseHead::default()))
    }

    fn chunk(choices: &str) -> String {
        format!(
            r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{choices}]}}"#
        )
    }

    #[test]
    fn content_reasoning_finish_and_usage_in_order() {
        let (events, response) = run(&[
            &chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}}"#),
            &chunk(r#"{"index":0,"delta":{"reasoning":"think"}}"#),
            &chunk(r#"{"index":0,"delta":{"reasoning_content":"older"}}"#),
            &chunk(r#"{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}"#),
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        ]);
        let kinds: Vec<&str> = events.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "Reasoning(\"think\")",
                "Reasoning(\"older\")",
                "Content(\"Hi\")",
                "Finished { index: 0, reason: Stop }",
                "Usage(Usage { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: None, completion_tokens_details: None })",
            ]
        );
        assert_eq!(events[0].0, Some(0));
        assert_eq!(events[4].0, None, "usage belongs to no choice");
        assert_eq!(response.id, "c");
        assert_eq!(response.object, "chat.completion");
        assert_eq!(response.content.as_deref(), Some("Hi"));
        assert_eq!(response.reasoning_content.as_deref(), Some("thinkolder"));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.usage.as_ref().map(|u| u.total_tokens), Some(5));
        assert_eq!(response.raw["choices"][0]["message"]["role"], "assistant");
    }

    #[test]
    fn error_objects_in_any_shape_are_errors() {
        for data in [
            r#"{ "error": {"message": "spaced", "code": 500} }"#,
            r#"{"id":"c","error":{"message":"after id","type":"x","code":503}}"#,
            r#"{"object":"error","message":"older vLLM","type":"x","code":400}"#,
            r#"{"id":"c","object":"error","message":"older, reordered","code":400}"#,
            r#"{"detail":"Not Found"}"#,
            r#"{ "detail": [{"loc": ["body"], "msg": "Field required"}] }"#,
        ] {
            let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
            assert!(ChatProcessor::is_error(&chunk), "{data}");
        }
        for data in [
            r#"{"id":"c","choices":[],"error":null}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{}}],"detail":"a chunk's own member"}"#,
        ] {
            let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
            assert!(!ChatProcessor::is_error(&chunk), "{data}");
        }
    }

    #[test]
    fn choices_are_kept_apart() {
        let (events, response) = run(&[
            &chunk(r#"{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}"#),
            &chunk(r#"{"index":1,"delta":{"content":"c"},"finish_reason":"length"}"#),
            &chunk(r#"{"index":0,"delta":{"content":"d"},"finish_reason":"stop"}"#),
        ]);
        let per_choice = |i: u32| -> Vec<&str> {
            events
                .iter()
                .filter(|(c, e)| *c == Some(i) && e.starts_with("Content"))
                .map(|(_, e)| e.as_str())
                .collect()
        };
        assert_eq!(per_choice(0), ["Content(\"a\")", "Content(\"d\")"]);
        assert_eq!(per_choice(1), ["Content(\"b\")", "Content(\"c\")"]);
        let choices = &response.completion().choices;
        assert_eq!(choices.len(), 2);
        assert_eq!(choices[0].message.content.as_deref(), Some("ad"));
        assert_eq!(choices[1].message.content.as_deref(), Some("bc"));
        assert_eq!(choices[1].finish_reason, Some(FinishReason::Length));
    }

    #[test]
    fn tool_calls_complete_at_finish_and_open_ones_at_done() {
        let (events, response) = run(&[
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
        ]);
        let complete: Vec<(Option<u32>, &str)> = events
            .iter()
            .filter(|(_, e)| e.starts_with("ToolCallComplete"))
            .map(|(c, e)| (*c, e.as_str()))
            .collect();
        assert_eq!(complete.len(), 2);
        assert_eq!(complete[0].0, Some(0));
        assert!(
            complete[0].1.contains("id: \"t1\", name: \"f\""),
            "{}",
            complete[0].1
        );
        assert_eq!(complete[1].0, Some(1), "completed at [DONE]");
        let choices = &response.completion().choices;
        assert_eq!(choices[0].message.tool_calls()[0].function.name, "f");
        assert_eq!(
            choices[1].message.tool_calls()[0].function.arguments,
            "{\"a\":1}"
        );
        // Beside tool calls, vLLM's whole answer has `content: ""`.
        assert_eq!(choices[0].message.content.as_deref(), Some(""));
    }

    #[test]
    fn content_is_null_only_when_the_output_ended_in_the_reasoning() {
        let (_, thought) = run(&[
            &chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}}"#),
            &chunk(
                r#"{"index":0,"delta":{"reasoning":"still thinking"},"finish_reason":"length"}"#,
            ),
        ]);
        assert_eq!(thought.content, None);
        let (_, empty) = run(&[&chunk(
            r#"{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}"#,
        )]);
        assert_eq!(empty.content.as_deref(), Some(""));
    }

    #[test]
    fn no_events_are_built_for_a_sink_that_wants_none() {
        let mut processor = ChatProcessor::default();
        let chunk: ChatCompletionChunk = serde_json::from_str(&chunk(
            r#"{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}"#,
        ))
        .unwrap();
        let mut sink = Sink::new(None);
        assert!(!sink.wants());
        processor.apply(&chunk, &mut sink);
        assert_eq!(
            processor
                .response(ResponseHead::default())
                .content
                .as_deref(),
            Some("x")
        );
    }
}
