//! Chat completions: `client.chat.completions().create()…send()`.

use std::sync::Arc;

use serde::Serialize;
use vllm_types::{ChatCompletion, ChatCompletionRequest, StreamOptions};

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::request::{RequestBody, RequestCore, StreamBody, common_setters, parse_body};
use crate::response::ChatCompletionResponse;
use crate::stream::MessageStream;

const PATH: &str = "/chat/completions";

impl RequestBody for ChatCompletionRequest {
    fn required(&self) -> &'static [&'static str] {
        &["model", "messages"]
    }
}

impl StreamBody for ChatCompletionRequest {
    fn stream_fields(&mut self) -> (&mut Option<bool>, &mut Option<StreamOptions>) {
        (&mut self.stream, &mut self.stream_options)
    }
}

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
            core: RequestCore::new(self.inner.clone(), ChatCompletionRequest::default()),
        }
    }
}

/// A chat completion request being built: a typed
/// [`ChatCompletionRequest`](vllm_types::ChatCompletionRequest), plus `extra` members merged
/// into its JSON last. Nothing unset is sent; `send()` or `send_stream()` sends it.
///
/// Setters never fail: the first invalid value (messages that are not chat messages, a NaN
/// temperature, an `extra` that is not an object) is kept and returned by `send()`, naming
/// the parameter. A missing `model` or `messages` is an error from `send()` too.
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
    core: RequestCore<ChatCompletionRequest>,
}

impl ChatCompletionBuilder {
    common_setters!();

    /// The conversation: a JSON array of messages (`json!([{"role": "user", "content": "Hi"}])`)
    /// or a `Vec` of [`Message`](vllm_types::Message)s. Required.
    pub fn messages(mut self, messages: impl Serialize) -> Self {
        self.core.body.messages = self.core.typed("messages", messages).unwrap_or_default();
        self.core.give("messages");
        self
    }

    /// Tools the model may call: a JSON array, or a `Vec` of [`Tool`](vllm_types::Tool)s.
    pub fn tools(mut self, tools: impl Serialize) -> Self {
        self.core.body.tools = self.core.typed("tools", tools);
        self
    }

    /// How the model may use tools: `json!("auto")`, `"required"`, `"none"`, a named function,
    /// or a [`ToolChoice`](vllm_types::ToolChoice).
    pub fn tool_choice(mut self, choice: impl Serialize) -> Self {
        self.core.body.tool_choice = self.core.typed("tool_choice", choice);
        self
    }

    /// Whether the model may call several tools at once.
    pub fn parallel_tool_calls(mut self, parallel: bool) -> Self {
        self.core.body.parallel_tool_calls = Some(parallel);
        self
    }

    /// Return log probabilities of the generated tokens.
    pub fn logprobs(mut self, logprobs: bool) -> Self {
        self.core.body.logprobs = Some(logprobs);
        self
    }

    /// With `logprobs`: how many most likely alternatives to return per position.
    pub fn top_logprobs(mut self, n: u32) -> Self {
        self.core.body.top_logprobs = Some(n);
        self
    }

    /// Maximum tokens to generate, reasoning included (OpenAI's newer `max_tokens`).
    pub fn max_completion_tokens(mut self, tokens: u32) -> Self {
        self.core.body.max_completion_tokens = Some(tokens);
        self
    }

    /// How much a reasoning model should think: `low`, `medium`, `high`.
    pub fn reasoning_effort(mut self, effort: impl Into<String>) -> Self {
        self.core.body.reasoning_effort = Some(effort.into().into());
        self
    }

    /// vLLM: extra variables for the chat template, e.g. `json!({"enable_thinking": false})`.
    pub fn chat_template_kwargs(mut self, kwargs: impl Serialize) -> Self {
        self.core.body.chat_template_kwargs = self.core.typed("chat_template_kwargs", kwargs);
        self
    }

    /// vLLM: cap on reasoning tokens, for thinking models that support it.
    pub fn thinking_token_budget(mut self, tokens: u32) -> Self {
        self.core.body.thinking_token_budget = Some(tokens);
        self
    }

    /// The typed request as set so far (the `extra` members are merged into its JSON when
    /// it is sent).
    pub fn request(&self) -> &ChatCompletionRequest {
        &self.core.body
    }

    /// Sends the request and waits for the whole response.
    pub async fn send(self) -> Result<ChatCompletionResponse, VllmError> {
        let (body, head) = self.core.send_json(PATH).await?;
        let completion: ChatCompletion = parse_body("the chat completion response", &body)?;
        Ok(ChatCompletionResponse::from_completion(completion).with_head(head))
    }

    /// Sends the request as a stream and returns once the response head arrived. An error
    /// status is returned here, with the server's message.
    pub async fn send_stream(self) -> Result<MessageStream, VllmError> {
        Ok(MessageStream::new(self.core.send_stream(PATH).await?))
    }
}
