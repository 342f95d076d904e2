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
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "INT")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "INT", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "INT")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "INT")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "INT")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated: never applied, as on kernels since 5.4 and cgroup v2)
    #[arg(long = "kernel-memory", value_name = "BYTES")]
    pub kernel_memory: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "INT", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
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

/// `berth update`: the same body for every container, as `docker update` (names printed as they succeed, then the
/// daemon's warnings; the errors at the end).
pub async fn update(c: &Client, a: UpdateArgs) -> Result<i32> {
    let size = super::opts::bytes;
    let memory_swap = super::opts::memory_swap(&a.memory_swap)?;
    let restart = a.restart.as_deref().map(super::opts::restart_policy).transpose()?;
    let mut body = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.to_string(), v);
        }
    };
    put("BlkioWeight", a.blkio_weight.map(Value::from));
    put("CpuPeriod", a.cpu_period.map(Value::from));
    put("CpuQuota", a.cpu_quota.map(Value::from));
    put("CpuRealtimePeriod", a.cpu_rt_period.map(Value::from));
    put("CpuRealtimeRuntime", a.cpu_rt_runtime.map(Value::from));
    put("CpuShares", a.cpu_shares.map(Value::from));
    put("NanoCpus", a.cpus.as_deref().map(super::opts::nano_cpus).transpose()?.map(Value::from));
    put("CpusetCpus", a.cpuset_cpus.clone().map(Value::from));
    put("CpusetMems", a.cpuset_mems.clone().map(Value::from));
    put("KernelMemory", size(&a.kernel_memory)?.map(Value::from));
    put("Memory", size(&a.memory)?.map(Value::from));
    put("MemoryReservation", size(&a.memory_reservation)?.map(Value::from));
    put("MemorySwap", memory_swap.map(Value::from));
    put("PidsLimit", a.pids_limit.map(Value::from));
    put("RestartPolicy", restart.map(|r| serde_json::to_value(r).unwrap_or(Value::Null)));
    if body.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    let body = Value::Object(body);
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
    use serde_json::json;

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
