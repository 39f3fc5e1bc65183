//! vLLM's pooling-model endpoints: `/pooling`, `/classify`, `/score`, `/rerank`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::Message;
use crate::common::{JsonObject, Usage};
use crate::completions::Prompt;
use crate::embeddings::EncodingFormat;
use crate::macros::model;

model! {
    /// A `/pooling` request: the raw output of a pooling model for each input.
    pub struct PoolingRequest {
        /// The pooling model.
        opt model: String,
        /// What to pool.
        opt input: Prompt,
        /// A conversation to pool instead of `input`.
        opt messages: Vec<Message>,
        /// `float` (default) or `base64`.
        opt encoding_format: EncodingFormat,
        /// The pooling task (`embed`, `classify`, `token_embed`, …) for models with several.
        opt task: String,
        /// Keep only the last N input tokens (-1: as many as the model allows).
        opt truncate_prompt_tokens: i32,
        /// Add special tokens to the input.
        opt add_special_tokens: bool,
        /// Normalize the output.
        opt normalize: bool,
        /// Scheduling priority.
        opt priority: i32,
        /// The id the server uses for this request.
        opt request_id: String,
        /// Extra variables for the chat template (with `messages`).
        opt chat_template_kwargs: JsonObject,
    }
}

impl PoolingRequest {
    /// Pool `input` with `model`.
    pub fn new(model: impl Into<String>, input: impl Into<Prompt>) -> Self {
        Self {
            model: Some(model.into()),
            input: Some(input.into()),
            ..Self::default()
        }
    }
}

model! {
    /// A `/pooling` response.
    pub struct PoolingResponse {
        /// The request's id.
        opt id: String,
        /// `list`.
        def object: String,
        /// Unix time of creation, in seconds.
        opt created: u64,
        /// The model used.
        def model: String,
        /// One output per input.
        def data: Vec<PoolingData>,
        /// Token counts.
        opt usage: Usage,
    }
}

model! {
    /// One output of a [`PoolingResponse`].
    pub struct PoolingData {
        /// Which input it belongs to.
        def index: u32,
        /// `pooling`.
        def object: String,
        /// The output: nested arrays of numbers, or base64.
        req data: Value,
    }
}

model! {
    /// A `/classify` request.
    pub struct ClassifyRequest {
        /// The classification model.
        opt model: String,
        /// What to classify.
        opt input: Prompt,
        /// A conversation to classify instead of `input`.
        opt messages: Vec<Message>,
        /// Keep only the last N input tokens (-1: as many as the model allows).
        opt truncate_prompt_tokens: i32,
        /// Add special tokens to the input.
        opt add_special_tokens: bool,
        /// Scheduling priority.
        opt priority: i32,
        /// The id the server uses for this request.
        opt request_id: String,
    }
}

impl ClassifyRequest {
    /// Classify `input` with `model`.
    pub fn new(model: impl Into<String>, input: impl Into<Prompt>) -> Self {
        Self {
            model: Some(model.into()),
            input: Some(input.into()),
            ..Self::default()
        }
    }
}

model! {
    /// A `/classify` response.
    pub struct ClassifyResponse {
        /// The request's id.
        opt id: String,
        /// `list`.
        def object: String,
        /// Unix time of creation, in seconds.
        opt created: u64,
        /// The model used.
        def model: String,
        /// One result per input.
        def data: Vec<ClassifyData>,
        /// Token counts.
        opt usage: Usage,
    }
}

model! {
    /// One result of a [`ClassifyResponse`].
    pub struct ClassifyData {
        /// Which input it classifies.
        def index: u32,
        /// The most likely label.
        opt label: String,
        /// The probability of each class.
        def probs: Vec<f64>,
        /// How many classes the model has.
        opt num_classes: u32,
    }
}

/// One side of a score request: a text, several texts, or multimodal content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScoreInput {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// Multimodal content (`{"content": [parts]}`), as JSON.
    Other(Value),
}

impl From<&str> for ScoreInput {
    fn from(s: &str) -> Self {
        ScoreInput::Text(s.to_owned())
    }
}

