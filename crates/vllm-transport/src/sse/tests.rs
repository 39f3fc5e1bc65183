//! Unit tests of the SSE decoder: framing, fields, UTF-8, limits, end of input.

use bytes::Bytes;

use super::*;

/// An event as `(event type, data, id)`, for comparisons.
type Summary = (String, String, Option<String>);

fn summary(event: &Event) -> Summary {
    (
        event.event().to_owned(),
        event.data().to_owned(),
        event.id().map(str::to_owned),
    )
}

fn msg(data: &str) -> Summary {
    ("message".to_owned(), data.to_owned(), None)
}

/// How the pieces are handed to the decoder.
#[derive(Clone, Copy, Debug)]
enum Feed {
    Slice,
    Bytes,
}

/// Decodes `pieces` in order, draining events after each, then calls `finish`.
/// Returns the events and the first error (or the result of `finish`).
fn decode_with(
    mut decoder: Decoder,
    pieces: &[&[u8]],
    how: Feed,
) -> (Vec<Summary>, Result<(), SseError>) {
    let mut events = Vec::new();
    for piece in pieces {
        match how {
            Feed::Slice => decoder.feed(piece),
            Feed::Bytes => decoder.feed_bytes(Bytes::copy_from_slice(piece)),
        }
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(summary(&event)),
                Ok(None) => break,
                Err(error) => return (events, Err(error)),
            }
        }
    }
    (events, decoder.finish())
}

fn decode(pieces: &[&[u8]]) -> (Vec<Summary>, Result<(), SseError>) {
    decode_with(Decoder::new(), pieces, Feed::Slice)
}

/// Decodes `input` whole, and checks that every other way of feeding it gives the
/// same result: split in two at every point, and one byte at a time, through `feed`,
/// and `feed_bytes`.
fn decode_every_way(decoder: &Decoder, input: &[u8]) -> (Vec<Summary>, Result<(), SseError>) {
    let whole = decode_with(decoder.clone(), &[input], Feed::Slice);
    for how in [Feed::Slice, Feed::Bytes] {
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                decode_with(decoder.clone(), &[a, b], how),
                whole,
                "split at {at} ({how:?}) of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            decode_with(decoder.clone(), &bytewise, how),
            whole,
            "one byte at a time ({how:?}) of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

fn events_every_way(input: &[u8]) -> Vec<Summary> {
    let (events, end) = decode_every_way(&Decoder::new(), input);
    assert_eq!(end, Ok(()), "input {:?}", String::from_utf8_lossy(input));
    events
}

// ---------------------------------------------------------------- line endings

#[test]
fn every_split_point_of_each_line_ending() {
    for eol in ["\n", "\r", "\r\n"] {
        let input = format!(
            "data: one{eol}data: two{eol}{eol}: note{eol}event: e{eol}id: 7{eol}data:three{eol}{eol}{eol}"
        );
        let expected = vec![
            msg("one\ntwo"),
            ("e".to_owned(), "three".to_owned(), Some("7".to_owned())),
        ];
        assert_eq!(events_every_way(input.as_bytes()), expected, "eol {eol:?}");

        // Every pair of split points too (three pieces).
        let input = input.as_bytes();
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let pieces = [&input[..i], &input[i..j], &input[j..]];
                for how in [Feed::Slice, Feed::Bytes] {
                    let (events, end) = decode_with(Decoder::new(), &pieces, how);
                    assert_eq!(events, expected, "eol {eol:?}, splits {i} {j}, {how:?}");
                    assert_eq!(end, Ok(()));
                }
            }
        }
    }
}

#[test]
fn cr_and_lf_in_separate_feeds_are_one_line_end() {
    for how in [Feed::Slice, Feed::Bytes] {
        // Were the LF a second line end, it would be a blank line dispatching "a".
        let (events, end) = decode_with(Decoder::new(), &[b"data: a\r", b"\ndata: b\r\n\r\n"], how);
        assert_eq!(events, [msg("a\nb")], "{how:?}");
        assert_eq!(end, Ok(()));

        let (events, _) = decode_with(Decoder::new(), &[b"data: a\r", b"\n", b"\n"], how);
        assert_eq!(events, [msg("a")], "{how:?}");
    }
}

