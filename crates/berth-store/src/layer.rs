//! Layer import: one pass over a (plain or gzip) layer tar that hashes the uncompressed
//! stream (the diff id), writes it to the content store and unpacks it into a directory in
//! overlayfs format.
//!
//! Extraction is an own loop over `tar::Archive::entries()`. Every path is cleaned lexically
//! (`..` and a leading `/` cannot climb above the layer root) and every parent directory is
//! opened with `openat2(RESOLVE_IN_ROOT)`, so symlinks in the layer resolve as if the layer
//! were `/` and nothing can be written outside it; the last component is always created with
//! `*at` calls that do not follow symlinks. Docker whiteouts become overlayfs whiteouts:
//! `.wh.<name>` → a 0:0 character device `<name>`, `.wh..wh..opq` → the xattr
//! `trusted.overlay.opaque=y` on its directory.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat,
    utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat};

use crate::content::{BlobWriter, PendingBlob, WRITEBACK_EVERY, start_writeback};
use crate::digest::{ChainId, DiffId};
use crate::error::{Result, StoreError, io_ctx};

/// A layer known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Identifies the layer with everything below it; names its directory.
    pub chain_id: ChainId,
    /// The digest of the uncompressed tar (also the digest of its blob).
    pub diff_id: DiffId,
    /// The chain id of the layer below, if any.
    pub parent: Option<ChainId>,
    /// Unpacked size in bytes: regular file data plus symlink targets (hardlinks count once).
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub tar_size: u64,
}

/// The compression of a layer stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Detects the compression from the first (up to 6) bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The lowercase name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// The tar inside a stream, plain or compressed as `tar` compresses (gzip, bzip2, xz, zstd): what every archive
/// Berth unpacks may be (layers, `import`, `load`, `ADD`, `cp`), as Docker's `DecompressStream` reads them.
fn decompressed<'r, R: Read + 'r>(mut reader: R) -> Result<Box<dyn Read + 'r>> {
    let mut head = [0u8; 6];
    let n = read_full(&mut reader, &mut head)
        .map_err(|e| StoreError::InvalidArgument(format!("reading the archive: {e}")))?;
    let source = io::Cursor::new(head[..n].to_vec()).chain(reader);
    Ok(match Compression::detect(&head[..n]) {
        Compression::None => Box::new(BufReader::with_capacity(256 * 1024, source)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(source)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(source, true)),
        Compression::Zstd => Box::new(Zstd { frame: None, inner: Some(BufReader::new(source)) }),
    })
}

/// zstd frames one after another (what `zstd` writes for a stream), decoded as one stream.
struct Zstd<R: BufRead> {
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
    /// The input between frames.
    inner: Option<R>,
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(f) = self.frame.as_mut() {
                let n = f.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.inner = self.frame.take().map(|f| f.into_inner());
            }
            let Some(mut inner) = self.inner.take() else { return Ok(0) };
            if inner.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(inner)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.frame = Some(frame);
        }
    }
}

/// Whether `reader` holds a tar archive, plain or compressed: its first header block has a valid checksum (Go's
/// `tar.Reader.Next` succeeding, which is how Docker's `ADD` tells an archive to unpack from a file to copy).
pub fn is_tar_archive<R: Read>(reader: R) -> bool {
    let Ok(mut r) = decompressed(reader) else { return false };
    let mut block = [0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    is_tar_header(&block)
}

/// Fills `buf` from `r` as far as it goes; fewer bytes only at the end of `r`.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether a 512-byte block is a tar header: its checksum field matches its bytes.
pub(crate) fn is_tar_header(block: &[u8; 512]) -> bool {
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) }).sum();
    stored == Some(sum)
}

/// Where the time of layer unpacks goes, in nanoseconds, summed over the unpacks given it (which may run at the
/// same time). Reads of the caller's stream count as `source`; the rest of the decoder's time is `inflate`.
#[derive(Debug, Default)]
pub struct UnpackTimings {
    /// Reading the (compressed) stream the caller gave: network, download file, whatever it does.
    pub source: AtomicU64,
    /// Decompressing (gzip, zstd, ...).
    pub inflate: AtomicU64,
    /// Hashing the uncompressed tar and writing it as the layer's blob.
    pub tar_blob: AtomicU64,
    /// Parsing the tar and writing the files, directories and metadata.
    pub extract: AtomicU64,
    /// `syncfs` of the unpacked layer (and its blob), once per layer.
    pub sync: AtomicU64,
}

