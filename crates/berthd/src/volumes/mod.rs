//! Volumes, with Docker's `local` driver: a directory `<data-root>/volumes/<name>/_data`, or — with the options
//! `type`, `device` and `o` — a file system mounted there while a running container uses it (a tmpfs, a bind of a
//! host directory, an NFS export...). Each volume is a document in the store; which containers use a volume is read
//! from the containers' records, so it cannot drift.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub mod state;
pub use state::*;

use crate::error::Error;
use nix::mount::{MntFlags, MsFlags};

use crate::daemon::Daemon;
use crate::filters::Filters;
use crate::mounts::point::{Kind, MountPoint};
use crate::task::blocking;

/// Docker's restricted name pattern for local volumes: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    // The name is a directory of the data root: longer than a file name may be, it would fail with ENAMETOOLONG.
    if name.len() > 255 {
        return Err(Error::InvalidArgument(format!(
            "create {name}: volume name is too long ({} characters, at most 255)",
            name.len()
        )));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    if first_ok && !rest.is_empty() && rest.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// Checks the driver name: only `local` exists (Docker's answer for a plugin it cannot find).
pub fn validate_driver(name: &str, driver: &str) -> Result<(), Error> {
    if driver.is_empty() || driver == LOCAL {
        return Ok(());
    }
    Err(Error::NotFound(format!("create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found")))
}

/// The local driver's options, checked as Docker checks them.
fn validate_options(opts: &HashMap<String, String>) -> Result<(), Error> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(Error::InvalidArgument(format!("invalid option: {k:?}")));
        }
    }
    if opts.contains_key("size") {
        return Err(Error::InvalidArgument("quota size requested but no quota support".into()));
    }
    for (opt, required) in [("device", &["type"][..]), ("type", &["device"]), ("o", &["device", "type"])] {
        if opts.contains_key(opt) {
            for r in required {
                if !opts.contains_key(*r) {
                    return Err(Error::InvalidArgument(format!("missing required option: {r:?}")));
                }
            }
        }
    }
    Ok(())
}

fn no_such_volume(name: &str) -> Error {
    Error::NotFound(format!("get {name}: no such volume"))
}

/// Checks a volume creation without doing it.
pub fn validate(o: &CreateOptions) -> Result<(), Error> {
    validate_driver(&o.name, &o.driver)?;
    if !o.name.is_empty() {
        validate_name(&o.name)?;
    }
    validate_options(&o.options)
}

/// Creates a volume (or returns the existing one of that name, as Docker does). The caller holds `d.volumes.lock`.
pub async fn create_locked(d: &Arc<Daemon>, mut o: CreateOptions) -> Result<Volume, Error> {
    validate(&o)?;
    if o.name.is_empty() {
        o.name = crate::names::new_id()?;
    }
    if let Some(v) = find(d, &o.name).await? {
        return Ok(v);
    }
    let vol = Volume {
        name: o.name.clone(),
        driver: LOCAL.into(),
        created_at: created_now(),
        labels: o.labels,
        options: (!o.options.is_empty()).then_some(o.options),
    };
    let data = d.volumes.mountpoint(&vol.name);
    let doc = serde_json::to_value(&vol).map_err(|e| Error::Internal(e.to_string()))?;
    let store = d.store.clone();
    let name = vol.name.clone();
    let remap = d.config.userns_remap;
    blocking(move || {
        std::fs::create_dir_all(&data).map_err(|e| Error::Internal(format!("create {}: {e}", data.display())))?;
        if let Some(m) = remap {
            // Owned by the containers' root, as with dockerd's `--userns-remap`.
            std::os::unix::fs::chown(&data, Some(m.uid), Some(m.gid))
                .map_err(|e| Error::Internal(format!("chown {}: {e}", data.display())))?;
        }
        berth_store::fault::point("volume.create-after-dir");
        store.put_doc(DOC_KIND, &name, Some(&name), &doc).map_err(Error::from)
    })
    .await?;
    d.events.publish("volume", "create", &vol.name, crate::events::attrs(&[("driver", &vol.driver)]));
    Ok(vol)
}

