//! Legacy completions: `client.completions.create().prompt(..)…send()`.

use std::sync::Arc;

use serde::Serialize;
use vllm_types::{Completion, CompletionRequest, FinishReason, StreamOptions};

use crate::client::ClientInner;
use crate::error::VllmError;
use crate::head::ResponseHead;
use crate::request::{RequestBody, RequestCore, StreamBody, common_setters, parse_body};
use crate::response::Usage;
use crate::stream::CompletionStream;

const PATH: &str = "/completions";

impl RequestBody for CompletionRequest {
    fn required(&self) -> &'static [&'static str] {
        &["model", "prompt"]
    }
}

impl StreamBody for CompletionRequest {
    fn stream_fields(&mut self) -> (&mut Option<bool>, &mut Option<StreamOptions>) {
        (&mut self.stream, &mut self.stream_options)
    }
}

/// The legacy completions API group of a client (`client.completions`).
#[derive(Debug, Clone)]
pub struct Completions {
    inner: Arc<ClientInner>,
}

impl Completions {
    pub(crate) fn new(inner: Arc<ClientInner>) -> Self {
        Completions { inner }
    }

    /// Starts a completion request (`/v1/completions`).
    pub fn create(&self) -> CompletionBuilder {
        CompletionBuilder {
            core: RequestCore::new(self.inner.clone(), CompletionRequest::default()),
        }
    }
}

/// A legacy completion request being built: a prompt in, text out.
///
/// ```
/// use vllm_client::{VllmClient, json};
///
/// let client = VllmClient::new("http://localhost:8000/v1");
/// let body = client.completions.create()
///     .model("smollm2-135m")
///     .prompt("The capital of France is")
///     .max_tokens(16)
///     .extra(json!({"ignore_eos": true}))
///     .build_body()
///     .unwrap();
/// assert_eq!(body["prompt"], "The capital of France is");
/// assert_eq!(body["ignore_eos"], true);
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until `send()` or `send_stream()` is awaited"]
pub struct CompletionBuilder {
    core: RequestCore<CompletionRequest>,
}

impl CompletionBuilder {
    common_setters!();

    /// The prompt: a string, several strings, token ids, several token-id sequences, or a
    /// [`Prompt`](vllm_types::Prompt). Required.
    pub fn prompt(mut self, prompt: impl Serialize) -> Self {
        self.core.body.prompt = self.core.typed("prompt", prompt);
        self.core.give("prompt");
        self
    }

    /// Return log probabilities of this many most likely tokens per position.
    pub fn logprobs(mut self, n: u32) -> Self {
        self.core.body.logprobs = Some(n);
        self
    }

    /// Put the prompt before the generated text.
    pub fn echo(mut self, echo: bool) -> Self {
        self.core.body.echo = Some(echo);
        self
    }

    /// Text to append after the completion.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.core.body.suffix = Some(suffix.into());
        self
    }

    /// The typed request as set so far (the `extra` members are merged into its JSON when
    /// it is sent).
    pub fn request(&self) -> &CompletionRequest {
        &self.core.body
    }

    /// Sends the request and waits for the whole response.
    pub async fn send(self) -> Result<CompletionResponse, VllmError> {
        let (body, head) = self.core.send_json(PATH).await?;
        let completion: Completion = parse_body("the completion response", &body)?;
        let mut response = CompletionResponse::from_completion(completion);
        response.head = head;
        Ok(response)
    }

    /// Sends the request as a stream: its events are `Content` (text), `Finished`, `Usage`,
    /// then the end (`Ok(None)` from [`try_next`](CompletionStream::try_next)) or an error.
    pub async fn send_stream(self) -> Result<CompletionStream, VllmError> {
        Ok(CompletionStream::new(self.core.send_stream(PATH).await?))
    }
}

/// The answer to a legacy completion request.
///
/// Two responses are equal when their contents are; the headers they came with are not
/// compared.
#[derive(Debug, Clone)]
pub struct CompletionResponse {
    /// The completion's id.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The generated text of the first choice.
    pub text: String,
    /// Why the first choice stopped: `stop`, `length`, ….
    pub finish_reason: Option<String>,
    /// Token usage.
    pub usage: Option<Usage>,
    completion: Completion,
    pub(crate) head: ResponseHead,
}

impl PartialEq for CompletionResponse {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.model == other.model
            && self.text == other.text
            && self.finish_reason == other.finish_reason
            && self.usage == other.usage
            && self.completion == other.completion
    }
}

impl CompletionResponse {
    pub(crate) fn from_completion(completion: Completion) -> Self {
        let first = completion.choices.first();
        CompletionResponse {
            id: completion.id.clone(),
            model: completion.model.clone(),
            text: first.map(|c| c.text.clone()).unwrap_or_default(),
            finish_reason: first
                .and_then(|c| c.finish_reason.as_ref())
                .map(|r| r.as_str().to_owned()),
            usage: completion.usage.clone().map(Usage::from),
            completion,
            head: ResponseHead::default(),
        }
    }

    /// The response's status and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The response headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.head.headers()
    }

    /// The server's id for the request (its `x-request-id` header).
    pub fn request_id(&self) -> Option<&str> {
        self.head.request_id()
    }

    /// Why the first choice stopped, typed (the same as `finish_reason`).
    pub fn typed_finish_reason(&self) -> Option<&FinishReason> {
        self.completion.choices.first()?.finish_reason.as_ref()
    }

    /// The whole response, typed: every choice, log probabilities, ….
    pub fn completion(&self) -> &Completion {
        &self.completion
    }

    /// The whole response, typed, by value.
    pub fn into_completion(self) -> Completion {
        self.completion
    }
}
