//! Output constrained to a JSON schema with vLLM's `structured_outputs`, parsed into a Rust
//! type.
//!
//! `cargo run --example structured_output` (set `VLLM_BASE_URL` for a real server; the
//! embedded mock is scripted to answer with JSON, since it does no constrained decoding).

#[path = "common/mod.rs"]
mod common;

use vllm_client::json;
use vllm_client::types::StructuredOutputs;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Person {
    name: String,
    age: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock,
    } = common::setup().await?;
    if let Some(mock) = &mock {
        mock.on_model(
            &model,
            vllm_mock::Behavior::reply(r#"{"name": "Alice", "age": 30}"#),
        );
    }
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"]
    });
    let response = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(json!([{"role": "user", "content": "Invent a person: a name and an age."}]))
        .structured_outputs(StructuredOutputs::json(schema))
        .max_tokens(64)
        .send()
        .await?;
    let text = response.content.unwrap_or_default();
    let person: Person = serde_json::from_str(&text)?;
    println!("{text}\nparsed: {person:?}");
    Ok(())
}
