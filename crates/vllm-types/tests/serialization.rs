//! What is written and what is kept: unset fields are not sent, unknown members survive,
//! explicit nulls round-trip, constructors build the shapes servers expect.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use vllm_types::*;

#[test]
fn none_fields_are_not_serialized() {
    assert_eq!(
        serde_json::to_value(ChatCompletionRequest::default()).unwrap(),
        json!({"messages": []})
    );
    assert_eq!(
        serde_json::to_value(CompletionRequest::default()).unwrap(),
        json!({})
    );
    assert_eq!(
        serde_json::to_value(EmbeddingRequest::default()).unwrap(),
        json!({})
    );
    assert_eq!(serde_json::to_value(Delta::default()).unwrap(), json!({}));
    assert_eq!(
        serde_json::to_value(Usage::default()).unwrap(),
        json!({"prompt_tokens": 0, "total_tokens": 0})
    );
    let request = ChatCompletionRequest::new("m", vec![Message::user("hi")]);
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let text = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
        "choices":[{"index":0,"delta":{"content":"x","future_delta":{"a":[1,2]}},"future_choice":true}],
        "future_top":"kept"}"#;
    let chunk: ChatCompletionChunk = serde_json::from_str(text).unwrap();
    assert_eq!(chunk.extra["future_top"], "kept");
    assert_eq!(chunk.choices[0].extra["future_choice"], true);
    assert_eq!(
        chunk.choices[0].delta.extra["future_delta"],
        json!({"a": [1, 2]})
    );
    let again = serde_json::to_value(&chunk).unwrap();
    assert_eq!(again, serde_json::from_str::<Value>(text).unwrap());
}

#[test]
fn explicit_nulls_round_trip_but_unset_fields_stay_out() {
    let text = r#"{"index":0,"delta":{"content":null},"logprobs":null,"finish_reason":null}"#;
    let choice: ChunkChoice = serde_json::from_str(text).unwrap();
    assert_eq!(choice.logprobs, None);
    assert_eq!(choice.delta.content, None);
    assert_eq!(
        serde_json::to_value(&choice).unwrap(),
        serde_json::from_str::<Value>(text).unwrap()
    );
    // A value equal in its fields but built by hand writes no nulls, and compares equal.
    let built = ChunkChoice::default();
    assert_eq!(built, choice);
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        json!({"index": 0, "delta": {}})
    );
    // Setting a field that came as null writes the value, once.
    let mut set = choice.clone();
    set.finish_reason = Some(FinishReason::Stop);
    assert_eq!(
        serde_json::to_string(&set)
            .unwrap()
            .matches("finish_reason")
            .count(),
        1
    );
    assert_eq!(serde_json::to_value(&set).unwrap()["finish_reason"], "stop");
}

#[test]
fn set_null_writes_an_unset_optional_member_as_null() {
    // What a server does: `"logprobs": null` and `"finish_reason": null` in every chunk.
    let mut choice = ChunkChoice::default();
    assert!(choice.set_null("logprobs"));
    assert!(choice.set_null("finish_reason"));
    assert_eq!(
        serde_json::to_value(&choice).unwrap(),
        json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": null})
    );
    // A value set later is written instead of the null; `None` again is null again.
    choice.finish_reason = Some(FinishReason::Stop);
    assert_eq!(
        serde_json::to_value(&choice).unwrap()["finish_reason"],
        "stop"
    );
    choice.finish_reason = None;
    assert_eq!(
        serde_json::to_value(&choice).unwrap()["finish_reason"],
        Value::Null
    );
    // A renamed member goes by its JSON name. Required, defaulted and unknown members are
    // refused and left alone.
    let mut delta = ToolCallDelta::default();
    assert!(delta.set_null("type"));
    assert!(!delta.set_null("kind"));
    assert!(!delta.set_null("index"));
    assert_eq!(
        serde_json::to_value(&delta).unwrap(),
        json!({"index": 0, "type": null})
    );
    let mut set = ChunkChoice {
        logprobs: Some(ChoiceLogprobs::default()),
        ..ChunkChoice::default()
    };
    assert!(set.set_null("logprobs"));
    assert_eq!(set.logprobs, None);
    // Nulls do not take part in equality, as for parsed values.
    assert_eq!(set, ChunkChoice::default());
}

