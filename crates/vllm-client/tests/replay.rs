//! Every capture in `crates/vllm-types/tests/fixtures/` replayed byte for byte by the local
//! scripted server through the facade, whole and in pieces down to 1 byte, one write each (a
//! stream's pieces are chunks of chunked encoding, so they reach the client's SSE decoder as
//! they are; the kernel may coalesce a `.http` response's small writes).
//!
//! The fixture directories are walked, so a new capture is covered without touching this file:
//! `NAME.http` (a whole response: status line, headers, body) is served as it is, `NAME.sse`
//! (an event stream's body) is served after its `NAME.headers` in chunked encoding, and
//! `NAME.req.json` (the request that was sent) and `*.md` are only checked to belong to a
//! capture. Any other file fails the inventory test, and so does a `.http` or `.sse` whose name
//! does not say which endpoint answered it (see [`Endpoint::of`]).
//!
//! The captures of `vllm-0.32-cpu/validation/` (vLLM's answers to invalid requests, over a
//! hundred small bodies alike) are replayed whole only: in 1-byte writes they would take over
//! a minute and test nothing the other captures do not.
//!
//! What the client must return is computed here straight from the capture's JSON, without the
//! client's or `vllm-types`' code: for a 2xx `.http`, the fields of `send()`'s result; for
//! any other status, the same typed status error from every endpoint (and from `send_stream()`);
//! for an `.sse`, the events per choice (content, reasoning, tool-call pieces and complete calls,
//! finish reasons), the usage and the one `Done`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Part, Reply, Server};
use vllm_client::{
    CompletionStream, MessageStream, StreamEvent, ToolCall, Usage, VllmClient, VllmError, json,
};

/// The sizes of piece a response is written in: whole (one write), 1 byte per write, and two
/// sizes in between (a stream's pieces are chunks of chunked encoding, one write each).
const PIECES: [usize; 4] = [0, 1, 7, 1460];

/// The captures replayed whole only (see the module documentation).
const WHOLE_ONLY: &str = "vllm-0.32-cpu/validation/";

/// How long one test may take (every capture in every piece size, in a debug build: about 10 s
/// on 2 cores).
const LIMIT: Duration = Duration::from_secs(120);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("the replay took over {LIMIT:?}"))
}

// ----------------------------------------------------------------------------- inventory

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vllm-types/tests/fixtures")
}

/// Every file under `dir`, as paths relative to the fixtures directory.
fn walk(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            let rel = path.strip_prefix(fixtures_dir()).unwrap();
            out.push(rel.to_str().unwrap().replace('\\', "/"));
        }
    }
}

/// A response to replay.
#[derive(Debug)]
enum Capture {
    /// `rel` is a `.http` file: a whole response.
    Http { rel: String },
    /// `rel` is a `.sse` body; `head` the status line and headers it was sent with.
    Sse { rel: String, head: Option<Vec<u8>> },
}

/// The kind of a fixture file: its extension, with `req.json` as one.
fn kind(rel: &str) -> &str {
    if rel.ends_with(".req.json") {
        return "req.json";
    }
    let name = rel.rsplit('/').next().unwrap();
    name.split_once('.').map_or("", |(_, ext)| ext)
}

/// `rel` without its kind's extension.
fn stem(rel: &str) -> &str {
    &rel[..rel.len() - kind(rel).len() - 1]
}

/// The file name of `rel` without its extension (`tools_stream`).
fn name(rel: &str) -> &str {
    stem(rel).rsplit('/').next().unwrap()
}

