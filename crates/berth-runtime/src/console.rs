//! A process's terminal, created inside the container as runc does: a pty of the container's own devpts instance
//! (`/dev/ptmx` → `pts/ptmx`), so that the process sees `/dev/pts/N` as its terminal; the master goes back to the
//! caller over a Unix socket (`SCM_RIGHTS`), the slave becomes the process's stdio and controlling terminal.
//!
//! Everything here runs in a forked child (the container's init, or an exec'd process) after it has entered the
//! container's mount namespace.

use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;

use crate::{Error, Result, sys};

/// A new terminal: the master (for the caller), the slave and its path inside the container.
pub struct Console {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub path: String,
}

/// Opens a new pty from the calling process's `/dev/ptmx` and its slave for `process`: the slave is given to the
/// process's user (as runc's `fixStdioPermissions` does), the window size is `process.consoleSize` (as runc does, so
/// that the program sees the client's size from the start).
pub fn open_pty(process: &Process) -> Result<Console> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(Error::sys("open /dev/ptmx"))?;
    nix::pty::unlockpt(&master).map_err(Error::sys("unlockpt"))?;
    let path = nix::pty::ptsname_r(&master).map_err(Error::sys("ptsname"))?;
    let slave = open(path.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys(format!("open {path}")))?;
    nix::unistd::fchown(&slave, Some(process.user().uid().into()), None)
        .map_err(Error::sys(format!("chown {path}")))?;
    if let Some(size) = process.console_size() {
        let dim = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        sys::set_winsize(master.as_fd(), dim(size.height()), dim(size.width()))?;
    }
    Ok(Console { master: master.into(), slave, path })
}

/// Makes `slave` the calling process's stdin, stdout, stderr and controlling terminal (the caller is a session
/// leader without one), then sends `master` to the caller through `socket`.
pub fn attach(console: Console, socket: &OwnedFd) -> Result<()> {
    let Console { master, slave, .. } = console;
    for target in 0..3 {
        sys::dup2(slave.as_fd(), target)?;
    }
    if slave.as_raw_fd() <= 2 {
        // The slave already is one of the standard streams: keep that descriptor open.
        let _ = slave.into_raw_fd();
    }
    sys::set_controlling_tty(std::io::stdin().as_fd())?;
    sys::send_fd(socket.as_fd(), master.as_fd())
}
