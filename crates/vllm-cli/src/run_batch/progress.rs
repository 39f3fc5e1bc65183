//! What the user sees while a batch runs: a progress bar on a terminal, plain lines every few
//! seconds otherwise, and a summary at the end. Everything goes to stderr (stdout may be the
//! output).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The counts the requests update and the display reads.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) output_tokens: AtomicU64,
}

impl Counts {
    pub(crate) fn add(&self, failed: bool, output_tokens: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.output_tokens
            .fetch_add(output_tokens, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.output_tokens.load(Ordering::Relaxed),
        )
    }
}

/// How progress is shown.
enum Display {
    Bar(ProgressBar),
    Lines { every: Duration, last: Instant },
}

/// The progress of one run.
pub(crate) struct Progress {
    counts: Arc<Counts>,
    total: u64,
    started: Instant,
    display: Display,
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
fn duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

impl Progress {
    /// Progress over `total` requests; a bar when stderr is a terminal.
    pub(crate) fn new(counts: Arc<Counts>, total: u64) -> Progress {
        let display = if std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(5));
            // No colours (NO_COLOR is honoured by having none).
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            Display::Bar(bar)
        } else {
            Display::Lines {
                every: Duration::from_secs(5),
                last: Instant::now(),
            }
        };
        Progress {
            counts,
            total,
            started: Instant::now(),
            display,
        }
    }

    /// `done/total, N errors, R req/s, T tok/s`.
    fn rates(&self) -> (u64, u64, f64, f64) {
        let (done, failed, tokens) = self.counts.get();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        (done, failed, done as f64 / secs, tokens as f64 / secs)
    }

    /// Redraws (called a few times a second).
    pub(crate) fn tick(&mut self) {
        let (done, failed, per_sec, tokens_per_sec) = self.rates();
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_position(done);
                bar.set_message(format!(
                    "{failed} errors, {per_sec:.1} req/s, {tokens_per_sec:.0} tok/s"
                ));
            }
            Display::Lines { every, last } => {
                if last.elapsed() < *every {
                    return;
                }
                *last = Instant::now();
                let eta = if per_sec > 0.0 {
                    duration(self.total.saturating_sub(done) as f64 / per_sec)
                } else {
                    "?".to_owned()
                };
                eprintln!(
                    "vllm-rs run-batch: {done}/{} done, {failed} errors, {per_sec:.1} req/s, \
                     {tokens_per_sec:.0} tok/s, eta {eta}",
                    self.total
                );
            }
        }
    }

    /// Clears the bar and prints the summary.
    pub(crate) fn finish(&mut self, how: &str, already: usize, output: &str) {
        let (done, failed, per_sec, tokens_per_sec) = self.rates();
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
        let mut summary = format!(
            "vllm-rs run-batch: {how}: {done} of {} requests in {} ({per_sec:.1} req/s, {tokens_per_sec:.0} output tok/s): {} succeeded, {failed} failed",
            self.total,
            duration(self.started.elapsed().as_secs_f64()),
            done - failed,
        );
        if already > 0 {
            summary.push_str(&format!("; {already} done by an earlier run"));
        }
        if output != "-" {
            summary.push_str(&format!("; results in {output}"));
        }
        eprintln!("{summary}");
    }

    /// Prints a line above the bar (or plainly).
    pub(crate) fn say(&self, text: &str) {
        match &self.display {
            Display::Bar(bar) => bar.suspend(|| eprintln!("{text}")),
            Display::Lines { .. } => eprintln!("{text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(4.4), "4s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }
}
