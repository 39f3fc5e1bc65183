//! `http://` requests go over connections the transport reads itself (no connection task):
//! response framing, connection reuse and its limits, stale pooled connections, and bad
//! responses.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Server, chunked_head, response};
use vllm_transport::{Transport, TransportError};

fn chain(err: &TransportError) -> String {
    support::error_chain(err)
}

/// A keep-alive server whose first connection reads the second request and closes without
/// a reply (an idle connection the server closed as the request arrived, or a crash).
async fn server_dropping_request_2() -> Server {
    Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            if conn.index == 0 && req.number == 2 {
                return;
            }
            let body = format!("request {}", req.number);
            conn.write(&response("200 OK", &[], body.as_bytes()))
                .await
                .unwrap();
        }
    })
    .await
}

async fn get_body(transport: &Transport, server: &Server) -> Result<Vec<u8>, TransportError> {
    let response = transport.get(server.url("/x")).send().await?;
    Ok(response.bytes().await?.to_vec())
}

#[tokio::test]
async fn idle_connection_closed_by_the_server_is_not_reused() {
    // Each connection answers one request, then the server closes it.
    let server = Server::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.write(&response("200 OK", &[], b"one")).await.unwrap();
        }
    })
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    for _ in 0..3 {
        assert_eq!(get_body(&transport, &server).await.unwrap(), b"one");
        // Let the close reach the client before the next checkout.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn request_on_a_pooled_connection_closed_without_reply_goes_out_again() {
    // A GET the server cannot have acted on goes out again, once, on a new connection.
    let server = server_dropping_request_2().await;
    let transport = support::builder().max_retries(0).build().unwrap();
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"request 1");
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"request 3");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn new_connection_closed_without_reply_is_an_error() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await;
    })
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    let err = get_body(&transport, &server).await.unwrap_err();
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert!(
        chain(&err).contains("closed before the response head"),
        "{}",
        chain(&err)
    );
    assert_eq!(server.requests(), 1, "sent once, not again");
}

#[tokio::test]
async fn connection_close_response_is_not_reused() {
    let server =
        Server::respond_always(response("200 OK", &[("connection", "close")], b"bye")).await;
    let transport = support::builder().build().unwrap();
    for _ in 0..2 {
        assert_eq!(get_body(&transport, &server).await.unwrap(), b"bye");
    }
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn body_without_length_ends_at_close() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await;
        conn.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nhello ")
            .await
            .unwrap();
        conn.write(b"world").await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"hello world");
    // Read to its close, so not reused.
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"hello world");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    let mut reply =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n".to_vec();
    reply.extend_from_slice(&response("200 OK", &[("x-final", "yes")], b"ok"));
    let server = Server::respond_always(reply).await;
    let transport = support::builder().build().unwrap();
    let response = transport.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.headers()["x-final"], "yes");
    assert_eq!(&response.bytes().await.unwrap()[..], b"ok");
}

