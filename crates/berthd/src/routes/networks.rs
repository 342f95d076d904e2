//! `/networks/...`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use berth_api::Error;
use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use serde_json::Value;

use super::{Daemonic, Query, Version};
use crate::filters::Filters;
use crate::networks;
use crate::routes::ApiResult;
use crate::views;

pub async fn list(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let recs = networks::list(&d, &Filters::from_query(&q)?)?;
    Ok(Json(recs.iter().map(|r| views::network::summary(r, v)).collect()))
}

pub async fn inspect(d: Daemonic, Version(v): Version, Path(id): Path<String>, _q: Query) -> ApiResult<Json<Value>> {
    let rec = d.networks.find(&id)?;
    Ok(Json(views::network::inspect(&rec, &d.networks.users(&rec.id), v)))
}

pub async fn create(d: Daemonic, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NetworkCreateRequest =
        serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    let id = networks::create(&d, req).await?;
    Ok((StatusCode::CREATED, Json(views::network::created(id))))
}

pub async fn remove(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    networks::remove(&d, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn connect(d: Daemonic, Path(id): Path<String>, body: Bytes) -> ApiResult<StatusCode> {
    let req: NetworkConnectRequest =
        serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    let c = d.container(&req.container)?;
    c.record().refuse_holder("connected")?;
    networks::connect(&d, &c, &id, req.endpoint_config, |edit| crate::containers::set_endpoints(&d, &c, edit)).await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(d: Daemonic, Path(id): Path<String>, body: Bytes) -> ApiResult<StatusCode> {
    let req: NetworkDisconnectRequest =
        serde_json::from_slice(&body).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    let c = d.container(&req.container)?;
    c.record().refuse_holder("disconnected")?;
    let force = req.force.unwrap_or(false);
    networks::disconnect(&d, &c, &id, force, |edit| crate::containers::set_endpoints(&d, &c, edit)).await?;
    Ok(StatusCode::OK)
}

pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<Value>> {
    let removed = networks::prune(&d, &Filters::from_query(&q)?).await?;
    Ok(Json(views::network::pruned(removed)))
}
