//! The data directory mistakes of a first deployment, made with the real binary: a bind mount
//! that belongs to another uid than hookline's (SQLite: "attempt to write a readonly
//! database"), and a read-only mount ("unable to open database file"). `serve` and
//! `check-config` both say the path, the cause and the fix.
//!
//! Root may write anything, so as root (CI) hookline runs under the container image's
//! unprivileged uid through `setpriv`, as tests/deploy.rs does; as any other user the files are
//! made unwritable with `chmod` instead. The read-only mount is made in a mount namespace of its
//! own (`unshare`), which disappears with the process.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hookline::store::{SqliteStore, Synchronous};

/// The image's user (Dockerfile `USER`), which hookline runs as when the tests run as root.
const IMAGE_USER: (u32, u32) = (65532, 65532);

/// A copy of the binary that any user may run, in a directory any user may enter.
struct Setup {
    dir: tempfile::TempDir,
    binary: PathBuf,
    as_root: bool,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let binary = dir.path().join("hookline");
        std::fs::copy(env!("CARGO_BIN_EXE_hookline"), &binary).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let as_root = std::fs::metadata(&binary).unwrap().uid() == 0;
        Setup {
            dir,
            binary,
            as_root,
        }
    }

    /// `hookline <command>` on data directory `data`, as the image's user when we are root,
    /// wrapped in `wrapper` (e.g. `unshare … --`) when given.
    fn run(&self, command: &str, data: &Path, wrapper: &[&str]) -> String {
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        if self.as_root {
            argv.extend(
                [
                    "setpriv",
                    &format!("--reuid={}", IMAGE_USER.0),
                    &format!("--regid={}", IMAGE_USER.1),
                    "--clear-groups",
                    "--",
                ]
                .map(String::from),
            );
        }
        argv.push(self.binary.display().to_string());
        argv.push(command.to_owned());
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOOKLINE_LISTEN", "127.0.0.1:0")
            .env("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("HOOKLINE_DATA_DIR", data)
            .env(
                "HOOKLINE_CHATBRICK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("command runs");
        // It must refuse; if it started after all, stop it rather than wait forever.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                panic!(
                    "{command} ran:\n{}",
                    text(&child.wait_with_output().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            !output.status.success(),
            "{command} ran:\n{}",
            text(&output)
        );
        text(&output)
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An inbox in `data` as an earlier hookline (of another user, when we are root) left it once
/// it stopped: the database, and no `-wal` (its writer thread removes it when it closes).
fn existing_inbox(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    drop(SqliteStore::open(data, Synchronous::Full, 0).unwrap());
    let started = Instant::now();
    while data.join("hookline.db-wal").exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "the WAL stays");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(data.join("hookline.db").is_file());
}

#[test]
fn an_inbox_hookline_may_not_write_is_named_with_its_owner_and_the_fix() {
    let setup = Setup::new();
    let data = setup.dir.path().join("data");
    existing_inbox(&data);
    // The directory lets anyone in and create files; the database itself is not hookline's to
    // write, which is what makes SQLite say "attempt to write a readonly database".
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::remove_file(data.join("hookline.lock")).unwrap();
    let db = data.join("hookline.db");
    let (cause, fix) = if setup.as_root {
        let user = format!("runs as uid {}", IMAGE_USER.0);
        (
            "belongs to uid 0".to_owned(),
            (user, "chown -R 65532:65532"),
        )
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
        (
            "has mode 0444".to_owned(),
            ("does not let its owner".into(), "chmod -R u+rwX"),
        )
    };
    let served = setup.run("serve", &data, &[]);
    assert!(
        served.contains("attempt to write a readonly database"),
        "{served}"
    );
    let checked = setup.run("check-config", &data, &[]);
    for said in [&served, &checked] {
        assert!(
            said.contains(&format!("{} {cause}", db.display())),
            "{said}"
        );
        assert!(said.contains(&fix.0), "{said}");
        assert!(said.contains(fix.1), "{said}");
    }
}

#[test]
fn a_data_directory_of_another_user_is_named_with_its_owner_and_the_fix() {
    let setup = Setup::new();
    let data = setup.dir.path().join("data");
    existing_inbox(&data);
    let cause = if setup.as_root {
        "belongs to uid 0"
    } else {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
        "has mode 0555"
    };
    for command in ["serve", "check-config"] {
        let said = setup.run(command, &data, &[]);
        assert!(
            said.contains(&format!("{} {cause}", data.display())),
            "{said}"
        );
    }
    // Give it back, so that the temporary directory can be removed.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_read_only_mount_is_named_with_the_fix() {
    let setup = Setup::new();
    let data = setup.dir.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    // Mounted read-only in a mount namespace of the command's own; a user namespace makes that
    // possible without root.
    let mount = "mount -t tmpfs -o ro tmpfs \"$0\" && exec \"$@\"";
    let data_arg = data.display().to_string();
    let mut wrapper = vec!["unshare"];
    if !setup.as_root {
        wrapper.extend(["--user", "--map-root-user"]);
    }
    wrapper.extend(["--mount", "--", "sh", "-c", mount, &data_arg]);
    for command in ["serve", "check-config"] {
        let said = setup.run(command, &data, &wrapper);
        assert!(
            said.contains(&format!("{} is on a read-only file system", data.display())),
            "{command}: {said}"
        );
        assert!(said.contains("mount it read-write"), "{said}");
    }
}
