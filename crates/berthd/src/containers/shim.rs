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
        p.push(PendingAttach { streams, tx });
    }
    rx
}

/// Waits for a container to be started (if it is only created) and attaches to it.
pub async fn attach(d: &Arc<Daemon>, c: &Arc<Container>, streams: AttachStreams) -> Result<UnixStream, Error> {
    let rx = {
        let rec = c.record();
        if matches!(rec.state.status, Status::Running | Status::Paused) {
            return d.shims.attach(&bundle_dir(d, &c.id), streams).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut p) = c.pending_attach.lock() {
            p.push(PendingAttach { streams, tx });
        }
        rx
    };
    rx.await.map_err(|_| Error::Conflict("container was removed before it started".into()))
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
