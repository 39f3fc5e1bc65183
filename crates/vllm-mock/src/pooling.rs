//! vLLM's pooling endpoints on the echo model: `/pooling`, `/classify`, `/score` and
//! `/rerank` (also `/v1/rerank` and `/v2/rerank`), all built on the vectors of
//! `/v1/embeddings`.

use serde_json::{Map, Value, json};
use vllm_types::{
    ClassifyData, ClassifyRequest, ClassifyResponse, EncodingFormat, Message, PoolingData,
    PoolingRequest, PoolingResponse, Prompt, RerankRequest, RerankResponse, RerankResult,
    ScoreData, ScoreInput, ScoreRequest, ScoreResponse, Usage,
};

use crate::behavior::Behavior;
use crate::json::{base64, python_json, splitmix64};
use crate::reply::Reply;
use crate::routes::unit_vector;
use crate::server::{Shared, now};
use crate::shape::usage_with_null_details;
use crate::template::render;
use crate::tokenizer;
use crate::validate::{Kind, check_types, parse_input_object, parse_object, require, typed};

/// The echo classifier's labels, in the order of its probabilities.
pub(crate) const LABELS: [&str; 2] = ["negative", "positive"];

/// The pooling tasks `/pooling` knows.
const TASKS: [&str; 4] = ["token_embed", "embed", "token_classify", "classify"];

/// One input of a pooling request: a text or token ids.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    Text(String),
    Ids(Vec<u32>),
}

impl Input {
    /// The text its outputs are seeded from (token ids as `[1, 2, 3]`).
    pub(crate) fn seed(&self) -> String {
        match self {
            Input::Text(text) => text.clone(),
            Input::Ids(ids) => format!("{ids:?}"),
        }
    }

    /// Its tokens: the tokenizer's pieces, or the ids as text.
    fn tokens(&self) -> Vec<String> {
        match self {
            Input::Text(text) => tokenizer::pieces(text)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            Input::Ids(ids) => ids.iter().map(u32::to_string).collect(),
        }
    }

    /// How many tokens it has.
    pub(crate) fn count(&self) -> u32 {
        match self {
            Input::Text(text) => tokenizer::count(text),
            Input::Ids(ids) => u32::try_from(ids.len()).unwrap_or(u32::MAX),
        }
    }

    /// The input with only its last `keep` tokens, as `truncate_prompt_tokens` leaves it.
    fn keep_last(self, keep: usize) -> Input {
        match self {
            Input::Text(text) => {
                let pieces = tokenizer::pieces(&text);
                let start = pieces.len().saturating_sub(keep);
                Input::Text(pieces[start..].concat())
            }
            Input::Ids(ids) => {
                let start = ids.len().saturating_sub(keep);
                Input::Ids(ids[start..].to_vec())
            }
        }
    }
}

/// The inputs of an embeddings or pooling request (`messages` rendered through the chat
/// template, else `input`), truncated as `truncate_prompt_tokens` asks, each checked against
/// the context (for `operation`, as vLLM's message names it).
pub(crate) fn inputs(
    shared: &Shared,
    input: Option<&Prompt>,
    messages: Option<&[Message]>,
    add_generation_prompt: bool,
    truncate: Option<i32>,
    operation: &str,
) -> Result<Vec<Input>, Reply> {
    let inputs: Vec<Input> = match (messages, input) {
        (Some(messages), _) => vec![Input::Text(render(messages, &[], add_generation_prompt))],
        (None, Some(Prompt::Text(s))) => vec![Input::Text(s.clone())],
        (None, Some(Prompt::Texts(v))) => v.iter().cloned().map(Input::Text).collect(),
        (None, Some(Prompt::Tokens(ids))) => vec![Input::Ids(ids.clone())],
        (None, Some(Prompt::TokenBatches(batches))) => {
            batches.iter().cloned().map(Input::Ids).collect()
        }
        (None, None) => Vec::new(),
    };
    if inputs.is_empty() {
        return Err(Reply::bad_request(Some("input"), "Input cannot be empty."));
    }
    let max_model_len = shared.config.max_model_len;
    let keep = truncation(max_model_len, truncate)?;
    let inputs: Vec<Input> = inputs
        .into_iter()
        .map(|input| match keep {
            Some(keep) => input.keep_last(keep),
            None => input,
        })
        .collect();
    for input in &inputs {
        check_length(max_model_len, input.count(), operation)?;
    }
    Ok(inputs)
}

