//! `GET /metrics`: a few of vLLM's Prometheus series, counted as requests are answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

/// The content type of Prometheus' text format, as `prometheus_client` sends it.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The finish reasons vLLM's `request_success_total` has a series for from the start.
const FINISH_REASONS: [&str; 4] = ["stop", "length", "abort", "error"];

/// The handlers vLLM's HTTP instrumentation leaves out.
const UNCOUNTED: [&str; 4] = ["/metrics", "/health", "/version", "/load"];

/// vLLM's `TIME_TO_FIRST_TOKEN_BUCKETS`.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's `INTER_TOKEN_LATENCY_BUCKETS`.
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's `REQUEST_LATENCY_BUCKETS` (end-to-end and queue time).
const REQUEST_LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// The histograms, by name, help and buckets.
const HISTOGRAMS: [(&str, &str, &[f64]); 4] = [
    (
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        TTFT_BUCKETS,
    ),
    (
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        ITL_BUCKETS,
    ),
    (
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        REQUEST_LATENCY_BUCKETS,
    ),
    (
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        REQUEST_LATENCY_BUCKETS,
    ),
];

/// Which histogram an observation goes to (an index into [`HISTOGRAMS`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Histogram {
    /// Time to first token.
    Ttft = 0,
    /// Inter-token latency.
    Itl = 1,
    /// End-to-end latency.
    E2e = 2,
    /// Time waiting for a slot.
    Queue = 3,
}

/// The counters behind `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// By base model and finish reason.
    finished: BTreeMap<(String, &'static str), u64>,
    /// By base model.
    prompt_tokens: BTreeMap<String, u64>,
    /// By base model.
    generation_tokens: BTreeMap<String, u64>,
    /// Requests generating now, by base model.
    running: BTreeMap<String, u64>,
    /// Requests waiting for a slot, by base model.
    waiting: BTreeMap<String, u64>,
    /// By base model, one per entry of [`HISTOGRAMS`].
    histograms: BTreeMap<String, [Buckets; 4]>,
    /// By handler, method and status class (`2xx`).
    http: BTreeMap<(String, String, String), u64>,
}

/// The counts of one histogram.
#[derive(Debug, Default, Clone)]
struct Buckets {
    /// Per bucket of the histogram (not cumulative).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

/// A gauge a request moves through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gauge {
    /// `vllm:num_requests_running`.
    Running,
    /// `vllm:num_requests_waiting`.
    Waiting,
}

impl Metrics {
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request to `model` (a base model) ended for `reason` (`stop`, `length`, `abort`, …)
    /// after `prompt` prompt tokens and `generated` output tokens.
    pub(crate) fn finished(&self, model: &str, reason: &'static str, prompt: u32, generated: u32) {
        let mut counters = self.counters();
        *counters
            .finished
            .entry((model.to_owned(), reason))
            .or_default() += 1;
        *counters.prompt_tokens.entry(model.to_owned()).or_default() += u64::from(prompt);
        *counters
            .generation_tokens
            .entry(model.to_owned())
            .or_default() += u64::from(generated);
    }

    /// `generated` more output tokens of a request to `model`.
    pub(crate) fn generated(&self, model: &str, generated: u32) {
        *self
            .counters()
            .generation_tokens
            .entry(model.to_owned())
            .or_default() += u64::from(generated);
    }

    /// `prompt` prompt tokens of a request to `model` were processed.
    pub(crate) fn prompt(&self, model: &str, prompt: u32) {
        *self
            .counters()
            .prompt_tokens
            .entry(model.to_owned())
            .or_default() += u64::from(prompt);
    }

    /// A request to `model` ended for `reason`.
    pub(crate) fn success(&self, model: &str, reason: &'static str) {
        *self
            .counters()
            .finished
            .entry((model.to_owned(), reason))
            .or_default() += 1;
    }

    /// A request to `model` entered (`up`) or left a gauge.
    pub(crate) fn gauge(&self, model: &str, gauge: Gauge, up: bool) {
        let mut counters = self.counters();
        let map = match gauge {
            Gauge::Running => &mut counters.running,
            Gauge::Waiting => &mut counters.waiting,
        };
        let value = map.entry(model.to_owned()).or_default();
        *value = if up {
            *value + 1
        } else {
            value.saturating_sub(1)
        };
    }

    /// An observation of `seconds` for `model` in `histogram`.
    pub(crate) fn observe(&self, model: &str, histogram: Histogram, seconds: f64) {
        let index = histogram as usize;
        let bounds = HISTOGRAMS[index].2;
        let mut counters = self.counters();
        let all = counters.histograms.entry(model.to_owned()).or_default();
        let buckets = &mut all[index];
        if buckets.counts.is_empty() {
            buckets.counts = vec![0; bounds.len()];
        }
        if let Some(bucket) = bounds.iter().position(|le| seconds <= *le) {
            buckets.counts[bucket] += 1;
        }
        buckets.count += 1;
        buckets.sum += seconds;
    }

