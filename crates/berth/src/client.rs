//! The Engine API client: HTTP/1.1 with hyper, one connection per request, version negotiation through `/_ping`,
//! Docker's error bodies turned into [`ApiError`]s, and the connection hijack (`Upgrade: tcp`) that attach and exec
//! use. The connection is the daemon's Unix socket (`unix://`), TCP (`tcp://`, with TLS as the docker CLI's
//! `--tls*` flags and `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` say) or the pipes of `ssh HOST -- berth system
//! dial-stdio` (`ssh://`, as docker does).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
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
    transport: Transport,
    /// `v1.53` etc. once negotiated.
    version: String,
}

/// How the daemon is reached.
#[derive(Debug, Clone)]
enum Transport {
    Unix(PathBuf),
    /// `host:port`, with TLS (the configuration and the name the server's certificate must carry) or plain.
    Tcp {
        addr: String,
        tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
    },
    /// The arguments of `ssh` (the remote command included).
    Ssh(Vec<String>),
}

/// The docker CLI's TLS options (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`), before the
/// environment (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`) and the defaults are applied.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub tls: bool,
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// The TLS configuration for a `tcp://` host, or `None` for plain HTTP: as the docker CLI, TLS when `--tls`,
    /// `--tlsverify` or `DOCKER_TLS_VERIFY` (any non-empty value) asks for it; the server verified against the CA
    /// unless only `--tls` was given; files not given default to `ca.pem`, `cert.pem` and `key.pem` of
    /// `DOCKER_CERT_PATH` (else `~/.docker`) and are used where they exist.
    fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        let verify = self.verify || std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        if !(self.tls || verify) {
            return Ok(None);
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker"));
        let pick = |given: &Option<PathBuf>, name: &str| -> Option<PathBuf> {
            match given {
                Some(p) => Some(p.clone()),
                None => Some(dir.join(name)).filter(|p| p.exists()),
            }
        };
        let ca = pick(&self.ca, "ca.pem");
        let identity = match (pick(&self.cert, "cert.pem"), pick(&self.key, "key.pem")) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("--tlscert and --tlskey go together: give both (or neither) files"),
        };
        let config = berth_registry::tls::api_client(
            ca.as_deref(),
            identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            verify,
        )
        .context("TLS configuration")?;
        Ok(Some(config))
    }
}

/// A connection to the daemon, whatever carries it.
pub trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Conn for T {}

/// The `ssh` arguments for `ssh://[user@]host[:port]` (docker's: no path; the remote side runs
/// `berth system dial-stdio`).
fn ssh_args(host: &str) -> Result<Vec<String>> {
    let rest = host.strip_prefix("ssh://").unwrap_or(host);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    anyhow::ensure!(!rest.contains('/'), "invalid ssh host {host:?}: extra path after the host");
    anyhow::ensure!(!rest.contains('?'), "invalid ssh host {host:?}: extra query after the host");
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (hostname, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            let port: u16 = p.parse().map_err(|_| anyhow!("invalid ssh host {host:?}: bad port {p:?}"))?;
            (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
        }
        _ => (hostport, None),
    };
    anyhow::ensure!(!hostname.is_empty() && !hostname.starts_with('-'), "invalid ssh host {host:?}: no host name");
    let mut args: Vec<String> = vec!["-o".into(), "ConnectTimeout=30".into(), "-T".into()];
    if let Some(u) = user {
        anyhow::ensure!(!u.is_empty() && !u.starts_with('-'), "invalid ssh host {host:?}: bad user name");
        args.extend(["-l".into(), u.to_string()]);
    }
    if let Some(p) = port {
        args.extend(["-p".into(), p.to_string()]);
    }
    args.extend(["--".into(), hostname.to_string()]);
    args.extend(["berth", "system", "dial-stdio"].map(String::from));
    Ok(args)
}

/// The pipes of a command (`ssh ... berth system dial-stdio`) as one connection; the command is killed with it.
struct CommandConn {
    _child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: tokio::process::ChildStdout,
}