impl UnpackTimings {
    pub(crate) fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Counts the time spent in `inner.read` into `total`.
struct Timed<'c, R> {
    inner: R,
    total: &'c Cell<u64>,
}

impl<R: Read> Read for Timed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.total.set(self.total.get() + t.elapsed().as_nanos() as u64);
        r
    }
}

/// What [`unpack`] produced: the uncompressed tar as a flushed (not yet synced), uncommitted
/// blob, and the unpacked size.
pub(crate) struct Unpacked {
    pub blob: PendingBlob,
    pub size: u64,
}

/// Reads the layer stream once: decompresses, hashes and stores the tar through `blob`, and
/// extracts it into the existing empty directory `dest`. Any malformed input is
/// `InvalidArgument`; the caller removes `dest` on error (the blob removes itself). Nothing is
/// synced: the caller syncs the file system once (`syncfs`) before it commits.
pub(crate) fn unpack<'r, R: Read + 'r>(
    reader: R,
    blob: BlobWriter,
    dest: &Path,
    timings: Option<&UnpackTimings>,
) -> Result<Unpacked> {
    let start = Instant::now();
    let (source, decode) = (Cell::new(0u64), Cell::new(0u64));
    let state = TeeState::default();
    let res = unpack_timed(Timed { inner: reader, total: &source }, blob, dest, &state, &decode);
    if let Some(t) = timings {
        let (source, decode, blob) = (source.get(), decode.get(), state.blob_nanos.get());
        let total = start.elapsed().as_nanos() as u64;
        t.source.fetch_add(source, Ordering::Relaxed);
        t.inflate.fetch_add(decode.saturating_sub(source), Ordering::Relaxed);
        t.tar_blob.fetch_add(blob, Ordering::Relaxed);
        t.extract.fetch_add(total.saturating_sub(decode + blob), Ordering::Relaxed);
    }
    res
}

fn unpack_timed<'r, R: Read + 'r>(
    reader: R,
    blob: BlobWriter,
    dest: &Path,
    state: &TeeState,
    decode: &Cell<u64>,
) -> Result<Unpacked> {
    let decoded: Box<dyn Read + '_> = Box::new(Timed { inner: decompressed(reader)?, total: decode });
    let tee = Tee { inner: decoded, blob: Some(blob), state };
    let mut archive = tar::Archive::new(tee);
    let mut ex = Extractor::open(dest, ExtractOptions::LAYER)?;
    let res = ex.run(&mut archive, state);
    let mut tee = archive.into_inner();
    res?;
    // Hash everything after the end-of-archive marker too: the diff id covers the whole stream.
    let mut buf = [0u8; 8192];
    loop {
        match tee.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(state.input_error(e)),
        }
    }
    ex.finish()?;
    let t = Instant::now();
    let blob = tee.blob.take().ok_or_else(|| StoreError::InvalidArgument("layer blob missing".into()))?;
    let blob = blob.finish_unsynced()?;
    state.blob_nanos.set(state.blob_nanos.get() + t.elapsed().as_nanos() as u64);
    Ok(Unpacked { blob, size: ex.size })
}

/// How [`extract`] treats an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Docker whiteouts (`.wh.*`) become overlay whiteouts (layers); otherwise they are ordinary files.
    pub overlay_whiteouts: bool,
    /// An entry for the destination itself (`.`) sets its owner, mode and times (layers, volume copy-up); otherwise
    /// the existing destination keeps them (as `docker cp` does).
    pub root_metadata: bool,
    /// Refuse to replace a directory with a non-directory or the other way round (`noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner of everything extracted, instead of the archive's (`copyUIDGID`).
    pub owner: Option<(u32, u32)>,
    /// `(uid, gid, size)`: the archive's (or `owner`'s) IDs below `size` become `uid + n` / `gid + n` on disk (into
    /// the file system of a container whose IDs are remapped, `berthd --userns-remap`).
    pub host_ids: Option<(u32, u32, u32)>,
}