/// Every capture to replay; fails on a file this test does not know what to do with.
fn captures() -> Vec<Capture> {
    let mut files = Vec::new();
    walk(&fixtures_dir(), &mut files);
    files.sort();
    let present: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let sibling = |rel: &str, ext: &str| format!("{}.{ext}", stem(rel));
    let mut captures = Vec::new();
    for rel in &files {
        match kind(rel) {
            "md" => {}
            "req.json" => assert!(
                present.contains(sibling(rel, "http").as_str())
                    || present.contains(sibling(rel, "sse").as_str()),
                "{rel}: a request without its captured response"
            ),
            "headers" => assert!(
                present.contains(sibling(rel, "sse").as_str()),
                "{rel}: headers without their .sse stream"
            ),
            "http" => {
                Endpoint::of(rel);
                captures.push(Capture::Http { rel: rel.clone() });
            }
            "sse" => {
                Endpoint::of(rel);
                let headers = sibling(rel, "headers");
                let head = present
                    .contains(headers.as_str())
                    .then(|| support::fixture(&headers));
                captures.push(Capture::Sse {
                    rel: rel.clone(),
                    head,
                });
            }
            other => panic!(
                "{rel}: unknown kind of capture file `.{other}`; teach tests/replay.rs to replay it"
            ),
        }
    }
    captures
}

/// Which endpoint a capture is an answer of, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completions,
    Models,
    Tokenize,
    Detokenize,
    Embeddings,
}

impl Endpoint {
    fn of(rel: &str) -> Endpoint {
        let name = name(rel);
        match name {
            "models" => Endpoint::Models,
            "tokenize" => Endpoint::Tokenize,
            "detokenize" => Endpoint::Detokenize,
            _ if name.starts_with("extra_tokenize") => Endpoint::Tokenize,
            _ if name.starts_with("embeddings") => Endpoint::Embeddings,
            _ if name.starts_with("completions") => Endpoint::Completions,
            "chat" | "stream" => Endpoint::Chat,
            _ if ["tools", "err_", "extra_", "ok_"]
                .iter()
                .any(|p| name.starts_with(p)) =>
            {
                Endpoint::Chat
            }
            _ => panic!("{rel}: which endpoint answered this capture? Name it in `Endpoint::of`"),
        }
    }

    /// The method and path the facade must request.
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Chat => ("POST", "/v1/chat/completions"),
            Endpoint::Completions => ("POST", "/v1/completions"),
            Endpoint::Models => ("GET", "/v1/models"),
            Endpoint::Tokenize => ("POST", "/tokenize"),
            Endpoint::Detokenize => ("POST", "/detokenize"),
            Endpoint::Embeddings => ("POST", "/v1/embeddings"),
        }
    }
}

#[test]
fn every_fixture_file_is_a_known_kind_and_the_captures_are_all_found() {
    let captures = captures();
    let http = captures
        .iter()
        .filter(|c| matches!(c, Capture::Http { .. }))
        .count();
    let sse = captures.len() - http;
    // The captures there were when this was written: a moved fixtures directory must not make
    // every replay vacuous.
    assert!(
        http >= 51 && sse >= 10,
        "{http} .http and {sse} .sse captures"
    );
    for dir in [
        "vllm-0.32-cpu/think/",
        "vllm-0.32-cpu/nothink/",
        "vllm-0.32-cpu/embed/",
        "llama-server/",
    ] {
        assert!(
            captures.iter().any(|c| match c {
                Capture::Http { rel } | Capture::Sse { rel, .. } => rel.starts_with(dir),
            }),
            "no capture in {dir}"
        );
    }
}

// ------------------------------------------------------------------------------- serving

/// A captured `.http` response, split.
struct HttpCapture {
    raw: Vec<u8>,
    status: u16,
    body: String,
    close: bool,
}

