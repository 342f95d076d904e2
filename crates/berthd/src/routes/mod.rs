//! The Engine API routes. Each handler parses its request into a typed call on a manager and turns the result into
//! Docker's response.

mod archive;
mod build;
mod cluster;
mod containers;
mod error;
mod events;
mod exec;
mod images;
mod networks;
mod pods;
mod registry;
mod system;
mod volumes;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, head, post};
use berth_api::Error;
use serde::de::DeserializeOwned;

use crate::daemon::Daemon;
pub use error::{ApiError, ApiResult};

/// Shared handler state.
pub type Daemonic = axum::extract::State<Arc<Daemon>>;
/// Query parameters, as Docker reads them: a key given several times counts with its first value (Go's
/// `FormValue`; docker-py sends `dockerfile` twice for a Dockerfile outside the context). [`query_values`] has them all.
pub struct Query(pub HashMap<String, String>);

impl std::ops::Deref for Query {
    type Target = HashMap<String, String>;

    fn deref(&self) -> &HashMap<String, String> {
        &self.0
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut q = HashMap::new();
        for (k, v) in query_pairs(&parts.uri)? {
            q.entry(k).or_insert(v);
        }
        Ok(Query(q))
    }
}

fn query_pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, Error> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Error::InvalidArgument(format!("invalid query: {e}")))
}

/// Every value of the query parameter `key`, in order (`t` of a build, `changes` of an import or commit).
pub fn query_values(uri: &axum::http::Uri, key: &str) -> Vec<String> {
    query_pairs(uri).unwrap_or_default().into_iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect()
}

/// The API version of the request (negotiated in `server.rs` from its `/vX.Y` prefix; the newest without one), for
/// the views that render differently per version.
#[derive(Debug, Clone, Copy)]
pub struct Version(pub berth_api::ApiVersion);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Version {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Version(parts.extensions.get::<berth_api::ApiVersion>().copied().unwrap_or(berth_api::API_VERSION)))
    }
}

/// Every route of the API.
pub fn router(d: Arc<Daemon>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/events", get(events::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/commit", post(containers::commit))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}", axum::routing::delete(containers::remove))
        .route("/containers/{id}/{link}", axum::routing::delete(containers::remove_link))
        .route("/containers/{id}/export", get(archive::export))
        .route("/containers/{id}/archive", get(archive::get).head(archive::head).put(archive::put))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route("/volumes/{name}", get(volumes::inspect).delete(volumes::remove))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/get", get(images::save))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/images/{*name}", get(images::by_name).post(images::by_name_post).delete(images::remove))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}", get(networks::inspect).delete(networks::remove))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/auth", post(registry::auth))
        .route("/distribution/{*name}", get(registry::distribution))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/berth/build/context", post(build::context))
        .route("/session", head(system::no_session).post(system::no_session))
        .merge(pod_routes())
        .merge(cluster_routes())
        .fallback(system::not_found)
        .with_state(d)
}

/// Berth's pods (`crate::pods`).
fn pod_routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/berth/pods/create", post(pods::create))
        .route("/berth/pods/json", get(pods::list))
        .route("/berth/pods/{id}/json", get(pods::inspect))
        .route("/berth/pods/{id}/start", post(pods::start))
        .route("/berth/pods/{id}/stop", post(pods::stop))
        .route("/berth/pods/{id}/restart", post(pods::restart))
        .route("/berth/pods/{id}/kill", post(pods::kill))
        .route("/berth/pods/{id}", axum::routing::delete(pods::remove))
}

