//! Server-Sent Events over real HTTP bodies: framing, cut-offs, decoding errors, drop.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Server, chunked_head};
use tokio::sync::Notify;
use vllm_transport::sse::{Decoder, SseError};
use vllm_transport::{EventStream, TimeoutKind, Transport};

fn sse_head() -> Vec<u8> {
    chunked_head("200 OK", &[("content-type", "text/event-stream")])
}

async fn open(transport: &Transport, server: &Server) -> EventStream {
    transport
        .post(server.url("/v1/chat/completions"))
        .header("accept", "text/event-stream")
        .json(&b"{\"stream\":true}"[..])
        .send()
        .await
        .unwrap()
        .into_events()
}

async fn collect_data(events: &mut EventStream) -> Vec<String> {
    let mut data = Vec::new();
    while let Some(event) = events.next().await {
        data.push(event.unwrap().data().to_owned());
    }
    data
}

#[tokio::test]
async fn sse_over_chunked_encoding_split_at_awkward_boundaries() {
    // "é" is C3 A9 and "€" is E2 82 AC: pieces split them, a CRLF, a field name, and
    // the blank line ending an event.
    let pieces: &[&[u8]] = &[
        b"da",
        b"ta: {\"a\":1}\r",
        b"\n\r",
        b"\n: keep-alive comment\n",
        b"event: delta\nid: 7\ndata: caf\xC3",
        b"\xA9 \xE2\x82",
        b"\xAC\n",
        b"data: second line\n",
        b"\n",
        b"data: [DONE]\n\n",
    ];
    let server = Server::start(move |mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        for piece in pieces {
            conn.write_chunk(piece).await.unwrap();
            // Let each piece arrive on its own.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();

    let mut events = open(&transport, &server).await;
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(
        (first.event(), first.data(), first.id()),
        ("message", "{\"a\":1}", None)
    );
    let second = events.next().await.unwrap().unwrap();
    assert_eq!(second.event(), "delta");
    assert_eq!(second.id(), Some("7"));
    assert_eq!(second.data(), "café €\nsecond line");
    let done = events.next().await.unwrap().unwrap();
    assert_eq!(done.data(), "[DONE]");
    assert_eq!(done.id(), Some("7"), "the last event ID persists");
    assert!(events.next().await.is_none());
    assert_eq!(events.decoder().last_event_id(), "7");
}

#[tokio::test]
async fn sse_split_into_single_bytes_gives_the_same_events() {
    let stream = b"data: one\r\n\r\ndata: two\n\ndata: three\r\rdata: \xF0\x9F\xA6\x80\n\n";
    let server = Server::start(move |mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        for byte in stream.iter() {
            conn.write_chunk(std::slice::from_ref(byte)).await.unwrap();
        }
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;
    assert_eq!(
        collect_data(&mut events).await,
        ["one", "two", "three", "🦀"]
    );
}

#[tokio::test]
async fn body_that_ends_mid_event_is_an_error() {
    // A close-delimited body (no length, no chunking) that stops inside an event: the
    // HTTP layer sees a clean end, the decoder does not.
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
              data: complete\n\ndata: {\"choices\":[{\"delta\":",
        )
        .await
        .unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;

    assert_eq!(events.next().await.unwrap().unwrap().data(), "complete");
    let err = events.next().await.unwrap().unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(!err.is_body() && !err.is_timeout());
    assert!(
        matches!(err.sse_error(), Some(SseError::UnexpectedEof { .. })),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<SseError>().is_some());
    assert!(
        events.next().await.is_none(),
        "the stream ends after an error"
    );
}

#[tokio::test]
async fn body_that_ends_after_a_field_without_blank_line_is_an_error() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: done?\n").await.unwrap();
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;
    let err = events.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err.sse_error(),
        Some(SseError::UnexpectedEof {
            partial_line_len: 0
        })
    ));
}

