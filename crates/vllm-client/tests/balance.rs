//! Client-side balancing (`ClientBuilder::base_urls`) over vllm-mock replicas on loopback:
//! the spread, sticky sessions, a replica killed in the middle of a run, and retries on
//! another replica.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use vllm_client::{VllmClient, json};
use vllm_mock::{Behavior, MockServer};

/// Runs `f`, failing the test if it takes more than 120 seconds.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("the test took more than 120 seconds")
}

async fn replicas(n: usize) -> Vec<Option<MockServer>> {
    let mut mocks = Vec::new();
    for i in 0..n {
        let mock = MockServer::builder()
            .replica_id(format!("r{i}"))
            .record_requests(false)
            .start()
            .await
            .unwrap();
        mocks.push(Some(mock));
    }
    mocks
}

fn urls(mocks: &[Option<MockServer>]) -> Vec<String> {
    mocks
        .iter()
        .map(|m| m.as_ref().unwrap().base_url())
        .collect()
}

/// One chat request; the replica that answered it (its `x-replica-id`).
async fn ask(
    client: &VllmClient,
    session: Option<String>,
) -> Result<String, vllm_client::VllmError> {
    let mut request = client
        .chat
        .completions()
        .create()
        .model("echo")
        .messages(json!([{"role": "user", "content": "hello there"}]))
        .max_tokens(2);
    if let Some(session) = session {
        request = request.session_id(session);
    }
    let response = request.send().await?;
    Ok(response.headers()["x-replica-id"]
        .to_str()
        .unwrap()
        .to_owned())
}

