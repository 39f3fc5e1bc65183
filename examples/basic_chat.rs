//! One question, one answer (`send()`), with the fields of the response.
//!
//! `cargo run --example basic_chat` (set `VLLM_BASE_URL` for a real server).

#[path = "common/mod.rs"]
mod common;

use vllm_client::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let response = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(json!([
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is Rust?"}
        ]))
        .temperature(0.7)
        .max_tokens(64)
        .send()
        .await?;
    println!("id:            {}", response.id);
    println!("model:         {}", response.model);
    println!(
        "content:       {}",
        response.content.as_deref().unwrap_or("")
    );
    println!(
        "finish reason: {}",
        response.finish_reason.as_deref().unwrap_or("?")
    );
    if let Some(usage) = &response.usage {
        println!(
            "tokens:        {} + {} = {}",
            usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
        );
    }
    Ok(())
}
