//! Builds a typed chat request with vLLM's extras and prints the JSON body that would be sent,
//! then parses a real vLLM stream chunk. Needs no server.
//!
//! `cargo run --example request_body`

use serde_json::json;
use vllm_types::{
    ChatCompletionChunk, ChatCompletionRequest, Message, StreamOptions, Tool, ToolChoice,
};

fn main() -> Result<(), serde_json::Error> {
    let request = ChatCompletionRequest {
        temperature: Some(0.0),
        max_tokens: Some(64),
        top_k: Some(20),
        stream: Some(true),
        stream_options: Some(StreamOptions::include_usage()),
        tools: Some(vec![
            Tool::function(
                "get_weather",
                "Get the current weather for a city",
                json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            )
            .strict(),
        ]),
        tool_choice: Some(ToolChoice::required()),
        ..ChatCompletionRequest::new(
            "smollm2-135m",
            vec![Message::system("You are terse."), Message::user("What is the weather in Paris?")],
        )
    };
    println!("request body:\n{}", serde_json::to_string_pretty(&request)?);

    let chunk: ChatCompletionChunk = serde_json::from_str(
        r#"{"id":"chatcmpl-b1c43085bf100758","object":"chat.completion.chunk","created":1795567067,"model":"smollm2-135m","choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"id":"chatcmpl-tool-af0ca3f7e0367572","type":"function","index":0,"function":{"name":"get_weather"}}]},"logprobs":null,"finish_reason":null,"token_ids":null}]}"#,
    )?;
    let call = &chunk.choices[0]
        .delta
        .tool_calls
        .as_deref()
        .unwrap_or_default()[0];
    println!(
        "\nparsed chunk: tool call #{} id={:?} name={:?}",
        call.index,
        call.id.as_deref(),
        call.function.as_ref().and_then(|f| f.name.as_deref())
    );
    Ok(())
}
