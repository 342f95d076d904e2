//! `berth kube generate|play|down` and `berth compose kube`: the translation is `berth-kube`'s (pure); this module
//! reads what it needs through the Engine API and Berth's pod API (`/berth/pods/...`), and executes `play`'s plan
//! client-side, as `berth compose` does: claims' volumes, then per pod the pod, its emptyDir volumes, its init
//! containers one after the other (each must exit 0; then it is removed), its containers. A pod's ConfigMap and
//! Secret volumes are local volumes created and filled (through the archive API of a helper container that is never
//! started) before its first container is created; its containers mount them read-only.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use berth_compose::plan::InjectedFile;
use berth_kube::generate::{self, Ctr, Kind};
use berth_kube::play::{self, LABEL_CLAIM, LABEL_DOCUMENT, LABEL_FILES, POD_VOLUME_LABELS, Plan};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::pod::pod_path;
use crate::client::{ApiError, Client, encode_path, query};
use crate::commands::compose::{self, ProjectArgs};
use crate::commands::{container_path, image_path};

/// `berth kube`'s commands.
#[derive(Subcommand, Debug)]
pub enum KubeCmd {
    /// Generate Kubernetes YAML from containers, a pod or a compose project
    #[command(
        after_help = "A pod (or the workload of --type around its template) holds every container given; a compose project (-f) becomes one pod with a container per service, its service names mapped to 127.0.0.1 (hostAliases). Named volumes become PersistentVolumeClaims, compose configs and secrets ConfigMaps and Secrets. What Kubernetes cannot express is a warning on stderr."
    )]
    Generate(GenerateArgs),
    /// Create pods, containers and volumes from Kubernetes YAML
    #[command(
        after_help = "Runs Pods, Deployments (replicas as several pods), StatefulSets, DaemonSets (one pod), Jobs, Services (NodePorts published on the host), ConfigMaps and Secrets (environment, and files: a volume of the pod mounted read-only, made afresh by each play, removed by kube down; a Secret's is on disk in the data root, not on a tmpfs), PersistentVolumeClaims (named volumes), emptyDir (a volume removed with the pod), hostPath, init containers (run to completion in order first) and probes (as healthchecks). Anything else is an error naming the document and field."
    )]
    Play(PlayArgs),
    /// Remove what `kube play` created from a file: its pods and their volumes (--force: the claims' volumes too)
    Down(DownArgs),
}

/// What `kube generate` and `compose kube` write.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Kind of the document around the pod: pod, deployment, statefulset, daemonset, job
    #[arg(short = 't', long = "type", value_name = "TYPE", default_value = "pod")]
    pub typ: String,
    /// Generate a Service for the ports (NodePort for published ones, else ClusterIP)
    #[arg(short = 's', long)]
    pub service: bool,
    /// Replicas of a deployment or statefulset
    #[arg(short = 'r', long, value_name = "N")]
    pub replicas: Option<i64>,
}

/// `kube generate`'s flags.
#[derive(Args, Debug, Clone, Default)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// A compose file: generate from its project instead of containers (repeatable, as compose's -f)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Containers or a pod (by name or ID)
    #[arg(value_name = "CONTAINER|POD")]
    pub names: Vec<String>,
}

/// `kube play`'s flags.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Remove what an earlier play of these documents created first (not the claims' volumes)
    #[arg(long)]
    pub replace: bool,
    /// Start the pods (--start=false only creates them; init containers then start with the others)
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub start: bool,
    /// Build images from a directory named like the image beside the file (its Dockerfile or Containerfile)
    #[arg(long)]
    pub build: bool,
    /// Publish a container port: [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO] (replaces hostPort and NodePort for it)
    #[arg(long, value_name = "PORT")]
    pub publish: Vec<String>,
    /// The YAML file, or - for stdin
    #[arg(value_name = "FILE")]
    pub file: String,
}

/// `kube down`'s flags.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// Remove the volumes made for PersistentVolumeClaims too
    #[arg(long)]
    pub force: bool,
    /// The YAML file, or - for stdin
    #[arg(value_name = "FILE")]
    pub file: String,
}

