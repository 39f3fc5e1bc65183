//! Every capture of a real server in `tests/fixtures/` parses into the type it should, the
//! fields we model come out right, and serialize(parse(x)) is JSON-equal to x.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vllm_types::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(rel: &str) -> String {
    fs::read_to_string(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Status and body of a captured `.http` response.
fn http(rel: &str) -> (u16, String) {
    let text = read(rel);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{rel}: no status line"));
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map(|(_, body)| body.to_owned())
        .unwrap_or_else(|| panic!("{rel}: no body"));
    (status, body)
}

/// The `data` of each event of a captured `.sse` stream, `[DONE]` included.
fn sse_data(rel: &str) -> Vec<String> {
    read(rel)
        .replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// JSON equality where numbers compare by value (`0` equals `0.0`), as JSON defines them.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Parses `text` as `T`, checks that it re-serializes to the same JSON, and returns it.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    what: &str,
    text: &str,
) -> T {
    let parsed: T = serde_json::from_str(text).unwrap_or_else(|e| {
        panic!(
            "{what}: does not parse as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let original: Value = serde_json::from_str(text).unwrap();
    let again = serde_json::to_value(&parsed).unwrap();
    assert!(
        json_eq(&original, &again),
        "{what}: re-serialized JSON differs\n original: {original}\n     again: {again}"
    );
    // And parsing the re-serialized form gives the same value.
    let reparsed: T = serde_json::from_value(again).unwrap();
    assert_eq!(reparsed, parsed, "{what}: second parse differs");
    parsed
}

fn all_files() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "vllm-0.32-cpu/think",
        "vllm-0.32-cpu/nothink",
        "vllm-0.32-cpu/embed",
        "llama-server",
    ] {
        for entry in fs::read_dir(fixtures().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            out.push(format!("{dir}/{name}"));
        }
    }
    out.sort();
    out
}

fn stem(rel: &str) -> &str {
    let file = rel.rsplit('/').next().unwrap();
    file.split('.').next().unwrap()
}

/// Requests that a server must reject, with the reason they fail to parse.
const BAD_REQUESTS: &[(&str, &str)] = &[
    ("err_bad_json", "expected"),
    ("err_missing_messages", "missing field `messages`"),
    ("extra_bad_type", "invalid type: string \"abc\""),
];

/// vLLM's answers to invalid (and borderline valid) requests: every refusal is vLLM's error
/// body with an integer `code` equal to the status, every acceptance a response that parses.
#[test]
fn every_validation_capture_parses_and_round_trips() {
    let dir = "vllm-0.32-cpu/validation";
    let mut checked = 0;
    for entry in fs::read_dir(fixtures().join(dir)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".http") else {
            continue;
        };
        let rel = format!("{dir}/{name}");
        let (status, body) = http(&rel);
        if status >= 400 {
            let e: ErrorResponse = round_trip(&rel, &body);
            assert!(!e.message().is_empty(), "{rel}: empty message");
            assert!(e.error_type().is_some(), "{rel}: no type");
            assert_eq!(
                e.code().and_then(|c| c.as_u16()),
                Some(status),
                "{rel}: an integer code, the status"
            );
        } else {
            check_response(&rel, stem, &body);
        }
        checked += 1;
    }
    assert!(checked >= 120, "only {checked} validation captures checked");
}

#[test]
fn every_fixture_parses_and_round_trips() {
    let mut checked = 0;
    for rel in all_files() {
        let stem = stem(&rel);
        if rel.ends_with(".req.json") {
            let body = read(&rel);
            if let Some((_, reason)) = BAD_REQUESTS.iter().find(|(s, _)| *s == stem) {
                let err = request_error(stem, &body);
                assert!(
                    err.contains(reason),
                    "{rel}: error {err:?} does not say {reason:?}"
                );
            } else {
                check_request(&rel, stem, &body);
            }
        } else if rel.ends_with(".http") {
            let (status, body) = http(&rel);
            if status >= 400 {
                let e: ErrorResponse = round_trip(&rel, &body);
                assert!(!e.message().is_empty(), "{rel}: empty message");
            } else {
                check_response(&rel, stem, &body);
            }
        } else if rel.ends_with(".sse") {
            let events = sse_data(&rel);
            assert_eq!(
                events.last().map(String::as_str),
                Some("[DONE]"),
                "{rel}: no [DONE]"
            );
            for data in &events[..events.len() - 1] {
                if stem.starts_with("completions") {
                    round_trip::<CompletionChunk>(&rel, data);
                } else {
                    round_trip::<ChatCompletionChunk>(&rel, data);
                }
            }
        } else if rel.ends_with(".headers") {
            continue;
        } else {
            panic!("{rel}: unknown fixture kind");
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} fixtures checked");
}

/// Parses each of `texts` in turn into one value with `from_str_in_place`, and checks
/// that each time it equals the fresh parse and writes back the same JSON. Returns how many.
fn in_place_in_turn<T>(what: &str, texts: &[&str]) -> usize
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + Default,
{
    let mut place = T::default();
    for text in texts {
        from_str_in_place(text, &mut place)
            .unwrap_or_else(|e| panic!("{what}: in place: {e}\n{text}"));
        let fresh: T = serde_json::from_str(text).unwrap();
        assert_eq!(place, fresh, "{what}: in place differs\n{text}");
        assert_eq!(
            serde_json::to_string(&place).unwrap(),
            serde_json::to_string(&fresh).unwrap(),
            "{what}: written back in place differs\n{text}"
        );
    }
    texts.len()
}

/// Every captured stream parsed chunk by chunk into one value, in order and backwards,
/// and every chunk of every capture in a row (vLLM's and llama.cpp's shapes mixed), gives
/// what a fresh parse of each chunk gives.
#[test]
fn every_stream_parses_in_place_into_one_value() {
    let mut chat_chunks = Vec::new();
    let mut completion_chunks = Vec::new();
    for rel in all_files().into_iter().filter(|rel| rel.ends_with(".sse")) {
        let mut chunks = sse_data(&rel);
        chunks.retain(|text| text != "[DONE]");
        let mut texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let completions = stem(&rel).starts_with("completions");
        for _ in 0..2 {
            if completions {
                in_place_in_turn::<CompletionChunk>(&rel, &texts);
            } else {
                in_place_in_turn::<ChatCompletionChunk>(&rel, &texts);
            }
            texts.reverse();
        }
        let all = if completions {
            &mut completion_chunks
        } else {
            &mut chat_chunks
        };
        all.extend(chunks);
    }
    let chat: Vec<&str> = chat_chunks.iter().map(String::as_str).collect();
    let completion: Vec<&str> = completion_chunks.iter().map(String::as_str).collect();
    assert!(in_place_in_turn::<ChatCompletionChunk>("all chat chunks", &chat) > 100);
    assert!(in_place_in_turn::<CompletionChunk>("all completion chunks", &completion) > 10);
}

/// Every captured response body parsed into one value in turn, each over the one before.
#[test]
fn responses_parse_in_place_over_each_other() {
    let mut bodies = Vec::new();
    for rel in all_files().into_iter().filter(|rel| rel.ends_with(".http")) {
        let (status, body) = http(&rel);
        if status == 200 && serde_json::from_str::<ChatCompletion>(&body).is_ok() {
            bodies.push(body);
        }
    }
    let mut texts: Vec<&str> = bodies.iter().map(String::as_str).collect();
    assert!(in_place_in_turn::<ChatCompletion>("chat responses", &texts) > 5);
    texts.reverse();
    in_place_in_turn::<ChatCompletion>("chat responses backwards", &texts);
}

fn request_error(stem: &str, body: &str) -> String {
    match stem {
        "err_bad_json" => serde_json::from_str::<ChatCompletionRequest>(body)
            .unwrap_err()
            .to_string(),
        _ => serde_json::from_str::<ChatCompletionRequest>(body)
            .map(|r| format!("parsed: {r:?}"))
            .unwrap_or_else(|e| e.to_string()),
    }
}

fn check_request(rel: &str, stem: &str, body: &str) {
    match stem {
        s if s.starts_with("completions") => {
            round_trip::<CompletionRequest>(rel, body);
        }
        "embeddings" => {
            round_trip::<EmbeddingRequest>(rel, body);
        }
        "detokenize" => {
            round_trip::<DetokenizeRequest>(rel, body);
        }
        "tokenize" => {
            let r: TokenizeRequest = round_trip(rel, body);
            assert!(matches!(r, TokenizeRequest::Prompt(_)), "{rel}: {r:?}");
        }
        "extra_tokenize_messages" => {
            let r: TokenizeRequest = round_trip(rel, body);
            assert!(matches!(r, TokenizeRequest::Chat(_)), "{rel}: {r:?}");
        }
        "err_unknown_model"
        | "err_bad_role"
        | "chat"
        | "stream"
        | "extra_n2_logprobs"
        | "extra_stop"
        | "extra_stream_no_usage"
        | "extra_ctx_overflow"
        | "extra_tool_named"
        | "extra_tool_none"
        | "tools"
        | "tools_auto"
        | "tools_roundtrip"
        | "tools_stream" => {
            round_trip::<ChatCompletionRequest>(rel, body);
        }
        other => panic!("{rel}: no request type for {other}"),
    }
}

fn check_response(rel: &str, stem: &str, body: &str) {
    match stem {
        "models" => {
            round_trip::<ModelList>(rel, body);
        }
        "tokenize" | "extra_tokenize_messages" => {
            round_trip::<TokenizeResponse>(rel, body);
        }
        "detokenize" => {
            round_trip::<DetokenizeResponse>(rel, body);
        }
        "embeddings" | "embeddings_base64" => {
            round_trip::<EmbeddingResponse>(rel, body);
        }
        s if s.starts_with("completions") => {
            round_trip::<Completion>(rel, body);
        }
        _ => {
            round_trip::<ChatCompletion>(rel, body);
        }
    }
}

fn chat(rel: &str) -> ChatCompletion {
    let (status, body) = http(rel);
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

fn error(rel: &str) -> ErrorResponse {
    let (_, body) = http(rel);
    serde_json::from_str(&body).unwrap()
}

fn chunks(rel: &str) -> Vec<ChatCompletionChunk> {
    sse_data(rel)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn vllm_chat_fields_come_out_right() {
    let c = chat("vllm-0.32-cpu/think/chat.http");
    assert_eq!(c.id, "chatcmpl-8c07889710a764cd");
    assert_eq!(c.object, "chat.completion");
    assert_eq!(c.created, 1795567062);
    assert_eq!(c.model, "smollm2-135m");
    assert_eq!(
        c.system_fingerprint.as_deref(),
        Some("vllm-0.32.0-67e5bc80")
    );
    let choice = &c.choices[0];
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(choice.message.content.as_deref(), Some(" in one sentence."));
    assert_eq!(
        choice.message.reasoning.as_deref(),
        Some("\nThe capital of France")
    );
    assert_eq!(
        choice.message.reasoning_text(),
        Some("\nThe capital of France")
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(choice.stop_reason, None);
    let usage = c.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (34, Some(11), 45)
    );
    assert_eq!(
        usage
            .completion_tokens_details
            .as_ref()
            .unwrap()
            .reasoning_tokens,
        Some(5)
    );
    assert_eq!(usage.prompt_tokens_details, None);
    // Members we do not model are kept.
    assert_eq!(c.extra.get("metrics"), Some(&Value::Null));
    assert_eq!(choice.extra.get("routed_experts"), Some(&Value::Null));
}

#[test]
fn vllm_tool_call_fields_come_out_right() {
    let c = chat("vllm-0.32-cpu/think/tools.http");
    let choice = &c.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].id.starts_with("chatcmpl-tool-"), "{}", calls[0].id);
    assert_eq!(calls[0].kind, "function");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    // The message goes back into the history with its tool calls.
    let history = choice.message.to_message();
    assert_eq!(history.role, Role::Assistant);
    assert_eq!(history.tool_calls.as_deref(), Some(calls));
}

#[test]
fn vllm_n2_logprobs_come_out_right() {
    let c = chat("vllm-0.32-cpu/think/extra_n2_logprobs.http");
    assert_eq!(c.choices.len(), 2);
    assert_eq!(c.choices[1].index, 1);
    let lp = c.choices[0]
        .logprobs
        .as_ref()
        .unwrap()
        .content
        .as_ref()
        .unwrap();
    assert_eq!(lp.len(), 5);
    assert_eq!(lp[0].token, "1");
    assert!((lp[0].logprob - -1.8218450546264648).abs() < 1e-12);
    assert_eq!(lp[0].bytes.as_deref(), Some(&[49u8][..]));
    let top = lp[1].top_logprobs.as_ref().unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[1].token, "</tool_response>");
    assert_eq!(c.choices[0].finish_reason, Some(FinishReason::Length));
}

#[test]
fn vllm_stream_reassembles() {
    let chunks = chunks("vllm-0.32-cpu/think/stream.sse");
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some(""));
    let reasoning: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.reasoning_text())
        .collect();
    let content: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    assert!(!reasoning.is_empty());
    assert!(!content.is_empty());
    // The usage chunk: no choices, real counts.
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let usage = last.usage.as_ref().unwrap();
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens.unwrap()
    );
    // Without include_usage there is no usage chunk.
    let no_usage: Vec<ChatCompletionChunk> =
        sse_data("vllm-0.32-cpu/think/extra_stream_no_usage.sse")
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
    assert!(
        no_usage
            .iter()
            .all(|c| c.usage.is_none() && !c.choices.is_empty())
    );
}

