//! [`Script`]: behaviors from a JSON file, for `vllm-mock --script FILE` (the same behaviors
//! the Rust API scripts, without Rust).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::behavior::{Behavior, ToolCallStyle};

/// Behaviors read from JSON: for every request to a model, for the next requests in order,
/// and for the n-th request to a path.
///
/// ```
/// use vllm_mock::Script;
///
/// let script = Script::from_json(r#"{
///   "models": {"qwen3": {"reply": "Hi!", "reasoning": "A greeting."}},
///   "queue": [{"error": {"status": 503, "message": "overloaded", "retry_after": 0}}],
///   "requests": [{"path": "/v1/chat/completions", "number": 3, "cut_after": 2}]
/// }"#).unwrap();
/// assert_eq!(script.models().len(), 1);
/// ```
///
/// A behavior is an object with any of these members:
///
/// | member | meaning |
/// |---|---|
/// | `reply` | the answer's content (or completion, or transcript) instead of the echo |
/// | `reasoning` | reasoning sent before the content |
/// | `tool_calls` | `[{"name", "arguments", "id"?}]` (`arguments`: a string, or JSON) |
/// | `tool_call_style` | `"vllm"`, `"hermes"` or `"whole"` |
/// | `finish_reason` | the finish reason reported |
/// | `error` | `{"status", "message", "retry_after"?}` (vLLM's error body), or `{"status", "body"}` (any JSON body) |
/// | `headers` | `{"name": "value"}` added to the answer |
/// | `delay_ms` | wait before the response head |
/// | `event_delay_ms` | wait between stream events |
/// | `write_size` | send the body in writes of at most this many bytes |
/// | `cut_after` | close the connection after this many stream events |
/// | `cut_after_bytes` | close the connection after this many bytes of the body |
/// | `stream_error_after` | `{"after", "status", "message"}`: an error event mid-stream |
/// | `path` | only for requests to this path |
#[derive(Debug, Clone, Default)]
pub struct Script {
    models: Vec<(String, Behavior)>,
    queue: Vec<Behavior>,
    requests: Vec<(usize, Behavior)>,
}

impl Script {
    /// Parses a script; the error names what is wrong and where.
    pub fn from_json(json: &str) -> Result<Script, serde_json::Error> {
        let raw: RawScript = serde_json::from_str(json)?;
        let convert = |spec: Spec| -> Result<Behavior, serde_json::Error> { spec.behavior() };
        let mut script = Script::default();
        for (model, spec) in raw.models {
            script.models.push((model, convert(spec)?));
        }
        for spec in raw.queue {
            script.queue.push(convert(spec)?);
        }
        for numbered in raw.requests {
            if numbered.number == 0 {
                return Err(serde::de::Error::custom("`number` counts requests from 1"));
            }
            script
                .requests
                .push((numbered.number, convert(numbered.behavior)?));
        }
        Ok(script)
    }

    /// The behaviors for every request to a model.
    pub fn models(&self) -> &[(String, Behavior)] {
        &self.models
    }

    /// The behaviors for the next requests, in order.
    pub fn queue(&self) -> &[Behavior] {
        &self.queue
    }

    /// The behaviors for the n-th request (to their path, if they have one).
    pub fn requests(&self) -> &[(usize, Behavior)] {
        &self.requests
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default)]
    models: BTreeMap<String, Spec>,
    #[serde(default)]
    queue: Vec<Spec>,
    #[serde(default)]
    requests: Vec<Numbered>,
}

#[derive(Deserialize)]
struct Numbered {
    number: usize,
    #[serde(flatten)]
    behavior: Spec,
}

