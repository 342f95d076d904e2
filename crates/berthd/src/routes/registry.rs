//! Registry routes: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`, `POST /auth` (login
//! check).
//!
//! Pulls, pushes and logins run in `images::{pull,push,registry}`. A pull resolves its manifest and config (a push
//! its local images) before it answers, so an unknown image, refused credentials or an unreachable registry come back
//! as Docker's HTTP statuses; from then on the answer is docker's JSON progress stream, and a later failure is its
//! last message.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::Response;
use berth_api::Error;
use berth_registry::{Credentials, progress::Progress};
use serde_json::Value;

use super::{Daemonic, Query};
use crate::daemon::Daemon;
use crate::images::{self, pull::PullRequest};
use crate::routes::ApiResult;
use crate::views;

/// The credentials of the `X-Registry-Auth` header (anonymous without one).
pub fn credentials(headers: &HeaderMap) -> Result<Credentials, Error> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        Some(h) => Credentials::from_header(h),
        None => Ok(Credentials::default()),
    }
}

/// `POST /images/create?fromImage=NAME[&tag=TAG|DIGEST][&platform=P]`; no tag means every tag (`pull -a`).
pub async fn pull(d: Daemonic, q: Query, headers: HeaderMap) -> ApiResult<Response> {
    let req = PullRequest {
        image: q.get("fromImage").cloned().unwrap_or_default(),
        tag: q.get("tag").cloned().filter(|t| !t.is_empty()),
        platform: q.get("platform").cloned(),
        creds: credentials(&headers)?,
    };
    // The first image is resolved before answering: its errors are HTTP statuses.
    let pull = crate::images::pull::start(&d, req).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let d2: Arc<Daemon> = d.0.clone();
    tokio::spawn(async move { pull.run(&d2, &p).await });
    Ok(super::json_stream(rx))
}

/// `POST /auth`: checks credentials against the registry (`docker login`).
pub async fn auth(d: Daemonic, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    crate::images::registry::login(&d, Credentials::from_json(&v)).await?;
    Ok(Json(views::system::logged_in()))
}

/// `POST /images/{name}/push?tag=TAG`; no tag means every local tag of the repository (`push -a`).
pub async fn push(d: Daemonic, name: String, q: Query, headers: HeaderMap) -> ApiResult<Response> {
    let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
    let push = images::push::start(&d, &name, tag, credentials(&headers)?).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let d2: Arc<Daemon> = d.0.clone();
    tokio::spawn(async move { push.run(&d2, &p).await });
    Ok(super::json_stream(rx))
}

/// `GET /distribution/{name}/json`: the manifest descriptor and platforms of an image on its registry, without
/// pulling it (`docker manifest`-like lookups, docker-py's `images.get_registry_data`).
pub async fn distribution(
    d: Daemonic,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let Some(name) = path.strip_suffix("/json") else {
        return Err(Error::NotFound(format!("page not found: /distribution/{path}")).into());
    };
    let dist = crate::images::registry::distribution(&d, name, credentials(&headers)?).await?;
    Ok(Json(views::image::distribution(&dist)))
}
