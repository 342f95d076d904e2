//! `docker save` and `docker load`: images as one tar in docker's format, which is at the same time an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/...`) and docker's own `manifest.json`, as Docker 25+ writes
//! it. Layers go out as the uncompressed tars the store keeps (their digests are the diff ids), so saving needs no
//! compression and the manifests are plain OCI ones.
//!
//! Loading accepts that format, the older one (`<id>/layer.tar`, `<id>.json`, with symlinks between duplicate
//! layers), and a plain OCI layout (`index.json` without `manifest.json`, compressed layers allowed). The archive is
//! first unpacked into a private directory of the content store's ingest area (regular files only; links are
//! resolved inside the archive, never on disk; any path that climbs out is refused), then every image is imported
//! layer by layer with its diff ids verified. Nothing is tagged before its image is complete.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{Result, StoreError, full_disk, io_ctx};
use crate::image::host_architecture;
use crate::layer::{Compression, UnpackTimings, is_tar_header, read_full};
use crate::reference::{AnyReference, Reference};
use crate::{Image, Layer, Store, UnpackedLayer};

/// OCI media types used in saved archives.
pub mod media {
    /// An OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// An uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// A Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// One image to save, with the tags it goes out under.
struct Saved {
    image: Image,
    tags: Vec<Reference>,
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument(msg.into())
}

impl Store {
    /// Writes the images `names` (references, ids or id prefixes; a repository name without a tag means all of its
    /// tags) to `out` as one tar in docker's `save` format. Unknown names fail before anything is written.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let mut saved: Vec<Saved> = Vec::new();
        for name in names {
            let (image, tags) = self.resolve_for_save(name)?;
            match saved.iter_mut().find(|s| s.image.id == image.id) {
                Some(s) => {
                    for t in tags {
                        if !s.tags.contains(&t) {
                            s.tags.push(t);
                        }
                    }
                }
                None => saved.push(Saved { image, tags }),
            }
        }
        let mut w = TarOut { out, buf: Vec::new() };
        let mut written: std::collections::HashSet<String> = std::collections::HashSet::new();
        for dir in ["blobs/", "blobs/sha256/"] {
            w.dir(dir)?;
        }
        let mut index_entries = Vec::new();
        let mut manifest_json = Vec::new();
        for s in &saved {
            let config = self.content.read(s.image.id.digest())?;
            let diff_ids = diff_ids_of(&s.image.config)?;
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for d in &diff_ids {
                let size = self.content.size(d.digest())?;
                let path = format!("blobs/sha256/{}", d.hex());
                if written.insert(path.clone()) {
                    // The store verified the layer's tar when it took it in: it goes out as it is, not hashed again.
                    w.file(&path, size, self.layer_tar(d)?)?;
                }
                layer_descs.push(json!({"mediaType": media::OCI_LAYER_TAR, "digest": d.as_str(), "size": size}));
                layer_paths.push(path);
            }
            let config_path = format!("blobs/sha256/{}", s.image.id.hex());
            if written.insert(config_path.clone()) {
                w.bytes(&config_path, &config)?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": s.image.id.as_str(), "size": config.len()},
                "layers": layer_descs,
            });
            let manifest = to_json(&manifest)?;
            let mdigest = Digest::of(&manifest);
            let mpath = format!("blobs/sha256/{}", mdigest.hex());
            if written.insert(mpath.clone()) {
                w.bytes(&mpath, &manifest)?;
            }
            let desc = |annotations: Option<Value>| {
                let mut d =
                    json!({"mediaType": media::OCI_MANIFEST, "digest": mdigest.as_str(), "size": manifest.len()});
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if s.tags.is_empty() {
                index_entries.push(desc(None));
            }
            for t in &s.tags {
                index_entries.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                }))));
            }
            let tags: Vec<String> = s.tags.iter().map(Reference::familiar_string).collect();
            manifest_json.push(json!({"Config": config_path, "RepoTags": tags, "Layers": layer_paths}));
        }
        let index = to_json(&json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index_entries}))?;
        w.bytes("index.json", &index)?;
        w.bytes("manifest.json", &to_json(&Value::Array(manifest_json))?)?;
        w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        w.finish()
    }

    /// The image `name` names and the tags it is saved under.
    fn resolve_for_save(&self, name: &str) -> Result<(Image, Vec<Reference>)> {
        if let Ok(AnyReference::Named(r)) = AnyReference::parse(name) {
            if r.digest().is_some() {
                return Ok((self.resolve_image(name)?, Vec::new()));
            }
            if r.tag().is_some() {
                return Ok((self.resolve_image(name)?, vec![r]));
            }
            // A bare repository: the image of `:latest` if it exists, else whatever a bare name resolves to.
            let image = self.resolve_image(name)?;
            let mut tags = Vec::new();
            for t in &image.repo_tags {
                if let Ok(tr) = Reference::parse(t)
                    && tr.name() == r.name()
                {
                    tags.push(tr);
                }
            }
            return Ok((image, tags));
        }
        Ok((self.resolve_image(name)?, Vec::new()))
    }

    /// Loads images from a tar in docker's `save` format or an OCI image layout. `progress` gets one line per
    /// loaded image (`Loaded image: busybox:latest`, `Loaded image ID: sha256:...`), as docker prints them.
    ///
    /// The archive is read once: every layer tar in it streams, as it arrives, into the store's unpack path (the
    /// one pulls use: sha256 and blob, files, no fsync per file), several layers at a time on threads of their
    /// own; small files (configs, manifests) are kept in memory. Once the whole archive is read, every image's layers
    /// are checked against its config's diff ids, then recorded (one `syncfs` for them all) and the image created.
    pub fn load(&self, reader: impl Read, progress: &mut dyn FnMut(String)) -> Result<Vec<ImageId>> {
        let started = Instant::now();
        let timings = UnpackTimings::default();
        let scratch =
            TempTree::create(&self.content.ingest_dir().join(format!("load-{}", crate::content::random_hex(8)?)))?;
        let mut source = Source { inner: reader, bytes: 0, wait: 0, ended: false };
        let mut tree = self.stage(&mut source, &scratch.path, &timings)?;
        let read = started.elapsed();
        let images = if tree.exists("manifest.json") {
            tree.docker_manifests()?
        } else if tree.exists("index.json") {
            tree.oci_manifests()?
        } else {
            return Err(bad(
                "invalid archive: it has neither manifest.json nor index.json (not an image saved by docker save, nor an OCI layout)",
            ));
        };
        // Every image's layers checked before any is recorded: a damaged archive leaves nothing behind.
        let mut planned = Vec::new();
        for img in images {
            let config: Value = serde_json::from_slice(&img.config)
                .map_err(|e| bad(format!("invalid image config in the archive: {e}")))?;
            let diff_ids = diff_ids_of(&config)?;
            if diff_ids.len() != img.layers.len() {
                return Err(bad(format!(
                    "invalid archive: the image config lists {} layers, the manifest {}",
                    diff_ids.len(),
                    img.layers.len()
                )));
            }
            for (i, (path, diff)) in img.layers.iter().zip(&diff_ids).enumerate() {
                tree.check_layer(path, diff, i)?;
            }
            planned.push((img, diff_ids));
        }
        let mut ids = Vec::new();
        for (img, diff_ids) in planned {
            let mut parent: Option<ChainId> = None;
            for (i, (path, diff)) in img.layers.iter().zip(&diff_ids).enumerate() {
                let layer = self.load_layer(&mut tree, path, parent.as_ref(), diff, i, &timings)?;
                parent = Some(layer.chain_id);
                crate::fault::point("load.after-layer");
            }
            crate::fault::point("load.before-image");
            let id = self.create_image_named(&img.config, &img.tags, &[])?;
            let mut tagged = false;
            for t in &img.tags {
                let shown = Reference::parse(t).map(|r| r.familiar_string()).unwrap_or_else(|_| t.clone());
                progress(format!("Loaded image: {shown}"));
                tagged = true;
            }
            if !tagged {
                progress(format!("Loaded image ID: {id}"));
            }
            ids.push(id);
        }
        let ms = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) / 1_000_000;
        tracing::info!(
            "load breakdown: {:.1} MB in {} ms (archive read in {} ms, {:.1} MB/s); stage totals (ms, overlapping): \
             waiting for the archive {}, tar blob (sha256+write) {}, unpack files {}, syncfs {}",
            source.bytes as f64 / 1e6,
            started.elapsed().as_millis(),
            read.as_millis(),
            source.bytes as f64 / 1e6 / read.as_secs_f64().max(1e-9),
            source.wait / 1_000_000,
            ms(&timings.tar_blob),
            ms(&timings.extract),
            ms(&timings.sync),
        );
        Ok(ids)
    }

    /// Reads the whole archive: layer tars are unpacked into the store (not recorded), at most [`UNPACKS`] at a
    /// time, the rest kept in memory or, when large, in `scratch`.
    fn stage<R: Read>(&self, source: &mut Source<R>, scratch: &Path, timings: &UnpackTimings) -> Result<Tree> {
        let mut tree = Tree::default();
        std::thread::scope(|scope| {
            let mut running: VecDeque<(String, Unpacking<'_>)> = VecDeque::new();
            let res = self.read_entries(&mut *source, scratch, &mut tree, |tree, name, head, size, entry| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_QUEUED);
                let handle =
                    scope.spawn(move || self.unpack_layer(Chunks { rx, chunk: Vec::new(), pos: 0 }, Some(timings)));
                let streamed = stream_entry(head, size, entry, &tx);
                drop(tx);
                let done = Unpacking { handle };
                if let Err(e) = streamed {
                    // A worker that stopped reading failed: its error says why (a bad layer tar, a full disk).
                    return Err(match (e, done.join()) {
                        (Streamed::WorkerGone, Err(we)) => we,
                        (Streamed::WorkerGone, Ok(_)) => bad("invalid archive: a layer was not read to its end"),
                        (Streamed::Read(re), _) => re,
                    });
                }
                running.push_back((name, done));
                while running.len() >= UNPACKS {
                    if let Some((n, u)) = running.pop_front() {
                        tree.add_layer(n, u.join()?);
                    }
                }
                Ok(())
            });
            // The archive ended in the middle of an entry or a header: docker's words for it.
            let res = res.map_err(|e| match e {
                StoreError::InvalidArgument(_) if source.ended => bad(TRUNCATED),
                e => e,
            });
            // The layers still unpacking: their results (an error of the archive's reading comes first; what was
            // unpacked is dropped, and removed, with the tree).
            let mut first_err = res.err();
            for (n, u) in running {
                match u.join() {
                    Ok(l) => tree.add_layer(n, l),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })?;
        Ok(tree)
    }

    /// Goes through the archive's entries: regular files are classified by their first block and kept (small
    /// files, large non-tar files, layer tars the store holds already) or handed to `layer` with that block.
    fn read_entries<R: Read>(
        &self,
        source: &mut Source<R>,
        scratch: &Path,
        tree: &mut Tree,
        mut layer: impl FnMut(&mut Tree, String, &[u8], u64, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let mut archive = tar::Archive::new(source);
        let entries = archive.entries().map_err(|e| bad(format!("invalid archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("invalid archive: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name =
                clean(&raw).ok_or_else(|| bad(format!("invalid archive: the path {raw:?} leaves the archive")))?;
            let kind = entry.header().entry_type();
            if name.is_empty() {
                continue;
            }
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let mut head = [0u8; 512];
                    let n = read_full(&mut entry, &mut head).map_err(|e| bad(format!("invalid archive: {e}")))?;
                    if (n as u64) < size.min(512) {
                        return Err(bad(TRUNCATED));
                    }
                    let is_layer = n == 512
                        && (Compression::detect(&head) != Compression::None
                            || head.iter().all(|b| *b == 0)
                            || is_tar_header(&head));
                    if !is_layer {
                        let staged = if size <= IN_MEMORY && tree.in_memory + size <= IN_MEMORY_TOTAL {
                            tree.in_memory += size;
                            let mut data = Vec::with_capacity(size as usize);
                            data.extend_from_slice(&head[..n]);
                            entry.read_to_end(&mut data).map_err(|e| bad(format!("invalid archive: {e}")))?;
                            check_size(data.len() as u64, size)?;
                            Staged::Bytes(data)
                        } else {
                            let path = scratch.join(tree.files.len().to_string());
                            let mut f =
                                File::create_new(&path).map_err(io_ctx(|| format!("creating {}", path.display())))?;
                            let copied =
                                f.write_all(&head).and_then(|()| io::copy(&mut entry, &mut f)).map_err(|e| {
                                    match full_disk(&e) {
                                        true => StoreError::io(format!("writing {name}"), e),
                                        false => bad(format!("invalid archive: {e}")),
                                    }
                                })?;
                            check_size(copied + 512, size)?;
                            Staged::Spilled(path)
                        };
                        tree.files.insert(name, staged);
                    } else if let Some(d) = self.stored_layer(&name, &head) {
                        // The store holds this very tar (its name is its digest): nothing to hash or write.
                        let skipped =
                            io::copy(&mut entry, &mut io::sink()).map_err(|e| bad(format!("invalid archive: {e}")))?;
                        check_size(skipped + 512, size)?;
                        tree.files.insert(name, Staged::Layer(None, d));
                    } else {
                        layer(tree, name, &head, size, &mut entry)?;
                    }
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| bad(format!("invalid archive: the link {name} has no target")))?;
                    let joined = if kind == tar::EntryType::Symlink {
                        let base = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        format!("{base}/{target}")
                    } else {
                        target.clone()
                    };
                    let resolved = clean(&joined).ok_or_else(|| {
                        bad(format!("invalid archive: the link {name} → {target} leaves the archive"))
                    })?;
                    tree.links.insert(name, resolved);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The diff id of a plain layer tar named `blobs/sha256/<its digest>` whose blob the store has.
    fn stored_layer(&self, name: &str, head: &[u8; 512]) -> Option<DiffId> {
        let hex = name.strip_prefix("blobs/sha256/")?;
        let d = Digest::parse(&format!("sha256:{hex}")).ok()?;
        (Compression::detect(head) == Compression::None && self.content.contains(&d)).then(|| DiffId::from(d))
    }

    /// Records the layer `path` of the archive on top of `parent` (the store's layer if it has it already).
    fn load_layer(
        &self,
        tree: &mut Tree,
        path: &str,
        parent: Option<&ChainId>,
        expected: &DiffId,
        index: usize,
        timings: &UnpackTimings,
    ) -> Result<Layer> {
        if let Some(l) = self.existing_layer(&ChainId::compute(parent, expected))? {
            return Ok(l);
        }
        let key = tree.resolve(path)?;
        let unpacked = match tree.files.get_mut(&key) {
            Some(Staged::Layer(slot, d)) => match slot.take() {
                Some(u) => u,
                // Taken by an image below another parent, or skipped: the store's blob of that tar.
                None => self.unpack_layer(self.content.open_blob(d.digest())?, Some(timings))?,
            },
            Some(Staged::Bytes(b)) => self.unpack_layer(&b[..], Some(timings))?,
            Some(Staged::Spilled(p)) => {
                self.unpack_layer(File::open(&*p).map_err(io_ctx(|| format!("opening {key}")))?, Some(timings))?
            }
            None => return Err(bad(format!("invalid archive: {path} is missing"))),
        };
        check_diff_id(&unpacked.diff_id(), expected, index)?;
        self.commit_unpacked(unpacked, parent, expected, Some(timings))
    }
}

/// Docker's answer to an archive that ends too soon (`archive/tar`'s error, through its untar process).
const TRUNCATED: &str = "Error processing tar file(exit status 1): unexpected EOF";

/// Files of an archive up to this size that are not layers are kept in memory (configs, manifests, indexes), up
/// to the total after it; the others go to a scratch directory.
const IN_MEMORY: u64 = 8 << 20;
const IN_MEMORY_TOTAL: u64 = 64 << 20;

/// Layers unpacking at the same time while the archive is read.
const UNPACKS: usize = 3;

/// The size of the blocks a layer's bytes go to its unpacker in, and how many may wait.
const CHUNK: usize = 256 * 1024;
const CHUNKS_QUEUED: usize = 16;

fn check_size(got: u64, want: u64) -> Result<()> {
    if got < want {
        return Err(bad(TRUNCATED));
    }
    Ok(())
}

/// Docker's message for a layer that is not what the image's config says.
fn check_diff_id(got: &DiffId, expected: &DiffId, index: usize) -> Result<()> {
    if got != expected {
        return Err(bad(format!(
            "invalid diffID for layer {index}: expected {:?}, got {:?}",
            expected.as_str(),
            got.as_str()
        )));
    }
    Ok(())
}

/// Why streaming an entry to its unpacker stopped.
enum Streamed {
    /// The archive could not be read.
    Read(StoreError),
    /// The unpacker stopped reading (it failed).
    WorkerGone,
}

/// Sends `head` and the rest of `entry` to an unpacker in [`CHUNK`]s.
fn stream_entry(
    head: &[u8],
    size: u64,
    entry: &mut dyn Read,
    tx: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> std::result::Result<(), Streamed> {
    let mut first = Some(head);
    let mut sent = 0u64;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let start = match first.take() {
            Some(h) => {
                chunk[..h.len()].copy_from_slice(h);
                h.len()
            }
            None => 0,
        };
        let n = match read_full(entry, &mut chunk[start..]) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(io::Error::other("the archive could not be read")));
                return Err(Streamed::Read(bad(format!("invalid archive: {e}"))));
            }
        };
        chunk.truncate(start + n);
        sent += chunk.len() as u64;
        let last = start + n < CHUNK;
        if last && sent < size {
            // The archive ended inside the entry: the unpacker must not take what it got for the whole layer.
            let _ = tx.send(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside a layer")));
            return Err(Streamed::Read(bad(TRUNCATED)));
        }
        if !chunk.is_empty() && tx.send(Ok(chunk)).is_err() {
            return Err(Streamed::WorkerGone);
        }
        if last {
            return Ok(());
        }
    }
}

/// A layer being unpacked on a thread of its own.
struct Unpacking<'s> {
    handle: std::thread::ScopedJoinHandle<'s, Result<UnpackedLayer>>,
}

impl Unpacking<'_> {
    fn join(self) -> Result<UnpackedLayer> {
        self.handle.join().unwrap_or_else(|_| Err(StoreError::io("unpacking a layer", io::Error::other("panicked"))))
    }
}

