//! LoRA adapters, `/metrics`, audio transcriptions, and the scripting of the endpoints that
//! take no model.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{bounded, multipart, raw, raw_bytes, raw_with};
use vllm_mock::{Behavior, MockServer, tokenizer};

async fn post(mock: &MockServer, path: &str, body: Value) -> support::RawResponse {
    raw(mock.addr(), "POST", path, Some(&body.to_string())).await
}

#[tokio::test]
async fn lora_adapters_load_serve_and_unload_with_vllms_answers() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let load = json!({"lora_name": "sql", "lora_path": "/adapters/sql"});
        let got = post(&mock, "/v1/load_lora_adapter", load.clone()).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), "Success: LoRA adapter 'sql' added successfully.");
        assert_eq!(got.header("content-type"), None, "a plain Response, as vLLM's");

        let models = raw(mock.addr(), "GET", "/v1/models", None).await.json();
        assert_eq!(models["data"].as_array().unwrap().len(), 2);
        let adapter = &models["data"][1];
        assert_eq!(adapter["id"], "sql");
        assert_eq!(adapter["root"], "/adapters/sql");
        assert_eq!(adapter["parent"], "echo");
        assert_eq!(adapter["max_model_len"], Value::Null);
        assert_eq!(adapter["object"], "model");
        assert_eq!(models["data"][0]["parent"], Value::Null);
        assert_eq!(mock.models(), ["echo", "sql"]);

        // Served as a model.
        let chat = post(&mock, "/v1/chat/completions", json!({"model": "sql", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(chat.status, 200);
        assert_eq!(chat.json()["model"], "sql");
        let tokens = post(&mock, "/tokenize", json!({"model": "sql", "prompt": "hi"})).await;
        assert_eq!(tokens.status, 200);

        let again = post(&mock, "/v1/load_lora_adapter", load.clone()).await;
        assert_eq!(again.status, 400);
        assert_eq!(
            again.json(),
            json!({"error": {
                "message": "The lora adapter 'sql' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.",
                "type": "InvalidUserInput",
                "param": null,
                "code": 400,
            }})
        );
        let in_place = post(&mock, "/v1/load_lora_adapter", json!({"lora_name": "sql", "lora_path": "/v2", "load_inplace": true})).await;
        assert_eq!(in_place.status, 200);
        let models = raw(mock.addr(), "GET", "/v1/models", None).await.json();
        assert_eq!(models["data"][1]["root"], "/v2");

        let empty = post(&mock, "/v1/load_lora_adapter", json!({"lora_name": "", "lora_path": "/x"})).await;
        assert_eq!(empty.status, 400);
        assert_eq!(empty.error().message(), "Both 'lora_name' and 'lora_path' must be provided.");
        let missing = post(&mock, "/v1/load_lora_adapter", json!({"lora_name": "x"})).await;
        assert_eq!(missing.status, 400);
        assert_eq!(missing.error().param(), Some("body.lora_path"));

        let unload = post(&mock, "/v1/unload_lora_adapter", json!({"lora_name": "sql"})).await;
        assert_eq!(unload.status, 200);
        assert_eq!(unload.text(), "Success: LoRA adapter 'sql' removed successfully.");
        assert_eq!(mock.models(), ["echo"]);
        let gone = post(&mock, "/v1/unload_lora_adapter", json!({"lora_name": "sql"})).await;
        assert_eq!(gone.status, 404);
        assert_eq!(
            gone.json(),
            json!({"error": {"message": "The lora adapter 'sql' cannot be found.", "type": "NotFoundError", "param": null, "code": 404}})
        );
        let chat = post(&mock, "/v1/chat/completions", json!({"model": "sql", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(chat.status, 404);

        // The API key guards them like every /v1 route.
        let guarded = MockServer::builder().api_key("k").start().await.unwrap();
        let got = post(&guarded, "/v1/load_lora_adapter", load).await;
        assert_eq!(got.status, 401);
    })
    .await;
}

/// The value of the Prometheus series `series`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_http_answers() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let metrics = || async { raw(mock.addr(), "GET", "/metrics", None).await };
        let first = metrics().await;
        assert_eq!(first.status, 200);
        assert_eq!(
            first.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = first.text();
        for line in [
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            "vllm:request_success_total{model_name=\"echo\",engine=\"0\",finished_reason=\"stop\"} 0.0",
            "vllm:request_success_total{model_name=\"echo\",engine=\"0\",finished_reason=\"length\"} 0.0",
            "vllm:num_requests_running{model_name=\"echo\",engine=\"0\"} 0.0",
            "vllm:prompt_tokens_total{model_name=\"echo\",engine=\"0\"} 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }

        post(&mock, "/v1/completions", json!({"prompt": "one two three", "max_tokens": 2})).await;
        post(&mock, "/v1/embeddings", json!({"input": "hello world"})).await;
        post(&mock, "/v1/chat/completions", json!({"messages": "not a list"})).await;
        raw(mock.addr(), "GET", "/nowhere", None).await;
        post(&mock, "/v1/load_lora_adapter", json!({"lora_name": "a", "lora_path": "/a"})).await;
        post(&mock, "/rerank", json!({"model": "a", "query": "q", "documents": ["d"]})).await;

        let text = metrics().await.text();
        let success = |reason: &str| {
            metric(
                &text,
                &format!("vllm:request_success_total{{model_name=\"echo\",engine=\"0\",finished_reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(success("length"), 1.0);
        assert_eq!(success("stop"), 2.0, "the embedding and the rerank (of the adapter)");
        assert_eq!(
            metric(&text, "vllm:prompt_tokens_total{model_name=\"echo\",engine=\"0\"}"),
            3.0 + 2.0 + 2.0
        );
        assert_eq!(
            metric(&text, "vllm:generation_tokens_total{model_name=\"echo\",engine=\"0\"}"),
            2.0
        );
        let http = |handler: &str, status: &str| {
            let method = if handler == "none" { "GET" } else { "POST" };
            metric(
                &text,
                &format!("http_requests_total{{handler=\"{handler}\",method=\"{method}\",status=\"{status}\"}}"),
            )
        };
        assert_eq!(http("/v1/completions", "2xx"), 1.0);
        assert_eq!(http("/v1/chat/completions", "4xx"), 1.0);
        assert_eq!(http("none", "4xx"), 1.0);
        assert_eq!(http("/rerank", "2xx"), 1.0);
        assert!(!text.contains("handler=\"/metrics\""));
    })
    .await;
}

#[tokio::test]
async fn transcriptions_parse_the_upload_and_answer_whole_or_streamed() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let audio = vec![7u8; 40_000];
        let (content_type, body) = multipart(
            &[("model", "echo"), ("language", "en"), ("temperature", "0.2")],
            Some(("talk.wav", &audio)),
        );
        let got = raw_bytes(mock.addr(), "/v1/audio/transcriptions", &content_type, &body).await;
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(
            got.json(),
            json!({"text": "Transcript of talk.wav (40000 bytes).", "usage": {"type": "duration", "seconds": 2}})
        );
        assert_eq!(mock.requests()[0].json, None);

        // Streamed: a delta per token, the finish on the last, usage when asked, [DONE].
        let (content_type, body) = multipart(
            &[("model", "echo"), ("stream", "true"), ("stream_include_usage", "true")],
            Some(("a.wav", b"abc")),
        );
        let got = raw_bytes(mock.addr(), "/v1/audio/transcriptions", &content_type, &body).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-type"), Some("text/event-stream; charset=utf-8"));
        let events = got.events();
        let text = "Transcript of a.wav (3 bytes).";
        let pieces = tokenizer::pieces(text);
        assert_eq!(events.len(), pieces.len() + 2);
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let first = &chunks[0];
        assert!(first["id"].as_str().unwrap().starts_with("trsc-"));
        assert_eq!(first["object"], "transcription.chunk");
        assert_eq!(first["model"], "echo");
        assert_eq!(first["choices"], json!([{"delta": {"content": "Transcript"}}]));
        let last = &chunks[pieces.len() - 1];
        assert_eq!(
            last["choices"],
            json!([{"delta": {"content": "."}, "finish_reason": "stop", "stop_reason": null}])
        );
        let content: String = chunks[..pieces.len()]
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(content, text);
        let usage = &chunks[pieces.len()];
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], pieces.len());
        assert!(chunks.iter().all(|c| c["id"] == first["id"]));

        // The model is optional (the first served), an unknown one is a 404.
        let (content_type, body) = multipart(&[], Some(("a.wav", b"x")));
        let got = raw_bytes(mock.addr(), "/v1/audio/transcriptions", &content_type, &body).await;
        assert_eq!(got.status, 200);
        let (content_type, body) = multipart(&[("model", "whisper")], Some(("a.wav", b"x")));
        let got = raw_bytes(mock.addr(), "/v1/audio/transcriptions", &content_type, &body).await;
        assert_eq!(got.status, 404);

        // A scripted transcript.
        mock.on_model("whisper", Behavior::reply("Hello there."));
        let got = raw_bytes(mock.addr(), "/v1/audio/transcriptions", &content_type, &body).await;
        assert_eq!(got.json()["text"], "Hello there.");
    })
    .await;
}

