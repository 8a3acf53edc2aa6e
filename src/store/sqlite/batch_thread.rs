//! Scheduling the store's writer thread as batch work.
//!
//! The writer wakes up for every job the request threads hand it. Under the default policy each
//! wake-up preempts the request thread on a busy core, so the writer commits whatever little has
//! arrived. As a `SCHED_BATCH` thread it waits until the request threads yield: a commit then
//! takes every request that was ready. On one core that cut the commits per event by a third and
//! lowered the p99 (docs/performance-log.md, "The store writer thread, three rounds ago"). It
//! still gets its fair share of the CPU, so it cannot starve; on an idle core nothing changes.
//!
//! The fsync threads keep the default policy: as batch threads they gave slightly bigger fsyncs
//! under normal load, but under overload, with the request thread busy refusing, acknowledgements
//! waited for starved fsyncs and half as many requests got in.

/// Marks the calling thread as batch work; where that is not possible it stays as it was.
pub(super) fn run_as_batch() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread. Lowering one's
        // own policy needs no privilege.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot schedule the store thread as batch work; keeping the default policy"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_calling_thread_becomes_batch_work() {
        std::thread::spawn(|| {
            super::run_as_batch();
            // SAFETY: pid 0 is the calling thread.
            let policy = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy, libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
    }
}