/// The bytes of one layer, as its unpacker reads them.
struct Chunks {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => (self.chunk, self.pos) = (c, 0),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The archive as the load reads it: bytes, time spent waiting for them, and whether it ended.
struct Source<R> {
    inner: R,
    bytes: u64,
    wait: u64,
    ended: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.wait += t.elapsed().as_nanos() as u64;
        match &r {
            Ok(0) if !buf.is_empty() => self.ended = true,
            Ok(n) => self.bytes += *n as u64,
            Err(_) => {}
        }
        r
    }
}

fn to_json(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| bad(format!("cannot serialise JSON: {e}")))
}

fn diff_ids_of(config: &Value) -> Result<Vec<DiffId>> {
    match &config["rootfs"]["diff_ids"] {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|v| DiffId::parse(v.as_str().ok_or_else(|| bad("image config: a diff id is not a string"))?))
            .collect(),
        _ => Err(bad("image config: rootfs.diff_ids is not a list")),
    }
}

/// How much of a file [`TarOut`] copies at a time: large reads and writes, few system calls and channel messages.
const COPY_BLOCK: usize = 1 << 20;

/// Writes a tar the way `tar::Builder` does (ustar headers, mode 0644 or 0755, mtime 0, two zero blocks at the
/// end), with the data of files copied in large blocks.
struct TarOut<W: Write> {
    out: W,
    buf: Vec<u8>,
}

