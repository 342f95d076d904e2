//! Pods (Podman's, Kubernetes'): containers sharing one network namespace (and IPC, UTS, optionally PID), with one
//! set of published ports.
//!
//! A pod is a store document (`record`) plus its namespace holder: a container of Berth's own, without an image (an
//! empty root file system), whose program is the static `berth-init` in its `--pause` mode. The holder gets the pod's
//! network, published ports, DNS settings and hostname through the container machinery (so live restore, the
//! firewall, port holding, clean-up and the hardening are a container's); members join it with network mode
//! `container:<holder>` and `IpcMode`/`UtsMode`/`PidMode` `container:<holder>`, and carry the label
//! `io.berth.pod=<pod id>`. The holder is labelled `io.berth.pod.infra=<pod id>`, is not listed, publishes no
//! container events and is removed only with its pod. A pod's state is computed from its containers, never stored.

pub mod record;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use serde_json::json;

use crate::containers::{self, Container, PodRole, Status};
use crate::daemon::Daemon;
use crate::error::Error;
use crate::filters::Filters;
use crate::task::blocking;

pub use record::{DEFAULT_SHARE, PodRecord, PodSpec, PodStatus};

/// The filters `GET /berth/pods/json` accepts.
pub const LIST_FILTERS: &[&str] = &["id", "label", "name", "status"];

/// The holder's command: `berth-init --pause`, at the init's place in the container.
const HOLDER_CMD: [&str; 2] = [crate::spec::INIT_IN_CONTAINER, "--pause"];

fn no_such_pod(name: &str) -> Error {
    Error::NotFound(format!("no such pod: {name}"))
}

/// Every pod.
pub async fn all(d: &Daemon) -> Result<Vec<PodRecord>, Error> {
    let store = d.store.clone();
    let docs = blocking(move || store.list_docs(record::DOC_KIND).map_err(Error::from)).await?;
    let mut pods: Vec<PodRecord> = docs.into_iter().filter_map(|v| parse(v).ok()).collect();
    pods.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(pods)
}

/// A pod's document; one that does not parse is logged and returned as its `id` field (if it has one).
fn parse(v: serde_json::Value) -> Result<PodRecord, Option<String>> {
    let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
    serde_json::from_value(v).map_err(|e| {
        tracing::warn!("the pod document {} does not parse, left alone: {e}", id.as_deref().unwrap_or("(no id)"));
        id
    })
}

type Locks = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Per-pod locks: a member's join and create, a pod's start and its removal do not interleave (a member created
/// while its pod is removed would be left in a pod that is gone; two starts of a pod without holder would make two).
static LOCKS: std::sync::LazyLock<Locks> = std::sync::LazyLock::new(Default::default);

fn locks() -> std::sync::MutexGuard<'static, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    match LOCKS.lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    }
}

fn pod_lock(id: &str) -> Arc<tokio::sync::Mutex<()>> {
    locks().entry(id.to_string()).or_default().clone()
}

/// After a pod's removal: a waiter keeps its own handle and finds the pod gone.
fn forget_lock(id: &str) {
    locks().remove(id);
}

/// A pod by full ID, name or unique ID prefix.
pub async fn find(d: &Daemon, name_or_id: &str) -> Result<PodRecord, Error> {
    if name_or_id.is_empty() {
        return Err(no_such_pod(name_or_id));
    }
    let pods = all(d).await?;
    if let Some(p) = pods.iter().find(|p| p.id == name_or_id || p.name == name_or_id) {
        return Ok(p.clone());
    }
    let mut matches = pods.iter().filter(|p| p.id.starts_with(name_or_id));
    match (matches.next(), matches.next()) {
        (Some(p), None) => Ok(p.clone()),
        (Some(_), Some(_)) => Err(Error::NotFound(format!("more than one pod matches {name_or_id}"))),
        _ => Err(no_such_pod(name_or_id)),
    }
}

