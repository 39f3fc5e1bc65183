//! Summary statistics as vLLM's benchmark computes them (numpy): the mean, the median, the
//! population standard deviation, and percentiles by linear interpolation between the closest
//! ranks (numpy's default, "type 7"). An empty sample gives 0.

/// The statistics of one metric, in the sample's unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) mean: f64,
    pub(crate) median: f64,
    pub(crate) std: f64,
    /// `(p, value)` for each percentile asked for, in that order.
    pub(crate) percentiles: Vec<(f64, f64)>,
    pub(crate) count: usize,
}

/// The `p`-th percentile (0–100) of `sorted`, interpolated linearly.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let low = rank.floor() as usize;
            let high = (low + 1).min(n - 1);
            let weight = rank - low as f64;
            sorted[low] + (sorted[high] - sorted[low]) * weight
        }
    }
}

/// Summarizes `values` (which it sorts).
pub(crate) fn summarize(values: &mut [f64], percentiles: &[f64]) -> Summary {
    if values.is_empty() {
        return Summary {
            percentiles: percentiles.iter().map(|p| (*p, 0.0)).collect(),
            ..Summary::default()
        };
    }
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Summary {
        mean,
        median: percentile(values, 50.0),
        std: variance.sqrt(),
        percentiles: percentiles
            .iter()
            .map(|p| (*p, percentile(values, *p)))
            .collect(),
        count: values.len(),
    }
}

/// A percentile's name in vLLM's keys: `99`, `99.9`, `50`.
pub(crate) fn percentile_name(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_agrees() {
        // numpy: np.percentile([1,2,3,4,10], [50, 90, 99, 25]) = [3, 7.6, 9.76, 2];
        // np.std([1,2,3,4,10]) = 3.1622776601683795.
        let mut values = [10.0, 2.0, 4.0, 1.0, 3.0];
        let summary = summarize(&mut values, &[50.0, 90.0, 99.0, 25.0]);
        assert_eq!(summary.mean, 4.0);
        assert_eq!(summary.median, 3.0);
        assert!((summary.std - 3.162_277_660_168_379_5).abs() < 1e-12);
        let got: Vec<f64> = summary.percentiles.iter().map(|(_, v)| *v).collect();
        for (got, want) in got.iter().zip([3.0, 7.6, 9.76, 2.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        assert_eq!(summarize(&mut [], &[99.0]).percentiles, [(99.0, 0.0)]);
        assert_eq!(percentile_name(99.0), "99");
        assert_eq!(percentile_name(99.9), "99.9");
    }
}
