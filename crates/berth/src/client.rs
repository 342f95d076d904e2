//! The Engine API client: HTTP/1.1 with hyper over the daemon's Unix socket, one connection per request, version
//! negotiation through `/_ping`, Docker's error bodies turned into [`ApiError`]s, and the connection hijack
//! (`Upgrade: tcp`) that attach and exec use.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The daemon's address when neither `-H`, `DOCKER_HOST` nor `BERTH_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A request body: empty, in memory, or streamed.
pub type ReqBody = BoxBody<Bytes, std::io::Error>;

/// A hijacked connection: the container's streams in both directions.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// An error answer of the daemon (`{"message": ...}` with its HTTP status).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The daemon's message.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Whether `e` is a daemon error with this status.
    pub fn is(e: &anyhow::Error, status: u16) -> bool {
        e.downcast_ref::<ApiError>().is_some_and(|a| a.status == status)
    }
}

/// The daemon could not be reached.
#[derive(Debug, Clone)]
pub struct ConnectError {
    host: String,
    permission: Option<String>,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.permission {
            Some(e) => {
                write!(f, "permission denied while trying to connect to the Berth daemon socket at {}: {e}", self.host)
            }
            None => write!(f, "Cannot connect to the Berth daemon at {}. Is the berth daemon running?", self.host),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
    /// `v1.53` etc. once negotiated.
    version: String,
}

/// Percent-encodes a query value or path segment (everything but RFC 3986's unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a name for a path (`/containers/{name}/...`): like [`encode_component`] but keeping `/` and `:`
/// (image references).
pub fn encode_path(s: &str) -> String {
    s.split('/').map(|seg| encode_component(seg).replace("%3A", ":")).collect::<Vec<_>>().join("/")
}

/// Builds `?k=v&...` from pairs (empty when there are none).
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
    format!("?{}", parts.join("&"))
}

/// An empty request body.
pub fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A JSON request body.
pub fn json_body(v: &impl serde::Serialize) -> Result<ReqBody> {
    let data = serde_json::to_vec(v).context("encode request")?;
    Ok(Full::new(Bytes::from(data)).map_err(|never| match never {}).boxed())
}

/// A request body fed through a channel (streams a file or stdin without holding it in memory).
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
}

impl ChannelBody {
    /// A body and the sender that feeds it; the body ends when the sender is dropped.
    pub fn channel() -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, ReqBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        (tx, ChannelBody { rx }.boxed())
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Client {
    /// A client for `-H`, else `DOCKER_HOST`, else `BERTH_HOST`, else [`DEFAULT_HOST`].
    pub fn new(host: Option<String>) -> Result<Client> {
        let host = host
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let socket = if let Some(p) = host.strip_prefix("unix://") {
            PathBuf::from(p)
        } else if host.starts_with('/') {
            PathBuf::from(&host)
        } else if host.starts_with("tcp://")
            || host.starts_with("ssh://")
            || host.starts_with("npipe://")
            || host.starts_with("fd://")
        {
            bail!("unsupported host {host:?}: berth only speaks to a daemon over a Unix socket (unix:///path)");
        } else {
            bail!("unable to parse docker host `{host}`");
        };
        let host = if host.starts_with('/') { format!("unix://{host}") } else { host };
        Ok(Client { host, socket, version: String::new() })
    }

    /// Asks `/_ping` for the daemon's API version and settles on min(its, ours).
    pub async fn negotiate(&mut self) -> Result<()> {
        let resp = self.send(Method::GET, "/_ping", empty(), &[]).await?;
        let server =
            resp.headers().get("api-version").and_then(|v| v.to_str().ok()).and_then(berth_api::ApiVersion::parse);
        let ours = berth_api::API_VERSION;
        let v = match server {
            Some(s) if s < ours => s,
            _ => ours,
        };
        self.version = format!("v{v}");
        Ok(())
    }

    /// The negotiated API version (`1.53`).
    pub fn api_version(&self) -> String {
        self.version.trim_start_matches('v').to_string()
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>> {
        let stream = match tokio::net::UnixStream::connect(&self.socket).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ConnectError { host: self.host.clone(), permission: Some(format!("connect: {e}")) }.into());
            }
            Err(_) => return Err(ConnectError { host: self.host.clone(), permission: None }.into()),
        };
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    fn url(&self, path: &str) -> String {
        if self.version.is_empty() || path == "/_ping" { path.to_string() } else { format!("/{}{path}", self.version) }
    }

