//! The pooling endpoints: `/pooling`, `/classify`, `/score`, `/rerank` (and `/v1/rerank`,
//! `/v2/rerank`): vLLM's shapes, deterministic values, vLLM's validation errors.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{RawResponse, bounded, raw, shape};
use vllm_mock::{Behavior, DEFAULT_EMBEDDING_DIMENSIONS, MockServer};

async fn post(mock: &MockServer, path: &str, body: Value) -> RawResponse {
    raw(mock.addr(), "POST", path, Some(&body.to_string())).await
}

async fn ok(mock: &MockServer, path: &str, body: Value) -> Value {
    let got = post(mock, path, body).await;
    assert_eq!(got.status, 200, "{path}: {}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    got.json()
}

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

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

const USAGE: [&str; 5] = [
    "usage",
    "usage.completion_tokens",
    "usage.completion_tokens_details",
    "usage.prompt_tokens",
    "usage.prompt_tokens_details",
];

fn with_usage(members: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = members
        .iter()
        .chain(&USAGE)
        .chain(&["usage.total_tokens"])
        .map(|s| (*s).to_owned())
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn pooling_answers_rows_per_token_or_one_vector_per_input() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = ok(
            &mock,
            "/pooling",
            json!({"model": "echo", "input": ["hello world", "a"]}),
        )
        .await;
        assert_eq!(
            shape(&body),
            with_usage(&[
                "created",
                "data",
                "data[].data",
                "data[].index",
                "data[].object",
                "id",
                "model",
                "object",
            ])
        );
        assert!(body["id"].as_str().unwrap().starts_with("pool-"));
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"][0]["object"], "pooling");
        assert_eq!(body["data"][1]["index"], 1);
        let rows = body["data"][0]["data"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "a row per token");
        assert_eq!(
            rows[0].as_array().unwrap().len(),
            DEFAULT_EMBEDDING_DIMENSIONS
        );
        assert_ne!(rows[0], rows[1]);
        assert_eq!(body["usage"]["prompt_tokens"], 3);
        assert_eq!(body["usage"]["completion_tokens"], 0);
        assert_eq!(body["usage"]["prompt_tokens_details"], Value::Null);

        // `embed` is the vector of /v1/embeddings.
        let pooled = ok(
            &mock,
            "/pooling",
            json!({"input": "hello world", "task": "embed"}),
        )
        .await;
        let embedded = ok(&mock, "/v1/embeddings", json!({"input": "hello world"})).await;
        assert_eq!(pooled["data"][0]["data"], embedded["data"][0]["embedding"]);

        // Token ids: a row per id.
        let ids = ok(
            &mock,
            "/pooling",
            json!({"input": [[1, 2, 3], [4]], "task": "token_embed"}),
        )
        .await;
        assert_eq!(ids["data"][0]["data"].as_array().unwrap().len(), 3);
        assert_eq!(ids["data"][1]["data"].as_array().unwrap().len(), 1);

        // Classification, whole or per token.
        let classify = ok(
            &mock,
            "/pooling",
            json!({"input": "hi there", "task": "classify"}),
        )
        .await;
        let probs = floats(&classify["data"][0]["data"]);
        assert_eq!(probs.len(), 2);
        let classified = ok(&mock, "/classify", json!({"input": "hi there"})).await;
        assert_eq!(probs, floats(&classified["data"][0]["probs"]));
        let tokens = ok(
            &mock,
            "/pooling",
            json!({"input": "hi there", "task": "token_classify"}),
        )
        .await;
        assert_eq!(tokens["data"][0]["data"].as_array().unwrap().len(), 2);

        // Base64: the rows' f32s, one after the other.
        let encoded = ok(
            &mock,
            "/pooling",
            json!({"input": "hello world", "encoding_format": "base64"}),
        )
        .await;
        let bytes = decode_base64(encoded["data"][0]["data"].as_str().unwrap());
        let decoded: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|row| floats(row).into_iter().map(|x| x as f32))
            .collect();
        assert_eq!(decoded, flat);

        // A conversation.
        let chat = ok(
            &mock,
            "/pooling",
            json!({"messages": [{"role": "user", "content": "hi"}], "task": "embed"}),
        )
        .await;
        assert_eq!(chat["data"].as_array().unwrap().len(), 1);
        assert_eq!(chat["usage"]["prompt_tokens"], 6);
    })
    .await;
}

