//! `vllm-rs chat`: a streaming conversation on a terminal, or one answer to stdin.
//!
//! On a terminal: line editing and history (rustyline); the answer streams as it comes, the
//! reasoning of a thinking model shown apart (dimmed, under `[reasoning]`), tool calls shown
//! as `[tool call] name(arguments)` with a prompt for each result; `/reset`, `/model`,
//! `/save FILE`, `/help`; Ctrl-C stops an answer (the session goes on), Ctrl-D quits.
//!
//! Not on a terminal (`echo hi | vllm-rs chat`): stdin is the one user message, the answer
//! goes to stdout, the reasoning to stderr.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use vllm_client::{StreamEvent, ToolCall, Value, VllmClient, VllmError, json};

use crate::cli::ChatArgs;
use crate::exit;
use crate::setup;

const HELP: &str = "\
Commands:
  /reset        start the conversation again (the --system message stays)
  /model        show the model in use and the ones the server has
  /model NAME   talk to NAME from now on
  /save FILE    write the conversation to FILE (a JSON array of messages)
  /help         this text
  /quit         leave (Ctrl-D too)
Ctrl-C stops an answer; the conversation goes on.";

/// How text is styled on the terminal (nothing when NO_COLOR is set or stdout is not a
/// terminal).
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }
    fn dim(self) -> &'static str {
        if self.color { "\x1b[2m" } else { "" }
    }
    fn reset(self) -> &'static str {
        if self.color { "\x1b[0m" } else { "" }
    }
}

/// The conversation and what it is sent with.
struct Session {
    client: VllmClient,
    model: String,
    system: Option<String>,
    messages: Vec<Value>,
    args: ChatArgs,
    tools: Option<Value>,
}

/// What one answer was.
#[derive(Default)]
struct Answer {
    content: String,
    tool_calls: Vec<ToolCall>,
    completion_tokens: Option<u32>,
    cancelled: bool,
}

