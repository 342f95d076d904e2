//! Container lifecycle commands: `start`, `stop`, `restart`, `kill`, `rm`, `pause`/`unpause`, `wait`, `rename`,
//! `top`, `attach`, `port`, `commit`, `diff`, `update`.

use anyhow::{Context as _, Result, bail};
use clap::{ArgAction, Args};
use serde_json::Value;

use super::run::{Session, StartFailed, session};
use super::{container_path, for_each};
use crate::StatusError;
use crate::client::{Client, query};
use crate::formatter::natural_cmp;
use crate::stream;
use crate::table::TabWriter;

/// One or more containers.
#[derive(Args, Debug)]
pub struct Targets {
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `start`.
#[derive(Args, Debug)]
#[command(override_usage = "berth start [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `stop` and `restart`.
#[derive(Args, Debug)]
#[command(override_usage = "berth stop [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", visible_alias = "time", value_name = "SECONDS", allow_hyphen_values = true)]
    pub time: Option<i64>,
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Args, Debug)]
#[command(override_usage = "berth kill [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `rm`.
#[derive(Args, Debug)]
#[command(override_usage = "berth rm [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long = "link")]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `rename`.
#[derive(Args, Debug)]
#[command(override_usage = "berth rename CONTAINER NEW_NAME")]
pub struct RenameArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// NEW_NAME
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

/// `update`.
#[derive(Args, Debug)]
#[command(override_usage = "berth update [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct UpdateArgs {
    /// The limits `run` sets.
    #[command(flatten)]
    pub resources: super::run::ResourceOpts,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "INT")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "INT")]
    pub cpu_rt_runtime: Option<i64>,
    /// Kernel memory limit (deprecated: never applied, as on kernels since 5.4 and cgroup v2)
    #[arg(long = "kernel-memory", value_name = "BYTES")]
    pub kernel_memory: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "POLICY")]
    pub restart: Option<String>,
    /// CONTAINER...
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `top`.
#[derive(Args, Debug)]
#[command(override_usage = "berth top CONTAINER [ps OPTIONS]")]
pub struct TopArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// ps OPTIONS
    #[arg(value_name = "ps OPTIONS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `attach`.
#[derive(Args, Debug)]
#[command(override_usage = "berth attach [OPTIONS] CONTAINER")]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", value_name = "BOOL", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `port`.
#[derive(Args, Debug)]
#[command(override_usage = "berth port CONTAINER [PRIVATE_PORT[/PROTO]]")]
pub struct PortArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// What an attached session needs to know about a container.
struct Facts {
    id: String,
    tty: bool,
    open_stdin: bool,
    auto_remove: bool,
    status: String,
}

async fn facts(c: &Client, name: &str) -> Result<Facts> {
    let v: Value = c.get_json(&format!("{}/json", container_path(name))).await?;
    Ok(Facts {
        id: v["Id"].as_str().unwrap_or(name).to_string(),
        tty: v.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false),
        open_stdin: v.pointer("/Config/OpenStdin").and_then(Value::as_bool).unwrap_or(false),
        auto_remove: v.pointer("/HostConfig/AutoRemove").and_then(Value::as_bool).unwrap_or(false),
        status: v.pointer("/State/Status").and_then(Value::as_str).unwrap_or("").to_string(),
    })
}

/// `berth start`.
pub async fn start(c: &Client, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let f = facts(c, &a.containers[0]).await?;
        let stdin = a.interactive && f.open_stdin;
        if f.tty && stdin && !stream::stdin_is_terminal() {
            bail!("the input device is not a TTY");
        }
        let s = Session {
            id: f.id,
            tty: f.tty,
            stdin,
            stdout: true,
            stderr: true,
            start: true,
            condition: if f.auto_remove { "removed" } else { "next-exit" },
            sig_proxy: true,
            detach_keys: a.detach_keys.clone(),
        };
        return match session(c, s).await {
            Ok(code) => Ok(code),
            Err(e) => match e.downcast::<StartFailed>() {
                Ok(StartFailed(e)) => Err(e),
                Err(e) => Err(e),
            },
        };
    }
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for name in &a.containers {
        match c.post(&format!("{}/start", container_path(name))).await {
            Ok(_) => outln!("{name}"),
            Err(e) => {
                errors.push(format!("{e:#}"));
                failed.push(name.clone());
            }
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    errors.push(format!("Error: failed to start containers: {}", failed.join(", ")));
    Err(StatusError::exit(1, errors.join("\n")))
}

fn stop_query(a: &StopArgs) -> String {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    query(&q)
}

/// `berth stop`.
pub async fn stop(c: &Client, a: StopArgs) -> Result<i32> {
    let q = stop_query(&a);
    for_each(&a.containers, |name| {
        let path = format!("{}/stop{q}", container_path(&name));
        async move { c.post(&path).await.map(|_| ()) }
    })
    .await
}

/// `berth restart`.
pub async fn restart(c: &Client, a: StopArgs) -> Result<i32> {
    let q = stop_query(&a);
    for_each(&a.containers, |name| {
        let path = format!("{}/restart{q}", container_path(&name));
        async move { c.post(&path).await.map(|_| ()) }
    })
    .await
}

/// `berth kill`.
pub async fn kill(c: &Client, a: KillArgs) -> Result<i32> {
    let q = query(&a.signal.iter().map(|s| ("signal", s.clone())).collect::<Vec<_>>());
    for_each(&a.containers, |name| {
        let path = format!("{}/kill{q}", container_path(&name));
        async move { c.post(&path).await.map(|_| ()) }
    })
    .await
}

/// `berth rm`.
pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    if a.link {
        q.push(("link", "1".to_string()));
    }
    let q = query(&q);
    for_each(&a.containers, |name| {
        let path = format!("{}{q}", container_path(&name));
        async move { c.delete(&path).await.map(|_| ()) }
    })
    .await
}

