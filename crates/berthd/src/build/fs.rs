//! The builder's file system work (receiving the context is in `context.rs`, re-exported here): `COPY`/`ADD` into a
//! step's writable layer,
//! and a step's writable layer turned into an image layer.
//!
//! A step's root is an overlay of the stage's layers under a fresh upper directory. `COPY` mounts it (and the roots
//! of other stages it copies from) in a private mount namespace of a thread of its own, so nothing can stay mounted
//! on the host when a step fails; sources and destinations are resolved with `RESOLVE_IN_ROOT` semantics, so symlinks
//! in the context or in the image never lead outside them. The upper directory is then archived with its overlay
//! whiteouts as `.wh.` entries and imported into the store like a pulled layer.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;
use berth_runtime::shim::IdMap;
use berth_store::{ChainId, Layer, Store};
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};
use sha2::{Digest as _, Sha256};

use crate::archive::primitives::{
    TarOptions, TarWriter, in_private_namespace, mount_overlay, mount_stubs, open_in_root, piped, sys,
};

pub use super::context::*;

pub(super) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// Lexically cleans a path inside a root: `a/../b` → `/b`; `..` above the root is `None`.
pub fn clean_in_root(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Lexically cleans a path, `..` above the root staying at the root (as Go's `filepath.Clean("/" + p)`).
pub use crate::mounts::clean as clean_abs;

/// Go's `filepath.Match` for one path component: `*`, `?`, `[a-z]`, `[^x]`, `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed including ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('^') | Some('!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' {
                i += 1;
                lo = *p.get(i)?;
            }
            let mut hi = lo;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&c| c != ']') {
                hi = p[i + 2];
                if hi == '\\' {
                    hi = *p.get(i + 3)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(&p[1..], n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, len))) => go(&p[1 + len..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Opens a directory by path (the context, a mounted root).
pub fn open_dir(path: &Path) -> Result<OwnedFd, Error> {
    openat(nix::fcntl::AT_FDCWD, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::Internal(format!("open {}: {}", path.display(), e.desc())))
}

fn list_dir(fd: BorrowedFd<'_>) -> Result<Vec<std::ffi::OsString>, Error> {
    use std::os::unix::ffi::OsStrExt;
    let dup = fd.try_clone_to_owned().map_err(io("dup"))?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(sys("read directory"))?;
    let mut names = Vec::new();
    for e in dir.iter() {
        let e = e.map_err(sys("read directory"))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(std::ffi::OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The paths (absolute in `root`) a source names: itself, or what its wildcards match, sorted.
pub fn expand_source(root: BorrowedFd<'_>, src: &str) -> Result<Vec<String>, Error> {
    let clean = clean_abs(src);
    if !has_wildcards(&clean) {
        return Ok(vec![clean]);
    }
    let mut found = vec![String::new()];
    for comp in clean.trim_start_matches('/').split('/') {
        let mut next = Vec::new();
        for base in &found {
            if !has_wildcards(comp) {
                next.push(format!("{base}/{comp}"));
                continue;
            }
            let dir = if base.is_empty() { "/" } else { base.as_str() };
            let Ok(fd) = open_in_root(root, dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else { continue };
            // Names that are not UTF-8 cannot match a pattern of the Dockerfile (which is text).
            for name in list_dir(fd.as_fd())?.into_iter().filter_map(|n| n.into_string().ok()) {
                if glob_match(comp, &name) {
                    next.push(format!("{base}/{name}"));
                }
            }
        }
        found = next;
    }
    // Literal components after a wildcard may name nothing.
    found.retain(|p| open_in_root(root, p, OFlag::O_PATH).is_ok());
    found.sort();
    Ok(found)
}

/// A source opened for copying: its directory, its name there (empty: the directory itself), its stat.
pub struct Located {
    pub dir: OwnedFd,
    pub name: String,
    pub st: FileStat,
}

impl Located {
    pub fn is_dir(&self) -> bool {
        self.st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Opens `path` in `root`, following symlinks (also a final one) inside `root` only, as Docker's
/// `FollowSymlinkInScope` does for `COPY` sources.
pub fn locate(root: BorrowedFd<'_>, root_path: &Path, path: &str) -> Result<Option<Located>, Error> {
    let resolved = match berth_runtime::mounts::secure_join(root_path, Path::new(path)) {
        Ok(p) => p,
        Err(e) => return Err(Error::Internal(format!("resolve {path}: {e}"))),
    };
    let rel = match resolved.strip_prefix(root_path) {
        Ok(r) => format!("/{}", r.display()),
        Err(_) => return Ok(None),
    };
    if rel == "/" {
        let Ok(fd) = open_in_root(root, "/", OFlag::O_RDONLY | OFlag::O_DIRECTORY) else { return Ok(None) };
        let st = fstat(&fd).map_err(sys("stat"))?;
        return Ok(Some(Located { dir: fd, name: String::new(), st }));
    }
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", &rel));
    let parent = if parent.is_empty() { "/" } else { parent };
    let Ok(dir) = open_in_root(root, parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else { return Ok(None) };
    match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            let fd = openat(
                &dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("open"))?;
            Ok(Some(Located { dir: fd, name: String::new(), st }))
        }
        Ok(st) => Ok(Some(Located { dir, name: name.to_string(), st })),
        Err(_) => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Content hashes (cache keys)

/// (device, inode, size, mtime, ctime) of a file: while they stay, so does its content.
pub type FileIdentity = (u64, u64, i64, i64, i64);

/// A file's [`FileIdentity`].
pub fn identity(st: &FileStat) -> FileIdentity {
    (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
    )
}

/// Digests of files already read in this build, by identity (for a kept context, also those computed when its
/// files were received: see `kept.rs`).
#[derive(Default)]
pub struct HashCache {
    files: Mutex<HashMap<FileIdentity, String>>,
}

impl HashCache {
    /// A cache that knows these digests already.
    pub fn with_known(known: HashMap<FileIdentity, String>) -> HashCache {
        HashCache { files: Mutex::new(known) }
    }

    fn known(&self, st: &FileStat) -> Option<String> {
        self.files.lock().ok().and_then(|m| m.get(&identity(st)).cloned())
    }

    fn file(&self, fd: OwnedFd, st: &FileStat) -> Result<String, Error> {
        let mut f = std::fs::File::from(fd);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(io("read a source file"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let d = hex::encode(h.finalize());
        if let Ok(mut m) = self.files.lock() {
            m.insert(identity(st), d.clone());
        }
        Ok(d)
    }

    /// Feeds `h` with what a copy of `loc` depends on: names, types, permission bits, sizes, contents and link
    /// targets of everything below it (not owners, which a copy replaces, nor times).
    pub fn hash_tree(&self, loc: &Located, h: &mut Sha256) -> Result<(), Error> {
        self.hash_entry(loc.dir.as_fd(), std::ffi::OsStr::new(&loc.name), &loc.st, b"", h)
    }

    fn hash_entry(
        &self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::OsStr,
        st: &FileStat,
        rel: &[u8],
        h: &mut Sha256,
    ) -> Result<(), Error> {
        use std::os::unix::ffi::OsStrExt;
        let kind = st.st_mode & libc::S_IFMT;
        h.update(rel);
        h.update(format!("\0{:o}\0{:o}\0", kind, st.st_mode & 0o7777).as_bytes());
        match kind {
            libc::S_IFREG => {
                let digest = match self.known(st) {
                    Some(d) => d,
                    None => {
                        let fd =
                            openat(dir, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                                .map_err(sys("open"))?;
                        self.file(fd, st)?
                    }
                };
                h.update(digest.as_bytes());
            }
            libc::S_IFLNK => {
                let t = nix::fcntl::readlinkat(dir, name).map_err(sys("readlink"))?;
                h.update(t.as_encoded_bytes());
            }
            libc::S_IFDIR => {
                let fd = if name.is_empty() {
                    dir.try_clone_to_owned().map_err(io("dup"))?
                } else {
                    openat(
                        dir,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(sys("open"))?
                };
                for child in list_dir(fd.as_fd())? {
                    let cst = fstatat(&fd, child.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("stat"))?;
                    let mut sub = rel.to_vec();
                    sub.push(b'/');
                    sub.extend_from_slice(child.as_bytes());
                    self.hash_entry(fd.as_fd(), &child, &cst, &sub, h)?;
                }
            }
            _ => h.update(format!("{}", st.st_rdev).as_bytes()),
        }
        h.update(b"\n");
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Copies

/// Where a copy reads from.
#[derive(Debug, Clone)]
pub enum SourceRoot {
    /// A directory of the host (the context), used as it is.
    Dir(PathBuf),
    /// An image's or a stage's layers (top first), mounted read-only for the copy.
    Layers(Vec<PathBuf>),
}

/// One `COPY`/`ADD`, with everything expanded.
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub root: SourceRoot,
    /// Source paths in the root (wildcards allowed), and local files to add as they are (ADD URLs, heredocs):
    /// (file on the host, name to give it).
    pub sources: Vec<String>,
    pub files: Vec<(PathBuf, String)>,
    /// Absolute destination in the step's root.
    pub dest: String,
    /// `--chown` (resolved in the step's root) and `--chmod`.
    pub chown: Option<String>,
    pub chmod: Option<u32>,
    /// ADD: local tar archives are unpacked at the destination.
    pub unpack_archives: bool,
    /// What the error messages call the instruction (`COPY`, `ADD`).
    pub what: &'static str,
    /// Sources come from the build context (their errors say so).
    pub from_context: bool,
}

/// The writable layer of a step and where it is mounted.
pub struct StepDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub mnt: PathBuf,
    pub src: PathBuf,
}

impl StepDirs {
    pub fn create(base: &Path) -> Result<StepDirs, Error> {
        let dirs = StepDirs {
            upper: base.join("upper"),
            work: base.join("work"),
            mnt: base.join("mnt"),
            src: base.join("src"),
        };
        for d in [&dirs.upper, &dirs.work, &dirs.mnt, &dirs.src] {
            std::fs::create_dir_all(d).map_err(io(format!("mkdir {}", d.display())))?;
        }
        Ok(dirs)
    }
}

fn not_found(job: &CopyJob, src: &str) -> Error {
    if job.from_context {
        Error::InvalidArgument(format!(
            "{} failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
            job.what,
            src.trim_start_matches('/')
        ))
    } else {
        Error::InvalidArgument(format!("{} failed: stat {src}: file does not exist", job.what))
    }
}

/// Creates the directories of `path` (absolute in `root`) that are missing, owned by `owner`, mode 0755.
fn mkdir_all(root: BorrowedFd<'_>, path: &str, owner: (u32, u32)) -> Result<(), Error> {
    let mut cur = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let parent = if cur.is_empty() { "/".to_string() } else { cur.clone() };
        cur = format!("{cur}/{comp}");
        if open_in_root(root, &cur, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok() {
            continue;
        }
        let dir = open_in_root(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| {
            Error::InvalidArgument(format!("cannot create {cur}: {parent} is not a directory ({})", e.desc()))
        })?;
        match nix::sys::stat::mkdirat(&dir, comp, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::InvalidArgument(format!("cannot create {cur}: {}", e.desc()))),
        }
        let made = open_in_root(root, &cur, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| Error::InvalidArgument(format!("cannot create {cur}: {}", e.desc())))?;
        nix::unistd::fchown(&made, Some(owner.0.into()), Some(owner.1.into())).map_err(sys("chown"))?;
        nix::sys::stat::fchmod(&made, Mode::from_bits_truncate(0o755)).map_err(sys("chmod"))?;
    }
    Ok(())
}

/// Whether an `ADD` source is an archive to unpack: a file that holds a tar, plain or compressed as `tar` writes it
/// (gzip, bzip2, xz, zstd); anything else (a compressed file that is no tar included) is copied as it is, as Docker
/// does. Read with `pread`, so the descriptor's offset stays at the start for the extraction.
fn is_archive(file: &std::fs::File) -> bool {
    struct At<'f>(&'f std::fs::File, u64);
    impl Read for At<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = std::os::unix::fs::FileExt::read_at(self.0, buf, self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    berth_store::is_tar_archive(At(file, 0))
}

/// Runs a copy into the step's writable layer (`dirs.upper` over `lower`).
pub fn copy(lower: Vec<PathBuf>, dirs: &StepDirs, job: CopyJob) -> Result<(), Error> {
    let (upper, work, mnt, src_mnt) = (dirs.upper.clone(), dirs.work.clone(), dirs.mnt.clone(), dirs.src.clone());
    in_private_namespace(move || {
        mount_overlay(&lower, Some((&upper, &work)), &mnt)?;
        let src_path = match &job.root {
            SourceRoot::Dir(p) => p.clone(),
            SourceRoot::Layers(l) => {
                mount_overlay(l, None, &src_mnt)?;
                src_mnt.clone()
            }
        };
        let root = open_dir(&mnt)?;
        let src_root = open_dir(&src_path)?;
        copy_in(&job, root.as_fd(), &mnt, src_root.as_fd(), &src_path)
    })
}

fn copy_in(
    job: &CopyJob,
    root: BorrowedFd<'_>,
    root_path: &Path,
    src: BorrowedFd<'_>,
    src_path: &Path,
) -> Result<(), Error> {
    let owner = match job.chown.as_deref().filter(|c| !c.is_empty()) {
        Some(spec) => {
            let u = berth_runtime::user::resolve(root_path, spec, &[]).map_err(|e| {
                Error::InvalidArgument(format!(
                    "{} failed: unable to convert uid/gid chown string to host mapping: {e}",
                    job.what
                ))
            })?;
            (u.uid, u.gid)
        }
        None => (0, 0),
    };
    let mut located = Vec::new();
    for s in &job.sources {
        let paths = expand_source(src, s)?;
        if paths.is_empty() {
            return Err(if job.from_context {
                Error::InvalidArgument(format!(
                    "{} failed: no source files were specified (no file in the build context matches {})",
                    job.what,
                    s.trim_start_matches('/')
                ))
            } else {
                not_found(job, s)
            });
        }
        for p in paths {
            let loc = locate(src, src_path, &p)?.ok_or_else(|| not_found(job, &p))?;
            located.push((p, loc));
        }
    }
    let count = located.len() + job.files.len();
    let dest_dir_wanted = job.dest.ends_with('/') || job.dest.ends_with("/.");
    let dest = clean_abs(&job.dest);
    if count > 1 && !dest_dir_wanted {
        return Err(Error::InvalidArgument(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            job.what
        )));
    }
    let dest_is_dir = dest_dir_wanted
        || open_in_root(root, &dest, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok()
        || (count == 1 && located.first().is_some_and(|(_, l)| l.is_dir()));
    // (directory to extract into, name of a single file there)
    let (into, rename) = if dest_is_dir {
        (dest.clone(), None)
    } else {
        let (p, n) = dest.rsplit_once('/').unwrap_or(("", &dest));
        (if p.is_empty() { "/".to_string() } else { p.to_string() }, Some(n.to_string()))
    };
    mkdir_all(root, &into, owner)?;
    let extract_opts = berth_store::ExtractOptions {
        overlay_whiteouts: false,
        root_metadata: false,
        no_overwrite_dir_non_dir: false,
        owner: Some(owner),
        host_ids: None,
    };
    let extract_into = |r: &mut dyn Read, dir: &str| -> Result<(), Error> {
        let rootfd = root.try_clone_to_owned().map_err(io("dup"))?;
        berth_store::extract(r, rootfd, Path::new(dir.trim_start_matches('/')), extract_opts)
            .map(drop)
            .map_err(|e| Error::InvalidArgument(format!("{} failed: {e}", job.what)))
    };
    let tar_opts = || TarOptions { owner: Some(owner), mode: job.chmod, ..Default::default() };
    for (p, loc) in located {
        if loc.is_dir() {
            let fd = loc.dir;
            piped(
                |w| {
                    let mut t = TarWriter::with_options(w, tar_opts());
                    t.add_children(fd, "")?;
                    t.finish()
                },
                |r| extract_into(r, &into),
            )?;
            continue;
        }
        let base = p.rsplit('/').next().unwrap_or("").to_string();
        if job.unpack_archives && loc.st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let fd = openat(
                &loc.dir,
                loc.name.as_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("open"))?;
            let f = std::fs::File::from(fd);
            if is_archive(&f) {
                // An archive's content lands in the destination directory with the archive's owners, unpacked by
                // the store's extractor as `import`, `load` and `cp` do.
                mkdir_all(root, &dest, owner)?;
                let rootfd = root.try_clone_to_owned().map_err(io("dup"))?;
                let opts = berth_store::ExtractOptions { owner: None, ..extract_opts };
                berth_store::extract(f, rootfd, Path::new(dest.trim_start_matches('/')), opts)
                    .map_err(|e| Error::InvalidArgument(format!("ADD failed: unpack {}: {e}", base)))?;
                continue;
            }
        }
        let name = rename.clone().unwrap_or(base);
        piped(
            |w| {
                let mut t = TarWriter::with_options(w, tar_opts());
                t.add(loc.dir.as_fd(), std::ffi::OsStr::new(&loc.name), &loc.st, name.clone())?;
                t.finish()
            },
            |r| extract_into(r, &into),
        )?;
    }
    for (file, name) in &job.files {
        let name = rename.clone().unwrap_or_else(|| name.clone());
        let parent = file.parent().unwrap_or(Path::new("/"));
        let fname = file.file_name().map(|f| f.to_os_string()).unwrap_or_default();
        let dir = open_dir(parent)?;
        let st = fstatat(&dir, fname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("stat"))?;
        piped(
            |w| {
                let mut t = TarWriter::with_options(w, tar_opts());
                t.add(dir.as_fd(), &fname, &st, name.clone())?;
                t.finish()
            },
            |r| extract_into(r, &into),
        )?;
    }
    Ok(())
}

/// Creates the directory `path` (absolute) in the step's writable layer if the stage's root does not have it
/// (`WORKDIR`). Returns whether it was missing.
pub fn ensure_dir(lower: Vec<PathBuf>, dirs: &StepDirs, path: String, owner: Option<String>) -> Result<bool, Error> {
    let (upper, work, mnt) = (dirs.upper.clone(), dirs.work.clone(), dirs.mnt.clone());
    in_private_namespace(move || {
        mount_overlay(&lower, Some((&upper, &work)), &mnt)?;
        let root = open_dir(&mnt)?;
        if open_in_root(root.as_fd(), &path, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok() {
            return Ok(false);
        }
        let owner = match owner.filter(|o| !o.is_empty()) {
            Some(spec) => berth_runtime::user::resolve(&mnt, &spec, &[]).map(|u| (u.uid, u.gid)).unwrap_or((0, 0)),
            None => (0, 0),
        };
        mkdir_all(root.as_fd(), &path, owner)?;
        Ok(true)
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Commits

/// Removes from `upper` the empty mount points a step's container got (its mounts' targets among them) that the
/// layers below do not have.
pub fn remove_mount_stubs(upper: &Path, lower: &[PathBuf], extra: &[String]) {
    for rel in mount_stubs(upper, lower, extra) {
        let p = upper.join(rel);
        let _ = if p.is_dir() { std::fs::remove_dir(&p) } else { std::fs::remove_file(&p) };
    }
}

/// Turns a step's writable layer into a layer of the store on top of `parent` (the directory itself moves into the
/// store); `None` when the step changed nothing.
/// `unshift`: the step ran in a remapped container, whose upper directory holds host IDs; they become the
/// container's before the directory becomes the layer.
pub fn commit(
    store: &Store,
    upper: &Path,
    parent: Option<&ChainId>,
    unshift: Option<IdMap>,
) -> Result<Option<Layer>, Error> {
    let upper_fd = open_dir(upper)?;
    if list_dir(upper_fd.as_fd())?.is_empty() {
        return Ok(None);
    }
    if let Some(m) = unshift {
        crate::userns::chown_tree(upper, |u, g| m.to_container(u, g))?;
    }
    piped(
        |w| {
            let mut t = TarWriter::with_options(w, TarOptions { overlay_diff: true, ..Default::default() });
            t.add_children(upper_fd, "")?;
            t.finish()
        },
        |r| store.adopt_layer(upper, r, parent).map(Some).map_err(Error::from),
    )
}

/// The digest of a JSON value's text, hex (cache keys).
pub fn key_of(parts: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(parts.to_string().as_bytes()))
}

/// Hashes the sources of a copy from the context (for its cache key): each source's matches, in order.
pub fn hash_context_sources(
    ctx: &Path,
    sources: &[String],
    cache: &HashCache,
) -> Result<BTreeMap<String, String>, Error> {
    let root = open_dir(ctx)?;
    let mut out = BTreeMap::new();
    for s in sources {
        let mut h = Sha256::new();
        for p in expand_source(root.as_fd(), s)? {
            h.update(p.as_bytes());
            if let Some(loc) = locate(root.as_fd(), ctx, &p)? {
                cache.hash_tree(&loc, &mut h)?;
            } else {
                h.update(b"\0missing");
            }
        }
        out.insert(s.clone(), hex::encode(h.finalize()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_in_root("a/../b/./c"), Some("/b/c".into()));
        assert_eq!(clean_in_root("../x"), None);
        assert_eq!(clean_abs("../x"), "/x");
        assert_eq!(clean_abs("/"), "/");
    }
}