fn http_capture(rel: &str) -> HttpCapture {
    let raw = support::fixture(rel);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{rel}: no end of head"));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let body = String::from_utf8(raw[split + 4..].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut close = false;
    for (key, value) in lines.map(|l| l.split_once(':').unwrap()) {
        let value = value.trim();
        if key.eq_ignore_ascii_case("content-length") {
            assert_eq!(value.parse::<usize>().unwrap(), body.len(), "{rel}");
        }
        if key.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    HttpCapture {
        raw,
        status,
        body,
        close,
    }
}

/// `bytes` written in pieces of `piece` bytes (0: in one write).
fn pieces(bytes: &[u8], piece: usize) -> Vec<Part> {
    let piece = if piece == 0 {
        bytes.len().max(1)
    } else {
        piece
    };
    bytes
        .chunks(piece)
        .map(|c| Part::Bytes(c.to_vec()))
        .collect()
}

/// The captured response, byte for byte, in writes of `piece` bytes.
fn http_reply(capture: &HttpCapture, piece: usize) -> Reply {
    Reply {
        parts: pieces(&capture.raw, piece),
        close: capture.close,
    }
}

/// The head a stream without `.headers` is sent with.
const STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

/// The captured head, then the `.sse` body in chunked encoding, one chunk per `piece` bytes
/// (0: one chunk), each chunk in one write.
fn sse_reply(rel: &str, head: Option<&[u8]>, sse: &[u8], piece: usize) -> Reply {
    let head = head.unwrap_or(STREAM_HEAD);
    let text = std::str::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 200 ") && text.ends_with("\r\n\r\n"),
        "{rel}: a 200 head"
    );
    assert!(
        text.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{rel}: the stream was chunked"
    );
    let mut parts = vec![Part::Bytes(head.to_vec())];
    let piece = if piece == 0 { sse.len().max(1) } else { piece };
    for chunk in sse.chunks(piece) {
        let mut bytes = format!("{:x}\r\n", chunk.len()).into_bytes();
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
        parts.push(Part::Bytes(bytes));
    }
    parts.push(Part::Bytes(b"0\r\n\r\n".to_vec()));
    Reply {
        parts,
        close: false,
    }
}

fn client(server: &Server) -> VllmClient {
    VllmClient::builder()
        .base_url(&server.base_url)
        .max_retries(0)
        .build()
}

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

// ------------------------------------------------------------- expected values, from JSON

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn number(v: &Value) -> Option<u32> {
    v.as_u64().map(|n| u32::try_from(n).unwrap())
}

/// What a usage report says: prompt, completion, total, cached and reasoning tokens.
type Counts = (u32, u32, u32, Option<u32>, Option<u32>);

/// The counts of a JSON usage object (a missing or `null` `completion_tokens` counts 0).
fn counts_of_json(u: &Value) -> Option<Counts> {
    u.is_object().then(|| {
        (
            number(&u["prompt_tokens"]).unwrap(),
            number(&u["completion_tokens"]).unwrap_or(0),
            number(&u["total_tokens"]).unwrap(),
            number(&u["prompt_tokens_details"]["cached_tokens"]),
            number(&u["completion_tokens_details"]["reasoning_tokens"]),
        )
    })
}

fn counts(u: &Usage) -> Counts {
    (
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        u.cached_tokens(),
        u.reasoning_tokens(),
    )
}

/// A message's or delta's reasoning: vLLM's `reasoning`, else the older `reasoning_content`.
fn reasoning_of(message: &Value) -> Option<String> {
    string(&message["reasoning"]).or_else(|| string(&message["reasoning_content"]))
}

/// The calls of a message's `tool_calls` (`None` when it has none).
fn calls_of(message: &Value) -> Option<Vec<ToolCall>> {
    let calls: Vec<ToolCall> = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ToolCall {
            id: string(&c["id"]).unwrap_or_default(),
            name: string(&c["function"]["name"]).unwrap(),
            arguments: string(&c["function"]["arguments"]).unwrap(),
        })
        .collect();
    (!calls.is_empty()).then_some(calls)
}

/// What a chat completion's choice holds: content, reasoning, calls, finish reason.
type ChoiceSeen = (
    Option<String>,
    Option<String>,
    Option<Vec<ToolCall>>,
    Option<String>,
);

/// What `send()` of a chat completion must return.
#[derive(Debug, PartialEq)]
struct ChatSeen {
    id: String,
    object: String,
    model: String,
    content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
    finish_reason: Option<String>,
    usage: Option<Counts>,
    choices: Vec<ChoiceSeen>,
}

