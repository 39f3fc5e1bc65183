//! The `https://` path (hyper-util's pooled client, rustls, HTTP/2 through ALPN) against a
//! local TLS server whose certificate a test CA made at test time signed. Every client
//! trusts that CA through `add_root_certificate`; none turns certificate checks off.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::tls::{Alpn, Answer, TestCa, TlsServer};
use support::{CHAT_JSON, Part, bounded, sse_content, sse_hello};
use vllm_client::{
    ClientBuilder, ErrorKind, MessageStream, StreamEvent, TimeoutKind, VllmClient, VllmError, json,
};

/// A client of `server` (under `localhost`) trusting `ca`, and no proxy whatever the
/// environment says.
fn builder(server: &TlsServer, ca: &TestCa) -> ClientBuilder {
    VllmClient::builder()
        .base_url(server.url("localhost"))
        .add_root_certificate(ca.pem())
        .no_proxy()
}

async fn chat(client: &VllmClient) -> Result<vllm_client::ChatCompletionResponse, VllmError> {
    client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": "hi"}]))
        .send()
        .await
}

async fn open(client: &VllmClient) -> Result<MessageStream, VllmError> {
    client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": "hi"}]))
        .send_stream()
        .await
}

/// Reads a stream to its end with `try_next()`: the content, or the first failure.
async fn read_content(stream: &mut MessageStream) -> Result<String, VllmError> {
    let mut text = String::new();
    while let Some(event) = stream.try_next().await? {
        if let StreamEvent::Content(t) = event {
            text.push_str(&t);
        }
    }
    Ok(text)
}

#[tokio::test]
async fn a_chat_request_over_https_negotiates_http2_and_carries_the_request_id() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::json(200, CHAT_JSON).header("x-request-id", "req-tls-1"),
        )
        .await;
        let client = builder(&server, &ca).build();

        let response = chat(&client).await.unwrap();
        assert_eq!(response.content.as_deref(), Some("hi"));
        assert_eq!(response.request_id(), Some("req-tls-1"));
        assert_eq!(response.headers()["x-request-id"], "req-tls-1");

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.version, "HTTP/2.0", "ALPN chose HTTP/2");
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
        assert_eq!(request.json()["model"], "m");
        assert_eq!(request.header("content-type"), Some("application/json"));

        // The HTTP/2 connection is kept and reused.
        chat(&client).await.unwrap();
        assert_eq!(server.requests().len(), 2);
        assert_eq!(server.connections(), 1, "one pooled HTTP/2 connection");
    })
    .await;
}

#[tokio::test]
async fn a_root_in_der_is_trusted_as_in_pem_and_http1_is_used_when_the_server_offers_only_it() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::start_with(&ca.server_identity(), Alpn::Http1, |_, _| {
            Answer::json(200, CHAT_JSON)
        })
        .await;
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(ca.der())
            .no_proxy()
            .build();
        assert_eq!(chat(&client).await.unwrap().content.as_deref(), Some("hi"));
        assert_eq!(server.requests()[0].version, "HTTP/1.1");
    })
    .await;
}

#[tokio::test]
async fn a_chat_stream_over_https_decodes_as_it_arrives() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let gap = Duration::from_millis(100);
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::sse_events(&sse_hello(), gap).header("x-request-id", "req-stream"),
        )
        .await;
        let client = builder(&server, &ca).build();

        let mut stream = open(&client).await.unwrap();
        assert_eq!(stream.request_id(), Some("req-stream"));
        let mut text = String::new();
        let mut gaps = Vec::new();
        let mut finished = false;
        while let Some(event) = stream.try_next().await.unwrap() {
            match event {
                StreamEvent::Content(t) => {
                    text.push_str(&t);
                    gaps.extend(stream.timings().last_gap());
                }
                StreamEvent::Finished { index: 0, reason } => {
                    assert_eq!(reason, "stop");
                    finished = true;
                }
                _ => {}
            }
        }
        assert_eq!(text, "Hello!");
        assert!(finished);

        let response = stream.final_response().unwrap();
        assert_eq!(response.content.as_deref(), Some("Hello!"));
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.usage.as_ref().unwrap().completion_tokens, 3);

        // The server waits `gap` before each event, so no gap between chunks can be much
        // shorter (a lower bound the server guarantees, not a speed claim).
        let t = stream.timings();
        assert_eq!(t.chunks(), 5);
        assert_eq!(gaps.len(), 3, "{gaps:?}");
        assert!(gaps.iter().all(|g| *g >= gap / 2), "{gaps:?}");
        assert!(t.max_gap() >= gap / 2);
        assert!(t.time_to_first_content().unwrap() >= gap);

        let request = &server.requests()[0];
        assert_eq!(request.version, "HTTP/2.0");
        assert_eq!(request.json()["stream"], true);
    })
    .await;
}

