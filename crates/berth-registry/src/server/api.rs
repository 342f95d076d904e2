//! The distribution API's endpoints over the storage directory (layout in the parent module's doc).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

/// Largest manifest accepted.
const MAX_MANIFEST: usize = 4 << 20;

/// A distribution error: status, code, message.
#[derive(Debug)]
pub struct DistError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for DistError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.1, "message": self.2, "detail": null}]});
        (self.0, [("content-type", "application/json")], body.to_string()).into_response()
    }
}

type Res<T> = Result<T, DistError>;

fn name_invalid(n: &str) -> DistError {
    DistError(StatusCode::BAD_REQUEST, "NAME_INVALID", format!("invalid repository name: {n}"))
}

fn internal(e: impl std::fmt::Display) -> DistError {
    tracing::error!("{e}");
    DistError(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string())
}

fn blob_unknown() -> DistError {
    DistError(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry".into())
}

fn manifest_unknown() -> DistError {
    DistError(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown".into())
}

fn digest_invalid(m: impl Into<String>) -> DistError {
    DistError(StatusCode::BAD_REQUEST, "DIGEST_INVALID", m.into())
}

/// The distribution spec's repository name grammar: components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
pub fn valid_name(n: &str) -> bool {
    n.len() <= 255 && n.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // A run of alphanumerics...
        let start = i;
        while i < b.len() && alnum(&b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // ...then one separator: `.`, `_`, `__` or a run of `-`.
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || b"._-".contains(x))
}

/// The hex of a `sha256:<64 hex>` digest.
fn digest_hex(d: &str) -> Res<String> {
    match d.split_once(':') {
        Some(("sha256", h)) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) => {
            Ok(h.to_string())
        }
        Some((alg, _)) if alg != "sha256" => {
            Err(DistError(StatusCode::BAD_REQUEST, "UNSUPPORTED", format!("unsupported digest algorithm {alg}")))
        }
        _ => Err(digest_invalid(format!("invalid digest {d:?}"))),
    }
}

/// The server's state.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    /// Running hashes of uploads, while they are appended to in order by this process.
    hashers: Mutex<HashMap<String, (u64, Sha256)>>,
}

impl Registry {
    /// Opens (creating) the storage in `root`.
    pub fn open(root: &Path) -> std::io::Result<Arc<Registry>> {
        for d in ["blobs/sha256", "repositories", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(Arc::new(Registry { root: root.to_path_buf(), hashers: Mutex::new(HashMap::new()) }))
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

    /// Writes `data` to `dest` atomically and durably (written aside, fsynced, renamed into place).
    async fn write_atomic(&self, dest: &Path, data: &[u8]) -> Res<()> {
        let tmp = self.root.join("tmp").join(random_id());
        let (dest, data) = (dest.to_path_buf(), data.to_vec());
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
        .map_err(internal)?
        .map_err(internal)
    }

    fn linked(&self, name: &str, hex: &str) -> bool {
        self.repo(name).join("_layers").join(hex).exists() || self.repo(name).join("_manifests").join(hex).exists()
    }

    async fn link(&self, name: &str, hex: &str) -> Res<()> {
        self.write_atomic(&self.repo(name).join("_layers").join(hex), b"").await
    }
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = t.to_le_bytes();
    }
    hex::encode(b)
}

/// The registry API's routes.
pub fn routes(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/_catalog", get(catalog))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(|| async { DistError(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry API path".into()) })
        .with_state(reg)
}

async fn base() -> Response {
    ([("content-type", "application/json")], "{}").into_response()
}

/// `n` and `last` of a paginated list.
fn pagination(q: &Option<String>) -> Res<(Option<usize>, Option<String>)> {
    let n = match query_value(q, "n") {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            DistError(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", format!("invalid number of results: {v}"))
        })?),
    };
    Ok((n, query_value(q, "last").filter(|l| !l.is_empty())))
}

/// Applies pagination to a sorted list; returns the page and whether more follow. `n=0` is an empty page.
fn page(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let rest: Vec<String> = all.into_iter().filter(|x| last.is_none_or(|l| x.as_str() > l)).collect();
    match n {
        Some(n) if rest.len() > n => (rest[..n].to_vec(), n > 0),
        _ => (rest, false),
    }
}

