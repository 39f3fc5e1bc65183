//! The error bodies servers send with a non-2xx status.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::macros::model;

/// A server's error body, in any of the shapes OpenAI-compatible servers send.
///
/// | shape | sent by |
/// |---|---|
/// | `{"error": {"message", "type", "param", "code": 400}}` | vLLM ≥ 0.10.1 (integer `code`), llama.cpp |
/// | `{"error": {"message", "type", "param", "code": "invalid_api_key"}}` | OpenAI (string `code`) |
/// | `{"object": "error", "message", "type", "param", "code"}` | older vLLM |
/// | `{"error": "Unauthorized"}` | vLLM's API-key check (401) |
/// | `{"detail": "Not Found"}` | FastAPI (vLLM's unknown routes, some validation errors) |
///
/// ```
/// use vllm_types::ErrorResponse;
///
/// let body = r#"{"error":{"message":"The model `x` does not exist.","type":"NotFoundError","param":"model","code":404}}"#;
/// let error: ErrorResponse = serde_json::from_str(body).unwrap();
/// assert_eq!(error.message(), "The model `x` does not exist.");
/// assert_eq!(error.error_type(), Some("NotFoundError"));
/// assert_eq!(error.code().and_then(|c| c.as_u16()), Some(404));
///
/// let flat: ErrorResponse = serde_json::from_str(r#"{"error":"Unauthorized"}"#).unwrap();
/// assert_eq!(flat.message(), "Unauthorized");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorResponse {
    /// `{"error": …}`: the error object (or text) under `error`.
    Envelope(ErrorEnvelope),
    /// The error object at the top level (older vLLM).
    Flat(ApiError),
    /// FastAPI's `{"detail": …}`.
    Detail(DetailError),
}

impl ErrorResponse {
    /// A body in vLLM's current shape: `{"error": {"message", "type", "code"}}`. For servers
    /// and mocks.
    pub fn new(message: impl Into<String>, error_type: impl Into<String>, code: u16) -> Self {
        ErrorResponse::Envelope(ErrorEnvelope {
            error: ErrorDetail::Object(ApiError {
                message: message.into(),
                kind: Some(error_type.into()),
                code: Some(ErrorCode::Int(i64::from(code))),
                ..ApiError::default()
            }),
            ..ErrorEnvelope::default()
        })
    }

    /// The error object, where the body has one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ErrorResponse::Envelope(ErrorEnvelope {
                error: ErrorDetail::Object(e),
                ..
            }) => Some(e),
            ErrorResponse::Flat(e) => Some(e),
            _ => None,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            ErrorResponse::Envelope(ErrorEnvelope {
                error: ErrorDetail::Text(text),
                ..
            }) => Cow::Borrowed(text),
            ErrorResponse::Detail(d) => d.message(),
            _ => Cow::Borrowed(self.api_error().map_or("", |e| e.message.as_str())),
        }
    }

    /// The error's `type` (`BadRequestError`, `NotFoundError`, `invalid_request_error`, …).
    pub fn error_type(&self) -> Option<&str> {
        self.api_error().and_then(|e| e.kind.as_deref())
    }

    /// The parameter the error is about.
    pub fn param(&self) -> Option<&str> {
        self.api_error().and_then(|e| e.param.as_deref())
    }

    /// The error's `code`: an HTTP status (vLLM) or a word (OpenAI).
    pub fn code(&self) -> Option<&ErrorCode> {
        self.api_error().and_then(|e| e.code.as_ref())
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

model! {
    /// `{"error": …}`.
    pub struct ErrorEnvelope {
        /// The error.
        req error: ErrorDetail,
    }
}

/// What `error` holds: an object, or (vLLM's 401) a bare text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetail {
    /// `{"message", "type", "param", "code"}`.
    Object(ApiError),
    /// `"Unauthorized"`.
    Text(String),
}

impl Default for ErrorDetail {
    fn default() -> Self {
        ErrorDetail::Object(ApiError::default())
    }
}

model! {
    /// An error object: `{"message", "type", "param", "code"}`.
    pub struct ApiError {
        /// What went wrong, for people.
        req message: String,
        /// The error's class (`BadRequestError`, `invalid_request_error`, …).
        opt kind: String as "type",
        /// The parameter it is about.
        opt param: String,
        /// An HTTP status (vLLM, llama.cpp) or a word (OpenAI).
        opt code: ErrorCode,
        /// Older vLLM: `error`.
        opt object: String,
    }
}

/// An error `code`: vLLM and llama.cpp send the HTTP status as a number, OpenAI a word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    /// A number (vLLM: the HTTP status).
    Int(i64),
    /// A word (`invalid_api_key`, `context_length_exceeded`, …).
    Text(String),
}

impl ErrorCode {
    /// The code as an HTTP status, when it is a number in range (or a numeric string).
    pub fn as_u16(&self) -> Option<u16> {
        match self {
            ErrorCode::Int(n) => u16::try_from(*n).ok(),
            ErrorCode::Text(s) => s.parse().ok(),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Int(n) => write!(f, "{n}"),
            ErrorCode::Text(s) => f.write_str(s),
        }
    }
}

model! {
    /// FastAPI's `{"detail": …}`: a text, or a list of validation errors.
    pub struct DetailError {
        /// The detail.
        req detail: Value,
    }
}

impl DetailError {
    /// The detail as text: the string, or each validation error's `msg` (with its `loc`)
    /// joined with `; `.
    pub fn message(&self) -> Cow<'_, str> {
        match &self.detail {
            Value::String(s) => Cow::Borrowed(s),
            Value::Array(items) => Cow::Owned(
                items
                    .iter()
                    .map(
                        |item| match (item.get("msg").and_then(Value::as_str), item.get("loc")) {
                            (Some(msg), Some(loc)) => format!("{msg} (at {loc})"),
                            (Some(msg), None) => msg.to_owned(),
                            (None, _) => item.to_string(),
                        },
                    )
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => Cow::Owned(other.to_string()),
        }
    }
}
