//! A driver for any OCI runtime command line (runc, crun, youki): the same bundle, driven through
//! `create`/`start`/`exec`/`pause`/`resume`/`delete` subcommands.
//!
//! The runtime runs in "pass-through" mode: the container's standard streams are the descriptors given to `create`
//! (a terminal too, which then is not the process's controlling terminal: the `terminal` flag of the spec is cleared,
//! since console-socket hand-over is not implemented).

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::{Created, Error, Result, Runtime, Stdio, load_spec, save_spec};

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
        c.arg("--root").arg(&self.root).arg("--log").arg(bundle.join("runtime.log")).arg("--log-format").arg("json");
        c
    }

    /// Runs the runtime and turns a failure into an error carrying its last log message.
    fn run(&self, mut cmd: Command, bundle: &Path, what: &str) -> Result<()> {
        let out = cmd.output().map_err(Error::io(format!("run {} {what}", self.binary)))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::External { runtime: self.binary.clone(), command: what.into(), stderr: last_error(bundle, &out.stderr) })
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

fn read_pid(path: &Path) -> Result<Pid> {
    let s = std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
    s.trim()
        .parse()
        .map(Pid::from_raw)
        .map_err(|_| Error::Start(format!("invalid pid file {}: {s:?}", path.display())))
}

struct ExternalCreated {
    runtime: External,
    id: String,
    bundle: PathBuf,
    pid: Pid,
}

impl Created for ExternalCreated {
    fn pid(&self) -> Pid {
        self.pid
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
        let mut spec = load_spec(bundle)?;
        if let Some(p) = spec.process_mut() {
            p.set_terminal(Some(false));
        }
        save_spec(bundle, &spec)?;
        let pid_file = bundle.join("init.pid");
        let mut c = self.command(bundle);
        c.arg("create").arg("--bundle").arg(bundle).arg("--pid-file").arg(&pid_file).arg(id);
        c.stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr);
        self.run(c, bundle, "create").map_err(|e| Error::Start(e.to_string()))?;
        let pid = read_pid(&pid_file)?;
        Ok(Box::new(ExternalCreated { runtime: self.clone(), id: id.into(), bundle: bundle.into(), pid }))
    }

    fn exec(&self, id: &str, bundle: &Path, _init_pid: Pid, process: &Process, stdio: Stdio) -> Result<Pid> {
        let mut process = process.clone();
        process.set_terminal(Some(false));
        let n = std::process::id();
        let process_file = bundle.join(format!("exec-{n}.json"));
        let pid_file = bundle.join(format!("exec-{n}.pid"));
        let json = serde_json::to_vec(&process)
            .map_err(|e| Error::Bundle { path: process_file.display().to_string(), reason: e.to_string() })?;
        std::fs::write(&process_file, json).map_err(Error::io(format!("write {}", process_file.display())))?;
        let mut c = self.command(bundle);
        c.arg("exec").arg("--process").arg(&process_file).arg("--pid-file").arg(&pid_file).arg("--detach").arg(id);
        c.stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr);
        let res = self.run(c, bundle, "exec").map_err(|e| Error::Start(e.to_string())).and_then(|()| read_pid(&pid_file));
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
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false)
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
