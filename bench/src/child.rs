//! Child processes (hookline, the baseline server), their scratch directories, ports, readiness
//! and CPU pinning. Every child is killed when its guard is dropped, so that a failed or
//! interrupted run leaves nothing behind.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(20);
/// Lines of a child's log shown when it fails.
const LOG_TAIL_LINES: usize = 20;

/// A running child process, killed on drop.
#[derive(Debug)]
pub struct ChildProc {
    /// Name used in messages (`hookline`, `baseline`).
    name: String,
    /// The process (when pinned, `taskset` has exec'd into the program, so the pid is the
    /// program's own).
    child: Child,
    /// Where its stdout and stderr go, shown when it fails.
    log: PathBuf,
}

/// How to start a child.
#[derive(Debug)]
pub struct Spawn<'a> {
    /// Name used in messages.
    pub name: &'a str,
    /// The executable.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Extra environment; inherited `HOOKLINE_*` variables are removed first.
    pub env: &'a [(String, String)],
    /// Core to pin it to, if any.
    pub core: Option<usize>,
    /// File for its output.
    pub log: PathBuf,
}

impl ChildProc {
    /// Starts the child, under `taskset -c <core>` when pinned.
    pub fn spawn(spec: Spawn<'_>) -> Result<ChildProc, String> {
        let log = File::create(&spec.log)
            .map_err(|e| format!("cannot create {}: {e}", spec.log.display()))?;
        let err_log = log
            .try_clone()
            .map_err(|e| format!("cannot reopen {}: {e}", spec.log.display()))?;
        let mut command = match spec.core {
            Some(core) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core.to_string()).arg(spec.program);
                command
            }
            None => Command::new(spec.program),
        };
        command
            .args(spec.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKLINE_")) {
            command.env_remove(key);
        }
        command.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn().map_err(|e| {
            format!(
                "cannot start {} ({}): {e}",
                spec.name,
                spec.program.display()
            )
        })?;
        Ok(ChildProc {
            name: spec.name.to_owned(),
            child,
            log: spec.log,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error, with the tail of the child's log, if it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); its log {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            )),
            Err(e) => Err(format!("cannot check on {}: {e}", self.name)),
        }
    }

    /// Polls `GET <path>` until it answers 200, the child exits, or `timeout` passes.
    pub async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        path: &'static str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if matches!(get(addr, path).await, Ok((StatusCode::OK, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready on {addr} after {timeout:?}; its log:\n{}",
                    self.name,
                    log_tail(&self.log)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks the child to stop (SIGTERM) and waits for it; kills it after `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<(), String> {
        self.signal_term()?;
        self.wait_exit(timeout).await
    }

    /// Sends SIGTERM (hookline stops gracefully on it).
    pub fn signal_term(&mut self) -> Result<(), String> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            self.check_alive()
        }
    }

    /// Waits for the child to exit; kills it after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        self.kill();
        Err(format!(
            "{} did not stop within {timeout:?}; killed",
            self.name
        ))
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}

/// One `GET` on a fresh connection (hyper's client; these are control requests, not load):
/// status and body.
pub async fn get(addr: SocketAddr, path: &'static str) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped; failures surface on the sender's side.
        let _ = connection.await;
    });
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = hyper::Uri::from_static(path);
    request.headers_mut().insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_static("127.0.0.1"),
    );
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .map_err(|_| format!("GET {path} timed out"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// A free loopback port (bound, read, released: another process could take it in between, which
/// on a benchmark machine does not happen in practice).
pub fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("no free port: {e}"))
}

/// A scratch directory, removed on drop unless kept.
#[derive(Debug)]
pub struct ScratchDir {
    /// The directory.
    pub path: PathBuf,
    /// Leave it in place (for inspection).
    pub keep: bool,
}

impl ScratchDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(keep: bool) -> Result<ScratchDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("hookline-bench-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(ScratchDir { path, keep })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Pins this process (all its threads so far, and those it starts later) to one core.
pub fn pin_self(core: usize) -> Result<(), String> {
    set_affinity(std::process::id(), &core.to_string())
        .map_err(|e| format!("could not pin the load generator to core {core}: {e}"))
}

/// Lets `pid` (all its threads, and the processes it starts later) run on every online core,
/// whatever it inherited from the pinned process that started it.
pub fn unpin(pid: u32) -> Result<(), String> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| format!("cannot read the online cores: {e}"))?;
    set_affinity(pid, online.trim())
}

/// `taskset -a -p -c <cores> <pid>`.
fn set_affinity(pid: u32, cores: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset (util-linux): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -c {cores} failed for process {pid}"))
    }
}

/// The `hookline` binary next to this executable (`target/release/hookline`).
pub fn sibling_hookline() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let path = exe.with_file_name("hookline");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build both with `cargo build --release --workspace`, or pass --hookline",
            path.display()
        ))
    }
}
