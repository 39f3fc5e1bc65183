//! One run: warm-up, the arrivals, the requests in flight, and the client watching itself.
//!
//! The client measures its own lag two ways: how late the dispatcher sent each request
//! against its schedule, and how long a task woken by the network waits before it runs (a
//! thread outside the runtime sends a timestamp every 10 ms to a task inside it, which notes
//! how late it received it: the same wait a stream's task has between its socket becoming
//! readable and the chunk being read). With its CPU time, that tells whether the numbers
//! measure the server or the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use vllm_client::{Value, VllmClient, json};

use super::dataset::Dataset;
use super::request::{self, Measured, Settings};
use super::schedule::{Arrivals, Rate};

/// The load of one run.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) rate: Rate,
    pub(crate) burstiness: f64,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) num_prompts: usize,
    pub(crate) duration: Option<f64>,
    pub(crate) warmups: usize,
    pub(crate) seed: u64,
}

/// What the client measured of itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct SelfView {
    /// CPU seconds (user + system) the process spent during the run.
    pub(crate) cpu_seconds: f64,
    /// Cores the process may use.
    pub(crate) cores: usize,
    /// How late each request was sent against its schedule, seconds.
    pub(crate) schedule_lags: Vec<f64>,
    /// How late a woken task ran, seconds (one sample every 10 ms).
    pub(crate) wake_lags: Vec<f64>,
}

/// A run's outcome.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Every request sent (in the order they were sent); those cut off by Ctrl-C are not in
    /// it.
    pub(crate) results: Vec<Measured>,
    /// From the first dispatch to the last answer, seconds.
    pub(crate) duration: f64,
    /// When the run started (for times in the report).
    pub(crate) started: Instant,
    pub(crate) client: SelfView,
    pub(crate) interrupted: bool,
}

/// Progress, for the bar.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// CPU time of this process so far (user + system).
#[cfg(unix)]
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the `rusage` we pass, which lives for the call; an
    // all-zero `rusage` is a valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

/// Samples how late a woken task runs, until `stop`.
fn wake_probe(
    stop: Arc<AtomicBool>,
) -> (
    std::thread::JoinHandle<()>,
    tokio::task::JoinHandle<Vec<f64>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let thread = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if tx.send(Instant::now()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let task = tokio::spawn(async move {
        let mut lags = Vec::new();
        while let Some(sent) = rx.recv().await {
            lags.push(sent.elapsed().as_secs_f64());
        }
        lags
    });
    (thread, task)
}

/// One arrival of the run: which sample.
struct Due {
    sample: usize,
}

/// Times the arrivals on a thread: sends each one's due instant when it is due, until the
/// times run out, the deadline, or `stop`.
fn pacer(
    times: Box<dyn Iterator<Item = f64> + Send>,
    started: Instant,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
) -> mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for at in times {
            let when = started + Duration::from_secs_f64(at);
            if deadline.is_some_and(|d| when >= d) {
                return;
            }
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let left = when.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            if tx.send(when).is_err() {
                return;
            }
        }
    });
    rx
}

