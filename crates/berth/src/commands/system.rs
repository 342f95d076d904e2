//! `version`, `info`, `system df`.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::StatusError;
use crate::client::Client;
use crate::formatter::{self, Headers};
use crate::table::align;
use crate::template::print_value;
use crate::units::{bytes_size, human_size4};

/// `berth version`.
#[derive(Args, Debug)]
#[command(override_usage = "berth version [OPTIONS]")]
pub struct VersionArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
}

/// `berth info`.
#[derive(Args, Debug)]
#[command(override_usage = "berth info [OPTIONS]")]
pub struct InfoArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
}

/// `berth system df`.
#[derive(Args, Debug)]
#[command(override_usage = "berth system df [OPTIONS]")]
pub struct DfArgs {
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn client_info(c: &Client) -> Value {
    let api = if c.api_version().is_empty() { berth_api::API_VERSION.to_string() } else { c.api_version() };
    json!({
        "Platform": {"Name": "Berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": berth_api::API_VERSION.to_string(),
        "GitCommit": "",
        "GoVersion": "Rust",
        "Os": "linux",
        "Arch": arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

/// Renders a `--format` template over `data` (`json` for the whole object).
fn render_one(format: &str, data: &Value) -> Result<String> {
    let text = if format == "json" { "{{json .}}" } else { format };
    let mut out = formatter::parse(text)?.execute(data)?;
    out.push('\n');
    Ok(out)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => print_value(other),
    }
}

/// `berth version`: the client's part always, the daemon's when it answers.
pub async fn version(c: &Client, reachable: Result<()>, a: VersionArgs) -> Result<i32> {
    let client = client_info(c);
    let server: Result<Value> = match reachable {
        Ok(()) => c.get_json("/version").await,
        Err(e) => Err(e),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        out!("{}", render_one(f, &data)?);
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(e),
        };
    }
    let mut t = String::new();
    t.push_str("Client: Berth\n");
    for (k, v) in [
        ("Version", s(&client["Version"])),
        ("API version", s(&client["ApiVersion"])),
        ("Rust version", env!("CARGO_PKG_RUST_VERSION").to_string()),
        ("Git commit", "-".to_string()),
        ("OS/Arch", format!("linux/{}", arch())),
        ("Context", "default".to_string()),
    ] {
        t.push_str(&format!(" {k}:\t{v}\n"));
    }
    let out_err = match &server {
        Ok(sv) => {
            let platform = sv.pointer("/Platform/Name").and_then(Value::as_str).unwrap_or("");
            t.push_str(&format!("\nServer:{}{platform}\n", if platform.is_empty() { "" } else { " " }));
            let components = sv["Components"].as_array().cloned().unwrap_or_default();
            for comp in &components {
                let d = &comp["Details"];
                t.push_str(&format!(" {}:\n", s(&comp["Name"])));
                if comp["Name"] == "Engine" {
                    t.push_str(&format!("  Version:\t{}\n", s(&comp["Version"])));
                    t.push_str(&format!(
                        "  API version:\t{} (minimum version {})\n",
                        s(&d["ApiVersion"]),
                        s(&d["MinAPIVersion"])
                    ));
                    for (label, key) in
                        [("Go version", "GoVersion"), ("Git commit", "GitCommit"), ("Built", "BuildTime")]
                    {
                        t.push_str(&format!("  {label}:\t{}\n", s(&d[key])));
                    }
                    t.push_str(&format!("  OS/Arch:\t{}/{}\n", s(&d["Os"]), s(&d["Arch"])));
                    t.push_str(&format!("  Experimental:\t{}\n", s(&d["Experimental"])));
                } else {
                    t.push_str(&format!("  Version:\t{}\n", s(&comp["Version"])));
                    if let Some(m) = d.as_object() {
                        for (k, v) in m {
                            t.push_str(&format!("  {k}:\t{}\n", s(v)));
                        }
                    }
                }
            }
            None
        }
        Err(e) => Some(format!("{e:#}")),
    };
    out!("{}", align(&t, 20, 1));
    match out_err {
        None => Ok(0),
        Some(e) => Err(StatusError::exit(1, e)),
    }
}

/// `berth ui`: the dashboard's address and a fresh one-time login link (from the daemon's Unix socket,
/// `POST /berth/ui/token`); opens nothing.
pub async fn ui(c: &Client) -> Result<i32> {
    let answer = match c.post("/berth/ui/token").await {
        Ok(b) => b,
        Err(e) if crate::client::ApiError::is(&e, 404) => {
            return Err(StatusError::exit(
                1,
                "The dashboard is off: start berthd with --ui 127.0.0.1:9090 (or \"ui\": \"127.0.0.1:9090\" in its \
                 daemon.json)",
            ));
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&answer)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let secs = v.get("ExpiresInSeconds").and_then(Value::as_u64).unwrap_or(0);
    println!("Berth dashboard: {}", text("Url"));
    println!("Log in within {} minutes with this link (it works once):", secs.div_ceil(60));
    println!("{}", text("Login"));
    Ok(0)
}

/// `berth info`.
pub async fn info(c: &Client, a: InfoArgs) -> Result<i32> {
    let mut info: Value = c.get_json("/info").await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        info["ClientInfo"] = json!({"Debug": false, "Context": "default", "Plugins": [], "Warnings": null, "Version": env!("CARGO_PKG_VERSION")});
        out!("{}", render_one(f, &info)?);
        return Ok(0);
    }
    let mut o = String::new();
    o.push_str(&format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    ));
    let line =
        |o: &mut String, indent: usize, k: &str, v: String| o.push_str(&format!("{}{k}: {v}\n", " ".repeat(indent)));
    let heading = |o: &mut String, indent: usize, k: &str| o.push_str(&format!("{}{k}:\n", " ".repeat(indent)));
    line(&mut o, 1, "Containers", s(&info["Containers"]));
    line(&mut o, 2, "Running", s(&info["ContainersRunning"]));
    line(&mut o, 2, "Paused", s(&info["ContainersPaused"]));
    line(&mut o, 2, "Stopped", s(&info["ContainersStopped"]));
    line(&mut o, 1, "Images", s(&info["Images"]));
    line(&mut o, 1, "Server Version", s(&info["ServerVersion"]));
    line(&mut o, 1, "Storage Driver", s(&info["Driver"]));
    for pair in info["DriverStatus"].as_array().into_iter().flatten() {
        if let Some([k, v]) = pair.as_array().map(Vec::as_slice) {
            line(&mut o, 2, &s(k), s(v));
        }
    }
    line(&mut o, 1, "Logging Driver", s(&info["LoggingDriver"]));
    line(&mut o, 1, "Cgroup Driver", s(&info["CgroupDriver"]));
    line(&mut o, 1, "Cgroup Version", s(&info["CgroupVersion"]));
    heading(&mut o, 1, "Plugins");
    for kind in ["Volume", "Network", "Log"] {
        let names: Vec<String> = info["Plugins"][kind].as_array().into_iter().flatten().map(s).collect();
        line(&mut o, 2, kind, names.join(" "));
    }
    line(&mut o, 1, "Swarm", s(&info.pointer("/Swarm/LocalNodeState").cloned().unwrap_or(Value::Null)));
    let mut runtimes: Vec<String> =
        info["Runtimes"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    runtimes.sort();
    line(&mut o, 1, "Runtimes", runtimes.join(" "));
    line(&mut o, 1, "Default Runtime", s(&info["DefaultRuntime"]));
    line(&mut o, 1, "Init Binary", s(&info["InitBinary"]));
    line(&mut o, 1, "containerd version", s(&info.pointer("/ContainerdCommit/ID").cloned().unwrap_or(Value::Null)));
    line(&mut o, 1, "runc version", s(&info.pointer("/RuncCommit/ID").cloned().unwrap_or(Value::Null)));
    line(&mut o, 1, "init version", s(&info.pointer("/InitCommit/ID").cloned().unwrap_or(Value::Null)));
    let opts = info["SecurityOptions"].as_array().cloned().unwrap_or_default();
    if !opts.is_empty() {
        heading(&mut o, 1, "Security Options");
        for opt in &opts {
            let text = s(opt);
            let mut parts = text.split(',');
            if let Some(name) = parts.next() {
                o.push_str(&format!("  {}\n", name.trim_start_matches("name=")));
            }
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let title = k.get(..1).map(|f| f.to_uppercase() + &k[1..]).unwrap_or_default();
                    line(&mut o, 3, &title, v.to_string());
                }
            }
        }
    }
    line(&mut o, 1, "Kernel Version", s(&info["KernelVersion"]));
    line(&mut o, 1, "Operating System", s(&info["OperatingSystem"]));
    line(&mut o, 1, "OSType", s(&info["OSType"]));
    line(&mut o, 1, "Architecture", s(&info["Architecture"]));
    line(&mut o, 1, "CPUs", s(&info["NCPU"]));
    line(&mut o, 1, "Total Memory", bytes_size(info["MemTotal"].as_f64().unwrap_or(0.0)));
    line(&mut o, 1, "Name", s(&info["Name"]));
    if !s(&info["ID"]).is_empty() {
        line(&mut o, 1, "ID", s(&info["ID"]));
    }
    line(&mut o, 1, "Docker Root Dir", s(&info["DockerRootDir"]));
    line(&mut o, 1, "Debug Mode", s(&info["Debug"]));
    line(&mut o, 1, "Experimental", s(&info["ExperimentalBuild"]));
    heading(&mut o, 1, "Insecure Registries");
    for r in info.pointer("/RegistryConfig/InsecureRegistryCIDRs").and_then(Value::as_array).into_iter().flatten() {
        o.push_str(&format!("  {}\n", s(r)));
    }
    line(&mut o, 1, "Live Restore Enabled", s(&info["LiveRestoreEnabled"]));
    outln!("{o}");
    for w in info["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", s(w));
    }
    Ok(0)
}

