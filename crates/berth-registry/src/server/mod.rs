//! Berth's registry server (`berth registry serve`): the OCI distribution spec's HTTP API over plain files.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                          content (layers, configs, manifests), immutable
//! <root>/repositories/<name>/_layers/<hex>           the blob is part of the repository (empty marker)
//! <root>/repositories/<name>/_manifests/<hex>        a manifest of the repository (holds its media type)
//! <root>/repositories/<name>/_tags/<tag>             the digest a tag points at
//! <root>/uploads/<uuid>, <uuid>.repo                 blob uploads in progress and the repository they are for
//! <root>/tmp/                                        files being written, renamed into place when whole
//! ```
//!
//! Every file is written aside and renamed into place, a blob only after its content matched the digest the client
//! named, so concurrent pushes of the same blob (each with its own upload) are safe and a crash leaves whole files
//! or uploads that a later upload never reuses. Repository names and tags are validated before they become paths.
//!
//! Modules: `storage` (the files, typed calls and errors), `api` (the endpoints: HTTP in, storage calls, the spec's
//! error JSON out), `auth` (htpasswd basic auth), `tls` (rustls), `gc` (garbage collection).

mod api;
mod auth;
mod gc;
mod storage;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt as _;

pub use auth::{Htpasswd, HtpasswdError};
pub use gc::{GcReport, garbage_collect};
pub use storage::{Storage, StorageError, valid_name, valid_tag};

/// What `berth registry serve` was asked for.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST:PORT` to listen on.
    pub addr: String,
    /// The storage directory.
    pub root: PathBuf,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// An htpasswd file (bcrypt entries, as `htpasswd -B` writes): every request needs basic auth.
    pub htpasswd: Option<PathBuf>,
    /// The realm of the basic-auth challenge.
    pub realm: String,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Opening the storage or binding the address failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The certificate or key is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The htpasswd file could not be read.
    #[error("htpasswd {}: {source}", .path.display())]
    HtpasswdRead {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The htpasswd file's entries are unusable.
    #[error("htpasswd {}: {source}", .path.display())]
    HtpasswdEntries {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with them.
        #[source]
        source: HtpasswdError,
    },
    /// The realm cannot be sent in a `WWW-Authenticate` header.
    #[error("htpasswd realm {0:?} is not a valid header value")]
    Realm(String),
}

/// How long a TLS handshake and a request's head may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The router of the registry API, with the authentication layer when `auth` is given.
pub fn router(reg: Arc<Storage>, auth: Option<Arc<Htpasswd>>) -> Router {
    let mut r = api::routes(reg);
    if let Some(a) = auth {
        r = r.layer(axum::middleware::from_fn_with_state(a, auth::require));
    }
    r.layer(axum::middleware::map_response(|mut r: Response| async move {
        r.headers_mut().insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
        r
    }))
    .layer(axum::middleware::from_fn(access_log))
}

/// One `info` line per request: method, path, status, milliseconds (the body may still be streaming).
async fn access_log(req: Request<Body>, next: axum::middleware::Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::info!(target: "berth_registry::access", "{method} {path} {} {}ms", resp.status().as_u16(), start.elapsed().as_millis());
    resp
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("listener", &self.listener).field("tls", &self.tls.is_some()).finish()
    }
}

impl Server {
    /// Opens the storage, reads the certificate and htpasswd files and binds the address.
    pub async fn bind(c: &Config) -> Result<Server, ServerError> {
        let reg = Arc::new(Storage::open(&c.root).map_err(|e| ServerError::Io(c.root.display().to_string(), e))?);
        let auth = match &c.htpasswd {
            Some(p) => Some(Arc::new(Htpasswd::load(p, &c.realm)?)),
            None => None,
        };
        let tls = match &c.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&c.addr)
            .await
            .map_err(|e| ServerError::Io(format!("listen {}", c.addr), e))?;
        Ok(Server { listener, app: router(reg, auth), tls })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether it speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves connections until the process ends. Each connection is HTTP/1.1 (keep-alive) in a task of its own.
    pub async fn run(self) -> std::io::Result<()> {
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let app = self.app.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(tcp, app).await,
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, app).await,
                        Ok(Err(e)) => tracing::debug!("tls handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("tls handshake with {peer}: timed out"),
                    },
                }
            });
        }
    }
}

async fn serve_connection<I>(io: I, app: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc =
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| app.clone().oneshot(req.map(Body::new)));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!("connection: {e}");
    }
}

/// Binds and serves `c` until the process ends.
pub async fn serve(c: &Config) -> Result<(), ServerError> {
    let s = Server::bind(c).await?;
    s.run().await.map_err(|e| ServerError::Io(format!("serve {}", c.addr), e))
}

/// The storage directory's layout, shared by the API and garbage collection.
fn blob_path(root: &Path, hex: &str) -> PathBuf {
    root.join("blobs/sha256").join(hex)
}