#[tokio::test]
async fn classify_answers_labels_and_probabilities() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let mixed = post(&mock, "/classify", json!({"input": ["good", [1, 2]]})).await;
        assert_eq!(mixed.status, 400, "texts and ids do not mix");
        let body = ok(
            &mock,
            "/classify",
            json!({"model": "echo", "input": ["good", "bad"]}),
        )
        .await;
        assert_eq!(
            shape(&body),
            with_usage(&[
                "created",
                "data",
                "data[].index",
                "data[].label",
                "data[].num_classes",
                "data[].probs",
                "id",
                "model",
                "object",
            ])
        );
        assert!(body["id"].as_str().unwrap().starts_with("classify-"));
        for (i, result) in body["data"].as_array().unwrap().iter().enumerate() {
            assert_eq!(result["index"], i);
            assert_eq!(result["num_classes"], 2);
            let probs = floats(&result["probs"]);
            assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let label = if probs[1] > probs[0] {
                "positive"
            } else {
                "negative"
            };
            assert_eq!(result["label"], label);
        }
        let again = ok(&mock, "/classify", json!({"input": "good"})).await;
        assert_eq!(again["data"][0]["probs"], body["data"][0]["probs"]);
    })
    .await;
}

#[tokio::test]
async fn score_pairs_one_to_many_or_pairwise() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = ok(
            &mock,
            "/score",
            json!({"model": "echo", "text_1": "Paris", "text_2": ["Paris", "Berlin", "Rome"]}),
        )
        .await;
        assert_eq!(
            shape(&body),
            with_usage(&[
                "created",
                "data",
                "data[].index",
                "data[].object",
                "data[].score",
                "id",
                "model",
                "object",
            ])
        );
        assert!(body["id"].as_str().unwrap().starts_with("score-"));
        let scores: Vec<f64> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 3);
        assert_eq!(scores[0], 1.0);
        assert!(
            scores[1..].iter().all(|s| (-1.0..1.0).contains(s)),
            "{scores:?}"
        );
        assert_eq!(body["data"][2]["object"], "score");
        assert_eq!(body["usage"]["prompt_tokens"], 6);

        let pairwise = ok(
            &mock,
            "/score",
            json!({"text_1": ["Paris", "Rome"], "text_2": ["Berlin", "Rome"]}),
        )
        .await;
        assert_eq!(pairwise["data"][0]["score"].as_f64(), Some(scores[1]));
        assert_eq!(pairwise["data"][1]["score"], 1.0);

        // Multimodal content is scored by its text.
        let content = ok(
            &mock,
            "/score",
            json!({"text_1": "Paris", "text_2": {"content": [{"type": "text", "text": "Paris"}]}}),
        )
        .await;
        assert_eq!(content["data"][0]["score"], 1.0);

        for (body, message) in [
            (
                json!({"text_1": ["a", "b"], "text_2": ["a", "b", "c"]}),
                "Input lengths must be either 1:1, 1:N or N:N",
            ),
            (
                json!({"text_1": [], "text_2": ["a"]}),
                "At least one text element must be given",
            ),
            (
                json!({"text_1": "a", "text_2": []}),
                "At least one text_pair element must be given",
            ),
        ] {
            let got = post(&mock, "/score", body.clone()).await;
            assert_eq!(got.status, 400, "{body}");
            assert_eq!(got.error().message(), message);
            assert_eq!(got.error().error_type(), Some("BadRequestError"));
        }
        let missing = post(&mock, "/score", json!({"text_1": "a"})).await;
        assert_eq!(missing.status, 400);
        assert_eq!(missing.error().param(), Some("body.text_2"));
        let mistyped = post(&mock, "/score", json!({"text_1": "a", "text_2": [1]})).await;
        assert_eq!(mistyped.status, 400);
        assert_eq!(mistyped.error().param(), Some("body.text_2"));
    })
    .await;
}

