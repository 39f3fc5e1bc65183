//! Our `vllm-client` against the published `vllm-client` 0.1.4: client CPU time and peak RSS,
//! streaming and non-streaming, against a loopback server in another process.
//!
//! The binary re-executes itself in roles: `serve` (the server), `client-ours` and
//! `client-014` (one measurement each, in a fresh process, so `ru_maxrss` is that
//! measurement's). The parent starts the server, runs every measurement `RUNS` times with the
//! two implementations alternating, and prints medians as a Markdown table.
//!
//! - Streams: `CHUNKS` (200,000) and `SHORT_CHUNKS` (20,000) content chunks shaped like
//!   vLLM's, then a finish chunk, a usage chunk and `data: [DONE]`; HTTP/1.1 chunked, one
//!   HTTP chunk per event. Each client counts the non-empty content events, their bytes and
//!   an FNV-1a hash of the text; the parent checks all three.
//! - Requests: `REQUESTS` (20,000) non-streaming chat requests, `CONCURRENCY` (64) at a time
//!   through one shared client, after a warm-up of `CONCURRENCY` requests; each response's
//!   content and usage are checked.
//! - Probe (not timed): a stream whose HTTP chunks are 7 bytes (as a re-buffering proxy
//!   might cut it), with multibyte UTF-8 text; shows whether each client returns the text
//!   intact.
//!
//! Both clients run on the same tokio runtime flavour: current-thread (the default: the
//! client's own work, without cross-thread wake-ups), or multi-thread with 2 workers (what
//! `#[tokio::main]` gives on 2 cores) with `CLIENT_COMPARE_RUNTIME=multi`. The measured
//! future runs in `block_on`, as under `#[tokio::main]`; `CLIENT_COMPARE_RUNTIME=multi-spawn`
//! runs it in a task spawned on the multi-thread runtime instead.
//!
//! Breakdown (`CLIENT_COMPARE_BREAKDOWN=0` turns it off): the long stream is also read
//! through the layers under our facade (the transport's raw body frames, with and without the
//! idle timer; its SSE events; the facade without the idle timer), to show where our time
//! goes.
//!
//! `cargo bench -p vllm-benches --bench client_compare`. Counts: `CLIENT_COMPARE_CHUNKS`,
//! `CLIENT_COMPARE_SHORT_CHUNKS`, `CLIENT_COMPARE_REQUESTS`, `CLIENT_COMPARE_CONCURRENCY`,
//! `CLIENT_COMPARE_RUNS`, `CLIENT_COMPARE_PROBE_CHUNKS`. Without `--bench` (e.g. under
//! `cargo test --benches`) it runs a small smoke version.

#[path = "client_compare/clients.rs"]
mod clients;
#[path = "client_compare/server.rs"]
mod server;
#[path = "client_compare/workload.rs"]
mod workload;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use clients::{Impl, expected_stream};

/// The breakdown roles, with what each measures.
const LAYERS: [(Impl, &str); 4] = [
    (
        Impl::BodyNoIdle,
        "transport body frames only, idle timeout off (socket reads, HTTP/1 chunked decoding)",
    ),
    (
        Impl::Body,
        "transport body frames only, 5 min idle timeout (as the facade sets it)",
    ),
    (
        Impl::Sse,
        "+ SSE decoding (transport `into_events`), 5 min idle timeout",
    ),
    (
        Impl::OursNoIdle,
        "our facade with `stream_idle_timeout(None)`",
    ),
];

/// Peak RSS must stay under this for the long stream (the target).
const RSS_LIMIT_MIB: f64 = 16.0;
/// The long stream's CPU per chunk must be at most this fraction of 0.1.4's.
const CPU_RATIO_TARGET: f64 = 0.35;
/// "Does not grow with stream length": peak RSS of the long stream at most this much above
/// the short one's.
const RSS_GROWTH_LIMIT_MIB: f64 = 1.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let role = args.get(1).map(String::as_str).unwrap_or("");
    let result = if role == "serve" {
        server::serve().map_err(|e| format!("server: {e}"))
    } else if let Some(which) = Impl::from_role(role) {
        clients::run(which, &args[2..])
    } else if args.iter().any(|a| a == "--list") {
        println!("client_compare: bench");
        Ok(())
    } else {
        orchestrate(args.iter().any(|a| a == "--bench"))
    };
    if let Err(e) = result {
        eprintln!("client_compare: {e}");
        std::process::exit(1);
    }
}

