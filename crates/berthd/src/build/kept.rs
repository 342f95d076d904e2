//! Kept build contexts: Berth's own context protocol (`berth_api::build_context`, used by `berth build` and
//! `berth compose build`; the classic tar of `POST /build` stays for the docker CLI and the SDKs).
//!
//! Each context key (the client's machine and context directory) has a directory `<data-root>/build/contexts/<sha256
//! of the key>/` with `tree/` (the context's files as last received), `index.json` (per path: the client's `lstat`
//! fields as listed, the listing time, and for a regular file the SHA-256 of its content, computed once while it
//! was received, with the identity of the kept file) and `lock`.
//!
//! - A file whose listed fields (type, size, mode, mtime, ctime, inode, owner, link target) equal the index's is
//!   not sent again, unless it changed too close to the listing that recorded it for its times to vouch for its
//!   content (`build_context::is_racy`): then it is sent and hashed again.
//! - The index is removed before the tree changes and written (`rename`) once it matches the tree again: a transfer
//!   cut short leaves no index, and the next build sends everything. An index from another boot is not trusted
//!   (the tree's writes were not synced).
//! - A build holds `lock` (`flock`) from the transfer to its end: builds of one context run one after the other.
//! - Paths come from the client: checked (`Manifest::check`: clean, relative, each parent a directory listed
//!   before it), and every write is below a parent opened with `RESOLVE_IN_ROOT`, with `O_NOFOLLOW`/`O_EXCL`.
//! - `builder prune` (and so `system prune`) removes every kept context no build holds; a new context removes those
//!   unused for a week, and the least recently used beyond 32.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_api::build_context::{Entry, Kind, Manifest, Need, is_racy};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, UtimensatFlags, fstat, fstatat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::fs::{FileIdentity, identity, io, open_dir};
use crate::archive::primitives::{open_in_root, sys};
use crate::error::Error;

/// The largest file list a client may send.
const LIST_MAX: u64 = 64 << 20;
/// Kept contexts unused for this long go when a new one is made.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many kept contexts (the least recently used go first).
const MAX_KEPT: usize = 32;

fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

/// Where kept contexts live.
pub fn contexts_dir(data_root: &Path) -> PathBuf {
    data_root.join("build").join("contexts")
}

/// Checks a context key (`berthcontext`, `key`): a short token of the client's making.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > 256 || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        return Err(bad(format!("invalid build context key {key:?}")));
    }
    Ok(())
}

fn context_dir(data_root: &Path, key: &str) -> PathBuf {
    contexts_dir(data_root).join(hex::encode(Sha256::digest(key.as_bytes())))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rec {
    e: Entry,
    /// The listing the content was received with.
    listed: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sha256: String,
    /// The kept file's identity once written (its digest is valid while it stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local: Option<FileIdentity>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    boot: String,
    entries: BTreeMap<String, Rec>,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The index, if there is one of this boot.
fn load_index(dir: &Path) -> Option<Index> {
    let text = std::fs::read(dir.join("index.json")).ok()?;
    let idx: Index = serde_json::from_slice(&text).ok()?;
    (idx.boot == boot_id() && !idx.boot.is_empty()).then_some(idx)
}

fn write_index(dir: &Path, idx: &Index) -> Result<(), Error> {
    let tmp = dir.join("index.json.tmp");
    let bytes = serde_json::to_vec(idx).map_err(|e| Error::Internal(format!("kept context index: {e}")))?;
    std::fs::write(&tmp, bytes).map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, dir.join("index.json")).map_err(io("rename the kept context index"))
}

/// Whether the kept copy of `e` can stand for it: same listed fields, and for a regular file a digest taken when its
/// times could vouch for its content.
fn unchanged(rec: &Rec, e: &Entry) -> bool {
    rec.e == *e && (e.kind != Kind::File || (rec.local.is_some() && !is_racy(&rec.e, rec.listed)))
}

/// `POST /berth/build/context`: which regular files of the list the kept context lacks (all of them when there is
/// none). Reads only: the build request is what changes the kept context, under its lock.
pub fn need(data_root: &Path, key: &str, m: &Manifest) -> Result<Need, Error> {
    check_key(key)?;
    m.check().map_err(|e| bad(format!("build context: {e}")))?;
    let idx = load_index(&context_dir(data_root, key)).unwrap_or_default();
    let need = m
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == Kind::File && !idx.entries.get(&e.path).is_some_and(|r| unchanged(r, e)))
        .map(|(i, _)| i)
        .collect();
    Ok(Need { need })
}

