//! The Engine API objects of a project: names (`<project>-<service>-<n>`, `<project>_<network>`), the
//! `com.docker.compose.*` labels exactly as Compose v2 sets them, the configuration hash that decides recreation,
//! the dependency order, and the create bodies of containers, networks and volumes (Engine API JSON).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use berth_api::units::{go_duration, ram_in_bytes};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::load::Project;
use crate::model::Service;

/// The Compose version Berth's labels claim (the `com.docker.compose.version` label; tools read it).
pub const COMPOSE_VERSION: &str = "2.29.7";

/// `com.docker.compose.project`.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// `com.docker.compose.service`.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// `com.docker.compose.container-number`.
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
/// `com.docker.compose.oneoff` (`True` for `run`).
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// `com.docker.compose.config-hash`.
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `com.docker.compose.image` (the image's ID when the container was made).
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
/// `com.docker.compose.depends_on`.
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// `com.docker.compose.project.config_files`.
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// `com.docker.compose.project.working_dir`.
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// `com.docker.compose.project.environment_file`.
pub const LABEL_ENV_FILE: &str = "com.docker.compose.project.environment_file";
/// `com.docker.compose.version`.
pub const LABEL_VERSION: &str = "com.docker.compose.version";
/// `com.docker.compose.network`.
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
/// `com.docker.compose.volume`.
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// `com.docker.compose.slug` (one-off containers).
pub const LABEL_SLUG: &str = "com.docker.compose.slug";
/// `com.docker.compose.replace` (the container a recreated one replaces).
pub const LABEL_REPLACE: &str = "com.docker.compose.replace";
/// `com.docker.compose.hook` (`pre_start` on the helper container a `pre_start` hook runs in).
pub const LABEL_HOOK: &str = "com.docker.compose.hook";
/// The index of the `pre_start` hook a helper container runs (Berth's; Compose tells them apart by name).
pub const LABEL_HOOK_INDEX: &str = "com.docker.compose.hook.index";

/// The container name of replica `n` (`container_name:` for a service that has one).
pub fn container_name(project: &str, svc: &Service, n: u64) -> String {
    match &svc.container_name {
        Some(c) => c.clone(),
        None => format!("{project}-{}-{n}", svc.name),
    }
}

/// The image a service runs: `image:`, else `<project>-<service>` for one that is built.
pub fn image_name(project: &str, svc: &Service) -> String {
    match &svc.image {
        Some(i) => i.clone(),
        None => format!("{project}-{}", svc.name),
    }
}

/// The hash of a service's configuration (`com.docker.compose.config-hash`): SHA-256 of its normalised model
/// without what does not change a container (build, pull policy, scale, replicas, profiles, dependencies).
pub fn config_hash(project: &Project, service: &str) -> String {
    let mut v = project.model.get("services").and_then(|s| s.get(service)).cloned().unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in ["build", "pull_policy", "scale", "profiles", "depends_on"] {
            m.remove(k);
        }
        if let Some(d) = m.get_mut("deploy").and_then(Value::as_object_mut) {
            d.remove("replicas");
        }
    }
    // serde_json's maps are sorted, so the text is canonical.
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// The services in the order `up` starts them (dependencies first; ties by name). `subset` limits the result
/// (`None`: all).
pub fn start_order(project: &Project, subset: Option<&BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(n: &str, p: &Project, done: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !done.insert(n.to_string()) {
            return;
        }
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                visit(d, p, done, out);
            }
            out.push(n.to_string());
        }
    }
    for n in project.services.keys() {
        visit(n, project, &mut done, &mut out);
    }
    match subset {
        Some(s) => out.into_iter().filter(|n| s.contains(n)).collect(),
        None => out,
    }
}

/// The named services plus everything they depend on, transitively.
pub fn with_dependencies(project: &Project, names: &[String]) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let mut stack: Vec<String> = names.to_vec();
    while let Some(n) = stack.pop() {
        if set.insert(n.clone())
            && let Some(s) = project.services.get(&n)
        {
            stack.extend(s.depends_on.keys().cloned());
        }
    }
    set
}

fn project_labels(project: &Project) -> Map<String, Value> {
    let mut l = Map::new();
    l.insert(LABEL_PROJECT.into(), json!(project.name));
    l.insert(LABEL_VERSION.into(), json!(COMPOSE_VERSION));
    l
}

/// The create body (`POST /networks/create`) of a project network.
pub fn network_body(project: &Project, key: &str) -> Option<Value> {
    let r = project.networks.get(key)?;
    let mut labels = project_labels(project);
    labels.insert(LABEL_NETWORK.into(), json!(key));
    for (k, v) in &r.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    let mut body = json!({
        "Name": r.name,
        "Driver": r.driver.clone().unwrap_or_else(|| "bridge".into()),
        "Labels": labels,
        "Options": r.driver_opts.iter().map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default()))).collect::<Map<_, _>>(),
    });
    if let Some(o) = body.as_object_mut() {
        if let Some(i) = r.internal {
            o.insert("Internal".into(), json!(i));
        }
        if let Some(a) = r.attachable {
            o.insert("Attachable".into(), json!(a));
        }
        if let Some(v6) = r.enable_ipv6 {
            o.insert("EnableIPv6".into(), json!(v6));
        }
        if let Some(ipam) = &r.ipam {
            let config: Vec<Value> = ipam
                .config
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    if let Some(s) = &c.subnet {
                        m.insert("Subnet".into(), json!(s));
                    }
                    if let Some(s) = &c.ip_range {
                        m.insert("IPRange".into(), json!(s));
                    }
                    if let Some(s) = &c.gateway {
                        m.insert("Gateway".into(), json!(s));
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert(
                "IPAM".into(),
                json!({"Driver": ipam.driver.clone().unwrap_or_else(|| "default".into()), "Config": config}),
            );
        }
    }
    Some(body)
}

/// The create body (`POST /volumes/create`) of a project volume.
pub fn volume_body(project: &Project, key: &str) -> Option<Value> {
    let r = project.volumes.get(key)?;
    let mut labels = project_labels(project);
    labels.insert(LABEL_VOLUME.into(), json!(key));
    for (k, v) in &r.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    Some(json!({
        "Name": r.name,
        "Driver": r.driver.clone().unwrap_or_else(|| "local".into()),
        "DriverOpts": r.driver_opts.iter().map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default()))).collect::<Map<_, _>>(),
        "Labels": labels,
    }))
}

