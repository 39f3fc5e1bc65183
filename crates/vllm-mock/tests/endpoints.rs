//! The endpoints besides chat, and vLLM's validation errors on all of them.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{bounded, fixture_body, raw};
use vllm_client::{VllmClient, json};
use vllm_mock::{
    DEFAULT_EMBEDDING_DIMENSIONS, DEFAULT_MAX_MODEL_LEN, MockServer, VLLM_VERSION, tokenizer,
};
use vllm_types::{
    DetokenizeResponse, EmbeddingResponse, ErrorResponse, ModelList, TokenizeResponse,
    VersionResponse,
};

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let digits: Vec<u8> = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n =
            digits.iter().fold(0u32, |n, &d| (n << 6) | u32::from(d)) << (6 * (4 - digits.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..digits.len()]);
    }
    out
}

#[tokio::test]
async fn models_health_and_version() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let models = raw(mock.addr(), "GET", "/v1/models", None).await;
        assert_eq!(models.status, 200);
        let list: ModelList = serde_json::from_slice(&models.body).unwrap();
        assert_eq!(list.object, "list");
        let echo = list.get("echo").unwrap();
        assert_eq!(echo.object, "model");
        assert_eq!(echo.owned_by.as_deref(), Some("vllm"));
        assert_eq!(echo.root.as_deref(), Some("echo"));
        assert_eq!(echo.max_model_len, Some(DEFAULT_MAX_MODEL_LEN));
        assert_eq!(models.json()["data"][0]["parent"], Value::Null);

        let health = raw(mock.addr(), "GET", "/health", None).await;
        assert_eq!(health.status, 200);
        assert!(health.body.is_empty());

        let version = raw(mock.addr(), "GET", "/version", None).await;
        let version: VersionResponse = serde_json::from_slice(&version.body).unwrap();
        assert_eq!(version.version, VLLM_VERSION);

        let custom = MockServer::builder()
            .models(["a/b", "c"])
            .max_model_len(77)
            .start()
            .await
            .unwrap();
        let list: ModelList =
            serde_json::from_slice(&raw(custom.addr(), "GET", "/v1/models", None).await.body)
                .unwrap();
        let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a/b", "c"]);
        assert_eq!(list.data[1].max_model_len, Some(77));
    })
    .await;
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors_in_floats_or_base64() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let addr = mock.addr();
        let post = move |body: Value| async move {
            let got = raw(addr, "POST", "/v1/embeddings", Some(&body.to_string())).await;
            assert_eq!(got.status, 200, "{}", got.text());
            serde_json::from_slice::<EmbeddingResponse>(&got.body).unwrap()
        };
        let floats = post(json!({"model": "echo", "input": ["hello world", "goodbye"]})).await;
        assert!(floats.id.as_deref().unwrap().starts_with("embd-"));
        assert_eq!(floats.data.len(), 2);
        assert_eq!(floats.model, "echo");
        let usage = floats.usage.as_ref().unwrap();
        assert_eq!(usage.prompt_tokens, 3);
        assert_eq!(usage.completion_tokens, Some(0));
        let a = floats.data[0].embedding.as_floats().unwrap();
        let b = floats.data[1].embedding.as_floats().unwrap();
        assert_eq!(a.len(), DEFAULT_EMBEDDING_DIMENSIONS);
        assert_ne!(a, b);
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");

        let again = post(json!({"input": "hello world"})).await;
        assert_eq!(again.data[0].embedding.as_floats().unwrap(), a);

        let encoded = post(json!({"input": ["hello world"], "encoding_format": "base64"})).await;
        let bytes = decode_base64(encoded.data[0].embedding.as_base64().unwrap());
        let decoded: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // The same f32 values (JSON numbers are parsed as f64, so compare as f32).
        assert_eq!(decoded, a.iter().map(|&x| x as f32).collect::<Vec<_>>());

        let short = post(json!({"input": "hello world", "dimensions": 8})).await;
        assert_eq!(short.data[0].embedding.as_floats().unwrap().len(), 8);

        let tokens = post(json!({"input": [1, 2, 3]})).await;
        assert_eq!(tokens.usage.unwrap().prompt_tokens, 3);

        let chat = post(json!({"messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(chat.data.len(), 1);

        let too_long = raw(
            mock.addr(),
            "POST",
            "/v1/embeddings",
            Some(r#"{"input":"x","dimensions":100000}"#),
        )
        .await;
        assert_eq!(too_long.status, 400);
        let missing = raw(
            mock.addr(),
            "POST",
            "/v1/embeddings",
            Some(r#"{"model":"echo"}"#),
        )
        .await;
        assert_eq!(missing.status, 400);
        assert_eq!(missing.error().param(), Some("body.input"));
    })
    .await;
}

#[tokio::test]
async fn tokenize_and_detokenize_round_trip() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let got = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"model":"echo","prompt":"Hello, world!","return_token_strs":true}"#),
        )
        .await;
        assert_eq!(got.status, 200);
        let tokens: TokenizeResponse = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(tokens.count, Some(4));
        assert_eq!(tokens.max_model_len, Some(DEFAULT_MAX_MODEL_LEN));
        assert_eq!(tokens.tokens, tokenizer::encode("Hello, world!"));
        assert_eq!(tokens.token_strs.unwrap(), ["Hello", ",", " world", "!"]);

        let plain = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"prompt":"hello world"}"#),
        )
        .await;
        assert_eq!(plain.json()["token_strs"], Value::Null);

        let chat = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"messages":[{"role":"user","content":"hi"}]}"#),
        )
        .await;
        let chat: TokenizeResponse = serde_json::from_slice(&chat.body).unwrap();
        assert_eq!(
            chat.tokens,
            tokenizer::encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        );
        let no_prompt = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"messages":[{"role":"user","content":"hi"}],"add_generation_prompt":false}"#),
        )
        .await;
        assert_eq!(no_prompt.json()["count"], 6);

        let body = json!({"model": "echo", "tokens": tokens.tokens}).to_string();
        let back = raw(mock.addr(), "POST", "/detokenize", Some(&body)).await;
        let back: DetokenizeResponse = serde_json::from_slice(&back.body).unwrap();
        assert_eq!(back.text(), "Hello, world!");

        let bytes = raw(
            mock.addr(),
            "POST",
            "/detokenize",
            Some(r#"{"tokens":[104,105]}"#),
        )
        .await;
        assert_eq!(bytes.json(), json!({"prompt": "hi"}));

        let unknown = raw(
            mock.addr(),
            "POST",
            "/detokenize",
            Some(r#"{"tokens":[9999999]}"#),
        )
        .await;
        assert_eq!(unknown.status, 400);
        assert!(unknown.error().message().contains("9999999"));

        let missing = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"model":"echo"}"#),
        )
        .await;
        assert_eq!(missing.status, 400);
        assert_eq!(missing.error().param(), Some("body.prompt"));
        let unknown_model = raw(
            mock.addr(),
            "POST",
            "/tokenize",
            Some(r#"{"model":"x","prompt":"a"}"#),
        )
        .await;
        assert_eq!(unknown_model.status, 404);
    })
    .await;
}

