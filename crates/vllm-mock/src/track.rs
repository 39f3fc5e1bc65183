//! [`Tracker`]: one generating request's way through the engine, as `/metrics` counts it.

use std::sync::Arc;

use tokio::time::Instant;

use crate::engine::Slot;
use crate::metrics::{Gauge, Histogram};
use crate::server::Shared;

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In line for a slot.
    Waiting,
    /// Generating (holding a slot).
    Running,
    /// Every token was sent.
    Complete,
}

/// One generating request: it waits for a slot, runs, sends tokens and ends, and each step
/// is counted in the server's metrics as it happens. Dropped before it completed (the client
/// went away), it counts as aborted, frees its slot, and marks the recorded request
/// `aborted`.
#[derive(Debug)]
pub(crate) struct Tracker {
    shared: Arc<Shared>,
    /// The base model, for the metrics' labels.
    model: String,
    prompt_tokens: u32,
    /// How each choice finishes, counted when the request completes.
    reasons: Vec<&'static str>,
    /// The recorded request (an index into the record).
    request: Option<usize>,
    arrived: Instant,
    last_token: Option<Instant>,
    generated: u32,
    phase: Phase,
    slot: Option<Slot>,
}

impl Tracker {
    /// A request to `model` (a base model) with `prompt_tokens` prompt tokens whose choices
    /// will finish for `reasons`; it starts in line for a slot.
    pub(crate) fn new(
        shared: &Arc<Shared>,
        model: String,
        prompt_tokens: u32,
        reasons: Vec<&'static str>,
    ) -> Self {
        shared.metrics.gauge(&model, Gauge::Waiting, true);
        Tracker {
            shared: shared.clone(),
            model,
            prompt_tokens,
            reasons,
            request: None,
            arrived: Instant::now(),
            last_token: None,
            generated: 0,
            phase: Phase::Waiting,
            slot: None,
        }
    }

    /// The recorded request this is.
    pub(crate) fn set_request(&mut self, index: usize) {
        self.request = Some(index);
    }

    /// The request got its slot: it runs, and its prompt is processed.
    pub(crate) fn admitted(&mut self, slot: Slot) {
        let metrics = &self.shared.metrics;
        metrics.gauge(&self.model, Gauge::Waiting, false);
        metrics.gauge(&self.model, Gauge::Running, true);
        metrics.observe(
            &self.model,
            Histogram::Queue,
            self.arrived.elapsed().as_secs_f64(),
        );
        metrics.prompt(&self.model, self.prompt_tokens);
        self.slot = Some(slot);
        self.phase = Phase::Running;
    }

    /// `tokens` output tokens went out now.
    pub(crate) fn tokens(&mut self, tokens: u32) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        let metrics = &self.shared.metrics;
        match self.last_token {
            None => metrics.observe(
                &self.model,
                Histogram::Ttft,
                (now - self.arrived).as_secs_f64(),
            ),
            Some(last) => metrics.observe(&self.model, Histogram::Itl, (now - last).as_secs_f64()),
        }
        metrics.generated(&self.model, tokens);
        self.generated += tokens;
        self.last_token = Some(now);
    }

    /// Every token was sent: the request succeeded.
    pub(crate) fn complete(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Complete;
        }
    }

    /// Whether a token went out already.
    pub(crate) fn has_tokens(&self) -> bool {
        self.last_token.is_some()
    }

    /// `tokens` more output tokens, made at once after the first (a whole answer): counted,
    /// each with an inter-token latency of `per_token`.
    pub(crate) fn decoded(&mut self, tokens: u32, per_token: std::time::Duration) {
        let metrics = &self.shared.metrics;
        for _ in 0..tokens {
            metrics.observe(&self.model, Histogram::Itl, per_token.as_secs_f64());
        }
        metrics.generated(&self.model, tokens);
        self.generated += tokens;
        self.last_token = Some(Instant::now());
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let metrics = &self.shared.metrics;
        match self.phase {
            Phase::Waiting => metrics.gauge(&self.model, Gauge::Waiting, false),
            Phase::Running | Phase::Complete => metrics.gauge(&self.model, Gauge::Running, false),
        }
        if self.phase == Phase::Complete {
            for reason in &self.reasons {
                metrics.success(&self.model, reason);
            }
            metrics.observe(
                &self.model,
                Histogram::E2e,
                self.arrived.elapsed().as_secs_f64(),
            );
        } else {
            metrics.success(&self.model, "abort");
            if let Some(index) = self.request {
                self.shared.mark_aborted(index);
            }
        }
        // The slot is freed with the tracker.
        self.slot = None;
    }
}
