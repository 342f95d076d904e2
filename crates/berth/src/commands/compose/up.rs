//! `up`, `create` and `down`: the project's networks and volumes, its images (built or pulled when missing),
//! its containers converged service by service in dependency order (created, recreated when the configuration
//! hash or the image changed, scaled, started), the `depends_on` conditions waited for, and the reverse on `down`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use berth_compose::Project;
use berth_compose::model::Service;
use berth_compose::plan::{self, ContainerSpec, LABEL_CONFIG_HASH, LABEL_IMAGE, LABEL_SERVICE};
use clap::Args;
use serde_json::{Value, json};

use super::lifecycle::HookOutput;
use super::{OneOff, ProjectArgs, containers, id, label, name, number, progress};
use crate::StatusError;
use crate::client::{ApiError, Client, encode_path, query};
use crate::commands::{container_path, image_path, network_path};

/// `up`'s flags.
#[derive(Args, Debug, Default)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long = "build")]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub no_recreate: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Don't start the services after creating them
    #[arg(long = "no-start")]
    pub no_start: bool,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present
    #[arg(long = "scale", value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Wait for services to be running|healthy. Implies detached mode
    #[arg(long = "wait")]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long = "wait-timeout", value_name = "SECONDS", default_value_t = 300)]
    pub wait_timeout: u64,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Use this timeout in seconds for container shutdown when attached or when containers are already running
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<i64>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long = "pull", value_name = "POLICY", default_value = "missing")]
    pub pull: String,
    /// Stops all containers if any container was stopped. Incompatible with -d
    #[arg(long = "abort-on-container-exit")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container. Implies --abort-on-container-exit
    #[arg(long = "exit-code-from", value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Restrict attaching to the specified services. Incompatible with --attach-dependencies
    #[arg(long = "attach", value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Do not attach (stream logs) to the specified services
    #[arg(long = "no-attach", value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Automatically attach to log output of dependent services
    #[arg(long = "attach-dependencies")]
    pub attach_dependencies: bool,
    /// Enable interactive shortcuts when running attached. Incompatible with --detach (accepted; Berth has no menu)
    #[arg(long = "menu", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub menu: Option<bool>,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Watch source code and rebuild/refresh containers when files are updated
    #[arg(short = 'w', long = "watch")]
    pub watch: bool,
    /// Services to start
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `create`'s flags.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long = "build")]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long = "scale", value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Services to create
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `down`'s flags.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
    #[arg(long = "rmi", value_name = "TYPE")]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    pub timeout: Option<i64>,
    /// Services to take down (their containers only)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `--scale svc=N` flags as a map.
fn scales(flags: &[String], project: &Project) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    for f in flags {
        let (s, n) = f.split_once('=').ok_or_else(|| anyhow!("invalid --scale {f:?}: expected SERVICE=NUM"))?;
        let n: u64 = n.parse().map_err(|_| anyhow!("invalid --scale {f:?}: {n:?} is not a number"))?;
        if !project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
        m.insert(s.to_string(), n);
    }
    Ok(m)
}

