//! The error type, status errors, body errors, builder errors and secret hygiene.
#![allow(clippy::unwrap_used)]

mod support;

use std::error::Error as _;
use std::time::Duration;

use support::{Server, chunked_head, response};
use vllm_transport::{Transport, TransportError};

const KEY: &str = "sk-test-0123456789-very-secret";

#[test]
fn transport_error_is_send_sync_static_and_small() {
    fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}
    assert_traits::<TransportError>();
    assert!(std::mem::size_of::<TransportError>() <= 16);
    assert_eq!(
        std::mem::size_of::<TransportError>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<Result<(), TransportError>>(),
        std::mem::size_of::<usize>()
    );
}

#[tokio::test]
async fn api_key_is_sent_but_never_shown() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = Server::start(move |mut conn| {
        let tx = tx.lock().unwrap().take();
        async move {
            let req = conn.read_request().await.unwrap();
            let _ = conn
                .write(&response(
                    "401 Unauthorized",
                    &[],
                    br#"{"error":"Unauthorized"}"#,
                ))
                .await;
            if let Some(tx) = tx {
                tx.send(req.header("authorization").map(str::to_owned))
                    .unwrap();
            }
        }
    })
    .await;

    let builder = support::builder()
        .api_key(KEY)
        .default_header("x-api-key", KEY);
    let builder_debug = format!("{builder:?}");
    let transport = builder.build().unwrap();
    let request = transport
        .get(server.url("/"))
        .header("proxy-authorization", KEY);
    let request_debug = format!("{request:?}");
    let err = request.send().await.unwrap_err();

    // The key reached the server as a bearer token.
    let sent = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.as_deref(), Some(format!("Bearer {KEY}").as_str()));

    // A connect error from a transport holding the key.
    let connect_err = transport
        .get(format!("http://127.0.0.1:{}/", support::closed_port()))
        .max_retries(0)
        .send()
        .await
        .unwrap_err();

    let mut shown = vec![
        builder_debug,
        request_debug,
        format!("{transport:?}"),
        format!("{transport:#?}"),
        format!("{err:?}"),
        err.to_string(),
        format!("{connect_err:?}"),
        connect_err.to_string(),
    ];
    let mut source = connect_err.source();
    while let Some(cause) = source {
        shown.push(format!("{cause:?} {cause}"));
        source = cause.source();
    }
    for text in &shown {
        assert!(!text.contains("very-secret"), "the API key leaked: {text}");
    }
    assert!(format!("{transport:?}").contains("Sensitive"));
}

#[test]
fn invalid_api_key_is_a_builder_error_that_does_not_show_it() {
    let err = Transport::builder()
        .api_key("sk-very-secret\nInjected: header")
        .build()
        .unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    assert!(!format!("{err:?} {err}").contains("very-secret"));
}

#[test]
fn invalid_header_is_kept_and_returned_by_build() {
    let err = Transport::builder()
        .default_header("bad header", "x")
        .user_agent("also\nbad")
        .build()
        .unwrap_err();
    assert!(err.is_builder());
    assert_eq!(
        err.to_string(),
        "invalid header name",
        "the first error wins"
    );
}

#[tokio::test]
async fn invalid_urls_are_builder_errors() {
    let transport = support::builder().build().unwrap();
    for url in [
        "not a url",
        "ftp://example.com/",
        "/v1/models",
        "http:///path",
    ] {
        let err = transport.get(url).send().await.unwrap_err();
        assert!(err.is_builder(), "{url}: {err:?}");
        assert!(!err.is_connect() && !err.is_retryable());
    }
    let err = transport
        .get("http://example.com/")
        .header("bad header", "x")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder());
}

#[tokio::test]
async fn status_error_keeps_status_headers_and_body() {
    let body = b"<html><body>502 Bad Gateway</body></html>";
    let server = Server::respond_always(response(
        "502 Bad Gateway",
        &[("content-type", "text/html")],
        body,
    ))
    .await;
    let transport = support::builder().max_retries(0).build().unwrap();
    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert!(err.is_status() && err.is_retryable());
    assert_eq!(err.status(), Some(http::StatusCode::BAD_GATEWAY));
    assert_eq!(err.headers().unwrap()["content-type"], "text/html");
    assert_eq!(err.body().unwrap(), &body[..]);
    assert!(err.source().is_none());
    assert!(format!("{err:?}").contains("502 Bad Gateway</body>"));
}

#[tokio::test]
async fn status_error_body_is_bounded() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("500 Internal Server Error", &[]))
            .await
            .unwrap();
        // Far more than the limit, then silence: the transport must stop reading.
        for _ in 0..64 {
            if conn.write_chunk(&[b'x'; 1024]).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .max_retries(0)
        .max_error_body_size(1000)
        .build()
        .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        transport.get(server.url("/")).send(),
    )
    .await
    .expect("reading the error body was not bounded")
    .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert_eq!(err.body().unwrap().len(), 1000);
}

