//! What errors look like: an unknown model, a request too long for the context, a server that
//! is unreachable, and a timeout, each with the server's own message where there is one.
//!
//! `cargo run --example errors` (set `VLLM_BASE_URL` for a real server).

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use vllm_client::{VllmClient, VllmError, json};
use vllm_mock::Behavior;

fn describe(what: &str, result: Result<vllm_client::ChatCompletionResponse, VllmError>) {
    match result {
        Ok(_) => println!("{what}: succeeded"),
        Err(e) => println!(
            "{what}: {e}\n    status={:?} timeout={} connect={} retryable={}",
            e.status_code(),
            e.is_timeout(),
            e.is_connect(),
            e.is_retryable()
        ),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock,
    } = common::setup().await?;
    let ask = |client: &VllmClient, model: &str| {
        client
            .chat
            .completions()
            .create()
            .model(model)
            .messages(json!([{"role": "user", "content": "Hi"}]))
    };

    describe("unknown model", ask(&client, "no-such-model").send().await);
    describe(
        "max_tokens beyond the context",
        ask(&client, &model).max_tokens(1_000_000).send().await,
    );

    // Nothing listens on port 9 of this machine: a connect error, after the retries.
    let unreachable = VllmClient::builder()
        .base_url("http://127.0.0.1:9/v1")
        .max_retries(1)
        .build();
    describe("unreachable server", ask(&unreachable, &model).send().await);

    // A deadline far too short for the answer. The embedded mock answers in well under a
    // millisecond (tokio's timer resolution), so it is told to take a second over this one.
    if let Some(mock) = &mock {
        mock.enqueue(Behavior::new().delay(Duration::from_secs(1)));
    }
    describe(
        "timeout",
        ask(&client, &model)
            .timeout(Duration::from_millis(1))
            .send()
            .await,
    );
    Ok(())
}
