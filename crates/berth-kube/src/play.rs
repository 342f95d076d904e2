//! `kube play`: documents to a [`Plan`] of what to create through the Engine API and Berth's pod API: named
//! volumes for PersistentVolumeClaims, and per pod its create body, its emptyDir volumes, a volume for each of its
//! configMap and secret volumes (with the files the CLI writes into it before any container of the pod is created,
//! mounted read-only), its init containers (run to completion in order before the others) and its containers.
//! Everything created carries [`LABEL_DOCUMENT`], so `kube down` removes exactly what `play` made. A field Berth
//! cannot run is an error naming the document and the field, before anything is created.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::generate::{ANNOTATION_VOLUME, decode_base64};
use crate::model::*;
use crate::{Document, Error, Result, dns_label, quantity};

/// On pods, containers and volumes: the document that made them (`Deployment/web`).
pub const LABEL_DOCUMENT: &str = "io.berth.kube.document";
/// On emptyDir volumes: the pod they belong to (removed with it by `kube down`).
pub const LABEL_EMPTYDIR: &str = "io.berth.kube.emptydir";
/// On the volumes holding a configMap or secret volume's files: the pod they belong to (removed with it by
/// `kube down`).
pub const LABEL_FILES: &str = "io.berth.kube.files";
/// The labels of the volumes `kube down` removes with their pod.
pub const POD_VOLUME_LABELS: [&str; 2] = [LABEL_EMPTYDIR, LABEL_FILES];
/// On volumes made for a PersistentVolumeClaim: the claim (removed by `kube down --force` only).
pub const LABEL_CLAIM: &str = "io.berth.kube.claim";
/// On containers: their name in the pod's spec.
pub const LABEL_CONTAINER: &str = "io.berth.kube.container";
/// On init containers.
pub const LABEL_INIT: &str = "io.berth.kube.init";

/// `--publish [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: String,
    /// Empty: a port the engine picks.
    pub host_port: String,
    pub container_port: u16,
    pub protocol: String,
}

impl std::str::FromStr for Publish {
    type Err = Error;
    fn from_str(s: &str) -> Result<Publish> {
        let bad = || Error::Input(format!("invalid --publish {s:?}: expected [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]"));
        let (rest, protocol) = s.rsplit_once('/').map(|(a, b)| (a, b.to_string())).unwrap_or((s, "tcp".into()));
        let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
        let container_port = parts.first().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let host_port = parts.get(1).map(|p| p.to_string()).unwrap_or_default();
        if !host_port.is_empty() && host_port.parse::<u16>().is_err() {
            return Err(bad());
        }
        let host_ip = parts.get(2).map(|p| p.trim_matches(['[', ']']).to_string()).unwrap_or_default();
        if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
        Ok(Publish { host_ip, host_port, container_port, protocol })
    }
}

/// `kube play`'s choices.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--publish`: replaces what the documents publish for that container port.
    pub publish: Vec<Publish>,
}

/// A named volume to create when missing.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumePlan {
    /// The engine's name.
    pub name: String,
    /// `POST /volumes/create`'s body.
    pub body: Value,
}

/// A file of a configMap or secret volume.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    /// Its path in the volume (relative: `items[].path`, or the key).
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// A configMap or secret volume of a pod: a local volume (`<pod>_<volume>`, labelled [`LABEL_FILES`]) that the CLI
/// creates and fills before any container of the pod is created; containers mount it read-only, as the kubelet
/// and Podman do.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesPlan {
    pub volume: VolumePlan,
    pub files: Vec<FilePlan>,
}

/// A `subPath` mount of a configMap or secret volume: the CLI binds `<the volume's mountpoint>/<path>` read-only at
/// `target` (berthd mounts whole volumes only; the mountpoint is the daemon's path, known once the volume exists).
#[derive(Debug, Clone, PartialEq)]
pub struct SubPathMount {
    /// The engine volume.
    pub volume: String,
    /// The path in the volume (a file, or a directory of `items` paths).
    pub path: String,
    /// The absolute path in the container.
    pub target: String,
}

/// A container to create in a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    /// The engine's name (`<pod>-<container>`).
    pub name: String,
    /// `POST /containers/create?pod=...`'s body.
    pub body: Value,
    /// Binds to add to `HostConfig.Mounts` once the volumes exist.
    pub sub_paths: Vec<SubPathMount>,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPlan {
    pub name: String,
    /// `Kind/name` of its document.
    pub document: String,
    /// `POST /berth/pods/create`'s body.
    pub body: Value,
    /// Its emptyDir volumes.
    pub volumes: Vec<VolumePlan>,
    /// Its configMap and secret volumes, created afresh and filled before its containers are created.
    pub files: Vec<FilesPlan>,
    /// Run to completion, in order, before the containers start.
    pub init: Vec<ContainerPlan>,
    pub containers: Vec<ContainerPlan>,
}

/// Everything `play` creates, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Volumes of the PersistentVolumeClaims.
    pub volumes: Vec<VolumePlan>,
    pub pods: Vec<PodPlan>,
    /// What runs other than the documents say.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Every image the plan runs, in order, once each.
    pub fn images(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for p in &self.pods {
            for c in p.init.iter().chain(&p.containers) {
                if let Some(i) = c.body["Image"].as_str()
                    && seen.insert(i.to_string())
                {
                    out.push(i.to_string());
                }
            }
        }
        out
    }
}

