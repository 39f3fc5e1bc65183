//! `send_stream()` against a local server replaying real captures byte for byte, whole and in
//! small pieces, and against streams that break in every way.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::{Reply, Server, bounded, fixture};
use vllm_client::{StreamEvent, ToolCall, Usage, VllmClient, json};

/// What a stream carried, as the client reports it.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    content: BTreeMap<u32, String>,
    reasoning: BTreeMap<u32, String>,
    calls: Vec<ToolCall>,
    finished: Vec<(u32, String)>,
    usage: Vec<Usage>,
    done: bool,
    error: Option<String>,
}

async fn consume(client: &VllmClient) -> Seen {
    let mut stream = client
        .chat
        .completions()
        .create()
        .model("smollm2-135m")
        .messages(json!([{"role": "user", "content": "hi"}]))
        .send_stream()
        .await
        .unwrap();
    let mut seen = Seen::default();
    while let Some(event) = stream.next().await {
        assert!(
            !seen.done && seen.error.is_none(),
            "an event after the end: {event:?}"
        );
        let choice = stream.choice_index();
        match event {
            StreamEvent::Content(t) => seen
                .content
                .entry(choice.unwrap())
                .or_default()
                .push_str(&t),
            StreamEvent::Reasoning(t) => seen
                .reasoning
                .entry(choice.unwrap())
                .or_default()
                .push_str(&t),
            StreamEvent::ToolCallComplete(call) => seen.calls.push(call),
            StreamEvent::Finished { index, reason } => {
                seen.finished.push((index, reason.to_string()))
            }
            StreamEvent::Usage(u) => seen.usage.push(u),
            StreamEvent::Done => seen.done = true,
            StreamEvent::Error(e) => seen.error = Some(e.to_string()),
            _ => {}
        }
    }
    seen
}

/// What the capture holds, computed straight from its JSON (no client code).
fn expected(sse: &[u8]) -> Seen {
    let text = String::from_utf8(sse.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let mut seen = Seen::default();
    let mut args: BTreeMap<(u32, u32), (String, String, String)> = BTreeMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            seen.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        for choice in chunk["choices"].as_array().unwrap() {
            let i = choice["index"].as_u64().unwrap() as u32;
            let delta = &choice["delta"];
            for (key, map) in [
                ("content", &mut seen.content),
                ("reasoning", &mut seen.reasoning),
            ] {
                let piece = delta[key].as_str().or_else(|| {
                    if key == "reasoning" {
                        delta["reasoning_content"].as_str()
                    } else {
                        None
                    }
                });
                if let Some(piece) = piece.filter(|p| !p.is_empty()) {
                    map.entry(i).or_default().push_str(piece);
                }
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let entry = args
                    .entry((i, call["index"].as_u64().unwrap() as u32))
                    .or_default();
                if let Some(id) = call["id"].as_str() {
                    entry.0 = id.into();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.1 = name.into();
                }
                if let Some(a) = call["function"]["arguments"].as_str() {
                    entry.2.push_str(a);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                seen.finished.push((i, reason.into()));
            }
        }
        if chunk["usage"].is_object() {
            let u = &chunk["usage"];
            seen.usage.push(Usage {
                prompt_tokens: u["prompt_tokens"].as_u64().unwrap() as u32,
                completion_tokens: u["completion_tokens"].as_u64().unwrap() as u32,
                total_tokens: u["total_tokens"].as_u64().unwrap() as u32,
                prompt_tokens_details: serde_json::from_value(u["prompt_tokens_details"].clone())
                    .unwrap(),
                completion_tokens_details: serde_json::from_value(
                    u["completion_tokens_details"].clone(),
                )
                .unwrap(),
            });
        }
    }
    seen.calls = args
        .into_values()
        .map(|(id, name, arguments)| ToolCall {
            id,
            name,
            arguments,
        })
        .collect();
    seen
}

#[tokio::test]
async fn crlf_line_ends_give_the_same_events() {
    bounded(async {
        let sse = fixture("vllm-0.32-cpu/think/tools_stream.sse");
        let want = expected(&sse);
        let crlf = String::from_utf8(sse)
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        for piece in [0, 1, 3] {
            let server = Server::always(Reply::sse(&crlf, piece, false)).await;
            assert_eq!(consume(&VllmClient::new(&server.base_url)).await, want);
        }
    })
    .await;
}

fn chunk(choices: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{choices}]}}\n\n"
    )
}

