//! Every endpoint of the facade's `api` module, and the `max_tokens` clamp, against
//! `vllm_mock::MockServer` (a vLLM-compatible server with a deterministic model).
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use vllm_client::{StreamEvent, Value, VllmClient, VllmError, json};
use vllm_mock::{
    Behavior, DEFAULT_EMBEDDING_DIMENSIONS, DEFAULT_MAX_MODEL_LEN, MockServer, VLLM_VERSION,
    tokenizer,
};

/// Runs `f`, failing the test if it takes more than 20 seconds.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test took more than 20 seconds")
}

/// A mock and a client for it that does not retry (so scripted errors reach the test).
async fn setup() -> (MockServer, VllmClient) {
    let mock = MockServer::start().await.unwrap();
    let client = VllmClient::builder()
        .base_url(mock.base_url())
        .max_retries(0)
        .build();
    (mock, client)
}

/// The JSON body of the last request the mock received to `path`.
fn last_body(mock: &MockServer, path: &str) -> Value {
    mock.requests()
        .into_iter()
        .rev()
        .find(|r| r.path == path)
        .and_then(|r| r.json)
        .unwrap_or_else(|| panic!("no JSON request to {path}"))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The value of a Prometheus series (the line starting with `series`), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn models_list_then_a_lora_adapter_comes_and_goes() {
    bounded(async {
        let (mock, client) = setup().await;
        let models = client.models.list().send().await.unwrap();
        assert_eq!(models.object, "list");
        let echo = models.get("echo").unwrap();
        assert_eq!(echo.root.as_deref(), Some("echo"));
        assert_eq!(echo.parent, None);
        assert_eq!(echo.max_model_len, Some(DEFAULT_MAX_MODEL_LEN));
        assert_eq!(echo.owned_by.as_deref(), Some("vllm"));

        let loaded = client
            .lora
            .load()
            .lora_name("sql-lora")
            .lora_path("/adapters/sql")
            .send()
            .await
            .unwrap();
        assert_eq!(
            loaded,
            "Success: LoRA adapter 'sql-lora' added successfully."
        );
        assert_eq!(mock.models(), ["echo", "sql-lora"]);

        let models = client.models.list().send().await.unwrap();
        let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["echo", "sql-lora"]);
        let adapter = models.get("sql-lora").unwrap();
        assert_eq!(adapter.parent.as_deref(), Some("echo"));
        assert_eq!(adapter.root.as_deref(), Some("/adapters/sql"));
        assert_eq!(adapter.max_model_len, None);

        // The adapter is served as a model.
        let answer = client
            .chat
            .completions()
            .create()
            .model("sql-lora")
            .messages(json!([{"role": "user", "content": "SELECT 1"}]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.model, "sql-lora");
        assert_eq!(answer.content.as_deref(), Some("SELECT 1"));

        // Loading it again is vLLM's 400.
        let err = client
            .lora
            .load()
            .lora_name("sql-lora")
            .lora_path("/adapters/sql")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(400));
        assert_eq!(
            err.server_error().unwrap().error_type(),
            Some("InvalidUserInput")
        );
        assert!(
            err.to_string().starts_with(
                "POST /v1/load_lora_adapter: 400 Bad Request: The lora adapter 'sql-lora' has already been loaded."
            ),
            "{err}"
        );

        let unloaded = client
            .lora
            .unload()
            .lora_name("sql-lora")
            .send()
            .await
            .unwrap();
        assert_eq!(
            unloaded,
            "Success: LoRA adapter 'sql-lora' removed successfully."
        );
        let models = client.models.list().send().await.unwrap();
        assert!(models.get("sql-lora").is_none());
        assert_eq!(models.data.len(), 1);

        let err = client
            .lora
            .unload()
            .lora_name("sql-lora")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(404));
        assert_eq!(
            err.to_string(),
            "POST /v1/unload_lora_adapter: 404 Not Found: The lora adapter 'sql-lora' cannot be found."
        );
        let err = client
            .chat
            .completions()
            .create()
            .model("sql-lora")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(404));

        assert_eq!(
            last_body(&mock, "/v1/load_lora_adapter"),
            json!({"lora_name": "sql-lora", "lora_path": "/adapters/sql"})
        );
    })
    .await;
}

