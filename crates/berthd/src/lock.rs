//! One data root, one daemon: an exclusive lock (`flock`) on `berthd.lock` in the data root and in the exec root,
//! held for the daemon's whole life (the kernel drops it when the process ends, even after `kill -9`), with the
//! holder's PID written in the file. A second berthd, or `berthd --remove-networking`, on a root that a running
//! daemon holds refuses before it touches anything there.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The lock file's name in each root.
pub const LOCK_FILE: &str = "berthd.lock";

/// The locks this process holds; dropping it releases them.
#[derive(Debug)]
pub struct RootLocks {
    _files: Vec<File>,
}

/// Locks every root (`(what, path)`, e.g. `("data root", /var/lib/berth)`) or fails naming the daemon that holds one.
/// The same directory given twice is locked once.
pub fn lock_roots(roots: &[(&str, &Path)]) -> Result<RootLocks> {
    let mut files = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for (what, dir) in roots {
        if seen.contains(dir) {
            continue;
        }
        seen.push(dir);
        files.push(lock_one(what, dir)?);
    }
    Ok(RootLocks { _files: files })
}

fn lock_one(what: &str, dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    // Close-on-exec (as every std File is): a shim or any other child must never inherit the lock, or it would
    // outlive this daemon.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!("{}", held_message(what, dir, &path, holder(&mut file))),
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("lock {}", path.display())),
    }
    let pid = std::process::id();
    file.set_len(0).and_then(|()| file.rewind()).with_context(|| format!("truncate {}", path.display()))?;
    file.write_all(format!("{pid}\n").as_bytes()).with_context(|| format!("write {}", path.display()))?;
    Ok(file)
}

/// The PID the holder wrote (none in the instant between its lock and its write).
fn holder(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn held_message(what: &str, dir: &Path, lock: &Path, pid: Option<u32>) -> String {
    let who = match pid {
        Some(pid) => format!("another berthd (PID {pid})"),
        None => "another berthd".to_string(),
    };
    format!(
        "{who} is running on the {what} {} (it holds {}): stop it first, or give this daemon its own --data-root \
         and --exec-root",
        dir.display(),
        lock.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_root_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock_roots(&[("data root", dir.path()), ("exec root", dir.path())]).expect("first lock");
        let pid = std::process::id();
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).expect("read"), format!("{pid}\n"));
        // flock conflicts between two open files even within one process, as between two daemons.
        let e = lock_roots(&[("data root", dir.path())]).expect_err("second lock").to_string();
        assert!(e.contains(&format!("another berthd (PID {pid}) is running on the data root")), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        drop(held);
        let again = lock_roots(&[("data root", dir.path())]).expect("free again once the holder is gone");
        drop(again);
    }
}