#[test]
fn defaulted_fields_missing_from_input_are_not_invented() {
    // llama.cpp's /detokenize answers {"content": …}; vLLM's {"prompt": …}.
    let llama: DetokenizeResponse = serde_json::from_str(r#"{"content":"hi"}"#).unwrap();
    assert_eq!(llama.text(), "hi");
    assert_eq!(
        serde_json::to_value(&llama).unwrap(),
        json!({"content": "hi"})
    );
    let vllm: DetokenizeResponse = serde_json::from_str(r#"{"prompt":"hi"}"#).unwrap();
    assert_eq!(vllm.text(), "hi");
    // Once changed, the field is written.
    let mut changed = llama.clone();
    changed.prompt = "now set".into();
    assert_eq!(
        serde_json::to_value(&changed).unwrap(),
        json!({"content": "hi", "prompt": "now set"})
    );
}

#[test]
fn extra_members_are_sent_and_a_set_field_wins_over_an_extra_duplicate() {
    let mut request = ChatCompletionRequest::new("m", vec![]);
    request.extra.insert("min_p".into(), json!(0.5));
    request.extra.insert("new_param".into(), json!({"x": 1}));
    let body = serde_json::to_value(&request).unwrap();
    assert_eq!(body["min_p"], 0.5);
    assert_eq!(body["new_param"], json!({"x": 1}));
    request.min_p = Some(0.1);
    let text = serde_json::to_string(&request).unwrap();
    assert_eq!(text.matches("min_p").count(), 1, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["min_p"], 0.1);
}

#[test]
fn missing_required_members_are_named_in_the_error() {
    let err = serde_json::from_str::<ChatCompletionRequest>(r#"{"model":"m"}"#).unwrap_err();
    assert!(
        err.to_string().contains("missing field `messages`"),
        "{err}"
    );
    let err = serde_json::from_str::<Message>(r#"{"content":"hi"}"#).unwrap_err();
    assert!(err.to_string().contains("missing field `role`"), "{err}");
    let err =
        serde_json::from_str::<ChatCompletionRequest>(r#"{"messages":[],"max_tokens":"abc"}"#)
            .unwrap_err();
    assert!(
        err.to_string().contains("invalid type: string \"abc\""),
        "{err}"
    );
    let err = serde_json::from_str::<ChatCompletionChunk>("[1,2]").unwrap_err();
    assert!(
        err.to_string()
            .contains("a JSON object (ChatCompletionChunk)"),
        "{err}"
    );
}

#[test]
fn open_ended_values_are_kept_not_rejected() {
    let msg: Message = serde_json::from_str(r#"{"role":"narrator","content":"Once"}"#).unwrap();
    assert_eq!(msg.role, Role::Other("narrator".into()));
    assert_eq!(serde_json::to_value(&msg).unwrap()["role"], "narrator");
    let choice: Choice = serde_json::from_str(
        r#"{"index":0,"message":{"role":"assistant"},"finish_reason":"repetition"}"#,
    )
    .unwrap();
    assert_eq!(
        choice.finish_reason,
        Some(FinishReason::Other("repetition".into()))
    );
    assert_eq!(FinishReason::from("length"), FinishReason::Length);
    assert_eq!(FinishReason::ToolCalls.to_string(), "tool_calls");
}

#[test]
fn stop_reason_is_an_int_or_a_string() {
    let c: Choice =
        serde_json::from_str(r#"{"index":0,"message":{},"stop_reason":128009}"#).unwrap();
    assert_eq!(c.stop_reason, Some(StopReason::Token(128009)));
    let c: Choice =
        serde_json::from_str(r#"{"index":0,"message":{},"stop_reason":"five"}"#).unwrap();
    assert_eq!(c.stop_reason, Some(StopReason::Text("five".into())));
}

#[test]
fn message_constructors_build_every_role() {
    let call = ToolCall::function("call_1", "get_weather", r#"{"city":"Paris"}"#);
    let history = vec![
        Message::system("s"),
        Message::developer("d"),
        Message::user("u"),
        Message::user_parts(vec![
            ContentPart::text("look"),
            ContentPart::image_url("data:image/png;base64,AAAA"),
            ContentPart::input_audio("UklGR", "wav"),
            ContentPart::video_url("https://example.com/v.mp4"),
            ContentPart::file("a.pdf", "JVBER"),
        ]),
        Message::assistant_tool_calls(vec![call.clone()]),
        Message::tool("call_1", "22 C"),
        Message::assistant("a"),
    ];
    assert_eq!(
        serde_json::to_value(&history).unwrap(),
        json!([
            {"role": "system", "content": "s"},
            {"role": "developer", "content": "d"},
            {"role": "user", "content": "u"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
                {"type": "file", "file": {"file_data": "JVBER", "filename": "a.pdf"}}
            ]},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "content": "22 C", "tool_call_id": "call_1"},
            {"role": "assistant", "content": "a"}
        ])
    );
    let parsed: Vec<Message> =
        serde_json::from_value(serde_json::to_value(&history).unwrap()).unwrap();
    assert_eq!(parsed, history);
    assert_eq!(parsed[3].content.as_ref().unwrap().text(), "look");
}

#[test]
fn tools_tool_choice_and_formats_serialize_as_vllm_expects() {
    let tool = Tool::function("f", "does f", json!({"type": "object"})).strict();
    assert_eq!(
        serde_json::to_value(&tool).unwrap(),
        json!({"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        serde_json::to_value(ToolChoice::required()).unwrap(),
        json!("required")
    );
    assert_eq!(
        serde_json::to_value(ToolChoice::none()).unwrap(),
        json!("none")
    );
    assert_eq!(
        serde_json::to_value(ToolChoice::function("f")).unwrap(),
        json!({"type": "function", "function": {"name": "f"}})
    );
    let named: ToolChoice =
        serde_json::from_value(json!({"type": "function", "function": {"name": "f"}})).unwrap();
    assert_eq!(named, ToolChoice::function("f"));
    assert_eq!(
        serde_json::from_value::<ToolChoice>(json!("auto")).unwrap(),
        ToolChoice::auto()
    );
    assert_eq!(
        serde_json::to_value(ResponseFormat::json_object()).unwrap(),
        json!({"type": "json_object"})
    );
    assert_eq!(
        serde_json::to_value(StructuredOutputs::regex("a+")).unwrap(),
        json!({"regex": "a+"})
    );
    assert_eq!(
        serde_json::to_value(StructuredOutputs::json(json!({"type": "object"}))).unwrap(),
        json!({"json": {"type": "object"}})
    );
}

#[test]
fn every_vllm_extra_parameter_has_its_wire_name() {
    let request = ChatCompletionRequest {
        top_k: Some(5),
        min_p: Some(0.1),
        repetition_penalty: Some(1.1),
        length_penalty: Some(1.0),
        stop_token_ids: Some(vec![2]),
        include_stop_str_in_output: Some(true),
        ignore_eos: Some(true),
        min_tokens: Some(1),
        skip_special_tokens: Some(false),
        spaces_between_special_tokens: Some(false),
        truncate_prompt_tokens: Some(-1),
        prompt_logprobs: Some(1),
        allowed_token_ids: Some(vec![1, 2]),
        bad_words: Some(vec!["x".into()]),
        echo: Some(true),
        add_generation_prompt: Some(true),
        continue_final_message: Some(false),
        add_special_tokens: Some(false),
        documents: Some(vec![
            serde_json::from_value(json!({"title": "t", "text": "x"})).unwrap(),
        ]),
        chat_template: Some("{{ messages }}".into()),
        chat_template_kwargs: Some(
            serde_json::from_value(json!({"enable_thinking": false})).unwrap(),
        ),
        mm_processor_kwargs: Some(Default::default()),
        structured_outputs: Some(StructuredOutputs::choice(["a", "b"])),
        priority: Some(1),
        request_id: Some("r".into()),
        return_token_ids: Some(true),
        cache_salt: Some("salt".into()),
        kv_transfer_params: Some(Default::default()),
        vllm_xargs: Some(Default::default()),
        stream_options: Some(StreamOptions::include_usage()),
        reasoning_effort: Some(ReasoningEffort::High),
        include_reasoning: Some(true),
        response_format: Some(ResponseFormat::json_schema("s", json!({}))),
        ..ChatCompletionRequest::new("m", vec![])
    };
    let body = serde_json::to_value(&request).unwrap();
    for key in [
        "top_k",
        "min_p",
        "repetition_penalty",
        "length_penalty",
        "stop_token_ids",
        "include_stop_str_in_output",
        "ignore_eos",
        "min_tokens",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "truncate_prompt_tokens",
        "prompt_logprobs",
        "allowed_token_ids",
        "bad_words",
        "echo",
        "add_generation_prompt",
        "continue_final_message",
        "add_special_tokens",
        "documents",
        "chat_template",
        "chat_template_kwargs",
        "mm_processor_kwargs",
        "structured_outputs",
        "priority",
        "request_id",
        "return_token_ids",
        "cache_salt",
        "kv_transfer_params",
        "vllm_xargs",
        "stream_options",
        "reasoning_effort",
        "include_reasoning",
        "response_format",
    ] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
    assert_eq!(body["reasoning_effort"], "high");
    assert_eq!(body["response_format"]["json_schema"]["name"], "s");
    let parsed: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    assert_eq!(parsed, request);
}

#[test]
fn prompts_and_inputs_take_every_shape() {
    for (json, expected) in [
        (json!("a"), Prompt::Text("a".into())),
        (
            json!(["a", "b"]),
            Prompt::Texts(vec!["a".into(), "b".into()]),
        ),
        (json!([1, 2]), Prompt::Tokens(vec![1, 2])),
        (
            json!([[1], [2, 3]]),
            Prompt::TokenBatches(vec![vec![1], vec![2, 3]]),
        ),
    ] {
        let request: CompletionRequest = serde_json::from_value(json!({"prompt": json})).unwrap();
        assert_eq!(request.prompt, Some(expected.clone()));
        let e: EmbeddingRequest = serde_json::from_value(json!({"input": json})).unwrap();
        assert_eq!(e.input, Some(expected));
    }
    let tok: TokenizeRequest = serde_json::from_value(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    assert!(matches!(tok, TokenizeRequest::Chat(_)));
    let tok: TokenizeRequest =
        serde_json::from_value(json!({"model": "m", "prompt": "hi"})).unwrap();
    assert!(matches!(tok, TokenizeRequest::Prompt(_)));
}

#[test]
fn pooling_score_rerank_classify_parse_vllm_shapes() {
    let score: ScoreResponse = serde_json::from_value(json!({
        "id": "score-1", "object": "list", "created": 1, "model": "m",
        "data": [{"index": 0, "object": "score", "score": 0.75}],
        "usage": {"prompt_tokens": 10, "total_tokens": 10, "completion_tokens": 0, "prompt_tokens_details": null}
    }))
    .unwrap();
    assert_eq!(score.data[0].score, 0.75);
    let rerank: RerankResponse = serde_json::from_value(json!({
        "id": "rerank-1", "model": "m", "usage": {"total_tokens": 7},
        "results": [{"index": 1, "document": {"text": "Paris"}, "relevance_score": 0.9}]
    }))
    .unwrap();
    assert_eq!(rerank.results[0].index, 1);
    assert_eq!(rerank.usage.as_ref().unwrap().total_tokens, 7);
    let classify: ClassifyResponse = serde_json::from_value(json!({
        "id": "c", "object": "list", "created": 1, "model": "m",
        "data": [{"index": 0, "label": "positive", "probs": [0.1, 0.9], "num_classes": 2}]
    }))
    .unwrap();
    assert_eq!(classify.data[0].label.as_deref(), Some("positive"));
    let pooling: PoolingResponse = serde_json::from_value(json!({
        "id": "p", "object": "list", "created": 1, "model": "m",
        "data": [{"index": 0, "object": "pooling", "data": [[0.5, 0.25]]}]
    }))
    .unwrap();
    assert_eq!(pooling.data[0].data, json!([[0.5, 0.25]]));
    assert_eq!(
        serde_json::to_value(ScoreRequest::new("m", "q", vec!["a", "b"])).unwrap(),
        json!({"model": "m", "text_1": "q", "text_2": ["a", "b"]})
    );
    assert_eq!(
        serde_json::to_value(RerankRequest::new("m", "q", ["a"])).unwrap(),
        json!({"model": "m", "query": "q", "documents": ["a"]})
    );
}

#[test]
fn transcriptions_round_trip_in_vllm_shapes() {
    // The JSON answer, then a stream: a chunk per piece of text, the finish (with a `null`
    // stop reason) on the last, and the usage chunk (`stream_include_usage`).
    let body = r#"{"text":"Hello there.","usage":{"type":"duration","seconds":3}}"#;
    let whole: TranscriptionResponse = serde_json::from_str(body).unwrap();
    let usage = whole.usage.as_ref().unwrap();
    assert_eq!((usage.kind.as_str(), usage.seconds), ("duration", Some(3)));
    assert_eq!(serde_json::to_string(&whole).unwrap(), body);

    let events = [
        r#"{"id":"trsc-1","object":"transcription.chunk","created":1,"model":"m","choices":[{"delta":{"content":"Hello"}}]}"#,
        r#"{"id":"trsc-1","object":"transcription.chunk","created":1,"model":"m","choices":[{"delta":{"content":" there."},"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2}}"#,
        r#"{"id":"trsc-1","object":"transcription.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2}}"#,
    ];
    let chunks: Vec<TranscriptionChunk> = events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    assert_eq!(text, "Hello there.");
    assert_eq!(chunks[0].choices[0].finish_reason, None);
    assert_eq!(chunks[1].choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(chunks[1].choices[0].stop_reason, None);
    assert_eq!(chunks[2].usage.as_ref().unwrap().completion_tokens, Some(2));
    for (chunk, event) in chunks.iter().zip(events) {
        assert_eq!(
            serde_json::to_value(chunk).unwrap(),
            serde_json::from_str::<Value>(event).unwrap()
        );
    }

    // Built by hand, as a server does: the last chunk's `null` stop reason is set_null's.
    let mut last = TranscriptionChunkChoice {
        delta: Delta {
            content: Some(" there.".into()),
            ..Delta::default()
        },
        finish_reason: Some(FinishReason::Stop),
        ..TranscriptionChunkChoice::default()
    };
    assert!(last.set_null("stop_reason"));
    assert_eq!(
        serde_json::to_value(&last).unwrap(),
        json!({"delta": {"content": " there."}, "finish_reason": "stop", "stop_reason": null})
    );
}

#[test]
fn vllm_prompt_text_and_ec_transfer_params_are_fields() {
    let chat: ChatCompletion = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [],
        "prompt_text": "Hi", "ec_transfer_params": {"a": 1}
    }))
    .unwrap();
    assert_eq!(chat.prompt_text.as_deref(), Some("Hi"));
    assert_eq!(chat.ec_transfer_params.as_ref().unwrap()["a"], 1);
    assert!(chat.extra.is_empty());
    let chunk: ChatCompletionChunk = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
        "prompt_token_ids": null, "prompt_text": null
    }))
    .unwrap();
    assert!(chunk.extra.is_empty());
    assert_eq!(
        serde_json::to_value(&chunk).unwrap()["prompt_text"],
        Value::Null
    );
    let completion: Completion = serde_json::from_value(json!({
        "id": "c", "object": "text_completion", "created": 1, "model": "m", "choices": [],
        "ec_transfer_params": null
    }))
    .unwrap();
    assert!(completion.extra.is_empty());
    assert_eq!(completion.ec_transfer_params, None);
}

#[test]
fn types_are_send_sync_and_cloneable() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + PartialEq + Default + 'static>() {}
    assert_traits::<ChatCompletionRequest>();
    assert_traits::<ChatCompletion>();
    assert_traits::<ChatCompletionChunk>();
    assert_traits::<CompletionRequest>();
    assert_traits::<EmbeddingResponse>();
    assert_traits::<ModelList>();
    assert_traits::<TranscriptionResponse>();
    assert_traits::<TranscriptionChunk>();
    assert_traits::<Extra>();
}

#[test]
fn arbitrary_json_never_panics_the_parsers() {
    // Every type meets values of every JSON kind in every position without panicking.
    let samples = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!("s"),
        json!([]),
        json!({}),
        json!([null, {"a": 1}]),
        json!({"choices": [{"delta": 1}]}),
        json!({"error": 5}),
    ];
    for sample in &samples {
        for key in [
            "id",
            "choices",
            "usage",
            "messages",
            "error",
            "data",
            "role",
            "delta",
            "tool_calls",
        ] {
            let value = json!({ key: sample });
            let _ = serde_json::from_value::<ChatCompletionChunk>(value.clone());
            let _ = serde_json::from_value::<ChatCompletion>(value.clone());
            let _ = serde_json::from_value::<ChatCompletionRequest>(value.clone());
            let _ = serde_json::from_value::<ErrorResponse>(value.clone());
            let _ = serde_json::from_value::<EmbeddingResponse>(value.clone());
        }
        let _ = serde_json::from_value::<ErrorResponse>(sample.clone());
    }
}

/// Parses `after` in place over the value parsed from `before`, and checks that the result
/// is what parsing `after` alone gives: the same fields, and the same JSON written back
/// (explicit nulls and missing members included).
fn assert_in_place_is_fresh<T>(before: &str, after: &str)
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let fresh: T = serde_json::from_str(after).unwrap();
    let mut place: T = serde_json::from_str(before).unwrap();
    vllm_types::from_str_in_place(after, &mut place).unwrap();
    assert_eq!(place, fresh, "in place over {before}");
    assert_eq!(
        serde_json::to_value(&place).unwrap(),
        serde_json::to_value(&fresh).unwrap(),
        "written back, in place over {before}"
    );
}

#[test]
fn parsing_in_place_leaves_nothing_of_the_value_before() {
    let full = r#"{"id":"a","object":"chat.completion.chunk","created":7,"model":"m",
        "choices":[{"index":0,"delta":{"role":"assistant","content":"x","reasoning":"r",
            "tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{"}}],
            "future":1},"logprobs":{"content":[]},"finish_reason":"stop","stop_reason":7,"token_ids":[1]},
          {"index":1,"delta":{},"finish_reason":null}],
        "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},
        "system_fingerprint":"s","future_top":[1]}"#;
    let small = r#"{"id":"b","model":"n","choices":[{"index":0,"delta":{"content":null},"logprobs":null}]}"#;
    let empty_choices = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],
        "usage":null}"#;
    for (before, after) in [
        (full, small),
        (small, full),
        (full, empty_choices),
        (empty_choices, full),
        (full, full),
    ] {
        assert_in_place_is_fresh::<ChatCompletionChunk>(before, after);
    }
    let completion = r#"{"id":"x","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
    let other = r#"{"id":"y","choices":[{"index":0,"message":{"role":"assistant","content":null,
        "tool_calls":[]},"logprobs":null}]}"#;
    assert_in_place_is_fresh::<ChatCompletion>(completion, other);
    assert_in_place_is_fresh::<ChatCompletion>(other, completion);
    let text = r#"{"id":"x","object":"text_completion","created":1,"model":"m",
        "choices":[{"index":0,"text":"a","logprobs":null,"finish_reason":null}]}"#;
    let text2 = r#"{"id":"z","choices":[{"index":2,"text":"b"},{"index":3,"text":"c"}]}"#;
    assert_in_place_is_fresh::<Completion>(text, text2);
    assert_in_place_is_fresh::<Completion>(text2, text);
}