/// A kept context synced for a build, locked until dropped.
pub struct Kept {
    dir: PathBuf,
    pub tree: PathBuf,
    index: Index,
    _lock: File,
    /// Files and bytes this build received.
    pub received: (usize, u64),
}

impl Kept {
    /// The digests of the kept files, by the identity they have while unchanged.
    pub fn known_hashes(&self) -> HashMap<FileIdentity, String> {
        self.index.entries.values().filter_map(|r| Some((r.local?, r.sha256.clone()))).collect()
    }

    /// How many entries the context has.
    pub fn entries(&self) -> usize {
        self.index.entries.len()
    }

    /// Removes the index before a change of the tree that is not a transfer (`.dockerignore`, a client's Dockerfile).
    pub fn invalidate(&self) {
        let _ = std::fs::remove_file(self.dir.join("index.json"));
    }

    /// Drops `removed` (and what was below them) from the index, and writes it.
    pub fn forget(&mut self, removed: &[String]) -> Result<(), Error> {
        let gone: HashSet<&str> = removed.iter().map(String::as_str).collect();
        self.index.entries.retain(|p, _| !ancestors_or_self(p).any(|a| gone.contains(a)));
        write_index(&self.dir, &self.index)
    }
}

/// `a/b/c`, `a/b`, `a`.
fn ancestors_or_self(p: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(p), |p| p.rsplit_once('/').map(|(a, _)| a))
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split(p: &str) -> (&str, &str) {
    p.rsplit_once('/').unwrap_or(("", p))
}

/// Opens (creating it) and locks the context directory's lock file; again when a prune removed the directory while
/// this waited for it.
fn lock_dir(dir: &Path) -> Result<File, Error> {
    for _ in 0..8 {
        std::fs::create_dir_all(dir).map_err(io(format!("mkdir {}", dir.display())))?;
        let path = dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("open {}", path.display())))?;
        f.lock().map_err(io(format!("lock {}", path.display())))?;
        let held = f.metadata().map_err(io("stat the lock"))?;
        if std::fs::metadata(&path).is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
            return Ok(f);
        }
    }
    Err(Error::Internal(format!("{}: removed again and again while waiting for it", dir.display())))
}

/// Removes whatever `name` is in `dir` (a directory with its content); nothing there is fine.
fn clear(dir: BorrowedFd<'_>, name: &str) -> Result<(), Error> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(sys("stat a kept file")(e)),
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            berth_store::remove_tree_at(dir, name.as_bytes()).map_err(sys("remove a kept directory"))
        }
        Ok(_) => nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(sys("remove a kept file")),
    }
}

fn times(e: &Entry) -> TimeSpec {
    TimeSpec::new(e.mtime.div_euclid(1_000_000_000), e.mtime.rem_euclid(1_000_000_000))
}