/// Runs `load` with `dataset`'s prompts; `stop` ends it early (Ctrl-C).
pub(crate) async fn run(
    client: &VllmClient,
    settings: &Settings,
    dataset: &Arc<Dataset>,
    load: &Load,
    progress: &Arc<Progress>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Outcome, String> {
    let slots = Arc::new(Semaphore::new(
        load.max_concurrency.unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let settings = Arc::new(settings.clone());

    // Warm-up: the first prompt, `warmups` times, not counted.
    if load.warmups > 0 {
        let mut warm = JoinSet::new();
        for _ in 0..load.warmups {
            let (client, settings, dataset, slots) = (
                client.clone(),
                settings.clone(),
                dataset.clone(),
                slots.clone(),
            );
            warm.spawn(async move {
                let _slot = slots.acquire().await;
                request::send(&client, &settings, &dataset.samples[0].turns[0], &[]).await
            });
        }
        while warm.join_next().await.is_some() {}
    }

    // The schedule: one arrival per conversation (a request, but for multi-turn).
    let turns_per = dataset.samples.first().map_or(1, |s| s.turns.len().max(1));
    let samples = dataset.samples.len().max(1);
    let mut arrivals = Arrivals::new(load.rate, load.burstiness, load.seed)?;
    // With a duration and no rate, requests go as fast as the slots free up; otherwise a
    // thread of its own times the arrivals (std's sleep wakes within tens of microseconds
    // of the deadline, tokio's timer only in whole milliseconds).
    let slot_driven = load.duration.is_some() && load.rate == Rate::Infinite;
    let times: Box<dyn Iterator<Item = f64> + Send> = match load.duration {
        None => Box::new(
            arrivals
                .fixed(load.num_prompts.div_ceil(turns_per))
                .into_iter(),
        ),
        Some(_) => Box::new(std::iter::from_fn(move || Some(arrivals.next_at()))),
    };

    let probe_stop = Arc::new(AtomicBool::new(false));
    let (probe_thread, probe_task) = wake_probe(probe_stop.clone());
    let cpu_before = cpu_time();
    let started = Instant::now();
    let deadline = load.duration.map(|d| started + Duration::from_secs_f64(d));
    let pacer_stop = Arc::new(AtomicBool::new(false));
    let mut due = (!slot_driven).then(|| pacer(times, started, deadline, pacer_stop.clone()));
    let mut tasks: JoinSet<Vec<(usize, Measured)>> = JoinSet::new();
    let mut results: Vec<(usize, Measured)> = Vec::new();
    let mut schedule_lags = Vec::new();
    let mut stop = stop.clone();
    let mut interrupted = false;
    let mut next_index = 0usize;
    let mut i = 0usize;
    loop {
        let when = match due.as_mut() {
            Some(due) => tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => { interrupted = true; break; }
                when = due.recv() => match when {
                    Some(when) => when,
                    None => break,
                },
            },
            None => {
                // Wait for a slot before the next request, or the run would spawn requests
                // without end.
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => { interrupted = true; break; }
                    _ = wait_for_slot(&slots, deadline) => {}
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                now
            }
        };
        let due = Due {
            sample: i % samples,
        };
        let arrived = Instant::now();
        schedule_lags.push(arrived.saturating_duration_since(when).as_secs_f64());
        let first_index = next_index;
        let turns = dataset.samples[due.sample].turns.len();
        next_index += turns;
        let (client, settings, dataset, slots, progress) = (
            client.clone(),
            settings.clone(),
            dataset.clone(),
            slots.clone(),
            progress.clone(),
        );
        let schedule_lag = schedule_lags.last().copied().unwrap_or(0.0);
        tasks.spawn(async move {
            conversation(
                &client,
                &settings,
                &dataset,
                due.sample,
                first_index,
                arrived,
                schedule_lag,
                &slots,
                &progress,
            )
            .await
        });
        while let Some(done) = tasks.try_join_next() {
            if let Ok(done) = done {
                results.extend(done);
            }
        }
        // Let the new request go out, and the chunks that arrived meanwhile be read, before
        // the next one: with many arrivals at once (`--request-rate inf`), spawning them all
        // first would queue every send ahead of the streams already running.
        tokio::task::yield_now().await;
        i += 1;
    }

    // The answers in flight: waited for, unless stopped.
    if !interrupted {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => { interrupted = true; break; }
                done = tasks.join_next() => match done {
                    Some(Ok(done)) => results.extend(done),
                    Some(Err(_)) => {}
                    None => break,
                },
            }
        }
    }
    if interrupted {
        tasks.abort_all();
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                results.extend(done);
            }
        }
    }
    pacer_stop.store(true, Ordering::Relaxed);
    let duration = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_time().saturating_sub(cpu_before).as_secs_f64();
    probe_stop.store(true, Ordering::Relaxed);
    let _ = probe_thread.join();
    let wake_lags = probe_task.await.unwrap_or_default();
    results.sort_by_key(|(index, _)| *index);
    Ok(Outcome {
        results: results.into_iter().map(|(_, m)| m).collect(),
        duration,
        started,
        client: SelfView {
            cpu_seconds,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            schedule_lags,
            wake_lags,
        },
        interrupted,
    })
}

/// Waits until a slot is free (without taking it), or the deadline.
async fn wait_for_slot(slots: &Semaphore, deadline: Option<Instant>) {
    let free = async {
        if let Ok(permit) = slots.acquire().await {
            drop(permit);
        }
    };
    match deadline {
        Some(d) => {
            let _ = tokio::time::timeout_at(d.into(), free).await;
        }
        None => free.await,
    }
}

/// Sends a sample's turns one after the other (each waiting for a slot), the history
/// growing with the server's answers; returns each request's measurements, numbered from
/// `first_index`.
#[allow(clippy::too_many_arguments)]
async fn conversation(
    client: &VllmClient,
    settings: &Settings,
    dataset: &Dataset,
    sample: usize,
    first_index: usize,
    arrived: Instant,
    schedule_lag: f64,
    slots: &Semaphore,
    progress: &Progress,
) -> Vec<(usize, Measured)> {
    let turns = &dataset.samples[sample].turns;
    let mut history: Vec<Value> = Vec::new();
    let mut out = Vec::with_capacity(turns.len());
    let mut ready = arrived;
    for (k, turn) in turns.iter().enumerate() {
        let Ok(slot) = slots.acquire().await else {
            break;
        };
        let queue_time = ready.elapsed().as_secs_f64();
        // Boxed: a request's future is ~10 KB, and with `--request-rate inf` every task is
        // spawned at once to wait for a slot; unboxed, each waiting task would hold those
        // 10 KB (300 MB for 30,000 prompts, all of it page-faulted in).
        let mut measured = Box::pin(request::send(client, settings, turn, &history)).await;
        drop(slot);
        measured.queue_time = queue_time;
        measured.schedule_lag = if k == 0 { schedule_lag } else { 0.0 };
        progress.done.fetch_add(1, Ordering::Relaxed);
        if !measured.success {
            progress.failed.fetch_add(1, Ordering::Relaxed);
        }
        let failed = !measured.success;
        if turns.len() > 1 {
            history.push(json!({"role": "user", "content": turn.text}));
            history.push(json!({"role": "assistant", "content": measured.text}));
        }
        out.push((first_index + k, measured));
        if failed {
            // The conversation cannot go on without its answer.
            break;
        }
        ready = Instant::now();
    }
    out
}