/// What `kube down` removes for a file: the documents whose pods go (by [`LABEL_DOCUMENT`]) and the volumes of its
/// claims (with `--force`, those that `play` created, by [`LABEL_CLAIM`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Teardown {
    /// `Kind/name` of every workload.
    pub documents: Vec<String>,
    /// The engine volumes of its PersistentVolumeClaims.
    pub claims: Vec<String>,
}

/// The data of the file's ConfigMaps and Secrets (Secrets decoded).
struct Data {
    maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Data {
    fn get(&self, secret: bool, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        if secret { self.secrets.get(name) } else { self.maps.get(name) }
    }
}

fn claim_volume(doc: &Document) -> Option<(String, String)> {
    match &doc.object {
        Object::PersistentVolumeClaim { metadata, .. } => Some((
            metadata.name.clone(),
            metadata.annotations.get(ANNOTATION_VOLUME).cloned().unwrap_or_else(|| metadata.name.clone()),
        )),
        _ => None,
    }
}

/// What `kube down` removes for these documents.
pub fn teardown(docs: &[Document]) -> Teardown {
    let mut t = Teardown::default();
    for d in docs {
        match &d.object {
            Object::Pod { .. }
            | Object::Deployment { .. }
            | Object::StatefulSet { .. }
            | Object::DaemonSet { .. }
            | Object::Job { .. } => t.documents.push(d.what()),
            Object::PersistentVolumeClaim { .. } => t.claims.extend(claim_volume(d).map(|(_, v)| v)),
            _ => {}
        }
    }
    t
}

/// One pod of a workload: its name, labels, annotations, spec, and the spec's field path in the document.
type PodOf = (String, StrMap, StrMap, PodSpec, &'static str);

/// The workloads' pods.
fn pods_of(d: &Document, warnings: &mut Vec<String>) -> Result<Vec<PodOf>> {
    let name = dns_label(&d.object.metadata().name);
    Ok(match &d.object {
        Object::Pod { metadata, spec } => {
            vec![(name, metadata.labels.clone(), metadata.annotations.clone(), spec.clone(), "spec")]
        }
        Object::Deployment { spec, .. } | Object::StatefulSet { spec, .. } | Object::DaemonSet { spec, .. } => {
            let replicas = spec.replicas.unwrap_or(1);
            if !(0..=64).contains(&replicas) {
                return Err(d.error("spec.replicas", format!("{replicas}: berth runs 0 to 64 replicas")));
            }
            for (k, v) in &spec.selector.match_labels {
                if spec.template.metadata.labels.get(k) != Some(v) {
                    return Err(
                        d.error("spec.selector.matchLabels", format!("{k}={v} does not match the template's labels"))
                    );
                }
            }
            let sts = matches!(d.object, Object::StatefulSet { .. });
            let replicas = if matches!(d.object, Object::DaemonSet { .. }) { 1 } else { replicas };
            (0..replicas)
                .map(|i| {
                    let pod = match (sts, replicas) {
                        (true, _) => format!("{name}-{i}"),
                        (false, 1) => format!("{name}-pod"),
                        (false, _) => format!("{name}-pod-{i}"),
                    };
                    let t = &spec.template;
                    (
                        pod,
                        t.metadata.labels.clone(),
                        t.metadata.annotations.clone(),
                        t.spec.clone(),
                        "spec.template.spec",
                    )
                })
                .collect()
        }
        Object::Job { spec, .. } => {
            if spec.completions.unwrap_or(1) > 1 || spec.parallelism.unwrap_or(1) > 1 {
                warnings.push(format!("{}: completions and parallelism above 1 run one pod", d.what()));
            }
            let t = &spec.template;
            vec![(
                format!("{name}-pod"),
                t.metadata.labels.clone(),
                t.metadata.annotations.clone(),
                t.spec.clone(),
                "spec.template.spec",
            )]
        }
        _ => Vec::new(),
    })
}

fn binding(ip: &str, port: &str) -> Value {
    json!({"HostIp": ip, "HostPort": port})
}

fn probe_test(p: &Probe, c: &Container, d: &Document, field: &str) -> Result<Vec<String>> {
    let port = |p: &IntOrString, f: &str| -> Result<i64> {
        match p {
            IntOrString::Int(i) => Ok(*i),
            IntOrString::Str(s) => c
                .ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(s))
                .map(|cp| cp.container_port)
                .or_else(|| s.parse().ok())
                .ok_or_else(|| d.error(format!("{field}.{f}.port"), format!("no container port is named {s:?}"))),
        }
    };
    if let Some(e) = &p.exec {
        if e.command.is_empty() {
            return Err(d.error(format!("{field}.exec.command"), "empty"));
        }
        return Ok(std::iter::once("CMD".to_string()).chain(e.command.iter().cloned()).collect());
    }
    if let Some(h) = &p.http_get {
        if h.scheme.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case("http")) {
            return Err(d.error(format!("{field}.httpGet.scheme"), "only HTTP is run"));
        }
        let url = format!(
            "http://{}:{}{}",
            h.host.as_deref().unwrap_or("127.0.0.1"),
            port(&h.port, "httpGet")?,
            h.path.as_deref().unwrap_or("/")
        );
        // Whichever HTTP client the image has (busybox has wget).
        let url = sh_quote(&url);
        return Ok(vec!["CMD-SHELL".into(), format!("wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}")]);
    }
    if let Some(t) = &p.tcp_socket {
        return Ok(vec![
            "CMD-SHELL".into(),
            format!(
                "nc -z {} {} </dev/null",
                sh_quote(t.host.as_deref().unwrap_or("127.0.0.1")),
                port(&t.port, "tcpSocket")?
            ),
        ]);
    }
    Err(d.error(field, "a probe needs exec, httpGet or tcpSocket (grpc is not run)"))
}

