//! Soak: many concurrent streams for a set time against vllm-mock with realistic timing and
//! random faults, watching the client's memory, file descriptors and tasks.
//!
//! The mock runs in a process of its own (this binary re-executed in the role `serve`), so
//! what is sampled is the client alone. It paces tokens like a server (`--ttft-ms 50`,
//! `--itl-ms 20`) and answers each request by its model name, which the client draws at
//! random per request:
//!
//! | model | share | the server | the client must end with |
//! |---|---:|---|---|
//! | `echo` | 90 % | echoes the prompt | the prompt back, then `[DONE]` |
//! | `slow` | 3 % | waits 2 s before the head | the prompt back |
//! | `cut` | 2 % | closes the connection after 3 events | a stream error |
//! | `error-event` | 2 % | an error event after 3 events | the server's error (`is_server_event`) |
//! | `busy` | 2 % | 503 with `Retry-After: 1`, every time | a 503 status error after the client's retries |
//! | `black-hole` | 1 % | waits 60 s before the head | a response-head timeout (5 s) |
//!
//! Every second it samples the client's resident memory (`/proc/self/statm`), open file
//! descriptors (`/proc/self/fd`), live Tokio tasks and requests in flight, and flags a
//! request in flight for longer than any outcome can take (30 s) as hung. At the end it
//! stops starting requests, lets the running ones finish, and prints the outcomes, every
//! unexpected one, and the slopes of memory and descriptors per hour (least squares over
//! the samples after the first tenth of the run). It exits 1 when a request hung, was lost
//! (never ended), ended differently than its fault says, or got another request's answer.
//!
//! `cargo bench -p vllm-benches --bench soak -- --seconds 600 --streams 1000 [--out FILE]`
//! (samples as JSON lines in FILE, default `target/soak.jsonl`). Without `--bench` (under
//! `cargo test --benches`) it runs a 3-second smoke version with 50 streams.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vllm_benches::Rng;
use vllm_client::{StreamEvent, VllmClient, VllmError, json};

/// Longer than any outcome can take: a 5 s head timeout on each of 3 attempts, backoff, and
/// the longest stream.
const HUNG_AFTER: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve();
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = value("--seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 60 } else { 3 });
    let streams: usize = value("--streams")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1000 } else { 50 });
    let out = value("--out")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/soak.jsonl").to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ok = runtime.block_on(soak(Duration::from_secs(seconds), streams, &out));
    std::process::exit(if ok { 0 } else { 1 });
}

/// The `serve` role: the mock with its fault models, its URL on stdout, until stdin closes.
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        use vllm_mock::{Behavior, MockServer, Timing};
        let mock = MockServer::builder()
            .record_requests(false)
            .timing(
                Timing::default()
                    .ttft(Duration::from_millis(50))
                    .itl(Duration::from_millis(20)),
            )
            .start()
            .await
            .expect("the mock starts");
        mock.on_model("slow", Behavior::new().delay(Duration::from_secs(2)));
        mock.on_model("cut", Behavior::new().cut_after(3));
        mock.on_model(
            "error-event",
            Behavior::new().stream_error_after(3, 500, "KV cache exhausted"),
        );
        mock.on_model(
            "busy",
            Behavior::error(503, "the server is overloaded").retry_after(1),
        );
        mock.on_model("black-hole", Behavior::new().delay(Duration::from_secs(60)));
        println!("{}", mock.base_url());
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        })
        .await;
    });
}

struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The faults, with their share in thousandths.
const FAULTS: [(&str, u64); 6] = [
    ("echo", 900),
    ("slow", 30),
    ("cut", 20),
    ("error-event", 20),
    ("busy", 20),
    ("black-hole", 10),
];

/// What ended a request.
fn outcome(
    model: &str,
    prompt: &str,
    result: &Result<String, VllmError>,
) -> Result<&'static str, String> {
    match (model, result) {
        ("echo" | "slow", Ok(text)) if text == prompt => Ok("done"),
        ("echo" | "slow", Ok(text)) => {
            Err(format!("{model}: another answer: {text:?} for {prompt:?}"))
        }
        ("cut", Err(e)) if !e.is_status() && !e.is_server_event() && !e.is_timeout() => Ok("cut"),
        ("error-event", Err(e))
            if e.is_server_event() && e.to_string().contains("KV cache exhausted") =>
        {
            Ok("error event")
        }
        ("busy", Err(e)) if e.status_code() == Some(503) => Ok("503"),
        ("black-hole", Err(e)) if e.is_timeout() => Ok("head timeout"),
        (_, Err(e)) => Err(format!("{model}: {e} ({:?})", e.kind())),
        (_, Ok(text)) => Err(format!("{model}: answered {text:?}")),
    }
}

/// One streamed request: the content, or the error.
async fn request(client: &VllmClient, model: &str, prompt: &str) -> Result<String, VllmError> {
    let mut stream = client
        .chat
        .completions()
        .create()
        .model(model)
        .messages(json!([{"role": "user", "content": prompt}]))
        .max_tokens(200)
        .send_stream()
        .await?;
    let mut text = String::new();
    while let Some(event) = stream.try_next().await? {
        if let StreamEvent::Content(piece) = event {
            text.push_str(&piece);
        }
    }
    Ok(text)
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<&'static str, u64>,
    unexpected: Vec<String>,
}

struct Sample {
    at: f64,
    rss_mib: f64,
    fds: usize,
    tasks: usize,
    in_flight: u64,
    done: u64,
}

