//! `vllm-rs bench serve`'s flags: vLLM's `vllm bench serve` names where the meaning is the
//! same.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::ServerArgs;

/// `vllm-rs bench`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Load a running server and measure it: TTFT, TPOT, inter-chunk and inter-token
    /// latency, end-to-end latency, throughput and goodput, with the client's own lag and
    /// CPU measured and reported beside them.
    Serve(Box<ServeArgs>),
}

/// Which API the requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `/v1/completions`, streamed (vLLM's `vllm` and `openai` backends).
    Completions,
    /// `/v1/chat/completions`, streamed (vLLM's `openai-chat`).
    Chat,
    /// `/v1/embeddings` (throughput and latency only).
    Embeddings,
}

impl Backend {
    /// The backend `--backend` names.
    pub(crate) fn parse(name: &str) -> Result<Backend, String> {
        match name {
            "openai" | "vllm" | "completions" => Ok(Backend::Completions),
            "openai-chat" | "chat" => Ok(Backend::Chat),
            "openai-embeddings" | "embeddings" => Ok(Backend::Embeddings),
            other => Err(format!(
                "--backend {other:?}: vllm-rs runs openai / vllm (completions), openai-chat and openai-embeddings"
            )),
        }
    }

    /// The backend an `--endpoint` path names.
    pub(crate) fn of_endpoint(path: &str) -> Result<Backend, String> {
        let path = path.trim_end_matches('/');
        if path.ends_with("chat/completions") {
            Ok(Backend::Chat)
        } else if path.ends_with("completions") {
            Ok(Backend::Completions)
        } else if path.ends_with("embeddings") {
            Ok(Backend::Embeddings)
        } else {
            Err(format!(
                "--endpoint {path:?}: want /v1/chat/completions, /v1/completions or /v1/embeddings"
            ))
        }
    }
}

/// Where the prompts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DatasetName {
    /// Random prompts of `--random-input-len` tokens (± `--random-range-ratio`), built with the
    /// server's `/tokenize` so that the lengths are exact.
    Random,
    /// A ShareGPT-format JSON file (`--dataset-path`): the first human turn is the prompt, the
    /// first answer's length the output length.
    Sharegpt,
    /// A JSONL file of `{"prompt": …}` lines (`--dataset-path`).
    Custom,
    /// Prompts sharing prefixes: `--prefix-repetition-num-prefixes` prefixes of
    /// `--prefix-repetition-prefix-len` tokens, each followed by a random suffix (prefix-cache
    /// behaviour).
    #[value(
        name = "prefix_repetition",
        alias = "prefix-repetition",
        alias = "shared-prefix"
    )]
    PrefixRepetition,
    /// Multi-turn conversations (chat only): each arrival starts a conversation of
    /// `--multi-turn-turns` user turns of random prompts, sent one after the other with the
    /// history so far (the server's own answers included).
    #[value(name = "multi-turn", alias = "multi_turn")]
    MultiTurn,
}

