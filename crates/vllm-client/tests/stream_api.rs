//! The 0.2 stream API: `try_next` (failures are `Err`, the end is `Ok(None)`),
//! `into_try_stream`, the typed chunks, `final_response` and `timings`, against local servers.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use support::{Reply, Server, assert_same_answer, bounded, fixture, fixture_http};
use vllm_client::types::{ChatCompletion, ChatCompletionChunk, FinishReason};
use vllm_client::{MessageStream, StreamEvent, VllmClient, VllmError, json};

fn chunk(choices: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{choices}]}}\n\n"
    )
}

fn content(text: &str) -> String {
    chunk(&format!(
        r#"{{"index":0,"delta":{{"content":{}}}}}"#,
        json!(text)
    ))
}

const DONE: &str = "data: [DONE]\n\n";

async fn open(client: &VllmClient) -> Result<MessageStream, VllmError> {
    client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": "hi"}]))
        .send_stream()
        .await
}

/// The way the docs read a stream: `?` on `send_stream` and on every `try_next`, and a
/// catch-all arm. Any failure must come out of here as `Err`.
async fn read_text(client: &VllmClient) -> Result<String, VllmError> {
    let mut stream = open(client).await?;
    let mut text = String::new();
    while let Some(event) = stream.try_next().await? {
        // The catch-all arm is the point: it must not be able to swallow a failure.
        #[allow(clippy::single_match)]
        match event {
            StreamEvent::Content(t) => text.push_str(&t),
            _ => {}
        }
    }
    Ok(text)
}

fn client_for(server: &Server) -> VllmClient {
    VllmClient::builder()
        .base_url(&server.base_url)
        .max_retries(0)
        .stream_idle_timeout(Duration::from_millis(300))
        .build()
}

#[tokio::test]
async fn every_way_a_stream_fails_is_an_err_that_a_catch_all_arm_cannot_hide() {
    bounded(async {
        let part = content("par");
        let error_event = format!(
            "{part}data: {{\"error\":{{\"message\":\"KV cache exhausted\",\"type\":\"InternalServerError\",\"code\":500}}}}\n\n"
        );
        type Check = fn(&VllmError) -> bool;
        let cases: Vec<(&str, Reply, Check)> = vec![
            (
                "an error status",
                Reply::json(
                    503,
                    r#"{"error":{"message":"overloaded","type":"x","code":503}}"#,
                ),
                |e| e.status_code() == Some(503) && e.to_string().contains("overloaded"),
            ),
            (
                "a connection cut before [DONE]",
                Reply::sse(part.as_bytes(), 0, true),
                VllmError::is_stream,
            ),
            (
                "a body that ends without [DONE]",
                Reply::sse(part.as_bytes(), 0, false),
                |e| e.is_stream() && e.to_string().contains("[DONE]"),
            ),
            (
                "a body cut in the middle of an event",
                Reply::sse(&part.as_bytes()[..part.len() - 7], 0, false),
                VllmError::is_stream,
            ),
            (
                "a mid-stream error event",
                Reply::sse(error_event.as_bytes(), 0, false),
                |e| e.is_server_event() && e.to_string() == "KV cache exhausted",
            ),
            (
                "an undecodable chunk",
                Reply::sse(format!("{part}data: {{\"choices\": 5}}\n\n").as_bytes(), 0, false),
                VllmError::is_decode,
            ),
            (
                "a stalled stream (idle timeout)",
                Reply::sse_events(&[part.clone(), DONE.into()], Duration::from_millis(1500)),
                VllmError::is_timeout,
            ),
        ];
        for (what, reply, check) in cases {
            let server = Server::always(reply).await;
            let err = read_text(&client_for(&server))
                .await
                .expect_err(&format!("{what}: no error"));
            assert!(check(&err), "{what}: {err} ({err:?})");
        }
        // And the clean stream reads to its end.
        let body = format!("{part}{}{DONE}", content("tial"));
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        assert_eq!(read_text(&client_for(&server)).await.unwrap(), "partial");
    })
    .await;
}