/// The pod's member containers (not its holder), oldest first.
pub fn members(d: &Daemon, pod: &PodRecord) -> Vec<Arc<Container>> {
    let mut m: Vec<(String, Arc<Container>)> = d
        .all_containers()
        .into_iter()
        .filter_map(|c| {
            let r = c.record();
            (r.pod() == Some(pod.id.as_str())).then_some((r.created, c))
        })
        .collect();
    m.sort_by(|a, b| a.0.cmp(&b.0));
    m.into_iter().map(|(_, c)| c).collect()
}

fn holder(d: &Daemon, pod: &PodRecord) -> Option<Arc<Container>> {
    d.container(&pod.holder).ok().filter(|c| c.record().holder_of() == Some(pod.id.as_str()))
}

fn publish(d: &Daemon, pod: &PodRecord, action: &str) {
    let mut a: std::collections::BTreeMap<String, String> = pod.labels.clone().into_iter().collect();
    a.insert("name".into(), pod.name.clone());
    d.events.publish("pod", action, &pod.id, a);
}

/// Checks a create request and makes the pod's record (without its holder).
fn plan(d: &Daemon, spec: PodSpec, generated: Option<String>) -> Result<PodRecord, Error> {
    let id = crate::names::new_id()?;
    let name = match spec.name.filter(|n| !n.is_empty()) {
        Some(n) => {
            crate::names::validate(&n)
                .map_err(|e| Error::InvalidArgument(e.to_string().replace("container", "pod")))?;
            n
        }
        None => generated.ok_or_else(|| Error::Internal("no name for the pod".into()))?,
    };
    let share = match spec.share {
        Some(s) if !s.is_empty() => {
            let mut out: Vec<String> = Vec::new();
            for ns in s.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
                if !["net", "ipc", "uts", "pid"].contains(&ns) {
                    return Err(Error::InvalidArgument(format!(
                        "invalid kernel namespace to share: {ns} (net, ipc, uts and pid can be shared)"
                    )));
                }
                if !out.iter().any(|o| o == ns) {
                    out.push(ns.to_string());
                }
            }
            if !out.iter().any(|o| o == "net") {
                return Err(Error::InvalidArgument("a pod always shares its network namespace: add net".into()));
            }
            out
        }
        _ => DEFAULT_SHARE.iter().map(|s| s.to_string()).collect(),
    };
    let network = match spec.network.as_deref().unwrap_or("") {
        "" | "default" => crate::networks::DEFAULT_BRIDGE.to_string(),
        n if n.starts_with("container:") => {
            return Err(Error::InvalidArgument("a pod cannot join another container's network".into()));
        }
        n => n.to_string(),
    };
    if !matches!(network.as_str(), "host" | "none") {
        // The pod API's 400, not a 404: the network is one of the request's fields.
        d.networks.find(&network).map_err(|_| Error::InvalidArgument(format!("network {network} not found")))?;
    }
    let port_bindings = spec.port_bindings.unwrap_or_default();
    let publishes = port_bindings.values().any(|v| v.as_ref().is_some_and(|v| !v.is_empty()));
    if publishes && matches!(network.as_str(), "host" | "none") {
        return Err(Error::InvalidArgument(format!("a pod on network {network} cannot publish ports")));
    }
    let hostname = spec.hostname.filter(|h| !h.is_empty()).unwrap_or_else(|| name.clone());
    if network == "host" && hostname != name {
        return Err(Error::InvalidArgument("a pod on the host's network has the host's hostname".into()));
    }
    Ok(PodRecord {
        id,
        name,
        created: berth_api::time::now(),
        labels: spec.labels.unwrap_or_default(),
        share,
        hostname,
        network,
        port_bindings,
        dns: spec.dns.unwrap_or_default(),
        extra_hosts: spec.extra_hosts.unwrap_or_default(),
        holder: String::new(),
    })
}

