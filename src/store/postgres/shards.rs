//! Which shard of a minute's counts (`event_minutes`) a batch adds to.
//!
//! Every batch adds its events to the counts of their minute, source and type, in one of
//! several rows of each (shards), so that batches committing at once do not wait for each
//! other's row lock: a second batch that writes the same row waits until the first commits.
//! Each batch in flight on a replica holds a shard of its own while it commits, so a replica's
//! batches never share a row; a replica's shards start at a random offset among [`SHARDS`], so
//! those of two replicas seldom meet. Reads add the shards of a minute up.

use std::sync::{Mutex, PoisonError};

/// Shards a minute's counts may be split into across every replica.
pub(super) const SHARDS: i16 = 64;

/// The shards of one replica's writer that no batch holds.
pub(super) struct Shards {
    /// Free shards; as many as batches may be in flight.
    free: Mutex<Vec<i16>>,
}

impl Shards {
    /// `count` consecutive shards (at most [`SHARDS`]) from a random offset.
    pub(super) fn new(count: usize) -> Shards {
        let first = rand::random::<u16>() % SHARDS as u16;
        let free = (0..count.min(SHARDS as usize) as u16)
            .map(|n| ((first + n) % SHARDS as u16) as i16)
            .collect();
        Shards {
            free: Mutex::new(free),
        }
    }

    /// A shard that no other batch holds; `None` once every one is taken (the writer takes one
    /// per batch slot, so one is always free for it).
    pub(super) fn take(&self) -> Option<i16> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Gives back a shard taken before, once its batch has committed.
    pub(super) fn give_back(&self, shard: i16) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn take_all(shards: &Shards) -> Vec<i16> {
        std::iter::from_fn(|| shards.take()).collect()
    }

    #[test]
    fn batches_in_flight_at_once_hold_different_shards() {
        let shards = Shards::new(4);
        let held = take_all(&shards);
        assert_eq!(held.iter().collect::<HashSet<_>>().len(), 4);
        assert!(held.iter().all(|s| (0..SHARDS).contains(s)));
        assert_eq!(shards.take(), None, "four slots, four shards");

        shards.give_back(held[2]);
        assert_eq!(
            shards.take(),
            Some(held[2]),
            "a shard given back is free again"
        );
    }

    #[test]
    fn replicas_start_at_random_offsets() {
        let firsts: HashSet<i16> = (0..50)
            .map(|_| *take_all(&Shards::new(4)).iter().min().unwrap())
            .collect();
        assert!(firsts.len() > 1, "replicas do not all start at one offset");
    }
}
