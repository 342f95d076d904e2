//! The daemon's state: paths, the store, the shims, the containers and exec instances it knows, the network and volume
//! state; looking a container up by name or ID. Assembled by `boot.rs`; every manager takes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::Error;
use berth_store::Store;

use crate::containers::record::{Container, Record};
use crate::containers::shim_client::ShimClient;
use crate::exec::record::ExecInstance;

/// Where things live and which programs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub runtime: String,
    pub shim: PathBuf,
    pub network: crate::networks::state::NetConfig,
    /// The settings a reload (`SIGHUP`) changes, as at start-up: the daemon reads the current ones from
    /// [`Daemon::reloadable`].
    pub reloadable: Reloadable,
    /// The engine's ID (`/info`'s `ID`, the actor of `daemon` events): made once per data root (`boot::open`).
    pub engine_id: String,
    /// Docker's `certs.d` layout: CA certificates per registry.
    pub registry_certs_dir: PathBuf,
    /// The default log driver and options of containers created without their own.
    pub log: crate::logs::LogConfig,
    /// `--userns-remap`: the ID range of containers' users on the host.
    pub userns_remap: Option<berth_runtime::shim::IdMap>,
    /// The init run as PID 1 of `--init` containers (bind-mounted read-only at `/sbin/docker-init`).
    pub init_path: PathBuf,
    /// `--init`: containers that do not say run the init.
    pub init: bool,
}

/// The settings a reload (`SIGHUP`, `reload.rs`) changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloadable {
    /// The log level (`--log-level`, `log-level`).
    pub log_level: tracing::Level,
    /// Registries reached over plain HTTP, besides loopback ones (`--insecure-registry`, `insecure-registries`).
    pub insecure_registries: Vec<String>,
}

impl Default for Reloadable {
    fn default() -> Self {
        Reloadable { log_level: tracing::Level::INFO, insecure_registries: Vec::new() }
    }
}

/// The daemon.
pub struct Daemon {
    pub config: Config,
    pub store: Arc<Store>,
    pub containers: RwLock<HashMap<String, Arc<Container>>>,
    pub execs: Mutex<HashMap<String, Arc<ExecInstance>>>,
    /// Held shared while a container is created from an image, exclusively while an image is removed: a removal
    /// never deletes layers that a container being created is about to use.
    pub image_use: tokio::sync::RwLock<()>,
    pub volumes: crate::volumes::state::Volumes,
    pub networks: crate::networks::state::Networks,
    /// The containers' shims (the `berth-shim` binary; an in-memory fake in unit tests).
    pub shims: Arc<dyn ShimClient>,
    /// The event bus (`GET /events`); managers publish on it.
    pub events: crate::events::Events,
    /// The settings `SIGHUP` reloads (`reload.rs`).
    reloadable: RwLock<Reloadable>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A store error as a domain error (where `?` cannot convert it, as in a `map_err` of a closure).
pub fn store_error(e: berth_store::StoreError) -> Error {
    Error::Store(e)
}

impl Daemon {
    /// Assembles the daemon's state over an opened store: its (empty) tables and the network and volume state, with
    /// the given shims. Nothing is loaded or reconciled here (see `boot::open`).
    pub fn assemble(
        config: Config,
        store: Store,
        shims: Arc<dyn ShimClient>,
        events: crate::events::Events,
    ) -> Arc<Daemon> {
        let networks = crate::networks::state::Networks::new(config.network.clone(), &config.exec_root);
        Arc::new(Daemon {
            reloadable: RwLock::new(config.reloadable.clone()),
            shims,
            events,
            networks,
            volumes: crate::volumes::state::Volumes::new(&config.data_root),
            config,
            store: Arc::new(store),
            containers: RwLock::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            image_use: tokio::sync::RwLock::new(()),
        })
    }

    /// The reloadable settings as they are now.
    pub fn reloadable(&self) -> Reloadable {
        match self.reloadable.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the reloadable settings (`reload::apply`).
    pub fn set_reloadable(&self, r: Reloadable) {
        match self.reloadable.write() {
            Ok(mut g) => *g = r,
            Err(p) => *p.into_inner() = r,
        }
    }

    /// Every container, in no particular order.
    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        self.containers.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Finds a container by full ID, name (with or without the leading `/`) or unique ID prefix, as Docker does.
    pub fn container(&self, name_or_id: &str) -> std::result::Result<Arc<Container>, Error> {
        let not_found = || Error::NotFound(format!("No such container: {name_or_id}"));
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let map = self.containers.read().map_err(|_| Error::Internal("container table poisoned".into()))?;
        if let Some(c) = map.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.trim_start_matches('/');
        if let Some(c) = map.values().find(|c| c.name() == name) {
            return Ok(c.clone());
        }
        let mut matches = map.values().filter(|c| c.id.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some(c), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(Error::NotFound(format!(
                "No such container: {name_or_id} (multiple IDs found with provided prefix)"
            ))),
            _ => Err(not_found()),
        }
    }

    /// The record of container `target`, whose namespaces another container joins (`what`: "network", "ipc
    /// namespace"…); a conflict unless it is running.
    pub fn join_target(&self, target: &str, what: &str) -> std::result::Result<Record, Error> {
        let other = self.container(target)?;
        let orec = other.record();
        if !other.is_running() || orec.state.pid <= 0 {
            return Err(Error::Conflict(format!("cannot join {what} of a non running container: {}", orec.id)));
        }
        Ok(orec)
    }
}