#[test]
fn cr_at_end_of_feed_followed_by_a_field_is_a_line_end() {
    let (events, end) = decode(&[b"data: a\r", b"data: b\r\r"]);
    assert_eq!(events, [msg("a\nb")]);
    assert_eq!(end, Ok(()));
}

#[test]
fn cr_blank_line_is_not_swallowed_by_a_pending_crlf() {
    // "\r" ends the data line; the next "\r" is a blank line, not the LF of a CRLF.
    assert_eq!(
        events_every_way(b"data: a\r\rdata: b\r\n\r\n"),
        [msg("a"), msg("b")]
    );
    // "\r\n" then "\n": the LF after CRLF is a blank line.
    assert_eq!(
        events_every_way(b"data: a\r\n\ndata: b\n\r"),
        [msg("a"), msg("b")]
    );
}

#[test]
fn mixed_line_endings_in_one_stream() {
    assert_eq!(
        events_every_way(b"data: 1\rdata: 2\ndata: 3\r\n\ndata: 4\n\r\n"),
        [msg("1\n2\n3"), msg("4")]
    );
}

// ---------------------------------------------------------------- realistic streams

const VLLM_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-b1c43085bf100758\",\"object\":\"chat.completion.chunk\",\"created\":1795567067,\"model\":\"smollm2-135m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-b1c43085bf100758\",\"object\":\"chat.completion.chunk\",\"created\":1795567067,\"model\":\"smollm2-135m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Grüße\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"chatcmpl-b1c43085bf100758\",\"object\":\"chat.completion.chunk\",\"created\":1795567067,\"model\":\"smollm2-135m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 日本語 😀\"},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-b1c43085bf100758\",\"object\":\"chat.completion.chunk\",\"created\":1795567067,\"model\":\"smollm2-135m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null,\"token_ids\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-b1c43085bf100758\",\"object\":\"chat.completion.chunk\",\"created\":1795567067,\"model\":\"smollm2-135m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":15,\"completion_tokens\":3}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn realistic_stream_fed_one_byte_at_a_time() {
    let expected: Vec<Summary> = VLLM_STREAM
        .split("\n\n")
        .filter(|block| block.starts_with("data: "))
        .map(|block| msg(&block["data: ".len()..]))
        .collect();
    assert_eq!(expected.len(), 6);
    assert!(expected[2].1.contains("日本語 😀"));
    for how in [Feed::Slice, Feed::Bytes] {
        let bytewise: Vec<&[u8]> = VLLM_STREAM.as_bytes().chunks(1).collect();
        let (events, end) = decode_with(Decoder::new(), &bytewise, how);
        assert_eq!(events, expected, "{how:?}");
        assert_eq!(end, Ok(()));
    }
    // And in TCP-sized pieces, and with CRLF line ends.
    let pieces: Vec<&[u8]> = VLLM_STREAM.as_bytes().chunks(100).collect();
    assert_eq!(decode(&pieces).0, expected);
    let crlf = VLLM_STREAM.replace('\n', "\r\n");
    assert_eq!(events_every_way(crlf.as_bytes()), expected);
}

// ---------------------------------------------------------------- UTF-8

#[test]
fn multibyte_characters_split_at_every_offset() {
    // Characters of 2, 3 and 4 bytes, in data, event type and id.
    let input = "event: é€\nid: 😀\ndata: aé€😀z\ndata: ü\n\n".as_bytes();
    let expected = vec![(
        "é€".to_owned(),
        "aé€😀z\nü".to_owned(),
        Some("😀".to_owned()),
    )];
    assert_eq!(events_every_way(input), expected);
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let pieces = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(
                decode(&pieces),
                (expected.clone(), Ok(())),
                "splits {i} {j}"
            );
        }
    }
}

