//! `GET /metrics`: a few of vLLM's Prometheus series, counted as requests are answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

/// The content type of Prometheus' text format, as `prometheus_client` sends it.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The finish reasons vLLM's `request_success_total` has a series for from the start.
const FINISH_REASONS: [&str; 4] = ["stop", "length", "abort", "error"];

/// The handlers vLLM's HTTP instrumentation leaves out.
const UNCOUNTED: [&str; 3] = ["/metrics", "/health", "/version"];

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
    /// By handler, method and status class (`2xx`).
    http: BTreeMap<(String, String, String), u64>,
}

impl Metrics {
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request to `model` (a base model) that finished for `reason` (`stop`, `length`, …)
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
    /// gauges of running and waiting requests (always 0: the mock answers at once), the token
    /// counters and `vllm:request_success_total` by finish reason; then `http_requests_total`.
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
        header(
            &mut out,
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
        );
        model_series(&mut out, "vllm:num_requests_running", &|_| 0);
        header(
            &mut out,
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
        );
        model_series(&mut out, "vllm:num_requests_waiting", &|_| 0);
        header(
            &mut out,
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
        );
        model_series(&mut out, "vllm:prompt_tokens_total", &|m| {
            counters.prompt_tokens.get(m).copied().unwrap_or(0)
        });
        header(
            &mut out,
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
        );
        model_series(&mut out, "vllm:generation_tokens_total", &|m| {
            counters.generation_tokens.get(m).copied().unwrap_or(0)
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
