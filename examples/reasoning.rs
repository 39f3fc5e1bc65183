//! A thinking model's reasoning, apart from its answer, plain and streamed.
//!
//! `cargo run --example reasoning` (set `VLLM_BASE_URL` for a real server started with a
//! `--reasoning-parser`).

#[path = "common/mod.rs"]
mod common;

use vllm_client::{StreamEvent, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let request = || {
        client
            .chat
            .completions()
            .create()
            .model(&model)
            .messages(json!([{"role": "user", "content": "Is 97 a prime number?"}]))
            .chat_template_kwargs(json!({"enable_thinking": true}))
            .thinking_token_budget(64)
            .max_tokens(128)
    };

    let response = request().send().await?;
    println!(
        "reasoning: {}",
        response.reasoning_content.as_deref().unwrap_or("(none)")
    );
    println!("answer:    {}", response.content.as_deref().unwrap_or(""));
    if let Some(tokens) = response.usage.as_ref().and_then(|u| u.reasoning_tokens()) {
        println!("({tokens} reasoning tokens)");
    }

    let mut stream = request().send_stream().await?;
    let (mut reasoning, mut answer) = (String::new(), String::new());
    while let Some(event) = stream.try_next().await? {
        match event {
            StreamEvent::Reasoning(text) => reasoning.push_str(&text),
            StreamEvent::Content(text) => answer.push_str(&text),
            _ => {}
        }
    }
    println!(
        "streamed: {} characters of reasoning, then {answer:?}",
        reasoning.len()
    );
    Ok(())
}
