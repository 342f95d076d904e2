//! A container's mounts: `-v` (`HostConfig.Binds`), `--mount` (`HostConfig.Mounts`), `--volumes-from`, and the
//! anonymous volumes of `Config.Volumes` (the image's `VOLUME`s and `-v /path`), parsed and checked the way moby does
//! it, with its messages. [`plan`] only checks (nothing is created for bad input); [`realize`] creates the volumes and
//! copies the image's content into new empty ones; [`spec_mounts`] turns them into OCI bind mounts at start.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use berth_api::models::{ContainerConfig, HostConfig, Mount, MountBindOptionsPropagationEnum, MountType};
use serde_json::{Value, json};

use crate::daemon::Daemon;
use crate::task::blocking;
use crate::volumes::{self, CreateOptions};

pub mod point;
pub use point::*;

fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

/// Lexical `path.Clean` for absolute container paths.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn mount_config_error(typ: &str, e: &str) -> Error {
    bad(format!("invalid mount config for type {typ:?}: {e}"))
}

/// A mount target moby refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TargetError {
    #[error("field Target must not be empty")]
    Empty,
    #[error("invalid specification: destination can't be '/'")]
    Root,
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    Relative(String),
}

/// moby's target checks: present, not `/`, absolute.
fn check_target(target: &str) -> Result<(), TargetError> {
    if target.is_empty() {
        return Err(TargetError::Empty);
    }
    if target.starts_with('/') && clean(target) == "/" {
        return Err(TargetError::Root);
    }
    if !target.starts_with('/') {
        return Err(TargetError::Relative(target.to_string()));
    }
    Ok(())
}

const PROPAGATIONS: &[&str] = &["private", "rprivate", "slave", "rslave", "shared", "rshared"];

/// moby's `ValidMountMode`: at most one of each kind of option.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0; 5];
    for o in mode.split(',') {
        let i = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[i] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

/// Parses one `-v` entry (`HostConfig.Binds`) as moby's `ParseMountRaw`.
fn parse_bind(raw: &str, volume_driver: &str) -> Result<MountPoint, Error> {
    let invalid_spec = || bad(format!("invalid volume specification: '{raw}'"));
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec());
    }
    let (source, target, mode) = match arr.len() {
        1 => ("", arr[0], ""),
        2 if valid_mode(arr[1]) => return Err(invalid_spec()),
        2 => (arr[0], arr[1], ""),
        3 => (arr[0], arr[1], arr[2]),
        _ => return Err(invalid_spec()),
    };
    if !valid_mode(mode) {
        return Err(bad(format!("invalid mode: {mode}")));
    }
    let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    let rw = !opts.contains(&"ro");
    let is_bind = source.starts_with('/');
    let typ = if is_bind { "bind" } else { "volume" };
    if let Err(e) = check_target(target) {
        return Err(bad(format!("invalid volume specification: '{raw}': invalid mount config for type {typ:?}: {e}")));
    }
    let mut mp = MountPoint {
        typ: if is_bind { Kind::Bind } else { Kind::Volume },
        destination: clean(target),
        mode: mode.to_string(),
        rw,
        ..Default::default()
    };
    if is_bind {
        mp.source = clean(source);
        mp.propagation = opts.iter().find(|o| PROPAGATIONS.contains(o)).unwrap_or(&"rprivate").to_string();
        mp.create_source = true;
    } else {
        mp.name = source.to_string();
        mp.named = !source.is_empty();
        mp.copy_data = !opts.contains(&"nocopy");
        mp.driver = volume_driver.to_string();
        if mp.mode.is_empty() {
            mp.mode = "z".into();
        }
    }
    Ok(mp)
}

