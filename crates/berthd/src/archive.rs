//! A container's file system from outside: `HEAD/GET/PUT /containers/{id}/archive` (what `docker cp` uses) and the
//! copy of an image's content into new volumes.
//!
//! A running container is reached through `/proc/<pid>/root`, which shows its own mount namespace (volumes, binds
//! and tmpfs mounts included). A stopped one gets its overlay (image layers + writable layer) and its volumes and
//! binds mounted in a private mount namespace of a thread of its own, which disappears with the thread, so nothing
//! can leak onto the host even when an operation fails half-way. Either way every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` against the container's root: symlinks in the container cannot lead outside it.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::Error;
use berth_runtime::shim::IdMap;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};
use serde::Serialize;

use crate::containers::{Container, Record, container_dir};
use crate::daemon::Daemon;
use crate::mounts::{Kind, MountPoint};

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

/// Go's `os.FileMode` for a `st_mode`.
fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn mtime(st: &FileStat) -> std::time::SystemTime {
    let secs = Duration::from_secs(st.st_mtime.max(0) as u64) + Duration::from_nanos(st.st_mtime_nsec.max(0) as u64);
    UNIX_EPOCH + secs
}

pub(crate) fn sys(what: &str) -> impl FnOnce(Errno) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {}", e.desc()))
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

/// Opens `path` (absolute or relative, in the container) below `root` as the kernel would after a chroot.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut attempts = 0;
    loop {
        match openat2(root, rel, how) {
            Err(Errno::EAGAIN) if attempts < 32 => attempts += 1,
            r => return r,
        }
    }
}

/// Runs `f` on a new thread in a private mount namespace of its own (mounts made there vanish with the thread).
pub(crate) fn in_private_namespace<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    std::thread::Builder::new()
        .name("berth-fs".into())
        .spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)
                .map_err(sys("unshare mount namespace"))?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(sys("make mounts private"))?;
            f()
        })
        .map_err(|e| Error::Internal(format!("start a thread: {e}")))?
        .join()
        .map_err(|_| Error::Internal("container file system thread panicked".into()))?
}

