//! The container's filesystem view, built inside its new mount namespace: the OCI `mounts`, device nodes, `pivot_root`,
//! masked and read-only paths. Everything here runs in the container's init process before it execs.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat, readlinkat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mkdirat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::cgroups::CgroupFs;
use crate::console::{self, Console};
use crate::{Error, Result, sys};

/// Flags and data parsed from fstab-style mount options.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Propagation flags, applied by a separate mount call.
    pub propagation: MsFlags,
    /// File-system specific options (`size=65536k,mode=755`).
    pub data: String,
    /// Mount attributes for the mount and every mount below it (`rro`, `rnosuid`, `rnodev`, `rnoexec`, as runc):
    /// `MOUNT_ATTR_*` bits, applied with `mount_setattr(AT_RECURSIVE)`.
    pub recursive_attrs: u64,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions { flags: MsFlags::empty(), propagation: MsFlags::empty(), data: String::new(), recursive_attrs: 0 }
    }
}

impl MountOptions {
    /// Whether this is a bind mount.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// The mount options [`parse_options`] knows (others go to the file system as data); `berth-runc features` lists them.
pub const OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "rnodev",
    "rnoexec",
    "rnosuid",
    "ro",
    "rprivate",
    "rro",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// Parses mount options as runc does: known words become flags, the rest is file-system data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for o in options {
        let (clear, flag) = match o.as_str() {
            // runc's: no flag.
            "defaults" => continue,
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nodev" => (false, MsFlags::MS_NODEV),
            "dev" => (true, MsFlags::MS_NODEV),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            "rro" | "rnosuid" | "rnodev" | "rnoexec" => {
                out.recursive_attrs |= match o.as_str() {
                    "rro" => libc::MOUNT_ATTR_RDONLY,
                    "rnosuid" => libc::MOUNT_ATTR_NOSUID,
                    "rnodev" => libc::MOUNT_ATTR_NODEV,
                    _ => libc::MOUNT_ATTR_NOEXEC,
                };
                continue;
            }
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                let mut p = match o.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                if o.starts_with('r') && o != "rw" {
                    p |= MsFlags::MS_REC;
                }
                out.propagation |= p;
                continue;
            }
            _ => {
                data.push(o.as_str());
                continue;
            }
        };
        if clear {
            out.flags.remove(flag);
        } else {
            out.flags.insert(flag);
        }
    }
    out.data = data.join(",");
    out
}

/// Resolves `unsafe_path` inside `root` the way the kernel would after a chroot to `root`: symlinks (absolute or
/// relative) are followed but can never lead outside `root`, and `..` stops at `root`. Missing components are kept
/// as they are, so the result may not exist yet.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::Start(format!(
                        "too many levels of symbolic links in {}",
                        unsafe_path.display()
                    )));
                }
                let target =
                    std::fs::read_link(&candidate).map_err(Error::io(format!("readlink {}", candidate.display())))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn do_mount(source: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: &str) -> Result<()> {
    let data = if data.is_empty() { None } else { Some(data) };
    mount(source, target, fstype, flags, data).map_err(|e| Error::Sys {
        what: format!(
            "mount {} on {} ({})",
            source.map(|s| s.display().to_string()).unwrap_or_default(),
            target.display(),
            fstype.unwrap_or("bind")
        ),
        source: e,
    })
}

/// Creates `path` as a directory (with parents) or as an empty file, for use as a mount point.
fn create_mount_point(path: &Path, is_dir: bool) -> Result<()> {
    if is_dir {
        std::fs::create_dir_all(path).map_err(Error::io(format!("mkdir {}", path.display())))
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(format!("mkdir {}", parent.display())))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(()),
            Err(_) => std::fs::File::create(path).map(drop).map_err(Error::io(format!("create {}", path.display()))),
        }
    }
}

/// What [`Root::open_target`] creates when the mount target is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Nothing,
    Dir,
    File,
}

/// The container's root file system, opened once its bind mount is in place: every mount target is resolved from
/// this descriptor, one component at a time, and mounted on by descriptor (`/proc/self/fd/N`, as runc does). Nothing
/// is looked up by path twice, so a directory swapped for a symlink (by another container sharing a volume, say)
/// cannot redirect a mount. berthd uses it too, to mount a stopped container's volumes for `cp`.
pub struct Root {
    fd: OwnedFd,
    /// The root's mount: symbolic links are followed only on it (the image's own file system).
    mnt_id: u64,
    path: PathBuf,
}

