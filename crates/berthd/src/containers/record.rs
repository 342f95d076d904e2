//! A container's record (its document in the store), its live state (`Container`), and its health: the leaf types the
//! daemon, the network manager and the others name without the container manager.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio::sync::watch;

pub(crate) const DOC_KIND: &str = "container";

/// The label of a pod's member containers: the pod's ID (how lists and other tools find a container's pod).
pub const POD_LABEL: &str = "io.berth.pod";
/// The label of a pod's namespace holder (`berth-init --pause`, a container without an image): the pod's ID. A holder
/// is not listed, publishes no container events and is removed only with its pod.
pub const POD_HOLDER_LABEL: &str = "io.berth.pod.infra";

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
    pub health: Option<Health>,
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
    /// Stopped or killed by the user since its last start (Docker's `HasBeenManuallyStopped`): an `unless-stopped`
    /// container stays stopped, across daemon restarts too.
    #[serde(default)]
    pub manually_stopped: bool,
    pub runtime: String,
    /// The image's layers, top first, captured at creation.
    pub lower_dirs: Vec<PathBuf>,
    /// Volumes, binds and tmpfs mounts (`-v`, `--mount`, `--volumes-from`, the image's `VOLUME`s).
    #[serde(default)]
    pub mounts: Vec<crate::mounts::point::MountPoint>,
    /// Its networks (and, while it runs, its addresses and published ports).
    #[serde(default)]
    pub net: crate::networks::state::NetState,
}

impl Record {
    fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
    }

    /// The pod this container is a member of.
    pub fn pod(&self) -> Option<&str> {
        self.label(POD_LABEL)
    }

    /// The pod whose namespace holder this container is.
    pub fn holder_of(&self) -> Option<&str> {
        self.label(POD_HOLDER_LABEL)
    }

    /// Refuses `action` on a pod's namespace holder (409 naming the pod): it is the pod's, acted on only through it.
    pub fn refuse_holder(&self, action: &str) -> Result<(), crate::error::Error> {
        match self.holder_of() {
            Some(pod) => Err(crate::error::Error::Conflict(format!(
                "container {} is the infra container of pod {pod} and cannot be {action} on its own: act on the pod",
                self.id
            ))),
            None => Ok(()),
        }
    }
}

/// What a container is to a pod. Only the pod manager makes a container a member or a holder: the labels that say so
/// (`io.berth.pod`, `io.berth.pod.infra`) are refused in a create request and dropped from an image's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PodRole {
    #[default]
    None,
    /// A member of the pod with this ID.
    Member(String),
    /// The namespace holder of the pod with this ID.
    Holder(String),
}

/// The labels berthd alone sets.
pub const POD_LABELS: [&str; 2] = [POD_LABEL, POD_HOLDER_LABEL];

/// Streams an attach client wants.
#[derive(Debug, Clone, Copy)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub(super) struct PendingAttach {
    pub(super) streams: AttachStreams,
    pub(super) tx: tokio::sync::oneshot::Sender<UnixStream>,
}

/// A container known to the daemon.
pub struct Container {
    pub id: String,
    pub(super) rec: Mutex<Record>,
    /// Serialises start, stop, restart, pause, remove.
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Held by the exit's clean-up (networking, volumes, bundle), which follows the `die` as in dockerd: a start or
    /// a removal waits for it.
    pub(super) cleanup: tokio::sync::Mutex<()>,
    /// Bumped on every state change (and set to `u64::MAX` when the container is removed).
    pub(super) changed: watch::Sender<u64>,
    pub(super) pending_attach: Mutex<Vec<PendingAttach>>,
    /// Set while the user stops or kills it, so the restart policy leaves it alone (Docker's `ExitOnNext`).
    pub(super) stopping: AtomicBool,
    /// Set while `restart` stops it: an `--rm` container is not removed at that exit (dockerd's restart keeps it).
    pub(super) restarting: AtomicBool,
    /// Bumped when a policy restart is scheduled or cancelled: a pending restart runs only if it is still the last.
    pub(super) restart_gen: AtomicU64,
    /// The restart policy's current back-off (Docker's restart manager timeout; zero: none yet).
    pub(super) backoff: Mutex<Duration>,
    /// Set once `remove` deletes it: a late state change must not write the document back.
    pub(super) removed: Arc<AtomicBool>,
}

impl Container {
    pub(super) fn new(rec: Record) -> Arc<Container> {
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            lifecycle: tokio::sync::Mutex::new(()),
            cleanup: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            pending_attach: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            restarting: AtomicBool::new(false),
            restart_gen: AtomicU64::new(0),
            backoff: Mutex::new(Duration::ZERO),
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

    /// Publishes a container event with Docker's attributes (`name`, `image`, the container's labels) and `extra`.
    pub fn publish(&self, events: &crate::events::Events, action: &str, extra: &[(&str, &str)]) {
        let r = self.record();
        if r.holder_of().is_some() {
            return;
        }
        let mut a: std::collections::BTreeMap<String, String> =
            r.config.labels.unwrap_or_default().into_iter().collect();
        a.insert("name".into(), r.name);
        a.insert("image".into(), r.image);
        a.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        events.publish("container", action, &self.id, a);
    }

    /// Changes the record in memory only (the healthcheck's results, which Docker does not need on disk either).
    pub fn update_volatile(&self, f: impl FnOnce(&mut Record)) -> Record {
        self.update(f)
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut Record)) -> Record {
        self.update_then(f, |_| {})
    }

    /// [`Container::update`], running `after` once the change is visible and before the waiters (`stop`, `wait`)
    /// wake: events published there keep their order (a `die` before the `stop` that waited for it).
    pub(super) fn update_then(&self, f: impl FnOnce(&mut Record), after: impl FnOnce(&Record)) -> Record {
        let mut g = match self.rec.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
        let r = g.clone();
        drop(g);
        after(&r);
        self.changed.send_modify(|v| *v = v.wrapping_add(1).min(u64::MAX - 1));
        r
    }

    /// Subscribes to state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Replaces the published ports a running container holds (after `network disconnect` took some away).
    pub fn update_net_ports(&self, ports: Vec<crate::networks::state::BoundPort>) {
        self.update(|r| r.net.ports = ports);
    }

    pub fn status(&self) -> Status {
        self.record().state.status
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status(), Status::Running | Status::Paused)
    }
}

/// `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    /// Consecutive failures.
    pub failing_streak: i64,
    /// The last results.
    pub log: Vec<Probe>,
}

/// One result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}
