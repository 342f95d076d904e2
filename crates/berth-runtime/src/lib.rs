//! Berth's container runtime.
//!
//! A container is described by an OCI bundle (`config.json` + a root filesystem). The [`Runtime`] trait turns a bundle
//! into a running container and manages it; it has two implementations that pass one conformance suite:
//! [`builtin::Builtin`], Berth's own runtime (namespaces, pivot_root, cgroups, capabilities, seccomp, all in-process,
//! called from the per-container shim), and [`external::External`], a driver for any OCI runtime CLI (runc, crun, youki).
//!
//! The crate also owns the shim protocol ([`shim`]) spoken between `berthd` and `berth-shim`.

pub mod builtin;
pub mod cgroups;
pub mod console;
pub mod external;
pub mod mounts;
pub mod process;
pub mod seccomp;
pub mod shim;
pub mod sys;
pub mod user;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

/// Errors of the runtime. Messages are lowercase and name what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's `config.json` is missing or invalid.
    #[error("invalid bundle {path}: {reason}")]
    Bundle { path: String, reason: String },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// The container process could not be started; the text is what the user reads
    /// (e.g. `exec: "nope": executable file not found in $PATH`).
    #[error("{0}")]
    Start(String),
    /// The user given with `-u` could not be resolved in the container.
    #[error("{0}")]
    User(String),
    /// The external OCI runtime failed.
    #[error("{runtime} {command} failed: {stderr}")]
    External { runtime: String, command: String, stderr: String },
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    /// Building or loading the seccomp filter failed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The standard streams a container process gets.
#[derive(Debug)]
pub enum Stdio {
    /// These descriptors (pipes, `/dev/null`, ...) become its stdin, stdout and stderr. For a process whose
    /// `terminal` flag is false.
    Fds { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    /// A new terminal is created inside the container, as runc does: a pty of the container's devpts instance, whose
    /// slave (`/dev/pts/N`, also bind-mounted on `/dev/console` for a container's init) becomes the process's stdin,
    /// stdout, stderr and controlling terminal. Its master is handed back ([`Created::console`], [`Runtime::exec`]).
    /// For a process whose `terminal` flag is true.
    Console,
}

impl Stdio {
    /// Whether this asks for a terminal.
    pub fn is_console(&self) -> bool {
        matches!(self, Stdio::Console)
    }

    /// Checks that the process's `terminal` flag agrees with the kind of stdio.
    pub(crate) fn check(&self, process: &Process) -> Result<()> {
        if process.terminal().unwrap_or(false) != self.is_console() {
            return Err(Error::Start(format!(
                "process.terminal is {} but the stdio given {} a console",
                process.terminal().unwrap_or(false),
                if self.is_console() { "asks for" } else { "is not" }
            )));
        }
        Ok(())
    }
}

/// A container whose init process exists, fully set up, and waits to exec the user's program.
pub trait Created {
    /// The host PID of the container's init process.
    fn pid(&self) -> Pid;
    /// The master of the container's terminal, when it was created with [`Stdio::Console`]; `None` afterwards or
    /// without a terminal.
    fn console(&mut self) -> Option<OwnedFd>;
    /// Lets init exec the user's program. Fails with [`Error::Start`] when the program cannot be executed.
    fn start(self: Box<Self>) -> Result<()>;
}

/// A container runtime.
pub trait Runtime {
    /// A short name for messages (`berth`, `runc`, ...).
    fn name(&self) -> &str;
    /// Creates container `id` from `bundle` (whose `config.json` has already been written). Must be called from a
    /// single-threaded process (the shim): the built-in runtime forks. The init process becomes a child of the caller
    /// (or, for external runtimes, of the nearest subreaper, which the shim makes itself).
    fn create(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Box<dyn Created>>;
    /// Runs `process` inside the running container `id`, whose init is `init_pid`. Returns the new process's PID
    /// (a child of the caller, which must be single-threaded) and, with [`Stdio::Console`], its terminal's master.
    fn exec(
        &self,
        id: &str,
        bundle: &Path,
        init_pid: Pid,
        process: &Process,
        stdio: Stdio,
    ) -> Result<(Pid, Option<OwnedFd>)>;
    /// Freezes every process of the container.
    fn pause(&self, id: &str, bundle: &Path) -> Result<()>;
    /// Thaws a paused container.
    fn resume(&self, id: &str, bundle: &Path) -> Result<()>;
    /// Releases what the runtime holds for a container whose processes are gone (cgroups, runtime state).
    /// Safe to call twice.
    fn delete(&self, id: &str, bundle: &Path) -> Result<()>;
}

/// Loads `bundle/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| Error::Bundle { path: path.display().to_string(), reason: e.to_string() })
}

/// Writes `bundle/config.json` atomically. Not synced: a bundle is runtime state, written anew at every start.
pub fn save_spec(bundle: &Path, spec: &Spec) -> Result<()> {
    let json = serde_json::to_vec(spec)
        .map_err(|e| Error::Bundle { path: bundle.display().to_string(), reason: e.to_string() })?;
    sys::replace_file(&bundle.join("config.json"), &json, false)
}

/// Picks the runtime named by `name`: `berth` (or empty) for the built-in one, else an OCI runtime binary (a name looked
/// up in `PATH`, or a path) whose state lives under `state_root`.
pub fn by_name(name: &str, state_root: &Path) -> Box<dyn Runtime> {
    match name {
        "" | "berth" | "builtin" => Box::new(builtin::Builtin::new(state_root)),
        other => Box::new(external::External::new(other, state_root)),
    }
}
