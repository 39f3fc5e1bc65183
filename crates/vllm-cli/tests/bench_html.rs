//! `vllm-rs bench serve --html-report` as users run it: the binary against a vllm-mock on
//! loopback, the report read back.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use vllm_mock::{MockServer, Timing};

use support::{run, stderr, temp_dir, vllm_rs};

/// A mock that takes a little time per token, so the charts have something to show.
async fn mock() -> MockServer {
    MockServer::builder()
        .timing(
            Timing::default()
                .ttft(Duration::from_millis(20))
                .itl(Duration::from_millis(2)),
        )
        .start()
        .await
        .unwrap()
}

/// Runs `bench serve` against `mock` with `extra` flags, writing the report to `report`;
/// returns the exit code and stderr.
async fn bench(mock: &MockServer, report: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let base = mock.base_url();
    let mut args = vec![
        "bench",
        "serve",
        "--base-url",
        base.as_str(),
        "--backend",
        "openai-chat",
        "--random-input-len",
        "16",
        "--disable-tqdm",
        "--html-report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = run(vllm_rs(&args), None).await;
    (output.status.code(), stderr(&output))
}

/// A well-formed document: one of each outer element, closed, no outside resource.
fn check_self_contained(html: &str) {
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<body>").count(), 1);
    assert_eq!(html.matches("</body>").count(), 1);
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    for outside in ["<script", "<link", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(outside), "the report has {outside:?}");
    }
    assert!(!html.contains("NaN"), "a NaN in the report");
    assert!(html.contains("How to read this"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_writes_a_report_with_every_chart() {
    let mock = mock().await;
    let dir = temp_dir("bench-html-sweep");
    let report = dir.join("out.html");
    let (code, err) = bench(
        &mock,
        &report,
        &[
            "--num-prompts",
            "8",
            "--random-output-len",
            "8",
            "--request-rate",
            "1000,inf",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("report in"), "{err}");
    let html = std::fs::read_to_string(&report).unwrap();
    check_self_contained(&html);
    // 4 CDFs (TTFT, TPOT, ITL, E2EL), tokens/s and in flight for each of the 2 runs, the
    // sweep's curve.
    assert_eq!(html.matches("<svg").count(), 4 + 2 * 2 + 1, "{html}");
    for label in ["rate 1000.0/s", "rate inf"] {
        // In the table, the legends and the captions.
        assert!(html.matches(label).count() >= 3, "{label}");
    }
    for title in [
        "TTFT (time to first token) CDF",
        "TPOT (time per output token) CDF",
        "ITL (inter-token latency, chunk gaps) CDF",
        "E2EL (end-to-end latency) CDF",
        "Output tokens/s: rate inf",
        "In flight: rate 1000.0/s",
        "Latency against output throughput",
    ] {
        assert!(html.contains(title), "{title}");
    }
    assert!(
        html.contains("<td>8</td><td>0</td>"),
        "8 completed, 0 failed"
    );
    assert!(!html.contains("<h2>Errors</h2>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_failed_run_still_writes_a_valid_report() {
    let mock = mock().await;
    let dir = temp_dir("bench-html-failed");
    let report = dir.join("failed.html");
    let (code, err) = bench(
        &mock,
        &report,
        &[
            "--model",
            "nope",
            "--num-prompts",
            "4",
            "--request-rate",
            "inf",
        ],
    )
    .await;
    // No request succeeded: the exit code says so, and the report is written all the same.
    assert_ne!(code, Some(0), "{err}");
    let html = std::fs::read_to_string(&report).unwrap();
    check_self_contained(&html);
    assert_eq!(html.matches("<svg").count(), 0);
    assert!(html.contains("No request succeeded"));
    assert!(html.contains("<h2>Errors</h2>"));
    assert!(html.contains("4 &times; status 404"), "{html}");
    assert!(html.contains("<h1>vllm-rs bench serve: nope</h1>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_make_a_small_report() {
    let mock = MockServer::builder()
        .timing(
            Timing::default()
                .ttft(Duration::from_millis(10))
                .itl(Duration::from_millis(1))
                .max_num_seqs(256),
        )
        .record_requests(false)
        .start()
        .await
        .unwrap();
    let dir = temp_dir("bench-html-large");
    let report = dir.join("large.html");
    let (code, err) = bench(
        &mock,
        &report,
        &[
            "--num-prompts",
            "1000",
            "--random-output-len",
            "32",
            "--request-rate",
            "inf",
            "--max-concurrency",
            "128",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let html = std::fs::read_to_string(&report).unwrap();
    check_self_contained(&html);
    assert_eq!(html.matches("<svg").count(), 4 + 2);
    assert!(html.contains("concurrency 128"));
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    // VLLM_RS_KEEP_REPORT=FILE keeps a copy to look at in a browser.
    if let Some(copy) = std::env::var_os("VLLM_RS_KEEP_REPORT") {
        std::fs::copy(&report, copy).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
