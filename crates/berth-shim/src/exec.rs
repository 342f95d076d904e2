//! The exec helper: `berth-shim exec <bundle> <request.json>`.
//!
//! Started by `berthd` for each exec with the exec's stdio as its own (pipes or a pty slave) and a report pipe on
//! descriptor 3. It joins the container through the runtime, reports the new process's PID (or the error) on
//! descriptor 3, waits for the process and exits with its exit code.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_runtime::shim::{self, ExecRequest, Response, ShimConfig};
use berth_runtime::Stdio;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

pub fn run(bundle: PathBuf, request: PathBuf) -> Result<()> {
    // SAFETY: berthd hands the helper a report pipe on descriptor 3; nothing else in this process owns that number.
    let mut report = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(3) });
    let code = match start(&bundle, &request) {
        Ok(pid) => {
            let _ = writeln!(report, "{}", serde_json::to_string(&Response::Created { pid: pid.as_raw() })?);
            drop(report);
            wait_for(pid)
        }
        Err(e) => {
            let message = format!("{e:#}");
            let _ = writeln!(report, "{}", serde_json::to_string(&Response::Error { message: message.clone() })?);
            if message.contains("permission denied") { 126 } else { 127 }
        }
    };
    std::process::exit(code)
}

fn start(bundle: &Path, request: &Path) -> Result<Pid> {
    let cfg: ShimConfig = crate::read_json(&bundle.join(shim::CONFIG_FILE))?;
    let mut req: ExecRequest = crate::read_json(request)?;
    let pid_text = std::fs::read_to_string(bundle.join(shim::INIT_PID_FILE)).context("container is not running")?;
    let init_pid = Pid::from_raw(pid_text.trim().parse().context("invalid init.pid")?);
    crate::apply_user(&mut req.process, &PathBuf::from(format!("/proc/{init_pid}/root")), &req.user)?;
    berth_runtime::sys::set_child_subreaper()?;
    let runtime = berth_runtime::by_name(&cfg.runtime, &cfg.runtime_root);
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().context("dup stdio");
    let stdio = Stdio {
        stdin: dup(std::io::stdin().as_fd())?,
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
    };
    Ok(runtime.exec(&cfg.id, bundle, init_pid, &req.process, stdio)?)
}

/// Waits for `pid` (our child, or an orphan re-parented to us as subreaper) and returns Docker's exit code for it.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}
