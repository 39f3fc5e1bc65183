//! The simulated engine: slots and a queue, paced tokens, metrics that add up to what was
//! sent, and aborts that free their slots. Lower bounds only: a server-side wait guarantees
//! them, whatever the machine.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::bounded;
use vllm_client::{StreamEvent, VllmClient, json};
use vllm_mock::{MockServer, Script, Timing};

const TTFT: Duration = Duration::from_millis(50);
const ITL: Duration = Duration::from_millis(10);
const SLOTS: usize = 32;

async fn mock(timing: Timing) -> (MockServer, VllmClient) {
    let mock = MockServer::builder()
        .timing(timing)
        .max_model_len(1_000_000)
        .start()
        .await
        .unwrap();
    let client = VllmClient::builder()
        .base_url(mock.base_url())
        .max_retries(0)
        .build();
    (mock, client)
}

fn timing() -> Timing {
    Timing::default().ttft(TTFT).itl(ITL).max_num_seqs(SLOTS)
}

/// A chat stream of exactly `tokens` output tokens (`ignore_eos` makes the echo go on).
fn stream_request(client: &VllmClient, tokens: u32) -> vllm_client::ChatCompletionBuilder {
    client
        .chat
        .completions()
        .create()
        .model("echo")
        .messages(json!([{"role": "user", "content": "one two three"}]))
        .max_tokens(tokens)
        .ignore_eos(true)
}

