//! berth-store: the content store (blobs by digest), layers (tar import into overlayfs
//! format), images and references (docker's name normalisation), and the metadata database
//! (SQLite) that also holds the daemon's documents.
//!
//! Everything goes through [`Store`]. Its API is synchronous and blocking; `Store` is
//! `Send + Sync`, so the daemon shares one in an `Arc` and calls it from
//! `tokio::task::spawn_blocking`.
//!
//! Layout under the data root:
//!
//! ```text
//! berth.db                      SQLite (WAL, synchronous=FULL)
//! content/blobs/sha256/<hex>    immutable blobs (image configs, uncompressed layer tars)
//! content/ingest/               blobs being written (cleared on open)
//! layers/<chain-id-hex>/diff    unpacked layers (overlay lowerdirs); appear only when complete
//! layers/.tmp-*                 layers being unpacked or deleted (cleared on open)
//! layers/empty                  an empty directory, the lowerdir of an image with no layers
//! ```
//!
//! Durability: blobs are written to a temporary file, fsynced and renamed; an unpacked layer
//! is flushed with `syncfs` before its directory is renamed into place; metadata changes are
//! single SQLite transactions. Files are created before the rows that point to them and
//! deleted after, so a crash leaves at worst unreferenced files, which [`Store::open`] removes.

pub mod cache;
pub mod change;
pub mod content;
mod db;
pub mod digest;
mod error;
pub mod fault;
pub mod image;
pub mod layer;
pub mod reference;
pub mod save;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};
use serde_json::Value;

pub use crate::content::ContentStore;
pub use crate::digest::{ChainId, DiffId, Digest, ImageId};
pub use crate::error::{Result, StoreError};
pub use crate::image::{Image, ImportOptions};
pub use crate::layer::{Compression, ExtractOptions, Layer, UnpackTimings, extract, is_tar_archive, remove_tree_at};
pub use crate::reference::Reference;

use crate::content::{fsync_dir, random_hex};
use crate::error::io_ctx;

/// How long a freshly imported layer is protected from garbage collection while no image
/// uses it yet (the gap between a pull's layer imports and its `create_image`).
const PIN_TTL: Duration = Duration::from_secs(3600);

/// Prefix of temporary directories under `layers/`.
const TMP_PREFIX: &str = ".tmp-";

