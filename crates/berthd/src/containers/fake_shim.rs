//! An in-memory shim for unit tests, in the place of `berth-shim` (as youki's `TestHelperSyscall` stands in for
//! the kernel behind its `Syscall` trait): no process, no mount, no cgroup, so the container manager's lifecycle runs
//! without root in milliseconds.
//!
//! It behaves as the real shim does where berthd can tell: `spawn` reads the bundle's shim config and creates the
//! container (a made-up PID); `Start` runs it; a signal ends it with `128 + signal` (unless the test made its program
//! ignore that signal; SIGKILL cannot be ignored, and a paused program gets its signals once resumed); when it ends,
//! the exit record is written to the config's exit file before `Wait` answers, and the shim is gone (its socket
//! refuses from then on). The test ends a program with [`FakeShims::exit`], and a shim without an exit record with
//! [`FakeShims::crash`].
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_runtime::shim::{self, ExitRecord, Request, Response, ShimConfig};
use futures_util::future::BoxFuture;
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::record::AttachStreams;
use super::shim_client::{ShimClient, start_error};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FakeState {
    Created,
    Running,
    Paused,
    /// The program ended (the shim recorded it and is gone).
    Exited,
    /// The shim died without recording an exit.
    Crashed,
}

/// How a shim ended, for its waiters: `Some(record)`, or `None` when it died without one.
type Ending = Option<Option<ExitRecord>>;

struct Shim {
    id: String,
    pid: i32,
    shim_pid: i32,
    exit_path: PathBuf,
    state: FakeState,
    /// Signals sent while paused, delivered on resume (a frozen process cannot act on them).
    pending: Vec<i32>,
    ended: watch::Sender<Ending>,
    /// The shim's ends of the attach streams; closed when it goes.
    attached: Vec<UnixStream>,
}

impl Shim {
    fn alive(&self) -> bool {
        matches!(self.state, FakeState::Created | FakeState::Running | FakeState::Paused)
    }

    /// The program ends: the record goes to the exit file first (as the shim writes it before it answers), then to
    /// the waiters.
    fn end(&mut self, exit_code: i32) {
        let rec = ExitRecord { exit_code, finished_at: berth_api::time::now(), oom_killed: false, error: None };
        std::fs::write(&self.exit_path, serde_json::to_vec(&rec).unwrap()).unwrap();
        self.state = FakeState::Exited;
        self.attached.clear();
        self.ended.send_replace(Some(Some(rec)));
    }

    fn signal(&mut self, sig: i32, ignored: &HashSet<i32>) {
        if self.state == FakeState::Paused {
            self.pending.push(sig);
        } else if sig == libc::SIGKILL || !ignored.contains(&sig) {
            self.end(128 + sig);
        }
    }
}

#[derive(Default)]
struct Inner {
    next_pid: i32,
    /// By bundle directory.
    shims: HashMap<PathBuf, Shim>,
    /// The next spawn fails with this message (as the shim reports a failed create).
    fail_spawn: Option<String>,
    /// Per container: the signals its program ignores.
    ignored: HashMap<String, HashSet<i32>>,
    /// Per container: how many shims were spawned.
    spawns: HashMap<String, usize>,
    /// Containers whose leftovers were ended, in order.
    leftovers: Vec<String>,
}

/// The fake shims of one test daemon.
#[derive(Default)]
pub(crate) struct FakeShims {
    inner: Mutex<Inner>,
}

fn not_running(bundle: &Path) -> Error {
    Error::Conflict(format!("container is not running (shim: {}: connection refused)", bundle.display()))
}

impl FakeShims {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Shim, &HashSet<i32>) -> T) -> Option<T> {
        let mut inner = self.inner.lock().unwrap();
        let inner = &mut *inner;
        let ignored = inner.ignored.get(id).cloned().unwrap_or_default();
        // The latest shim of the container (a restart spawns a new one in the same bundle).
        inner.shims.values_mut().find(|s| s.id == id).map(|s| f(s, &ignored))
    }

    /// The container's program exits with `code`. False when it is not running.
    pub(crate) fn exit(&self, id: &str, code: i32) -> bool {
        self.with(id, |s, _| {
            let running = matches!(s.state, FakeState::Running | FakeState::Paused);
            if running {
                s.end(code);
            }
            running
        })
        .unwrap_or(false)
    }

    /// The container's shim dies without recording an exit (`kill -9` of the shim).
    pub(crate) fn crash(&self, id: &str) {
        self.with(id, |s, _| {
            s.state = FakeState::Crashed;
            s.attached.clear();
            s.ended.send_replace(Some(None));
        });
    }

    /// The next spawn fails as the shim reports a failed create (`executable file not found`, ...).
    pub(crate) fn fail_next_spawn(&self, message: &str) {
        self.inner.lock().unwrap().fail_spawn = Some(message.to_string());
    }

    /// The program of container `id` ignores `signal` (SIGKILL excepted).
    pub(crate) fn ignore_signal(&self, id: &str, signal: i32) {
        self.inner.lock().unwrap().ignored.entry(id.to_string()).or_default().insert(signal);
    }

    /// The state of the container's latest shim.
    pub(crate) fn state(&self, id: &str) -> Option<FakeState> {
        self.with(id, |s, _| s.state)
    }

    /// How many shims were spawned for the container.
    pub(crate) fn spawns(&self, id: &str) -> usize {
        self.inner.lock().unwrap().spawns.get(id).copied().unwrap_or(0)
    }

    /// How many times the container's leftovers were ended.
    pub(crate) fn leftovers_ended(&self, id: &str) -> usize {
        self.inner.lock().unwrap().leftovers.iter().filter(|l| *l == id).count()
    }

    /// How many attach streams the container's shim holds open.
    pub(crate) fn attached(&self, id: &str) -> usize {
        self.with(id, |s, _| s.attached.len()).unwrap_or(0)
    }
}

