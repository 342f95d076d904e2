//! The checks Docker makes on a create request before anything is written (moby's `verifyContainerSettings`,
//! `verifyPlatformContainerResources`, `parseSecurityOpt`, and runc's sysctl validation, with their messages), and
//! the security options parsed for the spec. [`check`] runs at create; [`security_opts`] again at start, where the
//! options are known to be valid.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::error::Error;
use berth_api::models::HostConfig;
use berth_runtime::process::DEFAULT_CAPS;

/// Docker's smallest memory limit (and reservation): 6 MiB.
const MIN_MEMORY: i64 = 6 << 20;

/// The seccomp choice of `--security-opt seccomp=...`.
#[derive(Debug, Clone, PartialEq)]
pub enum Seccomp {
    /// Docker's default profile (no option, `seccomp=builtin`).
    Default,
    /// No filter (`seccomp=unconfined`, or a profile with neither a default action nor syscalls, as moby).
    Unconfined,
    /// The JSON of a user's profile (the docker CLI sends the file's content, not its name).
    Profile(String),
}

/// A container's parsed `SecurityOpt`.
#[derive(Debug, Clone)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
}

/// Parses `SecurityOpt` as moby's `parseSecurityOpt` does (`key=value`, or the deprecated `key:value`), refusing
/// what Berth cannot honour: AppArmor profiles and SELinux labels (only `unconfined` / `disable`, which ask for
/// nothing).
pub fn security_opts(opts: &[String]) -> Result<SecurityOpts, Error> {
    let mut out = SecurityOpts { no_new_privileges: false, seccomp: Seccomp::Default };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // label=disable: no labelling, which is what Berth does.
        }
        let split = if opt.contains('=') { opt.split_once('=') } else { opt.split_once(':') };
        let Some((key, value)) = split else {
            return Err(Error::InvalidArgument(format!("invalid --security-opt 1: {opt:?}")));
        };
        match key {
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => Seccomp::Unconfined,
                    "" | "builtin" => Seccomp::Default,
                    json => Seccomp::Profile(json.to_string()),
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges = parse_bool(value)
                    .ok_or_else(|| Error::InvalidArgument(format!("invalid --security-opt 2: {opt:?}")))?;
            }
            "apparmor" if value == "unconfined" => {}
            "apparmor" => return Err(lsm_refusal(opt, "apparmor", "AppArmor profiles")),
            "label" if value == "disable" => {}
            "label" => return Err(lsm_refusal(opt, "selinux", "SELinux labels")),
            _ => return Err(Error::InvalidArgument(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Whether the host's kernel runs the security module `lsm` (`apparmor`, `selinux`).
fn host_has_lsm(lsm: &str) -> bool {
    if let Ok(list) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        return list.trim().split(',').any(|m| m == lsm);
    }
    match lsm {
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("y")),
        "selinux" => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        _ => false,
    }
}

fn lsm_refusal(opt: &str, lsm: &str, what: &str) -> Error {
    if host_has_lsm(lsm) {
        Error::InvalidArgument(format!("invalid --security-opt {opt:?}: {what} are not supported by Berth"))
    } else {
        let name = if lsm == "apparmor" { "AppArmor" } else { "SELinux" };
        Error::InvalidArgument(format!("invalid --security-opt {opt:?}: {name} is not enabled on this host"))
    }
}