/// `POST /volumes/create`.
pub async fn create(d: &Arc<Daemon>, o: CreateOptions) -> Result<Volume, Error> {
    let _g = d.volumes.lock.lock().await;
    create_locked(d, o).await
}

/// Docker's `CreatedAt`: RFC 3339 to the second.
fn created_now() -> String {
    let now = berth_api::time::now();
    match now.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => now,
    }
}

async fn find(d: &Daemon, name: &str) -> Result<Option<Volume>, Error> {
    let store = d.store.clone();
    let name = name.to_string();
    let doc = blocking(move || store.get_doc(DOC_KIND, &name).map_err(Error::from)).await?;
    doc.map(|v| serde_json::from_value(v).map_err(|e| Error::Internal(format!("invalid volume record: {e}"))))
        .transpose()
}

/// A volume by name.
pub async fn get(d: &Daemon, name: &str) -> Result<Volume, Error> {
    find(d, name).await?.ok_or_else(|| no_such_volume(name))
}

/// Every volume.
pub async fn list(d: &Daemon) -> Result<Vec<Volume>, Error> {
    let store = d.store.clone();
    let docs = blocking(move || store.list_docs(DOC_KIND).map_err(Error::from)).await?;
    Ok(docs.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect())
}

/// IDs of the containers (running or not) whose mounts use the volume.
pub fn users(d: &Daemon, name: &str) -> Vec<String> {
    d.all_containers()
        .iter()
        .filter(|c| c.record().mounts.iter().any(|m| m.typ == Kind::Volume && m.name == name))
        .map(|c| c.id.clone())
        .collect()
}

/// For `GET /system/df`: each volume with the bytes it holds and the number of containers using it.
pub async fn usage(d: &Arc<Daemon>) -> Result<Vec<(Volume, u64, usize)>, Error> {
    let vols = list(d).await?;
    let d2 = d.clone();
    blocking(move || {
        Ok(vols
            .iter()
            .map(|v| {
                let size = crate::disk::dir_size(&d2.volumes.mountpoint(&v.name));
                (v.clone(), size, users(&d2, &v.name).len())
            })
            .collect())
    })
    .await
}

/// Removes a volume that no container uses. With `force`, a volume that does not exist is not an error.
pub async fn remove(d: &Arc<Daemon>, name: &str, force: bool) -> Result<(), Error> {
    let _g = d.volumes.lock.lock().await;
    remove_locked(d, name, force).await.map(drop)
}

/// Removes a volume; returns the bytes it held. The caller holds `d.volumes.lock`.
async fn remove_locked(d: &Arc<Daemon>, name: &str, force: bool) -> Result<u64, Error> {
    let vol = match find(d, name).await? {
        Some(v) => v,
        None if force => return Ok(0),
        None => return Err(no_such_volume(name)),
    };
    let refs = users(d, name);
    if !refs.is_empty() {
        return Err(Error::Conflict(format!("remove {name}: volume is in use - [{}]", refs.join(", "))));
    }
    let dir = d.volumes.root.join(name);
    let data = d.volumes.mountpoint(name);
    let store = d.store.clone();
    let name = name.to_string();
    let mounted = vol.needs_mount();
    let size = blocking(move || {
        if mounted && is_mounted(&data) {
            unmount(&data)?;
        }
        let size = if mounted { 0 } else { crate::disk::dir_size(&data) };
        store.delete_doc(DOC_KIND, &name).map_err(Error::from)?;
        berth_store::fault::point("volume.rm-after-record");
        // Never follow a mount that is still there into the host's files: only plain directories are deleted.
        if is_mounted(&data) {
            return Err(Error::Internal(format!("{} is still mounted", data.display())));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| Error::Internal(format!("remove {}: {e}", dir.display())))?;
        Ok(size)
    })
    .await?;
    d.events.publish("volume", "destroy", &vol.name, crate::events::attrs(&[("driver", &vol.driver)]));
    Ok(size)
}

