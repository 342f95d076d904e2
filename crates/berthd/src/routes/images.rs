//! `/images/...`: list, inspect, history, tag, remove, and `POST /images/create?fromSrc=` (import).

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use berth_store::Image;
use serde_json::{Value, json};

use super::{Daemonic, Query, Version, filters, flag};
use crate::daemon::{Daemon, store_error};
use crate::routes::ApiResult;
use crate::task::blocking;
use crate::views;

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// Matches Docker's `reference` filter: a glob on the familiar `repo[:tag]`.
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let repo = t.rsplit_once(':').map(|(r, _)| r).unwrap_or(t);
        glob(pattern, t) || glob(pattern, repo)
    })
}

/// `*` and `?` glob, `*` not crossing `/` (like Go's path.Match).
fn glob(p: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && m(p, &s[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(p.as_bytes(), s.as_bytes())
}

pub async fn list(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = filters(&q)?;
    let store = d.store.clone();
    let mut images = blocking(move || store.list_images().map_err(store_error)).await?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created_unix()));
    let all = flag(&q, "all");
    let users = |id: &str| d.all_containers().iter().filter(|c| c.record().image_id == id).count() as i64;
    let mut out = Vec::new();
    for i in &images {
        let id = i.id.to_string();
        let mut keep = true;
        for (k, vals) in &f {
            keep &= match k.as_str() {
                "dangling" => vals.iter().all(|v| (v == "true" || v == "1") == i.repo_tags.is_empty()),
                "reference" => vals.iter().any(|v| reference_matches(v, &i.repo_tags)),
                "label" => vals.iter().all(|v| {
                    let l = i.labels();
                    match v.split_once('=') {
                        Some((k, val)) => l[k] == json!(val),
                        None => !l[v.as_str()].is_null(),
                    }
                }),
                "before" | "since" | "until" => true,
                other => return Err(Error::InvalidArgument(format!("invalid filter '{other}'")).into()),
            };
        }
        if !keep || (!all && i.repo_tags.is_empty() && !f.contains_key("dangling") && users(&id) > 0) {
            continue;
        }
        out.push(views::image::summary(i, v));
    }
    Ok(Json(out))
}

async fn resolve(d: &Daemon, name: &str) -> Result<Image, Error> {
    let store = d.store.clone();
    let name = name.to_string();
    Ok(blocking(move || store.resolve_image(&name).map_err(store_error)).await?)
}

pub async fn by_name(d: Daemonic, Version(v): Version, Path(path): Path<String>) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/get") {
        return save_names(&d, vec![name.to_string()]).await;
    }
    if let Some(name) = path.strip_suffix("/json") {
        let i = resolve(&d, name).await?;
        return Ok(Json(views::image::inspect(&i, v)).into_response());
    }
    if let Some(name) = path.strip_suffix("/history") {
        let i = resolve(&d, name).await?;
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
        let i = resolve(&d, name).await?;
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
        blocking(move || store.tag(&id, &reference).map_err(store_error)).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        return super::registry::push(d, name.to_string(), q, headers).await;
    }
    Err(Error::NotFound(format!("page not found: /images/{path}")).into())
}

pub async fn remove(d: Daemonic, Path(name): Path<String>, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let force = flag(&q, "force");
    let _no_new_users = d.image_use.write().await;
    let i = resolve(&d, &name).await?;
    let id = i.id.to_string();
    // Removing by a tag while other tags remain only untags.
    let by_tag = !id.trim_start_matches("sha256:").starts_with(name.trim_start_matches("sha256:"));
    let users: Vec<_> = d.all_containers().into_iter().filter(|c| c.record().image_id == id).collect();
    if let Some(running) = users.iter().find(|c| c.is_running())
        && (!by_tag || i.repo_tags.len() <= 1)
    {
        return Err(Error::Conflict(format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            short(&id),
            short(&running.id)
        ))
        .into());
    }
    let store = d.store.clone();
    if by_tag && (i.repo_tags.len() > 1 || (!users.is_empty() && force)) {
        let tag = familiar_tag(&name);
        let t2 = tag.clone();
        blocking(move || store.untag(&t2).map_err(store_error)).await?;
        return Ok(Json(vec![views::image::untagged(&tag)]));
    }
    if let Some(user) = users.first() {
        if !force {
            return Err(Error::Conflict(if by_tag {
                format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    short(&user.id),
                    short(&id)
                )
            } else {
                format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short(&id),
                    short(&user.id)
                )
            })
            .into());
        }
        // Forced while containers use it: untag everything, keep the layers those containers run on.
        let tags = i.repo_tags.clone();
        let out = tags.iter().map(|t| views::image::untagged(t)).collect();
        blocking(move || {
            for t in &tags {
                store.untag(t).map_err(store_error)?;
            }
            Ok(())
        })
        .await?;
        return Ok(Json(out));
    }
    if !by_tag && i.repo_tags.len() > 1 && !force {
        return Err(Error::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&id)
        ))
        .into());
    }
    let mut out: Vec<Value> = i.repo_tags.iter().map(|t| views::image::untagged(t)).collect();
    let iid = i.id.clone();
    let deleted = blocking(move || store.remove_image(&iid).map_err(store_error)).await?;
    out.extend(deleted.iter().map(|d| views::image::deleted(d)));
    Ok(Json(out))
}

/// `busybox` → `busybox:latest` (the form tags are listed in).
fn familiar_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') { name.to_string() } else { format!("{name}:latest") }
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
    let body = format!("{}\r\n", views::image::progress_status(&id.to_string()));
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
    for n in &names {
        resolve(d, n).await?;
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
        body.push_str(&views::image::progress_stream(&format!("{l}\n")).to_string());
        body.push_str("\r\n");
    }
    Ok(([("content-type", "application/json")], body).into_response())
}

/// `POST /images/prune`: removes dangling images (untagged), or with `dangling=false` every image no container uses.
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    let all = f.get("dangling").is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "false" | "0")));
    let _no_new_users = d.image_use.write().await;
    let store = d.store.clone();
    let used: std::collections::HashSet<String> = d.all_containers().iter().map(|c| c.record().image_id).collect();
    let (deleted, reclaimed) = blocking(move || {
        let mut out = Vec::new();
        let mut reclaimed: i64 = 0;
        for i in store.list_images().map_err(store_error)? {
            if used.contains(&i.id.to_string()) || (!all && !i.repo_tags.is_empty()) {
                continue;
            }
            for t in &i.repo_tags {
                out.push(views::image::untagged(t));
            }
            let removed = store.remove_image(&i.id).map_err(store_error)?;
            if !removed.is_empty() {
                reclaimed += i.size;
            }
            out.extend(removed.iter().map(|r| views::image::deleted(r)));
        }
        Ok((out, reclaimed))
    })
    .await?;
    Ok(Json(views::image::pruned(deleted, reclaimed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_tags() {
        assert!(glob("busy*", "busybox"));
        assert!(!glob("busy*", "a/busybox"));
        assert!(glob("*/app", "me/app"));
        assert!(reference_matches("busybox", &["busybox:latest".into()]));
        assert!(reference_matches("busybox:1*", &["busybox:1.36".into()]));
        assert_eq!(familiar_tag("busybox"), "busybox:latest");
        assert_eq!(familiar_tag("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(familiar_tag("a:v1"), "a:v1");
    }
}
