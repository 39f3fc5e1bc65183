//! A run's metrics: vLLM's result file (the same keys and types as `vllm bench serve`
//! writes, so its sweep and plotting tools read ours), its terminal table, and vllm-rs's own
//! measurements beside them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::{Value, json};

use super::args::Backend;
use super::request::Measured;
use super::run::Outcome;
use super::schedule::Rate;
use super::scrape::ServerView;
use super::stats::{Summary, percentile_name, summarize};

/// The metrics a run can report, in the order vLLM reports them (then vllm-rs's own): the
/// key, the table's section header, the table's name.
pub(crate) const METRICS: [(&str, &str, &str); 9] = [
    ("ttft", "Time to First Token", "TTFT"),
    ("tpot", "Time per Output Token (excl. 1st token)", "TPOT"),
    ("itl", "Inter-token Latency", "ITL"),
    ("e2el", "End-to-end Latency", "E2EL"),
    (
        "client_queue_time",
        "Client-side Queueing",
        "Client Queue Time",
    ),
    (
        "e2el_including_client_queue",
        "Queue-inclusive End-to-end Latency",
        "E2EL incl. Client Queue",
    ),
    (
        "itl_token",
        "Inter-token Latency per Token",
        "ITL per token",
    ),
    ("ttfr", "Time to First Reasoning Token", "TTFR"),
    ("ttfc", "Time to First Content Token", "TTFC"),
];

/// A JSON object that keeps its keys in the order they were added (vLLM's file is in
/// insertion order; `serde_json`'s map here is sorted).
#[derive(Debug, Default, Clone)]
pub(crate) struct Ordered(pub(crate) Vec<(String, Value)>);

impl Ordered {
    fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((key.to_owned(), value.into()));
    }
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// What describes the run in its result (vLLM's config echo).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) backend_name: String,
    pub(crate) backend: Backend,
    pub(crate) label: Option<String>,
    pub(crate) model_id: String,
    pub(crate) tokenizer_id: String,
    pub(crate) num_prompts: usize,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) rate: Rate,
    pub(crate) burstiness: f64,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) metrics: Vec<String>,
    pub(crate) percentiles: Vec<f64>,
    pub(crate) goodput: Vec<(String, f64)>,
    pub(crate) save_detailed: bool,
    pub(crate) date: String,
}

/// A run's result: vLLM's keys, and what the table and report need.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) json: Ordered,
    pub(crate) table: String,
    /// Why the client may have set the pace (empty when it did not).
    pub(crate) warnings: Vec<String>,
}

/// Parses `--goodput ttft:MS tpot:MS e2el:MS`.
pub(crate) fn parse_goodput(items: &[String]) -> Result<Vec<(String, f64)>, String> {
    let mut slos = Vec::new();
    for item in items.iter().flat_map(|i| i.split_whitespace()) {
        let (key, value) = item
            .split_once(':')
            .ok_or_else(|| format!("--goodput {item:?}: want KEY:MS, as ttft:500"))?;
        if !matches!(key, "ttft" | "tpot" | "e2el") {
            return Err(format!(
                "--goodput {item:?}: the objectives are ttft, tpot and e2el"
            ));
        }
        let ms: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                format!("--goodput {item:?}: {value:?} is not a number of milliseconds")
            })?;
        slos.push((key.to_owned(), ms));
    }
    Ok(slos)
}

/// The metrics `--percentile-metrics` names, checked, in the order reports give them.
pub(crate) fn parse_metrics(list: &str) -> Result<Vec<String>, String> {
    let asked: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    for metric in &asked {
        if !METRICS.iter().any(|(key, _, _)| key == metric) {
            return Err(format!(
                "--percentile-metrics: unknown metric {metric:?} (known: {})",
                METRICS.map(|(k, _, _)| k).join(", ")
            ));
        }
    }
    Ok(METRICS
        .iter()
        .filter(|(key, _, _)| asked.contains(key))
        .map(|(key, _, _)| (*key).to_owned())
        .collect())
}