/// `s` as one word of a POSIX shell command: in single quotes, each `'` as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn healthcheck(c: &Container, d: &Document, field: &str) -> Result<Option<Value>> {
    let (p, f) = match (&c.liveness_probe, &c.readiness_probe, &c.startup_probe) {
        (Some(p), _, _) => (p, "livenessProbe"),
        (None, Some(p), _) => (p, "readinessProbe"),
        (None, None, Some(p)) => (p, "startupProbe"),
        _ => return Ok(None),
    };
    let field = format!("{field}.{f}");
    let test = probe_test(p, c, d, &field)?;
    let ns = |s: i64| s.max(1) * 1_000_000_000;
    let mut h = Map::new();
    h.insert("Test".into(), json!(test));
    h.insert("Interval".into(), json!(ns(p.period_seconds.unwrap_or(10))));
    h.insert("Timeout".into(), json!(ns(p.timeout_seconds.unwrap_or(1))));
    h.insert("Retries".into(), json!(p.failure_threshold.unwrap_or(3).max(1)));
    if let Some(s) = p.initial_delay_seconds.filter(|s| *s > 0) {
        h.insert("StartPeriod".into(), json!(ns(s)));
    }
    Ok(Some(Value::Object(h)))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The plan for these documents.
pub fn plan(docs: &[Document], opts: &Options) -> Result<Plan> {
    let mut out = Plan::default();
    // ConfigMaps, Secrets, claims.
    let mut data = Data { maps: BTreeMap::new(), secrets: BTreeMap::new() };
    let mut claims: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_docs = BTreeSet::new();
    for d in docs {
        if !seen_docs.insert(d.what()) {
            return Err(d.error("metadata.name", "defined twice in the file"));
        }
        match &d.object {
            Object::ConfigMap { metadata, data: m, binary_data } => {
                let mut all: BTreeMap<String, Vec<u8>> =
                    m.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
                for (k, v) in binary_data {
                    all.insert(
                        k.clone(),
                        decode_base64(v).ok_or_else(|| d.error(format!("binaryData.{k}"), "not base64"))?,
                    );
                }
                data.maps.insert(metadata.name.clone(), all);
            }
            Object::Secret { metadata, data: m, string_data, .. } => {
                let mut all = BTreeMap::new();
                for (k, v) in m {
                    all.insert(k.clone(), decode_base64(v).ok_or_else(|| d.error(format!("data.{k}"), "not base64"))?);
                }
                for (k, v) in string_data {
                    all.insert(k.clone(), v.clone().into_bytes());
                }
                data.secrets.insert(metadata.name.clone(), all);
            }
            Object::PersistentVolumeClaim { metadata, spec } => {
                let Some((claim, volume)) = claim_volume(d) else { continue };
                if spec.storage_class_name.is_some() {
                    out.warnings.push(format!("{}: the storage class is ignored (a local volume)", d.what()));
                }
                let mut labels = Map::new();
                labels.insert(LABEL_CLAIM.into(), json!(claim));
                labels.insert(LABEL_DOCUMENT.into(), json!(d.what()));
                for (k, v) in &metadata.labels {
                    labels.insert(k.clone(), json!(v));
                }
                out.volumes.push(VolumePlan {
                    name: volume.clone(),
                    body: json!({"Name": volume, "Driver": "local", "Labels": labels}),
                });
                claims.insert(claim, volume);
            }
            _ => {}
        }
    }
    // Services: node ports, by selector.
    let mut node_ports: Vec<(&Document, StrMap, ServicePort)> = Vec::new();
    for d in docs {
        if let Object::Service { spec, .. } = &d.object {
            let typ = spec.typ.as_deref().unwrap_or("ClusterIP");
            match typ {
                "ClusterIP" | "NodePort" | "LoadBalancer" => {}
                t => {
                    return Err(
                        d.error("spec.type", format!("{t} is not supported (ClusterIP, NodePort, LoadBalancer are)"))
                    );
                }
            }
            for (i, p) in spec.ports.iter().enumerate() {
                if let Some(proto) = &p.protocol
                    && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
                {
                    return Err(d.error(format!("spec.ports[{i}].protocol"), format!("{proto:?} is not a protocol")));
                }
                if typ != "ClusterIP" {
                    match p.node_port {
                        Some(_) => node_ports.push((d, spec.selector.clone(), p.clone())),
                        None => out.warnings.push(format!(
                            "{}: port {} has no nodePort: nothing is published for it (give one, or use --publish)",
                            d.what(),
                            p.port
                        )),
                    }
                }
            }
        }
    }
    let mut host_ports: BTreeMap<String, String> = BTreeMap::new();
    let mut pod_names = BTreeSet::new();
    for d in docs {
        let pods = pods_of(d, &mut out.warnings)?;
        let count = pods.len();
        for (n, (pod, labels, annotations, spec, sfield)) in pods.into_iter().enumerate() {
            if !pod_names.insert(pod.clone()) {
                return Err(d.error("metadata.name", format!("a second pod named {pod:?}")));
            }
            let p = pod_plan(d, &pod, &labels, &annotations, &spec, sfield, &data, &claims, opts, &mut out.warnings)?;
            let mut p = p;
            // Node ports of the Services selecting it: the first pod only (there is no load balancing).
            for (sd, selector, sp) in &node_ports {
                if selector.is_empty() || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
                if n > 0 {
                    if n == 1 {
                        out.warnings.push(format!(
                            "{}: node port {} goes to {} only ({count} pods, no load balancing)",
                            sd.what(),
                            sp.node_port.unwrap_or(0),
                            format_args!("{}-0", d.object.metadata().name)
                        ));
                    }
                    continue;
                }
                let target = match &sp.target_port {
                    None => sp.port,
                    Some(IntOrString::Int(i)) => *i,
                    Some(IntOrString::Str(s)) => spec
                        .containers
                        .iter()
                        .flat_map(|c| c.ports.iter())
                        .find(|cp| cp.name.as_deref() == Some(s))
                        .map(|cp| cp.container_port)
                        .ok_or_else(|| {
                            sd.error("spec.ports.targetPort", format!("no container port is named {s:?}"))
                        })?,
                };
                let proto = sp.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                let key = format!("{target}/{proto}");
                if opts.publish.iter().any(|x| format!("{}/{}", x.container_port, x.protocol) == key) {
                    continue;
                }
                let hp = sp.node_port.unwrap_or(0).to_string();
                p.body["PortBindings"][&key] = json!([binding("", &hp)]);
            }
            // --publish: every pod (the first of a workload) with a container declaring the port.
            for x in &opts.publish {
                let declares = spec.containers.iter().flat_map(|c| c.ports.iter()).any(|cp| {
                    cp.container_port == i64::from(x.container_port)
                        && cp.protocol.as_deref().unwrap_or("TCP").eq_ignore_ascii_case(&x.protocol)
                });
                if declares && n == 0 {
                    p.body["PortBindings"][format!("{}/{}", x.container_port, x.protocol)] =
                        json!([binding(&x.host_ip, &x.host_port)]);
                }
            }
            if let Some(b) = p.body["PortBindings"].as_object() {
                for (k, list) in b {
                    for hp in list.as_array().into_iter().flatten().filter_map(|b| b["HostPort"].as_str()) {
                        if hp.is_empty() {
                            continue;
                        }
                        let proto = k.split_once('/').map(|(_, p)| p).unwrap_or("tcp");
                        if let Some(other) = host_ports.insert(format!("{hp}/{proto}"), pod.clone()) {
                            return Err(d.error(
                                sfield.to_string() + ".containers.ports.hostPort",
                                format!("host port {hp}/{proto} of pod {pod} is published by pod {other} too"),
                            ));
                        }
                    }
                }
            }
            out.pods.push(p);
        }
    }
    for x in &opts.publish {
        let declared = out
            .pods
            .iter()
            .any(|p| p.body["PortBindings"].get(format!("{}/{}", x.container_port, x.protocol)).is_some());
        if !declared {
            return Err(Error::Input(format!(
                "--publish {}: no container of the file declares port {}/{}",
                x.container_port, x.container_port, x.protocol
            )));
        }
    }
    Ok(out)
}

