//! Removing a container: stop it if forced, release its files and runtime state, forget it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::Error;
use berth_runtime::shim::Request;

use crate::daemon::Daemon;
use crate::task::blocking;

use super::*;

/// Removes a container (`force`: kill it first if running).
/// `volumes`: its anonymous volumes go too (`rm -v`, `--rm`), before a `removed` waiter is let go.
pub async fn remove(d: &Arc<Daemon>, c: &Arc<Container>, force: bool, volumes: bool) -> Result<(), Error> {
    c.record().refuse_holder("removed")?;
    remove_any(d, c, force, volumes).await
}

/// [`remove`], of a pod's namespace holder too (the pod manager's removal of its pod).
pub async fn remove_any(d: &Arc<Daemon>, c: &Arc<Container>, force: bool, volumes: bool) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    if c.status() == Status::Restarting {
        if !force {
            return Err(Error::Conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        super::restart::cancel(d, c, true).await;
    }
    if c.is_running() {
        if !force {
            let what = if c.status() == Status::Paused { "paused" } else { "running" };
            return Err(Error::Conflict(format!(
                "You cannot remove a {what} container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        c.stopping.store(true, Ordering::SeqCst);
        let bundle = bundle_dir(d, &c.id);
        let _ = d.shims.request(&bundle, &Request::Resume).await;
        let _ = d.shims.request(&bundle, &Request::Kill { signal: libc::SIGKILL }).await;
        if !wait_until_not_running(c, Some(Duration::from_secs(30))).await {
            return Err(Error::Internal(format!("could not kill running container {}, cannot remove", c.id)));
        }
    }
    if c.removed.load(Ordering::SeqCst) {
        // An earlier call removed it (its caller held this object before it left the table).
        return Ok(());
    }
    // The exit's clean-up (networking, volumes) finishes before the removal takes the rest.
    drop(c.cleanup.lock().await);
    let mut phases = crate::phases::Phases::begin("remove", &c.id);
    let rec = c.update(|r| r.state.status = Status::Removing);
    // On disk it is `Dead` from here on: should berthd stop half-way (a crash, a full disk), the container comes back
    // as one that cannot start and that `rm` finishes removing, never as a stopped container with half a writable
    // layer. Best effort: on a full disk this write may fail, and the removal goes on to free the space.
    let mut dead = rec;
    dead.state.status = Status::Dead;
    if let Err(e) = persist(d, c, &dead).await {
        tracing::debug!("mark {} dead on disk: {e}", &c.id[..12]);
    }
    // The writable layer goes first: on a full disk it is what frees the space the store needs to delete the record.
    // A failure from here on leaves the container listed as `Dead` (it cannot start again) and `rm` can be retried.
    crate::phases::mark(&mut phases, "mark-dead");
    if let Err(e) = release_files(d, c).await {
        return Err(removal_failed(c, e));
    }
    crate::phases::mark(&mut phases, "files");
    c.removed.store(true, Ordering::SeqCst);
    let store = d.store.clone();
    let id = c.id.clone();
    if let Err(e) = blocking(move || store.delete_doc_lazy(DOC_KIND, &id).map_err(Error::from)).await {
        c.removed.store(false, Ordering::SeqCst);
        return Err(removal_failed(c, e));
    }
    berth_store::fault::point("rm.after-record");
    if let Ok(mut m) = d.containers.write() {
        m.remove(&c.id);
    }
    crate::networks::release(d, &c.id).await;
    if volumes {
        crate::volumes::remove_anonymous(d, &c.record().mounts).await;
    }
    if let Ok(mut p) = c.pending_attach.lock() {
        p.clear();
    }
    c.publish(&d.events, "destroy", &[]);
    c.changed.send_replace(u64::MAX);
    crate::phases::mark(&mut phases, "record");
    crate::phases::done(phases);
    Ok(())
}

/// Releases what a stopped container holds outside the store: the runtime's state, its cgroup, its directories (the
/// writable layer, logs, the bundle). Safe to run again after a failure.
pub(super) async fn release_files(d: &Daemon, c: &Container) -> Result<(), Error> {
    let dirs = [container_dir(d, &c.id), bundle_dir(d, &c.id)];
    let (id, runtime, state_root) = (c.id.clone(), c.record().runtime, d.config.exec_root.join("runtime"));
    let shims = d.shims.clone();
    blocking(move || {
        // The shim releases the runtime's resources when its container ends; this catches what a shim that died
        // (or was killed) could not.
        shims.end_leftovers(&id, &runtime, &state_root, &dirs[1]);
        berth_store::fault::point("rm.after-cgroup");
        // A shareable `/dev/shm` a crash left mounted.
        shims.unmount_shm(&dirs[0].join("shm"));
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Internal(format!("remove {}: {e}", dir.display())));
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await
}

/// Records a removal that failed half-way: the container is `Dead` with the reason as its error, and waiters for its
/// removal (`run --rm`) are told instead of waiting forever.
pub(super) fn removal_failed(c: &Container, e: Error) -> Error {
    let e = Error::Internal(format!("unable to remove container {}: {e}", c.id));
    tracing::warn!("{e}");
    c.update(|r| {
        r.state.status = Status::Dead;
        r.state.error = e.to_string();
    });
    e
}

/// `docker rm --link /web/db` (`DELETE /containers/web/db?link=1`): forgets the legacy link `db` of container `web`
/// (its `HostConfig.Links`; a running container keeps what it was started with until its next start, as with
/// Docker, whose environment cannot change either). `name` without a parent is Docker's 409.
pub async fn remove_link(d: &Arc<Daemon>, name: &str) -> Result<(), Error> {
    let name = name.trim_start_matches('/');
    let not_found = || Error::NotFound(format!("No such container: {name}"));
    let Some((parent, alias)) = name.split_once('/') else {
        return Err(Error::Conflict("Conflict, cannot remove the default link name of the container".into()));
    };
    let c = d.container(parent).map_err(|_| not_found())?;
    let _guard = c.lifecycle.lock().await;
    let rec = c.record();
    let links = rec.host_config.links.clone().unwrap_or_default();
    let kept = crate::networks::links::without_link(&links, &format!("{}/{alias}", rec.name)).ok_or_else(not_found)?;
    let rec = c.update(|r| r.host_config.links = Some(kept));
    write_doc(d, &rec, Some(c.removed.clone()), true).await
}