fn write_err(path: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::io(format!("writing {path} to the archive"), e)
}

impl<W: Write> TarOut<W> {
    fn header(&mut self, path: &str, kind: tar::EntryType, mode: u32, size: u64) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_path(path).map_err(write_err(path))?;
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(write_err(path))
    }

    /// Zeros up to the next 512-byte block after `size` bytes of data.
    fn pad(&mut self, path: &str, size: u64) -> Result<()> {
        let rest = (512 - size % 512) % 512;
        self.out.write_all(&[0u8; 512][..rest as usize]).map_err(write_err(path))
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.header(path, tar::EntryType::Directory, 0o755, 0)
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.header(path, tar::EntryType::Regular, 0o644, data.len() as u64)?;
        self.out.write_all(data).map_err(write_err(path))?;
        self.pad(path, data.len() as u64)
    }

    /// `size` bytes of `f`; a file shorter than that is a damaged store.
    fn file(&mut self, path: &str, size: u64, mut f: File) -> Result<()> {
        self.header(path, tar::EntryType::Regular, 0o644, size)?;
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BLOCK];
        }
        let mut left = size;
        while left > 0 {
            let want = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(StoreError::Corrupt(format!("{path}: the stored file is shorter than {size} bytes")));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io(format!("reading {path}"), e)),
            };
            self.out.write_all(&self.buf[..n]).map_err(write_err(path))?;
            left -= n as u64;
        }
        self.pad(path, size)
    }

    fn finish(mut self) -> Result<()> {
        let end = "the end of the archive";
        self.out.write_all(&[0u8; 1024]).map_err(write_err(end))?;
        self.out.flush().map_err(write_err(end))
    }
}

