//! The fuzz targets of `fuzz/` (`vllm_transport::fuzzing`), bounded, on stable: on every
//! captured server answer (cut several ways) and on random bytes. And a differential test of
//! the direct path's chunked-body reading against a reading built on `httparse`'s chunk-size
//! parser, on random valid and broken bodies.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;
use vllm_transport::fuzzing;

/// The files of the project's fixtures (real server captures) ending in `ext`.
fn fixtures(ext: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vllm-types/tests/fixtures");
    let mut files = Vec::new();
    for server in std::fs::read_dir(&root).unwrap() {
        let server = server.unwrap().path();
        if !server.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&server).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                files.push(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(!files.is_empty(), "no .{ext} fixtures");
    files
}

/// `data` as a target's input with these cut sizes (each 1 to 256).
fn with_cuts(cuts: &[u8], data: &[u8]) -> Vec<u8> {
    let mut input = vec![cuts.len() as u8];
    input.extend(cuts.iter().map(|c| c.wrapping_sub(1)));
    input.extend_from_slice(data);
    input
}

const CUTS: [&[u8]; 5] = [&[], &[1], &[3, 1, 7], &[200, 5], &[64, 2, 9, 1, 128, 17, 3]];

#[test]
fn sse_on_every_captured_stream() {
    for body in fixtures("sse") {
        for cuts in CUTS {
            fuzzing::sse(&with_cuts(cuts, &body));
        }
    }
}

#[test]
fn http_responses_as_captured() {
    for response in fixtures("http") {
        for cuts in CUTS {
            fuzzing::http_response(&with_cuts(cuts, &response));
        }
        // The captures (written with LF or CRLF line ends) read as responses with a body.
        let (status, body, ended) = fuzzing::read_response(&response).unwrap();
        assert!((200..600).contains(&status));
        assert!(ended && !body.is_empty());
    }
}

/// Bytes that mean something to the SSE and HTTP parsers, to build inputs from.
fn meaningful() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"data: "[..]),
        Just(&b"data:"[..]),
        Just(&b"event: x"[..]),
        Just(&b"id: 7"[..]),
        Just(&b"retry: 100"[..]),
        Just(&b": comment"[..]),
        Just(&b"[DONE]"[..]),
        Just(&b"{\"a\":1}"[..]),
        Just(&b"\xef\xbb\xbf"[..]),
        Just(&b"\xff"[..]),
        Just(&b"HTTP/1.1 200 OK\r\n"[..]),
        Just(&b"transfer-encoding: chunked\r\n"[..]),
        Just(&b"content-length: 5\r\n"[..]),
        Just(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]),
        Just(&b"5\r\nhello\r\n"[..]),
        Just(&b"0\r\n\r\n"[..]),
        Just(&b"x: y\r\n"[..]),
        Just(&b"hello"[..]),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn sse_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::sse(&data);
    }

    #[test]
    fn sse_on_meaningful_bytes(cuts in prop::collection::vec(1u8..=255, 0..7), data in meaningful()) {
        fuzzing::sse(&with_cuts(&cuts, &data));
    }

    #[test]
    fn http_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::http_response(&data);
    }

    #[test]
    fn http_on_meaningful_bytes(cuts in prop::collection::vec(1u8..=255, 0..7), data in meaningful()) {
        fuzzing::http_response(&with_cuts(&cuts, &data));
    }
}

/// How a chunked body reads.
#[derive(Debug, Clone, PartialEq)]
enum Read {
    /// Complete, with this data.
    Body(Vec<u8>),
    /// The input ended before the body did.
    Short,
    /// Rejected.
    Invalid,
}

/// A chunked body read with `httparse::parse_chunk_size` for the size lines (the parser
/// hyper uses) and `httparse::parse_headers` for the trailers. Also says whether a size line
/// had no digit at all, which httparse reads as 0 and RFC 9112 (`chunk-size = 1*HEXDIG`)
/// does not allow.
fn reference(body: &[u8]) -> (Read, bool) {
    let mut pos = 0;
    let mut data = Vec::new();
    let mut empty_size = false;
    loop {
        let rest = &body[pos..];
        if !rest.is_empty() && !rest[0].is_ascii_hexdigit() {
            empty_size = true;
        }
        let (len, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return (Read::Short, empty_size),
            Err(_) => return (Read::Invalid, empty_size),
        };
        pos += len;
        if size == 0 {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            return match httparse::parse_headers(&body[pos..], &mut headers) {
                Ok(httparse::Status::Complete(_)) => (Read::Body(data), empty_size),
                Ok(httparse::Status::Partial) => (Read::Short, empty_size),
                Err(_) => (Read::Invalid, empty_size),
            };
        }
        let size = size as usize;
        if body.len() - pos < size {
            return (Read::Short, empty_size);
        }
        data.extend_from_slice(&body[pos..pos + size]);
        pos += size;
        match body.get(pos..pos + 2) {
            Some(b"\r\n") => pos += 2,
            Some(_) => return (Read::Invalid, empty_size),
            None if body[pos..].iter().all(|&b| b == b'\r') && body.len() - pos < 2 => {
                return (Read::Short, empty_size);
            }
            None => return (Read::Invalid, empty_size),
        }
    }
}

