//! `kube generate`: containers (their Engine API inspection) and compose services, described alike as [`Ctr`],
//! to Kubernetes documents: one pod (or a workload of `--type` around its template) holding every container, as
//! Podman does for several containers; PersistentVolumeClaims for named volumes, ConfigMaps and Secrets for
//! compose's configs and secrets, a Service for the ports (`--service`). What Kubernetes cannot express is a
//! warning, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use berth_compose::Project;
use berth_compose::model::Service;
use serde_json::Value;

use crate::model::*;
use crate::{Error, Result, dns_label, quantity};

/// The annotation of a generated PersistentVolumeClaim naming the engine volume it stands for, so that `kube
/// play` on Berth uses that volume (and its data) again.
pub const ANNOTATION_VOLUME: &str = "io.berth.volume-name";

/// What kind of document wraps the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
}

impl std::str::FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Kind> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "pod" => Kind::Pod,
            "deployment" => Kind::Deployment,
            "statefulset" => Kind::StatefulSet,
            "daemonset" => Kind::DaemonSet,
            "job" => Kind::Job,
            o => {
                return Err(Error::Input(format!(
                    "invalid type {o:?}: expected pod, deployment, statefulset, daemonset or job"
                )));
            }
        })
    }
}

/// A healthcheck (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub start_period: Option<i64>,
}

/// A published or exposed port.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Port {
    pub container_port: u16,
    /// `tcp`, `udp`, `sctp`.
    pub protocol: String,
    /// Empty: every address.
    pub host_ip: String,
    /// `None`: exposed only, or published on a port the engine picks.
    pub host_port: Option<u16>,
    /// Published at all (a host port of the engine's choice counts).
    pub published: bool,
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A named volume (its engine name).
    Volume(String),
    /// A host path.
    Bind(String),
    /// A tmpfs.
    Tmpfs,
    /// An anonymous volume (its data lives as long as the container).
    Anonymous,
}

/// A mount of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: Source,
    pub target: String,
    pub read_only: bool,
}

/// A file put into the container (compose's configs and secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// Its name in the project (the ConfigMap's or Secret's name is made from it).
    pub name: String,
    pub content: String,
    pub secret: bool,
    /// The absolute path in the container.
    pub target: String,
    pub mode: Option<u32>,
}

/// One container, whatever it was described by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ctr {
    /// Its name (compose: the service's).
    pub name: String,
    pub image: String,
    /// The entrypoint, where it is not the image's.
    pub command: Option<Vec<String>>,
    /// The command, where it is not the image's.
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// Variables from compose's `env_file`s (a ConfigMap, `envFrom`).
    pub env_file: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub privileged: bool,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub health: Option<Health>,
    /// Docker's restart policy name (`no`, `always`, `unless-stopped`, `on-failure`).
    pub restart: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    pub mounts: Vec<Mount>,
    pub files: Vec<File>,
    pub hostname: Option<String>,
    /// The network mode when it is not the default bridge (`host`, `none`, `container:x`, a network's name).
    pub network_mode: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    /// The names other containers of the same project reach it by (compose: the service and its aliases).
    pub aliases: Vec<String>,
    /// Warnings found while reading it.
    pub warnings: Vec<String>,
}

/// `kube generate`'s choices.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The pod's (and workload's) name.
    pub name: String,
    /// The document wrapping the pod.
    pub kind: Kind,
    /// A Service for the ports.
    pub service: bool,
    /// Replicas of a Deployment or StatefulSet.
    pub replicas: Option<i64>,
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn opt_strs(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn port_key(k: &str) -> Option<(u16, String)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, proto.to_string()))
}

/// Labels that are the engine's or a tool's bookkeeping, not the user's.
fn own_label(k: &str) -> bool {
    !(k.starts_with("com.docker.compose.") || k.starts_with("io.berth.") || k.starts_with("org.opencontainers."))
}

