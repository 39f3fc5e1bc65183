//! `vllm-rs run-batch` against a real vLLM server: a small batch, run whole and run again
//! after SIGKILL, gives the same answers, and vLLM's errors become error lines.
//!
//! Runs when `VLLM_CONFORMANCE_URL` is the base URL of a vLLM chat server (as
//! `scripts/ci-conformance.sh` starts it: `scripts/vllm-server.sh start PORT chat`); otherwise
//! it prints a notice and passes. `VLLM_CONFORMANCE_EMBED_URL` adds an embeddings batch
//! against the pooling server.
//!
//! Greedy decoding on a CPU is only reproducible when the batch around a request is the same,
//! so the runs here send one request at a time (`--max-concurrency 1`).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::{line_count, results, run, start, stderr, temp_dir, vllm_rs};

const LINES: usize = 16;

/// The tests take turns: a batch killed and rerun must see the same batches on the server
/// as the run it is compared with.
static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn server(variable: &str) -> Option<String> {
    let url = std::env::var(variable)
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        eprintln!("{variable} is not set: skipping the run-batch conformance test");
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_and_rerun_matches_an_uninterrupted_one_on_vllm() {
    let Some(url) = server("VLLM_CONFORMANCE_URL") else {
        return;
    };
    let _turn = TURNS.lock().await;
    let dir = temp_dir("conformance");
    let mut lines: Vec<String> = (0..LINES)
        .map(|i| {
            format!(
                r#"{{"custom_id":"chat-{i}","method":"POST","url":"/v1/chat/completions","body":{{"messages":[{{"role":"user","content":"Name a colour, number {i}."}}],"temperature":0,"max_tokens":8}}}}"#
            )
        })
        .collect();
    lines.push(r#"{"custom_id":"cmpl","method":"POST","url":"/v1/completions","body":{"prompt":"The capital of France is","temperature":0,"max_tokens":6}}"#.into());
    lines.push(r#"{"custom_id":"missing-model","method":"POST","url":"/v1/chat/completions","body":{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}}"#.into());
    lines.push(r#"{"custom_id":"bad-temperature","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"x"}],"temperature":-1}}"#.into());
    let input = dir.join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let input = input.to_str().unwrap().to_owned();
    let total = lines.len();
    let batch = |out: &Path| {
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &url,
            "--max-concurrency",
            "1",
            "--sync-every",
            "1",
        ])
    };

    let whole = dir.join("whole.jsonl");
    let output = run(batch(&whole), None).await;
    // Two lines are vLLM's refusals: the output is complete, with errors.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = results(&whole);
    assert_eq!(expected.len(), total);
    let missing = &expected["missing-model"];
    assert_eq!(missing["response"]["status_code"], 404);
    assert_eq!(missing["error"]["error"]["type"], "NotFoundError");
    let bad = &expected["bad-temperature"];
    assert_eq!(bad["response"]["status_code"], 400);
    assert!(
        bad["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("temperature must be non-negative, got -1.0."),
        "{bad}"
    );
    for i in 0..LINES {
        let line = &expected[&format!("chat-{i}")];
        assert_eq!(line["response"]["status_code"], 200, "{line}");
        assert_eq!(line["response"]["body"]["object"], "chat.completion");
        assert_eq!(line["response"]["body"]["usage"]["completion_tokens"], 8);
    }
    assert_eq!(
        expected["cmpl"]["response"]["body"]["object"],
        "text_completion"
    );

    // Killed once part-way, then run again.
    let out = dir.join("out.jsonl");
    let mut child = start(batch(&out));
    let deadline = tokio::time::Instant::now() + support::RUN_LIMIT;
    while line_count(&out) < LINES / 2 && child.try_wait().unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let killed_at = line_count(&out);
    assert!(killed_at < total, "the run finished before the kill");
    let output = run(batch(&out), None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(results(&out), expected, "killed after {killed_at} lines");
    assert_eq!(line_count(&out), total);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embeddings_score_and_rerank_batch_on_vllm() {
    let Some(url) = server("VLLM_CONFORMANCE_EMBED_URL") else {
        return;
    };
    let _turn = TURNS.lock().await;
    let dir = temp_dir("conformance-embed");
    let input = dir.join("in.jsonl");
    let mut lines: Vec<String> = (0..4)
        .map(|i| {
            format!(
                r#"{{"custom_id":"e-{i}","method":"POST","url":"/v1/embeddings","body":{{"input":"sentence {i}"}}}}"#
            )
        })
        .collect();
    lines.push(r#"{"custom_id":"score","method":"POST","url":"/v1/score","body":{"text_1":"a cat","text_2":["a dog","a car"]}}"#.into());
    lines.push(r#"{"custom_id":"rerank","method":"POST","url":"/v1/rerank","body":{"query":"a cat","documents":["a dog","a car"]}}"#.into());
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = dir.join("out.jsonl");
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &url,
        ]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results = results(&out);
    assert_eq!(results.len(), 6);
    for i in 0..4 {
        let line = &results[&format!("e-{i}")];
        let vector = &line["response"]["body"]["data"][0]["embedding"];
        assert!(vector.as_array().is_some_and(|v| !v.is_empty()), "{line}");
    }
    let scores = &results["score"]["response"]["body"]["data"];
    assert_eq!(scores.as_array().map(Vec::len), Some(2), "{scores}");
    assert!(scores[0]["score"].is_f64());
    let ranked = &results["rerank"]["response"]["body"]["results"];
    assert_eq!(ranked.as_array().map(Vec::len), Some(2), "{ranked}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `vllm-rs bench serve` against vLLM writes the result file vLLM's own `bench serve` writes
/// (the capture `chat-random-detailed.json` was made with the same flags against the same
/// server): the same keys, order and JSON types, which is what vLLM's sweep and plotting
/// tools read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_serve_on_vllm_writes_vllms_result_file() {
    let Some(url) = server("VLLM_CONFORMANCE_URL") else {
        return;
    };
    let _turn = TURNS.lock().await;
    let dir = temp_dir("conformance-bench");
    let output = run(
        support::vllm_rs_line(&format!(
            "bench serve --base-url {url} --backend openai-chat --endpoint /v1/chat/completions \
             --dataset-name random --num-prompts 6 --random-input-len 32 --random-output-len 8 \
             --request-rate inf --max-concurrency 2 --seed 1 --save-result --save-detailed \
             --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99 \
             --goodput ttft:5000 tpot:500 --scrape-metrics \
             --result-dir {} --result-filename chat.json",
            dir.display()
        )),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let ours = std::fs::read_to_string(dir.join("chat.json")).unwrap();
    support::assert_same_shape(
        &ours,
        &support::fixture("chat-random-detailed.json"),
        "against vLLM",
    );
    let result: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(result["completed"], 6, "{result}");
    // Exact prompt lengths through vLLM's /tokenize: 32 tokens, plus the chat template's.
    let lens = result["input_lens"].as_array().unwrap();
    assert!(lens.iter().all(|l| l == &lens[0]), "{lens:?}");
    assert_eq!(result["output_lens"], serde_json::json!([8, 8, 8, 8, 8, 8]));
    // The server's view from its /metrics, beside the client's.
    let server = &result["vllm_rs"]["server"];
    assert!(server["mean_ttft_ms"].as_f64().unwrap() > 0.0, "{server}");
    assert!(
        server["mean_ttft_ms"].as_f64().unwrap() <= result["mean_ttft_ms"].as_f64().unwrap() + 1.0,
        "the server cannot see a first token later than the client: {server}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