#[tokio::test]
async fn after_the_end_try_next_keeps_saying_so() {
    bounded(async {
        let body = format!("{}{DONE}", content("a"));
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        assert!(matches!(
            stream.try_next().await,
            Ok(Some(StreamEvent::Content(_)))
        ));
        assert!(stream.try_next().await.unwrap().is_none());
        assert!(stream.try_next().await.unwrap().is_none());
        assert!(stream.next().await.is_none(), "Done was reported already");

        // After a failure: the error once, then an error saying it failed earlier, never
        // `Ok(None)` (which means a clean end).
        let cut = content("a");
        let server = Server::always(Reply::sse(cut.as_bytes(), 0, true)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        assert!(stream.try_next().await.unwrap().is_some());
        let first = stream.try_next().await.unwrap_err();
        assert!(first.is_stream(), "{first:?}");
        let again = stream.try_next().await.unwrap_err();
        assert!(again.to_string().contains("failed earlier"), "{again}");
        assert!(stream.try_next_chunk().await.is_err());
        assert!(stream.final_response().is_none());
    })
    .await;
}

#[tokio::test]
async fn the_seed_api_still_ends_with_done_or_error_events() {
    bounded(async {
        let body = format!("{}{DONE}", content("a"));
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        assert!(matches!(stream.next().await, Some(StreamEvent::Content(_))));
        assert!(matches!(stream.next().await, Some(StreamEvent::Done)));
        assert!(stream.next().await.is_none());

        let server = Server::always(Reply::sse(content("a").as_bytes(), 0, true)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        assert!(matches!(stream.next().await, Some(StreamEvent::Content(_))));
        assert!(matches!(stream.next().await, Some(StreamEvent::Error(_))));
        assert!(stream.next().await.is_none());
    })
    .await;
}

/// Polls a `Stream` to its end.
async fn drain<S: Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
    let mut items = Vec::new();
    while let Some(item) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        items.push(item);
    }
    items
}

#[tokio::test]
async fn into_try_stream_gives_results_and_ends_after_the_error() {
    bounded(async {
        let body = format!(
            "{}{}data: {{\"error\":{{\"message\":\"boom\",\"code\":500}}}}\n\n{}",
            content("a"),
            content("b"),
            content("never")
        );
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let items = drain(open(&client_for(&server)).await.unwrap().into_try_stream()).await;
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(&items[0], Ok(StreamEvent::Content(t)) if t == "a"));
        assert!(matches!(&items[1], Ok(StreamEvent::Content(t)) if t == "b"));
        assert!(matches!(&items[2], Err(e) if e.to_string() == "boom"));

        let body = format!("{}{DONE}", content("a"));
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let items = drain(open(&client_for(&server)).await.unwrap().into_try_stream()).await;
        assert_eq!(items.len(), 1, "Done is the end, not an item: {items:?}");
        assert!(items[0].is_ok());
    })
    .await;
}

