//! The web dashboard (`berthd --ui ADDR`, off by default): server-rendered HTML pages and a little plain JavaScript
//! (embedded in the binary: no CDN, works offline), live through Server-Sent Events fed by the event bus.
//!
//! The pages are a client of the Engine API's own routes, called in process (`Ui::api`): they render what the API
//! answers (the `views/` renderers' output), and their buttons make the API's calls, so each operation has one
//! implementation. The dashboard can do what the API can (root on this host), so:
//! - it listens on loopback only unless the daemon has `--tlsverify` (then behind the same mutual TLS as the API);
//! - every page needs a session: `berth ui` asks the API's Unix socket for a one-time login token
//!   (`POST /berth/ui/token`, a Berth extension: whoever may use the socket is root-equivalent already, so the token
//!   gives nothing new; it never touches the disk), `/login?token=` exchanges it once for a random session cookie
//!   (`HttpOnly; SameSite=Strict`, expiring server-side);
//! - every state-changing request must come from the dashboard's own origin (`Origin`) and carry the session's CSRF
//!   token; the `Host` header must be the dashboard's address (DNS rebinding);
//! - a strict Content-Security-Policy (scripts, styles and connections from the dashboard's origin only; no inline
//!   script or style).
//!
//! When `--ui` is off none of this exists: no listener, no task, no state.

mod auth;
mod more;
mod pages;
mod sse;
mod term;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceExt;

use crate::daemon::Daemon;

/// Where the dashboard is served.
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Mutual TLS (the API's `--tlsverify` configuration); `None` on loopback only.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

/// Marks requests that came in on one of the API's Unix sockets (set by `server.rs`): only those get login tokens.
#[derive(Debug, Clone, Copy)]
pub struct UnixSocket;

/// The dashboard's state.
pub struct Ui {
    daemon: Arc<Daemon>,
    /// The Engine API, called in process.
    api: Router,
    access: auth::Access,
    config: Config,
    /// The `Host` headers the dashboard answers (empty: any, behind mutual TLS).
    hosts: Vec<String>,
    /// The session cookie's name: per port, since browsers send a host's cookies to all its ports.
    cookie: String,
    /// The containers' terminals open in pages.
    terminals: term::Terminals,
}

/// The Content-Security-Policy of every answer: nothing from anywhere but the dashboard itself, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Ui {
    pub fn new(daemon: Arc<Daemon>, config: Config) -> Arc<Ui> {
        let addr = config.addr;
        let hosts = if config.tls.is_some() {
            Vec::new()
        } else {
            let port = addr.port();
            let mut h = vec![addr.to_string(), format!("localhost:{port}")];
            if addr.ip().is_unspecified() || addr.ip().is_loopback() {
                h.extend([format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
            }
            h
        };
        let api = crate::routes::router(daemon.clone());
        Arc::new(Ui {
            daemon,
            api,
            access: auth::Access::default(),
            cookie: format!("berth-ui-{}", addr.port()),
            terminals: term::Terminals::default(),
            hosts,
            config,
        })
    }

    /// The daemon this dashboard shows.
    fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// The dashboard's address as `berth ui` prints it.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.config.addr)
    }

    /// Calls the Engine API in process.
    async fn api(&self, method: Method, path: &str) -> Response {
        self.api_with(method, path, Vec::new()).await
    }

    /// Calls the Engine API in process with a JSON body.
    async fn api_with(&self, method: Method, path: &str, body: Vec<u8>) -> Response {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "berth")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body));
        match req {
            Ok(req) => match self.api.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            },
            Err(e) => UiError::new(StatusCode::BAD_REQUEST, format!("bad path {path:?}: {e}")).into_response(),
        }
    }

    /// GETs JSON from the Engine API.
    async fn api_json(&self, path: &str) -> Result<serde_json::Value, UiError> {
        let resp = checked(self.api(Method::GET, path).await).await?;
        let body = axum::body::to_bytes(resp.into_body(), 256 << 20)
            .await
            .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("GET {path}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("GET {path}: {e}")))
    }
}

/// An API answer, or its error as the dashboard shows it.
async fn checked(resp: Response) -> Result<Response, UiError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 10).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(UiError::new(status, message))
}

/// An error page.
#[derive(Debug)]
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError { status, message: message.into() }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Berth: error</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main><h1>{}</h1>\
             <p class=\"error\" role=\"alert\">{}</p><p><a href=\"/\">Back to the containers</a></p></main></body></html>",
            self.status,
            pages::esc(&self.message)
        );
        (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    }
}

