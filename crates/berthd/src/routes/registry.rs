//! Registry routes: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`, `POST /auth` (login
//! check).
//!
//! A pull resolves its manifest and config before it answers, so an unknown image, refused credentials or an
//! unreachable registry come back as Docker's HTTP statuses; from then on the answer is docker's JSON progress
//! stream, and a later failure is its last message.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::Response;
use berth_api::Error;
use berth_registry::pull::{self, Platform};
use berth_registry::{Credentials, Registry, progress::Progress};
use berth_store::Reference;
use serde_json::{Value, json};

use super::{Daemonic, Query};
use crate::daemon::{Daemon, store_error};
use crate::routes::ApiResult;
use crate::views;

/// Maps a registry error to its API class.
pub fn registry_error(e: berth_registry::Error) -> Error {
    use berth_registry::Error as R;
    match e {
        R::NotFound(m) => Error::NotFound(m),
        R::Unauthorized(m) => Error::Unauthorized(m),
        R::Denied(m) => Error::Forbidden(m),
        R::InvalidArgument(m) => Error::InvalidArgument(m),
        R::Store(s) => store_error(s).into(),
        other => Error::Internal(other.to_string()),
    }
}

/// The credentials of the `X-Registry-Auth` header (anonymous without one).
pub fn credentials(headers: &HeaderMap) -> Result<Credentials, Error> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        Some(h) => Credentials::from_header(h),
        None => Ok(Credentials::default()),
    }
}

/// `POST /images/create?fromImage=NAME[&tag=TAG|DIGEST][&platform=P]`; no tag means every tag (`pull -a`).
pub async fn pull(d: Daemonic, q: Query, headers: HeaderMap) -> ApiResult<Response> {
    let image = q.get("fromImage").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
    let name = match &tag {
        Some(t) if t.contains(':') => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.clone(),
    };
    let r = Reference::parse(&name).map_err(store_error)?;
    let all_tags = tag.is_none() && r.tag().is_none() && r.digest().is_none();
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(registry_error)?,
        None => Platform::host(),
    };
    let creds = credentials(&headers)?;
    let reg = Registry::new(r.domain(), &d.config.insecure_registries, creds, vec![pull::pull_scope(&r)])
        .map(|r| r.with_certs_dir(Some(d.config.registry_certs_dir.clone())))
        .map_err(registry_error)?;
    let reg = Arc::new(reg);
    let refs: Vec<Reference> = if all_tags {
        let tags = pull::list_tags(&reg, &r).await.map_err(registry_error)?;
        tags.iter().filter_map(|t| r.with_tag(t).ok()).collect()
    } else {
        vec![r.clone()]
    };
    // The first image is resolved before answering: its errors are HTTP statuses.
    let first = match refs.first() {
        Some(f) => pull::resolve(&reg, f, &platform).await.map_err(registry_error)?,
        None => return Err(Error::NotFound(format!("no tags in repository {}", r.familiar_name())).into()),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = Progress::new(tx);
    let d2: Arc<Daemon> = d.0.clone();
    let header_id = if all_tags { r.familiar_name() } else { r.tag().or(r.digest()).unwrap_or("latest").to_string() };
    tokio::spawn(async move {
        p.send(json!({"status": format!("Pulling from {}", r.path()), "id": header_id}));
        let mut resolved = Some(first);
        for (i, rr) in refs.iter().enumerate() {
            let res = match resolved.take() {
                Some(res) => Ok(res),
                None => pull::resolve(&reg, rr, &platform).await,
            };
            let res = match res {
                Ok(res) => res,
                Err(e) => {
                    p.send(berth_registry::progress::error_message(&e.to_string()));
                    return;
                }
            };
            if i > 0 {
                p.send(json!({"status": format!("Pulling from {}", r.path()), "id": rr.tag().unwrap_or("")}));
            }
            match pull::fetch(d2.store.clone(), reg.clone(), &res, &p).await {
                Ok((_, new)) => pull::final_status(&p, &res, new),
                Err(e) => {
                    p.send(berth_registry::progress::error_message(&e.to_string()));
                    return;
                }
            }
        }
    });
    Ok(super::json_stream(rx))
}

/// `POST /auth`: checks credentials against the registry (`docker login`).
pub async fn auth(d: Daemonic, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    let creds = Credentials::from_json(&v);
    let server = berth_registry::auth::normalize_server(&creds.server_address);
    let reg = Registry::new(&server, &d.config.insecure_registries, creds, Vec::new())
        .map(|r| r.with_certs_dir(Some(d.config.registry_certs_dir.clone())))
        .map_err(registry_error)?;
    reg.ping().await.map_err(|e| match e {
        berth_registry::Error::Unauthorized(m) => Error::Unauthorized(format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized ({m})",
            reg.name
        )),
        e => registry_error(e),
    })?;
    Ok(Json(views::system::logged_in()))
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
            let images = crate::task::blocking(move || s.list_images().map_err(store_error)).await?;
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
        let image = crate::task::blocking(move || s.resolve_image(&n).map_err(store_error)).await;
        match image {
            Ok(i) => work.push((t.clone(), i)),
            Err(e) if e.is_not_found() => {
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
    let reg = Arc::new(
        Registry::new(r.domain(), &d.config.insecure_registries, creds, scopes)
            .map(|r| r.with_certs_dir(Some(d.config.registry_certs_dir.clone())))
            .map_err(registry_error)?,
    );
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
