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
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{Daemonic, Query, Version, flag, json_body};
use crate::containers::{self, AttachStreams, Record, WaitCondition};
use crate::filters::Filters;
use crate::routes::ApiResult;
use crate::views;

pub async fn create(d: Daemonic, q: Query, body: Bytes) -> ApiResult<Response> {
    let body: ContainerCreateBody = json_body(&body)?;
    let id = containers::create(&d, q.get("name").cloned(), body).await?;
    Ok((StatusCode::CREATED, Json(views::container::created(id, Vec::new()))).into_response())
}

pub async fn list(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    f.accept(containers::filter::LIST_FILTERS)?;
    // With several values the last one counts, as in Docker's walk over them.
    let created = |name: Option<&String>| -> Result<Option<String>, Error> {
        Ok(match name {
            Some(n) => Some(d.container(n)?.record().created),
            None => None,
        })
    };
    let before = created(f.get("before").last())?;
    let since = created(f.get("since").last())?;
    let all = flag(&q, "all");
    let size = flag(&q, "size");
    let limit: Option<usize> =
        q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let mut recs: Vec<Record> = d.all_containers().iter().map(|c| c.record()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let mut out = Vec::new();
    let now = SystemTime::now();
    for r in recs {
        // Docker lists a restarting container with the running ones.
        let running = matches!(
            r.state.status,
            containers::Status::Running | containers::Status::Paused | containers::Status::Restarting
        );
        if !all && limit.is_none() && !running && !f.contains("status") && !f.contains("exited") {
            continue;
        }
        if !containers::filter::matches(&r, &f, before.as_deref(), since.as_deref())? {
            continue;
        }
        let sz = if size { Some(containers::sizes(&d, &r).await) } else { None };
        out.push(views::container::summary(&r, &views::container::Facts::of(&d, &r), now, sz, v));
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(Json(out))
}

pub async fn inspect(d: Daemonic, Version(v): Version, Path(id): Path<String>, q: Query) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    let rec = c.record();
    let size = if flag(&q, "size") { Some(containers::sizes(&d, &rec).await) } else { None };
    Ok(Json(views::container::inspect(&rec, &views::container::Facts::of(&d, &rec), size, v)))
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

pub async fn update(d: Daemonic, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    let body: Value = json_body(&body)?;
    let warnings = containers::update(&d, &c, &body).await?;
    Ok(Json(views::container::updated(warnings)))
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
        format!("{}\n", views::container::waited(code, err))
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
            Ok(s) => {
                c.publish(&d.events, "attach", &[]);
                s
            }
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
    let (titles, processes) = containers::top(&c, q.get("ps_args").map(String::as_str).unwrap_or("")).await?;
    c.publish(&d.events, "top", &[]);
    Ok(Json(views::container::top(titles, processes)))
}

/// `POST /containers/prune`: removes every stopped container (filters `label`, `label!`, `until`).
pub async fn prune(d: Daemonic, q: Query) -> ApiResult<Json<serde_json::Value>> {
    let f = Filters::from_query(&q)?;
    f.accept(containers::filter::PRUNE_FILTERS)?;
    let until = f.time("until", SystemTime::now())?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in d.all_containers() {
        let rec = c.record();
        if c.is_running() || rec.state.status == containers::Status::Removing {
            continue;
        }
        if !f.match_labels(rec.config.labels.as_ref().unwrap_or(&HashMap::new())) {
            continue;
        }
        let created = berth_api::time::parse(&rec.created);
        if until.is_some_and(|u| created.is_none_or(|c| c >= u)) {
            continue;
        }
        let size = containers::sizes(&d, &rec).await.0;
        if containers::remove(&d, &c, false, false).await.is_ok() {
            deleted.push(rec.id.clone());
            reclaimed += size;
        }
    }
    Ok(Json(views::container::pruned(deleted, reclaimed)))
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
        return Ok(Json(views::stats::to_json(&views::stats::render(&id, &name, &frame))).into_response());
    }
    let body = futures_util::StreamExt::map(crate::stats::samples(c), move |frame| {
        let mut line = views::stats::to_json(&views::stats::render(&id, &name, &frame)).to_string();
        line.push('\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok(([("content-type", "application/json")], Body::from_stream(body)).into_response())
}
