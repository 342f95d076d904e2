//! The seam in front of the containers' shims (a leaf: it names no manager and not the daemon): the [`ShimClient`]
//! trait, and [`BerthShim`], the real one, which runs `berth-shim` and talks to it over its socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use berth_runtime::shim::{self, Request, Response};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::record::AttachStreams;

/// Everything berthd does to a container's shim, behind one seam (as youki puts the kernel behind its `Syscall`
/// trait): [`BerthShim`] runs the `berth-shim` binary and talks to it over its socket; the unit tests put an
/// in-memory shim in its place (`fake_shim.rs`). A shim is named by its container's bundle directory, where
/// berthd has written the spec and the shim's config ([`shim::CONFIG_FILE`]) before [`ShimClient::spawn`].
pub trait ShimClient: Send + Sync {
    /// Starts the shim of a written bundle; returns the container's init PID once it is created (its program runs
    /// on [`Request::Start`]).
    fn spawn<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, Result<i32, Error>>;
    /// Sends one request to a running shim and reads its one answer.
    fn request<'a>(&'a self, bundle: &'a Path, req: &'a Request) -> BoxFuture<'a, Result<Response, Error>>;
    /// Opens an attach stream to a running shim (the multiplexed output frames, and the input when asked for).
    fn attach<'a>(&'a self, bundle: &'a Path, streams: AttachStreams) -> BoxFuture<'a, Result<UnixStream, Error>>;
    /// Whether a shim answers on the bundle's socket (start-up: which containers kept running).
    fn reachable<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, bool>;
    /// The PID of the bundle's shim while it is alive.
    fn shim_pid(&self, bundle: &Path) -> Option<i32>;
    /// SIGKILLs the bundle's shim, if it is alive. True when one was killed.
    fn kill_shim(&self, bundle: &Path) -> bool;
    /// Ends whatever of a container runs or is held outside its shim (see [`end_leftovers`]). Blocking.
    fn end_leftovers(&self, id: &str, runtime: &str, state_root: &Path, bundle: &Path);
    /// A command that runs the shim binary (the exec helpers, `berth-shim exec`).
    fn command(&self) -> tokio::process::Command;
    /// Mounts a fresh tmpfs of `size` bytes (mode 1777) at `dir`, over a previous run's: a shareable container's
    /// `/dev/shm` on the host (see `containers::shm`). Blocking.
    fn mount_shm(&self, dir: &Path, size: i64) -> Result<(), Error> {
        mount_shm(dir, size)
    }
    /// Unmounts [`ShimClient::mount_shm`]'s tmpfs (if mounted) and removes `dir`. Blocking.
    fn unmount_shm(&self, dir: &Path) {
        unmount_shm(dir)
    }
}

/// The real shim: the `berth-shim` binary, run from a sealed in-memory copy.
pub struct BerthShim {
    path: PathBuf,
    /// A sealed, read-only in-memory copy of `path`, made once at start: every shim and exec helper runs from it, so
    /// that a container that gets hold of one's `/proc/<pid>/exe` can never write to the host's binary (runc's
    /// CVE-2019-5736). `None` where the kernel has no memfd (the binary is run from its file then).
    image: Option<std::os::fd::OwnedFd>,
}

impl BerthShim {
    /// Makes the sealed copy of the binary at `path`.
    pub fn new(path: &Path) -> BerthShim {
        let started = std::time::Instant::now();
        let image = match berth_runtime::sys::sealed_copy(path, "berth-shim") {
            Ok(fd) => {
                tracing::debug!(took = ?started.elapsed(), "sealed copy of {}", path.display());
                Some(fd)
            }
            Err(e) => {
                tracing::warn!("no sealed copy of {} (shims run from the file): {e}", path.display());
                None
            }
        };
        BerthShim { path: path.to_path_buf(), image }
    }

    /// A command that runs `berth-shim`: from the sealed copy (`argv[0]` is still the shim's path), with an empty
    /// environment but `PATH` (where an external runtime is looked up). Nothing of berthd's environment goes into a
    /// shim, and so into the container processes it forks.
    fn shim_command(&self) -> tokio::process::Command {
        let mut cmd = match &self.image {
            Some(fd) => {
                use std::os::fd::AsRawFd;
                // The child resolves this path in its own table, where the descriptor is (close-on-exec only takes
                // effect once `execve` has opened the file).
                let mut cmd = tokio::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                cmd.arg0(&self.path);
                cmd
            }
            None => tokio::process::Command::new(&self.path),
        };
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }
}