/// Parses `--metric-percentiles 50,90,99`.
pub(crate) fn parse_percentiles(list: &str) -> Result<Vec<f64>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<f64>()
                .ok()
                .filter(|v| (0.0..=100.0).contains(v))
                .ok_or_else(|| format!("--metric-percentiles: {p:?} is not a percentile (0–100)"))
        })
        .collect()
}

/// Each request's time-per-output-token, if it has more than one output token.
fn tpot(m: &Measured) -> Option<f64> {
    (m.output_len > 1).then(|| (m.latency - m.ttft) / (m.output_len - 1) as f64)
}

/// The samples of `metric` over the successful requests.
fn samples(metric: &str, ok: &[&Measured]) -> Vec<f64> {
    match metric {
        "ttft" => ok.iter().map(|m| m.ttft).collect(),
        "tpot" => ok.iter().filter_map(|m| tpot(m)).collect(),
        "itl" => ok.iter().flat_map(|m| m.itls.iter().copied()).collect(),
        "e2el" => ok.iter().map(|m| m.latency).collect(),
        "client_queue_time" => ok.iter().map(|m| m.queue_time).collect(),
        "e2el_including_client_queue" => ok.iter().map(|m| m.latency + m.queue_time).collect(),
        "itl_token" => ok
            .iter()
            .flat_map(|m| m.token_itls.iter().copied())
            .collect(),
        "ttfr" => ok.iter().filter_map(|m| m.ttfr).collect(),
        "ttfc" => ok.iter().filter_map(|m| m.ttfc).collect(),
        _ => Vec::new(),
    }
}

/// Whether `metric` applies to this run (vLLM leaves out the queue metrics without a
/// concurrency limit, and the queue-inclusive latency at an infinite rate).
fn applies(metric: &str, config: &Config) -> bool {
    match metric {
        "client_queue_time" => config.max_concurrency.is_some(),
        "e2el_including_client_queue" => {
            config.max_concurrency.is_some() && config.rate != Rate::Infinite
        }
        _ => true,
    }
}

/// vLLM's peaks: in 1-second buckets from the first send, the most chunks with choices and
/// the most requests that touched one bucket.
fn peaks(ok: &[&Measured], started: std::time::Instant) -> (f64, u64) {
    let starts: Vec<f64> = ok
        .iter()
        .map(|m| {
            m.sent
                .map_or(0.0, |s| s.saturating_duration_since(started).as_secs_f64())
        })
        .collect();
    let Some(t0) = starts.iter().copied().reduce(f64::min) else {
        return (0.0, 0);
    };
    let end = ok
        .iter()
        .zip(&starts)
        .map(|(m, s)| s + m.latency)
        .fold(t0, f64::max);
    let buckets = (end - t0).ceil() as usize + 1;
    let mut tokens = vec![0u64; buckets];
    let mut concurrent = vec![0u64; buckets];
    for (m, start) in ok.iter().zip(&starts) {
        let mut at = start + m.ttft;
        let mut add = |t: f64| {
            if let Some(slot) = tokens.get_mut((t - t0).max(0.0) as usize) {
                *slot += 1;
            }
        };
        add(at);
        for gap in &m.itls {
            at += gap;
            add(at);
        }
        let first = ((start - t0).max(0.0)) as usize;
        let last = ((start + m.latency - t0).max(0.0)) as usize;
        for slot in concurrent.iter_mut().take(last + 1).skip(first) {
            *slot += 1;
        }
    }
    (
        tokens.iter().copied().max().unwrap_or(0) as f64,
        concurrent.iter().copied().max().unwrap_or(0),
    )
}

/// One value per request, in request order: a per-request list of vLLM's result file.
fn column<T>(results: &[Measured], value: impl Fn(&Measured) -> T) -> Vec<T> {
    results.iter().map(value).collect()
}

/// A row of vLLM's table: the label padded to 40, the value to 10.
fn row(table: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(table, "{label:<40} {value:<10}");
}

fn row_f(table: &mut String, label: &str, value: f64) {
    let _ = writeln!(table, "{label:<40} {:<10}", format!("{value:.2}"));
}

fn header(table: &mut String, title: &str) {
    let _ = writeln!(table, "{title:-^50}");
}