#[tokio::test]
async fn chunked_body_cut_off_by_the_connection_is_a_body_error() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: one\n\n").await.unwrap();
        // A chunk announced as 0x40 bytes, then the connection closes.
        conn.write(b"40\r\ndata: tw").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;

    assert_eq!(events.next().await.unwrap().unwrap().data(), "one");
    let err = events.next().await.unwrap().unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert!(!err.is_decode() && !err.is_retryable());
    assert_eq!(err.to_string(), "failed to read the response body");
    assert!(std::error::Error::source(&err).is_some());
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn decoder_errors_are_wrapped_with_the_sse_error_as_source() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: small\n\ndata: this event is far too large\n\n")
            .await
            .unwrap();
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_events_with(Decoder::with_max_event_size(8));

    assert_eq!(events.next().await.unwrap().unwrap().data(), "small");
    let err = events.next().await.unwrap().unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(err.sse_error(), Some(&SseError::EventTooLarge { limit: 8 }));
    assert_eq!(err.to_string(), "invalid event stream in the response body");
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn invalid_utf8_is_a_decode_error() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: \xFF\xFE\n\n").await.unwrap();
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;
    let err = events.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err.sse_error(), Some(SseError::InvalidUtf8 { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn idle_timeout_applies_between_events() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: one\n\n").await.unwrap();
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut events = open(&transport, &server).await;
    assert_eq!(events.next().await.unwrap().unwrap().data(), "one");
    let err = events.next().await.unwrap().unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Idle));
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn dropping_the_stream_closes_its_connection() {
    let observed = Arc::new(Notify::new());
    let observed2 = observed.clone();
    let server = Server::start(move |mut conn| {
        let observed = observed2.clone();
        async move {
            if conn.index > 0 {
                // Later connections serve plain requests.
                while conn.read_request().await.is_some() {
                    let _ = conn.write(&support::response("200 OK", &[], b"ok")).await;
                }
                return;
            }
            conn.read_request().await.unwrap();
            conn.write(&sse_head()).await.unwrap();
            conn.write_chunk(b"data: one\n\n").await.unwrap();
            // The stream goes on (nothing more is sent); the client must hang up.
            if conn.observes_close(Duration::from_secs(5)).await {
                observed.notify_one();
            }
        }
    })
    .await;
    let transport = support::builder().build().unwrap();

    let mut events = open(&transport, &server).await;
    assert_eq!(events.next().await.unwrap().unwrap().data(), "one");
    drop(events);

    tokio::time::timeout(Duration::from_secs(5), observed.notified())
        .await
        .expect("the server did not see the connection close after the stream was dropped");

    // The dropped connection was not returned to the pool.
    transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn event_stream_is_a_futures_stream() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&sse_head()).await.unwrap();
        conn.write_chunk(b"data: a\n\ndata: b\n\n").await.unwrap();
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut events = open(&transport, &server).await;
    let mut data = Vec::new();
    while let Some(event) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut events), cx)
    })
    .await
    {
        data.push(event.unwrap().into_data());
    }
    assert_eq!(data, ["a", "b"]);
}

/// A body piece that counts, when dropped, that it was read.
struct Counted(&'static [u8], Arc<std::sync::atomic::AtomicUsize>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Finishing a stream at its last event reads only a little of what follows at once; a body
/// that keeps coming is left to the background drain (which the caller does not wait for).
#[tokio::test(flavor = "current_thread")]
async fn finishing_reads_only_a_little_of_the_rest_at_once() {
    let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut chunks = vec![bytes::Bytes::from_static(b"data: [DONE]\n\n")];
    chunks.extend(
        (0..10_000).map(|_| bytes::Bytes::from_owner(Counted(b": more\n\n", read.clone()))),
    );
    let mut events = EventStream::from_body(vllm_transport::BodyStream::from_chunks(chunks));
    assert_eq!(events.next().await.unwrap().unwrap().data(), "[DONE]");
    events.finish_in_background(Duration::from_secs(1));
    // On this one-thread runtime the background task has not run yet.
    let at_once = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(at_once <= 16, "{at_once} pieces read before returning");
    assert!(events.next().await.is_none());
    // Then the task reads the rest.
    for _ in 0..100 {
        if read.load(std::sync::atomic::Ordering::Relaxed) == 10_000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rest was not drained");
}
