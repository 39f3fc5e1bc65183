//! `vllm-rs run-batch` as users run it: the binary against a vllm-mock on loopback.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vllm_mock::{Behavior, MockServer, Timing};

use support::{interrupt, line_count, results, run, start, stderr, stdout, temp_dir, vllm_rs};

/// A greedy chat request line.
fn chat_line(i: usize) -> String {
    format!(
        r#"{{"custom_id":"req-{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"echo","messages":[{{"role":"user","content":"line {i} says hello"}}],"temperature":0,"max_tokens":8}}}}"#
    )
}

fn write_input(dir: &Path, lines: impl IntoIterator<Item = String>) -> String {
    let path = dir.join("in.jsonl");
    let mut text = lines.into_iter().collect::<Vec<_>>().join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn base(mock: &MockServer) -> String {
    mock.base_url()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_writes_vllms_format_and_exits_0() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("small");
    let input = write_input(
        &dir,
        [
            chat_line(1),
            r#"{"custom_id":"cmpl","method":"POST","url":"/v1/completions","body":{"prompt":"Once upon","max_tokens":4}}"#.into(),
            r#"{"custom_id":"emb","method":"POST","url":"/v1/embeddings","body":{"model":"echo","input":"hi"}}"#.into(),
        ],
    );
    let out = dir.join("out.jsonl");
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &base(&mock),
        ]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let all = results(&out);
    assert_eq!(all.len(), 3);
    let chat = &all["req-1"];
    assert_eq!(chat["error"], Value::Null);
    assert_eq!(chat["response"]["status_code"], 200);
    assert_eq!(
        chat["response"]["body"]["choices"][0]["message"]["content"],
        "line 1 says hello"
    );
    assert_eq!(all["emb"]["response"]["body"]["object"], "list");
    // The line without a model got the server's first one, added in front.
    let sent = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/completions")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&sent.body).starts_with(r#"{"model":"echo","prompt""#),
        "{}",
        String::from_utf8_lossy(&sent.body)
    );
    assert!(
        stderr(&output).contains("3 succeeded, 0 failed"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_base_urls_share_the_batch() {
    let (a, b) = (
        MockServer::start().await.unwrap(),
        MockServer::start().await.unwrap(),
    );
    let dir = temp_dir("replicas");
    let input = write_input(&dir, (0..400).map(chat_line));
    let out = dir.join("out.jsonl");
    // Repeated, and separated by a comma: the same.
    for urls in [
        vec![
            "--base-url".to_owned(),
            base(&a),
            "--base-url".to_owned(),
            base(&b),
        ],
        vec![
            "--base-url".to_owned(),
            format!("{},{}", base(&a), base(&b)),
        ],
    ] {
        let _ = std::fs::remove_file(&out);
        a.clear_requests();
        b.clear_requests();
        let mut args = vec!["run-batch", "-i", &input, "-o", out.to_str().unwrap()];
        args.extend(urls.iter().map(String::as_str));
        let output = run(vllm_rs(&args), None).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(results(&out).len(), 400);
        let chats = |m: &MockServer| {
            m.requests()
                .iter()
                .filter(|r| r.path == "/v1/chat/completions")
                .count()
        };
        let (on_a, on_b) = (chats(&a), chats(&b));
        assert_eq!(on_a + on_b, 400);
        assert!(on_a >= 100 && on_b >= 100, "{on_a} and {on_b}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_and_failures_become_lines_and_exit_1() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("errors");
    let input = write_input(
        &dir,
        [
            chat_line(1),
            r#"{"custom_id":"nope","method":"POST","url":"/v1/chat/completions","body":{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}}"#.into(),
        ],
    );
    let out = dir.join("out.jsonl");
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &base(&mock),
        ]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let first = results(&out);
    let nope = &first["nope"];
    assert_eq!(nope["response"]["status_code"], 404);
    assert_eq!(nope["response"]["body"], Value::Null);
    // The server's error body, as vLLM's run-batch writes it.
    assert_eq!(
        nope["error"]["error"]["message"],
        "The model `no-such-model` does not exist. Valid aliases: echo."
    );
    assert_eq!(first["req-1"]["error"], Value::Null);

    // No server at all: every line is a failure line, after the client's retries; no crash.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let out = dir.join("down.jsonl");
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &closed,
        ]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let down = results(&out);
    assert_eq!(down.len(), 2);
    for line in down.values() {
        assert_eq!(line["response"], Value::Null);
        assert_eq!(line["error"]["code"], "connect", "{line}");
        assert!(
            line["error"]["message"]
                .as_str()
                .unwrap()
                .contains("connect"),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every invalid input is refused with `file:line: what`, exit 2, and no connection made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_names_file_and_line_and_sends_nothing() {
    let dir = temp_dir("invalid");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let good = |id: &str| {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/completions","body":{{"prompt":"x"}}}}"#
        )
    };
    let cases: Vec<(usize, String, &str)> = vec![
        (3, "{not json".into(), "not valid JSON"),
        (3, r#"{"method":"POST","url":"/v1/completions","body":{}}"#.into(), "missing `custom_id`"),
        (3, r#"{"custom_id":"x","url":"/v1/completions","body":{}}"#.into(), "missing `method`"),
        (3, r#"{"custom_id":"x","method":"POST","body":{}}"#.into(), "missing `url`"),
        (3, r#"{"custom_id":"x","method":"POST","url":"/v1/completions"}"#.into(), "missing `body`"),
        (3, r#"{"custom_id":"x","method":"POST","url":"/v1/files","body":{}}"#.into(), r#"unsupported url "/v1/files""#),
        (3, r#"{"custom_id":"x","method":"GET","url":"/v1/completions","body":{}}"#.into(), r#"unsupported method "GET""#),
        (3, r#"{"custom_id":7,"method":"POST","url":"/v1/completions","body":{}}"#.into(), "`custom_id` must be a string, not 7"),
        (3, r#"{"custom_id":"x","method":"POST","url":"/v1/completions","body":"hi"}"#.into(), "`body` must be a JSON object"),
        (3, r#"{"custom_id":"x","method":"POST","url":"/v1/completions","body":{"prompt":"x","stream":true}}"#.into(), "`body` asks for a stream"),
    ];
    for (line, text, says) in cases {
        let input = write_input(&dir, [good("a"), good("b"), text.clone(), good("c")]);
        let out = dir.join("out.jsonl");
        for base_url in [Some(url.as_str()), None] {
            let mut args = vec!["run-batch", "-i", &input, "-o", out.to_str().unwrap()];
            if let Some(url) = base_url {
                args.extend(["--base-url", url]);
            }
            let output = run(vllm_rs(&args), None).await;
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{text}: {err}");
            assert!(
                err.contains(&format!("{input}:{line}: {says}")),
                "{text}: {err}"
            );
            assert!(err.contains("nothing was sent"), "{err}");
            // Not even the embedded server was started, and the output was not created.
            assert!(!err.contains("embedded"), "{err}");
            assert!(!out.exists());
        }
    }

    // The issue's own example: line 37 repeats line 12's custom_id.
    let lines: Vec<String> = (1..=40)
        .map(|n| {
            good(&if n == 12 || n == 37 {
                "req-5".to_owned()
            } else {
                format!("id-{n}")
            })
        })
        .collect();
    let input = write_input(&dir, lines);
    let renamed = dir.join("in.jsonl");
    let output = run(
        vllm_rs(&["run-batch", "-i", &input, "-o", "-", "--base-url", &url]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    let expected = format!(
        "{}:37: duplicate custom_id \"req-5\" (first at line 12)",
        renamed.display()
    );
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());

    // Nobody connected, in any of these runs.
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "a connection was made for invalid input"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_invalid_runs_the_rest_and_exits_1() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("skip");
    let input = write_input(
        &dir,
        [chat_line(1), "oops".into(), chat_line(2), chat_line(1)],
    );
    let out = dir.join("out.jsonl");
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &base(&mock),
            "--skip-invalid",
        ]),
        None,
    )
    .await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{input}:2: not valid JSON")), "{err}");
    assert!(
        err.contains(&format!(
            "{input}:4: duplicate custom_id \"req-1\" (first at line 1)"
        )),
        "{err}"
    );
    let ran = results(&out);
    assert_eq!(ran.keys().collect::<Vec<_>>(), ["req-1", "req-2"]);
    assert_eq!(mock.requests().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The issue's crash test: a 10,000-line batch killed with SIGKILL at random points, then run
/// again, ends with every line once, and the same answers as a run never interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_rerun_is_exactly_once_and_identical() {
    const LINES: usize = 10_000;
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("killed");
    let input = write_input(&dir, (0..LINES).map(chat_line));
    let url = base(&mock);
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
            "32",
            "--sync-every",
            "64",
        ])
    };

    let whole = dir.join("whole.jsonl");
    let output = run(batch(&whole), None).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let expected = results(&whole);
    assert_eq!(expected.len(), LINES);

    // Kill twice, at points from the clock, then let it finish.
    let out = dir.join("out.jsonl");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let mut kill_at = [1_000 + nanos % 3_000, 5_000 + (nanos / 7) % 3_000];
    kill_at.sort_unstable();
    let mut killed_with = Vec::new();
    for at in kill_at {
        let mut child = start(batch(&out));
        let deadline = tokio::time::Instant::now() + support::RUN_LIMIT;
        loop {
            if line_count(&out) >= at || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the run did not progress"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        killed_with.push((at, line_count(&out), status));
    }
    let output = run(batch(&out), None).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "after kills {killed_with:?}: {}",
        stderr(&output)
    );
    let resumed = results(&out);
    assert_eq!(resumed.len(), LINES, "after kills {killed_with:?}");
    assert_eq!(line_count(&out), LINES);
    for (id, line) in &expected {
        assert_eq!(
            resumed.get(id),
            Some(line),
            "{id} differs after kills {killed_with:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_repaired_and_rerun() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("torn");
    let input = write_input(&dir, (0..20).map(chat_line));
    let out = dir.join("out.jsonl");
    let url = base(&mock);
    let batch = || {
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &url,
        ])
    };
    let output = run(batch(), None).await;
    assert_eq!(output.status.code(), Some(0));
    let expected = results(&out);

    // Keep 12 lines and half of the 13th, as a crash in the middle of a write leaves it.
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let torn = format!(
        "{}\n{}",
        lines[..12].join("\n"),
        &lines[12][..lines[12].len() / 2]
    );
    std::fs::write(&out, torn).unwrap();
    mock.clear_requests();

    let output = run(batch(), None).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("removed a torn last line"), "{err}");
    assert!(err.contains("12 done by an earlier run"), "{err}");
    assert_eq!(
        mock.requests().len(),
        8,
        "only the 8 missing lines are sent"
    );
    assert_eq!(results(&out), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_runs_the_error_lines_again() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("retry");
    let input = write_input(&dir, (0..10).map(chat_line));
    let out = dir.join("out.jsonl");
    let url = base(&mock);
    let batch = |extra: &[&str]| {
        let mut args = vec![
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &url,
            "--max-concurrency",
            "1",
        ];
        args.extend_from_slice(extra);
        vllm_rs(&args)
    };
    // The first three requests fail (400s are not retried by the client).
    for _ in 0..3 {
        mock.enqueue(Behavior::error(400, "try again later"));
    }
    let output = run(batch(&[]), None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let first = results(&out);
    let failed: Vec<&String> = first
        .iter()
        .filter(|(_, line)| line["error"] != Value::Null)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(failed.len(), 3, "{first:?}");

    // Without --retry-failed, the error lines are results: nothing runs, still exit 1.
    mock.clear_requests();
    let output = run(batch(&[]), None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("nothing to run"),
        "{}",
        stderr(&output)
    );
    assert!(mock.requests().is_empty());

    // With it, exactly the three are sent again, and now succeed.
    let output = run(batch(&["--retry-failed"]), None).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("removed 3 failed lines"), "{err}");
    assert_eq!(mock.requests().len(), 3);
    let second = results(&out);
    assert_eq!(second.len(), 10);
    assert!(second.values().all(|line| line["error"] == Value::Null));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_file_between_runs() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("shards");
    let input = write_input(&dir, (0..200).map(chat_line));
    let url = base(&mock);
    let mut seen = HashSet::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let out = dir.join(format!("out-{}.jsonl", &shard[..1]));
        let output = run(
            vllm_rs(&[
                "run-batch",
                "-i",
                &input,
                "-o",
                out.to_str().unwrap(),
                "--base-url",
                &url,
                "--shard",
                shard,
            ]),
            None,
        )
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let ids = results(&out).into_keys().collect::<Vec<_>>();
        assert!((40..90).contains(&ids.len()), "{shard}: {}", ids.len());
        for id in ids {
            assert!(seen.insert(id), "a line ran in two shards");
        }
    }
    assert_eq!(seen.len(), 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_to_stdout() {
    let mock = MockServer::start().await.unwrap();
    let input = format!("{}\n{}\n", chat_line(1), chat_line(2));
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            "-",
            "-o",
            "-",
            "--base-url",
            &base(&mock),
        ]),
        Some(input.as_bytes()),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 2);
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["response"]["status_code"], 200);
    }

    // Stdin's errors are named `<stdin>`.
    let output = run(
        vllm_rs(&[
            "run-batch",
            "-i",
            "-",
            "-o",
            "-",
            "--base-url",
            &base(&mock),
        ]),
        Some(format!("{}\n[]\n", chat_line(1)).as_bytes()),
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("<stdin>:2: not a batch request object"),
        "{}",
        stderr(&output)
    );
}

/// The first Ctrl-C lets the requests in flight finish and exits 130 with whole lines; a
/// rerun does the rest. A second Ctrl-C exits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_drains_and_a_second_one_exits_at_once() {
    let mock = MockServer::builder()
        .timing(Timing::default().ttft(Duration::from_millis(300)))
        .start()
        .await
        .unwrap();
    let dir = temp_dir("sigint");
    let input = write_input(&dir, (0..40).map(chat_line));
    let out = dir.join("out.jsonl");
    let url = base(&mock);
    let batch = || {
        vllm_rs(&[
            "run-batch",
            "-i",
            &input,
            "-o",
            out.to_str().unwrap(),
            "--base-url",
            &url,
            "--max-concurrency",
            "4",
        ])
    };

    let child = start(batch());
    while line_count(&out) < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    interrupt(&child);
    let output = tokio::time::timeout(support::RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let done = results(&out).len();
    assert!((4..40).contains(&done), "{done}");
    // Every request that was sent got its line: the ones in flight were finished.
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.path.ends_with("completions"))
            .count(),
        done
    );

    // A second Ctrl-C does not wait for answers that take 30 s.
    mock.clear_requests();
    for _ in 0..4 {
        mock.enqueue(Behavior::new().delay(Duration::from_secs(30)));
    }
    let child = start(batch());
    while mock.requests().len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    interrupt(&child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    interrupt(&child);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the second Ctrl-C exits at once")
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert_eq!(
        results(&out).len(),
        done,
        "nothing was written for unanswered requests"
    );

    let output = run(batch(), None).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(results(&out).len(), 40);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_usage_errors() {
    let dir = temp_dir("flags");
    let input = write_input(&dir, [chat_line(1)]);
    for (args, says) in [
        (
            vec!["--max-concurrency", "0"],
            "--max-concurrency must be at least 1",
        ),
        (vec!["--request-rate", "0"], "--request-rate must be"),
        (vec!["--shard", "3/3"], "need 0 <= I < N"),
        (vec!["-o", &input], "the same file"),
    ] {
        let mut all = vec!["run-batch", "-i", &input];
        if !args.contains(&"-o") {
            all.extend(["-o", "-"]);
        }
        all.extend(args.iter().copied());
        let output = run(vllm_rs(&all), None).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = run(
        vllm_rs(&["run-batch", "-i", "missing.jsonl", "-o", "-"]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read missing.jsonl"),
        "{}",
        stderr(&output)
    );
    let output = run(vllm_rs(&["run-batch"]), None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--input-file"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_output_file_is_never_appended_to() {
    let dir = temp_dir("foreign");
    let input = write_input(&dir, [chat_line(1)]);
    let out = dir.join("notes.txt");
    std::fs::write(&out, "my notes\n").unwrap();
    let output = run(
        vllm_rs(&["run-batch", "-i", &input, "-o", out.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not an output line of vllm-rs run-batch"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "my notes\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_it_says_so_and_uses_the_embedded_mock() {
    let dir = temp_dir("embedded");
    let input = write_input(&dir, [chat_line(1)]);
    let output = run(vllm_rs(&["run-batch", "-i", &input, "-o", "-"]), None).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("using an embedded vllm-mock"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output).lines().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's example batch runs as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_batch_runs() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/batch/requests.jsonl"
    );
    let dir = temp_dir("example");
    let out = dir.join("results.jsonl");
    let output = run(
        vllm_rs(&["run-batch", "-i", example, "-o", out.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results = results(&out);
    assert_eq!(results.len(), 5);
    assert_eq!(
        results["capital-fr"]["response"]["body"]["choices"][0]["message"]["content"],
        "What is the capital of France?"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
