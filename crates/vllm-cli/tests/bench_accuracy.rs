//! `vllm-rs bench serve` against a mock with known timing (50 ms to the first token, 10 ms a
//! token, 32 slots) measures that timing, at concurrency 1 and 32, and shows queueing as
//! growing TTFT above 32. One test in a binary of its own, so that nothing else shares the
//! machine while it measures.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vllm_mock::{MockServer, Timing};

use support::{run, stderr, temp_dir, vllm_rs_line};

const TTFT_MS: f64 = 50.0;
const ITL_MS: f64 = 10.0;

fn within(measured: f64, configured: f64, share: f64) -> bool {
    (measured - configured).abs() <= configured * share
}

async fn bench(url: &str, dir: &Path, concurrency: usize, prompts: usize, rate: &str) -> Value {
    let name = format!("c{concurrency}.json");
    let output = run(
        vllm_rs_line(&format!(
            "bench serve --base-url {url} --backend openai-chat \
             --random-input-len 16 --random-output-len 21 --num-prompts {prompts} \
             --max-concurrency {concurrency} --request-rate {rate} \
             --percentile-metrics ttft,tpot,itl,e2el,itl_token --metric-percentiles 50,99 \
             --save-result --result-dir {} --result-filename {name}",
            dir.display()
        )),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_latencies_match_the_configured_ones() {
    let mock = MockServer::builder()
        .timing(
            Timing::default()
                .ttft(Duration::from_millis(TTFT_MS as u64))
                .itl(Duration::from_millis(ITL_MS as u64))
                .max_num_seqs(32),
        )
        .record_requests(false)
        .start()
        .await
        .unwrap();
    let dir = temp_dir("bench-accuracy");
    let url = mock.base_url();
    // At 32, requests arrive at 200 a second (each takes 250 ms, so 32 are in flight once
    // it fills): 32 arriving in the same instant would also time the mock's parsing of 32
    // requests at once, in a debug build.
    for (concurrency, prompts, rate) in [(1, 12, "inf"), (32, 96, "200")] {
        let result = bench(&url, &dir, concurrency, prompts, rate).await;
        let get = |key: &str| result[key].as_f64().unwrap();
        assert_eq!(result["completed"], prompts, "{result}");
        assert_eq!(result["total_output_tokens"], prompts * 21);
        for (key, configured) in [
            ("mean_ttft_ms", TTFT_MS),
            ("mean_tpot_ms", ITL_MS),
            // vLLM's ITL is per chunk; the chat role chunk comes with the first token, so
            // its mean is 20/21 of the token gap: the median is the gap.
            ("median_itl_ms", ITL_MS),
            ("mean_itl_token_ms", ITL_MS),
            ("mean_e2el_ms", TTFT_MS + 20.0 * ITL_MS),
        ] {
            assert!(
                within(get(key), configured, 0.05),
                "concurrency {concurrency}: {key} = {} against {configured} configured",
                get(key)
            );
        }
    }

    // Above the 32 slots, requests wait for one: TTFT grows by a whole request for those
    // that wait, the decode does not slow.
    let result = bench(&url, &dir, 64, 128, "inf").await;
    let get = |key: &str| result[key].as_f64().unwrap();
    let one_request = TTFT_MS + 20.0 * ITL_MS;
    assert!(
        get("mean_ttft_ms") > TTFT_MS + one_request * 0.4,
        "{result}"
    );
    assert!(get("p99_ttft_ms") > TTFT_MS + one_request * 0.9, "{result}");
    assert!(within(get("mean_tpot_ms"), ITL_MS, 0.05), "{result}");
    std::fs::remove_dir_all(&dir).unwrap();
}