/// The seccomp profile of a container with capabilities `caps`, or `None` for none. Errors are the user's (an
/// invalid profile), reported as 400 at create.
pub fn seccomp_profile(
    opts: &SecurityOpts,
    host: &HostConfig,
    caps: &[String],
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, Error> {
    if host.privileged.unwrap_or(false) {
        return Ok(None);
    }
    match &opts.seccomp {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => berth_runtime::seccomp::docker_default(caps)
            .map(Some)
            .map_err(|e| Error::Internal(format!("seccomp profile: {e}"))),
        Seccomp::Profile(json) => {
            berth_runtime::seccomp::custom(json, caps).map_err(|e| Error::InvalidArgument(e.to_string()))
        }
    }
}

/// The IPC-namespaced sysctls (besides `fs.mqueue.*`), as runc lists them.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses sysctls outside the container's own namespaces, with runc's messages: `net.*` needs a network namespace
/// of its own (not `--network host`), the IPC keys an IPC namespace of its own (not `--ipc host`),
/// `kernel.domainname` a UTS namespace of its own; every other key would change the host.
fn check_sysctls(host: &HostConfig) -> Result<(), Error> {
    let network_host =
        crate::networks::state::mode(host.network_mode.as_deref().unwrap_or("")) == crate::networks::state::Mode::Host;
    let ipc_host = host.ipc_mode.as_deref() == Some("host");
    let uts_host = host.uts_mode.as_deref() == Some("host");
    for key in host.sysctls.iter().flat_map(|s| s.keys()) {
        let k = key.replace('/', ".");
        let refuse = |why: &str| Err(Error::InvalidArgument(format!("sysctl {k:?} is not allowed in the hosts {why}")));
        if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if ipc_host {
                return refuse("ipc namespace");
            }
        } else if k.starts_with("net.") {
            if network_host {
                return refuse("network namespace");
            }
        } else if k == "kernel.domainname" {
            if uts_host {
                return refuse("uts namespace");
            }
        } else {
            return Err(Error::InvalidArgument(format!("sysctl {k:?} is not in a separate kernel namespace")));
        }
    }
    Ok(())
}

/// A list such as `0-3,5` (Go's `parsers.ParseUintList`), as a set; `None` if it does not parse.
fn parse_list(s: &str, max: u32) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    if s.is_empty() {
        return Some(set);
    }
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if a > b {
            return None;
        }
        // A range wider than everything that exists cannot be available; do not enumerate it.
        if b > max {
            set.insert(b);
            continue;
        }
        set.extend(a..=b);
    }
    Some(set)
}

/// The CPUs (or memory nodes) containers may use: the root cpuset's list (v1), else the online ones.
fn available(cpus: bool) -> &'static str {
    static CPUS: OnceLock<String> = OnceLock::new();
    static MEMS: OnceLock<String> = OnceLock::new();
    let (cell, v1, v2, online) = if cpus {
        (
            &CPUS,
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
            "/sys/fs/cgroup/cpuset.cpus.effective",
            "/sys/devices/system/cpu/online",
        )
    } else {
        (
            &MEMS,
            "/sys/fs/cgroup/cpuset/cpuset.mems",
            "/sys/fs/cgroup/cpuset.mems.effective",
            "/sys/devices/system/node/online",
        )
    };
    cell.get_or_init(|| {
        [v1, v2, online]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "0".into())
    })
}

fn check_cpuset(value: Option<&str>, cpus: bool) -> Result<(), Error> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(()) };
    let what = if cpus { "cpus" } else { "mems" };
    let avail = available(cpus);
    let have = parse_list(avail, u32::MAX).unwrap_or_default();
    let max = have.iter().next_back().copied().unwrap_or(0);
    let want = parse_list(value, max).ok_or_else(|| {
        Error::InvalidArgument(format!("Invalid value {value} for cpuset {what}: invalid format: {value}"))
    })?;
    if !want.is_subset(&have) {
        let noun = if cpus { "CPUs" } else { "memory nodes" };
        return Err(Error::InvalidArgument(format!(
            "Requested {noun} are not available - requested {value}, available: {avail}"
        )));
    }
    Ok(())
}

/// The number of CPUs berthd may run on (for `NanoCpus`), counted like Go's `runtime.NumCPU` (the affinity mask, not
/// a cgroup quota).
fn num_cpus() -> i64 {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else { return 1 };
    let n = (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).count();
    i64::try_from(n).unwrap_or(1).max(1)
}

/// Resource values of a `docker update`, with moby's messages (as at create, but a swap limit may come alone).
pub fn check_update_resources(host: &HostConfig) -> Result<(), Error> {
    check_resources_for(host, true)
}

/// Resource values, with moby's messages.
fn check_resources(host: &HostConfig) -> Result<(), Error> {
    check_resources_for(host, false)
}