/// The same body as the direct path reads it.
fn ours(body: &[u8]) -> Read {
    let mut response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    response.extend_from_slice(body);
    match fuzzing::read_response(&response) {
        Ok((200, data, true)) => Read::Body(data),
        Ok((_, _, false)) => Read::Short,
        Ok(other) => panic!("{other:?}"),
        Err(_) => Read::Invalid,
    }
}

/// A valid chunked body: chunks of random data (sizes in either case, with leading zeros,
/// extensions and whitespace before them), the last chunk, maybe trailers.
fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    // Data without line ends, so that the lines of the framing are the only ones.
    let data_byte = any::<u8>().prop_filter("not a line end", |b| *b != b'\r' && *b != b'\n');
    let chunk = (
        prop::collection::vec(data_byte, 1..40),
        any::<bool>(),
        0usize..3,
        prop_oneof![Just(""), Just(";a=b"), Just(" ;q"), Just(";x=\"y z\"")],
    )
        .prop_map(|(data, upper, zeros, ext)| {
            let size = format!("{}{:x}", "0".repeat(zeros), data.len());
            let size = if upper { size.to_uppercase() } else { size };
            let mut out = format!("{size}{ext}\r\n").into_bytes();
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
            out
        });
    (
        prop::collection::vec(chunk, 0..6),
        prop_oneof![
            Just(""),
            Just("x-checksum: 1\r\n"),
            Just("a: b\r\nc: d\r\n")
        ],
    )
        .prop_map(|(chunks, trailers)| {
            let mut out = chunks.concat();
            out.extend_from_slice(format!("0\r\n{trailers}\r\n").as_bytes());
            out
        })
}

/// One edit of a body: a byte replaced, inserted or removed, or the body cut short.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the framing (no CR or LF: line ends are where the two readers
    // knowingly differ, see below), and any byte.
    let byte = prop_oneof![
        prop::sample::select(&b"0123456789abcdefABCDEFgG;= \t:x\x00\x7f"[..]),
        any::<u8>().prop_filter("not a line end", |b| *b != b'\r' && *b != b'\n'),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(body: &mut Vec<u8>, edit: &Edit) {
    if body.is_empty() {
        return;
    }
    match *edit {
        Edit::Replace(at, b) => {
            let at = at % body.len();
            body[at] = b;
        }
        Edit::Insert(at, b) => body.insert(at % (body.len() + 1), b),
        Edit::Remove(at) => {
            body.remove(at % body.len());
        }
        Edit::Truncate(at) => body.truncate(at % body.len()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Valid bodies read the same; so do bodies with up to three edits, except where this
    /// client is knowingly stricter than httparse: a size line with no digit (httparse
    /// reads it as 0 and ends the body; RFC 9112 wants at least one hex digit), which it
    /// rejects; a line httparse refuses before its end, which this reader refuses once the
    /// line is complete; and a bare LF, which this reader takes as a line end.
    #[test]
    fn chunked_bodies_read_as_httparse_reads_them(
        body in chunked_body(),
        edits in prop::collection::vec(edit(), 0..4),
    ) {
        let (valid, _) = reference(&body);
        prop_assert_eq!(&valid, &ours(&body), "a valid body");
        prop_assert!(matches!(valid, Read::Body(_)));
        let mut broken = body.clone();
        for e in &edits {
            apply(&mut broken, e);
        }
        let (expected, empty_size) = reference(&broken);
        let got = ours(&broken);
        // An edit that removed the CR of a line end leaves a bare LF, which this reader
        // takes as a line end (RFC 9112, section 2.2, lets a recipient) and httparse does
        // not: nothing to compare.
        let bare_lf = broken
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || broken[i - 1] != b'\r'));
        if bare_lf {
            return Ok(());
        }
        if empty_size && expected != Read::Invalid {
            prop_assert_eq!(got, Read::Invalid, "a size line without digits");
        } else if got == Read::Short && expected == Read::Invalid {
            // httparse refuses some lines before they end (a `;` in a trailer name); this
            // reader when the line is complete: once it is, it refuses it too.
            let mut completed = broken.clone();
            completed.extend_from_slice(b"\r\n\r\n");
            prop_assert_eq!(ours(&completed), Read::Invalid, "{:?}", String::from_utf8_lossy(&broken));
        } else {
            prop_assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&broken));
        }
    }
}
