//! `/volumes/...`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Daemonic, Query, flag, json_body};
use crate::filters::Filters;
use crate::routes::ApiResult;
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
    Ok((StatusCode::CREATED, Json(volumes::view(&d, &v))).into_response())
}

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let all = volumes::list_filtered(&d, &Filters::from_query(&q)?).await?;
    let out: Vec<Value> = all.iter().map(|v| volumes::view(&d, v)).collect();
    Ok(Json(json!({"Volumes": out, "Warnings": []})))
}

pub async fn inspect(d: Daemonic, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let v = volumes::get(&d, &name).await?;
    Ok(Json(volumes::view(&d, &v)))
}

pub async fn remove(d: Daemonic, Path(name): Path<String>, q: Query) -> ApiResult<StatusCode> {
    volumes::remove(&d, &name, flag(&q, "force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    Ok(Json(volumes::prune(&d, &Filters::from_query(&q)?).await?))
}