fn expected_chat(v: &Value) -> ChatSeen {
    let choices: Vec<ChoiceSeen> = v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let m = &c["message"];
            (
                string(&m["content"]),
                reasoning_of(m),
                calls_of(m),
                string(&c["finish_reason"]),
            )
        })
        .collect();
    let first = choices.first().cloned().unwrap_or_default();
    ChatSeen {
        id: string(&v["id"]).unwrap(),
        object: string(&v["object"]).unwrap(),
        model: string(&v["model"]).unwrap(),
        content: first.0,
        reasoning: first.1,
        tool_calls: first.2,
        finish_reason: first.3,
        usage: counts_of_json(&v["usage"]),
        choices,
    }
}

fn seen_chat(r: &vllm_client::ChatCompletionResponse) -> ChatSeen {
    ChatSeen {
        id: r.id.clone(),
        object: r.object.clone(),
        model: r.model.clone(),
        content: r.content.clone(),
        reasoning: r.reasoning_content.clone(),
        tool_calls: r.tool_calls.clone(),
        finish_reason: r.finish_reason.clone(),
        usage: r.usage.as_ref().map(counts),
        choices: r
            .completion()
            .choices
            .iter()
            .map(|c| {
                let m = &c.message;
                let calls: Vec<ToolCall> = m.tool_calls().iter().cloned().map(Into::into).collect();
                (
                    m.content.clone(),
                    m.reasoning_text().map(str::to_owned),
                    (!calls.is_empty()).then_some(calls),
                    c.finish_reason.as_ref().map(|f| f.as_str().to_owned()),
                )
            })
            .collect(),
    }
}

/// What `send()` of a legacy completion must return: id, model, first text and finish reason,
/// usage, and every choice's text and finish reason.
type CompletionSeen = (
    String,
    String,
    String,
    Option<String>,
    Option<Counts>,
    Vec<(String, Option<String>)>,
);

fn expected_completion(v: &Value) -> CompletionSeen {
    let choices: Vec<(String, Option<String>)> = v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (string(&c["text"]).unwrap(), string(&c["finish_reason"])))
        .collect();
    let first = choices.first().cloned().unwrap_or_default();
    (
        string(&v["id"]).unwrap(),
        string(&v["model"]).unwrap(),
        first.0,
        first.1,
        counts_of_json(&v["usage"]),
        choices,
    )
}

/// What a model list must hold: per model, id, object, owner, root, parent, context length.
type ModelSeen = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
);

fn expected_models(v: &Value) -> Vec<ModelSeen> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                string(&m["id"]).unwrap(),
                string(&m["object"]).unwrap_or_default(),
                string(&m["owned_by"]),
                string(&m["root"]),
                string(&m["parent"]),
                number(&m["max_model_len"]),
            )
        })
        .collect()
}

/// Tokens, count, context length, token texts.
type TokenizeSeen = (Vec<u32>, Option<u32>, Option<u32>, Option<Vec<String>>);

fn expected_tokenize(v: &Value) -> TokenizeSeen {
    let strs = v["token_strs"].as_array().map(|a| {
        a.iter()
            .map(|s| string(s).unwrap())
            .collect::<Vec<String>>()
    });
    (
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| number(t).unwrap())
            .collect(),
        number(&v["count"]),
        number(&v["max_model_len"]),
        strs,
    )
}

/// The text of a detokenize answer: vLLM's `prompt`, or llama.cpp's `content`.
fn expected_detokenize(v: &Value) -> String {
    string(&v["prompt"])
        .or_else(|| string(&v["content"]))
        .unwrap()
}

/// Standard base64 (with padding), decoded.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> = text
        .bytes()
        .filter(|&b| b != b'=')
        .map(|b| ALPHABET.iter().position(|&a| a == b).unwrap() as u32)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in group.iter().enumerate() {
            n |= d << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}

/// What an embeddings answer must decode to: model, vectors in input order, usage.
type EmbeddingsSeen = (String, Vec<Vec<f32>>, Option<Counts>);

