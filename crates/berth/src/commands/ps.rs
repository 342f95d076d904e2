//! `ps`: the container list with docker's columns and `--format` fields.

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use super::{opts, short_id};
use crate::client::{Client, query};
use crate::formatter::{self, Headers};
use crate::template::go_quote;
use crate::units::{ago, go_time_string, human_size};

/// The label of a pod's containers (berthd's `io.berth.pod`: the pod's ID).
pub const POD_LABEL: &str = "io.berth.pod";

/// `berth ps`.
#[derive(Args, Debug)]
#[command(override_usage = "berth ps [OPTIONS]")]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Display the pod of each container (POD ID and PODNAME columns, as Podman's; filter with --filter pod=POD)
    #[arg(long = "pod")]
    pub pod: bool,
}

/// The header of each `ps` field.
const HEADERS: Headers = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
    ("Pod", "POD ID"),
    ("PodName", "PODNAME"),
];

const DEFAULT: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// docker's `DisplayablePorts`: ports sorted (private port, IP, public port, protocol); bindings to the same port
/// number and unpublished ports grouped into ranges per IP and protocol (`0.0.0.0:80-81->80-81/tcp`,
/// `:::80->80/tcp`, `53/udp`), then bindings to another port (`0.0.0.0:8080->80/tcp`, `[::]:8080->80/tcp`).
fn ports(list: &Value) -> String {
    struct Port<'a> {
        ip: &'a str,
        private: i64,
        public: i64,
        typ: &'a str,
    }
    let mut ports: Vec<Port> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Port {
            ip: p["IP"].as_str().unwrap_or(""),
            private: p["PrivatePort"].as_i64().unwrap_or(0),
            public: p["PublicPort"].as_i64().unwrap_or(0),
            typ: p["Type"].as_str().unwrap_or(""),
        })
        .collect();
    ports.sort_by(|a, b| (a.private, a.ip, a.public, a.typ).cmp(&(b.private, b.ip, b.public, b.typ)));
    let form = |key: &str, first: i64, last: i64| {
        let (ip, typ) = match key.rsplit_once('/') {
            Some((ip, typ)) => (ip, typ),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{ip}:{group}->{group}");
        }
        format!("{group}/{typ}")
    };
    let mut groups: Vec<(String, i64, i64)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &ports {
        let key = if p.ip.is_empty() {
            p.typ.to_string()
        } else if p.public != p.private {
            let host = if p.ip.contains(':') { format!("[{}]", p.ip) } else { p.ip.to_string() };
            mappings.push(format!("{host}:{}->{}/{}", p.public, p.private, p.typ));
            continue;
        } else {
            format!("{}/{}", p.ip, p.typ)
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                (g.1, g.2) = (p.private, p.private);
            }
        }
    }
    result.extend(groups.iter().map(|(k, a, b)| form(k, *a, *b)));
    result.extend(mappings);
    result.join(", ")
}

/// One `ps` row with docker's formatter fields, and the container's pod (`pods`: pod ID → name).
fn row(c: &Value, trunc: bool, now: SystemTime, pods: &HashMap<String, String>) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if trunc {
        if image.starts_with("sha256:") {
            image = short_id(&image);
        } else if let Some((repo, _)) = image.split_once('@') {
            image = repo.to_string();
        }
    }
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc { ellipsis(command, 20) } else { command.to_string() });
    let created = c["Created"].as_i64().unwrap_or(0);
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let labels = c["Labels"].as_object().cloned().unwrap_or_default();
    let mut label_list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    label_list.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty()).or(m["Source"].as_str()).unwrap_or("");
            if trunc { ellipsis(name, 15) } else { name.to_string() }
        })
        .collect();
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let local_volumes =
        c["Mounts"].as_array().into_iter().flatten().filter(|m| m["Driver"].as_str() == Some("local")).count();
    let size = match c["SizeRw"].as_i64() {
        Some(rw) => {
            let srw = human_size(rw as f64);
            match c["SizeRootFs"].as_i64().filter(|v| *v > 0) {
                Some(v) => format!("{srw} (virtual {})", human_size(v as f64)),
                None => srw,
            }
        }
        None => human_size(0.0),
    };
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Image": image,
        "Command": command,
        "CreatedAt": go_time_string(created),
        "RunningFor": ago(created, now),
        "Ports": ports(&c["Ports"]),
        "State": c["State"],
        "Status": c["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": label_list.join(","),
        "Label": labels,
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Platform": Value::Null,
        "Pod": labels.get(POD_LABEL).and_then(Value::as_str).map(|p| if trunc { short_id(p) } else { p.to_string() }).unwrap_or_default(),
        "PodName": labels.get(POD_LABEL).and_then(Value::as_str).and_then(|p| pods.get(p)).cloned().unwrap_or_default(),
    })
}