/// A paginated JSON list, with the `Link` to the next page when there is one.
fn paged(path: &str, body: Value, n: Option<usize>, last: Option<&String>, more: bool) -> Response {
    let mut resp = ([("content-type", "application/json")], body.to_string()).into_response();
    if more && let (Some(n), Some(l)) = (n, last) {
        let link = format!("<{path}?n={n}&last={}>; rel=\"next\"", percent_encode(l));
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn catalog(State(reg): State<Arc<Registry>>, RawQuery(q): RawQuery) -> Res<Response> {
    let root = reg.root.join("repositories");
    let names = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        walk_repos(&root, "", &mut out);
        out.sort();
        out
    })
    .await
    .map_err(internal)?;
    let (n, last) = pagination(&q)?;
    let (repos, more) = page(names, n, last.as_deref());
    Ok(paged("/v2/_catalog", json!({"repositories": repos}), n, repos.last(), more))
}

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

/// What a `/v2/<name>/...` path asks for.
enum Target {
    Tags(String),
    Manifest(String, String),
    Uploads(String, String),
    Blob(String, String),
    Referrers(String, String),
}

fn parse_target(rest: &str) -> Option<Target> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name.into()));
    }
    if let Some((name, r)) = rest.rsplit_once("/manifests/") {
        return Some(Target::Manifest(name.into(), r.into()));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads").or_else(|| rest.strip_suffix("/blobs/uploads/")) {
        return Some(Target::Uploads(name.into(), String::new()));
    }
    if let Some((name, u)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(Target::Uploads(name.into(), u.into()));
    }
    if let Some((name, d)) = rest.rsplit_once("/blobs/") {
        return Some(Target::Blob(name.into(), d.into()));
    }
    if let Some((name, d)) = rest.rsplit_once("/referrers/") {
        return Some(Target::Referrers(name.into(), d.into()));
    }
    None
}

