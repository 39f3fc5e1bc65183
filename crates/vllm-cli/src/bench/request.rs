//! One request, measured as vLLM's benchmark measures it (and a little more).
//!
//! - A *token event* is a streamed chunk with a non-empty `choices` (the chat role chunk,
//!   content, reasoning, the chunk with the finish reason), as in vLLM.
//! - TTFT: from sending to the first token event. ITL (`itls`): the gaps between token
//!   events, one per chunk (vLLM's definition: a chunk carrying several tokens is one gap).
//!   E2EL: from sending to the last token event.
//! - Output tokens: the server's `usage.completion_tokens` (streams ask for it), never a count
//!   of chunks unless the server sent no usage (and then the run says so).
//! - Inter-token latency per token (`itl_token`): each gap shared out over the tokens its
//!   chunk carried, known from `stream_options.continuous_usage_stats` (vLLM sends usage in
//!   every chunk), asked for only when `itl_token` is reported; without it, one token per
//!   chunk with text.
//! - Time to first reasoning token and to first answer token, apart, for thinking models.
//!
//! Times are when the chunk's bytes were read from the socket (the transport records it),
//! not when it was parsed. A server that stamps each chunk with its send time on this
//! machine's monotonic clock (`vllm-mock --stamp-events`) lets the client measure how long
//! each chunk waited for it (`read_lags`).

use std::time::Instant;

use vllm_client::{ErrorKind, VllmClient, VllmError, json};

use super::args::Backend;
use super::dataset::Turn;

/// What one request did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    pub(crate) success: bool,
    /// The error's kind (`status 400`, `timeout`, …) and message, for a failure.
    pub(crate) error: Option<(String, String)>,
    /// Prompt tokens: the server's count when it sent usage, else the dataset's.
    pub(crate) input_len: usize,
    /// Output tokens: the server's `completion_tokens`.
    pub(crate) output_len: usize,
    /// Whether the server reported usage (else `output_len` counts chunks with text).
    pub(crate) usage_reported: bool,
    /// Whether every chunk carried usage (continuous usage stats).
    pub(crate) per_chunk_usage: bool,
    /// Seconds from sending to the first token event.
    pub(crate) ttft: f64,
    /// Seconds to the first reasoning text, and to the first answer text.
    pub(crate) ttfr: Option<f64>,
    pub(crate) ttfc: Option<f64>,
    /// The gaps between token events, in seconds.
    pub(crate) itls: Vec<f64>,
    /// The gaps between tokens, each chunk's gap shared out over its tokens.
    pub(crate) token_itls: Vec<f64>,
    /// Seconds from sending to the last token event.
    pub(crate) latency: f64,
    /// When it was sent.
    pub(crate) sent: Option<Instant>,
    /// Seconds it waited for a concurrency slot.
    pub(crate) queue_time: f64,
    /// Seconds later than its schedule that it arrived at the dispatcher (the client's lag).
    pub(crate) schedule_lag: f64,
    /// Chunks read, usage and role chunks included.
    pub(crate) chunks: u64,
    /// For each chunk the server stamped with its send time (`vllm-mock --stamp-events`):
    /// seconds from that stamp to when the client read the chunk, the delay that is the
    /// client's (and the kernel's), not the server's.
    pub(crate) read_lags: Vec<f64>,
    /// The answer's text (content, not reasoning).
    pub(crate) text: String,
}

/// What a request is sent with, besides its prompt.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) backend: Backend,
    pub(crate) model: String,
    pub(crate) ignore_eos: bool,
    pub(crate) temperature: Option<f32>,
    /// Keep each answer's text (for `--save-detailed` and multi-turn history).
    pub(crate) keep_text: bool,
    /// Ask for usage in every chunk (`continuous_usage_stats`), to count the tokens of each
    /// chunk for `itl_token`; otherwise only at the end, as vLLM's benchmark asks.
    pub(crate) per_chunk_usage: bool,
}