/// A behavior as JSON (see [`Script`]).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Spec {
    reply: Option<String>,
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<CallSpec>,
    tool_call_style: Option<String>,
    finish_reason: Option<String>,
    error: Option<ErrorSpec>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    delay_ms: Option<u64>,
    event_delay_ms: Option<u64>,
    write_size: Option<usize>,
    cut_after: Option<usize>,
    cut_after_bytes: Option<usize>,
    stream_error_after: Option<StreamErrorSpec>,
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSpec {
    name: String,
    arguments: Value,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorSpec {
    status: u16,
    message: Option<String>,
    body: Option<Value>,
    retry_after: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamErrorSpec {
    after: usize,
    status: u16,
    message: String,
}

impl Spec {
    fn behavior(self) -> Result<Behavior, serde_json::Error> {
        use serde::de::Error as _;
        let mut b = match self.error {
            Some(ErrorSpec {
                status,
                body: Some(body),
                retry_after,
                ..
            }) => with_retry_after(Behavior::error_json(status, body), retry_after),
            Some(ErrorSpec {
                status,
                message,
                retry_after,
                ..
            }) => with_retry_after(
                Behavior::error(status, message.unwrap_or_default()),
                retry_after,
            ),
            None => Behavior::new(),
        };
        if let Some(text) = self.reply {
            b = b.content(text);
        }
        if let Some(text) = self.reasoning {
            b = b.reasoning(text);
        }
        for call in self.tool_calls {
            let arguments = match call.arguments {
                Value::String(text) => text,
                other => other.to_string(),
            };
            b = match call.id {
                Some(id) => b.tool_call_with_id(id, call.name, arguments),
                None => b.tool_call(call.name, arguments),
            };
        }
        if let Some(style) = self.tool_call_style {
            b = b.tool_call_style(match style.as_str() {
                "vllm" => ToolCallStyle::Vllm,
                "hermes" => ToolCallStyle::Hermes,
                "whole" => ToolCallStyle::Whole,
                other => {
                    return Err(serde_json::Error::custom(format!(
                        "unknown tool_call_style `{other}` (vllm, hermes, whole)"
                    )));
                }
            });
        }
        if let Some(reason) = self.finish_reason {
            b = b.finish_reason(reason);
        }
        for (name, value) in self.headers {
            b = b.header(name, value);
        }
        if let Some(ms) = self.delay_ms {
            b = b.delay(Duration::from_millis(ms));
        }
        if let Some(ms) = self.event_delay_ms {
            b = b.event_delay(Duration::from_millis(ms));
        }
        if let Some(size) = self.write_size {
            b = b.write_size(size);
        }
        if let Some(events) = self.cut_after {
            b = b.cut_after(events);
        }
        if let Some(bytes) = self.cut_after_bytes {
            b = b.cut_after_bytes(bytes);
        }
        if let Some(err) = self.stream_error_after {
            b = b.stream_error_after(err.after, err.status, err.message);
        }
        if let Some(path) = self.path {
            b = b.for_path(path);
        }
        Ok(b)
    }
}

fn with_retry_after(b: Behavior, secs: Option<u64>) -> Behavior {
    match secs {
        Some(secs) => b.retry_after(secs),
        None => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_reads_into_the_behavior() {
        let script = Script::from_json(
            r#"{
              "models": {"m": {"reply": "Hi", "reasoning": "r", "finish_reason": "length",
                               "tool_calls": [{"name": "f", "arguments": {"a": 1}, "id": "call-1"}],
                               "tool_call_style": "hermes", "headers": {"x-a": "1"},
                               "delay_ms": 5, "event_delay_ms": 6, "write_size": 7,
                               "cut_after": 8, "cut_after_bytes": 9,
                               "stream_error_after": {"after": 2, "status": 500, "message": "boom"},
                               "path": "/v1/chat/completions"}},
              "queue": [{"error": {"status": 503, "message": "busy", "retry_after": 1}},
                        {"error": {"status": 400, "body": {"detail": "nope"}}}],
              "requests": [{"number": 2, "reply": "second"}]
            }"#,
        )
        .unwrap();
        let (name, b) = &script.models()[0];
        assert_eq!(name, "m");
        let expected = Behavior::reply("Hi")
            .reasoning("r")
            .tool_call_with_id("call-1", "f", r#"{"a":1}"#)
            .tool_call_style(ToolCallStyle::Hermes)
            .finish_reason("length")
            .header("x-a", "1")
            .delay(Duration::from_millis(5))
            .event_delay(Duration::from_millis(6))
            .write_size(7)
            .cut_after(8)
            .cut_after_bytes(9)
            .stream_error_after(2, 500, "boom")
            .for_path("/v1/chat/completions");
        assert_eq!(b, &expected);
        assert_eq!(
            script.queue()[0],
            Behavior::error(503, "busy").retry_after(1)
        );
        assert_eq!(
            script.queue()[1],
            Behavior::error_json(400, serde_json::json!({"detail": "nope"}))
        );
        assert_eq!(script.requests()[0], (2, Behavior::reply("second")));
    }

    #[test]
    fn mistakes_are_errors_that_say_what_is_wrong() {
        for (json, says) in [
            (r#"{"modles": {}}"#, "unknown field `modles`"),
            (r#"{"queue": [{"replyy": "x"}]}"#, "unknown field `replyy`"),
            (
                r#"{"queue": [{"tool_call_style": "odd"}]}"#,
                "unknown tool_call_style",
            ),
            (r#"{"requests": [{"number": 0}]}"#, "from 1"),
            (r#"{"queue": [{"delay_ms": -1}]}"#, "invalid value"),
        ] {
            let err = Script::from_json(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }
}