#[test]
fn invalid_utf8_is_an_error_with_its_offset() {
    let cases: &[(&[u8], u64)] = &[
        (b"data: \xFF\n\n", 6),
        (b"data: ab\x80cd\n\n", 8),
        // A sequence cut short by the line end: an error, not a wait for more bytes.
        (b"data: \xE2\x82\n\n", 6),
        (b"data: \xC0\xAF\n\n", 6),
        (b"data: \xED\xA0\x80\n\n", 6),
        (b"event: \xFF\ndata: x\n\n", 7),
        (b"id: \xFF\ndata: x\n\n", 4),
        (b": comment \xFF\n\n", 10),
        (b"da\xFFta: x\n\n", 2),
        (b"data: ok\n\ndata: \xF0\x9F\x98\n\n", 16),
        (b"\xEF\xBB\xBFdata: \xFF\n\n", 9),
    ];
    for &(input, offset) in cases {
        let (events, end) = decode_every_way(&Decoder::new(), input);
        assert_eq!(
            end,
            Err(SseError::InvalidUtf8 { offset }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // Events before the invalid line are still delivered.
        let expected_events = if input.starts_with(b"data: ok\n\n") {
            vec![msg("ok")]
        } else {
            vec![]
        };
        assert_eq!(events, expected_events);
    }
}

#[test]
fn invalid_utf8_is_never_replaced() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: \xFF\xFE\n\n");
    assert!(matches!(
        decoder.next_event(),
        Err(SseError::InvalidUtf8 { offset: 6 })
    ));
}

#[test]
fn errors_are_terminal() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: \xFF\n\n");
    let error = SseError::InvalidUtf8 { offset: 6 };
    assert_eq!(decoder.next_event(), Err(error.clone()));
    decoder.feed(b"data: fine\n\n");
    decoder.feed_bytes(Bytes::from_static(b"data: fine\n\n"));
    assert_eq!(decoder.next_event(), Err(error.clone()));
    assert_eq!(decoder.finish(), Err(error.clone()));
    assert_eq!(decoder.next_event(), Err(error));
}

// ---------------------------------------------------------------- BOM

#[test]
fn bom_at_stream_start_is_skipped() {
    assert_eq!(events_every_way(b"\xEF\xBB\xBFdata: a\n\n"), [msg("a")]);
    // A BOM alone, and a BOM before a blank line.
    assert_eq!(events_every_way(b"\xEF\xBB\xBF"), []);
    assert_eq!(events_every_way(b"\xEF\xBB\xBF\ndata: a\n\n"), [msg("a")]);
}

