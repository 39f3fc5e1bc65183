//! Through vLLM's router (`vllm-router` from PyPI, `scripts/vllm-router.sh install`) in front
//! of three vllm-mock replicas on loopback: streams pass byte for byte, a session stays on
//! its replica under `consistent_hash`, the router's own errors are typed and retryable, a
//! replica killed in the middle of 10,000 requests costs only retries, and a batch through
//! the router ends with every line once.
//!
//! Runs when `VLLM_ROUTER` is the path of the `vllm-router` executable (as
//! `scripts/ci-router.sh` sets it); otherwise it prints a notice and passes.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Semaphore};
use vllm_client::{ErrorKind, VllmClient};
use vllm_mock::MockServer;

use support::{results, run, start, temp_dir, vllm_rs};

/// One test at a time: each starts its own router, and they share two cores.
static TURNS: Mutex<()> = Mutex::const_new(());

fn router_bin() -> Option<String> {
    match std::env::var("VLLM_ROUTER") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            eprintln!(
                "VLLM_ROUTER is not set: the router tests are skipped (scripts/ci-router.sh runs them)"
            );
            None
        }
    }
}

/// A router on a free loopback port in front of `workers`; killed when dropped.
struct Router {
    child: Child,
    url: String,
}

impl Router {
    async fn start(bin: &str, policy: &str, workers: &[String]) -> Router {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let roots: Vec<&str> = workers.iter().map(|w| w.trim_end_matches("/v1")).collect();
        let mut command = Command::new(bin);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--policy", policy, "--health-check-interval-secs", "1"])
            .arg("--worker-urls")
            .args(&roots)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().expect("vllm-router starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = VllmClient::builder()
            .base_url(format!("{url}/v1"))
            .max_retries(0)
            .build();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client.server.health().await.is_ok_and(|h| h.healthy) {
            assert!(Instant::now() < deadline, "the router did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Router {
            child,
            url: format!("{url}/v1"),
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn replicas(n: usize) -> Vec<Option<MockServer>> {
    let mut mocks = Vec::new();
    for i in 0..n {
        mocks.push(Some(
            MockServer::builder()
                .replica_id(format!("r{i}"))
                .record_requests(false)
                .start()
                .await
                .unwrap(),
        ));
    }
    mocks
}

fn urls(mocks: &[Option<MockServer>]) -> Vec<String> {
    mocks
        .iter()
        .map(|m| m.as_ref().unwrap().base_url())
        .collect()
}

/// The answer's bytes with what each answer makes anew (its id and creation time) blanked.
fn normalized(body: &[u8]) -> String {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("data: ").filter(|d| d.starts_with('{')) {
            Some(data) => {
                let mut value: Value = serde_json::from_str(data.trim_end()).unwrap();
                value["id"] = json!("ID");
                value["created"] = json!(0);
                out.push_str("data: ");
                out.push_str(&serde_json::to_string(&value).unwrap());
                out.push_str(&line[line.trim_end().len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_through_the_router_is_the_replicas_byte_for_byte() {
    let Some(bin) = router_bin() else { return };
    let _turn = TURNS.lock().await;
    let mocks = replicas(3).await;
    let router = Router::start(&bin, "consistent_hash", &urls(&mocks)).await;
    let via = VllmClient::builder().base_url(&router.url).build();
    let body = r#"{"model":"echo","messages":[{"role":"user","content":"one two three four five six seven eight"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}"#;
    let answer = via.post_raw("/v1/chat/completions", body).await.unwrap();
    let replica = answer.headers()["x-replica-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let index: usize = replica[1..].parse().unwrap();
    let direct = VllmClient::new(mocks[index].as_ref().unwrap().base_url())
        .post_raw("/v1/chat/completions", body)
        .await
        .unwrap();
    assert!(answer.body().starts_with(b"data: {"), "{:?}", answer.body());
    assert!(answer.body().ends_with(b"data: [DONE]\n\n"));
    assert_eq!(answer.body().len(), direct.body().len(), "same length");
    assert_eq!(normalized(answer.body()), normalized(direct.body()));
    // The typed stream through the router: every event, the usage, the end.
    let mut stream = via
        .chat
        .completions()
        .create()
        .model("echo")
        .messages(json!([{"role": "user", "content": "alpha beta gamma"}]))
        .session_id("stream-session")
        .send_stream()
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        if let vllm_client::StreamEvent::Content(piece) = event {
            text.push_str(&piece);
        }
    }
    assert_eq!(text, "alpha beta gamma");
    assert!(stream.final_response().unwrap().usage.is_some());
}

/// One chat request; the replica that answered.
async fn ask(client: &VllmClient, session: &str) -> Result<String, vllm_client::VllmError> {
    let response = client
        .chat
        .completions()
        .create()
        .model("echo")
        .messages(json!([{"role": "user", "content": "hello"}]))
        .max_tokens(2)
        .session_id(session)
        .send()
        .await?;
    Ok(response.headers()["x-replica-id"]
        .to_str()
        .unwrap()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stay_put_and_a_killed_replica_costs_only_retries() {
    let Some(bin) = router_bin() else { return };
    let _turn = TURNS.lock().await;
    let mut mocks = replicas(3).await;
    let router = Router::start(&bin, "consistent_hash", &urls(&mocks)).await;
    // The router answers 500 while it still sends to the dead replica (until its next
    // health check, 1 s), then moves its sessions: the client's retries cover that.
    let client = VllmClient::builder()
        .base_url(&router.url)
        .max_retries(6)
        .build();
    const REQUESTS: usize = 10_000;
    const SESSIONS: usize = 300;
    let permits = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::with_capacity(REQUESTS);
    let started = Instant::now();
    for i in 0..REQUESTS {
        if i == REQUESTS / 2 {
            // Replica r1 dies halfway, its connections with it.
            drop(mocks[1].take());
        }
        let permit = permits.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        let session = format!("session-{}", i % SESSIONS);
        tasks.push(tokio::spawn(async move {
            let answered = ask(&client, &session).await;
            drop(permit);
            (i, session, answered)
        }));
    }
    let mut homes: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost = Vec::new();
    for task in tasks {
        let (i, session, answered) = task.await.unwrap();
        match answered {
            Ok(replica) => {
                *spread.entry(replica.clone()).or_default() += 1;
                homes.entry(session).or_default().push((i, replica));
            }
            Err(e) => lost.push(format!("request {i} ({session}): {e}")),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        lost.is_empty(),
        "{} lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    println!(
        "through vllm-router (consistent_hash), {REQUESTS} requests over {SESSIONS} sessions, \
         r1 killed halfway: {spread:?} in {elapsed:.1?}"
    );
    // Affinity: a session never changes replica, except off the killed one (once).
    let mut moved = 0;
    for (session, answers) in &mut homes {
        answers.sort();
        let mut replicas: Vec<&str> = answers.iter().map(|(_, r)| r.as_str()).collect();
        replicas.dedup();
        match replicas.as_slice() {
            [_] => {}
            ["r1", other] if *other != "r1" => moved += 1,
            other => panic!("{session} went to {other:?}"),
        }
    }
    println!("{moved} of {SESSIONS} sessions moved off the killed replica");
    assert!(moved > 0, "no session lived on r1");
    assert!(spread.len() == 3, "{spread:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routers_own_errors_are_typed_and_retryable() {
    let Some(bin) = router_bin() else { return };
    let _turn = TURNS.lock().await;
    let mut mocks = replicas(1).await;
    let router = Router::start(&bin, "consistent_hash", &urls(&mocks)).await;
    let client = VllmClient::builder()
        .base_url(&router.url)
        .max_retries(0)
        .build();
    assert_eq!(ask(&client, "s").await.unwrap(), "r0");
    drop(mocks[0].take());
    // Until its health check notices, the router answers 500 (it could not reach the
    // replica); then 503: no healthy replica. Both are status errors the client retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let err = loop {
        let err = ask(&client, "s").await.unwrap_err();
        seen.push(err.status_code());
        if err.status_code() == Some(503) {
            break err;
        }
        assert!(Instant::now() < deadline, "never 503: {seen:?}");
        assert_eq!(err.status_code(), Some(500), "{err}");
        assert!(err.is_retryable());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(err.kind(), ErrorKind::Status);
    assert!(err.is_retryable(), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("503"), "{shown}");
    assert!(shown.contains("No available workers"), "{shown}");
    assert!(err.request_id().is_some(), "the router's x-request-id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_through_the_router_ends_with_every_line_once() {
    let Some(bin) = router_bin() else { return };
    let _turn = TURNS.lock().await;
    let mut mocks = replicas(3).await;
    let router = Router::start(&bin, "consistent_hash", &urls(&mocks)).await;
    let dir = temp_dir("router-batch");
    let input = dir.join("in.jsonl");
    let output = dir.join("out.jsonl");
    const LINES: usize = 4000;
    let lines: String = (0..LINES)
        .map(|i| {
            format!(
                "{{\"custom_id\":\"req-{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"line {i}\"}}],\"max_tokens\":4}}}}\n"
            )
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    let batch = |extra: &[&str]| {
        let mut args = vec![
            "run-batch",
            "-i",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--base-url",
            &router.url,
            "--max-concurrency",
            "32",
        ];
        args.extend_from_slice(extra);
        vllm_rs(&args)
    };
    let child = start(batch(&[]));
    // Kill a replica once a quarter of the lines are written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while support::line_count(&output) < LINES / 4 {
        assert!(Instant::now() < deadline, "the batch did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(mocks[1].take());
    let first = tokio::time::timeout(support::RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let code = first.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{code:?}: {}",
        support::stderr(&first)
    );
    let after_first = results(&output);
    assert_eq!(after_first.len(), LINES, "every line once, errors included");
    let errors = after_first
        .values()
        .filter(|v| !v["error"].is_null())
        .count();
    println!(
        "batch through the router, r1 killed at {}: {errors} error lines",
        LINES / 4
    );
    // A rerun with --retry-failed does the failed ones again, and only those.
    let second = run(batch(&["--retry-failed"]), None).await;
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        support::stderr(&second)
    );
    let done = results(&output);
    assert_eq!(done.len(), LINES);
    assert!(
        done.values()
            .all(|v| v["error"].is_null() && v["response"]["status_code"] == 200)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