/// The holder's create request: `berth-init --pause` with the pod's network, ports, DNS and hostname, no
/// capabilities, no new privileges, a read-only root.
fn holder_body(pod: &PodRecord) -> ContainerCreateBody {
    let user_network = !matches!(pod.network.as_str(), "bridge" | "host" | "none");
    let networking_config = user_network.then(|| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            pod.network.clone(),
            EndpointSettings { aliases: Some(vec![pod.name.clone()]), ..Default::default() },
        )])),
    });
    let exposed: Vec<String> = pod.port_bindings.keys().cloned().collect();
    ContainerCreateBody {
        image: Some("berth-pod-holder".into()),
        entrypoint: Some(HOLDER_CMD.iter().map(|s| s.to_string()).collect()),
        cmd: Some(Vec::new()),
        hostname: (pod.network != "host").then(|| pod.hostname.clone()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            network_mode: Some(pod.network.clone()),
            port_bindings: (!pod.port_bindings.is_empty()).then(|| pod.port_bindings.clone()),
            dns: (!pod.dns.is_empty()).then(|| pod.dns.clone()),
            extra_hosts: (!pod.extra_hosts.is_empty()).then(|| pod.extra_hosts.clone()),
            init: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            pids_limit: Some(32),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    }
}

/// Creates a pod's namespace holder (not started). Returns its ID.
async fn create_holder(d: &Arc<Daemon>, pod: &PodRecord) -> Result<String, Error> {
    let image =
        containers::BuildImage { id: String::new(), config: json!({}), lower_dirs: vec![d.store.empty_layer_dir()] };
    let name = Some(format!("{}-infra", &pod.id[..12]));
    containers::create_in_pod(d, name, holder_body(pod), Some(image), PodRole::Holder(pod.id.clone())).await
}

async fn save(d: &Daemon, pod: &PodRecord) -> Result<(), Error> {
    let store = d.store.clone();
    let doc = serde_json::to_value(pod).map_err(|e| Error::Internal(e.to_string()))?;
    let (id, name) = (pod.id.clone(), pod.name.clone());
    blocking(move || store.put_doc(record::DOC_KIND, &id, Some(&name), &doc).map_err(Error::from)).await
}

/// Creates a pod and its (stopped) namespace holder. Returns the pod's ID.
pub async fn create(d: &Arc<Daemon>, spec: PodSpec) -> Result<String, Error> {
    let generated = match spec.name.as_deref() {
        Some(n) if !n.is_empty() => None,
        _ => Some(generate_name(d).await?),
    };
    let mut pod = plan(d, spec, generated)?;
    let taken = |name: &str| Error::Conflict(format!("name \"{name}\" is in use: pod already exists"));
    if name_in_use(d, &pod.name).await? {
        return Err(taken(&pod.name));
    }
    // The holder first: a crash before the record leaves a holder without a pod, which start-up removes.
    pod.holder = create_holder(d, &pod).await?;
    berth_store::fault::point("pod.create-after-holder");
    if let Err(e) = save(d, &pod).await {
        if let Ok(h) = d.container(&pod.holder) {
            let _ = containers::remove_any(d, &h, true, true).await;
        }
        return Err(if e.is_conflict() { taken(&pod.name) } else { e });
    }
    publish(d, &pod, "create");
    Ok(pod.id)
}

async fn name_in_use(d: &Daemon, name: &str) -> Result<bool, Error> {
    let (store, name) = (d.store.clone(), name.to_string());
    Ok(blocking(move || store.id_by_name(record::DOC_KIND, &name).map_err(Error::from)).await?.is_some())
}

/// A name for an unnamed pod, made again (as a container's) while it is taken.
async fn generate_name(d: &Daemon) -> Result<String, Error> {
    let store = d.store.clone();
    blocking(move || crate::names::generate_unique("pod", |n| Ok(store.id_by_name(record::DOC_KIND, n)?.is_some())))
        .await
}

/// Creates a container (`POST /containers/create?pod=`) in `pod_ref`'s namespaces, labelled `io.berth.pod=<pod id>`,
/// under the pod's lock (a removal of the pod waits for it, or it finds the pod gone). Returns its ID.
pub async fn create_member(
    d: &Arc<Daemon>,
    pod_ref: &str,
    name: Option<String>,
    mut body: ContainerCreateBody,
) -> Result<String, Error> {
    // Not a 404: the docker CLI takes a 404 from create for a missing image and tries to pull it.
    let gone = |e: Error| Error::InvalidArgument(e.to_string());
    let pod = find(d, pod_ref).await.map_err(gone)?;
    let lock = pod_lock(&pod.id);
    let _guard = lock.lock().await;
    let pod = find(d, &pod.id).await.map_err(gone)?;
    join(d, &pod, &mut body).await?;
    containers::create_in_pod(d, name, body, None, PodRole::Member(pod.id.clone())).await
}

