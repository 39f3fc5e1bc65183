//! `/v1/completions`: the legacy (prompt in, text out) completions API.

use serde::{Deserialize, Serialize};

use crate::common::{FinishReason, JsonObject, PromptLogprobs, StopReason, Usage};
use crate::macros::model;
use crate::sampling::with_sampling_params;

/// A prompt: a string, several strings, token ids, or several token-id sequences.
///
/// The same shapes are the `input` of embeddings, pooling and classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text prompt.
    Text(String),
    /// Several text prompts (a batch).
    Texts(Vec<String>),
    /// One prompt as token ids.
    Tokens(Vec<u32>),
    /// Several prompts as token ids.
    TokenBatches(Vec<Vec<u32>>),
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::Text(String::new())
    }
}

impl From<&str> for Prompt {
    fn from(s: &str) -> Self {
        Prompt::Text(s.to_owned())
    }
}

impl From<String> for Prompt {
    fn from(s: String) -> Self {
        Prompt::Text(s)
    }
}

impl From<Vec<String>> for Prompt {
    fn from(v: Vec<String>) -> Self {
        Prompt::Texts(v)
    }
}

impl From<Vec<&str>> for Prompt {
    fn from(v: Vec<&str>) -> Self {
        Prompt::Texts(v.into_iter().map(str::to_owned).collect())
    }
}

impl From<Vec<u32>> for Prompt {
    fn from(v: Vec<u32>) -> Self {
        Prompt::Tokens(v)
    }
}

impl From<Vec<Vec<u32>>> for Prompt {
    fn from(v: Vec<Vec<u32>>) -> Self {
        Prompt::TokenBatches(v)
    }
}

with_sampling_params! {
    /// A `/v1/completions` request.
    ///
    /// ```
    /// use vllm_types::CompletionRequest;
    ///
    /// let request = CompletionRequest {
    ///     max_tokens: Some(16),
    ///     ..CompletionRequest::new("smollm2-135m", "Once upon a time")
    /// };
    /// assert_eq!(
    ///     serde_json::to_string(&request).unwrap(),
    ///     r#"{"prompt":"Once upon a time","model":"smollm2-135m","max_tokens":16}"#
    /// );
    /// ```
    pub struct CompletionRequest {
        /// The prompt(s).
        opt prompt: Prompt,
        /// Text to append after the completion.
        opt suffix: String,
        /// Return log probabilities of this many most likely tokens per position.
        opt logprobs: u32,
        /// vLLM: prompt embeddings (base64 tensors) instead of a text prompt.
        opt prompt_embeds: serde_json::Value,
    }
}

impl CompletionRequest {
    /// A request for `model` with `prompt`; every other field unset.
    pub fn new(model: impl Into<String>, prompt: impl Into<Prompt>) -> Self {
        Self {
            model: Some(model.into()),
            prompt: Some(prompt.into()),
            ..Self::default()
        }
    }
}

model! {
    /// A `/v1/completions` response, or one chunk of a streamed one (the shapes are the same).
    pub struct Completion {
        /// The completion's id.
        def id: String,
        /// `text_completion`.
        def object: String,
        /// Unix time of creation, in seconds.
        def created: u64,
        /// The model that answered.
        def model: String,
        /// The generated choices (in a stream chunk: the choices it updates).
        each choices: CompletionChoice,
        /// Token counts (in a stream: the usage chunk).
        opt usage: Usage,
        /// The backend configuration's fingerprint.
        opt system_fingerprint: String,
        /// The processing tier.
        opt service_tier: String,
        /// vLLM: KV transfer parameters.
        opt kv_transfer_params: JsonObject,
        /// vLLM: encoder-cache transfer parameters (encoder-cache disaggregated serving;
        /// vLLM 0.32 sends `null` otherwise).
        opt ec_transfer_params: JsonObject,
    }
}

/// One chunk of a streamed `/v1/completions` response.
pub type CompletionChunk = Completion;

model! {
    /// One generated text of a [`Completion`].
    pub struct CompletionChoice {
        /// Position among the choices (`n` per prompt, prompts in order).
        def index: u32,
        /// The generated text (in a stream chunk: the added text).
        def text: String,
        /// Log probabilities (with `logprobs`).
        opt logprobs: CompletionLogprobs,
        /// Why generation stopped.
        opt finish_reason: FinishReason,
        /// vLLM: the stop string or token id that ended it.
        opt stop_reason: StopReason,
        /// vLLM: the generated token ids (with `return_token_ids`).
        opt token_ids: Vec<u32>,
        /// vLLM: log probabilities of the prompt tokens.
        opt prompt_logprobs: PromptLogprobs,
        /// vLLM: the prompt's token ids (with `return_token_ids`).
        opt prompt_token_ids: Vec<u32>,
    }
}

model! {
    /// Log probabilities in the legacy completions format.
    pub struct CompletionLogprobs {
        /// Character offset of each token in the text.
        opt text_offset: Vec<u32>,
        /// Log probability of each token (`null` where there is none).
        opt token_logprobs: Vec<Option<f64>>,
        /// The tokens.
        opt tokens: Vec<String>,
        /// Per position, the most likely tokens and their log probabilities.
        opt top_logprobs: Vec<Option<std::collections::BTreeMap<String, f64>>>,
    }
}
