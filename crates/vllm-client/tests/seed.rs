//! Every snippet of the seed page (`chat-completions-api.txt`), as written, run against a
//! local server standing in for `http://localhost:8000/v1` (the only change: the URL).
#![allow(clippy::unwrap_used)]

mod support;

use support::{Reply, Server, bounded, fixture_http};
use vllm_client::{VllmClient, json};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn server() -> Server {
    let (_, think) = fixture_http("vllm-0.32-cpu/think/chat.http");
    let sse = support::fixture("vllm-0.32-cpu/think/stream.sse");
    Server::start(move |request, _| {
        if request.json()["stream"] == true {
            Reply::sse(&sse, 0, false)
        } else {
            Reply::json(200, &think)
        }
    })
    .await
}

#[tokio::test]
async fn overview() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);
        let response = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([
                {"role": "user", "content": "Hello!"}
            ]))
            .send()
            .await?;
        assert!(response.content.is_some());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn every_setter_of_the_request_builder() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);
        let _ = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct") // or .model("meta-llama/Llama-3-70b")
            .messages(json!([
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is Rust?"}
            ]))
            .temperature(0.7) // Default-like behavior
            .temperature(0.0) // Deterministic
            .temperature(1.5) // More creative
            .max_tokens(1024)
            .max_tokens(4096)
            .top_p(0.9)
            .top_k(50)
            // Multiple sequences
            .stop(json!(["END", "STOP", "\n\n"]))
            // Single sequence
            .stop(json!("---"))
            .tools(json!([
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Get weather for a location",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "location": {"type": "string"}
                            },
                            "required": ["location"]
                        }
                    }
                }
            ]))
            .tool_choice(json!("auto")) // Model decides
            .tool_choice(json!("none")) // No tools
            .tool_choice(json!("required")) // Force tool use
            .tool_choice(json!({
                "type": "function",
                "function": {"name": "get_weather"}
            }))
            .stream(true)
            .extra(json!({
                "chat_template_kwargs": {
                    "think_mode": true
                },
                "reasoning_effort": "high"
            }))
            .send()
            .await?;
        let sent = server.requests()[0].json();
        assert_eq!(sent["temperature"], 1.5);
        assert_eq!(sent["max_tokens"], 4096);
        assert_eq!(sent["stop"], "---");
        assert_eq!(sent["tool_choice"]["function"]["name"], "get_weather");
        assert_eq!(sent["chat_template_kwargs"]["think_mode"], true);
        assert_eq!(sent["reasoning_effort"], "high");
        assert!(sent.get("stream").is_none(), "send() does not stream");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn send_stream() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);
        let mut stream = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([{"role": "user", "content": "Hello!"}]))
            .stream(true)
            .send_stream()
            .await?;
        let mut events = 0;
        while stream.next().await.is_some() {
            events += 1;
        }
        assert!(events > 3);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn example_usage() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);
        let response = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([
                {"role": "user", "content": "What is 2+2?"}
            ]))
            .send()
            .await?;

        // Access content
        println!("Content: {}", response.content.unwrap_or_default());

        // Check for reasoning (thinking models)
        if let Some(reasoning) = response.reasoning_content {
            println!("Reasoning: {}", reasoning);
        }

        // Check finish reason
        match response.finish_reason.as_deref() {
            Some("stop") => println!("Natural stop"),
            Some("length") => println!("Max tokens reached"),
            Some("tool_calls") => println!("Tool calls made"),
            _ => {}
        }

        // Token usage
        if let Some(usage) = response.usage {
            println!("Prompt tokens: {}", usage.prompt_tokens);
            println!("Completion tokens: {}", usage.completion_tokens);
            println!("Total tokens: {}", usage.total_tokens);
        }
        Ok(())
    })
    .await
}

/// The seed's complete example, with its `main` turned into a test.
#[tokio::test]
async fn complete_example() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);

        let response = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([
                {"role": "system", "content": "You are a helpful coding assistant."},
                {"role": "user", "content": "Write a function to reverse a string in Rust"}
            ]))
            .temperature(0.7)
            .max_tokens(1024)
            .top_p(0.9)
            .send()
            .await?;

        if let Some(content) = response.content {
            println!("{}", content);
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn multi_turn_conversation() -> Result {
    bounded(async {
        let server = server().await;
        let client = VllmClient::new(&server.base_url);

        // First message
        let response1 = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([
                {"role": "user", "content": "My name is Alice"}
            ]))
            .send()
            .await?;

        // Continue conversation
        let _response2 = client
            .chat
            .completions()
            .create()
            .model("Qwen/Qwen2.5-72B-Instruct")
            .messages(json!([
                {"role": "user", "content": "My name is Alice"},
                {"role": "assistant", "content": response1.content.unwrap()},
                {"role": "user", "content": "What's my name?"}
            ]))
            .send()
            .await?;
        assert_eq!(
            server.requests()[1].json()["messages"][1]["content"],
            " in one sentence."
        );
        Ok(())
    })
    .await
}
