//! The command line, as clap reads it. Flag names follow vLLM's own CLI where the meaning
//! is the same.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// vllm-rs: the jobs around a vLLM server (or any OpenAI-compatible server) from a terminal.
///
/// Every subcommand talks to the server named by --base-url (or VLLM_BASE_URL); without one,
/// it says so on stderr and starts an embedded vllm-mock, so every example works anywhere.
#[derive(Debug, Parser)]
#[command(name = "vllm-rs", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Chat with a model: a streaming multi-turn conversation on a terminal (line editing,
    /// history, /reset, /model, /save FILE; Ctrl-C stops an answer, Ctrl-D quits), or one
    /// answer to what stdin holds when it is not a terminal (`echo hi | vllm-rs chat`).
    Chat(ChatArgs),
    /// Complete a prompt with the legacy completions endpoint, streamed to stdout.
    Complete(CompleteArgs),
    /// Run a batch file in the OpenAI batch format: every line once, resumable, in vLLM's
    /// output format.
    #[command(
        name = "run-batch",
        after_help = "Exit codes: 0 every line succeeded; 1 the output is complete but some lines are \
                      errors (or invalid lines were skipped); 2 invalid input or usage, nothing \
                      sent; 130 interrupted (Ctrl-C: the requests in flight are finished and \
                      written; a second Ctrl-C exits at once). A rerun with the same output \
                      file does the rest."
    )]
    RunBatch(RunBatchArgs),
    /// Benchmark a server: `vllm-rs bench serve` loads it as `vllm bench serve` does (same
    /// flags, same result file) and measures the client too.
    #[command(subcommand)]
    Bench(crate::bench::args::BenchCommand),
}

/// The server every subcommand talks to.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The server's OpenAI-compatible base URL, with its /v1 (for example
    /// http://localhost:8000/v1). Several (repeated, or separated by commas) are replicas
    /// of one deployment: requests are spread over them by the client (the less busy of
    /// two, a conversation kept on one replica, a dead one left out until it answers its
    /// /health again). Without it (and without VLLM_BASE_URL), an embedded vllm-mock is
    /// started and used, and stderr says so.
    #[arg(long, env = "VLLM_BASE_URL", value_name = "URL", value_delimiter = ',')]
    pub(crate) base_url: Vec<String>,

    /// The API key, sent as `Authorization: Bearer <KEY>`. Never printed.
    #[arg(long, env = "VLLM_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,

    /// The model to use. Default: the first model the server lists.
    #[arg(long, short = 'm', value_name = "NAME")]
    pub(crate) model: Option<String>,
}

/// `vllm-rs chat`.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,

    /// A system message that starts the conversation (kept by /reset).
    #[arg(long, value_name = "TEXT")]
    pub(crate) system: Option<String>,

    /// The largest number of tokens an answer may have.
    #[arg(long, value_name = "N")]
    pub(crate) max_tokens: Option<u32>,

    /// Sampling temperature (0 is greedy). Default: the server's.
    #[arg(long, value_name = "T")]
    pub(crate) temperature: Option<f32>,

    /// Tools the model may call: a JSON file holding an array of tool definitions
    /// ([{"type": "function", "function": {"name", "description", "parameters"}}]). A call is
    /// shown, and its result asked for on the terminal.
    #[arg(long, value_name = "FILE")]
    pub(crate) tools: Option<PathBuf>,

    /// Where the line history is kept. Default: ~/.vllm-rs-history.
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<PathBuf>,
}

/// `vllm-rs complete`.
#[derive(Debug, Args)]
pub(crate) struct CompleteArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,

    /// The prompt. Default: what stdin holds.
    #[arg(value_name = "PROMPT")]
    pub(crate) prompt: Option<String>,

    /// The largest number of tokens to generate.
    #[arg(long, value_name = "N")]
    pub(crate) max_tokens: Option<u32>,

    /// Sampling temperature (0 is greedy). Default: the server's.
    #[arg(long, value_name = "T")]
    pub(crate) temperature: Option<f32>,
}

/// `vllm-rs run-batch`.
#[derive(Debug, Args)]
pub(crate) struct RunBatchArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,

    /// The batch input, one request per line in the OpenAI batch format:
    /// {"custom_id", "method": "POST", "url", "body"}, for the urls /v1/chat/completions,
    /// /v1/completions, /v1/embeddings, /v1/score and /v1/rerank (and /score, /rerank).
    /// A body without "model" gets --model (default: the server's first). `-` reads stdin.
    #[arg(short = 'i', long = "input-file", value_name = "IN.jsonl")]
    pub(crate) input: String,

    /// Where results go, one line per request in vLLM's format:
    /// {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}.
    /// `-` writes stdout. Running again with the same output file resumes: finished
    /// requests are skipped, and a torn last line from a crash is repaired.
    #[arg(short = 'o', long = "output-file", value_name = "OUT.jsonl")]
    pub(crate) output: String,

    /// The most requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) max_concurrency: usize,

    /// Send at most this many requests per second (default: as fast as the concurrency
    /// allows).
    #[arg(long, value_name = "R")]
    pub(crate) request_rate: Option<f64>,

    /// Report invalid input lines on stderr and go on with the others (they get no output
    /// line, and the exit code is 1), instead of stopping before anything is sent.
    #[arg(long)]
    pub(crate) skip_invalid: bool,

    /// Send again the requests whose output lines are errors (their old lines are removed).
    #[arg(long)]
    pub(crate) retry_failed: bool,

    /// Run only the lines whose custom_id falls in shard I of N (0 <= I < N), by a stable hash
    /// of the custom_id: N machines with the same input and --shard 0/N … N-1/N split it.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub(crate) shard: Option<(u64, u64)>,

    /// Make the output durable (fsync) after this many lines (and at least every second).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) sync_every: usize,
}

/// `I/N` with `I < N`.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not I/N (for example 0/4)"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{v}` in `{text}` is not a whole number"))
    };
    let (i, n) = (parse(i)?, parse(n)?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_i_of_n() {
        assert_eq!(parse_shard("0/4"), Ok((0, 4)));
        assert_eq!(parse_shard("3/4"), Ok((3, 4)));
        for bad in ["4/4", "1/0", "x/2", "2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
