//! A driver for any OCI runtime command line (runc, crun, youki): the same bundle, driven through
//! `create`/`start`/`exec`/`pause`/`resume`/`delete` subcommands.
//!
//! Without a terminal, the runtime runs in "pass-through" mode: the container's standard streams are the descriptors
//! given to `create`/`exec`. With one ([`Stdio::Console`]), the OCI console-socket protocol: the runtime creates the
//! terminal inside the container and sends its master over the Unix socket named by `--console-socket`, which this
//! driver listens on for the duration of the command (in a private temporary directory: a bundle's path can be too
//! long for a socket address).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::{Created, Error, Result, Runtime, Stdio, load_spec};

/// An external OCI runtime.
#[derive(Debug, Clone)]
pub struct External {
    binary: String,
    root: PathBuf,
}

impl External {
    /// `binary` is a name looked up in `PATH` or a path; `root` holds the runtime's own state (`--root`).
    pub fn new(binary: &str, root: &Path) -> External {
        External { binary: binary.to_string(), root: root.join(Path::new(binary).file_name().unwrap_or_default()) }
    }

    fn command(&self, bundle: &Path) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        // The log lives in the bundle; a `delete` after the bundle is gone runs without one.
        if bundle.is_dir() {
            c.arg("--log").arg(bundle.join("runtime.log")).arg("--log-format").arg("json");
        }
        c
    }

    /// Runs the runtime and turns a failure into an error carrying its last log message.
    fn run(&self, mut cmd: Command, bundle: &Path, what: &str) -> Result<()> {
        let out = cmd.output().map_err(Error::io(format!("run {} {what}", self.binary)))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::External {
            runtime: self.binary.clone(),
            command: what.into(),
            stderr: last_error(bundle, &out.stderr),
        })
    }
}

/// The last error the runtime logged (JSON lines `{"level":"error","msg":...}`), else its stderr.
fn last_error(bundle: &Path, stderr: &[u8]) -> String {
    let log = std::fs::read_to_string(bundle.join("runtime.log")).unwrap_or_default();
    let from_log = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string));
    from_log.unwrap_or_else(|| String::from_utf8_lossy(stderr).trim().to_string())
}

