//! When each request is sent: arrivals as vLLM's benchmark makes them. The gaps between
//! arrivals are drawn from a gamma distribution of shape `burstiness` and mean `1/rate`
//! (shape 1: exponential gaps, a Poisson process); with a fixed number of requests the
//! arrival times are then scaled so that the last is at exactly `n / rate`, as vLLM does. An
//! infinite rate sends everything at once.

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, Gamma};

/// The request rate: a number of requests per second, or all at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rate {
    PerSecond(f64),
    Infinite,
}

impl Rate {
    /// `4`, `0.5`, `inf`.
    pub(crate) fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("inf") {
            return Ok(Rate::Infinite);
        }
        match text.parse::<f64>() {
            Ok(rate) if rate.is_infinite() && rate > 0.0 => Ok(Rate::Infinite),
            Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(Rate::PerSecond(rate)),
            _ => Err(format!(
                "--request-rate {text:?}: want requests per second above 0, or inf"
            )),
        }
    }

    /// `inf` or the number, as vLLM prints it (`4.0`).
    pub(crate) fn label(self) -> String {
        match self {
            Rate::Infinite => "inf".to_owned(),
            Rate::PerSecond(rate) => format!("{rate:?}"),
        }
    }
}

/// The arrival times, in seconds from the start.
pub(crate) struct Arrivals {
    rate: Rate,
    gaps: Option<Gamma<f64>>,
    rng: StdRng,
    at: f64,
}

impl Arrivals {
    pub(crate) fn new(rate: Rate, burstiness: f64, seed: u64) -> Result<Arrivals, String> {
        if !(burstiness.is_finite() && burstiness > 0.0) {
            return Err(format!("--burstiness {burstiness}: want a number above 0"));
        }
        let gaps = match rate {
            Rate::Infinite => None,
            Rate::PerSecond(rate) => Some(
                Gamma::new(burstiness, 1.0 / (rate * burstiness))
                    .map_err(|e| format!("--burstiness {burstiness}: {e}"))?,
            ),
        };
        Ok(Arrivals {
            rate,
            gaps,
            rng: StdRng::seed_from_u64(seed),
            at: 0.0,
        })
    }

    /// The next arrival time (an endless sequence).
    pub(crate) fn next_at(&mut self) -> f64 {
        if let Some(gaps) = &self.gaps {
            self.at += gaps.sample(&mut self.rng);
        }
        self.at
    }

    /// `n` arrival times, scaled so that the last is at `n / rate` (as vLLM scales them).
    pub(crate) fn fixed(&mut self, n: usize) -> Vec<f64> {
        let mut times: Vec<f64> = (0..n).map(|_| self.next_at()).collect();
        if let (Rate::PerSecond(rate), Some(last)) = (self.rate, times.last().copied()) {
            if last > 0.0 {
                let scale = n as f64 / rate / last;
                for t in &mut times {
                    *t *= scale;
                }
            }
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_arrivals_have_the_rate_and_end_at_n_over_rate() {
        let times = Arrivals::new(Rate::PerSecond(20.0), 1.0, 7)
            .unwrap()
            .fixed(2000);
        assert!((times[1999] - 100.0).abs() < 1e-9);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // Exponential gaps: the standard deviation is about the mean.
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let std = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((mean - 0.05).abs() < 0.005, "{mean}");
        assert!((std / mean - 1.0).abs() < 0.1, "{}", std / mean);
        // Burstiness 4: more regular (coefficient of variation 1/2).
        let times = Arrivals::new(Rate::PerSecond(20.0), 4.0, 7)
            .unwrap()
            .fixed(2000);
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let std = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((std / mean - 0.5).abs() < 0.06, "{}", std / mean);
    }

    #[test]
    fn the_seed_fixes_the_schedule_and_inf_sends_at_once() {
        let a = Arrivals::new(Rate::PerSecond(3.0), 1.0, 1)
            .unwrap()
            .fixed(10);
        let b = Arrivals::new(Rate::PerSecond(3.0), 1.0, 1)
            .unwrap()
            .fixed(10);
        let c = Arrivals::new(Rate::PerSecond(3.0), 1.0, 2)
            .unwrap()
            .fixed(10);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Arrivals::new(Rate::Infinite, 1.0, 1).unwrap().fixed(3),
            [0.0; 3]
        );
        assert_eq!(Rate::parse("inf"), Ok(Rate::Infinite));
        assert_eq!(Rate::parse("2"), Ok(Rate::PerSecond(2.0)));
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("x").is_err());
        assert_eq!(Rate::PerSecond(4.0).label(), "4.0");
    }
}