/// Makes a container's create request join `pod`'s namespaces: Podman's refusals of its own network (400),
/// network mode `container:<holder>` (and IPC, UTS, PID as the pod shares them).
async fn join(d: &Arc<Daemon>, pod: &PodRecord, body: &mut ContainerCreateBody) -> Result<(), Error> {
    let holder = ensure_holder(d, pod).await?;
    let host = body.host_config.get_or_insert_with(Default::default);
    let conflict = |what: &str| {
        Error::InvalidArgument(format!(
            "invalid config provided: {what} cannot be set for a container in a pod: it is the pod's (set it at pod \
             create)"
        ))
    };
    if host.network_mode.as_deref().is_some_and(|m| !matches!(m, "" | "default")) {
        return Err(conflict("the network mode"));
    }
    // The CLIs name the default network in `EndpointsConfig` (`default`) when no network was asked for.
    let own_networks = body.networking_config.take().and_then(|n| n.endpoints_config).unwrap_or_default();
    if own_networks.keys().any(|k| !matches!(k.as_str(), "default" | "bridge")) {
        return Err(conflict("networks"));
    }
    let target = format!("container:{holder}");
    // Its own ports, hostname and DNS settings are refused by the create's checks of a `container:` network mode.
    host.network_mode = Some(target.clone());
    for (ns, mode) in [("ipc", &mut host.ipc_mode), ("uts", &mut host.uts_mode), ("pid", &mut host.pid_mode)] {
        if !pod.shares(ns) {
            continue;
        }
        if mode.as_deref().is_some_and(|m| m == "host" || m.starts_with("container:")) {
            return Err(conflict(&format!("the {ns} namespace")));
        }
        *mode = Some(target.clone());
    }
    Ok(())
}

/// The pod's holder (its caller holds the pod's lock): one a crash left unrecorded (made, then the save cut short)
/// is adopted, else one is made again (a pod whose holder's removal a crash cut short).
async fn ensure_holder(d: &Arc<Daemon>, pod: &PodRecord) -> Result<String, Error> {
    if let Some(h) = holder(d, pod) {
        return Ok(h.id.clone());
    }
    let mut pod = pod.clone();
    let unrecorded = d.all_containers().into_iter().find(|c| c.record().holder_of() == Some(pod.id.as_str()));
    pod.holder = match unrecorded {
        Some(c) => c.id.clone(),
        None => create_holder(d, &pod).await?,
    };
    save(d, &pod).await?;
    Ok(pod.holder)
}

/// What a pod's inspect and list show.
pub struct PodState {
    pub pod: PodRecord,
    pub status: PodStatus,
    pub holder_pid: i64,
    pub ip: String,
    /// Its members: ID, name, state.
    pub containers: Vec<(String, String, Status)>,
}

pub fn state(d: &Daemon, pod: PodRecord) -> PodState {
    let h = holder(d, &pod).map(|h| h.record());
    let members: Vec<_> = members(d, &pod).iter().map(|c| c.record()).collect();
    let mut states: Vec<Status> = members.iter().map(|r| r.state.status).collect();
    states.extend(h.iter().map(|h| h.state.status));
    let running = h.as_ref().is_some_and(|h| matches!(h.state.status, Status::Running | Status::Paused));
    PodState {
        status: PodStatus::of(&states),
        holder_pid: h.as_ref().filter(|_| running).map_or(0, |h| h.state.pid),
        ip: h
            .as_ref()
            .filter(|_| running)
            .and_then(|h| h.net.endpoints.first().and_then(|e| e.ip))
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        containers: members.into_iter().map(|r| (r.id, r.name, r.state.status)).collect(),
        pod,
    }
}

