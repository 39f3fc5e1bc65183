//! The JSON the mock sends, member for member in vLLM 0.32's order, with the `null`s it
//! sends (`()` is written as `null`; [`Maybe`] members may also be left out).

use serde::Serialize;

use crate::json::Maybe;

/// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a, C = u16> {
    pub(crate) error: ErrorInfo<'a, C>,
}

/// The object under `error`.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorInfo<'a, C> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: C,
}

impl<'a> ErrorBody<'a, u16> {
    pub(crate) fn new(message: &'a str, kind: &'a str, param: Option<&'a str>, code: u16) -> Self {
        ErrorBody {
            error: ErrorInfo {
                message,
                kind,
                param,
                code,
            },
        }
    }
}

/// Older vLLM's flat error body.
#[derive(Debug, Serialize)]
pub(crate) struct LegacyErrorBody<'a> {
    pub(crate) object: &'static str,
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: u16,
}

/// FastAPI's `{"detail": …}`.
#[derive(Debug, Serialize)]
pub(crate) struct DetailBody<'a> {
    pub(crate) detail: &'a str,
}

/// Token counts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UsageOut {
    pub(crate) prompt_tokens: u32,
    pub(crate) total_tokens: u32,
    pub(crate) completion_tokens: u32,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) prompt_tokens_details: Maybe<()>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) completion_tokens_details: Maybe<CompletionDetailsOut>,
}

/// `completion_tokens_details`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompletionDetailsOut {
    pub(crate) reasoning_tokens: u32,
}

/// A `chat.completion`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<ChatChoiceOut>,
    pub(crate) service_tier: (),
    pub(crate) system_fingerprint: &'a str,
    pub(crate) usage: UsageOut,
    pub(crate) prompt_logprobs: (),
    pub(crate) prompt_token_ids: (),
    pub(crate) prompt_text: (),
    pub(crate) kv_transfer_params: (),
    pub(crate) ec_transfer_params: (),
    pub(crate) metrics: (),
}

/// A choice of a `chat.completion`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatChoiceOut {
    pub(crate) index: u32,
    pub(crate) message: MessageOut,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: String,
    pub(crate) stop_reason: Option<String>,
    pub(crate) token_ids: (),
    pub(crate) routed_experts: (),
}

/// The assistant message of a choice.
#[derive(Debug, Serialize)]
pub(crate) struct MessageOut {
    pub(crate) role: &'static str,
    pub(crate) content: Option<String>,
    pub(crate) refusal: (),
    pub(crate) annotations: (),
    pub(crate) audio: (),
    pub(crate) function_call: (),
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<ToolCallOut>,
    pub(crate) reasoning: Option<String>,
}

/// A complete tool call.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallOut {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionOut,
}

/// A tool call's function.
#[derive(Debug, Serialize)]
pub(crate) struct FunctionOut {
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// A `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct ChunkOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<ChunkChoiceOut>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) usage: Maybe<UsageOut>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) system_fingerprint: Maybe<&'a str>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) prompt_token_ids: Maybe<()>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) prompt_text: Maybe<()>,
}

/// A choice's update in a chunk.
#[derive(Debug, Serialize)]
pub(crate) struct ChunkChoiceOut {
    pub(crate) index: u32,
    pub(crate) delta: DeltaOut,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) stop_reason: Maybe<String>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) token_ids: Maybe<()>,
}

/// What a chunk adds to a choice's message.
#[derive(Debug, Default, Serialize)]
pub(crate) struct DeltaOut {
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) role: Maybe<&'static str>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) content: Maybe<String>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) reasoning: Maybe<String>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) tool_calls: Maybe<Vec<ToolDeltaOut>>,
}

/// A piece of a tool call in a chunk.
#[derive(Debug, Serialize)]
pub(crate) struct ToolDeltaOut {
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) id: Maybe<String>,
    #[serde(rename = "type", skip_serializing_if = "Maybe::is_absent")]
    pub(crate) kind: Maybe<&'static str>,
    pub(crate) index: u32,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) function: Maybe<FunctionDeltaOut>,
}

/// A piece of a function call in a chunk.
#[derive(Debug, Serialize)]
pub(crate) struct FunctionDeltaOut {
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) name: Maybe<String>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) arguments: Maybe<String>,
}

/// A `text_completion`.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<CompletionChoiceOut>,
    pub(crate) service_tier: (),
    pub(crate) system_fingerprint: &'a str,
    pub(crate) usage: UsageOut,
    pub(crate) kv_transfer_params: (),
    pub(crate) ec_transfer_params: (),
    pub(crate) metrics: (),
}

/// A choice of a `text_completion`.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionChoiceOut {
    pub(crate) index: u32,
    pub(crate) text: String,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: String,
    pub(crate) stop_reason: Option<String>,
    pub(crate) token_ids: (),
    pub(crate) prompt_logprobs: (),
    pub(crate) prompt_token_ids: (),
    pub(crate) routed_experts: (),
}

/// A chunk of a streamed `text_completion`.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionChunkOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<CompletionChunkChoiceOut>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) usage: Maybe<UsageOut>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) system_fingerprint: Maybe<&'a str>,
}

/// A choice's update in a completion chunk.
#[derive(Debug, Serialize)]
pub(crate) struct CompletionChunkChoiceOut {
    pub(crate) index: u32,
    pub(crate) text: String,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: Option<String>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) prompt_token_ids: (),
    pub(crate) token_ids: (),
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(crate) struct ModelListOut<'a> {
    pub(crate) object: &'static str,
    pub(crate) data: Vec<ModelOut<'a>>,
}

