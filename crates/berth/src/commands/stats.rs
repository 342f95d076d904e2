//! `stats`: docker's live table of containers' resource usage (CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O,
//! PIDS), computed from `GET /containers/{id}/stats` exactly as the docker CLI does.
//!
//! `--no-stream` asks each container for one object (`stream=false`: the daemon fills `precpu_stats`) and prints one
//! table. Otherwise each container's stats are streamed by a task of its own, and the table is redrawn every
//! [`REFRESH`] from the latest objects (in place on a terminal); without container arguments the list of running
//! (`-a`: all) containers is read again before each redraw, so containers that start or stop appear and disappear.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use super::{container_path, short_id};
use crate::StatusError;
use crate::client::{BodyReader, Client, empty};
use crate::formatter::{self, Headers};
use crate::units::{bytes_size, human_size};

/// How often the live table is redrawn.
const REFRESH: Duration = Duration::from_millis(500);

/// `berth stats`.
#[derive(Args, Debug)]
#[command(override_usage = "berth stats [OPTIONS] [CONTAINER...]")]
pub struct StatsArgs {
    #[command(flatten)]
    pub opts: StatsOptions,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth stats`' flags (`berth compose stats` has them too).
#[derive(Args, Debug, Clone, Default)]
pub struct StatsOptions {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

const HEADERS: Headers = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// docker's numbers for one container (`StatsEntry`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The name or ID as the user gave it (or the ID when listing).
    pub container: String,
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percent: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids: u64,
    /// No stats could be read (shown as `--`).
    pub invalid: bool,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub use berth_api::stats::{cpu_percent, memory_usage};

/// One stats object as docker's numbers.
pub fn entry(container: &str, v: &Value) -> Entry {
    let memory = memory_usage(&v["memory_stats"]);
    let memory_limit = u(&v["memory_stats"]["limit"]) as f64;
    let (mut block_read, mut block_write) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"].as_array().into_iter().flatten() {
        match e["op"].as_str().and_then(|op| op.chars().next()) {
            Some('r' | 'R') => block_read += u(&e["value"]) as f64,
            Some('w' | 'W') => block_write += u(&e["value"]) as f64,
            _ => {}
        }
    }
    let (mut net_rx, mut net_tx) = (0.0, 0.0);
    for n in v["networks"].as_object().into_iter().flat_map(|m| m.values()) {
        net_rx += u(&n["rx_bytes"]) as f64;
        net_tx += u(&n["tx_bytes"]) as f64;
    }
    Entry {
        container: container.to_string(),
        id: v["id"].as_str().unwrap_or("").to_string(),
        name: v["name"].as_str().unwrap_or("").trim_start_matches('/').to_string(),
        cpu_percent: cpu_percent(v),
        memory,
        memory_limit,
        memory_percent: if memory_limit != 0.0 { memory / memory_limit * 100.0 } else { 0.0 },
        net_rx,
        net_tx,
        block_read,
        block_write,
        pids: u(&v["pids_stats"]["current"]),
        invalid: false,
    }
}

/// The formatter fields of one entry, as docker's stats formatter writes them.
pub fn row(e: &Entry, trunc: bool) -> Value {
    let id = if trunc { short_id(&e.id) } else { e.id.clone() };
    let name = if e.name.is_empty() { "--".to_string() } else { e.name.clone() };
    if e.invalid {
        return json!({
            "BlockIO": "--", "CPUPerc": "--", "Container": e.container, "ID": id, "MemPerc": "--",
            "MemUsage": "-- / --", "Name": name, "NetIO": "--", "PIDs": "--",
        });
    }
    json!({
        "BlockIO": format!("{} / {}", human_size(e.block_read), human_size(e.block_write)),
        "CPUPerc": format!("{:.2}%", e.cpu_percent),
        "Container": e.container,
        "ID": id,
        "MemPerc": format!("{:.2}%", e.memory_percent),
        "MemUsage": format!("{} / {}", bytes_size(e.memory), bytes_size(e.memory_limit)),
        "Name": name,
        "NetIO": format!("{} / {}", human_size(e.net_rx), human_size(e.net_tx)),
        "PIDs": e.pids.to_string(),
    })
}

fn stats_path(container: &str, stream: bool) -> String {
    format!("{}/stats?stream={}", container_path(container), if stream { "1" } else { "0" })
}

/// The containers to show when none is named: running ones (`-a`: all), by ID.
async fn listed(c: &Client, all: bool) -> Result<Vec<String>> {
    let list: Vec<Value> = c.get_json(&format!("/containers/json{}", if all { "?all=1" } else { "" })).await?;
    Ok(list.iter().filter_map(|x| x["Id"].as_str().map(str::to_string)).collect())
}

/// `berth stats`.
pub async fn stats(c: &Client, a: StatsArgs) -> Result<i32> {
    stats_of(c, a.opts, a.containers, |all| listed(c, all)).await
}

/// `berth stats` of `containers`, or when none is named, of the containers `list(all)` names (by ID; `berth compose
/// stats` lists a project's).
pub async fn stats_of<F, Fut>(c: &Client, a: StatsOptions, containers: Vec<String>, list: F) -> Result<i32>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>>>,
{
    let format = a.format.clone().unwrap_or_default();
    formatter::render(&format, DEFAULT, HEADERS, &[])?;
    let trunc = !a.no_trunc;
    if a.no_stream {
        let targets = if containers.is_empty() { list(a.all).await? } else { containers.clone() };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let (c, t) = (c.clone(), t.clone());
            tasks.spawn(async move { (i, c.get_json::<Value>(&stats_path(&t, false)).await.map(|v| entry(&t, &v))) });
        }
        let mut results: Vec<Option<Result<Entry>>> = (0..targets.len()).map(|_| None).collect();
        while let Some(r) = tasks.join_next().await {
            if let Ok((i, r)) = r {
                results[i] = Some(r);
            }
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (t, r) in targets.iter().zip(results) {
            match r {
                Some(Ok(e)) => rows.push(row(&e, trunc)),
                // A listed container that went away in between is left out; a named one is an error.
                Some(Err(e)) if !containers.is_empty() => errors.push(format!("{e:#}")),
                Some(Err(_)) => {}
                None => errors.push(format!("{t}: the stats request failed")),
            }
        }
        if !errors.is_empty() {
            return Err(StatusError::exit(1, errors.join("\n")));
        }
        out!("{}", formatter::render(&format, DEFAULT, HEADERS, &rows)?);
        return Ok(0);
    }
    // Named containers must exist, as docker checks before streaming.
    for t in &containers {
        c.get_bytes(&format!("{}/json", container_path(t))).await?;
    }
    let latest: Arc<Mutex<BTreeMap<String, Entry>>> = Arc::default();
    let mut streams: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let tty = std::io::stdout().is_terminal();
    loop {
        let targets = if containers.is_empty() { list(a.all).await? } else { containers.clone() };
        // Containers gone from the list stop being streamed; new ones start.
        streams.retain(|t, h| {
            let keep = targets.contains(t);
            if !keep {
                h.abort();
            }
            keep
        });
        order.retain(|t| targets.contains(t));
        if let Ok(mut m) = latest.lock() {
            m.retain(|t, _| targets.contains(t));
        }
        for t in &targets {
            if !streams.contains_key(t) {
                order.push(t.clone());
                streams.insert(t.clone(), tokio::spawn(follow(c.clone(), t.clone(), latest.clone())));
            }
        }
        let rows: Vec<Value> = match latest.lock() {
            Ok(m) => order.iter().filter_map(|t| m.get(t)).map(|e| row(e, trunc)).collect(),
            Err(_) => Vec::new(),
        };
        let table = formatter::render(&format, DEFAULT, HEADERS, &rows)?;
        if tty {
            // docker's redraw: clear the screen, cursor home.
            out!("\x1b[2J\x1b[H{table}");
        } else {
            out!("{table}");
        }
        tokio::time::sleep(REFRESH).await;
    }
}

/// Streams the stats of `container` into `latest` until the stream ends; then (or on an error) its entry shows `--`.
async fn follow(c: Client, container: String, latest: Arc<Mutex<BTreeMap<String, Entry>>>) {
    let set = |e: Entry| {
        if let Ok(mut m) = latest.lock() {
            m.insert(container.clone(), e);
        }
    };
    let resp = match c.call(Method::GET, &stats_path(&container, true), empty(), false).await {
        Ok(r) => r,
        Err(_) => {
            set(Entry { container: container.clone(), id: container.clone(), invalid: true, ..Default::default() });
            return;
        }
    };
    let mut lines = tokio::io::BufReader::new(BodyReader::new(resp.into_body())).lines();
    let mut last: Option<Entry> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            let e = entry(&container, &v);
            last = Some(e.clone());
            set(e);
        }
    }
    // The stream ended (the container stopped): docker keeps the row with `--`.
    let mut e =
        last.unwrap_or_else(|| Entry { container: container.clone(), id: container.clone(), ..Default::default() });
    e.invalid = true;
    set(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300_000_000u64}, "system_cpu_usage": 4_000_000_000u64,
                          "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 2_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64,
                             "stats": {"inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "write", "value": 1_000_000},
                {"major": 8, "minor": 16, "op": "Read", "value": 4096},
                {"major": 8, "minor": 16, "op": "Total", "value": 9}
            ]},
            "pids_stats": {"current": 3}
        })
    }

    #[test]
    fn numbers_as_docker() {
        let v = sample();
        // (200M / 2000M) * 2 CPUs * 100.
        assert!((cpu_percent(&v) - 20.0).abs() < 1e-9);
        // Without online_cpus: the per-CPU entries count.
        let mut w = v.clone();
        w["cpu_stats"]["online_cpus"] = json!(0);
        w["cpu_stats"]["cpu_usage"]["percpu_usage"] = json!([1, 2, 3, 4]);
        assert!((cpu_percent(&w) - 40.0).abs() < 1e-9);
        // No system delta (the first streamed object): 0.
        w["precpu_stats"] = json!({});
        w["cpu_stats"]["system_cpu_usage"] = json!(0);
        assert_eq!(cpu_percent(&w), 0.0);
        // v2: usage minus inactive_file; v1: total_inactive_file wins.
        assert_eq!(memory_usage(&v["memory_stats"]), 8_388_608.0);
        let v1 = json!({"usage": 1000, "stats": {"total_inactive_file": 100, "inactive_file": 300, "cache": 500}});
        assert_eq!(memory_usage(&v1), 900.0);
        assert_eq!(memory_usage(&json!({"usage": 100, "stats": {"inactive_file": 300}})), 100.0);
        assert_eq!(memory_usage(&json!({})), 0.0);
        let e = entry("web", &v);
        assert_eq!((e.block_read, e.block_write), (8192.0, 1_000_000.0));
        assert_eq!((e.net_rx, e.net_tx), (2000.0, 500.0));
        assert_eq!(e.pids, 3);
        assert!((e.memory_percent - 8.0).abs() < 1e-9);
    }

    #[test]
    fn rows_as_docker() {
        let r = row(&entry("web", &sample()), true);
        assert_eq!(
            r,
            json!({
                "BlockIO": "8.19kB / 1MB", "CPUPerc": "20.00%", "Container": "web", "ID": "0123456789ab",
                "MemPerc": "8.00%", "MemUsage": "8MiB / 100MiB", "Name": "web", "NetIO": "2kB / 500B", "PIDs": "3"
            })
        );
        let out = formatter::render("", DEFAULT, HEADERS, std::slice::from_ref(&r)).expect("render");
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O      PIDS")
        );
        assert_eq!(
            lines.next(),
            Some("0123456789ab   web       20.00%    8MiB / 100MiB       8.00%     2kB / 500B   8.19kB / 1MB   3")
        );
        // A stopped container's zeros, and a failed one.
        let zeros = json!({"id": "abc", "name": "/x", "cpu_stats": {"cpu_usage": {"total_usage": 0}},
                           "memory_stats": {}, "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null}});
        let r = row(&entry("x", &zeros), true);
        assert_eq!(r["CPUPerc"], "0.00%");
        assert_eq!(r["MemUsage"], "0B / 0B");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "0");
        let bad = Entry { container: "x".into(), id: "abc".into(), invalid: true, ..Default::default() };
        let r = row(&bad, true);
        assert_eq!(
            (r["CPUPerc"].as_str(), r["MemUsage"].as_str(), r["Name"].as_str()),
            (Some("--"), Some("-- / --"), Some("--"))
        );
        assert_eq!(
            formatter::render("{{json .}}", DEFAULT, HEADERS, &[row(&entry("web", &sample()), false)]).expect("json"),
            "{\"BlockIO\":\"8.19kB / 1MB\",\"CPUPerc\":\"20.00%\",\"Container\":\"web\",\"ID\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"MemPerc\":\"8.00%\",\"MemUsage\":\"8MiB / 100MiB\",\"Name\":\"web\",\"NetIO\":\"2kB / 500B\",\"PIDs\":\"3\"}\n"
        );
    }
}
