//! Whether this process can write a file or create files in a directory, and when it cannot,
//! why and what to do about it, found out without creating anything.
//!
//! The data directory and a `file` handler's path are where operators meet the classic
//! container mistakes: a bind mount owned by another uid than the image's, or mounted
//! read-only. SQLite and the OS then say "attempt to write a readonly database" or "permission
//! denied", which names neither the path nor the cause. `check-config` asks [`dir_problem`] and
//! [`file_problem`] before anything is opened, and the store asks them again to explain an
//! error it got.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A path this process cannot write, with the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable {
    /// The file or directory that stands in the way (the nearest existing one).
    pub path: PathBuf,
    /// Why it cannot be written.
    pub cause: Cause,
    /// What the fix (`chown -R`, `chmod`) is to be applied to: `path`, or the directory it is
    /// part of (see [`Unwritable::fixed_at`]).
    pub fix_at: PathBuf,
}

impl Unwritable {
    /// `path` cannot be written because of `cause`; the fix is for `path` itself.
    fn new(path: &Path, cause: Cause) -> Unwritable {
        Unwritable {
            path: path.to_owned(),
            cause,
            fix_at: path.to_owned(),
        }
    }

    /// The same problem, with the fix applied to `dir` as a whole (a data directory whose one
    /// file belongs to another user is best given back whole).
    pub fn fixed_at(self, dir: &Path) -> Unwritable {
        Unwritable {
            fix_at: dir.to_owned(),
            ..self
        }
    }
}

/// Why a path cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// It is on a file system mounted read-only.
    ReadOnlyMount,
    /// It belongs to another user, who alone may write it: the Docker bind-mount case.
    OtherOwner {
        /// Its owner.
        owner: u32,
        /// Its group.
        group: u32,
        /// Who this process runs as (effective uid and gid).
        us: (u32, u32),
        /// Its permission bits.
        mode: u32,
    },
    /// It is ours, but its permission bits do not let us write it.
    NoPermission {
        /// Its permission bits.
        mode: u32,
    },
    /// A directory was expected and this is something else, or the other way round.
    WrongKind(&'static str),
}

impl fmt::Display for Unwritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let fix_at = self.fix_at.display();
        match &self.cause {
            Cause::ReadOnlyMount => write!(
                f,
                "{path} is on a read-only file system; mount it read-write (Docker: no `:ro` on \
                 the volume, and `read_only: true` needs the data directory as a volume)"
            ),
            Cause::OtherOwner {
                owner,
                group,
                us,
                mode,
            } => write!(
                f,
                "{path} belongs to uid {owner} (gid {group}, mode {mode:04o}) but hookline runs as \
                 uid {} (gid {}), which may not write it; give it to hookline's user: \
                 `chown -R {}:{} {fix_at}` (the container image runs as 65532:65532), or run \
                 hookline as uid {owner}",
                us.0,
                us.1,
                us.0,
                us.1
            ),
            Cause::NoPermission { mode } => write!(
                f,
                "{path} has mode {mode:04o}, which does not let its owner (hookline) write it; \
                 `chmod -R u+rwX {fix_at}`"
            ),
            Cause::WrongKind(expected) => write!(f, "{path} is not a {expected}"),
        }
    }
}

/// Why files cannot be created and written in `dir` (or, if it does not exist yet, why it cannot
/// be created); `None` when they can.
pub fn dir_problem(dir: &Path) -> Option<Unwritable> {
    let existing = nearest_existing(dir);
    if existing == dir && !dir.is_dir() {
        return Some(Unwritable::new(dir, Cause::WrongKind("directory")));
    }
    problem(&existing, libc::W_OK | libc::X_OK)
}

/// Why `file` cannot be opened for writing (or created, if it does not exist); `None` when it
/// can.
pub fn file_problem(file: &Path) -> Option<Unwritable> {
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_dir() => Some(Unwritable::new(file, Cause::WrongKind("file"))),
        Ok(_) => problem(file, libc::W_OK),
        Err(_) => dir_problem(file.parent().unwrap_or(Path::new("."))),
    }
}

/// `path` itself if it exists, else its nearest ancestor that does (`.` for a relative path
/// whose first component is missing).
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Why this process may not access an existing `path` in `mode` (`W_OK`, `W_OK | X_OK`).
fn problem(path: &Path, mode: libc::c_int) -> Option<Unwritable> {
    if allowed(path, mode) {
        return None;
    }
    let unwritable = |cause| Some(Unwritable::new(path, cause));
    if read_only_mount(path) {
        return unwritable(Cause::ReadOnlyMount);
    }
    let meta = std::fs::metadata(path).ok()?;
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let us = unsafe { (libc::geteuid(), libc::getegid()) };
    let bits = meta.permissions().mode() & 0o7777;
    if meta.uid() == us.0 {
        unwritable(Cause::NoPermission { mode: bits })
    } else {
        unwritable(Cause::OtherOwner {
            owner: meta.uid(),
            group: meta.gid(),
            us,
            mode: bits,
        })
    }
}

/// Whether the effective user may access `path` in `mode`, as the kernel decides (root
/// included, ACLs included).
fn allowed(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

/// Whether `path` is on a file system mounted read-only.
fn read_only_mount(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statvfs is a valid value for the kernel to overwrite.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stat` is a valid, writable statvfs.
    let ok = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } == 0;
    ok && stat.f_flag & libc::ST_RDONLY != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_places_have_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dir_problem(dir.path()), None);
        assert_eq!(dir_problem(&dir.path().join("not/yet")), None);
        assert_eq!(file_problem(&dir.path().join("new.jsonl")), None);
    }

    #[test]
    fn a_file_where_a_directory_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let problem = dir_problem(&file).unwrap();
        assert_eq!(problem.cause, Cause::WrongKind("directory"));
        assert_eq!(
            file_problem(dir.path()).unwrap().cause,
            Cause::WrongKind("file")
        );
    }

    #[test]
    fn read_only_mounts_are_recognised() {
        // /proc/sys is mounted read-only in containers; /proc itself never is. Where neither
        // holds, the statvfs flag is still read without error.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let read_only = mounts.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let options = fields.get(3)?;
            options
                .split(',')
                .any(|o| o == "ro")
                .then(|| PathBuf::from(fields[1]))
                .filter(|p| p.is_dir())
        });
        if let Some(path) = read_only {
            assert!(read_only_mount(&path), "{}", path.display());
        }
        assert!(!read_only_mount(Path::new("/proc")));
    }

    #[test]
    fn messages_name_the_path_the_cause_and_the_fix() {
        let owner = Unwritable::new(
            Path::new("/srv/data/hookline.db"),
            Cause::OtherOwner {
                owner: 1000,
                group: 1000,
                us: (65532, 65532),
                mode: 0o644,
            },
        )
        .fixed_at(Path::new("/srv/data"));
        let text = owner.to_string();
        assert!(
            text.contains("/srv/data/hookline.db belongs to uid 1000"),
            "{text}"
        );
        assert!(text.contains("runs as uid 65532"), "{text}");
        assert!(text.contains("chown -R 65532:65532 /srv/data`"), "{text}");
        let mount = Unwritable::new(Path::new("/data"), Cause::ReadOnlyMount);
        assert!(mount.to_string().contains("read-only file system"));
    }
}