#[test]
fn bom_is_skipped_only_once_and_only_at_start() {
    // A second BOM is part of the field name "\u{FEFF}data", an unknown field.
    assert_eq!(
        events_every_way(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"),
        [msg("b")]
    );
    assert_eq!(
        events_every_way(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
        [msg("a")]
    );
}

#[test]
fn partial_bom_is_not_skipped() {
    let (events, end) = decode_every_way(&Decoder::new(), b"\xEF\xBBdata: a\n\n");
    assert_eq!(events, []);
    assert_eq!(end, Err(SseError::InvalidUtf8 { offset: 0 }));
    // Input ending inside a possible BOM is an incomplete line.
    assert_eq!(
        decode(&[b"\xEF", b"\xBB"]),
        (
            vec![],
            Err(SseError::UnexpectedEof {
                partial_line_len: 2
            })
        )
    );
}

// ---------------------------------------------------------------- fields

#[test]
fn comments_are_ignored() {
    assert_eq!(
        events_every_way(b": hello\n:\n\ndata: a\n: between\ndata: b\n\n:last\n"),
        [msg("a\nb")]
    );
    // A comment-only block dispatches nothing and leaves no pending event.
    assert_eq!(events_every_way(b": keep-alive\n\n: keep-alive\n"), []);
}

#[test]
fn field_without_colon_has_an_empty_value() {
    assert_eq!(events_every_way(b"data\n\n"), [msg("")]);
    assert_eq!(events_every_way(b"data\ndata\n\n"), [msg("\n")]);
    assert_eq!(
        events_every_way(b"data: a\ndata\ndata: b\n\n"),
        [msg("a\n\nb")]
    );
    // `event` resets the type, `id` clears the ID, unknown names are ignored.
    assert_eq!(
        events_every_way(b"event: x\nevent\nid: 1\nid\nfoo\nretry\ndata: a\n\n"),
        [msg("a")]
    );
}

#[test]
fn one_space_after_the_colon_is_removed() {
    assert_eq!(events_every_way(b"data:x\n\n"), [msg("x")]);
    assert_eq!(events_every_way(b"data: x\n\n"), [msg("x")]);
    assert_eq!(events_every_way(b"data:  x\n\n"), [msg(" x")]);
    assert_eq!(events_every_way(b"data:\tx\n\n"), [msg("\tx")]);
    assert_eq!(events_every_way(b"data: \n\n"), [msg("")]);
    assert_eq!(events_every_way(b"data:\n\n"), [msg("")]);
    assert_eq!(events_every_way(b"data: a: b\n\n"), [msg("a: b")]);
    assert_eq!(
        events_every_way(b"event:  x\ndata: a\n\n"),
        [(" x".to_owned(), "a".to_owned(), None)]
    );
}

#[test]
fn field_names_are_case_sensitive_and_exact() {
    assert_eq!(
        events_every_way(b"Data: a\ndata : b\n data: c\ndatas: d\ndata: e\n\n"),
        [msg("e")]
    );
}

#[test]
fn data_lines_are_joined_and_the_trailing_newline_removed() {
    assert_eq!(
        events_every_way(b"data: a\ndata: b\ndata: c\n\n"),
        [msg("a\nb\nc")]
    );
    assert_eq!(events_every_way(b"data: a\ndata:\n\n"), [msg("a\n")]);
}

#[test]
fn event_without_data_is_not_dispatched() {
    // The event type is reset by the blank line all the same.
    assert_eq!(
        events_every_way(b"event: x\n\nid: 1\n\n\n\ndata: y\n\n"),
        [("message".to_owned(), "y".to_owned(), Some("1".to_owned()))]
    );
}

#[test]
fn event_type_defaults_to_message_and_resets_per_event() {
    assert_eq!(
        events_every_way(b"event: delta\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n"),
        [
            ("delta".to_owned(), "a".to_owned(), None),
            msg("b"),
            msg("c"),
        ]
    );
}

#[test]
fn retry_accepts_only_ascii_digits() {
    let mut decoder = Decoder::new();
    assert_eq!(decoder.retry(), None);
    // A retry field takes effect at once, without a blank line.
    decoder.feed(b"retry: 1500\n");
    assert_eq!(decoder.next_event(), Ok(None));
    assert_eq!(decoder.retry(), Some(1500));
    for ignored in [
        "retry: 15x\n",
        "retry: -1\n",
        "retry: +1\n",
        "retry: 1.5\n",
        "retry:\n",
        "retry\n",
        "retry:  10\n",
        "retry: 99999999999999999999999\n",
        "retry: ١٢\n",
    ] {
        decoder.feed(ignored.as_bytes());
        assert_eq!(decoder.next_event(), Ok(None));
        assert_eq!(decoder.retry(), Some(1500), "{ignored:?}");
    }
    decoder.feed(b"retry:0\n\n");
    assert_eq!(decoder.next_event(), Ok(None));
    assert_eq!(decoder.retry(), Some(0));
    assert_eq!(decoder.finish(), Ok(()));
}

#[test]
fn id_persists_and_is_set_at_the_blank_line() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 1\ndata: a\n");
    assert_eq!(decoder.next_event(), Ok(None));
    // Not yet: the ID becomes the last event ID when the event is dispatched.
    assert_eq!(decoder.last_event_id(), "");
    decoder.feed(b"\ndata: b\n\n");
    let a = decoder.next_event().ok().flatten().map(|e| summary(&e));
    assert_eq!(a, Some(("message".into(), "a".into(), Some("1".into()))));
    let b = decoder.next_event().ok().flatten().map(|e| summary(&e));
    assert_eq!(b, Some(("message".into(), "b".into(), Some("1".into()))));
    assert_eq!(decoder.last_event_id(), "1");

    // An ID without data is still taken at the blank line.
    decoder.feed(b"id: 2\n\n");
    assert_eq!(decoder.next_event(), Ok(None));
    assert_eq!(decoder.last_event_id(), "2");

    // An ID containing NUL is ignored; an empty one clears it.
    decoder.feed(b"id: 3\x004\ndata: c\n\n");
    let c = decoder.next_event().ok().flatten().map(|e| summary(&e));
    assert_eq!(c, Some(("message".into(), "c".into(), Some("2".into()))));
    decoder.feed(b"id:\ndata: d\n\n");
    let d = decoder.next_event().ok().flatten().map(|e| summary(&e));
    assert_eq!(d, Some(msg("d")));
    assert_eq!(decoder.last_event_id(), "");
    assert_eq!(decoder.finish(), Ok(()));
}

// ---------------------------------------------------------------- end of input

#[test]
fn unterminated_last_event_is_an_error_at_finish() {
    let eof = |partial_line_len| Err(SseError::UnexpectedEof { partial_line_len });
    let cases: &[(&[u8], Result<(), SseError>)] = &[
        (b"data: a\n\n", Ok(())),
        (b"", Ok(())),
        (b"data: a\n", eof(0)),
        (b"data: a\r", eof(0)),
        (b"data: a", eof(7)),
        (b"data: a\n\ndata: b", eof(7)),
        (b"event: x\n", eof(0)),
        (b"id: 1\n", eof(0)),
        (b": comment", eof(9)),
        (b": comment\n", Ok(())),
        (b"retry: 5\n", Ok(())),
        (b"unknown: 5\n", Ok(())),
    ];
    for (input, expected) in cases {
        let (events, end) = decode_every_way(&Decoder::new(), input);
        assert_eq!(&end, expected, "{:?}", String::from_utf8_lossy(input));
        // The unterminated event is never dispatched.
        let expected_events = if input.starts_with(b"data: a\n\n") {
            vec![msg("a")]
        } else {
            vec![]
        };
        assert_eq!(events, expected_events);
    }
}

#[test]
fn finish_error_is_terminal() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: a");
    assert_eq!(decoder.next_event(), Ok(None));
    let error = SseError::UnexpectedEof {
        partial_line_len: 7,
    };
    assert_eq!(decoder.finish(), Err(error.clone()));
    decoder.feed(b"\n\n");
    assert_eq!(decoder.next_event(), Err(error));
}

