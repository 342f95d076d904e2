//! `/volumes/...`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use serde::Deserialize;
use serde_json::Value;

use super::{Daemonic, Query, filters, flag, json_body};
use crate::routes::ApiResult;
use crate::views;
use crate::volumes::{self, CreateOptions, label_matches};

/// The body of `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
struct CreateBody {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Driver", default)]
    driver: Option<String>,
    #[serde(rename = "DriverOpts", default)]
    driver_opts: Option<HashMap<String, String>>,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
}

pub async fn create(d: Daemonic, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body)?;
    let v = volumes::create(
        &d,
        CreateOptions {
            name: b.name.unwrap_or_default(),
            driver: b.driver.unwrap_or_default(),
            options: b.driver_opts.unwrap_or_default(),
            labels: b.labels,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(views::volume::volume(&v, &d.volumes.mountpoint(&v.name), None))).into_response())
}

fn truth(key: &str, v: &str) -> Result<bool, Error> {
    match v {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        _ => Err(Error::InvalidArgument(format!("invalid filter '{key}={v}'"))),
    }
}

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    for k in f.keys() {
        if !matches!(k.as_str(), "dangling" | "driver" | "label" | "name") {
            return Err(Error::InvalidArgument(format!("invalid filter '{k}'")).into());
        }
    }
    let dangling: Option<bool> = match f.get("dangling").and_then(|v| v.first()) {
        Some(v) => Some(truth("dangling", v)?),
        None => None,
    };
    let mut out = Vec::new();
    let mut all = volumes::list(&d).await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    for v in all {
        let labels = v.labels.clone().unwrap_or_default();
        let any = |k: &str, ok: &dyn Fn(&str) -> bool| {
            f.get(k).is_none_or(|vals| vals.is_empty() || vals.iter().any(|x| ok(x)))
        };
        let keep = any("name", &|n| v.name.contains(n))
            && any("driver", &|x| v.driver == x)
            && f.get("label").is_none_or(|vals| vals.iter().all(|l| label_matches(&labels, l)))
            && dangling.is_none_or(|want| volumes::users(&d, &v.name).is_empty() == want);
        if keep {
            out.push(views::volume::volume(&v, &d.volumes.mountpoint(&v.name), None));
        }
    }
    Ok(Json(views::volume::list(out)))
}

pub async fn inspect(d: Daemonic, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let v = volumes::get(&d, &name).await?;
    Ok(Json(views::volume::volume(&v, &d.volumes.mountpoint(&v.name), None)))
}

pub async fn remove(d: Daemonic, Path(name): Path<String>, q: Query) -> ApiResult<StatusCode> {
    volumes::remove(&d, &name, flag(&q, "force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    let mut all = false;
    for (k, vals) in &f {
        match k.as_str() {
            "label" | "label!" => {}
            "all" => {
                for v in vals {
                    all |= truth("all", v)?;
                }
            }
            other => return Err(Error::InvalidArgument(format!("invalid filter '{other}'")).into()),
        }
    }
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (deleted, reclaimed) = volumes::prune(&d, all, &get("label"), &get("label!")).await?;
    Ok(Json(views::volume::pruned(deleted, reclaimed)))
}
