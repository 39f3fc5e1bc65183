//! Connection pooling: keep-alive connections are reused, and clones share the pool.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{Server, response};
use vllm_transport::Transport;

#[tokio::test]
async fn pooled_connection_is_reused_across_sequential_requests() {
    let server = Server::respond_always(response("200 OK", &[], b"{\"ok\":true}")).await;
    let transport = support::builder().build().unwrap();

    for _ in 0..5 {
        let response = transport
            .post(server.url("/v1/chat/completions"))
            .json(&b"{}"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(response.bytes().await.unwrap(), &b"{\"ok\":true}"[..]);
    }

    assert_eq!(server.requests(), 5);
    assert_eq!(
        server.connections(),
        1,
        "keep-alive connection was not reused"
    );
}

#[tokio::test]
async fn clones_share_one_pool() {
    let server = Server::respond_always(response("200 OK", &[], b"x")).await;
    let transport = support::builder().build().unwrap();
    let clone = transport.clone();

    transport
        .get(server.url("/a"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    clone
        .get(server.url("/b"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // A clone moved to another task uses the same pool too.
    tokio::spawn(async move {
        clone
            .get(server.url("/c"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(server.connections(), 1);
        assert_eq!(server.requests(), 3);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connection_is_reused_after_a_status_error() {
    // The error body is read in full, so the connection goes back to the pool.
    let server = Server::start(|mut conn| async move {
        while let Some(req) = conn.read_request().await {
            let reply = if req.number == 1 {
                response("400 Bad Request", &[], b"{\"error\":\"bad\"}")
            } else {
                response("200 OK", &[], b"ok")
            };
            conn.write(&reply).await.unwrap();
        }
    })
    .await;
    let transport = support::builder().build().unwrap();

    let err = transport.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    let body = transport
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, &b"ok"[..]);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn pool_max_idle_zero_disables_reuse() {
    let server = Server::respond_always(response("200 OK", &[], b"x")).await;
    let transport = support::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..3 {
        transport
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn sends_json_body_with_content_type_and_user_agent() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = Server::start(move |mut conn| {
        let tx = tx.lock().unwrap().take();
        async move {
            let req = conn.read_request().await.unwrap();
            conn.write(&response("200 OK", &[], b"")).await.unwrap();
            tx.unwrap().send(req).unwrap();
        }
    })
    .await;
    let transport = support::builder()
        .default_header("x-default", "d")
        .build()
        .unwrap();
    transport
        .post(server.url("/v1/completions"))
        .header("x-extra", "e")
        .json(&b"{\"prompt\":\"hi\"}"[..])
        .send()
        .await
        .unwrap();
    let req = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v1/completions");
    assert_eq!(req.body, b"{\"prompt\":\"hi\"}");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("content-length"), Some("15"));
    assert_eq!(req.header("x-default"), Some("d"));
    assert_eq!(req.header("x-extra"), Some("e"));
    assert_eq!(
        req.header("user-agent"),
        Some(vllm_transport::DEFAULT_USER_AGENT)
    );
    assert!(
        req.header("user-agent")
            .unwrap()
            .starts_with("vllm-transport/")
    );
    assert!(req.header("authorization").is_none());
}

#[test]
fn transport_is_cheap_to_share() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Transport>();
    fn assert_send<T: Send + 'static>() {}
    assert_send::<vllm_transport::Response>();
    assert_send::<vllm_transport::BodyStream>();
    assert_send::<vllm_transport::EventStream>();
    assert_send::<vllm_transport::RequestBuilder>();
}

#[tokio::test]
async fn by_default_a_connection_idle_past_4_seconds_is_not_reused() {
    // A server that keeps connections open for ever: only the client's own idle timeout
    // decides. uvicorn (vLLM's server) closes idle connections after 5 s; the default
    // gives them up before that, so a request never races the server's close.
    assert!(vllm_transport::DEFAULT_POOL_IDLE_TIMEOUT < Duration::from_secs(5));
    let server = Server::respond_always(response("200 OK", &[], b"ok")).await;
    let transport = Transport::builder().build().unwrap();
    let get = || async {
        transport
            .get(server.url("/x"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    get().await;
    get().await;
    assert_eq!(server.connections(), 1, "reused while fresh");
    tokio::time::sleep(vllm_transport::DEFAULT_POOL_IDLE_TIMEOUT + Duration::from_millis(200))
        .await;
    get().await;
    assert_eq!(
        server.connections(),
        2,
        "a new connection after the idle timeout"
    );
}
