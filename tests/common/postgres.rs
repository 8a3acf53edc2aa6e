//! A scratch PostgreSQL cluster for tests: `initdb` in a temporary directory, started with
//! `pg_ctl` on a free loopback port, with a password-protected role and TLS (a throwaway CA
//! and a certificate for `localhost` and 127.0.0.1), stopped and removed when dropped.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI) every server command
//! runs as the `postgres` user through `runuser -u postgres --`; otherwise as the current user.
//! It needs the server binaries of Debian's `postgresql` package (`/usr/lib/postgresql/<v>/bin`,
//! or the directory `HOOKLINE_TEST_PG_BIN` names; `.ci/install-deps` installs them) and
//! `openssl`.
//!
//! Use it in three ways:
//! - [`Cluster::shared`]: one cluster per test binary, started on first use and stopped when
//!   the binary exits; give each test its own database ([`Cluster::database`]).
//! - [`Cluster::start`]: a cluster of the test's own, for tests that stop and start it
//!   ([`Cluster::stop`], [`Cluster::restart`]).
//! - [`Cluster::url`]: the `postgres://` URL of a database, as `HOOKLINE_DATABASE_URL` takes it.
//!
//! This file depends on nothing but std, `tempfile` and `libc`, so that the store's own tests
//! (`src/store/postgres/tests/`) include it with `#[path]`, and the integration tests in
//! `tests/` and the benchmark can use it as well.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The role hookline connects as.
pub const USER: &str = "hookline";
/// Its password: distinctive, so that tests can check it is never shown.
pub const PASSWORD: &str = "scratch-Pw-5eq7z1x9";
/// A role that may only connect over TLS (`hostnossl … reject`), to prove a connection uses it.
pub const TLS_ONLY_USER: &str = "hookline_tls";