/// `vllm-rs bench serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,

    /// vLLM's spelling of the server: its host (with --port; the URL is
    /// http://HOST:PORT/v1). --base-url wins over both.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,

    /// vLLM's spelling of the server: its port (with --host, default localhost).
    #[arg(long, value_name = "PORT")]
    pub(crate) port: Option<u16>,

    /// The API to load: openai or vllm (/v1/completions, as vLLM's default), openai-chat
    /// (/v1/chat/completions), openai-embeddings (/v1/embeddings). Streams for the first two.
    #[arg(long, value_name = "NAME", default_value = "openai")]
    pub(crate) backend: String,

    /// vLLM's spelling of the API: /v1/chat/completions, /v1/completions or /v1/embeddings
    /// (wins over --backend).
    #[arg(long, value_name = "PATH")]
    pub(crate) endpoint: Option<String>,

    /// The model name sent in requests, when it differs from --model (which names the
    /// result).
    #[arg(long, value_name = "NAME")]
    pub(crate) served_model_name: Option<String>,

    /// A label for the result (its file name starts with it; default: the backend).
    #[arg(long, value_name = "TEXT")]
    pub(crate) label: Option<String>,

    /// The tokenizer vLLM's result file names (`tokenizer_id`). Default: the model.
    #[arg(long, value_name = "NAME")]
    pub(crate) tokenizer: Option<String>,

    // --- The load ---
    /// Requests per second, Poisson arrivals (gamma with --burstiness), or `inf` to send
    /// everything at once. A comma-separated list (`1,2,4,inf`) runs a sweep: one run per
    /// value, one curve.
    #[arg(long, value_name = "R[,R…]", default_value = "inf")]
    pub(crate) request_rate: String,

    /// The shape of the arrivals: the gamma distribution's shape (1: Poisson; below 1
    /// burstier, above 1 more regular). The mean rate stays --request-rate.
    #[arg(long, value_name = "B", default_value_t = 1.0)]
    pub(crate) burstiness: f64,

    /// The most requests in flight at once (a request that arrives when all are busy waits;
    /// its latencies count from when it is sent). A comma-separated list runs a sweep.
    #[arg(long, value_name = "C[,C…]")]
    pub(crate) max_concurrency: Option<String>,

    /// How many requests to send (each run of a sweep sends this many).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) num_prompts: usize,

    /// Run for this many seconds instead of --num-prompts requests (the dataset is reused
    /// round and round).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<f64>,

    /// Requests sent before the measured run (not counted), at the run's concurrency.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) num_warmups: usize,

    /// The seed of the dataset and of the arrival times.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Ask the server to ignore end-of-sequence tokens, so every request generates exactly
    /// its output length (vLLM's `ignore_eos`).
    #[arg(long)]
    pub(crate) ignore_eos: bool,

    /// Sampling temperature for every request (default: none sent, the server's).
    #[arg(long, value_name = "T")]
    pub(crate) temperature: Option<f32>,

    // --- Datasets ---
    /// Where prompts come from: random, sharegpt, custom, prefix_repetition, multi-turn.
    #[arg(long, value_enum, default_value = "random")]
    pub(crate) dataset_name: DatasetName,

    /// The dataset file (sharegpt: a JSON array; custom: JSONL of {"prompt": …}).
    #[arg(long, value_name = "FILE")]
    pub(crate) dataset_path: Option<PathBuf>,

    /// random: input tokens per request.
    #[arg(
        long,
        visible_alias = "input-len",
        value_name = "N",
        default_value_t = 1024
    )]
    pub(crate) random_input_len: usize,

    /// random: output tokens per request (max_tokens).
    #[arg(
        long,
        visible_alias = "output-len",
        value_name = "N",
        default_value_t = 128
    )]
    pub(crate) random_output_len: usize,

    /// random: lengths are drawn uniformly from [len·(1−r), len·(1+r)].
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    pub(crate) random_range_ratio: f64,

    /// random: a prefix of this many tokens, the same for every request, before the random
    /// part.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) random_prefix_len: usize,

    /// sharegpt: the output length of every request, instead of the dataset answer's.
    #[arg(long, value_name = "N")]
    pub(crate) sharegpt_output_len: Option<usize>,

    /// custom: the output length of every request.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) custom_output_len: usize,

    /// prefix_repetition: tokens in each shared prefix.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) prefix_repetition_prefix_len: usize,

    /// prefix_repetition: tokens in each request's own suffix.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) prefix_repetition_suffix_len: usize,

    /// prefix_repetition: how many different prefixes.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) prefix_repetition_num_prefixes: usize,

    /// prefix_repetition: output tokens per request.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub(crate) prefix_repetition_output_len: usize,

    /// multi-turn: user turns per conversation (each a request, counted in --num-prompts).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) multi_turn_turns: usize,

    // --- Metrics and results ---
    /// The metrics reported with mean, median and percentiles, comma-separated: ttft (time
    /// to first token: to the first chunk with a choice, as vLLM times it), tpot (time per
    /// output token after the first: (e2el − ttft) / (output tokens − 1)), itl (vLLM's
    /// inter-token latency: the gap between chunks, one per chunk however many tokens it
    /// carries), e2el (end-to-end latency: to the last chunk), client_queue_time (waiting
    /// for a --max-concurrency slot), e2el_including_client_queue, and vllm-rs's own
    /// itl_token (the gap between tokens: each chunk's gap shared out over the tokens it
    /// carried), ttfr and ttfc (time to the first reasoning token and to the first answer
    /// token, apart). Default: ttft,tpot,itl (e2el for embeddings).
    #[arg(long, value_name = "LIST")]
    pub(crate) percentile_metrics: Option<String>,

    /// The percentiles reported, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "99")]
    pub(crate) metric_percentiles: String,

    /// Service-level objectives for goodput, as `ttft:MS tpot:MS e2el:MS` (any of them): a
    /// request counts towards goodput when it meets all.
    #[arg(long, value_name = "KEY:MS", num_args = 1..)]
    pub(crate) goodput: Vec<String>,

    /// Write the result as JSON, with the keys and types of `vllm bench serve`'s result
    /// file (and vllm-rs's own measurements under `vllm_rs`).
    #[arg(long)]
    pub(crate) save_result: bool,

    /// Append the result to the file (one JSON object a line) instead of replacing it.
    #[arg(long)]
    pub(crate) append_result: bool,

    /// With --save-result: also the per-request lists (input_lens, output_lens, ttfts, itls,
    /// generated_texts, errors).
    #[arg(long)]
    pub(crate) save_detailed: bool,

    /// The directory of the result file.
    #[arg(long, value_name = "DIR")]
    pub(crate) result_dir: Option<PathBuf>,

    /// The result file's name. Default: BACKEND-RATEqps-concurrencyC-MODEL-DATE.json, as
    /// vLLM names it.
    #[arg(long, value_name = "NAME")]
    pub(crate) result_filename: Option<String>,

    /// `KEY=VALUE` pairs added to the result file.
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    pub(crate) metadata: Vec<String>,

    /// Write every request's measurements as JSONL to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) per_request: Option<PathBuf>,

    /// Write a self-contained HTML report (latency CDFs, throughput and concurrency over
    /// time, the sweep's curve) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) html_report: Option<PathBuf>,

    /// Sample the server's /metrics every second during the run and report its own view
    /// (running and waiting requests, KV-cache use, its TTFT) beside the client's.
    #[arg(long)]
    pub(crate) scrape_metrics: bool,

    /// No progress bar.
    #[arg(long)]
    pub(crate) disable_tqdm: bool,

    /// Accepted for vLLM's command lines and ignored: the tokenizer is the server's.
    #[arg(long, hide = true)]
    pub(crate) trust_remote_code: bool,

    /// Accepted for vLLM's command lines and ignored.
    #[arg(long, hide = true, value_name = "SECS")]
    pub(crate) ready_check_timeout_sec: Option<u64>,
}
