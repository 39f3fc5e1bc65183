//! The client roles (`client-ours`, `client-014`): one measurement per process, reported on
//! stdout as one `RESULT key=value …` line (and an `ERROR <text>` line if something failed).
//!
//! CPU time is `getrusage(RUSAGE_SELF)` user + system (all threads of this process) over
//! the measured section only (after the client and runtime are built); peak RSS is the
//! process's `ru_maxrss`.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::workload::{self, REPLY_CONTENT, REPLY_TOTAL_TOKENS};

/// Which implementation a client process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    /// This workspace's `vllm-client`.
    Ours,
    /// `vllm-client` 0.1.4 from crates.io.
    V014,
    /// Breakdown: our transport's raw body frames, counted (no SSE, no JSON), no idle timeout.
    BodyNoIdle,
    /// Breakdown: our transport's raw body frames, counted (no SSE, no JSON).
    Body,
    /// Breakdown: our transport's SSE events, counted (no JSON).
    Sse,
    /// Breakdown: our facade with `stream_idle_timeout(None)`.
    OursNoIdle,
}

impl Impl {
    /// The role argument selecting it.
    pub(crate) fn role(self) -> &'static str {
        match self {
            Impl::Ours => "client-ours",
            Impl::V014 => "client-014",
            Impl::BodyNoIdle => "client-ours-body-noidle",
            Impl::Body => "client-ours-body",
            Impl::Sse => "client-ours-sse",
            Impl::OursNoIdle => "client-ours-noidle",
        }
    }

    /// The implementation a role argument selects.
    pub(crate) fn from_role(role: &str) -> Option<Impl> {
        [
            Impl::Ours,
            Impl::V014,
            Impl::BodyNoIdle,
            Impl::Body,
            Impl::Sse,
            Impl::OursNoIdle,
        ]
        .into_iter()
        .find(|i| i.role() == role)
    }
}

/// CPU time (user + system) and peak RSS (KiB) of this process so far.
pub(crate) fn rusage() -> (Duration, u64) {
    // SAFETY: `getrusage` only writes the `rusage` we pass, which lives for the call; an
    // all-zero `rusage` is a valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    )
}

/// FNV-1a, to check a stream's content without keeping it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What a client saw, and what it cost.
#[derive(Debug, Default)]
struct Tally {
    /// Non-empty content events (streams) or correct responses (requests).
    events: u64,
    /// Content bytes (streams).
    bytes: u64,
    /// FNV-1a of the content (streams).
    hash: Fnv,
    /// U+FFFD characters in the content (streams).
    replacements: u64,
    /// `completion_tokens` of the usage event (streams).
    usage: Option<u64>,
    /// A `Done` event was seen (streams).
    done: bool,
    /// Responses that arrived but were wrong (requests).
    wrong: u64,
    /// Failed requests, or error events (streams).
    errors: u64,
    /// The first error's text.
    error: Option<String>,
    cpu: Duration,
    wall: Duration,
}

impl Tally {
    fn content(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.events += 1;
        self.bytes += text.len() as u64;
        self.hash.update(text.as_bytes());
        self.replacements += text.matches('\u{FFFD}').count() as u64;
    }