/// Receives a build's context into its kept directory (`body`: the list line, then the bytes of the files it
/// sends) and returns it locked.
pub fn sync(data_root: &Path, key: &str, body: impl Read) -> Result<Kept, Error> {
    check_key(key)?;
    let dir = context_dir(data_root, key);
    let is_new = !dir.exists();
    let lock = lock_dir(&dir)?;
    if is_new {
        gc(data_root);
    }
    // For the age limit: when the context was last used.
    let _ = lock.set_modified(SystemTime::now());
    let mut body = std::io::BufReader::with_capacity(1 << 20, body);
    let mut line = Vec::new();
    (&mut body).take(LIST_MAX).read_until(b'\n', &mut line).map_err(|e| bad(format!("read the build context: {e}")))?;
    if line.last() != Some(&b'\n') {
        return Err(bad("build context: the file list is missing, cut short or larger than 64 MiB"));
    }
    let m: Manifest =
        serde_json::from_slice(&line).map_err(|e| bad(format!("build context: invalid file list: {e}")))?;
    drop(line);
    m.check().map_err(|e| bad(format!("build context: {e}")))?;
    let old = load_index(&dir);
    let fresh = old.is_none();
    let old = old.unwrap_or_default();
    let sent: HashSet<usize> = m.send.iter().copied().collect();
    for (i, e) in m.entries.iter().enumerate() {
        if e.kind == Kind::File && !sent.contains(&i) && !old.entries.get(&e.path).is_some_and(|r| unchanged(r, e)) {
            return Err(bad(format!(
                "build context: {} is not kept (the kept context changed or was pruned since the list was sent): build again",
                e.path
            )));
        }
    }
    let tree = dir.join("tree");
    let same = !fresh
        && m.send.is_empty()
        && old.entries.len() == m.entries.len()
        && m.entries.iter().all(|e| old.entries.get(&e.path).is_some_and(|r| r.e == *e));
    if same {
        let mut extra = [0u8; 1];
        if body.read(&mut extra).map_err(|e| bad(format!("read the build context: {e}")))? != 0 {
            return Err(bad("build context: more data than the list announces"));
        }
        return Ok(Kept { dir, tree, index: old, _lock: lock, received: (0, 0) });
    }
    let _ = std::fs::remove_file(dir.join("index.json"));
    // From here the tree is not trusted until the index is back: a transfer that fails (a full disk, a client gone)
    // takes what it wrote with it, under the lock still, instead of leaving it until the next build of this context.
    let mut partial = PartialTree(Some(tree.clone()));
    let dirfd = open_dir(&dir)?;
    if fresh {
        // Whatever a transfer cut short left.
        clear(dirfd.as_fd(), "tree")?;
    }
    match nix::sys::stat::mkdirat(&dirfd, "tree", Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(sys("mkdir the kept context")(e)),
    }
    let root = open_dir(&tree)?;
    let listed: HashMap<&str, &Entry> = m.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    // What the kept tree has as it still is: same kind, same link target.
    let keeps = |p: &str| -> Option<&Rec> {
        let r = old.entries.get(p)?;
        let e = listed.get(p)?;
        (r.e.kind == e.kind && r.e.link == e.link).then_some(r)
    };
    // Gone (or of another kind): removed, parents first (their content goes with them).
    let gone: HashSet<&str> = old.entries.keys().map(String::as_str).filter(|p| keeps(p).is_none()).collect();
    for p in &gone {
        if ancestors_or_self(p).skip(1).any(|a| gone.contains(a)) {
            continue;
        }
        let (parent, name) = split(p);
        if let Ok(pdir) = open_in_root(root.as_fd(), parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            clear(pdir.as_fd(), name)?;
        }
    }
    let mut index = Index { boot: boot_id(), entries: BTreeMap::new() };
    let mut received = (0usize, 0u64);
    let mut buf = vec![0u8; 256 * 1024];
    for (i, e) in m.entries.iter().enumerate() {
        let kept = keeps(&e.path);
        let sending = sent.contains(&i);
        // (A regular file not sent is unchanged: checked above.)
        if let Some(r) = kept
            && !sending
        {
            index.entries.insert(e.path.clone(), Rec { e: e.clone(), ..r.clone() });
            if e.kind == Kind::Symlink && r.e != *e {
                symlink_meta(root.as_fd(), e)?;
            }
            continue;
        }
        let (parent, name) = split(&e.path);
        let pdir = open_in_root(root.as_fd(), parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|err| bad(format!("build context: {}: parent: {}", e.path, err.desc())))?;
        let mut rec = Rec { e: e.clone(), listed: m.listed, sha256: String::new(), local: None };
        match e.kind {
            Kind::File => {
                clear(pdir.as_fd(), name)?;
                let fd = openat(
                    &pdir,
                    name,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(sys("create a kept file"))?;
                let mut f = File::from(fd);
                let mut h = Sha256::new();
                let mut left = e.size;
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = body.read(&mut buf[..want]).map_err(|err| bad(format!("read the build context: {err}")))?;
                    if n == 0 {
                        return Err(bad(format!("build context: {} ends early", e.path)));
                    }
                    h.update(&buf[..n]);
                    f.write_all(&buf[..n]).map_err(io(format!("write the kept {}", e.path)))?;
                    left -= n as u64;
                }
                nix::unistd::fchown(&f, Some(Uid::from_raw(e.uid)), Some(Gid::from_raw(e.gid)))
                    .map_err(sys("chown a kept file"))?;
                nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(e.mode)).map_err(sys("chmod a kept file"))?;
                nix::sys::stat::futimens(&f, &times(e), &times(e)).map_err(sys("set a kept file's times"))?;
                rec.local = Some(identity(&fstat(&f).map_err(sys("stat a kept file"))?));
                rec.sha256 = hex::encode(h.finalize());
                received.0 += 1;
                received.1 += e.size;
            }
            Kind::Dir => {
                if kept.is_none() {
                    clear(pdir.as_fd(), name)?;
                    nix::sys::stat::mkdirat(&pdir, name, Mode::from_bits_truncate(0o700))
                        .map_err(sys("mkdir a kept directory"))?;
                }
            }
            Kind::Symlink => {
                if kept.is_none() {
                    clear(pdir.as_fd(), name)?;
                    nix::unistd::symlinkat(e.link.as_str(), &pdir, name).map_err(sys("create a kept symlink"))?;
                }
                symlink_meta(root.as_fd(), e)?;
            }
        }
        index.entries.insert(e.path.clone(), rec);
    }
    let mut extra = [0u8; 1];
    if body.read(&mut extra).map_err(|e| bad(format!("read the build context: {e}")))? != 0 {
        return Err(bad("build context: more data than the list announces"));
    }
    // Directories last, deepest first (their times changed with their content).
    for e in m.entries.iter().rev().filter(|e| e.kind == Kind::Dir) {
        let d = open_in_root(root.as_fd(), &e.path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            .map_err(sys("open a kept directory"))?;
        nix::unistd::fchown(&d, Some(Uid::from_raw(e.uid)), Some(Gid::from_raw(e.gid)))
            .map_err(sys("chown a kept directory"))?;
        nix::sys::stat::fchmod(&d, Mode::from_bits_truncate(e.mode)).map_err(sys("chmod a kept directory"))?;
        nix::sys::stat::futimens(&d, &times(e), &times(e)).map_err(sys("set a kept directory's times"))?;
    }
    write_index(&dir, &index)?;
    partial.0 = None;
    Ok(Kept { dir, tree, index, _lock: lock, received })
}

