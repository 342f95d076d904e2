//! `/images/...`: list, inspect, history, tag, remove, and `POST /images/create?fromSrc=` (import).

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use serde_json::Value;

use super::{Daemonic, Query, Version, flag};
use crate::daemon::{Daemon, store_error};
use crate::filters::Filters;
use crate::images::{self, Removed};
use crate::routes::ApiResult;
use crate::task::blocking;
use crate::views;

pub async fn list(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    let images = images::list(&d, &f, flag(&q, "all")).await?;
    let out = images.iter().map(|i| views::image::summary(i, v)).collect();
    Ok(Json(out))
}

/// The answer of a removal: `[{"Untagged": ...}, {"Deleted": ...}]`.
fn removed_json(removed: &[Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(t) => views::image::untagged(t),
            Removed::Deleted(id) => views::image::deleted(id),
        })
        .collect()
}

pub async fn by_name(d: Daemonic, Version(v): Version, Path(path): Path<String>) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/get") {
        return save_names(&d.0, vec![name.to_string()]).await;
    }
    if let Some(name) = path.strip_suffix("/json") {
        let i = crate::images::local::resolve(&d, name).await?;
        return Ok(Json(views::image::inspect(&i, v)).into_response());
    }
    if let Some(name) = path.strip_suffix("/history") {
        let i = crate::images::local::resolve(&d, name).await?;
        let store = d.store.clone();
        let chains = i.layers.clone();
        let layer_sizes: Vec<i64> = blocking(move || {
            Ok(chains.iter().map(|c| store.layer(c).ok().flatten().map(|l| l.size as i64).unwrap_or(0)).collect())
        })
        .await?;
        return Ok(Json(views::image::history(&i, &layer_sizes)).into_response());
    }
    Err(Error::NotFound(format!("page not found: /images/{path}")).into())
}

pub async fn by_name_post(
    d: Daemonic,
    Path(path): Path<String>,
    q: Query,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/tag") {
        let i = crate::images::local::resolve(&d, name).await?;
        let repo = q
            .get("repo")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::InvalidArgument("repository name must have at least one component".into()))?;
        images::check_tag_repository(repo)?;
        let reference = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.clone(),
        };
        let store = d.store.clone();
        let id = i.id.clone();
        let r2 = reference.clone();
        blocking(move || store.tag(&id, &r2).map_err(store_error)).await?;
        let familiar = berth_store::Reference::parse(&reference).map(|r| r.familiar_string()).unwrap_or(reference);
        images::publish(&d, "tag", &i.id.to_string(), &familiar);
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        return super::registry::push(d, name.to_string(), q, headers).await;
    }
    Err(Error::NotFound(format!("page not found: /images/{path}")).into())
}

pub async fn remove(d: Daemonic, Path(name): Path<String>, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let removed = images::remove(&d, &name, flag(&q, "force")).await?;
    Ok(Json(removed_json(&removed)))
}

pub async fn create(d: Daemonic, q: Query, req: Request<Body>) -> ApiResult<Response> {
    if q.get("fromImage").is_some_and(|i| !i.is_empty()) {
        let headers = req.headers().clone();
        return super::registry::pull(d, q, headers).await;
    }
    let Some(src) = q.get("fromSrc") else {
        return Err(Error::InvalidArgument("one of fromImage or fromSrc is required".into()).into());
    };
    if src != "-" {
        return Err(Error::InvalidArgument(format!(
            "importing from a URL ({src}) is not supported; send the tar as the request body"
        ))
        .into());
    }
    let repo = q.get("repo").cloned().filter(|r| !r.is_empty());
    let reference = repo.map(|r| match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{r}:{t}"),
        None => r,
    });
    if let Some(r) = &reference {
        berth_store::reference::Reference::parse(r).map_err(store_error)?;
    }
    // `changes` may repeat (the docker CLI sends one per `-c`), and one value may hold several lines.
    let changes = super::change_lines(req.uri());
    let opts = berth_store::ImportOptions {
        changes,
        message: q.get("message").cloned().filter(|m| !m.is_empty()),
        tags: reference.into_iter().collect(),
        ..Default::default()
    };
    let (reader, drained) = super::body_reader(req.into_body());
    let store = d.store.clone();
    let id = drained.then(blocking(move || store.import_image(reader, opts).map_err(store_error)).await).await?;
    images::publish(&d, "import", &id.to_string(), &id.to_string());
    let body = format!("{}\r\n", views::image::progress_status(&id.to_string()));
    Ok(([("content-type", "application/json")], body).into_response())
}

/// `GET /images/get?names=a&names=b`: docker's `save` format.
pub async fn save(d: Daemonic, req: Request<Body>) -> ApiResult<Response> {
    let names = super::query_values(req.uri(), "names");
    if names.is_empty() {
        return Err(Error::InvalidArgument("no images given: names is required".into()).into());
    }
    save_names(&d.0, names).await
}

async fn save_names(d: &std::sync::Arc<Daemon>, names: Vec<String>) -> ApiResult<Response> {
    // Unknown names are a 404 before any byte of the archive goes out.
    let mut saved = Vec::new();
    for n in &names {
        saved.push(crate::images::local::resolve(d, n).await?.id.to_string());
    }
    let (out, body) = super::archive::streamed_body();
    let tx = out.get_ref().0.clone();
    let d = d.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = out;
        match d.store.save(&names, &mut out) {
            // Published once the archive is written (as dockerd's, after each image), not for one that failed, and
            // before the stream ends (`out` is dropped after): a client that has read it all finds the event.
            Ok(()) => {
                for id in saved {
                    images::publish(&d, "save", &id, &id);
                }
            }
            Err(e) => {
                tracing::warn!("save: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
        drop(out);
    });
    Ok(([("content-type", "application/x-tar")], body).into_response())
}

/// `POST /images/load`: a tar from `docker save` or an OCI layout.
pub async fn load(d: Daemonic, req: Request<Body>) -> ApiResult<Response> {
    let (reader, drained) = super::body_reader(req.into_body());
    let store = d.store.clone();
    let (lines, res) = blocking(move || {
        let mut lines = Vec::new();
        let res = store.load(reader, &mut |l| lines.push(l)).map_err(store_error);
        Ok((lines, res))
    })
    .await?;
    // Docker answers 200 whatever happens (for every API version, `quiet` or not): a failure is the stream's last
    // line, after what was loaded before it.
    let failed = drained.then(res).await.err();
    let mut body = String::new();
    for l in lines {
        if let Some(name) = l.strip_prefix("Loaded image: ").or_else(|| l.strip_prefix("Loaded image ID: ")) {
            images::publish(&d, "load", name, name);
        }
        body.push_str(&views::image::progress_stream(&format!("{l}\n")).to_string());
        body.push_str("\r\n");
    }
    if let Some(e) = failed {
        body.push_str(&views::image::progress_error(&e.to_string()).to_string());
        body.push_str("\r\n");
    }
    Ok(([("content-type", "application/json")], body).into_response())
}

/// `POST /images/prune`: removes dangling images (untagged), or with `dangling=false` every image no container uses.
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let pruned = images::prune(&d, &Filters::from_query(&q)?).await?;
    Ok(Json(views::image::pruned(removed_json(&pruned.removed), pruned.reclaimed)))
}