impl ExtractOptions {
    /// Image layers: overlay whiteouts, the root's metadata from the archive.
    pub const LAYER: ExtractOptions = ExtractOptions {
        overlay_whiteouts: true,
        root_metadata: true,
        no_overwrite_dir_non_dir: false,
        owner: None,
        host_ids: None,
    };
}

/// Extracts a tar (plain or gzip-compressed) below the directory `dest` (a path relative to `root`, which must exist), with the same
/// guarantees as layer import: every path is resolved with `openat2(RESOLVE_IN_ROOT)` against `root`, so symlinks in
/// the tree or in the archive resolve as if `root` were `/` and nothing is written outside it. Returns the bytes of
/// file data written.
pub fn extract<R: Read>(reader: R, root: OwnedFd, dest: &Path, opts: ExtractOptions) -> Result<u64> {
    let state = TeeState::default();
    let tee = Tee { inner: decompressed(reader)?, blob: None, state: &state };
    let mut archive = tar::Archive::new(tee);
    let prefix = clean_path(dest.as_os_str().as_encoded_bytes());
    let mut ex = Extractor::with_root(root, prefix, opts);
    ex.run(&mut archive, &state)?;
    ex.finish()?;
    Ok(ex.size)
}

/// Shared between the tee and the extractor: bytes read so far and a failed blob write.
#[derive(Default)]
struct TeeState {
    count: Cell<u64>,
    /// Time spent writing (and hashing) the blob.
    blob_nanos: Cell<u64>,
    write_error: RefCell<Option<io::Error>>,
}

impl TeeState {
    /// Classifies a read error: our own blob write failing is `Io`, anything else is bad input.
    fn input_error(&self, e: io::Error) -> StoreError {
        match self.write_error.borrow_mut().take() {
            Some(we) => StoreError::io("writing the layer blob", we),
            None => StoreError::InvalidArgument(format!("invalid layer archive: {e}")),
        }
    }
}

/// Reads the decompressed stream and copies every byte into the blob (which hashes it).
struct Tee<'s, 'r> {
    inner: Box<dyn Read + 'r>,
    blob: Option<BlobWriter>,
    state: &'s TeeState,
}

impl Read for Tee<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(blob) = self.blob.as_mut() {
                let t = Instant::now();
                let res = blob.write_all(&buf[..n]);
                self.state.blob_nanos.set(self.state.blob_nanos.get() + t.elapsed().as_nanos() as u64);
                if let Err(e) = res {
                    *self.state.write_error.borrow_mut() = Some(e);
                    return Err(io::Error::other("cannot write the layer blob"));
                }
            }
            self.state.count.set(self.state.count.get() + n as u64);
        }
        Ok(n)
    }
}

/// Whether `openat2` works here (it may be missing on old kernels or blocked by seccomp).
static OPENAT2_OK: AtomicBool = AtomicBool::new(true);

/// Metadata of one tar entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// Unpacks entries below `root`.
struct Extractor {
    root: OwnedFd,
    /// Where the archive's root lands, relative to `root`.
    prefix: Vec<Vec<u8>>,
    opts: ExtractOptions,
    chown: bool,
    dir_times: Vec<(Vec<Vec<u8>>, TimeSpec)>,
    size: u64,
    buf: Vec<u8>,
}