/// Publishes `mount` (a container starts) or `unmount` (it ended) for each of its volumes, with Docker's attributes.
pub fn publish_mounts(d: &Daemon, container: &str, mounts: &[MountPoint], action: &str) {
    for m in mounts.iter().filter(|m| m.typ == Kind::Volume) {
        let mut a = crate::events::attrs(&[("container", container), ("driver", &m.driver)]);
        if action == "mount" {
            a.insert("destination".into(), m.destination.clone());
            a.insert("propagation".into(), m.propagation.clone());
            a.insert("read/write".into(), m.rw.to_string());
        }
        d.events.publish("volume", action, &m.name, a);
    }
}

/// Removes the anonymous volumes among `mounts` (`rm -v`, `run --rm`); volumes still used elsewhere stay.
pub async fn remove_anonymous(d: &Arc<Daemon>, mounts: &[MountPoint]) {
    let _g = d.volumes.lock.lock().await;
    remove_anonymous_locked(d, mounts).await
}

/// [`remove_anonymous`] for a caller that holds `d.volumes.lock`.
pub async fn remove_anonymous_locked(d: &Arc<Daemon>, mounts: &[MountPoint]) {
    for m in mounts.iter().filter(|m| m.typ == Kind::Volume && !m.named) {
        match remove_locked(d, &m.name, true).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => tracing::warn!("remove volume {}: {e}", m.name),
        }
    }
}

/// The filters `GET /volumes` accepts (Docker's).
pub const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];
/// The filters `POST /volumes/prune` accepts (Docker's).
pub const PRUNE_FILTERS: &[&str] = &["all", "label", "label!"];

/// `GET /volumes`: the volumes by name, filtered (`name`: a part of the name, `driver`, `label`, `dangling`: no
/// container uses it).
pub async fn list_filtered(d: &Daemon, f: &Filters) -> Result<Vec<Volume>, Error> {
    f.accept(LIST_FILTERS)?;
    let dangling = f.bool("dangling")?;
    let mut all = list(d).await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.retain(|v| {
        f.any("name", |n| v.name.contains(n))
            && f.any("driver", |x| v.driver == x)
            && f.match_kv("label", v.labels.as_ref().unwrap_or(&HashMap::new()))
            && dangling.is_none_or(|want| users(d, &v.name).is_empty() == want)
    });
    Ok(all)
}

/// `POST /volumes/prune`: removes unused volumes — anonymous ones only unless `all` — that match the label filters.
/// Returns the names removed and the bytes they held.
pub async fn prune(d: &Arc<Daemon>, f: &Filters) -> Result<(Vec<String>, u64), Error> {
    f.accept(PRUNE_FILTERS)?;
    let all = f.bool("all")?.unwrap_or(false);
    let _g = d.volumes.lock.lock().await;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for v in list(d).await? {
        if !all && !v.is_anonymous() {
            continue;
        }
        if !f.match_labels(v.labels.as_ref().unwrap_or(&HashMap::new())) {
            continue;
        }
        if !users(d, &v.name).is_empty() {
            continue;
        }
        match remove_locked(d, &v.name, true).await {
            Ok(n) => {
                reclaimed += n;
                deleted.push(v.name);
            }
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    d.events.publish_prune("volume", reclaimed);
    Ok((deleted, reclaimed))
}

// ---------------------------------------------------------------------------------------------------------------
// Mounting the local driver's file systems

/// Whether `path` is a mount point (in this process's mount namespace).
pub fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = path.display().to_string();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| berth_network::netns::unescape_mountinfo(m) == want)
}