/// A running scratch cluster.
pub struct Cluster {
    /// Holds the data directory (`data/`), the socket, the certificates and the log.
    dir: tempfile::TempDir,
    /// The server binaries.
    bin: PathBuf,
    /// Its loopback port.
    port: u16,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// The cluster of this test binary, started on first use; the binary stops it when it exits.
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(|| {
            let cluster = Cluster::start();
            // SAFETY: registering a plain `extern "C"` function that only reads a static.
            unsafe { libc::atexit(stop_shared) };
            cluster
        })
    }

    /// Initialises and starts a cluster of its own.
    pub fn start() -> Cluster {
        let bin = server_binaries();
        let dir = tempfile::Builder::new()
            .prefix("hookline-pg-")
            .tempdir()
            .expect("temporary directory");
        give_to_server_user(dir.path());
        let mut cluster = Cluster { dir, bin, port: 0 };
        cluster.init();
        for attempt in 1.. {
            cluster.port = free_port();
            cluster.configure();
            match cluster.pg_ctl(&["start", "-w", "-t", "60"]) {
                Ok(_) => break,
                Err(e) if attempt < 3 => eprintln!("scratch PostgreSQL did not start ({e}); again"),
                Err(e) => panic!("scratch PostgreSQL does not start: {e}\n{}", cluster.log()),
            }
        }
        cluster.create_roles();
        cluster
    }

    /// The URL of `database`, as hookline connects to it (TLS if offered, unchecked, as
    /// libpq's default `sslmode=prefer`).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The process id of its postmaster (the parent of all its processes), from
    /// `postmaster.pid`; `None` while it is not running.
    pub fn server_pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate that signed the server's, for `sslrootcert`.
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A new, empty database owned by [`USER`]; returns its name.
    pub fn database(&self) -> String {
        self.database_of(USER)
    }

    /// A new, empty database owned by `owner`; returns its name.
    pub fn database_of(&self, owner: &str) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {owner}"));
        name
    }

    /// Runs SQL as the superuser in `database`; returns what it printed (unaligned, tuples
    /// only). Panics when it fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let socket = self.dir.path().display().to_string();
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                &socket,
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-c", sql])
            .output()
            .expect("psql runs");
        checked("psql", output).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Stops the server: `fast` (clients disconnected, a clean shutdown) or `immediate` (as if
    /// it crashed; recovery replays the WAL at the next start).
    pub fn stop(&self, mode: &str) {
        self.pg_ctl(&["stop", "-w", "-m", mode])
            .unwrap_or_else(|e| panic!("pg_ctl stop: {e}\n{}", self.log()));
    }

    /// Starts the server again, on the same port, after [`Cluster::stop`].
    pub fn restart(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60"])
            .unwrap_or_else(|e| panic!("pg_ctl start: {e}\n{}", self.log()));
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(&self) {
        let data = self.data().display().to_string();
        self.as_server_user(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        )
        .unwrap_or_else(|e| panic!("initdb: {e}"));
        self.make_certificates();
    }

    /// Loopback only, on [`Cluster::port`], the socket in the cluster's directory, TLS on,
    /// passwords (SCRAM) over TCP and trust over the socket (for [`Cluster::psql`]).
    fn configure(&self) {
        let dir = self.dir.path().display();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             max_connections = 300\nshared_buffers = 32MB\nlog_min_messages = warning\n",
            self.port
        );
        std::fs::write(self.data().join("postgresql.auto.conf"), conf).expect("configure");
        let hba = format!(
            "local all all trust\n\
             hostnossl all {TLS_ONLY_USER} 127.0.0.1/32 reject\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(self.data().join("pg_hba.conf"), hba).expect("pg_hba.conf");
        give_to_server_user(&self.data());
    }

    fn create_roles(&self) {
        for role in [USER, TLS_ONLY_USER] {
            self.psql(
                "postgres",
                &format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"),
            );
        }
    }

    /// A CA, and a server certificate it signed for `localhost` and 127.0.0.1.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let extensions = dir.join("server.ext");
        std::fs::write(
            &extensions,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("extensions");
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt"],
            ]
            .concat(),
            [
                &["req", "-new"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-extfile",
                "server.ext",
            ],
        ];
        for (step, subject) in steps
            .iter()
            .zip(["/CN=hookline test CA", "/CN=localhost", ""])
        {
            let mut command = Command::new("openssl");
            command.current_dir(dir).args(step).args(["-days", "3"]);
            if !subject.is_empty() {
                command.args(["-subj", subject]);
            }
            let output = command.output().expect("openssl runs");
            checked("openssl", output).unwrap_or_else(|e| panic!("certificates: {e}"));
        }
        // PostgreSQL refuses a key that others can read.
        let owner_only =
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(dir.join("server.key"), owner_only).expect("key permissions");
        give_to_server_user(dir);
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<String, String> {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let mut all = vec!["-D", &data, "-l", &log];
        all.extend_from_slice(args);
        self.as_server_user("pg_ctl", &all)
    }

    /// Runs a server binary as the user PostgreSQL runs as.
    fn as_server_user(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let program = self.bin.join(program);
        let mut command = match running_as_root() {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            false => Command::new(&program),
        };
        let output = command.args(args).output().map_err(|e| e.to_string())?;
        checked(&program.display().to_string(), output)
    }

    /// Stops the server at once and removes its directory (what the exit of a test binary
    /// does for the shared cluster, which is never dropped).
    fn stop_now(&self) {
        let pid_file = self.data().join("postmaster.pid");
        let pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            // SAFETY: signalling a process id read from the server's own pid file.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let until = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only checks that the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_now();
    }
}

extern "C" fn stop_shared() {
    if let Some(cluster) = SHARED.get() {
        cluster.stop_now();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or `HOOKLINE_TEST_PG_BIN`.
fn server_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOOKLINE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten();
    let mut found: Vec<(u32, PathBuf)> = versions
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin: install Debian's \
             `postgresql` package (.ci/install-deps does), or set HOOKLINE_TEST_PG_BIN"
        ),
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Hands `path` (recursively) to the `postgres` user when running as root.
fn give_to_server_user(path: &Path) {
    if !running_as_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown -R postgres {}", path.display());
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Its standard output, or what it said when it failed.
fn checked(what: &str, output: Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match output.status.success() {
        true => Ok(stdout),
        false => Err(format!(
            "{what} failed ({}): {stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}