impl ShimClient for FakeShims {
    fn spawn<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, Result<i32, Error>> {
        Box::pin(async move {
            let data = std::fs::read(bundle.join(shim::CONFIG_FILE))
                .map_err(|e| Error::Internal(format!("fake shim: read the shim config: {e}")))?;
            let cfg: ShimConfig =
                serde_json::from_slice(&data).map_err(|e| Error::Internal(format!("fake shim: shim config: {e}")))?;
            let mut inner = self.inner.lock().unwrap();
            *inner.spawns.entry(cfg.id.clone()).or_default() += 1;
            if let Some(message) = inner.fail_spawn.take() {
                return Err(start_error(message));
            }
            inner.next_pid += 2;
            let pid = 10_000 + inner.next_pid;
            let shim = Shim {
                id: cfg.id,
                pid,
                shim_pid: pid - 1,
                exit_path: cfg.exit_path,
                state: FakeState::Created,
                pending: Vec::new(),
                ended: watch::channel(None).0,
                attached: Vec::new(),
            };
            inner.shims.insert(bundle.to_path_buf(), shim);
            Ok(pid)
        })
    }

    fn request<'a>(&'a self, bundle: &'a Path, req: &'a Request) -> BoxFuture<'a, Result<Response, Error>> {
        Box::pin(async move {
            let mut wait = {
                let mut inner = self.inner.lock().unwrap();
                let inner = &mut *inner;
                let shim = inner.shims.get_mut(bundle).filter(|s| s.alive()).ok_or_else(|| not_running(bundle))?;
                let ignored = inner.ignored.get(&shim.id).cloned().unwrap_or_default();
                let refuse = |what: &str| Ok(Response::Error { message: format!("container is {what}") });
                match req {
                    Request::Wait => shim.ended.subscribe(),
                    Request::Start if shim.state == FakeState::Created => {
                        shim.state = FakeState::Running;
                        return Ok(Response::Ok);
                    }
                    Request::Start => return refuse("started already"),
                    Request::Kill { signal } if shim.state == FakeState::Created => {
                        // A created container's init waits for `Start`: a signal ends it as it would a program.
                        shim.end(128 + signal);
                        return Ok(Response::Ok);
                    }
                    Request::Kill { signal } => {
                        shim.signal(*signal, &ignored);
                        return Ok(Response::Ok);
                    }
                    Request::Pause if shim.state == FakeState::Running => {
                        shim.state = FakeState::Paused;
                        return Ok(Response::Ok);
                    }
                    Request::Resume if shim.state == FakeState::Paused => {
                        shim.state = FakeState::Running;
                        for sig in std::mem::take(&mut shim.pending) {
                            if shim.alive() {
                                shim.signal(sig, &ignored);
                            }
                        }
                        return Ok(Response::Ok);
                    }
                    Request::Pause | Request::Resume => return refuse("not running or paused as asked"),
                    Request::State => {
                        return Ok(Response::State { pid: shim.pid, paused: shim.state == FakeState::Paused });
                    }
                    Request::Resize { .. } | Request::CloseStdin => return Ok(Response::Ok),
                    Request::Attach { .. } => return refuse("attached through attach()"),
                }
            };
            match wait.wait_for(Option::is_some).await.map(|e| e.clone()) {
                Ok(Some(Some(rec))) => Ok(Response::Exited(rec)),
                // The shim went without an answer: the connection closes (the real one reads an empty line).
                _ => Err(Error::Conflict("container exited".into())),
            }
        })
    }

    fn attach<'a>(&'a self, bundle: &'a Path, _streams: AttachStreams) -> BoxFuture<'a, Result<UnixStream, Error>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap();
            let shim = inner.shims.get_mut(bundle).filter(|s| s.alive()).ok_or_else(|| not_running(bundle))?;
            let (ours, theirs) = UnixStream::pair().map_err(|e| Error::Internal(format!("socketpair: {e}")))?;
            shim.attached.push(theirs);
            Ok(ours)
        })
    }

    fn reachable<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.inner.lock().unwrap().shims.get(bundle).is_some_and(Shim::alive) })
    }

    fn shim_pid(&self, bundle: &Path) -> Option<i32> {
        self.inner.lock().unwrap().shims.get(bundle).filter(|s| s.alive()).map(|s| s.shim_pid)
    }

    fn kill_shim(&self, bundle: &Path) -> bool {
        let id = self.inner.lock().unwrap().shims.get(bundle).filter(|s| s.alive()).map(|s| s.id.clone());
        id.inspect(|id| self.crash(id)).is_some()
    }

    fn end_leftovers(&self, id: &str, _runtime: &str, _state_root: &Path, _bundle: &Path) {
        self.inner.lock().unwrap().leftovers.push(id.to_string());
    }

    fn mount_shm(&self, dir: &Path, _size: i64) -> Result<(), Error> {
        // No mount: the directory stands for it.
        std::fs::create_dir_all(dir).map_err(|e| Error::Internal(e.to_string()))
    }

    fn unmount_shm(&self, dir: &Path) {
        let _ = std::fs::remove_dir(dir);
    }

    fn command(&self) -> tokio::process::Command {
        // No binary: an exec fails to spawn, as with a missing `berth-shim`.
        tokio::process::Command::new("/nonexistent/berth-shim-fake")
    }
}