async fn soak(duration: Duration, streams: usize, out: &str) -> bool {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the mock process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut line)
        .expect("the mock's URL");
    let _mock = Mock(child);
    let base_url = line.trim().to_owned();
    let client = VllmClient::builder()
        .base_url(&base_url)
        .timeout(Duration::from_secs(5))
        .stream_idle_timeout(Duration::from_secs(5))
        .build();
    println!(
        "soak: {streams} streams for {}s against vllm-mock at {base_url} (ttft 50 ms, itl 20 ms, faults {FAULTS:?})",
        duration.as_secs()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Per stream: when its request in flight started (0: none), in ms since `t0`.
    let t0 = Instant::now();
    let slots: Arc<Vec<AtomicU64>> = Arc::new((0..streams).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::with_capacity(streams);
    for id in 0..streams {
        let (client, stop, started, finished, tally, slots) = (
            client.clone(),
            stop.clone(),
            started.clone(),
            finished.clone(),
            tally.clone(),
            slots.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(id as u64 * 7919 + 1);
            // Spread the first requests over a second.
            tokio::time::sleep(Duration::from_millis(rng.next_u64() % 1000)).await;
            while !stop.load(Ordering::Relaxed) {
                let roll = rng.next_u64() % 1000;
                let mut acc = 0;
                let model = FAULTS
                    .iter()
                    .find(|(_, share)| {
                        acc += share;
                        roll < acc
                    })
                    .map_or("echo", |(m, _)| *m);
                let words = 10 + rng.next_u64() % 50;
                let prompt = (0..words)
                    .map(|_| format!("w{}", rng.next_u64() % 100_000))
                    .collect::<Vec<_>>()
                    .join(" ");
                started.fetch_add(1, Ordering::Relaxed);
                slots[id].store(t0.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                let result = request(&client, model, &prompt).await;
                slots[id].store(0, Ordering::Relaxed);
                finished.fetch_add(1, Ordering::Relaxed);
                let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                match outcome(model, &prompt, &result) {
                    Ok(kind) => *tally.outcomes.entry(kind).or_default() += 1,
                    Err(unexpected) => tally.unexpected.push(unexpected),
                }
            }
        }));
    }

    let mut file = std::fs::File::create(out).expect("the samples file");
    let mut samples = Vec::new();
    let mut hung_seen = 0u64;
    let metrics = tokio::runtime::Handle::current().metrics();
    let page = 4096.0;
    while t0.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now_ms = t0.elapsed().as_millis() as u64;
        let hung = slots
            .iter()
            .filter(|s| {
                let since = s.load(Ordering::Relaxed);
                since > 0 && now_ms.saturating_sub(since) > HUNG_AFTER.as_millis() as u64
            })
            .count() as u64;
        hung_seen = hung_seen.max(hung);
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let resident: f64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let sample = Sample {
            at: t0.elapsed().as_secs_f64(),
            rss_mib: resident * page / (1024.0 * 1024.0),
            fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            tasks: metrics.num_alive_tasks(),
            in_flight: started.load(Ordering::Relaxed) - finished.load(Ordering::Relaxed),
            done: finished.load(Ordering::Relaxed),
        };
        let _ = writeln!(
            file,
            r#"{{"t":{:.1},"rss_mib":{:.2},"fds":{},"tasks":{},"in_flight":{},"finished":{},"hung":{}}}"#,
            sample.at,
            sample.rss_mib,
            sample.fds,
            sample.tasks,
            sample.in_flight,
            sample.done,
            hung
        );
        samples.push(sample);
    }

    // Stop starting requests; the ones running have until HUNG_AFTER to end.
    stop.store(true, Ordering::Relaxed);
    let drained = tokio::time::timeout(HUNG_AFTER, async {
        for task in tasks {
            let _ = task.await;
        }
    })
    .await
    .is_ok();
    let total = started.load(Ordering::Relaxed);
    let ended = finished.load(Ordering::Relaxed);
    let lost = total - ended;
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());

    let after = samples.len() / 10;
    let fit = |f: &dyn Fn(&Sample) -> f64| slope(&samples[after..], f) * 3600.0;
    let rss_slope = fit(&|s| s.rss_mib);
    let fd_slope = fit(&|s| s.fds as f64);
    let task_slope = fit(&|s| s.tasks as f64);
    let (first, last) = (
        &samples[after.min(samples.len() - 1)],
        &samples[samples.len() - 1],
    );
    let peak = samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
    println!(
        "requests: {total} started, {ended} ended, {lost} lost, {hung_seen} hung (in flight over {}s); outcomes {:?}",
        HUNG_AFTER.as_secs(),
        tally.outcomes
    );
    println!(
        "client RSS: {:.1} MiB after warm-up, {:.1} MiB at the end, peak {peak:.1} MiB, slope {rss_slope:+.2} MiB/hour",
        first.rss_mib, last.rss_mib
    );
    println!(
        "open fds: {} after warm-up, {} at the end, slope {fd_slope:+.2}/hour; live tasks {} → {}, slope {task_slope:+.2}/hour",
        first.fds, last.fds, first.tasks, last.tasks
    );
    println!(
        "throughput: {:.0} requests/s; samples in {out}",
        ended as f64 / t0.elapsed().as_secs_f64()
    );
    for line in tally.unexpected.iter().take(10) {
        println!("unexpected: {line}");
    }
    let ok = drained && lost == 0 && hung_seen == 0 && tally.unexpected.is_empty();
    if !ok {
        println!(
            "soak FAILED: {} unexpected outcomes, {lost} lost, {hung_seen} hung, drained: {drained}",
            tally.unexpected.len()
        );
    }
    ok
}

/// The least-squares slope of `f` over the samples, per second.
fn slope(samples: &[Sample], f: &dyn Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.at).sum::<f64>() / n;
    let mean_y = samples.iter().map(f).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        num += (s.at - mean_t) * (f(s) - mean_y);
        den += (s.at - mean_t).powi(2);
    }
    if den == 0.0 { 0.0 } else { num / den }
}