/// The dashboard's routes.
pub fn router(ui: Arc<Ui>) -> Router {
    let guarded = Router::new()
        .route("/", get(pages::containers))
        .route("/fragments/containers", get(pages::container_rows))
        .route("/containers/{id}", get(pages::container))
        .route("/containers/{id}/{action}", post(pages::action))
        .route("/events", get(pages::events))
        .route("/system", get(pages::system))
        .route("/images", get(pages::images))
        .route("/images/prune", post(pages::image_prune))
        .route("/images/{id}/remove", post(pages::image_action))
        .route("/images/pull", post(more::pull))
        .route("/images/{id}", get(more::image))
        .route("/compose", get(more::compose))
        .route("/compose/{project}", get(more::project))
        .route("/compose/{project}/{action}", post(more::project_action))
        .route("/sse/compose/{project}/logs", get(more::project_logs))
        .route("/sse/containers/stats", get(sse::all_stats))
        .route("/volumes", get(pages::volumes))
        .route("/networks", get(pages::networks))
        .route("/containers/{id}/terminal", post(term::open))
        .route("/terminals/{id}/input", post(term::input))
        .route("/terminals/{id}/resize", post(term::resize))
        .route("/sse/terminals/{id}", get(term::output))
        .route("/logout", post(logout))
        .route("/sse/containers", get(sse::containers))
        .route("/sse/events", get(sse::events))
        .route("/sse/containers/{id}/logs", get(sse::logs))
        .route("/sse/containers/{id}/stats", get(sse::stats))
        .route("/containers/{id}/logs.txt", get(sse::download))
        .route_layer(axum::middleware::from_fn_with_state(ui.clone(), guard));
    Router::new()
        .merge(guarded)
        .route("/login", get(login))
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("static/app.js")) }),
        )
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", include_str!("static/favicon.svg")) }))
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("static/app.css")) }))
        .fallback(|| async { UiError::new(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(ui.clone(), frame))
        .with_state(ui)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Every answer: only to the dashboard's own `Host`, with the security headers.
async fn frame(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let mut resp = if !ui.hosts.is_empty() && !ui.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        UiError::new(StatusCode::MISDIRECTED_REQUEST, format!("this is the Berth dashboard of {}", ui.url()))
            .into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // The login URL carries the token: never sent to another origin as a referrer. (Not `no-referrer`: browsers then
    // send `Origin: null` with the pages' own forms, which the CSRF check refuses.)
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The session cookie's value.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The largest form a page posts.
const FORM_LIMIT: usize = 16 << 10;

/// The routes behind a session: none, 401; a state-changing request also needs the dashboard's own `Origin` and the
/// session's CSRF token (header `x-csrf-token` or form field `csrf`), else 403. The session goes into the request's
/// extensions for the pages.
async fn guard(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    let Some(session) = cookie(req.headers(), &ui.cookie).and_then(|id| ui.access.session(id)) else {
        return UiError::new(
            StatusCode::UNAUTHORIZED,
            "Not logged in (or the session expired). Run `berth ui` on the host for a login link.",
        )
        .into_response();
    };
    let (mut parts, body) = req.into_parts();
    let mut body = body;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let scheme = if ui.config.tls.is_some() { "https" } else { "http" };
        let origin = parts.headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
        if origin != Some(&format!("{scheme}://{host}")) {
            return UiError::new(StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
        }
        let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
            Ok(b) => b,
            Err(_) => return UiError::new(StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
        };
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| form_field(&bytes, "csrf"));
        if !sent.is_some_and(|t| auth::same_secret(&t, &session.csrf)) {
            return UiError::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
        }
        body = Body::from(bytes);
    }
    parts.extensions.insert(session);
    next.run(Request::from_parts(parts, body)).await
}

/// A field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &[u8], key: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let uri: axum::http::Uri = format!("/?{body}").parse().ok()?;
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).ok()?.0;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `GET /login?token=`: a token exchanged, once, for a session cookie; then to the containers.
async fn login(State(ui): State<Arc<Ui>>, uri: axum::http::Uri) -> Response {
    let token = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .ok()
        .and_then(|q| q.0.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v))
        .unwrap_or_default();
    match ui.access.redeem(&token) {
        Ok(Some((id, _))) => {
            let secure = if ui.config.tls.is_some() { "; Secure" } else { "" };
            let max_age = auth::SESSION_TTL.as_secs();
            let cookie = format!("{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}", ui.cookie);
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(None) => UiError::new(
            StatusCode::FORBIDDEN,
            "This login link is unknown, expired or used already (each works once). Run `berth ui` for a new one.",
        )
        .into_response(),
        Err(e) => UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `POST /logout`.
async fn logout(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, &ui.cookie) {
        ui.access.end(id);
    }
    let expire = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", ui.cookie);
    let mut resp = UiError::new(StatusCode::OK, "Logged out.").into_response();
    if let Ok(v) = HeaderValue::from_str(&expire) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The API's `POST /berth/ui/token` (a Berth extension, on the Unix sockets only): a fresh login token and the
/// dashboard's address, `{"Url": ..., "Login": ...}`. Without `--ui` the route does not exist (404).
pub fn token_route(ui: Arc<Ui>) -> Router {
    Router::new().route(
        "/berth/ui/token",
        post(move |unix: Option<axum::Extension<UnixSocket>>| {
            let ui = ui.clone();
            async move {
                if unix.is_none() {
                    return crate::routes::ApiError(berth_api::Error::Forbidden(
                        "dashboard login tokens are given on the daemon's Unix socket only".into(),
                    ))
                    .into_response();
                }
                match ui.access.issue_token() {
                    Ok(token) => {
                        let url = ui.url();
                        axum::Json(serde_json::json!({
                            "Url": format!("{url}/"),
                            "Login": format!("{url}/login?token={token}"),
                            "ExpiresInSeconds": auth::TOKEN_TTL.as_secs(),
                        }))
                        .into_response()
                    }
                    Err(e) => crate::routes::ApiError(berth_api::Error::Internal(e.to_string())).into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_forms_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; berth-ui-9090=abc; b=2"));
        assert_eq!(cookie(&h, "berth-ui-9090"), Some("abc"));
        assert_eq!(cookie(&h, "berth-ui-9091"), None);
        assert_eq!(form_field(b"back=%2Fcontainers%2Fx&csrf=ab12", "csrf").as_deref(), Some("ab12"));
        assert_eq!(form_field(b"back=%2F", "back").as_deref(), Some("/"));
        assert_eq!(form_field(b"x=1", "csrf"), None);
    }
}