/// A configMap or secret volume's plan, and whether its source is optional and not in the file.
struct Files {
    plan: FilesPlan,
    missing: bool,
}

/// The plan of volume `v` of pod `pod` (at `field`) when it is a configMap or secret: its files, by `items` (all
/// keys without), with `items[].mode`, else `defaultMode`, else 0644 (Kubernetes' default for both kinds); an
/// optional source that is not in the file, or an optional key that is not in it, is left out.
fn files_plan(d: &Document, pod: &str, field: &str, v: &Volume, data: &Data) -> Result<Option<Files>> {
    let (secret, name, items, default_mode, optional, key) = match (&v.config_map, &v.secret) {
        (Some(c), _) => (false, &c.name, &c.items, c.default_mode, c.optional, "configMap.name"),
        (_, Some(s)) => (true, &s.secret_name, &s.items, s.default_mode, s.optional, "secret.secretName"),
        _ => return Ok(None),
    };
    let (kind, source) = key.split_once('.').unwrap_or((key, ""));
    let what = if secret { "Secret" } else { "ConfigMap" };
    let optional = optional == Some(true);
    let mode = |m: Option<u32>, at: String| -> Result<u32> {
        match m {
            Some(m) if m > 0o777 => Err(d.error(at, format!("{m:#o} is not a file mode (0 to 0777)"))),
            Some(m) => Ok(m),
            None => Ok(0o644),
        }
    };
    let default_mode = mode(default_mode, format!("{field}.{kind}.defaultMode"))?;
    let mut labels = Map::new();
    labels.insert(LABEL_FILES.into(), json!(pod));
    labels.insert(LABEL_DOCUMENT.into(), json!(d.what()));
    let volume = format!("{pod}_{}", v.name);
    let body = json!({"Name": volume, "Driver": "local", "Labels": labels});
    let mut files = Vec::new();
    let entries = data.get(secret, name);
    if entries.is_none() && !optional {
        return Err(d.error(format!("{field}.{kind}.{source}"), format!("{what} {name:?} is not in the file")));
    }
    if let Some(entries) = entries {
        if items.is_empty() {
            for (k, content) in entries {
                files.push(FilePlan { path: k.clone(), content: content.clone(), mode: default_mode });
            }
        }
        let mut seen = BTreeSet::new();
        for (j, it) in items.iter().enumerate() {
            let at = format!("{field}.{kind}.items[{j}]");
            if it.path.is_empty()
                || it.path.starts_with('/')
                || it.path.starts_with("..")
                || it.path.split('/').any(|p| p.is_empty() || p == "..")
            {
                return Err(d.error(format!("{at}.path"), format!("{:?} must be a relative path", it.path)));
            }
            if !seen.insert(it.path.as_str()) {
                return Err(d.error(format!("{at}.path"), format!("{:?} given twice", it.path)));
            }
            let m = mode(it.mode.or(Some(default_mode)), format!("{at}.mode"))?;
            match entries.get(&it.key) {
                Some(content) => files.push(FilePlan { path: it.path.clone(), content: content.clone(), mode: m }),
                None if optional => {}
                None => return Err(d.error(format!("{at}.key"), format!("{what} {name:?} has no key {:?}", it.key))),
            }
        }
        // A path cannot be a file and the directory of another (`a` and `a/b`).
        for f in &files {
            let dir = format!("{}/", f.path);
            if let Some(o) = files.iter().find(|o| o.path.starts_with(&dir)) {
                return Err(d.error(
                    format!("{field}.{kind}.items"),
                    format!("{:?} is a file and the directory of {:?}", f.path, o.path),
                ));
            }
        }
    }
    Ok(Some(Files { plan: FilesPlan { volume: VolumePlan { name: volume, body }, files }, missing: entries.is_none() }))
}

