//! Where a container's files are (its directory, bundle, log, exit record) and how its record is written to and
//! read from the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_runtime::shim::ExitRecord;

use crate::containers::record::{Container, DOC_KIND, Record};
use crate::daemon::Daemon;
use crate::error::Error;
use crate::task::blocking;

/// Paths of a container.
pub fn container_dir(d: &Daemon, id: &str) -> PathBuf {
    d.config.data_root.join("containers").join(id)
}

pub fn bundle_dir(d: &Daemon, id: &str) -> PathBuf {
    d.config.exec_root.join("containers").join(id)
}

pub fn log_path(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join(format!("{id}-json.log"))
}

pub(super) fn exit_path(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join("exit.json")
}

/// Writes a new container's document: durably, but for an `--rm` container's (which a host crash would take anyway:
/// the daemon's start removes one that is not running), which saves `run --rm` an fsync.
pub(super) async fn persist_new(d: &Daemon, rec: &Record) -> Result<(), Error> {
    write_doc(d, rec, None, !rec.host_config.auto_remove.unwrap_or(false)).await
}

/// Writes a container's current record (the healthcheck persists a change of its status this way).
pub async fn save_record(d: &Daemon, c: &Container) {
    let rec = c.record();
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
}

/// Writes a container's changed state, unless it has been removed: a state change that races with `remove` (an exit
/// recorded while the container is being deleted) never writes it back. Run-state changes are not synced to disk
/// on their own (a power loss that could take them back ends the container anyway): that saves an fsync per start
/// and exit.
pub(super) async fn persist(d: &Daemon, c: &Container, rec: &Record) -> Result<(), Error> {
    write_doc(d, rec, Some(c.removed.clone()), false).await
}

pub(super) async fn write_doc(
    d: &Daemon,
    rec: &Record,
    removed: Option<Arc<AtomicBool>>,
    durable: bool,
) -> Result<(), Error> {
    let store = d.store.clone();
    let doc = serde_json::to_value(rec).map_err(|e| Error::Internal(e.to_string()))?;
    let (id, name) = (rec.id.clone(), rec.name.clone());
    blocking(move || {
        let gone = || removed.as_ref().is_some_and(|r| r.load(Ordering::SeqCst));
        if gone() {
            return Ok(());
        }
        let put = if durable { berth_store::Store::put_doc } else { berth_store::Store::put_doc_lazy };
        put(&store, DOC_KIND, &id, Some(&name), &doc).map_err(Error::from)?;
        // `remove` may have deleted the document between the check and the write.
        if gone() {
            store.delete_doc(DOC_KIND, &id).map_err(Error::from)?;
        }
        Ok(())
    })
    .await
}

pub(super) fn read_exit(d: &Daemon, id: &str) -> Option<ExitRecord> {
    let data = std::fs::read(exit_path(d, id)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Changes a container's list of networks (`network connect`/`disconnect`) and saves it.
pub async fn set_endpoints(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    f: impl FnOnce(&mut Vec<crate::networks::state::Endpoint>),
) -> Result<(), Error> {
    let rec = c.update(|r| f(&mut r.net.endpoints));
    write_doc(d, &rec, Some(c.removed.clone()), true).await
}
