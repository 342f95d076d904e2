//! The typed model of a normalised project: what the planner needs of services, networks and volumes. It is read
//! from the normalised JSON (see [`crate::normalize`]), so every field has one form; scalars that interpolation
//! may have turned into strings (`read_only: "${RO}"`) are accepted in either form.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::normalize::scalar_string;

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Bool(b) => Some(b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "no" | "n" | "off" | "0" | "" => Some(false),
            _ => return Err(serde::de::Error::custom(format!("expected a boolean, got {s:?}"))),
        },
        Value::Null => None,
        o => return Err(serde::de::Error::custom(format!("expected a boolean, got {o}"))),
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(scalar_string(&v))
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_u64().map(Some).ok_or_else(|| serde::de::Error::custom(format!("expected a count, got {n}")))
        }
        Value::String(s) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected a count, got {s:?}")))
        }
        o => Err(serde::de::Error::custom(format!("expected a count, got {o}"))),
    }
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_i64().map(Some).ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {n}")))
        }
        Value::String(s) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected an integer, got {s:?}")))
        }
        o => Err(serde::de::Error::custom(format!("expected an integer, got {o}"))),
    }
}

/// A mapping of strings whose values may be missing (`environment: {A: null}`).
pub type OptMap = BTreeMap<String, Option<String>>;

/// `build:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Build {
    /// The context directory (absolute) or URL.
    pub context: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: Option<String>,
    /// An inline Dockerfile.
    pub dockerfile_inline: Option<String>,
    /// Build arguments.
    pub args: OptMap,
    /// The stage to build.
    pub target: Option<String>,
    /// Labels of the image.
    pub labels: OptMap,
    /// Do not use the cache.
    #[serde(deserialize_with = "lenient_bool")]
    pub no_cache: Option<bool>,
    /// Always pull the base images.
    #[serde(deserialize_with = "lenient_bool")]
    pub pull: Option<bool>,
    /// More tags.
    pub tags: Vec<String>,
    /// The network of the build's RUN steps.
    pub network: Option<String>,
    /// `--shm-size`.
    #[serde(deserialize_with = "lenient_string")]
    pub shm_size: Option<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<String>,
    /// Images whose layers may serve as the build's cache (`--cache-from`; BuildKit's `type=...` forms too).
    pub cache_from: Vec<String>,
    /// Where to export the cache (BuildKit only).
    pub cache_to: Vec<String>,
    /// The platforms to build for.
    pub platforms: Vec<String>,
    /// Named contexts (BuildKit only).
    pub additional_contexts: OptMap,
    /// Build secrets (BuildKit only).
    pub secrets: Vec<Value>,
    /// SSH agent sockets or keys to forward (BuildKit only).
    pub ssh: OptMap,
}

/// A published port (long syntax).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Port {
    /// The container's port.
    pub target: u16,
    /// The host port or range (`8080`, `8080-8081`); empty for a random one.
    #[serde(deserialize_with = "lenient_string")]
    pub published: Option<String>,
    /// The host address.
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
}

/// A mount (long syntax).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceVolume {
    /// `volume`, `bind`, `tmpfs`, `npipe`, `cluster`, `image`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The volume's key in `volumes:`, or the host path.
    pub source: Option<String>,
    /// The path in the container.
    pub target: String,
    /// Read-only.
    #[serde(deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    /// Bind options.
    pub bind: Option<BindOptions>,
    /// Volume options.
    pub volume: Option<VolumeOptions>,
    /// tmpfs options.
    pub tmpfs: Option<TmpfsOptions>,
}

/// `volumes[].bind`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BindOptions {
    /// `rprivate`, `shared`...
    pub propagation: Option<String>,
    /// Create the host path when it is missing (the short syntax's behaviour).
    #[serde(deserialize_with = "lenient_bool")]
    pub create_host_path: Option<bool>,
}

/// `volumes[].volume`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    #[serde(deserialize_with = "lenient_bool")]
    pub nocopy: Option<bool>,
    /// A subdirectory of the volume.
    pub subpath: Option<String>,
}

/// `volumes[].tmpfs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TmpfsOptions {
    /// The size (bytes or `64m`).
    #[serde(deserialize_with = "lenient_string")]
    pub size: Option<String>,
    /// The mode (octal).
    #[serde(deserialize_with = "lenient_i64")]
    pub mode: Option<i64>,
}

