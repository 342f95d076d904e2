//! `pod` commands (Podman's): `create`, `ls` (`ps`), `inspect`, `start`, `stop`, `restart`, `kill`, `rm`, `logs`,
//! over Berth's `/berth/pods` endpoints; and `run`/`create --pod [new:]NAME`'s pod side.

use std::time::SystemTime;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::models::ContainerCreateBody;
use clap::Args;
use serde_json::{Value, json};

use super::{inspect, opts, short_id};
use crate::StatusError;
use crate::client::{ApiError, Client, encode_path, query};
use crate::formatter::{self, Headers};
use crate::units::{ago, go_time_string};

/// `/berth/pods/{name}` for a name or ID.
pub fn pod_path(name: &str) -> String {
    format!("/berth/pods/{}", encode_path(name))
}

/// `berth pod create`.
#[derive(Args, Debug, Default)]
#[command(override_usage = "berth pod create [OPTIONS]")]
pub struct CreateArgs {
    /// Assign a name to the pod (default: a generated one)
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Publish a port of the pod to the host (its containers share it)
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// The pod's network: bridge (default), none, host or a network's name
    #[arg(long = "network", visible_alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Namespaces the pod's containers share: net (always), ipc, uts, pid
    #[arg(long = "share", value_name = "NS", value_delimiter = ',', default_value = "net,ipc,uts")]
    pub share: Vec<String>,
    /// The pod's hostname (default: its name)
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,
    /// Set metadata on the pod
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = opts::label_flag)]
    pub label: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
}