const DF_HEADERS: Headers = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];
const DF_DEFAULT: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

fn reclaimable(r: f64, total: f64) -> String {
    if total > 0.0 { format!("{} ({}%)", human_size4(r), (r * 100.0 / total) as i64) } else { human_size4(r) }
}

/// `berth system df`.
pub async fn df(c: &Client, a: DfArgs) -> Result<i32> {
    let v: Value = c.get_json("/system/df").await?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let img_size = v["LayersSize"].as_f64().unwrap_or(0.0);
    let active_images = images.iter().filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0).count();
    // docker: what images in use hold (their own size minus what they share) is not reclaimable; unknown shares count as nothing.
    let img_used: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) != 0)
        // `Size` (API 1.44 dropped `VirtualSize`, which was the same).
        .filter_map(|i| match (i["Size"].as_f64().or_else(|| i["VirtualSize"].as_f64()), i["SharedSize"].as_f64()) {
            (Some(v), Some(sh)) if v >= 0.0 && sh >= 0.0 => Some(v - sh),
            _ => None,
        })
        .sum();
    let img_reclaim = img_size - img_used;
    let running = |c: &Value| matches!(c["State"].as_str(), Some("running") | Some("paused") | Some("restarting"));
    let ctr_size: f64 = containers.iter().filter_map(|c| c["SizeRw"].as_f64()).sum();
    let ctr_reclaim: f64 = containers.iter().filter(|c| !running(c)).filter_map(|c| c["SizeRw"].as_f64()).sum();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let vol_bytes = |x: &Value| x["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0);
    let in_use = |x: &Value| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    let vol_size: f64 = volumes.iter().map(vol_bytes).sum();
    let vol_active = volumes.iter().filter(|x| in_use(x)).count();
    let vol_reclaim: f64 = volumes.iter().filter(|x| !in_use(x)).map(vol_bytes).sum();
    // docker: the build cache's size counts entries that are not shared; what is not in use is reclaimable.
    let cache = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let unshared = |x: &&Value| !x["Shared"].as_bool().unwrap_or(false);
    let cache_size: f64 = cache.iter().filter(unshared).filter_map(|x| x["Size"].as_f64()).sum();
    let cache_active = cache.iter().filter(|x| x["InUse"].as_bool().unwrap_or(false)).count();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active_images.to_string(), "Size": human_size4(img_size), "Reclaimable": reclaimable(img_reclaim, img_size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": containers.iter().filter(|c| running(c)).count().to_string(), "Size": human_size4(ctr_size), "Reclaimable": reclaimable(ctr_reclaim, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": vol_active.to_string(), "Size": human_size4(vol_size), "Reclaimable": reclaimable(vol_reclaim, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": cache_active.to_string(), "Size": human_size4(cache_size), "Reclaimable": human_size4(cache_size)}),
    ];
    let _ = a.verbose;
    out!("{}", formatter::render(a.format.as_deref().unwrap_or(""), DF_DEFAULT, DF_HEADERS, &rows)?);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER", value_parser = crate::commands::opts::filter_flag)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER", value_parser = crate::commands::opts::filter_flag)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// POSTs a prune and prints what went, as docker does; returns the bytes reclaimed.
async fn prune_call(c: &Client, path: &str, filters: &[String], key: &str, title: &str) -> Result<u64> {
    let mut q = Vec::new();
    if let Some(f) = crate::commands::opts::filters(filters)? {
        q.push(("filters", f));
    }
    let answer = c.post(&format!("{path}{}", crate::client::query(&q))).await?;
    let v: Value = serde_json::from_slice(&answer).map_err(|e| anyhow::anyhow!("decode the answer: {e}"))?;
    let items: Vec<String> = v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    Value::Object(o) => {
                        o.iter().map(|(k, v)| format!("{}: {}", k.to_lowercase(), v.as_str().unwrap_or(""))).collect()
                    }
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    if !items.is_empty() {
        println!("{title}");
        for i in items {
            println!("{i}");
        }
        println!();
    }
    Ok(v["SpaceReclaimed"].as_u64().unwrap_or(0))
}

fn reclaimed(n: u64) {
    println!("Total reclaimed space: {}", crate::units::human_size(n as f64));
}

pub async fn container_prune(c: &Client, a: ContainerPruneArgs) -> Result<i32> {
    if !a.force
        && !crate::commands::volume::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(0);
    }
    reclaimed(prune_call(c, "/containers/prune", &a.filter, "ContainersDeleted", "Deleted Containers:").await?);
    Ok(0)
}