/// An image found in an archive: config bytes, layer paths in the archive, full references to tag.
struct Found {
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<String>,
}

/// A private directory that is removed when dropped.
struct TempTree {
    path: PathBuf,
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), "removing the load directory: {e}");
        }
    }
}

/// Cleans an archive path to its normal components; `None` if it climbs out or is absolute.
fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if name.starts_with('/') {
        return None;
    }
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// A regular file of the archive, as the load keeps it.
enum Staged {
    /// A small file's bytes.
    Bytes(Vec<u8>),
    /// A large file that is not a layer tar, in the load's scratch directory.
    Spilled(PathBuf),
    /// A layer tar: unpacked into the store, not recorded yet (until an image takes it), and the digest of its
    /// tar (the diff id). `None`: taken already, or not unpacked because the store holds that tar.
    Layer(Option<UnpackedLayer>, DiffId),
}

/// The archive once read: its files, and its links (path → target path, both cleaned, relative to the archive root).
#[derive(Default)]
struct Tree {
    files: HashMap<String, Staged>,
    links: HashMap<String, String>,
    /// Bytes of the files kept in memory.
    in_memory: u64,
}

impl TempTree {
    fn create(path: &Path) -> Result<TempTree> {
        fs::create_dir(path).map_err(io_ctx(|| format!("creating {}", path.display())))?;
        Ok(TempTree { path: path.to_path_buf() })
    }
}

