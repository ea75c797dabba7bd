//! Exponential backoff with jitter: the delays between attempts of a retried request.

use crate::config::RetryPolicy;
use std::time::Duration;

/// The delays of one sequence of attempts; `reset` after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// How long to wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter * rand::random::<f64>();
        base.mul_f64(factor)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before jitter for the next failure.
    fn ceiling(&self) -> Duration {
        let exponent = i32::try_from(self.failures.min(64)).unwrap_or(64);
        let multiplier = self.policy.multiplier.max(1.0);
        let seconds = self.policy.initial.as_secs_f64() * multiplier.powi(exponent);
        let max = self.policy.max.as_secs_f64();
        Duration::from_secs_f64(if seconds.is_finite() {
            seconds.min(max)
        } else {
            max
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn delays_double_up_to_the_max() {
        let mut backoff = Backoff::new(policy(0.0));
        let delays: Vec<u128> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next_delay().as_millis(), 100);
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let mut backoff = Backoff::new(policy(0.5));
        for _ in 0..200 {
            backoff.reset();
            let delay = backoff.next_delay();
            assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_millis(100));
        }
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut backoff = Backoff::new(policy(0.0));
        for _ in 0..10_000 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
    }
}
