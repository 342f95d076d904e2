//! Pushing an image: every layer (gzip-compressed on the fly into a scratch file, unless the registry is known to
//! have it), the config, then a Docker schema 2 manifest under the tag.
//!
//! A layer the registry has already (`HEAD` on the blob) is not uploaded again; one known to be in another
//! repository of the same registry is mounted from there (`POST ...?mount=&from=`). Where each layer was seen is
//! kept in the store (`layer-source` documents, written by pulls and pushes).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use berth_store::digest::Digester;
use berth_store::{DiffId, Digest, Image, Reference, Store};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Body, Registry, Url, discard, error_text, read_all};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::pull::{downloads_dir, record_source};

/// Docker's media types for what a push writes.
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `repository:<path>:pull,push`.
pub fn push_scope(r: &Reference) -> String {
    format!("repository:{}:pull,push", r.path())
}

/// `HEAD /v2/<repo>/blobs/<digest>`: whether the repository has the blob.
pub async fn blob_exists(reg: &Registry, repo: &str, digest: &Digest) -> Result<bool> {
    let resp = reg.send(Method::HEAD, reg.url(&format!("{repo}/blobs/{digest}")), &[], Body::Empty).await?;
    let s = resp.status();
    discard(resp).await;
    match s {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(denied(repo)),
        s => Err(Error::Unavailable(format!("HEAD blob {digest}: unexpected status {s}"))),
    }
}

fn denied(repo: &str) -> Error {
    Error::Unauthorized(format!("denied: requested access to the resource is denied (repository {repo})"))
}

/// Uploads a blob: `POST` an upload session (or use `session`, from a mount that fell back), then one `PUT` with
/// the content and its digest. The registry verifies the digest.
pub async fn upload(reg: &Registry, repo: &str, digest: &Digest, body: Body, session: Option<Url>) -> Result<()> {
    let loc = match session {
        Some(u) => u,
        None => {
            let url = reg.url(&format!("{repo}/blobs/uploads/"));
            let resp = reg.send(Method::POST, url.clone(), &[], Body::Empty).await?;
            let s = resp.status();
            let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
            let text = read_all(resp).await.unwrap_or_default();
            match s {
                StatusCode::ACCEPTED => {}
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(denied(repo)),
                s => {
                    return Err(Error::Unavailable(format!(
                        "POST {url}: unexpected status {s}{}",
                        error_text(&text).map(|t| format!(": {t}")).unwrap_or_default()
                    )));
                }
            }
            let loc = loc.ok_or_else(|| Error::Unavailable("the registry gave no upload location".into()))?;
            url.join(&loc)
        }
    };
    let sep = if loc.path.contains('?') { '&' } else { '?' };
    let put = Url { path: format!("{}{sep}digest={}", loc.path, crate::client::encode_query(digest.as_str())), ..loc };
    let headers = [("content-type", "application/octet-stream".to_string())];
    let resp = reg.send(Method::PUT, put.clone(), &headers, body).await?;
    let s = resp.status();
    let text = read_all(resp).await.unwrap_or_default();
    match s {
        StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
        StatusCode::BAD_REQUEST => Err(Error::Invalid(format!(
            "the registry refused blob {digest}: {}",
            error_text(&text).unwrap_or_else(|| "digest invalid".into())
        ))),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(denied(repo)),
        s => Err(Error::Unavailable(format!(
            "PUT blob {digest}: unexpected status {s}{}",
            error_text(&text).map(|t| format!(": {t}")).unwrap_or_default()
        ))),
    }
}

/// Tries to mount `digest` from repository `from`: `Ok(None)` when mounted, `Ok(Some(session))` when the registry
/// opened an upload instead.
async fn mount(reg: &Registry, repo: &str, digest: &Digest, from: &str) -> Result<Option<Url>> {
    let url = reg.url(&format!(
        "{repo}/blobs/uploads/?mount={}&from={}",
        crate::client::encode_query(digest.as_str()),
        crate::client::encode_query(from)
    ));
    let resp = reg.send(Method::POST, url.clone(), &[], Body::Empty).await?;
    let s = resp.status();
    let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    discard(resp).await;
    match s {
        StatusCode::CREATED => Ok(None),
        StatusCode::ACCEPTED => Ok(loc.map(|l| url.join(&l))),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(denied(repo)),
        s => Err(Error::Unavailable(format!("mounting blob {digest}: unexpected status {s}"))),
    }
}

