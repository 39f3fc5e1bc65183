//! The self-contained HTML report of `--html-report`: latency CDFs, throughput and
//! concurrency over time, and a sweep's curve.

use std::path::Path;

use super::result::{Config, Ordered};
use super::run::Outcome;

/// One run (one point of a sweep), as the report draws it.
pub(crate) struct RunView<'a> {
    pub(crate) config: &'a Config,
    pub(crate) outcome: &'a Outcome,
    /// The run's result, with vLLM's keys (`mean_ttft_ms`, `output_throughput`, …).
    pub(crate) json: &'a Ordered,
}

/// Writes the report of `runs` to `path`.
pub(crate) fn write(path: &Path, runs: &[RunView<'_>]) -> std::io::Result<()> {
    let _ = runs;
    std::fs::write(
        path,
        "<!doctype html><title>vllm-rs bench</title><p>TODO</p>\n",
    )
}