#[tokio::test]
async fn invalid_transcription_requests_get_vllms_errors() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let post = |content_type: String, body: Vec<u8>| {
            let addr = mock.addr();
            async move { raw_bytes(addr, "/v1/audio/transcriptions", &content_type, &body).await }
        };
        let (content_type, body) = multipart(&[("model", "echo")], None);
        let got = post(content_type, body).await;
        assert_eq!(got.status, 400);
        assert_eq!(got.error().param(), Some("body.file"));
        // vLLM's handler shows every input as its `str` (`'None'`), as the chat captures
        // in `validation/` show for other inputs.
        assert_eq!(
            got.error().message(),
            "1 validation error:\n  {'type': 'missing', 'loc': 'body.file', 'msg': 'Field required', 'input': 'None'}"
        );

        let (content_type, body) = multipart(&[("file", "not a file")], None);
        let got = post(content_type, body).await;
        assert_eq!(got.status, 400);
        assert_eq!(got.error().param(), Some("body.file"));

        let got = post("application/json".into(), br#"{"model":"echo"}"#.to_vec()).await;
        assert_eq!(got.status, 400);
        assert_eq!(got.error().param(), Some("body.file"));

        let got = post(
            "multipart/form-data; boundary=xyz".into(),
            b"--xyz\r\nno headers end".to_vec(),
        )
        .await;
        assert_eq!(got.status, 400);
        assert_eq!(got.json(), json!({"detail": "There was an error parsing the body"}));

        for (field, value, param) in [
            ("stream", "maybe", "body.stream"),
            ("temperature", "warm", "body.temperature"),
        ] {
            let (content_type, body) = multipart(&[(field, value)], Some(("a.wav", b"x")));
            let got = post(content_type, body).await;
            assert_eq!(got.status, 400, "{field}");
            assert_eq!(got.error().param(), Some(param));
        }
        let (content_type, body) = multipart(&[("response_format", "srt")], Some(("a.wav", b"x")));
        let got = post(content_type, body).await;
        assert_eq!(got.status, 400);
        assert_eq!(
            got.error().message(),
            "Currently only support response_format `text` or `json`"
        );

        let got = raw(mock.addr(), "GET", "/v1/audio/transcriptions", None).await;
        assert_eq!(got.status, 405);
    })
    .await;
}

