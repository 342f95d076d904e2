//! Pulling an image: manifest (Docker schema 2 or OCI; a manifest list or image index is resolved to one platform),
//! config, then the layers: up to three at a time, each streamed from the network straight into the store's
//! unpacker (gzip, zstd or plain tar) while it downloads, so downloads, hashing, inflating and writing overlap.
//!
//! Every blob is verified against its digest (hashed as it arrives) before its layer is recorded, and every layer
//! against its diff id. While it streams, a blob is also appended to `<data root>/downloads/<hex>.partial` (not
//! synced): an interrupted pull resumes from there with a `Range` request, the saved part read back through the
//! same hash. The file goes once the blob is verified and unpacked. Layers the store has are not downloaded at all.
//! Layers are recorded bottom first (each on the one below, one `syncfs` each); the image is recorded (and tagged)
//! only once every layer is in the store, so a failed pull leaves no half image.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_store::digest::Digester;
use berth_store::save::{media, pick_platform};
use berth_store::{ChainId, DiffId, Digest, ImageId, Reference, Store, UnpackTimings, UnpackedLayer};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Body, Registry, discard, error_text, next_chunk, read_all};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// How many layers download at once (as Docker).
pub const CONCURRENT_DOWNLOADS: usize = 3;

/// What a manifest request accepts.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// An OS/architecture(/variant) to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub architecture: String,
    /// `v7`, `v8`...
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform.
    pub fn host() -> Platform {
        Platform { os: "linux".into(), architecture: berth_store::image::host_architecture().into(), variant: None }
    }

    /// Parses `os[/arch[/variant]]` (`linux/arm64/v8`).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let host = Platform::host();
        let bad =
            || Error::InvalidArgument(format!("\"{s}\": unknown operating system or architecture: invalid argument"));
        match parts.as_slice() {
            [os] if !os.is_empty() => Ok(Platform { os: os.to_lowercase(), ..host }),
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_lowercase(), architecture: normalize_arch(arch), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_lowercase(),
                architecture: normalize_arch(arch),
                variant: Some(v.to_string()).filter(|v| !v.is_empty()),
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> String {
    match a.to_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

/// One layer of a manifest.
#[derive(Debug, Clone)]
pub struct LayerDesc {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The uncompressed tar's digest (from the config).
    pub diff_id: DiffId,
}

/// A resolved image: manifest, config and layers, fetched and verified, nothing stored yet.
#[derive(Debug)]
pub struct Resolved {
    /// The reference as pulled (normalised, with the default tag if it had neither tag nor digest).
    pub reference: Reference,
    /// The digest of the manifest (or index) the reference named: the `RepoDigest`.
    pub digest: Digest,
    /// The config blob, byte for byte (its digest is the image id).
    pub config: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<LayerDesc>,
}

/// `repository:<path>:pull`.
pub fn pull_scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.path())
}

/// Fetches and verifies a manifest by tag or digest: (bytes, media type, digest).
pub async fn get_manifest(reg: &Registry, r: &Reference, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
    let url = reg.url(&format!("{}/manifests/{reference}", r.path()));
    let resp = reg.send(Method::GET, url.clone(), &[("accept", ACCEPT.to_string())], Body::Empty).await?;
    let status = resp.status();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let header_digest = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = read_all(resp).await?;
    let shown = r.familiar_string();
    match status {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => {
            return Err(Error::NotFound(format!(
                "manifest for {shown} not found: {}",
                error_text(&body).unwrap_or_else(|| "manifest unknown: manifest unknown".into())
            )));
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(Error::Unauthorized(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                r.familiar_name(),
                error_text(&body).unwrap_or_else(|| "denied: requested access to the resource is denied".into())
            )));
        }
        s => {
            return Err(Error::Unavailable(format!(
                "GET {url}: unexpected status {s}{}",
                error_text(&body).map(|t| format!(": {t}")).unwrap_or_default()
            )));
        }
    }
    let digest = Digest::of(&body);
    if let Ok(expected) = Digest::parse(reference) {
        if expected != digest {
            return Err(Error::Invalid(format!("manifest verification failed for digest {expected}")));
        }
    } else if let Some(h) = header_digest.and_then(|h| Digest::parse(&h).ok())
        && h != digest
    {
        return Err(Error::Invalid(format!("manifest verification failed for digest {h}")));
    }
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("malformed manifest for {shown}: {e}")))?;
    let media_type = v["mediaType"].as_str().map(str::to_string).unwrap_or_else(|| {
        let c = ctype.split(';').next().unwrap_or("").trim().to_string();
        if !c.is_empty() && c != "application/json" {
            c
        } else if v["manifests"].is_array() {
            media::OCI_INDEX.to_string()
        } else {
            media::OCI_MANIFEST.to_string()
        }
    });
    Ok((body, media_type, digest))
}

