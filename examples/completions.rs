//! The legacy completions API: a prompt in, text out, plain and streamed, with a vLLM
//! parameter through `extra`.
//!
//! `cargo run --example completions` (set `VLLM_BASE_URL` for a real server).

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
        .completions
        .create()
        .model(&model)
        .prompt("The capital of France is")
        .max_tokens(16)
        .temperature(0.0)
        .extra(json!({"min_tokens": 1}))
        .send()
        .await?;
    println!(
        "{:?} ({})",
        response.text,
        response.finish_reason.as_deref().unwrap_or("?")
    );

    let text = client
        .completions
        .create()
        .model(&model)
        .prompt("Once upon a time")
        .max_tokens(24)
        .send_stream()
        .await?
        .collect_content()
        .await?;
    println!("streamed: {text:?}");
    Ok(())
}