/// The store: open one per data root.
pub struct Store {
    root: PathBuf,
    layers: PathBuf,
    content: ContentStore,
    db: db::Db,
    /// Layers imported recently and not yet used by an image, with the time of import.
    pins: Mutex<HashMap<ChainId, Instant>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `root` (created if missing): creates the layout, opens and migrates
    /// the database, and repairs what a crash can leave behind (unfinished ingests and layer
    /// directories, layer directories without records, queued blob deletions, layers no
    /// image or build-cache entry uses, blobs no layer or image uses).
    pub fn open(root: &Path) -> Result<Store> {
        let layers = root.join("layers");
        for d in [root.to_path_buf(), layers.clone(), layers.join("empty")] {
            fs::create_dir_all(&d).map_err(io_ctx(|| format!("creating {}", d.display())))?;
        }
        let content = ContentStore::open(&root.join("content"))?;
        let db = db::Db::open(&root.join("berth.db"))?;
        let store = Store { root: root.to_path_buf(), layers, content, db, pins: Mutex::new(HashMap::new()) };
        store.repair()?;
        Ok(store)
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content store (blobs by digest).
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    // ----- documents -------------------------------------------------------------------

    /// Inserts or replaces the document `kind`/`id`. `name`, if given, must be unique among
    /// documents of that kind (another id holding it is `Conflict`). The write is on disk when
    /// this returns.
    pub fn put_doc(&self, kind: &str, id: &str, name: Option<&str>, doc: &Value) -> Result<()> {
        self.put_doc_with(kind, id, name, doc, true)
    }

    /// Like [`Store::put_doc`] for changes that a power loss may take back (a container's run
    /// state, which a power loss ends anyway): committed atomically, but not synced to disk
    /// until the next durable write or checkpoint (SQLite's `synchronous=NORMAL` in WAL mode).
    pub fn put_doc_lazy(&self, kind: &str, id: &str, name: Option<&str>, doc: &Value) -> Result<()> {
        self.put_doc_with(kind, id, name, doc, false)
    }

    fn put_doc_with(&self, kind: &str, id: &str, name: Option<&str>, doc: &Value, durable: bool) -> Result<()> {
        let text = serde_json::to_string(doc)
            .map_err(|e| StoreError::InvalidArgument(format!("cannot serialise {kind} {id}: {e}")))?;
        self.with_sync(durable, |conn| db::put_doc(conn, kind, id, name, &text))
    }

    /// Runs `f` on the connection; without `durable`, its commits are not synced to disk on their own.
    fn with_sync<T>(&self, durable: bool, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.db.lock();
        if durable {
            return f(&mut conn);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let res = f(&mut conn);
        conn.pragma_update(None, "synchronous", "FULL")?;
        res
    }

    /// The document `kind`/`id`, if present.
    pub fn get_doc(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let text = db::get_doc(&self.db.lock(), kind, id)?;
        text.map(|t| parse_doc(kind, &t)).transpose()
    }

    /// All documents of `kind`, ordered by id.
    pub fn list_docs(&self, kind: &str) -> Result<Vec<Value>> {
        let texts = db::list_docs(&self.db.lock(), kind)?;
        texts.iter().map(|t| parse_doc(kind, t)).collect()
    }

    /// Deletes the document `kind`/`id`; deleting a missing document is not an error.
    pub fn delete_doc(&self, kind: &str, id: &str) -> Result<()> {
        db::delete_doc(&self.db.lock(), kind, id).map(drop)
    }

    /// Like [`Store::delete_doc`], not synced on its own (see [`Store::put_doc_lazy`]): after a power loss the
    /// document may be back, as a removed Docker container's directory may be.
    pub fn delete_doc_lazy(&self, kind: &str, id: &str) -> Result<()> {
        self.with_sync(false, |conn| db::delete_doc(conn, kind, id).map(drop))
    }

    /// The id of the `kind` document called `name`.
    pub fn id_by_name(&self, kind: &str, name: &str) -> Result<Option<String>> {
        db::id_by_name(&self.db.lock(), kind, name)
    }

    // ----- layers ----------------------------------------------------------------------

    /// Imports a layer from a tar stream (plain or gzip) on top of `parent`: stores the
    /// uncompressed tar as a blob (its digest is the diff id) and unpacks it into
    /// `layers/<chain-id>/diff`. If the layer already exists the existing one is returned.
    /// Malformed input is `InvalidArgument` and leaves nothing behind.
    pub fn import_layer(&self, reader: impl Read, parent: Option<&ChainId>) -> Result<Layer> {
        self.import_layer_inner(reader, parent, None)
    }

    /// Like [`Store::import_layer`] for a layer whose diff id is known in advance (a pull):
    /// returns at once if it exists, and fails with `InvalidArgument` if the stream does not
    /// hash to `expected`.
    pub fn import_layer_verified(
        &self,
        reader: impl Read,
        parent: Option<&ChainId>,
        expected: &DiffId,
    ) -> Result<Layer> {
        let chain = ChainId::compute(parent, expected);
        if let Some(l) = self.existing_layer(&chain)? {
            return Ok(l);
        }
        self.import_layer_inner(reader, parent, Some(expected))
    }

    /// The layer `chain` if the store holds it complete (record and directory), pinned against garbage collection
    /// as a fresh import is.
    fn existing_layer(&self, chain: &ChainId) -> Result<Option<Layer>> {
        match self.layer(chain)? {
            Some(l) if self.layers.join(chain.hex()).is_dir() => {
                self.pin_chain(&self.db.lock(), chain)?;
                Ok(Some(l))
            }
            _ => Ok(None),
        }
    }

    fn import_layer_inner(
        &self,
        reader: impl Read,
        parent: Option<&ChainId>,
        expected: Option<&DiffId>,
    ) -> Result<Layer> {
        if let Some(p) = parent
            && self.layer(p)?.is_none()
        {
            return Err(StoreError::NotFound(format!("parent layer {p} not found")));
        }
        let tmp = TempDir::create(&self.layers)?;
        let diff_dir = tmp.path.join("diff");
        fs::create_dir(&diff_dir).map_err(io_ctx(|| format!("creating {}", diff_dir.display())))?;
        let unpacked = layer::unpack(reader, self.content.writer()?, &diff_dir, None)?;
        self.commit_layer(tmp, unpacked, parent, expected, None)
    }

    /// Unpacks a layer stream (plain or compressed) into a new directory of the store without recording it, so
    /// that several layers of an image can unpack at the same time, before the layers below them are in the store:
    /// [`Store::commit_unpacked`] records it on top of its parent. Dropping the result removes what it holds.
    /// Malformed input is `InvalidArgument`; time spent is added to `timings`.
    pub fn unpack_layer(&self, reader: impl Read, timings: Option<&layer::UnpackTimings>) -> Result<UnpackedLayer> {
        let tmp = TempDir::create(&self.layers)?;
        let diff_dir = tmp.path.join("diff");
        fs::create_dir(&diff_dir).map_err(io_ctx(|| format!("creating {}", diff_dir.display())))?;
        let unpacked = layer::unpack(reader, self.content.writer()?, &diff_dir, timings)?;
        Ok(UnpackedLayer { tmp, unpacked })
    }

    /// Records a layer [`Store::unpack_layer`] made on top of `parent` (which must exist), after checking that its
    /// tar hashes to `expected` (`InvalidArgument` if not). Syncs it first (one `syncfs`), as every import does.
    pub fn commit_unpacked(
        &self,
        layer: UnpackedLayer,
        parent: Option<&ChainId>,
        expected: &DiffId,
        timings: Option<&layer::UnpackTimings>,
    ) -> Result<Layer> {
        if let Some(p) = parent
            && self.layer(p)?.is_none()
        {
            return Err(StoreError::NotFound(format!("parent layer {p} not found")));
        }
        self.commit_layer(layer.tmp, layer.unpacked, parent, Some(expected), timings)
    }

    /// Makes the directory `dir` (an overlay upper directory: overlay whiteouts, opaque directories) a layer on top
    /// of `parent`, without unpacking anything: `tar` is its content as a layer tar (stored as the blob, its digest
    /// the diff id). `dir` must be on the store's file system; it is moved into place (or removed, when the layer
    /// exists already). A builder's step: its writable layer becomes the image's layer as it is.
    pub fn adopt_layer(&self, dir: &Path, tar: &mut dyn Read, parent: Option<&ChainId>) -> Result<Layer> {
        if let Some(p) = parent
            && self.layer(p)?.is_none()
        {
            return Err(StoreError::NotFound(format!("parent layer {p} not found")));
        }
        let mut blob = self.content.writer()?;
        io::copy(tar, &mut blob).map_err(|e| StoreError::io("writing the layer blob", e))?;
        let blob = blob.finish()?;
        let size = tree_size(dir);
        let tmp = TempDir::create(&self.layers)?;
        fs::rename(dir, tmp.path.join("diff"))
            .map_err(io_ctx(|| format!("moving {} into the store", dir.display())))?;
        self.commit_layer(tmp, layer::Unpacked { blob, size }, parent, None, None)
    }

    /// Records an unpacked layer (in `tmp/diff`) and its blob, or returns the existing layer of that chain id.
    fn commit_layer(
        &self,
        tmp: TempDir,
        unpacked: layer::Unpacked,
        parent: Option<&ChainId>,
        expected: Option<&DiffId>,
        timings: Option<&layer::UnpackTimings>,
    ) -> Result<Layer> {
        let diff_id = DiffId::from(unpacked.blob.digest().clone());
        if let Some(e) = expected
            && *e != diff_id
        {
            return Err(StoreError::InvalidArgument(format!("layer digest mismatch: expected {e}, got {diff_id}")));
        }
        let chain = ChainId::compute(parent, &diff_id);
        // One flush of the file system for the layer's files and its blob (no fsync per file), as containerd does.
        let t = std::time::Instant::now();
        syncfs(&tmp.path)?;
        unpacked.blob.sync_unless_on(&tmp.path)?;
        if let Some(timings) = timings {
            layer::UnpackTimings::add(&timings.sync, t);
        }
        let layer = Layer {
            chain_id: chain.clone(),
            diff_id,
            parent: parent.cloned(),
            size: unpacked.size,
            tar_size: unpacked.blob.size(),
        };
        let dest = self.layers.join(chain.hex());
        let mut stale = None;
        let result = {
            let conn = self.db.lock();
            unpacked.blob.commit()?;
            match db::get_layer(&conn, &chain)? {
                Some(existing) if dest.is_dir() => {
                    self.pin_chain(&conn, &chain)?;
                    existing
                }
                _ => {
                    if dest.exists() {
                        stale = Some(self.move_aside(&dest)?);
                    }
                    fs::rename(&tmp.path, &dest).map_err(io_ctx(|| format!("committing layer {chain}")))?;
                    tmp.disarm();
                    fsync_dir(&self.layers)?;
                    db::insert_layer(&conn, &layer)?;
                    self.pin_chain(&conn, &chain)?;
                    layer
                }
            }
        };
        if let Some(s) = stale {
            remove_dir_logged(&s);
        }
        Ok(result)
    }

    /// The layer with chain id `chain`, if present.
    pub fn layer(&self, chain: &ChainId) -> Result<Option<Layer>> {
        db::get_layer(&self.db.lock(), chain)
    }

    /// All layers.
    pub fn list_layers(&self) -> Result<Vec<Layer>> {
        db::all_layers(&self.db.lock())
    }

    /// The unpacked directory of a layer (an overlay lowerdir).
    pub fn layer_dir(&self, chain: &ChainId) -> PathBuf {
        self.layers.join(chain.hex()).join("diff")
    }

    /// An always-empty directory: the lowerdir for images without layers.
    pub fn empty_layer_dir(&self) -> PathBuf {
        self.layers.join("empty")
    }

    /// The uncompressed tar of a layer, for `docker save` and pushes.
    pub fn layer_tar(&self, diff_id: &DiffId) -> Result<fs::File> {
        self.content.open_blob(diff_id.digest())
    }

    /// Total unpacked size of all layers in bytes (the "images" line of `system df`).
    pub fn disk_usage(&self) -> Result<u64> {
        let conn = self.db.lock();
        let total: i64 = conn.query_row("SELECT COALESCE(SUM(size), 0) FROM layers", [], |r| r.get(0))?;
        Ok(total.max(0) as u64)
    }

    // ----- garbage collection and repair -------------------------------------------------

    /// Protects `chain` and the layers below it from garbage collection for [`PIN_TTL`].
    fn pin_chain(&self, conn: &Connection, chain: &ChainId) -> Result<()> {
        let mut chains = vec![chain.clone()];
        let mut cur = chain.clone();
        while let Some(parent) = db::get_layer(conn, &cur)?.and_then(|l| l.parent) {
            if chains.len() > 4096 {
                break;
            }
            chains.push(parent.clone());
            cur = parent;
        }
        let now = Instant::now();
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.retain(|_, t| now.duration_since(*t) < PIN_TTL);
        for c in chains {
            pins.insert(c, now);
        }
        Ok(())
    }

    /// Releases pins once an image uses the layers.
    fn unpin(&self, chains: &[ChainId]) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        for c in chains {
            pins.remove(c);
        }
    }

    fn is_pinned(&self, chain: &ChainId) -> bool {
        let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.get(chain).is_some_and(|t| t.elapsed() < PIN_TTL)
    }

    /// Within `tx`: deletes the records of the `candidates` no image uses (and no pin holds)
    /// and queues the blobs nothing needs any more (their tars and `extra_blobs`). Returns
    /// the layers deleted; their directories are removed by [`Store::finish_gc`].
    fn gc_in_tx(&self, tx: &Transaction<'_>, candidates: &[ChainId], extra_blobs: &[Digest]) -> Result<Vec<ChainId>> {
        let mut deleted = Vec::new();
        let mut blobs: Vec<String> = extra_blobs.iter().map(|d| d.as_str().to_string()).collect();
        let mut seen = HashSet::new();
        for chain in candidates {
            if !seen.insert(chain.clone()) || db::layer_referenced(tx, chain.as_str())? || self.is_pinned(chain) {
                continue;
            }
            if let Some(l) = db::get_layer(tx, chain)? {
                tx.execute("DELETE FROM layers WHERE chain_id = ?1", params![chain.as_str()])?;
                blobs.push(l.diff_id.as_str().to_string());
                deleted.push(chain.clone());
            }
        }
        for b in blobs {
            if !db::blob_referenced(tx, &b)? {
                tx.execute("INSERT OR IGNORE INTO blob_deletes (digest) VALUES (?1)", params![b])?;
            }
        }
        Ok(deleted)
    }

    /// After the GC transaction committed (lock still held): deletes queued blobs and moves
    /// the deleted layers' directories aside. Returns the directories to remove once the
    /// lock is released.
    fn finish_gc(&self, conn: &Connection, deleted: &[ChainId]) -> Result<Vec<PathBuf>> {
        self.process_blob_deletes(conn)?;
        let mut aside = Vec::new();
        for chain in deleted {
            let dir = self.layers.join(chain.hex());
            if dir.exists() {
                aside.push(self.move_aside(&dir)?);
            }
        }
        if !aside.is_empty() {
            fsync_dir(&self.layers)?;
        }
        Ok(aside)
    }

    /// Unlinks the blobs queued for deletion that are still unreferenced.
    fn process_blob_deletes(&self, conn: &Connection) -> Result<()> {
        let queued: Vec<String> = {
            let mut stmt = conn.prepare_cached("SELECT digest FROM blob_deletes")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for d in queued {
            if !db::blob_referenced(conn, &d)?
                && let Ok(digest) = Digest::parse(&d)
            {
                self.content.remove(&digest)?;
            }
            conn.execute("DELETE FROM blob_deletes WHERE digest = ?1", params![d])?;
        }
        Ok(())
    }

    /// Renames a layer directory to a temporary name (removed later, or on the next open).
    fn move_aside(&self, dir: &Path) -> Result<PathBuf> {
        let aside = self.layers.join(format!("{TMP_PREFIX}del-{}", random_hex(8)?));
        fs::rename(dir, &aside).map_err(io_ctx(|| format!("moving {} aside", dir.display())))?;
        Ok(aside)
    }

    /// Start-up repair: see [`Store::open`].
    fn repair(&self) -> Result<()> {
        let entries = fs::read_dir(&self.layers).map_err(io_ctx(|| format!("reading {}", self.layers.display())))?;
        let mut dirs = HashSet::new();
        for entry in entries {
            let entry = entry.map_err(io_ctx(|| format!("reading {}", self.layers.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                tracing::info!(dir = %entry.path().display(), "removing unfinished layer directory");
                remove_dir_logged(&entry.path());
            } else if digest::is_sha256_hex(&name) {
                dirs.insert(name);
            }
        }
        let mut conn = self.db.lock();
        let layers = db::all_layers(&conn)?;
        let known: HashSet<String> = layers.iter().map(|l| l.chain_id.hex().to_string()).collect();
        for orphan in dirs.difference(&known) {
            let dir = self.layers.join(orphan);
            tracing::info!(dir = %dir.display(), "removing layer directory without a record");
            remove_dir_logged(&dir);
        }
        // Every layer is a candidate: one used only by layers above it that nothing uses (a pull cut short after
        // several layers) is free once they are gone.
        let mut candidates = Vec::new();
        for l in &layers {
            candidates.push(l.chain_id.clone());
            if !dirs.contains(l.chain_id.hex()) && db::layer_referenced(&conn, l.chain_id.as_str())? {
                tracing::error!(layer = %l.chain_id, "layer directory is missing; images using it cannot run");
            }
        }
        // Children first: a layer is in use while a layer above it exists, so one pass from the top frees a chain.
        let depth = layer_depths(&layers);
        candidates.sort_by_key(|c| std::cmp::Reverse(depth.get(c).copied().unwrap_or(0)));
        let tx = conn.transaction()?;
        let deleted = self.gc_in_tx(&tx, &candidates, &[])?;
        tx.commit()?;
        if !deleted.is_empty() {
            tracing::info!(count = deleted.len(), "removed layers no image uses");
        }
        let aside = self.finish_gc(&conn, &deleted)?;
        // Blobs no layer or image refers to: a config written just before a crash took its image row's
        // transaction away, or a layer tar stored just before its layer row.
        let mut orphans = 0;
        for blob in self.content.list()? {
            if !db::blob_referenced(&conn, blob.as_str())? {
                self.content.remove(&blob)?;
                orphans += 1;
            }
        }
        if orphans > 0 {
            tracing::info!(count = orphans, "removed blobs no layer or image uses");
        }
        drop(conn);
        for d in aside {
            remove_dir_logged(&d);
        }
        Ok(())
    }
}

/// Bytes of the regular files below `dir` (a layer's unpacked size).
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    for e in entries.flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => total += tree_size(&e.path()),
            Ok(m) if m.is_file() => total += m.len(),
            _ => {}
        }
    }
    total
}

/// Each layer's distance from the bottom of its chain.
fn layer_depths(layers: &[Layer]) -> HashMap<ChainId, usize> {
    let parents: HashMap<&ChainId, Option<&ChainId>> =
        layers.iter().map(|l| (&l.chain_id, l.parent.as_ref())).collect();
    let mut depth = HashMap::new();
    for l in layers {
        let (mut n, mut cur) = (0, l.parent.as_ref());
        while let Some(p) = cur {
            n += 1;
            if n > 4096 {
                break;
            }
            cur = parents.get(p).copied().flatten();
        }
        depth.insert(l.chain_id.clone(), n);
    }
    depth
}

fn parse_doc(kind: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored {kind} document: {e}")))
}

/// Flushes the filesystem holding `dir` (the unpacked files of a layer) to disk.
fn syncfs(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(io_ctx(|| format!("opening {}", dir.display())))?;
    nix::unistd::syncfs(&f).map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e.into()))
}

fn remove_dir_logged(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove directory");
    }
}

/// A temporary directory under `layers/`, removed on drop unless disarmed.
/// A layer unpacked into the store's directory but not recorded yet ([`Store::unpack_layer`]); removed if dropped.
pub struct UnpackedLayer {
    tmp: TempDir,
    unpacked: layer::Unpacked,
}

impl UnpackedLayer {
    /// The digest of its uncompressed tar.
    pub fn diff_id(&self) -> DiffId {
        DiffId::from(self.unpacked.blob.digest().clone())
    }
}

impl std::fmt::Debug for UnpackedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnpackedLayer({})", self.tmp.path.display())
    }
}

struct TempDir {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl TempDir {
    fn create(parent: &Path) -> Result<TempDir> {
        let path = parent.join(format!("{TMP_PREFIX}{}", random_hex(8)?));
        fs::create_dir(&path).map_err(io_ctx(|| format!("creating {}", path.display())))?;
        Ok(TempDir { path, armed: std::cell::Cell::new(true) })
    }

    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed.get() {
            remove_dir_logged(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
