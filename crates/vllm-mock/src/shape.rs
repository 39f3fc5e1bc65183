//! What the mock's answers have in common, as `vllm_types` values in vLLM's shapes: the
//! `null` members vLLM sends, token counts, and error bodies.

use serde_json::Value;
use vllm_types::{
    ApiError, DetailError, ErrorCode, ErrorDetail, ErrorEnvelope, ErrorResponse, Usage,
};

/// `<$ty>::default()` with each of the optional `members` written as `null` while unset
/// (see `set_null`), as vLLM sends them.
macro_rules! nulls {
    ($ty:ty, [$($member:literal),* $(,)?]) => {{
        let mut value = <$ty>::default();
        $(
            let modelled = value.set_null($member);
            debug_assert!(
                modelled,
                concat!($member, " is not an optional member of ", stringify!($ty))
            );
        )*
        value
    }};
}

pub(crate) use nulls;

/// Sets `slot` to `text`, reusing the string already there (a stream's template chunk
/// changes its texts in place from one event to the next).
pub(crate) fn set_text(slot: &mut Option<String>, text: Option<&str>) {
    match text {
        None => *slot = None,
        Some(text) => match slot {
            Some(s) => {
                s.clear();
                s.push_str(text);
            }
            None => *slot = Some(text.to_owned()),
        },
    }
}

/// Token counts: `prompt_tokens`, `completion_tokens` and their sum (no details).
pub(crate) fn usage(prompt_tokens: u32, completion_tokens: u32) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens: Some(completion_tokens),
        total_tokens: prompt_tokens + completion_tokens,
        ..Usage::default()
    }
}

/// Token counts with `prompt_tokens_details` and `completion_tokens_details` both `null`, as
/// vLLM sends them with completions and pooling answers.
pub(crate) fn usage_with_null_details(prompt_tokens: u32, completion_tokens: u32) -> Usage {
    let mut usage = usage(prompt_tokens, completion_tokens);
    usage.set_null("prompt_tokens_details");
    usage.set_null("completion_tokens_details");
    usage
}

/// An HTTP status as an error `code`, as vLLM sends it.
pub(crate) fn status_code(status: u16) -> ErrorCode {
    ErrorCode::Int(i64::from(status))
}

/// An error object `{"message", "type", "param", "code"}` (`param` is `null` when there is
/// none).
fn api_error(message: &str, kind: &str, param: Option<&str>, code: ErrorCode) -> ApiError {
    let mut error = nulls!(ApiError, ["param"]);
    error.message = message.to_owned();
    error.kind = Some(kind.to_owned());
    error.param = param.map(str::to_owned);
    error.code = Some(code);
    error
}

/// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`. `code` is the HTTP
/// status (vLLM) or a word (OpenAI).
pub(crate) fn error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: ErrorCode,
) -> ErrorResponse {
    ErrorResponse::Envelope(ErrorEnvelope {
        error: ErrorDetail::Object(api_error(message, kind, param, code)),
        ..ErrorEnvelope::default()
    })
}

/// Older vLLM's flat error body: `{"object": "error", "message", "type", "param": null,
/// "code"}`.
pub(crate) fn legacy_error_body(message: &str, kind: &str, status: u16) -> ErrorResponse {
    let mut error = api_error(message, kind, None, status_code(status));
    error.object = Some("error".to_owned());
    ErrorResponse::Flat(error)
}

/// FastAPI's `{"detail": …}`.
pub(crate) fn detail_body(detail: &str) -> ErrorResponse {
    ErrorResponse::Detail(DetailError {
        detail: Value::String(detail.to_owned()),
        ..DetailError::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_overwritten_in_place() {
        let mut slot = None;
        set_text(&mut slot, Some("hello"));
        let before = slot.as_deref().map(str::as_ptr);
        set_text(&mut slot, Some("world"));
        assert_eq!(slot.as_deref(), Some("world"));
        assert_eq!(slot.as_deref().map(str::as_ptr), before);
        set_text(&mut slot, None);
        assert_eq!(slot, None);
    }

    #[test]
    fn error_bodies_have_vllms_members() {
        let body = error_body("boom", "InternalServerError", None, status_code(500));
        assert_eq!(
            serde_json::to_string(&body).unwrap_or_default(),
            r#"{"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}"#
        );
        let body = error_body("x", "Bad Request", Some("body.n"), status_code(400));
        assert_eq!(body.param(), Some("body.n"));
        assert_eq!(
            serde_json::to_string(&detail_body("Not Found")).unwrap_or_default(),
            r#"{"detail":"Not Found"}"#
        );
        assert_eq!(
            serde_json::to_value(usage_with_null_details(3, 0)).ok(),
            Some(
                serde_json::json!({"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3,
                "prompt_tokens_details": null, "completion_tokens_details": null})
            )
        );
    }
}
