//! The conversation with a container's shim (requests, attach, spawning one) and what is done for a lost shim.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use berth_runtime::shim::{self, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::daemon::Daemon;

use super::*;

/// Sends one request to a container's shim and reads its one-line answer.
pub async fn shim_request(bundle: &Path, req: &Request) -> Result<Response, Error> {
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
}

pub(super) fn shim_ok(r: Response) -> Result<(), Error> {
    match r {
        Response::Error { message } => Err(Error::Internal(message)),
        _ => Ok(()),
    }
}

/// Opens an attach stream to a running container's shim.
pub async fn shim_attach(bundle: &Path, streams: AttachStreams) -> Result<UnixStream, Error> {
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
}

/// Attaches to a created container once it starts (registered now, so that a start right after finds it).
pub fn attach_at_start(c: &Container, streams: AttachStreams) -> tokio::sync::oneshot::Receiver<UnixStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Ok(mut p) = c.pending_attach.lock() {
        p.push(PendingAttach { streams, tx });
    }
    rx
}

/// Waits for a container to be started (if it is only created) and attaches to it.
pub async fn attach(d: &Arc<Daemon>, c: &Arc<Container>, streams: AttachStreams) -> Result<UnixStream, Error> {
    let rx = {
        let rec = c.record();
        if matches!(rec.state.status, Status::Running | Status::Paused) {
            return shim_attach(&bundle_dir(d, &c.id), streams).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut p) = c.pending_attach.lock() {
            p.push(PendingAttach { streams, tx });
        }
        rx
    };
    rx.await.map_err(|_| Error::Conflict("container was removed before it started".into()))
}

/// Spawns the shim for a container whose bundle is written, and returns the init PID.
pub(super) async fn spawn_shim(d: &Daemon, bundle: &Path) -> Result<i32, Error> {
    let mut child = d
        .shim_command()
        .arg("start")
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Internal(format!("run {}: {e}", d.config.shim.display())))?;
    let stdout = child.stdout.take().ok_or_else(|| Error::Internal("shim stdout".into()))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
    let _ = child.wait().await;
    match serde_json::from_str::<Response>(&line) {
        Ok(Response::Created { pid }) => Ok(pid),
        Ok(Response::Error { message }) => Err(start_error(message)),
        _ => Err(Error::Internal(format!("berth-shim failed to start (it said {:?})", line.trim()))),
    }
}

/// Docker's wording and class for a failed start: the user's fault (400) when the program cannot be run.
pub(super) fn start_error(message: String) -> Error {
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
pub(crate) fn shim_pid(bundle: &Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let pid = std::fs::read_to_string(bundle.join(shim::SHIM_PID_FILE)).ok()?.trim().parse::<i32>().ok()?;
    if pid <= 1 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline.split(|b| *b == 0).any(|arg| arg == bundle.as_os_str().as_bytes()).then_some(pid)
}

/// Ends what is left of a container whose shim is gone without recording an exit, so that neither an untracked copy
/// keeps running nor a restart starts a second one beside it.
pub(super) async fn kill_orphaned(d: &Daemon, c: &Container) {
    let (id, runtime, state_root, bundle) =
        (c.id.clone(), c.record().runtime, d.config.exec_root.join("runtime"), bundle_dir(d, &c.id));
    let _ = tokio::task::spawn_blocking(move || {
        end_leftovers(&id, &runtime, &state_root, &bundle);
        tracing::info!("container {}: its shim died; its processes were killed", &id[..12]);
    })
    .await;
}

/// Ends whatever of a container runs or is held outside its shim (one that died, a start or removal cut short):
/// every process in its cgroup (`berth/<id>`, whatever the runtime; thawed if frozen) is killed and waited for, up to
/// ten seconds; then the runtime's resources are released (an external runtime's state) and the cgroup removed.
/// Safe to run again, and for a container that has none of them. Blocking.
pub(crate) fn end_leftovers(id: &str, runtime: &str, state_root: &Path, bundle: &Path) {
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
