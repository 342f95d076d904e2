//! The HTTP side: the Unix sockets and TCP (TLS) endpoints, API version handling, Docker's headers and error bodies.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::http::{HeaderValue, Request, Uri};
use axum::response::{IntoResponse, Response};
use berth_api::{API_VERSION, ApiVersion};
use hyper_util::rt::TokioIo;
use tower::Service;

use crate::daemon::Daemon;
use crate::routes::ApiError;

/// Strips a `/vX.Y` prefix and checks the version; the negotiated version goes into the request's extensions, where
/// routes find it (`routes::Version`) to render the response as that version of the API does.
fn route_version(req: &mut Request<hyper::body::Incoming>) -> std::result::Result<(), berth_api::Error> {
    let path = req.uri().path();
    let mut requested = None;
    if let Some(rest) = path.strip_prefix("/v")
        && let Some((ver, tail)) = rest.split_once('/')
        && let Some(v) = ApiVersion::parse(ver)
    {
        requested = Some(v);
        let new_path = format!("/{tail}");
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    let mut version = berth_api::negotiate(requested)?;
    let user_agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(cap) = legacy_client_cap(user_agent)
        && version > cap
    {
        version = cap;
    }
    req.extensions_mut().insert(version);
    Ok(())
}

/// The API version responses are rendered as for a client that asks for the daemon's newest version but was made for
/// an older engine and breaks on what newer versions dropped: docker-compose 1.x (its docker-py asks for the
/// server's version, then reads the image's `ContainerConfig` on every recreation and the events' `id`, both gone
/// from newer versions) is answered as Docker 20.10 (API 1.41), the engine it was made for, would answer it.
fn legacy_client_cap(user_agent: &str) -> Option<ApiVersion> {
    user_agent.starts_with("docker-compose/1.").then_some(ApiVersion { major: 1, minor: 41 })
}

/// Errors that axum's extractors answer in plain text (a body over the size limit: 413, a malformed query: 400)
/// get Docker's `{"message": ...}` body, as every other error.
async fn json_errors(resp: Response) -> Response {
    let plain =
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let json = serde_json::json!({ "message": message }).to_string();
    parts.headers.insert("content-type", HeaderValue::from_static("application/json"));
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from(json))
}

fn add_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(api_version_str()));
    h.insert("ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("Berth/{} (linux)", berth_api::BERTH_VERSION)) {
        h.insert("server", v);
    }
    h.insert("docker-experimental", HeaderValue::from_static("false"));
}

fn api_version_str() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| API_VERSION.to_string())
}

/// Where the Engine API is served: a Unix socket, or a TCP address (with TLS, mutual where the configuration asks
/// for client certificates; plain only with `--insecure-tcp-for-tests`).
pub enum Endpoint {
    Unix(PathBuf),
    /// `client_auth`: the TLS configuration requires and verifies client certificates.
    Tcp {
        addr: std::net::SocketAddr,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        client_auth: bool,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { addr, tls: Some(_), client_auth: true } => {
                write!(f, "tcp://{addr} (TLS, client certificates verified)")
            }
            Endpoint::Tcp { addr, tls: Some(_), .. } => write!(f, "tcp://{addr} (TLS, NO client authentication)"),
            Endpoint::Tcp { addr, tls: None, .. } => write!(f, "tcp://{addr} (plain HTTP, NO authentication)"),
        }
    }
}

/// A bound endpoint.
enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// How long a TCP client has to finish its TLS handshake (a silent peer must not hold a task forever).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn bind(endpoint: &Endpoint, group: Option<nix::unistd::Gid>) -> Result<Listener> {
    match endpoint {
        Endpoint::Unix(socket) => {
            if let Some(dir) = socket.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            }
            let _ = std::fs::remove_file(socket);
            let listener =
                tokio::net::UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
            std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o660))
                .with_context(|| format!("chmod {}", socket.display()))?;
            if let Some(gid) = group {
                nix::unistd::chown(socket, None, Some(gid)).with_context(|| format!("chown {}", socket.display()))?;
            }
            Ok(Listener::Unix(listener))
        }
        Endpoint::Tcp { addr, tls, .. } => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listen on tcp://{addr}"))?;
            Ok(Listener::Tcp(listener, tls.clone().map(tokio_rustls::TlsAcceptor::from)))
        }
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    /// The Engine API; `unix`: on a Unix socket (where the dashboard's login tokens are given).
    Api { unix: bool },
    /// The dashboard (`ui/`): its own routes, none of the API's versioning and headers.
    Ui,
}

