//! The distribution protocol's HTTP side: one [`Registry`] per registry and repository operation, holding its
//! credentials and the bearer token it earned. Requests go over HTTP/1.1 on a fresh TCP connection each (hyper's
//! client connection, no pool); `WWW-Authenticate` challenges (bearer token and basic) and redirects are followed;
//! every connection and response has a timeout, so an unreachable registry is an error, never a hang. HTTPS through
//! rustls with Docker's trust rules (`crate::tls`); plain HTTP only to loopback and `--insecure-registry` hosts, after
//! HTTPS failed there.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::auth::{Credentials, parse_challenge};
use crate::error::{Error, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a registry may take to start answering.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a body may stall between two chunks.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The API endpoint of a registry name: Docker Hub's is `registry-1.docker.io`.
pub fn endpoint_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

/// True for hosts on the loopback (plain HTTP is always allowed there, as Docker does).
pub fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host_port
            .rsplit_once(':')
            .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host_port })
            .unwrap_or(host_port),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().map(|a| a.is_loopback()).unwrap_or(false)
}

/// Whether `host_port`'s host is an IPv4 address inside `cidr` (`10.0.0.0/8`): dockerd's insecure registries may be
/// given as networks. Names are not resolved for this (dockerd looks their addresses up; Berth matches literal
/// addresses only).
fn in_cidr(host_port: &str, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else { return false };
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    let (Ok(net), Ok(bits), Ok(ip)) =
        (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>(), host.parse::<std::net::Ipv4Addr>())
    else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// A request body that can be sent again (after an authentication challenge).
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// Bytes in memory.
    Bytes(Bytes),
    /// A range of a file.
    File { path: std::path::PathBuf, offset: u64, len: u64 },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    async fn into_http(self) -> Result<BoxBody<Bytes, std::io::Error>> {
        Ok(match self {
            Body::Empty => Full::new(Bytes::new()).map_err(|never| match never {}).boxed(),
            Body::Bytes(b) => Full::new(b).map_err(|never| match never {}).boxed(),
            Body::File { path, offset, len } => {
                use tokio::io::AsyncSeekExt;
                let mut f = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::Io(format!("opening {}", path.display()), e))?;
                f.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(|e| Error::Io(format!("reading {}", path.display()), e))?;
                let stream = futures_util::stream::unfold((f.take(len), false), |(mut r, done)| async move {
                    if done {
                        return None;
                    }
                    let mut buf = vec![0u8; 256 * 1024];
                    match r.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            Some((Ok(Frame::data(Bytes::from(buf))), (r, false)))
                        }
                        Err(e) => Some((Err(e), (r, true))),
                    }
                });
                StreamBody::new(stream).boxed()
            }
        })
    }
}

/// `scheme://host[:port]/path?query`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// `/path?query`.
    pub path: String,
}