impl Extractor {
    fn open(dest: &Path, opts: ExtractOptions) -> Result<Extractor> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dest,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| StoreError::io(format!("opening {}", dest.display()), e.into()))?;
        Ok(Extractor::with_root(root, Vec::new(), opts))
    }

    fn with_root(root: OwnedFd, prefix: Vec<Vec<u8>>, opts: ExtractOptions) -> Extractor {
        Extractor {
            root,
            prefix,
            opts,
            chown: nix::unistd::geteuid().is_root(),
            dir_times: Vec::new(),
            size: 0,
            buf: vec![0u8; 128 * 1024],
        }
    }

    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>, state: &TeeState) -> Result<()> {
        let entries = archive.entries().map_err(|e| state.input_error(e))?;
        for entry in entries {
            let entry = entry.map_err(|e| state.input_error(e))?;
            self.entry(entry, state)?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, state: &TeeState) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let rel = clean_path(&raw_path);
        let mut meta = read_meta(&mut entry, &shown)?;
        if let Some((uid, gid)) = self.opts.owner {
            (meta.uid, meta.gid) = (uid, gid);
        }
        if let Some((uid, gid, size)) = self.opts.host_ids {
            let shift = |id: u32, base: u32| if id < size { base.saturating_add(id) } else { id };
            (meta.uid, meta.gid) = (shift(meta.uid, uid), shift(meta.gid, gid));
        }

        if rel.is_empty() {
            if kind.is_dir() {
                if self.opts.root_metadata {
                    let root = self.resolve(&join(&self.prefix)).map_err(|e| sys_err(e, "opening", &shown))?;
                    self.apply_dir_meta(&root, &meta, &shown)?;
                    self.dir_times.push((self.prefix.clone(), meta.mtime));
                }
            } else {
                tracing::warn!(path = %shown, "skipping a layer tar entry that names the layer root");
            }
            return Ok(());
        }
        let comps: Vec<Vec<u8>> = self.prefix.iter().cloned().chain(rel).collect();
        let Some((name, parent)) = comps.split_last() else { return Ok(()) };

        // Whiteouts.
        if self.opts.overlay_whiteouts
            && let Some(target) = name.strip_prefix(b".wh.")
        {
            if name.as_slice() == b".wh..wh..opq" {
                let dir = self.ensure_dir(parent, &shown)?;
                return fsetxattr(dir.as_fd(), c"trusted.overlay.opaque", b"y")
                    .map_err(|e| StoreError::io(format!("marking {shown} opaque"), e.into()));
            }
            if target.starts_with(b".wh.") {
                tracing::debug!(path = %shown, "skipping whiteout metadata entry");
                return Ok(());
            }
            if target.is_empty() {
                return Err(StoreError::InvalidArgument(format!("invalid whiteout entry {shown:?}")));
            }
            let dir = self.ensure_dir(parent, &shown)?;
            self.remove_existing(&dir, target, false, &shown)?;
            mknodat(&dir, target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| sys_err(e, "creating whiteout", &shown))?;
            self.chown_at(&dir, target, &meta, &shown)?;
            return Ok(());
        }

        let dir = self.ensure_dir(parent, &shown)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.remove_existing(&dir, name, false, &shown)?;
                let fd = openat(
                    &dir,
                    name.as_slice(),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| sys_err(e, "creating file", &shown))?;
                let mut file = std::fs::File::from(fd);
                let (mut written, mut written_back) = (0u64, 0u64);
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(state.input_error(e)),
                    };
                    file.write_all(&self.buf[..n]).map_err(io_ctx(|| format!("writing {shown}")))?;
                    written += n as u64;
                    if written - written_back >= WRITEBACK_EVERY {
                        start_writeback(&file, written_back, written - written_back);
                        written_back = written;
                    }
                }
                if written_back > 0 {
                    start_writeback(&file, written_back, written - written_back);
                }
                // What the archive holds for it: a GNU sparse file stores only its data, `size()` is the whole.
                let stored = match kind {
                    tar::EntryType::GNUSparse => entry.header().entry_size().unwrap_or(0),
                    _ => entry.size(),
                };
                if state.count.get() < entry.raw_file_position() + stored {
                    return Err(StoreError::InvalidArgument(format!(
                        "invalid layer archive: unexpected end of data in {shown:?}"
                    )));
                }
                self.size += written;
                if self.chown {
                    nix::unistd::fchown(&file, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
                        .map_err(|e| sys_err(e, "changing owner", &shown))?;
                }
                fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys_err(e, "changing mode", &shown))?;
                set_xattrs(file.as_fd(), &meta.xattrs, &shown)?;
                futimens(&file, &meta.mtime, &meta.mtime).map_err(|e| sys_err(e, "setting times", &shown))?;
            }
            tar::EntryType::Directory => {
                if !self.remove_existing(&dir, name, true, &shown)? {
                    mkdirat(&dir, name.as_slice(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| sys_err(e, "creating directory", &shown))?;
                }
                let d = openat(
                    &dir,
                    name.as_slice(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| sys_err(e, "opening directory", &shown))?;
                self.apply_dir_meta(&d, &meta, &shown)?;
                self.dir_times.push((comps.clone(), meta.mtime));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .ok_or_else(|| StoreError::InvalidArgument(format!("symlink {shown:?} has no target")))?;
                self.remove_existing(&dir, name, false, &shown)?;
                symlinkat(target.as_slice(), &dir, name.as_slice())
                    .map_err(|e| sys_err(e, "creating symlink", &shown))?;
                self.size += target.len() as u64;
                self.chown_at(&dir, name, &meta, &shown)?;
                utimensat(&dir, name.as_slice(), &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| sys_err(e, "setting times", &shown))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .ok_or_else(|| StoreError::InvalidArgument(format!("hardlink {shown:?} has no target")))?;
                let tcomps: Vec<Vec<u8>> = self.prefix.iter().cloned().chain(clean_path(&target)).collect();
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(StoreError::InvalidArgument(format!("hardlink {shown:?} points at the layer root")));
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tdir = self.resolve(&join(tparent)).map_err(|e| {
                    StoreError::InvalidArgument(format!("hardlink {shown:?}: target {tshown:?} not found: {e}"))
                })?;
                self.remove_existing(&dir, name, false, &shown)?;
                linkat(&tdir, tname.as_slice(), &dir, name.as_slice(), AtFlags::empty()).map_err(|e| match e {
                    Errno::ENOENT => {
                        StoreError::InvalidArgument(format!("hardlink {shown:?}: target {tshown:?} not found"))
                    }
                    e => sys_err(e, "creating hardlink", &shown),
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.remove_existing(&dir, name, false, &shown)?;
                let perm = Mode::from_bits_truncate(meta.mode & 0o777);
                mknodat(&dir, name.as_slice(), sflag, perm, makedev(u64::from(major), u64::from(minor)))
                    .map_err(|e| sys_err(e, "creating device node", &shown))?;
                self.chown_at(&dir, name, &meta, &shown)?;
                // By descriptor, not by name: in a running container's root the node could be swapped for a
                // symlink (to a host file) between mknodat and the chmod.
                let node =
                    openat(&dir, name.as_slice(), OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                        .map_err(|e| sys_err(e, "opening device node", &shown))?;
                let st = nix::sys::stat::fstat(&node).map_err(|e| sys_err(e, "stat device node", &shown))?;
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != sflag {
                    return Err(sys_err(nix::errno::Errno::EEXIST, "creating device node", &shown));
                }
                let via = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&node));
                fchmodat(
                    nix::fcntl::AT_FDCWD,
                    via.as_str(),
                    Mode::from_bits_truncate(meta.mode),
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| sys_err(e, "changing mode", &shown))?;
                if !meta.xattrs.is_empty() {
                    let p = openat(
                        &dir,
                        name.as_slice(),
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| sys_err(e, "opening device node", &shown))?;
                    let proc = CString::new(format!("/proc/self/fd/{}", p.as_raw_fd()))
                        .map_err(|_| StoreError::InvalidArgument("bad fd path".into()))?;
                    for (k, v) in &meta.xattrs {
                        xattr_result(setxattr_path(&proc, k, v), k, &shown)?;
                    }
                }
                utimensat(&dir, name.as_slice(), &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| sys_err(e, "setting times", &shown))?;
            }
            other => {
                return Err(StoreError::InvalidArgument(format!(
                    "unsupported tar entry type {:?} ({:?}) for {shown:?}",
                    other,
                    char::from(other.as_byte())
                )));
            }
        }
        Ok(())
    }

    /// Applies directory times after all entries: creating children changes a dir's mtime.
    fn finish(&mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        for (comps, mtime) in times.iter().rev() {
            let Some((name, parent)) = comps.split_last() else {
                futimens(&self.root, mtime, mtime).map_err(|e| sys_err(e, "setting times", "/"))?;
                continue;
            };
            // The directory may have been replaced or removed by a later entry.
            let Ok(dir) = self.resolve(&join(parent)) else { continue };
            match fstatat(&dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let shown = String::from_utf8_lossy(&join(comps)).into_owned();
                    utimensat(&dir, name.as_slice(), mtime, mtime, UtimensatFlags::NoFollowSymlink)
                        .map_err(|e| sys_err(e, "setting times", &shown))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_dir_meta(&self, d: &OwnedFd, meta: &Meta, shown: &str) -> Result<()> {
        if self.chown {
            nix::unistd::fchown(d, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
                .map_err(|e| sys_err(e, "changing owner", shown))?;
        }
        fchmod(d, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys_err(e, "changing mode", shown))?;
        set_xattrs(d.as_fd(), &meta.xattrs, shown)
    }

    fn chown_at(&self, dir: &OwnedFd, name: &[u8], meta: &Meta, shown: &str) -> Result<()> {
        if !self.chown {
            return Ok(());
        }
        fchownat(dir, name, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| sys_err(e, "changing owner", shown))
    }

    /// Opens the directory `rel` (relative to the layer root, symlinks resolved inside it).
    fn resolve(&self, rel: &[u8]) -> nix::Result<OwnedFd> {
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        if OPENAT2_OK.load(Ordering::Relaxed) {
            let how =
                OpenHow::new().flags(flags).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let mut attempts = 0;
            loop {
                match openat2(&self.root, rel, how) {
                    // A concurrent rename somewhere on the system; the kernel asks us to retry.
                    Err(Errno::EAGAIN) if attempts < 32 => attempts += 1,
                    Err(Errno::ENOSYS) => {
                        tracing::warn!("openat2 is unavailable; symlinks inside layer paths will be refused");
                        OPENAT2_OK.store(false, Ordering::Relaxed);
                        break;
                    }
                    r => return r,
                }
            }
        }
        // Fallback: walk component by component and refuse to follow any symlink.
        let mut cur = openat(&self.root, ".", flags, Mode::empty())?;
        for comp in rel.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".") {
            cur = openat(&cur, comp, flags | OFlag::O_NOFOLLOW, Mode::empty())?;
        }
        Ok(cur)
    }

    /// Opens the directory `comps`, creating missing components (mode 0755) inside the layer.
    fn ensure_dir(&self, comps: &[Vec<u8>], shown: &str) -> Result<OwnedFd> {
        match self.resolve(&join(comps)) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys_err(e, "opening parent directory", shown)),
        }
        let mut cur = self.resolve(b"").map_err(|e| sys_err(e, "opening the layer root", shown))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            match self.resolve(&prefix) {
                Ok(fd) => cur = fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(&cur, comps[i].as_slice(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys_err(e, "creating parent directory", shown)),
                    }
                    cur = self.resolve(&prefix).map_err(|e| sys_err(e, "opening parent directory", shown))?;
                }
                Err(e) => return Err(sys_err(e, "opening parent directory", shown)),
            }
        }
        Ok(cur)
    }

    /// Removes whatever is at `name` in `dir` so a new entry can take its place (later
    /// entries win). With `keep_dir`, an existing directory stays and `true` is returned.
    fn remove_existing(&self, dir: &OwnedFd, name: &[u8], keep_dir: bool, shown: &str) -> Result<bool> {
        let existing = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(sys_err(e, "inspecting existing entry", shown)),
            Ok(st) => st,
        };
        let is_dir = existing.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if self.opts.no_overwrite_dir_non_dir && is_dir != keep_dir {
            let what = String::from_utf8_lossy(name);
            return Err(StoreError::InvalidArgument(if is_dir {
                format!("cannot overwrite directory {what:?} with non-directory {shown:?}")
            } else {
                format!("cannot overwrite non-directory {what:?} with directory {shown:?}")
            }));
        }
        if is_dir {
            if keep_dir {
                return Ok(true);
            }
            remove_tree_at(dir.as_fd(), name).map_err(|e| sys_err(e, "removing existing directory", shown))?;
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| sys_err(e, "removing existing entry", shown))?;
        }
        Ok(false)
    }
}