impl Tree {
    fn add_layer(&mut self, name: String, u: UnpackedLayer) {
        let d = u.diff_id();
        self.files.insert(name, Staged::Layer(Some(u), d));
    }

    /// Fails with docker's message if the layer `path` is known not to be `expected` (files not recognised as
    /// layers are checked when they are unpacked).
    fn check_layer(&self, path: &str, expected: &DiffId, index: usize) -> Result<()> {
        match self.files.get(&self.resolve(path)?) {
            Some(Staged::Layer(_, d)) => check_diff_id(d, expected, index),
            _ => Ok(()),
        }
    }

    /// The file a path names, following the archive's links.
    fn resolve(&self, path: &str) -> Result<String> {
        let mut cur =
            clean(path).ok_or_else(|| bad(format!("invalid archive: the path {path:?} leaves the archive")))?;
        for _ in 0..16 {
            if self.files.contains_key(&cur) {
                return Ok(cur);
            }
            match self.links.get(&cur) {
                Some(t) => cur = t.clone(),
                None => return Err(bad(format!("invalid archive: {path} is missing"))),
            }
        }
        Err(bad(format!("invalid archive: too many levels of links at {path}")))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    /// A file that is not a layer tar (a layer tar is not a document a load reads).
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let p = self.resolve(path)?;
        match self.files.get(&p) {
            Some(Staged::Bytes(b)) => Ok(b.clone()),
            Some(Staged::Spilled(f)) => fs::read(f).map_err(io_ctx(|| format!("reading {p}"))),
            _ => Err(bad(format!("invalid archive: {path} is a layer tar, not a JSON document"))),
        }
    }

