//! Registry routes: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`, `POST /auth` (login
//! check).
//!
//! A pull (run by `images::pull`) resolves its manifest and config before it answers, so an unknown image, refused credentials or an
//! unreachable registry come back as Docker's HTTP statuses; from then on the answer is docker's JSON progress
//! stream, and a later failure is its last message.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::Response;
use berth_api::Error;
use berth_registry::{Credentials, progress::Progress};
use berth_store::Reference;
use serde_json::{Value, json};

use super::{Daemonic, Query};
use crate::daemon::{Daemon, store_error};
use crate::images::{self, pull::PullRequest, pull::registry_error};
use crate::server::ApiResult;

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
    let pull = images::pull::start(&d, req).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let d2: Arc<Daemon> = d.0.clone();
    tokio::spawn(async move { pull.run(&d2, &p).await });
    Ok(super::json_stream(rx))
}

/// `POST /auth`: checks credentials against the registry (`docker login`).
pub async fn auth(d: Daemonic, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    let creds = Credentials::from_json(&v);
    let server = berth_registry::auth::normalize_server(&creds.server_address);
    let reg = images::pull::registry(&d, &server, creds, Vec::new())?;
    reg.ping().await.map_err(|e| match e {
        berth_registry::Error::Unauthorized(m) => Error::Unauthorized(format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized ({m})",
            reg.name
        )),
        e => registry_error(e),
    })?;
    Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})))
}

/// `POST /images/{name}/push?tag=TAG`; no tag means every local tag of the repository (`push -a`).
pub async fn push(d: Daemonic, name: String, q: Query, headers: HeaderMap) -> ApiResult<Response> {
    let r = Reference::parse(&name).map_err(store_error)?;
    let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
    let store = d.store.clone();
    let targets: Vec<Reference> = match tag.as_deref().or(r.tag()) {
        Some(t) => vec![r.with_tag(t).map_err(store_error)?],
        None => {
            let s = store.clone();
            let images = crate::daemon::blocking(move || s.list_images().map_err(store_error)).await?;
            let mut v: Vec<Reference> = images
                .iter()
                .flat_map(|i| i.repo_tags.iter())
                .filter_map(|t| Reference::parse(t).ok())
                .filter(|t| t.name() == r.name())
                .collect();
            v.sort_by_key(|t| t.to_string());
            v
        }
    };
    let mut work = Vec::new();
    for t in &targets {
        let (s, n) = (store.clone(), t.to_string());
        let image = crate::daemon::blocking(move || s.resolve_image(&n).map_err(store_error)).await;
        match image {
            Ok(i) => work.push((t.clone(), i)),
            Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    t.familiar_string()
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if work.is_empty() {
        return Err(
            Error::NotFound(format!("An image does not exist locally with the tag: {}", r.familiar_name())).into()
        );
    }
    let creds = credentials(&headers)?;
    let mut scopes = vec![berth_registry::push::push_scope(&r)];
    for (_, i) in &work {
        for s in berth_registry::push::mount_scopes(&store, i, r.domain(), r.path()) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
    }
    let reg = Arc::new(images::pull::registry(&d, r.domain(), creds, scopes)?);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    tokio::spawn(async move {
        p.status(format!("The push refers to repository [{}]", r.name()));
        for (t, image) in work {
            if let Err(e) = berth_registry::push::push(store.clone(), reg.clone(), &image, &t, &p).await {
                p.send(berth_registry::progress::error_message(&e.to_string()));
                return;
            }
        }
    });
    Ok(super::json_stream(rx))
}
