//! `send()`, the request body, configuration, errors, retries and timeouts, against a local
//! scripted server.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Reply, Server, bounded, fixture_http};
use vllm_client::types::{Message, Tool, ToolChoice};
use vllm_client::{TimeoutKind, VllmClient, VllmError, json};

fn replay(rel: &str) -> Reply {
    let (status, body) = fixture_http(rel);
    Reply::json(status, &body)
}

#[tokio::test]
async fn send_returns_every_field_of_the_seed() {
    bounded(async {
        let server = Server::always(replay("vllm-0.32-cpu/think/chat.http")).await;
        let client = VllmClient::new(&server.base_url);
        let response = client
            .chat
            .completions()
            .create()
            .model("smollm2-135m")
            .messages(json!([{"role": "user", "content": "What is the capital of France?"}]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.id, "chatcmpl-8c07889710a764cd");
        assert_eq!(response.object, "chat.completion");
        assert_eq!(response.model, "smollm2-135m");
        assert_eq!(response.content.as_deref(), Some(" in one sentence."));
        assert_eq!(response.reasoning_content.as_deref(), Some("\nThe capital of France"));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.tool_calls, None);
        assert!(!response.has_tool_calls());
        let usage = response.usage.as_ref().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (34, 11, 45));
        assert_eq!(usage.reasoning_tokens(), Some(5));
        assert_eq!(response.raw["system_fingerprint"], "vllm-0.32.0-67e5bc80");
        assert_eq!(response.raw["choices"][0]["stop_reason"], json!(null));
        assert_eq!(response.completion().choices.len(), 1);
        // What was sent: the path, the JSON, nothing unset, no stream flags.
        let request = &server.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(request.header("user-agent").unwrap().starts_with("vllm-client/"));
        assert_eq!(
            request.json(),
            json!({"model": "smollm2-135m", "messages": [{"role": "user", "content": "What is the capital of France?"}]})
        );
    })
    .await;
}

#[tokio::test]
async fn reasoning_content_comes_from_either_name() {
    bounded(async {
        let server = Server::always(replay("llama-server/chat.http")).await;
        let response = VllmClient::new(&server.base_url)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.reasoning_content.as_deref(),
            Some("\nThe answer is \"")
        );
    })
    .await;
}

#[tokio::test]
async fn tool_calls_parse_and_the_next_turn_is_built_from_them() {
    bounded(async {
        let server = Server::always(replay("vllm-0.32-cpu/think/tools.http")).await;
        let client = VllmClient::new(&server.base_url);
        let tools = vec![
            Tool::function("get_weather", "Get the weather", json!({"type": "object"})).strict(),
        ];
        let response = client
            .chat
            .completions()
            .create()
            .model("smollm2-135m")
            .messages(vec![Message::user("What is the weather in Paris?")])
            .tools(&tools)
            .tool_choice(ToolChoice::required())
            .send()
            .await
            .unwrap();
        assert!(response.has_tool_calls());
        let call = response.first_tool_call().unwrap();
        assert!(call.id.starts_with("chatcmpl-tool-"));
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.parse_args().unwrap(),
            json!({"city": "Paris", "unit": "celsius"})
        );
        #[derive(serde::Deserialize)]
        struct Args {
            city: String,
        }
        assert_eq!(call.parse_args_as::<Args>().unwrap().city, "Paris");
        assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));

        let assistant = response.assistant_message();
        assert_eq!(assistant["role"], "assistant");
        assert_eq!(assistant["tool_calls"][0]["id"], call.id.as_str());
        assert_eq!(
            assistant["tool_calls"][0]["function"]["arguments"],
            call.arguments.as_str()
        );
        let history = json!([
            {"role": "user", "content": "What is the weather in Paris?"},
            assistant,
            call.result("22 C and sunny"),
        ]);
        let body = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(&history)
            .build_body()
            .unwrap();
        assert_eq!(
            body["messages"][2],
            json!({"role": "tool", "tool_call_id": call.id, "content": "22 C and sunny"})
        );
        // The typed request the server saw.
        let sent = server.requests()[0].json();
        assert_eq!(sent["tool_choice"], "required");
        assert_eq!(sent["tools"][0]["function"]["strict"], true);
    })
    .await;
}

