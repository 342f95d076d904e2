//! `/containers/{id}/exec` and `/exec/...`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use berth_api::models::{ExecConfig, ExecStartConfig};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{Daemonic, Query, json_body};
use crate::exec;
use crate::routes::ApiResult;
use crate::views;

pub async fn create(d: Daemonic, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let cfg: ExecConfig = json_body(&body)?;
    let id = exec::create(&d, &c, cfg)?;
    Ok((StatusCode::CREATED, Json(views::exec::created(id))).into_response())
}

pub async fn start(d: Daemonic, Path(id): Path<String>, mut req: Request<Body>) -> ApiResult<Response> {
    let inst = exec::get(&d, &id)?;
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| Error::InvalidArgument(format!("read body: {e}")))?;
    let cfg: ExecStartConfig = json_body(&body)?;
    let detach = cfg.detach.unwrap_or(false);
    // The start request's `Tty` (absent: false) decides the framing, whatever the process got at create: raw
    // stdout for true, multiplexed stdout and stderr for false, as dockerd.
    let tty = cfg.tty.unwrap_or(false);
    if detach {
        let (_, child) = exec::start(&d, &inst, true).await?;
        tokio::spawn(async move {
            exec::finish(&d, &inst, child).await;
        });
        return Ok(StatusCode::OK.into_response());
    }
    let (resp, on_upgrade) = crate::hijack::upgrade(&mut req, tty)?;
    let d = d.0.clone();
    tokio::spawn(async move {
        let Ok(conn) = on_upgrade.await else { return };
        let mut conn = hyper_util::rt::TokioIo::new(conn);
        match exec::start(&d, &inst, false).await {
            Ok((io, child)) => {
                let stdin = inst.config.attach_stdin.unwrap_or(false);
                // The create request's `DetachKeys` (dockerd reads none from the start request); checked at create.
                let keys = crate::hijack::parse_detach_keys(inst.config.detach_keys.as_deref().unwrap_or(""));
                let on_detach = || {
                    if let Ok(c) = d.container(&inst.container_id) {
                        c.publish(&d.events, "exec_detach", &[("execID", &inst.id)]);
                    }
                };
                exec::relay(io, conn, stdin, tty, keys, on_detach, async {
                    exec::finish(&d, &inst, child).await;
                })
                .await;
            }
            Err(e) => {
                let msg = format!("{e}\r\n");
                let data = if tty {
                    msg.into_bytes()
                } else {
                    let mut v = berth_api::stream::frame_header(berth_api::stream::STDOUT, msg.len()).to_vec();
                    v.extend(msg.into_bytes());
                    v
                };
                let _ = conn.write_all(&data).await;
                let _ = conn.shutdown().await;
            }
        }
    });
    Ok(resp)
}

pub async fn resize(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let inst = exec::get(&d, &id)?;
    let dim = |k: &str| -> Result<u16, Error> {
        q.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| Error::InvalidArgument(format!("invalid or missing {k}")))
    };
    exec::resize(&inst, dim("h")?, dim("w")?)?;
    Ok(StatusCode::OK)
}

pub async fn inspect(d: Daemonic, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let inst = exec::get(&d, &id)?;
    Ok(Json(views::exec::inspect(&inst)))
}
