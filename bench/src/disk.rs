//! What the disk under the data dirs charges for the writes and the fsync of one durable group
//! commit, measured directly with no database: the floor under any store that fsyncs before it
//! answers (docs/performance.md, "What stands in the way of 0.5 ×").
//!
//! One commit is `frames` WAL frames (a 24-byte header and a 4 KiB page each), written either
//! the way SQLite writes its WAL (two `pwrite`s per frame) or with one `pwrite`, then
//! `fdatasync`ed: into a file that grows, as a WAL does until its first checkpoint, or over
//! blocks written before, as a WAL that is reused. The CPU figures are the measuring thread's
//! own CPU time (user and kernel), so they count what the kernel does on the caller's behalf.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::round;

/// Bytes of a WAL frame header.
const FRAME_HEADER: usize = 24;
/// Bytes of a page.
const PAGE: usize = 4096;
/// Commits measured per way of writing.
const COMMITS: usize = 200;
/// WAL bytes a durable event adds: its row and its share of the B-tree pages every commit
/// rewrites (a 50k-event run wrote 118 MB of WAL, 56 events per commit, docs/performance.md).
const WAL_BYTES_PER_EVENT: usize = 2400;

/// WAL frames of one commit when `connections` requests are committed together.
pub fn frames_per_commit(connections: usize) -> usize {
    (connections * WAL_BYTES_PER_EVENT).div_ceil(FRAME_HEADER + PAGE)
}

/// One way of writing a commit, and what it cost on average per commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitCost {
    /// CPU time of the `pwrite`s, µs.
    pub write_cpu_us: f64,
    /// CPU time of the `fdatasync`, µs.
    pub fsync_cpu_us: f64,
    /// Wall time of the `fdatasync`, µs.
    pub fsync_wall_us: f64,
}

/// The disk's costs for one commit of `commit_bytes`.
#[derive(Debug, Clone, Serialize)]
pub struct DiskFloor {
    /// WAL frames per commit.
    pub frames: usize,
    /// Bytes per commit.
    pub commit_bytes: usize,
    /// Commits measured per way of writing.
    pub commits: usize,
    /// Two `pwrite`s per frame into a growing file: what hookline's SQLite does now.
    pub frame_writes_growing: CommitCost,
    /// One `pwrite` per commit into a growing file.
    pub one_write_growing: CommitCost,
    /// One `pwrite` per commit over blocks written before: the cheapest way here.
    pub one_write_overwriting: CommitCost,
}

impl DiskFloor {
    /// Measures in a scratch file in `dir` (removed afterwards), with `frames` frames per commit.
    pub fn measure(dir: &Path, frames: usize) -> Result<DiskFloor, String> {
        let path = dir.join("disk-floor.bin");
        let result = measure_all(&path, frames.max(1))
            .map_err(|e| format!("disk measurement in {}: {e}", dir.display()));
        let _ = std::fs::remove_file(&path);
        result
    }

    /// The least CPU an fsync takes here, per request, when one covers `requests` of them.
    pub fn fsync_cpu_per_request_us(&self, requests: usize) -> f64 {
        round(
            self.one_write_overwriting.fsync_cpu_us / requests.max(1) as f64,
            2,
        )
    }
}

/// The three ways, one after the other, on the same file.
fn measure_all(path: &Path, frames: usize) -> io::Result<DiskFloor> {
    let frame_writes_growing = measure(path, frames, Layout::Frames, false)?;
    let one_write_growing = measure(path, frames, Layout::OneWrite, false)?;
    let one_write_overwriting = measure(path, frames, Layout::OneWrite, true)?;
    Ok(DiskFloor {
        frames,
        commit_bytes: frames * (FRAME_HEADER + PAGE),
        commits: COMMITS,
        frame_writes_growing,
        one_write_growing,
        one_write_overwriting,
    })
}

/// How a commit's bytes are handed to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A `pwrite` per frame header and one per page, as SQLite writes its WAL.
    Frames,
    /// One `pwrite` for the whole commit.
    OneWrite,
}

/// Writes and fsyncs [`COMMITS`] commits one after the other, from the start of a new file
/// (or of one whose blocks were all written and synced first, with `overwrite`).
fn measure(path: &Path, frames: usize, layout: Layout, overwrite: bool) -> io::Result<CommitCost> {
    let commit = vec![0x5a_u8; frames * (FRAME_HEADER + PAGE)];
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    if overwrite {
        for n in 0..COMMITS {
            file.write_all_at(&commit, (n * commit.len()) as u64)?;
        }
        file.sync_all()?;
    }
    let mut write_cpu = Duration::ZERO;
    let mut fsync_cpu = Duration::ZERO;
    let mut fsync_wall = Duration::ZERO;
    for n in 0..COMMITS {
        let offset = (n * commit.len()) as u64;
        let started = thread_cpu()?;
        match layout {
            Layout::Frames => {
                for (i, frame) in commit.chunks(FRAME_HEADER + PAGE).enumerate() {
                    let at = offset + (i * frame.len()) as u64;
                    file.write_all_at(&frame[..FRAME_HEADER], at)?;
                    file.write_all_at(&frame[FRAME_HEADER..], at + FRAME_HEADER as u64)?;
                }
            }
            Layout::OneWrite => file.write_all_at(&commit, offset)?,
        }
        let written = thread_cpu()?;
        let wall = Instant::now();
        file.sync_data()?;
        fsync_wall += wall.elapsed();
        let synced = thread_cpu()?;
        write_cpu += written.saturating_sub(started);
        fsync_cpu += synced.saturating_sub(written);
    }
    let mean_us = |total: Duration| round(total.as_secs_f64() * 1e6 / COMMITS as f64, 1);
    Ok(CommitCost {
        write_cpu_us: mean_us(write_cpu),
        fsync_cpu_us: mean_us(fsync_cpu),
        fsync_wall_us: mean_us(fsync_wall),
    })
}

/// CPU time the calling thread has used, user and kernel.
fn thread_cpu() -> io::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to write into.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_about_the_wal_of_its_requests() {
        assert_eq!(frames_per_commit(64), 38);
        assert_eq!(frames_per_commit(1), 1);
    }

    #[test]
    fn every_way_of_writing_is_measured_in_a_file_that_is_removed_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let floor = DiskFloor::measure(dir.path(), 2).unwrap();
        assert_eq!(floor.commit_bytes, 2 * (FRAME_HEADER + PAGE));
        for cost in [
            &floor.frame_writes_growing,
            &floor.one_write_growing,
            &floor.one_write_overwriting,
        ] {
            assert!(
                cost.write_cpu_us > 0.0 && cost.fsync_wall_us > 0.0,
                "{cost:?}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
