//! [`RecordedRequest`]: a request the mock received.

use std::borrow::Cow;

use serde_json::Value;

/// A request the mock received, for assertions (see
/// [`MockServer::requests`](crate::MockServer::requests)).
///
/// ```
/// # async fn run() -> std::io::Result<()> {
/// # let mock = vllm_mock::MockServer::start().await?;
/// for request in mock.requests() {
///     assert_eq!(request.method, "POST");
///     assert_eq!(request.header("content-type"), Some("application/json"));
///     assert_eq!(request.json.as_ref().unwrap()["model"], "echo");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path, without the query (`/v1/chat/completions`).
    pub path: String,
    /// The query string, without `?`, if there was one.
    pub query: Option<String>,
    /// The headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body's bytes.
    pub body: Vec<u8>,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// The client went away before the answer was complete (a dropped stream, a closed
    /// connection): vLLM aborts such a request, and so does the mock.
    pub aborted: bool,
}

impl RecordedRequest {
    /// The first value of the header `name` (any case), if it was sent and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}
