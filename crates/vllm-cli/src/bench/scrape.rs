//! `--scrape-metrics`: the server's own view of the run, from its Prometheus `/metrics`
//! (vLLM's names): requests running and waiting and KV-cache use, sampled every second, and
//! its latency histograms read before and after the run, so that their sums and counts give
//! the server's mean TTFT, inter-token latency and end-to-end latency over the run alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use vllm_client::VllmClient;

/// The sums of every series of each metric in one scrape.
type Sample = HashMap<String, f64>;

/// Reads Prometheus text: each metric name (labels dropped) with its series summed.
pub(crate) fn parse(text: &str) -> Sample {
    let mut sums = Sample::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(at) => line.split_at(at),
            None => continue,
        };
        let value = rest
            .rsplit_once('}')
            .map_or(rest, |(_, v)| v)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value.filter(|v| v.is_finite()) {
            *sums.entry(name.to_owned()).or_default() += value;
        }
    }
    sums
}

/// Scrapes `/metrics` once.
async fn scrape(client: &VllmClient) -> Option<Sample> {
    let text = client.server.metrics().send().await.ok()?;
    Some(parse(&text))
}

/// The scraping of a run.
pub(crate) struct Scraper {
    client: VllmClient,
    before: Option<Sample>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

/// Starts scraping: one scrape now, then one a second until [`Scraper::finish`].
pub(crate) async fn start(client: &VllmClient) -> Scraper {
    let before = scrape(client).await;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn({
        let (client, samples) = (client.clone(), samples.clone());
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if let Some(sample) = scrape(&client).await {
                    let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
                    // Bounded: an hour of samples.
                    if samples.len() >= 3600 {
                        samples.remove(0);
                    }
                    samples.push(sample);
                }
            }
        }
    });
    Scraper {
        client: client.clone(),
        before,
        samples,
        task,
    }
}

/// The server's view over the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerView {
    /// Mean TTFT, inter-token latency and end-to-end latency, in ms, over the run.
    pub(crate) mean_ttft_ms: Option<f64>,
    pub(crate) mean_itl_ms: Option<f64>,
    pub(crate) mean_e2el_ms: Option<f64>,
    /// Running and waiting requests and KV-cache use (0–1): (mean, max) over the samples.
    pub(crate) running: Option<(f64, f64)>,
    pub(crate) waiting: Option<(f64, f64)>,
    pub(crate) kv_cache: Option<(f64, f64)>,
    pub(crate) samples: usize,
}

impl ServerView {
    pub(crate) fn to_json(&self) -> Value {
        let pair = |p: Option<(f64, f64)>| p.map(|(mean, max)| json!({"mean": mean, "max": max}));
        json!({
            "mean_ttft_ms": self.mean_ttft_ms,
            "mean_itl_ms": self.mean_itl_ms,
            "mean_e2el_ms": self.mean_e2el_ms,
            "running": pair(self.running),
            "waiting": pair(self.waiting),
            "kv_cache_usage": pair(self.kv_cache),
            "samples": self.samples,
        })
    }
}

impl Scraper {
    /// Stops scraping and sums up.
    pub(crate) async fn finish(self) -> ServerView {
        self.task.abort();
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        let after = scrape(&self.client).await;
        let mean_of = |histogram: &str| -> Option<f64> {
            let (before, after) = (self.before.as_ref()?, after.as_ref()?);
            let delta = |suffix: &str| {
                let key = format!("{histogram}{suffix}");
                Some(after.get(&key)? - before.get(&key).copied().unwrap_or(0.0))
            };
            let (sum, count) = (delta("_sum")?, delta("_count")?);
            (count > 0.0).then(|| sum / count * 1e3)
        };
        let over = |names: &[&str]| -> Option<(f64, f64)> {
            let values: Vec<f64> = samples
                .iter()
                .filter_map(|s| names.iter().find_map(|n| s.get(*n).copied()))
                .collect();
            if values.is_empty() {
                return None;
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            Some((mean, values.iter().copied().fold(f64::MIN, f64::max)))
        };
        ServerView {
            mean_ttft_ms: mean_of("vllm:time_to_first_token_seconds"),
            mean_itl_ms: mean_of("vllm:inter_token_latency_seconds")
                .or_else(|| mean_of("vllm:time_per_output_token_seconds")),
            mean_e2el_ms: mean_of("vllm:e2e_request_latency_seconds"),
            running: over(&["vllm:num_requests_running"]),
            waiting: over(&["vllm:num_requests_waiting"]),
            kv_cache: over(&["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
            samples: samples.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_summed_by_name() {
        let text = "# HELP x\n\
            vllm:num_requests_running{engine=\"0\",model_name=\"a\"} 3.0\n\
            vllm:num_requests_running{engine=\"1\",model_name=\"a\"} 2\n\
            vllm:time_to_first_token_seconds_sum{model_name=\"a b}\"} 1.5\n\
            plain 7\n\
            broken{ x\n";
        let sums = parse(text);
        assert_eq!(sums["vllm:num_requests_running"], 5.0);
        assert_eq!(sums["vllm:time_to_first_token_seconds_sum"], 1.5);
        assert_eq!(sums["plain"], 7.0);
        assert!(!sums.contains_key("broken"));
    }
}