#[tokio::test]
async fn chunked_body_in_any_segmentation_then_reuse() {
    // Many chunks in one segment, a chunk split across segments (and across its CRLF), a
    // chunk extension and a trailer; then the connection serves a second request.
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            conn.write(&chunked_head("200 OK", &[])).await.unwrap();
            conn.write(b"3\r\nabc\r\n2\r\nde\r\n1;name=v\r\nf\r\n4\r\nghi")
                .await
                .unwrap();
            conn.write(b"j\r").await.unwrap();
            conn.write(b"\n5\r\nklmno\r\n").await.unwrap();
            let last = format!("{:x}\r\n#{}\r\n0\r\nx-trailer: 1\r\n\r\n", 2, req.number);
            conn.write(last.as_bytes()).await.unwrap();
        }
    })
    .await;
    let transport = support::builder().build().unwrap();
    assert_eq!(
        get_body(&transport, &server).await.unwrap(),
        b"abcdefghijklmno#1"
    );
    assert_eq!(
        get_body(&transport, &server).await.unwrap(),
        b"abcdefghijklmno#2"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn bytes_after_the_response_prevent_reuse() {
    let mut reply = response("200 OK", &[], b"ok");
    reply.extend_from_slice(b"unexpected");
    let server = Server::respond_always(reply).await;
    let transport = support::builder().build().unwrap();
    for _ in 0..2 {
        assert_eq!(get_body(&transport, &server).await.unwrap(), b"ok");
    }
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn malformed_responses_are_clear_errors() {
    // Each failure found before the body says what it was in `Display` itself (not only in
    // `source()`), so a log line with the error alone tells them apart.
    let before_body: [(&[u8], &str); 6] = [
        (
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "the server's answer is not an HTTP/1.x response (invalid HTTP version)",
        ),
        (
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            "the server's answer is not an HTTP/1.x response (invalid response status)",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabc",
            "invalid HTTP response head: conflicting content-length values",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "the response's transfer-encoding `gzip, chunked` is not supported",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            "the response's transfer-encoding `gzip, chunked` is not supported",
        ),
        (b"", "the server closed the connection without answering"),
    ];
    for (reply, expected) in before_body {
        let server = Server::start(move |mut conn| async move {
            if conn.read_request().await.is_some() {
                let _ = conn.write(reply).await;
            }
        })
        .await;
        let transport = support::builder().max_retries(0).build().unwrap();
        let err = get_body(&transport, &server).await.unwrap_err();
        assert!(err.is_request(), "{err:?}");
        assert!(err.to_string().starts_with(expected), "{err}");
    }
    let cases: [(&[u8], &str); 4] = [
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "invalid response status"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabc",
            "conflicting content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunked body",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
            "switched protocols",
        ),
    ];
    for (reply, expected) in cases {
        let server = Server::respond_always(reply.to_vec()).await;
        let transport = support::builder().max_retries(0).build().unwrap();
        let err = get_body(&transport, &server).await.unwrap_err();
        assert!(chain(&err).contains(expected), "{}", chain(&err));
    }
}

#[tokio::test]
async fn oversized_response_heads_are_refused() {
    let big = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "y".repeat(70_000));
    let mut many = "HTTP/1.1 200 OK\r\n".to_owned();
    for i in 0..200 {
        many.push_str(&format!("x-filler-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    for (reply, expected) in [
        (big, "the response head is larger than 64 KiB"),
        (many, "the response head has more than 128 headers"),
    ] {
        let server = Server::respond_always(reply.into_bytes()).await;
        let transport = support::builder().max_retries(0).build().unwrap();
        let err = get_body(&transport, &server).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[tokio::test]
async fn request_line_host_and_a_large_body_arrive_exactly() {
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            let summary = format!(
                "{} {} host={} len={} sum={}",
                req.method,
                req.path,
                req.header("host").unwrap_or("-"),
                req.body.len(),
                req.body.iter().map(|b| u64::from(*b)).sum::<u64>()
            );
            conn.write(&response("200 OK", &[], summary.as_bytes()))
                .await
                .unwrap();
        }
    })
    .await;
    let transport = support::builder().build().unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for body in [body, b"{}".to_vec()] {
        let len = body.len();
        let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
        let got = transport
            .post(server.url("/v1/x?y=1"))
            .json(body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let expected = format!("POST /v1/x?y=1 host={} len={len} sum={sum}", server.addr());
        assert_eq!(String::from_utf8_lossy(&got), expected);
    }
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_post_on_a_pooled_connection_closed_without_reply_goes_out_again_once() {
    // A POST on a kept-alive connection the server closes as the request arrives (its
    // keep-alive timeout, as uvicorn's 5 s): sent again once, on a new connection, even with
    // retries off; an inference request is safe to send twice.
    let server = server_dropping_request_2().await;
    let transport = support::builder().max_retries(0).build().unwrap();
    let post = || {
        transport
            .post(server.url("/v1/completions"))
            .json("{}")
            .send()
    };
    let first = post().await.unwrap().bytes().await.unwrap();
    assert_eq!(&first[..], b"request 1");
    let second = post().await.unwrap().bytes().await.unwrap();
    assert_eq!(
        &second[..],
        b"request 3",
        "request 2 died with its connection"
    );
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn a_post_is_sent_again_only_once() {
    // Every connection answers its first request and drops the next one unanswered: the
    // second POST dies on the reused connection, then once more on the new one (its first
    // request there, answered) — so it succeeds; a new connection that drops a request
    // unanswered is an error, not a third try.
    let server = Server::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            if conn.index % 2 == 1 {
                return;
            }
            conn.write(&response("200 OK", &[], b"ok")).await.unwrap();
            conn.read_request().await;
        }
    })
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    let post = || {
        transport
            .post(server.url("/v1/completions"))
            .json("{}")
            .send()
    };
    assert_eq!(&post().await.unwrap().bytes().await.unwrap()[..], b"ok");
    // Reused connection 0 drops it; new connection 1 drops it too: an error, 3 requests.
    let err = post().await.unwrap_err();
    assert!(
        chain(&err).contains("closed before the response head"),
        "{}",
        chain(&err)
    );
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn request_is_not_sent_again_once_any_response_byte_arrived() {
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            if conn.index == 0 && req.number == 2 {
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
                return;
            }
            conn.write(&response("200 OK", &[], b"ok")).await.unwrap();
        }
    })
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"ok");
    assert!(get_body(&transport, &server).await.is_err());
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn url_with_a_query_and_no_path_gets_an_origin_form_target() {
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            conn.write(&response("200 OK", &[], req.path.as_bytes()))
                .await
                .unwrap();
        }
    })
    .await;
    let transport = support::builder().build().unwrap();
    let url = format!("http://{}?model=x", server.addr());
    let target = transport.get(url).send().await.unwrap().bytes().await;
    assert_eq!(&target.unwrap()[..], b"/?model=x");
}