/// vLLM's check of a pooling input against the context: it may fill it (nothing is
/// generated after it), not exceed it.
fn check_length(max_model_len: u32, tokens: u32, operation: &str) -> Result<(), Reply> {
    if tokens <= max_model_len {
        return Ok(());
    }
    Err(Reply::bad_request(
        None,
        &format!(
            "This model's maximum context length is {max_model_len} tokens. However, you \
             requested {tokens} tokens in the input for {operation}. Please reduce the length of \
             the input."
        ),
    ))
}

/// How many tokens `truncate_prompt_tokens` keeps (`None`: all): -1 is the context length;
/// 0 and unset keep all; below -1 or beyond the context are vLLM's `400`s.
pub(crate) fn truncation(
    max_model_len: u32,
    requested: Option<i32>,
) -> Result<Option<usize>, Reply> {
    match requested {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(max_model_len as usize)),
        Some(k) if k < -1 => Err(Reply::validation_with_ctx(
            "greater_than_equal",
            "body.truncate_prompt_tokens",
            "Input should be greater than or equal to -1",
            &Value::from(k),
            Some("{'ge': -1}"),
        )),
        Some(k) if k.unsigned_abs() > max_model_len => Err(Reply::bad_request(
            Some("truncate_prompt_tokens"),
            &format!(
                "truncate_prompt_tokens value ({k}) is greater than max_model_len \
                 ({max_model_len}). Please request a smaller truncation size."
            ),
        )),
        Some(k) => Ok(Some(k.unsigned_abs() as usize)),
    }
}

/// The usage of a pooling answer: prompt tokens only.
fn usage(prompt_tokens: u32) -> Usage {
    usage_with_null_details(prompt_tokens, 0)
}

/// Numbers as a JSON array.
fn numbers(values: Vec<f64>) -> Value {
    Value::Array(values.into_iter().map(Value::from).collect())
}

