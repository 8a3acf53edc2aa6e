//! The Prometheus recorder keeps every histogram sample until an upkeep folds it into its
//! buckets. hookline runs that upkeep itself, so memory does not grow with every request when
//! nothing scrapes `/metrics`.
//!
//! Alone in its test binary: it counts the bytes this process has allocated and not freed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use hookline::metrics::{commit_latency, install, upkeep, UPKEEP_EVERY};

/// The system allocator, counting the bytes in use.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Samples a request records (intake and commit latencies, batch sizes) in 100,000 requests.
const SAMPLES: usize = 100_000;

#[tokio::test(start_paused = true)]
async fn histogram_samples_are_freed_without_a_scrape() {
    let handle = install().expect("hookline's recorder is the only one in this binary");
    let (trigger, shutdown) = hookline::shutdown::channel();
    let task = tokio::spawn(upkeep(handle, shutdown));
    // The histogram and its first storage exist before the measurement starts.
    commit_latency(Duration::from_micros(300));
    tokio::time::sleep(UPKEEP_EVERY * 2).await;

    let before = live();
    for _ in 0..SAMPLES {
        commit_latency(Duration::from_micros(300));
    }
    let held = live() - before;
    // Eight bytes a sample: shows that the count sees what the recorder keeps.
    assert!(
        held >= (SAMPLES * 8) as isize,
        "the recorder should hold the samples until its upkeep: {held} bytes"
    );

    tokio::time::sleep(UPKEEP_EVERY * 2).await;
    // The freed blocks are reclaimed once the recorder's epoch moves on, which later
    // recordings do.
    for _ in 0..1_000 {
        commit_latency(Duration::from_micros(300));
    }
    tokio::time::sleep(UPKEEP_EVERY * 2).await;
    let left = live() - before;
    assert!(
        left < held / 10,
        "upkeep should free what the samples took: {left} of {held} bytes still held"
    );

    trigger.trigger();
    task.await.expect("the upkeep loop ends at shutdown");
}