fn nanos(file_key: &str, s: &Option<String>) -> Result<Option<i64>> {
    match s {
        None => Ok(None),
        Some(s) => go_duration(s)
            .map(|d| Some(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
            .map_err(|e| Error::Project(format!("{file_key}: {e}"))),
    }
}

fn bytes(key: &str, s: &Option<String>) -> Result<Option<i64>> {
    match s {
        None => Ok(None),
        Some(s) => ram_in_bytes(s).map(Some).map_err(|e| Error::Project(format!("{key}: {e}"))),
    }
}

/// The stop timeout of a service (`stop_grace_period`), for `stop` and recreation.
pub fn stop_timeout(svc: &Service) -> Option<Duration> {
    svc.stop_grace_period.as_deref().and_then(|s| go_duration(s).ok())
}

/// An environment mapping as the Engine's `Env` list: `KEY=value`, or `KEY` alone for a variable without a value
/// (Compose v2 sends it so; the engine then removes the image's variable of that name).
pub fn env_list(env: &crate::model::OptMap) -> Vec<String> {
    env.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect()
}

/// The Engine's restart policy of a service (name, maximum retries): `deploy.restart_policy` over `restart:`, its
/// conditions mapped as Compose v2 maps them (`none` → `no`, `any` → `always`; `max_attempts` the retry count).
pub fn restart_policy(svc: &Service) -> Option<(String, i64)> {
    let map = |c: &str| match c {
        "none" => "no".to_string(),
        "any" => "always".to_string(),
        o => o.to_string(),
    };
    if let Some(r) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        return Some((map(r.condition.as_deref().unwrap_or("any")), r.max_attempts.unwrap_or(0)));
    }
    svc.restart.as_ref().map(|r| match r.split_once(':') {
        Some((n, c)) => (map(n), c.trim().parse::<i64>().unwrap_or(0)),
        None => (map(r), 0),
    })
}

/// A secret or config that Compose writes into the container after creating it (from `environment:` or
/// `content:`), as a tar through the archive API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFile {
    /// The absolute path in the container.
    pub target: String,
    /// The file's content.
    pub content: Vec<u8>,
    /// Its owner (`uid:`, default 0).
    pub uid: u64,
    /// Its group (`gid:`, default 0).
    pub gid: u64,
    /// Its mode (`mode:`, default 0444).
    pub mode: u32,
    /// Whether `uid` or `gid` was given (Compose then asks the engine to keep the ownership: `copyUIDGID`).
    pub copy_uid_gid: bool,
}

/// The long syntax of one `secrets:`/`configs:` entry of a service: source, target, uid, gid, mode.
pub type FileRef = (String, Option<String>, Option<String>, Option<String>, Option<u32>);

pub fn file_ref(item: &Value) -> FileRef {
    match item {
        Value::String(s) => (s.clone(), None, None, None, None),
        o => {
            let text = |k: &str| o.get(k).and_then(crate::normalize::scalar_string);
            let mode = match o.get("mode") {
                Some(Value::Number(n)) => n.as_u64().map(|m| m as u32),
                Some(Value::String(m)) => u32::from_str_radix(m.trim_start_matches("0o"), 8).ok(),
                _ => None,
            };
            (text("source").unwrap_or_default(), text("target"), text("uid"), text("gid"), mode)
        }
    }
}

/// Where a service's secret or config goes: a secret under `/run/secrets/` unless its target is absolute, a
/// config at `/<source>` or its target.
pub fn file_target(kind: &str, source: &str, target: Option<String>) -> String {
    match (kind, target) {
        ("secrets", Some(t)) if t.starts_with('/') => t,
        ("secrets", Some(t)) => format!("/run/secrets/{t}"),
        ("secrets", None) => format!("/run/secrets/{source}"),
        (_, Some(t)) if t.starts_with('/') => t,
        (_, Some(t)) => format!("/{t}"),
        (_, None) => format!("/{source}"),
    }
}

/// The secrets and configs of a service that come from `environment:` or `content:` (Compose v2's
/// injectSecrets/injectConfigs): their content is the project's variable or the inline text. Also returns the
/// warnings Compose prints (`uid`/`gid`/`mode` of a file-based secret or config, a bind mount, are ignored).
pub fn injected_files(project: &Project, svc: &Service) -> Result<(Vec<InjectedFile>, Vec<String>)> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (kind, list) in [("secrets", &svc.secrets), ("configs", &svc.configs)] {
        for item in list {
            let (source, target, uid, gid, mode) = file_ref(item);
            let Some(def) = project.model.get(kind).and_then(|m| m.get(&source)) else { continue };
            let content = match (def.get("environment").and_then(Value::as_str), def.get("content")) {
                (Some(var), _) => match project.environment.get(var) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(Error::Project(format!(
                            "environment variable {var:?} required by file {source:?} is not set"
                        )));
                    }
                },
                (None, Some(c)) => crate::normalize::scalar_string(c).unwrap_or_default(),
                (None, None) => {
                    if def.get("file").is_some() && (uid.is_some() || gid.is_some() || mode.is_some()) {
                        warnings
                            .push(format!("{kind} `uid`, `gid` and `mode` are not supported, they will be ignored"));
                    }
                    continue;
                }
            };
            let id = |v: &Option<String>, what: &str| -> Result<u64> {
                match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                    None => Ok(0),
                    Some(v) => v.parse().map_err(|_| {
                        Error::Project(format!("services.{}.{kind}: {what} {v:?} is not a number", svc.name))
                    }),
                }
            };
            out.push(InjectedFile {
                target: file_target(kind, &source, target),
                content: content.into_bytes(),
                uid: id(&uid, "uid")?,
                gid: id(&gid, "gid")?,
                mode: mode.unwrap_or(0o444),
                copy_uid_gid: uid.is_some() || gid.is_some(),
            });
        }
    }
    Ok((out, warnings))
}

/// What a service's build asks of the classic builder (`POST /build`) beyond the context, Dockerfile and the keys
/// every builder has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassicBuild {
    /// `cachefrom`: images whose layers serve as cache.
    pub cache_from: Vec<String>,
    /// `platform`: the build's one platform (`build.platforms` of one, else the service's `platform`).
    pub platform: Option<String>,
}

