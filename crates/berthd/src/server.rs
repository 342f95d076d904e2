//! The HTTP side: the Unix socket, API version handling, Docker's headers and error bodies.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::http::{HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_api::{API_VERSION, ApiVersion};
use hyper_util::rt::TokioIo;
use tower::Service;

use crate::daemon::Daemon;

/// An API error: Docker's status and `{"message": ...}` body.
#[derive(Debug)]
pub struct ApiError(pub berth_api::Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("internal error: {}", self.0);
        }
        (status, [("content-type", "application/json")], self.0.body()).into_response()
    }
}

impl From<berth_api::Error> for ApiError {
    fn from(e: berth_api::Error) -> Self {
        ApiError(e)
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> Self {
        ApiError(crate::daemon::store_error(e))
    }
}

/// Result of a handler.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// Strips a `/vX.Y` prefix and checks the version.
fn route_version(req: &mut Request<hyper::body::Incoming>) -> std::result::Result<(), berth_api::Error> {
    let path = req.uri().path();
    let mut requested = None;
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some((ver, tail)) = rest.split_once('/') {
            if let Some(v) = ApiVersion::parse(ver) {
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
        }
    }
    berth_api::negotiate(requested).map(drop)
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

/// Serves the Engine API on `socket` (mode 0660, owned by root and `group`) until SIGINT or SIGTERM. Containers
/// keep running when the daemon stops.
pub async fn serve(daemon: Arc<Daemon>, socket: &Path, group: Option<nix::unistd::Gid>) -> Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o660))
        .with_context(|| format!("chmod {}", socket.display()))?;
    if let Some(gid) = group {
        nix::unistd::chown(socket, None, Some(gid)).with_context(|| format!("chown {}", socket.display()))?;
    }
    tracing::info!(
        "berthd {} serving the Engine API {} on {}",
        berth_api::BERTH_VERSION,
        API_VERSION,
        socket.display()
    );
    let router = crate::routes::router(daemon.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("signal")?;
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => { tracing::warn!("accept: {e}"); continue; }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                let mut router = router.clone();
                async move {
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
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    tracing::info!("shutting down; containers keep running");
    let _ = std::fs::remove_file(socket);
    Ok(())
}
