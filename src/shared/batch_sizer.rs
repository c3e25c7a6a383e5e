//! The adaptive batch size of a finalize run.

use std::time::Duration;

/// Adapts the batch size toward a target batch duration, the idea of GitLab's batch
/// optimizer: the time per row is smoothed exponentially, the size grows at most 20% per
/// batch, shrinks as far as needed, and stays within `[min, max]` (max honours the
/// migration's max_batch_size). Without a target the size only halves on timeouts.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    size: i64,
    min: i64,
    max: i64,
    target: Option<Duration>,
    secs_per_row: Option<f64>,
}

const SMOOTHING: f64 = 0.3;
const MAX_GROWTH: f64 = 1.2;

impl BatchSizer {
    pub fn new(size: i64, min: i64, max: i64, target: Option<Duration>) -> BatchSizer {
        let min = min.max(1);
        let max = max.max(min);
        BatchSizer {
            size: size.clamp(min, max),
            min,
            max,
            target,
            secs_per_row: None,
        }
    }

    pub fn size(&self) -> i64 {
        self.size
    }

    pub fn record(&mut self, rows: i64, took: Duration) {
        let Some(target) = self.target else { return };
        if rows <= 0 {
            return;
        }
        let sample = took.as_secs_f64() / rows as f64;
        let smoothed = match self.secs_per_row {
            Some(prev) => SMOOTHING * sample + (1.0 - SMOOTHING) * prev,
            None => sample,
        };
        self.secs_per_row = Some(smoothed);
        let ideal = if smoothed > 0.0 {
            target.as_secs_f64() / smoothed
        } else {
            f64::MAX
        };
        let next = ideal.min(self.size as f64 * MAX_GROWTH);
        self.size = (next.round() as i64).clamp(self.min, self.max);
    }

    pub fn on_timeout(&mut self) {
        self.size = (self.size / 2).max(self.min);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizer_grows_at_most_20_percent_per_batch() {
        let mut s = BatchSizer::new(1000, 100, 1_000_000, Some(Duration::from_secs(1)));
        s.record(1000, Duration::from_millis(10));
        assert_eq!(s.size(), 1200);
        s.record(1200, Duration::from_millis(12));
        assert_eq!(s.size(), 1440);
    }

    #[test]
    fn sizer_shrinks_toward_target_and_respects_bounds() {
        let mut s = BatchSizer::new(10_000, 1000, 20_000, Some(Duration::from_millis(100)));
        // 10 s for 10k rows: 1 ms per row, target 100 ms -> 100 rows, bounded by min 1000.
        s.record(10_000, Duration::from_secs(10));
        assert_eq!(s.size(), 1000);
        let mut s = BatchSizer::new(10_000, 1000, 11_000, Some(Duration::from_secs(10)));
        for _ in 0..10 {
            let size = s.size();
            s.record(size, Duration::from_millis(1));
        }
        assert_eq!(s.size(), 11_000, "max_batch_size is honoured");
    }

    #[test]
    fn sizer_smooths_outliers() {
        let mut s = BatchSizer::new(1000, 10, 1_000_000, Some(Duration::from_millis(1000)));
        s.record(1000, Duration::from_millis(1000));
        assert_eq!(s.size(), 1000);
        // One batch 10x slower moves the estimate only by the smoothing factor.
        s.record(1000, Duration::from_millis(10_000));
        let expected = (1.0f64 / (0.3 * 0.01 + 0.7 * 0.001)).round() as i64;
        assert_eq!(s.size(), expected);
    }

    #[test]
    fn sizer_without_target_only_halves_on_timeout() {
        let mut s = BatchSizer::new(5000, 1000, 100_000, None);
        s.record(5000, Duration::from_millis(1));
        assert_eq!(s.size(), 5000);
        s.on_timeout();
        assert_eq!(s.size(), 2500);
        s.on_timeout();
        s.on_timeout();
        assert_eq!(s.size(), 1000);
    }
}
