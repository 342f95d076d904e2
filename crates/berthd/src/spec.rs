//! The OCI runtime spec of a container, built from its Docker configuration with Docker's defaults: capabilities,
//! mounts, masked and read-only paths, device rules, namespaces, resources and the default seccomp profile.

use std::path::{Path, PathBuf};

use crate::error::Error;
use berth_api::models::{ContainerConfig, HostConfig};
use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::security::{capabilities, ulimit_name};

pub(crate) const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub(crate) const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Docker's default device cgroup rules: deny everything, then allow the usual nodes.
fn device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    for (typ, major, minor, access) in [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", Some(1), Some(3), "rwm"),
        ("c", Some(1), Some(8), "rwm"),
        ("c", Some(1), Some(7), "rwm"),
        ("c", Some(5), Some(0), "rwm"),
        ("c", Some(1), Some(5), "rwm"),
        ("c", Some(1), Some(9), "rwm"),
        ("c", Some(5), Some(1), "rwm"),
        ("c", Some(136), None, "rwm"),
        ("c", Some(5), Some(2), "rwm"),
        ("c", Some(10), Some(200), "rwm"),
    ] {
        let mut r = json!({"allow": true, "type": typ, "access": access});
        if let Some(m) = major {
            r["major"] = json!(m);
        }
        if let Some(m) = minor {
            r["minor"] = json!(m);
        }
        rules.push(r);
    }
    Value::Array(rules)
}

/// Inputs to [`build`] besides the container's configuration.
pub struct SpecInputs<'a> {
    pub id: &'a str,
    pub args: Vec<String>,
    /// Directory with the container's `hostname`, `hosts`, `resolv.conf`.
    pub container_dir: &'a Path,
    /// The network namespace to join; `None`: the host's (`--network host`).
    pub netns: Option<&'a Path>,
    /// Whether this host uses cgroup v2.
    pub cgroup_v2: bool,
    /// The container's volumes, binds and `--mount` tmpfs mounts, as OCI mounts in mounting order.
    pub mounts: Vec<Value>,
    /// `--userns-remap`: a user namespace mapping the container's IDs from 0 to this range.
    pub idmap: Option<berth_runtime::shim::IdMap>,
    /// The variables of its legacy links; the container's own variables of the same names win, as in Docker.
    pub link_env: &'a [String],
    /// `--init`: the init binary, run as PID 1 (at `/sbin/docker-init`, as Docker) with the command as its child.
    pub init: Option<&'a Path>,
    /// Namespaces of another process to join instead of new ones (`ipc`, `uts`, `pid`: a pod's holder's).
    pub joins: &'a [(&'static str, PathBuf)],
    /// The host directory bound at `/dev/shm` (a shareable one: its own or the one of the container whose IPC
    /// namespace it joins; see `containers::shm`) instead of a tmpfs of its own.
    pub shm: Option<&'a Path>,
}

/// Whether the container gets its own cgroup namespace: `--cgroupns private`, or no choice on a cgroup v2 host
/// (Docker 20.10's defaults: `private` on v2, `host` on v1).
/// The size of a container's `/dev/shm`: its `ShmSize`, else Docker's default (64 MiB).
pub fn shm_size(host: &HostConfig) -> i64 {
    host.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20)
}

fn private_cgroupns(host: &HostConfig, cgroup_v2: bool) -> bool {
    use berth_api::models::HostConfigCgroupnsModeEnum as Mode;
    match host.cgroupns_mode {
        Some(Mode::PRIVATE) => true,
        Some(Mode::HOST) => false,
        None | Some(Mode::EMPTY) => cgroup_v2,
    }
}

/// Where `--init`'s init is mounted in a container (Docker's path).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