/// A resolved mount target: its descriptor (`O_PATH`) and where it is, relative to the root (symlinks resolved).
pub struct Target {
    pub fd: OwnedFd,
    pub resolved: PathBuf,
}

/// `/proc/self/fd/N` for a descriptor: a path that names exactly what the descriptor does (mount on it).
pub fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Root {
    /// Opens the directory `rootfs` (already mounted) as the root mount targets are resolved in.
    pub fn open(rootfs: &Path) -> Result<Root> {
        let fd = openat(AT_FDCWD, rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(Error::sys(format!("open {}", rootfs.display())))?;
        let mnt_id = sys::mount_id(fd.as_fd()).map_err(Error::sys(format!("statx {}", rootfs.display())))?;
        // The canonical path, as `/proc/self/fd/N` links show it.
        let path = std::fs::read_link(proc_fd(&fd)).map_err(Error::io(format!("readlink {}", rootfs.display())))?;
        Ok(Root { fd, mnt_id, path })
    }

    /// Resolves `dest` inside the root as the kernel would after a chroot (`..` stops at the root, absolute links
    /// start again from it), creating what is missing. Each component is opened with `O_NOFOLLOW` below the
    /// descriptor of its parent. A symbolic link is followed only where it lives on the root's own mount (the image):
    /// one inside a volume, a bind or a tmpfs — which other containers or the host can change while this one starts
    /// — makes the mount fail instead.
    pub fn open_target(&self, dest: &Path, create: Create) -> Result<Target> {
        let shown = dest.display();
        let fail = |what: String| Error::Start(format!("mount target {shown}: {what}"));
        let mut pending: Vec<std::ffi::OsString> = components(dest);
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(Error::io("dup"));
        let mut stack: Vec<(OwnedFd, std::ffi::OsString)> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                stack.pop();
                continue;
            }
            let cur = match stack.last() {
                Some((fd, _)) => dup(fd)?,
                None => dup(&self.fd)?,
            };
            let last = pending.is_empty();
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = match openat(&cur, part.as_os_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create != Create::Nothing => {
                    let made = if last && create == Create::File {
                        openat(
                            &cur,
                            part.as_os_str(),
                            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                            Mode::from_bits_truncate(0o644),
                        )
                        .map(drop)
                    } else {
                        mkdirat(&cur, part.as_os_str(), Mode::from_bits_truncate(0o755))
                    };
                    match made {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(fail(format!("create {}: {}", part.display(), e.desc()))),
                    }
                    openat(&cur, part.as_os_str(), flags, Mode::empty()).map_err(|e| {
                        fail(format!(
                            "{} was moved or replaced as it was created (another container sharing a volume?): {}",
                            part.display(),
                            e.desc()
                        ))
                    })?
                }
                Err(e) => return Err(fail(format!("open {}: {}", part.display(), e.desc()))),
            };
            let st = fstat(&fd).map_err(|e| fail(format!("stat {}: {}", part.display(), e.desc())))?;
            match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    let here: PathBuf = stack.iter().map(|(_, n)| n.as_os_str()).chain([part.as_os_str()]).collect();
                    let on = sys::mount_id(fd.as_fd()).map_err(|e| fail(format!("statx: {}", e.desc())))?;
                    if on != self.mnt_id {
                        return Err(fail(format!(
                            "/{} is a symbolic link inside a mount (a volume, bind or tmpfs): refusing to follow it, \
                             another container or the host may have swapped it in",
                            here.display()
                        )));
                    }
                    links += 1;
                    if links > 40 {
                        return Err(fail("too many levels of symbolic links".into()));
                    }
                    let target = readlinkat(&cur, part.as_os_str())
                        .map_err(|e| fail(format!("readlink /{}: {}", here.display(), e.desc())))?;
                    if Path::new(&target).is_absolute() {
                        stack.clear();
                    }
                    pending.extend(components(Path::new(&target)));
                }
                libc::S_IFDIR => stack.push((fd, part)),
                _ if last => stack.push((fd, part)),
                _ => return Err(fail(format!("{} is not a directory", part.display()))),
            }
        }
        let resolved: PathBuf = stack.iter().map(|(_, n)| n.as_os_str()).collect();
        let fd = match stack.pop() {
            Some((fd, _)) => fd,
            None => dup(&self.fd)?,
        };
        Ok(Target { fd, resolved })
    }

    /// After a mount on `target`: opens the new mount's root the same way and checks that it is a mount at the place
    /// the target was resolved to (it is not if the directory was moved away meanwhile).
    pub fn open_mounted(&self, dest: &Path, target: &Target) -> Result<OwnedFd> {
        let moved = || {
            Error::Start(format!(
                "mount target {} was moved or replaced while it was being mounted (another container sharing a \
                 volume?)",
                dest.display()
            ))
        };
        let top = self.open_target(dest, Create::Nothing).map_err(|_| moved())?;
        if top.resolved != target.resolved {
            return Err(moved());
        }
        let below = sys::mount_id(target.fd.as_fd()).map_err(Error::sys("statx"))?;
        let above = sys::mount_id(top.fd.as_fd()).map_err(Error::sys("statx"))?;
        let link = std::fs::read_link(proc_fd(&top.fd)).map_err(Error::io("readlink"))?;
        if below == above || link != self.path.join(&target.resolved) {
            return Err(moved());
        }
        Ok(top.fd)
    }
}