#[tokio::test]
async fn embeddings_of_strings_token_ids_and_messages_in_floats_and_base64() {
    bounded(async {
        let (mock, client) = setup().await;
        let one = client
            .embeddings
            .create()
            .model("echo")
            .input("hello world")
            .send()
            .await
            .unwrap();
        assert_eq!(one.model, "echo");
        assert_eq!(one.vectors.len(), 1);
        assert_eq!(one.vectors[0].len(), DEFAULT_EMBEDDING_DIMENSIONS);
        let norm: f32 = one.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(one.usage.as_ref().unwrap().prompt_tokens, 2);
        assert!(one.response().id.as_deref().unwrap().starts_with("embd-"));

        let many = client
            .embeddings
            .create()
            .model("echo")
            .input(["goodbye", "hello world"])
            .send()
            .await
            .unwrap();
        assert_eq!(many.vectors.len(), 2);
        assert_eq!(
            many.vectors[1], one.vectors[0],
            "the same text, the same vector"
        );
        assert_ne!(many.vectors[0], many.vectors[1]);
        assert_eq!(many.usage.as_ref().unwrap().prompt_tokens, 3);

        let base64 = client
            .embeddings
            .create()
            .model("echo")
            .input(["goodbye", "hello world"])
            .encoding_format("base64")
            .send()
            .await
            .unwrap();
        assert!(base64.response().data[0].embedding.as_base64().is_some());
        assert_eq!(
            base64.vectors, many.vectors,
            "base64 decodes to the same f32s"
        );

        let ids = tokenizer::encode("hello world");
        let tokens = client
            .embeddings
            .create()
            .model("echo")
            .input(&ids)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tokens.usage.as_ref().unwrap().prompt_tokens,
            ids.len() as u32
        );
        let batches = client
            .embeddings
            .create()
            .model("echo")
            .input([&ids[..], &ids[..1]])
            .send()
            .await
            .unwrap();
        assert_eq!(batches.vectors.len(), 2);
        assert_eq!(batches.vectors[0], tokens.vectors[0]);

        let chat = client
            .embeddings
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "hello world"}]))
            .send()
            .await
            .unwrap();
        assert_eq!(chat.vectors.len(), 1);
        // The conversation is rendered through the template (no generation prompt).
        let rendered = "<|im_start|>user\nhello world<|im_end|>\n";
        assert_eq!(
            chat.usage.as_ref().unwrap().prompt_tokens,
            tokenizer::count(rendered)
        );
        assert_eq!(
            last_body(&mock, "/v1/embeddings"),
            json!({"model": "echo", "messages": [{"role": "user", "content": "hello world"}]})
        );

        let short = client
            .embeddings
            .create()
            .model("echo")
            .input("hello world")
            .dimensions(8)
            .send()
            .await
            .unwrap();
        assert_eq!(short.vectors[0].len(), 8);

        let truncated = client
            .embeddings
            .create()
            .model("echo")
            .input("well, hello world")
            .truncate_prompt_tokens(2)
            .send()
            .await
            .unwrap();
        assert_eq!(truncated.usage.as_ref().unwrap().prompt_tokens, 2);
        assert_eq!(
            truncated.vectors[0],
            client
                .embeddings
                .create()
                .model("echo")
                .input(" hello world")
                .send()
                .await
                .unwrap()
                .vectors[0],
            "the last two tokens are kept"
        );
    })
    .await;
}

