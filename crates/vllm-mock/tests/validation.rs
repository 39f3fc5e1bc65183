//! vLLM's answers to invalid (and borderline valid) chat and completion requests, from the
//! captures in `crates/vllm-types/tests/fixtures/vllm-0.32-cpu/validation/`, and the mock's
//! answers to the same requests: the same status, and for an error the same body, member for
//! member (`message`, `type`, `param`, `code`). The captures are real vLLM 0.32's output (see
//! the folder's README), so this checks the mock against vLLM, not against strings typed from
//! memory; `crates/vllm-client/tests/conformance.rs` sends the same requests to a live vLLM
//! and to the mock.
//!
//! The folder is walked, so a new capture is checked without touching this file. Each case
//! is `NAME.req.json` (the body sent, byte for byte: it may not be JSON) and `NAME.http`
//! (vLLM's answer). The name says the rest: `completions_…` went to `/v1/completions`, others
//! to `/v1/chat/completions`; `…_content_type_text_plain`, `…_content_type_form`,
//! `…_content_type_missing` and `…_content_type_charset` were sent with that `Content-Type`
//! (or none), the others with `application/json`.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{bounded, raw_post};
use vllm_mock::MockServer;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vllm-types/tests/fixtures/vllm-0.32-cpu/validation")
}

/// One captured case.
#[derive(Debug)]
struct Case {
    name: String,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    answer: Value,
}

/// The `Content-Type` a case was sent with, from its name.
fn content_type(name: &str) -> Option<&'static str> {
    const SENT: &[(&str, Option<&str>)] = &[
        ("content_type_text_plain", Some("text/plain")),
        (
            "content_type_form",
            Some("application/x-www-form-urlencoded"),
        ),
        ("content_type_missing", None),
        (
            "content_type_charset",
            Some("application/json; charset=utf-8"),
        ),
    ];
    SENT.iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map_or(Some("application/json"), |(_, sent)| *sent)
}

fn cases() -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| f.strip_suffix(".req.json").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = std::fs::read(dir().join(format!("{name}.req.json"))).unwrap();
            let http = std::fs::read_to_string(dir().join(format!("{name}.http"))).unwrap();
            let (head, answer) = http.split_once("\r\n\r\n").unwrap();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            Case {
                path: if name.starts_with("completions") {
                    "/v1/completions"
                } else {
                    "/v1/chat/completions"
                },
                content_type: content_type(&name),
                body,
                status,
                answer: serde_json::from_str(answer).unwrap(),
                name,
            }
        })
        .collect()
}

#[test]
fn the_captures_are_all_there_and_every_error_has_vllms_shape() {
    let cases = cases();
    let errors = cases.iter().filter(|c| c.status >= 400).count();
    // The cases there were when this was written: a moved folder must not pass vacuously.
    assert!(errors >= 90 && cases.len() >= 120, "{} cases", cases.len());
    for case in cases.iter().filter(|c| c.status >= 400) {
        let error = case.answer["error"].as_object().unwrap();
        let mut members: Vec<&str> = error.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(
            members,
            ["code", "message", "param", "type"],
            "{}",
            case.name
        );
        assert_eq!(
            error["code"].as_u64(),
            Some(u64::from(case.status)),
            "{}",
            case.name
        );
        assert!(error["message"].is_string(), "{}", case.name);
    }
    for case in &cases {
        assert_eq!(
            case.status >= 400,
            case.name.contains("err_"),
            "{}: the name says whether vLLM refused it",
            case.name
        );
    }
}

#[tokio::test]
async fn the_mock_answers_every_captured_request_as_vllm_did() {
    bounded(async {
        let mock = MockServer::builder()
            .models(["smollm2-135m"])
            .max_model_len(4096)
            .start()
            .await
            .unwrap();
        let mut failures = Vec::new();
        for case in cases() {
            let got = raw_post(mock.addr(), case.path, case.content_type, &case.body).await;
            if got.status != case.status {
                failures.push(format!(
                    "{}: vLLM {}, the mock {}: {}",
                    case.name,
                    case.status,
                    got.status,
                    got.text()
                ));
                continue;
            }
            if case.status >= 400 {
                let answer = got.json();
                if answer != case.answer {
                    failures.push(format!(
                        "{}:\n  vLLM:     {}\n  the mock: {answer}",
                        case.name, case.answer
                    ));
                }
            } else {
                // Accepted: the same kind of answer, with as many choices.
                let answer = got.json();
                for member in ["object", "model"] {
                    if answer[member] != case.answer[member] {
                        failures.push(format!("{}: {member} {}", case.name, answer[member]));
                    }
                }
                let choices = |v: &Value| v["choices"].as_array().map(Vec::len);
                if choices(&answer) != choices(&case.answer) {
                    failures.push(format!("{}: choices {answer}", case.name));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    })
    .await;
}