/// A listening socket for `--console-socket`, in a directory of its own (mode 0700, so that no one else can connect),
/// removed on drop.
struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn bind() -> Result<ConsoleSocket> {
        let template = std::env::temp_dir().join("berth-console-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(Error::sys(format!("mkdtemp {}", template.display())))?;
        let path = dir.join("console.sock");
        match UnixListener::bind(&path) {
            Ok(listener) => Ok(ConsoleSocket { dir, path, listener }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(Error::Io { what: format!("listen on {}", path.display()), source: e })
            }
        }
    }

    /// Takes the master the runtime sent. Called once the runtime's command has returned: by then it has connected
    /// and sent it (the connection waits in the backlog), so nothing here blocks.
    fn receive(&self) -> Result<OwnedFd> {
        self.listener.set_nonblocking(true).map_err(Error::io("console socket"))?;
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| Error::Start(format!("the runtime did not send the terminal to the console socket: {e}")))?;
        crate::sys::recv_fd(conn.as_fd(), true)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Gives the command its stdio, or a console socket for a terminal.
fn set_stdio(c: &mut Command, stdio: Stdio) -> Result<Option<ConsoleSocket>> {
    match stdio {
        Stdio::Fds { stdin, stdout, stderr } => {
            c.stdin(stdin).stdout(stdout).stderr(stderr);
            Ok(None)
        }
        Stdio::Console => {
            let sock = ConsoleSocket::bind()?;
            c.arg("--console-socket").arg(&sock.path);
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            Ok(Some(sock))
        }
    }
}

fn read_pid(path: &Path) -> Result<Pid> {
    let s = std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
    s.trim().parse().map(Pid::from_raw).map_err(|_| Error::Start(format!("invalid pid file {}: {s:?}", path.display())))
}

struct ExternalCreated {
    runtime: External,
    id: String,
    bundle: PathBuf,
    pid: Pid,
    console: Option<OwnedFd>,
}

impl Created for ExternalCreated {
    fn pid(&self) -> Pid {
        self.pid
    }

    fn console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    fn start(self: Box<Self>) -> Result<()> {
        let mut c = self.runtime.command(&self.bundle);
        c.arg("start").arg(&self.id);
        self.runtime.run(c, &self.bundle, "start").map_err(|e| Error::Start(e.to_string()))
    }
}

impl Runtime for External {
    fn name(&self) -> &str {
        &self.binary
    }

    fn create(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Box<dyn Created>> {
        let spec = load_spec(bundle)?;
        if let Some(p) = spec.process() {
            stdio.check(p)?;
        }
        let pid_file = bundle.join("init.pid");
        let mut c = self.command(bundle);
        c.arg("create").arg("--bundle").arg(bundle).arg("--pid-file").arg(&pid_file);
        let sock = set_stdio(&mut c, stdio)?;
        c.arg(id);
        self.run(c, bundle, "create").map_err(|e| Error::Start(e.to_string()))?;
        let pid = read_pid(&pid_file)?;
        let console = match sock.as_ref().map(ConsoleSocket::receive).transpose() {
            Ok(c) => c,
            Err(e) => {
                let _ = self.delete(id, bundle);
                return Err(e);
            }
        };
        Ok(Box::new(ExternalCreated { runtime: self.clone(), id: id.into(), bundle: bundle.into(), pid, console }))
    }

    fn exec(
        &self,
        id: &str,
        bundle: &Path,
        _init_pid: Pid,
        process: &Process,
        stdio: Stdio,
    ) -> Result<(Pid, Option<OwnedFd>)> {
        stdio.check(process)?;
        let n = std::process::id();
        let process_file = bundle.join(format!("exec-{n}.json"));
        let pid_file = bundle.join(format!("exec-{n}.pid"));
        let json = serde_json::to_vec(&process)
            .map_err(|e| Error::Bundle { path: process_file.display().to_string(), reason: e.to_string() })?;
        // Root only (0600): the process holds its environment.
        crate::sys::replace_file(&process_file, &json, false)?;
        let mut c = self.command(bundle);
        c.arg("exec").arg("--process").arg(&process_file).arg("--pid-file").arg(&pid_file).arg("--detach");
        let res = set_stdio(&mut c, stdio).and_then(|sock| {
            c.arg(id);
            self.run(c, bundle, "exec").map_err(|e| Error::Start(e.to_string()))?;
            let pid = read_pid(&pid_file)?;
            // A started process whose terminal cannot be had is killed.
            let console = sock.as_ref().map(ConsoleSocket::receive).transpose().inspect_err(|_| {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            })?;
            Ok((pid, console))
        });
        let _ = std::fs::remove_file(&process_file);
        let _ = std::fs::remove_file(&pid_file);
        res
    }

    fn pause(&self, id: &str, bundle: &Path) -> Result<()> {
        let mut c = self.command(bundle);
        c.arg("pause").arg(id);
        self.run(c, bundle, "pause")
    }

    fn resume(&self, id: &str, bundle: &Path) -> Result<()> {
        let mut c = self.command(bundle);
        c.arg("resume").arg(id);
        self.run(c, bundle, "resume")
    }

    fn delete(&self, id: &str, bundle: &Path) -> Result<()> {
        let mut c = self.command(bundle);
        c.arg("delete").arg("--force").arg(id);
        self.run(c, bundle, "delete")
    }
}

/// Whether an OCI runtime binary of that name can be found (for the conformance suite and `--runtime` validation).
pub fn available(binary: &str) -> bool {
    if binary.contains('/') {
        return Path::new(binary).is_file();
    }
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file())).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_prefers_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("runtime.log"),
            "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
        )
        .expect("write");
        assert_eq!(last_error(dir.path(), b"other"), "exec: \"nope\": executable file not found in $PATH");
        assert_eq!(last_error(Path::new("/nonexistent"), b" boom \n"), "boom");
        assert!(available("sh"));
        assert!(!available("/nonexistent/runc"));
    }
}