#[tokio::test]
async fn multibyte_content_split_anywhere_comes_out_exact() {
    bounded(async {
        let text = "héllo wörld — 日本語 🦀🦀 ok";
        let mut body = String::new();
        for word in text.split_inclusive(' ') {
            body.push_str(&chunk(&format!(
                r#"{{"index":0,"delta":{{"content":{}}}}}"#,
                json!(word)
            )));
        }
        body.push_str("data: [DONE]\n\n");
        for piece in [1, 2, 3, 5] {
            let server = Server::always(Reply::sse(body.as_bytes(), piece, false)).await;
            let got = consume(&VllmClient::new(&server.base_url)).await;
            assert_eq!(
                got.content.get(&0).map(String::as_str),
                Some(text),
                "pieces of {piece}"
            );
            assert!(got.done && got.error.is_none());
        }
    })
    .await;
}

#[tokio::test]
async fn usage_is_requested_by_default_and_the_users_stream_options_win() {
    bounded(async {
        let server = Server::always(Reply::sse(b"data: [DONE]\n\n", 0, false)).await;
        let client = VllmClient::new(&server.base_url);
        let builder = || {
            client
                .chat
                .completions()
                .create()
                .model("m")
                .messages(json!([]))
        };
        builder()
            .send_stream()
            .await
            .unwrap()
            .collect_content()
            .await
            .unwrap();
        builder()
            .stream_options(json!({"include_usage": false}))
            .send_stream()
            .await
            .unwrap()
            .collect_content()
            .await
            .unwrap();
        let requests = server.requests();
        assert_eq!(requests[0].json()["stream"], true);
        assert_eq!(
            requests[0].json()["stream_options"],
            json!({"include_usage": true})
        );
        assert_eq!(requests[0].header("accept"), Some("text/event-stream"));
        assert_eq!(
            requests[1].json()["stream_options"],
            json!({"include_usage": false})
        );
    })
    .await;
}

