//! `vllm-rs bench serve`'s result file and table against vLLM 0.32's own (`vllm bench serve`
//! runs captured in `tests/fixtures/vllm-bench/`): the same keys in the same order, the same
//! JSON types, the same table rows; and the run's behaviour around it (sweeps, Ctrl-C,
//! errors, flags).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vllm_mock::{Behavior, MockServer, Timing};

use support::{
    assert_same_shape, fixture, interrupt, run, start, stderr, stdout, temp_dir, vllm_rs_line,
};

/// The table between vLLM's title and closing lines, each row cut to its label.
fn table_labels(text: &str) -> Vec<String> {
    let start = text.find("============ Serving Benchmark Result").unwrap();
    let rest = &text[start..];
    let mut labels = Vec::new();
    for line in rest.lines().skip(1) {
        if line == "=".repeat(50) {
            break;
        }
        // A row: the label padded to 40 columns, a space, the value padded to 10.
        if line.len() >= 51 && !line.starts_with('-') {
            assert_eq!(&line[40..41], " ", "{line:?}");
            assert!(line.len() >= 51, "{line:?}: the value is padded to 10");
            labels.push(line[..40].trim_end().to_owned());
        } else {
            labels.push(line.to_owned());
        }
    }
    labels
}

async fn mock() -> MockServer {
    MockServer::builder()
        .models(["smollm2-135m"])
        .timing(Timing::default().itl(Duration::from_millis(1)))
        .start()
        .await
        .unwrap()
}