#[tokio::test]
async fn every_setter_of_the_seed_is_sent_and_extra_wins() {
    let client = VllmClient::new("http://127.0.0.1:9/v1");
    let body = client
        .chat
        .completions()
        .create()
        .model("Qwen/Qwen2.5-72B-Instruct")
        .messages(json!([{"role": "user", "content": "Hello!"}]))
        .temperature(0.7)
        .max_tokens(1024)
        .top_p(0.9)
        .top_k(50)
        .stop(json!(["END", "STOP", "\n\n"]))
        .tools(json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]))
        .tool_choice(json!({"type": "function", "function": {"name": "f"}}))
        .stream(true)
        .min_p(0.05)
        .repetition_penalty(1.1)
        .seed(42)
        .n(2)
        .presence_penalty(0.5)
        .frequency_penalty(-0.5)
        .logprobs(true)
        .top_logprobs(3)
        .response_format(json!({"type": "json_object"}))
        .extra(json!({"chat_template_kwargs": {"think_mode": true}, "reasoning_effort": "high", "top_k": 7}))
        .build_body()
        .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "Qwen/Qwen2.5-72B-Instruct",
            "messages": [{"role": "user", "content": "Hello!"}],
            "temperature": 0.7, "max_tokens": 1024, "top_p": 0.9, "top_k": 7,
            "stop": ["END", "STOP", "\n\n"],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "stream": true, "min_p": 0.05, "repetition_penalty": 1.1, "seed": 42, "n": 2,
            "presence_penalty": 0.5, "frequency_penalty": -0.5, "logprobs": true, "top_logprobs": 3,
            "response_format": {"type": "json_object"},
            "chat_template_kwargs": {"think_mode": true}, "reasoning_effort": "high"
        })
    );
    // A single stop sequence, as in the seed.
    let body = client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([]))
        .stop(json!("---"))
        .build_body()
        .unwrap();
    assert_eq!(body["stop"], "---");
}

#[test]
fn the_builder_holds_a_typed_request_and_extra_is_merged_last() {
    use vllm_client::types::{Message, Role, Stop, ToolChoice};
    let client = VllmClient::new("http://127.0.0.1:9/v1");
    let builder = client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}], "x-member": 1}
        ]))
        .stop("END")
        .tool_choice(json!("required"))
        .temperature(0.1)
        .extra(json!({"temperature": 0.9, "kv_transfer_params": {"a": 1}}));
    let request = builder.request();
    assert_eq!(request.model.as_deref(), Some("m"));
    assert_eq!(request.messages.len(), 2);
    assert_eq!(request.messages[0], Message::system("Be terse."));
    assert_eq!(request.messages[1].role, Role::User);
    assert_eq!(
        request.messages[1].extra["x-member"], 1,
        "unknown members are kept"
    );
    assert_eq!(request.stop, Some(Stop::One("END".into())));
    assert_eq!(request.tool_choice, Some(ToolChoice::required()));
    assert_eq!(request.temperature, Some(0.1));
    // The body: the typed request, then `extra` (which wins), nothing unset.
    let body = builder.build_body().unwrap();
    assert_eq!(body["temperature"], 0.9);
    assert_eq!(body["kv_transfer_params"], json!({"a": 1}));
    assert_eq!(body["messages"][1]["x-member"], 1);
    assert_eq!(body["messages"][1]["content"][0]["text"], "Hi");
    assert!(body.get("top_p").is_none() && body.get("stream").is_none());
    // A required member may come from `extra`.
    let body = client
        .chat
        .completions()
        .create()
        .extra(json!({"model": "from-extra", "messages": []}))
        .build_body()
        .unwrap();
    assert_eq!(body["model"], "from-extra");
}