#[tokio::test]
async fn status_error_keeps_a_partial_body_when_it_stalls() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("503 Service Unavailable", &[]))
            .await
            .unwrap();
        conn.write_chunk(b"{\"error\":").await.unwrap();
        tokio::time::sleep(support::TEST_TIMEOUT).await;
    })
    .await;
    let transport = support::builder()
        .max_retries(0)
        .idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.body().unwrap(), &b"{\"error\":"[..]);
}

#[tokio::test]
async fn buffered_body_is_bounded_by_the_max_body_size() {
    // Announced too large: refused before reading.
    let server = Server::respond_always(response("200 OK", &[], &[b'x'; 100])).await;
    let transport = support::builder().max_body_size(99).build().unwrap();
    let err = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "response body is larger than the limit of 99 bytes"
    );

    // Exactly the limit is fine.
    let transport = support::builder().max_body_size(100).build().unwrap();
    let body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 100);

    // Growing past the limit without a length.
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(&chunked_head("200 OK", &[])).await.unwrap();
        for _ in 0..10 {
            if conn.write_chunk(&[b'y'; 30]).await.is_err() {
                return;
            }
        }
        let _ = conn.write(b"0\r\n\r\n").await;
    })
    .await;
    let transport = support::builder().max_body_size(99).build().unwrap();
    let err = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(err.is_body(), "{err:?}");
}

#[tokio::test]
async fn body_cut_off_before_its_length_is_a_body_error() {
    let server = Server::start(|mut conn| async move {
        conn.read_request().await.unwrap();
        conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
            .await
            .unwrap();
    })
    .await;
    let transport = support::builder().build().unwrap();
    let response = transport.get(server.url("/")).send().await.unwrap();
    let err = response.bytes().await.unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert!(!err.is_retryable() && !err.is_status() && !err.is_timeout());
    assert!(err.source().is_some(), "the hyper error is the source");
}

#[tokio::test]
async fn streamed_body_yields_chunks_as_they_arrive() {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let go_rx = std::sync::Mutex::new(Some(go_rx));
    let server = Server::start(move |mut conn| {
        let go_rx = go_rx.lock().unwrap().take();
        async move {
            conn.read_request().await.unwrap();
            conn.write(&chunked_head("200 OK", &[])).await.unwrap();
            conn.write_chunk(b"first").await.unwrap();
            // The second chunk is only sent once the client has seen the first.
            go_rx.unwrap().await.unwrap();
            conn.write_chunk(b"second").await.unwrap();
            conn.write(b"0\r\n\r\n").await.unwrap();
        }
    })
    .await;
    let transport = support::builder().build().unwrap();
    let mut body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .into_body();
    assert_eq!(body.next().await.unwrap().unwrap(), &b"first"[..]);
    go_tx.send(()).unwrap();
    assert_eq!(body.next().await.unwrap().unwrap(), &b"second"[..]);
    assert!(body.next().await.is_none());
    assert!(http_body::Body::is_end_stream(&body));
}

#[tokio::test]
async fn response_exposes_status_version_and_headers() {
    let server =
        Server::respond_always(response("201 Created", &[("x-request-id", "r-1")], b"{}")).await;
    let transport = support::builder().build().unwrap();
    let response = transport
        .post(server.url("/"))
        .json(&b"{}"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::CREATED);
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.headers()["x-request-id"], "r-1");
    assert!(format!("{response:?}").contains("201"));
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn https_url_without_a_server_is_a_connect_error() {
    let transport = support::builder().max_retries(0).build().unwrap();
    let url = format!("https://127.0.0.1:{}/v1/models", support::closed_port());
    let err = transport.get(url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn https_to_a_plain_http_server_is_a_connect_error_and_not_retried() {
    // The TLS handshake fails against a server speaking plain HTTP.
    let server = Server::start(|mut conn| async move {
        let _ = conn
            .write(&response("400 Bad Request", &[], b"plain http"))
            .await;
    })
    .await;
    let transport = support::builder().max_retries(2).build().unwrap();
    let url = format!("https://{}/", server.addr());
    let err = transport.get(url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(
        !err.is_retryable(),
        "a TLS failure is not transient: {err:?}"
    );
    assert_eq!(server.connections(), 1);
}

#[cfg(not(feature = "rustls"))]
#[tokio::test]
async fn https_without_the_rustls_feature_is_a_clear_builder_error() {
    let transport = support::builder().build().unwrap();
    let err = transport
        .get("https://localhost/")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    assert!(err.to_string().contains("`rustls` feature"), "{err}");
}

#[cfg(feature = "rustls")]
#[test]
fn tls_configurations_build() {
    use vllm_transport::TlsRoots;
    Transport::builder()
        .tls_roots(TlsRoots::WebPki)
        .build()
        .unwrap();
    Transport::builder()
        .tls_roots(TlsRoots::Native)
        .build()
        .unwrap();
    Transport::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
}
