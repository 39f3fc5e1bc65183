//! Routing, and the endpoints that generate nothing: models, embeddings, tokenizer, health,
//! version.

use serde_json::Value;
use vllm_types::{
    DetokenizeRequest, EmbeddingRequest, EncodingFormat, Prompt, TokenizeChatRequest,
    TokenizePromptRequest,
};

use crate::behavior::Behavior;
use crate::json::{Maybe, base64, splitmix64};
use crate::reply::Reply;
use crate::server::{Shared, VLLM_VERSION, now};
use crate::template::render;
use crate::tokenizer;
use crate::validate::{Kind, check_context, check_types, parse_object, require, typed};
use crate::wire::{
    DetokenizeOut, EmbeddingListOut, EmbeddingOut, ModelListOut, ModelOut, PermissionOut,
    TokenizeOut, UsageOut, VectorOut, VersionOut,
};
use crate::{chat, completions};

/// The routes: path, method.
const ROUTES: &[(&str, &str)] = &[
    (chat::PATH, "POST"),
    (completions::PATH, "POST"),
    ("/v1/models", "GET"),
    ("/v1/embeddings", "POST"),
    ("/tokenize", "POST"),
    ("/detokenize", "POST"),
    ("/health", "GET"),
    ("/version", "GET"),
];

/// The reply to a request, and the behavior that delivers it (queued, or the model's).
pub(crate) fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> (Reply, Option<Behavior>) {
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
    let reply = match path {
        chat::PATH => chat::handle(shared, body, &mut behavior),
        completions::PATH => completions::handle(shared, body, &mut behavior),
        "/v1/models" => models(shared),
        "/v1/embeddings" => answer(embeddings(shared, body, &mut behavior)),
        "/tokenize" => answer(tokenize(shared, body)),
        "/detokenize" => answer(detokenize(shared, body)),
        "/health" => Reply::empty(),
        _ => Reply::ok(&VersionOut {
            version: VLLM_VERSION,
        }),
    };
    (reply, behavior)
}

fn answer(result: Result<Reply, Reply>) -> Reply {
    match result {
        Ok(reply) | Err(reply) => reply,
    }
}

/// `GET /v1/models`.
fn models(shared: &Shared) -> Reply {
    let models = shared.models();
    let data = models
        .iter()
        .map(|id| ModelOut {
            id,
            object: "model",
            created: shared.started,
            owned_by: "vllm",
            root: id,
            parent: (),
            max_model_len: shared.config.max_model_len,
            permission: vec![PermissionOut {
                id: shared.id("modelperm-"),
                object: "model_permission",
                created: shared.started,
                allow_create_engine: false,
                allow_sampling: true,
                allow_logprobs: true,
                allow_search_indices: false,
                allow_view: true,
                allow_fine_tuning: false,
                organization: "*",
                group: (),
                is_blocking: false,
            }],
        })
        .collect();
    Reply::ok(&ModelListOut {
        object: "list",
        data,
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
    let body = parse_object(body)?;
    if !body.contains_key("messages") {
        require(&body, "input")?;
    }
    check_types(
        &body,
        &[
            ("model", Kind::Str),
            ("messages", Kind::List),
            ("encoding_format", Kind::Str),
            ("dimensions", Kind::Int),
        ],
    )?;
    let model = named_model(shared, &body)?;
    if behavior.is_none() {
        *behavior = shared.model_behavior(&model, "/v1/embeddings");
    }
    if let Some(error) = behavior.as_ref().and_then(|b| b.error.as_ref()) {
        return Ok(Reply::scripted(
            error.status,
            &error.content_type,
            &error.body,
        ));
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
    // Each input: the text its vector is seeded from, and its token count.
    let inputs: Vec<(String, u32)> = match (&request.messages, &request.input) {
        (Some(messages), _) => {
            let prompt = render(
                messages,
                &[],
                request.add_generation_prompt.unwrap_or(false),
            );
            vec![(prompt.clone(), tokenizer::count(&prompt))]
        }
        (None, Some(Prompt::Text(s))) => vec![(s.clone(), tokenizer::count(s))],
        (None, Some(Prompt::Texts(v))) => {
            v.iter().map(|s| (s.clone(), tokenizer::count(s))).collect()
        }
        (None, Some(Prompt::Tokens(ids))) => vec![(format!("{ids:?}"), ids.len() as u32)],
        (None, Some(Prompt::TokenBatches(batches))) => batches
            .iter()
            .map(|ids| (format!("{ids:?}"), ids.len() as u32))
            .collect(),
        (None, None) => Vec::new(),
    };
    if inputs.is_empty() {
        return Err(Reply::bad_request(Some("input"), "Input cannot be empty."));
    }
    for (_, tokens) in &inputs {
        check_context(shared.config.max_model_len, *tokens, None)?;
    }
    let base64_wanted = request.encoding_format == Some(EncodingFormat::Base64);
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, _))| {
            let vector = unit_vector(text, dimensions);
            let embedding = if base64_wanted {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                VectorOut::Base64(base64(&bytes))
            } else {
                VectorOut::Float(vector.iter().map(|&x| f64::from(x)).collect())
            };
            EmbeddingOut {
                index: index as u32,
                object: "embedding",
                embedding,
            }
        })
        .collect();
    let prompt_tokens = inputs.iter().map(|(_, t)| t).sum();
    let id = shared.id("embd-");
    Ok(Reply::ok(&EmbeddingListOut {
        id: &id,
        object: "list",
        created: now(),
        model: &model,
        data,
        usage: UsageOut {
            prompt_tokens,
            total_tokens: prompt_tokens,
            completion_tokens: 0,
            prompt_tokens_details: Maybe::Null,
            completion_tokens_details: Maybe::Null,
        },
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

/// `POST /tokenize`: a prompt, or messages rendered through the chat template.
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
            ("add_generation_prompt", Kind::Bool),
            ("return_token_strs", Kind::Bool),
        ],
    )?;
    named_model(shared, &body)?;
    let (text, token_strs) = if chat {
        let request: TokenizeChatRequest = typed(body)?;
        let tools = request.tools.as_deref().unwrap_or_default();
        let text = render(
            &request.messages,
            tools,
            request.add_generation_prompt.unwrap_or(true),
        );
        (text, request.return_token_strs == Some(true))
    } else {
        let request: TokenizePromptRequest = typed(body)?;
        (request.prompt, request.return_token_strs == Some(true))
    };
    shared.learn(&text);
    let pieces = tokenizer::pieces(&text);
    let tokens: Vec<u32> = pieces.iter().map(|p| tokenizer::token_id(p)).collect();
    Ok(Reply::ok(&TokenizeOut {
        count: tokens.len() as u32,
        max_model_len: shared.config.max_model_len,
        tokens,
        token_strs: token_strs.then(|| pieces.iter().map(|p| (*p).to_owned()).collect()),
    }))
}

/// `POST /detokenize`: ids of pieces the server has seen (and one-byte ids) back to text.
fn detokenize(shared: &Shared, body: &[u8]) -> Result<Reply, Reply> {
    let body = parse_object(body)?;
    require(&body, "tokens")?;
    check_types(&body, &[("model", Kind::Str), ("tokens", Kind::List)])?;
    named_model(shared, &body)?;
    let request: DetokenizeRequest = typed(body)?;
    match shared.decode(&request.tokens) {
        Ok(prompt) => Ok(Reply::ok(&DetokenizeOut { prompt })),
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