/// The run's parameters.
#[derive(Debug)]
struct Config {
    chunks: u64,
    short_chunks: u64,
    requests: u64,
    concurrency: u64,
    runs: usize,
    probe_chunks: u64,
    runtime: String,
    breakdown: bool,
}

impl Config {
    fn from_env(full: bool) -> Self {
        let num = |name: &str, full_default: u64, smoke_default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(if full { full_default } else { smoke_default })
        };
        Config {
            chunks: num("CLIENT_COMPARE_CHUNKS", 200_000, 2_000),
            short_chunks: num("CLIENT_COMPARE_SHORT_CHUNKS", 20_000, 200),
            requests: num("CLIENT_COMPARE_REQUESTS", 20_000, 200),
            concurrency: num("CLIENT_COMPARE_CONCURRENCY", 64, 8),
            runs: num("CLIENT_COMPARE_RUNS", 3, 1).max(1) as usize,
            probe_chunks: num("CLIENT_COMPARE_PROBE_CHUNKS", 2_000, 200),
            runtime: match std::env::var("CLIENT_COMPARE_RUNTIME").as_deref() {
                Ok(r @ ("multi" | "multi-spawn")) => r.to_owned(),
                _ => "current".to_owned(),
            },
            breakdown: std::env::var("CLIENT_COMPARE_BREAKDOWN").as_deref() != Ok("0"),
        }
    }
}

/// One client process's report.
#[derive(Debug, Default, Clone)]
struct Report {
    cpu_ns: f64,
    wall_ns: f64,
    maxrss_kib: f64,
    events: u64,
    bytes: u64,
    hash: u64,
    replacements: u64,
    usage: i64,
    done: bool,
    wrong: u64,
    errors: u64,
    error: Option<String>,
}

impl Report {
    fn parse(stdout: &str) -> Result<Report, String> {
        let mut report = Report::default();
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .ok_or_else(|| format!("no RESULT line in {stdout:?}"))?;
        for pair in line.split(' ') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let n = || value.parse::<f64>().unwrap_or(f64::NAN);
            let u = || value.parse::<u64>().unwrap_or(u64::MAX);
            match key {
                "cpu_ns" => report.cpu_ns = n(),
                "wall_ns" => report.wall_ns = n(),
                "maxrss_kib" => report.maxrss_kib = n(),
                "events" => report.events = u(),
                "bytes" => report.bytes = u(),
                "hash" => report.hash = u(),
                "replacements" => report.replacements = u(),
                "usage" => report.usage = value.parse().unwrap_or(-1),
                "done" => report.done = value == "true",
                "wrong" => report.wrong = u(),
                "errors" => report.errors = u(),
                _ => {}
            }
        }
        report.error = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ERROR "))
            .map(str::to_owned);
        Ok(report)
    }

    /// Whether a stream of `n` content chunks of `model` arrived whole; if not, what is off.
    fn stream_check(&self, model: &str, n: u64) -> Result<(), String> {
        let (events, bytes, hash) = expected_stream(model, n);
        let mut problems = Vec::new();
        if self.events != events {
            problems.push(format!("{} of {events} content events", self.events));
        }
        if self.bytes != bytes {
            problems.push(format!("{} of {bytes} content bytes", self.bytes));
        }
        if self.hash != hash {
            problems.push("content differs".to_owned());
        }
        if self.replacements > 0 {
            problems.push(format!("{} U+FFFD in the content", self.replacements));
        }
        if self.usage != n as i64 {
            problems.push(format!("usage {} (expected {n})", self.usage));
        }
        if !self.done {
            problems.push("no Done".to_owned());
        }
        if self.errors > 0 {
            problems.push(format!(
                "{} errors ({})",
                self.errors,
                self.error.as_deref().unwrap_or("")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn requests_check(&self, n: u64) -> Result<(), String> {
        if self.events == n && self.wrong == 0 && self.errors == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} of {n} correct, {} wrong, {} failed ({})",
                self.events,
                self.wrong,
                self.errors,
                self.error.as_deref().unwrap_or("")
            ))
        }
    }
}

