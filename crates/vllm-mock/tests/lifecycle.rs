//! Starting, addressing, sharing and stopping the server.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};

use support::{bounded, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vllm_client::{VllmClient, json};
use vllm_mock::{MockServer, MockServerBuilder};

#[test]
fn the_server_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<MockServer>();
    check::<MockServerBuilder>();
    check::<vllm_mock::Behavior>();
    check::<vllm_mock::RecordedRequest>();
}

#[tokio::test]
async fn it_listens_on_a_free_loopback_port() {
    bounded(async {
        let a = MockServer::start().await.unwrap();
        let b = MockServer::start().await.unwrap();
        assert_eq!(a.addr().ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(a.addr().port(), 0);
        assert_ne!(a.addr().port(), b.addr().port());
        assert_eq!(
            a.base_url(),
            format!("http://127.0.0.1:{}/v1", a.addr().port())
        );
        assert_eq!(
            a.url("/health"),
            format!("http://127.0.0.1:{}/health", a.addr().port())
        );
    })
    .await;
}

#[tokio::test]
async fn an_unspecified_address_is_reached_through_loopback() {
    bounded(async {
        let mock = MockServer::builder()
            .addr(SocketAddr::from(([0, 0, 0, 0], 0)))
            .start()
            .await
            .unwrap();
        assert!(mock.base_url().starts_with("http://127.0.0.1:"));
        assert_eq!(raw(mock.addr(), "GET", "/health", None).await.status, 200);

        // A port that is taken is an error, not a panic.
        let taken = MockServer::builder().port(mock.addr().port()).start().await;
        assert_eq!(taken.unwrap_err().kind(), ErrorKind::AddrInUse);
    })
    .await;
}

#[tokio::test]
async fn dropping_the_server_closes_the_listener_and_open_connections() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let addr = mock.addr();
        // A kept-alive connection that has been answered once.
        let mut open = TcpStream::connect(addr).await.unwrap();
        open.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = open.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

        drop(mock);

        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // The open connection was closed too: reading gives its end.
        let n = open.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_from_a_multi_thread_runtime() {
    bounded(async {
        let mock = MockServer::start().await.unwrap();
        let client = VllmClient::new(mock.base_url());
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let text = format!("message number {i}");
                    let response = client
                        .chat
                        .completions()
                        .create()
                        .model("echo")
                        .messages(json!([{"role": "user", "content": text}]))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.content.as_deref(), Some(text.as_str()));
                    response.id
                })
            })
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 16, "ids are unique");
        assert_eq!(mock.requests().len(), 16);
    })
    .await;
}

#[test]
fn usable_without_a_test_runtime_of_its_own() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime.block_on(MockServer::start()).unwrap();
    let response = runtime.block_on(raw(mock.addr(), "GET", "/version", None));
    assert_eq!(response.status, 200);
    // Dropped outside any runtime.
    drop(runtime);
    drop(mock);
}