impl KubeCmd {
    /// Whether the command needs no daemon (`generate -f`).
    pub fn is_offline(&self) -> bool {
        matches!(self, KubeCmd::Generate(a) if !a.file.is_empty())
    }
}

fn print(objects: &[berth_kube::model::Object], warnings: &[String]) -> Result<i32> {
    for w in warnings {
        eprintln!("WARN[0000] {w}");
    }
    out!("{}", berth_kube::render(objects)?);
    Ok(0)
}

/// The generator's options for a pod named `name`.
fn options(name: String, o: &OutputArgs) -> Result<generate::Options> {
    Ok(generate::Options { name, kind: o.typ.parse::<Kind>()?, service: o.service, replicas: o.replicas })
}

/// Generates from a compose project.
fn generate_project(project: &berth_compose::Project, o: &OutputArgs) -> Result<i32> {
    let ctrs = generate::from_project(project)?;
    let opts = options(project.name.clone(), o)?;
    let (objects, warnings) = generate::generate(&ctrs, &opts)?;
    print(&objects, &warnings)
}

/// `berth compose kube`.
pub fn compose_kube(p: &ProjectArgs, a: &OutputArgs) -> Result<i32> {
    let project = compose::load(p, &[])?;
    generate_project(&project, a)
}

/// The commands that need no daemon.
pub fn offline(cmd: KubeCmd) -> Result<i32> {
    match cmd {
        KubeCmd::Generate(a) if !a.file.is_empty() => {
            if !a.names.is_empty() {
                bail!("give either containers or a pod, or a compose file (-f), not both");
            }
            let p = ProjectArgs { file: a.file.clone(), ..ProjectArgs::default() };
            let project = compose::load(&p, &[])?;
            generate_project(&project, &a.output)
        }
        _ => bail!("this command needs the daemon"),
    }
}

/// `berth kube ...`.
pub async fn kube(c: &Client, cmd: KubeCmd) -> Result<i32> {
    match cmd {
        KubeCmd::Generate(a) if !a.file.is_empty() => offline(KubeCmd::Generate(a)),
        KubeCmd::Generate(a) => generate_cmd(c, a).await,
        KubeCmd::Play(a) => play_cmd(c, a).await,
        KubeCmd::Down(a) => down_cmd(c, a).await,
    }
}