#[tokio::test]
async fn rerank_sorts_by_relevance_on_every_path() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let documents = json!(["Berlin", "Paris", {"content": [{"type": "text", "text": "Rome"}]}]);
        for path in ["/rerank", "/v1/rerank", "/v2/rerank"] {
            let body = ok(
                &mock,
                path,
                json!({"model": "echo", "query": "Paris", "documents": documents}),
            )
            .await;
            assert_eq!(
                shape(&body),
                [
                    "id",
                    "model",
                    "results",
                    "results[].document",
                    "results[].document.multi_modal",
                    "results[].document.multi_modal[].text",
                    "results[].document.multi_modal[].type",
                    "results[].document.text",
                    "results[].index",
                    "results[].relevance_score",
                    "usage",
                    "usage.prompt_tokens",
                    "usage.total_tokens",
                ]
            );
            assert!(body["id"].as_str().unwrap().starts_with("rerank-"));
            let results = body["results"].as_array().unwrap();
            assert_eq!(results.len(), 3);
            assert_eq!(results[0]["index"], 1);
            assert_eq!(results[0]["relevance_score"], 1.0);
            assert_eq!(
                results[0]["document"],
                json!({"text": "Paris", "multi_modal": null})
            );
            let scores: Vec<f64> = results
                .iter()
                .map(|r| r["relevance_score"].as_f64().unwrap())
                .collect();
            assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
            let rome = results.iter().find(|r| r["index"] == 2).unwrap();
            assert_eq!(
                rome["document"],
                json!({"text": null, "multi_modal": [{"type": "text", "text": "Rome"}]})
            );
            assert_eq!(
                body["usage"],
                json!({"prompt_tokens": 6, "total_tokens": 6})
            );
        }

        let top = ok(
            &mock,
            "/rerank",
            json!({"query": "Paris", "documents": documents, "top_n": 1}),
        )
        .await;
        assert_eq!(top["results"].as_array().unwrap().len(), 1);
        assert_eq!(top["results"][0]["index"], 1);
        for top_n in [0, -1, 10] {
            let all = ok(
                &mock,
                "/rerank",
                json!({"query": "Paris", "documents": documents, "top_n": top_n}),
            )
            .await;
            assert_eq!(all["results"].as_array().unwrap().len(), 3, "top_n {top_n}");
        }

        let empty = post(&mock, "/rerank", json!({"query": "q", "documents": []})).await;
        assert_eq!(empty.status, 400);
        assert_eq!(
            empty.error().message(),
            "At least one text_pair element must be given"
        );
        let bad = post(
            &mock,
            "/v1/rerank",
            json!({"query": "q", "documents": ["a", 2]}),
        )
        .await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.error().param(), Some("body.documents.1"));
        let missing = post(&mock, "/v2/rerank", json!({"documents": ["a"]})).await;
        assert_eq!(missing.status, 400);
        assert_eq!(missing.error().param(), Some("body.query"));
    })
    .await;
}

#[tokio::test]
async fn pooling_requests_are_validated_as_vllm_does() {
    bounded(async {
        let mock = MockServer::builder().max_model_len(16).start().await.unwrap();
        for (path, body, status, param) in [
            ("/pooling", json!({"model": "echo"}), 400, Some("body.input")),
            ("/pooling", json!({"input": "x", "task": "dance"}), 400, Some("body.task")),
            ("/pooling", json!({"input": "x", "encoding_format": "bytes"}), 400, Some("body.encoding_format")),
            ("/pooling", json!({"input": []}), 400, Some("input")),
            ("/classify", json!({"model": "nope", "input": "x"}), 404, Some("model")),
            ("/classify", json!({"input": "x", "truncate_prompt_tokens": -2}), 400, Some("body.truncate_prompt_tokens")),
            ("/classify", json!({"input": "x", "truncate_prompt_tokens": 17}), 400, Some("truncate_prompt_tokens")),
            ("/classify", json!({"input": "word ".repeat(20)}), 400, None),
            ("/score", json!({"text_1": "a", "text_2": "b", "truncate_prompt_tokens": "x"}), 400, Some("body.truncate_prompt_tokens")),
            ("/rerank", json!({"query": "a", "documents": ["b"], "top_n": "x"}), 400, Some("body.top_n")),
        ] {
            let got = post(&mock, path, body.clone()).await;
            assert_eq!(got.status, status, "{path} {body}: {}", got.text());
            assert_eq!(got.error().param(), param, "{path} {body}: {}", got.text());
        }
        // Truncation keeps the last tokens, so a long input fits.
        let fits = ok(&mock, "/classify", json!({"input": "word ".repeat(20), "truncate_prompt_tokens": -1})).await;
        assert_eq!(fits["usage"]["prompt_tokens"], 16);
        let long = post(&mock, "/classify", json!({"input": "word ".repeat(20)})).await;
        assert_eq!(
            long.error().message(),
            "This model's maximum context length is 16 tokens. However, you requested 21 tokens in the input for classification. Please reduce the length of the input."
        );
        let err = post(&mock, "/classify", json!({"input": "x", "truncate_prompt_tokens": 17})).await;
        assert_eq!(
            err.error().message(),
            "truncate_prompt_tokens value (17) is greater than max_model_len (16). Please request a smaller truncation size."
        );
    })
    .await;
}

#[tokio::test]
async fn pooling_endpoints_follow_scripts() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        mock.on_model("reranker", Behavior::error(500, "out of memory"));
        let got = post(
            &mock,
            "/v2/rerank",
            json!({"model": "reranker", "query": "q", "documents": ["a"]}),
        )
        .await;
        assert_eq!(got.status, 500);
        assert_eq!(got.error().message(), "out of memory");
        let got = post(
            &mock,
            "/score",
            json!({"model": "reranker", "text_1": "q", "text_2": "a"}),
        )
        .await;
        assert_eq!(got.status, 500);

        mock.enqueue(Behavior::error(429, "slow down").for_path("/classify"));
        let passes = post(&mock, "/pooling", json!({"input": "x"})).await;
        assert_eq!(passes.status, 200);
        let got = post(&mock, "/classify", json!({"input": "x"})).await;
        assert_eq!(got.status, 429);
        assert_eq!(mock.queued(), 0);
    })
    .await;
}
