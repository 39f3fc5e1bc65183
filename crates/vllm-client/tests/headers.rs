//! Headers both ways: per-request headers over the client's defaults, `X-Request-Id`, and the
//! server's headers on responses, streams and errors.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Reply, Server, bounded};
use vllm_client::{ErrorKind, VllmClient, json};

const CHAT: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

fn client(server: &Server) -> VllmClient {
    VllmClient::builder()
        .base_url(&server.base_url)
        .header("x-tenant", "default-tenant")
        .header("x-team", "search")
        .max_retries(0)
        .build()
}

#[tokio::test]
async fn a_request_header_arrives_and_overrides_the_default_of_the_same_name() {
    bounded(async {
        let server = Server::always(Reply::json(200, CHAT)).await;
        let client = client(&server);
        let chat = || {
            client
                .chat
                .completions()
                .create()
                .model("m")
                .messages(json!([]))
        };
        chat()
            .header("X-Tenant", "acme")
            .header("x-session-id", "s-1")
            .request_id("req-42")
            .send()
            .await
            .unwrap();
        chat().send().await.unwrap();
        client
            .embeddings
            .create()
            .model("e")
            .input("x")
            .header("x-session-id", "s-2")
            .request_id("req-43")
            .send()
            .await
            .ok();

        let requests = server.requests();
        let first = &requests[0];
        assert_eq!(
            first.header("x-tenant"),
            Some("acme"),
            "the request's value wins"
        );
        assert_eq!(
            first
                .headers
                .iter()
                .filter(|(k, _)| k == "x-tenant")
                .count(),
            1,
            "sent once"
        );
        assert_eq!(
            first.header("x-team"),
            Some("search"),
            "other defaults stay"
        );
        assert_eq!(first.header("x-session-id"), Some("s-1"));
        assert_eq!(first.header("x-request-id"), Some("req-42"));
        assert_eq!(
            first.json()["request_id"],
            "req-42",
            "vLLM's body field too"
        );
        // The next request is back to the defaults.
        let second = &requests[1];
        assert_eq!(second.header("x-tenant"), Some("default-tenant"));
        assert_eq!(second.header("x-session-id"), None);
        assert_eq!(second.header("x-request-id"), None);
        // Every builder has them.
        let third = &requests[2];
        assert_eq!(third.path, "/v1/embeddings");
        assert_eq!(third.header("x-session-id"), Some("s-2"));
        assert_eq!(third.header("x-request-id"), Some("req-43"));
        assert!(third.json().get("request_id").is_none());
    })
    .await;
}

#[tokio::test]
async fn an_invalid_header_is_an_error_from_send_that_names_it_but_not_its_value() {
    bounded(async {
        let server = Server::always(Reply::json(200, CHAT)).await;
        let client = client(&server);
        for (name, value) in [("bad header", "v"), ("x-ok", "secret\nvalue")] {
            let err = client
                .chat
                .completions()
                .create()
                .model("m")
                .messages(json!([]))
                .header(name, value)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(name.split(' ').next().unwrap()), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
        assert!(server.requests().is_empty(), "nothing was sent");
    })
    .await;
}

#[tokio::test]
async fn the_servers_request_id_is_on_responses_streams_and_errors() {
    bounded(async {
        let headers = [
            ("content-type", "application/json"),
            ("x-request-id", "srv-1"),
            ("x-ratelimit-remaining-requests", "99"),
        ];
        let server = Server::always(Reply::with_headers(200, &headers, CHAT)).await;
        let response = client(&server)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.request_id(), Some("srv-1"));
        assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "99");
        assert_eq!(response.head().status(), 200);

        // A stream: right after `send_stream()`, and on its whole answer.
        let sse = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        let mut stream_reply = Reply::sse(sse.as_bytes(), 0, false);
        let support::Part::Bytes(head) = &mut stream_reply.parts[0] else {
            panic!()
        };
        *head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: srv-2\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let server = Server::always(stream_reply).await;
        let mut stream = client(&server)
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send_stream()
            .await
            .unwrap();
        assert_eq!(stream.request_id(), Some("srv-2"));
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        while stream.try_next().await.unwrap().is_some() {}
        assert_eq!(stream.final_response().unwrap().request_id(), Some("srv-2"));

        // An error status, through every kind of builder.
        let error_headers = [
            ("content-type", "application/json"),
            ("x-request-id", "srv-3"),
        ];
        let server = Server::always(Reply::with_headers(
            429,
            &error_headers,
            r#"{"error":{"message":"slow down","type":"x","code":429}}"#,
        ))
        .await;
        let client = client(&server);
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send_stream()
            .await
            .unwrap_err();
        assert_eq!(err.request_id(), Some("srv-3"));
        assert_eq!(err.headers().unwrap()["content-type"], "application/json");
        assert_eq!(
            err.to_string(),
            "POST /v1/chat/completions: 429 Too Many Requests: slow down"
        );
        let err = client.models.list().send().await.unwrap_err();
        assert_eq!(err.request_id(), Some("srv-3"));
        assert!(err.to_string().starts_with("GET /v1/models: 429"), "{err}");
        let (_, head) = client
            .tokenizer
            .tokenize()
            .model("m")
            .prompt("x")
            .send_with_head()
            .await
            .map(|(t, h)| (t, h.request_id().map(str::to_owned)))
            .unwrap_or_else(|e| (Default::default(), e.request_id().map(str::to_owned)));
        assert_eq!(head.as_deref(), Some("srv-3"));
    })
    .await;
}

#[tokio::test]
async fn a_status_error_never_shows_the_query_or_the_api_key() {
    bounded(async {
        let server = Server::always(Reply::json(
            400,
            r#"{"error":{"message":"bad","type":"x","code":400}}"#,
        ))
        .await;
        let client = VllmClient::builder()
            .base_url(format!("{}?tenant=secret-query", server.base_url))
            .api_key("sk-secret-key")
            .max_retries(0)
            .build();
        let err = client
            .chat
            .completions()
            .create()
            .model("m")
            .messages(json!([]))
            .send()
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret-query"), "{shown}");
        assert!(!shown.contains("sk-secret-key"), "{shown}");
        assert!(err.to_string().ends_with(": 400 Bad Request: bad"), "{err}");
    })
    .await;
}