#[tokio::test]
async fn completions_echo_the_prompt() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let response = client
            .completions
            .create()
            .model("echo")
            .prompt("The capital of France is")
            .send()
            .await
            .unwrap();
        assert!(response.id.starts_with("cmpl-"));
        assert_eq!(response.text, "The capital of France is");
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        let usage = response.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 5));

        let cut = client
            .completions
            .create()
            .model("echo")
            .prompt("one two three")
            .max_tokens(2)
            .echo(true)
            .send()
            .await
            .unwrap();
        assert_eq!(cut.text, "one two threeone two");
        assert_eq!(cut.finish_reason.as_deref(), Some("length"));

        let stopped = client
            .completions
            .create()
            .model("echo")
            .prompt("one two three")
            .stop(json!(["three"]))
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.text, "one two ");
        assert_eq!(
            stopped.completion().choices[0].stop_reason,
            Some(vllm_types::StopReason::Text("three".into()))
        );

        let batch = client
            .completions
            .create()
            .model("echo")
            .prompt(json!(["a", "b c"]))
            .n(2)
            .send()
            .await
            .unwrap();
        let texts: Vec<(u32, &str)> = batch
            .completion()
            .choices
            .iter()
            .map(|c| (c.index, c.text.as_str()))
            .collect();
        assert_eq!(texts, [(0, "a"), (1, "a"), (2, "b c"), (3, "b c")]);
    })
    .await;
}