/// `berth pod ls` (also `pod ps`, as Podman).
#[derive(Args, Debug, Default)]
#[command(override_usage = "berth pod ls [OPTIONS]")]
pub struct LsArgs {
    /// Filter the pods (id=, name=, label=, status=created|running|degraded|exited|stopped)
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display pod IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `berth pod inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth pod inspect [OPTIONS] POD [POD...]")]
pub struct InspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// POD...
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

/// `berth pod start`.
#[derive(Args, Debug)]
pub struct PodsArgs {
    /// POD...
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

/// `berth pod stop` / `restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for each container to stop before killing it (default: the container's)
    #[arg(short = 't', long = "time", value_name = "SECONDS", allow_hyphen_values = true)]
    pub time: Option<i64>,
    /// POD...
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

/// `berth pod kill`.
#[derive(Args, Debug)]
#[command(override_usage = "berth pod kill [OPTIONS] POD [POD...]")]
pub struct KillArgs {
    /// Signal to send to the pod's containers
    #[arg(short = 's', long = "signal", value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    /// POD...
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

/// `berth pod rm`.
#[derive(Args, Debug)]
#[command(override_usage = "berth pod rm [OPTIONS] POD [POD...]")]
pub struct RmArgs {
    /// Stop and remove running containers of the pod too
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// POD...
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

/// `berth pod logs`.
#[derive(Args, Debug)]
#[command(override_usage = "berth pod logs [OPTIONS] POD")]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Number of lines to show from the end of each container's logs
    #[arg(short = 'n', long = "tail", value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Only this container of the pod
    #[arg(short = 'c', long = "container", value_name = "NAME")]
    pub container: Option<String>,
    /// POD
    #[arg(value_name = "POD")]
    pub pod: String,
}

/// The create body of a pod.
fn create_body(a: &CreateArgs) -> Result<Value> {
    let (_, bindings) = opts::ports(&a.publish, &[])?;
    let labels = opts::labels(&[], &a.label)?;
    Ok(json!({
        "Name": a.name.clone().unwrap_or_default(),
        "Labels": labels,
        "PortBindings": bindings,
        "Network": a.network.clone().unwrap_or_default(),
        "Share": a.share,
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Dns": a.dns,
        "ExtraHosts": a.add_host,
    }))
}

/// Creates a pod; its ID.
pub(crate) async fn create_pod(c: &Client, body: &Value) -> Result<String> {
    let answer = c.post_json("/berth/pods/create", body).await?;
    let v: Value = serde_json::from_slice(&answer).context("decode the pod create answer")?;
    match v["Id"].as_str() {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => bail!("the daemon answered no pod Id"),
    }
}

/// `berth pod create`: prints the pod's ID.
pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let body = create_body(&a)?;
    outln!("{}", create_pod(c, &body).await?);
    Ok(0)
}

/// `run`/`create --pod`: `new:NAME` creates the pod first, with the container's published ports, network, hostname
/// and DNS settings (which a pod's container cannot have of its own), as Podman does. Returns the pod to join, and
/// its ID when this call created it (the caller removes it with [`remove_new`] when the container is not made).
pub async fn for_container(c: &Client, pod: &str, body: &mut ContainerCreateBody) -> Result<(String, Option<String>)> {
    let Some(name) = pod.strip_prefix("new:") else { return Ok((pod.to_string(), None)) };
    if name.is_empty() {
        return Err(anyhow!("--pod new: needs a name"));
    }
    let host = body.host_config.get_or_insert_with(Default::default);
    let network = host.network_mode.take().filter(|m| m != "default").unwrap_or_default();
    let spec = json!({
        "Name": name,
        "PortBindings": host.port_bindings.take().unwrap_or_default(),
        "Network": network,
        "Hostname": body.hostname.take().unwrap_or_default(),
        "Dns": host.dns.take().unwrap_or_default(),
        "ExtraHosts": host.extra_hosts.take().unwrap_or_default(),
    });
    body.exposed_ports = None;
    body.networking_config = None;
    let id = create_pod(c, &spec).await?;
    Ok((name.to_string(), Some(id)))
}

/// Removes a pod that `for_container` created for a container that could not be made; a failure is a warning (the
/// container's error is the one to show).
pub async fn remove_new(c: &Client, id: &str) {
    if let Err(e) = c.delete(&format!("{}?force=1", pod_path(id))).await {
        eprintln!("WARNING: remove the pod {id} made for the container: {e:#}");
    }
}

const HEADERS: Headers = &[
    ("ID", "POD ID"),
    ("Name", "NAME"),
    ("Status", "STATUS"),
    ("Created", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("InfraID", "INFRA ID"),
    ("NumberOfContainers", "# OF CONTAINERS"),
    ("Networks", "NETWORKS"),
    ("Labels", "LABELS"),
    ("ContainerNames", "NAMES"),
];

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t{{.NumberOfContainers}}";

/// One `pod ls` row.
fn row(p: &Value, trunc: bool, now: SystemTime) -> Value {
    let id = p["Id"].as_str().unwrap_or("");
    let infra = p["InfraContainerId"].as_str().unwrap_or("");
    let created = berth_api::time::parse(p["Created"].as_str().unwrap_or("")).map_or(0, berth_api::time::unix);
    let labels = p["Labels"].as_object().cloned().unwrap_or_default();
    let mut label_list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    label_list.sort();
    let members = p["Containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = members.iter().filter_map(|m| m["Name"].as_str()).collect();
    let cut = |s: &str| if trunc { short_id(s) } else { s.to_string() };
    json!({
        "ID": cut(id),
        "Name": p["Name"].as_str().unwrap_or(""),
        "Status": p["Status"].as_str().unwrap_or(""),
        "Created": ago(created, now),
        "CreatedAt": go_time_string(created),
        "InfraID": cut(infra),
        "NumberOfContainers": members.len(),
        "Networks": p["Network"].as_str().unwrap_or(""),
        "Labels": label_list.join(","),
        "ContainerNames": names.join(","),
    })
}

/// `berth pod ls`, newest first.
pub async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let list: Vec<Value> = c.get_json(&format!("/berth/pods/json{}", query(&q))).await?;
    let now = SystemTime::now();
    let rows: Vec<Value> = list.iter().map(|p| row(p, !a.no_trunc, now)).collect();
    let format = match (a.format.as_deref().unwrap_or(""), a.quiet) {
        ("" | "table", true) => "{{.ID}}",
        (f, _) => f,
    };
    out!("{}", formatter::render(format, DEFAULT, HEADERS, &rows)?);
    Ok(0)
}

/// `berth pod inspect`.
pub async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for p in &a.pods {
        match c.get_json::<Value>(&format!("{}/json", pod_path(p))).await {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    if !found.is_empty() {
        inspect::print(&found, a.format.as_deref())?;
    }
    if failed { Err(StatusError::exit(1, "")) } else { Ok(0) }
}

/// Runs `POST /berth/pods/{pod}/{action}{q}` for each pod, printing each that succeeded (Podman prints the pod).
pub async fn each(c: &Client, pods: &[String], action: &str, q: &[(&str, String)]) -> Result<i32> {
    let mut failed = false;
    for p in pods {
        match c.post(&format!("{}/{action}{}", pod_path(p), query(q))).await {
            Ok(_) => outln!("{p}"),
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    if failed { Err(StatusError::exit(1, "")) } else { Ok(0) }
}

/// `berth pod stop`/`restart`'s query.
pub fn time_query(t: Option<i64>) -> Vec<(&'static str, String)> {
    t.map(|t| vec![("t", t.to_string())]).unwrap_or_default()
}

/// `berth pod rm`.
pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    let q = if a.force { "?force=1" } else { "" };
    for p in &a.pods {
        match c.delete(&format!("{}{q}", pod_path(p))).await {
            Ok(_) => outln!("{p}"),
            Err(e) if a.force && ApiError::is(&e, 404) => {}
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    if failed { Err(StatusError::exit(1, "")) } else { Ok(0) }
}

/// `berth pod logs`: each member's logs, every line prefixed with the container's name (`name  | `); with `-f`,
/// until every member's stream ends.
pub async fn logs(c: &Client, a: LogsArgs) -> Result<i32> {
    let pod: Value = c.get_json(&format!("{}/json", pod_path(&a.pod))).await?;
    let mut members: Vec<(String, String)> = pod["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["Id"].as_str().unwrap_or("").to_string(), m["Name"].as_str().unwrap_or("").to_string()))
        .collect();
    if let Some(only) = &a.container {
        members.retain(|(id, name)| name == only || id.starts_with(only.as_str()));
        if members.is_empty() {
            return Err(anyhow!("no container {only} in pod {}", a.pod));
        }
    }
    let width = members.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    let mut q: Vec<(&'static str, String)> =
        vec![("stdout", "1".into()), ("stderr", "1".into()), ("tail", a.tail.clone())];
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    let tasks: Vec<_> = members
        .into_iter()
        .map(|(id, name)| {
            let prefix = super::compose::prefix_text(&name, width, None);
            tokio::spawn(super::compose::stream_logs(c.clone(), id, q.clone(), prefix))
        })
        .collect();
    let mut failed = false;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if failed { Err(StatusError::exit(1, "")) } else { Ok(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_carries_the_flags() {
        let a = CreateArgs {
            name: Some("web".into()),
            publish: vec!["127.0.0.1:8080:80".into()],
            share: vec!["net".into(), "ipc".into()],
            label: vec!["a=b".into()],
            ..Default::default()
        };
        let b = create_body(&a).expect("body");
        assert_eq!(b["Name"], "web");
        assert_eq!(b["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(b["PortBindings"]["80/tcp"][0]["HostIp"], "127.0.0.1");
        assert_eq!(b["Share"], json!(["net", "ipc"]));
        assert_eq!(b["Labels"]["a"], "b");
    }

    #[test]
    fn rows_truncate_ids() {
        let p = json!({"Id": "a".repeat(64), "InfraContainerId": "b".repeat(64), "Name": "web", "Status": "Running",
            "Created": "2026-01-01T00:00:00Z", "Containers": [{"Id": "c", "Name": "x", "State": "running"}],
            "Network": "bridge", "Labels": {}});
        let r = row(&p, true, SystemTime::now());
        assert_eq!(r["ID"], "a".repeat(12));
        assert_eq!(r["InfraID"], "b".repeat(12));
        assert_eq!(r["NumberOfContainers"], 1);
        assert_eq!(r["ContainerNames"], "x");
    }
}