/// Mounts on a resolved target by its descriptor. The directory may have been deleted since it was resolved (by
/// another container sharing its volume): that fails the mount with a message that says so.
fn mount_on(
    target: &Target,
    dest: &Path,
    source: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    match do_mount(Some(source), &proc_fd(&target.fd), fstype, flags, data) {
        Err(Error::Sys { source: Errno::ENOENT, .. }) => Err(Error::Start(format!(
            "mount target {} was moved or replaced while it was being mounted (another container sharing a volume?)",
            dest.display()
        ))),
        r => r,
    }
}

/// A path's components as a stack to pop from (first component last); `.` and the root vanish.
fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// The mount attributes `mount_setattr` can set for these flags, and the flags it cannot.
fn mount_attrs(flags: MsFlags) -> (u64, MsFlags) {
    let mut attrs = 0;
    let mut rest = flags;
    for (f, a) in [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(f) {
            attrs |= a;
            rest.remove(f);
        }
    }
    (attrs, rest)
}

/// Applies a bind mount's flags to its mount (`top`, the new mount's root). `mount_setattr` only adds the attributes
/// asked for, so what the source has (`nosuid`, `nodev`, `noexec`, read-only) stays; where it cannot be used, a
/// remount carries those flags of the source along. `recursive` attributes go to every mount below too.
fn apply_bind_flags(top: &OwnedFd, dest: &Path, flags: MsFlags, recursive: u64) -> Result<()> {
    let (attrs, rest) = mount_attrs(flags);
    let mut done = attrs == 0;
    if attrs != 0 && rest.is_empty() {
        match sys::mount_setattr(top.as_fd(), false, attrs) {
            Ok(()) => done = true,
            Err(Errno::ENOSYS) => {}
            Err(e) => return Err(Error::Sys { what: format!("mount_setattr {}", dest.display()), source: e }),
        }
    }
    if !done || !rest.is_empty() {
        let st = fstatvfs(top).map_err(Error::sys(format!("statvfs {}", dest.display())))?;
        let mut kept = MsFlags::empty();
        for (s, m) in [
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if st.flags().contains(s) {
                kept |= m;
            }
        }
        do_mount(None, &proc_fd(top), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | kept, "")?;
    }
    if recursive != 0 {
        sys::mount_setattr(top.as_fd(), true, recursive).map_err(|e| {
            let why = if e == Errno::ENOSYS { " (needs Linux 5.12 or later)" } else { "" };
            Error::Start(format!("cannot make {} recursively read-only{why}: {}", dest.display(), e.desc()))
        })?;
    }
    Ok(())
}