/// Creates the project's networks that do not exist (external ones must).
pub async fn ensure_networks(c: &Client, project: &Project, services: &BTreeSet<String>) -> Result<()> {
    let used: BTreeSet<String> = project
        .services
        .values()
        .filter(|s| services.contains(&s.name))
        .flat_map(|s| s.network_list().into_iter().map(|(n, _)| n))
        .collect();
    for key in used {
        let Some(r) = project.networks.get(&key) else { continue };
        match c.get_json::<Value>(&network_path(&r.name)).await {
            Ok(_) => {}
            Err(e) if ApiError::is(&e, 404) => {
                if r.is_external() {
                    bail!("network {} declared as external, but could not be found", r.name);
                }
                let body = plan::network_body(project, &key).context("network body")?;
                c.post_json("/networks/create", &body)
                    .await
                    .with_context(|| format!("failed to create network {}", r.name))?;
                progress(&format!("Network {}", r.name), "Created");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates the project's volumes that do not exist (external ones must).
pub async fn ensure_volumes(c: &Client, project: &Project, services: &BTreeSet<String>) -> Result<()> {
    let used: BTreeSet<String> = project
        .services
        .values()
        .filter(|s| services.contains(&s.name))
        .flat_map(|s| s.volumes.iter().filter(|v| v.typ == "volume").filter_map(|v| v.source.clone()))
        .collect();
    for key in used {
        let Some(r) = project.volumes.get(&key) else { continue };
        match c.get_json::<Value>(&format!("/volumes/{}", encode_path(&r.name))).await {
            Ok(_) => {}
            Err(e) if ApiError::is(&e, 404) => {
                if r.is_external() {
                    bail!("external volume \"{}\" not found", r.name);
                }
                let body = plan::volume_body(project, &key).context("volume body")?;
                c.post_json("/volumes/create", &body)
                    .await
                    .with_context(|| format!("failed to create volume {}", r.name))?;
                progress(&format!("Volume \"{}\"", r.name), "Created");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The ID of an image, `None` when it is not there.
pub async fn image_id(c: &Client, image: &str) -> Result<Option<String>> {
    match c.get_json::<Value>(&format!("{}/json", image_path(image))).await {
        Ok(v) => Ok(v["Id"].as_str().map(str::to_string)),
        Err(e) if ApiError::is(&e, 404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How [`ensure_images`] gets the services' images.
#[derive(Debug, Clone)]
pub struct ImagePolicy {
    /// Build every service that has a `build:` (`--build`).
    pub build: bool,
    /// Never build (`--no-build`).
    pub no_build: bool,
    /// `--pull` (`always`, `missing`, `never`), under each service's `pull_policy`.
    pub pull: String,
    /// The global `--progress` of the builds.
    pub progress: String,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        ImagePolicy { build: false, no_build: false, pull: "missing".into(), progress: String::new() }
    }
}

/// Builds or pulls what the services need; returns each service's image ID.
pub async fn ensure_images(
    c: &Client,
    project: &Project,
    services: &BTreeSet<String>,
    how: &ImagePolicy,
) -> Result<BTreeMap<String, String>> {
    let (build, no_build, pull) = (how.build, how.no_build, how.pull.as_str());
    let mut plans = Vec::new();
    for s in project.services.values().filter(|s| services.contains(&s.name)) {
        let image = plan::image_name(&project.name, s);
        let have = image_id(c, &image).await?;
        let policy = s.pull_policy.as_deref().unwrap_or(pull);
        let to_build = s.build.is_some() && !no_build && (build || have.is_none() || policy == "build");
        // A build the builder cannot do (BuildKit-only keys, a remote context) is refused before any is done.
        if to_build {
            plan::classic_build(s)?;
        }
        plans.push((s, image, have, policy, to_build));
    }
    let mut ids = BTreeMap::new();
    for (s, image, mut have, policy, to_build) in plans {
        if to_build {
            let opts = super::build::BuildOptions { progress: how.progress.clone(), ..Default::default() };
            super::build::build_service(c, project, s, &opts).await?;
            have = image_id(c, &image).await?;
        } else if s.build.is_none() && (have.is_none() && policy != "never" || policy == "always") {
            super::ops::pull_image(c, &image, false)
                .await
                .with_context(|| format!("service {:?}: pull {image}", s.name))?;
            have = image_id(c, &image).await?;
        }
        match have {
            Some(i) => {
                ids.insert(s.name.clone(), i);
            }
            None if s.build.is_some() => {
                bail!("service {:?}: image {image} is not built (and --no-build was given)", s.name)
            }
            None => bail!("service {:?}: no such image: {image}", s.name),
        }
    }
    Ok(ids)
}

/// Stops a container with the service's grace period (or `timeout`), after the service's `pre_stop` hooks.
pub async fn stop_container(c: &Client, svc: Option<&Service>, cid: &str, timeout: Option<i64>) -> Result<()> {
    if let Some(svc) = svc {
        super::lifecycle::pre_stop(c, svc, cid).await?;
    }
    let t = timeout.or_else(|| svc.and_then(plan::stop_timeout).map(|d| d.as_secs() as i64));
    let q: Vec<(&str, String)> = t.iter().map(|t| ("t", t.to_string())).collect();
    match c.post(&format!("{}/stop{}", container_path(cid), query(&q))).await {
        Ok(_) => Ok(()),
        Err(e) if ApiError::is(&e, 304) || ApiError::is(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a container (`v`: its anonymous volumes too).
pub async fn remove_container(c: &Client, cid: &str, volumes: bool) -> Result<()> {
    let q = if volumes { "?v=1&force=1" } else { "?force=1" };
    match c.delete(&format!("{}{q}", container_path(cid))).await {
        Ok(_) => Ok(()),
        Err(e) if ApiError::is(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a container; `report` prints Compose's `Created` line (not for a replacement's temporary name).
async fn create_container(
    c: &Client,
    project: &Project,
    svc: &Service,
    spec: &ContainerSpec,
    report: bool,
) -> Result<String> {
    let (cname, body) = plan::container_body(project, svc, spec)?;
    let resp = c
        .post_json(&format!("/containers/create{}", query(&[("name", cname.clone())])), &body)
        .await
        .with_context(|| format!("service {:?}: create container {cname}", svc.name))?;
    let v: Value = serde_json::from_slice(&resp).context("decode the create answer")?;
    let cid = v["Id"].as_str().unwrap_or_default().to_string();
    super::lifecycle::inject_files(c, project, svc, &cid).await?;
    if report {
        progress(&format!("Container {cname}"), "Created");
    }
    Ok(cid)
}

async fn start_container(c: &Client, svc: &Service, cid: &str, cname: &str, hooks: Option<&HookOutput>) -> Result<()> {
    match c.post(&format!("{}/start", container_path(cid))).await {
        Ok(_) => {
            progress(&format!("Container {cname}"), "Started");
            super::lifecycle::post_start(c, svc, cid, hooks).await
        }
        Err(e) if ApiError::is(&e, 304) => Ok(()),
        Err(e) => Err(anyhow!("service {:?} failed to start: container {cname}: {e:#}", svc.name)),
    }
}

/// What convergence may do.
#[derive(Debug, Clone, Default)]
pub struct Converge {
    /// Recreate even when nothing changed.
    pub force_recreate: bool,
    /// Never recreate.
    pub no_recreate: bool,
    /// Start the containers.
    pub start: bool,
    /// Stop timeout for recreation.
    pub timeout: Option<i64>,
    /// The services this convergence acts on: the dependents (`depends_on.restart: true`) among them are stopped
    /// when a dependency is recreated, and started again by their own convergence (Compose v2).
    pub targets: Option<BTreeSet<String>>,
}

/// The services among `targets` that declare `depends_on: {<svc>: {restart: true}}`.
pub fn restart_dependents(project: &Project, svc: &str, targets: Option<&BTreeSet<String>>) -> Vec<String> {
    project
        .services
        .values()
        .filter(|s| targets.is_none_or(|t| t.contains(&s.name)))
        .filter(|s| s.depends_on.get(svc).is_some_and(|d| d.restart.unwrap_or(false)))
        .map(|s| s.name.clone())
        .collect()
}

/// Stops the running containers of the services that restart with `svc` (before it is recreated or restarted).
async fn stop_dependents(
    c: &Client,
    project: &Project,
    svc: &Service,
    targets: Option<&BTreeSet<String>>,
) -> Result<()> {
    for dep in restart_dependents(project, &svc.name, targets) {
        let dsvc = project.services.get(&dep);
        for ctr in containers(c, &project.name, std::slice::from_ref(&dep), OneOff::Exclude, false).await? {
            stop_container(c, dsvc, &id(&ctr), None).await?;
            progress(&format!("Container {}", name(&ctr)), "Stopped");
        }
    }
    Ok(())
}

/// Brings one service's containers to the wanted number and configuration; returns their IDs.
pub async fn converge(
    c: &Client,
    project: &Project,
    svc: &Service,
    replicas: u64,
    image_id: &str,
    how: &Converge,
) -> Result<Vec<String>> {
    let existing = containers(c, &project.name, std::slice::from_ref(&svc.name), OneOff::Exclude, true).await?;
    let hash = plan::config_hash(project, &svc.name);
    let mut ids = Vec::new();
    let mut numbers = BTreeSet::new();
    // Surplus replicas go, highest numbers first (the list is sorted by number).
    let mut kept = Vec::new();
    let mut to_start: Vec<(String, String)> = Vec::new();
    for (i, ctr) in existing.iter().enumerate() {
        if (i as u64) < replicas {
            kept.push(ctr);
        } else {
            stop_container(c, Some(svc), &id(ctr), how.timeout).await?;
            remove_container(c, &id(ctr), false).await?;
            progress(&format!("Container {}", name(ctr)), "Removed");
        }
    }
    for ctr in kept {
        let n = number(ctr);
        numbers.insert(n);
        let changed = label(ctr, LABEL_CONFIG_HASH) != Some(hash.as_str())
            || (!image_id.is_empty() && label(ctr, LABEL_IMAGE).is_some_and(|i| i != image_id))
            || ctr.get("ImageID").and_then(Value::as_str).is_some_and(|i| !image_id.is_empty() && i != image_id);
        let recreate = how.force_recreate || (!how.no_recreate && changed);
        let cname = name(ctr);
        if recreate {
            // As Compose v2: the replacement is created first under a temporary name (so a bad configuration
            // leaves the old container in place), then the old one goes and the new one takes its name.
            progress(&format!("Container {cname}"), "Recreate");
            stop_dependents(c, project, svc, how.targets.as_ref()).await?;
            let old = id(ctr);
            let temp = format!("{}_{cname}", old.chars().take(12).collect::<String>());
            let spec = ContainerSpec {
                number: n,
                image_id: image_id.to_string(),
                name: Some(temp.clone()),
                replace: Some(old.clone()),
                ..ContainerSpec::default()
            };
            let new = create_container(c, project, svc, &spec, false).await?;
            stop_container(c, Some(svc), &old, how.timeout).await?;
            remove_container(c, &old, false).await?;
            c.post(&format!("{}/rename{}", container_path(&new), query(&[("name", cname.clone())])))
                .await
                .with_context(|| format!("rename {temp} to {cname}"))?;
            progress(&format!("Container {cname}"), "Recreated");
            if how.start {
                to_start.push((new.clone(), cname.clone()));
            }
            ids.push(new);
        } else {
            let running = ctr.get("State").and_then(Value::as_str) == Some("running");
            if how.start && !running {
                to_start.push((id(ctr), cname.clone()));
            } else if running {
                progress(&format!("Container {cname}"), "Running");
            }
            ids.push(id(ctr));
        }
    }
    let mut next = 1;
    while (ids.len() as u64) < replicas {
        while numbers.contains(&next) {
            next += 1;
        }
        numbers.insert(next);
        let spec = ContainerSpec { number: next, image_id: image_id.to_string(), ..ContainerSpec::default() };
        let new = create_container(c, project, svc, &spec, true).await?;
        if how.start {
            to_start.push((new.clone(), plan::container_name(&project.name, svc, next)));
        }
        ids.push(new);
    }
    // Created first, then started (the `pre_start` hooks before the first start), as Compose does.
    if let Some((first, _)) = to_start.first() {
        super::lifecycle::pre_start(c, project, svc, first, None).await?;
    }
    for (cid, cname) in &to_start {
        start_container(c, svc, cid, cname, None).await?;
    }
    Ok(ids)
}

/// Waits for `dep`'s `condition` (`service_started`, `service_healthy`, `service_completed_successfully`).
pub async fn wait_condition(
    c: &Client,
    project: &Project,
    dep: &str,
    condition: &str,
    timeout: Duration,
) -> Result<()> {
    if condition == "service_started" {
        return Ok(());
    }
    let start = Instant::now();
    let ctrs = containers(c, &project.name, &[dep.to_string()], OneOff::Exclude, true).await?;
    for ctr in ctrs {
        let cname = name(&ctr);
        let mut last = String::new();
        loop {
            let v: Value = c.get_json(&format!("{}/json", container_path(&id(&ctr)))).await?;
            let state = &v["State"];
            match condition {
                "service_healthy" => {
                    let Some(status) = state.pointer("/Health/Status").and_then(Value::as_str) else {
                        let configured = v
                            .pointer("/Config/Healthcheck/Test")
                            .and_then(Value::as_array)
                            .is_some_and(|t| t.first().and_then(Value::as_str) != Some("NONE"));
                        if !configured {
                            bail!("dependency failed to start: container {cname} has no healthcheck configured");
                        }
                        bail!(
                            "dependency failed to start: container {cname} has a healthcheck, but the daemon reports no health status (does it run healthchecks?)"
                        );
                    };
                    match status {
                        "healthy" => break,
                        "unhealthy" => {
                            let log = state
                                .pointer("/Health/Log")
                                .and_then(Value::as_array)
                                .and_then(|l| l.last())
                                .and_then(|l| l["Output"].as_str())
                                .unwrap_or("")
                                .trim()
                                .to_string();
                            bail!(
                                "dependency failed to start: container {cname} is unhealthy{}",
                                if log.is_empty() { String::new() } else { format!(" (last check: {log})") }
                            );
                        }
                        s => s.clone_into(&mut last),
                    }
                    if state["Running"].as_bool() == Some(false) {
                        bail!(
                            "dependency failed to start: container {cname} exited ({}) before it became healthy",
                            state["ExitCode"]
                        );
                    }
                }
                _ => {
                    if state["Running"].as_bool() == Some(false) && state["Status"].as_str() != Some("created") {
                        let code = state["ExitCode"].as_i64().unwrap_or(-1);
                        if code == 0 {
                            break;
                        }
                        bail!("service {dep:?} didn't complete successfully: exit {code}");
                    }
                    last = state["Status"].as_str().unwrap_or("").to_string();
                }
            }
            if start.elapsed() > timeout {
                bail!(
                    "timed out after {}s waiting for {dep} ({cname}) to be {} (it is still {last})",
                    timeout.as_secs(),
                    if condition == "service_healthy" { "healthy" } else { "completed" }
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        progress(&format!("Container {cname}"), if condition == "service_healthy" { "Healthy" } else { "Exited" });
    }
    Ok(())
}

/// The services an `up`/`create` acts on.
fn targets(project: &Project, services: &[String], no_deps: bool) -> Result<BTreeSet<String>> {
    for s in services {
        if !project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    Ok(if services.is_empty() {
        project.services.keys().cloned().collect()
    } else if no_deps {
        services.iter().cloned().collect()
    } else {
        plan::with_dependencies(project, services)
    })
}

/// Removes (or names) containers of the project whose service is not in the file.
async fn orphans(c: &Client, project: &Project, remove: bool) -> Result<()> {
    let all = containers(c, &project.name, &[], OneOff::Exclude, true).await?;
    let known: BTreeSet<&String> = project.services.keys().chain(project.disabled.keys()).collect();
    let orphans: Vec<&Value> =
        all.iter().filter(|v| label(v, LABEL_SERVICE).is_some_and(|s| !known.contains(&s.to_string()))).collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if remove {
        for o in orphans {
            stop_container(c, None, &id(o), None).await?;
            remove_container(c, &id(o), false).await?;
            progress(&format!("Container {}", name(o)), "Removed");
        }
    } else {
        let names: Vec<String> = orphans.iter().map(|o| name(o)).collect();
        eprintln!(
            "WARN[0000] Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(", ")
        );
    }
    Ok(())
}

/// Everything `up` and `create` share: the networks, volumes, images and containers of the targeted services,
/// created but not started; returns the targeted services and their containers.
#[allow(clippy::too_many_arguments)]
async fn create_project(
    c: &Client,
    project: &Project,
    services: &[String],
    no_deps: bool,
    images: &ImagePolicy,
    scale: &[String],
    how: Converge,
    remove_orphans: bool,
) -> Result<(BTreeSet<String>, Vec<String>)> {
    let targets = targets(project, services, no_deps)?;
    plan::check_supported(project, &targets)?;
    let how = Converge { targets: Some(targets.clone()), ..how };
    let scales = scales(scale, project)?;
    // Images first: nothing is created for a project whose images cannot be had.
    let images = ensure_images(c, project, &targets, images).await?;
    ensure_networks(c, project, &targets).await?;
    ensure_volumes(c, project, &targets).await?;
    // As Compose v2: every container is created (or recreated) first, then they are started in dependency order,
    // each service once its dependencies' conditions hold (so that an attached `up` can attach before any starts).
    let order = plan::start_order(project, Some(&targets));
    let mut ids = Vec::new();
    for s in &order {
        let Some(svc) = project.services.get(s) else { continue };
        let n = scales.get(s).copied().unwrap_or_else(|| svc.replicas());
        let image = images.get(s).cloned().unwrap_or_default();
        ids.extend(converge(c, project, svc, n, &image, &Converge { start: false, ..how.clone() }).await?);
    }
    orphans(c, project, remove_orphans).await?;
    Ok((targets, ids))
}

/// Starts the targeted services' containers in dependency order, each service once the `depends_on` conditions of
/// its dependencies hold (its `pre_start` hooks first); returns the IDs of the containers it started. `hooks`:
/// the hooks' output is shown (attached `up`).
pub async fn start_services(
    c: &Client,
    project: &Project,
    targets: &BTreeSet<String>,
    wait_timeout: Duration,
    hooks: Option<&HookOutput>,
) -> Result<Vec<String>> {
    let mut started = Vec::new();
    for s in plan::start_order(project, Some(targets)) {
        let Some(svc) = project.services.get(&s) else { continue };
        for (dep, d) in &svc.depends_on {
            if targets.contains(dep) {
                wait_condition(c, project, dep, &d.condition, wait_timeout).await?;
            }
        }
        let stopped: Vec<Value> = containers(c, &project.name, std::slice::from_ref(&s), OneOff::Exclude, true)
            .await?
            .into_iter()
            .filter(|ctr| ctr.get("State").and_then(Value::as_str) != Some("running"))
            .collect();
        if let Some(first) = stopped.first() {
            super::lifecycle::pre_start(c, project, svc, &id(first), hooks).await?;
        }
        for ctr in stopped {
            start_container(c, svc, &id(&ctr), &name(&ctr), hooks).await?;
            started.push(id(&ctr));
        }
    }
    Ok(started)
}

/// `berth compose up`.
pub async fn up(c: &Client, p: &ProjectArgs, a: UpArgs) -> Result<i32> {
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    if a.detach && abort {
        bail!("--abort-on-container-exit and --detach are incompatible options");
    }
    if a.detach && a.watch {
        bail!("cannot use --watch with --detach");
    }
    let project = super::load(p, &a.services)?;
    if let Some(s) = &a.exit_code_from
        && !project.services.contains_key(s)
    {
        bail!("no such service: {s}");
    }
    let began = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let how = Converge {
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        start: false,
        timeout: a.timeout,
        targets: None,
    };
    let timeout = Duration::from_secs(a.wait_timeout);
    let (targets, _) = create_project(
        c,
        &project,
        &a.services,
        a.no_deps,
        &ImagePolicy {
            build: a.build,
            no_build: a.no_build,
            pull: a.pull.clone(),
            progress: p.progress.clone().unwrap_or_default(),
        },
        &a.scale,
        how,
        a.remove_orphans,
    )
    .await?;
    if a.no_start {
        return Ok(0);
    }
    if a.detach || a.wait {
        start_services(c, &project, &targets, timeout, None).await?;
    }
    if a.wait {
        for s in plan::start_order(&project, Some(&targets)) {
            let has_hc = project
                .services
                .get(&s)
                .and_then(|x| x.healthcheck.as_ref())
                .is_some_and(|h| !h.disable.unwrap_or(false));
            if has_hc {
                wait_condition(c, &project, &s, "service_healthy", timeout).await?;
            } else {
                for ctr in containers(c, &project.name, std::slice::from_ref(&s), OneOff::Exclude, true).await? {
                    if ctr.get("State").and_then(Value::as_str) != Some("running") {
                        bail!("container {} is not running ({})", name(&ctr), ctr["Status"].as_str().unwrap_or(""));
                    }
                }
            }
        }
        return Ok(0);
    }
    if a.detach {
        return Ok(0);
    }
    let attached = super::attach::attached_services(
        &project,
        &targets,
        &a.services,
        &a.attach,
        &a.no_attach,
        a.attach_dependencies,
    );
    let opts = super::attach::Options {
        color: !a.no_color && super::colors(p),
        prefix: !a.no_log_prefix,
        since: format!("{}.{:09}", began.as_secs(), began.subsec_nanos()),
        abort,
        exit_code_from: a.exit_code_from.clone(),
        stop_timeout: a.timeout,
        started: a.watch.then(|| std::sync::Arc::new(tokio::sync::Notify::new())),
    };
    let started = opts.started.clone();
    let attached_up = super::attach::up_attached(c, &project, &targets, attached, opts, timeout);
    let Some(started) = started else {
        return attached_up.await;
    };
    // Watching begins once the services run (its initial sync goes into their containers).
    let watching = async {
        started.notified().await;
        super::watch::watch(c, &project, &a.services, true).await
    };
    tokio::select! {
        r = attached_up => r,
        r = watching => r.map(|()| 0),
    }
}

/// `berth compose create`.
pub async fn create(c: &Client, p: &ProjectArgs, a: CreateArgs) -> Result<i32> {
    let project = super::load(p, &a.services)?;
    let how = Converge {
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        start: false,
        timeout: None,
        targets: None,
    };
    let images = ImagePolicy {
        build: a.build,
        no_build: a.no_build,
        progress: p.progress.clone().unwrap_or_default(),
        ..ImagePolicy::default()
    };
    create_project(c, &project, &a.services, false, &images, &a.scale, how, a.remove_orphans).await?;
    Ok(0)
}

/// `berth compose down`.
pub async fn down(c: &Client, p: &ProjectArgs, a: DownArgs) -> Result<i32> {
    // Without a file, `down -p NAME` takes down what the labels say belongs to NAME.
    let project = match super::load(p, &[]) {
        Ok(pr) => Some(pr),
        Err(e) => match super::project_name_only(p) {
            Some(_)
                if e.downcast_ref::<berth_compose::Error>()
                    .is_some_and(|e| matches!(e, berth_compose::Error::NoFile { .. })) =>
            {
                None
            }
            _ => return Err(e),
        },
    };
    let pname = match &project {
        Some(pr) => pr.name.clone(),
        None => super::project_name_only(p).unwrap_or_default(),
    };
    let all = containers(c, &pname, &a.services, OneOff::Include, true).await?;
    // Reverse dependency order: dependents stop first.
    let order: Vec<String> = match &project {
        Some(pr) => plan::start_order(pr, None),
        None => Vec::new(),
    };
    let rank = |v: &Value| {
        label(v, LABEL_SERVICE).and_then(|s| order.iter().position(|o| o == s)).map(|i| i + 1).unwrap_or(usize::MAX)
    };
    let mut sorted: Vec<&Value> = all.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(rank(v)));
    let known: BTreeSet<String> =
        project.as_ref().map(|pr| pr.services.keys().chain(pr.disabled.keys()).cloned().collect()).unwrap_or_default();
    let mut orphans = Vec::new();
    for ctr in sorted {
        let svc_name = label(ctr, LABEL_SERVICE).unwrap_or("");
        let is_orphan =
            project.is_some() && !known.contains(svc_name) && label(ctr, plan::LABEL_ONEOFF) != Some("True");
        if is_orphan && !a.remove_orphans {
            orphans.push(name(ctr));
            continue;
        }
        let svc = project.as_ref().and_then(|pr| pr.services.get(svc_name));
        stop_container(c, svc, &id(ctr), a.timeout).await?;
        progress(&format!("Container {}", name(ctr)), "Stopped");
        remove_container(c, &id(ctr), a.volumes).await?;
        progress(&format!("Container {}", name(ctr)), "Removed");
    }
    if !orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(", ")
        );
    }
    if !a.services.is_empty() {
        return Ok(0);
    }
    // Networks: the project's (declared, or labelled when there is no file).
    let nets: Vec<String> = match &project {
        Some(pr) => pr.networks.values().filter(|r| !r.is_external()).map(|r| r.name.clone()).collect(),
        None => labelled(c, "/networks", &pname).await?,
    };
    for n in nets {
        match c.delete(&network_path(&n)).await {
            Ok(_) => progress(&format!("Network {n}"), "Removed"),
            Err(e) if ApiError::is(&e, 404) => {}
            Err(e) => eprintln!("failed to remove network {n}: {e:#}"),
        }
    }
    if a.volumes {
        let vols: Vec<String> = match &project {
            Some(pr) => pr.volumes.values().filter(|r| !r.is_external()).map(|r| r.name.clone()).collect(),
            None => labelled(c, "/volumes", &pname).await?,
        };
        for v in vols {
            match c.delete(&format!("/volumes/{}", encode_path(&v))).await {
                Ok(_) => progress(&format!("Volume {v}"), "Removed"),
                Err(e) if ApiError::is(&e, 404) => {}
                Err(e) => return Err(e.context(format!("remove volume {v}"))),
            }
        }
    }
    if let Some(mode) = &a.rmi {
        if mode != "local" && mode != "all" {
            return Err(StatusError::exit(1, format!("invalid --rmi value {mode:?}: expected \"local\" or \"all\"")));
        }
        if let Some(pr) = &project {
            let images: BTreeSet<String> = pr
                .services
                .values()
                .filter(|s| mode == "all" || s.image.is_none())
                .map(|s| plan::image_name(&pr.name, s))
                .collect();
            for i in images {
                match c.delete(&image_path(&i)).await {
                    Ok(_) => progress(&format!("Image {i}"), "Removed"),
                    Err(e) if ApiError::is(&e, 404) => {}
                    Err(e) => eprintln!("failed to remove image {i}: {e:#}"),
                }
            }
        }
    }
    Ok(0)
}

/// Names of networks or volumes carrying the project's label (for `down` without a file).
async fn labelled(c: &Client, what: &str, project: &str) -> Result<Vec<String>> {
    let filters = json!({"label": [format!("{}={project}", plan::LABEL_PROJECT)]}).to_string();
    let v: Value = c.get_json(&format!("{what}{}", query(&[("filters", filters)]))).await?;
    let list = if what == "/volumes" { v["Volumes"].clone() } else { v };
    Ok(list
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["Name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}