/// Recursively removes the directory `name` inside `dir` without following symlinks.
pub fn remove_tree_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<()> {
    let fd =
        openat(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    let child = fd.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(t) => t == nix::dir::Type::Directory,
            None => fstatat(&child, n, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .unwrap_or(false),
        };
        names.push((n.to_vec(), is_dir));
    }
    for (n, is_dir) in names {
        if is_dir {
            remove_tree_at(child.as_fd(), &n)?;
        } else {
            unlinkat(&child, n.as_slice(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Reads mode, owner, mtime (with PAX sub-second precision) and `SCHILY.xattr.*` records.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
    let bad = |what: &str, e: io::Error| {
        StoreError::InvalidArgument(format!("invalid {what} in tar header of {shown:?}: {e}"))
    };
    let header = entry.header();
    let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
    let uid = header.uid().map_err(|e| bad("uid", e))?;
    let gid = header.gid().map_err(|e| bad("gid", e))?;
    let mut mtime = TimeSpec::new(header.mtime().map_err(|e| bad("mtime", e))? as libc::time_t, 0);
    let to32 = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| StoreError::InvalidArgument(format!("{what} {v} of {shown:?} is out of range")))
    };
    let (uid, gid) = (to32(uid, "uid")?, to32(gid, "gid")?);
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
        for ext in exts {
            let ext = ext.map_err(|e| bad("pax record", e))?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if name.starts_with(b"trusted.overlay.") {
                    tracing::debug!(path = %shown, "ignoring overlay xattr from a layer tar");
                    continue;
                }
                if let Ok(c) = CString::new(name) {
                    xattrs.push((c, ext.value_bytes().to_vec()));
                }
            } else if key == b"mtime"
                && let Some(t) = parse_pax_time(ext.value_bytes())
            {
                mtime = t;
            }
        }
    }
    Ok(Meta { mode, uid, gid, mtime, xattrs })
}