/// The error's kind as the summary groups them.
fn kind(error: &VllmError) -> String {
    match error.kind() {
        ErrorKind::Status => format!("status {}", error.status_code().unwrap_or(0)),
        ErrorKind::Connect => "connect".into(),
        ErrorKind::Timeout => "timeout".into(),
        ErrorKind::Request => "request".into(),
        ErrorKind::ServerEvent => "server error event".into(),
        ErrorKind::Stream => "stream".into(),
        ErrorKind::Decode => "decode".into(),
        ErrorKind::Builder => "invalid request".into(),
        _ => "other".into(),
    }
}

/// Sends `turn` (after `history`, for multi-turn chat) and measures it.
pub(crate) async fn send(
    client: &VllmClient,
    settings: &Settings,
    turn: &Turn,
    history: &[vllm_client::Value],
) -> Measured {
    // Room for a gap per asked-for token, so that timing a chunk never grows a vector.
    let gaps = if settings.backend == Backend::Embeddings {
        0
    } else {
        turn.output_len + 1
    };
    let mut measured = Measured {
        input_len: turn.input_len,
        itls: Vec::with_capacity(gaps),
        token_itls: Vec::with_capacity(gaps),
        ..Measured::default()
    };
    let sent = Instant::now();
    measured.sent = Some(sent);
    let result = match settings.backend {
        Backend::Chat => chat(client, settings, turn, history, sent, &mut measured).await,
        Backend::Completions => completion(client, settings, turn, sent, &mut measured).await,
        Backend::Embeddings => embedding(client, settings, turn, sent, &mut measured).await,
    };
    match result {
        Ok(())
            if settings.backend != Backend::Embeddings
                && measured.itls.is_empty()
                && measured.ttft == 0.0
                && measured.chunks == 0 =>
        {
            measured.success = false;
            measured.error = Some((
                "no chunk".into(),
                "the stream ended without a chunk to time".into(),
            ));
        }
        Ok(()) => measured.success = true,
        Err(error) => {
            measured.success = false;
            measured.error = Some((kind(&error), error.to_string()));
        }
    }
    if !measured.success {
        // As vLLM: a failed request has no latencies.
        measured.ttft = 0.0;
        measured.latency = 0.0;
        measured.itls.clear();
        measured.token_itls.clear();
        measured.output_len = 0;
    }
    measured
}

/// The stream's bookkeeping, shared by chat and completions.
struct Timing {
    sent: Instant,
    /// The last token event, and the last chunk that carried tokens.
    last_event: Option<Instant>,
    last_token: Option<Instant>,
    /// `completion_tokens` in the last chunk that had usage.
    tokens_so_far: u32,
    text_chunks: u32,
}

impl Timing {
    fn new(sent: Instant) -> Timing {
        Timing {
            sent,
            last_event: None,
            last_token: None,
            tokens_so_far: 0,
            text_chunks: 0,
        }
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.sent).as_secs_f64()
    }

    /// A chunk with choices arrived at `at`, with text or not; `usage_tokens` is the
    /// chunk's `completion_tokens` when it carried usage.
    fn token_event(
        &mut self,
        measured: &mut Measured,
        at: Instant,
        has_text: bool,
        usage_tokens: Option<u32>,
    ) {
        let previous = self.last_event.replace(at);
        // The gap to the previous token event (computed once: it is also the tokens' gap
        // when that event carried tokens, as it nearly always does).
        let gap = previous.map(|last| at.saturating_duration_since(last).as_secs_f64());
        match gap {
            None => measured.ttft = self.secs(at),
            Some(gap) => measured.itls.push(gap),
        }
        let tokens = match usage_tokens {
            Some(total) => {
                let new = total.saturating_sub(self.tokens_so_far);
                self.tokens_so_far = total.max(self.tokens_so_far);
                new
            }
            None => u32::from(has_text),
        };
        if has_text {
            self.text_chunks += 1;
        }
        if tokens > 0 {
            let gap = match self.last_token {
                Some(last) if Some(last) == previous => gap,
                last => last.map(|last| at.saturating_duration_since(last).as_secs_f64()),
            };
            for k in 0..tokens {
                // The first token of the stream has no gap; a chunk's tokens share its gap.
                match (gap, k) {
                    (Some(gap), _) => measured.token_itls.push(gap / f64::from(tokens)),
                    (None, 0) => {}
                    (None, _) => measured.token_itls.push(0.0),
                }
            }
            self.last_token = Some(at);
        }
    }

    fn finish(&self, measured: &mut Measured) {
        if let Some(last) = self.last_event {
            measured.latency = self.secs(last);
        }
        if !measured.usage_reported {
            measured.output_len = self.text_chunks as usize;
        }
    }
}