    /// Sends one request; the response's status is not checked.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let mut sender = self.connect().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("host", "api.moby.localhost")
            .header("user-agent", concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).context("build request")?;
        sender.send_request(req).await.map_err(|e| anyhow!("error during connect: {e}"))
    }

    /// Sends a request and turns error statuses into [`ApiError`]s; returns the response with its body unread.
    pub async fn call(&self, method: Method, path: &str, body: ReqBody, json: bool) -> Result<Response<Incoming>> {
        let headers: &[(&str, &str)] = if json { &[("content-type", "application/json")] } else { &[] };
        let resp = self.send(method, path, body, headers).await?;
        check(resp).await
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let body = self.get_bytes(path).await?;
        serde_json::from_slice(&body).with_context(|| format!("decode the answer to GET {path}"))
    }

    /// GET, the whole body.
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes> {
        let resp = self.call(Method::GET, path, empty(), false).await?;
        read_body(resp).await
    }

    /// POST without a body; returns the answer's body.
    pub async fn post(&self, path: &str) -> Result<Bytes> {
        let resp = self.call(Method::POST, path, empty(), false).await?;
        read_body(resp).await
    }

    /// POST a JSON body; returns the answer's body.
    pub async fn post_json(&self, path: &str, body: &impl serde::Serialize) -> Result<Bytes> {
        let resp = self.call(Method::POST, path, json_body(body)?, true).await?;
        read_body(resp).await
    }

    /// DELETE; returns the answer's body.
    pub async fn delete(&self, path: &str) -> Result<Bytes> {
        let resp = self.call(Method::DELETE, path, empty(), false).await?;
        read_body(resp).await
    }

    /// POST with `Upgrade: tcp` and take over the connection (attach, exec start).
    pub async fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let (b, json) = match body {
            Some(v) => (json_body(v)?, true),
            None => (empty(), false),
        };
        let mut headers = vec![("connection", "Upgrade"), ("upgrade", "tcp")];
        if json {
            headers.push(("content-type", "application/json"));
        }
        let resp = self.send(Method::POST, path, b, &headers).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let resp = check(resp).await?;
            bail!("the daemon did not take over the connection for {path} (status {})", resp.status());
        }
        let upgraded = hyper::upgrade::on(resp).await.context("connection upgrade")?;
        Ok(TokioIo::new(upgraded))
    }
}

/// Turns an error status into an [`ApiError`] (with Docker's message), else passes the response on.
pub async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS || status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let body = read_body(resp).await.unwrap_or_default();
    let message = serde_json::from_slice::<berth_api::ErrorBody>(&body).map(|b| b.message).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text }
    });
    Err(ApiError { status: status.as_u16(), message }.into())
}

/// The whole body of a response.
pub async fn read_body(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp.into_body().collect().await.context("read the daemon's answer")?.to_bytes())
}

/// The next chunk of a streamed body (`None` at its end).
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(anyhow!("read the daemon's answer: {e}")),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Reads a JSON message stream (docker's progress: one object per line) to its end, giving each message to `f`.
pub async fn json_messages(resp: Response<Incoming>, mut f: impl FnMut(&serde_json::Value)) -> Result<()> {
    let mut body = resp.into_body();
    let mut pending = String::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("decode the daemon's progress {line:?}"))?;
            f(&v);
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(pending.trim()) {
        f(&v);
    }
    Ok(())
}

/// A response body as an [`tokio::io::AsyncRead`] (for streamed answers such as logs).
pub struct BodyReader {
    body: Incoming,
    buf: Bytes,
}

impl BodyReader {
    /// Reads `body`.
    pub fn new(body: Incoming) -> BodyReader {
        BodyReader { body, buf: Bytes::new() }
    }
}

impl tokio::io::AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.remaining());
                let chunk = self.buf.split_to(n);
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf = data;
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode_component("a b/c=d"), "a%20b%2Fc%3Dd");
        assert_eq!(encode_path("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(query(&[("name", "x y".into()), ("all", "1".into())]), "?name=x%20y&all=1");
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn hosts() {
        let c = Client::new(Some("/tmp/x.sock".into())).expect("client");
        assert_eq!(c.host, "unix:///tmp/x.sock");
        assert!(Client::new(Some("tcp://1.2.3.4:2375".into())).is_err());
        let e = ConnectError { host: DEFAULT_HOST.into(), permission: None };
        assert_eq!(
            e.to_string(),
            "Cannot connect to the Berth daemon at unix:///run/berth/berth.sock. Is the berth daemon running?"
        );
        let a = ApiError { status: 404, message: "No such container: x".into() };
        assert_eq!(a.to_string(), "Error response from daemon: No such container: x");
    }
}