/// The p50, p99 and max of one of the client's lags, in seconds.
#[derive(Debug, Clone, Copy)]
struct Lags {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Lags {
    /// Of `values` (sorted once, here).
    fn of(mut values: Vec<f64>) -> Lags {
        let summary = summarize(&mut values, &[50.0, 99.0]);
        Lags {
            p50: summary.percentiles[0].1,
            p99: summary.percentiles[1].1,
            max: values.last().copied().unwrap_or(0.0),
        }
    }

    /// For the result file: `{"p50", "p99", "max"}` in milliseconds.
    fn json(self) -> Value {
        json!({"p50": self.p50 * 1e3, "p99": self.p99 * 1e3, "max": self.max * 1e3})
    }

    /// For the table: `p50 / p99 / max` in milliseconds.
    fn line(self) -> String {
        format!(
            "{:.3} / {:.3} / {:.3}",
            self.p50 * 1e3,
            self.p99 * 1e3,
            self.max * 1e3
        )
    }
}

/// The result of `outcome` as `config` describes it.
pub(crate) fn report(
    config: &Config,
    outcome: &Outcome,
    notes: &[String],
    server: Option<&ServerView>,
) -> Report {
    let ok: Vec<&Measured> = outcome.results.iter().filter(|m| m.success).collect();
    let completed = ok.len();
    let failed = outcome.results.len() - completed;
    let duration = outcome.duration.max(1e-9);
    let input_tokens: usize = ok.iter().map(|m| m.input_len).sum();
    let output_tokens: usize = ok.iter().map(|m| m.output_len).sum();
    let pooling = config.backend == Backend::Embeddings;

    let mut json = Ordered::default();
    json.put("date", config.date.clone());
    json.put("endpoint_type", config.backend_name.clone());
    json.put("backend", config.backend_name.clone());
    json.put("label", config.label.clone());
    json.put("model_id", config.model_id.clone());
    json.put("tokenizer_id", config.tokenizer_id.clone());
    json.put("num_prompts", config.num_prompts);
    for (key, value) in &config.metadata {
        json.0.retain(|(k, _)| k != key);
        json.put(key, value.clone());
    }
    json.put(
        "request_rate",
        match config.rate {
            Rate::Infinite => json!("inf"),
            Rate::PerSecond(rate) => json!(rate),
        },
    );
    json.put("burstiness", config.burstiness);
    json.put("max_concurrency", config.max_concurrency);
    json.put("duration", outcome.duration);
    json.put("completed", completed);
    let good = if config.goodput.is_empty() {
        None
    } else {
        Some(
            ok.iter()
                .filter(|m| {
                    config.goodput.iter().all(|(key, ms)| {
                        let value = match key.as_str() {
                            "ttft" => m.ttft,
                            "tpot" => tpot(m).unwrap_or(0.0),
                            _ => m.latency,
                        };
                        value <= ms / 1000.0
                    })
                })
                .count(),
        )
    };
    let (peak_tokens, peak_concurrent) = peaks(&ok, outcome.started);
    let starts: Vec<f64> = outcome
        .results
        .iter()
        .map(|m| {
            m.sent.map_or(0.0, |s| {
                s.saturating_duration_since(outcome.started).as_secs_f64()
            })
        })
        .collect();
    let errors: Vec<String> = outcome
        .results
        .iter()
        .map(|m| m.error.as_ref().map_or(String::new(), |(_, e)| e.clone()))
        .collect();
    if pooling {
        json.put("total_input_tokens", input_tokens);
        json.put("total_input_sequences", completed);
        json.put("request_throughput", completed as f64 / duration);
        json.put("input_sequence_throughput", completed as f64 / duration);
        json.put("total_token_throughput", input_tokens as f64 / duration);
        json.put("input_lens", column(&outcome.results, |m| m.input_len));
        json.put("latencies", column(&outcome.results, |m| m.latency));
        json.put("queue_times", column(&outcome.results, |m| m.queue_time));
        json.put("errors", errors.clone());
    } else {
        json.put("failed", failed);
        json.put("total_input_tokens", input_tokens);
        json.put("total_output_tokens", output_tokens);
        json.put("request_throughput", completed as f64 / duration);
        json.put("request_goodput", good.map(|g| g as f64 / duration));
        json.put("output_throughput", output_tokens as f64 / duration);
        json.put(
            "total_token_throughput",
            (input_tokens + output_tokens) as f64 / duration,
        );
        if config.save_detailed {
            json.put("input_lens", column(&outcome.results, |m| m.input_len));
            json.put("output_lens", column(&outcome.results, |m| m.output_len));
            json.put("ttfts", column(&outcome.results, |m| m.ttft));
            json.put("itls", column(&outcome.results, |m| m.itls.clone()));
        }
        json.put("latencies", column(&outcome.results, |m| m.latency));
        if config.save_detailed {
            json.put("start_times", starts.clone());
        }
        json.put("queue_times", column(&outcome.results, |m| m.queue_time));
        if config.save_detailed {
            json.put(
                "generated_texts",
                column(&outcome.results, |m| m.text.clone()),
            );
            json.put("errors", errors.clone());
        }
        json.put("max_output_tokens_per_s", peak_tokens);
        json.put("max_concurrent_requests", peak_concurrent);
        json.put("rtfx", 0.0);
    }

    // The percentile blocks.
    let mut summaries: Vec<(&str, &str, &str, Summary)> = Vec::new();
    for (key, title, name) in METRICS {
        if !config.metrics.iter().any(|m| m == key) || !applies(key, config) {
            continue;
        }
        let mut values = samples(key, &ok);
        let summary = summarize(&mut values, &config.percentiles);
        json.put(&format!("mean_{key}_ms"), summary.mean * 1e3);
        json.put(&format!("median_{key}_ms"), summary.median * 1e3);
        json.put(&format!("std_{key}_ms"), summary.std * 1e3);
        for (p, value) in &summary.percentiles {
            json.put(&format!("p{}_{key}_ms", percentile_name(*p)), value * 1e3);
        }
        summaries.push((key, title, name, summary));
    }

    // vllm-rs's own view, under one key.
    let client = &outcome.client;
    let chunks: u64 = outcome.results.iter().map(|m| m.chunks).sum();
    let cpu_share = client.cpu_seconds / (duration * client.cores.max(1) as f64);
    let wake = Lags::of(client.wake_lags.clone());
    let lag = Lags::of(client.schedule_lags.clone());
    // Only against a server that stamps its chunks (vllm-mock --stamp-events).
    let read_lags: Vec<f64> = outcome
        .results
        .iter()
        .flat_map(|m| m.read_lags.iter().copied())
        .collect();
    let read_count = read_lags.len();
    let read = Lags::of(read_lags);
    let mut warnings = Vec::new();
    if cpu_share > 0.8 {
        warnings.push(format!(
            "the client used {:.0} % of its {} cores: it, not the server, may set the pace",
            cpu_share * 100.0,
            client.cores
        ));
    }
    if wake.p99 > 0.002 {
        warnings.push(format!(
            "a woken task waited {:.1} ms (p99) to run: chunk times carry that much client delay",
            wake.p99 * 1e3
        ));
    }
    if read.p99 > 0.002 {
        warnings.push(format!(
            "chunks waited {:.1} ms (p99) after the server sent them until the client read them: chunk times carry that much client delay",
            read.p99 * 1e3
        ));
    }
    if lag.p99 > 0.005 && config.rate != Rate::Infinite {
        warnings.push(format!(
            "requests were sent {:.1} ms (p99) later than scheduled: the arrival rate is the client's, not the one asked for",
            lag.p99 * 1e3
        ));
    }
    let mut errors_by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for m in &outcome.results {
        if let Some((kind, _)) = &m.error {
            *errors_by_kind.entry(kind.clone()).or_default() += 1;
        }
    }
    let usage_missing = ok.iter().filter(|m| !m.usage_reported).count();
    let per_chunk_missing = ok
        .iter()
        .filter(|m| !m.per_chunk_usage && m.usage_reported)
        .count();
    let mut all_notes: Vec<String> = notes.to_vec();
    if usage_missing > 0 && !pooling {
        all_notes.push(format!(
            "{usage_missing} requests got no usage from the server: their output tokens are counted as chunks with text"
        ));
    }
    if per_chunk_missing > 0 && config.metrics.iter().any(|m| m == "itl_token") {
        all_notes.push(format!(
            "{per_chunk_missing} requests got no usage in every chunk: itl_token counts one token a chunk for them"
        ));
    }
    json.put(
        "vllm_rs",
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "interrupted": outcome.interrupted,
            "requests_sent": outcome.results.len(),
            "chunks": chunks,
            "client_cpu_seconds": client.cpu_seconds,
            "client_cores": client.cores,
            "client_cpu_share": cpu_share,
            "chunks_per_cpu_second": if client.cpu_seconds > 0.0 { chunks as f64 / client.cpu_seconds } else { 0.0 },
            "schedule_lag_ms": lag.json(),
            "wake_lag_ms": wake.json(),
            "read_lag_ms": (read_count > 0).then(|| {
                let mut ms = read.json();
                ms["chunks"] = json!(read_count);
                ms
            }),
            "client_bound": !warnings.is_empty(),
            "warnings": warnings.clone(),
            "errors_by_kind": errors_by_kind,
            "notes": all_notes,
            "server": server.map(ServerView::to_json),
        }),
    );

    // The table, as vLLM prints it.
    let mut table = String::new();
    let _ = writeln!(table, "{:=^50}", " Serving Benchmark Result ");
    row(&mut table, "Successful requests:", completed);
    row(&mut table, "Failed requests:", failed);
    if let Some(c) = config.max_concurrency {
        row(&mut table, "Maximum request concurrency:", c);
    }
    if let Rate::PerSecond(rate) = config.rate {
        row_f(&mut table, "Request rate configured (RPS):", rate);
    }
    row_f(&mut table, "Benchmark duration (s):", outcome.duration);
    row(&mut table, "Total input tokens:", input_tokens);
    if !pooling {
        row(&mut table, "Total generated tokens:", output_tokens);
    }
    row_f(
        &mut table,
        "Request throughput (req/s):",
        completed as f64 / duration,
    );
    if let Some(good) = good {
        row_f(
            &mut table,
            "Request goodput (req/s):",
            good as f64 / duration,
        );
    }
    if !pooling {
        row_f(
            &mut table,
            "Output token throughput (tok/s):",
            output_tokens as f64 / duration,
        );
        row_f(
            &mut table,
            "Peak output token throughput (tok/s):",
            peak_tokens,
        );
        row_f(
            &mut table,
            "Peak concurrent requests:",
            peak_concurrent as f64,
        );
    }
    row_f(
        &mut table,
        "Total token throughput (tok/s):",
        (input_tokens + output_tokens) as f64 / duration,
    );
    for (_, title, name, summary) in &summaries {
        header(&mut table, title);
        row_f(
            &mut table,
            &format!("Mean {name} (ms):"),
            summary.mean * 1e3,
        );
        row_f(
            &mut table,
            &format!("Median {name} (ms):"),
            summary.median * 1e3,
        );
        for (p, value) in &summary.percentiles {
            row_f(
                &mut table,
                &format!("P{} {name} (ms):", percentile_name(*p)),
                value * 1e3,
            );
        }
    }
    let _ = writeln!(table, "{}", "=".repeat(50));
    // The client's view of itself.
    header(&mut table, "vllm-rs: the client itself");
    row_f(&mut table, "Client CPU (s):", client.cpu_seconds);
    row_f(
        &mut table,
        &format!("Client CPU use (% of {} cores):", client.cores),
        cpu_share * 100.0,
    );
    row(&mut table, "Chunks read:", chunks);
    if client.cpu_seconds > 0.0 {
        row(
            &mut table,
            "Chunks per client CPU-second:",
            format!("{:.0}", chunks as f64 / client.cpu_seconds),
        );
    }
    row(&mut table, "Send lag p50/p99/max (ms):", lag.line());
    row(&mut table, "Wake-up lag p50/p99/max (ms):", wake.line());
    if read_count > 0 {
        row(
            &mut table,
            "Read lag (stamped) p50/p99/max (ms):",
            read.line(),
        );
    }
    for (kind, count) in &errors_by_kind {
        row(&mut table, &format!("Errors, {kind}:"), count);
    }
    if let Some(server) = server {
        header(&mut table, "vllm-rs: the server's view (/metrics)");
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
        let pair = |p: Option<(f64, f64)>, scale: f64| {
            p.map_or("-".to_owned(), |(mean, max)| {
                format!("{:.1} / {:.1}", mean * scale, max * scale)
            })
        };
        row(
            &mut table,
            "Mean TTFT, server (ms):",
            ms(server.mean_ttft_ms),
        );
        row(&mut table, "Mean ITL, server (ms):", ms(server.mean_itl_ms));
        row(
            &mut table,
            "Mean E2EL, server (ms):",
            ms(server.mean_e2el_ms),
        );
        row(
            &mut table,
            "Running requests, mean/max:",
            pair(server.running, 1.0),
        );
        row(
            &mut table,
            "Waiting requests, mean/max:",
            pair(server.waiting, 1.0),
        );
        row(
            &mut table,
            "KV cache use, mean/max (%):",
            pair(server.kv_cache, 100.0),
        );
    }
    for note in &all_notes {
        let _ = writeln!(table, "note: {note}");
    }
    if outcome.interrupted {
        let _ = writeln!(
            table,
            "note: interrupted: these are the {} requests that finished before Ctrl-C",
            outcome.results.len()
        );
    }
    for warning in &warnings {
        let _ = writeln!(table, "WARNING: {warning}");
    }
    let _ = writeln!(table, "{}", "=".repeat(50));
    Report {
        json,
        table,
        warnings,
    }
}