#[tokio::test]
async fn events_split_across_many_small_writes_decode_over_http2_and_http1() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let identity = ca.server_identity();
        let body = sse_hello().concat();
        for alpn in [Alpn::Http2, Alpn::Http1] {
            // Pieces of 7 bytes, 1 ms apart: every event and most `data:` prefixes and JSON
            // strings are cut across HTTP/2 DATA frames (or HTTP/1.1 chunks).
            let answer = Answer::sse(body.as_bytes(), 7, Duration::from_millis(1));
            assert!(answer.parts.len() > 100);
            let server = TlsServer::start_with(&identity, alpn, move |_, _| answer.clone()).await;
            let client = builder(&server, &ca).build();
            let mut stream = open(&client).await.unwrap();
            assert_eq!(
                read_content(&mut stream).await.unwrap(),
                "Hello!",
                "{alpn:?}"
            );
            let response = stream.final_response().unwrap();
            assert_eq!(response.content.as_deref(), Some("Hello!"), "{alpn:?}");
            assert_eq!(response.finish_reason.as_deref(), Some("stop"), "{alpn:?}");
            let expected = if alpn == Alpn::Http2 {
                "HTTP/2.0"
            } else {
                "HTTP/1.1"
            };
            assert_eq!(server.requests()[0].version, expected);
        }
    })
    .await;
}

const OVERLOADED: &str =
    r#"{"error":{"message":"overloaded","type":"ServiceUnavailableError","code":503}}"#;

#[tokio::test]
async fn a_503_with_retry_after_0_is_retried_and_the_200_that_follows_is_returned() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::start(&ca.server_identity(), |_, n| match n {
            0 | 2 => Answer::json(503, OVERLOADED).header("retry-after", "0"),
            1 => Answer::json(200, CHAT_JSON),
            _ => Answer::stream(
                sse_hello()
                    .into_iter()
                    .map(|e| Part::Bytes(e.into_bytes()))
                    .collect(),
            ),
        })
        .await;
        let client = builder(&server, &ca).max_retries(2).build();
        assert_eq!(chat(&client).await.unwrap().content.as_deref(), Some("hi"));
        assert_eq!(server.requests().len(), 2, "one retry");

        // A stream is retried the same way before its first byte.
        let mut stream = open(&client).await.unwrap();
        assert_eq!(read_content(&mut stream).await.unwrap(), "Hello!");
        assert_eq!(server.requests().len(), 4);
        assert!(server.requests().iter().all(|r| r.version == "HTTP/2.0"));
    })
    .await;
}

#[tokio::test]
async fn a_400_is_not_retried() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::json(
                400,
                r#"{"error":{"message":"bad messages","type":"BadRequestError","code":400}}"#,
            ),
        )
        .await;
        let client = builder(&server, &ca).max_retries(3).build();
        let err = chat(&client).await.unwrap_err();
        assert_eq!(err.status_code(), Some(400), "{err:?}");
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 400 Bad Request: bad messages"
        );
        assert_eq!(server.requests().len(), 1, "a 400 is not retried");
    })
    .await;
}

#[tokio::test]
async fn max_retries_0_makes_one_attempt() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::json(503, OVERLOADED)
                .header("retry-after", "0")
                .header("x-request-id", "req-503"),
        )
        .await;
        let client = builder(&server, &ca).max_retries(0).build();
        let err = chat(&client).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Status);
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 503 Service Unavailable: overloaded"
        );
        assert_eq!(err.request_id(), Some("req-503"));
        assert!(err.is_retryable(), "retryable, but retries are off");
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_response_head_later_than_the_timeout_is_a_timeout() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::json(200, CHAT_JSON).delayed(Duration::from_secs(5)),
        )
        .await;
        let timeout = Duration::from_millis(300);
        let client = builder(&server, &ca).timeout(timeout).build();

        let started = Instant::now();
        let err = chat(&client).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.timeout_duration(), Some(timeout));
        assert!(started.elapsed() >= timeout);

        let err = open(&client).await.unwrap_err();
        assert!(
            err.is_timeout(),
            "a stream waits for its head under `timeout`: {err:?}"
        );
        // The server may have acted on a request that timed out: not sent again.
        assert_eq!(server.requests().len(), 2, "one attempt each");
    })
    .await;
}