/// The stream options: usage at the end, and in every chunk when asked.
fn stream_options(settings: &Settings) -> vllm_client::Value {
    if settings.per_chunk_usage {
        json!({"include_usage": true, "continuous_usage_stats": true})
    } else {
        json!({"include_usage": true})
    }
}

async fn chat(
    client: &VllmClient,
    settings: &Settings,
    turn: &Turn,
    history: &[vllm_client::Value],
    sent: Instant,
    measured: &mut Measured,
) -> Result<(), VllmError> {
    // As vLLM's benchmark sends it: the text as a content part.
    let mut messages = history.to_vec();
    messages.push(json!({"role": "user", "content": [{"type": "text", "text": turn.text}]}));
    let mut request = client
        .chat
        .completions()
        .create()
        .model(&settings.model)
        .messages(messages)
        .max_completion_tokens(turn.output_len as u32)
        .stream(true)
        .stream_options(stream_options(settings));
    if settings.ignore_eos {
        request = request.ignore_eos(true);
    }
    if let Some(t) = settings.temperature {
        request = request.temperature(t);
    }
    let mut stream = request.send_stream().await?;
    let mut tally = Tally::new(sent);
    while stream.try_next_chunk().await?.is_some() {
        let at = stream.timings().last_chunk().unwrap_or_else(Instant::now);
        let Some(chunk) = stream.chunk() else { break };
        let text = chunk.choices.first().map(|choice| {
            let reasoning = choice.delta.reasoning_text().is_some_and(|r| !r.is_empty());
            (reasoning, choice.delta.content.as_deref().unwrap_or(""))
        });
        stamped(measured, at, &chunk.extra);
        tally.chunk(measured, settings, at, chunk.usage.as_ref(), text);
    }
    tally.finish(measured);
    Ok(())
}

async fn completion(
    client: &VllmClient,
    settings: &Settings,
    turn: &Turn,
    sent: Instant,
    measured: &mut Measured,
) -> Result<(), VllmError> {
    let mut request = client
        .completions
        .create()
        .model(&settings.model)
        .prompt(&turn.text)
        .max_tokens(turn.output_len as u32)
        .stream(true)
        .stream_options(stream_options(settings));
    if settings.ignore_eos {
        request = request.ignore_eos(true);
    }
    if let Some(t) = settings.temperature {
        request = request.temperature(t);
    }
    let mut stream = request.send_stream().await?;
    let mut tally = Tally::new(sent);
    while stream.try_next_chunk().await?.is_some() {
        let at = stream.timings().last_chunk().unwrap_or_else(Instant::now);
        let Some(chunk) = stream.chunk() else { break };
        let text = chunk
            .choices
            .first()
            .map(|choice| (false, choice.text.as_str()));
        stamped(measured, at, &chunk.extra);
        tally.chunk(measured, settings, at, chunk.usage.as_ref(), text);
    }
    tally.finish(measured);
    Ok(())
}

/// What each streamed chunk adds to a request's measurement, chat or completion.
struct Tally {
    timing: Timing,
    /// Every chunk with choices carried usage so far.
    per_chunk_usage: bool,
}