#[allow(clippy::too_many_arguments)]
fn pod_plan(
    d: &Document,
    pod: &str,
    labels: &StrMap,
    annotations: &StrMap,
    spec: &PodSpec,
    sfield: &str,
    data: &Data,
    claims: &BTreeMap<String, String>,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<PodPlan> {
    let what = d.what();
    if spec.containers.is_empty() {
        return Err(d.error(format!("{sfield}.containers"), "a pod needs at least one container"));
    }
    if spec.host_pid == Some(true) {
        return Err(d.error(format!("{sfield}.hostPID"), "not supported by berth"));
    }
    if spec.host_ipc == Some(true) {
        return Err(d.error(format!("{sfield}.hostIPC"), "not supported by berth"));
    }
    let restart = match spec.restart_policy.as_deref() {
        None => match d.object {
            Object::Job { .. } => "no",
            _ => "always",
        },
        Some("Always") => "always",
        Some("OnFailure") => "on-failure",
        Some("Never") => "no",
        Some(o) => {
            return Err(d.error(format!("{sfield}.restartPolicy"), format!("{o:?} is not Always, OnFailure or Never")));
        }
    };
    let mut share = vec!["net", "ipc", "uts"];
    if spec.share_process_namespace == Some(true) {
        share.push("pid");
    }
    let mut plabels = Map::new();
    for (k, v) in labels {
        plabels.insert(k.clone(), json!(v));
    }
    plabels.insert(LABEL_DOCUMENT.into(), json!(what));
    let mut body = json!({
        "Name": pod,
        "Labels": plabels,
        "Share": share,
        "Hostname": spec.hostname.clone().unwrap_or_else(|| pod.to_string()),
        "PortBindings": {},
    });
    if spec.host_network == Some(true) {
        body["Network"] = json!("host");
    }
    if !spec.host_aliases.is_empty() {
        let hosts: Vec<String> =
            spec.host_aliases.iter().flat_map(|a| a.hostnames.iter().map(move |h| format!("{h}:{}", a.ip))).collect();
        body["ExtraHosts"] = json!(hosts);
    }
    if let Some(dns) = &spec.dns_config {
        if !dns.nameservers.is_empty() {
            body["Dns"] = json!(dns.nameservers);
        }
        if !dns.searches.is_empty() {
            warnings.push(format!("{what}: dnsConfig.searches is ignored"));
        }
    }
    // Volumes.
    let mut volumes = Vec::new();
    let mut files = Vec::new();
    // The paths in each configMap and secret volume (`None`: an optional source that is not in the file).
    let mut file_vols: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    let mut vol_defs: BTreeMap<&str, (usize, &Volume)> = BTreeMap::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let field = format!("{sfield}.volumes[{i}]");
        let kinds = [
            v.persistent_volume_claim.is_some(),
            v.empty_dir.is_some(),
            v.host_path.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            1 => {}
            0 => {
                return Err(d.error(
                    field,
                    "no source Berth runs (persistentVolumeClaim, emptyDir, hostPath, configMap, secret)",
                ));
            }
            _ => return Err(d.error(field, "more than one source")),
        }
        if let Some(c) = &v.persistent_volume_claim
            && !claims.contains_key(&c.claim_name)
        {
            warnings.push(format!(
                "{what}: claim {} is not in the file: the volume {} is used (created if missing)",
                c.claim_name, c.claim_name
            ));
        }
        if let Some(e) = &v.empty_dir {
            let name = format!("{pod}_{}", v.name);
            let mut labels = Map::new();
            labels.insert(LABEL_EMPTYDIR.into(), json!(pod));
            labels.insert(LABEL_DOCUMENT.into(), json!(what));
            let mut body = json!({"Name": name, "Driver": "local", "Labels": labels});
            if e.medium.as_deref() == Some("Memory") {
                let mut o = format!(
                    "size={}",
                    e.size_limit.as_ref().map(|s| s.text()).and_then(|s| quantity::bytes(&s)).unwrap_or(0)
                );
                if o == "size=0" {
                    o.clear();
                }
                body["DriverOpts"] = json!({"type": "tmpfs", "device": "tmpfs", "o": o});
            } else if let Some(m) = &e.medium
                && !m.is_empty()
            {
                return Err(d.error(format!("{field}.emptyDir.medium"), format!("{m:?} is not run (\"\" or Memory)")));
            }
            volumes.push(VolumePlan { name, body });
        }
        if let Some(h) = &v.host_path {
            match h.typ.as_deref().unwrap_or("") {
                "" | "Directory" | "DirectoryOrCreate" | "File" | "Socket" => {}
                t => return Err(d.error(format!("{field}.hostPath.type"), format!("{t:?} is not supported"))),
            }
            if !h.path.starts_with('/') {
                return Err(d.error(format!("{field}.hostPath.path"), "must be absolute"));
            }
        }
        if let Some(fp) = files_plan(d, pod, &field, v, data)? {
            let paths = (!fp.missing).then(|| fp.plan.files.iter().map(|f| f.path.clone()).collect());
            file_vols.insert(v.name.as_str(), paths);
            files.push(fp.plan);
        }
        if vol_defs.insert(&v.name, (i, v)).is_some() {
            return Err(d.error(format!("{field}.name"), format!("{:?} defined twice", v.name)));
        }
    }
    let mut container_names = BTreeSet::new();
    let mut build = |c: &Container, field: String, init: bool| -> Result<ContainerPlan> {
        if !container_names.insert(c.name.clone()) {
            return Err(d.error(format!("{field}.name"), format!("{:?} used twice", c.name)));
        }
        if c.image.is_empty() {
            return Err(d.error(format!("{field}.image"), "missing"));
        }
        let name = format!("{pod}-{}", c.name);
        let mut cl = plabels.clone();
        cl.insert(LABEL_CONTAINER.into(), json!(c.name));
        if init {
            cl.insert(LABEL_INIT.into(), json!("true"));
        }
        for (k, v) in annotations {
            cl.entry(k.clone()).or_insert(json!(v));
        }
        let mut b = json!({
            "Image": c.image,
            "Labels": cl,
            "Tty": c.tty,
            "OpenStdin": c.stdin,
            "AttachStdout": true,
            "AttachStderr": true,
        });
        if let Some(cmd) = &c.command {
            b["Entrypoint"] = json!(cmd);
        }
        if let Some(a) = &c.args {
            b["Cmd"] = json!(a);
        }
        if let Some(w) = &c.working_dir {
            b["WorkingDir"] = json!(w);
        }
        // Environment: envFrom first, env over it (Kubernetes' order).
        let mut env: Vec<(String, String)> = Vec::new();
        let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        };
        for (i, ef) in c.env_from.iter().enumerate() {
            let (secret, r) = match (&ef.config_map_ref, &ef.secret_ref) {
                (Some(r), None) => (false, r),
                (None, Some(r)) => (true, r),
                _ => return Err(d.error(format!("{field}.envFrom[{i}]"), "needs one of configMapRef, secretRef")),
            };
            match data.get(secret, &r.name) {
                Some(m) => {
                    for (k, v) in m {
                        set(&mut env, format!("{}{k}", ef.prefix.clone().unwrap_or_default()), text(v));
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(d.error(
                        format!("{field}.envFrom[{i}]"),
                        format!("{} {:?} is not in the file", if secret { "Secret" } else { "ConfigMap" }, r.name),
                    ));
                }
            }
        }
        for (i, e) in c.env.iter().enumerate() {
            let f = format!("{field}.env[{i}]");
            let value = match (&e.value, &e.value_from) {
                (Some(v), None) => Some(v.clone()),
                (None, None) => Some(String::new()),
                (Some(_), Some(_)) => return Err(d.error(f, "value and valueFrom both given")),
                (None, Some(src)) => {
                    if let Some(fr) = &src.field_ref {
                        Some(match fr.field_path.as_str() {
                            "metadata.name" => pod.to_string(),
                            "metadata.namespace" => "default".to_string(),
                            p => {
                                return Err(d.error(
                                    format!("{f}.valueFrom.fieldRef.fieldPath"),
                                    format!("{p:?} is not supported (metadata.name, metadata.namespace are)"),
                                ));
                            }
                        })
                    } else {
                        let (secret, r, sub) = match (&src.config_map_key_ref, &src.secret_key_ref) {
                            (Some(r), None) => (false, r, "configMapKeyRef"),
                            (None, Some(r)) => (true, r, "secretKeyRef"),
                            _ => {
                                return Err(d.error(
                                    format!("{f}.valueFrom"),
                                    "needs one of configMapKeyRef, secretKeyRef, fieldRef",
                                ));
                            }
                        };
                        match data.get(secret, &r.name).and_then(|m| m.get(&r.key)) {
                            Some(v) => Some(text(v)),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(d.error(
                                    format!("{f}.valueFrom.{sub}"),
                                    format!("key {:?} of {:?} is not in the file", r.key, r.name),
                                ));
                            }
                        }
                    }
                }
            };
            if let Some(v) = value {
                set(&mut env, e.name.clone(), v);
            }
        }
        b["Env"] = json!(env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>());
        // Security.
        let psc = spec.security_context.clone().unwrap_or_default();
        let sc = c.security_context.clone().unwrap_or_default();
        let uid = sc.run_as_user.or(psc.run_as_user);
        let gid = sc.run_as_group.or(psc.run_as_group);
        match (uid, gid) {
            (Some(u), Some(g)) => b["User"] = json!(format!("{u}:{g}")),
            (Some(u), None) => b["User"] = json!(u.to_string()),
            (None, Some(g)) => {
                return Err(d.error(
                    format!("{field}.securityContext.runAsGroup"),
                    format!("{g}: runAsGroup needs runAsUser on berth"),
                ));
            }
            (None, None) => {}
        }
        if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) && uid.is_none_or(|u| u == 0) {
            return Err(d.error(
                format!("{field}.securityContext.runAsNonRoot"),
                "needs a runAsUser other than 0 (berth does not read the image's user here)",
            ));
        }
        let mut host = Map::new();
        host.insert("RestartPolicy".into(), json!({"Name": if init { "no" } else { restart }}));
        if let Some(caps) = &sc.capabilities {
            host.insert("CapAdd".into(), json!(caps.add));
            host.insert("CapDrop".into(), json!(caps.drop));
        }
        if sc.privileged == Some(true) {
            host.insert("Privileged".into(), json!(true));
        }
        if sc.read_only_root_filesystem == Some(true) {
            host.insert("ReadonlyRootfs".into(), json!(true));
        }
        if sc.allow_privilege_escalation == Some(false) {
            host.insert("SecurityOpt".into(), json!(["no-new-privileges"]));
        }
        let groups: Vec<String> =
            psc.supplemental_groups.iter().chain(psc.fs_group.iter()).map(|g| g.to_string()).collect();
        if !groups.is_empty() {
            host.insert("GroupAdd".into(), json!(groups));
        }
        if let Some(r) = &c.resources {
            for (k, v) in &r.limits {
                let q = v.text();
                match k.as_str() {
                    "memory" => {
                        let m = quantity::bytes(&q).ok_or_else(|| {
                            d.error(format!("{field}.resources.limits.memory"), format!("{q:?} is not a quantity"))
                        })?;
                        host.insert("Memory".into(), json!(m));
                    }
                    "cpu" => {
                        let n = quantity::nano_cpus(&q).ok_or_else(|| {
                            d.error(format!("{field}.resources.limits.cpu"), format!("{q:?} is not a quantity"))
                        })?;
                        host.insert("NanoCpus".into(), json!(n));
                    }
                    o => warnings.push(format!("{what}: container {}: limit {o} is ignored", c.name)),
                }
            }
            if let Some(q) = r.requests.get("memory").map(IntOrString::text) {
                let m = quantity::bytes(&q).ok_or_else(|| {
                    d.error(format!("{field}.resources.requests.memory"), format!("{q:?} is not a quantity"))
                })?;
                host.insert("MemoryReservation".into(), json!(m));
            }
        }
        if let Some(h) = healthcheck(c, d, &field)? {
            b["Healthcheck"] = h;
        }
        // Ports: the pod publishes them.
        for (i, p) in c.ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            if !matches!(proto, "TCP" | "UDP" | "SCTP") {
                return Err(d.error(format!("{field}.ports[{i}].protocol"), format!("{proto:?} is not a protocol")));
            }
            if !(1..=65535).contains(&p.container_port) {
                return Err(d.error(
                    format!("{field}.ports[{i}].containerPort"),
                    format!("{} is not a port", p.container_port),
                ));
            }
            let key = format!("{}/{}", p.container_port, proto.to_ascii_lowercase());
            if let Some(hp) = p.host_port {
                if !(1..=65535).contains(&hp) {
                    return Err(d.error(format!("{field}.ports[{i}].hostPort"), format!("{hp} is not a port")));
                }
                let overridden = opts.publish.iter().any(|x| format!("{}/{}", x.container_port, x.protocol) == key);
                if !overridden {
                    body["PortBindings"][&key] = json!([binding(p.host_ip.as_deref().unwrap_or(""), &hp.to_string())]);
                }
            }
        }
        // Mounts.
        let mut mounts = Vec::new();
        let mut sub_paths = Vec::new();
        for (i, m) in c.volume_mounts.iter().enumerate() {
            let f = format!("{field}.volumeMounts[{i}]");
            let Some((_, v)) = vol_defs.get(m.name.as_str()) else {
                return Err(d.error(format!("{f}.name"), format!("no volume {:?} in the pod", m.name)));
            };
            if !m.mount_path.starts_with('/') {
                return Err(d.error(format!("{f}.mountPath"), "must be absolute"));
            }
            if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                warnings.push(format!("{what}: {f}.mountPropagation is ignored"));
            }
            let ro = m.read_only == Some(true);
            let sub = m.sub_path.clone().filter(|s| !s.is_empty());
            if let Some(s) = &sub
                && (s.starts_with('/') || s.split('/').any(|p| p == ".."))
            {
                return Err(d.error(format!("{f}.subPath"), "must be a relative path inside the volume"));
            }
            if sub.is_some() && (v.persistent_volume_claim.is_some() || v.empty_dir.is_some()) {
                // berthd mounts whole volumes only.
                return Err(d.error(
                    format!("{f}.subPath"),
                    "not run on a persistentVolumeClaim or emptyDir volume (on hostPath, configMap, secret it is)",
                ));
            }
            if let Some(cl) = &v.persistent_volume_claim {
                let vol = claims.get(&cl.claim_name).cloned().unwrap_or(cl.claim_name.clone());
                mounts.push(json!({"Type": "volume", "Source": vol, "Target": m.mount_path, "ReadOnly": ro || cl.read_only == Some(true)}));
            } else if v.empty_dir.is_some() {
                mounts.push(json!({"Type": "volume", "Source": format!("{pod}_{}", v.name), "Target": m.mount_path, "ReadOnly": ro}));
            } else if let Some(h) = &v.host_path {
                let mut src = h.path.clone();
                if let Some(s) = &sub {
                    src = format!("{}/{s}", src.trim_end_matches('/'));
                }
                let mut mo = json!({"Type": "bind", "Source": src, "Target": m.mount_path, "ReadOnly": ro});
                if h.typ.as_deref() == Some("DirectoryOrCreate") {
                    mo["BindOptions"] = json!({"CreateMountpoint": true});
                }
                mounts.push(mo);
            } else if let Some(paths) = file_vols.get(m.name.as_str()) {
                // ConfigMap or Secret: its volume, read-only whatever `readOnly` says (as the kubelet mounts it),
                // never filled from the image (`NoCopy`: an empty one stays empty).
                let volume = format!("{pod}_{}", v.name);
                match (&sub, paths) {
                    // Kubernetes mounts an empty directory there; there is nothing to bind.
                    (Some(s), None) => {
                        warnings.push(format!(
                            "{what}: {f}: {s:?} of an optional volume that is not in the file is not mounted"
                        ));
                    }
                    (Some(s), Some(paths)) => {
                        let dir = format!("{s}/");
                        if !paths.iter().any(|p| p == s || p.starts_with(&dir)) {
                            return Err(d.error(
                                format!("{f}.subPath"),
                                format!("volume {:?} has no file or directory {s:?}", m.name),
                            ));
                        }
                        sub_paths.push(SubPathMount { volume, path: s.clone(), target: m.mount_path.clone() });
                    }
                    (None, _) => mounts.push(json!({
                        "Type": "volume",
                        "Source": volume,
                        "Target": m.mount_path,
                        "ReadOnly": true,
                        "VolumeOptions": {"NoCopy": true},
                    })),
                }
            }
        }
        if !mounts.is_empty() {
            host.insert("Mounts".into(), json!(mounts));
        }
        b["HostConfig"] = Value::Object(host);
        Ok(ContainerPlan { name, body: b, sub_paths })
    };
    let mut init = Vec::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        if c.liveness_probe.is_some() || c.readiness_probe.is_some() {
            return Err(d.error(format!("{sfield}.initContainers[{i}]"), "an init container takes no probes"));
        }
        init.push(build(c, format!("{sfield}.initContainers[{i}]"), true)?);
    }
    let mut containers = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        containers.push(build(c, format!("{sfield}.containers[{i}]"), false)?);
    }
    if spec.termination_grace_period_seconds.is_some() {
        for c in init.iter_mut().chain(containers.iter_mut()) {
            c.body["StopTimeout"] = json!(spec.termination_grace_period_seconds);
        }
    }
    Ok(PodPlan { name: pod.to_string(), document: what, body, volumes, files, init, containers })
}