    fn fail(&mut self, error: String) {
        self.errors += 1;
        self.error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        self.events += other.events;
        self.wrong += other.wrong;
        self.errors += other.errors;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

fn messages() -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": "Write a long story."}])
}

/// Runs a client role: `<stream PORT MODEL N | requests PORT N CONCURRENCY> RUNTIME`.
pub(crate) fn run(which: Impl, args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| {
        arg(i)
            .parse::<u64>()
            .map_err(|_| format!("argument {i} is not a number: {:?}", arg(i)))
    };
    let base = format!("http://127.0.0.1:{}/v1", num(1)?);
    let (mode, runtime) = match arg(0) {
        "stream" => ("stream", arg(4)),
        "requests" => ("requests", arg(4)),
        other => return Err(format!("unknown mode {other:?}")),
    };
    let rt = match runtime {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("runtime: {e}"))?;
    // `multi-spawn`: the measured future runs in a spawned task (on a worker) instead of in
    // `block_on` (on the main thread).
    let spawn = runtime == "multi-spawn";
    let exec = |fut: Pin<Box<dyn Future<Output = Tally> + Send>>| -> Tally {
        if spawn {
            rt.block_on(async move {
                tokio::spawn(fut).await.unwrap_or_else(|e| {
                    let mut tally = Tally::default();
                    tally.fail(format!("task: {e}"));
                    tally
                })
            })
        } else {
            rt.block_on(fut)
        }
    };
    let tally = if mode == "stream" {
        let (model, n) = (arg(2).to_owned(), num(3)?);
        match which {
            Impl::Ours => exec(Box::pin(async move {
                ours::stream(&base, &model, n, true).await
            })),
            Impl::OursNoIdle => exec(Box::pin(async move {
                ours::stream(&base, &model, n, false).await
            })),
            Impl::V014 => exec(Box::pin(
                async move { v014::stream(&base, &model, n).await },
            )),
            Impl::BodyNoIdle | Impl::Body | Impl::Sse => exec(Box::pin(async move {
                layers::stream(which, &base, &model, n).await
            })),
        }
    } else {
        let (n, concurrency) = (num(2)?, num(3)?);
        match which {
            Impl::Ours => exec(Box::pin(async move {
                ours::requests(&base, n, concurrency).await
            })),
            Impl::V014 => exec(Box::pin(async move {
                v014::requests(&base, n, concurrency).await
            })),
            _ => return Err("the breakdown roles only stream".to_owned()),
        }
    };
    drop(rt);
    let (_, maxrss_kib) = rusage();
    let mut line = String::from("RESULT");
    let _ = write!(
        line,
        " cpu_ns={} wall_ns={} maxrss_kib={maxrss_kib} events={} bytes={} hash={} replacements={} usage={} done={} wrong={} errors={}",
        tally.cpu.as_nanos(),
        tally.wall.as_nanos(),
        tally.events,
        tally.bytes,
        tally.hash.0,
        tally.replacements,
        tally.usage.map_or(-1, |u| u as i64),
        tally.done,
        tally.wrong,
        tally.errors,
    );
    println!("{line}");
    if let Some(error) = tally.error {
        println!("ERROR {}", error.replace('\n', " "));
    }
    Ok(())
}

/// Runs `n` requests, `concurrency` at a time, each task taking the next index.
async fn fan_out<C, F, Fut>(client: Arc<C>, n: u64, concurrency: u64, one: F) -> Tally
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Tally> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    tally.merge(one(client.clone()).await);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => total.merge(t),
            Err(e) => total.fail(format!("task: {e}")),
        }
    }
    total
}

/// Warms up (`concurrency` requests, which opens the connections), then measures `n`.
async fn measure_requests<C, F, Fut>(client: Arc<C>, n: u64, concurrency: u64, one: F) -> Tally
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Tally> + Send,
{
    let warm = fan_out(client.clone(), concurrency, concurrency, one).await;
    if warm.errors > 0 {
        return warm;
    }
    let (cpu0, _) = rusage();
    let start = Instant::now();
    let mut tally = fan_out(client, n, concurrency, one).await;
    tally.wall = start.elapsed();
    tally.cpu = rusage().0 - cpu0;
    tally
}

fn check_reply(content: Option<&str>, total_tokens: Option<u64>) -> Tally {
    let mut tally = Tally::default();
    if content == Some(REPLY_CONTENT) && total_tokens == Some(REPLY_TOTAL_TOKENS) {
        tally.events = 1;
    } else {
        tally.wrong = 1;
        tally.error = Some(format!("wrong response: {content:?} {total_tokens:?}"));
    }
    tally
}

mod ours {
    use std::sync::Arc;
    use std::time::Instant;

    use vllm_client::{StreamEvent, VllmClient};

    use super::{Tally, check_reply, measure_requests, messages, rusage};

    pub(super) async fn stream(base: &str, model: &str, n: u64, idle_timeout: bool) -> Tally {
        let client = if idle_timeout {
            VllmClient::new(base)
        } else {
            VllmClient::builder()
                .base_url(base)
                .stream_idle_timeout(None)
                .build()
        };
        let mut tally = Tally::default();
        let (cpu0, _) = rusage();
        let start = Instant::now();
        let sent = client
            .chat
            .completions()
            .create()
            .model(model)
            .messages(messages())
            .max_tokens(n as u32)
            .send_stream()
            .await;
        match sent {
            Ok(mut stream) => {
                while let Some(event) = stream.next().await {
                    match event {
                        StreamEvent::Content(text) => tally.content(&text),
                        StreamEvent::Usage(u) => tally.usage = Some(u64::from(u.completion_tokens)),
                        StreamEvent::Done => tally.done = true,
                        StreamEvent::Error(e) => tally.fail(e.to_string()),
                        _ => {}
                    }
                }
            }
            Err(e) => tally.fail(e.to_string()),
        }
        tally.wall = start.elapsed();
        tally.cpu = rusage().0 - cpu0;
        tally
    }