/// Mounts one OCI mount inside the root.
fn mount_one(root: &Root, m: &Mount, cgroup: &CgroupFs, sysfs: Option<&Path>) -> Result<()> {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let top = if opts.is_bind() || typ == "bind" {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        let meta = std::fs::metadata(source).map_err(Error::io(format!("bind source {}", source.display())))?;
        let target = root.open_target(dest, if meta.is_dir() { Create::Dir } else { Create::File })?;
        let bind = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount_on(&target, dest, source, None, bind, "")?;
        let top = root.open_mounted(dest, &target)?;
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        apply_bind_flags(&top, dest, extra, opts.recursive_attrs)?;
        top
    } else {
        let target = root.open_target(dest, Create::Dir)?;
        if typ == "cgroup" || typ == "cgroup2" {
            match cgroup {
                CgroupFs::Unified => {
                    mount_on(&target, dest, Path::new("cgroup2"), Some("cgroup2"), opts.flags, "")?;
                }
                CgroupFs::V1 { binds, links } => mount_cgroup_v1(root, &target, dest, opts.flags, binds, links)?,
            }
        } else {
            let source = m.source().as_deref().unwrap_or(Path::new(typ));
            match (mount_on(&target, dest, source, Some(typ), opts.flags, &opts.data), sysfs) {
                // In a user namespace that does not own the network namespace (berthd made it), sysfs cannot be
                // mounted: the one the parent mounted for us in that network namespace is bound instead, read-only.
                (Err(Error::Sys { source: nix::Error::EPERM, .. }), Some(sysfs)) if typ == "sysfs" => {
                    mount_on(&target, dest, sysfs, None, MsFlags::MS_BIND, "")?;
                    let top = root.open_mounted(dest, &target)?;
                    apply_bind_flags(&top, dest, opts.flags, libc::MOUNT_ATTR_RDONLY)?;
                }
                (other, _) => other?,
            }
        }
        root.open_mounted(dest, &target)?
    };
    if !opts.propagation.is_empty() {
        do_mount(None, &proc_fd(&top), None, opts.propagation, "")?;
    }
    Ok(())
}

/// cgroup v1 as runc mounts it for Docker: a tmpfs (left writable, as runc leaves it) on `dest`, and in it the
/// container's own directory of each hierarchy (`binds`), with the mount's flags (read-only unless privileged), plus
/// the links of joined hierarchies (`cpu` → `cpu,cpuacct`). Nothing above the container's cgroup is visible.
fn mount_cgroup_v1(
    root: &Root,
    target: &Target,
    dest: &Path,
    flags: MsFlags,
    binds: &[(String, PathBuf)],
    links: &[(String, String)],
) -> Result<()> {
    let tmpfs_flags = flags - MsFlags::MS_RDONLY;
    mount_on(target, dest, Path::new("tmpfs"), Some("tmpfs"), tmpfs_flags, "mode=755")?;
    let top = root.open_mounted(dest, target)?;
    let bind_flags = flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    for (name, source) in binds {
        let sub = dest.join(name);
        let t = root.open_target(&sub, Create::Dir)?;
        mount_on(&t, &sub, source, None, MsFlags::MS_BIND | MsFlags::MS_REC, "")?;
        let sub_top = root.open_mounted(&sub, &t)?;
        apply_bind_flags(&sub_top, &sub, bind_flags, 0)?;
    }
    for (link, to) in links {
        nix::unistd::symlinkat(to.as_str(), &top, link.as_str())
            .map_err(Error::sys(format!("symlink {}/{link}", dest.display())))?;
    }
    Ok(())
}

/// The device nodes every container gets, whatever its spec says (as runc does).
fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

