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

use super::{Daemonic, Query, flag, json_body};
use crate::containers::{self, AttachStreams, Record, WaitCondition};
use crate::filters::Filters;
use crate::routes::ApiResult;

pub async fn create(d: Daemonic, q: Query, body: Bytes) -> ApiResult<Response> {
    let body: ContainerCreateBody = json_body(&body)?;
    let id = containers::create(&d, q.get("name").cloned(), body).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response())
}

/// The filters `GET /containers/json` accepts (Docker's).
const LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
/// The filters `POST /containers/prune` accepts (Docker's).
const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// Whether `port` (`80/tcp`) is in a `publish`/`expose` filter value: `port[/proto]` or `first-last[/proto]` (tcp
/// when no protocol is given).
fn port_in(filter: &str, port: &str) -> Result<bool, Error> {
    let bad = || Error::InvalidArgument(format!("invalid filter value: {filter}"));
    let (range, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let (first, last): (u16, u16) = (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
    let (p, pproto) = port.split_once('/').unwrap_or((port, "tcp"));
    Ok(pproto == proto && p.parse::<u16>().is_ok_and(|p| first <= p && p <= last))
}

/// `GET /containers/json` filters for one container; `before`/`since` are the creation times of the containers
/// they name.
fn matches(rec: &Record, f: &Filters, before: Option<&str>, since: Option<&str>) -> Result<bool, Error> {
    for v in f.get("status") {
        if !["created", "restarting", "running", "removing", "paused", "exited", "dead"].contains(&v.as_str()) {
            return Err(Error::InvalidArgument(format!("invalid filter 'status={v}'")));
        }
    }
    for v in f.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            return Err(Error::InvalidArgument(format!("Unrecognised filter value for health: {v}")));
        }
    }
    let health = rec.state.health.as_ref().map_or("none", |h| h.status.as_str());
    let exposed: Vec<&String> = rec.config.exposed_ports.iter().flatten().collect();
    let bindings = rec.host_config.port_bindings.iter().flatten();
    let published: Vec<String> = bindings
        .flat_map(|(k, v)| {
            let proto = k.split_once('/').map_or("tcp", |(_, p)| p).to_string();
            v.iter().flatten().filter_map(move |b| b.host_port.as_ref().map(|h| format!("{h}/{proto}")))
        })
        .collect();
    let any_port = |key: &str, ports: &[&String]| -> Result<bool, Error> {
        for v in f.get(key) {
            for p in ports {
                if port_in(v, p)? {
                    return Ok(true);
                }
            }
        }
        Ok(f.get(key).is_empty())
    };
    let exposed_or_bound: Vec<&String> =
        exposed.iter().copied().chain(rec.host_config.port_bindings.iter().flat_map(|m| m.keys())).collect();
    Ok(f.any("status", |v| v == rec.state.status.as_str())
        && f.any("name", |v| rec.name.contains(v.trim_start_matches('/')))
        && f.any("id", |v| rec.id.starts_with(v))
        && f.match_kv("label", rec.config.labels.as_ref().unwrap_or(&HashMap::new()))
        && f.any("exited", |v| {
            v.parse::<i64>().ok() == Some(rec.state.exit_code) && rec.state.status == containers::Status::Exited
        })
        && f.any("ancestor", |v| {
            rec.image == v || rec.image_id == v || rec.image_id.trim_start_matches("sha256:").starts_with(v)
        })
        && f.any("network", |v| {
            rec.host_config.network_mode.as_deref() == Some(v)
                || rec.net.endpoints.iter().any(|e| e.network == v || e.network_id.starts_with(v))
        })
        && f.any("volume", |v| rec.mounts.iter().any(|m| m.name == v || m.destination == v))
        && f.any("health", |v| v == health)
        && f.bool("is-task")? != Some(true)
        && f.any("isolation", |v| v == "default")
        && before.is_none_or(|b| rec.created.as_str() < b)
        && since.is_none_or(|s| rec.created.as_str() > s)
        && any_port("expose", &exposed_or_bound)?
        && any_port("publish", &published.iter().collect::<Vec<_>>())?)
}