fn expected_embeddings(v: &Value) -> EmbeddingsSeen {
    let mut data: Vec<(u64, Vec<f32>)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(position, d)| {
            let vector = match &d["embedding"] {
                Value::Array(numbers) => {
                    numbers.iter().map(|x| x.as_f64().unwrap() as f32).collect()
                }
                Value::String(text) => {
                    let bytes = base64_decode(text);
                    assert_eq!(bytes.len() % 4, 0);
                    bytes
                        .chunks(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect()
                }
                other => panic!("an embedding that is neither numbers nor base64: {other}"),
            };
            (d["index"].as_u64().unwrap_or(position as u64), vector)
        })
        .collect();
    data.sort_by_key(|(index, _)| *index);
    (
        string(&v["model"]).unwrap(),
        data.into_iter().map(|(_, vector)| vector).collect(),
        counts_of_json(&v["usage"]),
    )
}

/// The message of an error body, in the shapes servers send: `{"error": {"message"}}`,
/// `{"error": "text"}`, older vLLM's `{"object": "error", "message"}`, FastAPI's
/// `{"detail": "text"}`.
fn expected_message(rel: &str, body: &str) -> String {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{rel}: the error body is not JSON ({e})"));
    if let Some(message) = v["error"]["message"].as_str() {
        return message.to_owned();
    }
    if let Some(text) = v["error"].as_str() {
        return text.to_owned();
    }
    if v["object"] == "error" {
        return string(&v["message"]).unwrap();
    }
    if let Some(text) = v["detail"].as_str() {
        return text.to_owned();
    }
    panic!("{rel}: an error body of an unknown shape: {body}")
}

// ------------------------------------------------------------------------ .http replays

/// Sends the request of `endpoint` and checks the answer against the capture's JSON.
async fn check_success(rel: &str, endpoint: Endpoint, body: &Value, client: &VllmClient) {
    match endpoint {
        Endpoint::Chat => {
            let answer = client
                .chat
                .completions()
                .create()
                .model("smollm2-135m")
                .messages(hi())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            assert_eq!(seen_chat(&answer), expected_chat(body), "{rel}");
            // Nothing the server sent is lost.
            assert_eq!(&answer.raw, body, "{rel}: raw");
        }
        Endpoint::Completions => {
            let answer = client
                .completions
                .create()
                .model("smollm2-135m")
                .prompt("The capital of France is")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            let choices = answer
                .completion()
                .choices
                .iter()
                .map(|c| {
                    (
                        c.text.clone(),
                        c.finish_reason.as_ref().map(|f| f.as_str().to_owned()),
                    )
                })
                .collect();
            let seen = (
                answer.id.clone(),
                answer.model.clone(),
                answer.text.clone(),
                answer.finish_reason.clone(),
                answer.usage.as_ref().map(counts),
                choices,
            );
            assert_eq!(seen, expected_completion(body), "{rel}");
        }
        Endpoint::Models => {
            let list = client
                .models
                .list()
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            let seen: Vec<ModelSeen> = list
                .data
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.object.clone(),
                        m.owned_by.clone(),
                        m.root.clone(),
                        m.parent.clone(),
                        m.max_model_len,
                    )
                })
                .collect();
            assert_eq!(seen, expected_models(body), "{rel}");
        }
        Endpoint::Tokenize => {
            let t = client
                .tokenizer
                .tokenize()
                .model("smollm2-135m")
                .prompt("hello world")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            let seen = (t.tokens, t.count, t.max_model_len, t.token_strs);
            assert_eq!(seen, expected_tokenize(body), "{rel}");
        }
        Endpoint::Detokenize => {
            let text = client
                .tokenizer
                .detokenize()
                .model("smollm2-135m")
                .tokens([1, 2, 3])
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            assert_eq!(text.text(), expected_detokenize(body), "{rel}");
        }
        Endpoint::Embeddings => {
            let e = client
                .embeddings
                .create()
                .model("smollm2-135m-embed")
                .input(json!(["hello world", "goodbye"]))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
            let (model, vectors, usage) = expected_embeddings(body);
            assert_eq!(e.model, model, "{rel}");
            assert_eq!(e.usage.as_ref().map(counts), usage, "{rel}");
            assert_eq!(
                e.vectors.len(),
                vectors.len(),
                "{rel}: one vector per input"
            );
            for (i, (got, want)) in e.vectors.iter().zip(&vectors).enumerate() {
                assert_eq!(got.len(), want.len(), "{rel}: vector {i}'s dimensions");
                // Bit for bit: both sides turn the same numbers or bytes into `f32`s.
                if let Some(j) = (0..got.len()).find(|&j| got[j].to_bits() != want[j].to_bits()) {
                    panic!(
                        "{rel}: vector {i}[{j}] is {} instead of {}",
                        got[j], want[j]
                    );
                }
            }
        }
    }
}

