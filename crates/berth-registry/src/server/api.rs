//! The distribution API's endpoints: each request is parsed into a typed call on [`Storage`], whose errors become
//! the spec's error JSON in one place ([`DistError`]'s `From`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::storage::{Reference, Storage, StorageError, check_name, digest_hex};

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

impl From<StorageError> for DistError {
    fn from(e: StorageError) -> DistError {
        use StorageError as E;
        let (status, code) = match &e {
            E::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            E::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
            E::DigestInvalid(_) | E::DigestMismatch(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::DigestUnsupported(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            E::BlobUnknown => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::ChunkOutOfOrder(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
            E::UploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            E::ManifestUnknown => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            E::ManifestChildUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_UNKNOWN"),
            E::Io(..) => {
                tracing::error!("{e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        };
        DistError(status, code, e.to_string())
    }
}

type Res<T> = Result<T, DistError>;

fn unsupported() -> DistError {
    DistError(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "the operation is unsupported".into())
}

/// The registry API's routes.
pub fn routes(st: Arc<Storage>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/_catalog", get(catalog))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(|| async { DistError(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry API path".into()) })
        .with_state(st)
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

async fn catalog(State(st): State<Arc<Storage>>, RawQuery(q): RawQuery) -> Res<Response> {
    let (n, last) = pagination(&q)?;
    let (repos, more) = page(st.repositories().await?, n, last.as_deref());
    Ok(paged("/v2/_catalog", json!({"repositories": repos}), n, repos.last(), more))
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
    State(st): State<Arc<Storage>>,
    method: Method,
    UrlPath(rest): UrlPath<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match route(&st, method, &rest, &q, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(
    st: &Storage,
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
            let (num, last) = pagination(q)?;
            let (list, more) = page(st.tags(&n).await?, num, last.as_deref());
            Ok(paged(&format!("/v2/{n}/tags/list"), json!({"name": n, "tags": list}), num, list.last(), more))
        }
        Target::Manifest(n, r) => {
            check_name(&n)?;
            let r = Reference::parse(&r)?;
            match method {
                Method::GET | Method::HEAD => get_manifest(st, &n, &r, method == Method::HEAD).await,
                Method::PUT => put_manifest(st, &n, &r, headers, body).await,
                Method::DELETE => {
                    st.delete_manifest(&n, &r).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Target::Blob(n, d) => {
            check_name(&n)?;
            let hex = digest_hex(&d)?;
            match method {
                Method::GET | Method::HEAD => get_blob(st, &n, &hex, headers, method == Method::HEAD).await,
                Method::DELETE => {
                    st.delete_blob(&n, &hex).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Target::Uploads(n, u) => {
            check_name(&n)?;
            match (method, u.is_empty()) {
                (Method::POST, true) => start_upload(st, &n, q, body).await,
                (Method::PATCH, false) => patch_upload(st, &n, &u, headers, body).await,
                (Method::PUT, false) => {
                    let d = query_value(q, "digest")
                        .ok_or_else(|| DistError(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "digest missing".into()))?;
                    let hex = digest_hex(&d)?;
                    st.append(&n, &u, None, body.into_data_stream()).await?;
                    st.finish_upload(&n, &u, &hex).await?;
                    Ok(blob_created(&n, &hex))
                }
                (Method::GET, false) => {
                    let size = st.upload_size(&n, &u).await?;
                    Ok(upload_response(StatusCode::NO_CONTENT, &n, &u, size))
                }
                (Method::DELETE, false) => {
                    st.cancel_upload(&n, &u).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Target::Referrers(n, d) => {
            check_name(&n)?;
            let hex = digest_hex(&d)?;
            let filter = query_value(q, "artifactType");
            let manifests = st.referrers(&n, &hex, filter.as_deref()).await?;
            let body = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests});
            let mut resp =
                ([("content-type", "application/vnd.oci.image.index.v1+json")], body.to_string()).into_response();
            if filter.is_some() {
                resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
            }
            Ok(resp)
        }
    }
}

fn with_headers(mut resp: Response, headers: Vec<(&'static str, String)>) -> Response {
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

async fn get_manifest(st: &Storage, n: &str, r: &Reference, head: bool) -> Res<Response> {
    let m = st.manifest(n, r).await?;
    let digest = format!("sha256:{}", m.hex);
    let headers = vec![
        ("content-type", m.media_type),
        ("docker-content-digest", digest.clone()),
        ("etag", format!("\"{digest}\"")),
        ("content-length", m.data.len().to_string()),
    ];
    let body = if head { Body::empty() } else { Body::from(m.data) };
    Ok(with_headers((StatusCode::OK, body).into_response(), headers))
}

async fn put_manifest(st: &Storage, n: &str, r: &Reference, headers: &HeaderMap, body: Body) -> Res<Response> {
    let data = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| DistError(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", "manifest too large".into()))?;
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let ctype = ctype.split(';').next().unwrap_or("").trim();
    let stored = st.put_manifest(n, r, &data, ctype).await?;
    let digest = format!("sha256:{}", stored.hex);
    let mut h = vec![("location", format!("/v2/{n}/manifests/{digest}")), ("docker-content-digest", digest)];
    if let Some(s) = stored.subject {
        h.push(("oci-subject", s));
    }
    Ok(with_headers(StatusCode::CREATED.into_response(), h))
}

async fn get_blob(st: &Storage, n: &str, hex: &str, headers: &HeaderMap, head: bool) -> Res<Response> {
    let (mut f, size) = st.open_blob(n, hex).await?;
    let range = match headers.get("range").and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size),
        None => Ok(None),
    };
    let (status, start, end) = match range {
        Err(()) => {
            return Ok(with_headers(
                StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
                vec![("content-range", format!("bytes */{size}"))],
            ));
        }
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ok(None) => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end + 1 - start };
    let digest = format!("sha256:{hex}");
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
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| DistError::from(StorageError::Io("seeking a blob".into(), e)))?;
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
    Ok(with_headers((status, body).into_response(), h))
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

async fn start_upload(st: &Storage, n: &str, q: &Option<String>, body: Body) -> Res<Response> {
    if let (Some(mount), Some(from)) = (query_value(q, "mount"), query_value(q, "from")) {
        let hex = digest_hex(&mount)?;
        if st.mount(n, &from, &hex).await? {
            return Ok(blob_created(n, &hex));
        }
    }
    // A monolithic upload names its digest in the POST; check it before taking the body.
    let digest = query_value(q, "digest").map(|d| digest_hex(&d)).transpose()?;
    let uuid = st.start_upload(n).await?;
    match digest {
        Some(hex) => {
            st.append(n, &uuid, None, body.into_data_stream()).await?;
            st.finish_upload(n, &uuid, &hex).await?;
            Ok(blob_created(n, &hex))
        }
        None => Ok(upload_response(StatusCode::ACCEPTED, n, &uuid, 0)),
    }
}

async fn patch_upload(st: &Storage, n: &str, uuid: &str, headers: &HeaderMap, body: Body) -> Res<Response> {
    // `Content-Range: <start>-<end>` (some clients write `bytes <start>-<end>`); without one the chunk is appended.
    let start = match headers.get("content-range").and_then(|v| v.to_str().ok()) {
        Some(cr) => Some(
            cr.trim_start_matches("bytes ").split('-').next().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(
                || DistError(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", format!("invalid Content-Range {cr:?}")),
            )?,
        ),
        None => None,
    };
    match st.append(n, uuid, start, body.into_data_stream()).await {
        Ok(size) => Ok(upload_response(StatusCode::ACCEPTED, n, uuid, size)),
        Err(StorageError::ChunkOutOfOrder(size)) => {
            Ok(upload_response(StatusCode::RANGE_NOT_SATISFIABLE, n, uuid, size))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding() {
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
