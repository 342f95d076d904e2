//! The exec helper: `berth-shim exec <bundle> <request.json>`.
//!
//! Started by `berthd` for each exec with a report pipe on descriptor 3 and, without a terminal, the exec's stdio as
//! its own (pipes). It joins the container through the runtime, reports the new process's PID (or the error) on
//! descriptor 3, waits for the process and exits with its exit code.
//!
//! With a terminal (`process.terminal`), the runtime creates it inside the container and returns its master: the helper
//! sends it (`SCM_RIGHTS`) on descriptor 4, a Unix socket given by berthd for an attached exec, before it reports;
//! without that socket (a detached exec) the helper keeps the master open and discards what it reads while it waits.
//! (No thread for that: after `setns` into a PID namespace, a process cannot create threads.)

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_runtime::Stdio;
use berth_runtime::shim::{self, ExecRequest, Response, ShimConfig};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

pub fn run(bundle: PathBuf, request: PathBuf) -> Result<()> {
    // SAFETY: berthd hands the helper a report pipe on descriptor 3; nothing else in this process owns that number.
    let mut report = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(3) });
    let code = match start(&bundle, &request) {
        Ok((pid, master)) => {
            let _ = writeln!(report, "{}", serde_json::to_string(&Response::Created { pid: pid.as_raw() })?);
            drop(report);
            wait_for(pid, master)
        }
        Err(e) => {
            let message = format!("{e:#}");
            let _ = writeln!(report, "{}", serde_json::to_string(&Response::Error { message: message.clone() })?);
            if message.contains("permission denied") { 126 } else { 127 }
        }
    };
    std::process::exit(code)
}

/// The descriptor on which berthd wants a terminal's master.
const CONSOLE_SOCKET_FD: i32 = 4;
/// Descriptors from here up are none of berthd's handing: closed at start.
pub const FIRST_UNUSED_FD: u32 = 5;

/// Descriptor 4 when it is a socket berthd gave us.
fn console_socket() -> Option<OwnedFd> {
    // SAFETY: fstat on a descriptor number only fills the local `stat`; a closed number yields EBADF.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(CONSOLE_SOCKET_FD, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    };
    // SAFETY: berthd hands the helper the console socket on descriptor 4 (checked to be a socket); nothing else in
    // this process owns that number.
    let sock = is_socket.then(|| unsafe { OwnedFd::from_raw_fd(CONSOLE_SOCKET_FD) })?;
    // Not for the runtime's children (an external runtime's command).
    let _ = nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    Some(sock)
}

/// Hands the terminal's master to berthd; without a console socket (a detached exec), returns it to be drained.
fn hand_over(master: OwnedFd, socket: Option<OwnedFd>) -> Result<Option<std::fs::File>> {
    match socket {
        Some(sock) => {
            berth_runtime::sys::send_fd(sock.as_fd(), master.as_fd())?;
            Ok(None)
        }
        None => {
            let f = std::fs::File::from(master);
            let flags = OFlag::from_bits_truncate(fcntl(&f, FcntlArg::F_GETFL)?);
            fcntl(&f, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
            Ok(Some(f))
        }
    }
}

/// Starts the exec; returns its PID and, for a detached exec with a terminal, the master to drain.
fn start(bundle: &Path, request: &Path) -> Result<(Pid, Option<std::fs::File>)> {
    let cfg: ShimConfig = crate::read_json(&bundle.join(shim::CONFIG_FILE))?;
    let mut req: ExecRequest = crate::read_json(request)?;
    let pid_text = std::fs::read_to_string(bundle.join(shim::INIT_PID_FILE)).context("container is not running")?;
    let init_pid = Pid::from_raw(pid_text.trim().parse().context("invalid init.pid")?);
    let root = PathBuf::from(format!("/proc/{init_pid}/root"));
    crate::apply_user(&mut req.process, &root, &req.user, &cfg.group_add)?;
    berth_runtime::sys::set_child_subreaper()?;
    let runtime = berth_runtime::by_name(&cfg.runtime, &cfg.runtime_root);
    let terminal = req.process.terminal().unwrap_or(false);
    let socket = if terminal { console_socket() } else { None };
    let stdio = if terminal {
        Stdio::Console
    } else {
        let dup = |fd: BorrowedFd<'_>| fd.try_clone_to_owned().context("dup stdio");
        Stdio::Fds {
            stdin: dup(std::io::stdin().as_fd())?,
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
        }
    };
    let (pid, master) = runtime.exec(&cfg.id, bundle, init_pid, &req.process, stdio)?;
    let drain = match master {
        Some(master) => hand_over(master, socket).context("hand over the terminal")?,
        None => None,
    };
    Ok((pid, drain))
}

/// Waits for `pid` (our child, or an orphan re-parented to us as subreaper) and returns Docker's exit code for it.
/// Meanwhile, discards the output of a detached exec's terminal (`drain`, non-blocking), so that it never blocks: one
/// `poll` on the terminal and a signalfd for SIGCHLD, with no timeout, so an idle exec costs no CPU.
fn wait_for(pid: Pid, mut drain: Option<std::fs::File>) -> i32 {
    // SIGCHLD is blocked before the first non-blocking wait: an exit after it stays pending for the signalfd.
    let sigchld = drain.as_ref().and_then(|_| {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block().ok()?;
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
    });
    loop {
        let flags = drain.is_some().then_some(WaitPidFlag::WNOHANG);
        match waitpid(Pid::from_raw(-1), flags) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
            // Another child (reaped as subreaper), or an interruption: wait again before sleeping.
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
        // Only without a child to reap, and with a terminal to drain: sleep until it has output or a child exits.
        let Some(f) = &mut drain else { continue };
        let mut fds = vec![PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        if let Some(sfd) = &sigchld {
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        }
        // Without a signalfd (it could not be made), a bounded sleep instead.
        let timeout = if sigchld.is_some() { PollTimeout::NONE } else { PollTimeout::from(200u16) };
        let _ = poll(&mut fds, timeout);
        drop(fds);
        if let Some(sfd) = &sigchld {
            while let Ok(Some(_)) = sfd.read_signal() {}
        }
        if !drain_terminal(f) {
            drain = None;
        }
    }
}

/// Reads and discards what the terminal has; false once it is closed (EOF, or EIO once every process has closed it).
fn drain_terminal(f: &mut std::fs::File) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return false,
        }
    }
}