/// The typed status error an error capture must give.
fn check_error(rel: &str, via: &str, e: &VllmError, status: u16, body: &str) {
    let message = expected_message(rel, body);
    let at = format!("{rel} via {via}: {e:?}");
    assert!(e.is_status(), "{at}");
    assert_eq!(e.status_code(), Some(status), "{at}");
    // `METHOD /path: 404 Not Found: <the server's message>`.
    let shown = e.to_string();
    assert!(shown.ends_with(&format!(": {message}")), "{at}");
    assert!(shown.contains(&format!(": {status} ")), "{at}");
    assert!(
        shown.starts_with("POST /") || shown.starts_with("GET /"),
        "{at}"
    );
    assert!(e.server_error().is_some(), "{at}");
    assert_eq!(
        e.server_message().as_deref(),
        Some(message.as_str()),
        "{at}"
    );
    assert_eq!(e.body_text(), Some(body), "{at}");
    assert_eq!(
        e.is_retryable(),
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
        "{at}"
    );
    assert!(!e.is_stream() && !e.is_decode() && !e.is_builder(), "{at}");
}

/// Every endpoint of the facade, given an error capture, returns its status error. Returns
/// how many requests that took.
async fn check_error_everywhere(rel: &str, status: u16, body: &str, client: &VllmClient) -> usize {
    let chat = || {
        client
            .chat
            .completions()
            .create()
            .model("smollm2-135m")
            .messages(hi())
    };
    let completion = || {
        client
            .completions
            .create()
            .model("smollm2-135m")
            .prompt("x")
    };
    let mut calls = 0;
    let mut check = |via: &str, e: VllmError| {
        check_error(rel, via, &e, status, body);
        calls += 1;
    };
    check("chat send", chat().send().await.unwrap_err());
    check("chat send_stream", chat().send_stream().await.unwrap_err());
    check("completions send", completion().send().await.unwrap_err());
    check(
        "completions send_stream",
        completion().send_stream().await.unwrap_err(),
    );
    check("models", client.models.list().send().await.unwrap_err());
    check(
        "tokenize",
        client
            .tokenizer
            .tokenize()
            .model("m")
            .prompt("x")
            .send()
            .await
            .unwrap_err(),
    );
    check(
        "detokenize",
        client
            .tokenizer
            .detokenize()
            .model("m")
            .tokens([1])
            .send()
            .await
            .unwrap_err(),
    );
    check(
        "embeddings",
        client
            .embeddings
            .create()
            .model("m")
            .input("x")
            .send()
            .await
            .unwrap_err(),
    );
    check("version", client.server.version().send().await.unwrap_err());
    check("metrics", client.server.metrics().send().await.unwrap_err());
    calls
}

