//! A scripted HTTP/1.1 server on `127.0.0.1:0` for the facade's tests: it records every
//! request and answers with exactly the bytes, pieces and delays a test asks for.
//!
//! [`tls`] has a TLS server (HTTP/1.1 and HTTP/2) with certificates made at test time, and
//! [`proxy`] an HTTP proxy (forwarding and `CONNECT`), both for the `https://` and proxy
//! tests.
#![allow(
    dead_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used
)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vllm_client::types::{ChatCompletion, Choice};

pub mod proxy;
pub mod tls;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The HTTP version it came over: `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One piece of an answer.
#[derive(Debug, Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    Delay(Duration),
}

/// An answer: the parts written in order, then the connection is kept or closed.
#[derive(Debug, Clone)]
pub struct Reply {
    pub parts: Vec<Part>,
    pub close: bool,
}

impl Reply {
    /// A complete response with `Content-Length`.
    pub fn status_body(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::with_headers(status, &[("content-type", content_type)], body)
    }

    pub fn with_headers(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        head.push_str(body);
        Reply {
            parts: vec![Part::Bytes(head.into_bytes())],
            close: false,
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::status_body(status, "application/json", body)
    }

    /// An event stream: `body` cut into pieces of `piece` bytes (0: whole), each sent as one
    /// chunk of chunked encoding, then the final chunk unless `truncate`.
    pub fn sse(body: &[u8], piece: usize, truncate: bool) -> Reply {
        let mut parts = vec![Part::Bytes(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        )];
        let piece = if piece == 0 { body.len().max(1) } else { piece };
        for chunk in body.chunks(piece) {
            parts.push(Part::Bytes(chunked(chunk)));
        }
        if truncate {
            return Reply { parts, close: true };
        }
        parts.push(Part::Bytes(b"0\r\n\r\n".to_vec()));
        Reply {
            parts,
            close: false,
        }
    }

    /// The same reply with a pause before its first byte.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.parts.insert(0, Part::Delay(delay));
        self
    }

    /// An event stream whose events come `gap` apart.
    pub fn sse_events(events: &[String], gap: Duration) -> Reply {
        let mut parts = vec![Part::Bytes(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        )];
        for event in events {
            parts.push(Part::Delay(gap));
            parts.push(Part::Bytes(chunked(event.as_bytes())));
        }
        parts.push(Part::Bytes(b"0\r\n\r\n".to_vec()));
        Reply {
            parts,
            close: false,
        }
    }
}

fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The server. Stops when dropped.
pub struct Server {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server whose answer to the `n`-th request (from 0) is `handler(request, n)`.
    pub async fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, conns) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, handler.clone(), reqs.clone()));
            }
        });
        Server {
            base_url: format!("http://{addr}/v1"),
            requests,
            connections,
            task,
        }
    }

    /// Answers every request with `reply`.
    pub async fn always(reply: Reply) -> Server {
        Server::start(move |_, _| reply.clone()).await
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let n = {
            let mut all = requests.lock().unwrap();
            all.push(request.clone());
            all.len() - 1
        };
        let reply = handler(&request, n);
        for part in reply.parts {
            match part {
                Part::Delay(d) => tokio::time::sleep(d).await,
                Part::Bytes(b) => {
                    if stream.write_all(&b).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                }
            }
        }
        if reply.close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let version = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Recorded {
        method,
        path,
        version,
        headers,
        body,
    })
}

/// A fixture file of `crates/vllm-types/tests/fixtures/` (the project's copy of real server
/// captures).
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vllm-types/tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The status and body of a captured `.http` response.
pub fn fixture_http(rel: &str) -> (u16, String) {
    let text = String::from_utf8(fixture(rel)).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (_, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap();
    (status, body.to_owned())
}

/// Bounds a test's future in time.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test took over 30 s")
}

/// What a greedy streamed answer must share with the same answer whole: ids and creation
/// times differ per request; tool-call arguments are compared as JSON (vLLM re-serializes
/// them in a whole answer).
pub fn assert_same_answer(streamed: &ChatCompletion, whole: &ChatCompletion, what: &str) {
    assert_eq!(streamed.model, whole.model, "{what}");
    assert_eq!(streamed.object, "chat.completion", "{what}");
    assert_eq!(streamed.choices.len(), whole.choices.len(), "{what}");
    for (s, w) in streamed.choices.iter().zip(&whole.choices) {
        assert_eq!(s.index, w.index, "{what}");
        assert_eq!(s.message.role, w.message.role, "{what}");
        assert_eq!(s.message.content, w.message.content, "{what}");
        assert_eq!(
            s.message.reasoning_text(),
            w.message.reasoning_text(),
            "{what}"
        );
        assert_eq!(s.finish_reason, w.finish_reason, "{what}");
        assert_eq!(s.stop_reason, w.stop_reason, "{what}");
        assert_eq!(s.token_ids, w.token_ids, "{what}");
        let tokens = |c: &Choice| -> Option<Vec<String>> {
            let logprobs = c.logprobs.as_ref()?.content.as_ref()?;
            Some(logprobs.iter().map(|t| t.token.clone()).collect())
        };
        assert_eq!(tokens(s), tokens(w), "{what}");
        let calls = |c: &Choice| -> Vec<(String, Value)> {
            c.message
                .tool_calls()
                .iter()
                .map(|t| {
                    (
                        t.function.name.clone(),
                        serde_json::from_str(&t.function.arguments).unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(calls(s), calls(w), "{what}");
    }
}

/// A whole chat completion answering `hi`.
pub const CHAT_JSON: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

/// The end of a stream.
pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// A chat stream event carrying these choices (JSON objects, comma-separated).
pub fn sse_chunk(choices: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{choices}]}}\n\n"
    )
}

/// A chat stream event carrying `text` as content of choice 0.
pub fn sse_content(text: &str) -> String {
    sse_chunk(&format!(
        r#"{{"index":0,"delta":{{"content":{}}}}}"#,
        serde_json::Value::from(text)
    ))
}

/// A greeting as a chat stream: the role, `Hel`, `lo`, `!`, the finish with usage, `[DONE]`.
pub fn sse_hello() -> Vec<String> {
    vec![
        sse_chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}}"#),
        sse_content("Hel"),
        sse_content("lo"),
        sse_content("!"),
        format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":3,\"total_tokens\":6}}}}\n\n"
        ),
        SSE_DONE.to_owned(),
    ]
}