/// Runs `vllm-rs chat`.
pub(crate) async fn run(args: ChatArgs) -> ExitCode {
    match chat(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vllm-rs chat: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn chat(args: ChatArgs) -> Result<ExitCode, String> {
    let tools = match &args.tools {
        Some(path) => Some(read_tools(path)?),
        None => None,
    };
    let interactive = std::io::stdin().is_terminal();
    // Read stdin before connecting: a one-shot with nothing to say sends nothing.
    let one_shot = if interactive {
        None
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        if text.trim().is_empty() {
            eprintln!("vllm-rs chat: stdin is empty: nothing to ask");
            return Ok(exit::usage());
        }
        Some(text)
    };
    let server = setup::connect(&args.server).await?;
    let model = server.model(args.server.model.as_deref()).await?;
    let mut session = Session {
        client: server.client.clone(),
        model,
        system: args.system.clone(),
        messages: Vec::new(),
        args,
        tools,
    };
    session.reset();
    match one_shot {
        Some(text) => session.one_shot(text).await,
        None => session.repl().await,
    }
}

/// Reads `--tools FILE`: a JSON array of tool definitions.
fn read_tools(path: &PathBuf) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --tools {}: {e}", path.display()))?;
    let tools: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--tools {} is not JSON: {e}", path.display()))?;
    if !tools.is_array() {
        return Err(format!(
            "--tools {} must hold a JSON array of tools ([{{\"type\": \"function\", \"function\": {{…}}}}])",
            path.display()
        ));
    }
    Ok(tools)
}

impl Session {
    fn reset(&mut self) {
        self.messages.clear();
        if let Some(system) = &self.system {
            self.messages
                .push(json!({"role": "system", "content": system}));
        }
    }

    /// One answer to stdin, to stdout.
    async fn one_shot(mut self, text: String) -> Result<ExitCode, String> {
        self.messages.push(json!({"role": "user", "content": text}));
        let mut out = std::io::stdout().lock();
        let answer = self
            .answer(&mut out, false)
            .await
            .map_err(|e| e.to_string())?;
        if !answer.content.is_empty() && !answer.content.ends_with('\n') {
            let _ = writeln!(out);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The conversation on a terminal.
    async fn repl(mut self) -> Result<ExitCode, String> {
        let mut editor =
            DefaultEditor::new().map_err(|e| format!("cannot set up the terminal: {e}"))?;
        let history = self.args.history.clone().or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".vllm-rs-history"))
        });
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        eprintln!(
            "vllm-rs chat with `{}` (/help for commands, Ctrl-D to quit)",
            self.model
        );
        loop {
            let line = tokio::task::block_in_place(|| editor.readline("> "));
            let line = match line {
                Ok(line) => line,
                // Ctrl-C at the prompt clears the line.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(format!("cannot read the terminal: {e}")),
            };
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(text);
            if let Some(command) = text.strip_prefix('/') {
                if !self.command(command).await {
                    break;
                }
                continue;
            }
            self.messages.push(json!({"role": "user", "content": text}));
            self.turn(&mut editor).await;
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Answers the last message, and again after tool results, until the model stops
    /// calling tools.
    async fn turn(&mut self, editor: &mut DefaultEditor) {
        // Where the conversation was before the question, to go back to on an error.
        let before = self.messages.len().saturating_sub(1);
        loop {
            let started = Instant::now();
            let mut out = std::io::stdout().lock();
            let answer = self.answer(&mut out, true).await;
            drop(out);
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    eprintln!("\nerror: {e}");
                    // The question stays out of the conversation: it had no answer.
                    self.messages.truncate(before);
                    return;
                }
            };
            let style = Style::detect();
            if !answer.content.is_empty() && !answer.content.ends_with('\n') {
                println!();
            }
            if answer.cancelled {
                eprintln!("{}[stopped]{}", style.dim(), style.reset());
            } else if let Some(tokens) = answer.completion_tokens {
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "{}[{tokens} tokens, {:.1} tok/s]{}",
                    style.dim(),
                    f64::from(tokens) / secs.max(1e-9),
                    style.reset()
                );
            }
            if answer.tool_calls.is_empty() || answer.cancelled {
                return;
            }
            // The model called tools: ask for each result, then let it go on.
            for call in &answer.tool_calls {
                let prompt = format!("result of {} (empty: no result)> ", call.name);
                let result = match tokio::task::block_in_place(|| editor.readline(&prompt)) {
                    Ok(result) => result,
                    Err(_) => return,
                };
                self.messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": result,
                }));
            }
        }
    }

    /// A `/command`; false to quit.
    async fn command(&mut self, command: &str) -> bool {
        let (name, rest) = command
            .split_once(char::is_whitespace)
            .map_or((command, ""), |(n, r)| (n, r.trim()));
        match name {
            "quit" | "exit" => return false,
            "help" => eprintln!("{HELP}"),
            "reset" => {
                self.reset();
                eprintln!("(a new conversation)");
            }
            "model" if rest.is_empty() => {
                eprintln!("model: {}", self.model);
                match self.client.models.list().send().await {
                    Ok(models) => {
                        let names: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
                        eprintln!("the server has: {}", names.join(", "));
                    }
                    Err(e) => eprintln!("cannot list the models: {e}"),
                }
            }
            "model" => {
                self.model = rest.to_owned();
                eprintln!("(talking to `{}` from now on)", self.model);
            }
            "save" if rest.is_empty() => eprintln!("/save needs a file name: /save FILE"),
            "save" => {
                let text = serde_json::to_string_pretty(&self.messages).unwrap_or_default();
                match std::fs::write(rest, text + "\n") {
                    Ok(()) => eprintln!("(saved {} messages to {rest})", self.messages.len()),
                    Err(e) => eprintln!("cannot write {rest}: {e}"),
                }
            }
            other => eprintln!("unknown command /{other} (/help lists them)"),
        }
        true
    }

    /// Streams the answer to the conversation so far into `out` (reasoning apart: dimmed on a
    /// terminal, else on stderr), and adds it to the conversation. Ctrl-C stops it when
    /// `interactive`.
    async fn answer(
        &mut self,
        out: &mut impl std::io::Write,
        interactive: bool,
    ) -> Result<Answer, VllmError> {
        let style = Style::detect();
        let mut request = self
            .client
            .chat
            .completions()
            .create()
            .model(&self.model)
            .messages(&self.messages)
            .stream(true)
            .stream_options(json!({"include_usage": true}));
        if let Some(tokens) = self.args.max_tokens {
            request = request.max_tokens(tokens);
        }
        if let Some(temperature) = self.args.temperature {
            request = request.temperature(temperature);
        }
        if let Some(tools) = &self.tools {
            request = request.tools(tools);
        }
        let mut stream = request.send_stream().await?;
        let mut answer = Answer::default();
        // Reasoning shown and not yet closed (on `out` when interactive, else on stderr).
        let mut in_reasoning = false;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let event = tokio::select! {
                biased;
                _ = &mut ctrl_c, if interactive => {
                    answer.cancelled = true;
                    break;
                }
                event = stream.try_next() => event?,
            };
            let Some(event) = event else { break };
            match event {
                StreamEvent::Reasoning(text) => {
                    if interactive {
                        if !in_reasoning {
                            let _ = writeln!(out, "{}[reasoning]", style.dim());
                        }
                        let _ = write!(out, "{}{text}", style.dim());
                    } else {
                        eprint!("{text}");
                    }
                    in_reasoning = true;
                }
                StreamEvent::Content(text) => {
                    if in_reasoning {
                        close_reasoning(out, interactive, style, "\n\n");
                        in_reasoning = false;
                    }
                    let _ = write!(out, "{text}");
                    answer.content.push_str(&text);
                }
                StreamEvent::ToolCallComplete(call) => {
                    if in_reasoning {
                        close_reasoning(out, interactive, style, "\n");
                        in_reasoning = false;
                    }
                    let _ = writeln!(out, "[tool call] {}({})", call.name, call.arguments);
                    answer.tool_calls.push(call);
                }
                StreamEvent::Usage(usage) => {
                    answer.completion_tokens = Some(usage.completion_tokens);
                }
                _ => {}
            }
            let _ = out.flush();
        }
        if in_reasoning {
            close_reasoning(out, interactive, style, "\n");
        }
        let _ = out.flush();
        // Dropping the stream closes the connection: vLLM stops generating.
        drop(stream);
        let mut message = json!({"role": "assistant", "content": answer.content});
        if !answer.tool_calls.is_empty() {
            message["tool_calls"] = answer
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
        }
        self.messages.push(message);
        Ok(answer)
    }
}

/// Ends the reasoning shown: the style reset and `gap` on the terminal, a line end on stderr.
fn close_reasoning(out: &mut impl std::io::Write, interactive: bool, style: Style, gap: &str) {
    if interactive {
        let _ = write!(out, "{}{gap}", style.reset());
    } else {
        eprintln!();
    }
}