/// `POST /pooling`: per input, one vector per token (`task` unset or `token_embed`), the
/// input's embedding (`embed`), its class probabilities (`classify`) or theirs per token
/// (`token_classify`); as numbers, or base64 of the little-endian `f32`s (row by row).
pub(crate) fn pool(
    shared: &Shared,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    let body = parse_input_object(body)?;
    check_types(
        &body,
        &[
            ("model", Kind::Str),
            ("messages", Kind::List),
            ("encoding_format", Kind::Str),
            ("task", Kind::Str),
            ("truncate_prompt_tokens", Kind::Int),
            ("add_special_tokens", Kind::Bool),
            ("normalize", Kind::Bool),
        ],
    )?;
    let (model, scripted) = shared.model_and_script(
        body.get("model").and_then(Value::as_str),
        "/pooling",
        behavior,
    )?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    if let Some(task) = body.get("task").and_then(Value::as_str) {
        if !TASKS.contains(&task) {
            return Err(Reply::validation_with_ctx(
                "literal_error",
                "body.task",
                "Input should be 'token_embed', 'embed', 'token_classify' or 'classify'",
                &Value::String(task.to_owned()),
                Some("{'expected': \"'token_embed', 'embed', 'token_classify' or 'classify'\"}"),
            ));
        }
    }
    let encoding = encoding_format(&body)?;
    let request: PoolingRequest = typed(body)?;
    let inputs = inputs(
        shared,
        request.input.as_ref(),
        request.messages.as_deref(),
        false,
        request.truncate_prompt_tokens,
        "pooling",
    )?;
    let dimensions = shared.config.embedding_dimensions;
    let as_f64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let rows: Vec<Vec<f64>> = match request.task.as_deref() {
                Some("embed") => vec![as_f64(unit_vector(&input.seed(), dimensions))],
                Some("classify") => vec![class_probs(&input.seed())],
                Some("token_classify") => input.tokens().iter().map(|t| class_probs(t)).collect(),
                _ => input
                    .tokens()
                    .iter()
                    .map(|t| as_f64(unit_vector(t, dimensions)))
                    .collect(),
            };
            let nested = !matches!(request.task.as_deref(), Some("embed" | "classify"));
            let data = if encoding == EncodingFormat::Base64 {
                let bytes: Vec<u8> = rows
                    .iter()
                    .flatten()
                    .flat_map(|&x| (x as f32).to_le_bytes())
                    .collect();
                Value::String(base64(&bytes))
            } else if nested {
                Value::Array(rows.into_iter().map(numbers).collect())
            } else {
                numbers(rows.into_iter().flatten().collect())
            };
            PoolingData {
                index: index as u32,
                object: "pooling".to_owned(),
                data,
                ..PoolingData::default()
            }
        })
        .collect();
    let prompt_tokens = inputs.iter().map(Input::count).sum();
    shared
        .metrics
        .finished(&shared.base_of(&model), "stop", prompt_tokens, 0);
    let id = shared.id("pool-");
    Ok(Reply::ok(&PoolingResponse {
        id: Some(id),
        object: "list".to_owned(),
        created: Some(now()),
        model,
        data,
        usage: Some(usage(prompt_tokens)),
        ..PoolingResponse::default()
    }))
}

/// `encoding_format`: `float` (the default) or `base64`; others are pydantic's `400`.
pub(crate) fn encoding_format(body: &Map<String, Value>) -> Result<EncodingFormat, Reply> {
    match body.get("encoding_format") {
        None | Some(Value::Null) => Ok(EncodingFormat::Float),
        Some(Value::String(s)) if s == "float" => Ok(EncodingFormat::Float),
        Some(Value::String(s)) if s == "base64" => Ok(EncodingFormat::Base64),
        Some(other) => Err(Reply::validation_with_ctx(
            "literal_error",
            "body.encoding_format",
            "Input should be 'float' or 'base64'",
            other,
            Some("{'expected': \"'float' or 'base64'\"}"),
        )),
    }
}

/// The echo classifier's probabilities for `text` over [`LABELS`]: a softmax of logits in
/// [-2, 2) drawn from a hash of the text.
pub(crate) fn class_probs(text: &str) -> Vec<f64> {
    let mut state = tokenizer::fnv1a(text.as_bytes()) ^ 0x6563_686f_636c_7373;
    let logits: Vec<f64> = LABELS
        .iter()
        .map(|_| (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0)
        .collect();
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// `POST /classify`: per input, the probabilities of [`LABELS`], the likeliest label and the
/// number of classes.
pub(crate) fn classify(
    shared: &Shared,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    let body = parse_input_object(body)?;
    check_types(
        &body,
        &[
            ("model", Kind::Str),
            ("messages", Kind::List),
            ("truncate_prompt_tokens", Kind::Int),
            ("add_special_tokens", Kind::Bool),
        ],
    )?;
    let (model, scripted) = shared.model_and_script(
        body.get("model").and_then(Value::as_str),
        "/classify",
        behavior,
    )?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    let request: ClassifyRequest = typed(body)?;
    let inputs = inputs(
        shared,
        request.input.as_ref(),
        request.messages.as_deref(),
        false,
        request.truncate_prompt_tokens,
        "classification",
    )?;
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let probs = class_probs(&input.seed());
            let best = probs
                .iter()
                .enumerate()
                .fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
            ClassifyData {
                index: index as u32,
                label: Some(LABELS[best].to_owned()),
                probs,
                num_classes: Some(LABELS.len() as u32),
                ..ClassifyData::default()
            }
        })
        .collect();
    let prompt_tokens = inputs.iter().map(Input::count).sum();
    shared
        .metrics
        .finished(&shared.base_of(&model), "stop", prompt_tokens, 0);
    let id = shared.id("classify-");
    Ok(Reply::ok(&ClassifyResponse {
        id: Some(id),
        object: "list".to_owned(),
        created: Some(now()),
        model,
        data,
        usage: Some(usage(prompt_tokens)),
        ..ClassifyResponse::default()
    }))
}