#[tokio::test]
async fn every_http_capture_replays_exactly_whole_and_in_writes_down_to_1_byte() {
    bounded(async {
        for capture in captures() {
            let Capture::Http { rel } = capture else {
                continue;
            };
            let endpoint = Endpoint::of(&rel);
            let http = http_capture(&rel);
            let pieces: &[usize] = if rel.starts_with(WHOLE_ONLY) {
                &[0]
            } else {
                &PIECES
            };
            for &piece in pieces {
                let server = Server::always(http_reply(&http, piece)).await;
                let client = client(&server);
                let at = format!("{rel} in writes of {piece} bytes");
                if (200..300).contains(&http.status) {
                    let body: Value = serde_json::from_str(&http.body).unwrap();
                    check_success(&at, endpoint, &body, &client).await;
                    let requests = server.requests();
                    assert_eq!(requests.len(), 1, "{at}");
                    let (method, path) = endpoint.route();
                    assert_eq!(
                        (requests[0].method.as_str(), requests[0].path.as_str()),
                        (method, path),
                        "{at}"
                    );
                } else {
                    let calls = check_error_everywhere(&at, http.status, &http.body, &client).await;
                    // One request per call: an error status is not retried here.
                    assert_eq!(server.requests().len(), calls, "{at}");
                }
            }
        }
    })
    .await;
}

// ------------------------------------------------------------------------- .sse replays

/// What a stream carried, as the client reported it (or as the capture holds it).
#[derive(Debug, Default, PartialEq)]
struct Streamed {
    content: BTreeMap<u32, String>,
    reasoning: BTreeMap<u32, String>,
    /// The tool-call pieces, joined per (choice, call index): id, name, arguments.
    pieces: BTreeMap<(u32, u32), (String, String, String)>,
    /// The complete calls, per choice.
    calls: BTreeMap<u32, Vec<ToolCall>>,
    finished: Vec<(u32, String)>,
    usage: Vec<Counts>,
    done: bool,
    error: Option<String>,
}

/// A chat or a completion stream.
enum AnyStream {
    Chat(MessageStream),
    Completion(CompletionStream),
}

impl AnyStream {
    async fn next(&mut self) -> Option<StreamEvent> {
        match self {
            AnyStream::Chat(s) => s.next().await,
            AnyStream::Completion(s) => s.next().await,
        }
    }

    fn choice_index(&self) -> Option<u32> {
        match self {
            AnyStream::Chat(s) => s.choice_index(),
            AnyStream::Completion(s) => s.choice_index(),
        }
    }
}

async fn consume(rel: &str, endpoint: Endpoint, client: &VllmClient) -> Streamed {
    let stream = match endpoint {
        Endpoint::Chat => client
            .chat
            .completions()
            .create()
            .model("smollm2-135m")
            .messages(hi())
            .send_stream()
            .await
            .map(AnyStream::Chat),
        Endpoint::Completions => client
            .completions
            .create()
            .model("smollm2-135m")
            .prompt("Once upon a time")
            .send_stream()
            .await
            .map(AnyStream::Completion),
        other => panic!("{rel}: a stream from {other:?}"),
    };
    let mut stream = stream.unwrap_or_else(|e| panic!("{rel}: {e} ({e:?})"));
    let mut seen = Streamed::default();
    while let Some(event) = stream.next().await {
        assert!(
            !seen.done && seen.error.is_none(),
            "{rel}: an event after the end: {event:?}"
        );
        let choice = stream.choice_index();
        let of_choice = || choice.unwrap_or_else(|| panic!("{rel}: no choice index"));
        match event {
            StreamEvent::Content(text) => {
                seen.content.entry(of_choice()).or_default().push_str(&text)
            }
            StreamEvent::Reasoning(text) => seen
                .reasoning
                .entry(of_choice())
                .or_default()
                .push_str(&text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let entry = seen.pieces.entry((of_choice(), index)).or_default();
                if let Some(id) = id {
                    entry.0 = id;
                }
                if let Some(name) = name {
                    entry.1 = name;
                }
                entry.2.push_str(arguments.as_deref().unwrap_or_default());
            }
            StreamEvent::ToolCallComplete(call) => {
                seen.calls.entry(of_choice()).or_default().push(call)
            }
            StreamEvent::Finished { index, reason } => {
                assert_eq!(choice, Some(index), "{rel}: Finished is tagged");
                seen.finished.push((index, reason.to_string()));
            }
            StreamEvent::Usage(usage) => {
                assert_eq!(choice, None, "{rel}: usage belongs to no choice");
                seen.usage.push(counts(&usage));
            }
            StreamEvent::Done => seen.done = true,
            StreamEvent::Error(e) => seen.error = Some(e.to_string()),
            other => panic!("{rel}: an event this test does not know: {other:?}"),
        }
    }
    seen
}

