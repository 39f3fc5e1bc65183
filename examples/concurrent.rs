//! Many requests at once on one client: clones share the connection pool.
//!
//! `cargo run --example concurrent` (set `VLLM_BASE_URL` for a real server).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use vllm_client::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (client, model) = (client.clone(), model.clone());
            tokio::spawn(async move {
                client
                    .chat
                    .completions()
                    .create()
                    .model(model)
                    .messages(json!([{"role": "user", "content": format!("Say the number {i}.")}]))
                    .max_tokens(16)
                    .send()
                    .await
            })
        })
        .collect();
    let mut tokens = 0;
    for task in tasks {
        let response = task.await??;
        tokens += response.usage.map_or(0, |u| u.completion_tokens);
    }
    println!(
        "32 requests, {tokens} tokens generated, in {:.2?}",
        started.elapsed()
    );
    Ok(())
}
