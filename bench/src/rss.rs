//! Memory and CPU of a process, read from `/proc`: current and peak resident set size, CPU time,
//! and a background sampler that keeps the resident size over time.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Most samples one sampler keeps (at 50 ms that is over an hour).
const MAX_SAMPLES: usize = 100_000;
/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// Resident memory of a process, in kB as the kernel reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kb: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub hwm_kb: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` once the process is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// CPU time (user + system) `pid` has used so far, in seconds; `0.0` if it cannot be read.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, i.e. 11 and 12 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_S
}

/// Bytes `pid` has caused to be written to storage so far (`write_bytes` of `/proc/<pid>/io`:
/// page-cache pages it dirtied, whether the kernel has written them back yet or not); `None` if
/// it cannot be read.
pub fn disk_write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
}

/// CPU time of a process over an interval, as a share of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    /// The process.
    pid: u32,
    /// Its CPU seconds at the start.
    cpu_at_start: f64,
    /// When the interval began.
    started: Instant,
}

impl CpuMeter {
    /// Starts measuring `pid` now.
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid,
            cpu_at_start: cpu_seconds(pid),
            started: Instant::now(),
        }
    }

    /// CPU used since the start, in percent of one core.
    pub fn percent(&self) -> f64 {
        let wall = self.started.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        100.0 * (cpu_seconds(self.pid) - self.cpu_at_start) / wall
    }
}

/// One resident-size sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Milliseconds since the sampler started.
    pub t_ms: u64,
    /// Resident size then, in MB.
    pub rss_mb: f64,
}

/// A background task sampling a process's resident size at a fixed interval.
#[derive(Debug)]
pub struct Sampler {
    /// Stops the task.
    stop: Option<oneshot::Sender<()>>,
    /// The task; yields the samples.
    task: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling the resident size of `pid` every `interval`.
    pub fn start(pid: u32, interval: Duration) -> Sampler {
        Sampler::start_reading(pid, interval, |pid| memory(pid).map(|m| m.rss_kb))
    }

    /// Starts sampling the memory of `root` and every process descended from it, each counted
    /// by its proportional share of what it maps ([`tree_pss_kb`]).
    pub fn start_tree(root: u32, interval: Duration) -> Sampler {
        Sampler::start_reading(root, interval, tree_pss_kb)
    }

    /// Starts sampling what `read` says of `pid`, in kB, every `interval`.
    fn start_reading(pid: u32, interval: Duration, read: fn(u32) -> Option<u64>) -> Sampler {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sample_loop(pid, interval, read, stopped));
        Sampler {
            stop: Some(stop),
            task,
        }
    }

    /// Stops sampling and returns the samples.
    pub async fn finish(mut self) -> Vec<Sample> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sampler's loop: read, sleep, until told to stop or the process is gone.
async fn sample_loop(
    pid: u32,
    interval: Duration,
    read: fn(u32) -> Option<u64>,
    mut stop: oneshot::Receiver<()>,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while samples.len() < MAX_SAMPLES {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        // Off the load generator's thread: when pinned it is the runtime's only one, and a walk
        // of `/proc` there (milliseconds for a process tree) held every connection's answer.
        let Ok(Some(kb)) = tokio::task::spawn_blocking(move || read(pid)).await else {
            break;
        };
        samples.push(Sample {
            t_ms: started.elapsed().as_millis() as u64,
            rss_mb: kb_to_mb(kb),
        });
    }
    samples
}

/// Memory of `root` and all its descendants, in kB: the sum of their `Pss` (proportional set
/// size), which counts a page shared by n of them as 1/n in each, so that memory they share
/// (PostgreSQL's shared buffers, the binary) counts once rather than once per process as a sum
/// of their resident sizes would. `None` once `root` is gone.
pub fn tree_pss_kb(root: u32) -> Option<u64> {
    let root_kb = pss_kb(root)?;
    let rest: u64 = descendants(root).into_iter().filter_map(pss_kb).sum();
    Some(root_kb + rest)
}

/// Every process descended from `root` (children, their children …), not `root` itself.
pub fn descendants(root: u32) -> Vec<u32> {
    let processes = parent_pids();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for &(pid, ppid) in &processes {
            if ppid == parent {
                found.push(pid);
                parents.push(pid);
            }
        }
    }
    found
}

/// `Pss` of one process, from `/proc/<pid>/smaps_rollup`.
fn pss_kb(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Every process and its parent, from `/proc/<pid>/stat`.
fn parent_pids() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name (which may hold spaces): state, then the parent's pid.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// kB as `/proc` reports them (KiB) to MB as `ps` and `top` show them (MiB).
pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The largest resident size among samples, in MB.
pub fn max_mb(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max)
}

/// The smallest resident size among samples, in MB.
pub fn min_mb(samples: &[Sample]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples
        .iter()
        .map(|s| s.rss_mb)
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_tree_is_found_through_its_parents_and_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let me = std::process::id();
        assert!(parent_pids().contains(&(child.id(), me)));
        let child_pss = pss_kb(child.id()).expect("the child's Pss");
        assert!(child_pss > 0);
        let tree = tree_pss_kb(me).expect("this process's tree");
        assert!(
            tree > child_pss,
            "tree {tree} kB, child alone {child_pss} kB"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(tree_pss_kb(child.id()), None, "a process that is gone");
    }
}