#[tokio::test]
async fn tokenize_prompt_and_chat_forms_then_detokenize_back() {
    bounded(async {
        let (mock, client) = setup().await;
        let prompt = client
            .tokenizer
            .tokenize()
            .model("echo")
            .prompt("Hello, world!")
            .add_special_tokens(true)
            .return_token_strs(true)
            .send()
            .await
            .unwrap();
        assert_eq!(prompt.tokens, tokenizer::encode("Hello, world!"));
        assert_eq!(prompt.count, Some(4));
        assert_eq!(prompt.max_model_len, Some(DEFAULT_MAX_MODEL_LEN));
        assert_eq!(
            prompt.token_strs.as_deref().unwrap(),
            ["Hello", ",", " world", "!"]
        );
        assert_eq!(
            last_body(&mock, "/tokenize"),
            json!({"model": "echo", "prompt": "Hello, world!", "add_special_tokens": true, "return_token_strs": true})
        );

        let plain = client
            .tokenizer
            .tokenize()
            .model("echo")
            .prompt("Hello, world!")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.token_strs, None);

        let messages = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ]);
        let chat = client
            .tokenizer
            .tokenize()
            .model("echo")
            .messages(&messages)
            .add_special_tokens(false)
            .return_token_strs(true)
            .send()
            .await
            .unwrap();
        let rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(chat.tokens, tokenizer::encode(rendered));
        assert_eq!(chat.token_strs.unwrap().concat(), rendered);
        let without = client
            .tokenizer
            .tokenize()
            .model("echo")
            .messages(&messages)
            .add_generation_prompt(false)
            .send()
            .await
            .unwrap();
        assert_eq!(without.count, Some(chat.count.unwrap() - 3));

        let text = client
            .tokenizer
            .detokenize()
            .model("echo")
            .tokens(prompt.tokens.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(text.text(), "Hello, world!");
        let chat_text = client
            .tokenizer
            .detokenize()
            .model("echo")
            .tokens(chat.tokens)
            .send()
            .await
            .unwrap();
        assert_eq!(chat_text.text(), rendered);

        let err = client
            .tokenizer
            .detokenize()
            .model("echo")
            .tokens([9_999_999])
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(400));
        assert!(err.to_string().contains("9999999"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn pooling_gives_a_vector_per_token_or_per_input() {
    bounded(async {
        let (mock, client) = setup().await;
        let pooled = client
            .pooling
            .pool()
            .model("echo")
            .input(["hello world", "a b c"])
            .send()
            .await
            .unwrap();
        assert_eq!(pooled.object, "list");
        assert!(pooled.id.as_deref().unwrap().starts_with("pool-"));
        assert_eq!(pooled.data.len(), 2);
        assert_eq!(pooled.data[1].index, 1);
        assert_eq!(pooled.data[0].object, "pooling");
        let rows = pooled.data[1].data.as_array().unwrap();
        assert_eq!(rows.len(), 3, "one row per token");
        assert_eq!(
            rows[0].as_array().unwrap().len(),
            DEFAULT_EMBEDDING_DIMENSIONS
        );
        assert_eq!(pooled.usage.unwrap().prompt_tokens, 5);

        let embedded = client
            .pooling
            .pool()
            .model("echo")
            .input("hello world")
            .task("embed")
            .send()
            .await
            .unwrap();
        let vector: Vec<f32> = embedded.data[0]
            .data
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let embedding = client
            .embeddings
            .create()
            .model("echo")
            .input("hello world")
            .send()
            .await
            .unwrap();
        assert_eq!(vector, embedding.vectors[0], "task embed is the embedding");

        let encoded = client
            .pooling
            .pool()
            .model("echo")
            .input("hello world")
            .task("embed")
            .encoding_format("base64")
            .send()
            .await
            .unwrap();
        assert!(encoded.data[0].data.is_string());

        let by_chat = client
            .pooling
            .pool()
            .model("echo")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .task("classify")
            .send()
            .await
            .unwrap();
        let probs = by_chat.data[0].data.as_array().unwrap();
        assert_eq!(probs.len(), 2);

        let err = client
            .pooling
            .pool()
            .model("echo")
            .input("x")
            .task("dance")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(400));
        assert_eq!(
            last_body(&mock, "/pooling"),
            json!({"model": "echo", "input": "x", "task": "dance"})
        );
    })
    .await;
}

#[tokio::test]
async fn classify_gives_probabilities_and_the_likeliest_label() {
    bounded(async {
        let (_mock, client) = setup().await;
        let classified = client
            .pooling
            .classify()
            .model("echo")
            .input(["I love it", "I hate it"])
            .send()
            .await
            .unwrap();
        assert!(classified.id.as_deref().unwrap().starts_with("classify-"));
        assert_eq!(classified.data.len(), 2);
        for (i, result) in classified.data.iter().enumerate() {
            assert_eq!(result.index, i as u32);
            assert_eq!(result.num_classes, Some(2));
            assert_eq!(result.probs.len(), 2);
            assert!((result.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let best = if result.probs[1] > result.probs[0] {
                "positive"
            } else {
                "negative"
            };
            assert_eq!(result.label.as_deref(), Some(best));
        }
        let again = client
            .pooling
            .classify()
            .model("echo")
            .input("I love it")
            .send()
            .await
            .unwrap();
        assert_eq!(again.data[0].probs, classified.data[0].probs);
        assert_eq!(again.usage.unwrap().prompt_tokens, 3);
    })
    .await;
}

#[tokio::test]
async fn score_one_to_many_and_pairwise_is_the_cosine_of_the_embeddings() {
    bounded(async {
        let (_mock, client) = setup().await;
        let scored = client
            .pooling
            .score()
            .model("echo")
            .text_1("The capital of France")
            .text_2(["The capital of France", "Berlin is in Germany"])
            .send()
            .await
            .unwrap();
        assert!(scored.id.as_deref().unwrap().starts_with("score-"));
        assert_eq!(scored.data.len(), 2);
        assert_eq!(scored.data[0].object, "score");
        assert_eq!(scored.data[0].score, 1.0);
        let vectors = client
            .embeddings
            .create()
            .model("echo")
            .input(["The capital of France", "Berlin is in Germany"])
            .send()
            .await
            .unwrap()
            .vectors;
        let expected = cosine(&vectors[0], &vectors[1]);
        assert!((scored.data[1].score - expected).abs() < 1e-9);
        // Each pair: both texts' tokens.
        assert_eq!(scored.usage.unwrap().prompt_tokens, 4 + 4 + 4 + 4);

        let pairwise = client
            .pooling
            .score()
            .model("echo")
            .text_1(["a", "b"])
            .text_2(["a", "c"])
            .send()
            .await
            .unwrap();
        assert_eq!(pairwise.data.len(), 2);
        assert_eq!(pairwise.data[0].score, 1.0);
        assert!(pairwise.data[1].score < 1.0);

        let err = client
            .pooling
            .score()
            .model("echo")
            .text_1(["a", "b"])
            .text_2(["a", "b", "c"])
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(400));
        assert_eq!(
            err.to_string(),
            "POST /score: 400 Bad Request: Input lengths must be either 1:1, 1:N or N:N"
        );
    })
    .await;
}

#[tokio::test]
async fn rerank_on_all_three_paths_sorts_by_relevance_and_keeps_top_n() {
    bounded(async {
        let (mock, client) = setup().await;
        let documents = ["Berlin is in Germany", "Paris", "Rome is in Italy"];
        let responses = [
            client
                .pooling
                .rerank()
                .model("echo")
                .query("Paris")
                .documents(documents)
                .top_n(2)
                .send()
                .await
                .unwrap(),
            client
                .pooling
                .rerank_v1()
                .model("echo")
                .query("Paris")
                .documents(documents)
                .top_n(2)
                .send()
                .await
                .unwrap(),
            client
                .pooling
                .rerank_v2()
                .model("echo")
                .query("Paris")
                .documents(documents)
                .top_n(2)
                .send()
                .await
                .unwrap(),
        ];
        let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/rerank", "/v1/rerank", "/v2/rerank"]);
        for response in &responses {
            assert_eq!(response.model, "echo");
            assert!(response.id.as_deref().unwrap().starts_with("rerank-"));
            assert_eq!(response.results.len(), 2, "top_n");
            assert_eq!(response.results[0].index, 1);
            assert_eq!(response.results[0].relevance_score, 1.0);
            assert_eq!(
                response.results[0].document,
                Some(json!({"text": "Paris", "multi_modal": null}))
            );
            assert!(response.results[0].relevance_score >= response.results[1].relevance_score);
            let index = response.results[1].index as usize;
            assert_eq!(
                response.results[1].document.as_ref().unwrap()["text"],
                documents[index]
            );
            // The query's tokens with each document's.
            let usage = response.usage.as_ref().unwrap();
            assert_eq!(usage.prompt_tokens, 1 + 4 + 1 + 1 + 1 + 4);
            assert_eq!(usage.total_tokens, usage.prompt_tokens);
            assert_eq!(response.results, responses[0].results);
        }

        let all = client
            .pooling
            .rerank()
            .model("echo")
            .query("Paris")
            .documents(documents)
            .send()
            .await
            .unwrap();
        assert_eq!(all.results.len(), 3);
        let scores: Vec<f64> = all.results.iter().map(|r| r.relevance_score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    })
    .await;
}

#[tokio::test]
async fn health_version_and_metrics_that_grow_with_requests() {
    bounded(async {
        let (mock, client) = setup().await;
        let health = client.server.health().await.unwrap();
        assert!(health.healthy);
        assert_eq!(health.status, 200);

        mock.enqueue(Behavior::error(503, "The engine is down.").for_path("/health"));
        let health = client.server.health().await.unwrap();
        assert!(!health.healthy);
        assert_eq!(health.status, 503);

        let version = client.server.version().send().await.unwrap();
        assert_eq!(version.version, VLLM_VERSION);

        let stop =
            r#"vllm:request_success_total{model_name="echo",engine="0",finished_reason="stop"}"#;
        let prompt = r#"vllm:prompt_tokens_total{model_name="echo",engine="0"}"#;
        let generated = r#"vllm:generation_tokens_total{model_name="echo",engine="0"}"#;
        let chats =
            r#"http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"}"#;
        let before = client.server.metrics().send().await.unwrap();
        assert!(
            before.contains("# TYPE vllm:request_success_total counter"),
            "{before}"
        );
        assert_eq!(metric(&before, stop), 0.0);

        let answer = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "Hello, world!"}]))
            .send()
            .await
            .unwrap();
        let usage = answer.usage.unwrap();
        let after = client.server.metrics().send().await.unwrap();
        assert_eq!(metric(&after, stop), 1.0);
        assert_eq!(metric(&after, prompt), f64::from(usage.prompt_tokens));
        assert_eq!(
            metric(&after, generated),
            f64::from(usage.completion_tokens)
        );
        assert_eq!(metric(&after, chats), 1.0);

        client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "one two three"}]))
            .max_tokens(1)
            .send()
            .await
            .unwrap();
        let later = client.server.metrics().send().await.unwrap();
        let length =
            r#"vllm:request_success_total{model_name="echo",engine="0",finished_reason="length"}"#;
        assert_eq!(metric(&later, length), 1.0);
        assert_eq!(metric(&later, chats), 2.0);
    })
    .await;
}