/// The pods `filters` selects (`id` prefix, `name` regular expression, `label`, `status`).
pub async fn list(d: &Daemon, f: &Filters) -> Result<Vec<PodState>, Error> {
    f.accept(LIST_FILTERS)?;
    let names: Vec<regex::Regex> = f
        .get("name")
        .iter()
        .map(|n| regex::Regex::new(n).map_err(|e| Error::InvalidArgument(format!("invalid name filter {n}: {e}"))))
        .collect::<Result<_, _>>()?;
    for s in f.get("status") {
        if !["created", "running", "degraded", "exited", "stopped", "paused", "dead"]
            .contains(&s.to_lowercase().as_str())
        {
            return Err(Error::InvalidArgument(format!("invalid pod status filter: {s}")));
        }
    }
    let mut out = Vec::new();
    for pod in all(d).await? {
        if f.contains("id") && !f.any("id", |i| pod.id.starts_with(i)) {
            continue;
        }
        if !names.is_empty() && !names.iter().any(|r| r.is_match(&pod.name)) {
            continue;
        }
        if !f.match_labels(&pod.labels) {
            continue;
        }
        let st = state(d, pod);
        if f.contains("status") && !f.any("status", |s| s.eq_ignore_ascii_case(st.status.as_str())) {
            continue;
        }
        out.push(st);
    }
    Ok(out)
}

/// Collects the first error of several operations on a pod's containers, which all run.
fn first_error(results: Vec<Result<(), Error>>) -> Result<(), Error> {
    results.into_iter().find_map(Result::err).map_or(Ok(()), Err)
}

/// Starts the holder, then every member that is not running.
pub async fn start(d: &Arc<Daemon>, pod_ref: &str) -> Result<(), Error> {
    let pod = find(d, pod_ref).await?;
    let lock = pod_lock(&pod.id);
    let _guard = lock.lock().await;
    let pod = find(d, &pod.id).await?;
    start_pod(d, &pod).await?;
    publish(d, &pod, "start");
    Ok(())
}

async fn start_pod(d: &Arc<Daemon>, pod: &PodRecord) -> Result<(), Error> {
    let h = ensure_holder(d, pod).await?;
    let h = d.container(&h)?;
    match containers::start(d, &h).await {
        Ok(()) | Err(Error::NotModified(_)) => {}
        Err(e) => return Err(e),
    }
    let starts = members(d, pod).into_iter().map(|c| {
        let d = d.clone();
        async move {
            match containers::start(&d, &c).await {
                Ok(()) | Err(Error::NotModified(_)) => Ok(()),
                Err(e) => Err(Error::Conflict(format!("starting {}: {e}", c.name()))),
            }
        }
    });
    first_error(futures_util::future::join_all(starts).await)
}

/// Stops every member (at once, each with `timeout`), then the holder.
pub async fn stop(d: &Arc<Daemon>, pod_ref: &str, timeout: Option<i64>) -> Result<(), Error> {
    let pod = find(d, pod_ref).await?;
    let lock = pod_lock(&pod.id);
    let _guard = lock.lock().await;
    let pod = find(d, &pod.id).await?;
    stop_pod(d, &pod, timeout).await?;
    publish(d, &pod, "stop");
    Ok(())
}