/// One text of a score or rerank request: a string, or multimodal content
/// (`{"content": [parts]}`, scored by the text of its parts).
#[derive(Debug, Clone)]
struct Item {
    text: String,
    multi_modal: Option<Value>,
}

impl Item {
    /// `value` as an item, if it is a string or a content object.
    fn from_value(value: &Value) -> Option<Item> {
        match value {
            Value::String(text) => Some(Item {
                text: text.clone(),
                multi_modal: None,
            }),
            Value::Object(object) => {
                let parts = object.get("content")?.as_array()?;
                let text = parts
                    .iter()
                    .map(|part| match part.get("text").and_then(Value::as_str) {
                        Some(text) => text.to_owned(),
                        None => python_json(part),
                    })
                    .collect();
                Some(Item {
                    text,
                    multi_modal: Some(Value::Array(parts.clone())),
                })
            }
            _ => None,
        }
    }

    /// The item with only the last `keep` tokens of its text.
    fn truncated(self, keep: Option<usize>) -> Item {
        let Some(keep) = keep else { return self };
        let text = {
            let pieces = tokenizer::pieces(&self.text);
            pieces[pieces.len().saturating_sub(keep)..].concat()
        };
        Item { text, ..self }
    }
}

/// One side of a score request as items, or pydantic's `400` at `loc`.
fn score_items(input: &ScoreInput, loc: &str) -> Result<Vec<Item>, Reply> {
    let invalid = |value: &Value| {
        Reply::validation("string_type", loc, "Input should be a valid string", value)
    };
    match input {
        ScoreInput::Text(text) => Ok(vec![Item {
            text: text.clone(),
            multi_modal: None,
        }]),
        ScoreInput::Texts(texts) => Ok(texts
            .iter()
            .map(|t| Item {
                text: t.clone(),
                multi_modal: None,
            })
            .collect()),
        ScoreInput::Other(Value::Array(values)) => values
            .iter()
            .map(|v| Item::from_value(v).ok_or_else(|| invalid(v)))
            .collect(),
        ScoreInput::Other(value) => Item::from_value(value)
            .map(|item| vec![item])
            .ok_or_else(|| invalid(value)),
    }
}

