//! A container's file system from outside: `HEAD/GET/PUT /containers/{id}/archive` (what `docker cp` uses) and the
//! copy of an image's content into new volumes.
//!
//! A running container is reached through `/proc/<pid>/root`, which shows its own mount namespace (volumes, binds
//! and tmpfs mounts included). A stopped one gets its overlay (image layers + writable layer) and its volumes and
//! binds mounted in a private mount namespace of a thread of its own, which disappears with the thread, so nothing
//! can leak onto the host even when an operation fails half-way. Either way every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` against the container's root: symlinks in the container cannot lead outside it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use berth_runtime::shim::IdMap;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};
use serde::Serialize;

use crate::containers::{Container, Record, container_dir};
use crate::daemon::Daemon;
use crate::mounts::point::{Kind, MountPoint};

pub mod primitives;
pub(crate) use primitives::*;

/// `X-Docker-Container-Path-Stat`: what `docker cp` learns about a path before copying.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (the docker CLI decodes them).
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: base64 of the JSON.
    pub fn header(&self) -> String {
        berth_api::base64::encode(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The container's root

/// A container's file system, opened.
pub struct Fs {
    /// The container's `/`.
    root: OwnedFd,
    /// A path that shows the same root (for information only: never used to open what is written or read).
    root_path: PathBuf,
    rec: Record,
    /// The container's IDs are remapped: what it reads and writes is translated to and from the host's IDs.
    idmap: Option<IdMap>,
}

/// Mounts a stopped container's root on `target` (in the caller's private namespace): its overlay, writable, and its
/// volumes and binds at their destinations.
fn mount_stopped(d: &Daemon, rec: &Record, target: &Path) -> Result<(), Error> {
    let dir = container_dir(d, &rec.id);
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    // An `--rm` container's layer was mounted volatile (see `clear_volatile_mark`).
    if rec.host_config.auto_remove.unwrap_or(false) {
        berth_runtime::sys::clear_volatile_mark(&work);
    }
    mount_overlay(&rec.lower_dirs, Some((&upper, &work)), target)?;
    let mut points: Vec<&MountPoint> = rec.mounts.iter().filter(|m| m.typ != Kind::Tmpfs).collect();
    points.sort_by_key(|p| p.destination.matches('/').count());
    // Targets are resolved and mounted on by descriptor, as the runtime does at start: a symlink another container
    // swaps into a shared volume can neither redirect a mount nor have a mount point created outside the root.
    use berth_runtime::mounts::{Create, Root, proc_fd};
    let rt = |e: berth_runtime::Error| Error::Conflict(e.to_string());
    let root = Root::open(target).map_err(rt)?;
    for p in points {
        let source = Path::new(&p.source);
        // A source that is gone would have `cp` write into the layer under the mount point, hidden at the next
        // start: refuse instead.
        let meta = std::fs::metadata(source)
            .map_err(|e| Error::Conflict(format!("mount source {} of {}: {e}", source.display(), p.destination)))?;
        let dest = Path::new(&p.destination);
        let at = root.open_target(dest, if meta.is_dir() { Create::Dir } else { Create::File }).map_err(rt)?;
        let volume_fs = if p.typ == Kind::Volume && !crate::volumes::is_mounted(source) {
            volume_options(d, &p.name)
        } else {
            None
        };
        match volume_fs {
            // The volume's own file system, mounted on a directory of berthd's first (its options may need a second
            // pass by path), then bound onto the target.
            Some(opts) => {
                let staging = temp_dir(&d.config.exec_root.join("tmp"))?;
                let mounted = crate::volumes::mount_options(&opts, &staging).and_then(|()| {
                    mount(
                        Some(&staging),
                        &proc_fd(&at.fd),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .map_err(sys("bind mount"))
                });
                let _ = umount2(&staging, MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir(&staging);
                mounted?;
            }
            None => {
                mount(Some(source), &proc_fd(&at.fd), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .map_err(sys("bind mount"))?
            }
        }
        let top = root.open_mounted(dest, &at).map_err(rt)?;
        if !p.rw {
            mount(
                None::<&str>,
                &proc_fd(&top),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(sys("remount read-only"))?;
        }
    }
    Ok(())
}

/// The mount options of a volume whose file system the local driver mounts (read from its document).
fn volume_options(d: &Daemon, name: &str) -> Option<HashMap<String, String>> {
    let doc = d.store.get_doc("volume", name).ok()??;
    let v: crate::volumes::Volume = serde_json::from_value(doc).ok()?;
    v.options.filter(|o| o.contains_key("type") || o.contains_key("device"))
}

/// Opens the root of a running container through `/proc/<pid>/root` without trusting the number: the process is
/// pinned first (a pidfd names it and no other, even once the PID is free again), it must be in the container's
/// cgroup, and it must still be alive once the root is open — so the `/proc/<pid>` that was opened was its own, not
/// that of a process that got the PID after the container exited.
fn running_root(id: &str, pid: i64) -> Result<(OwnedFd, PathBuf), Error> {
    let gone = |why: String| Error::Conflict(format!("container {id} is not running: {why}"));
    let pid = i32::try_from(pid).ok().filter(|p| *p > 0).ok_or_else(|| gone(format!("no process ({pid})")))?;
    let pidfd = berth_runtime::sys::pidfd_open(pid).map_err(|e| gone(e.desc().to_string()))?;
    let root_path = PathBuf::from(format!("/proc/{pid}/root"));
    let root = openat(
        nix::fcntl::AT_FDCWD,
        &root_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| gone(e.desc().to_string()))?;
    let member = berth_runtime::cgroups::Cgroup::open(&format!("berth/{id}"))
        .and_then(|cg| cg.procs())
        .map(|procs| procs.contains(&pid))
        .unwrap_or(false);
    // A pidfd turns readable when its process exits: alive now means `/proc/<pid>` was this process all along.
    let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let exited = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).map_err(sys("poll pidfd"))? > 0;
    if !member || exited {
        return Err(gone(format!("process {pid} is no longer the container's")));
    }
    Ok((root, root_path))
}

/// Runs `f` with the container's file system. A running container is used as it is; a stopped one is mounted for
/// the time of `f` (and its lifecycle lock held, so it cannot start meanwhile).
pub async fn with_fs<T: Send + 'static>(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    f: impl FnOnce(&Fs) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let guard = c.lifecycle.lock().await;
    let rec = c.record();
    if c.is_running() {
        let (root, root_path) = running_root(&c.id, rec.state.pid)?;
        drop(guard);
        let idmap = crate::userns::of_container(d.config.userns_remap, rec.host_config.userns_mode.as_deref());
        return crate::task::blocking(move || f(&Fs { root, root_path, rec, idmap })).await;
    }
    let d2 = d.clone();
    let tmp = d.config.exec_root.join("tmp");
    let r = crate::task::blocking(move || {
        in_private_namespace(move || {
            let dir = temp_dir(&tmp)?;
            let result = (|| {
                mount_stopped(&d2, &rec, &dir)?;
                let root = openat(nix::fcntl::AT_FDCWD, &dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                    .map_err(sys("open the container's root"))?;
                let idmap = crate::userns::of_container(d2.config.userns_remap, rec.host_config.userns_mode.as_deref());
                let fs = Fs { root, root_path: dir.clone(), rec, idmap };
                f(&fs)
            })();
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&dir);
            result
        })
    })
    .await;
    drop(guard);
    r
}

/// `GET /containers/{id}/export`: a tar of the container's root file system as `docker export` writes it: its image
/// layers under its writable layer (no volumes, binds or pseudo file systems), entries named without a leading `./`.
/// The layers are mounted as one read-only overlay in a private namespace, also while the container runs.
pub async fn export(d: &Arc<Daemon>, c: &Arc<Container>, out: impl Write + Send + 'static) -> Result<(), Error> {
    let rec = c.record();
    let unshift = crate::userns::of_container(d.config.userns_remap, rec.host_config.userns_mode.as_deref());
    let mut lower = vec![container_dir(d, &rec.id).join("upper")];
    lower.extend(rec.lower_dirs.iter().cloned());
    let tmp = d.config.exec_root.join("tmp");
    crate::task::blocking(move || {
        in_private_namespace(move || {
            let dir = temp_dir(&tmp)?;
            let result = (|| {
                mount_overlay(&lower, None, &dir)?;
                let root = openat(nix::fcntl::AT_FDCWD, &dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                    .map_err(sys("open the container's root"))?;
                let mut w = TarWriter::with_options(out, TarOptions { unshift, ..Default::default() });
                w.add_children(root, "")?;
                w.finish()
            })();
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&dir);
            result
        })
    })
    .await?;
    c.publish(&d.events, "export", &[]);
    Ok(())
}

/// Where a request's path points: `/dir/.` and `/dir/` name the directory itself (its content, for `docker cp`).
struct Target {
    /// Cleaned absolute path.
    abs: String,
    /// The last component as the archive names it (`.` for `/dir/.`).
    base: String,
    /// Follow a final symlink (a path ending in `/` or `/.`).
    follow: bool,
}

fn target(path: &str) -> Target {
    let abs = crate::mounts::clean(path);
    let dot = path.ends_with("/.") || path == ".";
    let follow = dot || path.ends_with('/') || abs == "/";
    let base = if dot {
        ".".to_string()
    } else if abs == "/" {
        "/".to_string()
    } else {
        abs.rsplit('/').next().unwrap_or("").to_string()
    };
    Target { abs, base, follow }
}

fn not_found(path: &str, container: &str) -> Error {
    Error::NotFound(format!("Could not find the file {path} in container {container}"))
}

impl Fs {
    /// Opens the object a target names: (its directory, its name there — empty for the object itself, its stat).
    fn locate(&self, t: &Target, shown: &str, container: &str) -> Result<(OwnedFd, OsString, FileStat), Error> {
        let map = |e: Errno| match e {
            Errno::ENOENT | Errno::ENOTDIR => not_found(shown, container),
            e => Error::Internal(format!("{shown}: {}", e.desc())),
        };
        if t.follow {
            let fd = open_in_root(self.root.as_fd(), &t.abs, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(map)?;
            let st = fstat(&fd).map_err(map)?;
            return Ok((fd, OsString::new(), st));
        }
        let (parent, name) = t.abs.rsplit_once('/').unwrap_or(("", &t.abs));
        let dir = open_in_root(self.root.as_fd(), parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(map)?;
        let st = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(map)?;
        Ok((dir, OsString::from(name), st))
    }

    /// The container path `abs` resolves to (symlinks followed inside the container).
    fn resolved(&self, abs: &str) -> String {
        match berth_runtime::mounts::secure_join(&self.root_path, Path::new(abs)) {
            Ok(p) => match p.strip_prefix(&self.root_path) {
                Ok(rel) => format!("/{}", rel.display()),
                Err(_) => abs.to_string(),
            },
            Err(_) => abs.to_string(),
        }
    }

    /// `HEAD /containers/{id}/archive`.
    pub fn stat(&self, path: &str, container: &str) -> Result<PathStat, Error> {
        let t = target(path);
        let (_, _, st) = self.locate(&t, path, container)?;
        let link_target =
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK { self.resolved(&t.abs) } else { String::new() };
        Ok(PathStat {
            name: t.base.clone(),
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: berth_api::time::rfc3339_nanos(mtime(&st)),
            link_target,
        })
    }

    /// `GET /containers/{id}/archive`: a tar of the path (a directory with everything below it), its entries named
    /// from the path's last component, as moby does.
    pub fn archive(&self, path: &str, container: &str, out: impl Write) -> Result<(), Error> {
        let t = target(path);
        let (dir, name, st) = self.locate(&t, path, container)?;
        let mut w = TarWriter::with_options(out, TarOptions { unshift: self.idmap, ..Default::default() });
        let prefix = if t.base == "/" { ".".to_string() } else { t.base.clone() };
        w.add(dir.as_fd(), &name, &st, prefix)?;
        w.finish()
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`.
    pub fn extract(&self, path: &str, container: &str, opts: ExtractOptions, body: impl Read) -> Result<(), Error> {
        let t = target(path);
        let fd = open_in_root(self.root.as_fd(), &t.abs, OFlag::O_PATH).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => not_found(path, container),
            e => Error::Internal(format!("{path}: {}", e.desc())),
        })?;
        let st = fstat(&fd).map_err(sys("stat"))?;
        if !is_dir(&st) {
            return Err(Error::InvalidArgument("extraction point is not a directory".into()));
        }
        let resolved = self.resolved(&t.abs);
        match crate::mounts::mount_of(&self.rec.mounts, &resolved) {
            Some(m) if !m.rw => return Err(Error::InvalidArgument("mounted volume is marked read-only".into())),
            Some(_) => {}
            None if self.rec.host_config.readonly_rootfs.unwrap_or(false) => {
                return Err(Error::InvalidArgument("container rootfs is marked read-only".into()));
            }
            None => {}
        }
        let owner = match self.rec.config.user.as_deref().filter(|u| opts.copy_uid_gid && !u.is_empty()) {
            Some(u) => {
                let user = berth_runtime::user::resolve(&self.root_path, u, &[])
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                Some((user.uid, user.gid))
            }
            None => None,
        };
        let root = self.root.try_clone().map_err(|e| Error::Internal(format!("dup: {e}")))?;
        let eo = berth_store::ExtractOptions {
            overlay_whiteouts: false,
            root_metadata: false,
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            owner,
            host_ids: self.idmap.map(|m| (m.uid, m.gid, m.size)),
        };
        berth_store::extract(body, root, Path::new(&resolved), eo).map(drop).map_err(Error::from)
    }
}

/// The query flags of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn a_process_outside_the_containers_cgroup_is_not_its_root() {
        // This test's own PID is alive but in no container's cgroup: a PID recycled by another process is refused.
        let id = "0".repeat(64);
        match running_root(&id, i64::from(std::process::id())) {
            Err(Error::Conflict(m)) => assert!(m.contains("is no longer the container's"), "{m}"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a process outside the container's cgroup was taken for it"),
        }
        assert!(matches!(running_root("x", 0), Err(Error::Conflict(_))));
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_mode(libc::S_IFREG | 0o4644), (1 << 23) | 0o644);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(go_mode(libc::S_IFCHR | 0o600), (1 << 26) | (1 << 21) | 0o600);
    }

    #[test]
    fn targets() {
        let t = target("/a/b/.");
        assert_eq!((t.abs.as_str(), t.base.as_str(), t.follow), ("/a/b", ".", true));
        let t = target("a/b");
        assert_eq!((t.abs.as_str(), t.base.as_str(), t.follow), ("/a/b", "b", false));
        let t = target("/a/b/");
        assert_eq!((t.base.as_str(), t.follow), ("b", true));
        assert_eq!(target("/").base, "/");
    }

    #[test]
    fn tar_of_a_tree_keeps_links_and_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/sub")).expect("mkdir");
        std::fs::write(root.join("d/f"), b"hello").expect("write");
        std::fs::hard_link(root.join("d/f"), root.join("d/g")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", root.join("d/l")).expect("symlink");
        let fd = openat(nix::fcntl::AT_FDCWD, root, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).expect("open");
        let st = fstatat(&fd, "d", AtFlags::AT_SYMLINK_NOFOLLOW).expect("stat");
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out);
        w.add(fd.as_fd(), OsStr::new("d"), &st, "d".into()).expect("add");
        w.finish().expect("finish");
        let mut a = tar::Archive::new(out.as_slice());
        let mut seen = Vec::new();
        for e in a.entries().expect("entries") {
            let e = e.expect("entry");
            seen.push((e.path().expect("path").display().to_string(), e.header().entry_type()));
        }
        assert!(
            seen.contains(&("d/".into(), tar::EntryType::Directory))
                || seen.contains(&("d".into(), tar::EntryType::Directory)),
            "{seen:?}"
        );
        assert!(seen.contains(&("d/f".into(), tar::EntryType::Regular)), "{seen:?}");
        assert!(seen.contains(&("d/g".into(), tar::EntryType::Link)), "{seen:?}");
        assert!(seen.contains(&("d/l".into(), tar::EntryType::Symlink)), "{seen:?}");
    }
}