/// Runs `vllm-rs bench serve` with `flags` into `dir/name`; returns the file and stdout.
async fn bench(url: &str, dir: &Path, name: &str, flags: &str) -> (String, String) {
    let output = run(
        vllm_rs_line(&format!(
            "bench serve --base-url {url} --model smollm2-135m {flags} \
             --save-result --result-dir {} --result-filename {name}",
            dir.display()
        )),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    (
        std::fs::read_to_string(dir.join(name)).unwrap(),
        stdout(&output),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_file_and_table_have_vllms_shape() {
    let mock = mock().await;
    let url = mock.base_url();
    let dir = temp_dir("bench-result");

    // The flags of the capture chat-random-detailed.
    let (file, out) = bench(
        &url,
        &dir,
        "chat.json",
        "--backend openai-chat --endpoint /v1/chat/completions --dataset-name random \
         --num-prompts 6 --random-input-len 32 --random-output-len 8 --request-rate inf \
         --max-concurrency 2 --seed 1 --save-detailed --percentile-metrics ttft,tpot,itl,e2el \
         --metric-percentiles 50,90,99 --goodput ttft:5000 tpot:500",
    )
    .await;
    assert!(!file.ends_with('\n'), "vLLM writes no line end");
    assert_same_shape(
        &file,
        &fixture("chat-random-detailed.json"),
        "chat, detailed",
    );
    assert_eq!(
        table_labels(&out),
        table_labels(&fixture("chat-random-detailed.stdout.txt")),
        "{out}"
    );
    let result: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(result["completed"], 6);
    assert_eq!(result["request_rate"], "inf");
    assert_eq!(result["backend"], "openai-chat");
    assert_eq!(result["output_lens"], serde_json::json!([8, 8, 8, 8, 8, 8]));
    assert_eq!(
        result["errors"],
        serde_json::json!(["", "", "", "", "", ""])
    );

    // The flags of the capture completions-random-poisson (no --save-detailed).
    let (file, out) = bench(
        &url,
        &dir,
        "completions.json",
        "--backend vllm --endpoint /v1/completions --dataset-name random --num-prompts 6 \
         --random-input-len 32 --random-output-len 8 --request-rate 4 --burstiness 1 --seed 1",
    )
    .await;
    assert_same_shape(
        &file,
        &fixture("completions-random-poisson.json"),
        "completions, poisson",
    );
    assert_eq!(
        table_labels(&out),
        table_labels(&fixture("completions-random-poisson.stdout.txt")),
        "{out}"
    );
    // The rate is the number; the schedule's last arrival is at 6 / 4 = 1.5 s.
    let result: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(result["request_rate"], 4.0);
    assert!(result["duration"].as_f64().unwrap() >= 1.5);

    // --append-result: objects separated by a line end, as vLLM appends them.
    for _ in 0..2 {
        bench(
            &url,
            &dir,
            "append.jsonl",
            "--backend vllm --num-prompts 2 --random-input-len 8 --random-output-len 2 \
             --percentile-metrics e2el --label append-test --append-result",
        )
        .await;
    }
    let appended = std::fs::read_to_string(dir.join("append.jsonl")).unwrap();
    let theirs = fixture("completions-append.jsonl");
    assert_eq!(appended.lines().count(), theirs.lines().count());
    for (ours, theirs) in appended.lines().zip(theirs.lines()) {
        assert_same_shape(ours, theirs, "appended");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_kind_and_the_run_goes_on() {
    let mock = mock().await;
    for _ in 0..2 {
        mock.enqueue(Behavior::error(400, "bad prompt").for_path("/v1/completions"));
    }
    let dir = temp_dir("bench-failures");
    let (file, out) = bench(
        &mock.base_url(),
        &dir,
        "failed.json",
        "--backend vllm --num-prompts 6 --random-input-len 8 --random-output-len 4 \
         --max-concurrency 1 --save-detailed",
    )
    .await;
    let result: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        (result["completed"].as_u64(), result["failed"].as_u64()),
        (Some(4), Some(2))
    );
    let errors: Vec<&str> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // Which two requests met the errors depends on the order the tasks got their turns.
    let failed: Vec<usize> = (0..errors.len())
        .filter(|&i| !errors[i].is_empty())
        .collect();
    assert_eq!(failed.len(), 2, "{errors:?}");
    for i in failed {
        assert!(
            errors[i].contains("400 Bad Request: bad prompt"),
            "{errors:?}"
        );
        assert_eq!(result["output_lens"][i], 0);
    }
    assert_eq!(result["vllm_rs"]["errors_by_kind"]["status 400"], 2);
    assert!(out.contains("Errors, status 400:"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Nothing answers: exit 1, every request counted as failed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let output = run(
        vllm_rs_line(&format!(
            "bench serve --base-url {closed} --model m --backend vllm --dataset-name random \
             --num-prompts 3 --random-input-len 4 --random-output-len 2"
        )),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Errors, connect:"),
        "{}",
        stdout(&output)
    );
}

/// Against a server that stamps each chunk with its send time (`vllm-mock --stamp-events`),
/// the client reports how long the chunks waited for it; against one that does not, nothing.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_chunks_give_the_clients_own_read_lag() {
    let stamped = MockServer::builder()
        .models(["smollm2-135m"])
        .timing(
            Timing::default()
                .itl(Duration::from_millis(1))
                .stamp_events(true),
        )
        .start()
        .await
        .unwrap();
    let plain = mock().await;
    let dir = temp_dir("bench-read-lag");
    for backend in ["openai-chat", "vllm"] {
        let (file, out) = bench(
            &stamped.base_url(),
            &dir,
            "stamped.json",
            &format!(
                "--backend {backend} --num-prompts 5 --random-input-len 8 \
                 --random-output-len 6 --max-concurrency 2 --per-request {}",
                dir.join("stamped.jsonl").display()
            ),
        )
        .await;
        // Each request's own lags, one a chunk.
        let lines = std::fs::read_to_string(dir.join("stamped.jsonl")).unwrap();
        for line in lines.lines() {
            let request: Value = serde_json::from_str(line).unwrap();
            let lags = request["read_lags_s"].as_array().unwrap();
            assert_eq!(
                lags.len() as u64,
                request["chunks"].as_u64().unwrap(),
                "{line}"
            );
            assert!(lags.iter().all(|l| l.as_f64().unwrap() >= 0.0), "{line}");
        }
        let result: Value = serde_json::from_str(&file).unwrap();
        let ours = &result["vllm_rs"];
        let lag = &ours["read_lag_ms"];
        // Every chunk (role, tokens, usage) was stamped and timed.
        assert_eq!(lag["chunks"], ours["chunks"], "{backend}: {ours}");
        assert!(ours["chunks"].as_u64().unwrap() >= 5 * 7, "{ours}");
        let (p50, p99, max) = (
            lag["p50"].as_f64().unwrap(),
            lag["p99"].as_f64().unwrap(),
            lag["max"].as_f64().unwrap(),
        );
        // Read after sent, on one clock: never negative, never longer than the run.
        let run_ms = result["duration"].as_f64().unwrap() * 1e3;
        assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{lag}");
        assert!(max < run_ms, "{lag} in a run of {run_ms} ms");
        assert!(
            out.contains("Read lag (stamped) p50/p99/max (ms):"),
            "{out}"
        );
    }
    // Allowed one core, the benchmark runs on one thread (a current-thread runtime) and says
    // it had one core; the stamps are timed the same.
    let mut pinned = vllm_rs_line(&format!(
        "bench serve --base-url {} --model smollm2-135m --num-prompts 5 --random-input-len 8 \
         --random-output-len 6 --max-concurrency 2 --save-result --result-dir {} \
         --result-filename pinned.json",
        stamped.base_url(),
        dir.display()
    ));
    // SAFETY: between fork and exec only `sched_setaffinity` (async-signal-safe) runs, on a
    // CPU set built before the fork.
    unsafe {
        let mut cpus: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut cpus);
        pinned.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cpus) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = run(pinned, None).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pinned.json")).unwrap()).unwrap();
    assert_eq!(result["completed"], 5);
    assert_eq!(result["vllm_rs"]["client_cores"], 1);
    assert_eq!(
        result["vllm_rs"]["read_lag_ms"]["chunks"],
        result["vllm_rs"]["chunks"]
    );

    let (file, out) = bench(
        &plain.base_url(),
        &dir,
        "plain.json",
        "--backend openai-chat --num-prompts 2 --random-input-len 8 --random-output-len 4",
    )
    .await;
    let result: Value = serde_json::from_str(&file).unwrap();
    assert!(result["vllm_rs"]["read_lag_ms"].is_null(), "{result}");
    assert!(!out.contains("Read lag"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_writes_a_result_per_point() {
    let mock = mock().await;
    let dir = temp_dir("bench-sweep");
    let output = run(
        vllm_rs_line(&format!(
            "bench serve --base-url {} --model smollm2-135m --backend openai-chat \
             --num-prompts 8 --random-input-len 8 --random-output-len 4 \
             --max-concurrency 1,4 --save-result --result-dir {} --per-request {}",
            mock.base_url(),
            dir.display(),
            dir.join("requests.jsonl").display()
        )),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("openai-chat-infqps-concurrency1-smollm2-135m-"),
        "{names:?}"
    );
    assert!(
        names[1].starts_with("openai-chat-infqps-concurrency4-smollm2-135m-"),
        "{names:?}"
    );
    let per_request = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    assert_eq!(per_request.lines().count(), 16);
    let line: Value = serde_json::from_str(per_request.lines().next().unwrap()).unwrap();
    assert_eq!(line["success"], true);
    assert_eq!(line["output_len"], 4);
    assert_eq!(line["itls_s"].as_array().unwrap().len(), 4, "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_reports_what_finished() {
    let mock = MockServer::builder()
        .timing(Timing::default().itl(Duration::from_millis(50)))
        .start()
        .await
        .unwrap();
    let dir = temp_dir("bench-interrupt");
    let child = start(vllm_rs_line(&format!(
        "bench serve --base-url {} --backend vllm --num-prompts 200 --random-input-len 8 \
         --random-output-len 20 --max-concurrency 4 --save-result --result-dir {} \
         --result-filename partial.json",
        mock.base_url(),
        dir.display()
    )));
    // Let some finish (each takes about a second), then interrupt.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    interrupt(&child);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("partial.json")).unwrap()).unwrap();
    let completed = result["completed"].as_u64().unwrap();
    assert!((4..200).contains(&completed), "{completed}");
    assert_eq!(result["vllm_rs"]["interrupted"], true);
    assert!(
        stdout(&output).contains("interrupted"),
        "{}",
        stdout(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_before_anything_is_sent() {
    for (flags, says) in [
        ("--request-rate 0", "--request-rate"),
        ("--request-rate 1,2 --max-concurrency 1,2", "not both"),
        ("--max-concurrency 0", "--max-concurrency"),
        ("--backend openai-audio", "--backend \"openai-audio\""),
        ("--endpoint /v1/files", "--endpoint"),
        ("--percentile-metrics ttft,nope", "unknown metric \"nope\""),
        ("--metric-percentiles 200", "not a percentile"),
        ("--goodput itl:5", "ttft, tpot and e2el"),
        (
            "--dataset-name multi-turn --backend vllm",
            "needs the chat API",
        ),
        ("--num-prompts 0", "--num-prompts"),
        ("--metadata novalue", "KEY=VALUE"),
    ] {
        let output = run(
            vllm_rs_line(&format!(
                "bench serve --base-url http://127.0.0.1:9/v1 {flags}"
            )),
            None,
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flags}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{flags}: {}",
            stderr(&output)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_base_urls_share_the_load() {
    let (a, b) = (mock().await, mock().await);
    let dir = temp_dir("bench-replicas");
    // Both replicas, comma-separated, each spelled as vLLM spells a base URL (no /v1).
    let urls = format!(
        "{},{}",
        a.base_url().trim_end_matches("/v1"),
        b.base_url().trim_end_matches("/v1")
    );
    let (file, _) = bench(
        &urls,
        &dir,
        "replicas.json",
        "--backend openai-chat --endpoint /v1/chat/completions --dataset-name random \
         --num-prompts 60 --random-input-len 8 --random-output-len 4 --max-concurrency 8",
    )
    .await;
    let result: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(result["completed"], 60);
    let chats = |m: &MockServer| {
        m.requests()
            .iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .count()
    };
    let (on_a, on_b) = (chats(&a), chats(&b));
    assert_eq!(on_a + on_b, 60);
    assert!(on_a >= 10 && on_b >= 10, "{on_a} and {on_b}");
    std::fs::remove_dir_all(&dir).unwrap();
}
