//! The content store: immutable blobs addressed by their sha256 digest under
//! `content/blobs/sha256/<hex>`. A blob is written to a temporary file in `content/ingest/`,
//! hashed while written, fsynced and renamed into place, so a crash leaves either no blob or
//! the whole blob; `ingest/` leftovers are removed when the store opens.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Digester};
use crate::error::{Result, StoreError, io_ctx};

/// Blobs by digest, under `<data root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the content store in `dir` and removes unfinished ingests.
    pub(crate) fn open(dir: &Path) -> Result<ContentStore> {
        let blobs = dir.join("blobs").join("sha256");
        let ingest = dir.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(io_ctx(|| format!("creating {}", d.display())))?;
        }
        let entries = fs::read_dir(&ingest).map_err(io_ctx(|| format!("reading {}", ingest.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_ctx(|| format!("reading {}", ingest.display())))?;
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing unfinished blob ingest");
            let res = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            res.map_err(io_ctx(|| format!("removing {}", path.display())))?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// The ingest directory (cleared when the store opens): scratch space for work that must not survive a crash.
    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// True if the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.blob_path(digest)).map(|m| m.is_file()).unwrap_or(false)
    }

    /// The size of a blob in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(digest)),
            Err(e) => Err(StoreError::io(format!("reading blob {digest}"), e)),
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        match File::open(self.blob_path(digest)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(digest)),
            Err(e) => Err(StoreError::io(format!("opening blob {digest}"), e)),
        }
    }

    /// Reads a whole blob and checks its digest (a mismatch is `Corrupt`).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut buf).map_err(io_ctx(|| format!("reading blob {digest}")))?;
        if Digest::of(&buf) != *digest {
            return Err(StoreError::Corrupt(format!("blob {digest} does not match its digest")));
        }
        Ok(buf)
    }

    /// Stores `bytes` and returns their digest (a no-op if the blob exists).
    pub fn write(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_ctx(|| "writing blob".to_string()))?;
        w.commit()
    }

    /// A writer for a new blob; its digest is known when it is finished.
    pub fn writer(&self) -> Result<BlobWriter> {
        let temp = self.ingest.join(random_hex(16)?);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_ctx(|| format!("creating {}", temp.display())))?;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            temp,
            blobs: self.blobs.clone(),
            hasher: Digester::new(),
            size: 0,
            written_back: 0,
        })
    }

    /// Deletes a blob; a missing blob is not an error.
    pub(crate) fn remove(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("removing blob {digest}"), e)),
        }
    }

    /// The digests of every stored blob (files that are not named by a digest are skipped).
    pub(crate) fn list(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.blobs).map_err(io_ctx(|| format!("reading {}", self.blobs.display())))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_ctx(|| format!("reading {}", self.blobs.display())))?;
            if let Ok(d) = Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy())) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The total size of all blobs in bytes.
    pub fn total_size(&self) -> Result<u64> {
        let mut total = 0;
        let entries = fs::read_dir(&self.blobs).map_err(io_ctx(|| format!("reading {}", self.blobs.display())))?;
        for entry in entries.flatten() {
            if let Ok(m) = entry.metadata() {
                total += m.len();
            }
        }
        Ok(total)
    }
}

fn not_found(digest: &Digest) -> StoreError {
    StoreError::NotFound(format!("blob {digest} not found"))
}