/// Parses a PAX time (`1700000000.123456789`, possibly negative).
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    let (secs, nanos) =
        if neg { if nanos > 0 { (-secs - 1, 1_000_000_000 - nanos) } else { (-secs, 0) } } else { (secs, nanos) };
    Some(TimeSpec::new(secs as libc::time_t, nanos as _))
}

/// Lexically cleans a tar path into components that stay inside the layer: `.` and empty
/// components vanish, `..` pops (never above the root), a leading `/` is ignored.
pub(crate) fn clean_path(p: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

/// Maps an errno from extraction: failures the input can cause are `InvalidArgument`,
/// the rest (ENOSPC, EIO, EPERM…) are `Io`.
fn sys_err(e: Errno, what: &str, shown: &str) -> StoreError {
    match e {
        Errno::ENOTDIR
        | Errno::ELOOP
        | Errno::EEXIST
        | Errno::EISDIR
        | Errno::ENAMETOOLONG
        | Errno::ENOENT
        | Errno::EXDEV
        | Errno::EMLINK
        | Errno::EINVAL => {
            StoreError::InvalidArgument(format!("invalid layer archive: {what} {shown:?}: {}", e.desc()))
        }
        e => StoreError::io(format!("{what} {shown:?}"), e.into()),
    }
}

fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(CString, Vec<u8>)], shown: &str) -> Result<()> {
    for (k, v) in xattrs {
        xattr_result(fsetxattr(fd, k, v), k, shown)?;
    }
    Ok(())
}

