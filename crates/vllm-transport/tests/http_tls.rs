//! TLS: certificate verification, the opt-out, and HTTP/2 negotiated through ALPN.
//!
//! The server uses a self-signed certificate for `localhost` / `127.0.0.1` (in
//! `tests/support/tls/`), served by hyper's HTTP/1 + HTTP/2 server over tokio-rustls.
#![cfg(feature = "rustls")]
#![allow(clippy::unwrap_used)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

struct TlsServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS acceptor with the test certificate, offering these ALPN protocols.
fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let cert = CertificateDer::from(include_bytes!("support/tls/cert.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("support/tls/key.der").to_vec(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Answers every request with the HTTP version it came over, e.g. `HTTP/2.0`.
async fn start_tls_server() -> TlsServer {
    let acceptor = tls_acceptor(&[b"h2", b"http/1.1"]);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tasks.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let version = format!("{:?}", req.version());
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(version))))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsServer {
        addr,
        connections,
        task,
    }
}

#[tokio::test]
async fn https_negotiates_http2_and_multiplexes_one_connection() {
    let server = start_tls_server().await;
    let transport = support::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/models", server.addr.port());

    let response = transport.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.bytes().await.unwrap(), &b"HTTP/2.0"[..]);

    // Concurrent requests share the one HTTP/2 connection.
    let mut tasks = JoinSet::new();
    for _ in 0..4 {
        let transport = transport.clone();
        let url = url.clone();
        tasks.spawn(async move {
            transport
                .get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        });
    }
    while let Some(body) = tasks.join_next().await {
        assert_eq!(body.unwrap(), &b"HTTP/2.0"[..]);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn self_signed_certificate_is_rejected_by_default() {
    let server = start_tls_server().await;
    let transport = support::builder().max_retries(2).build().unwrap();
    let url = format!("https://localhost:{}/", server.addr.port());

    let err = transport.get(url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.is_retryable(), "a rejected certificate is not retried");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // The rustls error is in the source chain.
    let chain = support::error_chain(&err);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

/// A TLS server speaking HTTP/1.1 by hand: every connection answers its first request (kept
/// alive) and closes on the second without a byte of an answer, as a server whose keep-alive
/// timeout fires just as the request arrives.
async fn start_tls_server_closing_request_2() -> TlsServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor = tls_acceptor(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tasks.spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                for number in 1.. {
                    // Read one request: its head, and its body by Content-Length.
                    let head_end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut piece = [0u8; 4096];
                        match tls.read(&mut piece).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&piece[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + length {
                        let mut piece = [0u8; 4096];
                        match tls.read(&mut piece).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&piece[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    if number == 2 {
                        let _ = tls.shutdown().await;
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if tls.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    TlsServer {
        addr,
        connections,
        task,
    }
}

#[tokio::test]
async fn https_post_on_a_connection_closed_without_an_answer_goes_out_again_once() {
    let server = start_tls_server_closing_request_2().await;
    let transport = support::builder()
        .danger_accept_invalid_certs(true)
        .max_retries(0)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/completions", server.addr.port());
    for _ in 0..2 {
        let response = transport
            .post(url.as_str())
            .json("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), http::Version::HTTP_11);
        assert_eq!(response.bytes().await.unwrap(), &b"ok"[..]);
    }
    // The second POST died with the first connection and went out again on a second one.
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}