#[test]
fn vllm_tool_stream_arguments_reassemble() {
    let chunks = chunks("vllm-0.32-cpu/think/tools_stream.sse");
    let deltas: Vec<&ToolCallDelta> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .collect();
    let first = deltas[0];
    assert!(first.id.as_deref().unwrap().starts_with("chatcmpl-tool-"));
    assert_eq!(first.kind.as_deref(), Some("function"));
    assert_eq!(
        first.function.as_ref().unwrap().name.as_deref(),
        Some("get_weather")
    );
    assert_eq!(first.function.as_ref().unwrap().arguments, None);
    assert!(deltas.iter().all(|d| d.index == 0));
    let args: String = deltas
        .iter()
        .filter_map(|d| d.function.as_ref()?.arguments.as_deref())
        .collect();
    let parsed: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(parsed["city"], "Paris");
    let finish = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .find_map(|c| c.finish_reason.clone());
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

#[test]
fn llama_server_dialect_comes_out_right() {
    let c = chat("llama-server/chat.http");
    let msg = &c.choices[0].message;
    assert_eq!(msg.reasoning, None);
    assert!(msg.reasoning_content.is_some());
    assert_eq!(msg.reasoning_text(), msg.reasoning_content.as_deref());
    let usage = c.usage.as_ref().unwrap();
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(0)
    );
    assert!(c.extra.contains_key("timings"));
    // The first stream delta has content: null.
    let chunks = chunks("llama-server/stream.sse");
    assert_eq!(chunks[0].choices[0].delta.content, None);
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.choices)
            .any(|c| c.delta.reasoning_text().is_some())
    );
}