/// Checks a service's `build:` against what the classic builder can do (Berth's builder, and dockerd's without
/// BuildKit): `cache_from` of images (a plain reference, or BuildKit's `type=registry,ref=...`) and one platform
/// are passed on; a remote context, `ssh`, `secrets`, `cache_to`, `additional_contexts`, other cache sources and
/// several platforms need BuildKit and are refused with the service and the key named, before anything is built.
pub fn classic_build(svc: &Service) -> Result<ClassicBuild> {
    let Some(b) = &svc.build else { return Ok(ClassicBuild::default()) };
    let refuse = |key: &str, what: String| {
        Err(Error::Project(format!(
            "service {:?}: build.{key}: {what} needs BuildKit; Berth's builder (the classic POST /build) cannot do it",
            svc.name
        )))
    };
    if b.context.contains("://") || b.context.starts_with("git@") {
        return Err(Error::Project(format!(
            "service {:?}: build.context: remote build contexts ({}) are not supported: the builder takes the context as the request's body; clone or download it and name the local directory",
            svc.name, b.context
        )));
    }
    if !b.ssh.is_empty() {
        return refuse("ssh", "SSH forwarding".into());
    }
    if !b.secrets.is_empty() {
        return refuse("secrets", "a build secret".into());
    }
    if !b.cache_to.is_empty() {
        return refuse("cache_to", "exporting the build cache".into());
    }
    if let Some(name) = b.additional_contexts.keys().next() {
        return refuse("additional_contexts", format!("a named context ({name})"));
    }
    let mut cache_from = Vec::new();
    for c in &b.cache_from {
        if !c.contains('=') {
            cache_from.push(c.clone());
            continue;
        }
        let attrs: BTreeMap<&str, &str> = c.split(',').filter_map(|kv| kv.split_once('=')).collect();
        match (attrs.get("type"), attrs.get("ref")) {
            (Some(&"registry"), Some(r)) => cache_from.push(r.to_string()),
            _ => return refuse("cache_from", format!("the cache source {c:?} (only images can be)")),
        }
    }
    let platform = match b.platforms.as_slice() {
        [] => svc.platform.clone(),
        [one] => Some(one.clone()),
        _ => return refuse("platforms", format!("building for several platforms ({})", b.platforms.join(", "))),
    };
    Ok(ClassicBuild { cache_from, platform })
}

/// Fails, naming the service, on what the plan cannot create yet: a `provider:` service (managed by an external
/// component, not a container). `up` and `create` ask before they create anything.
pub fn check_supported(project: &Project, services: &BTreeSet<String>) -> Result<()> {
    for s in services.iter().filter_map(|n| project.services.get(n)) {
        if let Some(p) = &s.provider {
            return Err(Error::Project(format!(
                "service {:?} uses provider {:?}: provider services are not supported by berth compose yet",
                s.name, p.typ
            )));
        }
    }
    Ok(())
}

/// What one container of a service is made with.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Its replica number.
    pub number: u64,
    /// `run`'s one-off container (`oneoff=True`, a slug, no published ports unless asked).
    pub oneoff: Option<String>,
    /// The image's ID (the `com.docker.compose.image` label); empty when unknown.
    pub image_id: String,
    /// `run`: replace the command.
    pub command: Option<Vec<String>>,
    /// `run --entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `run -e`: more variables.
    pub env: Vec<String>,
    /// `run`: keep the service's ports (`--service-ports`).
    pub service_ports: bool,
    /// `run -i`/`-t`.
    pub tty: Option<bool>,
    /// `run`: keep stdin open.
    pub stdin_open: Option<bool>,
    /// `run -u`.
    pub user: Option<String>,
    /// `run -w`.
    pub working_dir: Option<String>,
    /// `run --rm`: remove when it exits.
    pub auto_remove: bool,
    /// `run --name`, or the temporary name of a replacement.
    pub name: Option<String>,
    /// The ID of the container this one replaces (`com.docker.compose.replace`).
    pub replace: Option<String>,
}

