//! Parsing stream chunks into `vllm_types::ChatCompletionChunk` (hand-written serde through
//! `model!`, unknown members kept) against the same model written with
//! `#[derive(Deserialize)]` + `#[serde(flatten)]` (the usual way to keep unknown members) and
//! against `serde_json::Value`; and the same `ChatCompletionChunk` parsed in place into one
//! value with `vllm_types::from_str_in_place`. Input: the data lines of real vLLM stream
//! captures.
//!
//! `cargo bench -p vllm-benches --bench chunk_parse`
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::hint::black_box;

const STREAMS: [&str; 3] = [
    include_str!("../crates/vllm-types/tests/fixtures/vllm-0.32-cpu/think/stream.sse"),
    include_str!("../crates/vllm-types/tests/fixtures/vllm-0.32-cpu/think/tools_stream.sse"),
    include_str!("../crates/vllm-types/tests/fixtures/vllm-0.32-cpu/nothink/stream.sse"),
];

fn chunks() -> Vec<&'static str> {
    STREAMS
        .iter()
        .flat_map(|s| s.lines())
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .collect()
}

// The same chunk model, the derive + flatten way.
#[derive(Deserialize)]
#[allow(dead_code)]
struct FlatChunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<FlatChoice>,
    usage: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FlatChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: FlatDelta,
    logprobs: Option<Value>,
    finish_reason: Option<String>,
    stop_reason: Option<Value>,
    token_ids: Option<Vec<u32>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize, Default)]
#[allow(dead_code)]
struct FlatDelta {
    role: Option<String>,
    content: Option<String>,
    reasoning: Option<String>,
    reasoning_content: Option<String>,
    tool_calls: Option<Vec<FlatToolCallDelta>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct FlatToolCallDelta {
    #[serde(default)]
    index: u32,
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    function: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn bench(c: &mut Criterion) {
    let chunks = chunks();
    let bytes: usize = chunks.iter().map(|c| c.len()).sum();
    let mut group = c.benchmark_group("chunk_parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("vllm_types::ChatCompletionChunk", |b| {
        b.iter(|| {
            for chunk in &chunks {
                black_box(serde_json::from_str::<vllm_types::ChatCompletionChunk>(chunk).unwrap());
            }
        })
    });
    group.bench_function("vllm_types::ChatCompletionChunk, in place", |b| {
        // One value for all the chunks, as a stream's consumer would keep it.
        let mut place = vllm_types::ChatCompletionChunk::default();
        b.iter(|| {
            for chunk in &chunks {
                vllm_types::from_str_in_place(chunk, &mut place).unwrap();
                black_box(&place);
            }
        })
    });
    group.bench_function("derive+flatten", |b| {
        b.iter(|| {
            for chunk in &chunks {
                black_box(serde_json::from_str::<FlatChunk>(chunk).unwrap());
            }
        })
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| {
            for chunk in &chunks {
                black_box(serde_json::from_str::<Value>(chunk).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
