//! `POST /build` (the classic builder's endpoint) and `POST /build/prune`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use berth_api::Error;
use serde_json::Value;

use super::{Daemonic, Query, flag};
use crate::build;
use crate::routes::ApiResult;

fn json_map<T: serde::de::DeserializeOwned>(q: &Query, key: &str) -> Result<BTreeMap<String, T>, Error> {
    match q.get(key).filter(|v| !v.is_empty()) {
        Some(v) => serde_json::from_str(v).map_err(|e| Error::InvalidArgument(format!("invalid {key}: {e}"))),
        None => Ok(BTreeMap::new()),
    }
}

/// `POST /build`: the body is the context (a tar); the answer streams the build's messages.
pub async fn build(d: Daemonic, q: Query, req: Request<Body>) -> ApiResult<Response> {
    let tags: Vec<String> = super::query_values(req.uri(), "t").into_iter().filter(|t| !t.is_empty()).collect();
    for t in &tags {
        let r = berth_store::Reference::parse(t).map_err(crate::daemon::store_error)?;
        if r.digest().is_some() {
            return Err(Error::InvalidArgument(format!("invalid tag {t}: a tag cannot carry a digest")).into());
        }
    }
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "remote build contexts ({r}) are not supported: send the context as the body"
        ))
        .into());
    }
    let opts = build::Options {
        tags,
        dockerfile: q.get("dockerfile").cloned().unwrap_or_default(),
        build_args: json_map::<Option<String>>(&q, "buildargs")?,
        target: q.get("target").cloned().filter(|t| !t.is_empty()),
        labels: json_map::<String>(&q, "labels")?,
        no_cache: flag(&q, "nocache"),
        pull: flag(&q, "pull"),
        quiet: flag(&q, "q"),
        network: q.get("networkmode").cloned().filter(|n| !n.is_empty()),
        platform: q.get("platform").cloned().filter(|p| !p.is_empty()),
        extra_hosts: super::query_values(req.uri(), "extrahosts").into_iter().filter(|h| !h.is_empty()).collect(),
        cache_from: match q.get("cachefrom").filter(|c| !c.is_empty()) {
            Some(v) => {
                serde_json::from_str(v).map_err(|e| Error::InvalidArgument(format!("invalid cachefrom: {e}")))?
            }
            None => Vec::new(),
        },
        kept_context: match q.get("berthcontext").filter(|k| !k.is_empty()) {
            Some(k) => {
                build::kept::check_key(k)?;
                Some(k.clone())
            }
            None => None,
        },
    };
    let (body, drained) = super::body_reader(req.into_body());
    let prep = drained.then(build::prepare(&d, &opts, body).await).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let out = build::Out::new(tx, opts.quiet);
    let d2 = d.0.clone();
    tokio::spawn(async move {
        if let Err(e) = build::run(d2, opts, prep, out.clone()).await {
            out.error(&e.to_string());
        }
    });
    Ok(super::json_stream(rx))
}

/// `POST /berth/build/context?key=K`: the body is the context's file list (`berth_api::build_context::Manifest`);
/// the answer names the regular files the kept context lacks (`Need`).
pub async fn context(d: Daemonic, q: Query, req: Request<Body>) -> ApiResult<axum::Json<Value>> {
    let key = q.get("key").cloned().unwrap_or_default();
    build::kept::check_key(&key)?;
    let raw = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .map_err(|e| Error::InvalidArgument(format!("read the file list: {e}")))?;
    let m: berth_api::build_context::Manifest =
        serde_json::from_slice(&raw).map_err(|e| Error::InvalidArgument(format!("invalid file list: {e}")))?;
    let data_root = d.config.data_root.clone();
    let need = crate::task::blocking(move || build::kept::need(&data_root, &key, &m)).await?;
    Ok(axum::Json(serde_json::to_value(need).map_err(|e| Error::Internal(e.to_string()))?))
}

/// `POST /build/prune`.
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(build::prune(&d, flag(&q, "all")).await?))
}
