//! Proxies set on the builder (`ClientBuilder::proxy`): `http://` targets forwarded in
//! absolute form, `https://` targets through a `CONNECT` tunnel with TLS inside, credentials
//! as `Proxy-Authorization` and never shown, and a `407`. Every test checks in the proxy's
//! own records that the request went through it. (The environment's variables are tested in
//! `proxy_env.rs`, a binary of its own.)
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use support::proxy::Proxy;
use support::tls::{Answer, TestCa, TlsServer};
use support::{CHAT_JSON, Reply, Server, bounded, sse_hello};
use vllm_client::{ErrorKind, MessageStream, StreamEvent, VllmClient, VllmError, json};

const USERINFO: &str = "user:pa55word";
const PASSWORD: &str = "pa55word";

/// `Basic <base64 of user:pa55word>`.
fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(USERINFO)
    )
}

async fn chat(
    client: &VllmClient,
    text: &str,
) -> Result<vllm_client::ChatCompletionResponse, VllmError> {
    client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": text}]))
        .send()
        .await
}

async fn open(client: &VllmClient, text: &str) -> Result<MessageStream, VllmError> {
    client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": text}]))
        .send_stream()
        .await
}

async fn read_content(stream: &mut MessageStream) -> Result<String, VllmError> {
    let mut text = String::new();
    while let Some(event) = stream.try_next().await? {
        if let StreamEvent::Content(t) = event {
            text.push_str(&t);
        }
    }
    Ok(text)
}

/// An error and its sources, joined.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Fails if `text` (what `what` printed) holds the password or the encoded credentials.
fn assert_no_credentials(what: &str, text: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(USERINFO);
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
    assert!(
        !text.contains(&encoded),
        "{what} shows the credentials: {text}"
    );
}

/// Fails if the error's Display, Debug or source chain holds the credentials.
fn assert_error_hides_credentials(what: &str, err: &VllmError) {
    assert_no_credentials(&format!("{what} (Display)"), &err.to_string());
    assert_no_credentials(&format!("{what} (Debug)"), &format!("{err:?}"));
    assert_no_credentials(&format!("{what} (Display, alternate)"), &format!("{err:#}"));
    assert_no_credentials(&format!("{what} (Debug, alternate)"), &format!("{err:#?}"));
    assert_no_credentials(&format!("{what} (sources)"), &error_chain(err));
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn target_port(server: &Server) -> u16 {
    server
        .base_url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/v1")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_http_target_is_forwarded_by_the_proxy_in_absolute_form_and_streams_through_it() {
    bounded(async {
        let events = sse_hello();
        let target = Server::start(move |_, n| match n {
            0 => Reply::with_headers(
                200,
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", "req-fwd"),
                ],
                CHAT_JSON,
            ),
            _ => Reply::sse_events(&events, Duration::from_millis(20)),
        })
        .await;
        let proxy = Proxy::start().await;
        let client = VllmClient::builder()
            .base_url(&target.base_url)
            .proxy(proxy.url())
            .max_retries(0)
            .build();

        let response = chat(&client, "hi").await.unwrap();
        assert_eq!(response.content.as_deref(), Some("hi"));
        assert_eq!(response.request_id(), Some("req-fwd"));

        let port = target_port(&target);
        let forwarded = proxy.forwarded();
        assert_eq!(forwarded.len(), 1, "{forwarded:?}");
        let line = format!("POST http://127.0.0.1:{port}/v1/chat/completions HTTP/1.1");
        assert_eq!(forwarded[0].request_line, line);
        assert!(
            proxy.client_bytes()[0].starts_with(format!("{line}\r\n").as_bytes()),
            "the absolute form is what went on the wire"
        );
        assert_eq!(forwarded[0].proxy_authorization(), None);
        assert!(proxy.connects().is_empty());

        // The target got it from the proxy, in origin form.
        let requests = target.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path, "/v1/chat/completions");
        assert_eq!(
            requests[0].header("host"),
            Some(&*format!("127.0.0.1:{port}"))
        );
        assert_eq!(requests[0].json()["messages"][0]["content"], "hi");

        // A stream, through the same proxy.
        let mut stream = open(&client, "stream").await.unwrap();
        assert_eq!(read_content(&mut stream).await.unwrap(), "Hello!");
        let whole = stream.final_response().unwrap();
        assert_eq!(whole.content.as_deref(), Some("Hello!"));
        assert_eq!(whole.finish_reason.as_deref(), Some("stop"));
        let forwarded = proxy.forwarded();
        assert_eq!(forwarded.len(), 2);
        assert_eq!(forwarded[1].request_line, line);
        assert_eq!(target.requests().len(), 2);
        assert_eq!(
            proxy.connections(),
            1,
            "the connection to the proxy is pooled and reused"
        );
    })
    .await;
}

