//! File-system primitives of copies in and out of containers and volumes: paths resolved inside a root
//! (`openat2`), private mount namespaces, overlay mounts, writing tars from descriptors, and copying an image's
//! content into a new volume.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::error::Error;
use berth_runtime::shim::IdMap;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};

/// Go's `os.FileMode` for a `st_mode`.
pub(crate) fn go_mode(st_mode: u32) -> u32 {
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

pub(crate) fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub(crate) fn mtime(st: &FileStat) -> std::time::SystemTime {
    let secs = Duration::from_secs(st.st_mtime.max(0) as u64) + Duration::from_nanos(st.st_mtime_nsec.max(0) as u64);
    UNIX_EPOCH + secs
}

pub(crate) fn sys(what: &str) -> impl FnOnce(Errno) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {}", e.desc()))
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

// ---------------------------------------------------------------------------------------------------------------
// Writing tars

/// File systems whose content is not data (a running container's `/proc`, `/sys`...): their directory goes into an
/// archive, what is below it does not.
pub(crate) const PSEUDO_FS: &[i64] = &[
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

pub(crate) fn is_pseudo_fs(fd: BorrowedFd<'_>) -> bool {
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
    pub skip: Option<SkipFn>,
}

/// Which entries (by archive name) an archive leaves out: see [`TarOptions::skip`].
pub(crate) type SkipFn = Box<dyn Fn(&str, &FileStat) -> bool + Send>;

/// Reads exactly `left` bytes: a file that shrinks while it is archived is padded with zeros, one that grows is cut.
pub(crate) struct Exactly<R> {
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

pub(crate) fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> TarWriter<W> {
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
pub(crate) fn xattr_names(fd: BorrowedFd<'_>) -> Vec<CString> {
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
pub(crate) fn xattr_value(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> Option<Vec<u8>> {
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
pub(crate) fn copy_one(
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

/// Pipes a tar made by `produce` into `consume` (the writer runs on a thread of its own).
pub(crate) fn piped<T>(
    produce: impl FnOnce(&mut dyn Write) -> Result<(), Error> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, Error>,
) -> Result<T, Error> {
    let (mut r, mut w) = std::io::pipe().map_err(io_err("pipe"))?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let res = produce(&mut w);
            drop(w);
            res
        });
        let got = consume(&mut r);
        drop(r);
        let wrote = writer.join().map_err(|_| Error::Internal("archive writer panicked".into()))?;
        match (got, wrote) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// Paths a container start creates as mount points when the image lacks them: not the program's work, so not part
/// of its layer (Docker keeps them in a layer of their own, the container's "init" layer).
const MOUNT_STUBS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", "proc", "sys", "dev", ".dockerenv"];

/// The empty mount points in the writable layer `upper` that a container's start created (the stubs above and the
/// targets `extra`), which the layers below (`lower`) do not have: relative paths, deepest first, so that a mount
/// target's empty parents come after it.
pub(crate) fn mount_stubs(upper: &Path, lower: &[PathBuf], extra: &[String]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let extra: Vec<String> = extra.iter().map(|e| e.trim_matches('/').to_string()).collect();
    let mut stubs: Vec<&str> = MOUNT_STUBS.to_vec();
    stubs.extend(extra.iter().map(String::as_str));
    stubs.sort_by_key(|s| std::cmp::Reverse(s.matches('/').count()));
    let mut found: Vec<String> = Vec::new();
    for rel in stubs {
        if rel.is_empty() || found.iter().any(|f| f == rel) {
            continue;
        }
        let p = upper.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if lower.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok()) {
            continue;
        }
        let empty = if meta.is_dir() {
            // Empty, or holding only stubs found already (deeper ones).
            std::fs::read_dir(&p)
                .map(|d| {
                    d.flatten().all(|e| {
                        let child = format!("{rel}/{}", e.file_name().to_string_lossy());
                        found.contains(&child)
                    })
                })
                .unwrap_or(false)
        } else {
            meta.is_file() && meta.size() == 0
        };
        if empty {
            found.push(rel.to_string());
        }
    }
    found
}