pub async fn list(d: Daemonic, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    f.accept(LIST_FILTERS)?;
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
        let running = matches!(r.state.status, containers::Status::Running | containers::Status::Paused);
        if !all && limit.is_none() && !running && !f.contains("status") && !f.contains("exited") {
            continue;
        }
        if !matches(&r, &f, before.as_deref(), since.as_deref())? {
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
    let f = Filters::from_query(&q)?;
    f.accept(PRUNE_FILTERS)?;
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
    Ok(Json(serde_json::json!({
        "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { serde_json::json!(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, created: &str, status: &str, extra: Value) -> Record {
        let mut v = json!({
            "id": format!("{name}0123456789"), "name": format!("/{name}"), "created": created,
            "image": "busybox", "image_id": "sha256:abc", "path": "sh", "args": [],
            "config": {"Labels": {"tier": "web"}, "ExposedPorts": {"80/tcp": {}}},
            "host_config": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
            "state": {"status": status, "pid": 0, "exit_code": 0, "error": "", "started_at": "", "finished_at": "",
                      "oom_killed": false},
            "restart_count": 0, "runtime": "berth", "lower_dirs": [],
        });
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::from_value(v).expect("record")
    }

    #[test]
    fn list_filters() {
        let a = rec("a", "2026-01-01T00:00:01.000000000Z", "running", json!({}));
        let b = rec("b", "2026-01-01T00:00:02.000000000Z", "exited", json!({"config": {}, "host_config": {}}));
        let m = |r: &Record, f: &str, before: Option<&str>, since: Option<&str>| {
            let f = Filters::parse(f).expect("filters");
            f.accept(LIST_FILTERS).map_err(Error::from).and_then(|()| matches(r, &f, before, since))
        };
        let yes = |r: &Record, f: &str| m(r, f, None, None).expect("valid");
        assert!(yes(&a, r#"{"label":["tier=web"]}"#) && !yes(&b, r#"{"label":["tier"]}"#));
        assert!(yes(&a, r#"{"status":["running"],"name":["a"]}"#) && !yes(&b, r#"{"status":["running"]}"#));
        assert!(yes(&b, r#"{"exited":["0"]}"#) && !yes(&a, r#"{"exited":["0"]}"#));
        assert!(yes(&a, r#"{"health":["none"]}"#) && !yes(&a, r#"{"health":["healthy"]}"#));
        assert!(yes(&a, r#"{"publish":["8080"]}"#) && yes(&a, r#"{"publish":["8000-8100/tcp"]}"#));
        assert!(!yes(&a, r#"{"publish":["80"]}"#) && !yes(&a, r#"{"publish":["8080/udp"]}"#));
        assert!(yes(&a, r#"{"expose":["80"]}"#) && !yes(&b, r#"{"expose":["80"]}"#));
        assert!(yes(&a, r#"{"is-task":["false"],"isolation":["default"]}"#) && !yes(&a, r#"{"is-task":["true"]}"#));
        assert!(
            m(&a, "{}", Some(&b.created), None).expect("before") && !m(&b, "{}", Some(&b.created), None).expect("b")
        );
        assert!(
            m(&b, "{}", None, Some(&a.created)).expect("since") && !m(&a, "{}", None, Some(&a.created)).expect("a")
        );
        let bad = |f: &str| m(&a, f, None, None).expect_err(f).to_string();
        assert_eq!(bad(r#"{"bogus":["1"]}"#), "invalid filter 'bogus'");
        assert_eq!(bad(r#"{"status":["sleeping"]}"#), "invalid filter 'status=sleeping'");
        assert!(bad(r#"{"health":["meh"]}"#).contains("health"));
        assert!(bad(r#"{"publish":["http"]}"#).contains("http"));
    }
}
