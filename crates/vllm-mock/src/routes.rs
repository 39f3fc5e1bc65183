//! Routing, and the endpoints that generate nothing: models, embeddings, tokenizer, health,
//! version, metrics.

use serde_json::{Value, json};
use vllm_types::{
    DetokenizeRequest, DetokenizeResponse, Embedding, EmbeddingRequest, EmbeddingResponse,
    EmbeddingVector, EncodingFormat, Model, ModelList, TokenizeChatRequest, TokenizePromptRequest,
    TokenizeResponse, VersionResponse,
};

use crate::behavior::Behavior;
use crate::json::{base64, splitmix64};
use crate::pooling::{Input, inputs};
use crate::reply::Reply;
use crate::server::{Shared, VLLM_VERSION, now};
use crate::shape::{nulls, usage_with_null_details};
use crate::template::chat_prompt;
use crate::tokenizer;
use crate::validate::{
    Kind, check_content_type, check_prompt_flags, check_types, parse_input_object, parse_object,
    require, typed,
};
use crate::{audio, chat, completions, lora, metrics, pooling};

/// The routes: path, method.
const ROUTES: &[(&str, &str)] = &[
    (chat::PATH, "POST"),
    (completions::PATH, "POST"),
    ("/v1/models", "GET"),
    ("/v1/embeddings", "POST"),
    ("/tokenize", "POST"),
    ("/detokenize", "POST"),
    ("/pooling", "POST"),
    ("/classify", "POST"),
    ("/score", "POST"),
    ("/v1/score", "POST"),
    ("/rerank", "POST"),
    ("/v1/rerank", "POST"),
    ("/v2/rerank", "POST"),
    ("/v1/load_lora_adapter", "POST"),
    ("/v1/unload_lora_adapter", "POST"),
    (audio::PATH, "POST"),
    ("/health", "GET"),
    ("/version", "GET"),
    ("/metrics", "GET"),
    ("/load", "GET"),
];

/// The routes whose body vLLM only reads as JSON (`Content-Type: application/json`).
const JSON_ROUTES: &[&str] = &[
    chat::PATH,
    completions::PATH,
    "/v1/embeddings",
    "/tokenize",
    "/detokenize",
    "/pooling",
    "/classify",
    "/score",
    "/v1/score",
    "/rerank",
    "/v1/rerank",
    "/v2/rerank",
    "/v1/load_lora_adapter",
    "/v1/unload_lora_adapter",
];

/// A request, as routing sees it.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) authorization: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// The handler a request to `path` is counted under in `/metrics`: its route, or `none`.
pub(crate) fn handler(path: &str) -> &str {
    ROUTES
        .iter()
        .find(|(p, _)| *p == path)
        .map_or("none", |(p, _)| p)
}