/// Serves the Engine API on every endpoint (Unix sockets mode 0660, owned by root and `group`), and the dashboard
/// where `ui` says, until SIGINT or SIGTERM. Containers keep running when the daemon stops.
pub async fn serve(
    daemon: Arc<Daemon>,
    endpoints: &[Endpoint],
    group: Option<nix::unistd::Gid>,
    ui: Option<crate::ui::Config>,
) -> Result<()> {
    let mut listeners = Vec::new();
    for e in endpoints {
        listeners.push(bind(e, group).await?);
    }
    // The dashboard: nothing of it exists unless asked for.
    let ui = match ui {
        Some(config) => {
            let endpoint =
                Endpoint::Tcp { addr: config.addr, tls: config.tls.clone(), client_auth: config.tls.is_some() };
            let listener = bind(&endpoint, None).await.context("the dashboard (--ui)")?;
            let state = crate::ui::Ui::new(daemon.clone(), config);
            tracing::info!("serving the dashboard on {} (`berth ui` prints a login link)", state.url());
            Some((listener, state))
        }
        None => None,
    };
    for e in endpoints {
        tracing::info!("berthd {} serving the Engine API {} on {e}", berth_api::BERTH_VERSION, API_VERSION);
        if matches!(e, Endpoint::Tcp { client_auth: false, .. }) {
            tracing::warn!(
                "{e}: anyone who can reach this port controls the host as root (--insecure-tcp-for-tests: for tests only)"
            );
        }
    }
    let mut router = crate::routes::router(daemon.clone());
    let mut tasks = tokio::task::JoinSet::new();
    if let Some((listener, state)) = ui {
        router = crate::ui::token_route(state.clone()).merge(router);
        tasks.spawn(accept_loop(listener, crate::ui::router(state), Surface::Ui));
    }
    for l in listeners {
        let surface = Surface::Api { unix: matches!(l, Listener::Unix(_)) };
        tasks.spawn(accept_loop(l, router.clone(), surface));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("signal")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tasks.abort_all();
    tracing::info!("shutting down; containers keep running");
    let d = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || d.events.flush(std::time::Duration::from_secs(2))).await;
    for e in endpoints {
        if let Endpoint::Unix(socket) = e {
            let _ = std::fs::remove_file(socket);
        }
    }
    Ok(())
}

/// Accepts connections on one endpoint for as long as the daemon runs.
async fn accept_loop(listener: Listener, router: axum::Router, surface: Surface) {
    loop {
        match &listener {
            Listener::Unix(l) => match l.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone(), surface));
                }
                Err(e) => tracing::warn!("accept: {e}"),
            },
            Listener::Tcp(l, tls) => match l.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let router = router.clone();
                    match tls.clone() {
                        None => {
                            tokio::spawn(serve_connection(stream, router, surface));
                        }
                        Some(acceptor) => {
                            tokio::spawn(async move {
                                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(tls)) => serve_connection(tls, router, surface).await,
                                    Ok(Err(e)) => tracing::info!("TLS handshake with {peer} refused: {e}"),
                                    Err(_) => tracing::info!("TLS handshake with {peer}: timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!("accept: {e}"),
            },
        }
    }
}

/// Serves HTTP/1.1 (with upgrades, for attach and exec) on one connection, whatever carries it.
async fn serve_connection<S>(stream: S, router: axum::Router, surface: Surface)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let mut router = router.clone();
        async move {
            if surface == Surface::Ui {
                return router.call(req.map(axum::body::Body::new)).await;
            }
            if surface == (Surface::Api { unix: true }) {
                req.extensions_mut().insert(crate::ui::UnixSocket);
            }
            let mut resp = match route_version(&mut req) {
                Ok(()) => match router.call(req.map(axum::body::Body::new)).await {
                    Ok(r) => json_errors(r).await,
                    Err(never) => match never {},
                },
                Err(e) => ApiError(e).into_response(),
            };
            add_headers(&mut resp);
            Ok::<_, Infallible>(resp)
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("connection: {e}");
    }
    crate::memory::work_done();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_compose_v1_is_answered_as_api_1_41() {
        let v141 = ApiVersion { major: 1, minor: 41 };
        assert_eq!(legacy_client_cap("docker-compose/1.29.2 docker-py/5.0.3 Linux/6.1.0"), Some(v141));
        assert_eq!(legacy_client_cap("docker-compose/2.29.0"), None, "Compose v2 reads today's fields");
        assert_eq!(legacy_client_cap("Docker-Client/28.0.0 (linux)"), None);
        assert_eq!(legacy_client_cap(""), None);
    }
}