/// The layer's known compressed copies: (registry, repository, digest, size).
pub fn sources(store: &Store, diff: &DiffId) -> Vec<(String, String, Digest, u64)> {
    let Ok(Some(doc)) = store.get_doc("layer-source", diff.as_str()) else { return Vec::new() };
    doc["sources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|s| s["mediaType"].as_str().is_some_and(|m| m.contains("gzip")))
        .filter_map(|s| {
            Some((
                s["registry"].as_str()?.to_string(),
                s["repository"].as_str()?.to_string(),
                Digest::parse(s["digest"].as_str()?).ok()?,
                s["size"].as_u64()?,
            ))
        })
        .collect()
}

/// The extra token scopes a push of `image` to `registry`/`repo` wants: pull access to the repositories its layers
/// can be mounted from.
pub fn mount_scopes(store: &Store, image: &Image, registry: &str, repo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in image.config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default() {
        let Some(diff) = d.as_str().and_then(|d| DiffId::parse(d).ok()) else { continue };
        for (r, from, _, _) in sources(store, &diff) {
            let scope = format!("repository:{from}:pull");
            if r == registry && from != repo && !out.contains(&scope) {
                out.push(scope);
            }
        }
    }
    out
}

/// Compresses a layer's tar into a scratch file: (path, digest, size). The file is removed when the guard drops.
fn compress(store: &Store, diff: &DiffId) -> Result<(Scratch, Digest, u64)> {
    use std::io::Write;
    let dir = downloads_dir(store);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(format!("push-{}-{}.gz", diff.hex(), std::process::id()));
    let scratch = Scratch(path.clone());
    let mut tar = store.layer_tar(diff)?;
    let file = std::fs::File::create(&path).map_err(|e| Error::Io(format!("creating {}", path.display()), e))?;
    struct Hashing<W> {
        inner: W,
        h: Digester,
        n: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(b)?;
            self.h.update(&b[..n]);
            self.n += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let out = Hashing { inner: std::io::BufWriter::with_capacity(256 * 1024, file), h: Digester::new(), n: 0 };
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    std::io::copy(&mut tar, &mut gz).map_err(|e| Error::Io(format!("compressing layer {diff}"), e))?;
    let mut out = gz.finish().map_err(|e| Error::Io(format!("compressing layer {diff}"), e))?;
    out.flush().map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
    Ok((scratch, out.h.finish(), out.n))
}

/// A scratch file, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(e.to_string()))?
}

/// Where a push's time goes, in nanoseconds summed over its layers (which push at the same time): logged after every
/// push (`push breakdown`), printed by the benchmark.
#[derive(Debug, Default)]
struct Breakdown {
    /// Reading the layer's tar, gzip and the compressed blob's sha256, into the scratch file.
    compress: AtomicU64,
    /// Uploading the compressed blob (the registry verifies and stores it before it answers).
    upload: AtomicU64,
    /// Compressed bytes uploaded.
    bytes: AtomicU64,
}

impl Breakdown {
    fn summary(&self, wall: std::time::Duration) -> String {
        let ms = |c: &AtomicU64| c.load(Ordering::Relaxed) / 1_000_000;
        let bytes = self.bytes.load(Ordering::Relaxed);
        format!(
            "{:.1} MB in {} ms ({:.1} MB/s); stage totals (ms, overlapping): gzip+sha256 {}, upload {}",
            bytes as f64 / 1e6,
            wall.as_millis(),
            bytes as f64 / 1e6 / wall.as_secs_f64().max(1e-9),
            ms(&self.compress),
            ms(&self.upload)
        )
    }
}

/// Pushes one layer; returns its descriptor in the manifest.
async fn push_layer(
    store: Arc<Store>,
    reg: Arc<Registry>,
    repo: String,
    diff: DiffId,
    p: Progress,
    bd: Arc<Breakdown>,
) -> Result<Value> {
    let id = diff.hex()[..12].to_string();
    let known = {
        let (s, d) = (store.clone(), diff.clone());
        blocking(move || Ok(sources(&s, &d))).await?
    };
    // Known on this registry: in this repository (HEAD), or mountable from another one.
    let mut session = None;
    for (registry, from, digest, size) in known.iter().filter(|k| k.0 == reg.name) {
        let _ = registry;
        if blob_exists(&reg, &repo, digest).await? {
            p.item(&id, "Layer already exists");
            return Ok(json!({"mediaType": LAYER_TYPE, "size": size, "digest": digest.as_str()}));
        }
        if from != &repo {
            match mount(&reg, &repo, digest, from).await {
                Ok(None) => {
                    p.item(&id, &format!("Mounted from {from}"));
                    let src = json!({"registry": reg.name, "repository": repo, "digest": digest.as_str(), "size": size, "mediaType": LAYER_TYPE});
                    let (s, d) = (store.clone(), diff.clone());
                    blocking(move || record_source(&s, &d, src)).await?;
                    return Ok(json!({"mediaType": LAYER_TYPE, "size": size, "digest": digest.as_str()}));
                }
                Ok(Some(u)) => session = Some(u),
                Err(e) => tracing::debug!("mount of {digest} from {from} failed: {e}"),
            }
        }
    }
    let t = Instant::now();
    let (scratch, digest, size) = {
        let (s, d) = (store.clone(), diff.clone());
        blocking(move || compress(&s, &d)).await?
    };
    bd.compress.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    if blob_exists(&reg, &repo, &digest).await? {
        p.item(&id, "Layer already exists");
    } else {
        p.bytes(&id, "Pushing", 0, size);
        let t = Instant::now();
        upload(&reg, &repo, &digest, Body::File { path: scratch.0.clone(), offset: 0, len: size }, session).await?;
        bd.upload.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        bd.bytes.fetch_add(size, Ordering::Relaxed);
        p.item(&id, "Pushed");
    }
    drop(scratch);
    let src = json!({"registry": reg.name, "repository": repo, "digest": digest.as_str(), "size": size, "mediaType": LAYER_TYPE});
    let (s, d) = (store.clone(), diff.clone());
    blocking(move || record_source(&s, &d, src)).await?;
    Ok(json!({"mediaType": LAYER_TYPE, "size": size, "digest": digest.as_str()}))
}

/// Pushes `image` as `target` (a tagged reference). Returns the manifest's digest and size.
pub async fn push(
    store: Arc<Store>,
    reg: Arc<Registry>,
    image: &Image,
    target: &Reference,
    p: &Progress,
) -> Result<(Digest, usize)> {
    let repo = target.path().to_string();
    let diff_ids: Vec<DiffId> = image.config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| DiffId::parse(d.as_str().unwrap_or("")).map_err(Error::from))
        .collect::<Result<_>>()?;
    for d in diff_ids.iter().rev() {
        p.item(&d.hex()[..12], "Preparing");
    }
    let started = Instant::now();
    let bd = Arc::new(Breakdown::default());
    let sem = Arc::new(tokio::sync::Semaphore::new(crate::pull::CONCURRENT_DOWNLOADS));
    let mut tasks = Vec::new();
    for d in diff_ids.iter().rev() {
        let (s, r, repo, d, p, sem, bd) =
            (store.clone(), reg.clone(), repo.clone(), d.clone(), p.clone(), sem.clone(), bd.clone());
        tasks.push(tokio::spawn(async move {
            if sem.available_permits() == 0 {
                p.item(&d.hex()[..12], "Waiting");
            }
            let _permit = sem.acquire_owned().await.map_err(|e| Error::Internal(e.to_string()))?;
            push_layer(s, r, repo, d, p, bd).await
        }));
    }
    let mut layers = Vec::new();
    let mut failure = None;
    for t in tasks {
        match t.await.map_err(|e| Error::Internal(e.to_string())).and_then(|r| r) {
            Ok(v) => layers.push(v),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if bd.bytes.load(Ordering::Relaxed) > 0 {
        tracing::info!("push breakdown {target}: {}", bd.summary(started.elapsed()));
    }
    layers.reverse();
    let config = {
        let (s, id) = (store.clone(), image.id.clone());
        blocking(move || s.content().read(id.digest()).map_err(Error::from)).await?
    };
    let cdigest = Digest::of(&config);
    if !blob_exists(&reg, &repo, &cdigest).await? {
        upload(&reg, &repo, &cdigest, Body::Bytes(bytes::Bytes::from(config.clone())), None).await?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": config.len(), "digest": cdigest.as_str()},
        "layers": layers,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let digest = Digest::of(&bytes);
    let tag = target.tag().unwrap_or("latest");
    let url = reg.url(&format!("{repo}/manifests/{tag}"));
    let resp = reg
        .send(
            Method::PUT,
            url.clone(),
            &[("content-type", MANIFEST_TYPE.to_string())],
            Body::Bytes(bytes.clone().into()),
        )
        .await?;
    let s = resp.status();
    let text = read_all(resp).await.unwrap_or_default();
    match s {
        StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(denied(&repo)),
        s => {
            return Err(Error::Invalid(format!(
                "PUT {url}: the registry refused the manifest ({s}){}",
                error_text(&text).map(|t| format!(": {t}")).unwrap_or_default()
            )));
        }
    }
    let (st, id, name) = (store.clone(), image.id.clone(), format!("{}@{digest}", target.name()));
    blocking(move || st.add_repo_digest(&id, &name).map_err(Error::from)).await?;
    p.status(format!("{tag}: digest: {digest} size: {}", bytes.len()));
    p.send(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest.as_str(), "Size": bytes.len()}}));
    Ok((digest, bytes.len()))
}