#[tokio::test]
async fn chunked_trailers_come_out_as_a_trailers_frame() {
    use http_body_util::BodyExt;

    let mut reply = chunked_head("200 OK", &[("trailer", "x-checksum")]);
    reply.extend_from_slice(b"5\r\nhello\r\n0\r\nx-checksum: 42\r\n\r\n");
    let server = Server::respond_always(reply).await;
    let transport = support::builder().build().unwrap();
    let body = transport.get(server.url("/")).send().await.unwrap();
    let collected = body.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "42");
    assert_eq!(&collected.to_bytes()[..], b"hello");
    // The trailers were the end of the body: the connection is reused.
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"hello");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn an_answer_before_a_large_body_was_read_is_delivered() {
    // The server answers 413 after the head without reading the 8 MiB body, and keeps the
    // connection open: the client stops writing and returns the status.
    let server = Server::start(|mut conn| async move {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        conn.write(&response("413 Payload Too Large", &[], b"too large"))
            .await
            .unwrap();
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    let err = transport
        .post(server.url("/v1/audio/transcriptions"))
        .body(vec![b'x'; 8 << 20])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(413), "{err}");
    assert_eq!(err.body().map(|b| &b[..]), Some(&b"too large"[..]));
}

#[tokio::test]
async fn a_chunk_announcing_exabytes_is_streamed_not_buffered() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await;
        let mut reply = chunked_head("200 OK", &[]);
        reply.extend_from_slice(b"ffffffffffffffff\r\nabc");
        conn.write(&reply).await.unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_body();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"abc");
    assert!(body.next().await.unwrap().unwrap_err().is_body());
}

#[tokio::test]
async fn idle_connections_the_server_closed_are_closed_by_the_pool() {
    // The server answers, then half-closes the connection (as uvicorn does after its 5 s
    // keep-alive). Without another request, the pool notices within its check interval
    // and closes its side, which the server sees.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let closed_tx = std::sync::Mutex::new(Some(closed_tx));
    let server = Server::start(move |mut conn| {
        let tx = closed_tx.lock().unwrap().take();
        async move {
            use tokio::io::AsyncWriteExt;
            conn.read_request().await;
            conn.write(&response("200 OK", &[], b"ok")).await.unwrap();
            conn.stream.shutdown().await.unwrap();
            let seen = conn
                .observes_close(std::time::Duration::from_secs(15))
                .await;
            if let Some(tx) = tx {
                let _ = tx.send(seen);
            }
        }
    })
    .await;
    let transport = support::builder().build().unwrap();
    assert_eq!(get_body(&transport, &server).await.unwrap(), b"ok");
    assert!(
        closed_rx.await.unwrap(),
        "the pool kept the closed connection"
    );
}
