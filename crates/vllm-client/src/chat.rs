//! Chat completions: `client.chat.completions().create()…send()`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use vllm_types::ChatCompletion;

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::request::{RequestCore, common_setters, parse_body};
use crate::response::ChatCompletionResponse;
use crate::stream::{MessageStream, StreamKind};

const PATH: &str = "/chat/completions";
const REQUIRED: &[&str] = &["model", "messages"];

/// The chat API group of a client (`client.chat`).
#[derive(Debug, Clone)]
pub struct Chat {
    inner: Arc<ClientInner>,
}

impl Chat {
    pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
        Chat { inner }
    }

    /// Chat completions (`/v1/chat/completions`).
    pub fn completions(&self) -> ChatCompletions {
        ChatCompletions {
            inner: self.inner.clone(),
        }
    }
}

/// `client.chat.completions()`.
#[derive(Debug, Clone)]
pub struct ChatCompletions {
    inner: Arc<ClientInner>,
}

impl ChatCompletions {
    /// Starts a chat completion request.
    pub fn create(&self) -> ChatCompletionBuilder {
        ChatCompletionBuilder {
            core: RequestCore::new(self.inner.clone()),
        }
    }
}

/// A chat completion request being built. Nothing unset is sent; `send()` or
/// `send_stream()` sends it.
///
/// Setters never fail: the first invalid value (a parameter that does not serialize, a NaN
/// temperature, an `extra` that is not an object) is kept and returned by `send()`. A
/// missing `model` or `messages` is an error from `send()` too.
///
/// ```
/// use vllm_client::{VllmClient, json};
/// use vllm_client::types::Message;
///
/// let client = VllmClient::new("http://localhost:8000/v1");
/// let body = client.chat.completions().create()
///     .model("smollm2-135m")
///     .messages(vec![Message::user("Hello!")]) // typed messages, or json!([...])
///     .temperature(0.7)
///     .top_k(20)
///     .extra(json!({"chat_template_kwargs": {"enable_thinking": false}}))
///     .build_body()
///     .unwrap();
/// assert_eq!(body, json!({
///     "model": "smollm2-135m",
///     "messages": [{"role": "user", "content": "Hello!"}],
///     "temperature": 0.7,
///     "top_k": 20,
///     "chat_template_kwargs": {"enable_thinking": false}
/// }));
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until `send()` or `send_stream()` is awaited"]
pub struct ChatCompletionBuilder {
    core: RequestCore,
}

impl ChatCompletionBuilder {
    common_setters!();

    /// The conversation: a JSON array of messages (`json!([{"role": "user", "content": "Hi"}])`)
    /// or a `Vec` of [`Message`](vllm_types::Message)s. Required.
    pub fn messages(mut self, messages: impl Serialize) -> Self {
        self.core.set_serialized("messages", messages);
        self
    }

    /// Tools the model may call: a JSON array, or a `Vec` of [`Tool`](vllm_types::Tool)s.
    pub fn tools(mut self, tools: impl Serialize) -> Self {
        self.core.set_serialized("tools", tools);
        self
    }

    /// How the model may use tools: `json!("auto")`, `"required"`, `"none"`, a named function,
    /// or a [`ToolChoice`](vllm_types::ToolChoice).
    pub fn tool_choice(mut self, choice: impl Serialize) -> Self {
        self.core.set_serialized("tool_choice", choice);
        self
    }

    /// Whether the model may call several tools at once.
    pub fn parallel_tool_calls(mut self, parallel: bool) -> Self {
        self.core.set("parallel_tool_calls", parallel.into());
        self
    }

    /// Return log probabilities of the generated tokens.
    pub fn logprobs(mut self, logprobs: bool) -> Self {
        self.core.set("logprobs", logprobs.into());
        self
    }

    /// With `logprobs`: how many most likely alternatives to return per position.
    pub fn top_logprobs(mut self, n: u32) -> Self {
        self.core.set("top_logprobs", n.into());
        self
    }

    /// Maximum tokens to generate, reasoning included (OpenAI's newer `max_tokens`).
    pub fn max_completion_tokens(mut self, tokens: u32) -> Self {
        self.core.set("max_completion_tokens", tokens.into());
        self
    }

    /// How much a reasoning model should think: `low`, `medium`, `high`.
    pub fn reasoning_effort(mut self, effort: impl Into<String>) -> Self {
        self.core
            .set("reasoning_effort", Value::String(effort.into()));
        self
    }

    /// vLLM: extra variables for the chat template, e.g. `json!({"enable_thinking": false})`.
    pub fn chat_template_kwargs(mut self, kwargs: impl Serialize) -> Self {
        self.core.set_serialized("chat_template_kwargs", kwargs);
        self
    }

    /// vLLM: cap on reasoning tokens, for thinking models that support it.
    pub fn thinking_token_budget(mut self, tokens: u32) -> Self {
        self.core.set("thinking_token_budget", tokens.into());
        self
    }

    /// The JSON body that `send()` would send (with `stream` as set; `send_stream()` also
    /// adds `stream: true` and, unless set, `stream_options: {"include_usage": true}`).
    /// Needs no server.
    pub fn build_body(&self) -> Result<Value, VllmError> {
        self.core.body(REQUIRED).map(Value::Object)
    }

    /// Sends the request and waits for the whole response.
    pub async fn send(self) -> Result<ChatCompletionResponse, VllmError> {
        let body = self.core.send_json(PATH, REQUIRED).await?;
        let completion: ChatCompletion = parse_body("the chat completion response", &body)?;
        let raw = serde_json::to_value(&completion)
            .map_err(|e| VllmError::builder_from("the response could not be re-encoded", e))?;
        Ok(ChatCompletionResponse::new(completion, raw))
    }

    /// Sends the request as a stream and returns once the response head arrived. An error
    /// status is returned here, with the server's message.
    pub async fn send_stream(self) -> Result<MessageStream, VllmError> {
        self.core
            .send_stream(PATH, REQUIRED, StreamKind::Chat)
            .await
    }
}
