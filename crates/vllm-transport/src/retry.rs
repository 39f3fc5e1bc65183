//! Retry delays: exponential backoff with jitter, and the server's `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// When to wait how long between attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
    pub(crate) retry_after_max: Duration,
}

impl Backoff {
    /// The delay before retry number `retry` (0 for the first retry), honouring the
    /// server's `retry-after-ms` / `Retry-After` headers (capped) when it sent them.
    pub(crate) fn delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        if let Some(wanted) = headers.and_then(retry_after) {
            return wanted.min(self.retry_after_max);
        }
        self.backoff(retry, jitter_unit())
    }

    /// Exponential backoff, `base * 2^retry` capped at `max`, with "equal jitter": the delay
    /// is uniformly distributed in `[d/2, d]` (`unit` is uniform in `[0, 1)`).
    fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        let full = self.base.saturating_mul(factor).min(self.max);
        full.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// How long the server asked us to wait: `retry-after-ms` (milliseconds, as OpenAI-style
/// servers send it) wins over `Retry-After` (delta-seconds or an HTTP-date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_non_negative) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header_str(headers, "retry-after")?;
    if let Some(secs) = parse_non_negative(value) {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn parse_non_negative(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A uniform number in `[0, 1)`: std's randomly keyed SipHash over the current time is
/// plenty for spreading retries, and needs no dependency.
fn jitter_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    hasher.write_u128(now.as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(60),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
        }
        map
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = backoff();
        assert_eq!(b.backoff(0, 0.0), Duration::from_millis(250));
        assert_eq!(b.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.backoff(10, 0.0), Duration::from_secs(4));
        assert_eq!(b.backoff(u32::MAX, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn jittered_delay_stays_in_range() {
        let b = backoff();
        for _ in 0..100 {
            let d = b.delay(1, None);
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_ms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        // retry-after-ms is more precise and wins.
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "3"),
                ("retry-after-ms", "1500")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_http_date() {
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&headers(&[("retry-after", &future)])).unwrap_or_default();
        assert!(
            d > Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_capped() {
        let h = headers(&[("retry-after", "3600")]);
        assert_eq!(backoff().delay(0, Some(&h)), Duration::from_secs(60));
    }
}
