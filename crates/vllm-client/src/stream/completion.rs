//! Legacy completion chunks: their events, and the response they add up to.

use vllm_types::{
    Completion, CompletionChoice, CompletionChunk, CompletionLogprobs, FinishReason, StopReason,
};

use super::event::{Sink, StreamEvent};
use super::{Head, Processor, Whole, append, fill, is_error_object};
use crate::completions::CompletionResponse;
use crate::head::ResponseHead;

/// What the chunks of a completion stream add up to so far.
#[derive(Debug, Default)]
pub(crate) struct CompletionProcessor {
    whole: Whole,
    choices: Vec<ChoiceState>,
}

/// One choice so far.
#[derive(Debug, Default)]
struct ChoiceState {
    index: u32,
    text: String,
    logprobs: Option<CompletionLogprobs>,
    token_ids: Option<Vec<u32>>,
    prompt_token_ids: Option<Vec<u32>>,
    finish_reason: Option<FinishReason>,
    stop_reason: Option<StopReason>,
}

impl Processor for CompletionProcessor {
    type Chunk = CompletionChunk;
    type Response = CompletionResponse;
    const WHAT: &'static str = "a completion stream chunk";

    fn is_error(chunk: &CompletionChunk) -> bool {
        is_error_object(&chunk.object, chunk.choices.is_empty(), &chunk.extra)
    }

    fn has_text(chunk: &CompletionChunk) -> (bool, bool) {
        (false, chunk.choices.iter().any(|c| !c.text.is_empty()))
    }

    fn apply(&mut self, chunk: &CompletionChunk, sink: &mut Sink<'_>) {
        self.whole.note(Head {
            id: &chunk.id,
            created: chunk.created,
            model: &chunk.model,
            system_fingerprint: &chunk.system_fingerprint,
            service_tier: &chunk.service_tier,
            kv_transfer_params: &chunk.kv_transfer_params,
        });
        for choice in &chunk.choices {
            self.apply_choice(choice, sink);
        }
        self.whole.usage(&chunk.usage, sink);
    }

    fn done(&mut self, _sink: &mut Sink<'_>) {}

    fn response(&self, head: ResponseHead) -> CompletionResponse {
        let mut choices: Vec<&ChoiceState> = self.choices.iter().collect();
        choices.sort_by_key(|c| c.index);
        let whole = &self.whole;
        let mut response = CompletionResponse::from_completion(Completion {
            id: whole.id.clone(),
            object: "text_completion".into(),
            created: whole.created,
            model: whole.model.clone(),
            choices: choices.into_iter().map(ChoiceState::to_choice).collect(),
            usage: whole.usage.clone(),
            system_fingerprint: whole.system_fingerprint.clone(),
            service_tier: whole.service_tier.clone(),
            kv_transfer_params: whole.kv_transfer_params.clone(),
            ..Completion::default()
        });
        response.head = head;
        response
    }
}

impl CompletionProcessor {
    fn apply_choice(&mut self, choice: &CompletionChoice, sink: &mut Sink<'_>) {
        let index = choice.index;
        let state = match self.choices.iter().position(|c| c.index == index) {
            Some(i) => &mut self.choices[i],
            None => {
                self.choices.push(ChoiceState {
                    index,
                    ..ChoiceState::default()
                });
                let last = self.choices.len() - 1;
                &mut self.choices[last]
            }
        };
        if !choice.text.is_empty() {
            state.text.push_str(&choice.text);
            sink.push(Some(index), || StreamEvent::Content(choice.text.clone()));
        }
        if let Some(logprobs) = &choice.logprobs {
            let into = state.logprobs.get_or_insert_default();
            append(&mut into.text_offset, &logprobs.text_offset);
            append(&mut into.token_logprobs, &logprobs.token_logprobs);
            append(&mut into.tokens, &logprobs.tokens);
            append(&mut into.top_logprobs, &logprobs.top_logprobs);
        }
        append(&mut state.token_ids, &choice.token_ids);
        fill(&mut state.prompt_token_ids, &choice.prompt_token_ids);
        if let Some(reason) = &choice.finish_reason {
            state.finish_reason = Some(reason.clone());
            state.stop_reason.clone_from(&choice.stop_reason);
            sink.push(Some(index), || StreamEvent::Finished {
                index,
                reason: reason.clone(),
            });
        }
    }
}

impl ChoiceState {
    fn to_choice(&self) -> CompletionChoice {
        CompletionChoice {
            index: self.index,
            text: self.text.clone(),
            logprobs: self.logprobs.clone(),
            finish_reason: self.finish_reason.clone(),
            stop_reason: self.stop_reason.clone(),
            token_ids: self.token_ids.clone(),
            prompt_token_ids: self.prompt_token_ids.clone(),
            ..CompletionChoice::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    #[test]
    fn text_logprobs_and_finishes_add_up_per_choice() {
        let mut processor = CompletionProcessor::default();
        let mut queue = VecDeque::new();
        for data in [
            r#"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"index":0,"text":" Par","logprobs":{"text_offset":[0],"token_logprobs":[-0.1],"tokens":[" Par"],"top_logprobs":[null]}},{"index":1,"text":"A"}]}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"index":0,"text":"is","logprobs":{"text_offset":[4],"token_logprobs":[-0.2],"tokens":["is"],"top_logprobs":[null]},"finish_reason":"stop","stop_reason":"."}]}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"index":1,"text":"","finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}}"#,
        ] {
            let chunk: CompletionChunk = serde_json::from_str(data).unwrap();
            assert!(!CompletionProcessor::is_error(&chunk));
            processor.apply(&chunk, &mut Sink::new(Some(&mut queue)));
        }
        let events: Vec<String> = queue.iter().map(|(_, e)| format!("{e:?}")).collect();
        assert_eq!(
            events[..4],
            [
                "Content(\" Par\")",
                "Content(\"A\")",
                "Content(\"is\")",
                "Finished { index: 0, reason: Stop }"
            ]
        );
        let response = processor.response(ResponseHead::default());
        assert_eq!(response.text, " Paris");
        assert_eq!(response.id, "cmpl-1");
        assert_eq!(response.typed_finish_reason(), Some(&FinishReason::Stop));
        let choices = &response.completion().choices;
        assert_eq!(choices[1].text, "A");
        assert_eq!(choices[1].finish_reason, Some(FinishReason::Length));
        let logprobs = choices[0].logprobs.as_ref().unwrap();
        assert_eq!(
            logprobs.tokens.as_deref(),
            Some(&[" Par".to_owned(), "is".to_owned()][..])
        );
        assert_eq!(logprobs.text_offset.as_deref(), Some(&[0, 4][..]));
        assert_eq!(choices[0].stop_reason, Some(StopReason::Text(".".into())));
        assert_eq!(response.usage.map(|u| u.total_tokens), Some(7));
    }
}