#[tokio::test]
async fn transcriptions_plain_and_streamed() {
    bounded(async {
        let (mock, client) = setup().await;
        let audio = vec![0u8; 64_000];
        let transcription = client
            .audio
            .transcriptions()
            .file("speech.wav", audio.clone())
            .model("echo")
            .language("en")
            .temperature(0.0)
            .send()
            .await
            .unwrap();
        assert_eq!(
            transcription.text,
            "Transcript of speech.wav (64000 bytes)."
        );
        assert_eq!(
            transcription.raw["usage"],
            json!({"type": "duration", "seconds": 2})
        );
        let request = mock.requests().pop().unwrap();
        assert_eq!(request.path, "/v1/audio/transcriptions");
        assert!(
            request
                .header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );

        let mut stream = client
            .audio
            .transcriptions()
            .file("speech.wav", audio)
            .model("echo")
            .send_stream()
            .await
            .unwrap();
        let (mut content, mut pieces, mut finished, mut done) = (String::new(), 0, None, false);
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Content(text) => {
                    content.push_str(&text);
                    pieces += 1;
                }
                StreamEvent::Finished { reason, .. } => finished = Some(reason),
                StreamEvent::Done => done = true,
                StreamEvent::Error(e) => panic!("{e}"),
                _ => {}
            }
        }
        assert_eq!(content, transcription.text);
        assert_eq!(pieces, tokenizer::count(&content), "one delta per token");
        assert_eq!(finished, Some(vllm_client::types::FinishReason::Stop));
        assert!(done);

        // A scripted transcript, streamed.
        mock.on_model("whisper", Behavior::reply("Bonjour tout le monde."));
        let text = client
            .audio
            .transcriptions()
            .file("fr.mp3", vec![1, 2, 3])
            .model("whisper")
            .send_stream()
            .await
            .unwrap()
            .collect_content()
            .await
            .unwrap();
        assert_eq!(text, "Bonjour tout le monde.");
    })
    .await;
}

