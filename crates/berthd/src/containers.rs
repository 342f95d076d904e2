//! The container manager: create, start, stop, kill, pause, remove, rename, wait; the record of each container in the
//! store; the conversation with its shim; and reconciliation with the shims that kept running while berthd was down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::error::Error;
use berth_api::models::{ContainerConfig, ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use berth_runtime::shim::{self, ExitRecord, Request, Response, RootfsLayers, ShimConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::daemon::{Daemon, blocking};

pub(crate) const DOC_KIND: &str = "container";

/// Lifecycle status, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A container's state, persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    /// The healthcheck's state while a container with one runs (Docker's `State.Health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

/// Everything berthd keeps about a container (one document in the store).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    pub restart_count: i64,
    pub runtime: String,
    /// The image's layers, top first, captured at creation.
    pub lower_dirs: Vec<PathBuf>,
    /// Volumes, binds and tmpfs mounts (`-v`, `--mount`, `--volumes-from`, the image's `VOLUME`s).
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountPoint>,
    /// Its networks (and, while it runs, its addresses and published ports).
    #[serde(default)]
    pub net: crate::networks::NetState,
}

/// Streams an attach client wants.
#[derive(Debug, Clone, Copy)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

struct PendingAttach {
    streams: AttachStreams,
    tx: tokio::sync::oneshot::Sender<UnixStream>,
}

/// A container known to the daemon.
pub struct Container {
    pub id: String,
    rec: Mutex<Record>,
    /// Serialises start, stop, restart, pause, remove.
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Bumped on every state change (and set to `u64::MAX` when the container is removed).
    changed: watch::Sender<u64>,
    pending_attach: Mutex<Vec<PendingAttach>>,
    /// Set while the user stops or kills it, so the restart policy leaves it alone.
    stopping: AtomicBool,
    /// Set once `remove` deletes it: a late state change must not write the document back.
    removed: Arc<AtomicBool>,
}

impl Container {
    fn new(rec: Record) -> Arc<Container> {
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            lifecycle: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            pending_attach: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            removed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        match self.rec.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn name(&self) -> String {
        self.record().name
    }

    /// Changes the record in memory only (the healthcheck's results, which Docker does not need on disk either).
    pub fn update_volatile(&self, f: impl FnOnce(&mut Record)) -> Record {
        self.update(f)
    }

    fn update(&self, f: impl FnOnce(&mut Record)) -> Record {
        let mut g = match self.rec.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
        let r = g.clone();
        drop(g);
        self.changed.send_modify(|v| *v = v.wrapping_add(1).min(u64::MAX - 1));
        r
    }

    /// Subscribes to state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Replaces the published ports a running container holds (after `network disconnect` took some away).
    pub fn update_net_ports(&self, ports: Vec<crate::networks::BoundPort>) {
        self.update(|r| r.net.ports = ports);
    }

    pub fn status(&self) -> Status {
        self.record().state.status
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status(), Status::Running | Status::Paused)
    }
}

/// Paths of a container.
pub fn container_dir(d: &Daemon, id: &str) -> PathBuf {
    d.config.data_root.join("containers").join(id)
}

pub fn bundle_dir(d: &Daemon, id: &str) -> PathBuf {
    d.config.exec_root.join("containers").join(id)
}

pub fn log_path(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join(format!("{id}-json.log"))
}

fn exit_path(d: &Daemon, id: &str) -> PathBuf {
    container_dir(d, id).join("exit.json")
}

/// Writes a new container's document (durably).
async fn persist_new(d: &Daemon, rec: &Record) -> Result<(), Error> {
    write_doc(d, rec, None, true).await
}

/// Writes a container's current record (the healthcheck persists a change of its status this way).
pub async fn save_record(d: &Daemon, c: &Container) {
    let rec = c.record();
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
}

/// Writes a container's changed state, unless it has been removed: a state change that races with `remove` (an exit
/// recorded while the container is being deleted) never writes it back. Run-state changes are not synced to disk
/// on their own (a power loss that could take them back ends the container anyway): that saves an fsync per start
/// and exit.
async fn persist(d: &Daemon, c: &Container, rec: &Record) -> Result<(), Error> {
    write_doc(d, rec, Some(c.removed.clone()), false).await
}

async fn write_doc(d: &Daemon, rec: &Record, removed: Option<Arc<AtomicBool>>, durable: bool) -> Result<(), Error> {
    let store = d.store.clone();
    let doc = serde_json::to_value(rec).map_err(|e| Error::Internal(e.to_string()))?;
    let (id, name) = (rec.id.clone(), rec.name.clone());
    blocking(move || {
        let gone = || removed.as_ref().is_some_and(|r| r.load(Ordering::SeqCst));
        if gone() {
            return Ok(());
        }
        let put = if durable { berth_store::Store::put_doc } else { berth_store::Store::put_doc_lazy };
        put(&store, DOC_KIND, &id, Some(&name), &doc).map_err(Error::from)?;
        // `remove` may have deleted the document between the check and the write.
        if gone() {
            store.delete_doc(DOC_KIND, &id).map_err(Error::from)?;
        }
        Ok(())
    })
    .await
}

/// Loads every container from the store and reconnects to the shims of those that were running.
pub async fn load_all(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let store = d.store.clone();
    let docs = tokio::task::spawn_blocking(move || store.list_docs(DOC_KIND)).await??;
    let mut running = Vec::new();
    let mut monitor = Vec::new();
    let mut ended = Vec::new();
    for doc in docs {
        let rec: Record = match serde_json::from_value(doc) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("skipping an unreadable container record: {e}");
                continue;
            }
        };
        let c = Container::new(rec.clone());
        if let Ok(mut m) = d.containers.write() {
            m.insert(rec.id.clone(), c.clone());
        }
        if matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting) {
            let bundle = bundle_dir(d, &rec.id);
            if UnixStream::connect(bundle.join(shim::SOCKET_FILE)).await.is_ok() {
                tracing::info!("container {} is still running; monitoring it again", &rec.id[..12]);
                running.push(rec.clone());
                monitor.push(c);
            } else {
                tracing::info!("container {} ended while berthd was down", &rec.id[..12]);
                let exit = match read_exit(d, &rec.id) {
                    Some(e) => e,
                    None => {
                        // Its shim died without recording an exit: what it ran must not run on untracked.
                        kill_orphaned(d, &c).await;
                        ExitRecord {
                            exit_code: 255,
                            finished_at: berth_api::time::now(),
                            oom_killed: false,
                            error: Some("berth-shim exited unexpectedly".into()),
                        }
                    }
                };
                ended.push((c, exit));
            }
        } else {
            let _ = std::fs::remove_dir_all(bundle_dir(d, &rec.id));
        }
    }
    // The survivors' addresses and ports are taken back before anything can exit, restart (restart policies of the
    // containers that ended meanwhile) or start and claim them.
    crate::networks::restore(d, &running).await;
    // Volume mounts are counted from the survivors too, before any exit or restart changes the counts.
    crate::volumes::reconcile(d, &running).await?;
    for c in monitor {
        // A healthcheck starts over after a daemon restart (as moby's does).
        crate::health::spawn(d.clone(), c.clone(), c.record().state.started_at);
        spawn_monitor(d.clone(), c);
    }
    for (c, exit) in ended {
        // Its volumes were never counted in this daemon's life (it was not running at start-up).
        on_exit(d, &c, exit, false).await;
    }
    Ok(())
}