/// The data of every SSE event of a capture (`[DONE]` included).
fn data_lines(sse: &[u8]) -> Vec<String> {
    String::from_utf8(sse.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|block| block.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_chunk_arrives_typed_and_whole() {
    bounded(async {
        for rel in [
            "vllm-0.32-cpu/think/stream.sse",
            "vllm-0.32-cpu/think/tools_stream.sse",
            "vllm-0.32-cpu/nothink/stream.sse",
            "llama-server/tools_stream.sse",
        ] {
            let sse = fixture(rel);
            let want: Vec<ChatCompletionChunk> = data_lines(&sse)
                .iter()
                .filter(|d| *d != "[DONE]")
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            for piece in [0, 7] {
                let server = Server::always(Reply::sse(&sse, piece, false)).await;
                let mut stream = open(&client_for(&server)).await.unwrap();
                let mut got = Vec::new();
                while let Some(chunk) = stream.try_next_chunk().await.unwrap() {
                    got.push(chunk.clone());
                }
                assert_eq!(got.len(), want.len(), "{rel}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "{rel}");
                    // Whole: the members the types do not model too, and the nulls.
                    assert_eq!(
                        serde_json::to_value(g).unwrap(),
                        serde_json::to_value(w).unwrap(),
                        "{rel}"
                    );
                }
                assert_eq!(stream.timings().chunks(), want.len() as u64);
                assert!(stream.final_response().is_some(), "{rel}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn chunk_names_the_chunk_the_last_event_came_from() {
    bounded(async {
        let body = format!(
            "{}{}{DONE}",
            chunk(
                r#"{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}]},"token_ids":[64]}"#
            ),
            chunk(
                r#"{"index":0,"delta":{"content":"b"},"finish_reason":"stop","stop_reason":"END","token_ids":[65]}"#
            ),
        );
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        assert!(stream.chunk().is_none());
        let Some(StreamEvent::Content(a)) = stream.try_next().await.unwrap() else {
            panic!()
        };
        assert_eq!(a, "a");
        let first = stream.chunk().unwrap();
        let logprobs = first.choices[0].logprobs.as_ref().unwrap();
        assert_eq!(logprobs.content.as_ref().unwrap()[0].logprob, -0.5);
        assert_eq!(first.choices[0].token_ids, Some(vec![64]));
        // The next chunk's events, then the chunk itself.
        assert!(matches!(
            stream.try_next().await.unwrap(),
            Some(StreamEvent::Content(_))
        ));
        let Some(StreamEvent::Finished { index: 0, reason }) = stream.try_next().await.unwrap()
        else {
            panic!()
        };
        assert_eq!(reason, FinishReason::Stop);
        assert_eq!(reason, "stop");
        let second = stream.chunk().unwrap();
        assert_eq!(
            second.choices[0].stop_reason,
            Some(vllm_client::types::StopReason::Text("END".into()))
        );
        assert!(stream.try_next().await.unwrap().is_none());

        // The whole response keeps what the chunks carried.
        let response = stream.final_response().unwrap();
        let choice = &response.completion().choices[0];
        assert_eq!(choice.message.content.as_deref(), Some("ab"));
        assert_eq!(choice.token_ids, Some(vec![64, 65]));
        assert_eq!(
            choice.logprobs.as_ref().unwrap().content.as_ref().unwrap().len(),
            1
        );
        assert_eq!(response.typed_finish_reason(), Some(&FinishReason::Stop));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    })
    .await;
}

#[tokio::test]
async fn reading_chunks_after_events_drops_the_unread_events_only() {
    bounded(async {
        let body = format!(
            "{}{}{}{DONE}",
            chunk(r#"{"index":0,"delta":{"reasoning":"r"}},{"index":1,"delta":{"content":"x"}}"#),
            content("b"),
            content("c")
        );
        let server = Server::always(Reply::sse(body.as_bytes(), 0, false)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        // One event of the first chunk, then its second event is dropped by reading a chunk.
        assert!(matches!(
            stream.try_next().await.unwrap(),
            Some(StreamEvent::Reasoning(_))
        ));
        let second = stream.try_next_chunk().await.unwrap().unwrap();
        assert_eq!(second.choices[0].delta.content.as_deref(), Some("b"));
        assert!(matches!(
            stream.try_next().await.unwrap(),
            Some(StreamEvent::Content(c)) if c == "c"
        ));
        assert!(stream.try_next().await.unwrap().is_none());
        // Nothing is lost from the response, whichever way the chunks were read.
        let response = stream.final_response().unwrap();
        let choices = &response.completion().choices;
        assert_eq!(choices[0].message.content.as_deref(), Some("bc"));
        assert_eq!(choices[0].message.reasoning.as_deref(), Some("r"));
        assert_eq!(choices[1].message.content.as_deref(), Some("x"));
    })
    .await;
}

#[tokio::test]
async fn a_captured_stream_adds_up_to_the_captured_whole_answer() {
    bounded(async {
        // The same greedy request to real vLLM 0.32, streamed and not: a forced tool call
        // after some reasoning.
        let sse = fixture("vllm-0.32-cpu/think/tools_stream.sse");
        let (_, whole) = fixture_http("vllm-0.32-cpu/think/tools.http");
        let whole: ChatCompletion = serde_json::from_str(&whole).unwrap();
        let server = Server::always(Reply::sse(&sse, 5, false)).await;
        let stream = open(&client_for(&server)).await.unwrap();
        let response = stream.collect_response().await.unwrap();
        assert_same_answer(response.completion(), &whole, "think/tools");
        assert_eq!(response.content.as_deref(), Some(""));
        assert!(response.has_tool_calls());
        assert_eq!(response.raw["object"], "chat.completion");
    })
    .await;
}

#[tokio::test]
async fn streamed_and_whole_answers_of_the_mock_are_the_same() {
    bounded(async {
        let mock = vllm_mock::MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let tool = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
        let requests: Vec<(&str, vllm_client::ChatCompletionBuilder)> = vec![
            (
                "n=1",
                client.chat.completions().create().model("echo")
                    .messages(json!([{"role": "user", "content": "Hello there, world!"}])),
            ),
            (
                "n=2 with reasoning",
                client.chat.completions().create().model("echo").n(2).thinking_token_budget(4)
                    .messages(json!([{"role": "user", "content": "Two answers, please."}])),
            ),
            (
                "cut by max_tokens",
                client.chat.completions().create().model("echo").max_tokens(3)
                    .messages(json!([{"role": "user", "content": "a b c d e f g h"}])),
            ),
            (
                "cut inside the reasoning",
                client.chat.completions().create().model("echo").max_tokens(2).thinking_token_budget(8)
                    .messages(json!([{"role": "user", "content": "think first"}])),
            ),
            (
                "a tool call",
                client.chat.completions().create().model("echo").tools(tool.clone())
                    .tool_choice(json!("required"))
                    .messages(json!([{"role": "user", "content": "Weather in Paris?"}])),
            ),
        ];
        for (what, builder) in requests {
            let body = builder.build_body().unwrap();
            let again = || {
                client.chat.completions().create().extra(body.clone())
                    .model(body["model"].as_str().unwrap())
                    .messages(body["messages"].clone())
            };
            let whole = again().send().await.unwrap();
            let mut stream = again().send_stream().await.unwrap();
            assert!(stream.final_response().is_none(), "{what}: not before the end");
            while stream.try_next().await.unwrap().is_some() {}
            let streamed = stream.final_response().unwrap();
            assert_same_answer(streamed.completion(), whole.completion(), what);
            assert_eq!(streamed.usage, whole.usage, "{what}");
            assert_eq!(streamed.content, whole.content, "{what}");
            assert_eq!(streamed.reasoning_content, whole.reasoning_content, "{what}");
            assert_eq!(streamed.finish_reason, whole.finish_reason, "{what}");
            assert_eq!(
                streamed.tool_calls.as_ref().map(Vec::len),
                whole.tool_calls.as_ref().map(Vec::len),
                "{what}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn timings_are_taken_as_the_chunks_arrive() {
    bounded(async {
        let gap = Duration::from_millis(120);
        let events = vec![
            chunk(r#"{"index":0,"delta":{"role":"assistant","content":""}}"#),
            chunk(r#"{"index":0,"delta":{"reasoning":"hmm"}}"#),
            content("Hi"),
            content("!"),
            DONE.to_owned(),
        ];
        let server = Server::always(Reply::sse_events(&events, gap)).await;
        let mut stream = open(&client_for(&server)).await.unwrap();
        let t = *stream.timings();
        assert_eq!(t.chunks(), 0);
        assert!(t.first_chunk().is_none() && t.first_token().is_none());
        assert!(t.started() <= t.response_head());
        let mut gaps = Vec::new();
        while stream.try_next_chunk().await.unwrap().is_some() {
            gaps.extend(stream.timings().last_gap());
        }
        let t = stream.timings();
        assert_eq!(t.chunks(), 4);
        assert_eq!(gaps.len(), 3, "a gap per chunk after the first");
        // The server waits `gap` before each event, so no gap can be much shorter.
        assert!(gaps.iter().all(|g| *g >= gap / 2), "{gaps:?}");
        assert_eq!(t.max_gap(), gaps.iter().copied().max().unwrap());
        let (first, reasoning, content) = (
            t.first_chunk().unwrap(),
            t.first_reasoning().unwrap(),
            t.first_content().unwrap(),
        );
        assert!(t.response_head() <= first && first < reasoning && reasoning < content);
        assert_eq!(t.first_token(), Some(reasoning));
        assert!(content <= t.last_chunk().unwrap());
        assert!(
            t.last_chunk().unwrap() < t.last_event().unwrap(),
            "[DONE] came last"
        );
        assert!(t.time_to_first_token().unwrap() >= gap);
        assert!(t.time_to_first_content().unwrap() > t.time_to_first_token().unwrap());
        assert!(t.elapsed().unwrap() >= gap * 4);
    })
    .await;
}