fn check_resources_for(host: &HostConfig, update: bool) -> Result<(), Error> {
    let bad = |m: String| Err(Error::InvalidArgument(m));
    let memory = host.memory.unwrap_or(0);
    let swap = host.memory_swap.unwrap_or(0);
    let reservation = host.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if memory > 0 && swap > 0 && swap < memory {
        return bad("Minimum memoryswap limit should be larger than memory limit, see usage".into());
    }
    if memory == 0 && swap > 0 && !update {
        return bad("You should always set the Memory limit when using Memoryswap limit, see usage".into());
    }
    if let Some(s) = host.memory_swappiness.filter(|s| *s != -1)
        && !(0..=100).contains(&s)
    {
        return bad(format!("Invalid value: {s}, valid memory swappiness range is 0-100"));
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB".into());
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return bad("Minimum memory limit can not be less than memory reservation limit, see usage".into());
    }
    let nano = host.nano_cpus.unwrap_or(0);
    let period = host.cpu_period.unwrap_or(0);
    let quota = host.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if nano > 0 && quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    let n = num_cpus();
    if nano < 0 || nano > n.saturating_mul(1_000_000_000) {
        return bad(format!("Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"));
    }
    if host.cpu_shares.unwrap_or(0) < 0 {
        return bad("shares: invalid argument".into());
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into());
    }
    if quota > 0 && quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    check_cpuset(host.cpuset_cpus.as_deref(), true)?;
    check_cpuset(host.cpuset_mems.as_deref(), false)?;
    if let Some(w) = host.blkio_weight.filter(|w| *w > 0)
        && !(10..=1000).contains(&w)
    {
        return bad("Range of blkio weight is from 10 to 1000".into());
    }
    if host.shm_size.unwrap_or(0) < 0 {
        return bad("SHM size can not be less than 0".into());
    }
    let oom = host.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&oom) {
        return bad(format!("Invalid value {oom}, range for oom score adj is [-1000, 1000]"));
    }
    for u in host.ulimits.iter().flatten() {
        let name = u.name.as_deref().unwrap_or_default();
        ulimit_name(name)?;
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if soft > hard {
            return bad(format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"));
        }
    }
    Ok(())
}

/// Host ports of `PortBindings`: empty (any), a port or a range, as moby's `validatePortBindings`.
fn check_host_ports(host: &HostConfig) -> Result<(), Error> {
    let port = |s: &str| s.parse::<u16>().ok();
    for binding in host.port_bindings.iter().flat_map(|p| p.values()).flatten().flatten() {
        let Some(hp) = binding.host_port.as_deref().filter(|p| !p.is_empty()) else { continue };
        let (hp_port, _) = hp.split_once('/').unwrap_or((hp, ""));
        let ok = match hp_port.split_once('-') {
            Some((a, b)) => port(a).zip(port(b)).is_some_and(|(a, b)| a <= b),
            None => port(hp_port).is_some(),
        };
        if !ok {
            return Err(Error::InvalidArgument(format!("invalid port specification: {hp:?}")));
        }
    }
    Ok(())
}

/// `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `a *:* m`), Docker's format.
pub fn parse_device_cgroup_rule(rule: &str) -> Result<serde_json::Value, Error> {
    let invalid = || Error::InvalidArgument(format!("invalid device cgroup format '{rule}'"));
    let mut parts = rule.split(' ');
    let (Some(typ), Some(numbers), Some(access), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if !matches!(typ, "a" | "b" | "c")
        || access.is_empty()
        || access.len() > 3
        || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
    {
        return Err(invalid());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let number = |n: &str| -> Result<Option<i64>, Error> {
        if n == "*" { Ok(None) } else { n.parse::<i64>().map(Some).map_err(|_| invalid()) }
    };
    let mut r = serde_json::json!({"allow": true, "type": typ, "access": access});
    if let Some(m) = number(major)? {
        r["major"] = m.into();
    }
    if let Some(m) = number(minor)? {
        r["minor"] = m.into();
    }
    Ok(r)
}

/// Everything Docker refuses at create about the host configuration: security options (an invalid seccomp
/// profile included), capabilities, sysctls, resources, host ports and device cgroup rules (log drivers and options are
/// `logs::merge_and_verify`'s). Runs before anything is written.
pub fn check(host: &HostConfig) -> Result<(), Error> {
    let opts = security_opts(host.security_opt.as_deref().unwrap_or_default())?;
    let caps = capabilities(host)?;
    // Docker's default profile cannot be invalid: only a user's is resolved and compiled here.
    if let Seccomp::Profile(_) = opts.seccomp {
        seccomp_profile(&opts, host, &caps)?;
    }
    check_sysctls(host)?;
    check_resources(host)?;
    check_host_ports(host)?;
    for rule in host.device_cgroup_rules.iter().flatten() {
        parse_device_cgroup_rule(rule)?;
    }
    Ok(())
}

/// Every capability available here (in berthd's effective set, as moby's `GetAllCapabilities`), for `--privileged`
/// and `--cap-add ALL`.
fn all_caps() -> Vec<String> {
    caps_names().iter().filter(|c| cap_available(c)).map(|c| c.to_string()).collect()
}

/// Whether berthd holds capability `name` (a container cannot get one outside the bounding set of the process that
/// starts it: capset fails). Read once from `/proc/self/status`; if it cannot be read, every capability counts.
fn cap_available(name: &str) -> bool {
    static EFFECTIVE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let eff = EFFECTIVE.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
        u64::from_str_radix(line.trim(), 16).ok()
    });
    match (eff, caps_names().iter().position(|c| *c == name)) {
        (Some(bits), Some(i)) => bits & (1u64 << i) != 0,
        _ => true,
    }
}