/// Sends `n` requests, `concurrency` at a time (session `i % sessions` each when `sessions`
/// is not zero); calls `halfway` once half of them have been sent. Returns, per request,
/// its session and the replica that answered, or the error.
async fn run(
    client: &VllmClient,
    n: usize,
    concurrency: usize,
    sessions: usize,
    halfway: impl FnOnce(),
) -> Vec<(Option<String>, Result<String, vllm_client::VllmError>)> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(n);
    let mut halfway = Some(halfway);
    for i in 0..n {
        if i == n / 2 {
            (halfway.take().unwrap())();
        }
        let permit = permits.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        let session = (sessions > 0).then(|| format!("session-{}", i % sessions));
        tasks.push(tokio::spawn(async move {
            let result = ask(&client, session.clone()).await;
            drop(permit);
            (session, result)
        }));
    }
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn spread<'a>(replicas: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in replicas {
        *counts.entry(r.to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_replicas_get_an_even_share() {
    bounded(async {
        let mocks = replicas(3).await;
        let client = VllmClient::builder().base_urls(urls(&mocks)).build();
        let results = run(&client, 10_000, 32, 0, || {}).await;
        let answered: Vec<&str> = results.iter().map(|(_, r)| r.as_deref().unwrap()).collect();
        let counts = spread(answered.into_iter());
        println!("spread over 3 replicas, 10,000 requests: {counts:?}");
        assert_eq!(counts.len(), 3, "{counts:?}");
        for (replica, n) in &counts {
            // Within 10% of an even third (3,333).
            assert!(
                (3000..=3667).contains(n),
                "{replica}: {n} of 10,000: {counts:?}"
            );
        }
        // Nothing left in flight once every answer is read.
        assert!(client.replicas().iter().all(|r| r.in_flight == 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_halfway_costs_nothing_and_sessions_stay_put() {
    bounded(async {
        let mut mocks = replicas(3).await;
        let interval = Duration::from_millis(300);
        let client = VllmClient::builder()
            .base_urls(urls(&mocks))
            .health_check_interval(interval)
            .build();
        // 10,000 requests over 200 sessions; replica r1 is killed halfway.
        let killed = mocks[1].take().unwrap();
        let mut killed = Some(killed);
        let results = run(&client, 10_000, 32, 200, || drop(killed.take())).await;
        let mut failed = 0;
        let mut homes: HashMap<String, Vec<String>> = HashMap::new();
        for (session, result) in &results {
            match result {
                Ok(replica) => homes
                    .entry(session.clone().unwrap())
                    .or_default()
                    .push(replica.clone()),
                Err(e) => {
                    failed += 1;
                    eprintln!("{session:?}: {e}");
                }
            }
        }
        assert_eq!(failed, 0, "requests lost");
        let counts = spread(results.iter().map(|(_, r)| r.as_deref().unwrap()));
        println!("spread with r1 killed halfway: {counts:?}");
        // Every session kept one replica, except those of r1, which moved once.
        let mut moved = 0;
        for (session, replicas) in &homes {
            let mut distinct: Vec<&String> = replicas.iter().collect();
            distinct.dedup();
            match distinct.as_slice() {
                [_] => {}
                [first, second] if *first == "r1" && *second != "r1" => moved += 1,
                other => panic!("{session} went to {other:?}"),
            }
        }
        assert!(moved > 0, "no session lived on r1");
        println!(
            "{moved} of {} sessions moved off the killed replica",
            homes.len()
        );
        let status = client.replicas();
        assert!(status[1].ejected, "{status:?}");
        assert!(!status[0].ejected && !status[2].ejected, "{status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dead_replica_is_ejected_within_one_health_check_interval() {
    bounded(async {
        let mut mocks = replicas(2).await;
        let interval = Duration::from_millis(300);
        let client = VllmClient::builder()
            .base_urls(urls(&mocks))
            .health_check_interval(interval)
            .build();
        // One request starts the health checks.
        ask(&client, None).await.unwrap();
        drop(mocks[0].take());
        let killed_at = Instant::now();
        // No traffic: only the health check can notice.
        while !client.replicas()[0].ejected {
            // The first check after it died finds it: at most one interval, plus the
            // moment a refused connection takes and scheduling slack on a loaded machine.
            assert!(
                killed_at.elapsed() < interval + Duration::from_millis(300),
                "not ejected after {:?} (interval {interval:?})",
                killed_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = killed_at.elapsed();
        println!("ejected {after:?} after it died (interval {interval:?})");
        assert!(!client.replicas()[1].ejected);
        // Everything goes to the living replica now.
        for _ in 0..20 {
            assert_eq!(ask(&client, None).await.unwrap(), "r1");
        }
        // The replica comes back on the same port: a later check lets it in again.
        let url = client.base_urls()[0].to_owned();
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .parse()
            .unwrap();
        let _back = MockServer::builder()
            .addr(addr)
            .replica_id("r0")
            .start()
            .await
            .unwrap();
        let back_at = Instant::now();
        while client.replicas()[0].ejected {
            // Asked again after 2 intervals at most by now (its third failed check at most).
            assert!(back_at.elapsed() < interval * 10, "{:?}", client.replicas());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_on_another_replica() {
    bounded(async {
        let mocks = replicas(2).await;
        let client = VllmClient::builder()
            .base_urls(urls(&mocks))
            .max_retries(1)
            .build();
        // Find the session that lives on r0, then make r0 answer 503 once.
        let session = (0..)
            .map(|i| format!("s{i}"))
            .find(|s| futures_lite_block(ask(&client, Some(s.clone()))).unwrap() == "r0")
            .unwrap();
        mocks[0]
            .as_ref()
            .unwrap()
            .enqueue(Behavior::error(503, "overloaded"));
        // The 503 is retried on r1 (the session's second choice) and succeeds.
        assert_eq!(ask(&client, Some(session.clone())).await.unwrap(), "r1");
        assert_eq!(mocks[0].as_ref().unwrap().queued(), 0);
        // A 503 is an answer: r0 is not ejected, and the session is back on it.
        assert!(!client.replicas()[0].ejected);
        assert_eq!(ask(&client, Some(session)).await.unwrap(), "r0");
        // Without retries the error reaches the caller.
        let client = VllmClient::builder()
            .base_urls(urls(&mocks))
            .max_retries(0)
            .build();
        mocks[0]
            .as_ref()
            .unwrap()
            .enqueue(Behavior::error(503, "overloaded"));
        mocks[1]
            .as_ref()
            .unwrap()
            .enqueue(Behavior::error(503, "overloaded"));
        let err = ask(&client, None).await.unwrap_err();
        assert_eq!(err.status_code(), Some(503), "{err}");
    })
    .await;
}

/// Runs a future to completion on the current runtime from synchronous code.
fn futures_lite_block<F: Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test]
async fn the_routing_headers_reach_the_server() {
    bounded(async {
        let mock = MockServer::builder()
            .replica_id("r0")
            .start()
            .await
            .unwrap();
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .session_id("default-session")
            .build();
        // The client's default session, then a request's own session and user (the body
        // field and the header both), then an embeddings request's session.
        ask(&client, None).await.unwrap();
        client
            .chat
            .completions()
            .create()
            .model("echo")
            .messages(json!([{"role": "user", "content": "hi"}]))
            .user("alice")
            .session_id("chat-7")
            .send()
            .await
            .unwrap();
        client
            .embeddings
            .create()
            .model("echo")
            .input("hi")
            .session_id("emb-1")
            .send()
            .await
            .unwrap();
        let sent = mock.requests();
        assert_eq!(sent[0].header("x-session-id"), Some("default-session"));
        assert_eq!(sent[0].header("x-user-id"), None);
        assert_eq!(sent[1].header("x-session-id"), Some("chat-7"));
        assert_eq!(sent[1].header("x-user-id"), Some("alice"));
        assert_eq!(sent[1].json.as_ref().unwrap()["user"], "alice");
        assert_eq!(sent[2].header("x-session-id"), Some("emb-1"));
    })
    .await;
}

#[test]
fn the_health_checks_go_on_in_the_next_runtime() {
    // A client made and used in one runtime, then used in another after the first is gone
    // (its health-check task with it): the checks start again there.
    let interval = Duration::from_millis(100);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let (mocks, client) = first.block_on(async {
        let mocks = replicas(2).await;
        let client = VllmClient::builder()
            .base_urls(urls(&mocks))
            .health_check_interval(interval)
            .build();
        // A session that lives on r1: its requests never touch r0, so only a health check
        // can find r0 dead.
        let mut on_r1 = None;
        for i in 0.. {
            let session = format!("s{i}");
            if ask(&client, Some(session.clone())).await.unwrap() == "r1" {
                on_r1 = Some(session);
                break;
            }
        }
        (mocks, (client, on_r1.unwrap()))
    });
    let (mut mocks, client, on_r1) = (mocks, client.0, client.1);
    drop(first);
    runtime().block_on(bounded(async {
        drop(mocks[0].take());
        assert_eq!(ask(&client, Some(on_r1)).await.unwrap(), "r1");
        let started = Instant::now();
        while !client.replicas()[0].ejected {
            assert!(started.elapsed() < interval * 20, "{:?}", client.replicas());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_load_the_replica_other_clients_keep_busy_gets_less() {
    bounded(async {
        let mocks = replicas(2).await;
        // Another client keeps 16 slow streams open on r0: its /load says 16.
        let other = VllmClient::new(mocks[0].as_ref().unwrap().base_url());
        let mut held = Vec::new();
        for _ in 0..16 {
            mocks[0]
                .as_ref()
                .unwrap()
                .enqueue(Behavior::reply("slow").event_delay(Duration::from_secs(30)));
            let stream = other
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "hold"}]))
                .send_stream()
                .await
                .unwrap();
            held.push(stream);
        }
        let count_r1 = |by_load: bool| {
            let urls = urls(&mocks);
            async move {
                let client = VllmClient::builder()
                    .base_urls(urls)
                    .health_check_interval(Duration::from_millis(50))
                    .balance_by_load(by_load)
                    .build();
                ask(&client, None).await.unwrap();
                // A health round reads every replica's /load.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut on_r1 = 0;
                for _ in 0..100 {
                    if ask(&client, None).await.unwrap() == "r1" {
                        on_r1 += 1;
                    }
                }
                on_r1
            }
        };
        // One request at a time: this client's own count is 0 on both, so only the
        // servers' own load tells them apart.
        let weighed = count_r1(true).await;
        let blind = count_r1(false).await;
        println!("to the idle replica: {weighed} of 100 by load, {blind} of 100 without");
        assert_eq!(weighed, 100, "by load, the busy replica gets nothing");
        assert!((25..=75).contains(&blind), "without, about half: {blind}");
        drop(held);
    })
    .await;
}
