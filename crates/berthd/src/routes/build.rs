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

/// `POST /build/prune`.
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(build::prune(&d, flag(&q, "all")).await?))
}
