//! The registry's storage: blobs, repository links, manifests, tags and uploads as files under one root (the layout
//! is in the parent module's doc). Typed calls and typed errors; no HTTP here (`api.rs` maps both).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The repository name breaks the grammar.
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    /// Nothing was ever pushed to the repository.
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    /// The tag breaks the grammar.
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    /// Not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {0:?}")]
    DigestInvalid(String),
    /// A digest algorithm other than sha256.
    #[error("unsupported digest algorithm {0}")]
    DigestUnsupported(String),
    /// The content does not hash to the digest the client named (the upload is discarded).
    #[error("provided digest did not match uploaded content (sha256:{0})")]
    DigestMismatch(String),
    /// The blob is not in the repository.
    #[error("blob unknown to registry")]
    BlobUnknown,
    /// No such upload in the repository.
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    /// A chunk that does not continue the upload, which holds `0` bytes so far.
    #[error("chunk does not start at the upload's size {0}")]
    ChunkOutOfOrder(u64),
    /// The request body broke off.
    #[error("reading the upload: {0}")]
    UploadInvalid(String),
    /// No such manifest or tag in the repository.
    #[error("manifest unknown")]
    ManifestUnknown,
    /// Not a manifest this registry stores.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// The manifest references a blob the repository does not have.
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    /// The index references a manifest the repository does not have.
    #[error("manifest unknown to registry: {0}")]
    ManifestChildUnknown(String),
    /// The file system failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::Io(what.to_string(), e)
}

/// The distribution spec's repository name grammar: components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
pub fn valid_name(n: &str) -> bool {
    n.len() <= 255 && n.split('/').all(berth_store::reference::is_path_component)
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    berth_store::reference::is_tag(t)
}

/// The hex of a `sha256:<64 hex>` digest.
pub fn digest_hex(d: &str) -> Result<String> {
    match d.split_once(':') {
        Some(("sha256", h)) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) => {
            Ok(h.to_string())
        }
        Some((alg, _)) if alg != "sha256" && !alg.is_empty() => Err(StorageError::DigestUnsupported(alg.to_string())),
        _ => Err(StorageError::DigestInvalid(d.to_string())),
    }
}

/// A checked repository name.
pub fn check_name(n: &str) -> Result<()> {
    if valid_name(n) { Ok(()) } else { Err(StorageError::NameInvalid(n.to_string())) }
}

/// What a manifest URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag.
    Tag(String),
    /// A digest's hex.
    Digest(String),
}

impl Reference {
    /// A tag or a digest, checked.
    pub fn parse(r: &str) -> Result<Reference> {
        if r.contains(':') {
            Ok(Reference::Digest(digest_hex(r)?))
        } else if valid_tag(r) {
            Ok(Reference::Tag(r.to_string()))
        } else {
            Err(StorageError::TagInvalid(r.to_string()))
        }
    }
}

/// A manifest as stored.
#[derive(Debug)]
pub struct Manifest {
    /// Its digest's hex.
    pub hex: String,
    /// Its media type (the body's `mediaType`, else the `Content-Type` it was pushed with).
    pub media_type: String,
    /// Its bytes, exactly as pushed.
    pub data: Vec<u8>,
}

/// A stored manifest's digest, and the digest of its `subject` if it has one.
#[derive(Debug)]
pub struct Stored {
    /// The manifest's digest hex.
    pub hex: String,
    /// `subject.digest`.
    pub subject: Option<String>,
}

/// A random 128-bit id in hex (upload ids, temporary file names).
fn random_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = t.to_le_bytes();
    }
    hex::encode(b)
}

/// The repositories below `dir` (those with a `_manifests` directory), as `a/b` names.
pub(super) fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') {
            continue;
        }
        let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if e.path().join("_manifests").is_dir() {
            out.push(full.clone());
        }
        walk_repos(&e.path(), &full, out);
    }
}

/// The storage under one root.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    /// Running hashes of uploads, while they are appended to in order by this process.
    hashers: Mutex<HashMap<String, (u64, Sha256)>>,
}