impl Tally {
    fn new(sent: Instant) -> Self {
        Tally {
            timing: Timing::new(sent),
            per_chunk_usage: true,
        }
    }

    /// A chunk read at `at`, with its usage and, when it has choices, whether the first one
    /// carried reasoning and its text.
    fn chunk(
        &mut self,
        measured: &mut Measured,
        settings: &Settings,
        at: Instant,
        usage: Option<&vllm_client::types::Usage>,
        text: Option<(bool, &str)>,
    ) {
        measured.chunks += 1;
        if let Some(usage) = usage {
            measured.usage_reported = true;
            measured.input_len = usage.prompt_tokens as usize;
            measured.output_len = usage.completion_tokens.unwrap_or(0) as usize;
        }
        let Some((reasoning, content)) = text else {
            return;
        };
        self.per_chunk_usage &= usage.is_some();
        if reasoning && measured.ttfr.is_none() {
            measured.ttfr = Some(self.timing.secs(at));
        }
        let has_content = !content.is_empty();
        if has_content {
            if measured.ttfc.is_none() {
                measured.ttfc = Some(self.timing.secs(at));
            }
            if settings.keep_text {
                measured.text.push_str(content);
            }
        }
        let usage_tokens = usage.and_then(|u| u.completion_tokens);
        self.timing
            .token_event(measured, at, reasoning || has_content, usage_tokens);
    }

    fn finish(self, measured: &mut Measured) {
        measured.per_chunk_usage = self.per_chunk_usage && measured.chunks > 0;
        self.timing.finish(measured);
    }
}

/// The member a server stamps a chunk's send time in (`vllm-mock --stamp-events`): this
/// machine's monotonic clock, in nanoseconds.
const SENT_STAMP: &str = "mock_sent_ns";

/// A chunk read at `at` whose unmodelled members are `extra`: when the server stamped it
/// with its send time, how long it waited for the client.
fn stamped(measured: &mut Measured, at: Instant, extra: &vllm_client::types::Extra) {
    if extra.is_empty() {
        return;
    }
    let sent = extra.get(SENT_STAMP).and_then(vllm_client::Value::as_u64);
    if let (Some(sent), Some(read)) = (sent, monotonic_ns(at)) {
        measured
            .read_lags
            .push((read - i128::from(sent)) as f64 / 1e9);
    }
}

/// The machine's monotonic clock (`CLOCK_MONOTONIC`) at `at`, in nanoseconds: on Linux an
/// `Instant` is a reading of that clock, so one reading of both ties them exactly.
#[cfg(target_os = "linux")]
fn monotonic_ns(at: Instant) -> Option<i128> {
    static ANCHOR: std::sync::OnceLock<Option<(Instant, i128)>> = std::sync::OnceLock::new();
    let (instant, ns) = (*ANCHOR.get_or_init(|| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` only writes the `timespec` we pass, which lives for the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let instant = Instant::now();
        (rc == 0).then(|| {
            let ns = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
            (instant, ns)
        })
    }))?;
    Some(match at.checked_duration_since(instant) {
        Some(after) => ns + after.as_nanos() as i128,
        None => ns - instant.duration_since(at).as_nanos() as i128,
    })
}

/// Elsewhere an `Instant` is not known to read the same clock as other processes.
#[cfg(not(target_os = "linux"))]
fn monotonic_ns(_at: Instant) -> Option<i128> {
    None
}

async fn embedding(
    client: &VllmClient,
    settings: &Settings,
    turn: &Turn,
    sent: Instant,
    measured: &mut Measured,
) -> Result<(), VllmError> {
    let answer = client
        .embeddings
        .create()
        .model(&settings.model)
        .input(&turn.text)
        .send()
        .await?;
    measured.latency = sent.elapsed().as_secs_f64();
    if let Some(usage) = answer.usage {
        measured.usage_reported = true;
        measured.input_len = usage.prompt_tokens as usize;
    }
    Ok(())
}