fn unmount(path: &Path) -> Result<(), Error> {
    match nix::mount::umount2(path, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => nix::mount::umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| Error::Internal(format!("unmount {}: {e}", path.display()))),
        Err(e) => Err(Error::Internal(format!("unmount {}: {e}", path.display()))),
    }
}

/// Mounts a volume's file system (its `type`, `device` and `o` options, as Docker's local driver) at `target`.
pub fn mount_options(options: &HashMap<String, String>, target: &Path) -> Result<(), Error> {
    let typ = options.get("type").map(String::as_str).unwrap_or("");
    let device = options.get("device").map(String::as_str).unwrap_or("");
    if device.is_empty() {
        return Err(Error::InvalidArgument("missing device in volume options".into()));
    }
    let o: Vec<String> = options.get("o").map(|o| o.split(',').map(str::to_string).collect()).unwrap_or_default();
    let parsed = berth_runtime::mounts::parse_options(&o);
    let fstype = (!typ.is_empty() && typ != "none").then_some(typ);
    let data = (!parsed.data.is_empty()).then_some(parsed.data.as_str());
    nix::mount::mount(Some(device), target, fstype, parsed.flags, data).map_err(|e| {
        Error::Internal(format!(
            "error while mounting volume '{}': failed to mount local volume: {e}",
            target.display()
        ))
    })?;
    if parsed.flags.contains(MsFlags::MS_BIND) && parsed.flags.contains(MsFlags::MS_RDONLY) {
        // A read-only bind needs a second pass; if that fails the volume must not stay mounted writable.
        let ro = nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        );
        if let Err(e) = ro {
            let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
            return Err(Error::Internal(format!("make volume '{}' read-only: {e}", target.display())));
        }
    }
    Ok(())
}

/// The volumes of `mounts` whose file system the daemon mounts, with their options.
async fn mounted_volumes(d: &Daemon, mounts: &[MountPoint]) -> Vec<Volume> {
    let mut out = Vec::new();
    for m in mounts.iter().filter(|m| m.typ == Kind::Volume) {
        if let Ok(Some(v)) = find(d, &m.name).await
            && v.needs_mount()
            && !out.iter().any(|o: &Volume| o.name == v.name)
        {
            out.push(v);
        }
    }
    out
}

