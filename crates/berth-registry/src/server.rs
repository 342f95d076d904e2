//! Berth's registry server (`berth registry serve`): the OCI distribution spec's HTTP API over plain files.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                          content (layers, configs, manifests), immutable
//! <root>/repositories/<name>/_layers/<hex>           the blob is part of the repository (empty marker)
//! <root>/repositories/<name>/_manifests/<hex>        a manifest of the repository (holds its media type)
//! <root>/repositories/<name>/_tags/<tag>             the digest a tag points at
//! <root>/uploads/<uuid>, <uuid>.repo                 blob uploads in progress and the repository they are for
//! ```
//!
//! Every file is written aside and renamed into place, a blob only after its content matched the digest the client
//! named, so concurrent pushes of the same blob (each with its own upload) are safe and a crash leaves whole files
//! or uploads that a later upload never reuses. Repository names and tags are validated before they become paths.

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
struct DistError(StatusCode, &'static str, String);

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

/// The distribution spec's repository name grammar: lowercase components of `[a-z0-9]` joined by `.`, `_`, `__`
/// or runs of `-`, separated by `/`.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(x))
                && !c.contains("..")
                && !c.contains("___")
                && !c.contains("._")
                && !c.contains("_.")
        })
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
        self.root.join("blobs/sha256").join(hex)
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn upload(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(uuid)
    }

    /// Writes `data` to `dest` atomically.
    async fn write_atomic(&self, dest: &Path, data: &[u8]) -> Res<()> {
        if let Some(p) = dest.parent() {
            tokio::fs::create_dir_all(p).await.map_err(internal)?;
        }
        let tmp = self.root.join("tmp").join(random_id());
        tokio::fs::write(&tmp, data).await.map_err(internal)?;
        tokio::fs::rename(&tmp, dest).await.map_err(internal)
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

/// The router of the registry API.
pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/_catalog", get(catalog))
        .route("/v2/{*rest}", any(dispatch))
        .with_state(reg)
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
            r
        }))
}

/// Serves the registry on `addr` until the process ends.
pub async fn serve(addr: &str, root: &Path) -> std::io::Result<()> {
    let reg = Registry::open(root)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(reg)).await
}

async fn base() -> Response {
    ([("content-type", "application/json")], "{}").into_response()
}

/// `n` and `last` of a paginated list.
fn pagination(q: &Option<String>) -> (Option<usize>, Option<String>) {
    let mut n = None;
    let mut last = None;
    for kv in q.as_deref().unwrap_or("").split('&') {
        match kv.split_once('=') {
            Some(("n", v)) => n = v.parse().ok(),
            Some(("last", v)) => last = Some(v.to_string()),
            _ => {}
        }
    }
    (n, last)
}

/// Applies pagination to a sorted list; returns the page and whether more follow.
fn page(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let start: Vec<String> = all.into_iter().filter(|x| last.is_none_or(|l| x.as_str() > l)).collect();
    match n {
        Some(n) if start.len() > n => (start[..n].to_vec(), true),
        _ => (start, false),
    }
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
    let (n, last) = pagination(&q);
    let (repos, more) = page(names, n, last.as_deref());
    let mut resp = ([("content-type", "application/json")], json!({"repositories": repos}).to_string()).into_response();
    if more && let (Some(n), Some(l)) = (n, repos.last()) {
        let link = format!("</v2/_catalog?n={n}&last={l}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
}

fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) {
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
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
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
    let (num, last) = pagination(q);
    let (list, more) = page(all, num, last.as_deref());
    let mut resp =
        ([("content-type", "application/json")], json!({"name": n, "tags": list}).to_string()).into_response();
    if more && let (Some(num), Some(l)) = (num, list.last()) {
        if let Ok(v) = HeaderValue::from_str(&format!("</v2/{n}/tags/list?n={num}&last={l}>; rel=\"next\"")) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
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
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok())));
    let digest = format!("sha256:{hex}");
    let (status, start, end) = match range {
        Some((a, _)) if a >= size => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert("content-range", v);
            }
            return Ok(resp);
        }
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b.map(|b| b.min(size - 1)).unwrap_or(size - 1)),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
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
            let artifact = v["artifactType"].as_str().or(v["config"]["mediaType"].as_str()).unwrap_or("").to_string();
            if filter.as_ref().is_some_and(|f| f != &artifact) {
                continue;
            }
            let mut desc = json!({"mediaType": v["mediaType"], "digest": format!("sha256:{hex}"), "size": data.len(),
                "artifactType": artifact});
            if !v["annotations"].is_null() {
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

/// Deletes blobs no manifest of any repository references (and repository links to them). Returns how many blobs
/// went. Run it while the server is stopped: an upload that is being linked meanwhile could lose its blob.
pub fn garbage_collect(root: &Path) -> std::io::Result<usize> {
    let mut keep = std::collections::HashSet::new();
    let mut repos = Vec::new();
    walk_repos(&root.join("repositories"), "", &mut repos);
    for r in &repos {
        let dir = root.join("repositories").join(r).join("_manifests");
        for e in std::fs::read_dir(&dir)?.flatten() {
            let hex = e.file_name().to_string_lossy().into_owned();
            keep.insert(hex.clone());
            if let Ok(data) = std::fs::read(root.join("blobs/sha256").join(&hex))
                && let Ok(v) = serde_json::from_slice::<Value>(&data)
            {
                let mut add = |d: &Value| {
                    if let Some(h) = d.as_str().and_then(|s| s.strip_prefix("sha256:")) {
                        keep.insert(h.to_string());
                    }
                };
                add(&v["config"]["digest"]);
                for l in v["layers"].as_array().into_iter().flatten() {
                    add(&l["digest"]);
                }
                for m in v["manifests"].as_array().into_iter().flatten() {
                    add(&m["digest"]);
                }
            }
        }
    }
    let mut removed = 0;
    for e in std::fs::read_dir(root.join("blobs/sha256"))?.flatten() {
        let hex = e.file_name().to_string_lossy().into_owned();
        if !keep.contains(&hex) {
            std::fs::remove_file(e.path())?;
            removed += 1;
        }
    }
    for r in &repos {
        let dir = root.join("repositories").join(r).join("_layers");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !keep.contains(&e.file_name().to_string_lossy().into_owned()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(removed)
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
        assert!(valid_tag("v1.0_rc-1"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a/b"));
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
    }

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(page(all.clone(), Some(2), None), (vec!["a".into(), "b".into()], true));
        assert_eq!(page(all, Some(2), Some("b")), (vec!["c".into()], false));
    }
}
