//! Housekeeping: removing finished jobs (`purge`), dropping archived months, vacuuming the
//! job tables (`vacuum`) and reading the embedded server's logs (`logs`). Each module's `//!`
//! says what it guarantees and what a kill -9 leaves.

pub mod logs;
pub mod purge;
pub mod vacuum;

/// The p99 and max of batch durations in milliseconds (None without batches).
pub fn p99_and_max(mut ms: Vec<f64>) -> (Option<f64>, Option<f64>) {
    if ms.is_empty() {
        return (None, None);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let rank = ((ms.len() as f64) * 0.99).ceil() as usize;
    let p99 = ms[rank.clamp(1, ms.len()) - 1];
    (Some(p99), ms.last().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_a_hundred_is_the_99th() {
        let ms: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p99_and_max(ms), (Some(99.0), Some(100.0)));
        assert_eq!(p99_and_max(vec![]), (None, None));
        assert_eq!(p99_and_max(vec![5.0]), (Some(5.0), Some(5.0)));
    }
}