/// The swarm's and the plugins' endpoints, answered as by a Docker outside any swarm (see [`cluster`]).
fn cluster_routes() -> Router<Arc<Daemon>> {
    let mut r = Router::new()
        .route("/swarm", get(cluster::object))
        .route("/swarm/unlockkey", get(cluster::object))
        .route("/swarm/init", post(cluster::init))
        .route("/swarm/join", post(cluster::join))
        .route("/swarm/leave", post(cluster::leave))
        .route("/swarm/update", post(|q: Query, b: bytes::Bytes| cluster::update("swarm", q, b)))
        .route("/swarm/unlock", post(cluster::with_body))
        .route("/services/{id}/logs", get(cluster::logs))
        .route("/tasks", get(cluster::list))
        .route("/tasks/{id}", get(cluster::object))
        .route("/tasks/{id}/logs", get(cluster::logs))
        .route("/plugins", get(cluster::plugins))
        .route("/plugins/privileges", get(cluster::install))
        .route("/plugins/pull", post(cluster::install))
        .route("/plugins/create", post(cluster::install))
        .route("/plugins/{*path}", get(cluster::plugin_get).post(cluster::plugin_post).delete(cluster::plugin_delete));
    for (kind, one) in [("services", "service"), ("nodes", "node"), ("secrets", "secret"), ("configs", "config")] {
        r = r
            .route(&format!("/{kind}"), get(cluster::list))
            .route(&format!("/{kind}/{{id}}"), get(cluster::object).delete(cluster::object))
            .route(
                &format!("/{kind}/{{id}}/update"),
                post(move |q: Query, b: bytes::Bytes| cluster::update(one, q, b)),
            );
        if kind != "nodes" {
            r = r.route(&format!("/{kind}/create"), post(cluster::with_body));
        }
    }
    r
}

/// The Dockerfile lines of `changes` (`import -c`, `commit -c`): the parameter may repeat (the docker CLI sends one
/// per `-c`), and one value may hold several lines.
pub fn change_lines(uri: &axum::http::Uri) -> Vec<String> {
    query_values(uri, "changes")
        .iter()
        .flat_map(|v| v.split('\n'))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A blocking reader over a request body (for the synchronous store and file system work), fed by a task.
pub struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    buf: bytes::Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// Streams `body` into a [`BodyReader`]. If the reader goes away before the end (the work failed: a bad tar, a full
/// disk), the rest of the body is read and dropped, so that the client, still sending, gets the error as the answer
/// instead of a broken pipe; [`Drained`] waits for that.
pub fn body_reader(body: axum::body::Body) -> (BodyReader, Drained) {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut body = body.into_data_stream();
    let task = tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|e| e.to_string());
            if item.is_err() {
                // The client went away: nothing left to read.
                let _ = tx.send(item).await;
                return;
            }
            if tx.send(item).await.is_err() {
                break;
            }
        }
        while let Some(Ok(_)) = body.next().await {}
    });
    (BodyReader { rx, buf: bytes::Bytes::new() }, Drained(task))
}

/// The end of a request body read by a [`BodyReader`].
pub struct Drained(tokio::task::JoinHandle<()>);

impl Drained {
    /// Passes `res` on; an error only once the client has sent its whole body (see [`body_reader`]).
    pub async fn then<T>(self, res: Result<T, impl Into<Error>>) -> Result<T, Error> {
        if res.is_err() {
            let _ = self.0.await;
        }
        res.map_err(Into::into)
    }
}

/// A JSON-lines body fed by a channel of messages.
pub fn json_stream(rx: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) -> axum::response::Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut line = v.to_string();
        line.push_str("\r\n");
        Some((Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line)), rx))
    });
    axum::response::IntoResponse::into_response((
        [("content-type", "application/json")],
        axum::body::Body::from_stream(stream),
    ))
}

/// Docker's boolean query values: `1`, `true`, `True` (anything else but `0`/`false` counts as true too).
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False" | "FALSE"))
}

/// Parses a JSON body, with Docker's message for bad input.
pub fn json_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_query_parameter_counts_with_its_first_value() {
        use axum::extract::FromRequestParts;
        let req = axum::http::Request::builder()
            .uri("/build?dockerfile=.dockerfile.1&t=a&dockerfile=FROM%20x&t=b&changes=ENV%20A%3D1%0ACMD%20x")
            .body(())
            .expect("request");
        let (mut parts, ()) = req.into_parts();
        let q = Query::from_request_parts(&mut parts, &()).await.expect("query");
        assert_eq!(q.get("dockerfile").map(String::as_str), Some(".dockerfile.1"));
        assert_eq!(query_values(&parts.uri, "t"), ["a", "b"]);
        assert_eq!(change_lines(&parts.uri), ["ENV A=1", "CMD x"]);
    }

    #[test]
    fn flags() {
        let mut q = HashMap::new();
        q.insert("all".to_string(), "1".to_string());
        assert!(flag(&q, "all"));
        assert!(!flag(&q, "size"));
    }
}