fn query_value(q: &Option<String>, key: &str) -> Option<String> {
    q.as_deref()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hexval = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|&c| hexval(c)), b.get(i + 2).and_then(|&c| hexval(c)))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn dispatch(
    State(reg): State<Arc<Registry>>,
    method: Method,
    UrlPath(rest): UrlPath<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match route(&reg, method, &rest, &q, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(
    reg: &Registry,
    method: Method,
    rest: &str,
    q: &Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Res<Response> {
    let target = parse_target(rest)
        .ok_or_else(|| DistError(StatusCode::NOT_FOUND, "UNSUPPORTED", format!("unknown path /v2/{rest}")))?;
    match target {
        Target::Tags(n) => {
            check_name(&n)?;
            tags(reg, &n, q).await
        }
        Target::Manifest(n, r) => {
            check_name(&n)?;
            match method {
                Method::GET | Method::HEAD => get_manifest(reg, &n, &r, method == Method::HEAD).await,
                Method::PUT => put_manifest(reg, &n, &r, headers, body).await,
                Method::DELETE => delete_manifest(reg, &n, &r).await,
                _ => Err(unsupported()),
            }
        }
        Target::Blob(n, d) => {
            check_name(&n)?;
            match method {
                Method::GET | Method::HEAD => get_blob(reg, &n, &d, headers, method == Method::HEAD).await,
                Method::DELETE => delete_blob(reg, &n, &d).await,
                _ => Err(unsupported()),
            }
        }
        Target::Uploads(n, u) => {
            check_name(&n)?;
            match (method, u.is_empty()) {
                (Method::POST, true) => start_upload(reg, &n, q, body).await,
                (Method::PATCH, false) => patch_upload(reg, &n, &u, headers, body).await,
                (Method::PUT, false) => put_upload(reg, &n, &u, q, body).await,
                (Method::GET, false) => upload_status(reg, &n, &u).await,
                (Method::DELETE, false) => cancel_upload(reg, &n, &u).await,
                _ => Err(unsupported()),
            }
        }
        Target::Referrers(n, d) => {
            check_name(&n)?;
            referrers(reg, &n, &d, q).await
        }
    }
}

fn unsupported() -> DistError {
    DistError(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "the operation is unsupported".into())
}

fn check_name(n: &str) -> Res<()> {
    if valid_name(n) { Ok(()) } else { Err(name_invalid(n)) }
}

fn repo_unknown(reg: &Registry, n: &str) -> Option<DistError> {
    (!reg.repo(n).join("_manifests").is_dir() && !reg.repo(n).join("_layers").is_dir()).then(|| {
        DistError(StatusCode::NOT_FOUND, "NAME_UNKNOWN", format!("repository name not known to registry: {n}"))
    })
}

async fn tags(reg: &Registry, n: &str, q: &Option<String>) -> Res<Response> {
    if let Some(e) = repo_unknown(reg, n) {
        return Err(e);
    }
    let mut all = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(reg.repo(n).join("_tags")).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            all.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    all.sort();
    let (num, last) = pagination(q)?;
    let (list, more) = page(all, num, last.as_deref());
    Ok(paged(&format!("/v2/{n}/tags/list"), json!({"name": n, "tags": list}), num, list.last(), more))
}

/// The digest hex a manifest reference (tag or digest) names in a repository.
async fn resolve_manifest(reg: &Registry, n: &str, r: &str) -> Res<String> {
    if r.contains(':') {
        let hex = digest_hex(r)?;
        if !reg.repo(n).join("_manifests").join(&hex).exists() {
            return Err(manifest_unknown());
        }
        return Ok(hex);
    }
    if !valid_tag(r) {
        return Err(DistError(StatusCode::BAD_REQUEST, "TAG_INVALID", format!("invalid tag {r:?}")));
    }
    let d = tokio::fs::read_to_string(reg.repo(n).join("_tags").join(r))
        .await
        .map_err(|_| repo_unknown(reg, n).unwrap_or_else(manifest_unknown))?;
    digest_hex(d.trim())
}

async fn get_manifest(reg: &Registry, n: &str, r: &str, head: bool) -> Res<Response> {
    let hex = resolve_manifest(reg, n, r).await?;
    let media =
        tokio::fs::read_to_string(reg.repo(n).join("_manifests").join(&hex)).await.map_err(|_| manifest_unknown())?;
    let data = tokio::fs::read(reg.blob(&hex)).await.map_err(|_| manifest_unknown())?;
    let digest = format!("sha256:{hex}");
    let headers = [
        ("content-type", media.trim().to_string()),
        ("docker-content-digest", digest.clone()),
        ("etag", format!("\"{digest}\"")),
        ("content-length", data.len().to_string()),
    ];
    let body = if head { Body::empty() } else { Body::from(data) };
    Ok((StatusCode::OK, headers, body).into_response())
}

async fn put_manifest(reg: &Registry, n: &str, r: &str, headers: &HeaderMap, body: Body) -> Res<Response> {
    let data = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| DistError(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", "manifest too large".into()))?;
    let hex = hex::encode(Sha256::digest(&data));
    let is_digest = r.contains(':');
    if is_digest && digest_hex(r)? != hex {
        return Err(digest_invalid("the manifest does not match the digest in the URL"));
    }
    if !is_digest && !valid_tag(r) {
        return Err(DistError(StatusCode::BAD_REQUEST, "TAG_INVALID", format!("invalid tag {r:?}")));
    }
    let bad = |m: String| DistError(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m);
    let v: Value = serde_json::from_slice(&data).map_err(|e| bad(format!("manifest invalid: {e}")))?;
    let ctype =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").split(';').next().unwrap_or("").trim();
    let media = v["mediaType"].as_str().unwrap_or(ctype).to_string();
    if media.is_empty() {
        return Err(bad("manifest invalid: no media type".into()));
    }
    if v["schemaVersion"].as_i64() != Some(2) {
        return Err(bad("manifest invalid: schemaVersion must be 2".into()));
    }
    // Everything it references must be in the repository already.
    let mut refs: Vec<(String, bool)> = Vec::new();
    if let Some(c) = v["config"]["digest"].as_str() {
        refs.push((c.to_string(), false));
    }
    for l in v["layers"].as_array().into_iter().flatten() {
        let foreign = l["urls"].is_array();
        if let Some(d) = l["digest"].as_str()
            && !foreign
        {
            refs.push((d.to_string(), false));
        }
    }
    for m in v["manifests"].as_array().into_iter().flatten() {
        if let Some(d) = m["digest"].as_str() {
            refs.push((d.to_string(), true));
        }
    }
    for (d, manifest) in &refs {
        let h = digest_hex(d)?;
        let ok = if *manifest { reg.repo(n).join("_manifests").join(&h).exists() } else { reg.linked(n, &h) };
        if !ok {
            return Err(DistError(
                StatusCode::BAD_REQUEST,
                if *manifest { "MANIFEST_UNKNOWN" } else { "MANIFEST_BLOB_UNKNOWN" },
                format!("blob unknown to registry: {d}"),
            ));
        }
    }
    if !reg.blob(&hex).exists() {
        reg.write_atomic(&reg.blob(&hex), &data).await?;
    }
    reg.write_atomic(&reg.repo(n).join("_manifests").join(&hex), media.as_bytes()).await?;
    if !is_digest {
        reg.write_atomic(&reg.repo(n).join("_tags").join(r), format!("sha256:{hex}").as_bytes()).await?;
    }
    let digest = format!("sha256:{hex}");
    let mut h = vec![("location", format!("/v2/{n}/manifests/{digest}")), ("docker-content-digest", digest.clone())];
    if let Some(s) = v["subject"]["digest"].as_str() {
        h.push(("oci-subject", s.to_string()));
    }
    let mut resp = StatusCode::CREATED.into_response();
    for (k, val) in h {
        if let Ok(v) = HeaderValue::from_str(&val) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

async fn delete_manifest(reg: &Registry, n: &str, r: &str) -> Res<Response> {
    if r.contains(':') {
        let hex = resolve_manifest(reg, n, r).await?;
        tokio::fs::remove_file(reg.repo(n).join("_manifests").join(&hex)).await.map_err(|_| manifest_unknown())?;
        // Tags that pointed at it go too.
        if let Ok(mut rd) = tokio::fs::read_dir(reg.repo(n).join("_tags")).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                if tokio::fs::read_to_string(e.path()).await.map(|d| d.trim().ends_with(&hex)).unwrap_or(false) {
                    let _ = tokio::fs::remove_file(e.path()).await;
                }
            }
        }
    } else {
        resolve_manifest(reg, n, r).await?;
        tokio::fs::remove_file(reg.repo(n).join("_tags").join(r)).await.map_err(|_| manifest_unknown())?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn get_blob(reg: &Registry, n: &str, d: &str, headers: &HeaderMap, head: bool) -> Res<Response> {
    let hex = digest_hex(d)?;
    if !reg.linked(n, &hex) {
        return Err(blob_unknown());
    }
    let path = reg.blob(&hex);
    let mut f = tokio::fs::File::open(&path).await.map_err(|_| blob_unknown())?;
    let size = f.metadata().await.map_err(internal)?.len();
    let range = match headers.get("range").and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size),
        None => Ok(None),
    };
    let digest = format!("sha256:{hex}");
    let (status, start, end) = match range {
        Err(()) => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert("content-range", v);
            }
            return Ok(resp);
        }
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ok(None) => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end + 1 - start };
    let mut h = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("docker-content-digest", digest.clone()),
        ("etag", format!("\"{digest}\"")),
        ("content-length", len.to_string()),
        ("accept-ranges", "bytes".to_string()),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        h.push(("content-range", format!("bytes {start}-{end}/{size}")));
    }
    let body = if head {
        Body::empty()
    } else {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(internal)?;
        let stream = futures_util::stream::unfold(f.take(len), |mut r| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(k) => {
                    buf.truncate(k);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        });
        Body::from_stream(stream)
    };
    let mut resp = (status, body).into_response();
    for (k, v) in h {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a blob of `size` bytes; `Ok(None)` for a header this
/// does not understand (several ranges: the whole blob is sent), `Err` for an unsatisfiable one.
fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn delete_blob(reg: &Registry, n: &str, d: &str) -> Res<Response> {
    let hex = digest_hex(d)?;
    tokio::fs::remove_file(reg.repo(n).join("_layers").join(&hex)).await.map_err(|_| blob_unknown())?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn upload_response(status: StatusCode, n: &str, uuid: &str, size: u64) -> Response {
    let mut resp = status.into_response();
    let range = if size == 0 { "0-0".to_string() } else { format!("0-{}", size - 1) };
    for (k, v) in [
        ("location", format!("/v2/{n}/blobs/uploads/{uuid}")),
        ("range", range),
        ("docker-upload-uuid", uuid.to_string()),
        ("content-length", "0".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn blob_created(n: &str, hex: &str) -> Response {
    let digest = format!("sha256:{hex}");
    let mut resp = StatusCode::CREATED.into_response();
    for (k, v) in [
        ("location", format!("/v2/{n}/blobs/{digest}")),
        ("docker-content-digest", digest.clone()),
        ("content-length", "0".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

async fn start_upload(reg: &Registry, n: &str, q: &Option<String>, body: Body) -> Res<Response> {
    if let (Some(mount), Some(from)) = (query_value(q, "mount"), query_value(q, "from")) {
        let hex = digest_hex(&mount)?;
        if valid_name(&from) && reg.linked(&from, &hex) && reg.blob(&hex).exists() {
            reg.link(n, &hex).await?;
            return Ok(blob_created(n, &hex));
        }
    }
    let uuid = random_id();
    reg.write_atomic(&reg.root.join("uploads").join(format!("{uuid}.repo")), n.as_bytes()).await?;
    tokio::fs::File::create(reg.upload(&uuid)).await.map_err(internal)?;
    reg.hashers.lock().unwrap_or_else(|p| p.into_inner()).insert(uuid.clone(), (0, Sha256::new()));
    if let Some(d) = query_value(q, "digest") {
        // A monolithic upload in one POST.
        append(reg, &uuid, body).await?;
        return finish_upload(reg, n, &uuid, &d).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, n, &uuid, 0))
}

/// Checks that `uuid` is an upload to repository `n`; returns its current size.
async fn upload_size(reg: &Registry, n: &str, uuid: &str) -> Res<u64> {
    let unknown = || DistError(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry".into());
    if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let owner = tokio::fs::read_to_string(reg.root.join("uploads").join(format!("{uuid}.repo")))
        .await
        .map_err(|_| unknown())?;
    if owner != n {
        return Err(unknown());
    }
    Ok(tokio::fs::metadata(reg.upload(uuid)).await.map_err(|_| unknown())?.len())
}

/// Appends a request body to an upload, hashing as it goes when the running hash is current.
async fn append(reg: &Registry, uuid: &str, body: Body) -> Res<u64> {
    let path = reg.upload(uuid);
    let mut f = tokio::fs::OpenOptions::new().append(true).open(&path).await.map_err(internal)?;
    let mut size = f.metadata().await.map_err(internal)?.len();
    let mut hasher = {
        let mut m = reg.hashers.lock().unwrap_or_else(|p| p.into_inner());
        match m.remove(uuid) {
            Some((off, h)) if off == size => Some(h),
            _ => None,
        }
    };
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| DistError(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", e.to_string()))?;
        f.write_all(&chunk).await.map_err(internal)?;
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        size += chunk.len() as u64;
    }
    f.flush().await.map_err(internal)?;
    if let Some(h) = hasher {
        reg.hashers.lock().unwrap_or_else(|p| p.into_inner()).insert(uuid.to_string(), (size, h));
    }
    Ok(size)
}

async fn patch_upload(reg: &Registry, n: &str, uuid: &str, headers: &HeaderMap, body: Body) -> Res<Response> {
    let size = upload_size(reg, n, uuid).await?;
    if let Some(cr) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
        let start = cr.trim_start_matches("bytes ").split('-').next().and_then(|s| s.parse::<u64>().ok());
        if start != Some(size) {
            return Ok(upload_response(StatusCode::RANGE_NOT_SATISFIABLE, n, uuid, size));
        }
    }
    let size = append(reg, uuid, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, n, uuid, size))
}

async fn put_upload(reg: &Registry, n: &str, uuid: &str, q: &Option<String>, body: Body) -> Res<Response> {
    upload_size(reg, n, uuid).await?;
    let d = query_value(q, "digest").ok_or_else(|| digest_invalid("digest parameter missing"))?;
    digest_hex(&d)?;
    append(reg, uuid, body).await?;
    finish_upload(reg, n, uuid, &d).await
}

/// Verifies an upload against `digest` and moves it into place; a mismatch discards the upload.
async fn finish_upload(reg: &Registry, n: &str, uuid: &str, digest: &str) -> Res<Response> {
    let want = digest_hex(digest)?;
    let path = reg.upload(uuid);
    let size = tokio::fs::metadata(&path).await.map_err(internal)?.len();
    let running = reg.hashers.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
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
            .map_err(internal)?
            .map_err(internal)?
        }
    };
    let repo_file = reg.root.join("uploads").join(format!("{uuid}.repo"));
    if got != want {
        let _ = tokio::fs::remove_file(&path).await;
        let _ = tokio::fs::remove_file(&repo_file).await;
        return Err(digest_invalid(format!("provided digest did not match uploaded content (sha256:{got})")));
    }
    let f = tokio::fs::File::open(&path).await.map_err(internal)?;
    f.sync_all().await.map_err(internal)?;
    tokio::fs::rename(&path, reg.blob(&want)).await.map_err(internal)?;
    let _ = tokio::fs::remove_file(&repo_file).await;
    reg.link(n, &want).await?;
    Ok(blob_created(n, &want))
}

async fn upload_status(reg: &Registry, n: &str, uuid: &str) -> Res<Response> {
    let size = upload_size(reg, n, uuid).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, n, uuid, size))
}

async fn cancel_upload(reg: &Registry, n: &str, uuid: &str) -> Res<Response> {
    upload_size(reg, n, uuid).await?;
    let _ = tokio::fs::remove_file(reg.upload(uuid)).await;
    let _ = tokio::fs::remove_file(reg.root.join("uploads").join(format!("{uuid}.repo"))).await;
    reg.hashers.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn referrers(reg: &Registry, n: &str, d: &str, q: &Option<String>) -> Res<Response> {
    let subject = format!("sha256:{}", digest_hex(d)?);
    let filter = query_value(q, "artifactType");
    let mut manifests = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(reg.repo(n).join("_manifests")).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let hex = e.file_name().to_string_lossy().into_owned();
            let Ok(data) = tokio::fs::read(reg.blob(&hex)).await else { continue };
            let Ok(v) = serde_json::from_slice::<Value>(&data) else { continue };
            if v["subject"]["digest"].as_str() != Some(subject.as_str()) {
                continue;
            }
            // The manifest's artifactType, else (for an image manifest, not an index) its config's media type.
            let artifact = v["artifactType"]
                .as_str()
                .filter(|a| !a.is_empty())
                .or(v["config"]["mediaType"].as_str())
                .map(str::to_string);
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
            manifests.push(desc);
        }
    }
    let body =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let mut resp = ([("content-type", "application/vnd.oci.image.index.v1+json")], body.to_string()).into_response();
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
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
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
        assert_eq!(percent_decode("%a\u{e9}%"), "%a\u{e9}%");
        assert_eq!(percent_encode("a/b c"), "a/b%20c");
    }

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(page(all.clone(), Some(2), None), (vec!["a".into(), "b".into()], true));
        assert_eq!(page(all.clone(), Some(2), Some("b")), (vec!["c".into()], false));
        assert_eq!(page(all.clone(), Some(0), None), (vec![], false));
        assert_eq!(page(all, None, Some("a")), (vec!["b".into(), "c".into()], false));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=2-4", 10), Ok(Some((2, 4))));
        assert_eq!(parse_range("bytes=5-100", 10), Ok(Some((5, 9))));
        assert_eq!(parse_range("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(parse_range("bytes=10-", 10), Err(()));
        assert_eq!(parse_range("bytes=4-2", 10), Err(()));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Ok(None));
        assert_eq!(parse_range("items=0-1", 10), Ok(None));
    }
}