    fn read_json(&self, path: &str) -> Result<Value> {
        serde_json::from_slice(&self.read(path)?).map_err(|e| bad(format!("invalid archive: {path}: {e}")))
    }

    /// A blob of an OCI layout, verified against its digest.
    fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        let d = Digest::parse(digest)?;
        let bytes = self.read(&blob_path(&d))?;
        if Digest::of(&bytes) != d {
            return Err(bad(format!("invalid archive: blob {d} does not match its digest")));
        }
        Ok(bytes)
    }

    /// Images listed in docker's `manifest.json`.
    fn docker_manifests(&self) -> Result<Vec<Found>> {
        let m = self.read_json("manifest.json")?;
        let list = m.as_array().ok_or_else(|| bad("invalid archive: manifest.json is not a list"))?;
        let mut out = Vec::new();
        for e in list {
            let config_path = e["Config"].as_str().ok_or_else(|| bad("invalid archive: manifest.json: no Config"))?;
            let layers = match &e["Layers"] {
                Value::Null => Vec::new(),
                Value::Array(a) => a
                    .iter()
                    .map(|l| {
                        l.as_str().map(str::to_string).ok_or_else(|| bad("invalid archive: a layer is not a path"))
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(bad("invalid archive: manifest.json: Layers is not a list")),
            };
            let mut tags = Vec::new();
            if let Some(a) = e["RepoTags"].as_array() {
                for t in a.iter().filter_map(Value::as_str) {
                    let r = Reference::parse(t)
                        .map_err(|err| bad(format!("invalid archive: invalid reference {t:?}: {err}")))?;
                    tags.push(r.with_default_tag().to_string());
                }
            }
            out.push(Found { config: self.read(config_path)?, layers, tags });
        }
        Ok(out)
    }

    /// Images of a plain OCI layout's `index.json` (nested indexes resolved to the host's platform).
    fn oci_manifests(&self) -> Result<Vec<Found>> {
        let index = self.read_json("index.json")?;
        let mut out: Vec<Found> = Vec::new();
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        for desc in manifests {
            let ann = &desc["annotations"];
            let tag = ann["io.containerd.image.name"]
                .as_str()
                .or_else(|| ann["org.opencontainers.image.ref.name"].as_str())
                .and_then(|n| Reference::parse(n).ok())
                .filter(|r| r.digest().is_none())
                .map(|r| r.with_default_tag().to_string());
            let mut desc = desc.clone();
            for _ in 0..8 {
                let mt = desc["mediaType"].as_str().unwrap_or(media::OCI_MANIFEST);
                if mt != media::OCI_INDEX && mt != media::DOCKER_LIST {
                    break;
                }
                let sub: Value = serde_json::from_slice(&self.blob(desc["digest"].as_str().unwrap_or(""))?)
                    .map_err(|e| bad(format!("invalid archive: an index: {e}")))?;
                desc = pick_platform(&sub, host_architecture(), "linux", None).ok_or_else(|| {
                    bad(format!("invalid archive: no image for linux/{} in an index", host_architecture()))
                })?;
            }
            let manifest: Value = serde_json::from_slice(&self.blob(desc["digest"].as_str().unwrap_or(""))?)
                .map_err(|e| bad(format!("invalid archive: a manifest: {e}")))?;
            let config_digest = manifest["config"]["digest"].as_str().unwrap_or("");
            let config = self.blob(config_digest)?;
            let layers = manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| Digest::parse(l["digest"].as_str().unwrap_or("")).map(|d| blob_path(&d)))
                .collect::<Result<Vec<_>>>()?;
            let config_id = Digest::of(&config);
            match out.iter_mut().find(|f| Digest::of(&f.config) == config_id) {
                Some(f) => f.tags.extend(tag),
                None => out.push(Found { config, layers, tags: tag.into_iter().collect() }),
            }
        }
        Ok(out)
    }
}