/// What `GET /distribution/{name}/json` shows of a reference without pulling it: the manifest's (or index's)
/// descriptor and the platforms it serves.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `architecture`, `os`, `variant`, `os.version`, `os.features` of each (an index's entries, or a manifest's
    /// config).
    pub platforms: Vec<Value>,
}

/// Looks `r` up on its registry (dockerd's `getDistributionInfo`): the manifest by tag (default `latest`) or digest;
/// an index's platforms from its entries, an image manifest's from its config blob.
pub async fn distribution(reg: &Registry, r: &Reference) -> Result<Distribution> {
    let r = if r.tag().is_none() && r.digest().is_none() { r.clone().with_default_tag() } else { r.clone() };
    let wanted = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    let (body, media_type, digest) = get_manifest(reg, &r, &wanted).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("malformed manifest: {e}")))?;
    let pick = |p: &Value| {
        let mut out = serde_json::Map::new();
        for k in ["architecture", "os", "os.version", "os.features", "variant"] {
            if let Some(x) = p.get(k).filter(|x| !x.is_null() && x.as_str() != Some("")) {
                out.insert(k.to_string(), x.clone());
            }
        }
        Value::Object(out)
    };
    let platforms = if media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST {
        v["manifests"].as_array().into_iter().flatten().map(|m| pick(&m["platform"])).collect()
    } else {
        match v["config"]["digest"].as_str().map(Digest::parse) {
            Some(Ok(cd)) => match get_small_blob(reg, &r, &cd).await {
                Ok(config) => {
                    let c: Value = serde_json::from_slice(&config).unwrap_or(Value::Null);
                    let p = pick(&c);
                    if p.get("os").is_some() || p.get("architecture").is_some() { vec![p] } else { Vec::new() }
                }
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    };
    Ok(Distribution { media_type, digest, size: body.len() as u64, platforms })
}

/// Fetches a small blob (a config) and verifies it.
pub async fn get_small_blob(reg: &Registry, r: &Reference, digest: &Digest) -> Result<Vec<u8>> {
    let url = reg.url(&format!("{}/blobs/{digest}", r.path()));
    let resp = reg.send(Method::GET, url.clone(), &[], Body::Empty).await?;
    let status = resp.status();
    let body = read_all(resp).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound(format!("blob {digest} not found: {}", error_text(&body).unwrap_or_default())));
    }
    if !status.is_success() {
        return Err(Error::Unavailable(format!("GET {url}: unexpected status {status}")));
    }
    if Digest::of(&body) != *digest {
        return Err(Error::Invalid(format!("image config verification failed for digest {digest}")));
    }
    Ok(body)
}