/// The create body (`POST /containers/create`) of one container of `svc`, and its name.
pub fn container_body(project: &Project, svc: &Service, spec: &ContainerSpec) -> Result<(String, Value)> {
    check_supported(project, &BTreeSet::from([svc.name.clone()]))?;
    let key = |k: &str| format!("services.{}.{k}", svc.name);
    let name = match (&spec.name, &spec.oneoff) {
        (Some(n), _) => n.clone(),
        (None, Some(slug)) => format!("{}-{}-run-{}", project.name, svc.name, &slug[..slug.len().min(12)]),
        (None, None) => container_name(&project.name, svc, spec.number),
    };
    // Labels: the service's, then Compose's.
    let mut labels = Map::new();
    for (k, v) in &svc.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    labels.extend(project_labels(project));
    labels.insert(LABEL_SERVICE.into(), json!(svc.name));
    labels.insert(LABEL_NUMBER.into(), json!(spec.number.to_string()));
    labels.insert(LABEL_ONEOFF.into(), json!(if spec.oneoff.is_some() { "True" } else { "False" }));
    labels.insert(LABEL_CONFIG_HASH.into(), json!(config_hash(project, &svc.name)));
    labels.insert(
        LABEL_CONFIG_FILES.into(),
        json!(project.config_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(",")),
    );
    labels.insert(LABEL_WORKING_DIR.into(), json!(project.working_dir.display().to_string()));
    if !project.env_files.is_empty() {
        labels.insert(
            LABEL_ENV_FILE.into(),
            json!(project.env_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(",")),
        );
    }
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(d, dep)| format!("{d}:{}:{}", dep.condition, dep.restart.unwrap_or(false)))
        .collect();
    labels.insert(LABEL_DEPENDS_ON.into(), json!(deps.join(",")));
    if !spec.image_id.is_empty() {
        labels.insert(LABEL_IMAGE.into(), json!(spec.image_id));
    }
    if let Some(slug) = &spec.oneoff {
        labels.insert(LABEL_SLUG.into(), json!(slug));
    }
    if let Some(r) = &spec.replace {
        labels.insert(LABEL_REPLACE.into(), json!(r));
    }
    // A variable without a value is sent as `KEY` alone, as Compose v2 does: the engine removes the image's.
    let mut env = env_list(&svc.environment);
    env.extend(spec.env.iter().cloned());

    let mut host = Map::new();
    let mut body = Map::new();
    body.insert("Image".into(), json!(image_name(&project.name, svc)));
    body.insert("Labels".into(), Value::Object(labels));
    body.insert("Env".into(), json!(env));
    if let Some(c) = spec.command.as_ref().or(svc.command.as_ref()) {
        body.insert("Cmd".into(), json!(c));
    }
    if let Some(e) = spec.entrypoint.as_ref().or(svc.entrypoint.as_ref()) {
        body.insert("Entrypoint".into(), json!(e));
    }
    let opt_str = |body: &mut Map<String, Value>, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    };
    opt_str(&mut body, "User", &spec.user.clone().or(svc.user.clone()));
    opt_str(&mut body, "WorkingDir", &spec.working_dir.clone().or(svc.working_dir.clone()));
    opt_str(&mut body, "Hostname", &svc.hostname);
    opt_str(&mut body, "Domainname", &svc.domainname);
    opt_str(&mut body, "StopSignal", &svc.stop_signal);
    opt_str(&mut body, "MacAddress", &svc.mac_address);
    if let Some(t) = stop_timeout(svc) {
        body.insert("StopTimeout".into(), json!(t.as_secs()));
    }
    let tty = spec.tty.or(svc.tty).unwrap_or(false);
    let stdin = spec.stdin_open.or(svc.stdin_open).unwrap_or(false);
    body.insert("Tty".into(), json!(tty));
    body.insert("OpenStdin".into(), json!(stdin));
    body.insert("AttachStdin".into(), json!(stdin && spec.oneoff.is_some()));
    body.insert("AttachStdout".into(), json!(true));
    body.insert("AttachStderr".into(), json!(true));
    if let Some(h) = &svc.healthcheck {
        let mut hc = Map::new();
        if h.disable.unwrap_or(false) {
            hc.insert("Test".into(), json!(["NONE"]));
        } else {
            if !h.test.is_empty() {
                hc.insert("Test".into(), json!(h.test));
            }
            for (k, v) in [
                ("Interval", &h.interval),
                ("Timeout", &h.timeout),
                ("StartPeriod", &h.start_period),
                ("StartInterval", &h.start_interval),
            ] {
                if let Some(n) = nanos(&key("healthcheck"), v)? {
                    hc.insert(k.into(), json!(n));
                }
            }
            if let Some(r) = h.retries {
                hc.insert("Retries".into(), json!(r));
            }
        }
        body.insert("Healthcheck".into(), Value::Object(hc));
    }
    // Ports.
    let mut exposed = Map::new();
    for e in &svc.expose {
        let p = if e.contains('/') { e.clone() } else { format!("{e}/tcp") };
        exposed.insert(p, json!({}));
    }
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if spec.oneoff.is_none() || spec.service_ports {
        for p in &svc.ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
            let k = format!("{}/{proto}", p.target);
            exposed.insert(k.clone(), json!({}));
            bindings.entry(k).or_default().push(json!({
                "HostIp": p.host_ip.clone().unwrap_or_default(),
                "HostPort": p.published.clone().unwrap_or_default(),
            }));
        }
    }
    if !exposed.is_empty() {
        body.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if !bindings.is_empty() {
        host.insert("PortBindings".into(), json!(bindings));
    }
    // Mounts.
    let mut mounts = Vec::new();
    for v in &svc.volumes {
        let mut m = Map::new();
        m.insert("Type".into(), json!(v.typ));
        m.insert("Target".into(), json!(v.target));
        let source = match (v.typ.as_str(), &v.source) {
            ("volume", Some(s)) => project.volumes.get(s).map(|r| r.name.clone()).unwrap_or(s.clone()),
            (_, Some(s)) => s.clone(),
            (_, None) => String::new(),
        };
        if !source.is_empty() {
            m.insert("Source".into(), json!(source));
        }
        if v.read_only.unwrap_or(false) {
            m.insert("ReadOnly".into(), json!(true));
        }
        match v.typ.as_str() {
            "bind" => {
                let mut b = Map::new();
                if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
                    b.insert("Propagation".into(), json!(p));
                }
                // The short syntax creates a missing host directory (the long one only when asked).
                if v.bind.as_ref().and_then(|b| b.create_host_path).unwrap_or(false) {
                    b.insert("CreateMountpoint".into(), json!(true));
                }
                if !b.is_empty() {
                    m.insert("BindOptions".into(), Value::Object(b));
                }
            }
            "volume" => {
                let mut o = Map::new();
                if v.volume.as_ref().and_then(|o| o.nocopy).unwrap_or(false) {
                    o.insert("NoCopy".into(), json!(true));
                }
                if let Some(sp) = v.volume.as_ref().and_then(|o| o.subpath.clone()) {
                    o.insert("Subpath".into(), json!(sp));
                }
                if let Some(s) = &v.source
                    && let Some(r) = project.volumes.get(s)
                {
                    let mut l = Map::new();
                    l.insert(LABEL_PROJECT.into(), json!(project.name));
                    l.insert(LABEL_VOLUME.into(), json!(s));
                    l.insert(LABEL_VERSION.into(), json!(COMPOSE_VERSION));
                    if !r.is_external() {
                        o.insert("Labels".into(), Value::Object(l));
                    }
                }
                if !o.is_empty() {
                    m.insert("VolumeOptions".into(), Value::Object(o));
                }
            }
            "tmpfs" => {
                let mut o = Map::new();
                if let Some(sz) = bytes(&key("volumes"), &v.tmpfs.as_ref().and_then(|t| t.size.clone()))? {
                    o.insert("SizeBytes".into(), json!(sz));
                }
                if let Some(mode) = v.tmpfs.as_ref().and_then(|t| t.mode) {
                    o.insert("Mode".into(), json!(mode));
                }
                if !o.is_empty() {
                    m.insert("TmpfsOptions".into(), Value::Object(o));
                }
            }
            _ => {}
        }
        mounts.push(Value::Object(m));
    }
    mounts.extend(file_mounts(project, svc)?);
    if !mounts.is_empty() {
        host.insert("Mounts".into(), json!(mounts));
    }
    if !svc.tmpfs.is_empty() {
        let t: Map<String, Value> = svc
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((p, o)) => (p.to_string(), json!(o)),
                None => (t.clone(), json!("")),
            })
            .collect();
        host.insert("Tmpfs".into(), Value::Object(t));
    }
    // Restart policy: `deploy.restart_policy` over `restart:` (as Compose v2's getRestartPolicy).
    if spec.oneoff.is_none()
        && let Some((name, count)) = restart_policy(svc)
    {
        if !["no", "always", "unless-stopped", "on-failure"].contains(&name.as_str()) {
            return Err(Error::Project(format!("{}: invalid restart policy {name:?}", key("restart"))));
        }
        host.insert("RestartPolicy".into(), json!({"Name": name, "MaximumRetryCount": count}));
    }
    if spec.auto_remove {
        host.insert("AutoRemove".into(), json!(true));
    }
    let list = |host: &mut Map<String, Value>, k: &str, v: &[String]| {
        if !v.is_empty() {
            host.insert(k.into(), json!(v));
        }
    };
    list(&mut host, "CapAdd", &svc.cap_add);
    list(&mut host, "CapDrop", &svc.cap_drop);
    list(&mut host, "Dns", &svc.dns);
    list(&mut host, "DnsSearch", &svc.dns_search);
    list(&mut host, "DnsOptions", &svc.dns_opt);
    let (security_opt, unconfined_paths) = berth_api::security_opt::resolve(&svc.security_opt, &project.working_dir)
        .map_err(|e| Error::Project(e.to_string()))?;
    list(&mut host, "SecurityOpt", &security_opt);
    if unconfined_paths {
        host.insert("MaskedPaths".into(), json!([]));
        host.insert("ReadonlyPaths".into(), json!([]));
    }
    list(&mut host, "VolumesFrom", &volumes_from(project, svc));
    let hosts: Vec<String> = svc.extra_hosts.iter().map(|h| h.replacen('=', ":", 1)).collect();
    list(&mut host, "ExtraHosts", &hosts);
    for (k, v) in [("ReadonlyRootfs", svc.read_only), ("Privileged", svc.privileged), ("Init", svc.init)] {
        if let Some(v) = v {
            host.insert(k.into(), json!(v));
        }
    }
    if !svc.sysctls.is_empty() {
        host.insert(
            "Sysctls".into(),
            json!(
                svc.sysctls.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect::<BTreeMap<_, _>>()
            ),
        );
    }
    if !svc.ulimits.is_empty() {
        let u: Vec<Value> = svc
            .ulimits
            .iter()
            .map(|(n, l)| match l {
                crate::model::Ulimit::Single(v) => json!({"Name": n, "Soft": v, "Hard": v}),
                crate::model::Ulimit::Pair { soft, hard } => json!({"Name": n, "Soft": soft, "Hard": hard}),
            })
            .collect();
        host.insert("Ulimits".into(), json!(u));
    }
    // Resources: `deploy.resources` over the service's keys, as Compose v2's setLimits/setReservations (a CPU
    // reservation is a Swarm setting and PIDs are only a limit: both are ignored there).
    let limits =
        svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.clone()).unwrap_or_default();
    let reservations =
        svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.clone()).unwrap_or_default();
    let memory = bytes(&key("deploy.resources.limits.memory"), &limits.memory)?.filter(|m| *m != 0);
    if let Some(m) = memory.or(bytes(&key("mem_limit"), &svc.mem_limit)?) {
        host.insert("Memory".into(), json!(m));
    }
    let reserved = bytes(&key("deploy.resources.reservations.memory"), &reservations.memory)?.filter(|m| *m > 0);
    if let Some(m) = reserved.or(bytes(&key("mem_reservation"), &svc.mem_reservation)?) {
        host.insert("MemoryReservation".into(), json!(m));
    }
    if let Some(m) = &svc.memswap_limit {
        let v = if m == "-1" { -1 } else { bytes(&key("memswap_limit"), &Some(m.clone()))?.unwrap_or(0) };
        host.insert("MemorySwap".into(), json!(v));
    }
    let cpus = |k: &str, c: &Option<String>| -> Result<Option<f64>> {
        match c {
            Some(c) => c
                .trim()
                .parse::<f64>()
                .map(|f| Some(f).filter(|f| *f > 0.0))
                .map_err(|_| Error::Project(format!("{}: invalid number of CPUs {c:?}", key(k)))),
            None => Ok(None),
        }
    };
    if let Some(f) = cpus("deploy.resources.limits.cpus", &limits.cpus)?.or(cpus("cpus", &svc.cpus)?) {
        host.insert("NanoCpus".into(), json!((f * 1e9) as i64));
    }
    if let Some(s) = svc.cpu_shares {
        host.insert("CpuShares".into(), json!(s));
    }
    if let Some(p) = limits.pids.filter(|p| *p > 0).or(svc.pids_limit.filter(|p| *p != 0)) {
        host.insert("PidsLimit".into(), json!(p));
    }
    if let Some(s) = bytes(&key("shm_size"), &svc.shm_size)? {
        host.insert("ShmSize".into(), json!(s));
    }
    if let Some(p) = &svc.pid {
        host.insert("PidMode".into(), json!(p));
    }
    if let Some(p) = &svc.ipc {
        host.insert("IpcMode".into(), json!(p));
    }
    if let Some(r) = &svc.runtime {
        host.insert("Runtime".into(), json!(r));
    }
    if let Some(l) = &svc.logging {
        host.insert(
            "LogConfig".into(),
            json!({"Type": l.driver.clone().unwrap_or_default(), "Config": l.options.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect::<BTreeMap<_, _>>()}),
        );
    }
    // Networks: every endpoint in the create body (API ≥ 1.44); the service name and its aliases resolve.
    let nets = svc.network_list();
    let mode = match &svc.network_mode {
        Some(m) => m.clone(),
        None => nets
            .first()
            .and_then(|(k, _)| project.networks.get(k))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| "default".into()),
    };
    let mode = match mode.strip_prefix("service:") {
        Some(other) => {
            format!("container:{}", container_name(&project.name, project.services.get(other).unwrap_or(svc), 1))
        }
        None => mode,
    };
    host.insert("NetworkMode".into(), json!(mode));
    let mut endpoints = Map::new();
    if svc.network_mode.is_none() {
        for (k, n) in &nets {
            let Some(r) = project.networks.get(k) else { continue };
            let mut aliases = vec![svc.name.clone()];
            if spec.oneoff.is_none() {
                aliases.extend(n.aliases.iter().cloned());
            }
            let mut ep = Map::new();
            ep.insert("Aliases".into(), json!(aliases));
            let mut ipam = Map::new();
            if let Some(a) = &n.ipv4_address {
                ipam.insert("IPv4Address".into(), json!(a));
            }
            if let Some(a) = &n.ipv6_address {
                ipam.insert("IPv6Address".into(), json!(a));
            }
            if !ipam.is_empty() {
                ep.insert("IPAMConfig".into(), Value::Object(ipam));
            }
            if let Some(m) = &n.mac_address {
                ep.insert("MacAddress".into(), json!(m));
            }
            endpoints.insert(r.name.clone(), Value::Object(ep));
        }
    }
    body.insert("HostConfig".into(), Value::Object(host));
    if !endpoints.is_empty() {
        body.insert("NetworkingConfig".into(), json!({"EndpointsConfig": endpoints}));
    }
    Ok((name, Value::Object(body)))
}

