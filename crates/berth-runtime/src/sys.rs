//! Thin wrappers over the system calls that `nix` does not cover, each unsafe block small and justified; plus file helpers.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::unistd::Pid;

use crate::{Error, Result};

/// What a fork-like call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of the caller's stack) and extra
/// `CLONE_NEW*` flags, so that the child is born in new namespaces (PID 1 of a new PID namespace, for instance).
/// The caller must be single-threaded.
pub fn clone_fork(namespace_flags: libc::c_int) -> Result<Forked> {
    let flags = (namespace_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack pointer, clone behaves like fork(2): the child gets a copy-on-write copy of the address
    // space, including the stack. The caller is single-threaded (the shim), so no lock can be held by another thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Error::Sys { what: "clone".into(), source: nix::Error::last() }),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Makes the calling process a child subreaper: orphaned descendants (a container init left behind by an external
/// runtime's `create`) re-parent to it, so that it can reap them and learn their exit status.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_CHILD_SUBREAPER)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Sets the no_new_privs bit: execve can no longer grant privileges (setuid bits, file capabilities).
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_NO_NEW_PRIVS)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Keeps the permitted capabilities across the coming setuid away from root.
pub fn set_keep_caps(keep: bool) -> Result<()> {
    // SAFETY: prctl with PR_SET_KEEPCAPS takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "prctl(PR_SET_KEEPCAPS)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Makes `fd` (a terminal) the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and reads no memory of ours.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        return Err(Error::Sys { what: "ioctl(TIOCSCTTY)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// Sets the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which points at a live local of the right type.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret == -1 {
        return Err(Error::Sys { what: "ioctl(TIOCSWINSZ)".into(), source: nix::Error::last() });
    }
    Ok(())
}

/// `pivot_root(new_root, put_old)`.
pub fn pivot_root(new_root: &str, put_old: &str) -> Result<()> {
    nix::unistd::pivot_root(new_root, put_old).map_err(Error::sys("pivot_root"))
}

/// Replaces the process image; returns only on failure, with the errno.
pub fn execve(path: &CString, args: &[CString], env: &[CString]) -> nix::Error {
    match nix::unistd::execve(path, args, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Writes `data` to `path` atomically: a temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { what: format!("write {}", path.display()), source: e }
    })
}
