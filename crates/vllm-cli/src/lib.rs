//! `vllm-rs`: the jobs around a vLLM server from a terminal.
//!
//! - `vllm-rs chat`: a streaming conversation (or one answer to stdin);
//! - `vllm-rs complete`: the legacy completions endpoint;
//! - `vllm-rs run-batch -i IN.jsonl -o OUT.jsonl`: the OpenAI batch format, every line once,
//!   resumable after a crash, in vLLM's output format;
//! - `vllm-rs bench serve`: a load generator with `vllm bench serve`'s flags and result file,
//!   that measures its own lag and CPU beside the server.
//!
//! Every subcommand goes through `vllm-client` (no HTTP of its own) to the server named by
//! `--base-url` / `VLLM_BASE_URL`, or to an embedded `vllm-mock` when none is named.
//!
//! Exit codes: 0 success; 1 the work was done but some requests failed; 2 invalid input or
//! usage (nothing was sent); 130 interrupted (Ctrl-C).
//!
//! The binary is a thin `main` over [`run`], which the benchmarks call too.
#![deny(missing_docs)]

mod bench;
mod chat;
mod cli;
mod complete;
mod exit;
mod run_batch;
mod setup;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// Runs `vllm-rs` with `args` (the program name first, as `std::env::args_os` gives them) and
/// returns its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                exit::usage()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A benchmark allowed one core runs on one thread: a multi-thread runtime there only adds
    // a thread (the main one, running the command's own future, and the worker, running its
    // tasks, take turns on that core, and every hand-over is a context switch), which costs
    // CPU and delays chunks. (The chat REPL needs a multi-thread runtime for its line editor.)
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_core && matches!(cli.command, Command::Bench(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vllm-rs: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Chat(args) => chat::run(args).await,
            Command::Complete(args) => complete::run(args).await,
            Command::RunBatch(args) => run_batch::run(args).await,
            Command::Bench(command) => bench::run(command).await,
        }
    })
}