#[tokio::test]
async fn invalid_requests_are_errors_from_send_never_panics_and_nothing_is_sent() {
    bounded(async {
        let server = Server::always(Reply::json(200, "{}")).await;
        let client = VllmClient::new(&server.base_url);
        let cases: Vec<(vllm_client::ChatCompletionBuilder, &str)> = vec![
            (
                client.chat.completions().create().messages(json!([])),
                "`model` is required",
            ),
            (
                client.chat.completions().create().model("m"),
                "`messages` is required",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!([]))
                    .temperature(f32::NAN),
                "`temperature` must be a finite number",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!([]))
                    .extra(json!([1])),
                "`extra` must be a JSON object",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!([{"content": "no role"}])),
                "`messages` is not valid: missing field `role`",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!({"role": "user", "content": "not a list"})),
                "`messages` is not valid",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!([]))
                    .tools(json!([{"type": "function"}])),
                "`tools` is not valid: missing field `function`",
            ),
            (
                client
                    .chat
                    .completions()
                    .create()
                    .model("m")
                    .messages(json!([]))
                    .stop(json!(5)),
                "`stop` is not valid",
            ),
        ];
        for (builder, message) in cases {
            let err = builder.send().await.unwrap_err();
            assert!(err.is_builder(), "{err:?}");
            assert!(
                err.to_string().contains(message),
                "{err} does not say {message}"
            );
        }
        assert!(server.requests().is_empty());
        let err = VllmClient::new("not a url")
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_builder(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn every_server_error_shape_reaches_the_user() {
    bounded(async {
        for (rel, status, message) in [
            ("vllm-0.32-cpu/think/err_unknown_model.http", 404, "The model `no-such-model` does not exist. Valid aliases: smollm2-135m."),
            ("vllm-0.32-cpu/think/extra_ctx_overflow.http", 400, "max_tokens=100000 cannot be greater than max_model_len=4096. Please request fewer output tokens. (parameter=max_tokens, value=100000)"),
            ("vllm-0.32-cpu/think/err_404.http", 404, "Not Found"),
            ("llama-server/err_missing_messages.http", 400, "'messages' is required"),
        ] {
            let server = Server::always(replay(rel)).await;
            let err = VllmClient::new(&server.base_url).chat.completions().create().model("m").messages(json!([])).send().await.unwrap_err();
            assert_eq!(err.status_code(), Some(status), "{rel}");
            // The request, the status, then the server's message.
            let reason = if status == 404 { "Not Found" } else { "Bad Request" };
            assert_eq!(err.to_string(), format!("POST /v1/chat/completions: {status} {reason}: {message}"), "{rel}");
            assert_eq!(err.server_message().as_deref(), Some(message), "{rel}");
            assert!(err.server_error().is_some());
            assert!(!err.is_retryable());
            assert_eq!(err.kind(), vllm_client::ErrorKind::Status);
        }
        let server = Server::always(Reply::json(401, r#"{"error":"Unauthorized"}"#)).await;
        let err = VllmClient::new(&server.base_url).chat.completions().create().model("m").messages(json!([])).send().await.unwrap_err();
        assert_eq!((err.status_code(), err.to_string().as_str()), (Some(401), "POST /v1/chat/completions: 401 Unauthorized: Unauthorized"));
    })
    .await;
}

#[tokio::test]
async fn an_html_502_is_kept_as_text_and_retried() {
    bounded(async {
        let html = "<html><body>502 Bad Gateway</body></html>";
        let server = Server::always(Reply::status_body(502, "text/html", html)).await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .max_retries(1)
            .build();
        let started = Instant::now();
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(502));
        assert_eq!(err.body_text(), Some(html));
        assert!(err.to_string().contains(html), "{err}");
        assert!(err.is_retryable());
        assert_eq!(server.requests().len(), 2, "one retry");
        assert!(started.elapsed() < Duration::from_secs(10));
    })
    .await;
}

#[tokio::test]
async fn a_503_then_200_succeeds() {
    bounded(async {
        let (_, ok) = fixture_http("vllm-0.32-cpu/think/chat.http");
        let server = Server::start(move |_, n| {
            if n == 0 {
                Reply::json(
                    503,
                    r#"{"error":{"message":"busy","type":"ServiceUnavailable","code":503}}"#,
                )
            } else {
                Reply::json(200, &ok)
            }
        })
        .await;
        let response = VllmClient::new(&server.base_url)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.content.as_deref(), Some(" in one sentence."));
        assert_eq!(server.requests().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_429_with_retry_after_1_waits_about_a_second() {
    bounded(async {
        let (_, ok) = fixture_http("vllm-0.32-cpu/think/chat.http");
        let server = Server::start(move |_, n| {
            if n == 0 {
                Reply::with_headers(
                    429,
                    &[("content-type", "application/json"), ("retry-after", "1")],
                    r#"{"error":{"message":"slow down","type":"RateLimit","code":429}}"#,
                )
            } else {
                Reply::json(200, &ok)
            }
        })
        .await;
        let started = Instant::now();
        VllmClient::new(&server.base_url)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "waited only {waited:?}"
        );
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    })
    .await;
}

#[tokio::test]
async fn zero_retries_means_one_attempt() {
    bounded(async {
        let server = Server::always(Reply::json(503, "{}")).await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .max_retries(0)
            .build();
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(503));
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout_and_the_error_says_so() {
    bounded(async {
        let server = Server::always(Reply::json(200, "{}").delayed(Duration::from_secs(3))).await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .timeout(Duration::from_millis(300))
            .max_retries(0)
            .build();
        let started = Instant::now();
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total));
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // For a stream, the same timeout bounds the wait for the head.
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send_stream()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    bounded(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        drop(listener);
        let client = VllmClient::builder().base_url(url).max_retries(1).build();
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(err.status_code(), None);
    })
    .await;
}

#[tokio::test]
async fn the_api_key_is_sent_but_never_shown() {
    bounded(async {
        let server = Server::always(Reply::json(401, r#"{"error":"Unauthorized"}"#)).await;
        let client = VllmClient::new(&server.base_url)
            .with_api_key("sk-secret-123")
            .timeout_secs(30);
        assert_eq!(client.api_key(), Some("sk-secret-123"));
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            server.requests()[0].header("authorization"),
            Some("Bearer sk-secret-123")
        );
        for shown in [
            format!("{client:?}"),
            format!("{err:?}"),
            err.to_string(),
            format!("{:?}", VllmClient::builder().api_key("sk-secret-123")),
        ] {
            assert!(!shown.contains("sk-secret-123"), "{shown}");
        }
    })
    .await;
}

#[tokio::test]
async fn clones_share_one_pool_across_tasks() {
    bounded(async {
        let (_, ok) = fixture_http("vllm-0.32-cpu/think/chat.http");
        let server = Server::always(Reply::json(200, &ok)).await;
        let client = VllmClient::new(&server.base_url);
        for _ in 0..3 {
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    client
                        .chat
                        .completions()
                        .create()
                        .model("m")
                        .messages(json!([]))
                        .send()
                        .await
                        .map(|r| r.id)
                }));
            }
            for task in tasks {
                assert_eq!(task.await.unwrap().unwrap(), "chatcmpl-8c07889710a764cd");
            }
        }
        assert_eq!(server.requests().len(), 12);
        assert!(
            server.connections() <= 4,
            "{} connections for 4 concurrent tasks",
            server.connections()
        );
    })
    .await;
}

#[test]
fn client_is_send_sync_clone_and_trims_the_base_url() {
    fn bounds<T: Send + Sync + Clone + 'static>() {}
    bounds::<VllmClient>();
    fn error_bounds<T: Send + Sync + std::error::Error + 'static>() {}
    error_bounds::<VllmError>();
    assert_eq!(
        VllmClient::new("http://localhost:8000/v1/").base_url(),
        "http://localhost:8000/v1"
    );
    let client = VllmClient::builder()
        .base_url("http://h:1/v1")
        .api_key("k")
        .timeout_secs(300)
        .build();
    assert_eq!(
        (client.base_url(), client.api_key()),
        ("http://h:1/v1", Some("k"))
    );
}

#[tokio::test]
async fn legacy_completions_send_with_extra() {
    bounded(async {
        let server = Server::always(replay("vllm-0.32-cpu/nothink/completions.http")).await;
        let client = VllmClient::new(&server.base_url);
        let response = client
            .completions
            .create()
            .model("smollm2-135m")
            .prompt("The capital of France is")
            .max_tokens(16)
            .temperature(0.0)
            .extra(json!({"ignore_eos": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text, " Paris.\n\nThe answer is: 2018-01");
        assert_eq!(response.finish_reason.as_deref(), Some("length"));
        assert_eq!(response.usage.unwrap().completion_tokens, 16);
        let sent = server.requests()[0].json();
        assert_eq!(sent, json!({"model": "smollm2-135m", "prompt": "The capital of France is", "max_tokens": 16, "temperature": 0.0, "ignore_eos": true}));
        assert_eq!(server.requests()[0].path, "/v1/completions");
    })
    .await;
}