fn blob_path(d: &Digest) -> String {
    let (alg, hex) = d.as_str().split_once(':').unwrap_or(("sha256", d.hex()));
    format!("blobs/{alg}/{hex}")
}

/// Picks the manifest of an index (OCI index or Docker manifest list) for `os`/`arch` (and `variant`, if given).
pub fn pick_platform(index: &Value, arch: &str, os: &str, variant: Option<&str>) -> Option<Value> {
    let list = index["manifests"].as_array()?;
    let matches = |d: &&Value| {
        let p = &d["platform"];
        p["os"].as_str() == Some(os)
            && p["architecture"].as_str() == Some(arch)
            && variant.is_none_or(|v| p["variant"].as_str() == Some(v))
    };
    list.iter()
        .find(matches)
        .or_else(|| if list.len() == 1 && list[0]["platform"].is_null() { list.first() } else { None })
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_refuses_escapes() {
        assert_eq!(clean("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("/etc/passwd"), None);
    }

    /// A layer tar with one file `name` of `len` bytes of a pattern.
    fn layer_tar(name: &str, len: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(len as u64);
        h.set_mode(0o644);
        h.set_uid(u64::from(nix::unistd::getuid().as_raw()));
        h.set_gid(u64::from(nix::unistd::getgid().as_raw()));
        h.set_mtime(0);
        h.set_cksum();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        b.append_data(&mut h, name, &data[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// A store with a two-layer image `two:v1` (the second layer larger than a few unpacker chunks) and its save.
    fn saved_image() -> (tempfile::TempDir, Store, ImageId, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        let a = s.import_layer(&layer_tar("a", 1000)[..], None).unwrap();
        let b = s.import_layer(&layer_tar("b", 3 * CHUNK + 17)[..], Some(&a.chain_id)).unwrap();
        let config = json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [a.diff_id.as_str(), b.diff_id.as_str()]}});
        let id = s.create_image_named(&to_json(&config).unwrap(), &["docker.io/library/two:v1".into()], &[]).unwrap();
        let mut out = Vec::new();
        s.save(&["two:v1".into()], &mut out).unwrap();
        (tmp, s, id, out)
    }

    /// What a failed load must not leave: temporary layer directories, blobs being written, scratch directories.
    fn leftovers(root: &Path) -> Vec<String> {
        let mut left: Vec<String> = fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        for e in fs::read_dir(root.join("layers")).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(crate::TMP_PREFIX) {
                left.push(e.path().display().to_string());
            }
        }
        left
    }

    #[test]
    fn the_archive_is_what_tar_builder_writes() {
        let (_tmp, _s, _id, out) = saved_image();
        let mut want = tar::Builder::new(Vec::new());
        let mut a = tar::Archive::new(&out[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(e.header().entry_type());
            h.set_mode(e.header().mode().unwrap());
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            want.append_data(&mut h, e.path().unwrap(), &data[..]).unwrap();
        }
        assert!(want.into_inner().unwrap() == out);
    }

    #[test]
    fn load_round_trip_and_damaged_archives() {
        let (_tmp, _s, id, out) = saved_image();
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        // Cut inside the big layer, inside a header: docker's words, nothing left.
        for cut in [out.len() / 2, 1024 + 100] {
            let mut lines = Vec::new();
            let e = s.load(&out[..cut], &mut |l| lines.push(l)).unwrap_err();
            assert_eq!(e.to_string(), TRUNCATED, "cut at {cut}");
            assert!(lines.is_empty() && s.list_images().unwrap().is_empty() && s.list_layers().unwrap().is_empty());
            assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
        }
        // A byte changed in the second layer's data: refused before anything is recorded.
        let (_, at, size) = {
            let mut a = tar::Archive::new(&out[..]);
            let e = a.entries().unwrap().map(|e| e.unwrap()).max_by_key(|e| e.size()).unwrap();
            (e.path().unwrap().display().to_string(), e.raw_file_position() as usize, e.size() as usize)
        };
        let mut bad_layer = out.clone();
        bad_layer[at + size / 2] ^= 1;
        let e = s.load(&bad_layer[..], &mut |_| {}).unwrap_err().to_string();
        assert!(e.starts_with("invalid diffID for layer 1: expected \"sha256:"), "{e}");
        assert!(s.list_layers().unwrap().is_empty() && leftovers(tmp.path()).is_empty());
        // The whole archive: the same image, its files in place.
        let mut lines = Vec::new();
        assert_eq!(s.load(&out[..], &mut |l| lines.push(l)).unwrap(), vec![id.clone()]);
        assert_eq!(lines, ["Loaded image: two:v1"]);
        let img = s.resolve_image("two:v1").unwrap();
        assert_eq!(img.id, id);
        assert_eq!(fs::metadata(img.lower_dirs()[0].join("b")).unwrap().len(), (3 * CHUNK + 17) as u64);
        // Again: the store's own blobs are used, nothing is unpacked.
        let before = s.list_layers().unwrap();
        assert_eq!(s.load(&out[..], &mut |_| {}).unwrap(), vec![id]);
        assert_eq!(s.list_layers().unwrap(), before);
        assert!(leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn platform_selection() {
        let idx = json!({"manifests": [
            {"digest": "a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "b", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(pick_platform(&idx, "amd64", "linux", None).map(|d| d["digest"].clone()), Some(json!("b")));
        assert_eq!(pick_platform(&idx, "arm64", "linux", Some("v8")).map(|d| d["digest"].clone()), Some(json!("a")));
        assert!(pick_platform(&idx, "s390x", "linux", None).is_none());
    }
}