/// The value of the series `name{labels…}` in Prometheus text (the first line that starts so).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_slots_wait_in_line_and_the_metrics_add_up() {
    bounded(async {
        let (mock, client) = mock(timing()).await;
        const STREAMS: usize = 256;
        const TOKENS: u32 = 5;
        let started = Instant::now();
        let tasks: Vec<_> = (0..STREAMS)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut stream = stream_request(&client, TOKENS).send_stream().await?;
                    while stream.try_next().await?.is_some() {}
                    let ttft = stream.timings().time_to_first_token().unwrap();
                    let usage = stream.final_response().unwrap().usage.unwrap();
                    Ok::<_, vllm_client::VllmError>((ttft, usage))
                })
            })
            .collect();
        // While they run: never more than the slots, and the rest in line.
        let (mut most_running, mut most_waiting) = (0, 0);
        while tasks.iter().any(|t| !t.is_finished()) {
            let (running, waiting) = mock.load();
            assert!(running <= SLOTS, "{running} running");
            most_running = most_running.max(running);
            most_waiting = most_waiting.max(waiting);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut ttfts = Vec::new();
        let (mut prompt, mut generated) = (0, 0);
        for task in tasks {
            let (ttft, usage) = task.await.unwrap().unwrap();
            assert_eq!(usage.completion_tokens, TOKENS);
            prompt += usage.prompt_tokens;
            generated += usage.completion_tokens;
            ttfts.push(ttft);
        }
        assert_eq!(most_running, SLOTS, "the slots filled up");
        // How many wait at once depends on how fast the client sends: at least a wave's worth.
        assert!(most_waiting >= SLOTS, "{most_waiting} waited at most");
        // Every request waits its prefill; a request beyond the first 32 also waits for a
        // slot to free, which takes a whole request (prefill and 4 more tokens) at least:
        // its first token comes a request plus a prefill after the first wave started. Its
        // own clock may have started up to a prefill late (the client sends 256 requests
        // from two threads, beside the other tests), so count those over one request.
        ttfts.sort();
        assert!(ttfts[0] >= TTFT, "{:?}", ttfts[0]);
        let one_request = TTFT + ITL * (TOKENS - 1);
        let queued = ttfts.iter().filter(|t| **t >= one_request).count();
        assert!(queued >= STREAMS - SLOTS, "{queued} of {STREAMS} waited for a slot");
        // 8 waves of 32, each at least one request long.
        assert!(started.elapsed() >= one_request * 8);

        // The metrics say the same.
        let text = client.server.metrics().send().await.unwrap();
        let labels = "{model_name=\"echo\",engine=\"0\"}";
        let series = |name: &str| metric(&text, &format!("{name}{labels}"));
        assert_eq!(series("vllm:num_requests_running"), 0.0);
        assert_eq!(series("vllm:num_requests_waiting"), 0.0);
        assert_eq!(series("vllm:prompt_tokens_total"), f64::from(prompt));
        assert_eq!(series("vllm:generation_tokens_total"), f64::from(generated));
        let success = |reason: &str| {
            metric(
                &text,
                &format!(
                    "vllm:request_success_total{{model_name=\"echo\",engine=\"0\",finished_reason=\"{reason}\"}}"
                ),
            )
        };
        assert_eq!(success("length"), STREAMS as f64, "ignore_eos ends on the length");
        assert_eq!(success("abort"), 0.0);
        assert_eq!(
            series("vllm:time_to_first_token_seconds_count"),
            STREAMS as f64
        );
        assert_eq!(
            series("vllm:inter_token_latency_seconds_count"),
            (STREAMS * (TOKENS as usize - 1)) as f64
        );
        assert_eq!(
            series("vllm:e2e_request_latency_seconds_count"),
            STREAMS as f64
        );
        // No request had its first token before its prefill was done.
        let under_ttft = metric(
            &text,
            "vllm:time_to_first_token_seconds_bucket{model_name=\"echo\",engine=\"0\",le=\"0.04\"}",
        );
        assert_eq!(under_ttft, 0.0);
        assert!(series("vllm:time_to_first_token_seconds_sum") >= 0.05 * STREAMS as f64);
        // And `/load` is back to nothing.
        let load = support::raw(mock.addr(), "GET", "/load", None).await;
        assert_eq!(load.json(), json!({"server_load": 0}));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_aborts_frees_its_slot_and_is_recorded() {
    bounded(async {
        let (mock, client) = mock(Timing::default().itl(ITL).max_num_seqs(2)).await;
        // Two long streams take both slots (1000 tokens at 10 ms: 10 s).
        let mut long = Vec::new();
        for _ in 0..2 {
            let mut stream = stream_request(&client, 1000).send_stream().await.unwrap();
            assert!(stream.try_next().await.unwrap().is_some());
            long.push(stream);
        }
        assert_eq!(mock.load(), (2, 0));
        // A third waits in line...
        let third = tokio::spawn({
            let client = client.clone();
            async move { stream_request(&client, 3).send().await }
        });
        let waited = Instant::now();
        while mock.load().1 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(mock.load(), (2, 1));
        // ...until a client goes away: its request is aborted and its slot goes to the third.
        drop(long.pop());
        let answer = third.await.unwrap().unwrap();
        assert_eq!(answer.usage.unwrap().completion_tokens, 3);
        assert!(waited.elapsed() < Duration::from_secs(5), "not after 10 s");
        // Recorded as aborted, and counted.
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.requests().iter().filter(|r| r.aborted).count() == 0 {
            assert!(Instant::now() < deadline, "the abort was not seen");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let aborted: Vec<bool> = mock.requests().iter().map(|r| r.aborted).collect();
        assert_eq!(aborted, [false, true, false], "the second long stream was dropped");
        drop(long);
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.load() != (0, 0) {
            assert!(Instant::now() < deadline, "{:?}", mock.load());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let text = client.server.metrics().send().await.unwrap();
        let reason = |r: &str| {
            metric(
                &text,
                &format!(
                    "vllm:request_success_total{{model_name=\"echo\",engine=\"0\",finished_reason=\"{r}\"}}"
                ),
            )
        };
        assert_eq!(reason("abort"), 2.0);
        assert_eq!(reason("length"), 1.0);
        // Tokens count as they were sent: the aborted streams' few, and the third's 3.
        let generated = metric(
            &text,
            "vllm:generation_tokens_total{model_name=\"echo\",engine=\"0\"}",
        );
        assert!((5.0..100.0).contains(&generated), "{generated}");
    })
    .await;
}

#[tokio::test]
async fn a_whole_answer_takes_the_prefill_and_every_token() {
    bounded(async {
        let (_mock, client) = mock(Timing::default().ttft(TTFT).itl(ITL)).await;
        let started = Instant::now();
        let answer = stream_request(&client, 20).send().await.unwrap();
        assert_eq!(answer.usage.unwrap().completion_tokens, 20);
        assert!(started.elapsed() >= TTFT + ITL * 19);
    })
    .await;
}

/// With engine steps, the streams' chunks leave together, on a clock shared by all requests,
/// every `itl`; without, each stream keeps its own phase, from when its request came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_steps_send_every_streams_tokens_together() {
    bounded(async {
        const STEP: Duration = Duration::from_millis(40);
        // Arrival times are when the client read the bytes: on a loaded machine a read can
        // come late, so a few arrivals (one in five) may miss the clock by more than this.
        const TOLERANCE: u128 = 5_000;
        // How many of `arrivals` are off a clock ticking every STEP, for the clock that fits
        // them best (ticking at one of them).
        let off_clock = |arrivals: &[Instant]| {
            let epoch = *arrivals.iter().min().unwrap();
            let at: Vec<u128> = arrivals
                .iter()
                .map(|a| a.duration_since(epoch).as_micros())
                .collect();
            let step = STEP.as_micros();
            at.iter()
                .map(|origin| {
                    at.iter()
                        .filter(|x| {
                            let since = (**x + step * 1000 - origin) % step;
                            since.min(step - since) > TOLERANCE
                        })
                        .count()
                })
                .min()
                .unwrap()
        };
        for steps in [true, false] {
            let timing = Timing::default().itl(STEP).engine_steps(steps);
            let (_mock, client) = mock(timing).await;
            // Three streams started about 12 ms apart (how far apart exactly depends on the
            // machine's load, so nothing below assumes it; out of step, they would be 12 and
            // 16 ms off a shared 40 ms clock).
            let mut tasks = Vec::new();
            for _ in 0..3 {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stream = stream_request(&client, 6).send_stream().await.unwrap();
                    let mut arrivals = Vec::new();
                    while let Some(event) = stream.try_next().await.unwrap() {
                        if matches!(event, StreamEvent::Content(_)) {
                            arrivals.extend(stream.timings().last_chunk());
                        }
                    }
                    (stream.timings().response_head(), arrivals)
                }));
                tokio::time::sleep(Duration::from_millis(12)).await;
            }
            let mut streams = Vec::new();
            for task in tasks {
                streams.push(task.await.unwrap());
            }
            let (mut off, mut total) = (0, 0);
            if steps {
                // One clock for every stream.
                let all: Vec<Instant> = streams.iter().flat_map(|(_, a)| a.clone()).collect();
                off = off_clock(&all);
                total = all.len();
            }
            for (head, arrivals) in &streams {
                if !steps {
                    // Each stream on its own clock...
                    off += off_clock(arrivals);
                    total += arrivals.len();
                    // ...from its first token, which came with its head (no first-token delay
                    // here), not at the next step of a shared clock.
                    let wait = arrivals[0].duration_since(*head);
                    assert!(
                        wait <= Duration::from_millis(8),
                        "first token {wait:?} after the head"
                    );
                }
            }
            assert!(
                off * 5 <= total,
                "steps {steps}: {off} of {total} arrivals off the clock by over 5 ms"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn tokens_are_paced_and_a_rate_cap_holds_for_the_server() {
    bounded(async {
        let (_mock, client) = mock(Timing::default().max_tokens_per_second(200.0)).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut stream = stream_request(&client, 25).send_stream().await.unwrap();
                    let mut gaps = Vec::new();
                    while let Some(event) = stream.try_next().await.unwrap() {
                        if matches!(event, StreamEvent::Content(_)) {
                            gaps.extend(stream.timings().last_gap());
                        }
                    }
                    gaps
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // 100 tokens at 200 per second over all requests: half a second at least.
        assert!(started.elapsed() >= Duration::from_millis(490));
    })
    .await;
}

#[tokio::test]
async fn a_script_and_the_replica_id_come_through() {
    bounded(async {
        let mock = MockServer::builder()
            .replica_id("replica-7")
            .start()
            .await
            .unwrap();
        let script = Script::from_json(
            r#"{"models": {"echo": {"reply": "scripted"}},
                "requests": [{"number": 2, "path": "/v1/chat/completions",
                              "error": {"status": 503, "message": "busy", "retry_after": 0}}]}"#,
        )
        .unwrap();
        mock.apply_script(&script);
        let client = VllmClient::builder()
            .base_url(mock.base_url())
            .max_retries(0)
            .build();
        let chat = || {
            client
                .chat
                .completions()
                .create()
                .model("echo")
                .messages(json!([{"role": "user", "content": "hi"}]))
        };
        let first = chat().send().await.unwrap();
        assert_eq!(first.content.as_deref(), Some("scripted"));
        assert_eq!(first.headers()["x-replica-id"], "replica-7");
        let second = chat().send().await.unwrap_err();
        assert_eq!(second.status_code(), Some(503));
        assert_eq!(second.headers().unwrap()["x-replica-id"], "replica-7");
        let third = chat().send().await.unwrap();
        assert_eq!(third.content.as_deref(), Some("scripted"));
        let mut seen = BTreeMap::new();
        for request in mock.requests() {
            *seen.entry(request.path).or_insert(0) += 1;
        }
        assert_eq!(seen["/v1/chat/completions"], 3);
    })
    .await;
}
