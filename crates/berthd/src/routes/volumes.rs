//! `/volumes/...`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{Daemonic, Query, Version, flag, json_body};
use crate::filters::Filters;
use crate::routes::ApiResult;
use crate::views;
use crate::volumes::{self, CreateOptions};

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

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let all = volumes::list_filtered(&d, &Filters::from_query(&q)?).await?;
    let out = all.iter().map(|v| views::volume::volume(v, &d.volumes.mountpoint(&v.name), None)).collect();
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

pub async fn prune(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Value>> {
    let mut f = Filters::from_query(&q)?;
    // Before API 1.42 a prune removes every unused volume, named ones too (moby adds `all=true` for those clients).
    if v < crate::views::render::api(42) && !f.contains("all") {
        f.add("all", "true");
    }
    let (deleted, reclaimed) = volumes::prune(&d, &f).await?;
    Ok(Json(views::volume::pruned(deleted, reclaimed)))
}