/// The server process; closing its stdin ends it.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    fn start(exe: &std::path::Path) -> Result<Server, String> {
        let mut child = Command::new(exe)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the server's port: {e}"))?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("the server said {line:?}"))?;
        Ok(Server { child, stdin, port })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs one client process and parses its report.
fn run_client(exe: &std::path::Path, which: Impl, args: &[String]) -> Result<Report, String> {
    let mut cmd = Command::new(exe);
    cmd.arg(which.role()).args(args);
    // Same environment for both; reqwest would route loopback through a proxy if one were set.
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", which.role()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {stdout}",
            which.role(),
            out.status
        ));
    }
    Report::parse(&stdout)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The reports of one measurement, for both implementations.
#[derive(Debug, Default)]
struct Pair {
    ours: Vec<Report>,
    v014: Vec<Report>,
    /// Completeness problems, by implementation.
    problems: Vec<(Impl, String)>,
}

impl Pair {
    fn reports(&self, which: Impl) -> &[Report] {
        match which {
            Impl::V014 => &self.v014,
            _ => &self.ours,
        }
    }

    fn push(&mut self, which: Impl, report: Report) {
        match which {
            Impl::V014 => self.v014.push(report),
            _ => self.ours.push(report),
        }
    }

    /// Median CPU per unit, in µs.
    fn cpu_us(&self, which: Impl, units: u64) -> f64 {
        median(
            self.reports(which)
                .iter()
                .map(|r| r.cpu_ns / 1e3 / units as f64)
                .collect(),
        )
    }

    fn wall_ms(&self, which: Impl) -> f64 {
        median(
            self.reports(which)
                .iter()
                .map(|r| r.wall_ns / 1e6)
                .collect(),
        )
    }

    fn rss_mib(&self, which: Impl) -> f64 {
        median(
            self.reports(which)
                .iter()
                .map(|r| r.maxrss_kib / 1024.0)
                .collect(),
        )
    }

