//! A question about an image, sent as an `image_url` content part (a `data:` URL here; an
//! `https://` URL works the same).
//!
//! `cargo run --example multimodal` (set `VLLM_BASE_URL` for a real vision model).

#[path = "common/mod.rs"]
mod common;

use vllm_client::types::{ContentPart, Message};

/// A 1×1 red PNG.
const RED_PIXEL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let messages = vec![Message::user_parts(vec![
        ContentPart::text("What colour is this image?"),
        ContentPart::image_url(RED_PIXEL),
    ])];
    let response = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(&messages)
        .max_tokens(32)
        .send()
        .await?;
    println!("{}", response.content.as_deref().unwrap_or(""));
    Ok(())
}