/// Like docker, an xattr the filesystem or our privileges cannot hold is skipped with a warning.
fn xattr_result(r: nix::Result<()>, key: &CStr, shown: &str) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e @ (Errno::ENOTSUP | Errno::EPERM)) => {
            tracing::warn!(path = %shown, xattr = %key.to_string_lossy(), error = %e, "xattr not set");
            Ok(())
        }
        Err(e) => Err(StoreError::io(format!("setting xattr {} on {shown:?}", key.to_string_lossy()), e.into())),
    }
}

/// `fsetxattr(2)`.
fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: `fd` is an open descriptor for the whole call, `name` is NUL-terminated and
    // `value` points to `value.len()` readable bytes; the kernel only reads them.
    let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(r).map(drop)
}

/// `setxattr(2)` on a path (used with `/proc/self/fd/N` for O_PATH descriptors).
fn setxattr_path(path: &CStr, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: `path` and `name` are NUL-terminated and `value` points to `value.len()`
    // readable bytes; the kernel only reads them.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(r).map(drop)
}

/// `fgetxattr(2)` into a buffer (for tests); `None` if the attribute is absent.
#[cfg(test)]
pub(crate) fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr) -> nix::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `fd` is open for the call, `name` is NUL-terminated and `buf` is writable for
    // `buf.len()` bytes; the kernel writes at most that many.
    let r = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    match Errno::result(r) {
        Ok(n) => {
            buf.truncate(n as usize);
            Ok(Some(buf))
        }
        Err(Errno::ENODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_stay_inside() {
        let s = |p: &str| {
            clean_path(p.as_bytes())
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(s("../evil"), "evil");
        assert_eq!(s("/abs/x"), "abs/x");
        assert_eq!(s("./a/./b/"), "a/b");
        assert_eq!(s("a/../../../b"), "b");
        assert_eq!(s("a/b/../c"), "a/c");
        assert_eq!(s("./"), "");
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.5").map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t, Some((1_700_000_000, 500_000_000)));
        let t = parse_pax_time(b"-1.25").map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t, Some((-2, 750_000_000)));
        assert!(parse_pax_time(b"x").is_none());
    }

    fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o640);
            h.set_uid(7);
            h.set_gid(7);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    // Raw names: the tar crate refuses to write `..`, hostile archives have them.
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    b.append(&h, d.as_bytes()).expect("append");
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, name, io::empty()).expect("append");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn extract_below_a_directory_with_options() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("dest/clash")).expect("mkdir");
        std::os::unix::fs::symlink("/", dir.path().join("dest/up")).expect("symlink");
        let open = || {
            openat(nix::fcntl::AT_FDCWD, dir.path(), OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).expect("open")
        };
        let tar = tar_of(&[
            ("./", None),
            ("a", Some("one")),
            ("../../up/escape", Some("x")),
            ("../../../dotdot", Some("y")),
            ("sub/b", Some("two")),
        ]);
        let opts = ExtractOptions {
            overlay_whiteouts: false,
            root_metadata: false,
            no_overwrite_dir_non_dir: true,
            owner: Some((1000, 1001)),
            host_ids: None,
        };
        assert_eq!(extract(tar.as_slice(), open(), Path::new("dest"), opts).expect("extract"), 8);
        let dest = dir.path().join("dest");
        assert_eq!(std::fs::read_to_string(dest.join("a")).expect("a"), "one");
        assert_eq!(std::fs::read_to_string(dest.join("sub/b")).expect("b"), "two");
        // `..` stays below the destination; `up` (a symlink to `/`) resolves to the root given, not the host's.
        assert_eq!(std::fs::read_to_string(dir.path().join("escape")).expect("escape"), "x");
        assert_eq!(std::fs::read_to_string(dest.join("dotdot")).expect("dotdot"), "y");
        let meta = std::fs::metadata(dest.join("a")).expect("meta");
        if nix::unistd::geteuid().is_root() {
            assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
        }
        // The destination's own metadata is not the archive's without `root_metadata`.
        assert_ne!(std::fs::metadata(&dest).expect("dest").mode() & 0o777, 0o640);
        let clash = tar_of(&[("clash", Some("file over a directory"))]);
        let e = extract(clash.as_slice(), open(), Path::new("dest"), opts).expect_err("clash");
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        let opts = ExtractOptions { no_overwrite_dir_non_dir: false, ..opts };
        extract(clash.as_slice(), open(), Path::new("dest"), opts).expect("replace");
        assert!(dest.join("clash").is_file());
    }

    #[test]
    fn compression_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 0x08, 0]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Compression::Xz);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }
}
