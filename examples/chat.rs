//! Streams a chat reply to the terminal: reasoning (if the model thinks), the answer, and the
//! token usage the server reported.
//!
//! `cargo run --example chat` talks to an embedded mock server; set `VLLM_BASE_URL` (and
//! optionally `VLLM_API_KEY`, `VLLM_MODEL`) to talk to a real vLLM instead.

#[path = "common/mod.rs"]
mod common;

use std::io::Write as _;

use vllm_client::{StreamEvent, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let common::Setup {
        client,
        model,
        mock: _mock,
    } = common::setup().await?;
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Tell me, in one sentence, what vLLM is.".into());
    println!("> {question}");

    let mut stream = client
        .chat
        .completions()
        .create()
        .model(&model)
        .messages(json!([{"role": "user", "content": question}]))
        .max_tokens(128)
        .send_stream()
        .await?;

    let mut stdout = std::io::stdout();
    // `try_next()?`: a failure mid-stream (a server error, a cut connection, a stall) is an
    // `Err`, and the loop ends cleanly only after the server's `[DONE]`.
    while let Some(event) = stream.try_next().await? {
        match event {
            StreamEvent::Reasoning(text) => eprint!("\x1b[2m{text}\x1b[0m"),
            StreamEvent::Content(text) => {
                print!("{text}");
                stdout.flush()?;
            }
            StreamEvent::Usage(usage) => println!(
                "\n[{} prompt + {} generated = {} tokens]",
                usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
            ),
            _ => {}
        }
    }
    let timings = stream.timings();
    if let Some(ttft) = timings.time_to_first_token() {
        println!(
            "[first token after {ttft:.1?}, {} chunks in {:.1?}]",
            timings.chunks(),
            timings.elapsed().unwrap_or_default()
        );
    }
    Ok(())
}