/// Resolves `r` on its registry to one image for `platform`: manifest, config, layers. Nothing is stored.
pub async fn resolve(reg: &Registry, r: &Reference, platform: &Platform) -> Result<Resolved> {
    let r = if r.tag().is_none() && r.digest().is_none() { r.clone().with_default_tag() } else { r.clone() };
    let wanted = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    let (mut body, mut mt, top_digest) = get_manifest(reg, &r, &wanted).await?;
    let mut hops = 0;
    while mt == media::OCI_INDEX || mt == media::DOCKER_LIST {
        hops += 1;
        if hops > 4 {
            return Err(Error::Invalid("manifest lists nested too deeply".into()));
        }
        let index: Value =
            serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("malformed manifest list: {e}")))?;
        let desc = pick_platform(&index, &platform.architecture, &platform.os, platform.variant.as_deref())
            .ok_or_else(|| {
                Error::NotFound(format!("no matching manifest for {platform} in the manifest list entries"))
            })?;
        let d = desc["digest"].as_str().unwrap_or("");
        Digest::parse(d).map_err(|_| Error::Invalid(format!("malformed manifest list: bad digest {d:?}")))?;
        (body, mt, _) = get_manifest(reg, &r, d).await?;
    }
    if mt.starts_with("application/vnd.docker.distribution.manifest.v1") {
        return Err(Error::Invalid(format!(
            "{}: Docker Image manifest version 2, schema 1 is not supported; the image must be pushed again in a newer format",
            r.familiar_string()
        )));
    }
    if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST {
        return Err(Error::Invalid(format!("unsupported manifest media type {mt}")));
    }
    let m: Value = serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("malformed manifest: {e}")))?;
    let cfg_digest =
        m["config"]["digest"].as_str().ok_or_else(|| Error::Invalid("malformed manifest: no config".into()))?;
    let cfg_digest =
        Digest::parse(cfg_digest).map_err(|_| Error::Invalid("malformed manifest: bad config digest".into()))?;
    let config = get_small_blob(reg, &r, &cfg_digest).await?;
    let cv: Value =
        serde_json::from_slice(&config).map_err(|e| Error::Invalid(format!("malformed image config: {e}")))?;
    let diff_ids: Vec<DiffId> = cv["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            DiffId::parse(d.as_str().unwrap_or(""))
                .map_err(|_| Error::Invalid("malformed image config: bad diff id".into()))
        })
        .collect::<Result<_>>()?;
    let layers_v = m["layers"].as_array().cloned().unwrap_or_default();
    if layers_v.len() != diff_ids.len() {
        return Err(Error::Invalid(format!(
            "malformed manifest: {} layers, but the image config lists {}",
            layers_v.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (l, diff_id) in layers_v.iter().zip(diff_ids) {
        let media_type = l["mediaType"].as_str().unwrap_or("").to_string();
        let supported = media_type.ends_with(".tar.gzip")
            || media_type.ends_with(".tar+gzip")
            || media_type.ends_with(".tar+zstd")
            || media_type.ends_with("layer.v1.tar")
            || media_type.ends_with("rootfs.diff.tar");
        if !supported {
            return Err(Error::Invalid(format!(
                "unsupported layer media type {media_type:?} (berth pulls tar, gzip and zstd layers)"
            )));
        }
        let digest = Digest::parse(l["digest"].as_str().unwrap_or(""))
            .map_err(|_| Error::Invalid("malformed manifest: bad layer digest".into()))?;
        let size = l["size"].as_u64().unwrap_or(0);
        layers.push(LayerDesc { digest, size, media_type, diff_id });
    }
    Ok(Resolved { reference: r, digest: top_digest, config, layers })
}

/// Where a pull's time goes, in nanoseconds summed over its layers (which download and unpack at the same time, so
/// the stages overlap): logged by [`fetch`] after every pull (`pull breakdown`), printed by the benchmark.
#[derive(Debug, Default)]
pub struct Breakdown {
    /// Waiting for the registry's bytes (the network and the registry itself), as the unpacker sees it.
    pub network: AtomicU64,
    /// sha256 of the compressed blob, while it arrives.
    pub hash: AtomicU64,
    /// Writing the download file (kept until the layer is in the store, so an interrupted pull resumes).
    pub spool: AtomicU64,
    /// Inflate, the uncompressed tar's hash and blob, the files, the one `syncfs` per layer.
    pub unpack: UnpackTimings,
    /// Compressed bytes received or read back.
    pub bytes: AtomicU64,
}

impl Breakdown {
    /// One line: every stage in milliseconds, the wall time and the throughput.
    pub fn summary(&self, wall: Duration) -> String {
        let ms = |c: &AtomicU64| c.load(Ordering::Relaxed) / 1_000_000;
        let u = &self.unpack;
        let bytes = self.bytes.load(Ordering::Relaxed);
        format!(
            "{:.1} MB in {} ms ({:.1} MB/s); stage totals (ms, overlapping): network wait {}, sha256 {}, download file \
             {}, inflate {}, tar blob (sha256+write) {}, unpack files {}, syncfs {}",
            bytes as f64 / 1e6,
            wall.as_millis(),
            bytes as f64 / 1e6 / wall.as_secs_f64().max(1e-9),
            ms(&self.network),
            ms(&self.hash),
            ms(&self.spool),
            ms(&u.inflate),
            ms(&u.tar_blob),
            ms(&u.extract),
            ms(&u.sync),
        )
    }

    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// What the download side hands the unpacker.
enum Chunk {
    Data(Bytes),
    /// The whole blob was sent (a closed channel without it is an interrupted download).
    End,
}

/// The compressed blob as the unpacker reads it: what an earlier, interrupted pull left in the download file, then
/// the network's chunks, each hashed and appended to the download file as it arrives.
struct Source {
    saved: Option<std::fs::File>,
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    chunk: Bytes,
    spool: Option<std::fs::File>,
    hasher: Digester,
    size: u64,
    ended: bool,
    bd: Arc<Breakdown>,
}

impl Source {
    fn take(&mut self, bytes: &[u8]) {
        let t = Instant::now();
        self.hasher.update(bytes);
        Breakdown::add(&self.bd.hash, t);
        self.size += bytes.len() as u64;
        self.bd.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Reads (and hashes) whatever the unpacker left unread, to the end of the blob.
    fn drain(&mut self) -> std::io::Result<()> {
        use std::io::Read;
        let mut buf = vec![0u8; 64 * 1024];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }
}

impl std::io::Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(f) = self.saved.as_mut() {
            let n = f.read(buf)?;
            if n > 0 {
                self.take(&buf[..n]);
                return Ok(n);
            }
            self.saved = None;
        }
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            let t = Instant::now();
            let next = self.rx.blocking_recv();
            Breakdown::add(&self.bd.network, t);
            match next {
                Some(Chunk::Data(b)) => {
                    self.take(&b);
                    if let Some(f) = self.spool.as_mut() {
                        let t = Instant::now();
                        std::io::Write::write_all(f, &b)?;
                        Breakdown::add(&self.bd.spool, t);
                    }
                    self.chunk = b;
                }
                Some(Chunk::End) => self.ended = true,
                None => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "download interrupted")),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// How a layer's download starts.
enum Start {
    /// The download file holds the whole blob (or the registry has nothing past it): no request.
    Saved,
    /// The rest of the blob after the download file's bytes (`206`).
    Resume(hyper::Response<hyper::body::Incoming>),
    /// The whole blob (`200`): the download file starts over.
    Fresh(hyper::Response<hyper::body::Incoming>),
}

/// What every layer of one pull shares.
struct Pulling {
    store: Arc<Store>,
    reg: Arc<Registry>,
    r: Reference,
    /// Where downloads are saved.
    dir: PathBuf,
    bd: Arc<Breakdown>,
}

/// Downloads one layer and unpacks it into the store at the same time, without recording it: the blob streams
/// from the network into the unpacker, hashed as it arrives and appended to `dir/<hex>.partial` (no fsync: the
/// file only lets an interrupted pull resume with a `Range` request, and is verified again when it is read back).
/// The blob's digest is checked before the layer is handed back; a blob that fails it is not kept.
async fn fetch_layer(pull: Arc<Pulling>, l: LayerDesc, p: Progress, id: String) -> Result<UnpackedLayer> {
    let dir = &pull.dir;
    // One pull at a time owns a blob's download file (an exclusive `flock`, held until this returns); another pull
    // of the same blob meanwhile (of this daemon or not) downloads into a private file, removed when it is done, so
    // that no two writers ever mix their bytes.
    let shared = dir.join(format!("{}.partial", l.digest.hex()));
    let owner =
        std::fs::OpenOptions::new().create(true).append(true).open(&shared).ok().filter(|f| f.try_lock().is_ok());
    let private = owner.is_none();
    let part = if private {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("{}.partial.{}-{n}", l.digest.hex(), std::process::id()))
    } else {
        shared
    };
    let result = fetch_into(pull.clone(), &l, &p, &id, &part).await;
    if private {
        let _ = tokio::fs::remove_file(&part).await;
    }
    drop(owner);
    result
}

/// [`fetch_layer`] with its download file chosen.
async fn fetch_into(pull: Arc<Pulling>, l: &LayerDesc, p: &Progress, id: &str, part: &Path) -> Result<UnpackedLayer> {
    let Pulling { store, reg, r, bd, .. } = &*pull;
    let (l, p, id, part) = (l.clone(), p.clone(), id.to_string(), part.to_path_buf());
    let have = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
    let url = reg.url(&format!("{}/blobs/{}", r.path(), l.digest));
    let start = if have > 0 && l.size > 0 && have >= l.size {
        Start::Saved
    } else {
        let headers: Vec<(&str, String)> =
            if have > 0 { vec![("range", format!("bytes={have}-"))] } else { Vec::new() };
        let resp = reg.send(Method::GET, url.clone(), &headers, Body::Empty).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if have > 0 => Start::Resume(resp),
            StatusCode::OK => Start::Fresh(resp),
            // The download file may hold the whole blob already, or garbage: it is verified like any download.
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                discard(resp).await;
                Start::Saved
            }
            StatusCode::NOT_FOUND => {
                let body = read_all(resp).await.unwrap_or_default();
                return Err(Error::NotFound(format!(
                    "blob {} not found: {}",
                    l.digest,
                    error_text(&body).unwrap_or_else(|| "blob unknown: blob unknown to registry".into())
                )));
            }
            s => {
                let body = read_all(resp).await.unwrap_or_default();
                return Err(Error::Unavailable(format!(
                    "GET {url}: unexpected status {s}{}",
                    error_text(&body).map(|t| format!(": {t}")).unwrap_or_default()
                )));
            }
        }
    };
    let (resp, from_saved) = match start {
        Start::Saved => (None, true),
        Start::Resume(resp) => (Some(resp), true),
        Start::Fresh(resp) => (Some(resp), false),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(64);
    let worker = {
        let (store, part, l, bd) = (store.clone(), part.clone(), l.clone(), bd.clone());
        let streaming = resp.is_some();
        tokio::task::spawn_blocking(move || unpack_layer(&store, rx, &part, from_saved, streaming, &l, bd))
    };
    let mut received = if from_saved { have } else { 0 };
    let pumped: Result<()> = async {
        let Some(resp) = resp else {
            let _ = tx.send(Chunk::End).await;
            return Ok(());
        };
        let mut body = resp.into_body();
        let mut last = Instant::now();
        p.bytes(&id, "Downloading", received, l.size);
        while let Some(chunk) = next_chunk(&mut body).await? {
            received += chunk.len() as u64;
            if l.size > 0 && received > l.size {
                return Err(Error::Invalid(format!(
                    "filesystem layer verification failed for digest {}: more data than its size",
                    l.digest
                )));
            }
            if tx.send(Chunk::Data(chunk)).await.is_err() {
                // The unpacker stopped (bad data): its error is the one to report.
                return Ok(());
            }
            if last.elapsed() >= Duration::from_millis(100) {
                p.bytes(&id, "Downloading", received, l.size);
                last = Instant::now();
            }
        }
        p.item(&id, "Verifying Checksum");
        let _ = tx.send(Chunk::End).await;
        Ok(())
    }
    .await;
    drop(tx);
    let unpacked = worker.await.map_err(|e| Error::Internal(e.to_string()))?;
    match pumped {
        Err(e @ Error::Invalid(_)) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
        // An interrupted download keeps its file: the next pull resumes it.
        Err(e) => Err(e),
        Ok(()) => {
            let u = unpacked?;
            p.item(&id, "Download complete");
            Ok(u)
        }
    }
}

/// The unpacking side of [`fetch_layer`], on a blocking thread.
fn unpack_layer(
    store: &Store,
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    part: &Path,
    from_saved: bool,
    streaming: bool,
    l: &LayerDesc,
    bd: Arc<Breakdown>,
) -> Result<UnpackedLayer> {
    let io = |what: &str, e: std::io::Error| Error::Io(format!("{what} {}", part.display()), e);
    let saved = if from_saved { Some(std::fs::File::open(part).map_err(|e| io("opening", e))?) } else { None };
    let spool = match (streaming, from_saved) {
        (false, _) => None,
        (true, true) => Some(std::fs::OpenOptions::new().append(true).open(part).map_err(|e| io("opening", e))?),
        (true, false) => Some(std::fs::File::create(part).map_err(|e| io("creating", e))?),
    };
    let mut src = Source {
        saved,
        rx,
        chunk: Bytes::new(),
        spool,
        hasher: Digester::new(),
        size: 0,
        ended: false,
        bd: bd.clone(),
    };
    let unpacked = store.unpack_layer(&mut src, Some(&bd.unpack));
    // The digest covers the whole blob, whatever the unpacker made of it.
    if let Err(e) = src.drain() {
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Unavailable(format!("downloading {}: interrupted", l.digest))
        } else {
            io("writing", e)
        });
    }
    let Source { hasher, size, .. } = src;
    if hasher.finish() != l.digest || (l.size > 0 && size != l.size) {
        let _ = std::fs::remove_file(part);
        return Err(Error::Invalid(format!("filesystem layer verification failed for digest {}", l.digest)));
    }
    // Verified and unpacked: the download file has served (the layer is in the store's directory now). Removed
    // before the layer's `syncfs`, so its pages never go to the disk.
    let _ = std::fs::remove_file(part);
    match unpacked {
        Ok(u) => Ok(u),
        Err(e) => {
            // A blob that does not unpack is useless: the next pull fetches it again.
            Err(match e {
                berth_store::StoreError::InvalidArgument(m) => {
                    Error::Invalid(format!("failed to register layer {}: {m}", l.digest))
                }
                e => e.into(),
            })
        }
    }
}