impl From<String> for ScoreInput {
    fn from(s: String) -> Self {
        ScoreInput::Text(s)
    }
}

impl From<Vec<String>> for ScoreInput {
    fn from(v: Vec<String>) -> Self {
        ScoreInput::Texts(v)
    }
}

impl From<Vec<&str>> for ScoreInput {
    fn from(v: Vec<&str>) -> Self {
        ScoreInput::Texts(v.into_iter().map(str::to_owned).collect())
    }
}

model! {
    /// A `/score` request: similarity of `text_1` to each of `text_2` (cross-encoder or
    /// embedding model).
    pub struct ScoreRequest {
        /// The scoring model.
        opt model: String,
        /// The query side (one text, or one per `text_2`).
        req text_1: ScoreInput,
        /// The documents side.
        req text_2: ScoreInput,
        /// Keep only the last N input tokens (-1: as many as the model allows).
        opt truncate_prompt_tokens: i32,
        /// Scheduling priority.
        opt priority: i32,
        /// The id the server uses for this request.
        opt request_id: String,
    }
}

impl ScoreRequest {
    /// Score `text_1` against `text_2` with `model`.
    pub fn new(
        model: impl Into<String>,
        text_1: impl Into<ScoreInput>,
        text_2: impl Into<ScoreInput>,
    ) -> Self {
        Self {
            model: Some(model.into()),
            text_1: text_1.into(),
            text_2: text_2.into(),
            ..Self::default()
        }
    }
}

impl Default for ScoreInput {
    fn default() -> Self {
        ScoreInput::Text(String::new())
    }
}

model! {
    /// A `/score` response.
    pub struct ScoreResponse {
        /// The request's id.
        opt id: String,
        /// `list`.
        def object: String,
        /// Unix time of creation, in seconds.
        opt created: u64,
        /// The model used.
        def model: String,
        /// One score per pair.
        def data: Vec<ScoreData>,
        /// Token counts.
        opt usage: Usage,
    }
}

model! {
    /// One score of a [`ScoreResponse`].
    pub struct ScoreData {
        /// Which pair it scores.
        def index: u32,
        /// `score`.
        def object: String,
        /// The score.
        def score: f64,
    }
}

model! {
    /// A `/rerank` (also `/v1/rerank`, `/v2/rerank`) request: order documents by relevance.
    ///
    /// ```
    /// use vllm_types::RerankRequest;
    ///
    /// let request = RerankRequest::new("bge-reranker", "capital of France", vec!["Paris", "Berlin"]);
    /// assert_eq!(request.documents.len(), 2);
    /// ```
    pub struct RerankRequest {
        /// The reranking model.
        opt model: String,
        /// The query.
        req query: String,
        /// The documents: strings, or multimodal content objects.
        req documents: Vec<Value>,
        /// Return only the best N.
        opt top_n: u32,
        /// Include the documents in the results.
        opt return_documents: bool,
        /// Keep only the last N input tokens (-1: as many as the model allows).
        opt truncate_prompt_tokens: i32,
        /// Scheduling priority.
        opt priority: i32,
        /// The id the server uses for this request.
        opt request_id: String,
    }
}

impl RerankRequest {
    /// Rerank text `documents` for `query` with `model`.
    pub fn new<I, S>(model: impl Into<String>, query: impl Into<String>, documents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            model: Some(model.into()),
            query: query.into(),
            documents: documents
                .into_iter()
                .map(|d| Value::String(d.into()))
                .collect(),
            ..Self::default()
        }
    }
}

model! {
    /// A rerank response.
    pub struct RerankResponse {
        /// The request's id.
        opt id: String,
        /// The model used.
        def model: String,
        /// Token counts.
        opt usage: Usage,
        /// The documents by relevance, best first.
        def results: Vec<RerankResult>,
    }
}

model! {
    /// One document of a [`RerankResponse`].
    pub struct RerankResult {
        /// Its position in the request's `documents`.
        def index: u32,
        /// The document (`{"text": …}`), when returned.
        opt document: Value,
        /// How relevant it is to the query.
        def relevance_score: f64,
    }
}