/// The reply to a request, and the behavior that delivers it (queued, or the model's).
pub(crate) fn route(shared: &Shared, request: &Incoming<'_>) -> (Reply, Option<Behavior>) {
    let Incoming {
        method,
        path,
        authorization,
        content_type,
        body,
    } = *request;
    if let Some(key) = &shared.config.api_key {
        let expected = format!("Bearer {key}");
        if path.starts_with("/v1") && authorization != Some(expected.as_str()) {
            let reply = Reply::scripted(401, "application/json", r#"{"error":"Unauthorized"}"#);
            return (reply, None);
        }
    }
    let mut behavior = shared.take_queued(path);
    if let Some(error) = behavior.as_ref().and_then(|b| b.error.as_ref()) {
        let reply = Reply::scripted(error.status, &error.content_type, &error.body);
        return (reply, behavior);
    }
    let Some(&(_, allowed)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return (Reply::detail(404, "Not Found"), behavior);
    };
    // HEAD is answered like GET, as Starlette does.
    if method != allowed && !(allowed == "GET" && method == "HEAD") {
        return (Reply::detail(405, "Method Not Allowed"), behavior);
    }
    if JSON_ROUTES.contains(&path) {
        if let Err(reply) = check_content_type(content_type) {
            return (reply, behavior);
        }
    }
    let reply = match path {
        chat::PATH => chat::handle(shared, body, &mut behavior),
        completions::PATH => completions::handle(shared, body, &mut behavior),
        "/v1/models" => models(shared),
        "/v1/embeddings" => answer(embeddings(shared, body, &mut behavior)),
        "/tokenize" => answer(tokenize(shared, body)),
        "/detokenize" => answer(detokenize(shared, body)),
        "/pooling" => answer(pooling::pool(shared, body, &mut behavior)),
        "/classify" => answer(pooling::classify(shared, body, &mut behavior)),
        "/score" | "/v1/score" => answer(pooling::score(shared, body, &mut behavior)),
        "/rerank" | "/v1/rerank" | "/v2/rerank" => {
            answer(pooling::rerank(shared, path, body, &mut behavior))
        }
        "/v1/load_lora_adapter" => answer(lora::load(shared, body)),
        "/v1/unload_lora_adapter" => answer(lora::unload(shared, body)),
        audio::PATH => answer(audio::transcribe(shared, content_type, body, &mut behavior)),
        "/health" => Reply::empty(),
        "/load" => Reply::ok(&json!({"server_load": shared.server_load()})),
        "/metrics" => Reply::text(
            metrics::CONTENT_TYPE,
            shared.metrics.render(&shared.base_models()),
        ),
        _ => Reply::ok(&VersionResponse {
            version: VLLM_VERSION.to_owned(),
            ..VersionResponse::default()
        }),
    };
    (reply, behavior)
}

fn answer(result: Result<Reply, Reply>) -> Reply {
    match result {
        Ok(reply) | Err(reply) => reply,
    }
}

/// `GET /v1/models`: the base models, then the LoRA adapters (with their path as `root`,
/// their base model as `parent`, and no `max_model_len`, as vLLM lists them).
fn models(shared: &Shared) -> Reply {
    let models = shared.base_models();
    let adapters = shared.adapters();
    let card = |id: &str, root: &str, parent: Option<&str>, max_model_len| {
        // `parent` is `null` for a base model, `max_model_len` for an adapter.
        let mut model = nulls!(Model, ["parent", "max_model_len"]);
        model.id = id.to_owned();
        model.object = "model".to_owned();
        model.created = Some(shared.started);
        model.owned_by = Some("vllm".to_owned());
        model.root = Some(root.to_owned());
        model.parent = parent.map(str::to_owned);
        model.max_model_len = max_model_len;
        model.permission = Some(vec![json!({
            "id": shared.id("modelperm-"),
            "object": "model_permission",
            "created": shared.started,
            "allow_create_engine": false,
            "allow_sampling": true,
            "allow_logprobs": true,
            "allow_search_indices": false,
            "allow_view": true,
            "allow_fine_tuning": false,
            "organization": "*",
            "group": null,
            "is_blocking": false,
        })]);
        model
    };
    let data = models
        .iter()
        .map(|id| card(id, id, None, Some(shared.config.max_model_len)))
        .chain(
            adapters
                .iter()
                .map(|a| card(&a.name, &a.path, Some(a.parent.as_str()), None)),
        )
        .collect();
    Reply::ok(&ModelList {
        object: "list".to_owned(),
        data,
        ..ModelList::default()
    })
}

/// The model a request names, or the `404`; for requests that may leave it out.
fn named_model(shared: &Shared, body: &serde_json::Map<String, Value>) -> Result<String, Reply> {
    shared.resolve_model(body.get("model").and_then(Value::as_str))
}

/// `POST /v1/embeddings`: one unit vector per input, seeded by a hash of the input.
fn embeddings(
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
            ("dimensions", Kind::Int),
            ("truncate_prompt_tokens", Kind::Int),
        ],
    )?;
    let (model, scripted) = shared.model_and_script(
        body.get("model").and_then(Value::as_str),
        "/v1/embeddings",
        behavior,
    )?;
    if let Some(reply) = scripted {
        return Ok(reply);
    }
    let request: EmbeddingRequest = typed(body)?;
    let full = shared.config.embedding_dimensions;
    let dimensions = match request.dimensions {
        None => full,
        Some(d) if d >= 1 && d as usize <= full => d as usize,
        Some(d) => {
            return Err(Reply::bad_request(
                Some("dimensions"),
                &format!("dimensions must be between 1 and {full}, got {d}."),
            ));
        }
    };
    let inputs = inputs(
        shared,
        request.input.as_ref(),
        request.messages.as_deref(),
        request.add_generation_prompt.unwrap_or(false),
        request.truncate_prompt_tokens,
        "embedding generation",
    )?;
    let base64_wanted = request.encoding_format == Some(EncodingFormat::Base64);
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = unit_vector(&input.seed(), dimensions);
            let embedding = if base64_wanted {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64(&bytes))
            } else {
                EmbeddingVector::Float(vector.iter().map(|&x| f64::from(x)).collect())
            };
            Embedding {
                index: index as u32,
                object: "embedding".to_owned(),
                embedding,
                ..Embedding::default()
            }
        })
        .collect();
    let prompt_tokens = inputs.iter().map(Input::count).sum();
    shared
        .metrics
        .finished(&shared.base_of(&model), "stop", prompt_tokens, 0);
    let id = shared.id("embd-");
    Ok(Reply::ok(&EmbeddingResponse {
        id: Some(id),
        object: "list".to_owned(),
        created: Some(now()),
        model,
        data,
        usage: Some(usage_with_null_details(prompt_tokens, 0)),
        ..EmbeddingResponse::default()
    }))
}

