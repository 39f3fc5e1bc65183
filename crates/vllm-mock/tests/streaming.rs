//! Streamed chat and completions: vLLM's chunk sequence byte for byte in shape, events
//! through the facade, `n > 1`, stops, limits and tool calls in every stream shape.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{bounded, fixture_events, raw, shape};
use vllm_client::{MessageStream, StreamEvent, ToolCall, Usage, VllmClient, json};
use vllm_mock::{Behavior, MockServer, ToolCallStyle, tokenizer};

/// What a stream carried, per choice.
#[derive(Debug, Default)]
struct Seen {
    content: BTreeMap<u32, String>,
    reasoning: BTreeMap<u32, String>,
    content_events: usize,
    calls: Vec<ToolCall>,
    finished: Vec<(u32, String)>,
    usage: Vec<Usage>,
    done: bool,
    error: Option<vllm_client::VllmError>,
}

async fn consume(mut stream: MessageStream) -> Seen {
    let mut seen = Seen::default();
    while let Some(event) = stream.next().await {
        assert!(
            !seen.done && seen.error.is_none(),
            "an event after the end: {event:?}"
        );
        let choice = stream.choice_index();
        match event {
            StreamEvent::Content(t) => {
                seen.content_events += 1;
                seen.content
                    .entry(choice.unwrap())
                    .or_default()
                    .push_str(&t);
            }
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
            StreamEvent::Error(e) => seen.error = Some(e),
            _ => {}
        }
    }
    seen
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {
            "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
    ])
}

#[tokio::test]
async fn the_chunk_sequence_is_vllms() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = json!({
            "model": "echo",
            "messages": [{"role": "user", "content": "Count from one to five."}],
            "max_tokens": 8, "stream": true, "stream_options": {"include_usage": true},
            "thinking_token_budget": 3,
        });
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-type"), Some("text/event-stream; charset=utf-8"));
        assert_eq!(got.header("transfer-encoding"), Some("chunked"));
        let events = got.events();
        let real = fixture_events("think/stream.sse");
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let real: Vec<Value> = real[..real.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        // First chunk, a reasoning chunk, a content chunk, the finish chunk, the usage chunk.
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(shape(&chunks[0]), shape(&real[0]));
        assert_eq!(shape(&chunks[1]), shape(&real[1]));
        assert_eq!(shape(&chunks[4]), shape(&real[6]));
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert_eq!(shape(finish), shape(&real[real.len() - 2]));
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(shape(usage), shape(real.last().unwrap()));
        assert_eq!(usage["usage"]["completion_tokens"], 8);
        assert_eq!(usage["usage"]["completion_tokens_details"]["reasoning_tokens"], 3);
        // Every chunk shares the id; one chunk per piece.
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
        assert_eq!(chunks.len(), 1 + 8 + 1);

        // Without include_usage, the finish chunk carries the fingerprint (as vLLM's do).
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let events = got.events();
        let finish: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert_eq!(finish["choices"][0]["delta"], json!({"content": ""}));
        assert!(finish["system_fingerprint"].is_string());
        assert!(events.iter().all(|e| !e.contains("\"usage\"")));
    })
    .await;
}

#[tokio::test]
async fn the_client_reads_content_reasoning_usage_and_done() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let stream = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "Hello, streaming world!"}]))
            .thinking_token_budget(4)
            .send_stream()
            .await
            .unwrap();
        let seen = consume(stream).await;
        assert!(seen.error.is_none(), "{:?}", seen.error);
        assert!(seen.done);
        assert_eq!(seen.content[&0], "Hello, streaming world!");
        assert_eq!(seen.content_events, 5);
        assert_eq!(tokenizer::count(&seen.reasoning[&0]), 4);
        assert_eq!(seen.finished, vec![(0, "stop".to_owned())]);
        // The client asks for usage by default; the mock sends the real counts.
        assert_eq!(seen.usage.len(), 1);
        assert_eq!(seen.usage[0].completion_tokens, 4 + 5);
        assert_eq!(seen.usage[0].reasoning_tokens(), Some(4));
    })
    .await;
}