// ---------------------------------------------------------------- size limit

fn data_event(len: usize) -> Vec<u8> {
    let mut input = b"data: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', len));
    input.extend_from_slice(b"\n\n");
    input
}

fn too_large(limit: usize) -> Result<(), SseError> {
    Err(SseError::EventTooLarge { limit })
}

#[test]
fn event_of_exactly_max_data_bytes_is_accepted_one_more_is_rejected() {
    let max = 40;
    let decoder = Decoder::with_max_event_size(max);
    let (events, end) = decode_every_way(&decoder, &data_event(max));
    assert_eq!(events, [msg(&"x".repeat(max))]);
    assert_eq!(end, Ok(()));

    let (events, end) = decode_every_way(&decoder, &data_event(max + 1));
    assert_eq!(events, []);
    assert_eq!(end, too_large(max));

    // Several data lines: the joining newlines count, field names and line ends not.
    let input = format!(
        "data: {}\r\ndata:{}\r\n\r\n",
        "a".repeat(19),
        "b".repeat(20)
    );
    let (events, end) = decode_every_way(&decoder, input.as_bytes());
    assert_eq!(
        events,
        [msg(&format!("{}\n{}", "a".repeat(19), "b".repeat(20)))]
    );
    assert_eq!(end, Ok(()));
    let input = format!("data: {}\ndata:{}\n\n", "a".repeat(20), "b".repeat(20));
    assert_eq!(
        decode_every_way(&decoder, input.as_bytes()).1,
        too_large(max)
    );
    // Empty data lines count their newline.
    let input = format!("data: {}\ndata\n\n", "a".repeat(max));
    assert_eq!(
        decode_every_way(&decoder, input.as_bytes()).1,
        too_large(max)
    );
}

