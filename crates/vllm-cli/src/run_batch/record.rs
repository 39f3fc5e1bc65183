//! One output line, in vLLM's batch output format:
//! `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
//!
//! - an answer: `response.body` is the server's JSON as it came, `error` is `null`;
//! - an error status: `response.body` is `null` and `error` is the server's error body (its
//!   JSON as it came, or its text as a string when it is not JSON), as vLLM writes it;
//! - no answer at all (connection refused, timeout, reset, after the client's retries):
//!   `response` is `null` and `error` is `{"code", "message"}` as in the OpenAI batch format,
//!   `code` naming the kind of failure.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vllm_client::{ErrorKind, RawResponse, VllmError};

#[derive(Serialize)]
struct OutputLine<'a> {
    id: String,
    custom_id: &'a str,
    response: Option<Response<'a>>,
    error: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Response<'a> {
    status_code: u16,
    request_id: Cow<'a, str>,
    body: Option<&'a RawValue>,
}

/// The members of an answer the runner reads (for the request id and the progress).
#[derive(Deserialize)]
struct AnswerPeek<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    usage: Option<UsagePeek>,
}

#[derive(Deserialize)]
struct UsagePeek {
    completion_tokens: Option<u64>,
}

/// A line made, with what the progress counts.
pub(crate) struct Record {
    /// The line, with its `\n`.
    pub(crate) line: Vec<u8>,
    /// Whether it is an error line.
    pub(crate) failed: bool,
    /// The answer's `usage.completion_tokens`.
    pub(crate) output_tokens: u64,
}

/// A fresh random id, `vllm-rs-` and 32 hex digits (vLLM writes `vllm-<uuid>`).
fn random_hex() -> String {
    let half = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// `text` as a JSON value on one line: itself when it is JSON (a raw line end in valid
/// JSON can only be whitespace, so it becomes a space), else `None`.
fn one_line_json(text: &str) -> Option<Cow<'_, str>> {
    let text = text.trim();
    serde_json::from_str::<&RawValue>(text).ok()?;
    if text.contains(['\n', '\r']) {
        Some(Cow::Owned(text.replace(['\n', '\r'], " ")))
    } else {
        Some(Cow::Borrowed(text))
    }
}

/// Serializes `line` with its line end.
fn finish(line: &OutputLine<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Serializing strings and raw JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, line);
    out.push(b'\n');
    out
}

fn raw(json: &str) -> &RawValue {
    // Only called with text `one_line_json` or serde_json made: valid JSON.
    serde_json::from_str(json)
        .unwrap_or_else(|_| serde_json::from_str("null").expect("null is JSON"))
}

/// The error object for a failure with no answer: `{"code", "message"}`.
fn failure_json(error: &VllmError) -> String {
    let code = match error.kind() {
        ErrorKind::Connect => "connect",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Request => "request",
        ErrorKind::Stream => "stream",
        ErrorKind::Decode => "decode",
        ErrorKind::Builder => "invalid_request",
        _ => "error",
    };
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    serde_json::json!({ "code": code, "message": message }).to_string()
}

/// The line for `custom_id` and what the server did.
pub(crate) fn record(custom_id: &str, result: Result<RawResponse, VllmError>) -> Record {
    let id = format!("vllm-rs-{}", random_hex());
    match result {
        Ok(answer) => {
            let status = answer.head().status();
            let text = std::str::from_utf8(answer.body()).ok();
            let Some(json) = text.and_then(one_line_json) else {
                let message = serde_json::json!({
                    "code": "decode",
                    "message": format!(
                        "the server answered {status} with a body that is not JSON: {:?}",
                        String::from_utf8_lossy(&answer.body()[..answer.body().len().min(200)])
                    ),
                })
                .to_string();
                return Record {
                    line: finish(&OutputLine {
                        id,
                        custom_id,
                        response: Some(Response {
                            status_code: status,
                            request_id: Cow::Owned(format!("vllm-batch-{}", random_hex())),
                            body: None,
                        }),
                        error: Some(raw(&message)),
                    }),
                    failed: true,
                    output_tokens: 0,
                };
            };
            let peek: Option<AnswerPeek<'_>> = serde_json::from_str(&json).ok();
            let output_tokens = peek
                .as_ref()
                .and_then(|p| p.usage.as_ref()?.completion_tokens)
                .unwrap_or(0);
            let request_id = match (answer.request_id(), peek.and_then(|p| p.id)) {
                (Some(header), _) => Cow::Borrowed(header),
                (None, Some(id)) => id,
                (None, None) => Cow::Owned(format!("vllm-batch-{}", random_hex())),
            };
            Record {
                line: finish(&OutputLine {
                    id,
                    custom_id,
                    response: Some(Response {
                        status_code: status,
                        request_id,
                        body: Some(raw(&json)),
                    }),
                    error: None,
                }),
                failed: false,
                output_tokens,
            }
        }
        Err(error) => {
            let line = match (error.status_code(), error.body_text()) {
                (Some(status), Some(body)) => {
                    let error_json = match one_line_json(body) {
                        Some(json) => json.into_owned(),
                        None if body.trim().is_empty() => serde_json::to_string(&error.to_string())
                            .unwrap_or_else(|_| "null".into()),
                        None => serde_json::to_string(body).unwrap_or_else(|_| "null".into()),
                    };
                    let request_id = error.request_id().map_or_else(
                        || Cow::Owned(format!("vllm-batch-{}", random_hex())),
                        Cow::Borrowed,
                    );
                    finish(&OutputLine {
                        id,
                        custom_id,
                        response: Some(Response {
                            status_code: status,
                            request_id,
                            body: None,
                        }),
                        error: Some(raw(&error_json)),
                    })
                }
                _ => finish(&OutputLine {
                    id,
                    custom_id,
                    response: None,
                    error: Some(raw(&failure_json(&error))),
                }),
            };
            Record {
                line,
                failed: true,
                output_tokens: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_line_ends_is_put_on_one_line() {
        assert_eq!(
            one_line_json("{\n  \"a\": \"x\\ny\"\r\n}\n").as_deref(),
            Some("{   \"a\": \"x\\ny\"  }")
        );
        assert_eq!(one_line_json(" [1] ").as_deref(), Some("[1]"));
        assert!(one_line_json("<html>").is_none());
        assert!(one_line_json("").is_none());
    }

    #[test]
    fn ids_are_fresh() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
