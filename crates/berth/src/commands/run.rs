//! `run` and `create`: docker's container options turned into a create request, the image-not-found path, and
//! the attached session (`attach` before `start`, the wait registered before `start`, streams pumped, exit code
//! from the wait) that `run`, `start -a` and `attach` share.

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::models::{
    ContainerCreateBody, ContainerCreateResponse, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig,
};
use clap::{ArgAction, Args};
use hyper::Method;
use serde_json::Value;

use super::opts::NetworkAttachment;
use super::{container_path, opts};
use crate::StatusError;
use crate::client::{ApiError, Client, empty, query, read_body};
use crate::stream;

/// The resource limits that `run`/`create` set and `update` changes.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceOpts {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "INT")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "INT", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
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
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "INT", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl ResourceOpts {
    /// The limits given, as the fields of a `HostConfig` (the others unset).
    pub fn limits(&self) -> Result<HostConfig> {
        Ok(HostConfig {
            memory: opts::bytes(&self.memory)?,
            memory_reservation: opts::bytes(&self.memory_reservation)?,
            memory_swap: opts::memory_swap(&self.memory_swap)?,
            nano_cpus: self.cpus.as_deref().map(opts::nano_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            blkio_weight: self.blkio_weight,
            pids_limit: self.pids_limit,
            ..Default::default()
        })
    }
}

/// The options `run` and `create` share.
#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private); empty: the daemon's default (private on cgroup v2, host on v1)
    #[arg(long = "cgroupns", value_name = "MODE", value_parser = ["", "host", "private"])]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "FILE")]
    pub cidfile: Option<String>,
    /// The resource limits `update` changes too.
    #[command(flatten)]
    pub resources: ResourceOpts,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "OPT")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "NAME")]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "PORT")]
    pub expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// IPC mode to use
    #[arg(long = "ipc", value_name = "MODE")]
    pub ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "N", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net", value_name = "NETWORK")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "IP")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6", value_name = "IP")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "CONTAINER[:ALIAS]", value_parser = opts::link_flag)]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip", value_name = "IP")]
    pub link_local_ip: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "N", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Join a pod (its network, ports, hostname); new:NAME creates the pod first, taking -p, --network, --hostname,
    /// --dns and --add-host
    #[arg(long = "pod", value_name = "POD")]
    pub pod: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid", value_name = "MODE")]
    pub pid: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", value_name = "POLICY", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long = "runtime", value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "SECONDS", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "OPT")]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "DIR[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long = "userns", value_name = "MODE")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts", value_name = "MODE")]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver", value_name = "DRIVER")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
}

/// `berth run`.
#[derive(Args, Debug)]
#[command(override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]", disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "BOOL", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", required = true, trailing_var_arg = true, num_args = 1..)]
    pub args: Vec<String>,
}

/// `berth create`.
#[derive(Args, Debug)]
#[command(override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]", disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", required = true, trailing_var_arg = true, num_args = 1..)]
    pub args: Vec<String>,
}

/// Which streams a foreground `run` attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

fn streams(o: &ContainerOpts, detach: bool) -> Result<Streams> {
    if detach {
        if !o.attach.is_empty() {
            bail!("Conflicting options: -a and -d");
        }
        return Ok(Streams { stdin: false, stdout: false, stderr: false });
    }
    if o.attach.is_empty() {
        return Ok(Streams { stdin: o.interactive, stdout: true, stderr: true });
    }
    let mut s = Streams { stdin: false, stdout: false, stderr: false };
    for a in &o.attach {
        match a.to_ascii_lowercase().as_str() {
            "stdin" => s.stdin = true,
            "stdout" => s.stdout = true,
            "stderr" => s.stderr = true,
            _ => {
                bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
            }
        }
    }
    Ok(s)
}