/// The inspection of the pod named `name` (or with that full ID), `None` when there is none (or the daemon has no
/// pods). The endpoint also takes ID prefixes: a pod whose ID starts with `name` is not the pod `name`.
async fn pod_json(c: &Client, name: &str) -> Result<Option<Value>> {
    match c.get_json::<Value>(&format!("{}/json", pod_path(name))).await {
        Ok(v) if v["Name"].as_str() == Some(name) || v["Id"].as_str() == Some(name) => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) if ApiError::is(&e, 404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A container as `generate` describes it, from its inspection and its image's.
async fn describe(c: &Client, name: &str) -> Result<Ctr> {
    let v: Value =
        c.get_json(&format!("{}/json", container_path(name))).await.with_context(|| format!("container {name}"))?;
    let image = match v["Image"].as_str() {
        Some(i) => match c.get_json::<Value>(&format!("{}/json", image_path(i))).await {
            Ok(img) => Some(img),
            Err(e) if ApiError::is(&e, 404) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(generate::from_inspect(&v, image.as_ref()))
}

async fn generate_cmd(c: &Client, a: GenerateArgs) -> Result<i32> {
    if a.names.is_empty() {
        bail!("\"berth kube generate\" requires at least one container or pod, or a compose file (-f)");
    }
    let mut ctrs = Vec::new();
    let mut pod_name = None;
    for n in &a.names {
        match pod_json(c, n).await? {
            Some(pod) => {
                if a.names.len() > 1 {
                    bail!("{n} is a pod: generate from one pod alone (its containers are in it)");
                }
                let pname = pod["Name"].as_str().unwrap_or(n).to_string();
                let bindings = pod["PortBindings"].as_object().cloned().unwrap_or_default();
                for m in pod["Containers"].as_array().into_iter().flatten() {
                    let id = m["Id"].as_str().unwrap_or_default();
                    let mut x = describe(c, id).await?;
                    // `play` names a pod's containers `<pod>-<name>`.
                    if let Some(short) = x.name.strip_prefix(&format!("{pname}-")) {
                        x.name = short.to_string();
                    }
                    ctrs.push(x);
                }
                if ctrs.is_empty() {
                    bail!("pod {pname} has no containers");
                }
                // The pod's published ports go to the container exposing them (else the first).
                for (k, list) in bindings {
                    let (port, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
                    let Ok(port) = port.parse::<u16>() else { continue };
                    for b in list.as_array().into_iter().flatten() {
                        let p = generate::Port {
                            container_port: port,
                            protocol: proto.to_string(),
                            host_ip: b["HostIp"].as_str().unwrap_or_default().to_string(),
                            host_port: b["HostPort"].as_str().and_then(|p| p.parse().ok()),
                            published: true,
                        };
                        let i = ctrs
                            .iter()
                            .position(|x| x.ports.iter().any(|q| q.container_port == port && q.protocol == proto))
                            .unwrap_or(0);
                        ctrs[i].ports.retain(|q| !(q.container_port == port && q.protocol == proto));
                        ctrs[i].ports.push(p);
                    }
                }
                if let Some(h) = pod["Hostname"].as_str().filter(|h| !h.is_empty() && *h != pname) {
                    ctrs[0].hostname = Some(h.to_string());
                }
                pod_name = Some(pname);
            }
            None => ctrs.push(describe(c, n).await?),
        }
    }
    let name = pod_name.unwrap_or_else(|| format!("{}-pod", ctrs[0].name));
    let opts = options(name, &a.output)?;
    let (objects, warnings) = generate::generate(&ctrs, &opts)?;
    print(&objects, &warnings)
}

/// The file's text (`-`: stdin) and the directory `--build` looks in.
fn read_file(file: &str) -> Result<(String, PathBuf)> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("read stdin")?;
        return Ok((s, std::env::current_dir().context("the current directory")?));
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
    let dir = Path::new(file).parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty());
    Ok((text, dir.unwrap_or_else(|| PathBuf::from("."))))
}

/// `GET /berth/pods/json` with filters.
async fn pods_labelled(c: &Client, label: &str) -> Result<Vec<Value>> {
    let f = json!({"label": [label]}).to_string();
    c.get_json(&format!("/berth/pods/json{}", query(&[("filters", f)]))).await
}

/// `--build`: the directory named like the image (its last path component, without tag) beside the file.
fn build_dir(base: &Path, image: &str) -> Option<PathBuf> {
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split(['@', ':']).next().unwrap_or(name);
    let dir = base.join(name);
    ["Containerfile", "Dockerfile"].iter().find(|f| dir.join(f).is_file()).map(|_| dir)
}

async fn ensure_image(c: &Client, image: &str, base: &Path, build: bool) -> Result<()> {
    if build && let Some(dir) = build_dir(base, image) {
        let dockerfile = if dir.join("Containerfile").is_file() { "Containerfile" } else { "Dockerfile" };
        let svc = berth_compose::model::Service {
            name: image.to_string(),
            image: Some(image.to_string()),
            build: Some(berth_compose::model::Build {
                context: dir.display().to_string(),
                dockerfile: Some(dockerfile.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let project = berth_compose::Project {
            name: "kube".into(),
            working_dir: base.to_path_buf(),
            config_files: Vec::new(),
            all_files: Vec::new(),
            env_files: Vec::new(),
            environment: BTreeMap::new(),
            profiles: Vec::new(),
            services: BTreeMap::new(),
            disabled: BTreeMap::new(),
            networks: BTreeMap::new(),
            volumes: BTreeMap::new(),
            model: Value::Null,
            unset: Vec::new(),
        };
        return compose::build::build_service(c, &project, &svc, &compose::build::BuildOptions::default()).await;
    }
    if compose::up::image_id(c, image).await?.is_some() {
        return Ok(());
    }
    crate::commands::registry::pull_with_progress(c, image, false).await.with_context(|| format!("pull {image}"))
}

/// Creates a volume unless it exists; whether it created it.
async fn ensure_volume(c: &Client, name: &str, body: &Value) -> Result<bool> {
    match c.get_json::<Value>(&format!("/volumes/{}", encode_path(name))).await {
        Ok(_) => Ok(false),
        Err(e) if ApiError::is(&e, 404) => {
            c.post_json("/volumes/create", body).await.with_context(|| format!("create volume {name}"))?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Where the helper container that fills a pod's ConfigMap and Secret volumes mounts them (`<dir>/<n>`).
const FILES_DIR: &str = "/.berth-kube-files";

/// The mountpoints (the daemon's paths) of a pod's ConfigMap and Secret volumes, by volume name.
type Mountpoints = BTreeMap<String, String>;

/// Creates a pod's ConfigMap and Secret volumes afresh (a leftover of this pod's, from a play that was interrupted
/// or a pod removed without `kube down`, is replaced; another volume of that name is not touched) and writes their
/// files into them through a helper container of the pod's first image, created with them mounted and removed
/// again, never started. Returns their mountpoints.
async fn fill_files(c: &Client, p: &play::PodPlan, made: &mut Made) -> Result<Mountpoints> {
    let mut mountpoints = Mountpoints::new();
    for f in &p.files {
        let name = &f.volume.name;
        match c.get_json::<Value>(&format!("/volumes/{}", encode_path(name))).await {
            Ok(v) if v["Labels"][LABEL_FILES].as_str() == Some(p.name.as_str()) => remove_volume(c, name).await?,
            Ok(_) => bail!(
                "{}: volume {name} exists and is not pod {}'s: remove or rename it to play this file",
                p.document,
                p.name
            ),
            Err(e) if ApiError::is(&e, 404) => {}
            Err(e) => return Err(e),
        }
        let resp =
            c.post_json("/volumes/create", &f.volume.body).await.with_context(|| format!("create volume {name}"))?;
        made.volumes.push(name.clone());
        let v: Value = serde_json::from_slice(&resp).context("decode the volume create answer")?;
        mountpoints.insert(name.clone(), v["Mountpoint"].as_str().unwrap_or_default().to_string());
    }
    let filled: Vec<(usize, &play::FilesPlan)> =
        p.files.iter().enumerate().filter(|(_, f)| !f.files.is_empty()).collect();
    let Some(image) = p.init.iter().chain(&p.containers).find_map(|cp| cp.body["Image"].as_str()) else {
        return Ok(mountpoints);
    };
    if filled.is_empty() {
        return Ok(mountpoints);
    }
    let mounts: Vec<Value> = filled
        .iter()
        .map(|(i, f)| {
            json!({"Type": "volume", "Source": f.volume.name, "Target": format!("{FILES_DIR}/{i}"), "VolumeOptions": {"NoCopy": true}})
        })
        .collect();
    // A command of its own: the image may have none, and the helper must not be able to run anything.
    let body = json!({
        "Image": image,
        "Entrypoint": ["/nonexistent"],
        "Cmd": [],
        "NetworkDisabled": true,
        "Labels": {LABEL_DOCUMENT: p.document, LABEL_FILES: p.name},
        "HostConfig": {"NetworkMode": "none", "Mounts": mounts},
    });
    // `_` cannot be in a container name of the pod (`<pod>-<DNS label>`).
    let helper = format!("{}_files", p.name);
    let resp = c
        .post_json(&format!("/containers/create{}", query(&[("name", helper.clone())])), &body)
        .await
        .with_context(|| format!("create container {helper} (it writes the pod's ConfigMap and Secret volumes)"))?;
    let v: Value = serde_json::from_slice(&resp).context("decode the create answer")?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    made.containers.push(id.clone());
    for (i, f) in &filled {
        let files: Vec<InjectedFile> = f
            .files
            .iter()
            .map(|x| InjectedFile {
                target: x.path.clone(),
                content: x.content.clone(),
                uid: 0,
                gid: 0,
                mode: x.mode,
                copy_uid_gid: false,
            })
            .collect();
        let tar = compose::lifecycle::tar_of(&files)?;
        compose::lifecycle::put_archive(c, &id, &format!("{FILES_DIR}/{i}"), tar, false)
            .await
            .with_context(|| format!("write the files of volume {}", f.volume.name))?;
    }
    compose::up::remove_container(c, &id, true).await.with_context(|| format!("remove container {helper}"))?;
    made.containers.retain(|x| *x != id);
    Ok(mountpoints)
}

/// Creates one container in a pod, its `subPath` mounts bound from the volumes' mountpoints; its ID.
async fn create_in_pod(
    c: &Client,
    pod_id: &str,
    cp: &play::ContainerPlan,
    mountpoints: &Mountpoints,
) -> Result<String> {
    let mut body = cp.body.clone();
    for s in &cp.sub_paths {
        let Some(mp) = mountpoints.get(&s.volume).filter(|m| !m.is_empty()) else {
            bail!("container {}: the daemon gave no mountpoint for volume {}", cp.name, s.volume);
        };
        let bind = json!({"Type": "bind", "Source": format!("{mp}/{}", s.path), "Target": s.target, "ReadOnly": true});
        match body["HostConfig"]["Mounts"].as_array_mut() {
            Some(m) => m.push(bind),
            None => body["HostConfig"]["Mounts"] = json!([bind]),
        }
    }
    let q = query(&[("name", cp.name.clone()), ("pod", pod_id.to_string())]);
    let resp = c
        .post_json(&format!("/containers/create{q}"), &body)
        .await
        .with_context(|| format!("create container {}", cp.name))?;
    let v: Value = serde_json::from_slice(&resp).context("decode the create answer")?;
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

async fn start_container(c: &Client, id: &str, name: &str) -> Result<()> {
    match c.post(&format!("{}/start", container_path(id))).await {
        Ok(_) => Ok(()),
        Err(e) if ApiError::is(&e, 304) => Ok(()),
        Err(e) => Err(e.context(format!("start container {name}"))),
    }
}

/// What one `play` made so far: removed again when it fails.
#[derive(Default)]
struct Made {
    /// Containers outside the pods (the helper that fills the ConfigMap and Secret volumes).
    containers: Vec<String>,
    /// Pod IDs (removing a pod removes its containers).
    pods: Vec<String>,
    /// Volumes this run created (not those that were there).
    volumes: Vec<String>,
}

impl Made {
    async fn volume(&mut self, c: &Client, v: &play::VolumePlan) -> Result<()> {
        if ensure_volume(c, &v.name, &v.body).await? {
            self.volumes.push(v.name.clone());
        }
        Ok(())
    }

    /// Removes everything, pods first (their containers use the volumes); what it could not remove, for the error.
    async fn rollback(&self, c: &Client) -> Vec<String> {
        let mut left = Vec::new();
        for id in &self.containers {
            if let Err(e) = compose::up::remove_container(c, id, true).await {
                left.push(format!("container {id}: {e:#}"));
            }
        }
        for id in self.pods.iter().rev() {
            match c.delete(&format!("{}?force=1", pod_path(id))).await {
                Ok(_) => {}
                Err(e) if ApiError::is(&e, 404) => {}
                Err(e) => left.push(format!("pod {id}: {e:#}")),
            }
        }
        for v in self.volumes.iter().rev() {
            if let Err(e) = remove_volume(c, v).await {
                left.push(format!("{e:#}"));
            }
        }
        left
    }
}

/// The last lines a (stopped) container wrote, stdout and stderr together.
async fn log_tail(c: &Client, id: &str, tty: bool) -> String {
    struct Lines(Vec<u8>);
    impl crate::stream::Output for Lines {
        fn write(&mut self, _stream: u8, data: &[u8]) -> std::io::Result<()> {
            self.0.extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let path = format!(
        "{}/logs{}",
        container_path(id),
        query(&[("stdout", "1".into()), ("stderr", "1".into()), ("tail", "10".into())])
    );
    let Ok(raw) = c.get_bytes(&path).await else { return String::new() };
    let mut out = Lines(Vec::new());
    if tty {
        out.0 = raw.to_vec();
    } else if crate::stream::demux(&raw[..], &mut out).await.is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&out.0).trim_end().to_string()
}

/// Executes a plan; on an error removes what it made (the pods, with their containers, and the volumes it created).
async fn execute(c: &Client, plan: &Plan, start: bool) -> Result<()> {
    let mut made = Made::default();
    match execute_into(c, plan, start, &mut made).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let left = made.rollback(c).await;
            if left.is_empty() {
                Err(e.context("kube play failed: what it created is removed again"))
            } else {
                Err(e.context(format!(
                    "kube play failed; removing what it created failed too (`berth kube down` removes the rest): {}",
                    left.join("; ")
                )))
            }
        }
    }
}

async fn execute_into(c: &Client, plan: &Plan, start: bool, made: &mut Made) -> Result<()> {
    for v in &plan.volumes {
        made.volume(c, v).await?;
    }
    for p in &plan.pods {
        let pod_id = super::pod::create_pod(c, &p.body)
            .await
            .with_context(|| format!("{}: create pod {}", p.document, p.name))?;
        made.pods.push(pod_id.clone());
        for v in &p.volumes {
            made.volume(c, v).await?;
        }
        let mountpoints = fill_files(c, p, made).await?;
        if !start {
            if !p.init.is_empty() {
                eprintln!(
                    "WARN[0000] pod {}: --start=false: its init containers start with the others when it is started, not first",
                    p.name
                );
            }
            for cp in p.init.iter().chain(&p.containers) {
                create_in_pod(c, &pod_id, cp, &mountpoints).await?;
            }
            outln!("Pod:\n{pod_id}");
            continue;
        }
        // The pod (its namespace holder) first, then the init containers one after the other, then the others.
        c.post(&format!("{}/start", pod_path(&pod_id))).await.with_context(|| format!("start pod {}", p.name))?;
        for cp in &p.init {
            let id = create_in_pod(c, &pod_id, cp, &mountpoints).await?;
            start_container(c, &id, &cp.name).await?;
            let w: Value = serde_json::from_slice(&c.post(&format!("{}/wait", container_path(&id))).await?)
                .context("decode the wait answer")?;
            let code = w["StatusCode"].as_i64().unwrap_or(-1);
            if code != 0 {
                // Its logs go with it (the rollback removes the pod): their end is in the error.
                let tail = log_tail(c, &id, cp.body["Tty"].as_bool().unwrap_or(false)).await;
                let tail = if tail.is_empty() { "(no output)".to_string() } else { tail };
                bail!("pod {}: init container {} exited with {code}; its last output:\n{tail}", p.name, cp.name);
            }
            // Done: it must not run again when the pod is started again.
            c.delete(&format!("{}?force=1", container_path(&id)))
                .await
                .with_context(|| format!("remove init container {}", cp.name))?;
        }
        let mut ids = Vec::new();
        for cp in &p.containers {
            ids.push((create_in_pod(c, &pod_id, cp, &mountpoints).await?, &cp.name));
        }
        for (id, name) in &ids {
            start_container(c, id, name).await?;
        }
        outln!("Pod:\n{pod_id}\nContainers:");
        for (id, _) in &ids {
            outln!("{id}");
        }
        outln!();
    }
    Ok(())
}

async fn play_cmd(c: &Client, a: PlayArgs) -> Result<i32> {
    let (text, base) = read_file(&a.file)?;
    let docs = berth_kube::parse(&text)?;
    let publish = a.publish.iter().map(|p| p.parse()).collect::<berth_kube::Result<Vec<_>>>()?;
    let plan = play::plan(&docs, &play::Options { publish })?;
    for w in &plan.warnings {
        eprintln!("WARN[0000] {w}");
    }
    if plan.pods.is_empty() {
        bail!("{}: no Pod, Deployment, StatefulSet, DaemonSet or Job to run", a.file);
    }
    if a.replace {
        teardown(c, &docs, false).await?;
    } else {
        for p in &plan.pods {
            if pod_json(c, &p.name).await?.is_some() {
                bail!("{}: pod {} exists already (use --replace, or `berth kube down {}`)", p.document, p.name, a.file);
            }
        }
    }
    for image in plan.images() {
        ensure_image(c, &image, &base, a.build).await?;
    }
    execute(c, &plan, a.start).await?;
    Ok(0)
}

/// Removes what `play` created for these documents; returns the pods and volumes removed.
async fn teardown(c: &Client, docs: &[berth_kube::Document], force: bool) -> Result<(Vec<String>, Vec<String>)> {
    let t = play::teardown(docs);
    let mut pods = Vec::new();
    let mut volumes = Vec::new();
    for d in &t.documents {
        let label = format!("{LABEL_DOCUMENT}={d}");
        for p in pods_labelled(c, &label).await? {
            let id = p["Id"].as_str().unwrap_or_default().to_string();
            match c.delete(&format!("{}?force=1", pod_path(&id))).await {
                Ok(_) => pods.push(id),
                Err(e) if ApiError::is(&e, 404) => {}
                Err(e) => return Err(e.context(format!("remove pod {id}"))),
            }
        }
        // Containers left outside a pod (an init container that failed before it joined one, the helper of an
        // interrupted play), with their anonymous volumes.
        let f = json!({"label": [label]}).to_string();
        let left: Vec<Value> =
            c.get_json(&format!("/containers/json{}", query(&[("all", "1".into()), ("filters", f)]))).await?;
        for x in left {
            let id = x["Id"].as_str().unwrap_or_default();
            compose::up::remove_container(c, id, true).await?;
        }
        for l in POD_VOLUME_LABELS {
            let f = json!({"label": [label, l]}).to_string();
            let v: Value = c.get_json(&format!("/volumes{}", query(&[("filters", f)]))).await?;
            for vol in v["Volumes"].as_array().into_iter().flatten() {
                let n = vol["Name"].as_str().unwrap_or_default().to_string();
                remove_volume(c, &n).await?;
                volumes.push(n);
            }
        }
    }
    if force {
        for name in &t.claims {
            let v = match c.get_json::<Value>(&format!("/volumes/{}", encode_path(name))).await {
                Ok(v) => v,
                Err(e) if ApiError::is(&e, 404) => continue,
                Err(e) => return Err(e),
            };
            // Only what play created: a volume that was there before (compose's, say) stays.
            if v["Labels"][LABEL_CLAIM].is_string() {
                remove_volume(c, name).await?;
                volumes.push(name.clone());
            }
        }
    }
    Ok((pods, volumes))
}

async fn remove_volume(c: &Client, name: &str) -> Result<()> {
    match c.delete(&format!("/volumes/{}", encode_path(name))).await {
        Ok(_) => Ok(()),
        Err(e) if ApiError::is(&e, 404) => Ok(()),
        Err(e) => Err(anyhow!("remove volume {name}: {e:#}")),
    }
}

async fn down_cmd(c: &Client, a: DownArgs) -> Result<i32> {
    let (text, _) = read_file(&a.file)?;
    let docs = berth_kube::parse(&text)?;
    let (pods, volumes) = teardown(c, &docs, a.force).await?;
    if !pods.is_empty() {
        outln!("Pods removed:");
        for p in pods {
            outln!("{p}");
        }
    }
    if !volumes.is_empty() {
        outln!("Volumes removed:");
        for v in volumes {
            outln!("{v}");
        }
    }
    Ok(0)
}