#[test]
fn limit_applies_to_each_event_not_the_stream() {
    let max = 10;
    let mut input = Vec::new();
    for _ in 0..10 {
        input.extend(data_event(max));
    }
    let (events, end) = decode_every_way(&Decoder::with_max_event_size(max), &input);
    assert_eq!(events.len(), 10);
    assert_eq!(end, Ok(()));
}

#[test]
fn oversized_line_errors_before_its_end_arrives() {
    // The decoder must not buffer an unbounded line waiting for its line end.
    let max = 10;
    let mut decoder = Decoder::with_max_event_size(max);
    decoder.feed(b"data: 0123456789");
    assert_eq!(decoder.next_event(), Ok(None));
    decoder.feed(b"0");
    assert_eq!(decoder.next_event().map(|_| ()), too_large(max));

    // The same for a data line after others (the joining newline counts) ...
    let mut decoder = Decoder::with_max_event_size(max);
    decoder.feed(b"data: 01234\ndata: 0123");
    assert_eq!(decoder.next_event(), Ok(None));
    decoder.feed(b"4");
    assert_eq!(decoder.next_event().map(|_| ()), too_large(max));

    // ... and for any other line.
    let mut decoder = Decoder::with_max_event_size(max);
    decoder.feed(b": 23456789");
    assert_eq!(decoder.next_event(), Ok(None));
    decoder.feed(b"x");
    assert_eq!(decoder.next_event().map(|_| ()), too_large(max));

    // A possible data line whose value has not started counts as empty.
    let mut decoder = Decoder::with_max_event_size(0);
    decoder.feed(b"data");
    assert_eq!(decoder.next_event(), Ok(None));
    decoder.feed(b":");
    assert_eq!(decoder.next_event(), Ok(None));
    decoder.feed(b" \n\n");
    assert_eq!(
        decoder.next_event().map(|e| e.map(|e| summary(&e))),
        Ok(Some(msg("")))
    );
}

#[test]
fn other_lines_are_limited_on_their_own() {
    let max = 10;
    let decoder = Decoder::with_max_event_size(max);
    assert_eq!(decode_every_way(&decoder, b": 23456789\n").1, Ok(()));
    assert_eq!(
        decode_every_way(&decoder, b": 234567890\n").1,
        too_large(max)
    );
    assert_eq!(decode_every_way(&decoder, b"event: 890\n\n").1, Ok(()));
    assert_eq!(
        decode_every_way(&decoder, b"event: 8901\n\n").1,
        too_large(max)
    );
    // They do not count towards the event's data.
    let input = b"event: 890\nid: 567890\ndata: 0123456789\n\n";
    let (events, end) = decode_every_way(&decoder, input);
    assert_eq!(events.len(), 1);
    assert_eq!(end, Ok(()));
}

#[test]
fn default_limit_is_16_mib_at_its_exact_boundary() {
    assert_eq!(Decoder::new().max_event_size(), 16 * 1024 * 1024);
    assert_eq!(Decoder::default().max_event_size(), DEFAULT_MAX_EVENT_SIZE);
    for (len, ok) in [
        (DEFAULT_MAX_EVENT_SIZE, true),
        (DEFAULT_MAX_EVENT_SIZE + 1, false),
    ] {
        let input = data_event(len);
        let pieces: Vec<&[u8]> = input.chunks(1 << 16).collect();
        let (events, end) = decode(&pieces);
        if ok {
            assert_eq!(end, Ok(()));
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].1.len(), len);
        } else {
            assert_eq!(end, too_large(DEFAULT_MAX_EVENT_SIZE));
            assert!(events.is_empty());
        }
    }
}

// ---------------------------------------------------------------- buffers

