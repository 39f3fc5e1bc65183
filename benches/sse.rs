//! SSE throughput: `vllm_transport::sse::Decoder` against `sse-core` and
//! `eventsource-stream`, on the same inputs in the same pieces.
//!
//! - `sse/<input>/<chunking>`: framing, UTF-8 validation included; each event's data is
//!   touched (`black_box`).
//! - `sse+json/<input>/<chunking>`: the same, and each event's data but `[DONE]` parsed
//!   with `serde_json::from_str::<vllm_types::ChatCompletionChunk>`.
//! - `sse+json-in-place/<input>/<chunking>`: the same, parsed instead into one chunk kept
//!   for the whole stream, with `vllm_types::from_str_in_place` (as the client's streams
//!   do: `feed_bytes`, then each chunk parsed in place).
//!
//! Inputs and chunkings are described in `README.md`.
//! `cargo bench -p vllm-benches --bench sse [-- <filter>]`

use std::convert::Infallible;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures_util::Stream;
use vllm_benches::{
    BIG_EVENT_LEN, LARGE_PIECE, STREAM_LEN, TCP_PIECE, big_event, chat_stream, per_event, pieces,
    to_crlf, tool_call_stream,
};
use vllm_transport::sse::Decoder;
use vllm_types::ChatCompletionChunk;

/// The size limit given to every implementation: above the 5 MB event.
const LIMIT: usize = 16 << 20;

/// What is done with each event's data ([`consume`]).
mod mode {
    /// Touched.
    pub(crate) const FRAMING: u8 = 0;
    /// Parsed into a new `ChatCompletionChunk` (`serde_json::from_str`).
    pub(crate) const JSON: u8 = 1;
    /// Parsed into one `ChatCompletionChunk` kept for the stream
    /// (`vllm_types::from_str_in_place`).
    pub(crate) const JSON_IN_PLACE: u8 = 2;
}

/// What is done with each event's data: touched, or parsed as a chunk unless it is
/// `[DONE]` (fresh, or into `chunk`). Returns a number to check that every
/// implementation saw the same.
#[inline(always)]
fn consume<const MODE: u8>(data: &str, chunk: &mut ChatCompletionChunk) -> usize {
    if MODE == mode::FRAMING {
        return black_box(data).len();
    }
    if data == "[DONE]" {
        return 0;
    }
    if MODE == mode::JSON {
        let chunk: ChatCompletionChunk = serde_json::from_str(data).expect("a chunk");
        black_box(&chunk);
        return 1 + chunk.choices.len();
    }
    vllm_types::from_str_in_place(data, chunk).expect("a chunk");
    black_box(&*chunk);
    1 + chunk.choices.len()
}

/// Decodes `pieces` with our decoder, copying each piece in.
fn ours_feed<const MODE: u8>(pieces: &[Bytes]) -> usize {
    let mut decoder = Decoder::with_max_event_size(LIMIT);
    let mut total = 0;
    let mut chunk = ChatCompletionChunk::default();
    for piece in pieces {
        decoder.feed(piece);
        while let Some(event) = decoder.next_event().expect("valid stream") {
            total += consume::<MODE>(event.data(), &mut chunk);
        }
    }
    decoder.finish().expect("complete stream");
    total
}

/// Decodes `pieces` with our decoder, handing over each piece without copying.
fn ours_feed_bytes<const MODE: u8>(pieces: &[Bytes]) -> usize {
    let mut decoder = Decoder::with_max_event_size(LIMIT);
    let mut total = 0;
    let mut chunk = ChatCompletionChunk::default();
    for piece in pieces {
        decoder.feed_bytes(piece.clone());
        while let Some(event) = decoder.next_event().expect("valid stream") {
            total += consume::<MODE>(event.data(), &mut chunk);
        }
    }
    decoder.finish().expect("complete stream");
    total
}

/// Decodes `pieces` with `sse-core`, which reads each piece in place.
fn sse_core<const MODE: u8>(pieces: &[Bytes]) -> usize {
    let limit = NonZeroUsize::new(LIMIT).expect("non-zero");
    let mut decoder = sse_core::SseDecoder::with_limit(limit);
    let mut total = 0;
    let mut chunk = ChatCompletionChunk::default();
    for piece in pieces {
        let mut buf: &[u8] = piece;
        while let Some(event) = decoder.next(&mut buf) {
            if let sse_core::SseEvent::Message(message) = event.expect("valid stream") {
                total += consume::<MODE>(&message.data, &mut chunk);
            }
        }
    }
    total
}