pub async fn image_prune(c: &Client, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !a.force && !crate::commands::volume::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("dangling=false".into());
    }
    reclaimed(prune_call(c, "/images/prune", &filters, "ImagesDeleted", "Deleted Images:").await?);
    Ok(0)
}

/// `system prune`: stopped containers, unused networks, dangling (or, with `-a`, unused) images, the build cache,
/// and with `--volumes` anonymous volumes.
pub async fn system_prune(c: &Client, a: SystemPruneArgs) -> Result<i32> {
    if !a.force {
        let mut what = vec!["all stopped containers", "all networks not used by at least one container"];
        if a.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        what.push(if a.all { "all build cache" } else { "unused build cache" });
        let list: String = what.iter().map(|w| format!("  - {w}\n")).collect();
        if !crate::commands::volume::confirm(&format!(
            "WARNING! This will remove:\n{list}\nAre you sure you want to continue?"
        )) {
            return Ok(0);
        }
    }
    let mut total = prune_call(c, "/containers/prune", &[], "ContainersDeleted", "Deleted Containers:").await?;
    total += prune_call(c, "/networks/prune", &[], "NetworksDeleted", "Deleted Networks:").await?;
    if a.volumes {
        total += prune_call(c, "/volumes/prune", &[], "VolumesDeleted", "Deleted Volumes:").await?;
    }
    let images: Vec<String> = if a.all { vec!["dangling=false".into()] } else { Vec::new() };
    total += prune_call(c, "/images/prune", &images, "ImagesDeleted", "Deleted Images:").await?;
    let all = if a.all { "?all=1" } else { "" };
    total += prune_call(c, &format!("/build/prune{all}"), &[], "CachesDeleted", "Deleted build cache objects:").await?;
    reclaimed(total);
    Ok(0)
}