/// A blob being written: hashes what it writes; removed unless committed.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    blobs: PathBuf,
    hasher: Digester,
    size: u64,
    /// Bytes whose write-back to the disk was started.
    written_back: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("blob writer already finished"));
        };
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        // What has reached the file (not what the buffer still holds) goes to the disk in the background.
        let flushed = self.size - file.buffer().len() as u64;
        if flushed - self.written_back >= WRITEBACK_EVERY {
            start_writeback(file.get_ref(), self.written_back, flushed - self.written_back);
            self.written_back = flushed;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes and fsyncs the data; the blob is not visible until [`PendingBlob::commit`].
    pub fn finish(self) -> Result<PendingBlob> {
        self.finish_with(true)
    }

    /// Flushes the data without syncing it: the caller syncs the file system before committing
    /// ([`PendingBlob::sync_unless_on`]), one `syncfs` for the blob and a layer's files.
    pub(crate) fn finish_unsynced(self) -> Result<PendingBlob> {
        self.finish_with(false)
    }

    fn finish_with(mut self, sync: bool) -> Result<PendingBlob> {
        let Some(file) = self.file.take() else {
            return Err(StoreError::io("finishing blob", io::Error::other("blob writer already finished")));
        };
        let file = file
            .into_inner()
            .map_err(|e| StoreError::io(format!("writing {}", self.temp.display()), e.into_error()))?;
        if sync {
            file.sync_all().map_err(io_ctx(|| format!("syncing {}", self.temp.display())))?;
        }
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        Ok(PendingBlob {
            temp: std::mem::take(&mut self.temp),
            blobs: std::mem::take(&mut self.blobs),
            digest: hasher.finish(),
            size: self.size,
            done: false,
        })
    }

    /// Finishes and commits the blob in one go.
    pub fn commit(self) -> Result<Digest> {
        self.finish()?.commit()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A fully written and synced blob waiting to be renamed into place; removed if dropped.
#[derive(Debug)]
pub struct PendingBlob {
    temp: PathBuf,
    blobs: PathBuf,
    digest: Digest,
    size: u64,
    done: bool,
}

impl PendingBlob {
    /// The digest of the content.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size of the content in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// fsyncs the blob's data unless it lives on the file system of `synced` (which the caller has just flushed
    /// with `syncfs`).
    pub(crate) fn sync_unless_on(&self, synced: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ok();
        if dev(&self.temp).is_some() && dev(&self.temp) == dev(synced) {
            return Ok(());
        }
        File::open(&self.temp).and_then(|f| f.sync_all()).map_err(io_ctx(|| format!("syncing {}", self.temp.display())))
    }

    /// Renames the blob into place (replacing an identical existing blob) and syncs the directory.
    pub fn commit(mut self) -> Result<Digest> {
        let dest = self.blobs.join(self.digest.hex());
        fs::rename(&self.temp, &dest).map_err(io_ctx(|| format!("committing blob {}", self.digest)))?;
        self.done = true;
        fsync_dir(&self.blobs)?;
        Ok(self.digest.clone())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Every how many bytes a large file being written has its disk write-back started ([`start_writeback`]).
pub(crate) const WRITEBACK_EVERY: u64 = 8 << 20;

/// Starts writing `len` bytes of `file` at `offset` to the disk without waiting for it (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`: no durability by itself). A layer's data then goes to the disk while the rest of it
/// downloads and unpacks, and the one `syncfs` before the layer is committed finds little left to write. A failure
/// costs nothing but that overlap, so it is ignored.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return;
    }
    // SAFETY: a plain syscall on a descriptor `file` owns for the duration of the call; no memory is passed.
    let _ = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

/// fsyncs a directory so renames and unlinks in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_ctx(|| format!("syncing directory {}", dir.display())))
}

/// `n` random bytes as hex, for temporary names.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| StoreError::io("reading random bytes", io::Error::other(e.to_string())))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_discard() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(io_ctx(|| "tempdir".into()))?;
        let cs = ContentStore::open(tmp.path())?;
        let d = cs.write(b"hello")?;
        assert!(cs.contains(&d));
        assert_eq!(cs.read(&d)?, b"hello");
        assert_eq!(cs.size(&d)?, 5);
        let mut w = cs.writer()?;
        w.write_all(b"dropped").map_err(io_ctx(|| "write".into()))?;
        drop(w);
        let pending = {
            let mut w = cs.writer()?;
            w.write_all(b"pending").map_err(io_ctx(|| "write".into()))?;
            w.finish()?
        };
        let pd = pending.digest().clone();
        drop(pending);
        assert!(!cs.contains(&pd));
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).map(|d| d.count()).unwrap_or(99), 0);
        cs.remove(&d)?;
        assert!(!cs.contains(&d));
        assert!(cs.read(&d).is_err_and(|e| e.is_not_found()));
        Ok(())
    }
}
