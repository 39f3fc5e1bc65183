//! Entry points of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`), which `cargo test`
//! also runs on random and fixture inputs for a bounded time. Not part of the API: hidden
//! from the docs, and free to change.
//!
//! Each takes arbitrary bytes, must never panic, and checks an invariant of its own: the
//! outcome of reading an input must not depend on how the network cut it into pieces.

use crate::sse::{Decoder, SseError};

/// An event as `(type, data, id)`.
type Summary = (String, String, Option<String>);

/// The piece sizes an input asks for, and the input: its first byte says how many sizes
/// follow (0 to 7), each the next byte (a size of 1 to 256).
fn cuts(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 8).min(rest.len());
    let sizes = rest[..n].iter().map(|&b| usize::from(b) + 1).collect();
    (sizes, &rest[n..])
}

/// The SSE decoder: `data` (after its cut sizes) decoded whole and decoded in pieces gives
/// the same events, the same error, the same last event id and retry.
pub fn sse(data: &[u8]) {
    let (sizes, input) = cuts(data);
    let whole = decode(input, &[]);
    let pieces = decode(input, &sizes);
    assert_eq!(whole, pieces, "the cuts {sizes:?} changed the outcome");
}

type Decoded = (Vec<Summary>, Result<(), SseError>, String, Option<u64>);

fn decode(input: &[u8], sizes: &[usize]) -> Decoded {
    // A small limit, so that inputs reach it.
    let mut decoder = Decoder::with_max_event_size(4096);
    let mut events = Vec::new();
    let mut result = Ok(());
    let mut rest = input;
    let mut i = 0;
    'feed: while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (piece, after) = rest.split_at(size.min(rest.len()));
        // Alternate between the two ways of feeding.
        if i % 2 == 0 {
            decoder.feed(piece);
        } else {
            decoder.feed_bytes(bytes::Bytes::copy_from_slice(piece));
        }
        rest = after;
        i += 1;
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push((
                    event.event().to_owned(),
                    event.data().to_owned(),
                    event.id().map(str::to_owned),
                )),
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break 'feed;
                }
            }
        }
    }
    if result.is_ok() {
        result = decoder.finish();
    }
    (
        events,
        result,
        decoder.last_event_id().to_owned(),
        decoder.retry(),
    )
}

/// An HTTP/1.1 response as the direct path reads it (head, framing, `Content-Length`,
/// chunked or until-close body, trailers): whole and in pieces, the same status and body,
/// or an error both ways.
pub fn http_response(data: &[u8]) {
    let (sizes, input) = cuts(data);
    let whole = crate::direct::read_response(input, &[]);
    let pieces = crate::direct::read_response(input, &sizes);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the cuts {sizes:?} changed the body"),
        (Err(_), Err(_)) => {}
        _ => panic!("the cuts {sizes:?} changed the outcome: {whole:?} / {pieces:?}"),
    }
}

/// How the direct path reads a response from `data` in one piece (for the differential
/// tests): the status, the body and whether it ended, or the error's text.
pub fn read_response(data: &[u8]) -> Result<(u16, Vec<u8>, bool), String> {
    crate::direct::read_response(data, &[])
}