/// A container from its inspection (`GET /containers/{id}/json`) and its image's (`GET /images/{id}/json`),
/// which tells what the container inherits rather than sets (entrypoint, command, environment, labels).
pub fn from_inspect(c: &Value, image: Option<&Value>) -> Ctr {
    let cfg = &c["Config"];
    let host = &c["HostConfig"];
    let icfg = image.map(|i| &i["Config"]);
    let name = c["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_string();
    let mut x =
        Ctr { name: name.clone(), image: cfg["Image"].as_str().unwrap_or_default().to_string(), ..Ctr::default() };
    let ientry = icfg.and_then(|i| opt_strs(i.get("Entrypoint"))).unwrap_or_default();
    let icmd = icfg.and_then(|i| opt_strs(i.get("Cmd"))).unwrap_or_default();
    let entry = strs(cfg.get("Entrypoint"));
    let cmd = strs(cfg.get("Cmd"));
    if entry != ientry {
        x.command = Some(entry);
    }
    if (cmd != icmd || x.command.is_some()) && !cmd.is_empty() {
        x.args = Some(cmd);
    }
    let ienv: BTreeSet<String> = icfg.map(|i| strs(i.get("Env"))).unwrap_or_default().into_iter().collect();
    for e in strs(cfg.get("Env")) {
        if ienv.contains(&e) {
            continue;
        }
        let (k, v) = e.split_once('=').unwrap_or((&e, ""));
        x.env.push((k.to_string(), v.to_string()));
    }
    let iwd = icfg.and_then(|i| i["WorkingDir"].as_str()).unwrap_or("");
    x.working_dir = cfg["WorkingDir"].as_str().filter(|w| !w.is_empty() && *w != iwd).map(str::to_string);
    let iuser = icfg.and_then(|i| i["User"].as_str()).unwrap_or("");
    x.user = cfg["User"].as_str().filter(|u| !u.is_empty() && *u != iuser).map(str::to_string);
    x.cap_add = strs(host.get("CapAdd"));
    x.cap_drop = strs(host.get("CapDrop"));
    x.read_only = host["ReadonlyRootfs"].as_bool().unwrap_or(false);
    x.privileged = host["Privileged"].as_bool().unwrap_or(false);
    x.memory = host["Memory"].as_i64().filter(|m| *m > 0);
    x.memory_reservation = host["MemoryReservation"].as_i64().filter(|m| *m > 0);
    x.nano_cpus = host["NanoCpus"].as_i64().filter(|n| *n > 0).or_else(|| {
        let q = host["CpuQuota"].as_i64().filter(|q| *q > 0)?;
        let p = host["CpuPeriod"].as_i64().filter(|p| *p > 0).unwrap_or(100_000);
        Some(q * 1_000_000_000 / p)
    });
    x.pids_limit = host["PidsLimit"].as_i64().filter(|p| *p > 0);
    if let Some(h) = cfg.get("Healthcheck").filter(|h| h.is_object()) {
        let test = strs(h.get("Test"));
        if !test.is_empty() && test[0] != "NONE" {
            x.health = Some(Health {
                test,
                interval: h["Interval"].as_i64().filter(|n| *n > 0),
                timeout: h["Timeout"].as_i64().filter(|n| *n > 0),
                retries: h["Retries"].as_i64().filter(|n| *n > 0),
                start_period: h["StartPeriod"].as_i64().filter(|n| *n > 0),
            });
        }
    }
    x.restart = host["RestartPolicy"]["Name"].as_str().filter(|r| !r.is_empty()).map(str::to_string);
    let ilabels = icfg.map(|i| i["Labels"].clone()).unwrap_or(Value::Null);
    if let Some(l) = cfg["Labels"].as_object() {
        for (k, v) in l {
            let v = v.as_str().unwrap_or_default();
            if own_label(k) && ilabels[k.as_str()].as_str() != Some(v) {
                x.labels.insert(k.clone(), v.to_string());
            }
        }
    }
    // Ports: bound ones first (a random host port as the engine bound it), then exposed ones.
    let mut seen = BTreeSet::new();
    if let Some(b) = host["PortBindings"].as_object() {
        for (k, list) in b {
            let Some((port, proto)) = port_key(k) else { continue };
            for bind in list.as_array().into_iter().flatten() {
                let mut hp = bind["HostPort"].as_str().and_then(|p| p.parse().ok());
                if hp.is_none() {
                    hp = c["NetworkSettings"]["Ports"][k.as_str()][0]["HostPort"].as_str().and_then(|p| p.parse().ok());
                }
                x.ports.push(Port {
                    container_port: port,
                    protocol: proto.clone(),
                    host_ip: bind["HostIp"].as_str().unwrap_or_default().to_string(),
                    host_port: hp,
                    published: true,
                });
                seen.insert(k.clone());
            }
        }
    }
    if let Some(e) = cfg["ExposedPorts"].as_object() {
        for k in e.keys().filter(|k| !seen.contains(*k)) {
            if let Some((port, proto)) = port_key(k) {
                x.ports.push(Port { container_port: port, protocol: proto, ..Port::default() });
            }
        }
    }
    for m in c["Mounts"].as_array().into_iter().flatten() {
        let target = m["Destination"].as_str().unwrap_or_default().to_string();
        let read_only = !m["RW"].as_bool().unwrap_or(true);
        let source = match m["Type"].as_str().unwrap_or_default() {
            "volume" => {
                let n = m["Name"].as_str().unwrap_or_default().to_string();
                if is_hex_id(&n) { Source::Anonymous } else { Source::Volume(n) }
            }
            "bind" => Source::Bind(m["Source"].as_str().unwrap_or_default().to_string()),
            "tmpfs" => Source::Tmpfs,
            o => {
                x.warnings.push(format!("container {name}: a mount of type {o:?} at {target} cannot be expressed"));
                continue;
            }
        };
        x.mounts.push(Mount { source, target, read_only });
    }
    if let Some(t) = host["Tmpfs"].as_object() {
        for k in t.keys() {
            x.mounts.push(Mount { source: Source::Tmpfs, target: k.clone(), read_only: false });
        }
    }
    let id = c["Id"].as_str().unwrap_or_default();
    x.hostname = cfg["Hostname"].as_str().filter(|h| !h.is_empty() && !id.starts_with(*h)).map(str::to_string);
    let nm = host["NetworkMode"].as_str().unwrap_or_default();
    if !matches!(nm, "" | "default" | "bridge") && !nm.starts_with("container:") {
        x.network_mode = Some(nm.to_string());
    }
    x.tty = cfg["Tty"].as_bool().unwrap_or(false);
    x.stdin = cfg["OpenStdin"].as_bool().unwrap_or(false);
    x
}

/// A compose service as a container. Files of `configs:`/`secrets:` are read here (from `file:`, the project's
/// `environment:` variable, or `content:`).
pub fn from_service(project: &Project, svc: &Service) -> Result<Ctr> {
    let name = svc.name.clone();
    let mut x =
        Ctr { name: name.clone(), image: berth_compose::plan::image_name(&project.name, svc), ..Ctr::default() };
    if svc.build.is_some() && svc.image.is_none() {
        x.warnings.push(format!(
            "service {name} is built (build:) and names no image: the pod uses {:?}, which must be pushed to a registry the cluster can pull from",
            x.image
        ));
    }
    let key = |k: &str| format!("services.{name}.{k}");
    x.command = svc.entrypoint.clone();
    x.args = svc.command.clone();
    for (k, v) in &svc.environment {
        match v {
            Some(v) => x.env.push((k.clone(), v.clone())),
            None => x.warnings.push(format!("service {name}: variable {k} has no value and is left out")),
        }
    }
    // Variables that came from `env_file`s (with the value the service ended up with) go into a ConfigMap.
    let files = project.model.get("services").and_then(|m| m.get(&name)).and_then(|v| v.get("env_file"));
    for ef in files.and_then(Value::as_array).into_iter().flatten() {
        let Some(path) = ef.get("path").and_then(Value::as_str) else { continue };
        // The loader read it already (a missing required file is its error).
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let vars = match ef.get("format").and_then(Value::as_str) {
            Some("raw") => berth_compose::dotenv::parse_raw(&text),
            _ => berth_compose::dotenv::parse(path, &text, &project.environment)
                .map_err(|e| Error::Input(format!("{}: {e}", key("env_file"))))?,
        };
        for (k, v) in vars {
            if crate::valid_data_key(&k)
                && let Some(i) = x.env.iter().position(|(ek, ev)| *ek == k && *ev == v)
            {
                x.env.remove(i);
                x.env_file.insert(k, v);
            }
        }
    }
    x.working_dir = svc.working_dir.clone();
    x.user = svc.user.clone();
    x.cap_add = svc.cap_add.clone();
    x.cap_drop = svc.cap_drop.clone();
    x.read_only = svc.read_only.unwrap_or(false);
    x.privileged = svc.privileged.unwrap_or(false);
    let mem = |s: &Option<String>, k: &str| -> Result<Option<i64>> {
        match s {
            None => Ok(None),
            Some(s) => {
                berth_api::units::ram_in_bytes(s).map(Some).map_err(|e| Error::Input(format!("{}: {e}", key(k))))
            }
        }
    };
    let limits =
        svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.clone()).unwrap_or_default();
    let reserv =
        svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.clone()).unwrap_or_default();
    x.memory = mem(&limits.memory.or(svc.mem_limit.clone()), "mem_limit")?;
    x.memory_reservation = mem(&reserv.memory.or(svc.mem_reservation.clone()), "mem_reservation")?;
    if let Some(c) = limits.cpus.or(svc.cpus.clone()) {
        let n: f64 = c.trim().parse().map_err(|_| Error::Input(format!("{}: {c:?} is not a number", key("cpus"))))?;
        x.nano_cpus = Some((n * 1e9).round() as i64).filter(|n| *n > 0);
    }
    x.pids_limit = limits.pids.or(svc.pids_limit).filter(|p| *p > 0);
    if let Some(h) = &svc.healthcheck
        && !h.disable.unwrap_or(false)
        && !h.test.is_empty()
        && h.test[0] != "NONE"
    {
        let ns = |s: &Option<String>| -> Result<Option<i64>> {
            match s {
                None => Ok(None),
                Some(s) => berth_api::units::go_duration_nanos(s)
                    .map(Some)
                    .map_err(|e| Error::Input(format!("{}: {e}", key("healthcheck")))),
            }
        };
        x.health = Some(Health {
            test: h.test.clone(),
            interval: ns(&h.interval)?,
            timeout: ns(&h.timeout)?,
            retries: h.retries,
            start_period: ns(&h.start_period)?,
        });
    }
    x.restart = berth_compose::plan::restart_policy(svc).map(|(n, _)| n);
    x.labels = svc.labels.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
    for p in &svc.ports {
        let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        let published = p.published.clone().unwrap_or_default();
        let (first, _) = published.split_once('-').unwrap_or((&published, ""));
        if published.contains('-') {
            x.warnings.push(format!("service {name}: host port range {published} becomes its first port {first}"));
        }
        x.ports.push(Port {
            container_port: p.target,
            protocol: proto,
            host_ip: p.host_ip.clone().unwrap_or_default(),
            host_port: first.parse().ok(),
            published: true,
        });
    }
    for e in &svc.expose {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        match p.parse() {
            Ok(port) => x.ports.push(Port { container_port: port, protocol: proto.to_string(), ..Port::default() }),
            Err(_) => x.warnings.push(format!("service {name}: expose {e:?} (a range) is left out")),
        }
    }
    for v in &svc.volumes {
        let source = match (v.typ.as_str(), &v.source) {
            ("volume", Some(s)) => Source::Volume(project.volumes.get(s).map(|r| r.name.clone()).unwrap_or(s.clone())),
            ("volume", None) => Source::Anonymous,
            ("bind", Some(s)) => Source::Bind(s.clone()),
            ("tmpfs", _) => Source::Tmpfs,
            (t, _) => {
                x.warnings.push(format!("service {name}: a mount of type {t:?} at {} cannot be expressed", v.target));
                continue;
            }
        };
        x.mounts.push(Mount { source, target: v.target.clone(), read_only: v.read_only.unwrap_or(false) });
    }
    for t in &svc.tmpfs {
        let path = t.split_once(':').map(|(p, _)| p).unwrap_or(t);
        x.mounts.push(Mount { source: Source::Tmpfs, target: path.to_string(), read_only: false });
    }
    for (kind, list) in [("secrets", &svc.secrets), ("configs", &svc.configs)] {
        for item in list {
            let (source, target, _uid, _gid, mode) = berth_compose::plan::file_ref(item);
            let Some(def) = project.model.get(kind).and_then(|m| m.get(&source)) else { continue };
            let content = if let Some(f) = def.get("file").and_then(Value::as_str) {
                std::fs::read_to_string(f).map_err(|e| Error::Input(format!("{kind}.{source}: read {f}: {e}")))?
            } else if let Some(var) = def.get("environment").and_then(Value::as_str) {
                project.environment.get(var).cloned().unwrap_or_default()
            } else if let Some(c) = def.get("content") {
                berth_compose::normalize::scalar_string(c).unwrap_or_default()
            } else {
                x.warnings.push(format!("service {name}: {kind} {source} (external) cannot be expressed"));
                continue;
            };
            x.files.push(File {
                name: source.clone(),
                content,
                secret: kind == "secrets",
                target: berth_compose::plan::file_target(kind, &source, target),
                mode,
            });
        }
    }
    x.hostname = svc.hostname.clone();
    x.network_mode = svc.network_mode.clone();
    x.tty = svc.tty.unwrap_or(false);
    x.stdin = svc.stdin_open.unwrap_or(false);
    x.aliases.push(name.clone());
    for (_, n) in svc.network_list() {
        x.aliases.extend(n.aliases);
    }
    if let Some(c) = &svc.container_name {
        x.aliases.push(c.clone());
    }
    if !svc.depends_on.is_empty() {
        x.warnings
            .push(format!("service {name}: depends_on cannot be expressed (the containers of a pod start together)"));
    }
    if svc.replicas() > 1 {
        x.warnings.push(format!("service {name}: {} replicas become one container of the pod", svc.replicas()));
    }
    Ok(x)
}