/// Makes a device node at `path` inside the root, by descriptor: the parent directory is resolved as mount targets
/// are ([`Root::open_target`]: a symlink swapped into a shared volume cannot redirect it), the node is made with
/// `mknodat` below that descriptor and then opened (`O_PATH | O_NOFOLLOW`, checked to be the device just made), and its
/// mode and owner are set on that descriptor, never by path.
#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &Root,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let shown = path.display();
    let name = path.file_name().ok_or_else(|| Error::Start(format!("device {shown}: not a file path")))?;
    let parent = root.open_target(path.parent().unwrap_or(Path::new("/")), Create::Dir)?;
    let _ = nix::unistd::unlinkat(&parent.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    match nix::sys::stat::mknodat(&parent.fd, name, kind, Mode::from_bits_truncate(mode), makedev(major, minor)) {
        Ok(()) => {}
        // In a user namespace no device node can be made: the host's is bound on an empty file (as runc does), with
        // the host's mode and owner. The file is made and mounted on by descriptor too.
        Err(nix::Error::EPERM) => {
            let file = openat(
                &parent.fd,
                name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(Error::sys(format!("create {shown}")))?;
            return do_mount(Some(path), &proc_fd(&file), None, MsFlags::MS_BIND, "");
        }
        Err(e) => return Err(Error::Sys { what: format!("mknod {shown}"), source: e }),
    }
    let node = openat(&parent.fd, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys(format!("open {shown}")))?;
    let st = fstat(&node).map_err(Error::sys(format!("stat {shown}")))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != kind || st.st_rdev != makedev(major, minor) {
        return Err(Error::Start(format!("device {shown} was replaced while it was made")));
    }
    // mknod is subject to the umask: set the mode exactly, on the node the descriptor holds (`/proc/self/fd/N` of an
    // O_PATH descriptor names that inode; chmod does not follow it anywhere else).
    std::fs::set_permissions(proc_fd(&node), std::fs::Permissions::from_mode(mode))
        .map_err(Error::io(format!("chmod {shown}")))?;
    nix::unistd::fchownat(&node, "", Some(uid.into()), Some(gid.into()), nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .map_err(Error::sys(format!("chown {shown}")))
}

fn create_devices(root: &Root, devices: &[LinuxDevice]) -> Result<()> {
    for (path, major, minor) in default_devices() {
        if !devices.iter().any(|d| d.path() == Path::new(path)) {
            make_device(root, Path::new(path), SFlag::S_IFCHR, major, minor, 0o666, 0, 0)?;
        }
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        make_device(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    // The links too, below the descriptor of the container's /dev.
    let dev = root.open_target(Path::new("/dev"), Create::Dir)?;
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    for (link, target) in links {
        let _ = nix::unistd::unlinkat(&dev.fd, link, nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(target, &dev.fd, link).map_err(Error::sys(format!("symlink /dev/{link}")))?;
    }
    Ok(())
}

/// Bind-mounts the terminal at `slave` (a `/dev/pts/N` of the container) onto `/dev/console`, as runc does. Runs after
/// `pivot_root`.
fn mount_console(slave: &str) -> Result<()> {
    let dest = Path::new("/dev/console");
    create_mount_point(dest, false)?;
    do_mount(Some(Path::new(slave)), dest, None, MsFlags::MS_BIND, "")
}

fn mask_path(path: &str) -> Result<()> {
    let p = Path::new(path);
    match std::fs::metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => do_mount(Some(Path::new("tmpfs")), p, Some("tmpfs"), MsFlags::MS_RDONLY, ""),
        Ok(_) => do_mount(Some(Path::new("/dev/null")), p, None, MsFlags::MS_BIND, ""),
    }
}

fn readonly_path(path: &str) -> Result<()> {
    let p = Path::new(path);
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    do_mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, "")?;
    do_mount(None, p, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC, "")
}

/// Whether `path` is a character device (used to check for `/dev/null` before masking).
pub fn is_char_device(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.file_type().is_char_device()).unwrap_or(false)
}

/// Builds the container's root: mounts, devices, `pivot_root`, the console, masked and read-only paths, read-only root.
/// With `console`, a terminal for the spec's process is opened from the container's `/dev/ptmx` once the root is in
/// place, mounted on `/dev/console` and returned. Runs in the init process, inside its new mount namespace, before any
/// privilege is dropped.
/// `sysfs`: a sysfs of the container's network namespace that the parent mounted, bound where the container cannot
/// mount its own (in a user namespace that does not own its network namespace).
pub fn setup_rootfs(
    spec: &Spec,
    rootfs: &Path,
    console: bool,
    cgroup: &CgroupFs,
    sysfs: Option<&Path>,
) -> Result<Option<Console>> {
    let linux = spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(p) => parse_options(&[p.to_string()]).propagation,
        None => MsFlags::MS_REC | MsFlags::MS_SLAVE,
    };
    do_mount(None, Path::new("/"), None, propagation, "")?;
    do_mount(Some(rootfs), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, "")?;
    let root = Root::open(rootfs)?;
    let mut dev_is_tmpfs = false;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
        mount_one(&root, m, cgroup, sysfs)?;
    }
    if dev_is_tmpfs {
        create_devices(&root, linux.and_then(|l| l.devices().as_deref()).unwrap_or_default())?;
    }
    drop(root);
    // pivot_root(".", ".") then detaching the old root (stacked on top) avoids needing a put_old directory.
    nix::unistd::chdir(rootfs).map_err(Error::sys(format!("chdir {}", rootfs.display())))?;
    sys::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH).map_err(Error::sys("unmount old root"))?;
    nix::unistd::chdir("/").map_err(Error::sys("chdir /"))?;
    let console = match spec.process() {
        Some(process) if console => {
            let c = console::open_pty(process)?;
            mount_console(&c.path)?;
            Some(c)
        }
        _ => None,
    };
    if let Some(linux) = linux {
        // Sysctls go through the container's own /proc, so they reach its network and IPC namespaces; before
        // /proc/sys turns read-only below (as runc orders it).
        for (k, v) in linux.sysctl().iter().flatten() {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(Error::io(format!("sysctl {k}={v}")))?;
        }
        for p in linux.masked_paths().as_deref().unwrap_or_default() {
            mask_path(p)?;
        }
        for p in linux.readonly_paths().as_deref().unwrap_or_default() {
            readonly_path(p)?;
        }
    }
    // Docker creates a missing working directory (`run -w /new/dir`), owned by root, before the root may turn
    // read-only. (An exec with a missing `-w` fails instead, as with Docker: this runs for a container's init only.)
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()).filter(|c| !c.as_os_str().is_empty() && !c.exists()) {
        let _ = std::fs::create_dir_all(cwd);
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        do_mount(None, Path::new("/"), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, "")?;
    }
    Ok(console)
}

