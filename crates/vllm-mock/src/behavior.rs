//! [`Behavior`]: what the mock answers to one request, or to every request for a model.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use vllm_types::ErrorCode;

use crate::json::python_json;
use crate::shape::{error_body, legacy_error_body, status_code};

/// How a streamed tool call is cut into deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ToolCallStyle {
    /// vLLM's usual shape: a first delta with `id`, `type`, `index` and the function's
    /// `name`, then one delta per piece of the arguments.
    #[default]
    Vllm,
    /// vLLM's Hermes parser as seen with some models: a first delta with only `id`, `type`
    /// and `index`, the `name` in the next delta, then the argument pieces.
    Hermes,
    /// The whole call in one delta: `id`, `type`, `index`, `name` and all the arguments.
    Whole,
}

/// A tool call a [`Behavior`] makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptedCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// An error answer: the status, the body and its content type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptedError {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

/// An error event sent in the middle of a stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamError {
    pub(crate) after: usize,
    pub(crate) status: u16,
    pub(crate) message: String,
}

/// What the mock answers: the reply (echo, fixed text, reasoning, tool calls, or an error)
/// and how it is delivered (delays, write sizes, a cut-off, an error event).
///
/// Give it to [`MockServer::enqueue`](crate::MockServer::enqueue) for the next request, or to
/// [`MockServer::on_model`](crate::MockServer::on_model) for every request to a model. Unset
/// parts keep the default: the echo model's answer, sent at once in one write.
///
/// ```
/// use std::time::Duration;
/// use vllm_mock::{Behavior, ToolCallStyle};
/// use serde_json::json;
///
/// // A fixed answer after some thinking, streamed slowly, one byte per write.
/// let slow = Behavior::reply("Paris.")
///     .reasoning("The user asks for a capital.")
///     .event_delay(Duration::from_millis(5))
///     .write_size(1);
///
/// // A tool call in the Hermes shape.
/// let call = Behavior::new()
///     .tool_call("get_weather", json!({"city": "Paris"}))
///     .tool_call_style(ToolCallStyle::Hermes);
///
/// // An overloaded server asking to be retried in a second.
/// let busy = Behavior::error(503, "The server is overloaded.").retry_after(1);
///
/// // A stream that breaks after the third event.
/// let broken = Behavior::new().cut_after(3);
/// # let _ = (slow, call, busy, broken);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "a behavior does nothing until given to the mock server"]
pub struct Behavior {
    pub(crate) content: Option<String>,
    pub(crate) reasoning: Option<String>,
    pub(crate) tool_calls: Vec<ScriptedCall>,
    pub(crate) tool_call_style: ToolCallStyle,
    pub(crate) finish_reason: Option<String>,
    pub(crate) error: Option<ScriptedError>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) delay: Option<Duration>,
    pub(crate) event_delay: Option<Duration>,
    pub(crate) write_size: Option<usize>,
    pub(crate) cut_after_events: Option<usize>,
    pub(crate) cut_after_bytes: Option<usize>,
    pub(crate) stream_error: Option<StreamError>,
    pub(crate) path: Option<String>,
}

impl Behavior {
    /// The default answer (the echo model), delivered at once. Add delivery settings to it:
    /// `Behavior::new().write_size(1)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer with `text` as the content, instead of the echo (`max_tokens` and `stop` still
    /// apply to it). For `/v1/completions`, `text` is the completion; for
    /// `/v1/audio/transcriptions`, the transcript.
    pub fn reply(text: impl Into<String>) -> Self {
        Self::new().content(text)
    }