impl Url {
    /// Parses an absolute URL.
    pub fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = s.split_once("://")?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        if authority.is_empty() {
            return None;
        }
        Some(Url { scheme: scheme.to_ascii_lowercase(), authority: authority.to_string(), path })
    }

    /// The TCP address to connect to.
    fn addr(&self) -> String {
        let has_port = match self.authority.rfind(']') {
            Some(i) => self.authority[i..].contains(':'),
            None => self.authority.contains(':'),
        };
        if has_port {
            self.authority.clone()
        } else if self.scheme == "https" {
            format!("{}:443", self.authority)
        } else {
            format!("{}:80", self.authority)
        }
    }

    /// A reference (absolute, or a path) resolved against this URL, as `Location` headers are.
    pub fn join(&self, loc: &str) -> Url {
        if let Some(u) = Url::parse(loc) {
            return u;
        }
        let path = if loc.starts_with('/') {
            loc.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            format!("{dir}/{loc}")
        };
        Url { scheme: self.scheme.clone(), authority: self.authority.clone(), path }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// Percent-encodes a query value.
pub fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP/1.1 client connection on `io`, driven by a task of its own.
async fn handshake<I>(io: I) -> hyper::Result<hyper::client::conn::http1::SendRequest<BoxBody<Bytes, std::io::Error>>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A TCP connection to `url`'s host, with the connect timeout (`what` names the request in errors).
async fn dial(url: &Url, what: &str) -> Result<tokio::net::TcpStream> {
    let addr = url.addr();
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| Error::Unavailable(format!("{what}: dial tcp {addr}: i/o timeout")))?
        .map_err(|e| Error::Unavailable(format!("{what}: dial tcp {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A TLS handshake on `stream` with the handshake timeout: the outer error is the timeout, the inner one the
/// handshake's (which an insecure registry answers by speaking HTTP).
async fn tls_connect(
    config: Arc<rustls::ClientConfig>,
    url: &Url,
    stream: tokio::net::TcpStream,
    what: &str,
) -> Result<std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let name = crate::tls::server_name(&url.authority)?;
    tokio::time::timeout(CONNECT_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| Error::Unavailable(format!("{what}: tls handshake timeout")))
}

/// Sends one request on a connection, with the timeout on the response's head.
async fn send_on(
    mut sender: hyper::client::conn::http1::SendRequest<BoxBody<Bytes, std::io::Error>>,
    method: &Method,
    url: &Url,
    headers: &[(&str, String)],
    body: Body,
    auth: Option<&str>,
) -> Result<Response<Incoming>> {
    let what = || format!("{method} \"{url}\"");
    let len = body.len();
    let has_body = !matches!(body, Body::Empty) || matches!(*method, Method::PUT | Method::POST | Method::PATCH);
    let mut req = Request::builder()
        .method(method.clone())
        .uri(&url.path)
        .header("host", &url.authority)
        .header("user-agent", concat!("berth/", env!("CARGO_PKG_VERSION")));
    if has_body {
        req = req.header("content-length", len.to_string());
    }
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(body.into_http().await?).map_err(|e| Error::Internal(format!("{}: {e}", what())))?;
    tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| Error::Unavailable(format!("{}: timeout awaiting response headers", what())))?
        .map_err(|e| Error::Unavailable(format!("{}: {e}", what())))
}

/// A file fetched by [`download`].
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The file written.
    pub path: PathBuf,
    /// The last non-empty segment of the (final) URL's path, `download` when it has none.
    pub name: String,
    /// The hex SHA-256 of the content.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// GETs an `http://` or `https://` URL that is not a registry's (the builder's `ADD <url>`), with the same client as
/// registries: HTTPS verified against the system's CAs and `<certs_dir>/<host[:port]>/*.crt`, redirects followed,
/// timeouts on connecting, on the response's head and on every stall of the body. The body is streamed into a file
/// named after the URL in `dir` (created, mode 0600), never held in memory.
pub async fn download(url: &str, certs_dir: Option<&std::path::Path>, dir: &std::path::Path) -> Result<Downloaded> {
    use sha2::Digest as _;
    use tokio::io::AsyncWriteExt as _;
    let mut url = Url::parse(url).ok_or_else(|| Error::InvalidArgument(format!("invalid URL {url:?}")))?;
    for _ in 0..10 {
        let what = format!("GET \"{url}\"");
        if url.scheme != "http" && url.scheme != "https" {
            return Err(Error::InvalidArgument(format!("{what}: only http:// and https:// URLs can be fetched")));
        }
        let stream = dial(&url, &what).await?;
        let sender = match url.scheme.as_str() {
            "https" => {
                let tls = tls_connect(crate::tls::verifying(certs_dir, &url.authority)?, &url, stream, &what)
                    .await?
                    .map_err(|e| Error::Unavailable(format!("{what}: tls: {e}")))?;
                handshake(tls).await
            }
            _ => handshake(stream).await,
        }
        .map_err(|e| Error::Unavailable(format!("{what}: {e}")))?;
        let resp = send_on(sender, &Method::GET, &url, &[], Body::Empty, None).await?;
        let status = resp.status();
        if status.is_redirection()
            && status != StatusCode::NOT_MODIFIED
            && let Some(loc) = resp.headers().get("location").and_then(|l| l.to_str().ok())
        {
            url = url.join(loc);
            continue;
        }
        if !status.is_success() {
            return Err(Error::Unavailable(format!("{what}: status {status}")));
        }
        let path_only = url.path.split('?').next().unwrap_or("/");
        let name = path_only.rsplit('/').find(|s| !s.is_empty()).unwrap_or("download").to_string();
        tokio::fs::create_dir_all(dir).await.map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(&name);
        let io = |e| Error::Io(format!("writing {}", path.display()), e);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(io)?;
        let (mut hasher, mut size) = (sha2::Sha256::new(), 0u64);
        let mut body = resp.into_body();
        while let Some(chunk) = next_chunk(&mut body).await? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        return Ok(Downloaded { path, name, sha256: hex::encode(hasher.finalize()), size });
    }
    Err(Error::Unavailable(format!("GET \"{url}\": too many redirects")))
}

/// A client for one registry, for operations on the repositories in `scopes`.
#[derive(Debug)]
pub struct Registry {
    /// The registry's name as references write it (`docker.io`, `localhost:5000`).
    pub name: String,
    base: Url,
    creds: Credentials,
    scopes: Vec<String>,
    authorization: tokio::sync::Mutex<Option<String>>,
    /// Plain HTTP is allowed (loopback, `--insecure-registry`): HTTPS is tried unverified, then HTTP.
    insecure: bool,
    /// Set once HTTPS failed on an insecure registry: the rest of the operation speaks HTTP.
    plain: AtomicBool,
    /// Docker's `certs.d` directory: `<dir>/<host[:port]>/*.crt` are trusted for that registry.
    certs_dir: Option<PathBuf>,
    /// The TLS configuration for the registry's own host, made on first use.
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

/// The distribution spec's error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`.
pub fn error_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let errs = v["errors"].as_array()?;
    let parts: Vec<String> = errs
        .iter()
        .map(|e| {
            let code = e["code"].as_str().unwrap_or("UNKNOWN").to_ascii_lowercase().replace('_', " ");
            match e["message"].as_str().filter(|m| !m.is_empty()) {
                Some(m) => format!("{code}: {m}"),
                None => code,
            }
        })
        .collect();
    if parts.is_empty() { None } else { Some(parts.join(", ")) }
}

impl Registry {
    /// A client for `registry`. HTTPS, verified against the system's CAs and Docker's `certs.d` directory; for
    /// loopback hosts and those in `insecure`, HTTPS without verification and then plain HTTP, as Docker does.
    pub fn new(registry: &str, insecure: &[String], creds: Credentials, scopes: Vec<String>) -> Result<Registry> {
        let host = endpoint_host(registry);
        let insecure = is_loopback(host) || insecure.iter().any(|i| i == registry || i == host || in_cidr(host, i));
        let base = Url { scheme: "https".into(), authority: host.to_string(), path: "/".into() };
        Ok(Registry {
            name: registry.to_string(),
            base,
            creds,
            scopes,
            authorization: tokio::sync::Mutex::new(None),
            insecure,
            plain: AtomicBool::new(false),
            certs_dir: Some(PathBuf::from(crate::tls::DEFAULT_CERTS_DIR)),
            tls: OnceLock::new(),
        })
    }

    /// Trusts `<dir>/<host[:port]>/*.crt` instead of Docker's `/etc/docker/certs.d` (`None`: only the system's CAs).
    pub fn with_certs_dir(mut self, dir: Option<PathBuf>) -> Registry {
        self.certs_dir = dir;
        self
    }

    /// The TLS configuration for `authority`.
    fn tls_config(&self, authority: &str) -> Result<Arc<rustls::ClientConfig>> {
        if authority != self.base.authority {
            return crate::tls::verifying(None, authority);
        }
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let c = if self.insecure {
            crate::tls::unverified()?
        } else {
            crate::tls::verifying(self.certs_dir.as_deref(), authority)?
        };
        Ok(self.tls.get_or_init(|| c).clone())
    }

    /// `http://host/v2/<rest>`.
    pub fn url(&self, rest: &str) -> Url {
        Url { path: format!("/v2/{rest}"), ..self.base.clone() }
    }

    /// Sends one request on a new connection, with a timeout on connecting and on the response's head.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(&str, String)],
        body: Body,
        auth: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let own = url.authority == self.base.authority;
        let mut url = url.clone();
        if own && self.plain.load(Ordering::Relaxed) {
            url.scheme = "http".into();
        }
        let what = |url: &Url| format!("{method} \"{url}\"");
        let stream = dial(&url, &what(&url)).await?;
        let sender = if url.scheme == "http" {
            handshake(stream).await
        } else {
            match tls_connect(self.tls_config(&url.authority)?, &url, stream, &what(&url)).await {
                Ok(Ok(tls)) => handshake(tls).await,
                // An insecure registry that does not speak TLS: HTTP from now on.
                Ok(Err(_)) if own && self.insecure => {
                    self.plain.store(true, Ordering::Relaxed);
                    url.scheme = "http".into();
                    handshake(dial(&url, &what(&url)).await?).await
                }
                Ok(Err(e)) => return Err(Error::Unavailable(format!("{}: tls: {e}", what(&url)))),
                Err(e) => return Err(e),
            }
        }
        .map_err(|e| Error::Unavailable(format!("{}: {e}", what(&url))))?;
        send_on(sender, method, &url, headers, body, auth).await
    }

    /// Sends a request, answering an authentication challenge once and following redirects.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>> {
        let mut url = url;
        let mut challenged = false;
        for _ in 0..8 {
            let auth =
                if url.authority == self.base.authority { self.authorization.lock().await.clone() } else { None };
            let resp = self.send_once(&method, &url, headers, body.clone(), auth.as_deref()).await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !challenged && url.authority == self.base.authority {
                challenged = true;
                let ch = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string);
                let body_text = read_all(resp).await.unwrap_or_default();
                let Some(ch) = ch.and_then(|c| parse_challenge(&c)) else {
                    return Err(Error::Unauthorized(unauthorized_text(&body_text)));
                };
                let header = self.answer(&ch).await?;
                *self.authorization.lock().await = Some(header);
                continue;
            }
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else { return Ok(resp) };
                url = url.join(loc);
                continue;
            }
            return Ok(resp);
        }
        Err(Error::Unavailable(format!("{method} {url}: too many redirects")))
    }

    /// The `Authorization` header that answers a challenge.
    async fn answer(&self, ch: &crate::auth::Challenge) -> Result<String> {
        match ch.scheme.as_str() {
            "basic" => {
                self.creds.basic().ok_or_else(|| Error::Unauthorized("unauthorized: authentication required".into()))
            }
            "bearer" => {
                if !self.creds.registry_token.is_empty() {
                    return Ok(format!("Bearer {}", self.creds.registry_token));
                }
                let realm = ch
                    .params
                    .get("realm")
                    .ok_or_else(|| Error::Unavailable("the registry's bearer challenge names no realm".into()))?;
                let realm = Url::parse(realm)
                    .ok_or_else(|| Error::Unavailable(format!("the registry's token realm {realm:?} is not a URL")))?;
                let mut q = Vec::new();
                if let Some(s) = ch.params.get("service") {
                    q.push(format!("service={}", encode_query(s)));
                }
                for s in &self.scopes {
                    q.push(format!("scope={}", encode_query(s)));
                }
                if !self.creds.username.is_empty() {
                    q.push("account=".to_string() + &encode_query(&self.creds.username));
                }
                let sep = if realm.path.contains('?') { '&' } else { '?' };
                let token_url = Url { path: format!("{}{sep}{}", realm.path, q.join("&")), ..realm };
                let auth = self.creds.basic();
                let resp = self.send_once(&Method::GET, &token_url, &[], Body::Empty, auth.as_deref()).await?;
                let status = resp.status();
                let body = read_all(resp).await?;
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(Error::Unauthorized(format!(
                        "Get \"{token_url}\": unauthorized: {}",
                        error_text(&body).unwrap_or_else(|| "incorrect username or password".into())
                    )));
                }
                if !status.is_success() {
                    return Err(Error::Unavailable(format!("getting a token from {token_url}: status {status}")));
                }
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| Error::Unavailable(format!("the token server's answer is not JSON: {e}")))?;
                let token = v["token"]
                    .as_str()
                    .or(v["access_token"].as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Error::Unavailable("the token server's answer has no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
            other => Err(Error::Unavailable(format!("unsupported authentication scheme {other:?}"))),
        }
    }

    /// `GET /v2/`: checks that the registry is there and the credentials work (`login`).
    pub async fn ping(&self) -> Result<()> {
        let resp = self.send(Method::GET, self.url(""), &[], Body::Empty).await?;
        let status = resp.status();
        let body = read_all(resp).await.unwrap_or_default();
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(Error::Unauthorized(unauthorized_text(&body))),
            s => Err(Error::Unavailable(format!("GET {}: unexpected status {s}", self.url("")))),
        }
    }
}