#[tokio::test]
async fn models_health_version_and_metrics_are_scriptable() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.enqueue(Behavior::error(503, "down").for_path("/health"));
        mock.enqueue(Behavior::raw_error(500, "text/plain", "no version").for_path("/version"));
        mock.enqueue(Behavior::error(500, "no models").for_path("/v1/models"));
        mock.enqueue(Behavior::error(500, "no metrics").for_path("/metrics"));

        assert_eq!(
            raw(mock.addr(), "GET", "/v1/models", None).await.status,
            500
        );
        assert_eq!(raw(mock.addr(), "GET", "/metrics", None).await.status, 500);
        let version = raw(mock.addr(), "GET", "/version", None).await;
        assert_eq!(
            (version.status, version.text().as_str()),
            (500, "no version")
        );
        let health = raw(mock.addr(), "GET", "/health", None).await;
        assert_eq!(health.status, 503);
        assert_eq!(health.error().message(), "down");
        assert_eq!(mock.queued(), 0);

        // Once answered, they are served again; model scripts do not apply to them.
        mock.on_model("echo", Behavior::error(500, "model script"));
        assert_eq!(raw(mock.addr(), "GET", "/health", None).await.status, 200);
        assert_eq!(
            raw(mock.addr(), "GET", "/v1/models", None).await.status,
            200
        );
        assert_eq!(raw(mock.addr(), "GET", "/version", None).await.status, 200);
        let accepting = raw_with(
            mock.addr(),
            "GET",
            "/metrics",
            &[("accept", "text/plain")],
            None,
        )
        .await;
        assert_eq!(accepting.status, 200);
    })
    .await;
}

#[tokio::test]
async fn tokenize_counts_what_chat_counts_as_prompt_tokens() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let cases = [
            json!({"messages": [{"role": "user", "content": "Hello, world!"}]}),
            json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a  b\n\nc"}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}),
            json!({"messages": [{"role": "user", "content": "weather?"}], "tools": tools}),
            json!({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false}),
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}], "continue_final_message": true}),
            json!({"messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "22 C"},
            ]}),
        ];
        for case in cases {
            let tokens = post(&mock, "/tokenize", case.clone()).await;
            assert_eq!(tokens.status, 200, "{case}: {}", tokens.text());
            let chat = post(&mock, "/v1/chat/completions", case.clone()).await;
            assert_eq!(chat.status, 200, "{case}: {}", chat.text());
            assert_eq!(
                tokens.json()["count"],
                chat.json()["usage"]["prompt_tokens"],
                "{case}"
            );
        }

        let both = json!({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true, "continue_final_message": true});
        for path in ["/tokenize", "/v1/chat/completions"] {
            let got = post(&mock, path, both.clone()).await;
            assert_eq!(got.status, 400, "{path}");
            assert!(
                got.error().message().contains("Cannot set both `continue_final_message` and `add_generation_prompt` to True."),
                "{}",
                got.text()
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_keeps_no_record_still_counts_requests() {
    bounded(async {
        let mock = MockServer::builder()
            .record_requests(false)
            .start()
            .await
            .unwrap();
        mock.on_request(2, Behavior::error(503, "the second one"));
        let body = json!({"model": "echo", "prompt": "hi"});
        assert_eq!(
            post(&mock, "/v1/completions", body.clone()).await.status,
            200
        );
        assert_eq!(
            post(&mock, "/v1/completions", body.clone()).await.status,
            503
        );
        assert_eq!(post(&mock, "/v1/completions", body).await.status, 200);
        assert!(mock.requests().is_empty());
        let score = json!({"model": "echo", "text_1": "a", "text_2": "b"});
        assert_eq!(post(&mock, "/v1/score", score).await.status, 200);
    })
    .await;
}