/// Builds the OCI spec for a container.
pub fn build(config: &ContainerConfig, host: &HostConfig, inp: &SpecInputs<'_>) -> Result<Spec, Error> {
    let privileged = host.privileged.unwrap_or(false);
    let caps = capabilities(host)?;
    let tty = config.tty.unwrap_or(false);
    // A `KEY` without `=` only removed the image's variable at create (Compose sends one for a variable left
    // unset); the process gets no such entry, as Docker's ReplaceOrAppendEnvValues at start.
    let mut env: Vec<String> = config.env.clone().unwrap_or_default().into_iter().filter(|e| e.contains('=')).collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let hostname = config.hostname.clone().unwrap_or_default();
    if inp.netns.is_some() {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let own: std::collections::HashSet<String> = env.iter().map(|e| key(e)).collect();
    let links: Vec<String> = inp.link_env.iter().filter(|e| !own.contains(&key(e))).cloned().collect();
    let at = env.iter().position(|e| e.starts_with("HOSTNAME=")).map_or(1.min(env.len()), |p| p + 1);
    env.splice(at..at, links);
    let cwd = match config.working_dir.as_deref() {
        Some(w) if !w.is_empty() => w.to_string(),
        _ => "/".to_string(),
    };
    let security = crate::security::security_opts(host.security_opt.as_deref().unwrap_or_default())?;
    let mut rlimits = Vec::new();
    for u in host.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        rlimits.push(json!({"type": ulimit_name(&name)?, "soft": u.soft.unwrap_or(0), "hard": u.hard.unwrap_or(0)}));
    }
    let dev_opts = if privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", dev_opts]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [dev_opts, "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    // From here on, mounts are ordered by depth with the user's (stable): a volume on `/etc` goes under the
    // container's `/etc/hosts`, as with Docker.
    let sorted_from = mounts.len();
    match inp.shm {
        Some(dir) => mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": dir, "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})),
        None => {
            let shm = shm_size(host);
            mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}));
        }
    }
    for f in ["resolv.conf", "hostname", "hosts"] {
        mounts.push(json!({
            "destination": format!("/etc/{f}"),
            "type": "bind",
            "source": inp.container_dir.join(f),
            "options": ["rbind", "rprivate"],
        }));
    }
    for (dest, opts) in host.tmpfs.iter().flatten() {
        let mut o = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        if !dest.starts_with('/') {
            return Err(Error::InvalidArgument(format!("invalid mount path: '{dest}' mount path must be absolute")));
        }
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    // The user's mounts come last (in their order); a default mount they cover is left out, as Docker does for
    // `-v …:/etc/hosts` or `--mount …,target=/dev/shm`.
    let user_dests: Vec<&str> = inp.mounts.iter().filter_map(|m| m["destination"].as_str()).collect();
    mounts
        .retain(|m| m["destination"].as_str().is_none_or(|d| !user_dests.contains(&d) || d == "/proc" || d == "/dev"));
    mounts.extend(inp.mounts.iter().cloned());
    let mut args = inp.args.clone();
    if let Some(init) = inp.init {
        mounts
            .push(json!({"destination": INIT_IN_CONTAINER, "type": "bind", "source": init, "options": ["bind", "ro"]}));
        // A command that is the init itself (a pod's holder, `berth-init --pause`) runs as is.
        if args.first().map(String::as_str) != Some(INIT_IN_CONTAINER) {
            args.splice(0..0, [INIT_IN_CONTAINER.to_string(), "--".to_string()]);
        }
    }
    mounts[sorted_from..].sort_by_key(|m| m["destination"].as_str().map(|d| d.matches('/').count()).unwrap_or(0));
    let ns = |t: &str| match inp.joins.iter().find(|(j, _)| *j == t) {
        Some((_, path)) => json!({"type": t, "path": path}),
        None => json!({"type": t}),
    };
    let mut namespaces = vec![ns("pid"), ns("ipc"), ns("uts"), json!({"type": "mount"})];
    if let Some(ns) = inp.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }
    if private_cgroupns(host, inp.cgroup_v2) {
        namespaces.push(json!({"type": "cgroup"}));
    }
    if inp.idmap.is_some() {
        namespaces.push(json!({"type": "user"}));
    }
    let mut devices = device_rules(privileged);
    if let Value::Array(rules) = &mut devices {
        for rule in host.device_cgroup_rules.iter().flatten() {
            rules.push(crate::security::parse_device_cgroup_rule(rule)?);
        }
    }
    let mut resources = resources(host);
    resources["devices"] = devices;
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/berth/{}", inp.id),
        "sysctl": host.sysctls.clone().unwrap_or_default(),
    });
    if let Some(m) = inp.idmap {
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": m.uid, "size": m.size}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": m.gid, "size": m.size}]);
    }
    // `MaskedPaths` / `ReadonlyPaths` given (the CLI's `--security-opt systempaths=unconfined` sends them empty)
    // replace Docker's defaults.
    if !privileged {
        linux["maskedPaths"] = host.masked_paths.as_ref().map_or_else(|| json!(MASKED_PATHS), |p| json!(p));
        linux["readonlyPaths"] = host.readonly_paths.as_ref().map_or_else(|| json!(READONLY_PATHS), |p| json!(p));
    }
    if let Some(seccomp) = crate::security::seccomp_profile(&security, host, &caps)? {
        linux["seccomp"] = serde_json::to_value(seccomp).map_err(|e| Error::Internal(e.to_string()))?;
    }
    let caps_json = json!(caps);
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps_json, "effective": caps_json, "permitted": caps_json},
            "rlimits": rlimits,
            "noNewPrivileges": security.no_new_privileges,
            "oomScoreAdj": host.oom_score_adj.unwrap_or(0),
        },
        "root": {"path": "rootfs", "readonly": host.readonly_rootfs.unwrap_or(false)},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    let mut spec = spec;
    // A joined UTS namespace has its hostname already (runc refuses to set one there).
    if inp.joins.iter().any(|(t, _)| *t == "uts") {
        spec.as_object_mut().map(|o| o.remove("hostname"));
    }
    if let Some(size) = console_size(tty, host.console_size.as_deref()) {
        spec["process"]["consoleSize"] = size;
    }
    serde_json::from_value(spec).map_err(|e| Error::Internal(format!("building the OCI spec: {e}")))
}

