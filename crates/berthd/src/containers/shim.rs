//! Attaching to a container's shim, its answers, and what is done for a lost shim (the shim itself is reached
//! through `shim_client`).

use std::sync::Arc;

use crate::error::Error;
use berth_runtime::shim::Response;
use tokio::net::UnixStream;

use crate::daemon::Daemon;

use super::*;

pub(super) fn shim_ok(r: Response) -> Result<(), Error> {
    match r {
        Response::Error { message } => Err(Error::Internal(message)),
        _ => Ok(()),
    }
}

/// Attaches to a created container once it starts (registered now, so that a start right after finds it).
pub fn attach_at_start(c: &Container, streams: AttachStreams) -> tokio::sync::oneshot::Receiver<UnixStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Ok(mut p) = c.pending_attach.lock() {
        // Clients that went away before a start are forgotten here rather than attached at it.
        p.retain(|a| !a.tx.is_closed());
        p.push(PendingAttach { streams, tx });
    }
    rx
}

/// Where an attach connects: to the running container, or to its next start (created or stopped: Docker lets a
/// client attach before `start`, which `docker start -a` and docker-compose's `up` do, and loses nothing between).
pub enum AttachTarget {
    Now,
    AtStart(tokio::sync::oneshot::Receiver<UnixStream>),
}

/// Decides where an attach connects, registering it for the next start when the container is not running. Under
/// the lifecycle lock, so that a start in progress (past the point where it takes the waiting attaches) is over
/// first and the container found running.
pub async fn attach_target(c: &Container, streams: AttachStreams) -> AttachTarget {
    if c.is_running() {
        return AttachTarget::Now;
    }
    let _guard = c.lifecycle.lock().await;
    if c.is_running() { AttachTarget::Now } else { AttachTarget::AtStart(attach_at_start(c, streams)) }
}

/// Connects an attach to the container's shim: at once, or once the container starts. `None` for an attach that
/// waited for a start that did not come (the container was removed, or its start failed).
pub async fn attach(
    d: &Arc<Daemon>,
    c: &Container,
    target: AttachTarget,
    streams: AttachStreams,
) -> Result<Option<UnixStream>, Error> {
    match target {
        AttachTarget::Now => d.shims.attach(&bundle_dir(d, &c.id), streams).await.map(Some),
        AttachTarget::AtStart(rx) => Ok(rx.await.ok()),
    }
}

/// Ends what is left of a container whose shim is gone without recording an exit, so that neither an untracked copy
/// keeps running nor a restart starts a second one beside it.
pub(super) async fn kill_orphaned(d: &Daemon, c: &Container) {
    let (id, runtime, state_root, bundle) =
        (c.id.clone(), c.record().runtime, d.config.exec_root.join("runtime"), bundle_dir(d, &c.id));
    let shims = d.shims.clone();
    let _ = tokio::task::spawn_blocking(move || {
        shims.end_leftovers(&id, &runtime, &state_root, &bundle);
        tracing::info!("container {}: its shim died; its processes were killed", &id[..12]);
    })
    .await;
}
