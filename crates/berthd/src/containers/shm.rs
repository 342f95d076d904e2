//! The `/dev/shm` containers share with their IPC namespace, as Docker's shareable IPC and Podman's pods: a pod's
//! holder (and an `--ipc shareable` container) gets a tmpfs berthd mounts on the host at `<container dir>/shm` while
//! it runs, bound at its `/dev/shm` and at that of each container joining its IPC namespace (`IpcMode
//! container:<id>`, a pod's members), so that they see the same files. Every other container has its own tmpfs.

use std::path::PathBuf;

use crate::daemon::Daemon;
use crate::error::Error;

use super::*;

fn dir(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join("shm")
}

fn shareable(rec: &Record) -> bool {
    rec.holder_of().is_some() || rec.host_config.ipc_mode.as_deref() == Some("shareable")
}

/// The host directory to bind at the starting container's `/dev/shm`: its own shareable one (mounted here), the one
/// of the container whose IPC namespace it joins when that one's is shareable, else none (a tmpfs of its own).
pub(super) async fn for_start(d: &Daemon, rec: &Record) -> Result<Option<PathBuf>, Error> {
    if shareable(rec) {
        let (shims, path) = (d.shims.clone(), dir(d, &rec.id));
        let size = crate::spec::shm_size(&rec.host_config);
        let p = path.clone();
        crate::task::blocking(move || shims.mount_shm(&p, size)).await?;
        return Ok(Some(path));
    }
    let Some(target) = rec.host_config.ipc_mode.as_deref().and_then(|m| m.strip_prefix("container:")) else {
        return Ok(None);
    };
    let mut other = d.container(target)?;
    // A pod's member is no donor itself: `--ipc container:<member>` gets its pod holder's, whose namespace it is.
    if let Some(holder) = other.record().host_config.ipc_mode.as_deref().and_then(|m| m.strip_prefix("container:")) {
        other = d.container(holder)?;
    }
    let path = dir(d, &other.id);
    Ok((shareable(&other.record()) && path.is_dir()).then_some(path))
}

/// Releases a container's shareable `/dev/shm` (its end, a failed start, its removal). Safe to run again.
pub(super) async fn release(d: &Daemon, id: &str) {
    let (shims, path) = (d.shims.clone(), dir(d, id));
    if !path.exists() {
        return;
    }
    let _ = crate::task::blocking(move || {
        shims.unmount_shm(&path);
        Ok::<(), Error>(())
    })
    .await;
}