/// `berth pause` / `berth unpause`.
pub async fn pause(c: &Client, a: Targets, pause: bool) -> Result<i32> {
    let verb = if pause { "pause" } else { "unpause" };
    for_each(&a.containers, |name| {
        let path = format!("{}/{verb}", container_path(&name));
        async move { c.post(&path).await.map(|_| ()) }
    })
    .await
}

/// `berth wait`: prints each container's exit code.
pub async fn wait(c: &Client, a: Targets) -> Result<i32> {
    let mut errors = Vec::new();
    for name in &a.containers {
        let r = async {
            let body = c.post(&format!("{}/wait", container_path(name))).await?;
            let v: Value = serde_json::from_slice(&body).context("decode the wait answer")?;
            anyhow::Ok(v["StatusCode"].as_i64().unwrap_or(0))
        }
        .await;
        match r {
            Ok(code) => outln!("{code}"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

/// `berth rename`.
pub async fn rename(c: &Client, a: RenameArgs) -> Result<i32> {
    let new = a.new_name.trim();
    if new.is_empty() || a.container.trim().is_empty() {
        bail!("Error: Neither old nor new names may be empty");
    }
    c.post(&format!("{}/rename{}", container_path(&a.container), query(&[("name", new.to_string())])))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\nError: failed to rename container named {}", a.container))?;
    Ok(0)
}

/// The body of `POST /containers/{id}/update`: the flags given, and only those.
fn update_body(a: &UpdateArgs) -> Result<Value> {
    let restart = a.restart.as_deref().map(super::opts::restart_policy).transpose()?;
    let host = berth_api::models::HostConfig {
        cpu_realtime_period: a.cpu_rt_period,
        cpu_realtime_runtime: a.cpu_rt_runtime,
        restart_policy: restart,
        ..a.resources.limits()?
    };
    let mut body = match serde_json::to_value(host)? {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    // Not in API v1.53's HostConfig; the daemon accepts it and applies nothing (as on kernels since 5.4).
    if let Some(k) = super::opts::bytes(&a.kernel_memory)? {
        body.insert("KernelMemory".into(), Value::from(k));
    }
    if body.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(Value::Object(body))
}

/// `berth update`: the same body for every container, as `docker update` (names printed as they succeed, then the
/// daemon's warnings; the errors at the end).
pub async fn update(c: &Client, a: UpdateArgs) -> Result<i32> {
    let body = update_body(&a)?;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for name in &a.containers {
        match c.post_json(&format!("{}/update", container_path(name)), &body).await {
            Ok(b) => {
                outln!("{name}");
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                warnings.extend(
                    v["Warnings"].as_array().into_iter().flatten().filter_map(|w| w.as_str()).map(String::from),
                );
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !warnings.is_empty() {
        outln!("{}", warnings.join("\n"));
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

/// `berth top`.
pub async fn top(c: &Client, a: TopArgs) -> Result<i32> {
    let q = if a.ps_args.is_empty() { String::new() } else { query(&[("ps_args", a.ps_args.join(" "))]) };
    let v: Value = c.get_json(&format!("{}/top{q}", container_path(&a.container))).await?;
    let mut tw = TabWriter::new(20, 3);
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .map(|t| t.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    tw.push(&titles.join("\t"));
    tw.push("\n");
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<String> =
            p.as_array().map(|r| r.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect()).unwrap_or_default();
        tw.push(&cells.join("\t"));
        tw.push("\n");
    }
    out!("{}", tw.finish());
    Ok(0)
}

/// `berth attach`.
pub async fn attach(c: &Client, a: AttachArgs) -> Result<i32> {
    let f = facts(c, &a.container).await?;
    match f.status.as_str() {
        "running" => {}
        "paused" => bail!("You cannot attach to a paused container, unpause it first"),
        "restarting" => bail!("You cannot attach to a restarting container, wait until it is running"),
        _ => bail!("You cannot attach to a stopped container, start it first"),
    }
    let stdin = !a.no_stdin && f.open_stdin;
    if f.tty && stdin && !stream::stdin_is_terminal() {
        bail!("the input device is not a TTY");
    }
    let s = Session {
        id: f.id,
        tty: f.tty,
        stdin,
        stdout: true,
        stderr: true,
        start: false,
        condition: "not-running",
        sig_proxy: a.sig_proxy,
        detach_keys: a.detach_keys.clone(),
    };
    session(c, s).await
}

/// Go's `net.JoinHostPort`: an IPv6 host in brackets.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// docker's `port` output for a container's `NetworkSettings.Ports`: every binding as `80/tcp -> 0.0.0.0:8080`,
/// or the host addresses of one private port; in docker's natural order.
fn port_lines(ports: &Value, wanted: Option<&str>, container: &str) -> Result<Vec<String>> {
    let bindings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|b| join_host_port(b["HostIp"].as_str().unwrap_or(""), b["HostPort"].as_str().unwrap_or("")))
            .collect()
    };
    let mut out = Vec::new();
    match wanted {
        Some(w) => {
            let (port, proto) = w.split_once('/').unwrap_or((w, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                bail!("Error: invalid port ({port}): strconv.ParseUint: parsing {port:?}: invalid syntax");
            }
            if port.parse::<u16>().is_err() {
                bail!("Error: invalid port ({port}): strconv.ParseUint: parsing {port:?}: value out of range");
            }
            out = bindings(&ports[format!("{port}/{proto}")]);
            if out.is_empty() {
                bail!("Error: No public port '{w}' published for {container}");
            }
        }
        None => {
            for (from, list) in ports.as_object().into_iter().flatten() {
                out.extend(bindings(list).into_iter().map(|b| format!("{from} -> {b}")));
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// `berth port`.
pub async fn port(c: &Client, a: PortArgs) -> Result<i32> {
    let v: Value = c.get_json(&format!("{}/json", container_path(&a.container))).await?;
    let lines = port_lines(&v["NetworkSettings"]["Ports"], a.port.as_deref(), &a.container)?;
    if !lines.is_empty() {
        outln!("{}", lines.join("\n"));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Update {
        #[command(flatten)]
        a: UpdateArgs,
    }

    #[test]
    fn update_sends_only_the_flags_given() {
        let a = |args: &[&str]| Update::parse_from(std::iter::once("update").chain(args.iter().copied())).a;
        let body = update_body(&a(&[
            "--cpus",
            "1.5",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpu-quota",
            "-1",
            "--restart",
            "on-failure:3",
            "--kernel-memory",
            "8m",
            "--cpu-rt-runtime",
            "950",
            "c1",
            "c2",
        ]))
        .expect("body");
        assert_eq!(
            body,
            json!({"NanoCpus": 1_500_000_000i64, "Memory": 64 << 20, "MemorySwap": -1, "CpuQuota": -1,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "KernelMemory": 8 << 20,
                   "CpuRealtimeRuntime": 950})
        );
        assert!(update_body(&a(&["c1"])).is_err(), "no flag");
    }

    #[test]
    fn ports_like_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9/tcp": [{"HostIp": "0.0.0.0", "HostPort": "10000"}],
            "443/tcp": null,
            "81/tcp": [],
        });
        assert_eq!(
            port_lines(&ports, None, "web").expect("all"),
            vec!["9/tcp -> 0.0.0.0:10000", "53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
        );
        assert_eq!(port_lines(&ports, Some("80"), "web").expect("80"), vec!["0.0.0.0:8080", "[::]:8080"]);
        assert_eq!(port_lines(&ports, Some("80/"), "web").expect("80/"), vec!["0.0.0.0:8080", "[::]:8080"]);
        assert_eq!(port_lines(&ports, Some("53/udp"), "web").expect("udp"), vec!["127.0.0.1:5353"]);
        let e = |p: &str| port_lines(&ports, Some(p), "web").expect_err(p).to_string();
        assert_eq!(e("53"), "Error: No public port '53' published for web");
        assert_eq!(e("443"), "Error: No public port '443' published for web");
        assert_eq!(e("81/tcp"), "Error: No public port '81/tcp' published for web");
        assert_eq!(e("abc"), "Error: invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax");
        assert_eq!(e("70000"), "Error: invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range");
        assert!(port_lines(&Value::Null, None, "web").expect("none").is_empty());
    }
}

/// `commit`.
#[derive(Args, Debug)]
#[command(override_usage = "berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author", value_name = "STRING")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message", value_name = "STRING")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value = "true", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub pause: bool,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth commit`: prints the new image's ID.
pub async fn commit(c: &Client, a: CommitArgs) -> Result<i32> {
    let mut q = vec![("container", a.container.clone())];
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        q.push(("repo", r.to_string()));
    }
    q.push(("comment", a.message.clone().unwrap_or_default()));
    q.push(("author", a.author.clone().unwrap_or_default()));
    q.push(("pause", if a.pause { "1" } else { "0" }.to_string()));
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let body = c.post_json(&format!("/commit{}", query(&q)), &Value::Null).await?;
    let v: Value = serde_json::from_slice(&body).context("reading the answer")?;
    out!("{}\n", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

/// `diff`.
#[derive(Args, Debug)]
#[command(override_usage = "berth diff CONTAINER")]
pub struct DiffArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth diff`: one line per change, `C`/`A`/`D` and the path.
pub async fn diff(c: &Client, a: DiffArgs) -> Result<i32> {
    let v: Value = c.get_json(&format!("{}/changes", container_path(&a.container))).await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        out!("{kind} {}\n", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}