/// A service's attachment to a network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceNetwork {
    /// More names of the service on this network.
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    pub ipv4_address: Option<String>,
    /// A fixed IPv6 address.
    pub ipv6_address: Option<String>,
    /// A fixed MAC address.
    pub mac_address: Option<String>,
    /// The order in which networks are connected.
    #[serde(deserialize_with = "lenient_i64")]
    pub priority: Option<i64>,
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Dependency {
    /// `service_started`, `service_healthy`, `service_completed_successfully`.
    pub condition: String,
    /// Restart the dependent service when this one is restarted.
    #[serde(deserialize_with = "lenient_bool")]
    pub restart: Option<bool>,
    /// Whether a missing dependency is an error (false: a warning).
    #[serde(deserialize_with = "lenient_bool")]
    pub required: Option<bool>,
}

/// `healthcheck:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Between checks.
    pub interval: Option<String>,
    /// Of one check.
    pub timeout: Option<String>,
    /// Failures before unhealthy.
    #[serde(deserialize_with = "lenient_i64")]
    pub retries: Option<i64>,
    /// Failures in this time after the start do not count.
    pub start_period: Option<String>,
    /// Between checks during the start period.
    pub start_interval: Option<String>,
    /// No check at all.
    #[serde(deserialize_with = "lenient_bool")]
    pub disable: Option<bool>,
}

/// `deploy.resources.limits` / `reservations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// CPUs (`0.5`).
    #[serde(deserialize_with = "lenient_string")]
    pub cpus: Option<String>,
    /// Memory (`64m`).
    #[serde(deserialize_with = "lenient_string")]
    pub memory: Option<String>,
    /// Maximum number of processes.
    #[serde(deserialize_with = "lenient_i64")]
    pub pids: Option<i64>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeployResources {
    /// Upper limits.
    pub limits: Option<Resources>,
    /// Reservations.
    pub reservations: Option<Resources>,
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeployRestart {
    /// `none`, `on-failure`, `any`.
    pub condition: Option<String>,
    /// Maximum attempts.
    #[serde(deserialize_with = "lenient_i64")]
    pub max_attempts: Option<i64>,
}

/// `deploy:` (the parts that apply to one engine).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Deploy {
    /// Number of containers.
    #[serde(deserialize_with = "lenient_u64")]
    pub replicas: Option<u64>,
    /// Resource limits.
    pub resources: Option<DeployResources>,
    /// Restart policy.
    pub restart_policy: Option<DeployRestart>,
    /// Labels of the service (not of the containers).
    pub labels: Option<Value>,
}

/// `ulimits.<name>`: one number or `{soft, hard}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ulimit {
    /// Soft and hard limit alike.
    Single(i64),
    /// Separate limits.
    Pair {
        /// Soft limit.
        soft: i64,
        /// Hard limit.
        hard: i64,
    },
}

/// `logging:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Logging {
    /// The driver.
    pub driver: Option<String>,
    /// Its options.
    pub options: OptMap,
}

/// A lifecycle hook: a command run in the container (`post_start`, `pre_stop`, `sync+exec`) or in a helper
/// container before it starts (`pre_start`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Hook {
    /// The command (exec form).
    pub command: Vec<String>,
    /// The user to run it as.
    #[serde(deserialize_with = "lenient_string")]
    pub user: Option<String>,
    /// With extended privileges.
    #[serde(deserialize_with = "lenient_bool")]
    pub privileged: Option<bool>,
    /// Its working directory.
    pub working_dir: Option<String>,
    /// More variables.
    pub environment: OptMap,
}

/// One `develop.watch` rule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct WatchRule {
    /// The host path watched (absolute after loading).
    pub path: String,
    /// `sync`, `rebuild`, `restart`, `sync+restart`, `sync+exec`.
    pub action: String,
    /// Where `path` goes in the container (sync actions).
    pub target: Option<String>,
    /// Patterns (relative to `path`, `.dockerignore` syntax) whose changes are ignored.
    pub ignore: Vec<String>,
    /// Patterns a change must match to count (when given).
    pub include: Vec<String>,
    /// `sync+exec`'s command.
    pub exec: Option<Hook>,
    /// Sync the whole path once when watching begins.
    #[serde(deserialize_with = "lenient_bool")]
    pub initial_sync: Option<bool>,
}

/// `develop:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Develop {
    /// The watch rules.
    pub watch: Vec<WatchRule>,
}