#[tokio::test]
async fn max_tokens_for_is_exact_and_clamping_keeps_requests_valid() {
    bounded(async {
        let (_mock, client) = setup().await;
        let messages = json!([
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
        ]);
        let left = client.max_tokens_for("echo", &messages).await.unwrap();
        let answer = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(messages.clone())
            .send()
            .await
            .unwrap();
        let prompt_tokens = answer.usage.unwrap().prompt_tokens;
        assert_eq!(left, DEFAULT_MAX_MODEL_LEN - prompt_tokens);

        let clamped = client
            .clamp_max_tokens("echo", &messages, u32::MAX)
            .await
            .unwrap();
        assert_eq!(clamped, left);
        assert_eq!(
            client
                .clamp_max_tokens("echo", &messages, 10)
                .await
                .unwrap(),
            10
        );
        let ok = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(messages.clone())
            .max_tokens(clamped)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.finish_reason.as_deref(), Some("stop"));

        // One more than the room left is accepted, as vLLM 0.32 does: it stops at the end
        // of the context.
        let more = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(messages.clone())
            .max_tokens(clamped + 1)
            .send()
            .await
            .unwrap();
        let usage = more.usage.unwrap();
        assert!(usage.total_tokens <= DEFAULT_MAX_MODEL_LEN, "{usage:?}");

        let err: VllmError = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(messages)
            .max_tokens(100_000)
            .send()
            .await
            .unwrap_err();
        assert!(err.is_status());
        assert_eq!(err.status_code(), Some(400));
        assert!(!err.is_retryable());
        let body = err.server_error().unwrap();
        assert_eq!(body.error_type(), Some("BadRequestError"));
        assert_eq!(body.param(), Some("max_tokens"));
        let message = "max_tokens=100000 cannot be greater than max_model_len=4096. Please \
                       request fewer output tokens. (parameter=max_tokens, value=100000)";
        assert_eq!(err.server_message().as_deref(), Some(message));
        assert_eq!(
            err.to_string(),
            format!("POST /v1/chat/completions: 400 Bad Request: {message}")
        );
    })
    .await;
}

