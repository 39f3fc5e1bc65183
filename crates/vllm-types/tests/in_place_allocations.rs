//! `from_str_in_place` reuses the allocations of the value it parses into: a run of
//! stream chunks of one shape, parsed one after another into one value, allocates
//! nothing once the value has grown to fit them, but `serde_json`'s scratch buffer for a
//! string with escapes (once per chunk that has one). Counted with a global allocator
//! that counts this thread's allocations.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use vllm_types::{ChatCompletionChunk, from_str_in_place};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread's storage may already be gone while it exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to `System` unchanged; counting allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// The `data` of the events of a captured vLLM stream that contain `marker`.
fn chunks_with(capture: &str, marker: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vllm-0.32-cpu/nothink")
        .join(capture);
    let text = std::fs::read_to_string(&path).unwrap();
    let chunks: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| data.contains(marker))
        .map(str::to_owned)
        .collect();
    assert!(chunks.len() > 10, "{capture}: only {} chunks", chunks.len());
    chunks
}

/// Parses `chunks` into one value twice over and returns, for each chunk of the second
/// pass, its allocations and whether it has an escape; every value is checked against a
/// fresh parse (outside the count).
fn allocations_of_second_pass(chunks: &[String]) -> Vec<(usize, bool)> {
    let mut chunk = ChatCompletionChunk::default();
    for data in chunks {
        from_str_in_place(data, &mut chunk).unwrap();
    }
    let mut counted = Vec::new();
    for data in chunks {
        let before = allocations();
        from_str_in_place(data, &mut chunk).unwrap();
        counted.push((allocations() - before, data.contains('\\')));
        let fresh: ChatCompletionChunk = serde_json::from_str(data).unwrap();
        assert_eq!(chunk, fresh);
    }
    counted
}

/// None of the chunks allocates, but `serde_json`'s scratch buffer (one allocation) for a
/// chunk with an escape; and there are chunks of both kinds.
fn assert_no_allocation_but_scratch(chunks: &[String]) {
    let counted = allocations_of_second_pass(chunks);
    for (i, &(allocations, escaped)) in counted.iter().enumerate() {
        let allowed = usize::from(escaped);
        assert!(
            allocations <= allowed,
            "{allocations} allocations parsing {}",
            chunks[i]
        );
    }
    assert!(counted.iter().any(|&(_, escaped)| escaped));
    assert!(counted.iter().filter(|&&(_, escaped)| !escaped).count() > 5);
}

#[test]
fn content_chunks_parse_without_allocating() {
    assert_no_allocation_but_scratch(&chunks_with("stream.sse", r#""delta":{"content":""#));
}

#[test]
fn tool_call_argument_chunks_parse_without_allocating() {
    assert_no_allocation_but_scratch(&chunks_with("tools_stream.sse", r#""arguments":"#));
}

#[test]
fn a_fresh_parse_allocates() {
    // The counter works: a fresh parse of a chunk allocates its strings.
    let chunks = chunks_with("stream.sse", r#""delta":{"content":""#);
    let before = allocations();
    let chunk: ChatCompletionChunk = serde_json::from_str(&chunks[0]).unwrap();
    assert!(allocations() - before >= 4, "id, object, model, choices");
    drop(chunk);
}
