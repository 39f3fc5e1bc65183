//! Retries: which errors, how many, how long between attempts.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Server, response};

/// A keep-alive server that answers request number `n` (1-based) with `reply(n)`.
async fn server_by_number(reply: fn(usize) -> Vec<u8>) -> Server {
    Server::start(move |mut conn| async move {
        while let Some(req) = conn.read_request().await {
            if conn.write(&reply(req.number)).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = server_by_number(|n| match n {
        1 => response("503 Service Unavailable", &[], b"busy"),
        _ => response("200 OK", &[], b"done"),
    })
    .await;
    let transport = support::builder().build().unwrap();

    let body = transport
        .post(server.url("/"))
        .json(&b"{}"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(body.bytes().await.unwrap(), &b"done"[..]);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    for status in [
        "408 Request Timeout",
        "429 Too Many Requests",
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
        "504 Gateway Timeout",
    ] {
        let server = Server::respond_always(response(status, &[], b"")).await;
        let transport = support::builder().max_retries(1).build().unwrap();
        let err = transport.get(server.url("/")).send().await.unwrap_err();
        assert!(err.is_status() && err.is_retryable(), "{status}: {err:?}");
        assert_eq!(server.requests(), 2, "{status} was not retried once");
    }
}

#[tokio::test]
async fn default_is_two_retries_with_growing_backoff() {
    let server = Server::respond_always(response("502 Bad Gateway", &[], b"proxy")).await;
    let transport = vllm_transport::Transport::builder()
        .backoff_base(Duration::from_millis(100))
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport.get(server.url("/")).send().await.unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(server.requests(), 3, "default is 1 attempt + 2 retries");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(err.body().unwrap(), &b"proxy"[..]);
    // Jittered delays in [50, 100] ms and then [100, 200] ms.
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_one_second_is_honoured() {
    let server = server_by_number(|n| match n {
        1 => response(
            "429 Too Many Requests",
            &[("retry-after", "1")],
            b"slow down",
        ),
        _ => response("200 OK", &[], b"ok"),
    })
    .await;
    // The backoff alone would wait at most 50 ms.
    let transport = support::builder().build().unwrap();

    let started = Instant::now();
    let response = transport.get(server.url("/")).send().await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(response.bytes().await.unwrap(), &b"ok"[..]);
    assert_eq!(server.requests(), 2);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let server = server_by_number(|n| match n {
        1 => {
            let date =
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
            response("503 Service Unavailable", &[("retry-after", &date)], b"")
        }
        _ => response("200 OK", &[], b"ok"),
    })
    .await;
    let transport = support::builder().build().unwrap();

    let started = Instant::now();
    transport.get(server.url("/")).send().await.unwrap();
    let elapsed = started.elapsed();
    // The date has a one-second resolution: "now + 2 s" is 1 to 2 s away.
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let server = server_by_number(|n| match n {
        1 => response("503 Service Unavailable", &[("retry-after-ms", "400")], b""),
        _ => response("200 OK", &[], b"ok"),
    })
    .await;
    let transport = support::builder().build().unwrap();

    let started = Instant::now();
    transport.get(server.url("/")).send().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(server.requests(), 2);
    assert!(elapsed >= Duration::from_millis(380), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let server = server_by_number(|n| match n {
        1 => response("503 Service Unavailable", &[("retry-after", "3600")], b""),
        _ => response("200 OK", &[], b"ok"),
    })
    .await;
    let transport = support::builder()
        .retry_after_max(Duration::from_millis(100))
        .build()
        .unwrap();

    let started = Instant::now();
    transport.get(server.url("/")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn no_retry_when_the_wait_would_pass_the_total_timeout() {
    let server = Server::respond_always(response(
        "503 Service Unavailable",
        &[("retry-after", "30")],
        b"later",
    ))
    .await;
    let transport = support::builder()
        .total_timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    let started = Instant::now();
    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.body().unwrap(), &b"later"[..]);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn zero_retries_means_one_attempt() {
    let server = Server::respond_always(response("503 Service Unavailable", &[], b"")).await;
    let transport = support::builder().max_retries(0).build().unwrap();

    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn per_request_max_retries_overrides_the_transport() {
    let server = Server::respond_always(response("503 Service Unavailable", &[], b"")).await;
    let transport = support::builder().max_retries(0).build().unwrap();

    transport
        .get(server.url("/"))
        .max_retries(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn non_retryable_400_is_returned_at_once_with_its_body() {
    let body = br#"{"error":{"message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}}"#;
    let server = Server::respond_always(response(
        "400 Bad Request",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "abc"),
        ],
        body,
    ))
    .await;
    let transport = support::builder().max_retries(5).build().unwrap();

    let err = transport
        .post(server.url("/v1/score?key=not-for-logs"))
        .json(&b"{}"[..])
        .send()
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 1);
    assert!(err.is_status() && !err.is_retryable());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(err.body().unwrap(), &body[..]);
    assert_eq!(err.headers().unwrap()["x-request-id"], "abc");
    // The request is named, without its query string.
    assert_eq!(err.to_string(), "POST /v1/score: 400 Bad Request");
}

#[tokio::test]
async fn success_is_never_retried() {
    let server = Server::respond_always(response("200 OK", &[("retry-after", "1")], b"ok")).await;
    let transport = support::builder().build().unwrap();
    transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn connect_error_to_a_closed_port_is_retried_then_is_connect() {
    let url = format!("http://127.0.0.1:{}/v1/models", support::closed_port());

    // Without retries: one attempt, quickly.
    let transport = support::builder().max_retries(0).build().unwrap();
    let err = transport.get(url.as_str()).send().await.unwrap_err();
    assert!(
        err.is_connect() && !err.is_timeout() && err.is_retryable(),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "failed to connect to the server");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );

    // With two retries, the backoff delays ([100, 200] ms, then [200, 400] ms) show.
    let transport = support::builder()
        .backoff_base(Duration::from_millis(200))
        .backoff_max(Duration::from_secs(1))
        .max_retries(2)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = transport.get(url.as_str()).send().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_connect(), "{err:?}");
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn connection_closed_before_the_head_is_not_retried() {
    // The request reached the server, which hung up: sending it again could run it twice.
    let server = Server::start(|mut conn| async move {
        let _request = conn.read_request().await;
    })
    .await;
    let transport = support::builder().max_retries(3).build().unwrap();

    let err = transport
        .post(server.url("/"))
        .json(&b"{}"[..])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request(), "{err:?}");
    assert!(!err.is_retryable() && !err.is_connect());
    assert_eq!(server.requests(), 1);
}