#[test]
fn parsing_in_place_fails_where_a_fresh_parse_fails() {
    let chunk = r#"{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}"#;
    let mut place: ChatCompletionChunk = serde_json::from_str(chunk).unwrap();
    for bad in [
        "",
        "null",
        "[]",
        r#"{"id":7}"#,
        r#"{"choices":{}}"#,
        r#"{"choices":[{"delta":{"content":1}}]}"#,
        r#"{"id":"a"} x"#,
        r#"{"id":"a""#,
    ] {
        let fresh = serde_json::from_str::<ChatCompletionChunk>(bad).unwrap_err();
        let in_place = vllm_types::from_str_in_place(bad, &mut place).unwrap_err();
        assert_eq!(in_place.to_string(), fresh.to_string(), "{bad}");
    }
    // After an error, parsing again gives a whole value.
    vllm_types::from_str_in_place(chunk, &mut place).unwrap();
    assert_eq!(
        place,
        serde_json::from_str::<ChatCompletionChunk>(chunk).unwrap()
    );
}

#[test]
fn a_repeated_member_is_read_as_its_last_occurrence() {
    let repeated = r#"{"choices":[{"index":0,"delta":{"content":"a","role":"assistant"}}],
        "choices":[{"index":1,"delta":{"content":"b"},"delta":{"reasoning":"r"}}]}"#;
    let last = r#"{"choices":[{"index":1,"delta":{"reasoning":"r"}}]}"#;
    let repeated: ChatCompletionChunk = serde_json::from_str(repeated).unwrap();
    let last: ChatCompletionChunk = serde_json::from_str(last).unwrap();
    assert_eq!(repeated, last);
    assert_eq!(
        serde_json::to_value(&repeated).unwrap(),
        serde_json::to_value(&last).unwrap()
    );
}

#[test]
fn choices_that_are_not_an_array_are_an_error() {
    for bad in [
        r#"{"choices":null}"#,
        r#"{"choices":{}}"#,
        r#"{"choices":[1]}"#,
    ] {
        let error = serde_json::from_str::<ChatCompletionChunk>(bad).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{bad}: {error}");
    }
}