/// A unit vector of `dimensions` values, the same for the same `text`.
pub(crate) fn unit_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = tokenizer::fnv1a(text.as_bytes());
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            let bits = splitmix64(&mut state) >> 40;
            (bits as f32 / (1u32 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// `POST /tokenize`: a prompt, or messages rendered through the chat template exactly as
/// `/v1/chat/completions` renders them (so the count is its `prompt_tokens`).
fn tokenize(shared: &Shared, body: &[u8]) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    let chat = body.contains_key("messages");
    if !chat {
        require(&body, "prompt")?;
    }
    check_types(
        &body,
        &[
            ("model", Kind::Str),
            ("prompt", Kind::Str),
            ("messages", Kind::List),
            ("tools", Kind::List),
            ("add_generation_prompt", Kind::Bool),
            ("continue_final_message", Kind::Bool),
            ("add_special_tokens", Kind::Bool),
            ("return_token_strs", Kind::Bool),
        ],
    )?;
    named_model(shared, &body)?;
    let token_strs = body.get("return_token_strs") == Some(&Value::Bool(true));
    let text = if chat {
        check_prompt_flags(&body)?;
        let request: TokenizeChatRequest = typed(body)?;
        chat_prompt(
            &request.messages,
            request.tools.as_deref().unwrap_or_default(),
            request.add_generation_prompt,
            request.continue_final_message,
        )
    } else {
        typed::<TokenizePromptRequest>(body)?.prompt
    };
    shared.learn(&text);
    let pieces = tokenizer::pieces(&text);
    let tokens: Vec<u32> = pieces.iter().map(|p| tokenizer::token_id(p)).collect();
    // `token_strs` is `null` unless asked for.
    let mut answer = nulls!(TokenizeResponse, ["token_strs"]);
    answer.count = Some(tokens.len() as u32);
    answer.max_model_len = Some(shared.config.max_model_len);
    answer.tokens = tokens;
    answer.token_strs = token_strs.then(|| pieces.iter().map(|p| (*p).to_owned()).collect());
    Ok(Reply::ok(&answer))
}

/// `POST /detokenize`: ids of pieces the server has seen (and one-byte ids) back to text.
fn detokenize(shared: &Shared, body: &[u8]) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "tokens")?;
    check_types(&body, &[("model", Kind::Str), ("tokens", Kind::List)])?;
    named_model(shared, &body)?;
    let request: DetokenizeRequest = typed(body)?;
    match shared.decode(&request.tokens) {
        Ok(prompt) => Ok(Reply::ok(&DetokenizeResponse {
            prompt,
            ..DetokenizeResponse::default()
        })),
        Err(id) => Err(Reply::bad_request(
            Some("tokens"),
            &format!("Token id {id} is out of vocabulary"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = unit_vector("hello", 16);
        assert_eq!(a, unit_vector("hello", 16));
        assert_ne!(a, unit_vector("world", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
}