/// Decodes `pieces` with `eventsource-stream`, polling its `Stream` without a runtime.
fn eventsource_stream<const MODE: u8>(pieces: &[Bytes]) -> usize {
    let body = futures_util::stream::iter(pieces.iter().cloned().map(Ok::<_, Infallible>));
    let mut events = pin!(body.eventsource());
    let mut cx = Context::from_waker(Waker::noop());
    let mut total = 0;
    let mut chunk = ChatCompletionChunk::default();
    while let Poll::Ready(Some(event)) = events.as_mut().poll_next(&mut cx) {
        total += consume::<MODE>(&event.expect("valid stream").data, &mut chunk);
    }
    total
}

type Decode = fn(&[Bytes]) -> usize;

/// The implementations, doing `MODE` with each event (see [`mode`]).
fn implementations<const MODE: u8>() -> [(&'static str, Decode); 4] {
    [
        ("vllm-transport feed", ours_feed::<MODE>),
        ("vllm-transport feed_bytes", ours_feed_bytes::<MODE>),
        ("sse-core", sse_core::<MODE>),
        ("eventsource-stream", eventsource_stream::<MODE>),
    ]
}

fn group<'a>(c: &'a mut Criterion, name: &str, input_len: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Bytes(input_len as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// The inputs, each with the chunkings it is measured in.
fn inputs() -> Vec<(&'static str, Bytes)> {
    let chat = chat_stream(STREAM_LEN);
    vec![
        ("chat", Bytes::from(chat.clone())),
        ("tool-calls", Bytes::from(tool_call_stream(STREAM_LEN))),
        ("chat-crlf", Bytes::from(to_crlf(&chat))),
        ("big-event", Bytes::from(big_event(BIG_EVENT_LEN))),
    ]
}

fn chunkings(input: &Bytes) -> Vec<(&'static str, Vec<Bytes>)> {
    vec![
        ("1460", pieces(input, TCP_PIECE)),
        ("per-event", per_event(input)),
        ("256k", pieces(input, LARGE_PIECE)),
    ]
}

fn run(c: &mut Criterion, prefix: &str, inputs: &[(&str, Bytes)], impls: &[(&str, Decode)]) {
    for (input_name, input) in inputs {
        let expected = impls[0].1(std::slice::from_ref(input));
        for (chunking_name, pieces) in chunkings(input) {
            let name = format!("{prefix}/{input_name}/{chunking_name}");
            let mut group = group(c, &name, input.len());
            for &(name, decode) in impls {
                if name == "eventsource-stream"
                    && *input_name == "big-event"
                    && chunking_name == "1460"
                {
                    // Quadratic: about 20 s per iteration, 10 samples would take minutes.
                    continue;
                }
                group.bench_function(name, |b| {
                    // Checked here, not before, so that a filtered-out one never runs.
                    assert_eq!(decode(&pieces), expected, "{name} on {input_name}");
                    b.iter(|| decode(black_box(&pieces)))
                });
            }
            group.finish();
        }
    }
}

fn framing(c: &mut Criterion) {
    run(c, "sse", &inputs(), &implementations::<{ mode::FRAMING }>());
}

/// The inputs that are chat completion streams (the big event is not a chunk).
fn chunk_inputs() -> Vec<(&'static str, Bytes)> {
    inputs()
        .into_iter()
        .filter(|(name, _)| *name != "big-event")
        .collect()
}

fn framing_and_json(c: &mut Criterion) {
    run(
        c,
        "sse+json",
        &chunk_inputs(),
        &implementations::<{ mode::JSON }>(),
    );
}

fn framing_and_json_in_place(c: &mut Criterion) {
    run(
        c,
        "sse+json-in-place",
        &chunk_inputs(),
        &implementations::<{ mode::JSON_IN_PLACE }>(),
    );
}

criterion_group!(
    benches,
    framing,
    framing_and_json,
    framing_and_json_in_place
);
criterion_main!(benches);