fn read_exit(d: &Daemon, id: &str) -> Option<ExitRecord> {
    let data = std::fs::read(exit_path(d, id)).ok()?;
    serde_json::from_slice(&data).ok()
}

// ---------------------------------------------------------------------------------------------------------------
// Creation

/// Merges the image's configuration under the user's, as Docker does.
fn merge_config(user: &mut ContainerConfig, image: &Value) -> Result<(), Error> {
    let img: ContainerConfig = match image.get("config") {
        Some(c) if !c.is_null() => {
            serde_json::from_value(c.clone()).map_err(|e| Error::Internal(format!("invalid image config: {e}")))?
        }
        _ => ContainerConfig::default(),
    };
    // Env: image first, the user's entries replace those with the same name.
    let mut env: Vec<String> = img.env.clone().unwrap_or_default();
    for e in user.env.clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or("").to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    user.env = Some(env);
    let user_entrypoint_cleared = user.entrypoint.as_ref().is_some_and(|e| e.len() == 1 && e[0].is_empty());
    if user_entrypoint_cleared {
        user.entrypoint = None;
    } else if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = img.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = img.entrypoint.clone();
        }
    }
    if user.working_dir.as_deref().is_none_or(str::is_empty) {
        user.working_dir = img.working_dir.clone();
    }
    if user.user.as_deref().is_none_or(str::is_empty) {
        user.user = img.user.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = img.stop_signal.clone();
    }
    if user.healthcheck.is_none() {
        user.healthcheck = img.healthcheck.clone();
    }
    let mut labels = img.labels.clone().unwrap_or_default();
    labels.extend(user.labels.clone().unwrap_or_default());
    user.labels = Some(labels);
    let mut exposed = img.exposed_ports.clone().unwrap_or_default();
    exposed.extend(user.exposed_ports.clone().unwrap_or_default());
    if !exposed.is_empty() {
        user.exposed_ports = Some(exposed);
    }
    // The image's VOLUMEs and the user's anonymous volumes together, as moby merges them.
    if let Some(img_vols) = img.volumes.clone() {
        let mut v = user.volumes.clone().unwrap_or_default();
        v.extend(img_vols);
        user.volumes = Some(v);
    }
    if user.on_build.is_none() {
        user.on_build = img.on_build.clone();
    }
    Ok(())
}

/// Docker's refusals of options that contradict the network mode.
fn check_network_options(
    body: &ContainerCreateBody,
    host: &HostConfig,
    mode: &crate::networks::Mode,
) -> Result<(), Error> {
    use crate::networks::Mode;
    let publishes =
        host.port_bindings.as_ref().is_some_and(|p| p.values().any(|v| v.as_ref().is_some_and(|v| !v.is_empty())))
            || host.publish_all_ports.unwrap_or(false);
    if let Mode::Container(_) = mode {
        if body.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
            return Err(Error::InvalidArgument("conflicting options: hostname and the network mode".into()));
        }
        if host.dns.as_ref().is_some_and(|v| !v.is_empty()) || host.extra_hosts.as_ref().is_some_and(|v| !v.is_empty())
        {
            return Err(Error::InvalidArgument("conflicting options: dns and the network mode".into()));
        }
        if publishes || body.exposed_ports.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(Error::InvalidArgument(
                "conflicting options: port publishing and the container type network mode".into(),
            ));
        }
    }
    for key in host.port_bindings.iter().flat_map(|p| p.keys()) {
        crate::networks::parse_port_key(key)?;
    }
    Ok(())
}

/// `--tmpfs` destinations, checked at creation as Docker does.
fn check_tmpfs(host: &HostConfig) -> Result<(), Error> {
    for dest in host.tmpfs.iter().flat_map(|t| t.keys()) {
        if !dest.starts_with('/') {
            return Err(Error::InvalidArgument(format!("invalid mount path: '{dest}' mount path must be absolute")));
        }
        if dest.trim_end_matches('/').is_empty() {
            return Err(Error::InvalidArgument("invalid tmpfs mount: destination can't be '/'".into()));
        }
    }
    Ok(())
}

/// Changes a container's list of networks (`network connect`/`disconnect`) and saves it.
pub async fn set_endpoints(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    f: impl FnOnce(&mut Vec<crate::networks::Endpoint>),
) -> Result<(), Error> {
    let rec = c.update(|r| f(&mut r.net.endpoints));
    write_doc(d, &rec, Some(c.removed.clone()), true).await
}

fn validate_env(env: &[String]) -> Result<(), Error> {
    for e in env {
        if e.is_empty() || e.starts_with('=') || e.contains('\0') {
            return Err(Error::InvalidArgument(format!("invalid environment variable: {e:?}")));
        }
    }
    Ok(())
}

fn check_runtime(d: &Daemon, host: &HostConfig) -> Result<String, Error> {
    let r = host.runtime.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| d.config.runtime.clone());
    if matches!(r.as_str(), "berth" | "builtin") || berth_runtime::external::available(&r) {
        Ok(r)
    } else {
        Err(Error::InvalidArgument(format!("unknown or invalid runtime name: {r}")))
    }
}

