//! Chat completion chunks: their events, and the response they add up to.

use vllm_types::{
    ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice, FinishReason,
    JsonObject, ResponseMessage, Role, StopReason,
};

use super::event::{Sink, StreamEvent};
use super::{Processor, append, fill, is_error_object};
use crate::response::ChatCompletionResponse;
use crate::tool_calls::{ToolCall, ToolCallAccumulator};

/// What the chunks of a chat stream add up to so far.
#[derive(Debug, Default)]
pub(crate) struct ChatProcessor {
    id: String,
    created: u64,
    model: String,
    system_fingerprint: Option<String>,
    service_tier: Option<String>,
    prompt_token_ids: Option<Vec<u32>>,
    kv_transfer_params: Option<JsonObject>,
    usage: Option<vllm_types::Usage>,
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
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.created = chunk.created;
            self.model.clone_from(&chunk.model);
        }
        fill(&mut self.system_fingerprint, &chunk.system_fingerprint);
        fill(&mut self.service_tier, &chunk.service_tier);
        fill(&mut self.prompt_token_ids, &chunk.prompt_token_ids);
        fill(&mut self.kv_transfer_params, &chunk.kv_transfer_params);
        for choice in &chunk.choices {
            self.apply_choice(choice, sink);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
            sink.push(None, || StreamEvent::Usage(usage.clone().into()));
        }
    }

    fn done(&mut self, sink: &mut Sink<'_>) {
        // `[DONE]` without a finish for some choice: its open calls are complete now.
        for i in 0..self.choices.len() {
            if !self.choices[i].tools.is_empty() {
                self.finish_calls(i, sink);
            }
        }
    }

    fn response(&self) -> ChatCompletionResponse {
        let mut choices: Vec<&ChoiceState> = self.choices.iter().collect();
        choices.sort_by_key(|c| c.index);
        let completion = ChatCompletion {
            id: self.id.clone(),
            object: "chat.completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices: choices.into_iter().map(ChoiceState::to_choice).collect(),
            usage: self.usage.clone(),
            system_fingerprint: self.system_fingerprint.clone(),
            service_tier: self.service_tier.clone(),
            prompt_token_ids: self.prompt_token_ids.clone(),
            kv_transfer_params: self.kv_transfer_params.clone(),
            ..ChatCompletion::default()
        };
        ChatCompletionResponse::from_completion(completion)
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
