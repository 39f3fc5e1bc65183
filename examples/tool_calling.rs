//! The whole tool-calling loop: the model calls a tool, we run it, the model answers with the
//! result.
//!
//! `cargo run --example tool_calling` (set `VLLM_BASE_URL` for a real server started with a
//! tool-call parser).

#[path = "common/mod.rs"]
mod common;

use vllm_client::json;

#[derive(serde::Deserialize)]
struct WeatherArgs {
    city: String,
}

fn get_weather(args: &WeatherArgs) -> serde_json::Value {
    json!({"city": args.city, "temperature_c": 22, "sky": "sunny"})
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "strict": true,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
                "additionalProperties": false
            }
        }
    }]);
    let mut messages = vec![json!({"role": "user", "content": "What is the weather in Paris?"})];

    // 1. The model calls the tool ("required" makes it call one).
    let response = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(&messages)
        .tools(&tools)
        .tool_choice(json!("required"))
        .max_tokens(96)
        .send()
        .await?;
    let calls = response
        .tool_calls
        .clone()
        .ok_or("the model called no tool")?;
    messages.push(response.assistant_message());

    // 2. We run each call and answer it.
    for call in &calls {
        let args: WeatherArgs = call.parse_args_as()?;
        let result = get_weather(&args);
        println!("{}({}) -> {result}", call.name, call.arguments);
        messages.push(call.result(result));
    }

    // 3. The model answers with the results.
    let answer = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(&messages)
        .tools(&tools)
        .max_tokens(96)
        .send()
        .await?;
    println!("{}", answer.content.as_deref().unwrap_or(""));
    Ok(())
}