fn some_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn kv_map(list: &[String], what: &str) -> Result<Option<HashMap<String, String>>> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut m = HashMap::new();
    for l in list {
        let (k, v) = l.split_once('=').ok_or_else(|| anyhow!("invalid {what}: {l} (expected key=value)"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(Some(m))
}

/// docker's `applyContainerOptions`: the plain flags (`--network-alias`, `--link`, `--ip`, `--ip6`,
/// `--mac-address`, `--link-local-ip`) go to the first network, unless its long form says the same.
fn apply_container_options(n: &mut NetworkAttachment, o: &ContainerOpts) -> Result<()> {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let conflict =
        |what: &str, per: &str| anyhow!("conflicting options: cannot specify both {what} and per-network {per}");
    if !n.aliases.is_empty() && !o.network_alias.is_empty() {
        return Err(conflict("--network-alias", "alias"));
    }
    if !n.links.is_empty() && !o.link.is_empty() {
        return Err(conflict("--link", "links"));
    }
    if !n.ipv4.is_empty() && given(&o.ip) {
        return Err(conflict("--ip", "IPv4 address"));
    }
    if !n.ipv6.is_empty() && given(&o.ip6) {
        return Err(conflict("--ip6", "IPv6 address"));
    }
    if !n.mac.is_empty() && given(&o.mac_address) {
        return Err(conflict("--mac-address", "MAC address"));
    }
    if !n.link_local_ips.is_empty() && !o.link_local_ip.is_empty() {
        return Err(conflict("--link-local-ip", "link-local IP addresses"));
    }
    if !o.network_alias.is_empty() {
        n.aliases = o.network_alias.clone();
    }
    // On a user-defined network a link is an alias of the endpoint; on the default bridge a legacy link.
    if opts::is_user_defined_network(&n.target) && !o.link.is_empty() {
        n.links = o.link.clone();
    }
    for (dst, src) in [(&mut n.ipv4, &o.ip), (&mut n.ipv6, &o.ip6), (&mut n.mac, &o.mac_address)] {
        if let Some(v) = src.as_deref().filter(|v| !v.is_empty()) {
            *dst = v.to_string();
        }
    }
    if !o.link_local_ip.is_empty() {
        n.link_local_ips = o.link_local_ip.clone();
    }
    Ok(())
}

/// docker's `parseNetworkAttachmentOpt`: one network's endpoint settings.
fn endpoint(n: &NetworkAttachment) -> Result<EndpointSettings> {
    if n.target.trim().is_empty() {
        bail!("no name set for network");
    }
    if !opts::is_user_defined_network(&n.target) {
        if !n.aliases.is_empty() {
            bail!("network-scoped aliases are only supported for user-defined networks");
        }
        if !n.links.is_empty() {
            bail!("links are only supported for user-defined networks");
        }
    }
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let ipam = (!n.ipv4.is_empty() || !n.ipv6.is_empty() || !n.link_local_ips.is_empty()).then(|| EndpointIpamConfig {
        ipv4_address: text(&n.ipv4),
        ipv6_address: text(&n.ipv6),
        link_local_ips: some_vec(n.link_local_ips.clone()),
    });
    if !n.mac.is_empty() && !opts::valid_mac(n.mac.trim()) {
        bail!("{} is not a valid mac address", n.mac);
    }
    Ok(EndpointSettings {
        ipam_config: ipam,
        links: some_vec(n.links.clone()),
        mac_address: text(&n.mac),
        aliases: some_vec(n.aliases.clone()),
        driver_opts: (!n.driver_opts.is_empty()).then(|| n.driver_opts.clone()),
        gw_priority: (n.gw_priority != 0).then_some(n.gw_priority),
        ..Default::default()
    })
}

/// docker's `parseNetworkOpts`: the network mode (the first `--network`, else `default`) and the endpoints of
/// the create request, keyed by the name given (`default` without `--network`).
fn networking(o: &ContainerOpts) -> Result<(String, HashMap<String, EndpointSettings>)> {
    let nets = o
        .network
        .iter()
        .map(|v| {
            opts::network_attachment(v).map_err(|e| anyhow!("invalid argument \"{v}\" for \"--network\" flag: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mode = nets.first().map_or_else(|| "default".to_string(), |n| n.target.clone());
    let mut endpoints = HashMap::new();
    if nets.is_empty() {
        let mut n = NetworkAttachment { target: "default".into(), ..Default::default() };
        apply_container_options(&mut n, o)?;
        endpoints.insert("default".to_string(), endpoint(&n)?);
    }
    let count = nets.len();
    let (mut user_defined, mut other) = (false, false);
    for (i, mut n) in nets.into_iter().enumerate() {
        if opts::is_user_defined_network(&n.target) {
            user_defined = true;
        } else {
            other = true;
        }
        if i == 0 {
            apply_container_options(&mut n, o)?;
        }
        let ep = endpoint(&n)?;
        if endpoints.contains_key(&n.target) {
            bail!("network {} is specified multiple times", crate::template::go_quote(&n.target));
        }
        // A single network without settings sends no endpoint (the daemon makes one), as docker does.
        if i == 0 && count == 1 && ep == EndpointSettings::default() {
            continue;
        }
        endpoints.insert(n.target, ep);
    }
    if user_defined && other {
        bail!("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
    }
    Ok((mode, endpoints))
}

/// Builds the create request from docker's options (errors are docker's option errors).
fn config(o: &ContainerOpts, image: &str, cmd: &[String], detach: bool) -> Result<ContainerCreateBody> {
    let s = streams(o, detach)?;
    if o.rm && !matches!(o.restart.as_str(), "" | "no") {
        bail!("Conflicting options: --restart and --rm");
    }
    let env = opts::env_list(&o.env_file, &o.env)?;
    let labels = opts::labels(&o.label_file, &o.label)?;
    let (exposed, bindings) = opts::ports(&o.publish, &o.expose)?;
    let (network_mode, endpoints) = networking(o)?;
    let (binds, anonymous) = opts::volumes(&o.volume)?;
    let mounts = o.mount.iter().map(|m| opts::mount(m)).collect::<Result<Vec<_>>>()?;
    let ulimits = o.ulimit.iter().map(|u| opts::ulimit(u)).collect::<Result<Vec<_>>>()?;
    let mut tmpfs = HashMap::new();
    for t in &o.tmpfs {
        let (dir, options) = opts::tmpfs(t)?;
        tmpfs.insert(dir, options);
    }
    let (security_opt, unconfined_paths) =
        berth_api::security_opt::resolve(&o.security_opt, std::path::Path::new(".")).map_err(anyhow::Error::msg)?;
    let mut sysctls = HashMap::new();
    for s in &o.sysctl {
        let (k, v) = opts::sysctl(s)?;
        sysctls.insert(k, v);
    }
    let size = opts::bytes;
    let limits = o.resources.limits()?;
    // `--entrypoint ""` resets the image's entrypoint: docker sends [""] for that.
    let entrypoint = o.entrypoint.as_ref().map(|e| if e.is_empty() { vec![String::new()] } else { vec![e.clone()] });
    let restart = opts::restart_policy(&o.restart)?;
    let console = if o.tty { stream::terminal_size().map(|(h, w)| vec![h as usize, w as usize]) } else { None };
    let log_config = if o.log_driver.is_some() || !o.log_opt.is_empty() {
        Some(berth_api::models::HostConfigLogConfig {
            typ: o.log_driver.clone(),
            config: kv_map(&o.log_opt, "log-opt")?,
        })
    } else {
        None
    };
    let host = HostConfig {
        binds: some_vec(binds),
        mounts: some_vec(mounts),
        volumes_from: some_vec(o.volumes_from.clone()),
        volume_driver: o.volume_driver.clone(),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        publish_all_ports: o.publish_all.then_some(true),
        links: if opts::is_user_defined_network(&network_mode) { None } else { some_vec(o.link.clone()) },
        network_mode: Some(network_mode),
        auto_remove: o.rm.then_some(true),
        restart_policy: Some(restart),
        privileged: o.privileged.then_some(true),
        readonly_rootfs: o.read_only.then_some(true),
        cap_add: some_vec(o.cap_add.clone()),
        cap_drop: some_vec(o.cap_drop.clone()),
        security_opt: some_vec(security_opt),
        masked_paths: unconfined_paths.then(Vec::new),
        readonly_paths: unconfined_paths.then(Vec::new),
        device_cgroup_rules: some_vec(o.device_cgroup_rule.clone()),
        memory_swappiness: o.memory_swappiness,
        ulimits: some_vec(ulimits),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        shm_size: size(&o.shm_size)?,
        oom_score_adj: o.oom_score_adj,
        oom_kill_disable: o.oom_kill_disable.then_some(true),
        runtime: o.runtime.clone(),
        init: o.init.then_some(true),
        cgroup_parent: o.cgroup_parent.clone(),
        cgroupns_mode: match o.cgroupns.as_deref() {
            Some("host") => Some(berth_api::models::HostConfigCgroupnsModeEnum::HOST),
            Some("private") => Some(berth_api::models::HostConfigCgroupnsModeEnum::PRIVATE),
            _ => None,
        },
        ipc_mode: o.ipc.clone(),
        pid_mode: o.pid.clone(),
        uts_mode: o.uts.clone(),
        userns_mode: o.userns.clone(),
        group_add: some_vec(o.group_add.clone()),
        dns: some_vec(o.dns.clone()),
        dns_options: some_vec(o.dns_option.clone()),
        dns_search: some_vec(o.dns_search.clone()),
        extra_hosts: some_vec(o.add_host.clone()),
        annotations: kv_map(&o.annotation, "annotation")?,
        storage_opt: kv_map(&o.storage_opt, "storage-opt")?,
        log_config,
        console_size: console,
        devices: some_vec(o.device.iter().map(|d| device(d)).collect::<Result<Vec<_>>>()?),
        ..limits
    };
    Ok(ContainerCreateBody {
        hostname: o.hostname.clone(),
        domainname: o.domainname.clone(),
        user: o.user.clone(),
        attach_stdin: Some(s.stdin),
        attach_stdout: Some(s.stdout),
        attach_stderr: Some(s.stderr),
        exposed_ports: some_vec(exposed),
        tty: Some(o.tty),
        open_stdin: Some(o.interactive),
        stdin_once: Some(o.interactive && s.stdin),
        env: some_vec(env),
        cmd: some_vec(cmd.to_vec()),
        image: Some(image.to_string()),
        volumes: some_vec(anonymous),
        working_dir: o.workdir.clone(),
        entrypoint,
        labels: Some(labels),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        host_config: Some(host),
        networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
        ..Default::default()
    })
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
fn device(s: &str) -> Result<berth_api::models::DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.starts_with('/') => (*h, *c, "rwm"),
        [h, p] => (*h, *h, *p),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    Ok(berth_api::models::DeviceMapping {
        path_on_host: Some(host.to_string()),
        path_in_container: Some(container.to_string()),
        cgroup_permissions: Some(perms.to_string()),
    })
}

/// docker's `reportError`: `berth: <message>.` (+ a hint at `--help`) on stderr.
fn report(cmd: &str, msg: &str, with_help: bool) {
    let mut text = format!("{}.", msg.trim_end_matches('.'));
    if with_help {
        text.push_str(&format!("\nSee 'berth {cmd} --help'."));
    }
    eprintln!("berth: {text}");
}

/// docker's `runStartContainerErr`: 127 when the program is not there, 126 when it cannot be run, else 125.
fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `busybox` → `busybox:latest` (docker's familiar reference, for the "Unable to find image" line).
fn with_latest(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') { image.to_string() } else { format!("{image}:latest") }
}

/// Creates the container; when the image is not here, says so and asks the daemon to pull it (as docker does).
async fn create_container(
    c: &Client,
    body: &ContainerCreateBody,
    name: Option<&str>,
    cidfile: Option<&str>,
    pod: Option<&str>,
) -> Result<String> {
    if let Some(f) = cidfile
        && std::path::Path::new(f).exists()
    {
        bail!("container ID file found, make sure the other container isn't running or delete {f}");
    }
    let mut body = body.clone();
    let mut q: Vec<(&str, String)> = name.map(|n| vec![("name", n.to_string())]).unwrap_or_default();
    let mut new_pod = None;
    if let Some(p) = pod {
        let (join, made) = super::pod::for_container(c, p, &mut body).await?;
        q.push(("pod", join));
        new_pod = made;
    }
    let body = &body;
    let path = format!("/containers/create{}", query(&q));
    let image = body.image.clone().unwrap_or_default();
    let answer = match c.post_json(&path, body).await {
        Ok(b) => Ok(b),
        Err(e) if ApiError::is(&e, 404) && e.to_string().contains("No such image") => {
            eprintln!("Unable to find image '{}' locally", with_latest(&image));
            match pull(c, &image).await {
                Ok(()) => c.post_json(&path, body).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    // `--pod new:NAME` made a pod for this container: it goes when the container is not made.
    let answer = match (answer, new_pod) {
        (Ok(b), _) => b,
        (Err(e), Some(id)) => {
            super::pod::remove_new(c, &id).await;
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    let resp: ContainerCreateResponse = serde_json::from_slice(&answer).context("decode the create answer")?;
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = cidfile {
        std::fs::write(f, &resp.id).with_context(|| format!("failed to write the container ID to the file {f}"))?;
    }
    Ok(resp.id)
}

/// `POST /images/create?fromImage=` with the credentials of `config.json`; the daemon's error ends the pull.
async fn pull(c: &Client, image: &str) -> Result<()> {
    super::registry::pull_quietly(c, image).await
}

/// What an attached session does around the streams.
pub struct Session {
    /// The container's ID.
    pub id: String,
    /// The container has a TTY: the stream is raw.
    pub tty: bool,
    /// Forward this process's stdin.
    pub stdin: bool,
    /// Attach stdout / stderr.
    pub stdout: bool,
    pub stderr: bool,
    /// Start the container after attaching (run, start -a).
    pub start: bool,
    /// The wait condition (`next-exit`, `removed`, `not-running`).
    pub condition: &'static str,
    /// Proxy signals to the container (non-TTY only).
    pub sig_proxy: bool,
    /// `--detach-keys` (the daemon watches a TTY's input for them; default `ctrl-p,ctrl-q`).
    pub detach_keys: Option<String>,
}

/// The error of a failed start inside a [`Session`] (the caller decides how to report it).
#[derive(Debug)]
pub struct StartFailed(pub anyhow::Error);

impl std::fmt::Display for StartFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for StartFailed {}

/// Removes an auto-remove container whose start failed: the daemon removes such containers when they exit, but
/// one that never ran is left to the client.
/// Attaches, registers the wait, starts (if asked), pumps the streams and returns the container's exit code.
pub async fn session(c: &Client, s: Session) -> Result<i32> {
    let raw = if s.tty && s.stdin { stream::RawTerminal::enable() } else { None };
    let attach_any = s.stdin || s.stdout || s.stderr;
    let conn = if attach_any {
        let mut q = vec![("stream", "1".to_string())];
        if s.stdin {
            q.push(("stdin", "1".into()));
        }
        if s.stdout {
            q.push(("stdout", "1".into()));
        }
        if s.stderr {
            q.push(("stderr", "1".into()));
        }
        if let Some(k) = &s.detach_keys {
            q.push(("detachKeys", k.clone()));
        }
        Some(c.hijack(&format!("{}/attach{}", container_path(&s.id), query(&q)), None).await?)
    } else {
        None
    };
    let wait = c
        .call(
            Method::POST,
            &format!("{}/wait{}", container_path(&s.id), query(&[("condition", s.condition.to_string())])),
            empty(),
            false,
        )
        .await?;
    if s.start
        && let Err(e) = c.post(&format!("{}/start", container_path(&s.id))).await
    {
        drop(conn);
        drop(raw);
        return Err(StartFailed(e).into());
    }
    if s.tty {
        stream::monitor_size(c, format!("{}/resize", container_path(&s.id)));
    } else if s.sig_proxy {
        stream::proxy_signals(c, &s.id);
    }
    let pumped = match conn {
        Some(conn) => stream::pump(conn, s.tty, s.stdin).await,
        None => Ok(()),
    };
    drop(raw);
    pumped?;
    // On a terminal the daemon ends the stream at the detach keys and the container runs on: when no exit follows
    // the end of the stream within a second, this was a detach.
    let body = if s.tty && s.stdin {
        match tokio::time::timeout(std::time::Duration::from_secs(1), read_body(wait)).await {
            Ok(body) => body?,
            Err(_) => return Ok(0),
        }
    } else {
        read_body(wait).await?
    };
    let v: Value = serde_json::from_slice(&body).context("decode the wait answer")?;
    if let Some(msg) = v.pointer("/Error/Message").and_then(Value::as_str).filter(|m| !m.is_empty())
        && v["StatusCode"].as_i64().unwrap_or(0) == 0
    {
        bail!("{msg}");
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

/// `berth run`.
pub async fn run(c: &Client, a: RunArgs) -> Result<i32> {
    let (image, cmd) = a.args.split_first().map(|(i, r)| (i.clone(), r.to_vec())).unwrap_or_default();
    let body = match config(&a.opts, &image, &cmd, a.detach) {
        Ok(b) => b,
        Err(e) => {
            report("run", &format!("{e:#}"), true);
            return Err(StatusError::exit(125, ""));
        }
    };
    let s = streams(&a.opts, a.detach)?;
    if a.opts.tty && s.stdin && !stream::stdin_is_terminal() {
        return Err(StatusError::exit(1, "the input device is not a TTY"));
    }
    let id = match create_container(c, &body, a.opts.name.as_deref(), a.opts.cidfile.as_deref(), a.opts.pod.as_deref())
        .await
    {
        Ok(id) => id,
        Err(e) => {
            let msg = format!("{e:#}");
            report("run", &msg, true);
            return Err(StatusError::exit(start_error_code(&msg), ""));
        }
    };
    if a.detach {
        // A container that fails to start with --rm is removed by the daemon, as Docker's is.
        if let Err(e) = c.post(&format!("{}/start", container_path(&id))).await {
            let msg = format!("{e:#}");
            report("run", &msg, false);
            return Err(StatusError::exit(start_error_code(&msg), ""));
        }
        outln!("{id}");
        return Ok(0);
    }
    let sess = Session {
        id: id.clone(),
        tty: a.opts.tty,
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
        start: true,
        condition: if a.opts.rm { "removed" } else { "next-exit" },
        sig_proxy: a.sig_proxy,
        detach_keys: a.detach_keys.clone(),
    };
    match session(c, sess).await {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast::<StartFailed>() {
            Ok(StartFailed(e)) => {
                let msg = format!("{e:#}");
                report("run", &msg, false);
                Err(StatusError::exit(start_error_code(&msg), ""))
            }
            Err(e) => Err(e),
        },
    }
}

/// `berth create`.
pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let (image, cmd) = a.args.split_first().map(|(i, r)| (i.clone(), r.to_vec())).unwrap_or_default();
    let body = match config(&a.opts, &image, &cmd, false) {
        Ok(b) => b,
        Err(e) => {
            report("create", &format!("{e:#}"), true);
            return Err(StatusError::exit(125, ""));
        }
    };
    let id =
        create_container(c, &body, a.opts.name.as_deref(), a.opts.cidfile.as_deref(), a.opts.pod.as_deref()).await?;
    outln!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_docker_flags() {
        let o = ContainerOpts {
            env: vec!["A=1".into()],
            resources: ResourceOpts { memory: Some("512m".into()), cpus: Some("1.5".into()), ..Default::default() },
            rm: true,
            restart: "no".into(),
            tmpfs: vec!["/run:size=1m".into()],
            ulimit: vec!["nofile=10:20".into()],
            label: vec!["tier=web".into()],
            interactive: true,
            ..Default::default()
        };
        let b = config(&o, "busybox", &["sh".into()], false).expect("config");
        let h = b.host_config.as_ref().expect("host config");
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.auto_remove, Some(true));
        assert_eq!(h.network_mode.as_deref(), Some("default"));
        assert_eq!(b.attach_stdin, Some(true));
        assert_eq!(b.stdin_once, Some(true));
        assert_eq!(b.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(b.labels.as_ref().map(|l| l["tier"].clone()).as_deref(), Some("web"));
        let bad = ContainerOpts { rm: true, restart: "always".into(), ..Default::default() };
        assert!(config(&bad, "x", &[], false).is_err());
        let det = ContainerOpts { attach: vec!["stdout".into()], restart: "no".into(), ..Default::default() };
        assert!(config(&det, "x", &[], true).is_err());
    }

    fn endpoints_of(args: &[&str]) -> Result<Value> {
        let o = ContainerOpts {
            network: args.iter().filter_map(|a| a.strip_prefix("--network=")).map(str::to_string).collect(),
            network_alias: args.iter().filter_map(|a| a.strip_prefix("--network-alias=")).map(str::to_string).collect(),
            ip: args.iter().find_map(|a| a.strip_prefix("--ip=")).map(str::to_string),
            mac_address: args.iter().find_map(|a| a.strip_prefix("--mac-address=")).map(str::to_string),
            link: args.iter().filter_map(|a| a.strip_prefix("--link=")).map(str::to_string).collect(),
            restart: "no".into(),
            ..Default::default()
        };
        let b = config(&o, "busybox", &[], false)?;
        let h = b.host_config.unwrap_or_default();
        Ok(serde_json::json!({
            "mode": h.network_mode,
            "links": h.links,
            "endpoints": b.networking_config.and_then(|n| n.endpoints_config),
        }))
    }

    #[test]
    fn networks_like_the_docker_cli() {
        use serde_json::json;
        let ok = |args: &[&str]| endpoints_of(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let err = |args: &[&str]| endpoints_of(args).expect_err("an error").to_string();
        assert_eq!(ok(&[]), json!({"mode": "default", "links": null, "endpoints": {"default": {}}}));
        assert_eq!(ok(&["--network=foo"]), json!({"mode": "foo", "links": null, "endpoints": {}}));
        assert_eq!(
            ok(&["--network=foo", "--ip=10.1.2.3", "--network-alias=a", "--network-alias=b,c"])["endpoints"],
            json!({"foo": {"IPAMConfig": {"IPv4Address": "10.1.2.3"}, "Aliases": ["a", "b,c"]}})
        );
        assert_eq!(
            ok(&["--ip=10.1.2.3"])["endpoints"],
            json!({"default": {"IPAMConfig": {"IPv4Address": "10.1.2.3"}}})
        );
        assert_eq!(
            ok(&["--network=foo", "--network=bar", "--network-alias=a"])["endpoints"],
            json!({"foo": {"Aliases": ["a"]}, "bar": {}})
        );
        assert_eq!(
            ok(&["--network=name=foo,alias=A,ip=1.2.3.4", "--network=bar"]),
            json!({"mode": "foo", "links": null,
                   "endpoints": {"foo": {"IPAMConfig": {"IPv4Address": "1.2.3.4"}, "Aliases": ["a"]}, "bar": {}}})
        );
        assert_eq!(ok(&["--link=db:db"]), json!({"mode": "default", "links": ["db:db"], "endpoints": {"default": {}}}));
        assert_eq!(
            ok(&["--network=foo", "--link=db:db"]),
            json!({"mode": "foo", "links": null, "endpoints": {"foo": {"Links": ["db:db"]}}})
        );
        assert_eq!(
            ok(&["--mac-address=92:d0:c6:0a:29:33"])["endpoints"],
            json!({"default": {"MacAddress": "92:d0:c6:0a:29:33"}})
        );
        assert_eq!(ok(&["--network=container:x"])["endpoints"], json!({}));
        assert_eq!(ok(&["--network=host", "--network=bridge"])["endpoints"], json!({"host": {}, "bridge": {}}));
        assert_eq!(err(&["--mac-address=zz"]), "zz is not a valid mac address");
        assert_eq!(err(&["--network-alias=x"]), "network-scoped aliases are only supported for user-defined networks");
        assert_eq!(
            err(&["--network=bridge", "--network-alias=x"]),
            "network-scoped aliases are only supported for user-defined networks"
        );
        assert_eq!(
            err(&["--network=foo", "--network=host"]),
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
        );
        assert_eq!(err(&["--network=foo", "--network=foo"]), "network \"foo\" is specified multiple times");
        assert_eq!(
            err(&["--network=name=foo,alias=a", "--network-alias=b"]),
            "conflicting options: cannot specify both --network-alias and per-network alias"
        );
        assert_eq!(err(&["--network="]), "no name set for network");
        assert_eq!(
            err(&["--network=name=foo,bogus=1"]),
            "invalid argument \"name=foo,bogus=1\" for \"--network\" flag: invalid field key bogus"
        );
    }

    #[test]
    fn exit_codes_like_docker() {
        assert_eq!(start_error_code("exec: \"nope\": executable file not found in $PATH"), 127);
        assert_eq!(start_error_code("open /x: permission denied"), 126);
        assert_eq!(start_error_code("No such image: x"), 125);
        assert_eq!(with_latest("busybox"), "busybox:latest");
        assert_eq!(with_latest("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(with_latest("a:v1"), "a:v1");
    }
}
