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

/// The create body's fields that bollard's v1.53 models no longer have.
#[derive(serde::Deserialize, Default)]
struct LegacyCreate {
    #[serde(rename = "MacAddress", default)]
    mac_address: Option<String>,
}

pub async fn create(d: Daemonic, Version(v): Version, q: Query, body: Bytes) -> ApiResult<Response> {
    let legacy: LegacyCreate = serde_json::from_slice(&body).unwrap_or_default();
    let mut body: ContainerCreateBody = json_body(&body)?;
    containers::migrate_legacy_mac(&mut body, legacy.mac_address.as_deref(), v)?;
    let id = match q.get("pod").filter(|p| !p.is_empty()) {
        Some(pod) => crate::pods::create_member(&d, pod, q.get("name").cloned(), body).await?,
        None => containers::create(&d, q.get("name").cloned(), body).await?,
    };
    Ok((StatusCode::CREATED, Json(views::container::created(id, Vec::new()))).into_response())
}

pub async fn list(d: Daemonic, Version(v): Version, q: Query) -> ApiResult<Json<Vec<Value>>> {
    let f = Filters::from_query(&q)?;
    f.accept(containers::filter::LIST_FILTERS)?;
    let ancestors = if f.contains("ancestor") { Some(ancestor_ids(&d, f.get("ancestor")).await?) } else { None };
    let ctx = containers::filter::Context::new(&f, |n| Ok(d.container(n)?.record().created), ancestors)?;
    // Podman's `pod` filter: the members of the pods it names (by name or ID).
    let mut pods = None;
    if f.contains("pod") {
        let mut ids = std::collections::HashSet::new();
        for p in f.get("pod") {
            if let Ok(pod) = crate::pods::find(&d, p).await {
                ids.insert(pod.id);
            }
        }
        pods = Some(ids);
    }
    let all = flag(&q, "all");
    let size = flag(&q, "size");
    let limit: Option<usize> =
        q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let mut recs: Vec<Record> = d.all_containers().iter().map(|c| c.record()).collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let mut out = Vec::new();
    let now = SystemTime::now();
    // A pod's namespace holder is not listed (it is the pod's, `/berth/pods`).
    for r in recs.into_iter().filter(|r| r.holder_of().is_none()) {
        // Docker lists a restarting container with the running ones.
        let running = matches!(
            r.state.status,
            containers::Status::Running | containers::Status::Paused | containers::Status::Restarting
        );
        // A `status` filter lists stopped containers too; `exited` alone does not (Docker 20.10).
        if !all && limit.is_none() && !running && !f.contains("status") {
            continue;
        }
        if !containers::filter::matches(&r, &f, &ctx) {
            continue;
        }
        if pods.as_ref().is_some_and(|ids| r.pod().is_none_or(|p| !ids.contains(p))) {
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

/// The image IDs an `ancestor` filter stands for: each image it names (by name, `name:tag`, ID or digest; one that
/// does not exist is passed over, as Docker does) and the images built on them.
async fn ancestor_ids(d: &crate::daemon::Daemon, names: &[String]) -> Result<std::collections::HashSet<String>, Error> {
    let mut roots = Vec::new();
    for n in names {
        if let Ok(i) = crate::images::local::resolve(d, n).await {
            roots.push((i.id.to_string(), i.layers));
        }
    }
    if roots.is_empty() {
        return Ok(Default::default());
    }
    let store = d.store.clone();
    let all = crate::task::blocking(move || store.list_images().map_err(crate::daemon::store_error)).await?;
    let all: Vec<_> = all.into_iter().map(|i| (i.id.to_string(), i.layers)).collect();
    Ok(containers::filter::descendants(&roots, &all))
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
    c.record().refuse_holder("stopped")?;
    containers::stop(&d, &c, timeout(&q)?, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let signal = q.get("signal").filter(|s| !s.is_empty());
    if let Some(s) = signal
        && let Err(e @ crate::error::Error::InvalidArgument(_)) = containers::parse_signal(s)
    {
        return Err(e.into());
    }
    // dockerd names the container as the client did in every other failure of a kill.
    let cannot = |e: crate::error::Error| -> crate::error::Error {
        use crate::error::Error as E;
        let m = format!("Cannot kill container: {id}: {e}");
        match e {
            E::NotFound(_) => E::NotFound(m),
            E::Conflict(_) => E::Conflict(m),
            E::InvalidArgument(_) => E::InvalidArgument(m),
            _ => E::Internal(m),
        }
    };
    let c = d.container(&id).map_err(cannot)?;
    c.record().refuse_holder("killed")?;
    containers::kill(&d, &c, signal.cloned()).await.map_err(cannot)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    c.record().refuse_holder("restarted")?;
    containers::restart(&d, &c, timeout(&q)?, q.get("signal").cloned()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    c.record().refuse_holder("paused")?;
    containers::pause(&d, &c, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(d: Daemonic, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    c.record().refuse_holder("unpaused")?;
    containers::pause(&d, &c, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(d: Daemonic, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    c.record().refuse_holder("updated")?;
    let body: Value = json_body(&body)?;
    let warnings = containers::update(&d, &c, &body).await?;
    Ok(Json(views::container::updated(warnings)))
}

pub async fn rename(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    let c = d.container(&id)?;
    c.record().refuse_holder("renamed")?;
    let name =
        q.get("name").filter(|n| !n.is_empty()).ok_or_else(|| Error::InvalidArgument("name is required".into()))?;
    containers::rename(&d, &c, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(d: Daemonic, Path(id): Path<String>, q: Query) -> ApiResult<StatusCode> {
    if flag(&q, "link") {
        containers::remove_link(&d, &id).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let c = d.container(&id)?;
    containers::remove(&d, &c, flag(&q, "force"), flag(&q, "v")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{parent}/{alias}?link=1`: `docker rm --link /parent/alias`. Without `link`, the name
/// `parent/alias` is no container's.
pub async fn remove_link(d: Daemonic, Path((id, alias)): Path<(String, String)>, q: Query) -> ApiResult<StatusCode> {
    let name = format!("{id}/{alias}");
    if !flag(&q, "link") {
        return Err(Error::NotFound(format!("No such container: {name}")).into());
    }
    containers::remove_link(&d, &name).await?;
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

/// `POST /containers/{id}/attach`: the hijacked streams of a container. `logs` sends what it wrote so far first;
/// `stream` then follows it live: at once when it runs, else from its next start (Docker lets clients attach
/// before `start`). On a TTY, the `detachKeys` sequence (default `ctrl-p,ctrl-q`) in the input ends the attach
/// and leaves the container running (event `detach`), as Docker's.
pub async fn attach(d: Daemonic, Path(id): Path<String>, q: Query, mut req: Request<Body>) -> ApiResult<Response> {
    let detach_spec = q.get("detachKeys").map(String::as_str).unwrap_or("");
    let Some(keys) = crate::hijack::parse_detach_keys(detach_spec) else {
        return Err(Error::InvalidArgument(format!("Invalid detach keys ({detach_spec}) provided")).into());
    };
    let c = d.container(&id)?;
    let rec = c.record();
    let tty = rec.config.tty.unwrap_or(false);
    let streams = AttachStreams {
        stdin: flag(&q, "stdin") && rec.config.open_stdin.unwrap_or(false),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
    };
    let (logs, stream) = (flag(&q, "logs"), flag(&q, "stream"));
    if !stream && !logs {
        return Err(Error::InvalidArgument("Bad parameters: you must choose at least one stream".into()).into());
    }
    match rec.state.status {
        containers::Status::Paused => {
            return Err(
                Error::Conflict(format!("container {id} is paused, unpause the container before attach")).into()
            );
        }
        containers::Status::Restarting => {
            return Err(
                Error::Conflict(format!("container {id} is restarting, wait until the container is running")).into()
            );
        }
        _ => {}
    }
    let log_opts = crate::logs::LogOptions {
        stdout: streams.stdout,
        stderr: streams.stderr,
        follow: false,
        since: None,
        until: None,
        timestamps: false,
        tail: None,
        raw: tty,
    };
    let log_policy = crate::logs::policy_of(&rec.host_config)?;
    let log_readable = crate::logs::check_readable(&rec.host_config).is_ok();
    let (resp, on_upgrade) = crate::hijack::upgrade(&mut req, tty)?;
    // Registered before the 101 goes out: the client's `start` that follows it must find this attach.
    let target = if stream { Some(containers::attach_target(&c, streams).await) } else { None };
    let d = d.0.clone();
    tokio::spawn(async move {
        let client = match on_upgrade.await {
            Ok(u) => crate::hijack::settle(u).await,
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let (mut cr, mut cw) = tokio::io::split(client);
        if logs && log_readable && (streams.stdout || streams.stderr) {
            let mut rx = crate::logs::stream(c.clone(), containers::log_path(&d, &c.id), &log_policy, log_opts);
            while let Some(chunk) = rx.recv().await {
                if cw.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        let Some(target) = target else {
            let _ = cw.shutdown().await;
            return;
        };
        c.publish(&d.events, "attach", &[]);
        let shim = match containers::attach(&d, &c, target, streams).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                let _ = cw.shutdown().await;
                return;
            }
            Err(e) => {
                let _ = cw.write_all(format!("{e}\n").as_bytes()).await;
                return;
            }
        };
        let (shim_r, mut shim_w) = shim.into_split();
        // Docker watches for the detach sequence in a TTY's attached input only.
        let keys = (tty && streams.stdin).then_some(keys);
        let input = async move {
            let end = if streams.stdin {
                crate::hijack::copy_input(&mut cr, &mut shim_w, keys).await
            } else {
                // Not forwarding stdin; still notice when the client goes away.
                crate::hijack::copy_input(&mut cr, &mut tokio::io::sink(), keys).await
            };
            if end.is_ok_and(|e| e == crate::hijack::InputEnd::Detached) {
                // The relay ends here (the shim keeps the container's stdin open: a TTY's stdin is never closed by
                // an attach ending, as Docker's).
                return true;
            }
            let _ = shim_w.shutdown().await;
            std::future::pending::<bool>().await
        };
        let output = async move {
            let _ = crate::hijack::copy_frames(shim_r, &mut cw, tty).await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = output => {}
            detached = input => {
                if detached {
                    c.publish(&d.events, "detach", &[]);
                }
            }
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

/// `POST /commit?container=...`: the container's writable layer as a new image (`docker commit`).
pub async fn commit(d: Daemonic, q: Query, req: Request<Body>) -> ApiResult<Response> {
    let name = q.get("container").cloned().unwrap_or_default();
    let c = d.container(&name)?;
    c.record().refuse_holder("committed")?;
    let reference = q.get("repo").filter(|r| !r.is_empty()).map(|r| match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{r}:{t}"),
        None => r.clone(),
    });
    // Docker pauses by default from API 1.13 on (older versions are not accepted).
    let pause = match q.get("pause").map(String::as_str) {
        None | Some("") => true,
        Some(_) => flag(&q, "pause"),
    };
    let changes = super::change_lines(req.uri());
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .map_err(|e| Error::InvalidArgument(format!("reading the body: {e}")))?;
    let config: Option<Value> = json_body(&body)?;
    let opts = crate::commit::CommitOptions {
        reference,
        author: q.get("author").cloned().unwrap_or_default(),
        comment: q.get("comment").cloned().unwrap_or_default(),
        changes,
        pause,
        config,
    };
    let id = crate::commit::commit(&d, &c, opts).await?;
    Ok((StatusCode::CREATED, Json(views::container::committed(id))).into_response())
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub async fn changes(d: Daemonic, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let c = d.container(&id)?;
    let list = crate::commit::changes(&d, &c).await?;
    Ok(Json(views::container::changes(&list)))
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
    d.events.publish_prune("container", reclaimed);
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
