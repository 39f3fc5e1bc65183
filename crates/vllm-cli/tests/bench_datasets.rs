//! `vllm-rs bench serve`'s datasets and loads, as the server receives them: exact prompt
//! lengths through the server's tokenizer (and estimates, said so, without one), ShareGPT's
//! filtering and oversampling, custom prompts, shared prefixes, multi-turn history, a run for
//! a duration, and embeddings.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use vllm_mock::{Behavior, MockServer, tokenizer};

use support::{fixture, run, stderr, stdout, temp_dir, vllm_rs_line};

/// Runs a benchmark with `flags` against `mock`; returns the result and stdout.
async fn bench(mock: &MockServer, dir: &Path, flags: &str) -> (Value, String) {
    let output = run(
        vllm_rs_line(&format!(
            "bench serve --base-url {} {flags} --save-result --result-dir {} \
             --result-filename out.json",
            mock.base_url(),
            dir.display()
        )),
        None,
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{flags}: {}",
        stderr(&output)
    );
    let text = std::fs::read_to_string(dir.join("out.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), stdout(&output))
}

/// The prompts the mock received on `path`, in order.
fn prompts(mock: &MockServer, path: &str) -> Vec<Value> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .filter_map(|r| r.json)
        .collect()
}

/// The text of a chat request's last user message (sent as a content part, as vLLM does).
fn last_user_text(request: &Value) -> String {
    let messages = request["messages"].as_array().unwrap();
    let content = &messages.last().unwrap()["content"];
    match content {
        Value::String(text) => text.clone(),
        parts => parts[0]["text"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_prompts_have_exact_lengths_and_ask_for_exact_outputs() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("bench-random");
    let (result, _) = bench(
        &mock,
        &dir,
        "--backend openai-chat --num-prompts 12 --random-input-len 40 --random-output-len 6 \
         --random-range-ratio 0.5 --save-detailed",
    )
    .await;
    let sent = prompts(&mock, "/v1/chat/completions");
    assert_eq!(sent.len(), 12);
    let mut lengths = Vec::new();
    for request in &sent {
        // vLLM's body: a text part, max_completion_tokens, usage in every chunk.
        assert_eq!(request["messages"][0]["content"][0]["type"], "text");
        assert_eq!(request["stream"], true);
        assert_eq!(request["stream_options"]["include_usage"], true);
        // Usage in every chunk only when itl_token asks for it: vLLM's own request otherwise.
        assert!(
            request["stream_options"]
                .get("continuous_usage_stats")
                .is_none()
        );
        assert_eq!(
            request["ignore_eos"], true,
            "random forces ignore_eos, as in vLLM"
        );
        let asked = request["max_completion_tokens"].as_u64().unwrap();
        assert!((3..=9).contains(&asked), "{asked}");
        let length = tokenizer::count(&last_user_text(request)) as u64;
        assert!((20..=60).contains(&length), "{length}");
        lengths.push(length);
    }
    // The lengths vary with the range ratio.
    assert!(lengths.iter().any(|l| *l != lengths[0]), "{lengths:?}");
    // Output tokens are the server's count: exactly what was asked for.
    let asked: Vec<u64> = sent
        .iter()
        .map(|r| r["max_completion_tokens"].as_u64().unwrap())
        .collect();
    let mut got: Vec<u64> = result["output_lens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let mut want = asked.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);

    // Without a range, every prompt is exactly the length asked for, by the server's count.
    mock.clear_requests();
    bench(
        &mock,
        &dir,
        "--backend openai-chat --num-prompts 8 --random-input-len 37 --random-output-len 2",
    )
    .await;
    for request in prompts(&mock, "/v1/chat/completions") {
        assert_eq!(tokenizer::count(&last_user_text(&request)), 37, "{request}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_tokenizer_lengths_are_estimated_and_said_so() {
    let mock = MockServer::start().await.unwrap();
    // The server has no /tokenize.
    mock.enqueue(Behavior::error(404, "Not Found").for_path("/tokenize"));
    let dir = temp_dir("bench-estimated");
    let (result, out) = bench(
        &mock,
        &dir,
        "--backend vllm --num-prompts 3 --random-input-len 50 --random-output-len 2",
    )
    .await;
    assert!(out.contains("input lengths are estimated"), "{out}");
    let notes = result["vllm_rs"]["notes"].to_string();
    assert!(notes.contains("estimated"), "{notes}");
    for request in prompts(&mock, "/v1/completions") {
        let chars = request["prompt"].as_str().unwrap().len();
        assert!(
            (200..260).contains(&chars),
            "{chars} characters for 50 tokens"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharegpt_is_filtered_and_drawn_again_as_vllm_does() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("bench-sharegpt");
    let path = dir.join("sharegpt.json");
    std::fs::write(&path, fixture("sharegpt-tiny.json")).unwrap();
    let (result, out) = bench(
        &mock,
        &dir,
        &format!(
            "--backend openai-chat --dataset-name sharegpt --dataset-path {} --num-prompts 4",
            path.display()
        ),
    )
    .await;
    assert_eq!(result["completed"], 4);
    // The one-turn entry and the 1-token prompt are left out; 3 remain, drawn again to 4.
    assert!(
        out.contains("3 usable conversations, drawn again to make 4"),
        "{out}"
    );
    let texts: Vec<String> = prompts(&mock, "/v1/chat/completions")
        .iter()
        .map(last_user_text)
        .collect();
    assert!(texts.iter().all(|t| t != "Hi"), "{texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| !t.starts_with("Write one short sentence")),
        "{texts:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_prompts_shared_prefixes_and_conversations() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("bench-shapes");

    // custom: the file's prompts, each with --custom-output-len.
    let path = dir.join("prompts.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"alpha beta\"}\n\n{\"prompt\": \"gamma delta\"}\n",
    )
    .unwrap();
    let (result, _) = bench(
        &mock,
        &dir,
        &format!(
            "--backend vllm --dataset-name custom --dataset-path {} --num-prompts 2 \
             --custom-output-len 3",
            path.display()
        ),
    )
    .await;
    assert_eq!(result["completed"], 2);
    let mut sent: Vec<String> = prompts(&mock, "/v1/completions")
        .iter()
        .map(|r| r["prompt"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    assert_eq!(sent, ["alpha beta", "gamma delta"]);
    mock.clear_requests();

    // prefix_repetition: 2 prefixes of 30 tokens, 3 suffixes each.
    let (result, _) = bench(
        &mock,
        &dir,
        "--backend vllm --dataset-name prefix_repetition --num-prompts 6 \
         --prefix-repetition-num-prefixes 2 --prefix-repetition-prefix-len 30 \
         --prefix-repetition-suffix-len 10 --prefix-repetition-output-len 2",
    )
    .await;
    assert_eq!(result["completed"], 6);
    let mut groups: HashMap<String, usize> = HashMap::new();
    for request in prompts(&mock, "/v1/completions") {
        let prompt = request["prompt"].as_str().unwrap();
        let head: String = prompt.chars().take(60).collect();
        *groups.entry(head).or_default() += 1;
    }
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.values().all(|n| *n == 3), "{groups:?}");
    mock.clear_requests();

    // multi-turn: 2 conversations of 3 turns, each turn carrying the history so far, the
    // server's answers included.
    let (result, _) = bench(
        &mock,
        &dir,
        "--backend openai-chat --dataset-name multi-turn --multi-turn-turns 3 \
         --num-prompts 6 --random-input-len 8 --random-output-len 2 --max-concurrency 2",
    )
    .await;
    assert_eq!(result["completed"], 6);
    let mut by_length: HashMap<usize, usize> = HashMap::new();
    for request in prompts(&mock, "/v1/chat/completions") {
        let messages = request["messages"].as_array().unwrap();
        *by_length.entry(messages.len()).or_default() += 1;
        if messages.len() > 1 {
            assert_eq!(messages[1]["role"], "assistant");
            assert!(!messages[1]["content"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(by_length, HashMap::from([(1, 2), (3, 2), (5, 2)]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_and_embeddings() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("bench-duration");
    let started = std::time::Instant::now();
    let (result, _) = bench(
        &mock,
        &dir,
        "--backend vllm --num-prompts 4 --duration 1 --request-rate 50 \
         --random-input-len 8 --random-output-len 2",
    )
    .await;
    // About 50 arrivals in the second, the 4 prompts reused.
    let completed = result["completed"].as_u64().unwrap();
    assert!((20..=90).contains(&completed), "{completed}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));

    // Embeddings: throughput and latency, in vLLM's pooling result format.
    let (result, out) = bench(
        &mock,
        &dir,
        "--backend openai-embeddings --num-prompts 5 --random-input-len 8",
    )
    .await;
    assert_eq!(result["completed"], 5);
    assert!(result.get("total_input_sequences").is_some(), "{result}");
    assert!(result.get("mean_e2el_ms").is_some(), "{result}");
    assert!(
        result.get("failed").is_none(),
        "vLLM's pooling result has no `failed`"
    );
    assert!(!out.contains("Total generated tokens"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