fn caps_names() -> &'static [&'static str] {
    &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]
}

/// `CAP_NET_ADMIN` for `net_admin`, `NET_ADMIN` or `CAP_NET_ADMIN`; `ALL` stays; moby's refusals of unknown and
/// unavailable capabilities.
fn normalize_cap(c: &str) -> Result<String, Error> {
    let up = c.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    if !caps_names().contains(&name.as_str()) {
        return Err(Error::InvalidArgument(format!("unknown capability: {name:?}")));
    }
    if !cap_available(&name) {
        return Err(Error::InvalidArgument(format!(
            "capability not supported by your kernel or not available in the current environment: {name:?}"
        )));
    }
    Ok(name)
}

/// The capability set of a container: Docker's defaults, `--privileged`, `--cap-add`, `--cap-drop`, combined as
/// moby's `TweakCapabilities` does (`--cap-add ALL` minus the dropped ones; `--cap-drop ALL` keeps only the added
/// ones).
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, Error> {
    if host.privileged.unwrap_or(false) {
        return Ok(all_caps());
    }
    let add: Vec<String> = host.cap_add.iter().flatten().map(|c| normalize_cap(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = host.cap_drop.iter().flatten().map(|c| normalize_cap(c)).collect::<Result<_, _>>()?;
    let all = |v: &[String]| v.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if all(&add) {
        all_caps().into_iter().filter(|c| !drop.contains(c)).collect()
    } else if all(&drop) {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|c| c.to_string()).filter(|c| !drop.contains(c) && cap_available(c)).collect()
    };
    if !all(&add) {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

pub fn ulimit_name(name: &str) -> Result<String, Error> {
    const KNOWN: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if KNOWN.contains(&name) {
        Ok(format!("RLIMIT_{}", name.to_ascii_uppercase()))
    } else {
        Err(Error::InvalidArgument(format!("invalid ulimit type: {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Result<SecurityOpts, Error> {
        security_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn security_options() {
        assert!(opts(&["no-new-privileges"]).expect("nnp").no_new_privileges);
        assert!(opts(&["no-new-privileges=true"]).expect("nnp").no_new_privileges);
        assert!(opts(&["no-new-privileges:true"]).expect("nnp").no_new_privileges);
        assert!(!opts(&["no-new-privileges=false"]).expect("nnp").no_new_privileges);
        assert_eq!(opts(&["seccomp=unconfined"]).expect("s").seccomp, Seccomp::Unconfined);
        assert_eq!(opts(&["seccomp=builtin"]).expect("s").seccomp, Seccomp::Default);
        assert_eq!(opts(&["seccomp={}"]).expect("s").seccomp, Seccomp::Profile("{}".into()));
        assert!(opts(&["apparmor=unconfined", "label=disable", "disable"]).is_ok());
        let e = opts(&["bogus=1"]).expect_err("bogus");
        assert_eq!(e.to_string(), r#"invalid --security-opt 2: "bogus=1""#);
        let e = opts(&["bogus"]).expect_err("bogus");
        assert_eq!(e.to_string(), r#"invalid --security-opt 1: "bogus""#);
        assert!(opts(&["no-new-privileges=maybe"]).is_err());
        assert!(opts(&["systempaths=unconfined"]).is_err(), "the CLI turns it into MaskedPaths/ReadonlyPaths");
        assert!(opts(&["apparmor=docker-default"]).is_err());
        assert!(opts(&["label=type:svirt_t"]).is_err());
    }

    #[test]
    fn sysctls() {
        let with = |net: &str, keys: &[&str]| {
            let mut h = HostConfig { network_mode: Some(net.into()), ..Default::default() };
            h.sysctls = Some(keys.iter().map(|k| (k.to_string(), "1".to_string())).collect());
            check_sysctls(&h)
        };
        assert!(with("default", &["net.ipv4.ip_forward", "kernel.shmmax", "fs.mqueue.msg_max"]).is_ok());
        let e = with("host", &["net.ipv4.ip_forward"]).expect_err("host net");
        assert_eq!(e.to_string(), r#"sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace"#);
        let e = with("default", &["kernel.core_pattern"]).expect_err("core_pattern");
        assert_eq!(e.to_string(), r#"sysctl "kernel.core_pattern" is not in a separate kernel namespace"#);
        let mut h = HostConfig { ipc_mode: Some("host".into()), ..Default::default() };
        h.sysctls = Some([("kernel.shmmax".to_string(), "1".to_string())].into());
        assert!(check_sysctls(&h).is_err());
    }

    #[test]
    fn resources() {
        let ok = |h: HostConfig| check_resources(&h).map_err(|e| e.to_string());
        assert_eq!(
            ok(HostConfig { memory: Some(1), ..Default::default() }).expect_err("1 byte"),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(ok(HostConfig { memory: Some(-5), ..Default::default() }).is_err());
        assert!(ok(HostConfig { memory: Some(MIN_MEMORY), ..Default::default() }).is_ok());
        assert!(ok(HostConfig { memory: Some(64 << 20), memory_swap: Some(32 << 20), ..Default::default() }).is_err());
        assert!(ok(HostConfig { memory: Some(64 << 20), memory_swap: Some(-1), ..Default::default() }).is_ok());
        assert!(ok(HostConfig { memory_swappiness: Some(-1), ..Default::default() }).is_ok());
        assert_eq!(
            ok(HostConfig { memory_swappiness: Some(500), ..Default::default() }).expect_err("500"),
            "Invalid value: 500, valid memory swappiness range is 0-100"
        );
        assert!(ok(HostConfig { nano_cpus: Some(-1), ..Default::default() }).is_err());
        assert!(ok(HostConfig { cpu_shares: Some(-1), ..Default::default() }).is_err());
        assert!(ok(HostConfig { shm_size: Some(-1), ..Default::default() }).is_err());
        assert!(ok(HostConfig { oom_score_adj: Some(1001), ..Default::default() }).is_err());
        assert!(ok(HostConfig { oom_score_adj: Some(-1000), ..Default::default() }).is_ok());
        assert!(ok(HostConfig { cpuset_cpus: Some("0-99999".into()), ..Default::default() }).is_err());
        assert!(ok(HostConfig { cpuset_cpus: Some("0-4294967295".into()), ..Default::default() }).is_err());
        assert!(ok(HostConfig { cpuset_cpus: Some("x".into()), ..Default::default() }).is_err());
        assert!(ok(HostConfig { cpuset_cpus: Some("0".into()), ..Default::default() }).is_ok());
    }

    #[test]
    fn device_rules() {
        let r = parse_device_cgroup_rule("c 1:3 rwm").expect("rule");
        assert_eq!(r, serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
        let r = parse_device_cgroup_rule("a *:* m").expect("rule");
        assert_eq!(r, serde_json::json!({"allow": true, "type": "a", "access": "m"}));
        for bad in ["c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rwx", "c a:3 r", ""] {
            assert!(parse_device_cgroup_rule(bad).is_err(), "{bad}");
        }
    }
}
