//! Types shared by several endpoints: usage, logprobs, stop conditions, output formats.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::macros::{model, string_enum};

model! {
    /// Token counts of a request, as the server reports them. Never estimated by this crate.
    pub struct Usage {
        /// Tokens in the prompt.
        def prompt_tokens: u32,
        /// Tokens generated. vLLM may send `null` (or nothing) for endpoints that generate none.
        opt completion_tokens: u32,
        /// Prompt plus generated tokens.
        def total_tokens: u32,
        /// Breakdown of the prompt tokens (prefix-cache hits).
        opt prompt_tokens_details: PromptTokensDetails,
        /// Breakdown of the generated tokens (reasoning tokens).
        opt completion_tokens_details: CompletionTokensDetails,
    }
}

model! {
    /// Breakdown of [`Usage::prompt_tokens`].
    pub struct PromptTokensDetails {
        /// Prompt tokens served from the prefix cache.
        opt cached_tokens: u32,
        /// Audio tokens in the prompt.
        opt audio_tokens: u32,
    }
}

model! {
    /// Breakdown of [`Usage::completion_tokens`].
    pub struct CompletionTokensDetails {
        /// Tokens spent on reasoning (thinking models).
        opt reasoning_tokens: u32,
        /// Audio tokens generated.
        opt audio_tokens: u32,
        /// Predicted-output tokens accepted.
        opt accepted_prediction_tokens: u32,
        /// Predicted-output tokens rejected.
        opt rejected_prediction_tokens: u32,
    }
}

string_enum! {
    /// Why a choice stopped generating.
    pub enum FinishReason {
        /// A natural stop or a stop sequence / stop token.
        Stop = "stop",
        /// `max_tokens` (or the context length) was reached.
        Length = "length",
        /// The model called one or more tools.
        ToolCalls = "tool_calls",
        /// Content was filtered.
        ContentFilter = "content_filter",
        /// Deprecated OpenAI function calling.
        FunctionCall = "function_call",
        /// vLLM aborted the request.
        Abort = "abort",
        /// vLLM hit an error while generating.
        Error = "error",
    }
}

/// Which stop condition ended a choice (vLLM's `stop_reason`): a token id or a stop string.
///
/// `None` in the enclosing `Option` means end-of-sequence or a length stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopReason {
    /// A stop token id (from `stop_token_ids`).
    Token(i64),
    /// A stop string (from `stop`).
    Text(String),
}

/// Stop sequences: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

impl From<&str> for Stop {
    fn from(s: &str) -> Self {
        Stop::One(s.to_owned())
    }
}

impl From<String> for Stop {
    fn from(s: String) -> Self {
        Stop::One(s)
    }
}

impl From<Vec<String>> for Stop {
    fn from(v: Vec<String>) -> Self {
        Stop::Many(v)
    }
}

impl<const N: usize> From<[&str; N]> for Stop {
    fn from(v: [&str; N]) -> Self {
        Stop::Many(v.iter().map(|s| (*s).to_owned()).collect())
    }
}

model! {
    /// Options for streamed responses.
    pub struct StreamOptions {
        /// Send a final chunk with the request's usage (and `choices: []`).
        opt include_usage: bool,
        /// vLLM: put running usage on every chunk.
        opt continuous_usage_stats: bool,
    }
}

impl StreamOptions {
    /// `{"include_usage": true}`: ask for the final usage chunk.
    pub fn include_usage() -> Self {
        Self {
            include_usage: Some(true),
            ..Self::default()
        }
    }
}

model! {
    /// Log probabilities of a chat choice's tokens.
    pub struct ChoiceLogprobs {
        /// One entry per generated content token.
        opt content: Vec<TokenLogprob>,
        /// One entry per refusal token.
        opt refusal: Vec<TokenLogprob>,
    }
}

model! {
    /// A generated token with its log probability and the most likely alternatives.
    pub struct TokenLogprob {
        /// The token text.
        def token: String,
        /// Its log probability (vLLM sends -9999.0 for minus infinity).
        def logprob: f64,
        /// The token's UTF-8 bytes.
        opt bytes: Vec<u8>,
        /// The most likely tokens at this position (`top_logprobs` of the request).
        opt top_logprobs: Vec<TopLogprob>,
    }
}

model! {
    /// One of the most likely tokens at a position.
    pub struct TopLogprob {
        /// The token text.
        def token: String,
        /// Its log probability.
        def logprob: f64,
        /// The token's UTF-8 bytes.
        opt bytes: Vec<u8>,
    }
}

model! {
    /// A prompt token's log probability (vLLM's `prompt_logprobs`).
    pub struct PromptLogprob {
        /// Log probability.
        def logprob: f64,
        /// Rank among the vocabulary (1 = most likely).
        opt rank: i64,
        /// The token decoded to text.
        opt decoded_token: String,
    }
}