/// The containers of a compose project (every enabled service), in the order `up` starts them.
pub fn from_project(project: &Project) -> Result<Vec<Ctr>> {
    berth_compose::plan::start_order(project, None)
        .iter()
        .filter_map(|n| project.services.get(n))
        .map(|s| from_service(project, s))
        .collect()
}

fn secs(ns: Option<i64>) -> Option<i64> {
    ns.map(|n| ((n + 999_999_999) / 1_000_000_000).max(1))
}

fn probe(h: &Health) -> Option<Probe> {
    let command = match h.test.first().map(String::as_str) {
        Some("CMD") => h.test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")],
        _ => return None,
    };
    Some(Probe {
        exec: Some(ExecAction { command }),
        period_seconds: secs(h.interval),
        timeout_seconds: secs(h.timeout),
        failure_threshold: h.retries,
        initial_delay_seconds: secs(h.start_period),
        ..Probe::default()
    })
}

fn capability(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
}

/// Whether `k: v` is a valid Kubernetes label (else it goes into the annotations).
fn valid_label(k: &str, v: &str) -> bool {
    let part = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(|l| part(l, 63) && !l.contains('_')))
        && part(name, 63)
        && (v.is_empty() || part(v, 63))
}

/// The documents for `ctrs` (one pod; its workload; PVCs, ConfigMaps, Secrets, Service) and the warnings.
pub fn generate(ctrs: &[Ctr], opts: &Options) -> Result<(Vec<Object>, Vec<String>)> {
    if ctrs.is_empty() {
        return Err(Error::Input("nothing to generate: no containers".into()));
    }
    let pod_name = dns_label(&opts.name);
    let mut warnings: Vec<String> = ctrs.iter().flat_map(|c| c.warnings.clone()).collect();
    let mut spec = PodSpec::default();
    let mut labels = StrMap::new();
    let mut annotations = StrMap::new();
    let mut claims: BTreeMap<String, String> = BTreeMap::new(); // claim name -> engine volume name
    let mut volumes: BTreeMap<String, Volume> = BTreeMap::new();
    let mut config_maps: BTreeMap<String, StrMap> = BTreeMap::new();
    let mut secrets: BTreeMap<String, StrMap> = BTreeMap::new();
    let mut names = BTreeSet::new();
    let mut service_ports: Vec<ServicePort> = Vec::new();
    let mut node_port = false;
    let mut container_ports = BTreeSet::new();
    let mut restarts = BTreeSet::new();
    let multi = ctrs.len() > 1;
    for c in ctrs {
        let cname = dns_label(&c.name);
        if !names.insert(cname.clone()) {
            return Err(Error::Input(format!("two containers would both be named {cname:?} in the pod")));
        }
        let mut k = Container {
            name: cname.clone(),
            image: c.image.clone(),
            command: c.command.clone(),
            args: c.args.clone(),
            working_dir: c.working_dir.clone(),
            env: c
                .env
                .iter()
                .map(|(n, v)| EnvVar { name: n.clone(), value: Some(v.clone()), value_from: None })
                .collect(),
            tty: c.tty,
            stdin: c.stdin,
            ..Container::default()
        };
        if !c.env_file.is_empty() {
            let obj = dns_label(&format!("{pod_name}-{cname}-env"));
            config_maps.insert(obj.clone(), c.env_file.clone());
            k.env_from.push(EnvFromSource {
                config_map_ref: Some(NameRef { name: obj, optional: None }),
                ..EnvFromSource::default()
            });
        }
        // Resources.
        let mut r = Resources::default();
        if let Some(m) = c.memory {
            r.limits.insert("memory".into(), IntOrString::Str(quantity::memory(m)));
        }
        if let Some(n) = c.nano_cpus {
            r.limits.insert("cpu".into(), IntOrString::Str(quantity::cpu(n)));
        }
        if let Some(m) = c.memory_reservation {
            r.requests.insert("memory".into(), IntOrString::Str(quantity::memory(m)));
        }
        if c.pids_limit.is_some() {
            warnings.push(format!("container {}: the pids limit cannot be expressed", c.name));
        }
        if !r.is_empty() {
            k.resources = Some(r);
        }
        // Security.
        let mut sc = SecurityContext::default();
        if let Some(u) = &c.user {
            let (user, group) = u.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((u, None));
            match user.parse::<i64>() {
                Ok(uid) => sc.run_as_user = Some(uid),
                Err(_) => warnings.push(format!(
                    "container {}: user {user:?} cannot be expressed (runAsUser takes a number)",
                    c.name
                )),
            }
            if let Some(g) = group {
                match g.parse::<i64>() {
                    Ok(gid) => sc.run_as_group = Some(gid),
                    Err(_) => warnings.push(format!("container {}: group {g:?} cannot be expressed", c.name)),
                }
            }
        }
        if !c.cap_add.is_empty() || !c.cap_drop.is_empty() {
            sc.capabilities = Some(Capabilities {
                add: c.cap_add.iter().map(|s| capability(s)).collect(),
                drop: c.cap_drop.iter().map(|s| capability(s)).collect(),
            });
        }
        if c.read_only {
            sc.read_only_root_filesystem = Some(true);
        }
        if c.privileged {
            sc.privileged = Some(true);
            warnings.push(format!(
                "container {}: privileged: a cluster's pod security admission may refuse it, and Kubernetes' privileged containers differ from Berth's defaults (devices, seccomp)",
                c.name
            ));
        }
        if !sc.is_empty() {
            k.security_context = Some(sc);
        }
        if let Some(h) = &c.health {
            k.liveness_probe = probe(h);
            k.readiness_probe = k.liveness_probe.clone();
        }
        restarts.insert(c.restart.clone().unwrap_or_else(|| "no".into()));
        for (l, v) in &c.labels {
            if valid_label(l, v) {
                labels.insert(l.clone(), v.clone());
            } else {
                annotations.insert(l.clone(), v.clone());
            }
        }
        // Ports.
        for p in &c.ports {
            if !container_ports.insert((p.container_port, p.protocol.clone())) {
                warnings.push(format!(
                    "container {}: port {}/{} is used by another container of the pod (they share one network namespace)",
                    c.name, p.container_port, p.protocol
                ));
            }
            let protocol = Some(p.protocol.to_ascii_uppercase()).filter(|p| p != "TCP");
            let mut cp = ContainerPort {
                container_port: i64::from(p.container_port),
                protocol: protocol.clone(),
                ..Default::default()
            };
            let in_range = p.host_port.is_some_and(|h| (30000..=32767).contains(&h));
            if opts.service {
                let sp = ServicePort {
                    name: Some(format!("{}-{}", p.container_port, p.protocol.to_ascii_lowercase())),
                    port: i64::from(p.container_port),
                    target_port: Some(IntOrString::Int(i64::from(p.container_port))),
                    node_port: if in_range { p.host_port.map(i64::from) } else { None },
                    protocol: protocol.clone(),
                };
                node_port |= p.published;
                if p.published
                    && !in_range
                    && let Some(h) = p.host_port
                {
                    warnings.push(format!(
                        "container {}: host port {h} is outside the NodePort range (30000-32767): it stays a hostPort of the container, and the cluster picks the node port",
                        c.name
                    ));
                }
                service_ports.push(sp);
            }
            if p.published && !(opts.service && in_range) {
                cp.host_port = p.host_port.map(i64::from);
                cp.host_ip = Some(p.host_ip.clone()).filter(|h| !h.is_empty() && h != "0.0.0.0" && h != "::");
            }
            k.ports.push(cp);
        }
        // Mounts.
        for m in &c.mounts {
            let (vname, vol) = match &m.source {
                Source::Volume(n) => {
                    let claim = dns_label(n);
                    claims.insert(claim.clone(), n.clone());
                    (
                        claim.clone(),
                        Volume {
                            name: claim.clone(),
                            persistent_volume_claim: Some(ClaimRef { claim_name: claim, read_only: None }),
                            ..Volume::default()
                        },
                    )
                }
                Source::Bind(p) => {
                    let typ = if std::path::Path::new(p).is_file() { "File" } else { "DirectoryOrCreate" };
                    let n = dns_label(&format!("host{}", p.replace('/', "-")));
                    (
                        n.clone(),
                        Volume {
                            name: n,
                            host_path: Some(HostPath { path: p.clone(), typ: Some(typ.into()) }),
                            ..Volume::default()
                        },
                    )
                }
                Source::Tmpfs | Source::Anonymous => {
                    let n = dns_label(&format!("{cname}{}", m.target.replace('/', "-")));
                    if m.source == Source::Anonymous {
                        warnings.push(format!(
                            "container {}: the anonymous volume at {} becomes an emptyDir (its data lives as long as the pod)",
                            c.name, m.target
                        ));
                    }
                    let medium = (m.source == Source::Tmpfs).then(|| "Memory".to_string());
                    (
                        n.clone(),
                        Volume { name: n, empty_dir: Some(EmptyDir { medium, size_limit: None }), ..Volume::default() },
                    )
                }
            };
            let vname = add_volume(&mut volumes, vname, vol);
            k.volume_mounts.push(VolumeMount {
                name: vname,
                mount_path: m.target.clone(),
                read_only: m.read_only.then_some(true),
                ..VolumeMount::default()
            });
        }
        for f in &c.files {
            let obj = dns_label(&format!("{pod_name}-{}", f.name));
            let key = f
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-._".contains(c) { c } else { '-' })
                .collect::<String>();
            let vol = if f.secret {
                secrets.entry(obj.clone()).or_default().insert(key.clone(), encode_base64(f.content.as_bytes()));
                Volume {
                    name: obj.clone(),
                    secret: Some(SecretVolume { secret_name: obj.clone(), default_mode: f.mode, ..Default::default() }),
                    ..Volume::default()
                }
            } else {
                config_maps.entry(obj.clone()).or_default().insert(key.clone(), f.content.clone());
                Volume {
                    name: obj.clone(),
                    config_map: Some(ConfigMapVolume { name: obj.clone(), default_mode: f.mode, ..Default::default() }),
                    ..Volume::default()
                }
            };
            let vname = add_volume(&mut volumes, obj, vol);
            k.volume_mounts.push(VolumeMount {
                name: vname,
                mount_path: f.target.clone(),
                sub_path: Some(key),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        match c.network_mode.as_deref() {
            None => {}
            Some("host") => spec.host_network = Some(true),
            Some(n) => warnings.push(format!(
                "container {}: network {n:?} cannot be expressed: the pod is on the cluster's network",
                c.name
            )),
        }
        if spec.hostname.is_none() && !multi {
            spec.hostname = c.hostname.clone();
        }
        spec.containers.push(k);
    }
    if multi {
        let hostnames: Vec<String> = ctrs
            .iter()
            .flat_map(|c| c.aliases.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|h| !h.contains('_'))
            .collect();
        if !hostnames.is_empty() {
            spec.host_aliases.push(HostAlias { ip: "127.0.0.1".into(), hostnames });
        }
    }
    spec.volumes = volumes.into_values().collect();
    // Restart policy.
    let policy = |r: &str| match r {
        "always" | "unless-stopped" => "Always",
        "on-failure" => "OnFailure",
        _ => "Never",
    };
    let wanted: BTreeSet<&str> = restarts.iter().map(|r| policy(r)).collect();
    // The one that restarts most wins: Always, then OnFailure, then Never.
    let want = ["Always", "OnFailure", "Never"].into_iter().find(|p| wanted.contains(p)).unwrap_or("Never");
    if wanted.len() > 1 {
        warnings.push(format!(
            "the containers' restart policies differ ({}): a pod has one, {want} is used",
            restarts.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    spec.restart_policy = Some(match opts.kind {
        Kind::Pod => want.to_string(),
        Kind::Job => {
            if want == "Always" {
                warnings.push("a Job's pods cannot restart Always: OnFailure is used".into());
                "OnFailure".into()
            } else {
                want.to_string()
            }
        }
        _ => {
            if want != "Always" {
                warnings.push(format!(
                    "a {:?}'s pods always restart (restartPolicy Always; the containers said {want})",
                    opts.kind
                ));
            }
            "Always".into()
        }
    });
    labels.insert("app".into(), pod_name.clone());
    let metadata = ObjectMeta { name: pod_name.clone(), labels: labels.clone(), annotations, ..ObjectMeta::default() };
    let selector = LabelSelector { match_labels: StrMap::from([("app".to_string(), pod_name.clone())]) };
    let template = || PodTemplate {
        metadata: ObjectMeta {
            labels: labels.clone(),
            annotations: metadata.annotations.clone(),
            ..Default::default()
        },
        spec: spec.clone(),
    };
    let wmeta = ObjectMeta {
        name: pod_name.clone(),
        labels: StrMap::from([("app".to_string(), pod_name.clone())]),
        ..Default::default()
    };
    let mut out = Vec::new();
    for (claim, volume) in &claims {
        let mut ann = StrMap::new();
        ann.insert(ANNOTATION_VOLUME.into(), volume.clone());
        out.push(Object::PersistentVolumeClaim {
            metadata: ObjectMeta { name: claim.clone(), annotations: ann, ..Default::default() },
            spec: ClaimSpec {
                access_modes: vec!["ReadWriteOnce".into()],
                resources: Some(Resources {
                    requests: BTreeMap::from([("storage".to_string(), IntOrString::Str("1Gi".into()))]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        });
    }
    for (n, data) in config_maps {
        out.push(Object::ConfigMap {
            metadata: ObjectMeta { name: n, ..Default::default() },
            data,
            binary_data: StrMap::new(),
        });
    }
    for (n, data) in secrets {
        out.push(Object::Secret {
            metadata: ObjectMeta { name: n, ..Default::default() },
            data,
            string_data: StrMap::new(),
            typ: Some("Opaque".into()),
        });
    }
    out.push(match opts.kind {
        Kind::Pod => Object::Pod { metadata, spec: spec.clone() },
        Kind::Deployment => Object::Deployment {
            metadata: wmeta,
            spec: WorkloadSpec {
                replicas: Some(opts.replicas.unwrap_or(1)),
                selector,
                template: template(),
                ..Default::default()
            },
        },
        Kind::StatefulSet => Object::StatefulSet {
            metadata: wmeta,
            spec: WorkloadSpec {
                replicas: Some(opts.replicas.unwrap_or(1)),
                service_name: Some(pod_name.clone()),
                selector,
                template: template(),
                ..Default::default()
            },
        },
        Kind::DaemonSet => Object::DaemonSet {
            metadata: wmeta,
            spec: WorkloadSpec { selector, template: template(), ..Default::default() },
        },
        Kind::Job => Object::Job { metadata: wmeta, spec: JobSpec { template: template(), ..Default::default() } },
    });
    if opts.service && !service_ports.is_empty() {
        out.push(Object::Service {
            metadata: ObjectMeta { name: pod_name.clone(), ..Default::default() },
            spec: ServiceSpec {
                typ: Some(if node_port { "NodePort" } else { "ClusterIP" }.into()),
                selector: StrMap::from([("app".to_string(), pod_name.clone())]),
                ports: service_ports,
                cluster_ip: None,
            },
        });
    } else if opts.service {
        warnings.push("--service: the containers have no ports, no Service is generated".into());
    }
    Ok((out, warnings))
}

/// Standard base64 (a Secret's `data`).
pub fn encode_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes standard base64 (whitespace ignored); `None` when it is not base64.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// Adds `vol` to a pod's volumes as `name`, or as `name-2`, `name-3`... when another volume has that name (two paths
/// or volumes mapping to one DNS label: `/data/x` and `/data-x`, or long names cut at 63); the name it has. The
/// same volume twice is one.
fn add_volume(volumes: &mut BTreeMap<String, Volume>, name: String, mut vol: Volume) -> String {
    let mut n = name.clone();
    let mut i = 1;
    loop {
        vol.name = n.clone();
        match volumes.get(&n) {
            None => {
                volumes.insert(n.clone(), vol);
                return n;
            }
            Some(v) if *v == vol => return n,
            Some(_) => {}
        }
        i += 1;
        let suffix = format!("-{i}");
        let mut base = name.clone();
        base.truncate(63 - suffix.len());
        n = format!("{}{suffix}", base.trim_end_matches('-'));
    }
}
