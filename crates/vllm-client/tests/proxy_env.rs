//! Proxies from the environment: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` and
//! their lower-case forms, read when a client is built; `no_proxy()` ignores them.
//!
//! One test in its own binary: the variables are process-wide, so no other test may run
//! beside it. It changes them only between `block_on` calls of a current-thread runtime it
//! builds itself, when no task runs and no thread of this process reads the environment.
#![allow(clippy::unwrap_used)]

mod support;

use support::proxy::Proxy;
use support::tls::{Answer, TestCa, TlsServer};
use support::{CHAT_JSON, Reply, Server, bounded};
use vllm_client::{ClientBuilder, VllmClient, json};

/// Every variable that can send a request through a proxy or stop it from going through
/// one (`REQUEST_METHOD`: hyper-util ignores the proxy variables in a CGI process).
const VARIABLES: [&str; 9] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// Sets exactly these variables of [`VARIABLES`] and removes the others.
fn set_only(vars: &[(&str, &str)]) {
    for name in VARIABLES {
        // SAFETY: this binary runs this single test, and it calls this only outside
        // `block_on`, when no other thread of the process reads the environment.
        unsafe { std::env::remove_var(name) };
    }
    for (name, value) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
    }
}

async fn chat_ok(client: &VllmClient) {
    let response = client
        .chat
        .completions()
        .create()
        .model("m")
        .messages(json!([{"role": "user", "content": "hi"}]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} ({e:?})", client.base_url()));
    assert_eq!(response.content.as_deref(), Some("hi"));
}

#[test]
fn proxies_come_from_the_environment_when_the_client_is_built() {
    set_only(&[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = TestCa::new("vllm-rs test CA");
    let (plain, tls, proxy) = runtime.block_on(async {
        (
            Server::always(Reply::json(200, CHAT_JSON)).await,
            TlsServer::always(&ca.server_identity(), Answer::json(200, CHAT_JSON)).await,
            Proxy::start().await,
        )
    });
    let plain_port = plain
        .base_url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/v1")
        .to_owned();
    // The same servers under two names of the loopback address.
    let http_ip = format!("http://127.0.0.1:{plain_port}/v1");
    let http_name = format!("http://localhost:{plain_port}/v1");
    let (https_ip, https_name) = (tls.url("127.0.0.1"), tls.url("localhost"));
    let builder = |base_url: &str| -> ClientBuilder {
        VllmClient::builder()
            .base_url(base_url)
            .add_root_certificate(ca.pem())
            .max_retries(0)
    };
    let forwarded_line = format!("POST http://127.0.0.1:{plain_port}/v1/chat/completions HTTP/1.1");
    let connect_line = format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port());
    // (forwarded, CONNECTs) the proxy saw so far.
    let counts = || (proxy.forwarded().len(), proxy.connects().len());

    // A client built before any variable is set goes direct, even after they are set.
    let built_before = builder(&http_ip).build();
    let url = proxy.url();
    set_only(&[
        ("HTTP_PROXY", &url),
        ("HTTPS_PROXY", &url),
        ("NO_PROXY", "localhost"),
    ]);
    let upper = [
        builder(&http_ip).build(),
        builder(&http_name).build(),
        builder(&https_ip).build(),
        builder(&https_name).build(),
    ];
    let ignoring = [
        builder(&http_ip).no_proxy().build(),
        builder(&https_ip).no_proxy().build(),
    ];
    // `proxy(url)` names the proxy itself and still honours `NO_PROXY`.
    let explicit_bypassed = builder(&https_name).proxy(proxy.url()).build();
    runtime.block_on(bounded(async {
        chat_ok(&built_before).await;
        assert_eq!(counts(), (0, 0), "read when the client is built");
        assert_eq!(plain.requests().len(), 1);

        chat_ok(&upper[0]).await;
        assert_eq!(
            counts(),
            (1, 0),
            "HTTP_PROXY sends http:// through the proxy"
        );
        assert_eq!(proxy.forwarded()[0].request_line, forwarded_line);
        chat_ok(&upper[1]).await;
        assert_eq!(counts(), (1, 0), "NO_PROXY=localhost: direct");
        assert_eq!(plain.requests().len(), 3);

        chat_ok(&upper[2]).await;
        assert_eq!(
            counts(),
            (1, 1),
            "HTTPS_PROXY tunnels https:// through the proxy"
        );
        assert_eq!(proxy.connects()[0].request_line, connect_line);
        chat_ok(&upper[3]).await;
        assert_eq!(counts(), (1, 1), "NO_PROXY=localhost: direct");
        assert_eq!(tls.requests().len(), 2);

        for client in &ignoring {
            chat_ok(client).await;
        }
        assert_eq!(counts(), (1, 1), "no_proxy() ignores the environment");
        chat_ok(&explicit_bypassed).await;
        assert_eq!(counts(), (1, 1), "proxy(url) honours NO_PROXY");
        assert_eq!(plain.requests().len(), 4);
        assert_eq!(tls.requests().len(), 4);
    }));

    // Lower-case names.
    set_only(&[("http_proxy", &url), ("https_proxy", &url)]);
    let lower = [builder(&http_name).build(), builder(&https_name).build()];
    runtime.block_on(bounded(async {
        chat_ok(&lower[0]).await;
        assert_eq!(counts(), (2, 1), "http_proxy");
        assert_eq!(
            proxy.forwarded()[1].request_line,
            format!("POST http://localhost:{plain_port}/v1/chat/completions HTTP/1.1")
        );
        chat_ok(&lower[1]).await;
        assert_eq!(counts(), (2, 2), "https_proxy");
        assert_eq!(
            proxy.connects()[1].request_line,
            format!("CONNECT localhost:{} HTTP/1.1", tls.port())
        );
    }));

    // ALL_PROXY for both schemes, with credentials.
    set_only(&[("ALL_PROXY", &proxy.url_with("env-user:env-pa55"))]);
    let all = [builder(&http_ip).build(), builder(&https_ip).build()];
    assert!(!format!("{:?}", all[0]).contains("env-pa55"));
    runtime.block_on(bounded(async {
        for client in &all {
            chat_ok(client).await;
        }
        assert_eq!(counts(), (3, 3), "ALL_PROXY");
        let seen = proxy.seen();
        // "Basic " + base64("env-user:env-pa55")
        for request in &seen[seen.len() - 2..] {
            assert_eq!(
                request.proxy_authorization(),
                Some("Basic ZW52LXVzZXI6ZW52LXBhNTU="),
                "{request:?}"
            );
        }
    }));

    set_only(&[]);
    drop((plain, tls, proxy));
}