    pub(super) async fn requests(base: &str, n: u64, concurrency: u64) -> Tally {
        let client = Arc::new(VllmClient::new(base));
        measure_requests(
            client,
            n,
            concurrency,
            |client: Arc<VllmClient>| async move {
                let sent = client
                    .chat
                    .completions()
                    .create()
                    .model(super::workload::MODEL)
                    .messages(messages())
                    .max_tokens(16)
                    .send()
                    .await;
                match sent {
                    Ok(r) => check_reply(
                        r.content.as_deref(),
                        r.usage.map(|u| u64::from(u.total_tokens)),
                    ),
                    Err(e) => {
                        let mut t = Tally::default();
                        t.fail(e.to_string());
                        t
                    }
                }
            },
        )
        .await
    }
}

mod v014 {
    use std::sync::Arc;
    use std::time::Instant;

    use vllm_client_014::{StreamEvent, VllmClient};

    use super::{Tally, check_reply, measure_requests, messages, rusage};

    pub(super) async fn stream(base: &str, model: &str, n: u64) -> Tally {
        let client = VllmClient::new(base);
        let mut tally = Tally::default();
        let (cpu0, _) = rusage();
        let start = Instant::now();
        let sent = client
            .chat
            .completions()
            .create()
            .model(model)
            .messages(messages())
            .max_tokens(n as u32)
            .send_stream()
            .await;
        match sent {
            Ok(mut stream) => {
                while let Some(event) = stream.next().await {
                    match event {
                        StreamEvent::Content(text) => tally.content(&text),
                        StreamEvent::Usage(u) => tally.usage = Some(u.completion_tokens),
                        StreamEvent::Done => tally.done = true,
                        StreamEvent::Error(e) => tally.fail(e.to_string()),
                        _ => {}
                    }
                }
            }
            Err(e) => tally.fail(e.to_string()),
        }
        tally.wall = start.elapsed();
        tally.cpu = rusage().0 - cpu0;
        tally
    }

    pub(super) async fn requests(base: &str, n: u64, concurrency: u64) -> Tally {
        let client = Arc::new(VllmClient::new(base));
        measure_requests(
            client,
            n,
            concurrency,
            |client: Arc<VllmClient>| async move {
                let sent = client
                    .chat
                    .completions()
                    .create()
                    .model(super::workload::MODEL)
                    .messages(messages())
                    .max_tokens(16)
                    .send()
                    .await;
                match sent {
                    Ok(r) => check_reply(r.content.as_deref(), r.usage.map(|u| u.total_tokens)),
                    Err(e) => {
                        let mut t = Tally::default();
                        t.fail(e.to_string());
                        t
                    }
                }
            },
        )
        .await
    }
}

/// The layers under our facade, to see where its time goes: the transport's body frames
/// (`Body`: socket reads, chunked decoding, the idle timer) and its SSE events
/// (`Sse`: the same plus SSE decoding). Configured like the facade configures a stream.
mod layers {
    use std::time::Instant;

    use vllm_transport::Transport;

    use super::{Impl, Tally, messages, rusage};

    pub(super) async fn stream(which: Impl, base: &str, model: &str, n: u64) -> Tally {
        let mut tally = Tally::default();
        let transport = match Transport::builder().build() {
            Ok(t) => t,
            Err(e) => {
                tally.fail(e.to_string());
                return tally;
            }
        };
        let body = serde_json::json!({
            "model": model,
            "messages": messages(),
            "max_tokens": n,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let (cpu0, _) = rusage();
        let start = Instant::now();
        let sent = transport
            .post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(body.to_string())
            .timeout(None)
            .response_head_timeout(vllm_client::DEFAULT_TIMEOUT)
            .idle_timeout(
                (which != Impl::BodyNoIdle).then_some(vllm_client::DEFAULT_STREAM_IDLE_TIMEOUT),
            )
            .send()
            .await;
        match sent {
            Ok(response) if which != Impl::Sse => {
                let mut body = response.into_body();
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(bytes) => {
                            tally.events += 1;
                            tally.bytes += bytes.len() as u64;
                        }
                        Err(e) => tally.fail(e.to_string()),
                    }
                }
                tally.done = true;
            }
            Ok(response) => {
                let mut events = response.into_events();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) if event.data() == "[DONE]" => tally.done = true,
                        Ok(event) => {
                            tally.events += 1;
                            tally.bytes += event.data().len() as u64;
                        }
                        Err(e) => tally.fail(e.to_string()),
                    }
                }
            }
            Err(e) => tally.fail(e.to_string()),
        }
        tally.wall = start.elapsed();
        tally.cpu = rusage().0 - cpu0;
        tally
    }
}

/// What a stream of `n` content chunks must deliver: events, bytes, hash.
pub(crate) fn expected_stream(model: &str, n: u64) -> (u64, u64, u64) {
    let tokens = workload::tokens(model);
    let mut hash = Fnv::default();
    for i in 0..n {
        hash.update(workload::token(tokens, i).as_bytes());
    }
    (n, workload::content_bytes(model, n), hash.0)
}
