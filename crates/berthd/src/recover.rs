//! Start-up recovery after a crash (`kill -9` of berthd at any point): collects what no record owns, only inside
//! this daemon's own roots and the `berth/<id>` cgroups of containers found there.
//!
//! The store repairs itself when it opens (unfinished layers and blobs, layers and blobs no image uses). Here:
//! - [`stray_shims`] (before the containers are loaded): a shim whose container's record does not say it runs (a
//!   crash between spawning the shim and recording the start, or a record that is gone) is killed with its
//!   container's cgroup, so the start can be run again and nothing runs untracked;
//! - [`orphans`] (after): container directories and bundles without a record (a crash during `create` or `rm`),
//!   their cgroups, volume directories without a record (a crash during `volume create`/`rm`), push scratch files
//!   and downloads no pull touched for a day, veths of running containers that their records do not list (a crash during `network connect`), and endpoints
//!   in running containers' records whose veth is gone (a crash during `network disconnect`: completed).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::containers::{Record, Status};
use crate::daemon::Daemon;

/// Kills the shims (and their containers) whose record does not say running; removes the bundles of containers that
/// have no record. Runs before the records are loaded, so that nothing started by a cut-short `start` survives.
pub fn stray_shims(d: &Daemon) {
    let docs = match d.store.list_docs(crate::containers::DOC_KIND) {
        Ok(docs) => docs,
        Err(e) => {
            tracing::warn!("recovery: cannot read the container records: {e}");
            return;
        }
    };
    let records: HashMap<String, Record> = docs
        .into_iter()
        .filter_map(|doc| serde_json::from_value::<Record>(doc).ok())
        .map(|r| (r.id.clone(), r))
        .collect();
    for (id, bundle) in container_entries(&d.config.exec_root.join("containers")) {
        let rec = records.get(&id);
        if rec.is_some_and(|r| matches!(r.state.status, Status::Running | Status::Paused | Status::Restarting))
            || (rec.is_none() && !unrecorded(d, &id))
        {
            continue;
        }
        let runtime = rec.map(|r| r.runtime.clone()).unwrap_or_else(|| d.config.runtime.clone());
        if d.shims.kill_shim(&bundle) {
            tracing::info!("recovery: killed the shim of {}, whose start was never recorded", &id[..12]);
        }
        release_runtime(d, &id, &bundle, &runtime);
        if rec.is_none() {
            remove_dir(&bundle);
        }
    }
}

/// Removes what no record owns (see the module's documentation). Runs once the records are loaded and reconciled.
pub async fn orphans(d: &Arc<Daemon>) {
    let containers = d.all_containers();
    // Endpoints of running containers whose veth is gone: a `network disconnect` cut short between removing the
    // interface and recording it. The disconnect is completed (its address, ports and DNS names released).
    for c in containers.iter().filter(|c| c.is_running()) {
        let gone: Vec<String> = c
            .record()
            .net
            .endpoints
            .iter()
            .filter(|e| !e.host_ifname.is_empty() && !Path::new("/sys/class/net").join(&e.host_ifname).exists())
            .map(|e| e.network_id.clone())
            .collect();
        for net in gone {
            tracing::info!("recovery: completing the disconnect of {} from network {net}", &c.id[..12]);
            if let Err(e) =
                crate::networks::disconnect(d, c, &net, true, |edit| crate::containers::set_endpoints(d, c, edit)).await
            {
                tracing::warn!("recovery: disconnect {} from {net}: {e}", &c.id[..12]);
            }
        }
    }
    let d2 = d.clone();
    let known: HashSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    let running: Vec<Record> = containers.iter().filter(|c| c.is_running()).map(|c| c.record()).collect();
    let _ = tokio::task::spawn_blocking(move || {
        let d = &d2;
        for root in [d.config.data_root.join("containers"), d.config.exec_root.join("containers")] {
            for (id, dir) in container_entries(&root) {
                if known.contains(&id) || !unrecorded(d, &id) {
                    continue;
                }
                tracing::info!("recovery: removing {} (no container record)", dir.display());
                release_runtime(d, &id, &d.config.exec_root.join("containers").join(&id), &d.config.runtime);
                remove_dir(&dir);
            }
        }
        orphan_volumes(d);
        downloads(&berth_registry::pull::downloads_dir(&d.store));
        let stale: Vec<String> = running.iter().flat_map(|r| d.networks.unrecorded_interfaces(r)).collect();
        if !stale.is_empty() {
            tracing::info!("recovery: removing interfaces no record lists: {}", stale.join(" "));
            if let Err(e) = berth_network::netns::remove_interfaces(&stale) {
                tracing::warn!("recovery: {e}");
            }
        }
    })
    .await;
}

/// Whether the store has no document at all for container `id`: one it has but could not read is left alone.
fn unrecorded(d: &Daemon, id: &str) -> bool {
    matches!(d.store.get_doc(crate::containers::DOC_KIND, id), Ok(None))
}

/// The `<id>` entries (64 hex digits, nothing else) of a `containers` directory.
fn container_entries(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            berth_store::digest::is_sha256_hex(&name).then(|| (name, e.path()))
        })
        .collect()
}

/// Ends what is left of a container (its cgroup's processes, the runtime's resources, the cgroup `berth/<id>`).
fn release_runtime(d: &Daemon, id: &str, bundle: &Path, runtime: &str) {
    d.shims.end_leftovers(id, runtime, &d.config.exec_root.join("runtime"), bundle);
}

/// Volume directories without a record: a `volume create` or `volume rm` cut short. One with anything mounted below
/// it is left alone (never follow a mount into another file system).
fn orphan_volumes(d: &Daemon) {
    let Ok(entries) = std::fs::read_dir(d.config.data_root.join("volumes")) else { return };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // A volume whose record is there (readable or not) is not an orphan.
        if crate::volumes::validate_name(&name).is_err()
            || !matches!(d.store.get_doc(crate::volumes::DOC_KIND, &name), Ok(None))
        {
            continue;
        }
        let dir = e.path();
        let prefix = format!("{}/", dir.display());
        if info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| m.starts_with(&prefix)) {
            tracing::warn!("recovery: volume directory {} has no record but a mount inside: left alone", dir.display());
            continue;
        }
        tracing::info!("recovery: removing volume directory {} (no volume record)", dir.display());
        remove_dir(&dir);
    }
}

/// How long a download that no pull finished is kept for a later pull to resume.
const ABANDONED_DOWNLOAD: Duration = Duration::from_secs(24 * 3600);

/// In `downloads/`: a push's compressed layers (`push-*`, scratch files only a push in progress uses) and downloads
/// untouched for [`ABANDONED_DOWNLOAD`] (younger ones stay: the next pull of the blob resumes them).
fn downloads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let scratch = e.file_name().to_string_lossy().starts_with("push-");
        let age = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| now.duration_since(t).ok());
        if scratch || age.is_some_and(|a| a > ABANDONED_DOWNLOAD) {
            tracing::info!("recovery: removing {}", e.path().display());
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!("recovery: remove {}: {err}", e.path().display());
            }
        }
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("recovery: remove {}: {e}", dir.display());
    }
}