impl Storage {
    /// Opens (creating) the storage in `root`.
    pub fn open(root: &Path) -> std::io::Result<Storage> {
        for d in ["blobs/sha256", "repositories", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(Storage { root: root.to_path_buf(), hashers: Mutex::new(HashMap::new()) })
    }

    /// The storage directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob(&self, hex: &str) -> PathBuf {
        super::blob_path(&self.root, hex)
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn upload(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(uuid)
    }

    fn upload_owner(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{uuid}.repo"))
    }

    /// Writes `data` to `dest` atomically and durably (written aside, fsynced, renamed into place).
    async fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.root.join("tmp").join(random_id());
        let (dest, data) = (dest.to_path_buf(), data.to_vec());
        let what = format!("writing {}", dest.display());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write as _;
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p)?;
            }
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        })
        .await
        .map_err(|e| StorageError::Io(what.clone(), std::io::Error::other(e)))?
        .map_err(io(what))
    }

    /// Whether the blob is part of the repository (a layer or config linked there, or one of its manifests).
    fn linked(&self, name: &str, hex: &str) -> bool {
        self.repo(name).join("_layers").join(hex).exists() || self.repo(name).join("_manifests").join(hex).exists()
    }

    async fn link(&self, name: &str, hex: &str) -> Result<()> {
        self.write_atomic(&self.repo(name).join("_layers").join(hex), b"").await
    }

    fn known(&self, name: &str) -> bool {
        self.repo(name).join("_manifests").is_dir() || self.repo(name).join("_layers").is_dir()
    }

    /// The repositories with manifests, sorted.
    pub async fn repositories(&self) -> Result<Vec<String>> {
        let root = self.root.join("repositories");
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk_repos(&root, "", &mut out);
            out.sort();
            out
        })
        .await
        .map_err(|e| StorageError::Io("listing repositories".into(), std::io::Error::other(e)))
    }

    /// A repository's tags, sorted.
    pub async fn tags(&self, name: &str) -> Result<Vec<String>> {
        if !self.known(name) {
            return Err(StorageError::NameUnknown(name.to_string()));
        }
        let mut all = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(self.repo(name).join("_tags")).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                all.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        all.sort();
        Ok(all)
    }

    /// A blob of the repository, opened, and its size.
    pub async fn open_blob(&self, name: &str, hex: &str) -> Result<(tokio::fs::File, u64)> {
        if !self.linked(name, hex) {
            return Err(StorageError::BlobUnknown);
        }
        let f = tokio::fs::File::open(self.blob(hex)).await.map_err(|_| StorageError::BlobUnknown)?;
        let size = f.metadata().await.map_err(io("blob metadata"))?.len();
        Ok((f, size))
    }

    /// Unlinks a blob from the repository (`gc` deletes it once nothing else references it).
    pub async fn delete_blob(&self, name: &str, hex: &str) -> Result<()> {
        tokio::fs::remove_file(self.repo(name).join("_layers").join(hex)).await.map_err(|_| StorageError::BlobUnknown)
    }

    /// Links a blob of repository `from` into `name`; false when `from` does not have it.
    pub async fn mount(&self, name: &str, from: &str, hex: &str) -> Result<bool> {
        if !valid_name(from) || !self.linked(from, hex) || !self.blob(hex).exists() {
            return Ok(false);
        }
        self.link(name, hex).await?;
        Ok(true)
    }

    /// Opens an upload to repository `name`; returns its id.
    pub async fn start_upload(&self, name: &str) -> Result<String> {
        let uuid = random_id();
        self.write_atomic(&self.upload_owner(&uuid), name.as_bytes()).await?;
        tokio::fs::File::create(self.upload(&uuid)).await.map_err(io("creating an upload"))?;
        self.hashers.lock().unwrap_or_else(|p| p.into_inner()).insert(uuid.clone(), (0, Sha256::new()));
        Ok(uuid)
    }

    /// The size so far of upload `uuid` of repository `name`.
    pub async fn upload_size(&self, name: &str, uuid: &str) -> Result<u64> {
        if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StorageError::UploadUnknown);
        }
        let owner =
            tokio::fs::read_to_string(self.upload_owner(uuid)).await.map_err(|_| StorageError::UploadUnknown)?;
        if owner != name {
            return Err(StorageError::UploadUnknown);
        }
        Ok(tokio::fs::metadata(self.upload(uuid)).await.map_err(|_| StorageError::UploadUnknown)?.len())
    }

    /// Appends a chunk to an upload (which must be at `start`, when given), hashing as it goes while the running
    /// hash is current; returns the upload's new size.
    pub async fn append<S, E>(&self, name: &str, uuid: &str, start: Option<u64>, body: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let size = self.upload_size(name, uuid).await?;
        if start.is_some_and(|s| s != size) {
            return Err(StorageError::ChunkOutOfOrder(size));
        }
        let path = self.upload(uuid);
        let mut f = tokio::fs::OpenOptions::new().append(true).open(&path).await.map_err(io("opening an upload"))?;
        let mut size = f.metadata().await.map_err(io("upload metadata"))?.len();
        let mut hasher = {
            let mut m = self.hashers.lock().unwrap_or_else(|p| p.into_inner());
            match m.remove(uuid) {
                Some((off, h)) if off == size => Some(h),
                _ => None,
            }
        };
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::UploadInvalid(e.to_string()))?;
            f.write_all(&chunk).await.map_err(io("writing an upload"))?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            size += chunk.len() as u64;
        }
        f.flush().await.map_err(io("writing an upload"))?;
        if let Some(h) = hasher {
            self.hashers.lock().unwrap_or_else(|p| p.into_inner()).insert(uuid.to_string(), (size, h));
        }
        Ok(size)
    }

    /// Verifies an upload against the digest `want` (hex) and moves it into place, linked into the repository; a
    /// mismatch discards the upload.
    pub async fn finish_upload(&self, name: &str, uuid: &str, want: &str) -> Result<()> {
        self.upload_size(name, uuid).await?;
        let path = self.upload(uuid);
        let size = tokio::fs::metadata(&path).await.map_err(io("upload metadata"))?.len();
        let running = self.hashers.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
        let got = match running {
            Some((off, h)) if off == size => hex::encode(h.finalize()),
            _ => {
                let p = path.clone();
                tokio::task::spawn_blocking(move || -> std::io::Result<String> {
                    use std::io::Read;
                    let mut f = std::fs::File::open(&p)?;
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let k = f.read(&mut buf)?;
                        if k == 0 {
                            return Ok(hex::encode(h.finalize()));
                        }
                        h.update(&buf[..k]);
                    }
                })
                .await
                .map_err(|e| StorageError::Io("hashing an upload".into(), std::io::Error::other(e)))?
                .map_err(io("hashing an upload"))?
            }
        };
        if got != want {
            let _ = tokio::fs::remove_file(&path).await;
            let _ = tokio::fs::remove_file(self.upload_owner(uuid)).await;
            return Err(StorageError::DigestMismatch(got));
        }
        let f = tokio::fs::File::open(&path).await.map_err(io("opening an upload"))?;
        f.sync_all().await.map_err(io("syncing an upload"))?;
        // Another push of the same blob may have renamed its identical file here first: either is whole.
        tokio::fs::rename(&path, self.blob(want)).await.map_err(io("moving an upload into place"))?;
        let _ = tokio::fs::remove_file(self.upload_owner(uuid)).await;
        self.link(name, want).await
    }

    /// Abandons an upload.
    pub async fn cancel_upload(&self, name: &str, uuid: &str) -> Result<()> {
        self.upload_size(name, uuid).await?;
        let _ = tokio::fs::remove_file(self.upload(uuid)).await;
        let _ = tokio::fs::remove_file(self.upload_owner(uuid)).await;
        self.hashers.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
        Ok(())
    }

    /// The digest hex a reference names in the repository.
    async fn resolve(&self, name: &str, r: &Reference) -> Result<String> {
        match r {
            Reference::Digest(hex) => {
                if !self.repo(name).join("_manifests").join(hex).exists() {
                    return Err(self.unknown_manifest(name));
                }
                Ok(hex.clone())
            }
            Reference::Tag(t) => {
                let d = tokio::fs::read_to_string(self.repo(name).join("_tags").join(t))
                    .await
                    .map_err(|_| self.unknown_manifest(name))?;
                digest_hex(d.trim())
            }
        }
    }

    fn unknown_manifest(&self, name: &str) -> StorageError {
        if self.known(name) { StorageError::ManifestUnknown } else { StorageError::NameUnknown(name.to_string()) }
    }

    /// A manifest of the repository.
    pub async fn manifest(&self, name: &str, r: &Reference) -> Result<Manifest> {
        let hex = self.resolve(name, r).await?;
        let media = tokio::fs::read_to_string(self.repo(name).join("_manifests").join(&hex))
            .await
            .map_err(|_| StorageError::ManifestUnknown)?;
        let data = tokio::fs::read(self.blob(&hex)).await.map_err(|_| StorageError::ManifestUnknown)?;
        Ok(Manifest { hex, media_type: media.trim().to_string(), data })
    }

    /// Stores a manifest (byte for byte) under a tag or its digest, once everything it references is in the
    /// repository. `content_type` is used when the body names no `mediaType`.
    pub async fn put_manifest(&self, name: &str, r: &Reference, data: &[u8], content_type: &str) -> Result<Stored> {
        let hex = hex::encode(Sha256::digest(data));
        if let Reference::Digest(want) = r
            && *want != hex
        {
            return Err(StorageError::DigestInvalid(format!("sha256:{want} (the manifest's digest is sha256:{hex})")));
        }
        let bad = |m: String| StorageError::ManifestInvalid(m);
        let v: Value = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
        let media = v["mediaType"].as_str().unwrap_or(content_type).to_string();
        if media.is_empty() {
            return Err(bad("no media type".into()));
        }
        if v["schemaVersion"].as_i64() != Some(2) {
            return Err(bad("schemaVersion must be 2".into()));
        }
        // Everything it references must be in the repository already (foreign layers, with `urls`, excepted).
        let mut blobs: Vec<&str> = Vec::new();
        blobs.extend(v["config"]["digest"].as_str());
        for key in ["layers", "blobs"] {
            for l in v[key].as_array().into_iter().flatten() {
                if !l["urls"].is_array() {
                    blobs.extend(l["digest"].as_str());
                }
            }
        }
        for d in blobs {
            if !self.linked(name, &digest_hex(d)?) {
                return Err(StorageError::ManifestBlobUnknown(d.to_string()));
            }
        }
        for m in v["manifests"].as_array().into_iter().flatten() {
            if let Some(d) = m["digest"].as_str()
                && !self.repo(name).join("_manifests").join(digest_hex(d)?).exists()
            {
                return Err(StorageError::ManifestChildUnknown(d.to_string()));
            }
        }
        if !self.blob(&hex).exists() {
            self.write_atomic(&self.blob(&hex), data).await?;
        }
        self.write_atomic(&self.repo(name).join("_manifests").join(&hex), media.as_bytes()).await?;
        if let Reference::Tag(t) = r {
            self.write_atomic(&self.repo(name).join("_tags").join(t), format!("sha256:{hex}").as_bytes()).await?;
        }
        Ok(Stored { hex, subject: v["subject"]["digest"].as_str().map(str::to_string) })
    }

    /// Deletes a tag, or a manifest by digest (with the tags that point at it).
    pub async fn delete_manifest(&self, name: &str, r: &Reference) -> Result<()> {
        let hex = self.resolve(name, r).await?;
        match r {
            Reference::Tag(t) => {
                tokio::fs::remove_file(self.repo(name).join("_tags").join(t))
                    .await
                    .map_err(|_| StorageError::ManifestUnknown)?;
            }
            Reference::Digest(_) => {
                tokio::fs::remove_file(self.repo(name).join("_manifests").join(&hex))
                    .await
                    .map_err(|_| StorageError::ManifestUnknown)?;
                if let Ok(mut rd) = tokio::fs::read_dir(self.repo(name).join("_tags")).await {
                    while let Ok(Some(e)) = rd.next_entry().await {
                        if tokio::fs::read_to_string(e.path()).await.is_ok_and(|d| d.trim() == format!("sha256:{hex}"))
                        {
                            let _ = tokio::fs::remove_file(e.path()).await;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Descriptors of the repository's manifests whose `subject` is `subject_hex`, with the `artifactType` filter.
    pub async fn referrers(&self, name: &str, subject_hex: &str, filter: Option<&str>) -> Result<Vec<Value>> {
        let subject = format!("sha256:{subject_hex}");
        let mut out = Vec::new();
        let Ok(mut rd) = tokio::fs::read_dir(self.repo(name).join("_manifests")).await else { return Ok(out) };
        while let Ok(Some(e)) = rd.next_entry().await {
            let hex = e.file_name().to_string_lossy().into_owned();
            let Ok(data) = tokio::fs::read(self.blob(&hex)).await else { continue };
            let Ok(v) = serde_json::from_slice::<Value>(&data) else { continue };
            if v["subject"]["digest"].as_str() != Some(subject.as_str()) {
                continue;
            }
            // The manifest's artifactType, else (for an image manifest, not an index) its config's media type.
            let artifact = v["artifactType"].as_str().filter(|a| !a.is_empty()).or(v["config"]["mediaType"].as_str());
            if filter.is_some() && filter != artifact {
                continue;
            }
            let media = tokio::fs::read_to_string(e.path()).await.unwrap_or_default();
            let mut desc = json!({"mediaType": media.trim(), "digest": format!("sha256:{hex}"), "size": data.len()});
            if let Some(a) = artifact {
                desc["artifactType"] = json!(a);
            }
            if v["annotations"].is_object() {
                desc["annotations"] = v["annotations"].clone();
            }
            out.push(desc);
        }
        out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_digests() {
        assert!(valid_name("library/busybox"));
        assert!(valid_name("a/b-c/d__e.f"));
        assert!(!valid_name("../etc"));
        assert!(!valid_name("a//b"));
        assert!(!valid_name("Upper"));
        assert!(!valid_name("a/.hidden"));
        assert!(!valid_name("a.-b") && !valid_name("a_-b") && !valid_name("a___b") && !valid_name("a-"));
        assert!(valid_name("a---b") && valid_name("a__b") && valid_name("a.b_c"));
        assert!(!valid_name("") && !valid_name("a/") && !valid_name("_a"));
        assert!(valid_tag("v1.0_rc-1"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a/b"));
        assert!(digest_hex("sha256:abc").is_err());
        assert!(matches!(digest_hex("md5:00"), Err(StorageError::DigestUnsupported(_))));
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert_eq!(Reference::parse("v1").ok(), Some(Reference::Tag("v1".into())));
        assert!(matches!(Reference::parse("-x"), Err(StorageError::TagInvalid(_))));
    }

    #[tokio::test]
    async fn upload_verify_and_manifest() -> Result<()> {
        let t = tempfile::tempdir().map_err(io("tempdir"))?;
        let s = Storage::open(t.path()).map_err(io("open"))?;
        let data = Bytes::from_static(b"layer");
        let hex = hex::encode(Sha256::digest(&data));
        let body = || futures_util::stream::iter([Ok::<_, std::io::Error>(data.clone())]);
        // Wrong digest: refused, nothing stored.
        let u = s.start_upload("a").await?;
        s.append("a", &u, Some(0), body()).await?;
        assert!(matches!(s.finish_upload("a", &u, &"0".repeat(64)).await, Err(StorageError::DigestMismatch(_))));
        assert!(matches!(s.upload_size("a", &u).await, Err(StorageError::UploadUnknown)));
        // Out of order, then right.
        let u = s.start_upload("a").await?;
        assert!(matches!(s.append("a", &u, Some(3), body()).await, Err(StorageError::ChunkOutOfOrder(0))));
        assert!(matches!(s.upload_size("b", &u).await, Err(StorageError::UploadUnknown)));
        assert_eq!(s.append("a", &u, None, body()).await?, 5);
        s.finish_upload("a", &u, &hex).await?;
        assert_eq!(s.open_blob("a", &hex).await?.1, 5);
        assert!(matches!(s.open_blob("b", &hex).await, Err(StorageError::BlobUnknown)));
        let m = format!(r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{hex}"}},"layers":[]}}"#);
        let tag = Reference::Tag("v1".into());
        assert!(matches!(
            s.put_manifest("b", &tag, m.as_bytes(), "x").await,
            Err(StorageError::ManifestBlobUnknown(_))
        ));
        let stored = s.put_manifest("a", &tag, m.as_bytes(), "application/x").await?;
        let got = s.manifest("a", &Reference::Digest(stored.hex.clone())).await?;
        assert_eq!((got.data, got.media_type), (m.into_bytes(), "application/x".to_string()));
        assert_eq!(s.tags("a").await?, vec!["v1".to_string()]);
        s.delete_manifest("a", &Reference::Digest(stored.hex)).await?;
        assert!(s.tags("a").await?.is_empty());
        assert!(matches!(s.manifest("a", &tag).await, Err(StorageError::ManifestUnknown)));
        assert!(matches!(s.tags("nosuch").await, Err(StorageError::NameUnknown(_))));
        Ok(())
    }
}
