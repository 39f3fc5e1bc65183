//! The self-contained HTML report of `--html-report`: latency CDFs, throughput and
//! concurrency over time, and a sweep's curve.
//!
//! One file with everything inline: the style sheet, and the charts as SVG drawn by
//! `plotters` into strings (no script, no font, no image, no link to anything). Text from
//! the server or the command line (model names, labels, error messages) is escaped.
//!
//! What it draws, and from what:
//! - the header and a table of each run's headline numbers, from the run's result (vLLM's
//!   keys; a latency the result file does not carry is computed here from the
//!   measurements, the same way, and marked);
//! - the empirical CDFs of TTFT, TPOT, ITL and E2EL over the successful requests, one line
//!   per run, at most [`CDF_POINTS`] points a line;
//! - for each run, output tokens per second (each token at the chunk that carried it) and
//!   the requests in flight (exact steps, or the highest count in each of
//!   [`MAX_STEPS`] bins), against seconds since the run started;
//! - with several runs, the sweep's curve: TTFT and TPOT against output throughput.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::combinators::IntoLogRange as _;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde_json::Value;

use super::args::Backend;
use super::request::Measured;
use super::result::{Config, Ordered};
use super::run::Outcome;
use super::schedule::Rate;
use super::stats::{percentile, percentile_name};

/// One run (one point of a sweep), as the report draws it.
#[derive(Clone, Copy)]
pub(crate) struct RunView<'a> {
    pub(crate) config: &'a Config,
    pub(crate) outcome: &'a Outcome,
    /// The run's result, with vLLM's keys (`mean_ttft_ms`, `output_throughput`, …).
    pub(crate) json: &'a Ordered,
}

/// The most points a CDF line has (a larger sample is drawn through evenly spaced ranks).
const CDF_POINTS: usize = 300;
/// The most steps a line over time has (more are binned).
const MAX_STEPS: usize = 1000;
/// The size of a chart, in pixels (it scales down with the page).
const SIZE: (u32, u32) = (760, 400);
const SMALL: (u32, u32) = (560, 300);
const FONT: &str = "sans-serif";

/// Distinct colors for the runs (Tableau 10), in sweep order.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The latency metrics the report draws: key, name, what a sample is.
const LATENCIES: [(&str, &str, &str); 4] = [
    ("ttft", "TTFT (time to first token)", "requests"),
    ("tpot", "TPOT (time per output token)", "requests"),
    ("itl", "ITL (inter-token latency, chunk gaps)", "gaps"),
    ("e2el", "E2EL (end-to-end latency)", "requests"),
];