impl ShimClient for BerthShim {
    fn spawn<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, Result<i32, Error>> {
        Box::pin(async move {
            let mut child = self
                .shim_command()
                .arg("start")
                .arg(bundle)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| Error::Internal(format!("run {}: {e}", self.path.display())))?;
            let stdout = child.stdout.take().ok_or_else(|| Error::Internal("shim stdout".into()))?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
            let _ = child.wait().await;
            match serde_json::from_str::<Response>(&line) {
                Ok(Response::Created { pid }) => Ok(pid),
                Ok(Response::Error { message }) => Err(start_error(message)),
                _ => Err(Error::Internal(format!("berth-shim failed to start (it said {:?})", line.trim()))),
            }
        })
    }

    fn request<'a>(&'a self, bundle: &'a Path, req: &'a Request) -> BoxFuture<'a, Result<Response, Error>> {
        Box::pin(async move {
            let sock = bundle.join(shim::SOCKET_FILE);
            let mut s = UnixStream::connect(&sock)
                .await
                .map_err(|e| Error::Conflict(format!("container is not running (shim: {e})")))?;
            let line = serde_json::to_string(req).map_err(|e| Error::Internal(e.to_string()))? + "\n";
            s.write_all(line.as_bytes()).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
            let mut r = BufReader::new(s);
            let mut answer = String::new();
            r.read_line(&mut answer).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
            if answer.is_empty() {
                return Err(Error::Conflict("container exited".into()));
            }
            serde_json::from_str(&answer).map_err(|e| Error::Internal(format!("shim answered {answer:?}: {e}")))
        })
    }

    fn attach<'a>(&'a self, bundle: &'a Path, streams: AttachStreams) -> BoxFuture<'a, Result<UnixStream, Error>> {
        Box::pin(async move {
            let mut s = UnixStream::connect(bundle.join(shim::SOCKET_FILE))
                .await
                .map_err(|e| Error::Conflict(format!("container is not running (shim: {e})")))?;
            let req = Request::Attach { stdin: streams.stdin, stdout: streams.stdout, stderr: streams.stderr };
            let line = serde_json::to_string(&req).map_err(|e| Error::Internal(e.to_string()))? + "\n";
            s.write_all(line.as_bytes()).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
            // The acknowledgement is one line; read it byte by byte so that no output frame is consumed with it.
            let mut ack = Vec::new();
            loop {
                let b = s.read_u8().await.map_err(|_| Error::Conflict("container exited".into()))?;
                if b == b'\n' {
                    break;
                }
                ack.push(b);
            }
            Ok(s)
        })
    }

    fn reachable<'a>(&'a self, bundle: &'a Path) -> BoxFuture<'a, bool> {
        Box::pin(async move { UnixStream::connect(bundle.join(shim::SOCKET_FILE)).await.is_ok() })
    }

    fn shim_pid(&self, bundle: &Path) -> Option<i32> {
        shim_pid(bundle)
    }

    fn kill_shim(&self, bundle: &Path) -> bool {
        shim_pid(bundle).is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok()
        })
    }

    fn end_leftovers(&self, id: &str, runtime: &str, state_root: &Path, bundle: &Path) {
        end_leftovers(id, runtime, state_root, bundle);
    }

    fn command(&self) -> tokio::process::Command {
        self.shim_command()
    }
}

/// Docker's wording and class for a failed start: the user's fault (400) when the program cannot be run.
pub(crate) fn start_error(message: String) -> Error {
    let text = format!("failed to create task for container: unable to start container process: {message}: unknown");
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("permission denied")
        || message.contains("unable to find user")
        || message.contains("unable to find group")
    {
        Error::InvalidArgument(text)
    } else {
        Error::Internal(text)
    }
}

/// The PID of the shim of `bundle`, while its PID file names a live `berth-shim` of this bundle (not a process that
/// reused the number).
fn shim_pid(bundle: &Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let pid = std::fs::read_to_string(bundle.join(shim::SHIM_PID_FILE)).ok()?.trim().parse::<i32>().ok()?;
    if pid <= 1 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline.split(|b| *b == 0).any(|arg| arg == bundle.as_os_str().as_bytes()).then_some(pid)
}

fn mount_shm(dir: &Path, size: i64) -> Result<(), Error> {
    use nix::mount::MsFlags;
    unmount_shm(dir);
    let fail = |e: String| Error::Internal(format!("mount the shared /dev/shm at {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("mode=1777,size={size}");
    nix::mount::mount(Some("shm"), dir, Some("tmpfs"), flags, Some(data.as_str())).map_err(|e| {
        let _ = std::fs::remove_dir(dir);
        fail(e.to_string())
    })
}

fn unmount_shm(dir: &Path) {
    // Detached: a container that still has it bound (a pod member being stopped) keeps its files until it ends.
    // Until nothing is mounted there (EINVAL); a few times at most: berthd mounts one there per start.
    for _ in 0..8 {
        match nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
            Err(e) => {
                tracing::warn!("unmount {}: {e}", dir.display());
                return;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!("remove {}: {e}", dir.display()),
        _ => {}
    }
}

/// Ends whatever of a container runs or is held outside its shim (one that died, a start or removal cut short):
/// every process in its cgroup (`berth/<id>`, whatever the runtime; thawed if frozen) is killed and waited for, up to
/// ten seconds; then the runtime's resources are released (an external runtime's state) and the cgroup removed.
/// Safe to run again, and for a container that has none of them. Blocking.
fn end_leftovers(id: &str, runtime: &str, state_root: &Path, bundle: &Path) {
    let cgroup = berth_runtime::cgroups::Cgroup::open(&format!("berth/{id}")).ok();
    if let Some(cg) = &cgroup {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // A fork racing with the kill is caught by the next round.
            let _ = cg.kill_all();
            match cg.procs() {
                Ok(p) if p.is_empty() => break,
                Err(_) => break,
                Ok(p) if std::time::Instant::now() >= deadline => {
                    tracing::warn!("processes {p:?} of {} survive SIGKILL", &id[..12]);
                    break;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    if let Err(e) = berth_runtime::by_name(runtime, state_root).delete(id, bundle) {
        tracing::debug!("release the runtime's resources of {}: {e}", &id[..12]);
    }
    if let Some(cg) = &cgroup
        && let Err(e) = cg.destroy()
    {
        tracing::warn!("remove the cgroup of {}: {e}", &id[..12]);
    }
}
