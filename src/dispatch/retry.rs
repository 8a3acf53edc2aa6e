//! When to try a failed delivery again, and when to give up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::handlers::HandlerError;
use crate::store::NextStep;
use serde::{Deserialize, Serialize};

/// Retry policy for deliveries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Age of the event after which a failing delivery is dead-lettered.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Delay after the first failure; doubles each time.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Cap on the delay between attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Time a handler gets for one attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time running deliveries get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 30,
            max_age: Duration::from_secs(72 * 3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Longest `Retry-After` from a receiver that is honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Exponential backoff with jitter, bounded by attempts and by age.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// Age (since creation or replay) after which failures dead-letter.
    pub max_age: Duration,
    /// First delay.
    pub initial_backoff: Duration,
    /// Largest delay.
    pub max_backoff: Duration,
}

impl From<&DeliveryConfig> for RetryPolicy {
    fn from(config: &DeliveryConfig) -> Self {
        RetryPolicy {
            max_attempts: config.max_attempts,
            max_age: config.max_age,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`, before jitter: initial × 2^(attempt-1), capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff)
    }

    /// Where a delivery goes after attempt number `attempt` failed with `error`.
    pub fn after_failure(
        &self,
        attempt: u32,
        since: DateTime<Utc>,
        error: &HandlerError,
        now: DateTime<Utc>,
    ) -> NextStep {
        if !error.retryable || attempt >= self.max_attempts {
            return NextStep::Dead;
        }
        let backoff = self.backoff(attempt);
        // "Equal jitter": between half and all of the backoff, so retries spread out but never
        // come sooner than half the intended delay.
        let half = backoff / 2;
        let jittered = half + rand::thread_rng().gen_range(Duration::ZERO..=half);
        let delay = match error.retry_after {
            Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
            None => jittered,
        };
        let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let deadline =
            since + chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        if at > deadline {
            NextStep::Dead
        } else {
            NextStep::RetryAt(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let secs: Vec<u64> = (1..=8).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jitter_stays_between_half_and_full_backoff() {
        let p = policy();
        let now = Utc::now();
        for _ in 0..100 {
            let NextStep::RetryAt(at) = p.after_failure(3, now, &HandlerError::retryable("x"), now)
            else {
                panic!("expected a retry");
            };
            let delay = (at - now).num_milliseconds();
            assert!((2000..=4000).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = policy();
        let now = Utc::now();
        let mut error = HandlerError::retryable("429");
        error.retry_after = Some(Duration::from_secs(30));
        let NextStep::RetryAt(at) = p.after_failure(1, now, &error, now) else {
            panic!("expected a retry");
        };
        assert_eq!((at - now).num_seconds(), 30);
    }

    #[test]
    fn gives_up_on_permanent_errors_attempts_and_age() {
        let p = policy();
        let now = Utc::now();
        assert_eq!(
            p.after_failure(1, now, &HandlerError::permanent("400"), now),
            NextStep::Dead
        );
        assert_eq!(
            p.after_failure(5, now, &HandlerError::retryable("x"), now),
            NextStep::Dead
        );
        let old = now - chrono::Duration::hours(2);
        assert_eq!(
            p.after_failure(1, old, &HandlerError::retryable("x"), now),
            NextStep::Dead
        );
    }
}