fn default_host_config(mut host: HostConfig) -> HostConfig {
    if host.network_mode.as_deref().is_none_or(str::is_empty) {
        host.network_mode = Some("default".into());
    }
    if host.restart_policy.is_none() {
        host.restart_policy =
            Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: Some(0) });
    }
    // Docker: a memory limit without a swap limit allows as much swap as memory (memory + swap = twice the limit).
    if let Some(m) = host.memory.filter(|m| *m > 0)
        && host.memory_swap.is_none_or(|s| s == 0)
    {
        host.memory_swap = Some(m.saturating_mul(2));
    }
    host
}

/// Creates a container. Returns its ID.
pub async fn create(d: &Arc<Daemon>, name: Option<String>, body: ContainerCreateBody) -> Result<String, Error> {
    create_with(d, name, body, None).await
}

/// An image that is not (or not yet) in the store: a build step's state.
#[derive(Debug, Clone)]
pub struct BuildImage {
    pub id: String,
    /// The image config (`config`, `rootfs`, ...).
    pub config: Value,
    /// Its layers, top first.
    pub lower_dirs: Vec<PathBuf>,
}

/// [`create`], from `image` instead of the store's image that `body.image` names.
pub async fn create_with(
    d: &Arc<Daemon>,
    name: Option<String>,
    body: ContainerCreateBody,
    image: Option<BuildImage>,
) -> Result<String, Error> {
    let image_name = body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::InvalidArgument("config cannot be empty in order to create a container".into()))?;
    let mut host = default_host_config(body.host_config.clone().unwrap_or_default());
    crate::logs::merge_and_verify(&d.config.log, &mut host)?;
    let network_mode = host.network_mode.clone().unwrap_or_default();
    let mode = crate::networks::mode(&network_mode);
    check_network_options(&body, &host, &mode)?;
    check_tmpfs(&host)?;
    crate::security::check(&host)?;
    let endpoint_configs = body.networking_config.clone().and_then(|n| n.endpoints_config).unwrap_or_default();
    let endpoints = crate::networks::endpoints_at_create(d, &network_mode, &endpoint_configs)?;
    let runtime = check_runtime(d, &host)?;
    crate::userns::check_create(d.config.userns_remap, &host, &runtime)?;
    // Until the container is in the table (where `rmi` sees it), the image cannot be removed.
    let _using_image = d.image_use.read().await;
    let image = match image {
        Some(i) => i,
        None => {
            let store = d.store.clone();
            let lookup = image_name.clone();
            let i = blocking(move || store.resolve_image(&lookup).map_err(Error::from)).await?;
            BuildImage { id: i.id.to_string(), lower_dirs: i.lower_dirs(), config: i.config }
        }
    };
    let mut config = container_config(&body);
    merge_config(&mut config, &image.config)?;
    validate_env(config.env.as_deref().unwrap_or_default())?;
    if let Some(w) = config.working_dir.as_deref().filter(|w| !w.is_empty())
        && !w.starts_with('/')
    {
        return Err(Error::InvalidArgument(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        )));
    }
    if let Some(u) = config.user.as_deref().filter(|u| !u.is_empty()) {
        berth_runtime::user::validate_spec(u).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    }
    let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    argv.extend(config.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(Error::InvalidArgument("No command specified".into()));
    }
    let id = crate::names::new_id()?;
    if config.hostname.as_deref().is_none_or(str::is_empty) {
        config.hostname = Some(if mode == crate::networks::Mode::Host {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            id[..12].to_string()
        });
    }
    config.image = Some(image_name.clone());
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            let n = n.trim_start_matches('/').to_string();
            crate::names::validate(&n)?;
            n
        }
        None => generate_name(d)?,
    };
    if let Ok(existing) = d.container(&format!("/{name}")) {
        return Err(name_conflict(&name, &existing.id));
    }
    // Until the container is in the table (where `volume rm` sees it), its volumes cannot be removed.
    let _using_volumes = d.volumes.lock.lock().await;
    let planned = crate::mounts::plan(d, &config, &host)?;
    let now = berth_api::time::now();
    let rec = Record {
        id: id.clone(),
        name: name.clone(),
        created: now,
        image: image_name,
        image_id: image.id.clone(),
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        config,
        host_config: host,
        state: State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: berth_api::time::ZERO.into(),
            finished_at: berth_api::time::ZERO.into(),
            oom_killed: false,
            health: None,
        },
        restart_count: 0,
        runtime,
        lower_dirs: image.lower_dirs.clone(),
        mounts: Vec::new(),
        net: crate::networks::NetState { endpoints, ..Default::default() },
    };
    let dir = container_dir(d, &id);
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let setup = (|| -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Internal(format!("create container directory: {e}"));
        std::fs::create_dir_all(dir.join("upper")).map_err(io)?;
        std::fs::create_dir_all(dir.join("work")).map_err(io)?;
        crate::networks::write_files(d, &dir, &hostname, &[], &rec, None)
    })();
    if let Err(e) = setup {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    berth_store::fault::point("create.after-dir");
    let mut rec = rec;
    let created_volumes = match crate::mounts::realize(d, planned, &rec.lower_dirs).await {
        Ok((mounts, created)) => {
            rec.mounts = mounts;
            created
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    if let Err(e) = persist_new(d, &rec).await {
        let _ = std::fs::remove_dir_all(&dir);
        crate::volumes::remove_anonymous_locked(d, &created_volumes).await;
        return Err(if e.is_conflict() { name_conflict(&name, "another container") } else { e });
    }
    berth_store::fault::point("create.after-record");
    if let Ok(mut m) = d.containers.write() {
        m.insert(id.clone(), Container::new(rec));
    }
    Ok(id)
}

fn name_conflict(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn generate_name(d: &Daemon) -> Result<String, Error> {
    for retry in 0..10 {
        let mut seed = [0u8; 5];
        getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let n = crate::names::generate(&seed, retry);
        if d.container(&format!("/{n}")).is_err() {
            return Ok(n);
        }
    }
    Err(Error::Internal("could not generate a unique container name".into()))
}

/// The container part of a create body (bollard splits it from the host config).
fn container_config(b: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        hostname: b.hostname.clone(),
        domainname: b.domainname.clone(),
        user: b.user.clone(),
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        exposed_ports: b.exposed_ports.clone(),
        tty: b.tty,
        open_stdin: b.open_stdin,
        stdin_once: b.stdin_once,
        env: b.env.clone(),
        cmd: b.cmd.clone(),
        healthcheck: b.healthcheck.clone(),
        args_escaped: b.args_escaped,
        image: b.image.clone(),
        volumes: b.volumes.clone(),
        working_dir: b.working_dir.clone(),
        entrypoint: b.entrypoint.clone(),
        network_disabled: b.network_disabled,
        on_build: b.on_build.clone(),
        labels: b.labels.clone(),
        stop_signal: b.stop_signal.clone(),
        stop_timeout: b.stop_timeout,
        shell: b.shell.clone(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The shim

/// Sends one request to a container's shim and reads its one-line answer.
pub async fn shim_request(bundle: &Path, req: &Request) -> Result<Response, Error> {
    let sock = bundle.join(shim::SOCKET_FILE);
    let mut s = UnixStream::connect(&sock)
        .await
        .map_err(|e| Error::Conflict(format!("container is not running (shim: {e})")))?;
    let line = serde_json::to_string(req).map_err(|e| Error::Internal(e.to_string()))? + "\n";
    s.write_all(line.as_bytes()).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
    let mut r = BufReader::new(s);
    let mut answer = String::new();
    r.read_line(&mut answer).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
    if answer.is_empty() {
        return Err(Error::Conflict("container exited".into()));
    }
    serde_json::from_str(&answer).map_err(|e| Error::Internal(format!("shim answered {answer:?}: {e}")))
}

fn shim_ok(r: Response) -> Result<(), Error> {
    match r {
        Response::Error { message } => Err(Error::Internal(message)),
        _ => Ok(()),
    }
}

/// Opens an attach stream to a running container's shim.
pub async fn shim_attach(bundle: &Path, streams: AttachStreams) -> Result<UnixStream, Error> {
    let mut s = UnixStream::connect(bundle.join(shim::SOCKET_FILE))
        .await
        .map_err(|e| Error::Conflict(format!("container is not running (shim: {e})")))?;
    let req = Request::Attach { stdin: streams.stdin, stdout: streams.stdout, stderr: streams.stderr };
    let line = serde_json::to_string(&req).map_err(|e| Error::Internal(e.to_string()))? + "\n";
    s.write_all(line.as_bytes()).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
    // The acknowledgement is one line; read it byte by byte so that no output frame is consumed with it.
    let mut ack = Vec::new();
    loop {
        let b = s.read_u8().await.map_err(|_| Error::Conflict("container exited".into()))?;
        if b == b'\n' {
            break;
        }
        ack.push(b);
    }
    Ok(s)
}

/// Attaches to a created container once it starts (registered now, so that a start right after finds it).
pub fn attach_at_start(c: &Container, streams: AttachStreams) -> tokio::sync::oneshot::Receiver<UnixStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Ok(mut p) = c.pending_attach.lock() {
        p.push(PendingAttach { streams, tx });
    }
    rx
}

/// Waits for a container to be started (if it is only created) and attaches to it.
pub async fn attach(d: &Arc<Daemon>, c: &Arc<Container>, streams: AttachStreams) -> Result<UnixStream, Error> {
    let rx = {
        let rec = c.record();
        if matches!(rec.state.status, Status::Running | Status::Paused) {
            return shim_attach(&bundle_dir(d, &c.id), streams).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut p) = c.pending_attach.lock() {
            p.push(PendingAttach { streams, tx });
        }
        rx
    };
    rx.await.map_err(|_| Error::Conflict("container was removed before it started".into()))
}

/// Spawns the shim for a container whose bundle is written, and returns the init PID.
async fn spawn_shim(d: &Daemon, bundle: &Path) -> Result<i32, Error> {
    let mut child = d
        .shim_command()
        .arg("start")
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Internal(format!("run {}: {e}", d.config.shim.display())))?;
    let stdout = child.stdout.take().ok_or_else(|| Error::Internal("shim stdout".into()))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.map_err(|e| Error::Internal(format!("shim: {e}")))?;
    let _ = child.wait().await;
    match serde_json::from_str::<Response>(&line) {
        Ok(Response::Created { pid }) => Ok(pid),
        Ok(Response::Error { message }) => Err(start_error(message)),
        _ => Err(Error::Internal(format!("berth-shim failed to start (it said {:?})", line.trim()))),
    }
}

/// Docker's wording and class for a failed start: the user's fault (400) when the program cannot be run.
fn start_error(message: String) -> Error {
    let text = format!("failed to create task for container: unable to start container process: {message}: unknown");
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("permission denied")
        || message.contains("unable to find user")
        || message.contains("unable to find group")
    {
        Error::InvalidArgument(text)
    } else {
        Error::Internal(text)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Lifecycle

/// Starts a created or exited container.
pub async fn start(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    start_locked(d, c).await
}

async fn start_locked(d: &Arc<Daemon>, c: &Arc<Container>) -> Result<(), Error> {
    let rec = c.record();
    match rec.state.status {
        Status::Running => return Err(Error::NotModified("container already started".into())),
        Status::Paused => {
            return Err(Error::Conflict("cannot start a paused container, try unpause instead".into()));
        }
        Status::Removing | Status::Dead => {
            return Err(Error::Conflict(format!("container {} is marked for removal and cannot be started", rec.id)));
        }
        _ => {}
    }
    c.stopping.store(false, Ordering::SeqCst);
    let bundle = bundle_dir(d, &rec.id);
    let dir = container_dir(d, &rec.id);
    let (net, sandbox) = match crate::networks::attach(d, &rec, &dir).await {
        Ok(x) => x,
        Err(e) => {
            record_start_failure(d, c, &e).await;
            return Err(e);
        }
    };
    berth_store::fault::point("start.after-network");
    // Everything between the network set-up and a running program: one failure path releases all of it.
    let mut volumes_held = false;
    let started: Result<i32, Error> = async {
        let mut config = rec.config.clone();
        if let Some(h) = &sandbox.hostname {
            config.hostname = Some(h.clone());
        }
        let idmap = crate::userns::of_container(d.config.userns_remap, rec.host_config.userns_mode.as_deref());
        let spec = crate::spec::build(
            &config,
            &rec.host_config,
            &crate::spec::SpecInputs {
                id: &rec.id,
                args: std::iter::once(rec.path.clone()).chain(rec.args.iter().cloned()).collect(),
                container_dir: &sandbox.files_dir,
                netns: sandbox.netns.as_deref(),
                cgroup_v2: berth_runtime::cgroups::is_unified(),
                mounts: crate::mounts::spec_mounts(&rec.mounts)?,
                idmap,
            },
        )?;
        let shim_cfg = ShimConfig {
            id: rec.id.clone(),
            runtime: rec.runtime.clone(),
            runtime_root: d.config.exec_root.join("runtime"),
            rootfs: RootfsLayers {
                lower: rec.lower_dirs.clone(),
                upper: dir.join("upper"),
                work: dir.join("work"),
                idmap,
            },
            tty: rec.config.tty.unwrap_or(false),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            log_path: log_path(d, &rec.id),
            log: crate::logs::policy_of(&rec.host_config)?,
            exit_path: exit_path(d, &rec.id),
            user: rec.config.user.clone().unwrap_or_default(),
            console_size: None,
        };
        let write = (|| -> Result<(), String> {
            let _ = std::fs::remove_dir_all(&bundle);
            // Root's only (0700 directory, 0600 files): the spec and the shim's config hold the environment.
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
                .create(&bundle)
                .map_err(|e| e.to_string())?;
            if let Some(m) = idmap {
                // The remapped root walks to its rootfs and its files (hosts, resolv.conf) through these.
                for p in [&bundle, &dir] {
                    crate::userns::let_through(p, m).map_err(|e| e.to_string())?;
                }
                // The upper directory holds host IDs: its root is the container's `/`.
                crate::userns::own_root_dir(&dir.join("upper"), m).map_err(|e| e.to_string())?;
            }
            berth_runtime::save_spec(&bundle, &spec).map_err(|e| e.to_string())?;
            let j = serde_json::to_vec(&shim_cfg).map_err(|e| e.to_string())?;
            berth_runtime::sys::replace_file(&bundle.join(shim::CONFIG_FILE), &j, false).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(exit_path(d, &rec.id));
            Ok(())
        })();
        write.map_err(|e| Error::Internal(format!("write bundle {}: {e}", bundle.display())))?;
        crate::volumes::acquire(d, &rec.mounts).await?;
        volumes_held = true;
        let pid = spawn_shim(d, &bundle).await?;
        berth_store::fault::point("start.after-shim");
        // Attach clients that were waiting for the start get their streams before the program runs.
        let pending: Vec<PendingAttach> =
            c.pending_attach.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        for p in pending {
            match shim_attach(&bundle, p.streams).await {
                Ok(s) => {
                    let _ = p.tx.send(s);
                }
                Err(e) => tracing::warn!("attach to {}: {e}", &rec.id[..12]),
            }
        }
        match shim_request(&bundle, &Request::Start).await? {
            Response::Ok => Ok(pid),
            Response::Error { message } => Err(start_error(message)),
            other => Err(Error::Internal(format!("unexpected shim answer {other:?}"))),
        }
    }
    .await;
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&bundle);
            crate::networks::release(d, &rec.id).await;
            if volumes_held {
                crate::volumes::release(d, &rec.mounts).await;
            }
            record_start_failure(d, c, &e).await;
            return Err(e);
        }
    };
    berth_store::fault::point("start.before-record");
    let rec = c.update(|r| {
        r.net = net;
        r.state = State {
            status: Status::Running,
            pid: i64::from(pid),
            exit_code: 0,
            error: String::new(),
            started_at: berth_api::time::now(),
            finished_at: r.state.finished_at.clone(),
            oom_killed: false,
            health: crate::health::initial(&r.config),
        };
    });
    persist(d, c, &rec).await?;
    spawn_monitor(d.clone(), c.clone());
    crate::health::spawn(d.clone(), c.clone(), rec.state.started_at.clone());
    Ok(())
}

/// Records a failed start: the exit code Docker gives it, attach clients waiting for the start are let go, and a
/// `--rm` container is removed (as Docker does).
async fn record_start_failure(d: &Arc<Daemon>, c: &Arc<Container>, e: &Error) {
    if let Ok(mut p) = c.pending_attach.lock() {
        p.clear();
    }
    let code = match e {
        Error::InvalidArgument(m) if m.contains("permission denied") => 126,
        Error::InvalidArgument(_) => 127,
        _ => 128,
    };
    let rec = c.update(|r| {
        r.state.exit_code = code;
        r.state.error = e.to_string();
        r.state.pid = 0;
        if r.state.status == Status::Running {
            r.state.status = Status::Exited;
        }
    });
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
    if rec.host_config.auto_remove.unwrap_or(false) {
        spawn_remove(d, c);
    }
}

/// Removes a container in the background (its lifecycle lock may be held by the caller).
fn spawn_remove(d: &Arc<Daemon>, c: &Arc<Container>) {
    let (d, c) = (d.clone(), c.clone());
    tokio::spawn(async move {
        // Docker removes the anonymous volumes of a `--rm` container with it.
        if let Err(e) = remove(&d, &c, true, true).await {
            tracing::warn!("auto-remove {}: {e}", &c.id[..12]);
        }
    });
}

/// Watches a running container's shim and records the exit when it comes.
fn spawn_monitor(d: Arc<Daemon>, c: Arc<Container>) {
    tokio::spawn(async move {
        let bundle = bundle_dir(&d, &c.id);
        let mut tries = 0u32;
        let exit = loop {
            match shim_request(&bundle, &Request::Wait).await {
                Ok(Response::Exited(e)) => break Some(e),
                // No answer: the exit file tells if the shim recorded one (it writes it before it goes).
                _ => match read_exit(&d, &c.id) {
                    Some(e) => break Some(e),
                    // The shim is still there (it dropped this connection): ask again, a second later; one that
                    // keeps refusing is said once and asked every ten seconds from then on.
                    None if shim_pid(&bundle).is_some() => {
                        tries += 1;
                        if tries == 30 {
                            tracing::warn!("the shim of {} keeps dropping its connection; still watching", &c.id[..12]);
                        }
                        tokio::time::sleep(Duration::from_secs(if tries < 30 { 1 } else { 10 })).await;
                    }
                    None => break None,
                },
            }
        };
        // Without an answer (the shim died or was gone already) the exit file tells; wait briefly for it.
        let exit = match exit {
            Some(e) => e,
            None => {
                let mut found = None;
                for _ in 0..50 {
                    if let Some(e) = read_exit(&d, &c.id) {
                        found = Some(e);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                match found {
                    Some(e) => e,
                    None => {
                        // The shim died without recording an exit (`kill -9`): its container must not run on
                        // untracked, nor beside the copy a restart policy starts.
                        kill_orphaned(&d, &c).await;
                        ExitRecord {
                            exit_code: 255,
                            finished_at: berth_api::time::now(),
                            oom_killed: false,
                            error: Some("berth-shim exited unexpectedly".into()),
                        }
                    }
                }
            }
        };
        on_exit(&d, &c, exit, true).await;
    });
}

/// The PID of the shim of `bundle`, while its PID file names a live `berth-shim` of this bundle (not a process that
/// reused the number).
pub(crate) fn shim_pid(bundle: &Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let pid = std::fs::read_to_string(bundle.join(shim::SHIM_PID_FILE)).ok()?.trim().parse::<i32>().ok()?;
    if pid <= 1 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline.split(|b| *b == 0).any(|arg| arg == bundle.as_os_str().as_bytes()).then_some(pid)
}

/// Ends what is left of a container whose shim is gone without recording an exit, so that neither an untracked copy
/// keeps running nor a restart starts a second one beside it.
async fn kill_orphaned(d: &Daemon, c: &Container) {
    let (id, runtime, state_root, bundle) =
        (c.id.clone(), c.record().runtime, d.config.exec_root.join("runtime"), bundle_dir(d, &c.id));
    let _ = tokio::task::spawn_blocking(move || {
        end_leftovers(&id, &runtime, &state_root, &bundle);
        tracing::info!("container {}: its shim died; its processes were killed", &id[..12]);
    })
    .await;
}

/// Ends whatever of a container runs or is held outside its shim (one that died, a start or removal cut short):
/// every process in its cgroup (`berth/<id>`, whatever the runtime; thawed if frozen) is killed and waited for, up to
/// ten seconds; then the runtime's resources are released (an external runtime's state) and the cgroup removed.
/// Safe to run again, and for a container that has none of them. Blocking.
pub(crate) fn end_leftovers(id: &str, runtime: &str, state_root: &Path, bundle: &Path) {
    let cgroup = berth_runtime::cgroups::Cgroup::open(&format!("berth/{id}")).ok();
    if let Some(cg) = &cgroup {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // A fork racing with the kill is caught by the next round.
            let _ = cg.kill_all();
            match cg.procs() {
                Ok(p) if p.is_empty() => break,
                Err(_) => break,
                Ok(p) if std::time::Instant::now() >= deadline => {
                    tracing::warn!("processes {p:?} of {} survive SIGKILL", &id[..12]);
                    break;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    if let Err(e) = berth_runtime::by_name(runtime, state_root).delete(id, bundle) {
        tracing::debug!("release the runtime's resources of {}: {e}", &id[..12]);
    }
    if let Some(cg) = &cgroup
        && let Err(e) = cg.destroy()
    {
        tracing::warn!("remove the cgroup of {}: {e}", &id[..12]);
    }
}

/// Records an exit; applies `--rm` and the restart policy.
/// `counted`: its volume mounts were counted when it started (not so for a container that ended while berthd was
/// down).
async fn on_exit(d: &Arc<Daemon>, c: &Arc<Container>, exit: ExitRecord, counted: bool) {
    let _ = std::fs::remove_dir_all(bundle_dir(d, &c.id));
    crate::networks::release(d, &c.id).await;
    let rec = c.update(|r| {
        r.net.ports.clear();
        r.net.sandbox.clear();
        for e in &mut r.net.endpoints {
            let keep = crate::networks::Endpoint {
                network: e.network.clone(),
                network_id: e.network_id.clone(),
                aliases: e.aliases.clone(),
                requested_ip: e.requested_ip,
                links: e.links.clone(),
                ..Default::default()
            };
            *e = keep;
        }
        r.state.status = Status::Exited;
        r.state.pid = 0;
        r.state.exit_code = i64::from(exit.exit_code);
        r.state.finished_at = exit.finished_at.clone();
        r.state.oom_killed = exit.oom_killed;
        if let Some(e) = &exit.error {
            r.state.error = e.clone();
        }
    });
    if counted {
        crate::volumes::release(d, &rec.mounts).await;
    }
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
    if rec.host_config.auto_remove.unwrap_or(false) {
        spawn_remove(d, c);
        return;
    }
    let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
    let restart = !c.stopping.load(Ordering::SeqCst)
        && match policy.name {
            Some(RestartPolicyNameEnum::ALWAYS) | Some(RestartPolicyNameEnum::UNLESS_STOPPED) => true,
            Some(RestartPolicyNameEnum::ON_FAILURE) => {
                exit.exit_code != 0 && policy.maximum_retry_count.is_none_or(|m| m == 0 || rec.restart_count < m)
            }
            _ => false,
        };
    if restart {
        let (d, c) = (d.clone(), c.clone());
        tokio::spawn(async move {
            // Docker's back-off starts at 100 ms and doubles; a fixed short delay keeps a crash loop cheap.
            let delay = Duration::from_millis(100 * (1 << c.record().restart_count.clamp(0, 6)));
            tokio::time::sleep(delay).await;
            if c.stopping.load(Ordering::SeqCst) || c.status() != Status::Exited {
                return;
            }
            c.update(|r| r.restart_count += 1);
            if let Err(e) = start(&d, &c).await {
                tracing::warn!("restart {}: {e}", &c.id[..12]);
            }
        });
    }
}

/// Parses a signal given as `SIGKILL`, `KILL` or `9`.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let bad = || Error::InvalidArgument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map(|sig| sig as i32).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>().map(|sig| sig as i32).map_err(|_| bad())
}

async fn wait_until_not_running(c: &Container, timeout: Option<Duration>) -> bool {
    let mut rx = c.subscribe();
    let fut = async {
        loop {
            if !c.is_running() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// Stops a container: its stop signal, then SIGKILL after `timeout` seconds (negative: wait forever).
pub async fn stop(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    stop_locked(d, c, timeout, signal).await
}

async fn stop_locked(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let rec = c.record();
    if !c.is_running() {
        return Err(Error::NotModified("container already stopped".into()));
    }
    c.stopping.store(true, Ordering::SeqCst);
    let bundle = bundle_dir(d, &c.id);
    let sig = match signal.or(rec.config.stop_signal.clone()) {
        Some(s) if !s.is_empty() => parse_signal(&s)?,
        _ => libc::SIGTERM,
    };
    let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
    if rec.state.status == Status::Paused {
        let _ = shim_request(&bundle, &Request::Resume).await;
    }
    let _ = shim_request(&bundle, &Request::Kill { signal: sig }).await;
    let limit = (secs >= 0).then(|| Duration::from_secs(secs as u64));
    if !wait_until_not_running(c, limit).await {
        let _ = shim_request(&bundle, &Request::Kill { signal: libc::SIGKILL }).await;
        wait_until_not_running(c, Some(Duration::from_secs(30))).await;
    }
    Ok(())
}

/// Sends a signal to a running container.
pub async fn kill(d: &Arc<Daemon>, c: &Arc<Container>, signal: Option<String>) -> Result<(), Error> {
    let sig = match signal.as_deref() {
        Some(s) if !s.is_empty() => parse_signal(s)?,
        _ => libc::SIGKILL,
    };
    if !c.is_running() {
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
        c.stopping.store(true, Ordering::SeqCst);
    }
    let bundle = bundle_dir(d, &c.id);
    if c.status() == Status::Paused && sig == libc::SIGKILL {
        let _ = shim_request(&bundle, &Request::Resume).await;
    }
    shim_ok(shim_request(&bundle, &Request::Kill { signal: sig }).await?)?;
    if sig == libc::SIGKILL {
        wait_until_not_running(c, Some(Duration::from_secs(30))).await;
    }
    Ok(())
}

/// Stops (if running) and starts again.
pub async fn restart(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    timeout: Option<i64>,
    signal: Option<String>,
) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    if c.is_running() {
        stop_locked(d, c, timeout, signal).await?;
    }
    start_locked(d, c).await
}

/// Freezes (`pause = true`) or thaws a running container.
pub async fn pause(d: &Arc<Daemon>, c: &Arc<Container>, pause: bool) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    let status = c.status();
    match (pause, status) {
        (_, s) if !matches!(s, Status::Running | Status::Paused) => {
            return Err(Error::Conflict(format!("Container {} is not running", c.id)));
        }
        (true, Status::Paused) => return Err(Error::Conflict(format!("Container {} is already paused", c.id))),
        (false, Status::Running) => return Err(Error::Conflict(format!("Container {} is not paused", c.id))),
        _ => {}
    }
    let bundle = bundle_dir(d, &c.id);
    shim_ok(shim_request(&bundle, if pause { &Request::Pause } else { &Request::Resume }).await?)?;
    let rec = c.update(|r| r.state.status = if pause { Status::Paused } else { Status::Running });
    persist(d, c, &rec).await
}

/// Removes a container (`force`: kill it first if running).
/// `volumes`: its anonymous volumes go too (`rm -v`, `--rm`), before a `removed` waiter is let go.
pub async fn remove(d: &Arc<Daemon>, c: &Arc<Container>, force: bool, volumes: bool) -> Result<(), Error> {
    let _guard = c.lifecycle.lock().await;
    if c.is_running() {
        if !force {
            let what = if c.status() == Status::Paused { "paused" } else { "running" };
            return Err(Error::Conflict(format!(
                "You cannot remove a {what} container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        c.stopping.store(true, Ordering::SeqCst);
        let bundle = bundle_dir(d, &c.id);
        let _ = shim_request(&bundle, &Request::Resume).await;
        let _ = shim_request(&bundle, &Request::Kill { signal: libc::SIGKILL }).await;
        if !wait_until_not_running(c, Some(Duration::from_secs(30))).await {
            return Err(Error::Internal(format!("could not kill running container {}, cannot remove", c.id)));
        }
    }
    if c.removed.load(Ordering::SeqCst) {
        // An earlier call removed it (its caller held this object before it left the table).
        return Ok(());
    }
    let rec = c.update(|r| r.state.status = Status::Removing);
    // On disk it is `Dead` from here on: should berthd stop half-way (a crash, a full disk), the container comes back
    // as one that cannot start and that `rm` finishes removing, never as a stopped container with half a writable
    // layer. Best effort: on a full disk this write may fail, and the removal goes on to free the space.
    let mut dead = rec;
    dead.state.status = Status::Dead;
    if let Err(e) = persist(d, c, &dead).await {
        tracing::debug!("mark {} dead on disk: {e}", &c.id[..12]);
    }
    // The writable layer goes first: on a full disk it is what frees the space the store needs to delete the record.
    // A failure from here on leaves the container listed as `Dead` (it cannot start again) and `rm` can be retried.
    if let Err(e) = release_files(d, c).await {
        return Err(removal_failed(c, e));
    }
    c.removed.store(true, Ordering::SeqCst);
    let store = d.store.clone();
    let id = c.id.clone();
    if let Err(e) = blocking(move || store.delete_doc_lazy(DOC_KIND, &id).map_err(Error::from)).await {
        c.removed.store(false, Ordering::SeqCst);
        return Err(removal_failed(c, e));
    }
    berth_store::fault::point("rm.after-record");
    if let Ok(mut m) = d.containers.write() {
        m.remove(&c.id);
    }
    crate::networks::release(d, &c.id).await;
    if volumes {
        crate::volumes::remove_anonymous(d, &c.record().mounts).await;
    }
    if let Ok(mut p) = c.pending_attach.lock() {
        p.clear();
    }
    c.changed.send_replace(u64::MAX);
    Ok(())
}

/// Releases what a stopped container holds outside the store: the runtime's state, its cgroup, its directories (the
/// writable layer, logs, the bundle). Safe to run again after a failure.
async fn release_files(d: &Daemon, c: &Container) -> Result<(), Error> {
    let dirs = [container_dir(d, &c.id), bundle_dir(d, &c.id)];
    let (id, runtime, state_root) = (c.id.clone(), c.record().runtime, d.config.exec_root.join("runtime"));
    blocking(move || {
        // The shim releases the runtime's resources when its container ends; this catches what a shim that died
        // (or was killed) could not.
        end_leftovers(&id, &runtime, &state_root, &dirs[1]);
        berth_store::fault::point("rm.after-cgroup");
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Internal(format!("remove {}: {e}", dir.display())));
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await
}

/// Records a removal that failed half-way: the container is `Dead` with the reason as its error, and waiters for its
/// removal (`run --rm`) are told instead of waiting forever.
fn removal_failed(c: &Container, e: Error) -> Error {
    let e = Error::Internal(format!("unable to remove container {}: {e}", c.id));
    tracing::warn!("{e}");
    c.update(|r| {
        r.state.status = Status::Dead;
        r.state.error = e.to_string();
    });
    e
}

/// Renames a container.
pub async fn rename(d: &Arc<Daemon>, c: &Arc<Container>, new_name: &str) -> Result<(), Error> {
    let new_name = new_name.trim_start_matches('/');
    crate::names::validate(new_name)?;
    let old = c.name();
    if old == new_name {
        return Err(Error::InvalidArgument("Renaming a container with the same name as its current name".into()));
    }
    if let Ok(other) = d.container(&format!("/{new_name}")) {
        return Err(name_conflict(new_name, &other.id));
    }
    let rec = c.update(|r| r.name = new_name.to_string());
    if let Err(e) = write_doc(d, &rec, Some(c.removed.clone()), true).await {
        let rec = c.update(|r| r.name = old);
        let _ = write_doc(d, &rec, Some(c.removed.clone()), true).await;
        return Err(e);
    }
    crate::networks::renamed(d, &c.id, new_name);
    Ok(())
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// Waits for a condition and returns the exit code then.
pub async fn wait(c: &Arc<Container>, cond: WaitCondition) -> (i64, Option<String>) {
    let mut rx = c.subscribe();
    let result = |c: &Container| {
        let r = c.record();
        (r.state.exit_code, Some(r.state.error).filter(|e| !e.is_empty()))
    };
    if cond == WaitCondition::NotRunning && !c.is_running() {
        return result(c);
    }
    let mut seen_running = c.is_running();
    loop {
        if rx.changed().await.is_err() {
            return result(c);
        }
        let removed = *rx.borrow() == u64::MAX;
        let running = c.is_running();
        seen_running |= running;
        match cond {
            // A removal that failed leaves it `Dead`, with the reason as its error.
            WaitCondition::Removed if removed || c.status() == Status::Dead => return result(c),
            WaitCondition::NotRunning if !running => return result(c),
            WaitCondition::NextExit if seen_running && !running && c.status() != Status::Created => return result(c),
            WaitCondition::NextExit if removed => return result(c),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Views

/// Docker's human status: `Up 5 minutes`, `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(rec: &Record, now: SystemTime) -> String {
    let since = |t: &str| {
        berth_api::time::parse(t)
            .and_then(|t| now.duration_since(t).ok())
            .map(berth_api::time::human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    let health = match rec.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    match rec.state.status {
        Status::Running => format!("Up {}{health}", since(&rec.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&rec.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if rec.state.started_at == berth_api::time::ZERO => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(d: &Daemon, c: &Container) -> Value {
    let rec = c.record();
    let dir = container_dir(d, &rec.id);
    let s = &rec.state;
    let status = s.status;
    let exec_ids: Vec<String> = d
        .execs
        .lock()
        .map(|m| m.values().filter(|e| e.container_id == rec.id).map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    let lower: Vec<String> = rec.lower_dirs.iter().map(|p| p.display().to_string()).collect();
    let mut v = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": status.as_str(),
            "Running": matches!(status, Status::Running | Status::Paused),
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Health": s.health,
        },
        "Image": rec.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        // Docker shows it for json-file only.
        "LogPath": if crate::logs::is_json_file(&rec.host_config) { log_path(d, &rec.id) } else { PathBuf::new() },
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
        "HostConfig": rec.host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": bundle_dir(d, &rec.id).join("rootfs"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            }
        },
        "Mounts": crate::mounts::view(&rec.mounts),
        "Config": rec.config,
        "NetworkSettings": crate::networks::settings(d, &rec),
    });
    // Docker has `State.Health` only for a container with a healthcheck.
    if s.health.is_none()
        && let Some(state) = v.get_mut("State").and_then(Value::as_object_mut)
    {
        state.remove("Health");
    }
    v
}

/// The `Command` of a list entry as moby writes it: the path, then the arguments, each one that holds a space in
/// single quotes (`sh -c 'echo hi'`).
fn list_command(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// One entry of `GET /containers/json`.
pub fn summary(d: &Daemon, rec: &Record, now: SystemTime, size: Option<(u64, u64)>) -> Value {
    let command = list_command(&rec.path, &rec.args);
    let mut v = json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.image,
        "ImageID": rec.image_id,
        "Command": command,
        "Created": berth_api::time::parse(&rec.created).map(berth_api::time::unix).unwrap_or(0),
        "Ports": crate::networks::list_ports(rec),
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec, now),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": crate::networks::settings(d, rec)["Networks"].clone()},
        "Mounts": crate::mounts::view(&rec.mounts),
    });
    if let Some((rw, root)) = size {
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(root);
    }
    v
}

/// A container's sizes as Docker reports them: its writable layer (`SizeRw`) and that plus its image
/// (`SizeRootFs`). Blocking: walks the writable layer.
pub fn sizes(d: &Daemon, rec: &Record) -> (u64, u64) {
    let rw = dir_size(&container_dir(d, &rec.id).join("upper"));
    let image = d.store.resolve_image(&rec.image_id).map(|i| i.size.max(0) as u64).unwrap_or(0);
    (rw, rw + image)
}

/// Bytes used by a directory tree (for `ps -s` and `system df`).
pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// `GET /containers/{id}/top`: `ps` output for the container's processes.
pub async fn top(c: &Arc<Container>, ps_args: &str) -> Result<Value, Error> {
    if !c.is_running() {
        return Err(Error::Conflict(format!("Container {} is not running", c.id)));
    }
    let cg = berth_runtime::cgroups::Cgroup::open(&format!("berth/{}", c.id))
        .map_err(|e| Error::Internal(format!("cgroup: {e}")))?;
    let pids: Vec<i32> = cg.procs().map_err(|e| Error::Internal(format!("cgroup: {e}")))?;
    let args: Vec<String> =
        if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.split_whitespace().map(str::to_string).collect() };
    let out = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| Error::Internal(format!("ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_commands_quote_arguments_with_spaces() {
        assert_eq!(list_command("sh", &["-c".into(), "echo hi; sleep 1".into()]), "sh -c 'echo hi; sleep 1'");
        assert_eq!(list_command("sleep", &["100".into()]), "sleep 100");
        assert_eq!(list_command("true", &[]), "true");
    }
}