#[tokio::test]
async fn invalid_requests_get_vllms_errors() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let addr = mock.addr();
        let post = move |path: &'static str, body: &'static str| async move {
            let got = raw(addr, "POST", path, Some(body)).await;
            let error: ErrorResponse = got.error();
            (got.status, error, got.json())
        };

        // Malformed JSON: the body of the real capture, member for member.
        let (status, _, body) = post("/v1/chat/completions", r#"{"model": "x", "messages": [ this is not json"#).await;
        assert_eq!(status, 400);
        assert_eq!(body, fixture_body("think/err_bad_json.http"));

        let (status, error, body) = post("/v1/chat/completions", r#"{"model":"echo","max_tokens":4}"#).await;
        assert_eq!(status, 400);
        assert_eq!(error.error_type(), Some("Bad Request"));
        assert!(error.message().contains("Field required"));
        assert_eq!(body, fixture_body("think/err_missing_messages.http"));

        let (status, error, _) = post("/v1/chat/completions", r#"{"model":"no-such-model","messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#).await;
        assert_eq!(status, 404);
        assert_eq!(error.error_type(), Some("NotFoundError"));
        assert_eq!(error.param(), Some("model"));
        assert!(error.message().starts_with("The model `no-such-model` does not exist."), "{error}");
        assert_eq!(error.code().and_then(|c| c.as_u16()), Some(404));

        let (status, error, body) = post("/v1/chat/completions", r#"{"model":"echo","messages":[{"role":"user","content":"hi"}],"max_tokens":100000}"#).await;
        assert_eq!(status, 400);
        assert_eq!(error.error_type(), Some("BadRequestError"));
        assert_eq!(body, fixture_body("think/extra_ctx_overflow.http"));

        let (status, _, body) = post("/v1/chat/completions", r#"{"model":"echo","messages":[{"role":"user","content":"hi"}],"max_tokens":"abc"}"#).await;
        assert_eq!(status, 400);
        assert_eq!(body, fixture_body("think/extra_bad_type.http"));

        // The prompt and the output together beyond the context: vLLM clamps the output to
        // what the context leaves; a prompt longer than the context is refused.
        let small = MockServer::builder().max_model_len(10).start().await.unwrap();
        let got = raw(small.addr(), "POST", "/v1/chat/completions", Some(r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#)).await;
        assert_eq!(got.status, 200, "{}", got.text());
        let usage = &got.json()["usage"];
        assert_eq!(usage["total_tokens"].as_u64().map(|t| t <= 10), Some(true), "{usage}");
        let got = raw(small.addr(), "POST", "/v1/chat/completions", Some(r#"{"messages":[{"role":"user","content":"a b c d e f"}]}"#)).await;
        assert_eq!(got.status, 400);
        assert!(got.error().message().contains("maximum context length is 10 tokens"), "{}", got.text());
        assert_eq!(got.error().param(), Some("input_tokens"));

        for (body, param) in [
            (r#"{"messages":[{"role":"user","content":"hi"}],"n":0}"#, None),
            (r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#, Some("max_tokens")),
            (r#"{"messages":"hi"}"#, Some("body.messages")),
            (r#"{"messages":[{"role":"user","content":"hi"}],"stream":"maybe"}"#, Some("body.stream")),
            (r#"{"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}"#, Some("stream_options")),
            (r#"{"messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}"#, Some("tool_choice")),
            (r#"[1, 2]"#, Some("body")),
            ("", Some("body")),
        ] {
            let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(body)).await;
            assert_eq!(got.status, 400, "{body}: {}", got.text());
            assert_eq!(got.error().param(), param, "{body}: {}", got.text());
            assert_eq!(got.error().code().and_then(|c| c.as_u16()), Some(400));
        }

        let (status, error, _) = post("/v1/completions", r#"{"model":"echo"}"#).await;
        assert_eq!(status, 400);
        assert_eq!(error.param(), Some("prompt"));
        let (status, _, _) = post("/v1/completions", r#"{"model":"nope","prompt":"x"}"#).await;
        assert_eq!(status, 404);

        // Unknown routes and methods, as FastAPI answers them.
        let got = raw(mock.addr(), "GET", "/v1/nothing", None).await;
        assert_eq!(got.status, 404);
        assert_eq!(got.json(), json!({"detail": "Not Found"}));
        assert_eq!(got.json(), fixture_body("think/err_404.http"));
        assert_eq!(got.error().message(), "Not Found");
        let got = raw(mock.addr(), "GET", "/v1/chat/completions", None).await;
        assert_eq!(got.status, 405);
        assert_eq!(got.json(), json!({"detail": "Method Not Allowed"}));

        // The client reports them with the server's message.
        let client = VllmClient::new(mock.base_url());
        let err = client
            .chat
            .completions()
            .create()
            .model("nope")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(404));
        assert!(err.to_string().contains("does not exist"), "{err}");
    })
    .await;
}
