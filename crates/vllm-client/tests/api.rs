//! The rest of vLLM's API through the facade, against a local scripted server replaying real
//! captures where there are some.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Reply, Server, bounded, fixture_http};
use vllm_client::{VllmClient, json};

fn replay(rel: &str) -> Reply {
    let (status, body) = fixture_http(rel);
    Reply::json(status, &body)
}

#[tokio::test]
async fn models_list() {
    bounded(async {
        let server = Server::always(replay("vllm-0.32-cpu/think/models.http")).await;
        let models = VllmClient::new(&server.base_url)
            .models
            .list()
            .send()
            .await
            .unwrap();
        let m = models.get("smollm2-135m").unwrap();
        assert_eq!(m.max_model_len, Some(4096));
        assert!(m.root.is_some());
        assert_eq!(m.parent, None);
        let request = &server.requests()[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/v1/models")
        );
        assert!(request.body.is_empty());
    })
    .await;
}

#[tokio::test]
async fn tokenize_prompt_and_chat_forms_and_detokenize_at_the_server_root() {
    bounded(async {
        let server = Server::start(|request, _| match request.path.as_str() {
            "/tokenize" if request.json().get("messages").is_some() => {
                replay("vllm-0.32-cpu/think/extra_tokenize_messages.http")
            }
            "/tokenize" => replay("vllm-0.32-cpu/think/tokenize.http"),
            "/detokenize" => replay("vllm-0.32-cpu/think/detokenize.http"),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        let t = client
            .tokenizer
            .tokenize()
            .model("smollm2-135m")
            .prompt("hello world")
            .send()
            .await
            .unwrap();
        assert_eq!(t.tokens, vec![28120, 905]);
        assert_eq!(t.count, Some(2));
        let chat = client
            .tokenizer
            .tokenize()
            .model("smollm2-135m")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .add_generation_prompt(true)
            .send()
            .await
            .unwrap();
        assert_eq!(chat.count, Some(12));
        let text = client
            .tokenizer
            .detokenize()
            .model("smollm2-135m")
            .tokens([1, 2, 3])
            .send()
            .await
            .unwrap();
        assert_eq!(text.text(), "<|im_start|><|im_end|><repo_name>");
        let requests = server.requests();
        assert_eq!(
            requests[0].json(),
            json!({"model": "smollm2-135m", "prompt": "hello world"})
        );
        assert_eq!(requests[1].json()["add_generation_prompt"], true);
        assert_eq!(
            requests[2].json(),
            json!({"model": "smollm2-135m", "tokens": [1, 2, 3]})
        );
    })
    .await;
}

#[tokio::test]
async fn embeddings_float_and_base64_decode_to_the_same_kind_of_vectors() {
    bounded(async {
        let server = Server::always(replay("vllm-0.32-cpu/embed/embeddings.http")).await;
        let client = VllmClient::new(&server.base_url);
        let e = client
            .embeddings
            .create()
            .model("smollm2-135m-embed")
            .input(["hello world", "goodbye"])
            .dimensions(576)
            .normalize(true)
            .truncate_prompt_tokens(-1)
            .send()
            .await
            .unwrap();
        assert_eq!(e.vectors.len(), 2);
        assert_eq!(e.vectors[0].len(), 576);
        assert_eq!(e.vectors[0][0], -0.024_364_749_f32);
        assert_eq!(e.usage.as_ref().unwrap().prompt_tokens, 4);
        let sent = server.requests()[0].json();
        assert_eq!(
            sent,
            json!({"model": "smollm2-135m-embed", "input": ["hello world", "goodbye"], "dimensions": 576, "normalize": true, "truncate_prompt_tokens": -1})
        );

        let server = Server::always(replay("vllm-0.32-cpu/embed/embeddings_base64.http")).await;
        let e = VllmClient::new(&server.base_url)
            .embeddings
            .create()
            .model("smollm2-135m-embed")
            .input("hello")
            .encoding_format("base64")
            .send()
            .await
            .unwrap();
        assert_eq!(e.vectors.len(), 1);
        assert_eq!(e.vectors[0].len(), 576);
        assert_eq!(e.vectors[0][0], -0.012_521_092_f32);
        // A vector of unit length (the pooler normalizes), so the bytes were read as f32 LE.
        let norm: f32 = e.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    })
    .await;
}

#[tokio::test]
async fn a_broken_base64_embedding_is_an_error_not_a_panic() {
    bounded(async {
        let body = r#"{"object":"list","model":"m","data":[{"index":0,"object":"embedding","embedding":"AAA"}]}"#;
        let server = Server::always(Reply::json(200, body)).await;
        let err = VllmClient::new(&server.base_url).embeddings.create().model("m").input("x").send().await.unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn pooling_classify_score_rerank_paths_and_bodies() {
    bounded(async {
        let server = Server::start(|request, _| match request.path.as_str() {
            "/pooling" => Reply::json(200, r#"{"id":"p","object":"list","created":1,"model":"m","data":[{"index":0,"object":"pooling","data":[0.5,0.25]}],"usage":{"prompt_tokens":2,"total_tokens":2}}"#),
            "/classify" => Reply::json(200, r#"{"id":"c","object":"list","created":1,"model":"m","data":[{"index":0,"label":"positive","probs":[0.1,0.9],"num_classes":2}]}"#),
            "/score" => Reply::json(200, r#"{"id":"s","object":"list","created":1,"model":"m","data":[{"index":0,"object":"score","score":0.75}]}"#),
            "/rerank" | "/v1/rerank" | "/v2/rerank" => Reply::json(200, r#"{"id":"r","model":"m","usage":{"total_tokens":7},"results":[{"index":1,"document":{"text":"Paris"},"relevance_score":0.9}]}"#),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        let p = client.pooling.pool().model("m").input("hi").task("embed").send().await.unwrap();
        assert_eq!(p.data[0].data, json!([0.5, 0.25]));
        let c = client.pooling.classify().model("m").input(["great"]).send().await.unwrap();
        assert_eq!(c.data[0].label.as_deref(), Some("positive"));
        let s = client.pooling.score().model("m").text_1("q").text_2(["a", "b"]).send().await.unwrap();
        assert_eq!(s.data[0].score, 0.75);
        let r = client.pooling.rerank().model("m").query("capital of France").documents(["Berlin", "Paris"]).top_n(1).send().await.unwrap();
        assert_eq!(r.results[0].index, 1);
        let r = client.pooling.rerank_v1().model("m").query("q").documents(["a"]).send().await.unwrap();
        assert_eq!(r.results[0].relevance_score, 0.9);
        let r = client.pooling.rerank_v2().model("m").query("q").documents(["a"]).send().await.unwrap();
        assert_eq!(r.results.len(), 1);
        let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, ["/pooling", "/classify", "/score", "/rerank", "/v1/rerank", "/v2/rerank"]);
        assert_eq!(server.requests()[2].json(), json!({"model": "m", "text_1": "q", "text_2": ["a", "b"]}));
        assert_eq!(server.requests()[3].json()["top_n"], 1);
        // Missing required members are errors from send(), nothing is sent.
        let err = client.pooling.score().model("m").text_1("q").send().await.unwrap_err();
        assert!(err.to_string().contains("`text_2` is required"), "{err}");
        assert_eq!(server.requests().len(), 6);
    })
    .await;
}

#[tokio::test]
async fn health_version_metrics() {
    bounded(async {
        let server = Server::start(|request, n| match request.path.as_str() {
            "/health" if n == 0 => Reply::status_body(200, "text/plain", ""),
            "/health" => Reply::json(
                503,
                r#"{"error":{"message":"engine dead","type":"ServiceUnavailable","code":503}}"#,
            ),
            "/version" => Reply::json(200, r#"{"version":"0.32.0"}"#),
            "/metrics" => Reply::status_body(
                200,
                "text/plain; version=0.0.4",
                "# HELP vllm:num_requests_running x\nvllm:num_requests_running 0\n",
            ),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .max_retries(0)
            .build();
        let health = client.server.health().await.unwrap();
        assert!(health.healthy);
        let health = client.server.health().await.unwrap();
        assert_eq!((health.healthy, health.status), (false, 503));
        assert_eq!(
            client.server.version().send().await.unwrap().version,
            "0.32.0"
        );
        assert!(
            client
                .server
                .metrics()
                .send()
                .await
                .unwrap()
                .contains("vllm:num_requests_running 0")
        );
    })
    .await;
}

#[tokio::test]
async fn lora_load_and_unload() {
    bounded(async {
        let server = Server::start(|request, _| {
            let name = request.json()["lora_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match request.path.as_str() {
                "/v1/load_lora_adapter" => Reply::status_body(
                    200,
                    "text/plain",
                    &format!("Success: LoRA adapter '{name}' added successfully."),
                ),
                _ => Reply::status_body(
                    200,
                    "text/plain",
                    &format!("Success: LoRA adapter '{name}' removed successfully."),
                ),
            }
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        let loaded = client
            .lora
            .load()
            .lora_name("sql")
            .lora_path("/adapters/sql")
            .send()
            .await
            .unwrap();
        assert_eq!(loaded, "Success: LoRA adapter 'sql' added successfully.");
        let unloaded = client.lora.unload().lora_name("sql").send().await.unwrap();
        assert!(unloaded.contains("removed"));
        assert_eq!(
            server.requests()[0].json(),
            json!({"lora_name": "sql", "lora_path": "/adapters/sql"})
        );
        let err = client.lora.load().lora_name("x").send().await.unwrap_err();
        assert!(err.is_builder());
    })
    .await;
}

#[tokio::test]
async fn audio_transcriptions_upload_multipart_and_stream() {
    bounded(async {
        let server = Server::start(|request, _| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            if body.contains("name=\"stream\"\r\n\r\ntrue") {
                let sse = concat!(
                    "data: {\"id\":\"t\",\"object\":\"transcription.chunk\",\"created\":1,\"model\":\"whisper\",\"choices\":[{\"delta\":{\"content\":\"hello \"}}]}\n\n",
                    "data: {\"id\":\"t\",\"object\":\"transcription.chunk\",\"created\":1,\"model\":\"whisper\",\"choices\":[{\"delta\":{\"content\":\"world\"},\"finish_reason\":\"stop\"}]}\n\n",
                    "data: [DONE]\n\n"
                );
                Reply::sse(sse.as_bytes(), 0, false)
            } else {
                Reply::json(200, r#"{"text":"hello world","usage":{"type":"duration","seconds":1}}"#)
            }
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        let audio = vec![0u8, 1, 2, 255, b'\r', b'\n'];
        let t = client.audio.transcriptions().file("clip.wav", audio.clone()).model("whisper").language("en")
            .header("x-tenant", "t1").request_id("tr-1").send().await.unwrap();
        assert_eq!(t.text, "hello world");
        let request = &server.requests()[0];
        assert_eq!(request.path, "/v1/audio/transcriptions");
        assert_eq!(request.header("x-tenant"), Some("t1"));
        assert_eq!(request.header("x-request-id"), Some("tr-1"));
        let content_type = request.header("content-type").unwrap();
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        let body = &request.body;
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("name=\"model\"\r\n\r\nwhisper\r\n"), "{text}");
        assert!(text.contains("name=\"language\"\r\n\r\nen\r\n"));
        assert!(text.contains("filename=\"clip.wav\""));
        assert!(body.windows(audio.len()).any(|w| w == audio.as_slice()), "the file bytes are sent as they are");
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));

        let text = client.audio.transcriptions().file("clip.wav", audio).model("whisper").send_stream().await.unwrap().collect_content().await.unwrap();
        assert_eq!(text, "hello world");
        let err = client.audio.transcriptions().model("whisper").send().await.unwrap_err();
        assert!(err.to_string().contains("audio file is required"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn max_tokens_is_clamped_to_the_room_left_in_the_context() {
    bounded(async {
        let server = Server::start(|request, _| match request.path.as_str() {
            "/tokenize" => Reply::json(
                200,
                r#"{"count":4000,"max_model_len":4096,"tokens":[],"token_strs":null}"#,
            ),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        let messages = json!([{"role": "user", "content": "long prompt"}]);
        assert_eq!(client.max_tokens_for("m", &messages).await.unwrap(), 96);
        assert_eq!(
            client.clamp_max_tokens("m", &messages, 1000).await.unwrap(),
            96
        );
        assert_eq!(
            client.clamp_max_tokens("m", &messages, 10).await.unwrap(),
            10
        );
        let sent = server.requests()[0].json();
        assert_eq!(sent["add_generation_prompt"], true);
        assert_eq!(sent["messages"], messages);

        // No context length from /tokenize (llama.cpp): asked of /v1/models.
        let server = Server::start(|request, _| match request.path.as_str() {
            "/tokenize" => Reply::json(200, r#"{"tokens":[1,2,3]}"#),
            "/v1/models" => Reply::json(
                200,
                r#"{"object":"list","data":[{"id":"m","object":"model","max_model_len":3}]}"#,
            ),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let err = VllmClient::new(&server.base_url)
            .max_tokens_for("m", &messages)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("leaves no room"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn post_raw_sends_the_body_as_it_is_to_a_path_from_the_root() {
    bounded(async {
        let server = Server::start(|request, _| {
            if request.path == "/v1/chat/completions" {
                Reply::with_headers(
                    200,
                    &[
                        ("content-type", "application/json"),
                        ("x-request-id", "r-1"),
                    ],
                    r#"{"id":"x", "odd": [1,2]}"#,
                )
            } else {
                Reply::json(
                    404,
                    r#"{"error":{"message":"no route","type":"x","code":404}}"#,
                )
            }
        })
        .await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .header("x-team", "t")
            .build();
        let body = r#"{"model":"m","messages":[],"unknown":{"kept":true}}"#;
        let answer = client.post_raw("/v1/chat/completions", body).await.unwrap();
        assert_eq!(
            &answer.body()[..],
            br#"{"id":"x", "odd": [1,2]}"#,
            "as it came"
        );
        assert_eq!(answer.request_id(), Some("r-1"));
        assert_eq!(answer.json::<serde_json::Value>().unwrap()["odd"][1], 2);
        let sent = &server.requests()[0];
        assert_eq!(sent.body, body.as_bytes(), "as it was given");
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.header("x-team"), Some("t"));
        let err = client.post_raw("/tokenize", "{}").await.unwrap_err();
        assert_eq!(err.to_string(), "POST /tokenize: 404 Not Found: no route");
        assert_eq!(server.requests()[1].path, "/tokenize");
    })
    .await;
}