fn unauthorized_text(body: &[u8]) -> String {
    match error_text(body) {
        Some(t) => t,
        None => "unauthorized: authentication required".into(),
    }
}

/// Reads a whole (small) response body, with the idle timeout.
pub async fn read_all(resp: Response<Incoming>) -> Result<Vec<u8>> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| Error::Unavailable("the registry stopped sending (timeout)".into()))?;
        match frame {
            None => return Ok(out),
            Some(Err(e)) => return Err(Error::Unavailable(format!("reading the registry's answer: {e}"))),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if out.len() + d.len() > 16 << 20 {
                        return Err(Error::Invalid("the registry's answer is larger than 16 MiB".into()));
                    }
                    out.extend_from_slice(&d);
                }
            }
        }
    }
}

/// The next chunk of a streamed body, with the idle timeout.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| Error::Unavailable("the registry stopped sending (timeout)".into()))?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(Error::Unavailable(format!("reading from the registry: {e}"))),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// Drains a body so a stream of many chunks is not left half-read.
pub async fn discard(resp: Response<Incoming>) {
    let mut body = resp.into_body();
    while let Ok(Some(_)) = next_chunk(&mut body).await {}
}

#[cfg(test)]
mod tests {

    #[test]
    fn insecure_registries_may_be_networks() {
        assert!(in_cidr("10.9.1.2:5000", "10.9.0.0/16"));
        assert!(in_cidr("10.9.1.2", "10.9.0.0/16"));
        assert!(!in_cidr("10.8.1.2:5000", "10.9.0.0/16"));
        assert!(in_cidr("192.0.2.7", "0.0.0.0/0"));
        assert!(!in_cidr("reg.example:5000", "10.9.0.0/16"), "names are not resolved");
        assert!(!in_cidr("10.9.1.2", "10.9.0.0/33"));
        assert!(!in_cidr("10.9.1.2", "reg.example"));
    }
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://localhost:5000/v2/a/blobs/uploads/?x=1").expect("url");
        assert_eq!(u.authority, "localhost:5000");
        assert_eq!(u.path, "/v2/a/blobs/uploads/?x=1");
        assert_eq!(u.join("/v2/a/blobs/uploads/uuid?_state=s").path, "/v2/a/blobs/uploads/uuid?_state=s");
        assert_eq!(u.join("http://other/x").authority, "other");
        assert_eq!(Url::parse("https://auth.docker.io/token").map(|u| u.addr()), Some("auth.docker.io:443".into()));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert_eq!(endpoint_host("docker.io"), "registry-1.docker.io");
    }

    /// A one-shot HTTP server on loopback: answers each of `answers` (raw responses) on one connection each.
    async fn serve(answers: Vec<Vec<u8>>) -> String {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            for a in answers {
                let Ok((mut c, _)) = l.accept().await else { return };
                let mut buf = vec![0u8; 4096];
                let _ = c.read(&mut buf).await;
                let _ = c.write_all(&a).await;
                let _ = c.shutdown().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn downloads_stream_to_a_file_and_follow_redirects() {
        let body = vec![b'x'; 300_000];
        let mut ok = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\nConnection: close\r\n\r\n".to_vec();
        ok.extend_from_slice(&body);
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /files/data.bin?x=1\r\nContent-Length: 0\r\n\r\n".to_vec();
        let addr = serve(vec![redirect, ok]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let got = download(&format!("http://{addr}/start"), None, dir.path()).await.expect("download");
        assert_eq!(got.name, "data.bin");
        assert_eq!(got.size, 300_000);
        assert_eq!(std::fs::read(&got.path).expect("file"), body);
        use sha2::Digest as _;
        assert_eq!(got.sha256, hex::encode(sha2::Sha256::digest(&body)));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&got.path).expect("meta").permissions().mode() & 0o777, 0o600);

        let addr = serve(vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()]).await;
        let e = download(&format!("http://{addr}/nope"), None, dir.path()).await.expect_err("404");
        assert!(e.to_string().contains("404"), "{e}");
        let e = download("ftp://example/x", None, dir.path()).await.expect_err("scheme");
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn distribution_errors() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_text(b).as_deref(), Some("manifest unknown: manifest unknown"));
    }
}
