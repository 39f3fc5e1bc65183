//! Property tests of the SSE decoder: any chunking of an input gives the same events
//! (and the same error) as the whole input at once, and well-formed streams decode as
//! a line-by-line reading of the WHATWG rules says.

use bytes::Bytes;
use proptest::prelude::*;
use vllm_transport::sse::{Decoder, Event, SseError};

/// An event as `(event type, data, id)`.
type Summary = (String, String, Option<String>);

/// How a piece is handed to the decoder.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// `feed`.
    Slice,
    /// `feed_bytes`.
    Bytes,
}

/// How to hand the input over: piece lengths (cycled), and per piece how it is fed and
/// whether the events are drained before the next piece.
#[derive(Debug, Clone)]
struct Chunking {
    lens: Vec<usize>,
    how: Vec<Feed>,
    drain: Vec<bool>,
}

fn chunking() -> impl Strategy<Value = Chunking> {
    (
        prop::collection::vec(
            prop_oneof![3 => 1usize..64, 1 => 64usize..400, 1 => 400usize..2048],
            1..16,
        ),
        prop::collection::vec(prop_oneof![Just(Feed::Slice), Just(Feed::Bytes)], 1..8),
        prop::collection::vec(prop::bool::weighted(0.8), 1..8),
    )
        .prop_map(|(lens, how, drain)| Chunking { lens, how, drain })
}

fn summary(event: &Event) -> Summary {
    (
        event.event().to_owned(),
        event.data().to_owned(),
        event.id().map(str::to_owned),
    )
}

fn drain(decoder: &mut Decoder, events: &mut Vec<Summary>) -> Result<(), SseError> {
    while let Some(event) = decoder.next_event()? {
        events.push(summary(&event));
    }
    Ok(())
}

/// Decodes `input` in the pieces `chunking` describes; returns the events, the first
/// error or the result of `finish`, and the final stream state.
fn decode(
    mut decoder: Decoder,
    input: &[u8],
    chunking: Option<&Chunking>,
) -> (Vec<Summary>, Result<(), SseError>, String, Option<u64>) {
    let mut events = Vec::new();
    let mut result = Ok(());
    match chunking {
        None => {
            decoder.feed(input);
            result = drain(&mut decoder, &mut events);
        }
        Some(chunking) => {
            let mut rest = input;
            let mut i = 0;
            while !rest.is_empty() {
                let (piece, tail) =
                    rest.split_at(chunking.lens[i % chunking.lens.len()].min(rest.len()));
                rest = tail;
                let drain_now = chunking.drain[i % chunking.drain.len()];
                match chunking.how[i % chunking.how.len()] {
                    Feed::Slice => decoder.feed(piece),
                    Feed::Bytes => decoder.feed_bytes(Bytes::copy_from_slice(piece)),
                }
                if drain_now {
                    result = drain(&mut decoder, &mut events);
                    if result.is_err() {
                        break;
                    }
                }
                i += 1;
            }
            if result.is_ok() {
                result = drain(&mut decoder, &mut events);
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

// ------------------------------------------------------------ well-formed streams

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r"), Just("\r\n")]
}

/// Text without line ends: ASCII, JSON-ish punctuation, multibyte characters, NUL.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'e'),
            1 => Just(' '),
            1 => Just(':'),
            1 => Just('"'),
            1 => Just('\0'),
            1 => Just('é'),
            1 => Just('€'),
            1 => Just('😀'),
            1 => Just('\u{FEFF}'),
            1 => prop::char::range('0', '9'),
            1 => any::<char>().prop_filter("no line ends", |c| *c != '\r' && *c != '\n'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        6 => Just("data"),
        2 => Just("event"),
        2 => Just("id"),
        2 => Just("retry"),
        1 => Just("dat"),
        1 => Just("datas"),
        1 => Just("foo"),
    ];
    prop_oneof![
        // name:value, name: value, and name alone
        6 => (name.clone(), text()).prop_map(|(n, v)| format!("{n}:{v}")),
        6 => (name.clone(), text()).prop_map(|(n, v)| format!("{n}: {v}")),
        2 => name.prop_map(str::to_owned),
        2 => prop::collection::vec(prop::char::range('0', '9'), 1..6)
            .prop_map(|d| format!("retry: {}", d.into_iter().collect::<String>())),
        2 => text().prop_map(|t| format!(":{t}")),
        1 => text(),
        5 => Just(String::new()),
    ]
}

/// A well-formed stream: an optional BOM, lines with mixed line ends, and maybe an
/// unterminated last line.
fn stream() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.2),
        prop::collection::vec((line(), eol()), 0..40),
        prop::option::weighted(0.2, line()),
    )
        .prop_map(|(bom, lines, last)| {
            let mut s = String::new();
            if bom {
                s.push('\u{FEFF}');
            }
            for (line, eol) in lines {
                s.push_str(&line);
                s.push_str(eol);
            }
            s.extend(last);
            s
        })
}