/// `provider:`: a service managed by an external component instead of a container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Provider {
    /// The component (`model`, a plugin's name).
    #[serde(rename = "type")]
    pub typ: String,
    /// Its options.
    pub options: BTreeMap<String, Value>,
}

/// One service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    /// The service's name (its key; filled in by the loader).
    #[serde(skip)]
    pub name: String,
    pub build: Option<Build>,
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: OptMap,
    pub ports: Vec<Port>,
    pub expose: Vec<String>,
    pub volumes: Vec<ServiceVolume>,
    pub volumes_from: Vec<String>,
    pub networks: Option<BTreeMap<String, Option<ServiceNetwork>>>,
    pub network_mode: Option<String>,
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub labels: OptMap,
    #[serde(deserialize_with = "lenient_string")]
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub container_name: Option<String>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub privileged: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub init: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub tty: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub stdin_open: Option<bool>,
    pub tmpfs: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<String>,
    pub deploy: Option<Deploy>,
    #[serde(deserialize_with = "lenient_u64")]
    pub scale: Option<u64>,
    pub profiles: Vec<String>,
    pub security_opt: Vec<String>,
    pub sysctls: OptMap,
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(deserialize_with = "lenient_string")]
    pub mem_limit: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub memswap_limit: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub mem_reservation: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub cpus: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub cpu_shares: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "lenient_string")]
    pub shm_size: Option<String>,
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub logging: Option<Logging>,
    pub pull_policy: Option<String>,
    pub platform: Option<String>,
    pub runtime: Option<String>,
    pub mac_address: Option<String>,
    pub group_add: Vec<Value>,
    pub devices: Vec<Value>,
    pub secrets: Vec<Value>,
    pub configs: Vec<Value>,
    pub pre_start: Vec<Hook>,
    pub post_start: Vec<Hook>,
    pub pre_stop: Vec<Hook>,
    pub provider: Option<Provider>,
    pub develop: Option<Develop>,
}

impl Service {
    /// The number of containers `up` keeps (`scale`, else `deploy.replicas`, else 1).
    pub fn replicas(&self) -> u64 {
        self.scale.or_else(|| self.deploy.as_ref().and_then(|d| d.replicas)).unwrap_or(1)
    }

    /// The networks the service joins, in the order Compose connects them (priority, then name).
    pub fn network_list(&self) -> Vec<(String, ServiceNetwork)> {
        let mut list: Vec<(String, ServiceNetwork)> = match &self.networks {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect(),
            None if self.network_mode.is_none() => vec![("default".to_string(), ServiceNetwork::default())],
            None => Vec::new(),
        };
        list.sort_by(|a, b| b.1.priority.unwrap_or(0).cmp(&a.1.priority.unwrap_or(0)).then(a.0.cmp(&b.0)));
        list
    }
}

/// A top-level network or volume.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// The engine's name of it (filled in by the loader: `<project>_<key>` unless `name:` or external).
    pub name: String,
    /// Whether it is managed outside the project.
    #[serde(deserialize_with = "lenient_bool")]
    pub external: Option<bool>,
    /// The driver.
    pub driver: Option<String>,
    /// The driver's options.
    pub driver_opts: OptMap,
    /// Labels.
    pub labels: OptMap,
    /// Networks: no external connectivity.
    #[serde(deserialize_with = "lenient_bool")]
    pub internal: Option<bool>,
    /// Networks: `enable_ipv6`.
    #[serde(deserialize_with = "lenient_bool")]
    pub enable_ipv6: Option<bool>,
    /// Networks: `attachable`.
    #[serde(deserialize_with = "lenient_bool")]
    pub attachable: Option<bool>,
    /// Networks: the address management.
    pub ipam: Option<Ipam>,
}

impl Resource {
    /// Whether the project does not manage it.
    pub fn is_external(&self) -> bool {
        self.external.unwrap_or(false)
    }
}

/// `networks.<n>.ipam`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Ipam {
    /// The IPAM driver.
    pub driver: Option<String>,
    /// The pools.
    pub config: Vec<IpamPool>,
}

/// One IPAM pool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    /// `10.1.0.0/24`.
    pub subnet: Option<String>,
    /// The range to allocate from.
    pub ip_range: Option<String>,
    /// The gateway.
    pub gateway: Option<String>,
}