/// A served model.
#[derive(Debug, Serialize)]
pub(crate) struct ModelOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) owned_by: &'static str,
    pub(crate) root: &'a str,
    /// A LoRA adapter's base model (`null` for a base model).
    pub(crate) parent: Option<&'a str>,
    /// `null` for a LoRA adapter, as vLLM sends it.
    pub(crate) max_model_len: Option<u32>,
    pub(crate) permission: Vec<PermissionOut>,
}

/// A model's (informational) permission.
#[derive(Debug, Serialize)]
pub(crate) struct PermissionOut {
    pub(crate) id: String,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) allow_create_engine: bool,
    pub(crate) allow_sampling: bool,
    pub(crate) allow_logprobs: bool,
    pub(crate) allow_search_indices: bool,
    pub(crate) allow_view: bool,
    pub(crate) allow_fine_tuning: bool,
    pub(crate) organization: &'static str,
    pub(crate) group: (),
    pub(crate) is_blocking: bool,
}

/// `/v1/embeddings`.
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddingListOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) data: Vec<EmbeddingOut>,
    pub(crate) usage: UsageOut,
}

/// One vector.
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddingOut {
    pub(crate) index: u32,
    pub(crate) object: &'static str,
    pub(crate) embedding: VectorOut,
}

/// Numbers or base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum VectorOut {
    Float(Vec<f64>),
    Base64(String),
}

/// `/tokenize`.
#[derive(Debug, Serialize)]
pub(crate) struct TokenizeOut {
    pub(crate) count: u32,
    pub(crate) max_model_len: u32,
    pub(crate) tokens: Vec<u32>,
    pub(crate) token_strs: Option<Vec<String>>,
}

/// `/detokenize`.
#[derive(Debug, Serialize)]
pub(crate) struct DetokenizeOut {
    pub(crate) prompt: String,
}

/// `/version`.
#[derive(Debug, Serialize)]
pub(crate) struct VersionOut<'a> {
    pub(crate) version: &'a str,
}

/// `/pooling`.
#[derive(Debug, Serialize)]
pub(crate) struct PoolingListOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) data: Vec<PoolingOut>,
    pub(crate) usage: UsageOut,
}

/// One output of `/pooling`.
#[derive(Debug, Serialize)]
pub(crate) struct PoolingOut {
    pub(crate) index: u32,
    pub(crate) object: &'static str,
    pub(crate) data: PoolDataOut,
}

/// Numbers in rows (one per token), numbers, or base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum PoolDataOut {
    Rows(Vec<Vec<f64>>),
    Flat(Vec<f64>),
    Base64(String),
}

/// `/classify`.
#[derive(Debug, Serialize)]
pub(crate) struct ClassifyListOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) data: Vec<ClassifyOut>,
    pub(crate) usage: UsageOut,
}

/// One result of `/classify`.
#[derive(Debug, Serialize)]
pub(crate) struct ClassifyOut {
    pub(crate) index: u32,
    pub(crate) label: &'static str,
    pub(crate) probs: Vec<f64>,
    pub(crate) num_classes: u32,
}

/// `/score`.
#[derive(Debug, Serialize)]
pub(crate) struct ScoreListOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) data: Vec<ScoreOut>,
    pub(crate) usage: UsageOut,
}

/// One score of `/score`.
#[derive(Debug, Serialize)]
pub(crate) struct ScoreOut {
    pub(crate) index: u32,
    pub(crate) object: &'static str,
    pub(crate) score: f64,
}

/// `/rerank`, `/v1/rerank`, `/v2/rerank`.
#[derive(Debug, Serialize)]
pub(crate) struct RerankOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) model: &'a str,
    pub(crate) usage: RerankUsageOut,
    pub(crate) results: Vec<RerankResultOut>,
}

/// The token counts of a rerank.
#[derive(Debug, Serialize)]
pub(crate) struct RerankUsageOut {
    pub(crate) prompt_tokens: u32,
    pub(crate) total_tokens: u32,
}

/// One document of a rerank.
#[derive(Debug, Serialize)]
pub(crate) struct RerankResultOut {
    pub(crate) index: u32,
    pub(crate) document: RerankDocumentOut,
    pub(crate) relevance_score: f64,
}

/// A reranked document: its text, or its multimodal content.
#[derive(Debug, Serialize)]
pub(crate) struct RerankDocumentOut {
    pub(crate) text: Option<String>,
    pub(crate) multi_modal: Option<serde_json::Value>,
}

/// `/v1/audio/transcriptions`.
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptionOut<'a> {
    pub(crate) text: &'a str,
    pub(crate) usage: AudioUsageOut,
}

/// The audio's length.
#[derive(Debug, Serialize)]
pub(crate) struct AudioUsageOut {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) seconds: u64,
}

/// A `transcription.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptionChunkOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<TranscriptionChoiceOut>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) usage: Maybe<UsageOut>,
}

/// The update of a `transcription.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptionChoiceOut {
    pub(crate) delta: TranscriptionDeltaOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Maybe::is_absent")]
    pub(crate) stop_reason: Maybe<()>,
}

/// The text a `transcription.chunk` adds.
#[derive(Debug, Serialize)]
pub(crate) struct TranscriptionDeltaOut {
    pub(crate) content: String,
}