#[tokio::test]
async fn a_mid_stream_error_event_is_an_error_with_the_servers_message() {
    bounded(async {
        let body = format!(
            "{}data: {{\"error\":{{\"message\":\"KV cache exhausted\",\"type\":\"InternalServerError\",\"code\":500}}}}\n\n",
            chunk(r#"{"index":0,"delta":{"content":"par"}}"#)
        );
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let got = consume(&VllmClient::new(&server.base_url)).await;
        assert_eq!(got.content[&0], "par");
        assert_eq!(got.error.as_deref(), Some("KV cache exhausted"));
        assert!(!got.done);
    })
    .await;
}

#[tokio::test]
async fn a_body_cut_off_before_done_is_an_error() {
    bounded(async {
        // Cut between events, and in the middle of one.
        let whole = chunk(r#"{"index":0,"delta":{"content":"a"}}"#);
        for body in [whole.clone(), whole[..whole.len() - 10].to_owned()] {
            for truncate in [true, false] {
                let server = Server::always(Reply::sse(body.as_bytes(), 0, truncate)).await;
                let got = consume(&VllmClient::new(&server.base_url)).await;
                assert!(!got.done, "{body:?}");
                let error = got
                    .error
                    .unwrap_or_else(|| panic!("no error for {body:?} truncate={truncate}"));
                assert!(!error.is_empty());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_undecodable_chunk_is_an_error_naming_it() {
    bounded(async {
        let server = Server::always(Reply::sse(b"data: {\"choices\": 5}\n\n", 0, false)).await;
        let got = consume(&VllmClient::new(&server.base_url)).await;
        let error = got.error.unwrap();
        assert!(error.contains("stream chunk"), "{error}");
        let server = Server::always(Reply::sse(b"data: \xff\xfe\n\n", 0, false)).await;
        let got = consume(&VllmClient::new(&server.base_url)).await;
        assert!(got.error.is_some());
        assert!(!got.done);
    })
    .await;
}

#[tokio::test]
async fn an_http_error_comes_from_send_stream_itself() {
    bounded(async {
        let server = Server::always(Reply::json(
            404,
            r#"{"error":{"message":"The model `nope` does not exist.","type":"NotFoundError","param":"model","code":404}}"#,
        ))
        .await;
        let client = VllmClient::new(&server.base_url);
        let err = client
            .chat
            .completions()
            .create()
            .model("nope")
            .messages(json!([]))
            .send_stream()
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), Some(404));
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 404 Not Found: The model `nope` does not exist."
        );
    })
    .await;
}

#[tokio::test]
async fn n_2_streams_keep_choices_apart() {
    bounded(async {
        let mut body = String::new();
        body.push_str(&chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}},{"index":1,"delta":{"role":"assistant","content":""}}"#));
        body.push_str(&chunk(r#"{"index":1,"delta":{"content":"B1"}}"#));
        body.push_str(&chunk(r#"{"index":0,"delta":{"content":"A1"}}"#));
        body.push_str(&chunk(r#"{"index":0,"delta":{"content":"A2"},"finish_reason":"stop"}"#));
        body.push_str(&chunk(r#"{"index":1,"delta":{"content":"B2"},"finish_reason":"length"}"#));
        body.push_str("data: [DONE]\n\n");
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let got = consume(&VllmClient::new(&server.base_url)).await;
        assert_eq!(got.content[&0], "A1A2");
        assert_eq!(got.content[&1], "B1B2");
        assert_eq!(got.finished, vec![(0, "stop".into()), (1, "length".into())]);
    })
    .await;
}

#[tokio::test]
async fn hermes_shapes_id_first_then_name_and_several_calls_at_one_index() {
    bounded(async {
        let mut body = String::new();
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-1","type":"function","index":0}]}}"#));
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather"}}]}}"#));
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Par"}}]}}"#));
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]}}"#));
        // A second call reported at the same index, with a new id.
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-2","type":"function","index":0,"function":{"name":"get_time","arguments":""}}]}}"#));
        // Its arguments arrive in the finish chunk.
        body.push_str(&chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"tz\": \"CET\"}"}}]},"finish_reason":"tool_calls"}"#));
        body.push_str("data: [DONE]\n\n");
        let server = Server::always(Reply::sse(body.as_bytes(), 1, false)).await;
        let got = consume(&VllmClient::new(&server.base_url)).await;
        assert_eq!(
            got.calls,
            vec![
                ToolCall { id: "chatcmpl-tool-1".into(), name: "get_weather".into(), arguments: "{\"city\": \"Paris\"}".into() },
                ToolCall { id: "chatcmpl-tool-2".into(), name: "get_time".into(), arguments: "{\"tz\": \"CET\"}".into() },
            ]
        );
        assert_eq!(got.calls[1].parse_args().unwrap(), json!({"tz": "CET"}));
    })
    .await;
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout_and_says_so() {
    bounded(async {
        let events = vec![
            chunk(r#"{"index":0,"delta":{"content":"a"}}"#),
            "data: [DONE]\n\n".to_owned(),
        ];
        let server = Server::always(Reply::sse_events(&events, Duration::from_millis(1500))).await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .stream_idle_timeout(Duration::from_millis(300))
            .build();
        let mut stream = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send_stream()
            .await
            .unwrap();
        let Some(StreamEvent::Error(e)) = stream.next().await else {
            panic!("expected an idle timeout")
        };
        assert!(e.is_timeout(), "{e:?}");
        assert!(e.to_string().contains("idle"), "{e}");
        assert!(stream.next().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_long_stream_is_not_cut_off_by_the_request_timeout() {
    bounded(async {
        let events: Vec<String> = (0..6)
            .map(|i| chunk(&format!(r#"{{"index":0,"delta":{{"content":"{i}"}}}}"#)))
            .chain(["data: [DONE]\n\n".to_owned()])
            .collect();
        let server = Server::always(Reply::sse_events(&events, Duration::from_millis(250))).await;
        let client = VllmClient::builder()
            .base_url(&server.base_url)
            .timeout(Duration::from_millis(600))
            .build();
        let got = consume(&client).await;
        assert_eq!(got.error, None);
        assert_eq!(got.content[&0], "012345");
    })
    .await;
}

#[tokio::test]
async fn streams_reuse_the_pooled_connection() {
    bounded(async {
        let body = format!(
            "{}data: [DONE]\n\n",
            chunk(r#"{"index":0,"delta":{"content":"x"}}"#)
        );
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let client = VllmClient::new(&server.base_url);
        for _ in 0..5 {
            assert!(consume(&client).await.done);
        }
        assert_eq!(server.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn legacy_completion_streams_yield_text() {
    bounded(async {
        let sse = fixture("vllm-0.32-cpu/nothink/completions_stream.sse");
        let server = Server::always(Reply::sse(&sse, 3, false)).await;
        let client = VllmClient::new(&server.base_url);
        let mut stream = client
            .completions
            .create()
            .model("smollm2-135m")
            .prompt("The capital of France is")
            .send_stream()
            .await
            .unwrap();
        let mut text = String::new();
        let mut done = false;
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Content(t) => text.push_str(&t),
                StreamEvent::Done => done = true,
                StreamEvent::Error(e) => panic!("{e}"),
                _ => {}
            }
        }
        let want: String = String::from_utf8(sse)
            .unwrap()
            .split("\n\n")
            .filter_map(|b| b.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
            .collect();
        assert!(done);
        assert_eq!(text, want);
        assert_eq!(server.requests()[0].path, "/v1/completions");
    })
    .await;
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_says_so() {
    bounded(async {
        // A server (or proxy) that ignores `stream` and answers the whole completion.
        let whole = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
        let server = Server::always(Reply::json(200, whole)).await;
        let client = VllmClient::new(&server.base_url);
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .send_stream()
            .await
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("answered the stream request with JSON, not an event stream"),
            "{shown}"
        );
        assert!(shown.contains("chat.completion"), "{shown}");
        assert!(!shown.contains("middle of a line"), "{shown}");
        // An error in JSON with a 200: the server's own message.
        let server = Server::always(Reply::json(
            200,
            r#"{"error":{"message":"streaming is disabled","type":"BadRequestError","code":400}}"#,
        ))
        .await;
        let err = VllmClient::new(&server.base_url)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .send_stream()
            .await
            .unwrap_err();
        assert!(err.is_server_event(), "{err:?}");
        assert_eq!(err.to_string(), "streaming is disabled");
    })
    .await;
}

#[tokio::test]
async fn the_stream_ends_at_done_even_when_the_body_stays_open() {
    bounded(async {
        let events = format!(
            "{}data: [DONE]\n\n",
            chunk(r#"{"index":0,"delta":{"content":"hi"}}"#)
        );
        // First answer: [DONE], then the body stays open for 10 s before its last chunk.
        // Second: [DONE] and the body's end together.
        let server = Server::start(move |_, n| {
            let mut reply = Reply::sse(events.as_bytes(), 0, false);
            if n == 0 {
                let end = reply.parts.pop().unwrap();
                reply
                    .parts
                    .push(support::Part::Delay(Duration::from_secs(10)));
                reply.parts.push(end);
            }
            reply
        })
        .await;
        let client = VllmClient::new(&server.base_url);
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let got = consume(&client).await;
            assert!(got.done && got.error.is_none());
            assert_eq!(got.content[&0], "hi");
            // No wait for a body that does not end (it used to be a fixed second).
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "{:?}",
                started.elapsed()
            );
            // The rest of a body is read in the background (up to a second): let an
            // ended one go back to the pool before the next request.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The body left open was not waited for and its connection not reused; the ones
        // whose end came were.
        assert_eq!(server.connections(), 2);
    })
    .await;
}