#[tokio::test]
async fn an_https_target_is_tunnelled_with_connect_and_the_proxy_reads_only_the_connect() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let events = sse_hello();
        let server = TlsServer::start(&ca.server_identity(), move |_, n| match n {
            0 => Answer::json(200, CHAT_JSON),
            _ => Answer::sse_events(&events, Duration::from_millis(20)),
        })
        .await;
        let proxy = Proxy::start().await;
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(ca.pem())
            .proxy(proxy.url())
            .max_retries(0)
            .build();

        let marker = "a-secret-only-the-server-reads";
        let response = chat(&client, marker).await.unwrap();
        assert_eq!(response.content.as_deref(), Some("hi"));
        let mut stream = open(&client, marker).await.unwrap();
        assert_eq!(read_content(&mut stream).await.unwrap(), "Hello!");
        assert_eq!(
            stream.final_response().unwrap().content.as_deref(),
            Some("Hello!")
        );

        // The proxy saw one CONNECT to the server's address and nothing else it could read.
        let port = server.port();
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].is_connect());
        assert_eq!(
            seen[0].request_line,
            format!("CONNECT 127.0.0.1:{port} HTTP/1.1")
        );
        assert_eq!(seen[0].status, 200);
        assert_eq!(proxy.connections(), 1);
        let bytes = &proxy.client_bytes()[0];
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&bytes[..head_end]);
        assert!(
            head.starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")),
            "{head}"
        );
        let tunnelled = &bytes[head_end..];
        assert!(
            tunnelled.len() > 200,
            "the TLS traffic went through the tunnel"
        );
        for clear in [marker.as_bytes(), b"chat/completions", b"CONNECT", b"POST"] {
            assert!(
                !tunnelled.windows(clear.len()).any(|w| w == clear),
                "the proxy could read {:?} inside the tunnel",
                String::from_utf8_lossy(clear)
            );
        }

        // The server got both requests, over HTTP/2 inside the tunnel.
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        for request in &requests {
            assert_eq!(request.version, "HTTP/2.0");
            assert_eq!(request.path, "/v1/chat/completions");
            assert_eq!(request.json()["messages"][0]["content"], marker);
            assert_eq!(request.header("proxy-authorization"), None);
        }
        assert_eq!(server.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn proxy_credentials_go_as_basic_proxy_authorization_on_forwarded_requests_and_connects() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let tls = TlsServer::always(&ca.server_identity(), Answer::json(200, CHAT_JSON)).await;
        let plain = Server::always(Reply::json(200, CHAT_JSON)).await;
        let proxy = Proxy::requiring(&basic()).await;
        let proxy_url = proxy.url_with(USERINFO);
        let client_of = |base_url: String| {
            VllmClient::builder()
                .base_url(base_url)
                .add_root_certificate(ca.pem())
                .proxy(&proxy_url)
                .max_retries(0)
                .build()
        };

        let response = chat(&client_of(plain.base_url.clone()), "hi")
            .await
            .unwrap();
        assert_eq!(response.content.as_deref(), Some("hi"));
        let response = chat(&client_of(tls.url("127.0.0.1")), "hi").await.unwrap();
        assert_eq!(response.content.as_deref(), Some("hi"));

        let seen = proxy.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(!seen[0].is_connect());
        assert!(seen[1].is_connect());
        for request in &seen {
            assert_eq!(
                request.proxy_authorization(),
                Some(&*basic()),
                "{request:?}"
            );
            assert_eq!(request.status, 200);
        }
        assert_eq!(basic(), "Basic dXNlcjpwYTU1d29yZA==");
        // The targets never see the proxy's credentials.
        assert_eq!(plain.requests()[0].header("proxy-authorization"), None);
        assert_eq!(tls.requests()[0].header("proxy-authorization"), None);
    })
    .await;
}