#[tokio::test]
async fn n_choices_stream_interleaved_and_stay_apart() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let stream = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "alpha beta gamma"}]))
            .n(3)
            .max_tokens(2)
            .send_stream()
            .await
            .unwrap();
        let seen = consume(stream).await;
        assert!(seen.done, "{:?}", seen.error);
        assert_eq!(seen.content.len(), 3);
        for i in 0..3 {
            assert_eq!(seen.content[&i], "alpha beta");
        }
        let mut finished = seen.finished.clone();
        finished.sort();
        assert_eq!(
            finished,
            (0..3).map(|i| (i, "length".to_owned())).collect::<Vec<_>>()
        );
        assert_eq!(seen.usage[0].completion_tokens, 6);

        // On the wire, choice 0, 1, 2 take turns.
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "x y"}], "n": 2, "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let indexes: Vec<u64> = got.events()[..got.events().len() - 1]
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap()["choices"][0]["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indexes, [0, 1, 0, 1, 0, 1, 0, 1]);
    })
    .await;
}

#[tokio::test]
async fn stop_sequences_and_max_tokens_end_streams() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let stream = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "one two three four five"}]))
            .stop(json!(["four"]))
            .send_stream()
            .await
            .unwrap();
        let seen = consume(stream).await;
        assert_eq!(seen.content[&0], "one two three ");
        assert_eq!(seen.finished, vec![(0, "stop".to_owned())]);

        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "one two three four"}],
                          "stop": "three", "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let events = got.events();
        let finish: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        assert_eq!(finish["choices"][0]["stop_reason"], "three");

        let stream = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "one two three four five"}]))
            .max_tokens(3)
            .send_stream()
            .await
            .unwrap();
        let seen = consume(stream).await;
        assert_eq!(seen.content[&0], "one two three");
        assert_eq!(seen.finished, vec![(0, "length".to_owned())]);
        assert_eq!(seen.usage[0].completion_tokens, 3);
    })
    .await;
}

#[tokio::test]
async fn echo_tool_calls_stream_in_vllms_shape_and_parse_complete() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "Paris"}],
                          "tools": tools(), "tool_choice": "required", "stream": true});
        let got = raw(
            mock.addr(),
            "POST",
            "/v1/chat/completions",
            Some(&body.to_string()),
        )
        .await;
        let events = got.events();
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let real: Vec<Value> = fixture_events("think/tools_stream.sse")
            .iter()
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        // The first tool delta: id, type, index and name; then argument pieces; then `{}`.
        let first = &chunks[1]["choices"][0]["delta"];
        assert_eq!(first["content"], Value::Null);
        assert!(
            first["tool_calls"][0]["id"]
                .as_str()
                .unwrap()
                .starts_with("chatcmpl-tool-")
        );
        assert_eq!(
            first["tool_calls"][0]["function"],
            json!({"name": "get_weather"})
        );
        assert_eq!(shape(&chunks[1]), shape(&real[6]));
        assert_eq!(shape(&chunks[2]), shape(&real[7]));
        assert_eq!(shape(chunks.last().unwrap()), shape(real.last().unwrap()));
        assert_eq!(chunks.last().unwrap()["choices"][0]["delta"], json!({}));
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );

        let client = VllmClient::new(mock.base_url());
        let stream = client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "Paris"}]))
            .tools(tools())
            .tool_choice(json!("required"))
            .send_stream()
            .await
            .unwrap();
        let seen = consume(stream).await;
        assert!(seen.done, "{:?}", seen.error);
        assert_eq!(seen.calls.len(), 1);
        assert_eq!(seen.calls[0].name, "get_weather");
        assert_eq!(
            seen.calls[0].parse_args().unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(seen.finished, vec![(0, "tool_calls".to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn scripted_parallel_tool_calls_parse_complete_in_every_style() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        for style in [ToolCallStyle::Vllm, ToolCallStyle::Hermes, ToolCallStyle::Whole] {
            mock.enqueue(
                Behavior::new()
                    .reasoning("Two calls are needed.")
                    .tool_call("get_weather", json!({"city": "Paris"}))
                    .tool_call_with_id("call-2", "get_time", "{\"tz\": \"CET\"}")
                    .tool_call_style(style),
            );
            let stream = client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "Weather and time?"}]))
                .tools(tools())
                .send_stream()
                .await
                .unwrap();
            let seen = consume(stream).await;
            assert!(seen.done, "{style:?}: {:?}", seen.error);
            assert_eq!(seen.reasoning[&0], "Two calls are needed.", "{style:?}");
            assert_eq!(seen.calls.len(), 2, "{style:?}: {:?}", seen.calls);
            assert_eq!(seen.calls[0].name, "get_weather");
            assert_eq!(seen.calls[0].parse_args().unwrap(), json!({"city": "Paris"}));
            assert!(seen.calls[0].id.starts_with("chatcmpl-tool-"));
            assert_eq!(
                seen.calls[1],
                ToolCall {
                    id: "call-2".into(),
                    name: "get_time".into(),
                    arguments: "{\"tz\": \"CET\"}".into()
                }
            );
            assert_eq!(seen.finished, vec![(0, "tool_calls".to_owned())], "{style:?}");
        }

        // The Hermes shape on the wire: id, type and index first, the name next.
        mock.enqueue(
            Behavior::new()
                .tool_call("get_time", json!({"tz": "UTC"}))
                .tool_call_style(ToolCallStyle::Hermes),
        );
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "time?"}], "stream": true});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let events = got.events();
        let first: Value = serde_json::from_str(&events[1]).unwrap();
        let second: Value = serde_json::from_str(&events[2]).unwrap();
        let first = &first["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(first.as_object().unwrap().len(), 3, "{first}");
        assert_eq!(first["type"], "function");
        assert_eq!(
            second["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "function": {"name": "get_time"}})
        );
    })
    .await;
}