/// The name and create body of the helper container the `index`-th `pre_start` hook of `svc` runs in, as Compose
/// v2 makes it: the service's container configuration (its image, entrypoint, environment, networks with their
/// aliases, resources...) with the hook's command, `user`, `working_dir`, `privileged` and `environment` over it;
/// the volumes of the service's container `volumes_from` (`service_container`, not yet started, so anonymous
/// volumes are shared too) instead of its own mounts; no published ports, restart policy, healthcheck or terminal;
/// named `<project>-<service>-pre_start-<index>`, labelled with the project, the service and
/// `com.docker.compose.hook=pre_start`, but without the replica number, the config hash and `oneoff`, so the
/// commands that list a service's containers never count it.
pub fn pre_start_body(
    project: &Project,
    svc: &Service,
    index: usize,
    service_container: &str,
    image_id: &str,
) -> Result<(String, Value)> {
    let hook = svc.pre_start.get(index).ok_or_else(|| {
        Error::Project(format!("service {:?} has no pre_start[{index}] (it has {})", svc.name, svc.pre_start.len()))
    })?;
    let spec = ContainerSpec { number: 1, image_id: image_id.to_string(), ..ContainerSpec::default() };
    let (_, mut body) = container_body(project, svc, &spec)?;
    let name = format!("{}-{}-pre_start-{index}", project.name, svc.name);
    let Some(b) = body.as_object_mut() else { return Err(Error::Project("a create body that is no object".into())) };
    b.insert("Cmd".into(), json!(hook.command));
    if let Some(u) = &hook.user {
        b.insert("User".into(), json!(u));
    }
    if let Some(w) = &hook.working_dir {
        b.insert("WorkingDir".into(), json!(w));
    }
    if !hook.environment.is_empty() {
        let mut env: Vec<Value> = b.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
        env.extend(env_list(&hook.environment).into_iter().map(Value::String));
        b.insert("Env".into(), Value::Array(env));
    }
    for k in ["Tty", "OpenStdin", "AttachStdin"] {
        b.insert(k.into(), json!(false));
    }
    b.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
    b.remove("ExposedPorts");
    if let Some(l) = b.get_mut("Labels").and_then(Value::as_object_mut) {
        for k in [LABEL_NUMBER, LABEL_CONFIG_HASH, LABEL_ONEOFF, LABEL_REPLACE, LABEL_DEPENDS_ON] {
            l.remove(k);
        }
        l.insert(LABEL_HOOK.into(), json!("pre_start"));
        l.insert(LABEL_HOOK_INDEX.into(), json!(index.to_string()));
    }
    let host = b.entry("HostConfig").or_insert_with(|| json!({}));
    if let Some(h) = host.as_object_mut() {
        for k in ["PortBindings", "PublishAllPorts", "Mounts", "Binds", "Tmpfs", "AutoRemove"] {
            h.remove(k);
        }
        h.insert("RestartPolicy".into(), json!({"Name": "no", "MaximumRetryCount": 0}));
        h.insert("VolumesFrom".into(), json!([service_container]));
        if let Some(p) = hook.privileged {
            h.insert("Privileged".into(), json!(p));
        }
    }
    Ok((name, body))
}