/// A container is starting: mounts the file systems of its volumes that are not mounted yet (Docker's local driver
/// mounts on first use and counts users).
pub async fn acquire(d: &Daemon, mounts: &[MountPoint]) -> Result<(), Error> {
    let _mounting = d.volumes.mounting.lock().await;
    let vols = mounted_volumes(d, mounts).await;
    let mut done: Vec<String> = Vec::new();
    for v in vols {
        let data = d.volumes.mountpoint(&v.name);
        let first = {
            let mut a = d.volumes.active.lock().map_err(|_| Error::Internal("volume table poisoned".into()))?;
            let n = a.entry(v.name.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        let mounted = if first && !is_mounted(&data) {
            let opts = v.options.clone().unwrap_or_default();
            let target = data.clone();
            blocking(move || mount_options(&opts, &target)).await
        } else {
            Ok(())
        };
        if let Err(e) = mounted {
            decrement(d, &v.name);
            release_names(d, &done);
            return Err(e);
        }
        done.push(v.name);
    }
    Ok(())
}

fn decrement(d: &Daemon, name: &str) -> bool {
    let Ok(mut a) = d.volumes.active.lock() else { return false };
    let n = a.entry(name.to_string()).or_insert(0);
    *n = n.saturating_sub(1);
    let last = *n == 0;
    if last {
        a.remove(name);
    }
    last
}

fn release_names(d: &Daemon, names: &[String]) {
    for name in names {
        if decrement(d, name) {
            let data = d.volumes.mountpoint(name);
            if is_mounted(&data)
                && let Err(e) = unmount(&data)
            {
                tracing::warn!("volume {name}: {e}");
            }
        }
    }
}

/// A container has ended (or failed to start): unmounts the file systems of its volumes that no running container
/// uses any more. Before start-up reconciliation this only counts.
pub async fn release(d: &Daemon, mounts: &[MountPoint]) {
    if !d.volumes.ready.load(Ordering::SeqCst) {
        return;
    }
    let _mounting = d.volumes.mounting.lock().await;
    let names: Vec<String> = mounted_volumes(d, mounts).await.into_iter().map(|v| v.name).collect();
    release_names(d, &names);
}

/// Uninstalling (`berthd --remove-networking`, no daemon running): unmounts what berthd mounted on the host under
/// `<data-root>/volumes` — the local driver's file systems of the volumes in the store, then the bind of the
/// directory onto itself that makes it a shared mount point (see `reconcile`) — so the data root can be removed.
pub fn remove_host_mounts(store: &berth_store::Store, data_root: &Path) -> anyhow::Result<()> {
    let volumes = Volumes::new(data_root);
    for doc in store.list_docs(DOC_KIND)? {
        let Ok(v) = serde_json::from_value::<Volume>(doc) else { continue };
        let data = volumes.mountpoint(&v.name);
        if v.needs_mount() && is_mounted(&data) {
            unmount(&data)?;
        }
    }
    berth_network::netns::release_shared_mount_point(&volumes.root)?;
    Ok(())
}

/// Start-up: counts the running containers of every volume with a mount, and unmounts those nobody uses (a daemon
/// killed with `kill -9` may have left them mounted).
pub async fn reconcile(d: &Arc<Daemon>, survivors: &[crate::containers::record::Record]) -> Result<(), Error> {
    // Volumes' file systems are unmounted from shims' copies of the mount table too (see `shared_mount_point`).
    let root = d.volumes.root.clone();
    blocking(move || {
        berth_network::netns::shared_mount_point(&root).map_err(|e| Error::Internal(format!("volumes: {e}")))
    })
    .await?;
    let _mounting = d.volumes.mounting.lock().await;
    // Each running container counts once per volume, as `acquire` counts it.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for rec in survivors {
        let mut names: Vec<String> =
            rec.mounts.iter().filter(|m| m.typ == Kind::Volume).map(|m| m.name.clone()).collect();
        names.sort();
        names.dedup();
        for n in names {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    let vols = list(d).await?;
    let mut active = HashMap::new();
    for v in vols.iter().filter(|v| v.needs_mount()) {
        let data = d.volumes.mountpoint(&v.name);
        match counts.get(&v.name) {
            Some(n) => {
                active.insert(v.name.clone(), *n);
            }
            None if is_mounted(&data) => {
                tracing::info!("unmounting volume {}: no running container uses it", v.name);
                if let Err(e) = unmount(&data) {
                    tracing::warn!("volume {}: {e}", v.name);
                }
            }
            None => {}
        }
    }
    if let Ok(mut a) = d.volumes.active.lock() {
        *a = active;
    }
    d.volumes.ready.store(true, Ordering::SeqCst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options() {
        assert!(validate_name("data").is_ok());
        assert!(validate_name("a.b-c_1").is_ok());
        assert!(validate_name("a").is_err(), "Docker needs two characters at least");
        let e = validate_name("./x").expect_err("relative path");
        assert!(e.to_string().contains("includes invalid characters for a local volume name"), "{e}");
        assert!(validate_name("-x").is_err() && validate_name("a/b").is_err());
        assert_eq!(berth_api::Error::from(validate_driver("v", "nope").expect_err("driver")).status(), 404);
        let opts = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(validate_options(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")])).is_ok());
        assert!(validate_options(&opts(&[("type", "tmpfs")])).is_err());
        assert!(validate_options(&opts(&[("bogus", "1")])).is_err());
        assert_eq!(berth_network::netns::unescape_mountinfo("/a\\040b"), "/a b");
    }
}