/// What a captured stream holds, read straight from its bytes and JSON.
fn expected_stream(rel: &str, endpoint: Endpoint, sse: &[u8]) -> Streamed {
    let text = std::str::from_utf8(sse).unwrap().replace("\r\n", "\n");
    let mut seen = Streamed::default();
    for block in text.split("\n\n") {
        let mut data = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue; // a comment
            }
            match line.strip_prefix("data:") {
                Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
                None => panic!("{rel}: an SSE line this test does not know: {line:?}"),
            }
        }
        if data.is_empty() {
            continue;
        }
        let data = data.join("\n");
        if data == "[DONE]" {
            seen.done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(&data).unwrap();
        if !chunk["error"].is_null() {
            seen.error = Some(expected_message(rel, &data));
            break;
        }
        for choice in chunk["choices"].as_array().unwrap() {
            let i = number(&choice["index"]).unwrap();
            match endpoint {
                Endpoint::Completions => {
                    let piece = string(&choice["text"]).unwrap_or_default();
                    if !piece.is_empty() {
                        seen.content.entry(i).or_default().push_str(&piece);
                    }
                }
                _ => {
                    let delta = &choice["delta"];
                    if let Some(piece) = string(&delta["content"]).filter(|p| !p.is_empty()) {
                        seen.content.entry(i).or_default().push_str(&piece);
                    }
                    if let Some(piece) = reasoning_of(delta).filter(|p| !p.is_empty()) {
                        seen.reasoning.entry(i).or_default().push_str(&piece);
                    }
                    for call in delta["tool_calls"].as_array().into_iter().flatten() {
                        let entry = seen
                            .pieces
                            .entry((i, number(&call["index"]).unwrap()))
                            .or_default();
                        if let Some(id) = string(&call["id"]) {
                            entry.0 = id;
                        }
                        if let Some(name) = string(&call["function"]["name"]) {
                            entry.1 = name;
                        }
                        if let Some(arguments) = string(&call["function"]["arguments"]) {
                            entry.2.push_str(&arguments);
                        }
                    }
                }
            }
            if let Some(reason) = string(&choice["finish_reason"]) {
                seen.finished.push((i, reason));
            }
        }
        if let Some(usage) = counts_of_json(&chunk["usage"]) {
            seen.usage.push(usage);
        }
    }
    assert!(
        seen.done || seen.error.is_some(),
        "{rel}: a capture that ends without [DONE]; decide what the client should report"
    );
    // Each call the pieces make up, complete, in call order.
    for (&(choice, _), (id, name, arguments)) in &seen.pieces {
        seen.calls.entry(choice).or_default().push(ToolCall {
            id: id.clone(),
            name: name.clone(),
            arguments: arguments.clone(),
        });
    }
    seen
}

#[tokio::test]
async fn every_sse_capture_replays_exactly_whole_and_in_chunks_down_to_1_byte() {
    bounded(async {
        for capture in captures() {
            let Capture::Sse { rel, head } = capture else {
                continue;
            };
            let endpoint = Endpoint::of(&rel);
            let sse = support::fixture(&rel);
            let want = expected_stream(&rel, endpoint, &sse);
            for piece in PIECES {
                let server = Server::always(sse_reply(&rel, head.as_deref(), &sse, piece)).await;
                let got = consume(&rel, endpoint, &client(&server)).await;
                assert_eq!(got, want, "{rel} in chunks of {piece} bytes");
                let (method, path) = endpoint.route();
                let requests = server.requests();
                assert_eq!(
                    (requests[0].method.as_str(), requests[0].path.as_str()),
                    (method, path),
                    "{rel}"
                );
            }
        }
    })
    .await;
}
