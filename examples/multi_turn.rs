//! A conversation over several turns: each reply is appended to the history with
//! `assistant_message()` before the next question.
//!
//! `cargo run --example multi_turn` (set `VLLM_BASE_URL` for a real server).

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
    let mut history = vec![json!({"role": "system", "content": "You are terse."})];
    for question in ["My name is Alice.", "What is my name?"] {
        history.push(json!({"role": "user", "content": question}));
        let response = client
            .chat
            .completions()
            .create()
            .model(&model)
            .messages(&history)
            .max_tokens(48)
            .send()
            .await?;
        println!(
            "> {question}\n{}",
            response.content.as_deref().unwrap_or("")
        );
        history.push(response.assistant_message());
    }
    Ok(())
}