/// `secrets:` and `configs:` of a service, as Compose does without Swarm: each file bind-mounted read-only, a
/// secret at `/run/secrets/<target>`, a config at `/<source>` or its absolute `target`.
fn file_mounts(project: &Project, svc: &Service) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (kind, list) in [("secrets", &svc.secrets), ("configs", &svc.configs)] {
        for (i, item) in list.iter().enumerate() {
            let (source, target, ..) = file_ref(item);
            let key = format!("services.{}.{kind}.{i}", svc.name);
            let def = project.model.get(kind).and_then(|m| m.get(&source));
            let Some(def) = def else {
                return Err(Error::Project(format!("{key}: undefined {} {source:?}", &kind[..kind.len() - 1])));
            };
            if def.get("environment").is_some() || def.get("content").is_some() {
                // Written into the container after it is created (see [`injected_files`]).
                continue;
            }
            let Some(file) = def.get("file").and_then(Value::as_str) else {
                return Err(Error::Project(format!(
                    "{key}: {source:?} has no file:, environment: or content: (external {kind} need Swarm)"
                )));
            };
            let target = file_target(kind, &source, target);
            out.push(json!({"Type": "bind", "Source": file, "Target": target, "ReadOnly": true}));
        }
    }
    Ok(out)
}

fn volumes_from(project: &Project, svc: &Service) -> Vec<String> {
    svc.volumes_from
        .iter()
        .map(|v| {
            let (src, mode) = match v.rsplit_once(':') {
                Some((s, m)) if m == "ro" || m == "rw" => (s.to_string(), Some(m)),
                _ => (v.clone(), None),
            };
            let target = match src.strip_prefix("container:") {
                Some(c) => c.to_string(),
                None => match project.services.get(&src) {
                    Some(s) => container_name(&project.name, s, 1),
                    None => src.clone(),
                },
            };
            match mode {
                Some(m) => format!("{target}:{m}"),
                None => target,
            }
        })
        .collect()
}

