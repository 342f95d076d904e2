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
    let mut out = Hashing { inner: std::io::BufWriter::with_capacity(256 * 1024, file), h: Digester::new(), n: 0 };
    gzip(&mut tar, &mut out).map_err(|e| Error::Io(format!("compressing layer {diff}"), e))?;
    out.flush().map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
    Ok((scratch, out.h.finish(), out.n))
}

/// How much input [`gzip`] judges at a time.
const GZIP_BLOCK: usize = 1 << 20;

/// Compresses `input` into `out` as one gzip member, a block of 1 MiB at a time: a block whose bytes look random
/// (data compressed already: the entropy of its byte histogram above 7.9 bits a byte, where deflate saves under 1 %)
/// goes into stored deflate blocks (a copy, and a copy to inflate), the others through deflate level 1, one
/// compressor (and its window) for each run of them. The runs meet at byte boundaries (a sync flush ends each
/// compressed run), so the whole is one ordinary deflate stream that any gzip reader (Docker's, containerd's) reads.
fn gzip(input: &mut impl std::io::Read, out: &mut impl std::io::Write) -> std::io::Result<()> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    // No name, no time, no extra flags, OS unknown: as flate2's `GzEncoder` writes it.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = Crc::new();
    let mut block = vec![0u8; GZIP_BLOCK];
    let mut obuf: Vec<u8> = Vec::with_capacity(GZIP_BLOCK + GZIP_BLOCK / 4);
    let mut deflate: Option<Compress> = None;
    let run =
        |c: &mut Compress, data: &[u8], flush: FlushCompress, obuf: &mut Vec<u8>, out: &mut dyn std::io::Write| {
            let mut data = data;
            loop {
                obuf.clear();
                let before = c.total_in();
                c.compress_vec(data, obuf, flush).map_err(std::io::Error::other)?;
                data = &data[(c.total_in() - before) as usize..];
                out.write_all(obuf)?;
                // Done once the input is taken and the output had room to spare (the flush is complete).
                if data.is_empty() && obuf.len() < obuf.capacity() {
                    return Ok::<(), std::io::Error>(());
                }
            }
        };
    loop {
        let n = read_full(input, &mut block)?;
        if n == 0 {
            break;
        }
        let data = &block[..n];
        crc.update(data);
        if looks_random(data) {
            if let Some(mut c) = deflate.take() {
                run(&mut c, &[], FlushCompress::Sync, &mut obuf, out)?;
            }
            for part in data.chunks(0xffff) {
                let len = part.len() as u16;
                // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN and its complement.
                out.write_all(&[0])?;
                out.write_all(&len.to_le_bytes())?;
                out.write_all(&(!len).to_le_bytes())?;
                out.write_all(part)?;
            }
        } else {
            let c = deflate.get_or_insert_with(|| Compress::new(Compression::fast(), false));
            run(c, data, FlushCompress::None, &mut obuf, out)?;
        }
    }
    if let Some(mut c) = deflate.take() {
        run(&mut c, &[], FlushCompress::Sync, &mut obuf, out)?;
    }
    // The final block: stored and empty.
    out.write_all(&[1, 0, 0, 0xff, 0xff])?;
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(())
}

/// Fills `buf` from `r` as far as it goes: fewer bytes only at the end of the input.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether `data`'s byte histogram has more than 7.9 bits of entropy a byte: deflate would not shrink it.
fn looks_random(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum();
    bits > 7.9
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

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        gzip(&mut &data[..], &mut out).expect("gzip");
        out
    }

    /// One gzip member (a single-member decoder reads it all), whatever the mix of stored and compressed runs.
    fn roundtrip(data: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let z = gz(data);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).expect("gunzip");
        assert!(back == data, "{} bytes in, {} back", data.len(), back.len());
        z
    }

    #[test]
    fn gzip_stores_random_blocks_and_compresses_the_others_in_one_member() {
        let text: Vec<u8> = b"a line of a text file that repeats\n".iter().copied().cycle().take(3 << 20).collect();
        let random = noise(3 << 20 | 12345, 7);
        // Random data is stored: a few bytes per 64 KiB more than the input, where level 1 would add Huffman codes.
        let z = roundtrip(&random);
        assert!(z.len() < random.len() + random.len() / 10_000 + 64, "{} for {}", z.len(), random.len());
        // Text is compressed.
        assert!(roundtrip(&text).len() < text.len() / 20);
        // Runs of either kind, in every order, meet at block boundaries.
        let mut mixed = text.clone();
        mixed.extend_from_slice(&random);
        mixed.extend_from_slice(&text[..1 << 20]);
        mixed.extend_from_slice(&random[..5000]);
        let z = roundtrip(&mixed);
        assert!(z.len() < random.len() + (1 << 20));
        for d in [&b""[..], b"x", &text[..GZIP_BLOCK], &random[..GZIP_BLOCK]] {
            roundtrip(d);
        }
    }
}