/// Checks one `--mount` (`HostConfig.Mounts`) as moby's `ValidateMountConfig` and turns it into a mount point.
fn parse_mount(m: &Mount, volume_driver: &str) -> Result<MountPoint, Error> {
    let typ = m.typ.unwrap_or(MountType::VOLUME);
    let tname = typ.to_string();
    let target = m.target.clone().unwrap_or_default();
    let source = m.source.clone().unwrap_or_default();
    check_target(&target).map_err(|e| mount_config_error(&tname, &e.to_string()))?;
    let ro = m.read_only.unwrap_or(false);
    let mut mp = MountPoint { destination: clean(&target), rw: !ro, ..Default::default() };
    match typ {
        MountType::BIND => {
            if source.is_empty() {
                return Err(mount_config_error(&tname, "field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(mount_config_error(&tname, "field VolumeOptions must not be specified"));
            }
            if !source.starts_with('/') {
                return Err(mount_config_error(
                    &tname,
                    &format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            let create = m.bind_options.as_ref().and_then(|b| b.create_mountpoint).unwrap_or(false);
            if !create && std::fs::symlink_metadata(&source).is_err() {
                return Err(mount_config_error(&tname, &format!("bind source path does not exist: {source}")));
            }
            mp.typ = Kind::Bind;
            mp.source = clean(&source);
            mp.create_source = create;
            let prop = m.bind_options.as_ref().and_then(|b| b.propagation);
            mp.propagation = match prop {
                None | Some(MountBindOptionsPropagationEnum::EMPTY) => "rprivate".into(),
                Some(p) => p.to_string(),
            };
            mp.non_recursive = m.bind_options.as_ref().and_then(|b| b.non_recursive).unwrap_or(false);
            mp.recursive_ro = m.bind_options.as_ref().and_then(|b| b.read_only_force_recursive).unwrap_or(false);
            let ro_non_recursive = m.bind_options.as_ref().and_then(|b| b.read_only_non_recursive).unwrap_or(false);
            if mp.recursive_ro {
                if !ro {
                    return Err(mount_config_error(&tname, "option ReadOnlyForceRecursive requires ReadOnly"));
                }
                if ro_non_recursive {
                    return Err(mount_config_error(
                        &tname,
                        "option ReadOnlyForceRecursive conflicts with ReadOnlyNonRecursive",
                    ));
                }
                if mp.non_recursive {
                    return Err(mount_config_error(
                        &tname,
                        "option ReadOnlyForceRecursive conflicts with NonRecursive",
                    ));
                }
                if mp.propagation != "rprivate" {
                    return Err(mount_config_error(
                        &tname,
                        "option ReadOnlyForceRecursive requires propagation to be rprivate",
                    ));
                }
            }
            if ro_non_recursive && !ro {
                return Err(mount_config_error(&tname, "option ReadOnlyNonRecursive requires ReadOnly"));
            }
        }
        MountType::VOLUME => {
            if m.bind_options.is_some() {
                return Err(mount_config_error(&tname, "field BindOptions must not be specified"));
            }
            if ro && source.is_empty() {
                return Err(mount_config_error(&tname, "must not set ReadOnly mode when using anonymous volumes"));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            if vo.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(bad("berth does not support volume subpaths yet"));
            }
            let driver = vo.driver_config.as_ref().and_then(|c| c.name.clone()).filter(|n| !n.is_empty());
            mp.typ = Kind::Volume;
            mp.name = source.clone();
            mp.named = !source.is_empty();
            mp.copy_data = !vo.no_copy.unwrap_or(false);
            mp.driver = driver.clone().unwrap_or_else(|| volume_driver.to_string());
            mp.mode = "z".into();
            mp.create = Some(CreateOptions {
                name: source,
                driver: mp.driver.clone(),
                options: vo.driver_config.and_then(|c| c.options).unwrap_or_default(),
                labels: vo.labels,
            });
        }
        MountType::TMPFS => {
            if m.bind_options.is_some() {
                return Err(mount_config_error(&tname, "field BindOptions must not be specified"));
            }
            if !source.is_empty() {
                return Err(mount_config_error(&tname, "field Source must not be specified"));
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            let mut opts = Vec::new();
            if ro {
                opts.push("ro".to_string());
            }
            if let Some(mode) = t.mode.filter(|m| *m != 0) {
                opts.push(format!("mode={mode:o}"));
            }
            if let Some(size) = t.size_bytes.filter(|s| *s != 0) {
                opts.push(tmpfs_size(size));
            }
            for o in t.options.unwrap_or_default() {
                match o.as_slice() {
                    [k] if k == "exec" || k == "noexec" => opts.push(k.clone()),
                    [k, v] if k == "exec" || k == "noexec" => opts.push(format!("{k}={v}")),
                    [k, ..] => return Err(mount_config_error(&tname, &format!("invalid option: {k}"))),
                    [] => return Err(mount_config_error(&tname, "invalid option array length")),
                }
            }
            mp.typ = Kind::Tmpfs;
            mp.tmpfs_options = opts.join(",");
        }
        other => return Err(bad(format!("berth does not support mounts of type {other:?} yet"))),
    }
    Ok(mp)
}

/// moby's `size=` for a tmpfs: the largest unit that divides the size.
fn tmpfs_size(size: i64) -> String {
    for (suffix, div) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size % div == 0 {
            return format!("size={}{suffix}", size / div);
        }
    }
    format!("size={size}")
}

fn duplicate(dest: &str) -> Error {
    bad(format!("Duplicate mount point: {dest}"))
}

/// Checks and orders a new container's mounts the way moby's `registerMountPoints` does: `--volumes-from` first,
/// overridden by `-v` and `--mount` (which may not repeat a destination), then one anonymous volume for each entry
/// of `Config.Volumes` that nothing else is mounted on. Creates nothing.
pub fn plan(d: &Daemon, config: &ContainerConfig, host: &HostConfig) -> Result<Vec<MountPoint>, Error> {
    let volume_driver = host.volume_driver.clone().unwrap_or_default();
    let mut points: Vec<MountPoint> = Vec::new();
    let put = |points: &mut Vec<MountPoint>, mp: MountPoint| {
        points.retain(|p| p.destination != mp.destination);
        points.push(mp);
    };
    for spec in host.volumes_from.iter().flatten() {
        if spec.is_empty() {
            return Err(bad("volumes-from specification cannot be an empty string"));
        }
        let (id, mode) = spec.split_once(':').unwrap_or((spec.as_str(), "rw"));
        if !valid_mode(mode) || mode.split(',').any(|o| PROPAGATIONS.contains(&o) || o == "nocopy") {
            return Err(bad(format!("invalid mode: {mode}")));
        }
        let rw = !mode.split(',').any(|o| o == "ro");
        let from = d.container(id)?;
        for m in from.record().mounts.into_iter().filter(|m| m.typ != Kind::Tmpfs) {
            let mp = MountPoint { rw: m.rw && rw, copy_data: false, create: None, ..m };
            put(&mut points, mp);
        }
    }
    let mut explicit: Vec<String> = Vec::new();
    for raw in host.binds.iter().flatten() {
        let mp = parse_bind(raw, &volume_driver)?;
        if explicit.contains(&mp.destination) {
            return Err(duplicate(&mp.destination));
        }
        explicit.push(mp.destination.clone());
        put(&mut points, mp);
    }
    for m in host.mounts.iter().flatten() {
        let mp = parse_mount(m, &volume_driver)?;
        if explicit.contains(&mp.destination) {
            return Err(duplicate(&mp.destination));
        }
        explicit.push(mp.destination.clone());
        put(&mut points, mp);
    }
    let tmpfs: Vec<String> = host.tmpfs.iter().flatten().map(|(k, _)| clean(k)).collect();
    if let Some(dest) = tmpfs.iter().find(|t| explicit.contains(t)) {
        return Err(duplicate(dest));
    }
    let mut anonymous: Vec<&String> = config.volumes.iter().flatten().collect();
    anonymous.sort();
    for dest in anonymous {
        check_target(dest).map_err(|e| mount_config_error("volume", &e.to_string()))?;
        let dest = clean(dest);
        if points.iter().any(|p| p.destination == dest) || tmpfs.contains(&dest) {
            continue;
        }
        points.push(MountPoint {
            typ: Kind::Volume,
            destination: dest,
            rw: true,
            copy_data: true,
            driver: volume_driver.clone(),
            ..Default::default()
        });
    }
    for p in points.iter().filter(|p| p.typ == Kind::Volume) {
        let o = p.create.clone().unwrap_or_else(|| CreateOptions { name: p.name.clone(), ..Default::default() });
        volumes::validate(&CreateOptions { driver: p.driver.clone(), ..o })?;
    }
    points.sort_by(|a, b| a.destination.cmp(&b.destination));
    Ok(points)
}

/// Creates the volumes a planned container needs (the caller holds `d.volumes.lock`) and copies the image's content
/// into those that are empty. Returns the mount points with their sources, and the anonymous volumes it created
/// (to be removed if the container cannot be created after all).
pub async fn realize(
    d: &Arc<Daemon>,
    mut points: Vec<MountPoint>,
    lower_dirs: &[std::path::PathBuf],
) -> Result<(Vec<MountPoint>, Vec<MountPoint>), Error> {
    let mut created = Vec::new();
    let result = async {
        for p in points.iter_mut().filter(|p| p.typ == Kind::Volume) {
            let mut o = p.create.take().unwrap_or_default();
            o.name = p.name.clone();
            o.driver = p.driver.clone();
            if !p.named && p.name.is_empty() {
                o.labels.get_or_insert_with(HashMap::new).insert(volumes::ANONYMOUS_LABEL.into(), String::new());
            }
            let existed = !o.name.is_empty() && volumes::get(d, &o.name).await.is_ok();
            let v = volumes::create_locked(d, o).await?;
            p.name = v.name.clone();
            p.driver = v.driver.clone();
            p.source = d.volumes.mountpoint(&v.name).display().to_string();
            if !existed && !p.named {
                created.push(p.clone());
            }
        }
        copy_up(d, &points, lower_dirs).await
    }
    .await;
    match result {
        Ok(()) => Ok((points, created)),
        Err(e) => {
            volumes::remove_anonymous_locked(d, &created).await;
            Err(e)
        }
    }
}

/// Copies the image's content at each volume's destination into the volume when the volume is empty (Docker does
/// this when the container is created): ownership, modes, times, symlinks, hard links and xattrs are kept.
async fn copy_up(d: &Arc<Daemon>, points: &[MountPoint], lower_dirs: &[std::path::PathBuf]) -> Result<(), Error> {
    let mut jobs = Vec::new();
    for p in points.iter().filter(|p| p.typ == Kind::Volume && p.copy_data) {
        let v = volumes::get(d, &p.name).await?;
        jobs.push((p.destination.clone(), d.volumes.mountpoint(&p.name), v.options.clone().unwrap_or_default()));
    }
    if jobs.is_empty() || lower_dirs.is_empty() {
        return Ok(());
    }
    let lower = lower_dirs.to_vec();
    let tmp = d.config.exec_root.join("tmp");
    let remap = d.config.userns_remap;
    // The image's owners are container IDs: on the host, a volume holds the remapped ones.
    blocking(move || crate::archive::primitives::copy_image_content(&tmp, &lower, &jobs, remap)).await
}

/// The OCI mounts of a container's mount points (bind mounts of host paths, tmpfs mounts), in mounting order: a
/// mount comes after the mounts of its parent directories. Creates a missing `-v` bind source (as Docker does).
pub fn spec_mounts(points: &[MountPoint]) -> Result<Vec<Value>, Error> {
    let mut sorted: Vec<&MountPoint> = points.iter().collect();
    sorted.sort_by_key(|p| (p.destination.matches('/').count(), p.destination.clone()));
    let mut out = Vec::new();
    for p in sorted {
        match p.typ {
            Kind::Tmpfs => {
                let mut o = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
                o.extend(p.tmpfs_options.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                out.push(json!({"destination": p.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            Kind::Bind | Kind::Volume => {
                let source = Path::new(&p.source);
                if std::fs::symlink_metadata(source).is_err() {
                    if p.typ == Kind::Bind && p.create_source {
                        std::fs::create_dir_all(source).map_err(|e| {
                            Error::Internal(format!("error while creating mount source path '{}': {e}", p.source))
                        })?;
                    } else {
                        return Err(mount_config_error(
                            p.typ.as_str(),
                            &format!("bind source path does not exist: {}", p.source),
                        ));
                    }
                }
                let mut o = vec![if p.non_recursive { "bind" } else { "rbind" }.to_string()];
                if !p.rw {
                    o.push("ro".into());
                }
                if p.recursive_ro {
                    o.push("rro".into());
                }
                o.push(if p.propagation.is_empty() { "rprivate".into() } else { p.propagation.clone() });
                out.push(json!({"destination": p.destination, "type": "bind", "source": p.source, "options": o}));
            }
        }
    }
    Ok(out)
}

/// Whether `path` (absolute, in the container) is on one of the mounts, and whether that mount is writable: the
/// deepest mount containing the path decides.
pub fn mount_of<'a>(points: &'a [MountPoint], path: &str) -> Option<&'a MountPoint> {
    points
        .iter()
        .filter(|p| path == p.destination || path.starts_with(&format!("{}/", p.destination.trim_end_matches('/'))))
        .max_by_key(|p| p.destination.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_like_moby() {
        let b = parse_bind("/host:/data:ro", "").expect("bind");
        assert_eq!((b.typ, b.source.as_str(), b.destination.as_str(), b.rw), (Kind::Bind, "/host", "/data", false));
        assert_eq!((b.mode.as_str(), b.propagation.as_str()), ("ro", "rprivate"));
        let v = parse_bind("vol:/data", "").expect("volume");
        assert_eq!(
            (v.typ, v.name.as_str(), v.mode.as_str(), v.named, v.copy_data),
            (Kind::Volume, "vol", "z", true, true)
        );
        assert!(!parse_bind("vol:/data:nocopy", "").expect("nocopy").copy_data);
        let a = parse_bind("/data", "").expect("anonymous");
        assert!(a.name.is_empty() && !a.named);
        let e = parse_bind("/x:rel", "").expect_err("relative target").to_string();
        assert_eq!(
            e,
            "invalid volume specification: '/x:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        let e = parse_bind("vol:/", "").expect_err("root").to_string();
        assert!(e.ends_with("invalid specification: destination can't be '/'"), "{e}");
        assert!(parse_bind("/a:/b:bogus", "").expect_err("mode").to_string().contains("invalid mode: bogus"));
        assert!(parse_bind("/a:ro", "").is_err());
        assert!(parse_bind("/a:/b:ro,rw", "").is_err());
    }

    #[test]
    fn mounts_like_moby() {
        let m: Mount = serde_json::from_value(json!({"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x"}))
            .expect("mount");
        assert_eq!(
            parse_mount(&m, "").expect_err("missing").to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        );
        let m: Mount = serde_json::from_value(json!({"Type": "bind", "Source": "rel", "Target": "/x"})).expect("mount");
        assert!(parse_mount(&m, "").expect_err("relative").to_string().contains("'rel' mount path must be absolute"));
        let m: Mount = serde_json::from_value(json!({"Type": "volume", "Target": "/x", "ReadOnly": true})).expect("m");
        assert!(parse_mount(&m, "").is_err());
        let m: Mount = serde_json::from_value(
            json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 10485760, "Mode": 448}}),
        )
        .expect("mount");
        assert_eq!(parse_mount(&m, "").expect("tmpfs").tmpfs_options, "mode=700,size=10m");
    }

    #[test]
    fn order_and_lookup() {
        let p = |d: &str| MountPoint { destination: d.into(), typ: Kind::Tmpfs, ..Default::default() };
        let specs = spec_mounts(&[p("/a/b"), p("/a"), p("/c")]).expect("spec");
        let dests: Vec<&str> = specs.iter().filter_map(|m| m["destination"].as_str()).collect();
        assert_eq!(dests, ["/a", "/c", "/a/b"]);
        let points = [p("/data"), p("/data/sub")];
        assert_eq!(mount_of(&points, "/data/sub/x").map(|m| m.destination.as_str()), Some("/data/sub"));
        assert_eq!(mount_of(&points, "/data").map(|m| m.destination.as_str()), Some("/data"));
        assert!(mount_of(&points, "/database").is_none());
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
    }
}
