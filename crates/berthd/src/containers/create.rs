//! Creating a container: the user's config merged over the image's, checked, its record and files written.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;
use berth_api::models::{ContainerConfig, ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use serde_json::Value;

use crate::daemon::Daemon;
use crate::task::blocking;

use super::*;

/// Merges the image's configuration under the user's, as Docker does.
pub(super) fn merge_config(user: &mut ContainerConfig, image: &Value) -> Result<(), Error> {
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
    // Pod membership is berthd's to set: an image's (`commit` of a member copies its labels) is not the user's.
    labels.retain(|k, _| !POD_LABELS.contains(&k.as_str()));
    labels.extend(user.labels.clone().unwrap_or_default());
    user.labels = Some(labels);
    // A set in Docker (a map keyed by port): a port both the image and the request expose is there once.
    let mut exposed = img.exposed_ports.clone().unwrap_or_default();
    for p in user.exposed_ports.clone().unwrap_or_default() {
        if !exposed.contains(&p) {
            exposed.push(p);
        }
    }
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
pub(super) fn check_network_options(
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

/// The legacy container-wide `Config.MacAddress` (API < 1.44; bollard's models no longer have it), moved to the
/// endpoint of the container's primary network as dockerd 25 does (`handleMACAddressBC`): before 1.44 it replaces
/// that endpoint's address; from 1.44 an endpoint's own address must agree with it.
pub fn migrate_legacy_mac(
    body: &mut ContainerCreateBody,
    mac: Option<&str>,
    v: berth_api::ApiVersion,
) -> Result<(), Error> {
    use crate::networks::Mode;
    let Some(mac) = mac.filter(|m| !m.is_empty()) else { return Ok(()) };
    let mode_name = body.host_config.as_ref().and_then(|h| h.network_mode.clone()).unwrap_or_default();
    match crate::networks::mode(&mode_name) {
        Mode::Container(_) => {
            return Err(Error::InvalidArgument("conflicting options: mac-address and the network mode".into()));
        }
        Mode::Host | Mode::None => return Ok(()),
        Mode::Bridge => {}
    }
    let name = match mode_name.as_str() {
        "" | "default" => crate::networks::DEFAULT_BRIDGE.to_string(),
        m => m.to_string(),
    };
    let configs = body
        .networking_config
        .get_or_insert_with(Default::default)
        .endpoints_config
        .get_or_insert_with(Default::default);
    if v < (berth_api::ApiVersion { major: 1, minor: 44 }) {
        if configs.is_empty() {
            configs.insert(name, Default::default());
        }
        for ep in configs.values_mut() {
            ep.mac_address = Some(mac.to_string());
        }
        return Ok(());
    }
    if configs.is_empty() {
        configs.insert(name.clone(), Default::default());
    }
    let Some(ep) = configs.get_mut(&name) else {
        return Err(Error::InvalidArgument(
            "if a container-wide MAC address is supplied, HostConfig.NetworkMode must match the identity of a network \
             in NetworkSettings.Networks"
                .into(),
        ));
    };
    match ep.mac_address.as_deref().filter(|m| !m.is_empty()) {
        None => ep.mac_address = Some(mac.to_string()),
        Some(own) if own != mac => {
            return Err(Error::InvalidArgument(
                "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or \
                 be left empty"
                    .into(),
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

/// `--tmpfs` destinations, checked at creation as Docker does.
pub(super) fn check_tmpfs(host: &HostConfig) -> Result<(), Error> {
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

pub(super) fn validate_env(env: &[String]) -> Result<(), Error> {
    for e in env {
        if e.is_empty() || e.starts_with('=') || e.contains('\0') {
            return Err(Error::InvalidArgument(format!("invalid environment variable: {e:?}")));
        }
    }
    Ok(())
}

pub(super) fn check_runtime(d: &Daemon, host: &HostConfig) -> Result<String, Error> {
    let r = host.runtime.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| d.config.runtime.clone());
    if matches!(r.as_str(), "berth" | "builtin") || berth_runtime::external::available(&r) {
        Ok(r)
    } else {
        Err(Error::InvalidArgument(format!("unknown or invalid runtime name: {r}")))
    }
}

pub(super) fn default_host_config(mut host: HostConfig) -> HostConfig {
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
    create_in_pod(d, name, body, image, PodRole::None).await
}

/// [`create_with`] of a pod's member or holder (the pod manager's): the pod's label is set here from `role`, never
/// from the request, whose pod labels are refused (400) and the image's dropped.
pub async fn create_in_pod(
    d: &Arc<Daemon>,
    name: Option<String>,
    body: ContainerCreateBody,
    image: Option<BuildImage>,
    role: PodRole,
) -> Result<String, Error> {
    if let Some(l) = body.labels.iter().flat_map(|l| l.keys()).find(|k| POD_LABELS.contains(&k.as_str())) {
        return Err(Error::InvalidArgument(format!(
            "the label {l} is reserved: berthd sets it on a pod's containers (create the container with ?pod=)"
        )));
    }
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
    if let Some(p) = &host.restart_policy {
        super::update::check_restart_policy(p)?;
        if host.auto_remove.unwrap_or(false) && p.name.is_some_and(|n| n != RestartPolicyNameEnum::NO) {
            return Err(Error::InvalidArgument("can't create 'AutoRemove' container with restart policy".into()));
        }
    }
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
    match &role {
        PodRole::None => {}
        PodRole::Member(pod) => {
            config.labels.get_or_insert_with(Default::default).insert(POD_LABEL.into(), pod.clone());
        }
        PodRole::Holder(pod) => {
            config.labels.get_or_insert_with(Default::default).insert(POD_HOLDER_LABEL.into(), pod.clone());
        }
    }
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
    if let Some(links) = host.links.take().filter(|l| !l.is_empty()) {
        host.links = Some(crate::networks::links::links_at_create(d, &name, &network_mode, &links)?);
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
        manually_stopped: false,
        runtime,
        lower_dirs: image.lower_dirs.clone(),
        mounts: Vec::new(),
        net: crate::networks::NetState { endpoints, ..Default::default() },
    };
    let mut phases = crate::phases::Phases::begin("create", &id);
    let dir = container_dir(d, &id);
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let setup = (|| -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Internal(format!("create container directory: {e}"));
        std::fs::create_dir_all(dir.join("upper")).map_err(io)?;
        std::fs::create_dir_all(dir.join("work")).map_err(io)?;
        d.networks.write_files(&dir, &hostname, &[], &rec, None, &[])
    })();
    if let Err(e) = setup {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    crate::phases::mark(&mut phases, "dirs");
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
    crate::phases::mark(&mut phases, "mounts");
    if let Err(e) = persist_new(d, &rec).await {
        let _ = std::fs::remove_dir_all(&dir);
        crate::volumes::remove_anonymous_locked(d, &created_volumes).await;
        // A concurrent create may have taken the name first.
        return Err(if e.is_conflict() { name_taken(d, &name).await } else { e });
    }
    berth_store::fault::point("create.after-record");
    let c = Container::new(rec);
    if let Ok(mut m) = d.containers.write() {
        m.insert(id.clone(), c.clone());
    }
    c.publish(&d.events, "create", &[]);
    crate::phases::mark(&mut phases, "record");
    crate::phases::done(phases);
    Ok(id)
}

pub(super) fn name_conflict(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// [`name_conflict`] for a name the store refused (a concurrent create or rename took it first): Docker's message
/// names the container that holds it.
pub(super) async fn name_taken(d: &Daemon, name: &str) -> Error {
    let (store, taken) = (d.store.clone(), name.to_string());
    let owner = blocking(move || store.id_by_name(DOC_KIND, &taken).map_err(Error::from)).await.ok().flatten();
    name_conflict(name, owner.as_deref().unwrap_or("another container"))
}

pub(super) fn generate_name(d: &Daemon) -> Result<String, Error> {
    crate::names::generate_unique("container", |n| Ok(d.container(&format!("/{n}")).is_ok()))
}

/// The container part of a create body (bollard splits it from the host config).
pub(super) fn container_config(b: &ContainerCreateBody) -> ContainerConfig {
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
    }
}
