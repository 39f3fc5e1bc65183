//! The mock under a long stream, at zero delay: its memory stays flat while it streams a
//! million tokens (events are made as the client reads them), and how fast it streams.
//!
//! The mock runs in a process of its own: this binary re-executes itself in the role
//! `serve` (an in-process `vllm_mock::MockServer`), or runs the `vllm-mock` binary named by
//! `MOCK_BIN` (to measure another build, such as an older revision, the same way). The
//! parent reads the stream as fast as it can through `vllm-transport`'s raw body (counting
//! bytes and events, no JSON), samples the mock's resident memory (`VmRSS` in
//! `/proc/PID/status`) as the stream goes on, and prints:
//!
//! - `long`: one chat stream of `MOCK_BENCH_TOKENS` (1,000,000) tokens (`ignore_eos`, so the
//!   echo goes on to `max_tokens`): events per second, and the mock's RSS at 10 %, 50 % and
//!   100 % of the stream and its peak (`VmHWM`);
//! - `echo`: `MOCK_BENCH_RUNS` (5) chat streams echoing a `MOCK_BENCH_ECHO_WORDS` (50,000)
//!   word message (no `ignore_eos`: what any mock revision can stream): events per second,
//!   best of the runs.
//!
//! `cargo bench -p vllm-benches --bench mock_stream`; `MOCK_BIN=path/to/vllm-mock` for another
//! build (the `long` part needs `ignore_eos` support). Without `--bench` (under
//! `cargo test --benches`) it runs a small smoke version.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use vllm_transport::Transport;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve();
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    if let Err(e) = run(full) {
        eprintln!("mock_stream: {e}");
        std::process::exit(1);
    }
}

/// The `serve` role: a mock with a long context, its URL on stdout, until stdin closes.
fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mock = vllm_mock::MockServer::builder()
            .max_model_len(4_000_000)
            .start()
            .await
            .expect("the mock starts");
        println!("vllm-mock serving echo at {}", mock.base_url());
        // Serve until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        })
        .await;
    });
}

/// The mock's process and base URL.
struct Mock {
    child: Child,
    base_url: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock() -> Result<Mock, String> {
    let mut command = match std::env::var("MOCK_BIN") {
        Ok(bin) => {
            let mut command = Command::new(bin);
            command.args(["--port", "0", "--max-model-len", "4000000"]);
            command
        }
        Err(_) => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut command = Command::new(exe);
            command.arg("serve");
            command
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the mock: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let base_url = line
        .trim()
        .rsplit(" at ")
        .next()
        .filter(|url| url.starts_with("http://"))
        .ok_or_else(|| format!("the mock said {line:?}"))?
        .to_owned();
    Ok(Mock { child, base_url })
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .trim_start_matches(':')
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Streams `body` to `url` and counts its events; `sample(events)` is called every
/// `every` events.
async fn stream(
    transport: &Transport,
    url: &str,
    body: String,
    every: u64,
    mut sample: impl FnMut(u64),
) -> Result<(u64, Duration), String> {
    let started = Instant::now();
    let response = transport
        .post(url)
        .json(Bytes::from(body))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut body = response.into_body();
    let finder = memchr_events();
    let (mut events, mut next_sample, mut tail) = (0u64, every, Vec::new());
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| e.to_string())?;
        // Events end with a blank line; count them across piece boundaries.
        tail.extend_from_slice(&piece);
        let mut from = 0;
        while let Some(at) = finder(&tail[from..]) {
            events += 1;
            from += at + 2;
        }
        tail.drain(..from);
        if events >= next_sample {
            sample(events);
            next_sample += every;
        }
    }
    if !tail.is_empty() {
        return Err(format!("{} bytes after the last event", tail.len()));
    }
    Ok((events, started.elapsed()))
}

/// Finds the end of an event (`\n\n`).
fn memchr_events() -> impl Fn(&[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b"\n\n").into_owned();
    move |bytes| finder.find(bytes)
}

fn run(full: bool) -> Result<(), String> {
    let tokens = if full {
        env_number("MOCK_BENCH_TOKENS", 1_000_000)
    } else {
        20_000
    };
    let words = if full {
        env_number("MOCK_BENCH_ECHO_WORDS", 50_000)
    } else {
        2_000
    };
    let runs = if full {
        env_number("MOCK_BENCH_RUNS", 5)
    } else {
        1
    };
    let mock = start_mock()?;
    let pid = mock.child.id();
    let url = format!("{}/chat/completions", mock.base_url);
    let transport = Transport::builder()
        .no_proxy()
        .total_timeout(None)
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    println!(
        "mock process: {}",
        std::env::var("MOCK_BIN")
            .unwrap_or_else(|_| "this bench's own build (role `serve`)".into())
    );
    println!(
        "mock RSS before streaming: {:.1} MiB",
        mib(status_kib(pid, "VmRSS"))
    );

    // The echo of a long message, as any revision of the mock streams it.
    let message: String = (0..words).map(|i| format!("w{} ", i % 1000)).collect();
    let echo_body = serde_json::json!({
        "model": "echo", "stream": true, "max_tokens": words * 3,
        "messages": [{"role": "user", "content": message}],
    })
    .to_string();
    let mut best = 0.0f64;
    let mut echo_events = 0;
    for _ in 0..runs {
        let (events, took) = runtime.block_on(stream(
            &transport,
            &url,
            echo_body.clone(),
            u64::MAX,
            |_| {},
        ))?;
        echo_events = events;
        best = best.max(events as f64 / took.as_secs_f64());
    }
    println!(
        "echo: {echo_events} events per stream, best of {runs}: {:.0} events/s; mock RSS after: {:.1} MiB, peak {:.1} MiB",
        best,
        mib(status_kib(pid, "VmRSS")),
        mib(status_kib(pid, "VmHWM")),
    );

    // One very long stream: the mock's memory as it goes.
    let long_body = serde_json::json!({
        "model": "echo", "stream": true, "max_tokens": tokens, "ignore_eos": true,
        "messages": [{"role": "user", "content": "one two three four"}],
    })
    .to_string();
    let mut samples = Vec::new();
    let every = (tokens / 10).max(1);
    let (events, took) = runtime.block_on(stream(&transport, &url, long_body, every, |n| {
        samples.push((n, status_kib(pid, "VmRSS")));
    }))?;
    if events < tokens {
        return Err(format!(
            "the long stream had {events} events for {tokens} tokens (is ignore_eos supported?)"
        ));
    }
    println!(
        "long: {events} events in {:.2} s: {:.0} events/s",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    for (n, kib) in &samples {
        println!("  after {n:>9} events: mock RSS {:.1} MiB", mib(*kib));
    }
    let first = samples.first().map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    println!(
        "  RSS from the first sample to the last: {:+.1} MiB; peak (VmHWM) {:.1} MiB",
        mib(last) - mib(first),
        mib(status_kib(pid, "VmHWM"))
    );
    Ok(())
}