    /// Answer with `status` and vLLM's current error body:
    /// `{"error": {"message", "type", "param": null, "code": status}}`, with the `type` vLLM
    /// uses for that status (`BadRequestError`, `NotFoundError`, `InternalServerError`, …).
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let body = error_body(
            &message.into(),
            error_type(status),
            None,
            status_code(status),
        );
        Self::raw_error(status, "application/json", to_json(&body))
    }

    /// Answer with `status` and older vLLM's flat error body:
    /// `{"object": "error", "message", "type", "param": null, "code": status}`.
    pub fn legacy_error(status: u16, message: impl Into<String>) -> Self {
        let body = legacy_error_body(&message.into(), error_type(status), status);
        Self::raw_error(status, "application/json", to_json(&body))
    }

    /// Answer `401` with `{"error": "Unauthorized"}`, as vLLM started with `--api-key` does.
    pub fn unauthorized() -> Self {
        Self::raw_error(401, "application/json", r#"{"error":"Unauthorized"}"#)
    }

    /// Answer with `status` and OpenAI's error body, whose `code` is a word:
    /// `{"error": {"message", "type": "invalid_request_error", "param": null, "code"}}`.
    pub fn openai_error(status: u16, message: impl Into<String>, code: impl Into<String>) -> Self {
        let code = ErrorCode::Text(code.into());
        let body = error_body(&message.into(), "invalid_request_error", None, code);
        Self::raw_error(status, "application/json", to_json(&body))
    }

    /// Answer with `status` and `body` as JSON (any shape).
    pub fn error_json(status: u16, body: Value) -> Self {
        Self::raw_error(status, "application/json", body.to_string())
    }

    /// Answer with `status` and `body` as it is, e.g. the HTML page of a proxy's `502`:
    /// `Behavior::raw_error(502, "text/html", "<html>…</html>")`.
    pub fn raw_error(
        status: u16,
        content_type: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            error: Some(ScriptedError {
                status,
                content_type: content_type.into(),
                body: body.into(),
            }),
            ..Self::default()
        }
    }

    /// The content of the answer, instead of the echo.
    pub fn content(mut self, text: impl Into<String>) -> Self {
        self.content = Some(text.into());
        self
    }

    /// Reasoning sent before the content (as vLLM's `reasoning` field and `reasoning`
    /// deltas), whatever the request asked.
    pub fn reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = Some(text.into());
        self
    }

    /// A tool call to answer with (call it several times for parallel calls; the finish
    /// reason is then `tool_calls`). `arguments` is sent as it is when it is a string, and
    /// as JSON text otherwise (`json!({"city": "Paris"})` gives `{"city": "Paris"}`). The id
    /// is `chatcmpl-tool-<16 hex>`.
    pub fn tool_call(mut self, name: impl Into<String>, arguments: impl Serialize) -> Self {
        self.tool_calls.push(ScriptedCall {
            id: None,
            name: name.into(),
            arguments: arguments_text(arguments),
        });
        self
    }

    /// A tool call with a given id (see [`tool_call`](Self::tool_call)).
    pub fn tool_call_with_id(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Serialize,
    ) -> Self {
        self.tool_calls.push(ScriptedCall {
            id: Some(id.into()),
            name: name.into(),
            arguments: arguments_text(arguments),
        });
        self
    }

    /// How streamed tool calls are cut into deltas (default: [`ToolCallStyle::Vllm`]). Also
    /// applies to the echo model's own tool calls.
    pub fn tool_call_style(mut self, style: ToolCallStyle) -> Self {
        self.tool_call_style = style;
        self
    }

    /// The finish reason reported, whatever ended the answer (`"content_filter"`, …).
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// A header added to the response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Retry-After: <secs>` on the response.
    pub fn retry_after(self, secs: u64) -> Self {
        self.header("retry-after", secs.to_string())
    }

    /// Wait this long before sending the response head.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Wait this long between two events of a stream.
    pub fn event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = Some(delay);
        self
    }

    /// Send the body in network writes of at most `bytes` bytes each (each one flushed
    /// before the next is made). 0 is taken as 1.
    pub fn write_size(mut self, bytes: usize) -> Self {
        self.write_size = Some(bytes.max(1));
        self
    }

    /// Close the connection after `events` events of a stream, without `data: [DONE]` (and
    /// without the end of the chunked body). The first event (the `role` delta) counts.
    pub fn cut_after(mut self, events: usize) -> Self {
        self.cut_after_events = Some(events);
        self
    }

    /// Close the connection after `bytes` bytes of any body (JSON or stream).
    pub fn cut_after_bytes(mut self, bytes: usize) -> Self {
        self.cut_after_bytes = Some(bytes);
        self
    }

    /// After `events` events of a stream, send an error event
    /// `data: {"error": {"message", "type", "param": null, "code": status}}` then
    /// `data: [DONE]`, as vLLM does when generation fails mid-stream.
    pub fn stream_error_after(
        mut self,
        events: usize,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        self.stream_error = Some(StreamError {
            after: events,
            status,
            message: message.into(),
        });
        self
    }

    /// Use this behavior only for a request to `path` (e.g. `"/v1/chat/completions"`); for
    /// [`enqueue`](crate::MockServer::enqueue)d behaviors, requests to other paths leave it
    /// in the queue.
    pub fn for_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Whether this behavior applies to a request to `path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        self.path.as_deref().is_none_or(|p| p == path)
    }
}

/// The error `type` vLLM sends with a status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "RequestTimeoutError",
        409 => "ConflictError",
        413 => "PayloadTooLargeError",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        500 => "InternalServerError",
        501 => "NotImplementedError",
        502 => "BadGatewayError",
        503 => "ServiceUnavailableError",
        504 => "GatewayTimeoutError",
        _ => "Error",
    }
}

/// JSON text of a body the mock builds itself (it always serializes).
fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// Tool-call arguments as text: a string as it is, anything else as JSON text.
fn arguments_text(arguments: impl Serialize) -> String {
    match serde_json::to_value(arguments) {
        Ok(Value::String(s)) => s,
        Ok(value) => python_json(&value),
        Err(e) => format!("<arguments that do not serialize: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_keep_strings_and_encode_values() {
        let b = Behavior::new()
            .tool_call("a", "{\"x\":1}")
            .tool_call("b", json!({"city": "Paris", "n": [1, 2]}));
        assert_eq!(b.tool_calls[0].arguments, "{\"x\":1}");
        assert_eq!(
            b.tool_calls[1].arguments,
            r#"{"city": "Paris", "n": [1, 2]}"#
        );
    }

    #[test]
    fn path_filter() {
        assert!(Behavior::new().matches("/x"));
        let b = Behavior::new().for_path("/v1/models");
        assert!(b.matches("/v1/models"));
        assert!(!b.matches("/v1/chat/completions"));
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn body(b: &Behavior) -> &str {
        &b.error.as_ref().unwrap().body
    }

    #[test]
    fn error_shapes() {
        assert_eq!(
            body(&Behavior::error(503, "busy")),
            r#"{"error":{"message":"busy","type":"ServiceUnavailableError","param":null,"code":503}}"#
        );
        assert_eq!(
            body(&Behavior::legacy_error(400, "bad")),
            r#"{"message":"bad","type":"BadRequestError","param":null,"code":400,"object":"error"}"#
        );
        assert_eq!(
            body(&Behavior::openai_error(401, "no key", "invalid_api_key")),
            r#"{"error":{"message":"no key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
        );
        assert_eq!(
            body(&Behavior::unauthorized()),
            r#"{"error":"Unauthorized"}"#
        );
    }
}
