//! Exponential backoff with jitter, then the dead-letter set.

use std::time::Duration;

use rand::Rng;

/// When to retry a failed job, and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub base: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Attempts in total (first run included) before the job is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 2 s, 4 s, 8 s ... capped at 10 min, 8 attempts: about 8 minutes of an SMTP outage
    /// before a job is dead-lettered (the reconciler picks it up again later anyway).
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `failed_attempts` (1 = first retry): `base * 2^(n-1)`,
    /// capped, then scaled by a random factor in [0.5, 1.0] ("equal jitter") so jobs that
    /// failed together (an SMTP outage) do not all come back in the same second.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max_delay);
        let factor: f64 = rand::rng().random_range(0.5..=1.0);
        raw.mul_f64(factor)
    }

    /// Whether a job that has now failed `failed_attempts` times should be dead-lettered.
    pub fn exhausted(&self, failed_attempts: u32) -> bool {
        failed_attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_attempts: 5,
        };
        for n in 1..8 {
            let d = p.delay(n);
            let raw = Duration::from_secs(1u64 << (n - 1)).min(Duration::from_secs(10));
            assert!(d >= raw.mul_f64(0.5) && d <= raw, "attempt {n}: {d:?}");
        }
        assert!(!p.exhausted(4));
        assert!(p.exhausted(5));
    }
}
