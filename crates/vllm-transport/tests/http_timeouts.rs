//! Each timeout fires, and the error names it.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Server, chunked_head, response};
use vllm_transport::{TimeoutKind, TransportError};

/// A loopback listener that never accepts and whose accept queue is full, so the
/// kernel drops further SYNs and a new connect hangs until the client gives up.
struct FullBacklog {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _fillers: Vec<TcpStream>,
}

impl FullBacklog {
    fn new() -> Option<FullBacklog> {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => fillers.push(stream),
                // This connect hung: the queue is full.
                Err(_) => {
                    return Some(FullBacklog {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    });
                }
            }
        }
        None
    }
}

fn assert_timeout(err: &TransportError, kind: TimeoutKind, after: Duration) {
    assert!(err.is_timeout(), "not a timeout: {err:?}");
    assert_eq!(err.timeout_kind(), Some(kind), "{err:?}");
    assert_eq!(err.timeout_duration(), Some(after));
}

#[tokio::test]
async fn connect_timeout_fires_and_is_named() {
    let Some(backlog) = FullBacklog::new() else {
        panic!("could not fill a loopback accept queue to make connects hang");
    };
    let transport = support::builder()
        .connect_timeout(Duration::from_millis(300))
        .max_retries(0)
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport
        .get(format!("http://{}/", backlog.addr))
        .send()
        .await
        .unwrap_err();

    assert_timeout(&err, TimeoutKind::Connect, Duration::from_millis(300));
    assert!(err.is_connect(), "a connect timeout is a connect error");
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "connect timed out after 300ms");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn connect_timeout_is_retried() {
    let Some(backlog) = FullBacklog::new() else {
        panic!("could not fill a loopback accept queue to make connects hang");
    };
    let transport = support::builder()
        .connect_timeout(Duration::from_millis(200))
        .max_retries(2)
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport
        .get(format!("http://{}/", backlog.addr))
        .send()
        .await
        .unwrap_err();
    assert_timeout(&err, TimeoutKind::Connect, Duration::from_millis(200));
    // Three attempts of 200 ms each.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn response_head_timeout_fires_and_is_named() {
    let server = Server::start(|mut conn| async move {
        let _request = conn.read_request().await;
        // Never answer.
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .response_head_timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport.get(server.url("/")).send().await.unwrap_err();

    assert_timeout(&err, TimeoutKind::ResponseHead, Duration::from_millis(200));
    assert_eq!(err.to_string(), "response head timed out after 200ms");
    assert!(!err.is_connect() && !err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Not retried: the request may have reached the server.
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn idle_timeout_fires_between_body_chunks() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("200 OK", &[])).await.unwrap();
        conn.write_chunk(b"first").await.unwrap();
        // Then silence.
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let mut body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_body();
    assert_eq!(body.next().await.unwrap().unwrap(), &b"first"[..]);
    let err = body.next().await.unwrap().unwrap_err();
    assert_timeout(&err, TimeoutKind::Idle, Duration::from_millis(200));
    assert_eq!(
        err.to_string(),
        "idle timeout: no response body data for 200ms"
    );
    // The stream ends after the error.
    assert!(body.next().await.is_none());
}

#[tokio::test]
async fn idle_timeout_does_not_fire_while_chunks_keep_coming() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("200 OK", &[])).await.unwrap();
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            conn.write_chunk(format!("{i}").as_bytes()).await.unwrap();
        }
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    // Each gap is well under the idle timeout, the whole body well over it.
    let transport = support::builder()
        .idle_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, &b"01234567"[..]);
}

#[tokio::test]
async fn idle_timer_does_not_count_time_the_consumer_spends() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("200 OK", &[])).await.unwrap();
        conn.write_chunk(b"a").await.unwrap();
        // The consumer takes 300 ms over "a", then waits only ~100 ms for "b".
        tokio::time::sleep(Duration::from_millis(400)).await;
        conn.write_chunk(b"b").await.unwrap();
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder()
        .idle_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let mut body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
        // A slow consumer: longer than the idle timeout between polls.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(got, b"ab");
}

#[tokio::test]
async fn total_timeout_fires_while_reading_a_buffered_body() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("200 OK", &[])).await.unwrap();
        // Drip forever: never idle, never done.
        loop {
            if conn.write_chunk(b".").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let transport = support::builder()
        .total_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let started = Instant::now();
    let response = transport.get(server.url("/")).send().await.unwrap();
    let err = response.bytes().await.unwrap_err();
    assert_timeout(&err, TimeoutKind::Total, Duration::from_millis(400));
    assert_eq!(
        err.to_string(),
        "request timed out after 400ms (total timeout)"
    );
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn total_timeout_bounds_the_wait_for_the_head() {
    let server = Server::start(|mut conn| async move {
        let _request = conn.read_request().await;
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .total_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert_timeout(&err, TimeoutKind::Total, Duration::from_millis(200));
}

#[tokio::test]
async fn total_timeout_does_not_cut_off_a_streamed_body() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head(
            "200 OK",
            &[("content-type", "text/event-stream")],
        ))
        .await
        .unwrap();
        for i in 0..6 {
            conn.write_chunk(format!("data: {i}\n\n").as_bytes())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conn.write(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = support::builder()
        .total_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let mut events = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_events();
    let mut data = Vec::new();
    while let Some(event) = events.next().await {
        data.push(event.unwrap().data().to_owned());
    }
    assert_eq!(data, ["0", "1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn per_request_timeout_overrides_the_transport() {
    let server = Server::start(|mut conn| async move {
        let _request = conn.read_request().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = conn.write(&response("200 OK", &[], b"late")).await;
    })
    .await;
    let transport = support::builder()
        .total_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let body = transport
        .get(server.url("/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, &b"late"[..]);
}

#[tokio::test]
async fn huge_timeouts_and_backoff_do_not_panic() {
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            let reply = if req.number == 1 {
                response("503 Service Unavailable", &[], b"")
            } else {
                response("200 OK", &[], b"ok")
            };
            conn.write(&reply).await.unwrap();
        }
    })
    .await;
    let transport = vllm_transport::Transport::builder()
        .connect_timeout(Duration::MAX)
        .response_head_timeout(Duration::MAX)
        .idle_timeout(Duration::MAX)
        .total_timeout(Duration::MAX)
        .backoff_base(Duration::from_millis(1))
        .backoff_max(Duration::MAX)
        .build()
        .unwrap();
    let body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, &b"ok"[..]);
}