/// The OCI `linux.resources` (without device rules) of a host configuration: the create's and `docker update`'s
/// one translation of Docker's resource fields.
pub fn resources(host: &HostConfig) -> Value {
    let mut resources = json!({});
    let mut memory = serde_json::Map::new();
    if let Some(m) = host.memory.filter(|m| *m > 0) {
        memory.insert("limit".into(), json!(m));
        if let Some(s) = host.memory_swap.filter(|s| *s != 0) {
            memory.insert("swap".into(), json!(s));
        }
    }
    if let Some(r) = host.memory_reservation.filter(|r| *r > 0) {
        memory.insert("reservation".into(), json!(r));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = host.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(n / 10_000));
    }
    if let Some(s) = host.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = host.cpu_quota.filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = host.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(c) = host.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = host.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    // Zero and -1 are both "unlimited" for Docker; "max" is written for them.
    if let Some(p) = host.pids_limit {
        resources["pids"] = json!({"limit": if p <= 0 { -1 } else { p }});
    }
    if let Some(w) = host.blkio_weight.filter(|w| *w > 0) {
        resources["blockIO"] = json!({"weight": w});
    }
    resources
}

/// Docker's `ConsoleSize` (`[height, width]`) as the OCI `process.consoleSize`, for a terminal of a known size.
pub fn console_size(tty: bool, size: Option<&[usize]>) -> Option<Value> {
    match size {
        Some(&[height, width]) if tty && height > 0 && width > 0 => Some(json!({"height": height, "width": width})),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::process::DEFAULT_CAPS;

    #[test]
    fn caps_add_drop_privileged() {
        let mut h = HostConfig::default();
        assert_eq!(capabilities(&h).expect("caps").len(), DEFAULT_CAPS.len());
        h.cap_add = Some(vec!["SYS_ADMIN".into()]);
        h.cap_drop = Some(vec!["net_raw".into(), "CAP_MKNOD".into()]);
        let c = capabilities(&h).expect("caps");
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_NET_RAW".to_string()) && !c.contains(&"CAP_MKNOD".to_string()));
        // As moby: dropping ALL keeps only the added ones; adding ALL keeps all but the dropped ones.
        h.cap_drop = Some(vec!["ALL".into()]);
        assert_eq!(capabilities(&h).expect("caps"), vec!["CAP_SYS_ADMIN".to_string()]);
        h.cap_add = None;
        assert!(capabilities(&h).expect("caps").is_empty());
        h.cap_add = Some(vec!["ALL".into()]);
        h.cap_drop = Some(vec!["MKNOD".into()]);
        let c = capabilities(&h).expect("caps");
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()) && !c.contains(&"CAP_MKNOD".to_string()));
        h.cap_add = Some(vec!["NOPE".into()]);
        assert_eq!(capabilities(&h).expect_err("unknown").to_string(), r#"unknown capability: "CAP_NOPE""#);
        let p = HostConfig { privileged: Some(true), ..Default::default() };
        assert!(capabilities(&p).expect("caps").len() > 30);
    }

    #[test]
    fn spec_has_docker_defaults() {
        let config = ContainerConfig {
            env: Some(vec!["A=1".into(), "UNSET".into()]),
            hostname: Some("abc".into()),
            tty: Some(true),
            ..Default::default()
        };
        let inp = SpecInputs {
            id: "abc",
            args: vec!["sh".into()],
            container_dir: Path::new("/c"),
            netns: Some(Path::new("/run/berth/netns/abc")),
            cgroup_v2: false,
            mounts: Vec::new(),
            idmap: None,
            link_env: &[],
            init: None,
            joins: &[],
            shm: None,
        };
        let host = HostConfig { security_opt: Some(vec!["seccomp=unconfined".into()]), ..Default::default() };
        let spec = build(&config, &host, &inp).expect("spec");
        let p = spec.process().as_ref().expect("process");
        let env = p.env().clone().unwrap_or_default();
        assert!(env.contains(&"TERM=xterm".to_string()) && env.contains(&"HOSTNAME=abc".to_string()));
        assert!(env[0].starts_with("PATH="));
        assert!(!env.iter().any(|e| e.starts_with("UNSET")), "{env:?}");
        assert_eq!(spec.hostname().as_deref(), Some("abc"));
        // Link variables go after HOSTNAME; the container's own variables of the same names win.
        let links = ["DB_NAME=/abc/db".to_string(), "A=from-link".into()];
        let with_links =
            build(&config, &host, &SpecInputs { link_env: &links, args: inp.args.clone(), mounts: Vec::new(), ..inp })
                .expect("spec");
        let env = with_links.process().as_ref().and_then(|p| p.env().clone()).unwrap_or_default();
        let at = env.iter().position(|e| e.starts_with("HOSTNAME=")).expect("HOSTNAME");
        assert_eq!(env[at + 1], "DB_NAME=/abc/db");
        assert!(env.contains(&"A=1".to_string()) && !env.contains(&"A=from-link".to_string()), "{env:?}");
        let linux = spec.linux().as_ref().expect("linux");
        assert!(linux.masked_paths().as_ref().is_some_and(|m| m.contains(&"/proc/kcore".to_string())));
        assert!(linux.seccomp().is_none());
        assert_eq!(spec.mounts().as_ref().map(|m| m.len()), Some(10));
        // A volume on /etc goes below the container's /etc/hosts; one on /etc/hosts replaces it.
        let user = vec![
            json!({"destination": "/etc", "type": "bind", "source": "/v", "options": ["rbind"]}),
            json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/r", "options": ["rbind"]}),
        ];
        let spec = build(&config, &host, &SpecInputs { mounts: user, ..inp }).expect("spec");
        let dests: Vec<String> =
            spec.mounts().iter().flatten().map(|m| m.destination().display().to_string()).collect();
        let pos = |d: &str| dests.iter().position(|x| x == d).expect(d);
        assert!(pos("/etc") < pos("/etc/hosts"), "{dests:?}");
        assert_eq!(dests.iter().filter(|d| *d == "/etc/resolv.conf").count(), 1);
        let resolv = spec.mounts().iter().flatten().find(|m| m.destination().ends_with("resolv.conf")).expect("r");
        assert_eq!(resolv.source().as_deref(), Some(Path::new("/r")));
    }

    #[test]
    fn systempaths_device_rules_and_custom_seccomp() {
        let config = ContainerConfig::default();
        let inp = SpecInputs {
            id: "abc",
            args: vec!["sh".into()],
            container_dir: Path::new("/c"),
            netns: None,
            cgroup_v2: false,
            mounts: Vec::new(),
            idmap: None,
            link_env: &[],
            init: None,
            joins: &[],
            shm: None,
        };
        let host = HostConfig {
            masked_paths: Some(Vec::new()),
            readonly_paths: Some(Vec::new()),
            device_cgroup_rules: Some(vec!["c 10:229 rwm".into()]),
            security_opt: Some(vec![
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#
                    .into(),
                "no-new-privileges=true".into(),
            ]),
            ..Default::default()
        };
        let spec = build(&config, &host, &inp).expect("spec");
        let linux = spec.linux().as_ref().expect("linux");
        assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
        assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
        let devices = linux.resources().as_ref().and_then(|r| r.devices().clone()).expect("devices");
        let last = devices.last().expect("rule");
        assert_eq!((last.major(), last.minor(), last.access().as_deref()), (Some(10), Some(229), Some("rwm")));
        let seccomp = linux.seccomp().as_ref().expect("seccomp");
        assert_eq!(seccomp.default_action(), oci_spec::runtime::LinuxSeccompAction::ScmpActAllow);
        assert_eq!(spec.process().as_ref().and_then(|p| p.no_new_privileges()), Some(true));
    }

    #[test]
    fn cgroup_namespace_and_mount_as_docker() {
        use berth_api::models::HostConfigCgroupnsModeEnum as Mode;
        let config = ContainerConfig::default();
        let inp = |v2| SpecInputs {
            id: "abc",
            args: vec!["sh".into()],
            container_dir: Path::new("/c"),
            netns: None,
            cgroup_v2: v2,
            mounts: Vec::new(),
            idmap: None,
            link_env: &[],
            init: None,
            joins: &[],
            shm: None,
        };
        let has_ns = |host: &HostConfig, v2| {
            let spec = build(&config, host, &inp(v2)).expect("spec");
            let linux = spec.linux().clone().expect("linux");
            linux.namespaces().iter().flatten().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup)
        };
        let mode = |m| HostConfig { cgroupns_mode: m, ..Default::default() };
        // Docker 20.10: private by default on v2, host on v1; an explicit mode wins on either.
        assert!(has_ns(&mode(None), true) && !has_ns(&mode(None), false));
        assert!(has_ns(&mode(Some(Mode::EMPTY)), true));
        assert!(has_ns(&mode(Some(Mode::PRIVATE)), false) && !has_ns(&mode(Some(Mode::HOST)), true));
        let cgroup_opts = |host: &HostConfig| {
            let spec = build(&config, host, &inp(false)).expect("spec");
            let m = spec.mounts().iter().flatten().find(|m| m.destination() == Path::new("/sys/fs/cgroup")).cloned();
            m.and_then(|m| m.options().clone()).unwrap_or_default()
        };
        assert_eq!(cgroup_opts(&HostConfig::default())[0], "ro");
        assert_eq!(cgroup_opts(&HostConfig { privileged: Some(true), ..Default::default() })[0], "rw");
    }
}
