//! `/containers/...`.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::Error;
use berth_api::models::ContainerCreateBody;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{Daemonic, Query, filters, flag, json_body};
use crate::containers::{self, AttachStreams, Record, WaitCondition};
use crate::routes::ApiResult;

pub async fn create(d: Daemonic, q: Query, body: Bytes) -> ApiResult<Response> {
    let body: ContainerCreateBody = json_body(&body)?;
    let id = containers::create(&d, q.get("name").cloned(), body).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response())
}

fn matches(rec: &Record, f: &HashMap<String, Vec<String>>) -> Result<bool, Error> {
    for (key, values) in f {
        if values.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "status" => {
                for v in values {
                    if !["created", "restarting", "running", "removing", "paused", "exited", "dead"]
                        .contains(&v.as_str())
                    {
                        return Err(Error::InvalidArgument(format!("invalid filter 'status={v}'")));
                    }
                }
                values.iter().any(|v| v == rec.state.status.as_str())
            }
            "name" => values.iter().any(|v| rec.name.contains(v.trim_start_matches('/'))),
            "id" => values.iter().any(|v| rec.id.starts_with(v.as_str())),
            "label" => values.iter().all(|v| {
                let labels = rec.config.labels.clone().unwrap_or_default();
                match v.split_once('=') {
                    Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
                    None => labels.contains_key(v.as_str()),
                }
            }),
            "exited" => {
                values.iter().any(|v| v.parse::<i64>().ok() == Some(rec.state.exit_code))
                    && rec.state.status == containers::Status::Exited
            }
            "ancestor" => values.iter().any(|v| {
                rec.image == *v
                    || rec.image_id == *v
                    || rec.image_id.trim_start_matches("sha256:").starts_with(v.as_str())
            }),
            "network" => values.iter().any(|v| {
                rec.host_config.network_mode.as_deref() == Some(v.as_str())
                    || rec.net.endpoints.iter().any(|e| e.network == *v || e.network_id.starts_with(v.as_str()))
            }),
            "volume" => values.iter().any(|v| rec.mounts.iter().any(|m| m.name == *v || m.destination == *v)),
            other => return Err(Error::InvalidArgument(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = filters(&q)?;
    let all = flag(&q, "all");
    let size = flag(&q, "size");
    let limit: Option<usize> =
        q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let mut recs: Vec<Record> = d.all_containers().iter().map(|c| c.record()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let mut out = Vec::new();
    let now = SystemTime::now();
    for r in recs {
        let running = matches!(r.state.status, containers::Status::Running | containers::Status::Paused);
        if !all && limit.is_none() && !running && !f.contains_key("status") && !f.contains_key("exited") {
            continue;
        }
        if !matches(&r, &f)? {
            continue;
        }
        let sz = if size { Some(containers::sizes(&d, &r).await) } else { None };
        out.push(containers::summary(&d, &r, now, sz));
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(Json(out))
}

pub async fn inspect(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    let mut v = containers::inspect(&d, &c);
    if flag(&q, "size") {
        let (rw, root) = containers::sizes(&d, &c.record()).await;
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(root);
    }
    Ok(Json(v))
}

pub async fn start(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::start(&d, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn timeout(q: &HashMap<String, String>) -> Result<Option<i64>, Error> {
    q.get("t")
        .or_else(|| q.get("timeout"))
        .map(|t| t.parse::<i64>().map_err(|_| Error::InvalidArgument(format!("invalid value for t: {t}"))))
        .transpose()
}

pub async fn stop(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::stop(&d, &c, timeout(&q)?, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::kill(&d, &c, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::restart(&d, &c, timeout(&q)?, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::pause(&d, &c, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::pause(&d, &c, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    let name =
        q.get("name").filter(|n| !n.is_empty()).ok_or_else(|| Error::InvalidArgument("name is required".into()))?;
    containers::rename(&d, &c, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    containers::remove(&d, &c, flag(&q, "force"), flag(&q, "v")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/wait`: the answer is sent when the condition is met. The status line goes out at once
/// (with a whitespace keep-alive) so that clients know the wait is registered, as Docker does.
pub async fn wait(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let cond = match q.get("condition").map(String::as_str) {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => return Err(Error::InvalidArgument(format!("invalid condition: {other:?}")).into()),
    };
    let stream = async_stream(async move {
        let (code, err) = containers::wait(&c, cond).await;
        let mut v = json!({"StatusCode": code});
        if let Some(e) = err {
            v["Error"] = json!({"Message": e});
        }
        format!("{v}\n")
    });
    Ok(([("content-type", "application/json")], Body::from_stream(stream)).into_response())
}

/// A body that yields one chunk when `fut` completes.
fn async_stream(
    fut: impl std::future::Future<Output = String> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::once(async move { Ok(Bytes::from(fut.await)) })
}

pub async fn resize(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    let dim = |k: &str| -> Result<u16, Error> {
        q.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| Error::InvalidArgument(format!("invalid or missing {k}")))
    };
    containers::resize(&d, &c, dim("h")?, dim("w")?).await?;
    Ok(StatusCode::OK)
}

pub async fn logs(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let rec = c.record();
    let (stdout, stderr) = (flag(&q, "stdout"), flag(&q, "stderr"));
    if !stdout && !stderr {
        return Err(Error::InvalidArgument("Bad parameters: you must choose at least one stream".into()).into());
    }
    crate::logs::check_readable(&rec.host_config)?;
    let now = SystemTime::now();
    let time_param = |k: &str| -> Result<Option<SystemTime>, Error> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => berth_api::time::parse_since(v, now)
                .map(Some)
                .ok_or_else(|| Error::InvalidArgument(format!("invalid value for {k}: {v}"))),
        }
    };
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(t) => {
            Some(t.parse::<usize>().map_err(|_| Error::InvalidArgument(format!("invalid value for tail: {t}")))?)
        }
    };
    let raw = rec.config.tty.unwrap_or(false);
    let opts = crate::logs::LogOptions {
        stdout,
        stderr,
        follow: flag(&q, "follow"),
        since: time_param("since")?,
        until: time_param("until")?,
        timestamps: flag(&q, "timestamps"),
        tail,
        raw,
    };
    let policy = crate::logs::policy_of(&rec.host_config)?;
    let rx = crate::logs::stream(c.clone(), containers::log_path(&d, &c.id), &policy, opts);
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx)) },
        );
    let ct = if raw { berth_api::stream::RAW } else { berth_api::stream::MULTIPLEXED };
    Ok(([("content-type", ct)], Body::from_stream(stream)).into_response())
}

pub async fn attach(d: Daemonic, Path(id): Path<String>, q: Query, mut req: Request<Body>) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let rec = c.record();
    let tty = rec.config.tty.unwrap_or(false);
    let streams = AttachStreams {
        stdin: flag(&q, "stdin") && rec.config.open_stdin.unwrap_or(false),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
    };
    if !flag(&q, "stream") && !flag(&q, "logs") {
        return Err(Error::InvalidArgument("Bad parameters: you must choose at least one stream".into()).into());
    }
    if !matches!(
        rec.state.status,
        containers::Status::Created | containers::Status::Running | containers::Status::Paused
    ) && flag(&q, "stream")
    {
        return Err(Error::Conflict("You cannot attach to a stopped container, start it first".to_string()).into());
    }
    let (resp, on_upgrade) = crate::hijack::upgrade(&mut req, tty)?;
    let d = d.0.clone();
    tokio::spawn(async move {
        let client = match on_upgrade.await {
            Ok(u) => hyper_util::rt::TokioIo::new(u),
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let shim = match containers::attach(&d, &c, streams).await {
            Ok(s) => s,
            Err(e) => {
                let (_, mut w) = tokio::io::split(client);
                let _ = w.write_all(format!("{e}\n").as_bytes()).await;
                return;
            }
        };
        let (shim_r, mut shim_w) = shim.into_split();
        let (mut cr, cw) = tokio::io::split(client);
        let input = async move {
            if streams.stdin {
                let _ = tokio::io::copy(&mut cr, &mut shim_w).await;
            } else {
                // Not forwarding stdin; still notice when the client goes away.
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut cr, &mut sink).await;
            }
            let _ = shim_w.shutdown().await;
            std::future::pending::<()>().await
        };
        let output = async move {
            let mut cw = cw;
            let _ = crate::hijack::copy_frames(shim_r, &mut cw, tty).await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = output => {}
            _ = input => {}
        }
    });
    Ok(resp)
}

pub async fn top(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    Ok(Json(containers::top(&c, q.get("ps_args").map(String::as_str).unwrap_or("")).await?))
}

/// `POST /containers/prune`: removes every stopped container (filters `label`, `label!`, `until`).
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<serde_json::Value>> {
    let f = super::filters(&q)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in d.all_containers() {
        let rec = c.record();
        if c.is_running() || rec.state.status == containers::Status::Removing {
            continue;
        }
        let labels = rec.config.labels.clone().unwrap_or_default();
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        };
        if !f.get("label").is_none_or(|ls| ls.iter().all(has)) || f.get("label!").is_some_and(|ls| ls.iter().any(has)) {
            continue;
        }
        if let Some(us) = f.get("until") {
            let created = berth_api::time::parse(&rec.created);
            let older = us.iter().all(|u| {
                let limit = berth_api::time::parse_since(u, SystemTime::now());
                matches!((created, limit), (Some(c), Some(l)) if c < l)
            });
            if !older {
                continue;
            }
        }
        let size = containers::sizes(&d, &rec).await.0;
        if containers::remove(&d, &c, false, false).await.is_ok() {
            deleted.push(rec.id.clone());
            reclaimed += size;
        }
    }
    Ok(Json(serde_json::json!({
        "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { serde_json::json!(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}

/// `GET /containers/{id}/stats`: `stream` (default true) sends an object a second until the container is removed;
/// `stream=false` one object with `precpu_stats` filled (a second later), `one-shot=true` one at once.
pub async fn stats(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<Response> {
    let c = d.container(&id)?;
    let stream = q.get("stream").is_none_or(|v| v.is_empty() || flag(&q, "stream"));
    let one_shot = flag(&q, "one-shot");
    if stream && one_shot {
        return Err(Error::InvalidArgument("cannot have stream=true and one-shot=true".into()).into());
    }
    let (id, name) = (c.id.clone(), c.name());
    if !stream {
        let frame = crate::stats::once(&c, one_shot).await?;
        return Ok(Json(crate::stats::to_json(&crate::stats::render(&id, &name, &frame))).into_response());
    }
    let body = futures_util::StreamExt::map(crate::stats::samples(c), move |frame| {
        let mut line = crate::stats::to_json(&crate::stats::render(&id, &name, &frame)).to_string();
        line.push('\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok(([("content-type", "application/json")], Body::from_stream(body)).into_response())
}