/// vLLM's default result file name.
pub(crate) fn default_filename(config: &Config) -> String {
    let base = config
        .label
        .clone()
        .unwrap_or_else(|| config.backend_name.clone());
    let concurrency = config
        .max_concurrency
        .map_or(String::new(), |c| format!("-concurrency{c}"));
    let model = config
        .model_id
        .rsplit('/')
        .next()
        .unwrap_or(&config.model_id);
    format!(
        "{base}-{}qps{concurrency}-{model}-{}.json",
        config.rate.label(),
        config.date
    )
}

/// Local time as `%Y%m%d-%H%M%S`.
pub(crate) fn local_date() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let offset = local_offset(now);
    let t = now + offset;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Seconds east of UTC of local time at `unix` (0 where it cannot be known).
#[cfg(unix)]
fn local_offset(unix: i64) -> i64 {
    // SAFETY: `localtime_r` writes only the `tm` we pass and reads `t`; both live for the
    // call, and an all-zero `tm` is a valid value of that plain C struct.
    unsafe {
        let t: libc::time_t = unix as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff as i64
        }
    }
}

#[cfg(not(unix))]
fn local_offset(_unix: i64) -> i64 {
    0
}

/// The civil date of a day number (days since 1970-01-01).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_429), (2025, 12, 7));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }

    #[test]
    fn arguments_parse_with_clear_errors() {
        assert_eq!(
            parse_goodput(&["ttft:500 tpot:50".into()]).unwrap(),
            [("ttft".to_owned(), 500.0), ("tpot".to_owned(), 50.0)]
        );
        assert!(
            parse_goodput(&["itl:5".into()])
                .unwrap_err()
                .contains("ttft, tpot and e2el")
        );
        assert!(
            parse_goodput(&["ttft".into()])
                .unwrap_err()
                .contains("KEY:MS")
        );
        assert_eq!(
            parse_metrics("itl, ttft,e2el").unwrap(),
            ["ttft", "itl", "e2el"]
        );
        assert!(
            parse_metrics("ttft,bogus")
                .unwrap_err()
                .contains("\"bogus\"")
        );
        assert_eq!(parse_percentiles("50,99.9").unwrap(), [50.0, 99.9]);
        assert!(parse_percentiles("101").is_err());
    }
}