/// A kept tree being changed without its index: removed if the change does not finish.
struct PartialTree(Option<PathBuf>);

impl Drop for PartialTree {
    fn drop(&mut self) {
        if let Some(tree) = self.0.take() {
            let _ = std::fs::remove_dir_all(&tree);
        }
    }
}

fn symlink_meta(root: BorrowedFd<'_>, e: &Entry) -> Result<(), Error> {
    let (parent, name) = split(&e.path);
    let pdir =
        open_in_root(root, parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(sys("open a kept directory"))?;
    nix::unistd::fchownat(
        &pdir,
        name,
        Some(Uid::from_raw(e.uid)),
        Some(Gid::from_raw(e.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(sys("chown a kept symlink"))?;
    nix::sys::stat::utimensat(&pdir, name, &times(e), &times(e), UtimensatFlags::NoFollowSymlink)
        .map_err(sys("set a kept symlink's times"))
}

/// Removes the kept contexts `doomed` picks (given each one's rank, newest first, and last use) that no build
/// holds; returns how many went and the bytes they held.
fn remove_where(data_root: &Path, doomed: impl Fn(usize, SystemTime) -> bool) -> (usize, u64) {
    let base = contexts_dir(data_root);
    let Ok(rd) = std::fs::read_dir(&base) else { return (0, 0) };
    let mut found = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".trash-") {
            let _ = std::fs::remove_dir_all(e.path());
            continue;
        }
        // A directory without its lock is being made.
        let Ok(used) = std::fs::metadata(e.path().join("lock")).and_then(|m| m.modified()) else { continue };
        found.push((used, name));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let (mut count, mut bytes) = (0, 0);
    for (rank, (used, name)) in found.into_iter().enumerate() {
        if !doomed(rank, used) {
            continue;
        }
        let path = base.join(&name);
        let Ok(lock) = File::open(path.join("lock")) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        let size = crate::disk::dir_size(&path);
        let trash = base.join(format!(".trash-{name}"));
        if std::fs::rename(&path, &trash).is_ok() {
            drop(lock);
            let _ = std::fs::remove_dir_all(&trash);
            count += 1;
            bytes += size;
        }
    }
    (count, bytes)
}

/// `builder prune`: every kept context no build holds.
pub fn prune(data_root: &Path) -> (usize, u64) {
    remove_where(data_root, |_, _| true)
}

/// The limits: a week unused, or beyond the 32 most recently used (the one being made is locked, and stays).
fn gc(data_root: &Path) {
    let now = SystemTime::now();
    let (n, bytes) = remove_where(data_root, |rank, used| {
        rank >= MAX_KEPT || now.duration_since(used).is_ok_and(|age| age > MAX_AGE)
    });
    if n > 0 {
        tracing::info!("build: removed {n} kept contexts unused for long ({bytes} bytes)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::build_context::Entry;

    fn entry(path: &str, kind: Kind, size: u64, mtime: i64) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
            mtime,
            ctime: mtime,
            ino: 1,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            link: if kind == Kind::Symlink { "target".into() } else { String::new() },
        }
    }

    /// A build request's body: the list line, then the bytes of `send`'s files.
    fn body(entries: &[Entry], send: &[usize], data: &[&[u8]]) -> Vec<u8> {
        let m = Manifest { listed: 100_000_000_000, entries: entries.to_vec(), send: send.to_vec() };
        let mut b = serde_json::to_vec(&m).unwrap_or_default();
        b.push(b'\n');
        for d in data {
            b.extend_from_slice(d);
        }
        b
    }

    fn need_of(root: &Path, entries: &[Entry]) -> Vec<usize> {
        let m = Manifest { listed: 100_000_000_000, entries: entries.to_vec(), send: vec![] };
        need(root, "k", &m).map(|n| n.need).unwrap_or_default()
    }

    #[test]
    fn kept_files_are_not_needed_again_until_they_change() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = tmp.path();
        let mut list = vec![
            entry("d", Kind::Dir, 0, 1_000_000_001),
            entry("d/a", Kind::File, 3, 1_000_000_001),
            entry("l", Kind::Symlink, 0, 1_000_000_001),
        ];
        assert_eq!(need_of(root, &list), vec![1]);
        let k = sync(root, "k", &body(&list, &[1], &[b"abc"])[..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.received, (1, 3));
        assert_eq!(std::fs::read(k.tree.join("d/a")).unwrap_or_default(), b"abc");
        assert_eq!(std::fs::read_link(k.tree.join("l")).map(|p| p.display().to_string()).unwrap_or_default(), "target");
        // The digest is known by the kept file's identity.
        let st = nix::sys::stat::stat(&k.tree.join("d/a")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            k.known_hashes().get(&identity(&st)).map(String::as_str),
            Some(hex::encode(Sha256::digest(b"abc")).as_str())
        );
        drop(k);
        assert!(need_of(root, &list).is_empty());
        // A new ctime (same size and mtime) is a change.
        list[1].ctime += 1;
        assert_eq!(need_of(root, &list), vec![1]);
        // Not sending a needed file is refused.
        assert!(matches!(sync(root, "k", &body(&list, &[], &[])[..]), Err(Error::InvalidArgument(_))));
        // Cut short: no index is left, everything is needed again, and what it wrote is gone.
        assert!(sync(root, "k", &body(&list, &[1], &[b"x"])[..]).is_err());
        assert!(!context_dir(root, "k").join("tree").exists(), "a failed transfer's files stay");
        list[1].ctime -= 1;
        assert_eq!(need_of(root, &list), vec![1]);
        // A kind change and a deletion.
        let list2 = vec![entry("d", Kind::File, 2, 1_000_000_001)];
        let k = sync(root, "k", &body(&list2, &[0], &[b"hi"])[..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(k.tree.join("d")).unwrap_or_default(), b"hi");
        assert!(!k.tree.join("l").exists());
        drop(k);
        // Trailing bytes are refused.
        assert!(sync(root, "k", &body(&list2, &[], &[b"zz"])[..]).is_err());
        // Prune removes it.
        assert_eq!(prune(root).0, 1);
        assert!(std::fs::read_dir(contexts_dir(root)).map(|d| d.count()).unwrap_or(0) == 0);
    }

    #[test]
    fn racy_files_are_sent_again() {
        let e = entry("f", Kind::File, 1, 100_000_000_000 - 1_000);
        let rec = Rec { e: e.clone(), listed: 100_000_000_000, sha256: "x".into(), local: Some((0, 0, 0, 0, 0)) };
        assert!(!unchanged(&rec, &e), "changed 1 µs before the listing");
        let rec = Rec { listed: 101_000_000_000, ..rec };
        assert!(unchanged(&rec, &e));
    }
}
