//! `/v1/embeddings`: vectors for texts, token ids, or chat messages.

use serde::{Deserialize, Serialize};

use crate::chat::Message;
use crate::common::{JsonObject, Usage};
use crate::completions::Prompt;
use crate::macros::{model, string_enum};

string_enum! {
    /// How vectors are encoded in the response.
    pub enum EncodingFormat {
        /// A JSON array of numbers.
        Float = "float",
        /// Base64 of the little-endian `f32` values.
        Base64 = "base64",
    }
}

model! {
    /// A `/v1/embeddings` request. Set `input` (texts or token ids) or, with vLLM, `messages`
    /// (a conversation rendered through the chat template).
    ///
    /// ```
    /// use vllm_types::EmbeddingRequest;
    ///
    /// let request = EmbeddingRequest::new("smollm2-135m-embed", vec!["hello", "world"]);
    /// assert_eq!(
    ///     serde_json::to_string(&request).unwrap(),
    ///     r#"{"model":"smollm2-135m-embed","input":["hello","world"]}"#
    /// );
    /// ```
    pub struct EmbeddingRequest {
        /// The embedding model.
        opt model: String,
        /// What to embed.
        opt input: Prompt,
        /// vLLM: a conversation to embed instead of `input`.
        opt messages: Vec<Message>,
        /// `float` (default) or `base64`.
        opt encoding_format: EncodingFormat,
        /// Truncate vectors to this many dimensions (models that support it).
        opt dimensions: u32,
        /// An end-user id.
        opt user: String,
        /// vLLM: keep only the last N input tokens (-1: as many as the model allows).
        opt truncate_prompt_tokens: i32,
        /// vLLM: normalize the vectors.
        opt normalize: bool,
        /// vLLM: add special tokens to the input.
        opt add_special_tokens: bool,
        /// vLLM: scheduling priority.
        opt priority: i32,
        /// vLLM: the id the server uses for this request.
        opt request_id: String,
        /// vLLM (with `messages`): a chat template to use instead of the model's.
        opt chat_template: String,
        /// vLLM (with `messages`): extra variables for the chat template.
        opt chat_template_kwargs: JsonObject,
        /// vLLM (with `messages`): add the generation prompt.
        opt add_generation_prompt: bool,
        /// vLLM (with `messages`): continue the last message.
        opt continue_final_message: bool,
        /// vLLM (with `messages`): arguments for the multimodal processor.
        opt mm_processor_kwargs: JsonObject,
    }
}

impl EmbeddingRequest {
    /// A request to embed `input` with `model`.
    pub fn new(model: impl Into<String>, input: impl Into<Prompt>) -> Self {
        Self {
            model: Some(model.into()),
            input: Some(input.into()),
            ..Self::default()
        }
    }
}

model! {
    /// A `/v1/embeddings` response.
    pub struct EmbeddingResponse {
        /// vLLM: the request's id.
        opt id: String,
        /// `list`.
        def object: String,
        /// vLLM: Unix time of creation, in seconds.
        opt created: u64,
        /// The model used.
        def model: String,
        /// One vector per input, in input order (`index`).
        def data: Vec<Embedding>,
        /// Token counts.
        opt usage: Usage,
    }
}

model! {
    /// One vector of an [`EmbeddingResponse`].
    pub struct Embedding {
        /// Which input it embeds.
        def index: u32,
        /// `embedding`.
        def object: String,
        /// The vector, as numbers or base64.
        req embedding: EmbeddingVector,
    }
}

/// A vector: JSON numbers (`encoding_format: "float"`) or base64 of little-endian `f32`s.
///
/// Numbers are kept as `f64` so that they re-serialize to the same JSON text; convert with
/// `iter().map(|&x| x as f32)` where `f32` is wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// The values.
    Float(Vec<f64>),
    /// Base64 of the little-endian `f32` values.
    Base64(String),
}

impl Default for EmbeddingVector {
    fn default() -> Self {
        EmbeddingVector::Float(Vec::new())
    }
}

impl EmbeddingVector {
    /// The values, if they were sent as numbers.
    pub fn as_floats(&self) -> Option<&[f64]> {
        match self {
            EmbeddingVector::Float(v) => Some(v),
            EmbeddingVector::Base64(_) => None,
        }
    }

    /// The base64 text, if the values were sent as base64.
    pub fn as_base64(&self) -> Option<&str> {
        match self {
            EmbeddingVector::Float(_) => None,
            EmbeddingVector::Base64(s) => Some(s),
        }
    }
}