/// Writes the report of `runs` to `path`.
pub(crate) fn write(path: &Path, runs: &[RunView<'_>]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(runs))
}

/// The report of `runs`, as one HTML document.
fn render(runs: &[RunView<'_>]) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let model = runs.first().map_or("", |r| r.config.model_id.as_str());
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>vllm-rs bench serve: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(model)
    );
    header(&mut html, runs);
    if runs.is_empty() {
        html.push_str("<p class=\"note\">No run finished: there is nothing to report.</p>\n");
    } else {
        runs_table(&mut html, runs);
        errors(&mut html, runs);
        let drawable = runs
            .iter()
            .any(|r| r.outcome.results.iter().any(|m| m.success));
        if drawable {
            cdfs(&mut html, runs);
            over_time(&mut html, runs);
            if runs.len() > 1 {
                sweep(&mut html, runs);
            }
        } else {
            html.push_str(
                "<h2>Charts</h2>\n<p class=\"note\">No request succeeded: there is no latency \
                 or throughput to draw (the errors are above).</p>\n",
            );
        }
    }
    html.push_str(HOW_TO_READ);
    let _ = writeln!(
        html,
        "<footer>Made by vllm-rs {} (<code>vllm-rs bench serve --html-report</code>).</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    html
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em auto;\
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}\
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}\
th{background:#f4f4f4}td.l,th.l,td.run{text-align:left}td.run{white-space:nowrap}\
.scroll{overflow-x:auto}\
dl.info{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;font-size:.9em}\
dl.info dt{font-weight:600}dl.info dd{margin:0}\
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}\
.warn{color:#a4470a}.note{color:#555}.computed{color:#555;font-style:italic}\
figure{margin:1em 1.5em 1em 0;display:inline-block;vertical-align:top;max-width:100%}\
figcaption{font-size:.85em;color:#444}h3{font-size:1em;margin-top:1.5em}\
svg{max-width:100%;height:auto}\
ul.small{font-size:.85em;margin:.2em 0;padding-left:1.2em}\
footer{margin-top:3em;font-size:.8em;color:#777}\
code{font-size:.9em}";

const HOW_TO_READ: &str = "<h2>How to read this</h2>
<dl class=\"info\">
<dt>TTFT</dt><dd>Time to first token: from sending the request to the first streamed chunk that
carries a choice (for chat, the chunk with the assistant's role counts, as vLLM's benchmark times
it). It is the wait before anything comes back: queueing in the server and the prefill.</dd>
<dt>TPOT</dt><dd>Time per output token, the first excluded: (E2EL &minus; TTFT) / (output tokens
&minus; 1), one value per request with more than one output token. It is the speed of decoding as
one request saw it.</dd>
<dt>ITL</dt><dd>Inter-token latency as vLLM defines it: the gap between two consecutive chunks of a
stream, one value per gap. A chunk that carries several tokens is one gap, so ITL is not always
TPOT.</dd>
<dt>E2EL</dt><dd>End-to-end latency: from sending the request to its last chunk.</dd>
<dt>CDF</dt><dd>A latency CDF shows, for each latency on the x axis, the share of requests (or gaps)
that took that long or less: the curve at 50&nbsp;% is the median, at 99&nbsp;% the p99. A curve
further left is faster; a long flat tail to the right is the slow few.</dd>
<dt>Output throughput</dt><dd>Output tokens of the successful requests divided by the run's
duration (first send to last answer). Tokens are the server's count (<code>usage</code>).</dd>
<dt>In flight</dt><dd>Requests sent and not yet finished (successful ones, from sending to the last
chunk).</dd>
<dt>Client CPU</dt><dd>The CPU time vllm-rs itself used during the run, as a share of the cores it
may use. A busy client measures itself, not the server: the warnings say when that may be so.</dd>
<dt>Sweep curve</dt><dd>With several runs (a list of rates or concurrencies), each run is one
point: how much output the server gave against how long requests waited. A knee where latency
rises and throughput stops rising is the server's capacity.</dd>
</dl>
";

/// `text`, escaped for HTML text and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A run's name in legends and tables: its rate and its concurrency limit.
fn run_label(config: &Config) -> String {
    let rate = match config.rate {
        Rate::Infinite => "rate inf".to_owned(),
        Rate::PerSecond(_) => format!("rate {}/s", config.rate.label()),
    };
    match config.max_concurrency {
        Some(c) => format!("{rate}, concurrency {c}"),
        None => rate,
    }
}

/// The short name of a run on the sweep curve: what varies between the runs.
fn point_label(config: &Config, runs: &[RunView<'_>]) -> String {
    let rates_vary = runs.iter().any(|r| r.config.rate != config.rate);
    match (rates_vary, config.max_concurrency) {
        (false, Some(c)) => format!("c={c}"),
        (false, None) => "no limit".to_owned(),
        (true, _) => match config.rate {
            Rate::Infinite => "inf".to_owned(),
            Rate::PerSecond(_) => format!("{}/s", config.rate.label()),
        },
    }
}

fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

fn swatch(index: usize) -> String {
    let RGBColor(r, g, b) = color(index);
    format!("<span class=\"swatch\" style=\"background:rgb({r},{g},{b})\"></span>")
}

fn get<'a>(json: &'a Ordered, key: &str) -> Option<&'a Value> {
    json.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn get_f64(json: &Ordered, key: &str) -> Option<f64> {
    get(json, key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// `vllm_rs.KEY` of the result.
fn own<'a>(json: &'a Ordered, key: &str) -> Option<&'a Value> {
    get(json, "vllm_rs").and_then(|v| v.get(key))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `20251207-143000` as `2025-12-07 14:30:00` (anything else as it is).
fn pretty_date(date: &str) -> String {
    let b = date.as_bytes();
    if b.len() == 15 && b[8] == b'-' && date.is_ascii() {
        format!(
            "{}-{}-{} {}:{}:{}",
            &date[0..4],
            &date[4..6],
            &date[6..8],
            &date[9..11],
            &date[11..13],
            &date[13..15]
        )
    } else {
        date.to_owned()
    }
}

/// A number with 2 decimals, or a dash.
fn num(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or("&mdash;".to_owned(), |v| format!("{v:.2}"))
}

/// An axis tick: about three significant digits, no trailing zeros.
fn tick(value: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    let magnitude = value.abs();
    let decimals = if magnitude == 0.0 || magnitude >= 100.0 {
        0
    } else {
        (2 - magnitude.log10().floor() as i32).clamp(0, 6) as usize
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// When a request was sent, in seconds since its run started.
fn sent_at(m: &Measured, outcome: &Outcome) -> f64 {
    m.sent.map_or(0.0, |s| {
        s.saturating_duration_since(outcome.started).as_secs_f64()
    })
}

fn successes(outcome: &Outcome) -> impl Iterator<Item = &Measured> {
    outcome.results.iter().filter(|m| m.success)
}

/// A latency's samples over a run's successful requests, in milliseconds, finite only.
fn samples_ms(key: &str, outcome: &Outcome) -> Vec<f64> {
    let ok = successes(outcome);
    let seconds: Vec<f64> = match key {
        "ttft" => ok.map(|m| m.ttft).collect(),
        "tpot" => ok
            .filter(|m| m.output_len > 1)
            .map(|m| (m.latency - m.ttft) / (m.output_len - 1) as f64)
            .collect(),
        "itl" => ok.flat_map(|m| m.itls.iter().copied()).collect(),
        "e2el" => ok.map(|m| m.latency).collect(),
        _ => Vec::new(),
    };
    seconds
        .into_iter()
        .map(|s| s * 1e3)
        .filter(|v| v.is_finite())
        .collect()
}

/// The latencies this backend has (embeddings have only E2EL).
fn latencies(runs: &[RunView<'_>]) -> Vec<(&'static str, &'static str, &'static str)> {
    let pooling = runs
        .first()
        .is_some_and(|r| r.config.backend == Backend::Embeddings);
    LATENCIES
        .iter()
        .copied()
        .filter(|(key, _, _)| !pooling || *key == "e2el")
        .collect()
}

/// A run's mean, median and percentiles of `key`, in ms: the result's when it has them,
/// else computed from the measurements as vLLM computes them (the flag says the metric is
/// not in the result).
struct Stat {
    mean: Option<f64>,
    median: Option<f64>,
    percentiles: Vec<Option<f64>>,
    computed: bool,
}

fn stat(run: &RunView<'_>, key: &str, percentiles: &[f64]) -> Stat {
    // Without a sample the result says 0 (as vLLM's does); the report says there is none.
    let mut ok = successes(run.outcome);
    let any = match key {
        "tpot" => ok.any(|m| m.output_len > 1),
        "itl" => ok.any(|m| !m.itls.is_empty()),
        _ => ok.next().is_some(),
    };
    if !any {
        return Stat {
            mean: None,
            median: None,
            percentiles: vec![None; percentiles.len()],
            computed: false,
        };
    }
    let mut values = Vec::new();
    let mut sorted = false;
    // The measurements, sorted, read once and only if the result lacks a number.
    let mut computed = |p: Option<f64>| -> Option<f64> {
        if !sorted {
            values = samples_ms(key, run.outcome);
            values.sort_unstable_by(f64::total_cmp);
            sorted = true;
        }
        if values.is_empty() {
            return None;
        }
        Some(match p {
            Some(p) => percentile(&values, p),
            None => values.iter().sum::<f64>() / values.len() as f64,
        })
    };
    let from_json = get_f64(run.json, &format!("mean_{key}_ms"));
    let is_computed = from_json.is_none();
    let mean = from_json.or_else(|| computed(None));
    let median = get_f64(run.json, &format!("median_{key}_ms")).or_else(|| computed(Some(50.0)));
    let percentiles = percentiles
        .iter()
        .map(|p| {
            get_f64(run.json, &format!("p{}_{key}_ms", percentile_name(*p)))
                .or_else(|| computed(Some(*p)))
        })
        .collect();
    Stat {
        mean,
        median,
        percentiles,
        computed: is_computed,
    }
}

fn header(html: &mut String, runs: &[RunView<'_>]) {
    let Some(first) = runs.first() else {
        html.push_str("<h1>vllm-rs bench serve</h1>\n");
        return;
    };
    let config = first.config;
    let _ = writeln!(
        html,
        "<h1>vllm-rs bench serve: {}</h1>\n<dl class=\"info\">",
        esc(&config.model_id)
    );
    let mut item = |name: &str, value: String| {
        let _ = writeln!(html, "<dt>{name}</dt><dd>{value}</dd>");
    };
    item("Model", esc(&config.model_id));
    if config.tokenizer_id != config.model_id {
        item("Tokenizer", esc(&config.tokenizer_id));
    }
    item("Backend", esc(&config.backend_name));
    item("Date", esc(&pretty_date(&config.date)));
    if let Some(label) = &config.label {
        item("Label", esc(label));
    }
    let mut rates: Vec<String> = runs.iter().map(|r| r.config.rate.label()).collect();
    rates.dedup();
    let mut sweep = format!(
        "{} run{}; request rate {} (req/s)",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        esc(&rates.join(", "))
    );
    if config.rate != Rate::Infinite || runs.len() > 1 {
        let _ = write!(sweep, ", burstiness {}", config.burstiness);
    }
    let mut limits: Vec<String> = runs
        .iter()
        .map(|r| {
            r.config
                .max_concurrency
                .map_or("none".to_owned(), |c| c.to_string())
        })
        .collect();
    limits.dedup();
    let _ = write!(sweep, "; max concurrency {}", limits.join(", "));
    item("Runs", sweep);
    item("Prompts per run", config.num_prompts.to_string());
    // What the prompts and answers were, over the successful requests of all runs.
    let (mut n, mut input, mut output) = (0usize, 0usize, 0usize);
    for run in runs {
        for m in successes(run.outcome) {
            n += 1;
            input += m.input_len;
            output += m.output_len;
        }
    }
    if n > 0 {
        item(
            "Tokens per request",
            format!(
                "{:.1} in, {:.1} out (mean of {n} successful requests)",
                input as f64 / n as f64,
                output as f64 / n as f64
            ),
        );
    }
    if !config.metrics.is_empty() {
        let percentiles: Vec<String> = config
            .percentiles
            .iter()
            .map(|p| percentile_name(*p))
            .collect();
        item(
            "Result metrics",
            format!(
                "{}; percentiles {}",
                esc(&config.metrics.join(", ")),
                esc(&percentiles.join(", "))
            ),
        );
    }
    if !config.goodput.is_empty() {
        let slos: Vec<String> = config
            .goodput
            .iter()
            .map(|(k, ms)| format!("{k} &le; {ms} ms"))
            .collect();
        item("Goodput objectives", slos.join(", "));
    }
    if !config.metadata.is_empty() {
        let pairs: Vec<String> = config
            .metadata
            .iter()
            .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
            .collect();
        item("Metadata", pairs.join(" "));
    }
    if let Some(version) = own(first.json, "version").and_then(Value::as_str) {
        item("vllm-rs", esc(version));
    }
    html.push_str("</dl>\n");
    // The notes (about the dataset, the server's usage), once each.
    let mut notes: Vec<String> = Vec::new();
    for run in runs {
        for note in strings(own(run.json, "notes")) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    if runs.iter().any(|r| r.outcome.interrupted) {
        notes.push(
            "interrupted (Ctrl-C): the last run has only the requests that finished".to_owned(),
        );
    }
    if !notes.is_empty() {
        html.push_str("<ul class=\"small note\">\n");
        for note in notes {
            let _ = writeln!(html, "<li>{}</li>", esc(&note));
        }
        html.push_str("</ul>\n");
    }
}

fn runs_table(html: &mut String, runs: &[RunView<'_>]) {
    html.push_str("<h2>Runs</h2>\n<div class=\"scroll\"><table>\n<tr>");
    for head in [
        "Run",
        "Request rate (req/s)",
        "Max concurrency",
        "Completed",
        "Failed",
        "Duration (s)",
        "Request throughput (req/s)",
        "Output throughput (tok/s)",
        "Client CPU",
    ] {
        let class = if head == "Run" { " class=\"l\"" } else { "" };
        let _ = write!(html, "<th{class}>{head}</th>");
    }
    html.push_str("</tr>\n");
    for (index, run) in runs.iter().enumerate() {
        let json = run.json;
        let completed = get(json, "completed")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| successes(run.outcome).count() as u64);
        let failed = get(json, "failed")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| (run.outcome.results.len() as u64).saturating_sub(completed));
        let limit = run
            .config
            .max_concurrency
            .map_or("&mdash;".to_owned(), |c| c.to_string());
        let failed = if failed > 0 {
            format!("<span class=\"warn\">{failed}</span>")
        } else {
            "0".to_owned()
        };
        let cpu = match (
            own(json, "client_cpu_share").and_then(Value::as_f64),
            own(json, "client_cores").and_then(Value::as_u64),
        ) {
            (Some(share), Some(cores)) if share.is_finite() => {
                format!("{:.1}&nbsp;% of {cores} cores", share * 100.0)
            }
            (Some(share), None) if share.is_finite() => format!("{:.1}&nbsp;%", share * 100.0),
            _ => "&mdash;".to_owned(),
        };
        let _ = writeln!(
            html,
            "<tr><td class=\"run\">{}{}</td><td>{}</td><td>{limit}</td><td>{completed}</td>\
             <td>{failed}</td><td>{}</td><td>{}</td><td>{}</td><td>{cpu}</td></tr>",
            swatch(index),
            esc(&run_label(run.config)),
            esc(&run.config.rate.label()),
            num(get_f64(json, "duration")),
            num(get_f64(json, "request_throughput")),
            num(get_f64(json, "output_throughput")),
        );
    }
    html.push_str("</table></div>\n");
    latency_table(html, runs);
    // The client's warnings (it, not the server, may have set the pace).
    let warned: Vec<(usize, &RunView<'_>, Vec<String>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r, strings(own(r.json, "warnings"))))
        .filter(|(_, _, w)| !w.is_empty())
        .collect();
    if !warned.is_empty() {
        html.push_str("<h3>Warnings</h3>\n<ul class=\"small warn\">\n");
        for (index, run, warnings) in warned {
            for warning in warnings {
                let _ = writeln!(
                    html,
                    "<li>{}{}: {}</li>",
                    swatch(index),
                    esc(&run_label(run.config)),
                    esc(&warning)
                );
            }
        }
        html.push_str("</ul>\n");
    }
}

/// Each run's latencies: mean, median and the result's percentiles.
fn latency_table(html: &mut String, runs: &[RunView<'_>]) {
    let percentiles: Vec<f64> = runs
        .first()
        .map(|r| r.config.percentiles.clone())
        .unwrap_or_default();
    let metrics = latencies(runs);
    let per_metric = 2 + percentiles.len();
    html.push_str(
        "<h3>Latencies (ms)</h3>\n<div class=\"scroll\"><table>\n<tr><th rowspan=\"2\" class=\"l\">Run</th>",
    );
    for (_, name, _) in &metrics {
        let short = name.split(' ').next().unwrap_or(name);
        let _ = write!(html, "<th colspan=\"{per_metric}\">{short}</th>");
    }
    html.push_str("</tr>\n<tr>");
    for _ in &metrics {
        html.push_str("<th>mean</th><th>median</th>");
        for p in &percentiles {
            let _ = write!(html, "<th>P{}</th>", esc(&percentile_name(*p)));
        }
    }
    html.push_str("</tr>\n");
    let mut any_computed = false;
    for (index, run) in runs.iter().enumerate() {
        let _ = write!(
            html,
            "<tr><td class=\"run\">{}{}</td>",
            swatch(index),
            esc(&run_label(run.config))
        );
        for (key, _, _) in &metrics {
            let s = stat(run, key, &percentiles);
            let class = if s.computed && s.mean.is_some() {
                any_computed = true;
                " class=\"computed\""
            } else {
                ""
            };
            let _ = write!(
                html,
                "<td{class}>{}</td><td{class}>{}</td>",
                num(s.mean),
                num(s.median)
            );
            for value in s.percentiles {
                let _ = write!(html, "<td{class}>{}</td>", num(value));
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table></div>\n");
    if any_computed {
        html.push_str(
            "<p class=\"note small\"><span class=\"computed\">In italics</span>: latencies \
             the result file does not have (see <code>--percentile-metrics</code>), computed \
             here from the same measurements, the same way.</p>\n",
        );
    }
}

/// The errors of each run: counts by kind, and a few of the messages.
fn errors(html: &mut String, runs: &[RunView<'_>]) {
    let failing: Vec<(usize, &RunView<'_>)> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outcome.results.iter().any(|m| !m.success))
        .collect();
    if failing.is_empty() {
        return;
    }
    html.push_str("<h2>Errors</h2>\n");
    for (index, run) in failing {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        let mut messages: Vec<String> = Vec::new();
        for m in run.outcome.results.iter().filter(|m| !m.success) {
            let (kind, message) = m
                .error
                .clone()
                .unwrap_or_else(|| ("other".to_owned(), String::new()));
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
            if messages.len() < 3 && !message.is_empty() && !messages.contains(&message) {
                messages.push(message);
            }
        }
        let counts: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{n} &times; {}", esc(k)))
            .collect();
        let _ = writeln!(
            html,
            "<p>{}{}: {}</p>",
            swatch(index),
            esc(&run_label(run.config)),
            counts.join(", ")
        );
        if !messages.is_empty() {
            html.push_str("<ul class=\"small note\">\n");
            for message in messages {
                let short: String = message.chars().take(400).collect();
                let more = if short.len() < message.len() {
                    "…"
                } else {
                    ""
                };
                let _ = writeln!(html, "<li><code>{}{more}</code></li>", esc(&short));
            }
            html.push_str("</ul>\n");
        }
    }
}

// ---- Charts ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    scale: Scale,
    desc: String,
    percent: bool,
}

impl Axis {
    /// An axis that shows `values` (finite ones; `[0, 1]` without any), with room around
    /// them, from 0 when `from_zero`, logarithmic when they span more than two decades and
    /// `log_ok`.
    fn fit(values: &[f64], desc: &str, from_zero: bool, log_ok: bool) -> Axis {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        let max = finite().fold(f64::NEG_INFINITY, f64::max);
        let min = finite().fold(f64::INFINITY, f64::min);
        let desc = desc.to_owned();
        if !(max.is_finite() && min.is_finite()) {
            return Axis {
                lo: 0.0,
                hi: 1.0,
                scale: Scale::Linear,
                desc,
                percent: false,
            };
        }
        let min_positive = finite().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        if log_ok && max > 0.0 && min_positive.is_finite() {
            // Values at or near 0 are drawn at the floor: at most five decades below the
            // top.
            let floor = min_positive.max(max * 1e-5);
            if max / floor > 100.0 {
                return Axis {
                    lo: floor / 1.25,
                    hi: max * 1.25,
                    scale: Scale::Log,
                    desc,
                    percent: false,
                };
            }
        }
        let span = max - min;
        let pad = if span > 0.0 {
            span * 0.05
        } else {
            (max.abs() * 0.1).max(1e-3)
        };
        let lo = if from_zero || min - pad < 0.0 && min >= 0.0 {
            0.0_f64.min(min)
        } else {
            min - pad
        };
        Axis {
            lo,
            hi: max + pad,
            scale: Scale::Linear,
            desc,
            percent: false,
        }
    }

    fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.lo, self.hi)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Line,
    Area,
    Dashed,
    /// Points joined by a thin line, each with its label.
    Markers,
}

#[derive(Debug, Clone)]
struct Series {
    label: Option<String>,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    style: Style,
    marks: Vec<String>,
}

#[derive(Debug, Clone)]
struct Plot {
    title: String,
    size: (u32, u32),
    x: Axis,
    y: Axis,
    series: Vec<Series>,
    legend: SeriesLabelPosition,
}

/// `plot` as an SVG document.
fn draw(plot: &Plot) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, plot.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (x, y) = (&plot.x, &plot.y);
        match (x.scale, y.scale) {
            (Scale::Linear, Scale::Linear) => draw_on(&root, plot, x.lo..x.hi, y.lo..y.hi),
            (Scale::Log, Scale::Linear) => {
                draw_on(&root, plot, (x.lo..x.hi).log_scale(), y.lo..y.hi)
            }
            (Scale::Linear, Scale::Log) => {
                draw_on(&root, plot, x.lo..x.hi, (y.lo..y.hi).log_scale())
            }
            (Scale::Log, Scale::Log) => draw_on(
                &root,
                plot,
                (x.lo..x.hi).log_scale(),
                (y.lo..y.hi).log_scale(),
            ),
        }?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn draw_on<XS, YS>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    plot: &Plot,
    x: XS,
    y: YS,
) -> Result<(), String>
where
    XS: AsRangedCoord<Value = f64>,
    YS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: ValueFormatter<f64>,
    YS::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: plotters::drawing::DrawingAreaErrorKind<std::io::Error>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, (FONT, 18))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    let x_ticks = |v: &f64| tick(*v);
    let y_ticks = |v: &f64| {
        if plot.y.percent {
            format!("{:.0}%", v * 100.0)
        } else {
            tick(*v)
        }
    };
    chart
        .configure_mesh()
        .x_desc(plot.x.desc.as_str())
        .y_desc(plot.y.desc.as_str())
        .x_label_formatter(&x_ticks)
        .y_label_formatter(&y_ticks)
        .x_labels(8)
        .y_labels(6)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(err)?;
    let mut legend = false;
    for series in &plot.series {
        let color = series.color;
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| (plot.x.clamp(*x), plot.y.clamp(*y)))
            .collect();
        let drawn = match series.style {
            Style::Line => chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?,
            Style::Dashed => chart
                .draw_series(DashedLineSeries::new(points, 6, 4, color.stroke_width(1)))
                .map_err(err)?,
            Style::Area => chart
                .draw_series(
                    AreaSeries::new(points, plot.y.clamp(0.0), color.mix(0.25))
                        .border_style(color.stroke_width(1)),
                )
                .map_err(err)?,
            Style::Markers => {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.mix(0.6).stroke_width(1),
                    ))
                    .map_err(err)?;
                let marks = &series.marks;
                chart
                    .draw_series(points.iter().enumerate().map(|(i, p)| {
                        let text = marks.get(i).cloned().unwrap_or_default();
                        EmptyElement::at(*p)
                            + Circle::new((0, 0), 4, color.filled())
                            + Text::new(text, (6, -14), (FONT, 12).into_font())
                    }))
                    .map_err(err)?
            }
        };
        if let Some(label) = &series.label {
            legend = true;
            drawn.label(label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(plot.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.25))
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A chart in a figure with its caption; a note in its place if it cannot be drawn.
fn figure(html: &mut String, plot: &Plot, caption: &str) {
    match draw(plot) {
        Ok(svg) => {
            let _ = writeln!(
                html,
                "<figure style=\"width:{}px\">\n{svg}<figcaption>{caption}</figcaption>\n</figure>",
                plot.size.0
            );
        }
        Err(e) => {
            let _ = writeln!(
                html,
                "<p class=\"note\">{} could not be drawn: {}</p>",
                esc(&plot.title),
                esc(&e)
            );
        }
    }
}

/// The points of the empirical CDF of `sorted` (ascending): every step for a small
/// sample, else `CDF_POINTS` evenly spaced ranks (the first and the last among them).
fn cdf_points(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let total = n as f64;
    if n * 2 <= CDF_POINTS {
        let mut points = Vec::with_capacity(2 * n);
        for (i, v) in sorted.iter().enumerate() {
            points.push((*v, i as f64 / total));
            points.push((*v, (i + 1) as f64 / total));
        }
        return points;
    }
    let mut points = Vec::with_capacity(CDF_POINTS + 1);
    points.push((sorted[0], 0.0));
    let mut last = usize::MAX;
    for k in 0..CDF_POINTS {
        let i = ((k as f64) * (n - 1) as f64 / (CDF_POINTS - 1) as f64).round() as usize;
        let i = i.min(n - 1);
        if i != last {
            points.push((sorted[i], (i + 1) as f64 / total));
            last = i;
        }
    }
    points
}

fn cdfs(html: &mut String, runs: &[RunView<'_>]) {
    html.push_str(
        "<h2>Latency distributions</h2>\n<p class=\"note\">Empirical CDFs over the successful \
         requests: for each latency, the share that took that long or less. One line per run.</p>\n",
    );
    for (key, name, unit) in latencies(runs) {
        let mut series = Vec::new();
        let mut all = Vec::new();
        let mut counts = Vec::new();
        for (index, run) in runs.iter().enumerate() {
            let mut values = samples_ms(key, run.outcome);
            if values.is_empty() {
                continue;
            }
            values.sort_unstable_by(f64::total_cmp);
            counts.push(values.len());
            all.extend_from_slice(&values);
            series.push(Series {
                label: Some(format!("{} (n={})", run_label(run.config), values.len())),
                color: color(index),
                points: cdf_points(&values),
                style: Style::Line,
                marks: Vec::new(),
            });
        }
        let short = name.split(' ').next().unwrap_or(name);
        if series.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"note\">{short}: no samples (no successful request had one).</p>"
            );
            continue;
        }
        let mut x = Axis::fit(&all, &format!("{short} (ms)"), false, true);
        if x.scale == Scale::Linear && x.lo > 0.0 && x.lo < (x.hi - x.lo) * 0.5 {
            x.lo = 0.0;
        }
        let y = Axis {
            lo: 0.0,
            hi: 1.0,
            scale: Scale::Linear,
            desc: format!("share of {unit}"),
            percent: true,
        };
        let log = x.scale == Scale::Log;
        // On a log axis, what is below its floor (0 above all) is drawn at the left edge.
        let floor = x.lo * 1.25;
        let below = if log {
            all.iter().filter(|v| **v < floor).count()
        } else {
            0
        };
        let plot = Plot {
            title: format!("{name} CDF"),
            size: SIZE,
            x,
            y,
            series,
            legend: SeriesLabelPosition::LowerRight,
        };
        let drawn_all = counts.iter().all(|n| n * 2 <= CDF_POINTS);
        let caption = format!(
            "{} in milliseconds{}{}; {}.",
            esc(name),
            if log {
                " (logarithmic axis: the values span more than two decades)"
            } else {
                ""
            },
            if all.iter().all(|v| *v == 0.0) {
                "; every value is 0 ms (the chunks were read together)".to_owned()
            } else if below > 0 {
                format!(
                    "; {below} of {} values are below {} ms (0 ms: chunks read together) and \
                     are drawn at the left edge",
                    all.len(),
                    tick(floor)
                )
            } else {
                String::new()
            },
            if drawn_all {
                "every sample is a step".to_owned()
            } else {
                format!("lines drawn through {CDF_POINTS} evenly spaced ranks of larger samples")
            }
        );
        figure(html, &plot, &caption);
    }
}

/// The times (seconds since the run started) and weights of a successful request's output
/// tokens: each token at the chunk that carried it, known from the per-token gaps; the
/// weights make the request's total its `output_len` (a server without usage in every
/// chunk gave one token per text chunk, and its count is spread over them).
fn token_events(m: &Measured, sent: f64) -> Vec<(f64, f64)> {
    if !m.success || m.output_len == 0 {
        return Vec::new();
    }
    let mut chunks = Vec::with_capacity(m.itls.len() + 1);
    let mut at = sent + m.ttft;
    chunks.push(at);
    for gap in &m.itls {
        at += gap;
        chunks.push(at);
    }
    let times: Vec<f64> = if m.token_itls.is_empty() && m.output_len > 1 && chunks.len() > 1 {
        // No token was timed (no text, no usage per chunk): spread over the chunks.
        chunks.clone()
    } else {
        let first = [m.ttfr, m.ttfc]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let first = if first.is_finite() { first } else { m.ttft };
        let mut times = Vec::with_capacity(m.token_itls.len() + 1);
        let mut t = sent + first;
        times.push(t);
        for gap in &m.token_itls {
            t += gap;
            times.push(t);
        }
        // A chunk's tokens share its gap: put them all at the chunk.
        let mut j = 0;
        for t in &mut times {
            while j + 1 < chunks.len() && chunks[j] < *t - 1e-6 {
                j += 1;
            }
            if let Some(chunk) = chunks.get(j).filter(|c| **c >= *t - 1e-6) {
                *t = *chunk;
            }
        }
        times
    };
    let weight = m.output_len as f64 / times.len().max(1) as f64;
    times.into_iter().map(|t| (t, weight)).collect()
}

/// A bucket width for a run `span` seconds long: 1 s, finer for short runs (at least 20
/// buckets), coarser for long ones (at most 1000).
fn bucket_width(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    if span > 1000.0 {
        return (span / 1000.0).ceil();
    }
    if span >= 20.0 {
        return 1.0;
    }
    for width in [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002] {
        if span / width >= 20.0 {
            return width;
        }
    }
    0.001
}

fn seconds(width: f64) -> String {
    if width >= 1.0 {
        format!("{} s", tick(width))
    } else {
        format!("{} ms", tick(width * 1e3))
    }
}

/// The number of requests in flight as a step line: exact, or the highest count in each of
/// `MAX_STEPS` bins. The flag says whether it was binned.
fn in_flight(intervals: &[(f64, f64)], end: f64) -> (Vec<(f64, f64)>, Option<f64>) {
    let mut events: Vec<(f64, i64)> = Vec::with_capacity(intervals.len() * 2);
    for (start, stop) in intervals {
        events.push((*start, 1));
        events.push((stop.max(*start), -1));
    }
    // Ends before starts at the same instant: a slot handed on is not two in flight.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut points = vec![(0.0, 0.0)];
    let mut count = 0i64;
    if events.len() <= MAX_STEPS {
        for (t, delta) in events {
            points.push((t, count as f64));
            count += delta;
            points.push((t, count as f64));
        }
        points.push((end, count as f64));
        return (points, None);
    }
    let width = if end > 0.0 {
        end / MAX_STEPS as f64
    } else {
        1.0
    };
    let mut highest = vec![0i64; MAX_STEPS];
    let mut bin = 0usize;
    for (t, delta) in events {
        let at = ((t / width).max(0.0) as usize).min(MAX_STEPS - 1);
        // The count holds through the bins between two events.
        while bin < at {
            bin += 1;
            highest[bin] = highest[bin].max(count);
        }
        count += delta;
        highest[at] = highest[at].max(count);
    }
    for (i, h) in highest.iter().enumerate() {
        let start = i as f64 * width;
        points.push((start, *h as f64));
        points.push((start + width, *h as f64));
    }
    (points, Some(width))
}

fn over_time(html: &mut String, runs: &[RunView<'_>]) {
    let pooling = runs
        .first()
        .is_some_and(|r| r.config.backend == Backend::Embeddings);
    html.push_str("<h2>Over time</h2>\n");
    let _ = writeln!(
        html,
        "<p class=\"note\">For each run{}: {}the requests in flight, against seconds since the \
         run started. Only successful requests are counted (a failed one has no timings).</p>",
        if runs.len() > 1 {
            " (each with its own time axis)"
        } else {
            ""
        },
        if pooling {
            ""
        } else {
            "output tokens per second, and "
        }
    );
    for (index, run) in runs.iter().enumerate() {
        let outcome = run.outcome;
        let ok: Vec<&Measured> = successes(outcome).collect();
        let label = run_label(run.config);
        if ok.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"note\">{}{}: no request succeeded.</p>",
                swatch(index),
                esc(&label)
            );
            continue;
        }
        let intervals: Vec<(f64, f64)> = ok
            .iter()
            .map(|m| {
                let sent = sent_at(m, outcome);
                (sent, sent + m.latency.max(0.0))
            })
            .collect();
        let end = intervals
            .iter()
            .map(|(_, stop)| *stop)
            .fold(outcome.duration, f64::max);
        let end = if end.is_finite() && end > 0.0 {
            end
        } else {
            1.0
        };
        html.push_str("<div>\n");
        if !pooling {
            let width = bucket_width(end);
            let buckets = ((end / width).ceil() as usize).clamp(1, 2 * MAX_STEPS);
            let mut tokens = vec![0.0f64; buckets];
            let mut spread = 0usize;
            for m in &ok {
                if !m.per_chunk_usage {
                    spread += 1;
                }
                for (t, weight) in token_events(m, sent_at(m, outcome)) {
                    let i = ((t / width).max(0.0) as usize).min(buckets - 1);
                    tokens[i] += weight;
                }
            }
            let mut points = Vec::with_capacity(2 * buckets);
            for (i, count) in tokens.iter().enumerate() {
                let rate = count / width;
                points.push((i as f64 * width, rate));
                points.push(((i + 1) as f64 * width, rate));
            }
            let peak = tokens.iter().copied().fold(0.0, f64::max) / width;
            let plot = Plot {
                title: format!("Output tokens/s: {label}"),
                size: SMALL,
                x: Axis {
                    lo: 0.0,
                    hi: buckets as f64 * width,
                    scale: Scale::Linear,
                    desc: "seconds since the run started".to_owned(),
                    percent: false,
                },
                y: Axis::fit(&[0.0, peak * 1.05, 1.0], "output tokens/s", true, false),
                series: vec![Series {
                    label: None,
                    color: color(index),
                    points,
                    style: Style::Area,
                    marks: Vec::new(),
                }],
                legend: SeriesLabelPosition::UpperRight,
            };
            let caption = format!(
                "{}{}: output tokens per second in buckets of {}; peak {:.0} tok/s. Each token \
                 is counted at the chunk that carried it{}.",
                swatch(index),
                esc(&label),
                seconds(width),
                peak,
                if spread > 0 {
                    format!(
                        " ({spread} requests got no usage in every chunk: their tokens are \
                         spread evenly over their chunks with text)"
                    )
                } else {
                    " (from the server's usage in every chunk)".to_owned()
                }
            );
            figure(html, &plot, &caption);
        }
        let (points, binned) = in_flight(&intervals, end);
        let peak = points.iter().map(|(_, c)| *c).fold(0.0, f64::max);
        let mut series = vec![Series {
            label: None,
            color: color(index),
            points,
            style: Style::Area,
            marks: Vec::new(),
        }];
        let mut top = peak;
        if let Some(limit) = run.config.max_concurrency {
            top = top.max(limit as f64);
            series.push(Series {
                label: None,
                color: RGBColor(80, 80, 80),
                points: vec![(0.0, limit as f64), (end, limit as f64)],
                style: Style::Dashed,
                marks: Vec::new(),
            });
        }
        let plot = Plot {
            title: format!("In flight: {label}"),
            size: SMALL,
            x: Axis {
                lo: 0.0,
                hi: end,
                scale: Scale::Linear,
                desc: "seconds since the run started".to_owned(),
                percent: false,
            },
            y: Axis::fit(&[0.0, top * 1.08, 1.0], "requests in flight", true, false),
            series,
            legend: SeriesLabelPosition::UpperRight,
        };
        let caption = format!(
            "{}{}: requests in flight (sent, last chunk not yet read); peak {peak:.0}{}{}.",
            swatch(index),
            esc(&label),
            run.config
                .max_concurrency
                .map_or(String::new(), |c| format!(
                    " (the dashed line: --max-concurrency {c})"
                )),
            match binned {
                Some(width) => format!(", the highest count in each bin of {}", seconds(width)),
                None => ", exact".to_owned(),
            }
        );
        figure(html, &plot, &caption);
        html.push_str("</div>\n");
    }
}

fn sweep(html: &mut String, runs: &[RunView<'_>]) {
    let pooling = runs
        .first()
        .is_some_and(|r| r.config.backend == Backend::Embeddings);
    if pooling {
        return;
    }
    html.push_str("<h2>Sweep</h2>\n");
    let labels: Vec<String> = runs.iter().map(|r| point_label(r.config, runs)).collect();
    let throughput: Vec<f64> = runs
        .iter()
        .map(|r| get_f64(r.json, "output_throughput").unwrap_or(0.0))
        .collect();
    let lines = [
        ("ttft", "mean TTFT", RGBColor(31, 119, 180), false),
        ("ttft", "P99 TTFT", RGBColor(214, 39, 40), true),
        ("tpot", "mean TPOT", RGBColor(44, 160, 44), false),
    ];
    let mut series = Vec::new();
    let mut ys = Vec::new();
    for (key, name, line_color, p99) in lines {
        let mut points = Vec::new();
        let mut marks = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            if !run.outcome.results.iter().any(|m| m.success) {
                continue;
            }
            let stat = stat(run, key, &[99.0]);
            let value = if p99 {
                stat.percentiles.first().copied().flatten()
            } else {
                stat.mean
            };
            if let Some(value) = value.filter(|v| v.is_finite()) {
                points.push((throughput[i], value));
                ys.push(value);
                marks.push(if name == "mean TTFT" {
                    labels[i].clone()
                } else {
                    String::new()
                });
            }
        }
        if !points.is_empty() {
            series.push(Series {
                label: Some(name.to_owned()),
                color: line_color,
                points,
                style: Style::Markers,
                marks,
            });
        }
    }
    if series.is_empty() {
        html.push_str("<p class=\"note\">No run has latencies to draw.</p>\n");
        return;
    }
    let mut x = Axis::fit(&throughput, "output throughput (tok/s)", false, false);
    // Room on the right for the labels.
    x.hi += (x.hi - x.lo) * 0.08;
    let y = Axis::fit(&ys, "latency (ms)", false, true);
    let log = y.scale == Scale::Log;
    let floor = y.lo * 1.25;
    let below = log && ys.iter().any(|v| *v < floor);
    let plot = Plot {
        title: "Latency against output throughput".to_owned(),
        size: SIZE,
        x,
        y,
        series,
        legend: SeriesLabelPosition::UpperLeft,
    };
    let caption = format!(
        "One point per run (labeled by its {}), joined in the sweep's order: mean and P99 \
         TTFT and mean TPOT in milliseconds{}{} against output tokens per second.",
        if runs
            .windows(2)
            .any(|w| w[0].config.rate != w[1].config.rate)
        {
            "request rate"
        } else {
            "concurrency limit"
        },
        if log { " (logarithmic axis)" } else { "" },
        if below {
            format!(
                "; values below {} ms are drawn at the bottom edge",
                tick(floor)
            )
        } else {
            String::new()
        }
    );
    figure(html, &plot, &caption);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use super::super::run::SelfView;
    use super::*;

    fn config(rate: Rate, max_concurrency: Option<usize>) -> Config {
        Config {
            backend_name: "openai-chat".into(),
            backend: Backend::Chat,
            label: None,
            model_id: "org/<model>&\"x\"".into(),
            tokenizer_id: "org/<model>&\"x\"".into(),
            num_prompts: 10,
            metadata: vec![("k".into(), "<v>".into())],
            rate,
            burstiness: 1.0,
            max_concurrency,
            metrics: vec!["ttft".into(), "tpot".into(), "itl".into()],
            percentiles: vec![99.0],
            goodput: Vec::new(),
            save_detailed: false,
            date: "20251207-143000".into(),
        }
    }

    /// `n` requests sent 10 ms apart, each with `tokens` tokens one a chunk.
    fn outcome(n: usize, tokens: usize, failed: usize) -> Outcome {
        let started = Instant::now();
        let mut results = Vec::new();
        for i in 0..n {
            let ttft = 0.02 + 0.001 * (i % 7) as f64;
            let itls = vec![0.005; tokens.saturating_sub(1)];
            let token_itls = itls.clone();
            let latency = ttft + itls.iter().sum::<f64>();
            results.push(Measured {
                success: true,
                input_len: 16,
                output_len: tokens,
                usage_reported: true,
                per_chunk_usage: true,
                ttft,
                ttfc: Some(ttft),
                itls,
                token_itls,
                latency,
                sent: Some(started + Duration::from_millis(10 * i as u64)),
                chunks: tokens as u64 + 2,
                ..Measured::default()
            });
        }
        for _ in 0..failed {
            results.push(Measured {
                success: false,
                error: Some(("status 404".into(), "model <nope> not found".into())),
                sent: Some(started),
                ..Measured::default()
            });
        }
        Outcome {
            results,
            duration: 0.01 * n as f64 + 0.1,
            started,
            client: SelfView::default(),
            interrupted: false,
        }
    }

    fn json(outcome: &Outcome, mean_ttft: Option<f64>) -> Ordered {
        let ok = outcome.results.iter().filter(|m| m.success).count();
        let mut values = vec![
            ("completed".to_owned(), Value::from(ok)),
            ("failed".to_owned(), Value::from(outcome.results.len() - ok)),
            ("duration".to_owned(), Value::from(outcome.duration)),
            ("request_throughput".to_owned(), Value::from(1.5)),
            ("output_throughput".to_owned(), Value::from(ok as f64 * 3.0)),
            (
                "vllm_rs".to_owned(),
                serde_json::json!({
                    "version": "0.2.0",
                    "client_cpu_share": 0.9,
                    "client_cores": 2,
                    "warnings": ["the client used <90 %>"],
                    "notes": ["a <note>"],
                }),
            ),
        ];
        if let Some(mean) = mean_ttft {
            values.push(("mean_ttft_ms".to_owned(), Value::from(mean)));
            values.push(("median_ttft_ms".to_owned(), Value::from(mean)));
            values.push(("p99_ttft_ms".to_owned(), Value::from(mean * 2.0)));
        }
        Ordered(values)
    }

    fn svgs(html: &str) -> usize {
        html.matches("<svg").count()
    }

    #[test]
    fn one_run_has_four_cdfs_and_two_time_charts_and_escapes_text() {
        let config = config(Rate::PerSecond(100.0), None);
        let outcome = outcome(50, 8, 2);
        let json = json(&outcome, Some(23.0));
        let html = render(&[RunView {
            config: &config,
            outcome: &outcome,
            json: &json,
        }]);
        assert_eq!(svgs(&html), 6, "4 CDFs, tokens/s and in flight");
        assert!(html.contains("rate 100.0/s"));
        assert!(html.contains("org/&lt;model&gt;&amp;&quot;x&quot;"));
        assert!(!html.contains("<model>"));
        assert!(html.contains("model &lt;nope&gt; not found"));
        assert!(html.contains("the client used &lt;90 %&gt;"));
        assert!(html.contains("a &lt;note&gt;"));
        assert!(html.contains("2025-12-07 14:30:00"));
        assert!(html.contains("How to read this"));
        // The result's TTFT, and E2EL computed (not in the result).
        assert!(html.contains("<td>23.00</td><td>23.00</td><td>46.00</td>"));
        assert!(html.contains("class=\"computed\""));
        assert!(!html.contains("NaN") && !html.contains("inf<"));
        assert!(!html.contains("<script") && !html.contains("href=") && !html.contains("src="));
    }

    #[test]
    fn a_sweep_adds_its_curve_and_labels_every_run() {
        let configs = [
            config(Rate::PerSecond(10.0), Some(4)),
            config(Rate::PerSecond(1000.0), Some(4)),
            config(Rate::Infinite, Some(4)),
        ];
        let outcomes = [outcome(5, 4, 0), outcome(40, 4, 0), outcome(400, 4, 0)];
        let jsons: Vec<Ordered> = outcomes.iter().map(|o| json(o, None)).collect();
        let runs: Vec<RunView<'_>> = (0..3)
            .map(|i| RunView {
                config: &configs[i],
                outcome: &outcomes[i],
                json: &jsons[i],
            })
            .collect();
        let html = render(&runs);
        assert_eq!(svgs(&html), 4 + 3 * 2 + 1);
        for label in [
            "rate 10.0/s, concurrency 4",
            "rate 1000.0/s, concurrency 4",
            "rate inf, concurrency 4",
        ] {
            assert!(html.contains(label), "{label}");
        }
        assert!(html.contains("Latency against output throughput"));
        assert!(html.contains("--max-concurrency 4"));
        assert!(!html.contains("NaN"));
        // A failed run beside a good one: drawn where it has data, said where it has none.
        let failed = outcome(0, 0, 3);
        let failed_json = json(&failed, None);
        let html = render(&[
            RunView {
                config: &configs[0],
                outcome: &failed,
                json: &failed_json,
            },
            runs[1],
        ]);
        assert_eq!(svgs(&html), 4 + 2 + 1);
        assert!(html.contains("rate 10.0/s, concurrency 4: no request succeeded"));
        assert!(html.contains("3 &times; status 404"));
    }

    #[test]
    fn all_failed_and_empty_runs_write_a_report_without_charts() {
        let config = config(Rate::Infinite, None);
        let failed = outcome(0, 0, 5);
        let json = json(&failed, None);
        let html = render(&[RunView {
            config: &config,
            outcome: &failed,
            json: &json,
        }]);
        assert_eq!(svgs(&html), 0);
        assert!(html.contains("No request succeeded"));
        assert!(html.contains("5 &times; status 404"));
        // No latency: dashes, not the result's zeros.
        assert!(html.contains("<td>&mdash;</td><td>&mdash;</td><td>&mdash;</td></tr>"));
        assert!(!html.contains("<td>0.00</td><td>0.00</td><td>0.00</td>"));
        assert!(html.ends_with("</html>\n"));
        let empty = Outcome {
            results: Vec::new(),
            ..outcome(0, 0, 0)
        };
        let html = render(&[RunView {
            config: &config,
            outcome: &empty,
            json: &Ordered::default(),
        }]);
        assert_eq!(svgs(&html), 0);
        assert!(render(&[]).contains("nothing to report"));
    }

    #[test]
    fn one_request_of_one_token_draws_without_nan() {
        let config = config(Rate::Infinite, None);
        let one = outcome(1, 1, 0);
        let json = json(&one, None);
        let html = render(&[RunView {
            config: &config,
            outcome: &one,
            json: &json,
        }]);
        // TPOT and ITL have no samples with one token: TTFT, E2EL, and the two over time.
        assert_eq!(svgs(&html), 4);
        assert!(html.contains("TPOT: no samples"));
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn cdfs_are_downsampled_and_axes_fit() {
        let values: Vec<f64> = (0..100_000).map(|i| i as f64).collect();
        let points = cdf_points(&values);
        assert!(points.len() <= CDF_POINTS + 1);
        assert_eq!(points.first(), Some(&(0.0, 0.0)));
        assert_eq!(points.last(), Some(&(99_999.0, 1.0)));
        assert_eq!(cdf_points(&[5.0]), [(5.0, 0.0), (5.0, 1.0)]);
        assert!(cdf_points(&[]).is_empty());
        assert_eq!(Axis::fit(&[1.0, 5000.0], "", false, true).scale, Scale::Log);
        assert_eq!(
            Axis::fit(&[10.0, 50.0], "", false, true).scale,
            Scale::Linear
        );
        let zero = Axis::fit(&[0.0, 0.0], "", false, true);
        assert!(zero.lo < zero.hi && zero.lo.is_finite());
        let none = Axis::fit(&[f64::NAN], "", false, true);
        assert_eq!((none.lo, none.hi), (0.0, 1.0));
        assert_eq!(tick(0.0125), "0.0125");
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(bucket_width(300.0), 1.0);
        assert_eq!(bucket_width(0.5), 0.02);
        assert_eq!(bucket_width(5000.0), 5.0);
    }

    #[test]
    fn tokens_land_on_their_chunks_and_add_up_to_the_output() {
        // A role chunk at 10 ms, then chunks of 1, 3 and 2 tokens at 20, 30 and 40 ms.
        let m = Measured {
            success: true,
            output_len: 6,
            per_chunk_usage: true,
            ttft: 0.010,
            ttfc: Some(0.020),
            itls: vec![0.010, 0.010, 0.010],
            token_itls: vec![0.010 / 3.0, 0.010 / 3.0, 0.010 / 3.0, 0.005, 0.005],
            latency: 0.040,
            ..Measured::default()
        };
        let events = token_events(&m, 1.0);
        let total: f64 = events.iter().map(|(_, w)| w).sum();
        assert!((total - 6.0).abs() < 1e-9);
        let at = |t: f64| events.iter().filter(|(e, _)| (e - t).abs() < 1e-9).count();
        assert_eq!((at(1.02), at(1.03), at(1.04)), (1, 3, 2));
        // Usage only at the end: 10 tokens over 2 text chunks.
        let m = Measured {
            output_len: 10,
            per_chunk_usage: false,
            token_itls: vec![0.010],
            itls: vec![0.010],
            ..m
        };
        let total: f64 = token_events(&m, 0.0).iter().map(|(_, w)| w).sum();
        assert!((total - 10.0).abs() < 1e-9);
    }

    #[test]
    fn in_flight_is_exact_or_binned() {
        let (points, binned) = in_flight(&[(0.0, 2.0), (1.0, 3.0)], 3.0);
        assert!(binned.is_none());
        assert_eq!(points.iter().map(|(_, c)| *c).fold(0.0, f64::max), 2.0);
        let many: Vec<(f64, f64)> = (0..2000)
            .map(|i| (i as f64 * 0.01, i as f64 * 0.01 + 1.0))
            .collect();
        let (points, binned) = in_flight(&many, 21.0);
        assert!(binned.is_some());
        assert!(points.len() <= 2 * MAX_STEPS + 1);
        let peak = points.iter().map(|(_, c)| *c).fold(0.0, f64::max);
        assert!((100.0..=101.0).contains(&peak), "{peak}");
    }
}