    fn all(&self, which: Impl, f: impl Fn(&Report) -> String) -> String {
        self.reports(which)
            .iter()
            .map(f)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn orchestrate(full: bool) -> Result<(), String> {
    let config = Config::from_env(full);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let server = Server::start(&exe)?;
    let port = server.port.to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "client_compare: {} (nproc {cores}), runtime {}, {} run(s){}",
        cpu_model(),
        config.runtime,
        config.runs,
        if full {
            ""
        } else {
            " (smoke: pass --bench for the full run)"
        },
    );
    println!("load average before: {}", loadavg());
    let started = std::time::Instant::now();

    let stream_args = |n: u64, model: &str| {
        vec![
            "stream".to_owned(),
            port.clone(),
            model.to_owned(),
            n.to_string(),
            config.runtime.clone(),
        ]
    };
    let request_args = vec![
        "requests".to_owned(),
        port.clone(),
        config.requests.to_string(),
        config.concurrency.to_string(),
        config.runtime.clone(),
    ];

    let mut short = Pair::default();
    let mut long = Pair::default();
    let mut requests = Pair::default();
    // The layers under our facade on the long stream, in `LAYERS` order.
    let mut layers: [Vec<Report>; 4] = Default::default();
    for run in 0..config.runs {
        // Alternate which implementation goes first, so drift hits both alike.
        let order = if run % 2 == 0 {
            [Impl::Ours, Impl::V014]
        } else {
            [Impl::V014, Impl::Ours]
        };
        for (pair, n) in [
            (&mut short, config.short_chunks),
            (&mut long, config.chunks),
        ] {
            for which in order {
                let report = run_client(&exe, which, &stream_args(n, workload::MODEL))?;
                eprintln!(
                    "run {run}: {} stream {n}: {:.3} µs/chunk, {:.1} MiB, {:.0} ms",
                    which.role(),
                    report.cpu_ns / 1e3 / n as f64,
                    report.maxrss_kib / 1024.0,
                    report.wall_ns / 1e6,
                );
                if let Err(p) = report.stream_check(workload::MODEL, n) {
                    eprintln!("  INCOMPLETE: {p}");
                    pair.problems.push((which, format!("run {run}: {p}")));
                }
                pair.push(which, report);
            }
        }
        if config.breakdown {
            for (i, (which, _)) in LAYERS.into_iter().enumerate() {
                let report = run_client(&exe, which, &stream_args(config.chunks, workload::MODEL))?;
                // Role, content, finish and usage chunks, then [DONE].
                let expected = config.chunks + 3;
                let complete = match which {
                    Impl::Sse => report.events == expected,
                    Impl::OursNoIdle => report.stream_check(workload::MODEL, config.chunks).is_ok(),
                    _ => true,
                };
                if !report.done || report.errors > 0 || !complete {
                    return Err(format!(
                        "{}: incomplete stream ({} events, expected {expected})",
                        which.role(),
                        report.events
                    ));
                }
                eprintln!(
                    "run {run}: {} stream {}: {:.3} µs/chunk",
                    which.role(),
                    config.chunks,
                    report.cpu_ns / 1e3 / config.chunks as f64,
                );
                layers[i].push(report);
            }
        }
        for which in order {
            let report = run_client(&exe, which, &request_args)?;
            eprintln!(
                "run {run}: {} requests {}: {:.2} µs/request, {:.1} MiB, {:.0} ms",
                which.role(),
                config.requests,
                report.cpu_ns / 1e3 / config.requests as f64,
                report.maxrss_kib / 1024.0,
                report.wall_ns / 1e6,
            );
            if let Err(p) = report.requests_check(config.requests) {
                eprintln!("  INCOMPLETE: {p}");
                requests.problems.push((which, format!("run {run}: {p}")));
            }
            requests.push(which, report);
        }
    }

    let mut probe = Vec::new();
    for which in [Impl::Ours, Impl::V014] {
        let report = run_client(
            &exe,
            which,
            &stream_args(config.probe_chunks, workload::PROBE_MODEL),
        )?;
        let verdict = match report.stream_check(workload::PROBE_MODEL, config.probe_chunks) {
            Ok(()) => "intact".to_owned(),
            Err(p) => p,
        };
        probe.push((which, verdict));
    }
    let elapsed = started.elapsed();
    drop(server);

    print_table(&config, &short, &long, &requests, &probe, &layers);
    println!();
    println!(
        "load average after: {}; total {:.0} s",
        loadavg(),
        elapsed.as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

fn print_table(
    config: &Config,
    short: &Pair,
    long: &Pair,
    requests: &Pair,
    probe: &[(Impl, String)],
    layers: &[Vec<Report>; 4],
) {
    let (o, v) = (Impl::Ours, Impl::V014);
    let cpu_long = (long.cpu_us(o, config.chunks), long.cpu_us(v, config.chunks));
    let cpu_short = (
        short.cpu_us(o, config.short_chunks),
        short.cpu_us(v, config.short_chunks),
    );
    let cpu_req = (
        requests.cpu_us(o, config.requests),
        requests.cpu_us(v, config.requests),
    );
    let rss_long = (long.rss_mib(o), long.rss_mib(v));
    let rss_short = (short.rss_mib(o), short.rss_mib(v));
    let rss_req = (requests.rss_mib(o), requests.rss_mib(v));
    let k = |n: u64| {
        if n % 1000 == 0 {
            format!("{}k", n / 1000)
        } else {
            n.to_string()
        }
    };
    let (long_n, short_n) = (k(config.chunks), k(config.short_chunks));
    println!();
    println!(
        "Medians of {} run(s); tokio {}; CPU = getrusage user+sys of the client process.",
        config.runs,
        match config.runtime.as_str() {
            "current" => "current-thread runtime, measured future in `block_on`",
            "multi" => "multi-thread runtime (2 workers), measured future in `block_on`",
            _ => "multi-thread runtime (2 workers), measured future in a spawned task",
        }
    );
    println!();
    println!("| measurement | ours | vllm-client 0.1.4 | ours / 0.1.4 |");
    println!("|---|---:|---:|---:|");
    let row = |name: String, (a, b): (f64, f64), digits: usize| {
        println!(
            "| {name} | {a:.digits$} | {b:.digits$} | {:.3} |",
            a / b,
            digits = digits
        );
    };
    row(format!("stream {long_n} chunks: CPU µs/chunk"), cpu_long, 3);
    row(
        format!("stream {short_n} chunks: CPU µs/chunk"),
        cpu_short,
        3,
    );
    row(
        format!(
            "{} requests @ {}: CPU µs/request",
            k(config.requests),
            config.concurrency
        ),
        cpu_req,
        2,
    );
    row(format!("stream {long_n} chunks: peak RSS MiB"), rss_long, 1);
    row(
        format!("stream {short_n} chunks: peak RSS MiB"),
        rss_short,
        1,
    );
    row(
        format!("{} requests: peak RSS MiB", k(config.requests)),
        rss_req,
        1,
    );
    row(
        format!("stream {long_n} chunks: wall ms (info)"),
        (long.wall_ms(o), long.wall_ms(v)),
        0,
    );
    row(
        format!("{} requests: wall ms (info)", k(config.requests)),
        (requests.wall_ms(o), requests.wall_ms(v)),
        0,
    );

    println!();
    println!("Per run (µs per chunk or request / peak RSS MiB):");
    for (name, pair, units) in [
        (format!("stream {long_n}"), long, config.chunks),
        (format!("stream {short_n}"), short, config.short_chunks),
        (
            format!("requests {}", k(config.requests)),
            requests,
            config.requests,
        ),
    ] {
        for which in [o, v] {
            println!(
                "- {name}, {}: {}",
                which.role(),
                pair.all(which, |r| format!(
                    "{:.3}/{:.1}",
                    r.cpu_ns / 1e3 / units as f64,
                    r.maxrss_kib / 1024.0
                ))
            );
        }
    }

    println!();
    println!("Completeness (every content event, byte and usage checked):");
    for (name, pair) in [
        (format!("stream {long_n}"), long),
        (format!("stream {short_n}"), short),
        (format!("requests {}", k(config.requests)), requests),
    ] {
        for which in [o, v] {
            let problems: Vec<&str> = pair
                .problems
                .iter()
                .filter(|(w, _)| *w == which)
                .map(|(_, p)| p.as_str())
                .collect();
            let verdict = if problems.is_empty() {
                "complete in every run".to_owned()
            } else {
                problems.join(" | ")
            };
            println!("- {name}, {}: {verdict}", which.role());
        }
    }
    println!(
        "- probe ({} chunks of multibyte text in {}-byte HTTP chunks): {}",
        config.probe_chunks,
        workload::PROBE_HTTP_CHUNK,
        probe
            .iter()
            .map(|(w, v)| format!("{}: {v}", w.role()))
            .collect::<Vec<_>>()
            .join("; ")
    );

    if config.breakdown {
        let layer = |reports: &[Report]| {
            median(
                reports
                    .iter()
                    .map(|r| r.cpu_ns / 1e3 / config.chunks as f64)
                    .collect(),
            )
        };
        println!();
        println!(
            "Where our time goes (stream {long_n}, CPU µs/chunk, medians; ratios to 0.1.4's {:.3}):",
            cpu_long.1
        );
        println!("| layer | µs/chunk | / 0.1.4 |");
        println!("|---|---:|---:|");
        let rows = LAYERS
            .iter()
            .zip(layers)
            .map(|((_, name), reports)| (*name, layer(reports)))
            .chain([(
                "our facade as measured above (`send_stream`, default 5 min idle timeout)",
                cpu_long.0,
            )]);
        for (name, value) in rows {
            println!("| {name} | {value:.3} | {:.3} |", value / cpu_long.1);
        }
    }

    println!();
    println!("Targets:");
    let ratio = cpu_long.0 / cpu_long.1;
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!(
        "- stream CPU per chunk ≤ {CPU_RATIO_TARGET}× 0.1.4's: {ratio:.3}× → {}",
        verdict(ratio <= CPU_RATIO_TARGET)
    );
    println!(
        "- peak RSS for {long_n} chunks < {RSS_LIMIT_MIB} MiB: {:.1} MiB → {}",
        rss_long.0,
        verdict(rss_long.0 < RSS_LIMIT_MIB)
    );
    let growth = rss_long.0 - rss_short.0;
    println!(
        "- peak RSS does not grow with stream length ({short_n} → {long_n}: {growth:+.2} MiB, limit +{RSS_GROWTH_LIMIT_MIB} MiB) → {}",
        verdict(growth <= RSS_GROWTH_LIMIT_MIB)
    );
    let ours_complete = !long
        .problems
        .iter()
        .chain(&short.problems)
        .chain(&requests.problems)
        .any(|(w, _)| *w == Impl::Ours);
    println!(
        "- ours consumed every event and response: {}",
        verdict(ours_complete)
    );
}