impl tokio::io::AsyncRead for CommandConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CommandConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stdin.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Half-closes: the command sees the end of its input, its output is still read.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(w) = self.stdin.as_mut() {
            std::task::ready!(Pin::new(w).poll_flush(cx))?;
        }
        self.stdin = None;
        Poll::Ready(Ok(()))
    }
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
    /// A client for `-H`, else `DOCKER_HOST`, else `BERTH_HOST`, else [`DEFAULT_HOST`]; `tls` applies to `tcp://`.
    pub fn new(host: Option<String>, tls: &TlsOptions) -> Result<Client> {
        let host = host
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let transport = if let Some(p) = host.strip_prefix("unix://") {
            Transport::Unix(PathBuf::from(p))
        } else if host.starts_with('/') {
            Transport::Unix(PathBuf::from(&host))
        } else if let Some(rest) = host.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            anyhow::ensure!(!rest.is_empty() && !rest.contains('/'), "unable to parse docker host `{host}`");
            let config = tls.client_config()?;
            // docker's default ports: 2376 with TLS, 2375 without.
            let has_port = rest.rsplit_once(':').is_some_and(|(h, p)| p.parse::<u16>().is_ok() && !h.ends_with(':'));
            let addr = match (has_port, config.is_some()) {
                (true, _) => rest.to_string(),
                (false, true) => format!("{rest}:2376"),
                (false, false) => format!("{rest}:2375"),
            };
            let tls = match config {
                Some(c) => Some((c, berth_registry::tls::server_name(&addr)?)),
                None => None,
            };
            Transport::Tcp { addr, tls }
        } else if host.starts_with("ssh://") {
            Transport::Ssh(ssh_args(&host)?)
        } else if host.starts_with("npipe://") || host.starts_with("fd://") {
            bail!("unsupported host {host:?}: berth speaks to a daemon over unix://, tcp:// or ssh://");
        } else {
            bail!("unable to parse docker host `{host}`");
        };
        let host = if host.starts_with('/') { format!("unix://{host}") } else { host };
        Ok(Client { host, transport, version: String::new() })
    }

    /// A raw connection to the daemon (what HTTP runs over; `system dial-stdio` copies it to its stdin/stdout).
    pub async fn dial(&self) -> Result<Box<dyn Conn>> {
        let unreachable = || ConnectError { host: self.host.clone(), permission: None };
        match &self.transport {
            Transport::Unix(socket) => match tokio::net::UnixStream::connect(socket).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    Err(ConnectError { host: self.host.clone(), permission: Some(format!("connect: {e}")) }.into())
                }
                Err(_) => Err(unreachable().into()),
            },
            Transport::Tcp { addr, tls } => {
                let tcp = tokio::net::TcpStream::connect(addr.as_str()).await.map_err(|_| unreachable())?;
                let _ = tcp.set_nodelay(true);
                match tls {
                    None => Ok(Box::new(tcp)),
                    Some((config, name)) => {
                        let s = tokio_rustls::TlsConnector::from(config.clone())
                            .connect(name.clone(), tcp)
                            .await
                            .with_context(|| format!("TLS handshake with {}", self.host))?;
                        Ok(Box::new(s))
                    }
                }
            }
            Transport::Ssh(args) => {
                let mut child = tokio::process::Command::new("ssh")
                    .args(args)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("run ssh for {}", self.host))?;
                let stdin = child.stdin.take().context("ssh's stdin")?;
                let stdout = child.stdout.take().context("ssh's stdout")?;
                Ok(Box::new(CommandConn { _child: child, stdin: Some(stdin), stdout }))
            }
        }
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

    /// An HTTP connection, and where the connection's first I/O error is kept: a TLS alert of the server refusing
    /// our certificate arrives on the first read after a TLS 1.3 handshake that looked complete, and hyper may then
    /// report only that the request was canceled.
    async fn connect(
        &self,
    ) -> Result<(hyper::client::conn::http1::SendRequest<ReqBody>, Arc<std::sync::Mutex<Option<String>>>)> {
        let stream = self.dial().await?;
        let first_error = Arc::new(std::sync::Mutex::new(None));
        let stream = Recorded { inner: stream, error: first_error.clone() };
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok((sender, first_error))
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
        let (mut sender, io_error) = self.connect().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("host", "api.moby.localhost")
            .header("user-agent", concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).context("build request")?;
        match sender.send_request(req).await {
            Ok(resp) => Ok(resp),
            // The request's error says little ("operation was canceled") when the connection failed under it.
            Err(e) => match io_error.lock().ok().and_then(|mut g| g.take()) {
                Some(cause) => Err(anyhow!("error during connect: {cause}")),
                None => Err(anyhow!("error during connect: {e}")),
            },
        }
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

/// A connection that keeps its first I/O error (see [`Client::connect`]).
struct Recorded {
    inner: Box<dyn Conn>,
    error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Recorded {
    fn note<T>(&self, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &r
            && let Ok(mut g) = self.error.lock()
            && g.is_none()
        {
            *g = Some(e.to_string());
        }
        r
    }
}

impl tokio::io::AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.note(r)
    }
}

impl tokio::io::AsyncWrite for Recorded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(r)
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
        let none = TlsOptions::default();
        let c = Client::new(Some("/tmp/x.sock".into()), &none).expect("client");
        assert_eq!(c.host, "unix:///tmp/x.sock");
        let c = Client::new(Some("tcp://1.2.3.4".into()), &none).expect("client");
        assert!(matches!(c.transport, Transport::Tcp { ref addr, tls: None } if addr == "1.2.3.4:2375"));
        assert!(Client::new(Some("tcp://1.2.3.4:2375/x".into()), &none).is_err());
        assert!(Client::new(Some("npipe:////./pipe/x".into()), &none).is_err());
        let ssh = |h: &str| ssh_args(h).map(|a| a.join(" "));
        assert_eq!(
            ssh("ssh://alice@box:2222").expect("ssh"),
            "-o ConnectTimeout=30 -T -l alice -p 2222 -- box berth system dial-stdio"
        );
        assert_eq!(ssh("ssh://box").expect("ssh"), "-o ConnectTimeout=30 -T -- box berth system dial-stdio");
        assert!(ssh("ssh://box/path").is_err());
        assert!(ssh("ssh://-oProxyCommand=x").is_err());
        let e = ConnectError { host: DEFAULT_HOST.into(), permission: None };
        assert_eq!(
            e.to_string(),
            "Cannot connect to the Berth daemon at unix:///run/berth/berth.sock. Is the berth daemon running?"
        );
        let a = ApiError { status: 404, message: "No such container: x".into() };
        assert_eq!(a.to_string(), "Error response from daemon: No such container: x");
    }
}
