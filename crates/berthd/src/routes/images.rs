//! `/images/...`: list, inspect, history, tag, remove, and `POST /images/create?fromSrc=` (import).

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use berth_store::Image;
use serde_json::{Value, json};

use super::{Daemonic, Query, flag};
use crate::daemon::{Daemon, store_error};
use crate::filters::Filters;
use crate::images::{self, Removed};
use crate::routes::ApiResult;
use crate::task::blocking;

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    let images = images::list(&d, &f, flag(&q, "all")).await?;
    let out = images
        .iter()
        .map(|i| {
            json!({
                "Id": i.id.to_string(),
                "ParentId": "",
                "RepoTags": i.repo_tags,
                "RepoDigests": i.repo_digests,
                "Created": i.created_unix(),
                "Size": i.size,
                "SharedSize": -1,
                "VirtualSize": i.size,
                "Labels": i.labels(),
                "Containers": -1,
            })
        })
        .collect();
    Ok(Json(out))
}

/// The answer of a removal: `[{"Untagged": ...}, {"Deleted": ...}]`.
fn removed_json(removed: &[Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({"Untagged": t}),
            Removed::Deleted(id) => json!({"Deleted": id}),
        })
        .collect()
}

fn inspect_json(i: &Image) -> Value {
    let lower: Vec<String> = i.lower_dirs().iter().map(|p| p.display().to_string()).collect();
    let cfg = &i.config;
    json!({
        "Id": i.id.to_string(),
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Parent": "",
        "Comment": cfg["comment"].as_str().unwrap_or(""),
        "Created": cfg["created"].as_str().unwrap_or(berth_api::time::ZERO),
        "DockerVersion": cfg["docker_version"].as_str().unwrap_or(""),
        "Author": cfg["author"].as_str().unwrap_or(""),
        "Config": cfg["config"],
        "Architecture": cfg["architecture"].as_str().unwrap_or("amd64"),
        "Variant": cfg["variant"],
        "Os": cfg["os"].as_str().unwrap_or("linux"),
        "Size": i.size,
        "VirtualSize": i.size,
        "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": lower.join(":")}},
        "RootFS": {"Type": "layers", "Layers": cfg["rootfs"]["diff_ids"]},
        "Metadata": {"LastTagTime": berth_api::time::ZERO},
    })
}

pub async fn by_name(d: Daemonic, Path(path): Path<String>) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/get") {
        return save_names(&d, vec![name.to_string()]).await;
    }
    if let Some(name) = path.strip_suffix("/json") {
        let i = images::resolve(&d, name).await?;
        return Ok(Json(inspect_json(&i)).into_response());
    }
    if let Some(name) = path.strip_suffix("/history") {
        let i = images::resolve(&d, name).await?;
        let history = i.config["history"].as_array().cloned().unwrap_or_default();
        let n = history.len();
        // Each entry that made a layer has the next layer's size.
        let store = d.store.clone();
        let chains = i.layers.clone();
        let layer_sizes: Vec<i64> = blocking(move || {
            Ok(chains.iter().map(|c| store.layer(c).ok().flatten().map(|l| l.size as i64).unwrap_or(0)).collect())
        })
        .await?;
        let mut next = 0;
        let sizes: Vec<i64> = history
            .iter()
            .map(|h| {
                if h["empty_layer"].as_bool().unwrap_or(false) {
                    return 0;
                }
                next += 1;
                layer_sizes.get(next - 1).copied().unwrap_or(0)
            })
            .collect();
        let out: Vec<Value> = history
            .iter()
            .enumerate()
            .rev()
            .map(|(idx, h)| {
                json!({
                    "Id": if idx + 1 == n { i.id.to_string() } else { "<missing>".to_string() },
                    "Created": h["created"].as_str().and_then(berth_api::time::parse).map(berth_api::time::unix).unwrap_or(0),
                    "CreatedBy": h["created_by"].as_str().unwrap_or(""),
                    "Tags": if idx + 1 == n { json!(i.repo_tags) } else { Value::Null },
                    "Size": sizes[idx],
                    "Comment": h["comment"].as_str().unwrap_or(""),
                })
            })
            .collect();
        return Ok(Json(out).into_response());
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
        let i = images::resolve(&d, name).await?;
        let repo = q
            .get("repo")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::InvalidArgument("repository name must have at least one component".into()))?;
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
    let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    let changes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "changes")
        .flat_map(|(_, v)| v.split('\n'))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
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
    let body = format!("{}\r\n", json!({"status": id.to_string()}));
    Ok(([("content-type", "application/json")], body).into_response())
}

/// `GET /images/get?names=a&names=b`: docker's `save` format.
pub async fn save(d: Daemonic, req: Request<Body>) -> ApiResult<Response> {
    let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    let names: Vec<String> = pairs.into_iter().filter(|(k, _)| k == "names").map(|(_, v)| v).collect();
    if names.is_empty() {
        return Err(Error::InvalidArgument("no images given: names is required".into()).into());
    }
    save_names(&d, names).await
}

async fn save_names(d: &Daemon, names: Vec<String>) -> ApiResult<Response> {
    // Unknown names are a 404 before any byte of the archive goes out.
    let mut saved = Vec::new();
    for n in &names {
        saved.push(images::resolve(d, n).await?.id.to_string());
    }
    for id in saved {
        images::publish(d, "save", &id, &id);
    }
    let (out, body) = super::archive::streamed_body();
    let tx = out.get_ref().0.clone();
    let store = d.store.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.save(&names, out) {
            tracing::warn!("save: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Ok(([("content-type", "application/x-tar")], body).into_response())
}

/// `POST /images/load`: a tar from `docker save` or an OCI layout.
pub async fn load(d: Daemonic, req: Request<Body>) -> ApiResult<Response> {
    let (reader, drained) = super::body_reader(req.into_body());
    let store = d.store.clone();
    let lines = drained
        .then(
            blocking(move || {
                let mut lines = Vec::new();
                store.load(reader, &mut |l| lines.push(l)).map_err(store_error)?;
                Ok(lines)
            })
            .await,
        )
        .await?;
    let mut body = String::new();
    for l in lines {
        if let Some(name) = l.strip_prefix("Loaded image: ").or_else(|| l.strip_prefix("Loaded image ID: ")) {
            images::publish(&d, "load", name, name);
        }
        body.push_str(&json!({"stream": format!("{l}\n")}).to_string());
        body.push_str("\r\n");
    }
    Ok(([("content-type", "application/json")], body).into_response())
}

/// `POST /images/prune`: removes dangling images (untagged), or with `dangling=false` every image no container uses.
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let pruned = images::prune(&d, &Filters::from_query(&q)?).await?;
    Ok(Json(json!({
        "ImagesDeleted": if pruned.removed.is_empty() { Value::Null } else { json!(removed_json(&pruned.removed)) },
        "SpaceReclaimed": pruned.reclaimed,
    })))
}