#[test]
fn error_shapes_come_out_right() {
    let e = error("vllm-0.32-cpu/think/err_unknown_model.http");
    assert_eq!(
        e.message(),
        "The model `no-such-model` does not exist. Valid aliases: smollm2-135m."
    );
    assert_eq!(e.error_type(), Some("NotFoundError"));
    assert_eq!(e.param(), Some("model"));
    assert_eq!(e.code(), Some(&ErrorCode::Int(404)));

    let e = error("vllm-0.32-cpu/think/extra_ctx_overflow.http");
    assert!(
        e.message()
            .starts_with("max_tokens=100000 cannot be greater than max_model_len=4096")
    );
    assert_eq!(e.code().and_then(ErrorCode::as_u16), Some(400));

    let e = error("vllm-0.32-cpu/think/err_404.http");
    assert!(matches!(e, ErrorResponse::Detail(_)));
    assert_eq!(e.message(), "Not Found");

    let e = error("llama-server/err_missing_messages.http");
    assert_eq!(e.message(), "'messages' is required");
    assert_eq!(e.error_type(), Some("invalid_request_error"));

    // The shapes no fixture holds.
    let older: ErrorResponse = round_trip(
        "older vLLM",
        r#"{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}"#,
    );
    assert!(matches!(older, ErrorResponse::Flat(_)));
    assert_eq!(older.message(), "bad");
    assert_eq!(older.code(), Some(&ErrorCode::Int(400)));
    let openai: ErrorResponse = round_trip(
        "OpenAI",
        r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    );
    assert_eq!(
        openai.code(),
        Some(&ErrorCode::Text("invalid_api_key".into()))
    );
    let unauthorized: ErrorResponse = round_trip("401", r#"{"error":"Unauthorized"}"#);
    assert_eq!(unauthorized.message(), "Unauthorized");
    assert_eq!(unauthorized.error_type(), None);
    let validation: ErrorResponse = round_trip(
        "FastAPI validation",
        r#"{"detail":[{"loc":["body","messages"],"msg":"Field required","type":"missing"}]}"#,
    );
    assert_eq!(
        validation.message(),
        r#"Field required (at ["body","messages"])"#
    );
    // Built for a mock, it is vLLM's current shape.
    assert_eq!(
        serde_json::to_value(ErrorResponse::new("nope", "NotFoundError", 404)).unwrap(),
        json!({"error": {"message": "nope", "type": "NotFoundError", "code": 404}})
    );
}

#[test]
fn other_endpoints_come_out_right() {
    let (_, body) = http("vllm-0.32-cpu/think/models.http");
    let models: ModelList = serde_json::from_str(&body).unwrap();
    let m = models.get("smollm2-135m").unwrap();
    assert_eq!(m.max_model_len, Some(4096));
    assert_eq!(m.owned_by.as_deref(), Some("vllm"));
    assert!(m.root.as_deref().unwrap().starts_with("/models/"));
    assert_eq!(m.parent, None);

    let (_, body) = http("vllm-0.32-cpu/think/tokenize.http");
    let t: TokenizeResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(t.count, Some(t.tokens.len() as u32));
    assert_eq!(t.max_model_len, Some(4096));

    let (_, body) = http("vllm-0.32-cpu/embed/embeddings.http");
    let e: EmbeddingResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(e.data.len(), 2);
    assert_eq!(e.data[1].index, 1);
    let v = e.data[0].embedding.as_floats().unwrap();
    assert_eq!(v.len(), 576);
    assert_eq!(v[0], -0.02436474896967411);
    assert_eq!(e.usage.as_ref().unwrap().completion_tokens, Some(0));

    let (_, body) = http("vllm-0.32-cpu/embed/embeddings_base64.http");
    let e: EmbeddingResponse = serde_json::from_str(&body).unwrap();
    // 576 little-endian f32s, base64: 2304 bytes -> 3072 characters.
    assert_eq!(e.data[0].embedding.as_base64().unwrap().len(), 3072);

    let (_, body) = http("vllm-0.32-cpu/nothink/completions.http");
    let c: Completion = serde_json::from_str(&body).unwrap();
    assert_eq!(c.object, "text_completion");
    assert_eq!(c.choices[0].text, " Paris.\n\nThe answer is: 2018-01");
    assert_eq!(c.choices[0].finish_reason, Some(FinishReason::Length));
}