#[tokio::test]
async fn max_tokens_for_follows_the_context_of_a_small_model() {
    bounded(async {
        let mock = MockServer::builder()
            .max_model_len(32)
            .start()
            .await
            .unwrap();
        let client = VllmClient::new(mock.base_url());
        let messages = json!([{"role": "user", "content": "one two three"}]);
        // <|im_start|> user \n one two three <|im_end|> \n <|im_start|> assistant \n
        assert_eq!(
            client.max_tokens_for("echo", &messages).await.unwrap(),
            32 - 11
        );

        let long = json!([{"role": "user", "content": "word ".repeat(40)}]);
        let err = client.max_tokens_for("echo", &long).await.unwrap_err();
        assert!(err.is_builder(), "{err}");
        assert!(err.to_string().contains("leaves no room"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn extra_members_and_params_reach_the_server() {
    bounded(async {
        let (mock, client) = setup().await;
        client
            .embeddings
            .create()
            .model("echo")
            .input("hi")
            .extra(json!({"user": "u-1", "priority": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            last_body(&mock, "/v1/embeddings"),
            json!({"model": "echo", "input": "hi", "user": "u-1", "priority": 3})
        );

        // `extra` wins over a setter.
        let reranked = client
            .pooling
            .rerank_v2()
            .model("echo")
            .query("q")
            .documents(["a", "b", "c"])
            .top_n(2)
            .extra(json!({"top_n": 1, "request_id": "r-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(reranked.results.len(), 1);
        let body = last_body(&mock, "/v2/rerank");
        assert_eq!(body["top_n"], 1);
        assert_eq!(body["request_id"], "r-1");

        client
            .tokenizer
            .tokenize()
            .model("echo")
            .prompt("hi")
            .param("add_special_tokens", false)
            .extra(json!({"return_token_strs": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            last_body(&mock, "/tokenize"),
            json!({"model": "echo", "prompt": "hi", "add_special_tokens": false, "return_token_strs": true})
        );

        client
            .pooling
            .score()
            .model("echo")
            .text_1("a")
            .text_2("b")
            .extra(json!({"truncate_prompt_tokens": -1}))
            .send()
            .await
            .unwrap();
        assert_eq!(last_body(&mock, "/score")["truncate_prompt_tokens"], -1);

        client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .extra(json!({"chat_template_kwargs": {"enable_thinking": false}, "min_p": 0.1}))
            .send()
            .await
            .unwrap();
        let body = last_body(&mock, "/v1/chat/completions");
        assert_eq!(body["chat_template_kwargs"], json!({"enable_thinking": false}));
        assert_eq!(body["min_p"], 0.1);
    })
    .await;
}

#[tokio::test]
async fn scripted_errors_reach_every_endpoint_with_the_servers_message() {
    bounded(async {
        let (mock, client) = setup().await;
        mock.enqueue(Behavior::error(500, "models are gone").for_path("/v1/models"));
        let err = client.models.list().send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(500));
        assert_eq!(
            err.to_string(),
            "GET /v1/models: 500 Internal Server Error: models are gone"
        );

        mock.enqueue(Behavior::error(503, "busy").for_path("/version"));
        let err = client.server.version().send().await.unwrap_err();
        assert_eq!(err.status_code(), Some(503));

        mock.on_model("broken", Behavior::error(500, "the pooler failed"));
        let err = client
            .pooling
            .classify()
            .model("broken")
            .input("x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "POST /classify: 500 Internal Server Error: the pooler failed"
        );
        let err = client
            .audio
            .transcriptions()
            .file("a.wav", vec![0u8; 10])
            .model("broken")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "POST /v1/audio/transcriptions: 500 Internal Server Error: the pooler failed"
        );

        // With retries (the default), a passing 503 is retried.
        let retrying = VllmClient::new(mock.base_url());
        mock.enqueue(
            Behavior::error(503, "warming up")
                .retry_after(0)
                .for_path("/v1/models"),
        );
        assert!(retrying.models.list().send().await.is_ok());
    })
    .await;
}
