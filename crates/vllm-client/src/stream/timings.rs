//! [`StreamTimings`]: when a stream's parts arrived.

use std::time::{Duration, Instant};

/// When the parts of a stream arrived, for latency metrics: time to first token, gaps
/// between chunks, total time.
///
/// Every instant is taken where the bytes arrive: the moment the piece of the body that
/// completed an event was read from the connection, not when your code got around to reading
/// the event. Keeping them costs one clock read per piece of the body read and no allocation
/// (no per-chunk list is kept: read [`last_gap`](Self::last_gap) after each chunk to build
/// one).
///
/// ```no_run
/// use vllm_client::{StreamEvent, VllmClient, json};
///
/// # async fn run() -> Result<(), vllm_client::VllmError> {
/// let client = VllmClient::new("http://localhost:8000/v1");
/// let mut stream = client.chat.completions().create()
///     .model("Qwen/Qwen3-8B")
///     .messages(json!([{"role": "user", "content": "Hello!"}]))
///     .send_stream()
///     .await?;
/// let mut gaps = Vec::new();
/// while let Some(_chunk) = stream.try_next_chunk().await? {
///     gaps.extend(stream.timings().last_gap());
/// }
/// let t = stream.timings();
/// println!("time to first token: {:?}", t.time_to_first_token());
/// println!("{} chunks, longest gap {:?}", t.chunks(), t.max_gap());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimings {
    started: Instant,
    response_head: Instant,
    first_chunk: Option<Instant>,
    first_reasoning: Option<Instant>,
    first_content: Option<Instant>,
    previous_chunk: Option<Instant>,
    last_chunk: Option<Instant>,
    last_event: Option<Instant>,
    chunks: u64,
    max_gap: Duration,
}

impl StreamTimings {
    pub(crate) fn new(started: Instant, response_head: Instant) -> Self {
        StreamTimings {
            started,
            response_head,
            first_chunk: None,
            first_reasoning: None,
            first_content: None,
            previous_chunk: None,
            last_chunk: None,
            last_event: None,
            chunks: 0,
            max_gap: Duration::ZERO,
        }
    }

    /// An event (a chunk, `[DONE]`, an error event) arrived at `at`.
    pub(crate) fn event(&mut self, at: Instant) {
        self.last_event = Some(at);
    }

    /// A chunk arrived at `at`, with reasoning and/or content text in it.
    pub(crate) fn chunk(&mut self, at: Instant, reasoning: bool, content: bool) {
        self.chunks += 1;
        self.first_chunk.get_or_insert(at);
        if reasoning {
            self.first_reasoning.get_or_insert(at);
        }
        if content {
            self.first_content.get_or_insert(at);
        }
        if let Some(last) = self.last_chunk {
            self.max_gap = self.max_gap.max(at.saturating_duration_since(last));
        }
        self.previous_chunk = self.last_chunk;
        self.last_chunk = Some(at);
    }

    /// When the request was started (`send_stream()` was called; retries included after it).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the response head (status and headers) arrived.
    pub fn response_head(&self) -> Instant {
        self.response_head
    }

    /// When the first chunk arrived.
    pub fn first_chunk(&self) -> Option<Instant> {
        self.first_chunk
    }

    /// When the first chunk with reasoning text arrived.
    pub fn first_reasoning(&self) -> Option<Instant> {
        self.first_reasoning
    }

    /// When the first chunk with answer text (content) arrived.
    pub fn first_content(&self) -> Option<Instant> {
        self.first_content
    }

    /// When the first chunk with generated text, reasoning or content, arrived.
    pub fn first_token(&self) -> Option<Instant> {
        match (self.first_reasoning, self.first_content) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        }
    }

    /// When the last chunk so far arrived.
    pub fn last_chunk(&self) -> Option<Instant> {
        self.last_chunk
    }

    /// When the last event so far arrived (a chunk, or the final `[DONE]`).
    pub fn last_event(&self) -> Option<Instant> {
        self.last_event
    }

    /// How many chunks arrived (the final `[DONE]` is not one).
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The gap between the last two chunks (`None` before the second): read it after each
    /// chunk to collect inter-chunk latencies. Chunks that arrived in one read of the body
    /// have a gap of zero.
    pub fn last_gap(&self) -> Option<Duration> {
        Some(
            self.last_chunk?
                .saturating_duration_since(self.previous_chunk?),
        )
    }

    /// The longest gap between two consecutive chunks so far.
    pub fn max_gap(&self) -> Duration {
        self.max_gap
    }

    /// From the start of the request to the first reasoning or content text: the time to
    /// first token (TTFT) as the client saw it.
    pub fn time_to_first_token(&self) -> Option<Duration> {
        Some(self.first_token()?.saturating_duration_since(self.started))
    }

    /// From the start of the request to the first answer text (after any reasoning).
    pub fn time_to_first_content(&self) -> Option<Duration> {
        Some(self.first_content?.saturating_duration_since(self.started))
    }

    /// From the start of the request to its last event so far.
    pub fn elapsed(&self) -> Option<Duration> {
        Some(self.last_event?.saturating_duration_since(self.started))
    }
}