async fn stop_pod(d: &Arc<Daemon>, pod: &PodRecord, timeout: Option<i64>) -> Result<(), Error> {
    let stops = members(d, pod).into_iter().map(|c| {
        let d = d.clone();
        async move {
            match containers::stop(&d, &c, timeout, None).await {
                Ok(()) | Err(Error::NotModified(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
    });
    let mut results = futures_util::future::join_all(stops).await;
    if let Some(h) = holder(d, pod) {
        results.push(match containers::stop(d, &h, timeout, None).await {
            Ok(()) | Err(Error::NotModified(_)) => Ok(()),
            Err(e) => Err(e),
        });
    }
    first_error(results)
}

/// Stops and starts the pod.
pub async fn restart(d: &Arc<Daemon>, pod_ref: &str, timeout: Option<i64>) -> Result<(), Error> {
    let pod = find(d, pod_ref).await?;
    let lock = pod_lock(&pod.id);
    let _guard = lock.lock().await;
    let pod = find(d, &pod.id).await?;
    stop_pod(d, &pod, timeout).await?;
    publish(d, &pod, "stop");
    start_pod(d, &pod).await?;
    publish(d, &pod, "start");
    Ok(())
}

/// Sends `signal` (default `SIGKILL`) to every running member and the holder; a pod with none running is a 409.
pub async fn kill(d: &Arc<Daemon>, pod_ref: &str, signal: Option<String>) -> Result<(), Error> {
    let pod = find(d, pod_ref).await?;
    if let Some(s) = signal.as_deref().filter(|s| !s.is_empty()) {
        containers::parse_signal(s)?;
    }
    let mut targets: Vec<Arc<Container>> = members(d, &pod).into_iter().filter(|c| c.is_running()).collect();
    let h = holder(d, &pod).filter(|h| h.is_running());
    if targets.is_empty() && h.is_none() {
        return Err(Error::Conflict(format!("pod {} is not running", pod.name)));
    }
    let kills = targets.drain(..).map(|c| {
        let (d, signal) = (d.clone(), signal.clone());
        async move {
            match containers::kill(&d, &c, signal).await {
                Err(Error::Conflict(_)) => Ok(()),
                r => r,
            }
        }
    });
    let mut results = futures_util::future::join_all(kills).await;
    if let Some(h) = h {
        results.push(match containers::kill(d, &h, signal).await {
            Err(Error::Conflict(_)) => Ok(()),
            r => r,
        });
    }
    publish(d, &pod, "kill");
    first_error(results)
}

/// Removes a pod with its members and holder; without `force` a pod with a running member is a 409.
pub async fn remove(d: &Arc<Daemon>, pod_ref: &str, force: bool) -> Result<(), Error> {
    let pod = find(d, pod_ref).await?;
    let lock = pod_lock(&pod.id);
    let _guard = lock.lock().await;
    let pod = find(d, &pod.id).await?;
    let members = members(d, &pod);
    if !force && let Some(c) = members.iter().find(|c| c.is_running() || c.status() == Status::Restarting) {
        return Err(Error::Conflict(format!(
            "pod {} has running containers ({}): stop them first or force the removal",
            pod.name,
            c.name()
        )));
    }
    for c in &members {
        containers::remove(d, c, force, false).await?;
    }
    if let Some(h) = holder(d, &pod) {
        containers::remove_any(d, &h, true, true).await?;
    }
    berth_store::fault::point("pod.rm-after-holder");
    let (store, id) = (d.store.clone(), pod.id.clone());
    blocking(move || store.delete_doc(record::DOC_KIND, &id).map_err(Error::from)).await?;
    forget_lock(&pod.id);
    publish(d, &pod, "remove");
    Ok(())
}

/// At start-up, after the containers are loaded: holders whose pod is gone (a create or removal cut short) or that
/// are not their pod's recorded holder (an `ensure_holder` whose save a crash cut short) are removed. The holders of
/// a pod whose document does not parse are left alone (logged), as are all when such a document has no ID.
pub async fn reconcile(d: &Arc<Daemon>) -> Result<(), Error> {
    let store = d.store.clone();
    let docs = blocking(move || store.list_docs(record::DOC_KIND).map_err(Error::from)).await?;
    let mut holders: HashMap<String, String> = HashMap::new();
    let mut unreadable = std::collections::HashSet::new();
    for v in docs {
        match parse(v) {
            Ok(p) => {
                holders.insert(p.id, p.holder);
            }
            Err(Some(id)) => {
                unreadable.insert(id);
            }
            Err(None) => {
                tracing::warn!("a pod document without an ID: no holder is removed at this start");
                return Ok(());
            }
        }
    }
    for c in d.all_containers() {
        let Some(pod) = c.record().holder_of().map(str::to_string) else { continue };
        if unreadable.contains(&pod) || holders.get(&pod) == Some(&c.id) {
            continue;
        }
        if let Err(e) = containers::remove_any(d, &c, true, true).await {
            tracing::warn!("remove the holder {} of pod {pod}, not its recorded one: {e}", &c.id[..12]);
        }
    }
    Ok(())
}
