//! `vllm-rs chat` and `vllm-rs complete` against a vllm-mock on loopback: one-shot on a
//! pipe, and the conversation on a terminal (a pseudo-terminal from util-linux's `script`).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vllm_mock::{Behavior, MockServer};

use support::{run, stderr, stdout, temp_dir, vllm_rs};

fn chat_requests(mock: &MockServer) -> Vec<Value> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .filter_map(|r| r.json)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_answers_stdin_on_stdout() {
    let mock = MockServer::start().await.unwrap();
    let url = mock.base_url();
    let output = run(
        vllm_rs(&[
            "chat",
            "--base-url",
            &url,
            "--system",
            "Be brief.",
            "--max-tokens",
            "50",
        ]),
        Some(b"hello there\n"),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "hello there\n");
    let sent = &chat_requests(&mock)[0];
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent["messages"][1]["content"], "hello there\n");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["model"], "echo", "the server's first model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_goes_apart_from_the_answer() {
    let mock = MockServer::start().await.unwrap();
    // (For the chat route: the first request lists the models.)
    mock.enqueue(
        Behavior::reply("Four.")
            .reasoning("Two and two make four.")
            .for_path("/v1/chat/completions"),
    );
    let output = run(
        vllm_rs(&["chat", "--base-url", &mock.base_url()]),
        Some(b"2+2?"),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Four.\n");
    assert!(
        stderr(&output).contains("Two and two make four."),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_shown_and_tools_sent() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("tools");
    let tools = dir.join("tools.json");
    let definition = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    std::fs::write(&tools, definition.to_string()).unwrap();
    mock.enqueue(
        Behavior::new()
            .tool_call("get_weather", json!({"city": "Paris"}))
            .for_path("/v1/chat/completions"),
    );
    let output = run(
        vllm_rs(&[
            "chat",
            "--base-url",
            &mock.base_url(),
            "--tools",
            tools.to_str().unwrap(),
        ]),
        Some(b"Weather in Paris?"),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output) == "[tool call] get_weather({\"city\": \"Paris\"})\n",
        "{}",
        stdout(&output)
    );
    assert_eq!(chat_requests(&mock)[0]["tools"], definition);

    std::fs::write(&tools, "{}").unwrap();
    let output = run(
        vllm_rs(&[
            "chat",
            "--base-url",
            &mock.base_url(),
            "--tools",
            tools.to_str().unwrap(),
        ]),
        Some(b"x"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("must hold a JSON array of tools"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_reach_the_user() {
    let mock = MockServer::start().await.unwrap();
    let output = run(
        vllm_rs(&[
            "chat",
            "--base-url",
            &mock.base_url(),
            "--model",
            "no-such-model",
        ]),
        Some(b"hi"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("404 Not Found: The model `no-such-model` does not exist"),
        "{}",
        stderr(&output)
    );
    let output = run(
        vllm_rs(&["chat", "--base-url", &mock.base_url()]),
        Some(b" \n"),
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("stdin is empty"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_streams_the_completion() {
    let mock = MockServer::start().await.unwrap();
    let url = mock.base_url();
    let output = run(
        vllm_rs(&["complete", "--base-url", &url, "Once upon a time"]),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Once upon a time\n");
    let output = run(
        vllm_rs(&["complete", "--base-url", &url, "--max-tokens", "2"]),
        Some(b"From stdin"),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "From stdin\n");
    let sent: Vec<Value> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/completions")
        .filter_map(|r| r.json)
        .collect();
    assert_eq!(sent[1]["max_tokens"], 2);
    assert_eq!(sent[1]["stream"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_chat_says_so_and_answers() {
    let output = run(vllm_rs(&["chat"]), Some(b"hi")).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("using an embedded vllm-mock"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "hi\n");
}

/// A conversation on a terminal, driven through a pseudo-terminal: two turns with history,
/// Ctrl-C stopping a slow answer without ending the session, `/save`, `/reset`, `/model`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_on_a_terminal() {
    let mock = MockServer::start().await.unwrap();
    let dir = temp_dir("repl");
    let saved = dir.join("conversation.json");
    // `exec`: no shell stays between `script` and vllm-rs (dash, as /bin/sh, would die of the
    // Ctrl-C meant for vllm-rs once its child exits, and `script -e` would report that).
    let command = format!(
        "exec {} chat --base-url {} --system 'Be brief.' --history {}",
        env!("CARGO_BIN_EXE_vllm-rs"),
        mock.base_url(),
        dir.join("history").display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("util-linux `script` runs (the test needs a pseudo-terminal)");
    let mut keys = child.stdin.take().unwrap();
    let mut screen = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = screen.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let wait_for = |what: &'static str, times: usize| {
        let seen = seen.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while seen.lock().unwrap().matches(what).count() < times {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "waited for {what:?} x{times}: {}",
                    seen.lock().unwrap()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    wait_for("> ", 1).await;
    keys.write_all(b"first question\r").await.unwrap();
    wait_for("tokens,", 1).await;
    // A slow answer, stopped with Ctrl-C in the middle.
    mock.enqueue(
        Behavior::reply("one two three four five six seven eight nine ten")
            .event_delay(Duration::from_millis(300)),
    );
    keys.write_all(b"count slowly\r").await.unwrap();
    wait_for("one two", 1).await;
    keys.write_all(b"\x03").await.unwrap();
    wait_for("[stopped]", 1).await;
    keys.write_all(b"third\r").await.unwrap();
    wait_for("tokens,", 2).await;
    keys.write_all(format!("/save {}\r", saved.display()).as_bytes())
        .await
        .unwrap();
    wait_for("saved", 1).await;
    keys.write_all(b"/reset\r").await.unwrap();
    wait_for("a new conversation", 1).await;
    keys.write_all(b"/model other\r").await.unwrap();
    wait_for("from now on", 1).await;
    keys.write_all(b"after reset\r").await.unwrap();
    wait_for("404 Not Found", 1).await;
    keys.write_all(b"\x04").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("Ctrl-D ends the session")
        .unwrap();
    let _ = reader.await;
    let screen = seen.lock().unwrap().clone();
    assert!(status.success(), "{status}: {screen}");
    assert!(
        !screen.contains("ten"),
        "the stopped answer went on: {screen}"
    );

    // The conversation as saved: the stopped answer kept as far as it went.
    let conversation: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let roles: Vec<&str> = conversation
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant"
        ]
    );
    assert_eq!(conversation[2]["content"], "first question");
    assert!(
        conversation[4]["content"]
            .as_str()
            .unwrap()
            .starts_with("one")
    );
    assert_eq!(conversation[6]["content"], "third");

    // The server saw the history each time, and after /reset only the system message.
    let sent = chat_requests(&mock);
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[2]["messages"].as_array().unwrap().len(), 6);
    assert_eq!(sent[3]["model"], "other");
    assert_eq!(sent[3]["messages"].as_array().unwrap().len(), 2);
    // The stopped stream was dropped: the mock saw the client go away.
    assert!(mock.requests().iter().any(|r| r.aborted));
    std::fs::remove_dir_all(&dir).unwrap();
}
