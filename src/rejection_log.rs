//! Logging rejected webhook requests without letting a flood of them flood the log.
//!
//! Every rejection is counted in `hookline_requests_total`; the log line is for a person. A
//! sender that keeps retrying into a full server, or someone posting forged requests, can cause
//! tens of thousands of rejections a second, and one line each would bury everything else and
//! fill the disk. So each reason gets at most one line per [`INTERVAL`]; the line says how many
//! rejections for the same reason were left out since the previous one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest time between two lines for the same reason.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Per reason: when its last line was written, and how many were left out since.
#[derive(Debug, Default)]
pub struct RejectionLog {
    reasons: Mutex<HashMap<&'static str, Budget>>,
}

#[derive(Debug)]
struct Budget {
    last_line: Instant,
    left_out: u64,
}

impl RejectionLog {
    /// Whether a rejection for `reason` at `now` gets a line: `Some(n)` with the number of the
    /// same reason left out since the last line, or `None` (counted, to be reported later).
    pub fn admit(&self, reason: &'static str, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked mid-update of two counters.
        let mut reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        match reasons.get_mut(reason) {
            Some(budget) if now.duration_since(budget.last_line) < INTERVAL => {
                budget.left_out += 1;
                None
            }
            Some(budget) => {
                budget.last_line = now;
                Some(std::mem::take(&mut budget.left_out))
            }
            None => {
                let budget = Budget {
                    last_line: now,
                    left_out: 0,
                };
                reasons.insert(reason, budget);
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_interval_with_the_count_left_out() {
        let log = RejectionLog::default();
        let start = Instant::now();
        assert_eq!(log.admit("overloaded", start), Some(0));
        for n in 1..=1000 {
            let now = start + INTERVAL * n / 2000;
            assert_eq!(log.admit("overloaded", now), None);
        }
        assert_eq!(
            log.admit("bad_signature", start + INTERVAL / 2),
            Some(0),
            "reasons have their own budget"
        );
        assert_eq!(log.admit("overloaded", start + INTERVAL), Some(1000));
        assert_eq!(log.admit("overloaded", start + INTERVAL * 3), Some(0));
    }
}