/// `system dial-stdio`: copies stdin to a connection to the daemon and the daemon's answers to stdout. The end of
/// stdin half-closes the connection (the daemon's answers still come); the end of the daemon's side ends the relay at
/// once, as docker's does (a client's stdin may never end: a hijacked attach keeps it open). What an `ssh://`
/// client runs on this host.
pub async fn dial_stdio(c: &Client) -> Result<i32> {
    use tokio::io::AsyncWriteExt;
    let conn = c.dial().await?;
    let (mut from_daemon, mut to_daemon) = tokio::io::split(conn);
    let upstream = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut to_daemon).await?;
        to_daemon.shutdown().await
    };
    let downstream = async {
        crate::stream::copy_raw(&mut from_daemon, &mut crate::stream::StdOutput::new())
            .await
            .map_err(|e| e.downcast::<std::io::Error>().unwrap_or_else(std::io::Error::other))
    };
    tokio::pin!(upstream, downstream);
    let gone =
        |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset);
    let result = tokio::select! {
        r = &mut upstream => match r {
            Ok(()) => downstream.await,
            Err(e) => Err(e),
        },
        r = &mut downstream => r,
    };
    match result {
        Ok(()) => Ok(0),
        // The other side went away mid-stream (the ssh session ended): nothing more to relay.
        Err(e) if gone(&e) => Ok(0),
        Err(e) => Err(anyhow::anyhow!("dial-stdio: {e}")),
    }
}