/// A fresh empty directory under `base` to mount on.
pub(crate) fn temp_dir(base: &Path) -> Result<PathBuf, Error> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(|e| Error::Internal(format!("random: {e}")))?;
    let dir = base.join(hex::encode(r));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(format!("mkdir {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Mounts the overlay of `lower` (top first) with `upper` (writable when `work` is given) on `target`.
pub(crate) fn mount_overlay(lower: &[PathBuf], upper: Option<(&Path, &Path)>, target: &Path) -> Result<(), Error> {
    let joined: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let opts = match upper {
        Some((u, w)) => format!("lowerdir={},upperdir={},workdir={}", joined.join(":"), u.display(), w.display()),
        None if lower.len() == 1 => {
            // A read-only overlay needs two layers; one layer alone is bound read-only instead.
            mount(Some(&lower[0]), target, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(sys("bind layer"))?;
            return mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(sys("remount layer read-only"));
        }
        None => format!("lowerdir={}", joined.join(":")),
    };
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
        .map_err(|e| Error::Internal(format!("mount overlay on {}: {}", target.display(), e.desc())))
}

/// Mounts a stopped container's root on `target` (in the caller's private namespace): its overlay, writable, and its
/// volumes and binds at their destinations.
fn mount_stopped(d: &Daemon, rec: &Record, target: &Path) -> Result<(), Error> {
    let dir = container_dir(d, &rec.id);
    let (upper, work) = (dir.join("upper"), dir.join("work"));
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
        return crate::daemon::blocking(move || f(&Fs { root, root_path, rec, idmap })).await;
    }
    let d2 = d.clone();
    let tmp = d.config.exec_root.join("tmp");
    let r = crate::daemon::blocking(move || {
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
    crate::daemon::blocking(move || {
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
    .await
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
                let user = berth_runtime::user::resolve(&self.root_path, u)
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

// ---------------------------------------------------------------------------------------------------------------
// Writing tars

/// File systems whose content is not data (a running container's `/proc`, `/sys`...): their directory goes into an
/// archive, what is below it does not.
const PSEUDO_FS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x1cd1,      // devpts
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x1980_0202, // mqueue
    0x7363_6673, // securityfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0xcafe_4a11, // bpf
];

fn is_pseudo_fs(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statfs::fstatfs(fd).map(|s| PSEUDO_FS.contains(&{ s.filesystem_type().0 })).unwrap_or(false)
}

/// A tar stream of file system objects read through descriptors (never by path).
pub(crate) struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    /// (device, inode) of files with several links → the first name they were archived under.
    links: HashMap<(u64, u64), String>,
    opts: TarOptions,
}

/// How a [`TarWriter`] records what it reads.
#[derive(Default)]
pub(crate) struct TarOptions {
    /// Owner of every entry instead of the file's (`COPY --chown`; without it a build's copies belong to root).
    pub owner: Option<(u32, u32)>,
    /// Permission bits of every entry instead of the file's (`COPY --chmod`).
    pub mode: Option<u32>,
    /// The tree is an overlay upper directory: its whiteouts (0/0 character devices) and opaque directories become
    /// the `.wh.` entries of an image layer.
    pub overlay_diff: bool,
    /// The tree holds host IDs of a remapped container (`--userns-remap`): entries get the container's.
    pub unshift: Option<IdMap>,
    /// Entries (by archive name) left out, with everything below them.
    pub skip: Option<Box<dyn Fn(&str, &FileStat) -> bool + Send>>,
}

/// Reads exactly `left` bytes: a file that shrinks while it is archived is padded with zeros, one that grows is cut.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> TarWriter<W> {
        TarWriter::with_options(out, TarOptions::default())
    }

    pub(crate) fn with_options(out: W, opts: TarOptions) -> TarWriter<W> {
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        TarWriter { b, links: HashMap::new(), opts }
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        self.b.into_inner().map(drop).map_err(io_err("write archive"))
    }

    /// Adds the object `name` of `dir` (empty `name`: `dir` itself) as `tar_name`, and what is below a directory.
    pub(crate) fn add(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        tar_name: String,
    ) -> Result<(), Error> {
        if self.opts.skip.as_ref().is_some_and(|skip| skip(&tar_name, st)) {
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        let (uid, gid) = match (self.opts.owner, self.opts.unshift) {
            (Some(o), _) => o,
            (None, Some(m)) => m.to_container(st.st_uid, st.st_gid),
            (None, None) => (st.st_uid, st.st_gid),
        };
        h.set_mode(self.opts.mode.unwrap_or(st.st_mode & 0o7777));
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        if self.opts.overlay_diff && st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0 {
            // A whiteout: the name is deleted from the layers below.
            let (parent, base) = match tar_name.rsplit_once('/') {
                Some((p, b)) => (format!("{p}/"), b),
                None => (String::new(), tar_name.as_str()),
            };
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            let wh = format!("{parent}.wh.{base}");
            return self.b.append_data(&mut h, &wh, std::io::empty()).map_err(io_err("write archive"));
        }
        let open = |flags: OFlag| -> Result<OwnedFd, Error> {
            let r = if name.is_empty() {
                openat(dir, ".", flags | OFlag::O_CLOEXEC, Mode::empty())
            } else {
                openat(dir, name, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            };
            r.map_err(|e| Error::Internal(format!("open {tar_name}: {}", e.desc())))
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let fd = open(OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                self.xattrs(fd.as_fd())?;
                h.set_entry_type(tar::EntryType::Directory);
                let shown = if tar_name.ends_with('/') { tar_name.clone() } else { format!("{tar_name}/") };
                self.b.append_data(&mut h, &shown, std::io::empty()).map_err(io_err("write archive"))?;
                if is_pseudo_fs(fd.as_fd()) {
                    return Ok(());
                }
                if self.opts.overlay_diff
                    && xattr_value(fd.as_fd(), c"trusted.overlay.opaque").is_some_and(|v| v.as_slice() == b"y")
                {
                    // An opaque directory hides everything the layers below have in it.
                    let mut o = tar::Header::new_gnu();
                    o.set_mode(0o600);
                    o.set_uid(0);
                    o.set_gid(0);
                    o.set_mtime(st.st_mtime.max(0) as u64);
                    o.set_size(0);
                    o.set_entry_type(tar::EntryType::Regular);
                    let name = format!("{shown}.wh..wh..opq");
                    self.b.append_data(&mut o, &name, std::io::empty()).map_err(io_err("write archive"))?;
                }
                self.add_children(fd, tar_name.trim_end_matches('/'))?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        return self.b.append_link(&mut h, &tar_name, &first).map_err(io_err("write archive"));
                    }
                    self.links.insert(key, tar_name.clone());
                }
                let fd = open(OFlag::O_RDONLY)?;
                self.xattrs(fd.as_fd())?;
                h.set_entry_type(tar::EntryType::Regular);
                let size = st.st_size.max(0) as u64;
                h.set_size(size);
                let data = Exactly { inner: std::fs::File::from(fd), left: size };
                self.b.append_data(&mut h, &tar_name, data).map_err(io_err("write archive"))?;
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name).map_err(sys("readlink"))?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.b.append_link(&mut h, &tar_name, Path::new(&target)).map_err(io_err("write archive"))?;
            }
            t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                h.set_entry_type(match t {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if t != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev)).map_err(io_err("device"))?;
                    h.set_device_minor(libc::minor(st.st_rdev)).map_err(io_err("device"))?;
                }
                self.b.append_data(&mut h, &tar_name, std::io::empty()).map_err(io_err("write archive"))?;
            }
            // Sockets cannot be archived (Go's tar refuses them too).
            _ => {}
        }
        Ok(())
    }

    /// Adds what is in the directory `fd`, each entry named `<prefix>/<name>` (just `<name>` for an empty prefix).
    pub(crate) fn add_children(&mut self, fd: OwnedFd, prefix: &str) -> Result<(), Error> {
        let child = fd.try_clone().map_err(io_err("dup"))?;
        let mut names: Vec<OsString> = Vec::new();
        let mut it = nix::dir::Dir::from_fd(fd).map_err(sys("read directory"))?;
        for e in it.iter() {
            let e = e.map_err(sys("read directory"))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        for n in names {
            let Ok(cst) = fstatat(&child, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else { continue };
            let sub = if prefix.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{prefix}/{}", n.to_string_lossy())
            };
            self.add(child.as_fd(), &n, &cst, sub)?;
        }
        Ok(())
    }

    /// The object's extended attributes as PAX `SCHILY.xattr.*` records (the next entry carries them).
    fn xattrs(&mut self, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let list = xattr_names(fd);
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for name in list {
            let key = name.to_string_lossy().into_owned();
            if key.starts_with("trusted.overlay.") || key == "security.selinux" {
                continue;
            }
            if let Some(v) = xattr_value(fd, &name) {
                recs.push((format!("SCHILY.xattr.{key}"), v));
            }
        }
        if recs.is_empty() {
            return Ok(());
        }
        self.b
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(io_err("write archive"))
    }
}

/// `flistxattr(2)`: the names of the object's extended attributes (none when unsupported).
fn xattr_names(fd: BorrowedFd<'_>) -> Vec<CString> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `fd` is open for the call and `buf` is writable for `buf.len()` bytes; the kernel writes at most that.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf[..n as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| CString::new(s.to_vec()).ok())
        .collect()
}

/// `fgetxattr(2)` of one attribute.
fn xattr_value(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: `fd` is open, `name` is NUL-terminated and `buf` is writable for `buf.len()` bytes.
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

// ---------------------------------------------------------------------------------------------------------------
// Volume copy-up

/// Copies the image's content at each `(destination, volume directory, volume options)` into the volume if the
/// volume is empty, keeping owners, modes, times, links and xattrs; the volume's directory takes the owner and mode
/// of the image's. The image's layers are mounted read-only in a private namespace for the time of the copy.
pub fn copy_image_content(
    tmp: &Path,
    lower: &[PathBuf],
    jobs: &[(String, PathBuf, HashMap<String, String>)],
    host_ids: Option<IdMap>,
) -> Result<(), Error> {
    let (tmp, lower, jobs) = (tmp.to_path_buf(), lower.to_vec(), jobs.to_vec());
    in_private_namespace(move || {
        let dir = temp_dir(&tmp)?;
        let result = (|| {
            mount_overlay(&lower, None, &dir)?;
            let root = openat(nix::fcntl::AT_FDCWD, &dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(sys("open the image's root"))?;
            for (dest, data, options) in &jobs {
                copy_one(root.as_fd(), dest, data, options, host_ids)?;
            }
            Ok(())
        })();
        let _ = umount2(&dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&dir);
        result
    })
}

/// `host_ids`: the volume is a remapped container's (`--userns-remap`); the image's IDs become the host's.
fn copy_one(
    root: BorrowedFd<'_>,
    dest: &str,
    data: &Path,
    options: &HashMap<String, String>,
    host_ids: Option<IdMap>,
) -> Result<(), Error> {
    let src = match open_in_root(root, dest, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::Internal(format!("{dest}: {}", e.desc()))),
    };
    let st = fstat(&src).map_err(sys("stat"))?;
    if !is_dir(&st) {
        return Err(Error::InvalidArgument(format!("cannot mount volume over existing file, file exists {dest}")));
    }
    let needs_mount = options.contains_key("type") || options.contains_key("device");
    if needs_mount && !crate::volumes::is_mounted(data) {
        // Mounted in this thread's namespace only, for the copy.
        crate::volumes::mount_options(options, data)?;
    }
    if std::fs::read_dir(data).map_err(io_err("read volume"))?.next().is_some() {
        return Ok(());
    }
    let src_dir = open_in_root(root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(sys("open"))?;
    let (reader, writer) = std::io::pipe().map_err(io_err("pipe"))?;
    let producer = std::thread::spawn(move || {
        let mut w = TarWriter::new(writer);
        let r = w.add(src_dir.as_fd(), OsStr::new(""), &st, ".".into());
        r.and_then(|()| w.finish())
    });
    let dst = openat(
        nix::fcntl::AT_FDCWD,
        data,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open volume"))?;
    let opts = berth_store::ExtractOptions {
        overlay_whiteouts: false,
        root_metadata: true,
        no_overwrite_dir_non_dir: false,
        owner: None,
        host_ids: host_ids.map(|m| (m.uid, m.gid, m.size)),
    };
    let extracted = berth_store::extract(reader, dst, Path::new(""), opts).map_err(Error::from);
    let produced = producer.join().map_err(|_| Error::Internal("copy thread panicked".into()))?;
    extracted?;
    produced
}

#[cfg(test)]
mod tests {
    use super::*;

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