/// Where a store keeps its downloads.
pub fn downloads_dir(store: &Store) -> PathBuf {
    store.root().join("downloads")
}

/// Downloads and unpacks what `res` needs, records the image, tags it and records its digest reference. Returns the
/// image id and whether anything new was stored.
pub async fn fetch(store: Arc<Store>, reg: Arc<Registry>, res: &Resolved, p: &Progress) -> Result<(ImageId, bool)> {
    let dir = downloads_dir(&store);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
    let diff_ids: Vec<DiffId> = res.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = ChainId::chain(&diff_ids);
    let image_id = ImageId::from(Digest::of(&res.config));
    let before = {
        let s = store.clone();
        let name = res.reference.to_string();
        tokio::task::spawn_blocking(move || s.resolve_image(&name).ok().map(|i| i.id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    };
    let started = Instant::now();
    let bd = Arc::new(Breakdown::default());
    let pulling = Arc::new(Pulling {
        store: store.clone(),
        reg: reg.clone(),
        r: res.reference.clone(),
        dir: dir.clone(),
        bd: bd.clone(),
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DOWNLOADS));
    let mut tasks: Vec<Option<tokio::task::JoinHandle<Result<UnpackedLayer>>>> = Vec::new();
    for (l, chain) in res.layers.iter().zip(&chains) {
        let id = l.digest.hex()[..12].to_string();
        let exists = {
            let s = store.clone();
            let c = chain.clone();
            tokio::task::spawn_blocking(move || s.layer(&c).ok().flatten().is_some() && s.layer_dir(&c).is_dir())
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        if exists {
            p.item(&id, "Already exists");
            tasks.push(None);
            continue;
        }
        p.item(&id, "Pulling fs layer");
        let (pulling, l, p, sem) = (pulling.clone(), l.clone(), p.clone(), sem.clone());
        tasks.push(Some(tokio::spawn(async move {
            if sem.available_permits() == 0 {
                p.item(&id, "Waiting");
            }
            let _permit = sem.acquire_owned().await.map_err(|e| Error::Internal(e.to_string()))?;
            match fetch_layer(pulling.clone(), l.clone(), p.clone(), id.clone()).await {
                // Once more from the start (the failed download file is gone): what was resumed may have been a
                // download file left by a crash, not synced, or a registry's hiccup.
                Err(Error::Invalid(m)) if m.starts_with("filesystem layer verification failed") => {
                    tracing::warn!("{m}: downloading it once more");
                    fetch_layer(pulling, l, p, id).await
                }
                r => r,
            }
        })));
    }
    // A pull whose client goes away (this future dropped) stops its downloads too.
    let _stop = AbortOnDrop(tasks.iter().flatten().map(|t| t.abort_handle()).collect());
    // Layers download and unpack at the same time; they are recorded bottom first, each on the one below.
    let mut parent: Option<ChainId> = None;
    let mut new = false;
    let mut failure = None;
    for (i, task) in tasks.iter_mut().enumerate() {
        let l = &res.layers[i];
        let Some(task) = task.take() else {
            parent = Some(chains[i].clone());
            continue;
        };
        if failure.is_some() {
            // The other layers stop (an interrupted download keeps its file and resumes next time); nothing more
            // is recorded.
            task.abort();
            continue;
        }
        let unpacked = task.await.map_err(|e| Error::Internal(e.to_string())).and_then(|r| r);
        let unpacked = match unpacked {
            Ok(u) => u,
            Err(e) => {
                failure = Some(e);
                continue;
            }
        };
        let (s, diff, par, bd2) = (store.clone(), l.diff_id.clone(), parent.clone(), bd.clone());
        let committed = tokio::task::spawn_blocking(move || {
            s.commit_unpacked(unpacked, par.as_ref(), &diff, Some(&bd2.unpack)).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))
        .and_then(|r| r);
        match committed {
            Ok(layer) => {
                berth_store::fault::point("pull.after-layer");
                p.item(&l.digest.hex()[..12], "Pull complete");
                parent = Some(layer.chain_id);
                new = true;
            }
            Err(e) => {
                failure = Some(match e {
                    Error::Store(berth_store::StoreError::InvalidArgument(m)) => {
                        Error::Invalid(format!("failed to register layer {}: {m}", l.digest))
                    }
                    e => e,
                });
            }
        }
    }
    if bd.bytes.load(Ordering::Relaxed) > 0 {
        tracing::info!("pull breakdown {}: {}", res.reference, bd.summary(started.elapsed()));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let (s, config, r, digest) = (store.clone(), res.config.clone(), res.reference.clone(), res.digest.clone());
    let sources: Vec<(DiffId, Value)> = res
        .layers
        .iter()
        .map(|l| {
            (
                l.diff_id.clone(),
                json!({"registry": reg.name, "repository": r.path(), "digest": l.digest.as_str(),
                "size": l.size, "mediaType": l.media_type}),
            )
        })
        .collect();
    berth_store::fault::point("pull.before-image");
    let id = tokio::task::spawn_blocking(move || -> Result<ImageId> {
        let tags: Vec<String> = r.tag().map(|_| r.to_string()).into_iter().collect();
        let id = s.create_image_named(&config, &tags, &[format!("{}@{digest}", r.name())])?;
        for (diff, src) in sources {
            record_source(&s, &diff, src)?;
        }
        Ok(id)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    debug_assert_eq!(id, image_id);
    Ok((id, new || before.as_ref() != Some(&image_id)))
}

/// Aborts its tasks when dropped (a finished task's abort does nothing).
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Remembers that the layer `diff` exists as a compressed blob on a registry (pushes skip or mount it).
pub fn record_source(store: &Store, diff: &DiffId, src: Value) -> Result<()> {
    let mut doc = store.get_doc("layer-source", diff.as_str())?.unwrap_or_else(|| json!({"sources": []}));
    let list = doc["sources"].as_array_mut().ok_or_else(|| Error::Internal("bad layer-source document".into()))?;
    if !list.contains(&src) {
        list.push(src);
        if list.len() > 32 {
            list.remove(0);
        }
        store.put_doc_lazy("layer-source", diff.as_str(), None, &doc)?;
    }
    Ok(())
}

/// The messages docker prints after a pull.
pub fn final_status(p: &Progress, res: &Resolved, new: bool) {
    p.status(format!("Digest: {}", res.digest));
    let shown = res.reference.familiar_string();
    if new {
        p.status(format!("Status: Downloaded newer image for {shown}"));
    } else {
        p.status(format!("Status: Image is up to date for {shown}"));
    }
}

/// Lists a repository's tags (`pull -a`).
pub async fn list_tags(reg: &Registry, r: &Reference) -> Result<Vec<String>> {
    let url = reg.url(&format!("{}/tags/list", r.path()));
    let resp = reg.send(Method::GET, url.clone(), &[], Body::Empty).await?;
    let status = resp.status();
    let body = read_all(resp).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound(format!(
            "repository {} not found: {}",
            r.familiar_name(),
            error_text(&body).unwrap_or_else(|| "name unknown".into())
        )));
    }
    if !status.is_success() {
        return Err(Error::Unavailable(format!("GET {url}: unexpected status {status}")));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::Invalid(format!("malformed tag list: {e}")))?;
    Ok(v["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(
        saved: Option<std::fs::File>,
        spool: Option<std::fs::File>,
    ) -> (tokio::sync::mpsc::Sender<Chunk>, Source) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let bd = Arc::new(Breakdown::default());
        (tx, Source { saved, rx, chunk: Bytes::new(), spool, hasher: Digester::new(), size: 0, ended: false, bd })
    }

    #[test]
    fn source_reads_the_saved_part_then_the_network_and_spools_it() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tmp");
        let part = dir.path().join("x.partial");
        std::fs::write(&part, b"hello ").expect("write");
        let saved = std::fs::File::open(&part).expect("open");
        let spool = std::fs::OpenOptions::new().append(true).open(&part).expect("open");
        let (tx, mut src) = source(Some(saved), Some(spool));
        for c in [&b"wor"[..], b"ld"] {
            tx.blocking_send(Chunk::Data(Bytes::from_static(c))).expect("send");
        }
        tx.blocking_send(Chunk::End).expect("send");
        let mut out = Vec::new();
        src.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"hello world");
        assert_eq!((src.size, src.bd.bytes.load(Ordering::Relaxed)), (11, 11));
        assert_eq!(src.hasher.finish(), Digest::of(b"hello world"));
        // The download file holds the whole blob now: a pull interrupted after this resumes past it.
        assert_eq!(std::fs::read(&part).expect("read"), b"hello world");
    }

    #[test]
    fn source_without_its_end_is_an_interrupted_download() {
        use std::io::Read;
        let (tx, mut src) = source(None, None);
        tx.blocking_send(Chunk::Data(Bytes::from_static(b"half"))).expect("send");
        drop(tx);
        let mut out = Vec::new();
        let e = src.read_to_end(&mut out).expect_err("no end");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(src.drain().is_err());
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").expect("p");
        assert_eq!((p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()), ("linux", "arm64", Some("v8")));
        assert_eq!(Platform::parse("linux/x86_64").expect("p").architecture, "amd64");
        assert!(Platform::parse("").is_err());
        assert_eq!(Platform::parse("linux/amd64").expect("p").to_string(), "linux/amd64");
    }
}
