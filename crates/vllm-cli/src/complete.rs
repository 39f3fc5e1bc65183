//! `vllm-rs complete`: the legacy completions endpoint, the text streamed to stdout.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;

use vllm_client::StreamEvent;

use crate::cli::CompleteArgs;
use crate::exit;
use crate::setup;

/// Runs `vllm-rs complete`.
pub(crate) async fn run(args: CompleteArgs) -> ExitCode {
    match complete(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vllm-rs complete: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn complete(args: CompleteArgs) -> Result<ExitCode, String> {
    let prompt = match args.prompt {
        Some(prompt) => prompt,
        None if std::io::stdin().is_terminal() => {
            eprintln!(
                "vllm-rs complete: no prompt: give one (vllm-rs complete \"Once upon a time\") or pipe it to stdin"
            );
            return Ok(exit::usage());
        }
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            text
        }
    };
    if prompt.is_empty() {
        eprintln!("vllm-rs complete: the prompt is empty");
        return Ok(exit::usage());
    }
    let server = setup::connect(&args.server).await?;
    let model = server.model(args.server.model.as_deref()).await?;
    let mut request = server
        .client
        .completions
        .create()
        .model(model)
        .prompt(prompt)
        .stream(true);
    if let Some(tokens) = args.max_tokens {
        request = request.max_tokens(tokens);
    }
    if let Some(temperature) = args.temperature {
        request = request.temperature(temperature);
    }
    let mut stream = request.send_stream().await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut last = String::new();
    while let Some(event) = stream.try_next().await.map_err(|e| e.to_string())? {
        if let StreamEvent::Content(text) = event {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            last = text;
        }
    }
    if !last.ends_with('\n') {
        let _ = writeln!(out);
    }
    Ok(ExitCode::SUCCESS)
}
