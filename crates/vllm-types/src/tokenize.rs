//! `/tokenize` and `/detokenize`: the server's tokenizer and chat template.

use serde::{Deserialize, Serialize};

use crate::chat::{Message, Tool};
use crate::common::JsonObject;
use crate::macros::model;

/// A `/tokenize` request: a prompt, or chat messages rendered through the chat template.
///
/// Deserializing picks [`TokenizeRequest::Chat`] when `messages` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenizeRequest {
    /// Messages rendered with the chat template, then tokenized.
    Chat(TokenizeChatRequest),
    /// A prompt tokenized as it is.
    Prompt(TokenizePromptRequest),
}

impl From<TokenizePromptRequest> for TokenizeRequest {
    fn from(r: TokenizePromptRequest) -> Self {
        TokenizeRequest::Prompt(r)
    }
}

impl From<TokenizeChatRequest> for TokenizeRequest {
    fn from(r: TokenizeChatRequest) -> Self {
        TokenizeRequest::Chat(r)
    }
}

model! {
    /// `/tokenize` of a prompt.
    ///
    /// ```
    /// use vllm_types::TokenizePromptRequest;
    ///
    /// let request = TokenizePromptRequest::new("smollm2-135m", "hello world");
    /// assert_eq!(
    ///     serde_json::to_string(&request).unwrap(),
    ///     r#"{"model":"smollm2-135m","prompt":"hello world"}"#
    /// );
    /// ```
    pub struct TokenizePromptRequest {
        /// The model whose tokenizer to use.
        opt model: String,
        /// The text.
        req prompt: String,
        /// Add special tokens (such as BOS).
        opt add_special_tokens: bool,
        /// Also return each token's text.
        opt return_token_strs: bool,
    }
}

impl TokenizePromptRequest {
    /// Tokenize `prompt` with `model`'s tokenizer.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: Some(model.into()),
            prompt: prompt.into(),
            ..Self::default()
        }
    }
}

model! {
    /// `/tokenize` of chat messages, rendered through the chat template first.
    pub struct TokenizeChatRequest {
        /// The model whose tokenizer and template to use.
        opt model: String,
        /// The conversation.
        req messages: Vec<Message>,
        /// Add the generation prompt (the assistant turn's header).
        opt add_generation_prompt: bool,
        /// Continue the last message instead of starting a new one.
        opt continue_final_message: bool,
        /// Add special tokens (such as BOS).
        opt add_special_tokens: bool,
        /// A chat template to use instead of the model's.
        opt chat_template: String,
        /// Extra variables for the chat template.
        opt chat_template_kwargs: JsonObject,
        /// Tools, for templates that render them.
        opt tools: Vec<Tool>,
        /// Arguments for the multimodal processor.
        opt mm_processor_kwargs: JsonObject,
        /// Also return each token's text.
        opt return_token_strs: bool,
    }
}

impl TokenizeChatRequest {
    /// Tokenize `messages` with `model`'s chat template.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: Some(model.into()),
            messages,
            ..Self::default()
        }
    }
}

model! {
    /// A `/tokenize` response.
    pub struct TokenizeResponse {
        /// The token ids.
        def tokens: Vec<u32>,
        /// How many tokens.
        opt count: u32,
        /// The model's context length.
        opt max_model_len: u32,
        /// Each token's text (with `return_token_strs`).
        opt token_strs: Vec<String>,
    }
}

model! {
    /// A `/detokenize` request.
    pub struct DetokenizeRequest {
        /// The model whose tokenizer to use.
        opt model: String,
        /// The token ids.
        req tokens: Vec<u32>,
    }
}

impl DetokenizeRequest {
    /// Turn `tokens` back into text with `model`'s tokenizer.
    pub fn new(model: impl Into<String>, tokens: Vec<u32>) -> Self {
        Self {
            model: Some(model.into()),
            tokens,
            ..Self::default()
        }
    }
}

model! {
    /// A `/detokenize` response.
    pub struct DetokenizeResponse {
        /// The text.
        def prompt: String,
        /// The text, under llama.cpp's server's name.
        opt content: String,
    }
}

impl DetokenizeResponse {
    /// The text, from `prompt` or else llama.cpp's `content`.
    pub fn text(&self) -> &str {
        match (&self.content, self.prompt.is_empty()) {
            (Some(content), true) => content,
            _ => &self.prompt,
        }
    }
}