    /// An answer with `status` to a request for `handler` (a route, or `none`).
    pub(crate) fn http(&self, handler: &str, method: &str, status: u16) {
        if UNCOUNTED.contains(&handler) {
            return;
        }
        let class = format!("{}xx", status / 100);
        *self
            .counters()
            .http
            .entry((handler.to_owned(), method.to_owned(), class))
            .or_default() += 1;
    }

    /// The Prometheus text: per base model in `models` (and any model counted before), the
    /// gauges of running and waiting requests, the token counters, `vllm:request_success_total`
    /// by finish reason and the latency histograms; then `http_requests_total`.
    pub(crate) fn render(&self, models: &[String]) -> String {
        let counters = self.counters();
        let mut names: Vec<&str> = models.iter().map(String::as_str).collect();
        for (model, _) in counters.finished.keys() {
            if !names.contains(&model.as_str()) {
                names.push(model);
            }
        }
        let mut out = String::new();
        let model_series = |out: &mut String, name: &str, values: &dyn Fn(&str) -> u64| {
            for model in &names {
                let _ = writeln!(
                    out,
                    "{name}{{model_name=\"{}\",engine=\"0\"}} {}",
                    escape(model),
                    number(values(model))
                );
            }
        };
        let get = |map: &BTreeMap<String, u64>, model: &str| map.get(model).copied().unwrap_or(0);
        header(
            &mut out,
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
        );
        model_series(&mut out, "vllm:num_requests_running", &|m| {
            get(&counters.running, m)
        });
        header(
            &mut out,
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
        );
        model_series(&mut out, "vllm:num_requests_waiting", &|m| {
            get(&counters.waiting, m)
        });
        header(
            &mut out,
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
        );
        model_series(&mut out, "vllm:prompt_tokens_total", &|m| {
            get(&counters.prompt_tokens, m)
        });
        header(
            &mut out,
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
        );
        model_series(&mut out, "vllm:generation_tokens_total", &|m| {
            get(&counters.generation_tokens, m)
        });
        header(
            &mut out,
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
        );
        for model in &names {
            for reason in FINISH_REASONS {
                let count = counters
                    .finished
                    .get(&((*model).to_owned(), reason))
                    .copied()
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "vllm:request_success_total{{model_name=\"{}\",engine=\"0\",finished_reason=\"{reason}\"}} {}",
                    escape(model),
                    number(count)
                );
            }
        }
        for (index, (name, help, bounds)) in HISTOGRAMS.iter().enumerate() {
            header(&mut out, name, "histogram", help);
            for model in &names {
                let empty = Buckets::default();
                let buckets = counters
                    .histograms
                    .get(*model)
                    .map_or(&empty, |all| &all[index]);
                let labels = format!("model_name=\"{}\",engine=\"0\"", escape(model));
                let mut cumulative = 0;
                for (i, le) in bounds.iter().enumerate() {
                    cumulative += buckets.counts.get(i).copied().unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels},le=\"{le:?}\"}} {}",
                        number(cumulative)
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
                    number(buckets.count)
                );
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", number(buckets.count));
                let _ = writeln!(out, "{name}_sum{{{labels}}} {:?}", buckets.sum);
            }
        }
        header(
            &mut out,
            "http_requests_total",
            "counter",
            "Total number of requests by method, status and handler.",
        );
        for ((handler, method, status), count) in &counters.http {
            let _ = writeln!(
                out,
                "http_requests_total{{handler=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                escape(handler),
                escape(method),
                number(*count)
            );
        }
        out
    }
}

/// `# HELP` and `# TYPE` of a series.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A count as Prometheus' Python client writes it: `3.0`.
fn number(count: u64) -> String {
    format!("{count}.0")
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_per_model_and_reason() {
        let metrics = Metrics::default();
        let models = vec!["echo".to_owned()];
        let before = metrics.render(&models);
        assert!(before.contains(
            "vllm:request_success_total{model_name=\"echo\",engine=\"0\",finished_reason=\"stop\"} 0.0\n"
        ));
        assert!(before.contains("# TYPE vllm:request_success_total counter\n"));
        metrics.finished("echo", "stop", 9, 4);
        metrics.finished("echo", "length", 9, 2);
        metrics.http("/v1/chat/completions", "POST", 200);
        metrics.http("/v1/chat/completions", "POST", 404);
        metrics.http("/health", "GET", 200);
        let after = metrics.render(&models);
        assert!(after.contains(
            "vllm:request_success_total{model_name=\"echo\",engine=\"0\",finished_reason=\"stop\"} 1.0\n"
        ));
        assert!(
            after.contains("vllm:prompt_tokens_total{model_name=\"echo\",engine=\"0\"} 18.0\n")
        );
        assert!(
            after.contains("vllm:generation_tokens_total{model_name=\"echo\",engine=\"0\"} 6.0\n")
        );
        assert!(after.contains(
            "http_requests_total{handler=\"/v1/chat/completions\",method=\"POST\",status=\"2xx\"} 1.0\n"
        ));
        assert!(after.contains("status=\"4xx\"} 1.0\n"));
        assert!(!after.contains("/health"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