#[tokio::test]
async fn completions_stream_like_vllm() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = json!({"model": "echo", "prompt": "Once upon a time", "max_tokens": 3, "stream": true,
                          "stream_options": {"include_usage": true}});
        let got = raw(mock.addr(), "POST", "/v1/completions", Some(&body.to_string())).await;
        let events = got.events();
        let real = fixture_events("think/completions_stream.sse");
        let chunk = |e: &String| serde_json::from_str::<Value>(e).unwrap();
        assert_eq!(events.len(), 3 + 2);
        assert_eq!(shape(&chunk(&events[0])), shape(&chunk(&real[0])));
        assert_eq!(shape(&chunk(&events[2])), shape(&chunk(&real[real.len() - 3])));
        assert_eq!(shape(&chunk(&events[3])), shape(&chunk(&real[real.len() - 2])));
        assert_eq!(chunk(&events[2])["choices"][0]["finish_reason"], "length");
        assert_eq!(chunk(&events[3])["usage"]["completion_tokens"], 3);

        let client = VllmClient::new(mock.base_url());
        let mut stream = client
            .completions
            .create()
            .model("echo")
            .prompt("Once upon a time")
            .send_stream()
            .await
            .unwrap();
        let (mut text, mut finished, mut usage) = (String::new(), Vec::new(), Vec::new());
        while let Some(event) = stream.try_next().await.unwrap() {
            match event {
                StreamEvent::Content(t) => text.push_str(&t),
                StreamEvent::Finished { index, reason } => finished.push((index, reason)),
                StreamEvent::Usage(u) => usage.push(u),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(text, "Once upon a time");
        assert_eq!(finished, vec![(0, vllm_types::FinishReason::Stop)]);
        assert_eq!(usage[0].prompt_tokens, 4);
        assert_eq!(usage[0].completion_tokens, 4);
        let whole = stream.final_response().unwrap();
        assert_eq!(whole.text, "Once upon a time");
    })
    .await;
}

#[tokio::test]
async fn continuous_usage_stats_put_running_usage_on_every_chunk() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": "a b c"}], "stream": true,
                          "stream_options": {"include_usage": true, "continuous_usage_stats": true}});
        let got = raw(mock.addr(), "POST", "/v1/chat/completions", Some(&body.to_string())).await;
        let events = got.events();
        let counts: Vec<u64> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).unwrap()["usage"]["completion_tokens"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [0, 1, 2, 3, 3, 3]);
    })
    .await;
}