#[test]
fn feed_bytes_slices_large_events_without_copying() {
    let mut decoder = Decoder::new();
    decoder.feed(b": start\n");
    assert_eq!(decoder.next_event(), Ok(None));
    let big = "x".repeat(5000);
    // Alone in its chunk, first in a chunk, and last in a chunk.
    let alone = Bytes::from(format!("data: {big}\n\n"));
    let two = Bytes::from(format!("data: {big}\r\n\r\ndata: {big}\r\n\r\n"));
    for chunk in [alone, two] {
        decoder.feed_bytes(chunk.clone());
        let mut at = 0;
        while let Ok(Some(event)) = decoder.next_event() {
            let data = event.into_data_bytes();
            assert_eq!(data, big.as_bytes());
            let offset = data.as_ptr() as usize - chunk.as_ptr() as usize;
            assert!(
                offset > at && offset < chunk.len(),
                "not a slice of the chunk"
            );
            at = offset;
        }
        assert!(at > 0);
    }
    // Joined lines are a new string; into_data does not copy it again.
    decoder.feed_bytes(Bytes::from_static(b"data: a\ndata: b\n\n"));
    let joined = decoder.next_event().ok().flatten().map(Event::into_data);
    assert_eq!(joined.as_deref(), Some("a\nb"));
}

#[test]
fn events_alone_in_their_pieces_decode_like_the_whole_stream() {
    // Servers flush one event per write: every piece starts idle. Mixed with pieces
    // that are not a lone usual event.
    let blocks = [
        "data: {\"a\":1}\n\n",
        "data: é\r\n\r\n",
        "data:x\r\r",
        ": keep-alive\n\n",
        "event: e\ndata: typed\n\n",
        "data: two\ndata: lines\n\n",
        "id: 7\n\n",
        "data: after id\n\n",
        "data: more\n\ndata: in one piece\n\n",
        "retry: 10\n",
        "data: [DONE]\n\n",
    ];
    let whole = decode(&[blocks.concat().as_bytes()]);
    assert_eq!(whole.0.len(), 9);
    assert_eq!(whole.1, Ok(()));
    let pieces: Vec<&[u8]> = blocks.iter().map(|b| b.as_bytes()).collect();
    for how in [Feed::Slice, Feed::Bytes] {
        assert_eq!(decode_with(Decoder::new(), &pieces, how), whole, "{how:?}");
    }
    // Errors in a lone event are reported as for the whole stream.
    for bad in [&b"data: \xFF\n\n"[..], b"data: 0123456789x\n\n"] {
        let mut input = b"data: ok\n\ndata: ok\n\n".to_vec();
        input.extend_from_slice(bad);
        let decoder = Decoder::with_max_event_size(10);
        let whole = decode_with(decoder.clone(), &[&input], Feed::Slice);
        assert!(whole.1.is_err());
        for how in [Feed::Slice, Feed::Bytes] {
            let pieces = [&input[..10], &input[10..20], &input[20..]];
            assert_eq!(decode_with(decoder.clone(), &pieces, how), whole, "{how:?}");
        }
    }
}

/// A stream of `events` chat-like events with multibyte text, a comment every 7th.
fn long_stream(events: usize) -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..events {
        if i % 7 == 3 {
            input.extend_from_slice(b": keep-alive \xC3\xA9\n");
        }
        let text = ["caf\u{e9}", "\u{65e5}\u{672c}", "\u{1F600}!", "plain ascii"][i % 4];
        input.extend_from_slice(format!("data: {{\"n\":{i},\"t\":\"{text}\"}}\n\n").as_bytes());
    }
    input
}