#[tokio::test]
async fn a_whole_answer_whose_body_stalls_after_the_head_is_a_timeout() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let mut answer = Answer::json(200, CHAT_JSON);
        answer.parts.insert(0, Part::Delay(Duration::from_secs(10)));
        let server = TlsServer::always(&ca.server_identity(), answer).await;
        let timeout = Duration::from_millis(300);
        let client = builder(&server, &ca).timeout(timeout).build();
        let err = chat(&client).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total), "{err:?}");
        assert_eq!(server.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_stream_that_stalls_past_the_idle_timeout_is_an_err() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let idle = Duration::from_millis(300);
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::stream(vec![
                Part::Bytes(sse_content("par").into_bytes()),
                Part::Delay(Duration::from_secs(10)),
                Part::Bytes(sse_content("tial").into_bytes()),
            ]),
        )
        .await;
        let client = builder(&server, &ca).stream_idle_timeout(idle).build();
        let mut stream = open(&client).await.unwrap();
        assert!(matches!(
            stream.try_next().await,
            Ok(Some(StreamEvent::Content(t))) if t == "par"
        ));
        let err = stream.try_next().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.timeout_kind(), Some(TimeoutKind::Idle), "{err:?}");
        assert_eq!(err.timeout_duration(), Some(idle));
        assert!(stream.final_response().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_mid_stream_error_event_is_an_err() {
    bounded(async {
        let ca = TestCa::new("vllm-rs test CA");
        let events = vec![
            sse_content("par"),
            "data: {\"error\":{\"message\":\"KV cache exhausted\",\"type\":\"InternalServerError\",\"code\":500}}\n\n".to_owned(),
            sse_content("never"),
        ];
        let server = TlsServer::always(
            &ca.server_identity(),
            Answer::sse_events(&events, Duration::from_millis(10)),
        )
        .await;
        let client = builder(&server, &ca).build();
        let mut stream = open(&client).await.unwrap();
        assert!(matches!(
            stream.try_next().await,
            Ok(Some(StreamEvent::Content(t))) if t == "par"
        ));
        let err = stream.try_next().await.unwrap_err();
        assert!(err.is_server_event(), "{err:?}");
        assert_eq!(err.to_string(), "KV cache exhausted");
        assert_eq!(err.status_code(), Some(500));
        assert!(stream.try_next().await.is_err(), "nothing after the failure");
    })
    .await;
}

#[tokio::test]
async fn a_certificate_another_ca_signed_is_rejected_and_not_retried() {
    bounded(async {
        let trusted = TestCa::new("vllm-rs test CA");
        let other = TestCa::new("some other CA");
        let server =
            TlsServer::always(&other.server_identity(), Answer::json(200, CHAT_JSON)).await;
        let client = builder(&server, &trusted).max_retries(3).build();

        let err = chat(&client).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert!(
            !err.is_retryable(),
            "a rejected certificate is not retryable"
        );
        assert_eq!(server.connections(), 1, "one attempt: not retried");
        assert_eq!(server.handshakes(), 0);
        assert!(server.requests().is_empty());
        let chain = error_chain(&err).to_lowercase();
        assert!(chain.contains("certificate"), "{chain}");

        // The same server is reached by a client that trusts the CA that signed it: the
        // rejection was the certificate's.
        let client = builder(&server, &other).build();
        assert_eq!(chat(&client).await.unwrap().content.as_deref(), Some("hi"));
    })
    .await;
}

/// `VllmError::is_retryable` says what the transport did: it does not retry a certificate
/// it rejected, nor a proxy's 407 to CONNECT, since sending again cannot help; a connect
/// error it does retry (nothing listening) stays retryable.
#[tokio::test]
async fn is_retryable_is_false_for_a_rejected_certificate_and_for_a_407_from_the_proxy() {
    bounded(async {
        let trusted = TestCa::new("vllm-rs test CA");
        let other = TestCa::new("some other CA");
        let server =
            TlsServer::always(&other.server_identity(), Answer::json(200, CHAT_JSON)).await;
        let client = builder(&server, &trusted).max_retries(0).build();
        let err = chat(&client).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(!err.is_retryable(), "a rejected certificate: {err:?}");

        let proxy = support::proxy::Proxy::requiring("Basic dXNlcjpwYTU1d29yZA==").await;
        let client = VllmClient::builder()
            .base_url(server.url("127.0.0.1"))
            .add_root_certificate(other.pem())
            .proxy(proxy.url())
            .max_retries(0)
            .build();
        let err = chat(&client).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(!err.is_retryable(), "a 407 to CONNECT: {err:?}");

        // Nothing listening: a connect error worth retrying.
        let port = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = VllmClient::builder()
            .base_url(format!("https://127.0.0.1:{port}/v1"))
            .add_root_certificate(trusted.pem())
            .no_proxy()
            .max_retries(0)
            .build();
        let err = chat(&client).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(err.is_retryable(), "a refused connection: {err:?}");
    })
    .await;
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