/// The echo model's similarity of two texts: the cosine of their `/v1/embeddings` vectors
/// (1 for the same text).
pub(crate) fn similarity(a: &str, b: &str, dimensions: usize) -> f64 {
    let (x, y) = (unit_vector(a, dimensions), unit_vector(b, dimensions));
    if x == y {
        return 1.0;
    }
    let dot: f64 = x
        .iter()
        .zip(&y)
        .map(|(p, q)| f64::from(*p) * f64::from(*q))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
    let denominator = norm(&x) * norm(&y);
    if denominator > 0.0 {
        (dot / denominator).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// vLLM's checks of the two sides' lengths: 1:1, 1:N or N:N, neither empty.
fn check_pairs(first: usize, second: usize) -> Result<(), Reply> {
    let message = if first > 1 && first != second {
        "Input lengths must be either 1:1, 1:N or N:N"
    } else if first == 0 {
        "At least one text element must be given"
    } else if second == 0 {
        "At least one text_pair element must be given"
    } else {
        return Ok(());
    };
    Err(Reply::bad_request(None, message))
}

/// The pairs of `queries` (one, or one per document) and `documents`, truncated and checked
/// against the context; with each pair's token count.
fn pairs(
    shared: &Shared,
    queries: Vec<Item>,
    documents: Vec<Item>,
    truncate: Option<i32>,
    operation: &str,
) -> Result<Vec<(Item, Item, u32)>, Reply> {
    check_pairs(queries.len(), documents.len())?;
    let max_model_len = shared.config.max_model_len;
    let keep = truncation(max_model_len, truncate)?;
    let queries: Vec<Item> = queries.into_iter().map(|q| q.truncated(keep)).collect();
    let documents: Vec<Item> = documents.into_iter().map(|d| d.truncated(keep)).collect();
    for item in queries.iter().chain(&documents) {
        check_length(max_model_len, tokenizer::count(&item.text), operation)?;
    }
    Ok(documents
        .into_iter()
        .enumerate()
        .map(|(i, document)| {
            let query = queries[if queries.len() == 1 { 0 } else { i }].clone();
            let tokens = tokenizer::count(&query.text) + tokenizer::count(&document.text);
            (query, document, tokens)
        })
        .collect())
}

/// `POST /score`: the similarity of `text_1` to each of `text_2` (one to many), or of each
/// pair (as many on both sides).
pub(crate) fn score(
    shared: &Shared,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "text_1")?;
    require(&body, "text_2")?;
    check_types(
        &body,
        &[("model", Kind::Str), ("truncate_prompt_tokens", Kind::Int)],
    )?;
    let (model, scripted) = shared.model_and_script(
        body.get("model").and_then(Value::as_str),
        "/score",
        behavior,
    )?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    let request: ScoreRequest = typed(body)?;
    let first = score_items(&request.text_1, "body.text_1")?;
    let second = score_items(&request.text_2, "body.text_2")?;
    let pairs = pairs(
        shared,
        first,
        second,
        request.truncate_prompt_tokens,
        "score",
    )?;
    let dimensions = shared.config.embedding_dimensions;
    let data = pairs
        .iter()
        .enumerate()
        .map(|(index, (a, b, _))| ScoreData {
            index: index as u32,
            object: "score".to_owned(),
            score: similarity(&a.text, &b.text, dimensions),
            ..ScoreData::default()
        })
        .collect();
    let prompt_tokens = pairs.iter().map(|(_, _, t)| t).sum();
    shared
        .metrics
        .finished(&shared.base_of(&model), "stop", prompt_tokens, 0);
    let id = shared.id("score-");
    Ok(Reply::ok(&ScoreResponse {
        id: Some(id),
        object: "list".to_owned(),
        created: Some(now()),
        model,
        data,
        usage: Some(usage(prompt_tokens)),
        ..ScoreResponse::default()
    }))
}

/// `POST /rerank` (and `/v1/rerank`, `/v2/rerank` at `path`): the documents by their
/// similarity to the query, best first (ties in document order), the best `top_n` (all when
/// it is 0, negative or unset); each with its `index` and `document` (`text` for a string,
/// `multi_modal` for content).
pub(crate) fn rerank(
    shared: &Shared,
    path: &str,
    body: &[u8],
    behavior: &mut Option<Behavior>,
) -> Result<Reply, Reply> {
    let mut body = parse_object(body)?;
    require(&body, "query")?;
    require(&body, "documents")?;
    check_types(
        &body,
        &[
            ("model", Kind::Str),
            ("query", Kind::Str),
            ("documents", Kind::List),
            ("top_n", Kind::Int),
            ("truncate_prompt_tokens", Kind::Int),
        ],
    )?;
    let (model, scripted) =
        shared.model_and_script(body.get("model").and_then(Value::as_str), path, behavior)?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    // vLLM takes any integer: 0 or less returns every document.
    let top_n = body
        .remove("top_n")
        .and_then(|n| n.as_i64())
        .filter(|&n| n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let request: RerankRequest = typed(body)?;
    let documents = request
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Item::from_value(d).ok_or_else(|| {
                Reply::validation(
                    "string_type",
                    &format!("body.documents.{i}"),
                    "Input should be a valid string",
                    d,
                )
            })
        })
        .collect::<Result<Vec<Item>, Reply>>()?;
    let query = Item {
        text: request.query.clone(),
        multi_modal: None,
    };
    let pairs = pairs(
        shared,
        vec![query],
        documents,
        request.truncate_prompt_tokens,
        "reranking",
    )?;
    let dimensions = shared.config.embedding_dimensions;
    let mut results: Vec<RerankResult> = pairs
        .iter()
        .enumerate()
        .map(|(index, (query, document, _))| RerankResult {
            index: index as u32,
            relevance_score: similarity(&query.text, &document.text, dimensions),
            // `{"text", "multi_modal"}`, the one that is not sent `null`.
            document: Some(match &document.multi_modal {
                Some(content) => json!({"text": null, "multi_modal": content}),
                None => json!({
                    "text": request.documents[index].as_str().unwrap_or_default(),
                    "multi_modal": null,
                }),
            }),
            ..RerankResult::default()
        })
        .collect();
    // A stable sort: equal scores keep the documents' order, as Python's sort does.
    results.sort_by(|a, b| b.relevance_score.total_cmp(&a.relevance_score));
    if let Some(n) = top_n {
        results.truncate(n);
    }
    let prompt_tokens = pairs.iter().map(|(_, _, t)| t).sum();
    shared
        .metrics
        .finished(&shared.base_of(&model), "stop", prompt_tokens, 0);
    let id = shared.id("rerank-");
    Ok(Reply::ok(&RerankResponse {
        id: Some(id),
        model,
        // Prompt and total tokens only: no `completion_tokens`.
        usage: Some(Usage {
            prompt_tokens,
            total_tokens: prompt_tokens,
            ..Usage::default()
        }),
        results,
        ..RerankResponse::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_are_deterministic() {
        let p = class_probs("I love it");
        assert_eq!(p.len(), LABELS.len());
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p.iter().all(|x| (0.0..=1.0).contains(x)));
        assert_eq!(p, class_probs("I love it"));
    }

    #[test]
    fn similarity_is_one_for_the_same_text_and_symmetric() {
        assert_eq!(similarity("Paris", "Paris", 32), 1.0);
        let s = similarity("Paris", "Berlin", 32);
        assert_eq!(s, similarity("Berlin", "Paris", 32));
        assert!((-1.0..1.0).contains(&s), "{s}");
    }

    #[test]
    fn truncation_keeps_the_last_tokens() {
        let text = Input::Text("one two three".into());
        assert_eq!(text.keep_last(2), Input::Text(" two three".into()));
        assert_eq!(Input::Ids(vec![1, 2, 3]).keep_last(1), Input::Ids(vec![3]));
        assert_eq!(Input::Ids(vec![1, 2, 3]).seed(), "[1, 2, 3]");
        assert_eq!(truncation(100, None).ok(), Some(None));
        assert_eq!(truncation(100, Some(-1)).ok(), Some(Some(100)));
        assert_eq!(truncation(100, Some(5)).ok(), Some(Some(5)));
        assert!(truncation(100, Some(101)).is_err());
        assert!(truncation(100, Some(-2)).is_err());
    }

    #[test]
    fn pair_lengths_follow_vllm() {
        assert!(check_pairs(1, 3).is_ok());
        assert!(check_pairs(3, 3).is_ok());
        assert!(check_pairs(2, 3).is_err());
        assert!(check_pairs(0, 3).is_err());
        assert!(check_pairs(1, 0).is_err());
    }
}