/// The owner of `path` (for tests and checks).
pub fn owner(path: &Path) -> Option<(u32, u32)> {
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_and_data() {
        let o = parse_options(&["nosuid".into(), "strictatime".into(), "mode=755".into(), "size=65536k".into()]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = parse_options(&["rbind".into(), "ro".into(), "rprivate".into()]);
        assert!(o.is_bind());
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(o.flags.is_empty());
        // Every option `features` lists is one of ours, never file-system data.
        for opt in OPTIONS {
            assert_eq!(parse_options(&[opt.to_string()]).data, "", "{opt}");
        }
    }

    #[test]
    fn targets_resolve_inside_the_root_and_are_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_path = dir.path();
        std::fs::create_dir_all(root_path.join("tmp")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", root_path.join("t")).expect("symlink");
        std::os::unix::fs::symlink("../../../tmp/deep", root_path.join("tmp/up")).expect("symlink");
        std::os::unix::fs::symlink("/", root_path.join("escape")).expect("symlink");
        let root = Root::open(root_path).expect("open");
        let t = root.open_target(Path::new("/t/x/y"), Create::Dir).expect("resolve");
        assert_eq!(t.resolved, Path::new("tmp/x/y"));
        assert!(root_path.join("tmp/x/y").is_dir());
        let t = root.open_target(Path::new("/tmp/up/f"), Create::File).expect("resolve");
        assert_eq!(t.resolved, Path::new("tmp/deep/f"));
        assert!(root_path.join("tmp/deep/f").is_file());
        let t = root.open_target(Path::new("/escape/../../etc/hosts"), Create::File).expect("resolve");
        assert_eq!(t.resolved, Path::new("etc/hosts"));
        assert!(root_path.join("etc/hosts").is_file());
        assert!(root.open_target(Path::new("/nope"), Create::Nothing).is_err());
        std::os::unix::fs::symlink("loop", root_path.join("loop")).expect("symlink");
        assert!(root.open_target(Path::new("/loop/x"), Create::Dir).is_err());
    }

    #[test]
    fn recursive_options() {
        let o = parse_options(&["rbind".into(), "ro".into(), "rro".into(), "rnosuid".into()]);
        assert_eq!(o.recursive_attrs, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert!(o.data.is_empty());
    }

    #[test]
    fn secure_join_stays_inside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::os::unix::fs::symlink("/", root.join("escape")).expect("symlink");
        std::os::unix::fs::symlink("../../../../tmp", root.join("etc/up")).expect("symlink");
        assert_eq!(secure_join(root, Path::new("/escape/etc/passwd")).expect("join"), root.join("etc/passwd"));
        assert_eq!(secure_join(root, Path::new("/etc/up/x")).expect("join"), root.join("tmp/x"));
        assert_eq!(secure_join(root, Path::new("/../../a")).expect("join"), root.join("a"));
        std::os::unix::fs::symlink("loop", root.join("loop")).expect("symlink");
        assert!(secure_join(root, Path::new("/loop")).is_err());
    }
}
