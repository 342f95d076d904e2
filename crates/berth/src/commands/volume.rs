//! `volume create`, `volume ls`, `volume inspect`, `volume rm`, `volume prune`.

use std::collections::HashMap;
use std::io::BufRead;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::{Value, json};

use super::{inspect, opts};
use crate::StatusError;
use crate::client::{Client, encode_path, query};
use crate::formatter::{self, Headers};
use crate::units::human_size;

/// `berth volume create`.
#[derive(Args, Debug)]
#[command(override_usage = "berth volume create [OPTIONS] [VOLUME]")]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", value_name = "STRING", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "LIST")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "MAP")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "STRING", hide = true)]
    pub name_flag: Option<String>,
    /// VOLUME
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

/// `berth volume ls`.
#[derive(Args, Debug)]
#[command(override_usage = "berth volume ls [OPTIONS]", visible_alias = "list")]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `berth volume inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth volume inspect [OPTIONS] VOLUME [VOLUME...]")]
pub struct InspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// VOLUME...
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

/// `berth volume rm`.
#[derive(Args, Debug)]
#[command(override_usage = "berth volume rm [OPTIONS] VOLUME [VOLUME...]", visible_alias = "remove")]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// VOLUME...
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

/// `berth volume prune`.
#[derive(Args, Debug)]
#[command(override_usage = "berth volume prune [OPTIONS]")]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

fn volume_path(name: &str) -> String {
    format!("/volumes/{}", encode_path(name))
}

/// `key=value` flags as a map (`key` alone: an empty value).
fn kv_map(list: &[String]) -> HashMap<String, String> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let name = match (&a.name, &a.name_flag) {
        (Some(n), Some(f)) if n != f => {
            return Err(StatusError::exit(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
                    .to_string(),
            ));
        }
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
    });
    let answer = c.post_json("/volumes/create", &body).await?;
    let v: Value = serde_json::from_slice(&answer)?;
    outln!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

const HEADERS: Headers = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("CreatedAt", "CREATED"),
];

const DEFAULT: &str = "table {{.Driver}}\t{{.Name}}";

/// One row of `volume ls`, with docker's fields.
fn row(v: &Value) -> Value {
    let labels = v["Labels"].as_object().cloned().unwrap_or_default();
    let mut list: Vec<String> = labels.iter().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or(""))).collect();
    list.sort();
    json!({
        "Driver": v["Driver"],
        "Name": v["Name"],
        "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"],
        "Labels": list.join(","),
        "Label": labels,
        "Links": "N/A",
        "Size": "N/A",
        "CreatedAt": v["CreatedAt"],
    })
}

pub async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let list: Value = c.get_json(&format!("/volumes{}", query(&q))).await?;
    let vols = list["Volumes"].as_array().cloned().unwrap_or_default();
    if a.quiet {
        for v in &vols {
            outln!("{}", v["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = vols.iter().map(row).collect();
    out!("{}", formatter::render(a.format.as_deref().unwrap_or(""), DEFAULT, HEADERS, &rows)?);
    Ok(0)
}

pub async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match c.get_json::<Value>(&volume_path(name)).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !found.is_empty() || a.format.as_deref().is_none_or(str::is_empty) {
        inspect::print(&found, a.format.as_deref())?;
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let q = if a.force { "?force=1" } else { "" };
    super::for_each(&a.names, |name| {
        let path = format!("{}{q}", volume_path(&name));
        async move { c.delete(&path).await.map(|_| ()) }
    })
    .await
}

/// Asks docker's question on stderr and reads the answer from stdin.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
        };
        if !confirm(warning) {
            return Ok(0);
        }
    }
    let mut q = Vec::new();
    if let Some(f) = opts::filters(&filters)? {
        q.push(("filters", f));
    }
    let answer = c.post(&format!("/volumes/prune{}", query(&q))).await?;
    let v: Value = serde_json::from_slice(&answer).map_err(|e| anyhow!("decode the answer: {e}"))?;
    let deleted: Vec<&str> =
        v["VolumesDeleted"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if !deleted.is_empty() {
        outln!("Deleted Volumes:");
        for d in deleted {
            outln!("{d}");
        }
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0)));
    Ok(0)
}