#[tokio::test]
async fn proxy_credentials_never_appear_in_debug_output_or_errors() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let proxy = Proxy::start().await;
        let builder = VllmClient::builder()
            .base_url("http://127.0.0.1:9/v1")
            .proxy(proxy.url_with(USERINFO));
        let shown = format!("{builder:?}");
        assert_no_credentials("the builder's Debug", &shown);
        assert!(shown.contains(&proxy.addr.to_string()), "{shown}");
        assert_no_credentials("the builder's Debug", &format!("{builder:#?}"));
        let client = builder.build();
        assert_no_credentials("the client's Debug", &format!("{client:?}"));
        assert_no_credentials("the client's Debug", &format!("{client:#?}"));
        let transport = vllm_transport::Transport::builder().proxy(proxy.url_with(USERINFO));
        assert_no_credentials("the transport builder's Debug", &format!("{transport:?}"));

        // A status error from a target reached through the proxy.
        let busy = Server::always(Reply::json(
            503,
            r#"{"error":{"message":"busy","type":"x","code":503}}"#,
        ))
        .await;
        let client = VllmClient::builder()
            .base_url(&busy.base_url)
            .proxy(proxy.url_with(USERINFO))
            .max_retries(0)
            .build();
        let err = chat(&client, "hi").await.unwrap_err();
        assert_eq!(err.status_code(), Some(503), "{err:?}");
        assert_eq!(proxy.forwarded().len(), 1, "through the proxy");
        assert_error_hides_credentials("a status error", &err);

        // A proxy that cannot be reached, for an http:// and an https:// target.
        let dead_proxy = format!("http://{USERINFO}@127.0.0.1:{}", closed_port().await);
        let tls = TlsServer::always(&ca.server_identity(), Answer::json(200, CHAT_JSON)).await;
        for base_url in [busy.base_url.clone(), tls.url("127.0.0.1")] {
            let client = VllmClient::builder()
                .base_url(&base_url)
                .add_root_certificate(ca.pem())
                .proxy(&dead_proxy)
                .max_retries(0)
                .build();
            let err = chat(&client, "hi").await.unwrap_err();
            assert!(err.is_connect(), "{base_url}: {err:?}");
            assert!(
                err.to_string().contains("proxy"),
                "{base_url}: the error names the proxy: {err}"
            );
            assert_error_hides_credentials(&format!("a dead proxy for {base_url}"), &err);
        }
        assert!(tls.requests().is_empty());

        // A proxy that refuses these credentials (407 to the CONNECT).
        let strict = Proxy::requiring("Basic b3RoZXI6Y3JlZGVudGlhbHM=").await;
        let client = VllmClient::builder()
            .base_url(tls.url("127.0.0.1"))
            .add_root_certificate(ca.pem())
            .proxy(strict.url_with(USERINFO))
            .max_retries(0)
            .build();
        let err = chat(&client, "hi").await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(strict.connects().len(), 1);
        assert_eq!(strict.connects()[0].status, 407);
        assert_eq!(strict.connects()[0].proxy_authorization(), Some(&*basic()));
        assert_error_hides_credentials("a 407 to credentials", &err);
    })
    .await;
}

#[tokio::test]
async fn a_proxy_answering_407_to_connect_is_a_connect_error_that_is_not_retried() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(&ca.server_identity(), Answer::json(200, CHAT_JSON)).await;
        let proxy = Proxy::requiring(&basic()).await;
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(ca.pem())
            .proxy(proxy.url())
            .max_retries(3)
            .build();

        let err = chat(&client, "hi").await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert!(!err.is_retryable(), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("requires authentication"),
            "the error says the proxy wants credentials: {shown}"
        );
        assert!(shown.contains(&proxy.addr.to_string()), "{shown}");
        let connects = proxy.connects();
        assert_eq!(connects.len(), 1, "not retried: {connects:?}");
        assert_eq!(connects[0].status, 407);
        assert_eq!(connects[0].proxy_authorization(), None);
        assert_eq!(server.connections(), 0, "the server was never reached");
        assert_error_hides_credentials("a 407", &err);

        // The same proxy lets the request through with the credentials it wants.
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(ca.pem())
            .proxy(proxy.url_with(USERINFO))
            .build();
        assert_eq!(
            chat(&client, "hi").await.unwrap().content.as_deref(),
            Some("hi")
        );
        assert_eq!(proxy.connects().len(), 2);
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_proxy_answering_407_to_a_forwarded_request_is_a_status_error_that_is_not_retried() {
    bounded(async {
        let target = Server::always(Reply::json(200, CHAT_JSON)).await;
        let proxy = Proxy::requiring(&basic()).await;
        let client = VllmClient::builder()
            .base_url(&target.base_url)
            .proxy(proxy.url())
            .max_retries(3)
            .build();
        let err = chat(&client, "hi").await.unwrap_err();
        assert_eq!(err.status_code(), Some(407), "{err:?}");
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 407 Proxy Authentication Required"
        );
        assert_eq!(proxy.forwarded().len(), 1, "not retried");
        assert!(target.requests().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_proxy_that_never_answers_is_bounded_by_the_connect_timeout_and_the_timeout() {
    bounded(async {
        // Accepts connections, reads nothing, answers nothing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                open.push(tcp);
            }
        });
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(&ca.server_identity(), Answer::json(200, CHAT_JSON)).await;
        let target = Server::always(Reply::json(200, CHAT_JSON)).await;

        // https://: the CONNECT is part of connecting.
        let connect_timeout = Duration::from_millis(300);
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(ca.pem())
            .proxy(&silent)
            .connect_timeout(connect_timeout)
            .max_retries(0)
            .build();
        let err = chat(&client, "hi").await.unwrap_err();
        assert!(err.is_timeout() && err.is_connect(), "{err:?}");
        assert_eq!(
            err.timeout_kind(),
            Some(vllm_client::TimeoutKind::Connect),
            "{err:?}"
        );

        // http://: the proxy took the request and never answered.
        let timeout = Duration::from_millis(300);
        let client = VllmClient::builder()
            .base_url(&target.base_url)
            .proxy(&silent)
            .timeout(timeout)
            .max_retries(0)
            .build();
        let err = chat(&client, "hi").await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.timeout_duration(), Some(timeout));
        assert_eq!(server.connections(), 0);
        assert!(target.requests().is_empty());
        held.abort();
    })
    .await;
}
