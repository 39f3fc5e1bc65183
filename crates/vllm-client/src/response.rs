//! [`ChatCompletionResponse`] and [`Usage`].

use serde_json::Value;
use vllm_types::{ChatCompletion, CompletionTokensDetails, FinishReason, PromptTokensDetails};

use crate::head::ResponseHead;
use crate::tool_calls::ToolCall;

/// Token usage, as the server reported it (this crate never estimates it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated (0 when the server sent `null`, as for endpoints that generate none).
    pub completion_tokens: u32,
    /// Prompt plus generated tokens.
    pub total_tokens: u32,
    /// Prefix-cache hits, when the server sent them.
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Reasoning tokens, when the server sent them.
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Tokens spent on reasoning, when the server reported them.
    pub fn reasoning_tokens(&self) -> Option<u32> {
        self.completion_tokens_details.as_ref()?.reasoning_tokens
    }

    /// Prompt tokens served from the prefix cache, when the server reported them.
    pub fn cached_tokens(&self) -> Option<u32> {
        self.prompt_tokens_details.as_ref()?.cached_tokens
    }
}

impl From<vllm_types::Usage> for Usage {
    fn from(u: vllm_types::Usage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens.unwrap_or(0),
            total_tokens: u.total_tokens,
            prompt_tokens_details: u.prompt_tokens_details,
            completion_tokens_details: u.completion_tokens_details,
        }
    }
}

/// The answer to a chat completion request (`send()`).
///
/// The fields describe the first choice, which is all most requests have; every choice, the
/// log probabilities and vLLM's extra fields are in [`completion()`](Self::completion), and
/// the JSON as received in `raw`.
///
/// Two responses are equal when their contents are; the headers they came with are not
/// compared.
#[derive(Debug, Clone)]
pub struct ChatCompletionResponse {
    /// The response as JSON (every member the server sent).
    pub raw: Value,
    /// The completion's id.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// The model that answered.
    pub model: String,
    /// The generated text of the first choice.
    pub content: Option<String>,
    /// The reasoning of a thinking model (from vLLM's `reasoning`, or the older
    /// `reasoning_content`).
    pub reasoning_content: Option<String>,
    /// The tool calls of the first choice (`None` when it made none).
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Why the first choice stopped: `stop`, `length`, `tool_calls`, ….
    pub finish_reason: Option<String>,
    /// Token usage.
    pub usage: Option<Usage>,
    completion: ChatCompletion,
    head: ResponseHead,
}

impl PartialEq for ChatCompletionResponse {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
            && self.id == other.id
            && self.object == other.object
            && self.model == other.model
            && self.content == other.content
            && self.reasoning_content == other.reasoning_content
            && self.tool_calls == other.tool_calls
            && self.finish_reason == other.finish_reason
            && self.usage == other.usage
            && self.completion == other.completion
    }
}

impl ChatCompletionResponse {
    /// The response to `completion`, with `raw` its JSON.
    pub(crate) fn from_completion(completion: ChatCompletion) -> Self {
        // Serializing a parsed value cannot fail: every member is JSON already.
        let raw = serde_json::to_value(&completion).unwrap_or(Value::Null);
        let first = completion.choices.first();
        let message = first.map(|c| &c.message);
        ChatCompletionResponse {
            raw,
            id: completion.id.clone(),
            object: completion.object.clone(),
            model: completion.model.clone(),
            content: message.and_then(|m| m.content.clone()),
            reasoning_content: message.and_then(|m| m.reasoning_text()).map(str::to_owned),
            tool_calls: message
                .map(|m| {
                    m.tool_calls()
                        .iter()
                        .cloned()
                        .map(ToolCall::from)
                        .collect::<Vec<_>>()
                })
                .filter(|calls| !calls.is_empty()),
            finish_reason: first
                .and_then(|c| c.finish_reason.as_ref())
                .map(|r| r.as_str().to_owned()),
            usage: completion.usage.clone().map(Usage::from),
            completion,
            head: ResponseHead::default(),
        }
    }

    /// The same response, with the head it came with.
    pub(crate) fn with_head(mut self, head: ResponseHead) -> Self {
        self.head = head;
        self
    }

    /// The response's status and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The response headers (the server's `x-request-id`, rate limits, a router's headers).
    pub fn headers(&self) -> &http::HeaderMap {
        self.head.headers()
    }

    /// The server's id for the request (its `x-request-id` header).
    pub fn request_id(&self) -> Option<&str> {
        self.head.request_id()
    }

    /// Why the first choice stopped, typed: [`FinishReason::Stop`], `Length`, `ToolCalls`,
    /// …, or `Other` with a value this version does not know. The same as `finish_reason`.
    pub fn typed_finish_reason(&self) -> Option<&FinishReason> {
        self.completion.choices.first()?.finish_reason.as_ref()
    }

    /// The whole response, typed: every choice, log probabilities, `stop_reason`, token ids, ….
    pub fn completion(&self) -> &ChatCompletion {
        &self.completion
    }

    /// The whole response, typed, by value.
    pub fn into_completion(self) -> ChatCompletion {
        self.completion
    }

    /// Whether the model called at least one tool.
    pub fn has_tool_calls(&self) -> bool {
        self.tool_calls
            .as_ref()
            .is_some_and(|calls| !calls.is_empty())
    }

    /// The first tool call, if any.
    pub fn first_tool_call(&self) -> Option<&ToolCall> {
        self.tool_calls.as_ref()?.first()
    }

    /// The assistant message to append to the conversation for the next turn, tool calls
    /// included: `{"role": "assistant", "content": …, "tool_calls": [...]}`.
    pub fn assistant_message(&self) -> Value {
        let mut message = serde_json::json!({
            "role": "assistant",
            "content": self.content,
        });
        if let Some(calls) = self.tool_calls.as_ref().filter(|c| !c.is_empty()) {
            message["tool_calls"] = Value::Array(calls.iter().map(ToolCall::to_value).collect());
        }
        message
    }
}
