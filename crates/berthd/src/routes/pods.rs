//! `/berth/pods/...`: Berth's pod endpoints (Podman's pods; see `crate::pods`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Daemonic, Query, flag, json_body};
use crate::filters::Filters;
use crate::pods::{self, PodSpec};
use crate::routes::ApiResult;
use crate::views;

fn timeout(q: &Query) -> Result<Option<i64>, berth_api::Error> {
    q.get("t")
        .or_else(|| q.get("timeout"))
        .map(|t| t.parse::<i64>().map_err(|_| berth_api::Error::InvalidArgument(format!("invalid value for t: {t}"))))
        .transpose()
}

pub async fn create(d: Daemonic, body: Bytes) -> ApiResult<Response> {
    let spec: PodSpec = json_body(&body)?;
    let id = pods::create(&d, spec).await?;
    Ok((StatusCode::CREATED, Json(views::pod::created(id))).into_response())
}

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    Ok(Json(pods::list(&d, &f).await?.iter().map(views::pod::pod).collect()))
}

pub async fn inspect(d: Daemonic, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let pod = pods::find(&d, &id).await?;
    Ok(Json(views::pod::pod(&pods::state(&d, pod))))
}

pub async fn start(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    pods::start(&d, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    pods::stop(&d, &id, timeout(&q)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    pods::restart(&d, &id, timeout(&q)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    pods::kill(&d, &id, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    pods::remove(&d, &id, flag(&q, "force")).await?;
    Ok(StatusCode::NO_CONTENT)
}