/// vLLM's `prompt_logprobs`: per prompt position, `null` for the first token, else a map from
/// token id (as a string) to its log probability.
pub type PromptLogprobs = Vec<Option<BTreeMap<String, PromptLogprob>>>;

model! {
    /// Output format constraint (OpenAI's `response_format`).
    ///
    /// ```
    /// use vllm_types::ResponseFormat;
    /// use serde_json::json;
    ///
    /// let format = ResponseFormat::json_schema("person", json!({"type": "object"}));
    /// assert_eq!(serde_json::to_value(&format).unwrap(), json!({
    ///     "type": "json_schema",
    ///     "json_schema": {"name": "person", "schema": {"type": "object"}}
    /// }));
    /// ```
    pub struct ResponseFormat {
        /// `text`, `json_object`, `json_schema` or `structural_tag`.
        req kind: String as "type",
        /// The schema, for `json_schema`.
        opt json_schema: JsonSchemaFormat,
    }
}

impl ResponseFormat {
    /// `{"type": "text"}`: no constraint.
    pub fn text() -> Self {
        Self {
            kind: "text".into(),
            ..Self::default()
        }
    }

    /// `{"type": "json_object"}`: any JSON object.
    pub fn json_object() -> Self {
        Self {
            kind: "json_object".into(),
            ..Self::default()
        }
    }

    /// `{"type": "json_schema", "json_schema": {"name", "schema"}}`: JSON matching `schema`.
    pub fn json_schema(name: impl Into<String>, schema: Value) -> Self {
        Self {
            kind: "json_schema".into(),
            json_schema: Some(JsonSchemaFormat {
                name: name.into(),
                schema: Some(schema),
                ..JsonSchemaFormat::default()
            }),
            ..Self::default()
        }
    }
}

model! {
    /// The schema of a `json_schema` [`ResponseFormat`].
    pub struct JsonSchemaFormat {
        /// A name for the schema.
        req name: String,
        /// What the output is for.
        opt description: String,
        /// The JSON Schema.
        opt schema: Value,
        /// Whether to follow the schema exactly.
        opt strict: bool,
    }
}

model! {
    /// vLLM's structured outputs (constrained decoding): set one of the constraints.
    ///
    /// ```
    /// use vllm_types::StructuredOutputs;
    ///
    /// let only = StructuredOutputs::choice(["yes", "no"]);
    /// assert_eq!(serde_json::to_string(&only).unwrap(), r#"{"choice":["yes","no"]}"#);
    /// ```
    pub struct StructuredOutputs {
        /// A JSON Schema (object, or a string holding one) the output must match.
        opt json: Value,
        /// A regular expression the output must match.
        opt regex: String,
        /// The output must be one of these strings.
        opt choice: Vec<String>,
        /// An EBNF / Lark grammar the output must follow.
        opt grammar: String,
        /// Any JSON object.
        opt json_object: bool,
        /// A structural tag specification (JSON text).
        opt structural_tag: String,
        /// Fail instead of falling back to another backend.
        opt disable_fallback: bool,
        /// Disallow whitespace in generated JSON.
        opt disable_any_whitespace: bool,
        /// Disallow properties the schema does not name.
        opt disable_additional_properties: bool,
        /// The whitespace pattern generated JSON may use.
        opt whitespace_pattern: String,
        /// Which structured-output backend to use.
        opt backend: String,
    }
}

impl StructuredOutputs {
    /// Output matching a JSON Schema.
    pub fn json(schema: Value) -> Self {
        Self {
            json: Some(schema),
            ..Self::default()
        }
    }

    /// Output matching a regular expression.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self {
            regex: Some(pattern.into()),
            ..Self::default()
        }
    }

    /// Output that is exactly one of `choices`.
    pub fn choice<I, S>(choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            choice: Some(choices.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Output following a grammar.
    pub fn grammar(grammar: impl Into<String>) -> Self {
        Self {
            grammar: Some(grammar.into()),
            ..Self::default()
        }
    }

    /// Any JSON object.
    pub fn json_object() -> Self {
        Self {
            json_object: Some(true),
            ..Self::default()
        }
    }

    /// Output following a structural tag specification (JSON text).
    pub fn structural_tag(spec: impl Into<String>) -> Self {
        Self {
            structural_tag: Some(spec.into()),
            ..Self::default()
        }
    }
}

/// A JSON object with free-form members, as used by `chat_template_kwargs`, `vllm_xargs`, ….
pub type JsonObject = Map<String, Value>;

/// Token ids: one sequence.
pub type TokenIds = Vec<u32>;
