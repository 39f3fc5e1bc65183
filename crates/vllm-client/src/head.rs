//! [`ResponseHead`]: the status and headers a response came with.

use http::HeaderMap;

/// The name of the header carrying the server's id for a request (vLLM, its router, most
/// gateways).
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The status and headers of a response: the server's `x-request-id`, rate-limit headers, a
/// router's choice of replica, vLLM's load headers.
///
/// Every response, stream and status error of this crate keeps one (`headers()`,
/// `request_id()`), so a failure can be looked up in the server's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHead {
    status: u16,
    headers: HeaderMap,
}

impl ResponseHead {
    pub(crate) fn new(status: u16, headers: HeaderMap) -> Self {
        ResponseHead { status, headers }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers (the `http` crate's map, re-exported as `vllm_client::header`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The server's id for the request, from its `x-request-id` header (vLLM echoes the one
    /// sent with [`request_id`](crate::ChatCompletionBuilder::request_id), or makes one up).
    pub fn request_id(&self) -> Option<&str> {
        request_id(&self.headers)
    }
}

/// The `x-request-id` of `headers`, if it is text.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(REQUEST_ID)?.to_str().ok()
}