/// A random slug for a one-off container (hex of the time and the process, 64 bits; no crate needed).
pub fn slug() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{t}-{}", std::process::id());
    hex::encode(Sha256::digest(seed.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::load::{Options, load};

    fn project(text: &str) -> Project {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("compose.yaml"), text).expect("write");
        let o = Options {
            working_dir: d.path().to_path_buf(),
            project_name: Some("p".into()),
            environment: BTreeMap::new(),
            ..Options::default()
        };
        load(&o).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn classic_build_passes_what_it_can_and_refuses_buildkit_keys() {
        let p = project(
            "services:\n  a:\n    build:\n      context: .\n      cache_from: [app:cache, \"type=registry,ref=reg.example/app:buildcache\"]\n      platforms: [linux/amd64]\n  b:\n    image: x\n    platform: linux/amd64\n    build: .\n",
        );
        let a = classic_build(&p.services["a"]).expect("a");
        assert_eq!(a.cache_from, ["app:cache", "reg.example/app:buildcache"]);
        assert_eq!(a.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(classic_build(&p.services["b"]).expect("b").platform.as_deref(), Some("linux/amd64"));
        for (key, yaml) in [
            ("ssh", "ssh: [default]"),
            ("secrets", "secrets: [tok]"),
            ("cache_to", "cache_to: [\"type=local,dest=/tmp/c\"]"),
            ("additional_contexts", "additional_contexts: {base: ../base}"),
            ("cache_from", "cache_from: [\"type=local,src=/tmp/c\"]"),
            ("platforms", "platforms: [linux/amd64, linux/arm64]"),
        ] {
            let text = format!(
                "services:\n  w:\n    build:\n      context: .\n      {yaml}\nsecrets:\n  tok: {{environment: HOME}}\n"
            );
            let p = project(&text);
            let e = classic_build(&p.services["w"]).expect_err(key).to_string();
            assert!(e.contains(&format!("service \"w\": build.{key}:")) && e.contains("needs BuildKit"), "{e}");
        }
        let p = project("services:\n  w:\n    build: https://example.com/repo.git#main\n");
        let e = classic_build(&p.services["w"]).expect_err("remote").to_string();
        assert!(e.contains("service \"w\": build.context: remote build contexts"), "{e}");
    }

    #[test]
    fn pre_start_helper_container() {
        let p = project(
            "services:\n  db:\n    image: busybox\n    command: [\"sleep\", \"60\"]\n    user: \"1000\"\n    environment: {A: \"1\"}\n    ports: [\"5432:5432\"]\n    volumes: [\"data:/data\", \"/host:/host\"]\n    restart: always\n    healthcheck: {test: [\"CMD\", \"true\"]}\n    pre_start:\n      - {command: chown -R 1000 /data, user: root, environment: [B=2], privileged: true}\n      - command: [\"true\"]\nvolumes:\n  data: {}\n",
        );
        let svc = &p.services["db"];
        let (name, b) = pre_start_body(&p, svc, 0, "c0ffee", "sha256:1").expect("body");
        assert_eq!(name, "p-db-pre_start-0");
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["chown", "-R", "1000", "/data"]));
        assert_eq!(b["User"], "root");
        assert_eq!(b["Env"], json!(["A=1", "B=2"]));
        assert_eq!(b["Healthcheck"], json!({"Test": ["NONE"]}));
        let h = &b["HostConfig"];
        assert_eq!(h["VolumesFrom"], json!(["c0ffee"]));
        assert_eq!(h["Privileged"], true);
        assert_eq!(h["RestartPolicy"]["Name"], "no");
        assert!(h.get("PortBindings").is_none() && h.get("Mounts").is_none() && h.get("Binds").is_none());
        let l = &b["Labels"];
        assert_eq!(l[LABEL_HOOK], "pre_start");
        assert_eq!(l[LABEL_HOOK_INDEX], "0");
        assert_eq!(l[LABEL_PROJECT], "p");
        assert_eq!(l[LABEL_SERVICE], "db");
        for k in [LABEL_NUMBER, LABEL_CONFIG_HASH, LABEL_ONEOFF] {
            assert!(l.get(k).is_none(), "{k}");
        }
        // The second hook keeps the service's user.
        let (name, b) = pre_start_body(&p, svc, 1, "c0ffee", "").expect("body");
        assert_eq!((name.as_str(), &b["User"], &b["Cmd"]), ("p-db-pre_start-1", &json!("1000"), &json!(["true"])));
        assert!(pre_start_body(&p, svc, 2, "c0ffee", "").is_err());
    }

    const FILE: &str = r#"
services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    ports: ["127.0.0.1:8080:80", "9000/udp"]
    volumes: ["data:/data:ro", "/host:/host", {type: tmpfs, target: /t, tmpfs: {size: 1m}}]
    environment: {A: "1"}
    labels: {team: core}
    networks:
      back: {aliases: [www], ipv4_address: 10.5.0.9}
      default: {}
    depends_on: {db: {condition: service_healthy, restart: true}}
    healthcheck: {test: ["CMD", "true"], interval: 1m30s, retries: 4}
    restart: on-failure:3
    deploy: {resources: {limits: {memory: 64m, cpus: "0.5", pids: 100}}}
    cap_add: [NET_ADMIN]
    read_only: true
    init: true
    extra_hosts: ["h:10.0.0.1"]
    stop_grace_period: 3s
    user: "1000"
  db:
    image: busybox
networks:
  back: {ipam: {config: [{subnet: 10.5.0.0/24}]}}
volumes:
  data: {name: shared-data}
"#;

    #[test]
    fn container_bodies() {
        let p = project(FILE);
        let web = &p.services["web"];
        let spec = ContainerSpec { number: 2, image_id: "sha256:abc".into(), ..ContainerSpec::default() };
        let (name, b) = container_body(&p, web, &spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, "p-web-2");
        let l = &b["Labels"];
        assert_eq!(l[LABEL_PROJECT], "p");
        assert_eq!(l[LABEL_SERVICE], "web");
        assert_eq!(l[LABEL_NUMBER], "2");
        assert_eq!(l[LABEL_ONEOFF], "False");
        assert_eq!(l[LABEL_DEPENDS_ON], "db:service_healthy:true");
        assert_eq!(l[LABEL_IMAGE], "sha256:abc");
        assert_eq!(l[LABEL_CONFIG_HASH], config_hash(&p, "web"));
        assert_eq!(l["team"], "core");
        assert_eq!(b["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["User"], "1000");
        assert_eq!(b["StopTimeout"], 3);
        assert_eq!(b["Healthcheck"], json!({"Test": ["CMD", "true"], "Interval": 90_000_000_000i64, "Retries": 4}));
        let h = &b["HostConfig"];
        assert_eq!(h["PortBindings"]["80/tcp"], json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}]));
        assert_eq!(h["PortBindings"]["9000/udp"], json!([{"HostIp": "", "HostPort": ""}]));
        assert_eq!(h["Mounts"][0]["Source"], "shared-data");
        assert_eq!(h["Mounts"][0]["ReadOnly"], true);
        assert_eq!(
            h["Mounts"][1],
            json!({"Type": "bind", "Source": "/host", "Target": "/host", "BindOptions": {"CreateMountpoint": true}})
        );
        assert_eq!(h["Mounts"][2]["TmpfsOptions"]["SizeBytes"], 1_048_576);
        assert_eq!(h["RestartPolicy"], json!({"Name": "on-failure", "MaximumRetryCount": 3}));
        assert_eq!(h["Memory"], 67_108_864);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["PidsLimit"], 100);
        assert_eq!(h["ExtraHosts"], json!(["h:10.0.0.1"]));
        assert_eq!((h["ReadonlyRootfs"].clone(), h["Init"].clone()), (json!(true), json!(true)));
        let eps = &b["NetworkingConfig"]["EndpointsConfig"];
        assert_eq!(eps["p_back"]["Aliases"], json!(["web", "www"]));
        assert_eq!(eps["p_back"]["IPAMConfig"]["IPv4Address"], "10.5.0.9");
        assert_eq!(eps["p_default"]["Aliases"], json!(["web"]));
        // One-off: no ports, no restart, its own name and labels.
        let spec = ContainerSpec { oneoff: Some("0123456789abcdef".into()), ..ContainerSpec::default() };
        let (name, b) = container_body(&p, web, &spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name, "p-web-run-0123456789ab");
        assert_eq!(b["Labels"][LABEL_ONEOFF], "True");
        assert!(b["HostConfig"].get("PortBindings").is_none() && b["HostConfig"].get("RestartPolicy").is_none());
    }

    #[test]
    fn secrets_and_configs_are_read_only_binds() {
        let p = project(
            "services:\n  a:\n    image: x\n    secrets: [pw, {source: pw, target: other}]\n    configs: [{source: conf, target: /etc/app.conf}]\nsecrets:\n  pw: {file: ./pw.txt}\nconfigs:\n  conf: {file: /abs/app.conf}\n",
        );
        let (_, b) = container_body(&p, &p.services["a"], &ContainerSpec::default()).unwrap_or_else(|e| panic!("{e}"));
        let m = &b["HostConfig"]["Mounts"];
        assert_eq!(m[0]["Target"], "/run/secrets/pw");
        assert!(m[0]["Source"].as_str().is_some_and(|s| s.ends_with("/pw.txt") && s.starts_with('/')));
        assert_eq!(m[1]["Target"], "/run/secrets/other");
        assert_eq!(
            (m[2]["Source"].clone(), m[2]["Target"].clone(), m[2]["ReadOnly"].clone()),
            (json!("/abs/app.conf"), json!("/etc/app.conf"), json!(true))
        );
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("compose.yaml"), "services:\n  a: {image: x, secrets: [nope]}\n").expect("write");
        let o = Options { working_dir: d.path().to_path_buf(), ..Options::default() };
        assert!(load(&o).is_err_and(|e| e.to_string().contains("undefined secret nope")));
    }

    #[test]
    fn networks_volumes_order_and_hash() {
        let p = project(FILE);
        let n = network_body(&p, "back").expect("network");
        assert_eq!(n["Name"], "p_back");
        assert_eq!(n["Labels"][LABEL_NETWORK], "back");
        assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.5.0.0/24");
        let v = volume_body(&p, "data").expect("volume");
        assert_eq!((v["Name"].clone(), v["Labels"][LABEL_VOLUME].clone()), (json!("shared-data"), json!("data")));
        assert_eq!(start_order(&p, None), vec!["db", "web"]);
        assert_eq!(with_dependencies(&p, &["web".into()]).len(), 2);
        // The hash ignores replicas, but not the environment.
        let h = config_hash(&p, "web");
        let p2 = project(&FILE.replace("deploy: {", "deploy: {replicas: 3, "));
        assert_eq!(config_hash(&p2, "web"), h);
        let p3 = project(&FILE.replace("A: \"1\"", "A: \"2\""));
        assert_ne!(config_hash(&p3, "web"), h);
    }

    #[test]
    fn seccomp_files_are_sent_as_json() {
        let d = tempfile::tempdir().expect("tempdir");
        let text = "services:\n  web:\n    image: busybox\n    security_opt: [\"seccomp:p.json\", \"systempaths=unconfined\", \"no-new-privileges\"]\n";
        std::fs::write(d.path().join("compose.yaml"), text).expect("write");
        std::fs::write(d.path().join("p.json"), "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").expect("write");
        let o = Options { working_dir: d.path().to_path_buf(), project_name: Some("p".into()), ..Options::default() };
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        let web = &p.services["web"];
        let (_, b) = container_body(&p, web, &ContainerSpec::default()).unwrap_or_else(|e| panic!("{e}"));
        let h = &b["HostConfig"];
        assert_eq!(h["SecurityOpt"], json!([r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#, "no-new-privileges"]));
        assert_eq!((&h["MaskedPaths"], &h["ReadonlyPaths"]), (&json!([]), &json!([])));
        std::fs::write(d.path().join("p.json"), "not json").expect("write");
        let e = container_body(&p, web, &ContainerSpec::default()).expect_err("not json").to_string();
        assert!(e.contains("compacting json for seccomp profile (p.json) failed"), "{e}");
    }

    #[test]
    fn deploy_resources_and_restart_policy_win_over_the_service_keys() {
        let p = project(
            "services:\n  a:\n    image: x\n    mem_limit: 128m\n    cpus: 2\n    pids_limit: 9\n    restart: always\n    deploy:\n      resources:\n        limits: {cpus: '0.5', memory: 64m, pids: 50}\n        reservations: {cpus: '0.25', memory: 32m}\n      restart_policy: {condition: on-failure, max_attempts: 3}\n  b:\n    image: x\n    mem_limit: 128m\n    restart: unless-stopped\n  c:\n    image: x\n    deploy: {restart_policy: {condition: none}}\n  d:\n    image: x\n    deploy: {restart_policy: {max_attempts: 2}}\n",
        );
        let body =
            |s: &str| container_body(&p, &p.services[s], &ContainerSpec::default()).unwrap_or_else(|e| panic!("{e}")).1;
        let h = &body("a")["HostConfig"];
        assert_eq!(h["Memory"], 64 << 20);
        assert_eq!(h["MemoryReservation"], 32 << 20);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["PidsLimit"], 50);
        assert_eq!(h["RestartPolicy"], json!({"Name": "on-failure", "MaximumRetryCount": 3}));
        let h = &body("b")["HostConfig"];
        assert_eq!(h["Memory"], 128 << 20);
        assert_eq!(h["RestartPolicy"], json!({"Name": "unless-stopped", "MaximumRetryCount": 0}));
        assert_eq!(body("c")["HostConfig"]["RestartPolicy"]["Name"], "no");
        // The spec's default condition is `any`.
        assert_eq!(body("d")["HostConfig"]["RestartPolicy"], json!({"Name": "always", "MaximumRetryCount": 2}));
    }

    #[test]
    fn secrets_and_configs_from_environment_and_content_are_injected() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            d.path().join("compose.yaml"),
            "services:\n  a:\n    image: x\n    secrets: [{source: tok, uid: '1000', gid: '1001', mode: 0o400}, {source: f, mode: 0o400}]\n    configs: [c, {source: c, target: etc/c.conf}, {source: e, mode: 0o600}]\nsecrets:\n  tok: {environment: TOK}\n  f: {file: ./f.txt}\nconfigs:\n  c: {content: 'port=1'}\n  e: {environment: TOK}\n",
        )
        .expect("write");
        let mut o = Options { working_dir: d.path().to_path_buf(), ..Options::default() };
        o.environment.insert("TOK".into(), "s3cret".into());
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        let (files, warnings) = injected_files(&p, &p.services["a"]).unwrap_or_else(|e| panic!("{e}"));
        let f = |target: &str, content: &[u8], uid, gid, mode, copy_uid_gid| InjectedFile {
            target: target.into(),
            content: content.to_vec(),
            uid,
            gid,
            mode,
            copy_uid_gid,
        };
        assert_eq!(
            files,
            vec![
                f("/run/secrets/tok", b"s3cret", 1000, 1001, 0o400, true),
                f("/c", b"port=1", 0, 0, 0o444, false),
                f("/etc/c.conf", b"port=1", 0, 0, 0o444, false),
                f("/e", b"s3cret", 0, 0, 0o600, false),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Only the file-based one is a bind.
        let (_, b) = container_body(&p, &p.services["a"], &ContainerSpec::default()).unwrap_or_else(|e| panic!("{e}"));
        let m = b["HostConfig"]["Mounts"].as_array().cloned().unwrap_or_default();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["Target"], "/run/secrets/f");
        // An unset variable is an error naming it.
        o.environment.clear();
        let p = load(&o).unwrap_or_else(|e| panic!("{e}"));
        let e = injected_files(&p, &p.services["a"]).expect_err("unset variable");
        assert!(e.to_string().contains("environment variable \"TOK\" required by file \"tok\" is not set"), "{e}");
    }
}
