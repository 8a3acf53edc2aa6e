//! When a small batch of intake waits a moment for company before it commits.
//!
//! Every commit costs the writer and the disk a fixed amount on top of what its events cost:
//! about six 4 KiB pages that every commit rewrites (the right-hand leaves of the tables and
//! indexes that grow with each event, the database header), their WAL frames, and an fsync. At
//! saturation a commit carries dozens of events and that share is small; at half that rate the
//! writer, never busy for long, commits two or three events at a time, and on one core the fixed
//! share doubled what a request cost (docs/performance.md, "Where the 50 % tail comes from").
//!
//! So when requests are arriving side by side (the last commit of intake, moments ago, carried
//! more than one) and the batch holds few of them, the writer sleeps for [`GATHER_FOR`] before
//! it commits, and takes what arrived meanwhile. Each request waits at most that much longer.
//! Nothing waits where waiting gathers nothing: a lone request after a quiet spell, a sender
//! that sends one request at a time (each batch holds one), a batch that is already large.
//! Bookkeeping jobs (claims, attempt records) never wait by themselves: only batches with intake
//! do.

use std::time::{Duration, Instant};

/// How long a small batch of intake waits for company. At 11,000 requests per second it
/// tripled the events per commit and took the server's CPU from 97 % to 75 %, for 0.3 ms more
/// at the median (docs/performance.md, "Small commits and the checkpoint's sync").
pub(super) const GATHER_FOR: Duration = Duration::from_micros(300);
/// Intake events from which a batch commits at once: a batch this large costs little more per
/// event than a larger one.
pub(super) const ENOUGH: usize = 32;
/// A batch waits only when intake committed this recently, a sign that more requests are on
/// their way; after a longer pause waiting would only delay a lone request.
pub(super) const STREAMING: Duration = Duration::from_millis(2);

/// Remembers intake's last commit, to tell whether a new small batch should wait.
#[derive(Debug, Default)]
pub(super) struct Gather {
    /// When the last commit that carried intake events was made, and how many it carried.
    last_intake_commit: Option<(Instant, usize)>,
}

impl Gather {
    /// How long a batch holding `events` intake events should wait before it commits, `now`;
    /// `None` when it should commit at once.
    pub(super) fn wait(&self, events: usize, now: Instant) -> Option<Duration> {
        if events == 0 || events >= ENOUGH {
            return None;
        }
        let (last, had) = self.last_intake_commit?;
        (had > 1 && now.saturating_duration_since(last) < STREAMING).then_some(GATHER_FOR)
    }

    /// A batch carrying `events` intake events commits `now`.
    pub(super) fn committed(&mut self, events: usize, now: Instant) {
        self.last_intake_commit = Some((now, events));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gather whose last intake commit, at the returned instant, carried `events`.
    fn after_commit_of(events: usize) -> (Gather, Instant) {
        let start = Instant::now();
        let mut gather = Gather::default();
        gather.committed(events, start);
        (gather, start)
    }

    #[test]
    fn a_small_batch_waits_while_requests_arrive_side_by_side() {
        let (gather, start) = after_commit_of(2);
        let soon = start + STREAMING / 2;
        assert_eq!(gather.wait(1, soon), Some(GATHER_FOR));
        assert_eq!(gather.wait(ENOUGH - 1, soon), Some(GATHER_FOR));
    }

    #[test]
    fn a_large_batch_or_one_without_intake_commits_at_once() {
        let (gather, start) = after_commit_of(2);
        let soon = start + STREAMING / 2;
        assert_eq!(gather.wait(ENOUGH, soon), None);
        assert_eq!(gather.wait(0, soon), None, "bookkeeping alone never waits");
    }

    #[test]
    fn a_request_after_a_pause_commits_at_once() {
        assert_eq!(
            Gather::default().wait(1, Instant::now()),
            None,
            "the first batch of all"
        );
        let (gather, start) = after_commit_of(2);
        assert_eq!(gather.wait(1, start + STREAMING), None);
        assert_eq!(gather.wait(1, start + STREAMING * 10), None);
    }

    #[test]
    fn a_sender_of_one_request_at_a_time_never_waits() {
        let (gather, start) = after_commit_of(1);
        let soon = start + STREAMING / 10;
        assert_eq!(gather.wait(1, soon), None, "its last batch held it alone");
    }
}