/// `berth ps`.
pub async fn ps(c: &Client, a: PsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    let format = a.format.clone().unwrap_or_default();
    let wants_size = a.size || (format.contains(".Size") && !a.quiet);
    if wants_size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let list: Vec<Value> = c.get_json(&format!("/containers/json{}", query(&q))).await?;
    let now = SystemTime::now();
    // The pods' names, when shown (a daemon without pods has none).
    let mut pods = HashMap::new();
    if a.pod || format.contains(".PodName") {
        let all: Vec<Value> = c.get_json("/berth/pods/json").await.unwrap_or_default();
        for p in all {
            pods.insert(p["Id"].as_str().unwrap_or("").to_string(), p["Name"].as_str().unwrap_or("").to_string());
        }
    }
    let rows: Vec<Value> = list.iter().map(|x| row(x, !a.no_trunc, now, &pods)).collect();
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if format.is_empty() || format == "table" {
        let mut f = DEFAULT.to_string();
        if a.size {
            f.push_str("\t{{.Size}}");
        }
        if a.pod {
            f.push_str("\t{{.Pod}}\t{{.PodName}}");
        }
        f
    } else {
        format
    };
    out!("{}", formatter::render(&format, DEFAULT, HEADERS, &rows)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_like_docker() {
        let c = json!({
            "Id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Names": ["/up1"],
            "Image": "busybox",
            "Command": "sh -c 'echo hello; sleep 300'",
            "Created": 0,
            "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"}],
            "Labels": {"tier": "web"},
            "State": "running",
            "Status": "Up 3 seconds",
            "SizeRw": 1200, "SizeRootFs": 4260000,
        });
        let r = row(&c, true, SystemTime::now(), &HashMap::new());
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'echo hello; …\"");
        assert_eq!(r["Names"], "up1");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp");
        assert_eq!(r["Size"], "1.2kB (virtual 4.26MB)");
        assert_eq!(r["Labels"], "tier=web");
        assert!(r["RunningFor"].as_str().is_some_and(|s| s.ends_with("years ago")));
        let out = formatter::render("", DEFAULT, HEADERS, std::slice::from_ref(&r)).expect("render");
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some(
                "CONTAINER ID   IMAGE     COMMAND                  CREATED        STATUS         PORTS                  NAMES"
            )
        );
        assert!(lines.next().is_some_and(|l| l.starts_with("0123456789ab   busybox   \"sh -c 'echo hello; …\"   ")));
        assert_eq!(formatter::render("{{.Label \"tier\"}}", DEFAULT, HEADERS, &[r]).expect("label"), "web\n");
    }

    #[test]
    fn ports_like_docker() {
        let p = |ip: &str, private: i64, public: i64, typ: &str| {
            let mut v = json!({"PrivatePort": private, "Type": typ});
            if !ip.is_empty() {
                v["IP"] = json!(ip);
                v["PublicPort"] = json!(public);
            }
            v
        };
        let list = json!([
            p("0.0.0.0", 80, 8080, "tcp"),
            p("::", 80, 8080, "tcp"),
            p("", 53, 0, "udp"),
            p("0.0.0.0", 9000, 9000, "tcp"),
            p("0.0.0.0", 9001, 9001, "tcp"),
            p("::", 9000, 9000, "tcp"),
            p("", 7000, 0, "tcp"),
            p("", 7001, 0, "tcp"),
            p("", 7003, 0, "tcp"),
        ]);
        assert_eq!(
            ports(&list),
            "7000-7001/tcp, 53/udp, 7003/tcp, 0.0.0.0:9000-9001->9000-9001/tcp, :::9000->9000/tcp, \
             0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(ports(&json!([])), "");
        assert_eq!(ports(&Value::Null), "");
    }
}