/// An invalid byte anywhere in large pieces (in the data, a comment, a character cut
/// short by a line end, the last line) gives the events before it and the error at its
/// offset, as for the whole input.
#[test]
fn large_pieces_validate_like_the_whole_input() {
    let clean = long_stream(80);
    assert!(clean.len() > 2500, "{}", clean.len());
    let mut inputs = vec![clean.clone()];
    for (at, bad) in [
        (clean.len() / 3, &b"\xFF"[..]),
        (clean.len() - 5, b"\xFF"),
        (clean.len() / 2, b"\xE2\x82"),
    ] {
        let mut input = clean.clone();
        input.splice(at..at, bad.iter().copied());
        inputs.push(input);
    }
    // In a comment: the second one, after the first multibyte character.
    let comment = memchr::memmem::find_iter(&clean, b"keep-alive")
        .nth(1)
        .unwrap();
    let mut input = clean.clone();
    input[comment + 12] = b'x';
    inputs.push(input);
    // A character cut short by the end of a line.
    let end = memchr::memchr(b'\n', &clean[clean.len() / 4..]).unwrap() + clean.len() / 4;
    let mut input = clean.clone();
    input.splice(end - 1..end - 1, [0xF0, 0x9F, 0x98]);
    inputs.push(input);

    for (n, input) in inputs.iter().enumerate() {
        let whole = decode_with(Decoder::new(), &[input], Feed::Slice);
        assert_eq!(whole.1.is_ok(), n == 0, "input {n}: {:?}", whole.1);
        for piece_len in [512, 600, 777, 1460, input.len()] {
            let pieces: Vec<&[u8]> = input.chunks(piece_len).collect();
            assert_eq!(
                decode_with(Decoder::new(), &pieces, Feed::Bytes),
                whole,
                "input {n} in pieces of {piece_len}"
            );
        }
        for at in (0..=input.len()).step_by(7) {
            let (a, b) = input.split_at(at);
            assert_eq!(
                decode_with(Decoder::new(), &[a, b], Feed::Bytes),
                whole,
                "input {n} split at {at}"
            );
        }
    }
}

#[test]
fn feed_and_feed_bytes_mix_in_any_order() {
    let input = VLLM_STREAM.as_bytes();
    let expected = decode(&[input]);
    let pieces: Vec<&[u8]> = input.chunks(37).collect();
    for pattern in 0..8u32 {
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            if pattern >> (i % 3) & 1 == 1 {
                decoder.feed_bytes(Bytes::copy_from_slice(piece));
            } else {
                decoder.feed(piece);
            }
            // Sometimes feed twice before draining.
            if i % 2 == 0 && pattern >= 4 {
                continue;
            }
            while let Ok(Some(event)) = decoder.next_event() {
                events.push(summary(&event));
            }
        }
        while let Ok(Some(event)) = decoder.next_event() {
            events.push(summary(&event));
        }
        assert_eq!((events, decoder.finish()), expected, "pattern {pattern}");
    }
}

#[test]
fn cloned_decoder_continues_independently() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 9\ndata: a");
    assert_eq!(decoder.next_event(), Ok(None));
    let mut clone = decoder.clone();
    for d in [&mut decoder, &mut clone] {
        d.feed(b"b\n\n");
        let event = d.next_event().ok().flatten().map(|e| summary(&e));
        assert_eq!(
            event,
            Some(("message".into(), "ab".into(), Some("9".into())))
        );
    }
}

// ---------------------------------------------------------------- types

#[test]
fn error_is_send_sync_static_and_small() {
    fn assert_traits<T: std::error::Error + Send + Sync + Clone + PartialEq + 'static>() {}
    assert_traits::<SseError>();
    assert!(std::mem::size_of::<SseError>() <= 16);
}

#[test]
fn error_display_names_the_problem() {
    let text = |e: SseError| e.to_string();
    assert_eq!(
        text(SseError::InvalidUtf8 { offset: 6 }),
        "event stream is not valid UTF-8 (at byte 6)"
    );
    assert_eq!(
        text(SseError::EventTooLarge { limit: 10 }),
        "event stream event exceeds the maximum event size of 10 bytes"
    );
    assert!(
        text(SseError::UnexpectedEof {
            partial_line_len: 3
        })
        .contains("3 bytes")
    );
    assert!(
        text(SseError::UnexpectedEof {
            partial_line_len: 0
        })
        .contains("blank line")
    );
}

#[test]
fn event_debug_abbreviates_long_data() {
    let mut decoder = Decoder::new();
    decoder.feed(&data_event(10_000));
    let event = decoder.next_event().ok().flatten();
    let debug = format!("{event:?}");
    assert!(debug.len() < 400, "{debug}");
    assert!(debug.contains("10000 bytes"));
    let decoder_debug = format!("{decoder:?}");
    assert!(decoder_debug.len() < 400, "{decoder_debug}");
}

#[test]
fn types_are_send_and_sync() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Decoder>();
    assert_traits::<Event>();
}