/// A literal reading of the WHATWG event-stream interpretation rules, on a whole
/// input, with no size limit.
fn reference(input: &str) -> (Vec<Summary>, Result<(), SseError>, String, Option<u64>) {
    let mut rest = input.strip_prefix('\u{FEFF}').unwrap_or(input);
    let mut lines = Vec::new();
    while let Some(end) = rest.find(['\r', '\n']) {
        lines.push(&rest[..end]);
        let after = if rest[end..].starts_with("\r\n") {
            end + 2
        } else {
            end + 1
        };
        rest = &rest[after..];
    }
    let partial_line_len = rest.len();

    let (mut events, mut data, mut event_type) = (Vec::new(), String::new(), String::new());
    let (mut id_buffer, mut last_event_id, mut retry) = (String::new(), String::new(), None);
    let mut in_event = false;
    for line in lines {
        if line.is_empty() {
            in_event = false;
            last_event_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            data.pop();
            let name = if event_type.is_empty() {
                "message"
            } else {
                &event_type
            };
            let id = (!last_event_id.is_empty()).then(|| last_event_id.clone());
            events.push((name.to_owned(), std::mem::take(&mut data), id));
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => {
                event_type = value.to_owned();
                in_event = true;
            }
            "data" => {
                data.push_str(value);
                data.push('\n');
                in_event = true;
            }
            "id" => {
                if !value.contains('\0') {
                    id_buffer = value.to_owned();
                }
                in_event = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok().or(retry);
            }
            _ => {}
        }
    }
    let end = if partial_line_len > 0 || in_event {
        Err(SseError::UnexpectedEof { partial_line_len })
    } else {
        Ok(())
    };
    (events, end, last_event_id, retry)
}

// ------------------------------------------------------------ long streams

/// A long stream of mostly the usual event (one `data` line, a blank line), as a
/// server sends them, with some other lines; and maybe some bytes broken: a byte
/// replaced at a random place (often making invalid UTF-8), or a character cut short.
fn long_stream() -> impl Strategy<Value = Vec<u8>> {
    let event = prop_oneof![
        8 => (text(), eol(), eol()).prop_map(|(t, a, b)| format!("data: {t}{a}{b}")),
        1 => (line(), eol()).prop_map(|(l, e)| format!("{l}{e}")),
    ];
    (
        prop::collection::vec(event, 20..150),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
    )
        .prop_map(|(events, breaks, cut)| {
            let mut input = events.concat().into_bytes();
            if !input.is_empty() {
                for (at, byte) in breaks {
                    let at = at.index(input.len());
                    input[at] = byte;
                }
                if let Some(at) = cut {
                    let at = at.index(input.len());
                    input.splice(at..at, [0xE2, 0x82]);
                }
            }
            input
        })
}

// ------------------------------------------------------------ arbitrary bytes

/// Bytes biased towards the interesting: field names, line ends, parts of multibyte
/// characters and of the BOM, invalid bytes.
fn noisy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => Just(&b"data: "[..]),
        2 => Just(&b"data:"[..]),
        1 => Just(&b"event: e"[..]),
        1 => Just(&b"id: 1"[..]),
        1 => Just(&b"retry: 9"[..]),
        1 => Just(&b":"[..]),
        3 => Just(&b"\n"[..]),
        2 => Just(&b"\r"[..]),
        2 => Just(&b"\r\n"[..]),
        3 => Just(&b"abc"[..]),
        1 => Just(&b"\xC3\xA9"[..]),
        1 => Just(&b"\xC3"[..]),
        1 => Just(&b"\xA9"[..]),
        1 => Just(&b"\xF0\x9F\x98\x80"[..]),
        1 => Just(&b"\xEF\xBB\xBF"[..]),
        1 => Just(&b"\xEF\xBB"[..]),
        1 => Just(&b"\xFF"[..]),
        1 => Just(&b"\0"[..]),
    ];
    prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_chunking_of_a_stream_gives_the_events_of_the_whole(
        input in stream(),
        chunking in chunking(),
    ) {
        let whole = decode(Decoder::new(), input.as_bytes(), None);
        let chunked = decode(Decoder::new(), input.as_bytes(), Some(&chunking));
        prop_assert_eq!(&chunked, &whole);
        prop_assert_eq!(&whole, &reference(&input));
    }

    #[test]
    fn any_chunking_of_any_bytes_gives_the_result_of_the_whole(
        input in noisy_bytes(),
        chunking in chunking(),
        max in prop_oneof![Just(usize::MAX), 0usize..24],
    ) {
        let whole = decode(Decoder::with_max_event_size(max), &input, None);
        let chunked = decode(Decoder::with_max_event_size(max), &input, Some(&chunking));
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..200),
        chunking in chunking(),
    ) {
        let whole = decode(Decoder::new(), &input, None);
        let chunked = decode(Decoder::new(), &input, Some(&chunking));
        prop_assert_eq!(chunked, whole);
    }
}

proptest! {
    // Fewer cases: each input is ten times as long as the others.
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_chunking_of_a_long_stream_gives_the_result_of_the_whole(
        input in long_stream(),
        chunking in chunking(),
        max in prop_oneof![4 => Just(usize::MAX), 1 => 0usize..24],
    ) {
        let whole = decode(Decoder::with_max_event_size(max), &input, None);
        let chunked = decode(Decoder::with_max_event_size(max), &input, Some(&chunking));
        prop_assert_eq!(chunked, whole);
    }
}
