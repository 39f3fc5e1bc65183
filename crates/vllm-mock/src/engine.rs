//! The simulated engine: how long generation takes and how many requests run at once.
//!
//! A request to a generating endpoint is admitted into one of `max_num_seqs` slots (the
//! others wait in line, first come first served, so their time to first token grows with
//! the load), spends `ttft` in prefill, then produces a token every `itl`, slowed down by
//! `decode_slowdown` for each other running request and held to a server-wide token rate.
//! With every delay at zero and no slot limit, nothing waits and nothing is timed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How the mock paces generation, like a server under load. All zero by default: answers at
/// once, without limit.
///
/// ```
/// use std::time::Duration;
/// use vllm_mock::Timing;
///
/// let timing = Timing::default()
///     .ttft(Duration::from_millis(50))
///     .itl(Duration::from_millis(10))
///     .max_num_seqs(32);
/// assert_eq!(timing.max_num_seqs_limit(), Some(32));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    ttft: Duration,
    itl: Duration,
    max_num_seqs: Option<usize>,
    decode_slowdown: f64,
    max_tokens_per_second: Option<f64>,
    engine_steps: bool,
    stamp_events: bool,
}

impl Timing {
    /// Time to first token: from admission (a free slot) to the first token, the prefill.
    pub fn ttft(mut self, ttft: Duration) -> Self {
        self.ttft = ttft;
        self
    }

    /// Time per output token after the first (the inter-token latency at batch size 1).
    pub fn itl(mut self, itl: Duration) -> Self {
        self.itl = itl;
        self
    }

    /// At most this many requests generate at once (vLLM's `--max-num-seqs`); the others wait
    /// in line for a slot. Default: no limit.
    pub fn max_num_seqs(mut self, slots: usize) -> Self {
        self.max_num_seqs = Some(slots.max(1));
        self
    }

    /// Decode slows down as the batch grows: the time per token is `itl × (1 + factor ×
    /// (running − 1))`. Default 0 (no slowdown).
    pub fn decode_slowdown(mut self, factor: f64) -> Self {
        self.decode_slowdown = factor.max(0.0);
        self
    }

    /// The server produces at most this many tokens per second, over all requests. Default:
    /// no limit.
    pub fn max_tokens_per_second(mut self, rate: f64) -> Self {
        self.max_tokens_per_second = (rate > 0.0).then_some(rate);
        self
    }

    /// Tokens go out at the engine's steps, as vLLM's do: its engine makes one token for
    /// every running request per step, so every running stream's next chunk leaves at the
    /// same instant, every `itl` on a clock all requests share; a request's first token waits
    /// for the step after its prefill (so the time to first token is `ttft` plus up to one
    /// `itl`). Default: off, each request paced on its own clock, exactly `ttft` and `itl`.
    pub fn engine_steps(mut self, on: bool) -> Self {
        self.engine_steps = on;
        self
    }

    /// Every event of a generated stream carries `"mock_sent_ns"`: the machine's monotonic
    /// clock (`CLOCK_MONOTONIC`, in nanoseconds) when the mock handed the event to its
    /// connection, microseconds before writing it. A client on the same machine subtracts it
    /// from when it read the event to get the delay that is its own (or the kernel's), apart
    /// from how late the server was. vLLM sends no such member; a client keeps it as an
    /// unknown one. Unix only (elsewhere nothing is added). Default: off.
    pub fn stamp_events(mut self, on: bool) -> Self {
        self.stamp_events = on;
        self
    }

    /// The slot limit, if any.
    pub fn max_num_seqs_limit(&self) -> Option<usize> {
        self.max_num_seqs
    }

    /// The time to first token.
    pub(crate) fn ttft_time(&self) -> Duration {
        self.ttft
    }

    /// Whether events carry their send stamps.
    pub(crate) fn stamps_events(&self) -> bool {
        self.stamp_events
    }
}

/// The engine's state, shared by every request.
pub(crate) struct Engine {
    pub(crate) timing: Timing,
    slots: Option<Arc<Semaphore>>,
    running: AtomicUsize,
    waiting: AtomicUsize,
    /// When the token rate cap next has room (`None`: no cap).
    rate: Option<Mutex<Instant>>,
    /// The start of the engine's step clock.
    epoch: Instant,
}

impl Engine {
    pub(crate) fn new(timing: Timing) -> Self {
        Engine {
            slots: timing.max_num_seqs.map(|n| Arc::new(Semaphore::new(n))),
            rate: timing
                .max_tokens_per_second
                .map(|_| Mutex::new(Instant::now())),
            timing,
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }

    /// `at`, or with engine steps the first step at or after it.
    pub(crate) fn on_step(&self, at: Instant) -> Instant {
        let step = self.timing.itl;
        if !self.timing.engine_steps || step.is_zero() {
            return at;
        }
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        let step_ns = step.as_nanos();
        let steps = since.div_ceil(step_ns);
        self.epoch + Duration::from_nanos((steps * step_ns).min(u128::from(u64::MAX)) as u64)
    }

    /// Requests generating now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Requests waiting for a slot.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a slot (at once without a limit); the slot is held until the returned value
    /// is dropped.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let engine = self.clone();
        match self.slots.clone() {
            None => {
                self.running.fetch_add(1, Ordering::Relaxed);
                Admission::Ready(Some(Slot {
                    engine,
                    _permit: None,
                }))
            }
            Some(slots) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let waiting = Waiting(engine.clone());
                Admission::Waiting(Box::pin(async move {
                    // The semaphore is never closed.
                    let permit = slots.acquire_owned().await.ok();
                    drop(waiting);
                    engine.running.fetch_add(1, Ordering::Relaxed);
                    Slot {
                        engine,
                        _permit: permit,
                    }
                }))
            }
        }
    }

    /// The time to produce `tokens` more tokens at the current batch size.
    pub(crate) fn decode_time(&self, tokens: u32) -> Duration {
        if self.timing.itl.is_zero() || tokens == 0 {
            return Duration::ZERO;
        }
        let others = self.running().saturating_sub(1) as f64;
        let factor = 1.0 + self.timing.decode_slowdown * others;
        self.timing.itl.mul_f64(factor) * tokens
    }

    /// Reserves room for `tokens` tokens under the rate cap: the instant they may go out
    /// (`None`: no cap).
    pub(crate) fn reserve(&self, tokens: u32) -> Option<Instant> {
        let (rate, next) = (self.timing.max_tokens_per_second?, self.rate.as_ref()?);
        let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + Duration::from_secs_f64(f64::from(tokens) / rate);
        Some(at)
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("timing", &self.timing)
            .field("running", &self.running())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// A slot in the engine, held while a request generates.
pub(crate) struct Slot {
    engine: Arc<Engine>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.engine.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Slot")
    }
}

/// Counts a request as waiting until it is dropped (admitted, or given up on).
struct Waiting(Arc<Engine>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request on its way into the engine.
pub(crate) enum Admission {
    /// Admitted (the slot is taken out once).
    Ready(Option<Slot>),
    /// In line for a slot.
    Waiting(Pin<Box<dyn Future<Output = Slot> + Send>>),
}

impl Admission {
    /// Polls for the slot (once it was given, it is not given again).
    pub(crate) fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<Slot> {
        match self {
            Admission::Ready(slot) => slot.take().map_or(Poll::Pending, Poll::Ready),
            Admission::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Admission::Ready(_) => f.write_str("Admission::Ready"),
            Admission::Waiting(_) => f.write_str("Admission::Waiting"),
        }
    }
}
