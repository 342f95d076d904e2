//! Containers: `GET /containers/{id}/json`, the entries of `GET /containers/json`, `top`, `wait`, `create`, `commit`,
//! `changes`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use berth_api::ApiVersion;
use berth_api::models::{
    ContainerConfig, ContainerCreateResponse, ContainerInspectResponse, ContainerState, ContainerStateStatusEnum,
    ContainerSummary, ContainerSummaryHostConfig, ContainerSummaryStateEnum, ContainerTopResponse,
    ContainerWaitExitError, ContainerWaitResponse, DriverData, HostConfig, HostConfigCgroupnsModeEnum,
    HostConfigLogConfig, MountPoint, RestartPolicy, RestartPolicyNameEnum,
};
use serde::Serialize;
use serde_json::Value;

use super::render::{Nulls, api, merge, or, render};
use crate::containers::{Record, Status, bundle_dir, container_dir, log_path};
use crate::daemon::Daemon;
use crate::mounts::Kind;

/// What container views need besides the record: paths, exec instances, the IDs of the `host` and `none` networks,
/// the cgroup version.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The container's directory (`resolv.conf`, `hostname`, `hosts`, `upper`, `work`).
    pub dir: PathBuf,
    /// The root file system as mounted (`MergedDir`).
    pub merged: PathBuf,
    /// The json-file log (empty for another driver: Docker shows it for json-file only).
    pub log_path: PathBuf,
    pub exec_ids: Vec<String>,
    /// `host` and `none` → their network IDs.
    pub special_networks: HashMap<String, String>,
    pub cgroup2: bool,
}

impl Facts {
    /// Gathers them for `rec`.
    pub fn of(d: &Daemon, rec: &Record) -> Facts {
        let exec_ids = d
            .execs
            .lock()
            .map(|m| m.values().filter(|e| e.container_id == rec.id).map(|e| e.id.clone()).collect())
            .unwrap_or_default();
        let special_networks = ["host", "none"]
            .into_iter()
            .filter_map(|n| d.networks.find(n).ok().map(|r| (n.to_string(), r.id)))
            .collect();
        Facts {
            dir: container_dir(d, &rec.id),
            merged: bundle_dir(d, &rec.id).join("rootfs"),
            log_path: if crate::logs::is_json_file(&rec.host_config) { log_path(d, &rec.id) } else { PathBuf::new() },
            exec_ids,
            special_networks,
            cgroup2: berth_runtime::cgroups::is_unified(),
        }
    }
}

/// Docker's human status: `Up 5 minutes`, `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(rec: &Record, now: SystemTime) -> String {
    let since = |t: &str| {
        berth_api::time::parse(t)
            .and_then(|t| now.duration_since(t).ok())
            .map(berth_api::time::human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    let health = match rec.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    match rec.state.status {
        Status::Running => format!("Up {}{health}", since(&rec.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&rec.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if rec.state.started_at == berth_api::time::ZERO => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", rec.state.exit_code, since(&rec.state.finished_at)),
    }
}

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Paused => ContainerStateStatusEnum::PAUSED,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn summary_state_enum(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

/// The same data in another serde model (our health record → bollard's `Health`, same field names).
fn convert<A: Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Option<B> {
    serde_json::to_value(a).ok().and_then(|v| serde_json::from_value(v).ok())
}

/// `HostConfig` as Docker shows it: what the client gave, with the defaults the daemon applied filled in.
fn host_config(rec: &Record, f: &Facts) -> HostConfig {
    let mut h = rec.host_config.clone();
    or(&mut h.container_id_file, String::new());
    let log = h.log_config.get_or_insert_with(HostConfigLogConfig::default);
    if log.typ.as_deref().is_none_or(str::is_empty) {
        log.typ = Some("json-file".into());
    }
    or(&mut log.config, HashMap::new());
    or(&mut h.network_mode, "default".into());
    or(&mut h.port_bindings, HashMap::new());
    or(&mut h.restart_policy, RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: Some(0) });
    or(&mut h.auto_remove, false);
    or(&mut h.volume_driver, String::new());
    or(&mut h.console_size, vec![0, 0]);
    let cgroupns = if f.cgroup2 { HostConfigCgroupnsModeEnum::PRIVATE } else { HostConfigCgroupnsModeEnum::HOST };
    if matches!(h.cgroupns_mode, None | Some(HostConfigCgroupnsModeEnum::EMPTY)) {
        h.cgroupns_mode = Some(cgroupns);
    }
    if h.ipc_mode.as_deref().is_none_or(str::is_empty) {
        h.ipc_mode = Some("private".into());
    }
    or(&mut h.cgroup, String::new());
    or(&mut h.oom_score_adj, 0);
    or(&mut h.pid_mode, String::new());
    or(&mut h.privileged, false);
    or(&mut h.publish_all_ports, false);
    or(&mut h.readonly_rootfs, false);
    or(&mut h.uts_mode, String::new());
    or(&mut h.userns_mode, String::new());
    if h.shm_size.is_none_or(|s| s <= 0) {
        h.shm_size = Some(64 << 20);
    }
    if h.runtime.as_deref().is_none_or(str::is_empty) {
        h.runtime = Some(rec.runtime.clone());
    }
    or(&mut h.isolation, berth_api::models::HostConfigIsolationEnum::EMPTY);
    for n in [
        &mut h.cpu_shares,
        &mut h.memory,
        &mut h.nano_cpus,
        &mut h.cpu_period,
        &mut h.cpu_quota,
        &mut h.cpu_realtime_period,
        &mut h.cpu_realtime_runtime,
        &mut h.memory_reservation,
        &mut h.memory_swap,
        &mut h.cpu_count,
        &mut h.cpu_percent,
        &mut h.io_maximum_iops,
        &mut h.io_maximum_bandwidth,
    ] {
        or(n, 0);
    }
    or(&mut h.blkio_weight, 0);
    or(&mut h.cgroup_parent, String::new());
    or(&mut h.cpuset_cpus, String::new());
    or(&mut h.cpuset_mems, String::new());
    // Docker records its default masked and read-only paths at create, except for a privileged container.
    if !h.privileged.unwrap_or(false) {
        or(&mut h.masked_paths, crate::spec::MASKED_PATHS.iter().map(|s| s.to_string()).collect());
        or(&mut h.readonly_paths, crate::spec::READONLY_PATHS.iter().map(|s| s.to_string()).collect());
    }
    h
}

/// Fields of `HostConfig` Docker sends as `null` when unset.
const HOST_NULLS: &[&str] = &[
    "Binds",
    "VolumesFrom",
    "CapAdd",
    "CapDrop",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "Links",
    "SecurityOpt",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "MemorySwappiness",
    "OomKillDisable",
    "PidsLimit",
    "Ulimits",
    "MaskedPaths",
    "ReadonlyPaths",
];

/// Fields of a container's `Config` Docker sends as `null` when unset.
const CONFIG_NULLS: &[&str] = &["Env", "Cmd", "Volumes", "Entrypoint", "OnBuild", "Labels"];

/// Before 1.42 Docker sent `KernelMemory` and `KernelMemoryTCP` always (0 when unset).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KernelMemory {
    kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP")]
    kernel_memory_tcp: i64,
}

/// A container's `Config` with the fields Docker always sends.
pub fn config(c: &ContainerConfig) -> ContainerConfig {
    let mut c = c.clone();
    for s in [&mut c.hostname, &mut c.domainname, &mut c.user, &mut c.image, &mut c.working_dir] {
        or(s, String::new());
    }
    for b in [
        &mut c.attach_stdin,
        &mut c.attach_stdout,
        &mut c.attach_stderr,
        &mut c.tty,
        &mut c.open_stdin,
        &mut c.stdin_once,
    ] {
        or(b, false);
    }
    c
}

/// `Mounts` of inspect and of the list: Docker's `MountPoint` (`Name` and `Driver` for volumes only).
pub fn mounts(points: &[crate::mounts::MountPoint]) -> Vec<MountPoint> {
    points
        .iter()
        .map(|p| {
            let volume = p.typ == Kind::Volume;
            MountPoint {
                typ: Some(p.typ.as_str().to_string()),
                name: volume.then(|| p.name.clone()),
                source: Some(p.source.clone()),
                destination: Some(p.destination.clone()),
                driver: volume.then(|| p.driver.clone()),
                mode: Some(p.mode.clone()),
                rw: Some(p.rw),
                propagation: Some(p.propagation.clone()),
            }
        })
        .collect()
}

/// `GET /containers/{id}/json`; `size`: (`SizeRw`, `SizeRootFs`) when asked for.
pub fn inspect(rec: &Record, f: &Facts, size: Option<(u64, u64)>, version: ApiVersion) -> Value {
    let s = &rec.state;
    let status = s.status;
    let lower: Vec<String> = rec.lower_dirs.iter().map(|p| p.display().to_string()).collect();
    let path = |p: PathBuf| p.display().to_string();
    let c = ContainerInspectResponse {
        id: Some(rec.id.clone()),
        created: Some(rec.created.clone()),
        path: Some(rec.path.clone()),
        args: Some(rec.args.clone()),
        state: Some(ContainerState {
            status: Some(state_enum(status)),
            // Docker counts a restarting container as running (`Running` and `Restarting` both true).
            running: Some(matches!(status, Status::Running | Status::Paused | Status::Restarting)),
            paused: Some(status == Status::Paused),
            restarting: Some(status == Status::Restarting),
            oom_killed: Some(s.oom_killed),
            dead: Some(status == Status::Dead),
            pid: Some(s.pid),
            exit_code: Some(s.exit_code),
            error: Some(s.error.clone()),
            started_at: Some(s.started_at.clone()),
            finished_at: Some(s.finished_at.clone()),
            // Docker has `State.Health` only for a container with a healthcheck.
            health: s.health.as_ref().and_then(convert),
        }),
        image: Some(rec.image_id.clone()),
        resolv_conf_path: Some(path(f.dir.join("resolv.conf"))),
        hostname_path: Some(path(f.dir.join("hostname"))),
        hosts_path: Some(path(f.dir.join("hosts"))),
        log_path: Some(path(f.log_path.clone())),
        name: Some(format!("/{}", rec.name)),
        restart_count: Some(rec.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: (!f.exec_ids.is_empty()).then(|| f.exec_ids.clone()),
        host_config: Some(host_config(rec, f)),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data: HashMap::from([
                ("LowerDir".to_string(), lower.join(":")),
                ("MergedDir".to_string(), path(f.merged.clone())),
                ("UpperDir".to_string(), path(f.dir.join("upper"))),
                ("WorkDir".to_string(), path(f.dir.join("work"))),
            ]),
        }),
        size_rw: size.map(|(rw, _)| rw as i64),
        size_root_fs: size.map(|(_, root)| root as i64),
        mounts: Some(mounts(&rec.mounts)),
        config: Some(config(&rec.config)),
        network_settings: None,
        ..Default::default()
    };
    const NULLS: Nulls = &[(&[], &["ExecIDs"]), (&["HostConfig"], HOST_NULLS), (&["Config"], CONFIG_NULLS)];
    let mut v = render(&c, NULLS);
    if let Value::Object(m) = &mut v {
        m.insert("NetworkSettings".into(), super::network::settings(rec, &f.special_networks, version));
    }
    if version < api(42) {
        merge(&mut v, &["HostConfig"], &KernelMemory { kernel_memory: 0, kernel_memory_tcp: 0 });
    }
    // Before 1.44 the MAC address asked for is the container-wide `Config.MacAddress` (set only when asked for).
    if let Some(mac) = rec.net.endpoints.first().and_then(|e| e.requested_mac.clone()).filter(|_| version < api(44))
        && let Some(Value::Object(c)) = v.get_mut("Config")
    {
        c.insert("MacAddress".into(), Value::String(mac));
    }
    v
}

/// The `Command` of a list entry as moby writes it: the path, then the arguments, each one that holds a space in
/// single quotes (`sh -c 'echo hi'`).
fn list_command(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// One entry of `GET /containers/json`.
pub fn summary(rec: &Record, f: &Facts, now: SystemTime, size: Option<(u64, u64)>, version: ApiVersion) -> Value {
    let c = ContainerSummary {
        id: Some(rec.id.clone()),
        names: Some(vec![format!("/{}", rec.name)]),
        image: Some(rec.image.clone()),
        image_id: Some(rec.image_id.clone()),
        command: Some(list_command(&rec.path, &rec.args)),
        created: Some(berth_api::time::parse(&rec.created).map(berth_api::time::unix).unwrap_or(0)),
        ports: Some(super::network::list_ports(rec)),
        size_rw: size.map(|(rw, _)| rw as i64),
        size_root_fs: size.map(|(_, root)| root as i64),
        labels: Some(rec.config.labels.clone().unwrap_or_default()),
        state: Some(summary_state_enum(rec.state.status)),
        status: Some(status_text(rec, now)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(rec.host_config.network_mode.clone().unwrap_or_default()),
            annotations: None,
        }),
        network_settings: None,
        mounts: Some(mounts(&rec.mounts)),
        // 1.52 added the health summary to the list.
        health: if version >= api(52) {
            let h = rec.state.health.as_ref();
            let status =
                h.and_then(|h| convert(&h.status)).unwrap_or(berth_api::models::ContainerSummaryHealthStatusEnum::NONE);
            Some(berth_api::models::ContainerSummaryHealth {
                status: Some(status),
                failing_streak: Some(h.map(|h| h.failing_streak).unwrap_or(0)),
            })
        } else {
            None
        },
        ..Default::default()
    };
    let mut v = render(&c, &[]);
    if let Value::Object(m) = &mut v {
        m.insert("NetworkSettings".into(), super::network::summary_settings(rec, &f.special_networks, version));
    }
    v
}

/// `POST /containers/create`.
pub fn created(id: String, warnings: Vec<String>) -> Value {
    render(&ContainerCreateResponse { id, warnings }, &[])
}

/// `POST /containers/{id}/update`: Docker's warnings (what the host could not limit).
pub fn updated(warnings: Vec<String>) -> Value {
    render(&berth_api::models::ContainerUpdateResponse { warnings: Some(warnings) }, &[])
}

/// `POST /containers/{id}/wait`: the exit code, and the error of a container that failed to run.
pub fn waited(code: i64, error: Option<String>) -> Value {
    let error = error.map(|e| ContainerWaitExitError { message: Some(e) });
    render(&ContainerWaitResponse { status_code: code, error }, &[])
}

/// `POST /containers/prune`: `ContainersDeleted` is `null` when none was.
pub fn pruned(deleted: Vec<String>, reclaimed: u64) -> Value {
    let model = berth_api::models::ContainerPruneResponse {
        containers_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: Some(reclaimed as i64),
    };
    render(&model, &[(&[], &["ContainersDeleted"])])
}

/// `GET /containers/{id}/top`.
pub fn top(titles: Vec<String>, processes: Vec<Vec<String>>) -> Value {
    render(&ContainerTopResponse { titles: Some(titles), processes: Some(processes) }, &[])
}

/// `POST /commit`: the new image's ID, as `{"Id": ...}` (bollard's `IdResponse` serialises the key as `id`, which
/// Go's case-blind decoder accepts and docker-py does not).
pub fn committed(id: String) -> Value {
    serde_json::json!({ "Id": id })
}

/// `GET /containers/{id}/changes`: `Kind` 0 modified, 1 added, 2 deleted; `null` when nothing changed (Docker's nil
/// list).
pub fn changes(list: &[crate::commit::Change]) -> Value {
    use crate::commit::ChangeKind;
    use berth_api::models::{ChangeType, FilesystemChange};
    if list.is_empty() {
        return Value::Null;
    }
    let models: Vec<FilesystemChange> = list
        .iter()
        .map(|c| FilesystemChange {
            path: c.path.clone(),
            kind: match c.kind {
                ChangeKind::Modified => ChangeType::_0,
                ChangeKind::Added => ChangeType::_1,
                ChangeKind::Deleted => ChangeType::_2,
            },
        })
        .collect();
    serde_json::to_value(models).unwrap_or(Value::Null)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::views::check::{CONFIG_KEYS, has, lacks};

    /// A made-up record: `web`, created, on the default bridge, a volume and a bind.
    pub(crate) fn record() -> Record {
        serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "name": "web",
            "created": "2026-12-06T12:00:00.000000000Z",
            "image": "busybox",
            "image_id": "sha256:aaaa",
            "path": "sh",
            "args": ["-c", "echo hi; sleep 1"],
            "config": {"Hostname": "c0ffee", "Image": "busybox", "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}},
            "host_config": {"NetworkMode": "default"},
            "state": {"status": "created", "pid": 0, "exit_code": 0, "error": "", "started_at": "0001-01-01T00:00:00Z",
                      "finished_at": "0001-01-01T00:00:00Z", "oom_killed": false},
            "restart_count": 0,
            "runtime": "runc",
            "lower_dirs": ["/l1", "/l2"],
            "mounts": [{"type": "volume", "name": "v", "source": "/var/v/_data", "destination": "/data", "driver": "local",
                        "mode": "z", "rw": true, "propagation": ""},
                       {"type": "bind", "source": "/h", "destination": "/b", "mode": "ro", "rw": false,
                        "propagation": "rprivate"}],
            "net": {"endpoints": [{"network": "bridge", "network_id": "bid"}]}
        }))
        .expect("record")
    }

    fn facts() -> Facts {
        Facts {
            dir: "/d/c".into(),
            merged: "/r/c/rootfs".into(),
            log_path: "/d/c/c-json.log".into(),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_has_every_field_docker_sends() {
        let v = inspect(&record(), &facts(), None, api(53));
        has(
            &v,
            &[
                ("Id", "s"),
                ("Created", "s"),
                ("Path", "s"),
                ("Args", "a"),
                ("State/Status", "s"),
                ("State/Running", "b"),
                ("State/OOMKilled", "b"),
                ("State/Pid", "n"),
                ("State/StartedAt", "s"),
                ("Image", "s"),
                ("ResolvConfPath", "s"),
                ("HostnamePath", "s"),
                ("HostsPath", "s"),
                ("LogPath", "s"),
                ("Name", "s"),
                ("RestartCount", "n"),
                ("Driver", "s"),
                ("Platform", "s"),
                ("MountLabel", "s"),
                ("ProcessLabel", "s"),
                ("AppArmorProfile", "s"),
                ("ExecIDs", "0"),
                ("GraphDriver/Name", "s"),
                ("GraphDriver/Data/LowerDir", "s"),
                ("GraphDriver/Data/MergedDir", "s"),
                ("Mounts", "a"),
                ("NetworkSettings/Networks/bridge/NetworkID", "s"),
            ],
        );
        has(&v["Config"], CONFIG_KEYS);
        assert!(v["Config"]["Cmd"].is_array());
        for k in ["Env", "Volumes", "Entrypoint", "OnBuild", "Labels"] {
            assert!(v["Config"][k].is_null(), "Config.{k} unset: null");
        }
        assert!(v["Config"]["ExposedPorts"]["80/tcp"].is_object());
        assert!(v["NetworkSettings"]["Ports"]["80/tcp"].is_null());
        let h = &v["HostConfig"];
        has(
            h,
            &[
                ("Binds", "0"),
                ("ContainerIDFile", "s"),
                ("LogConfig/Type", "s"),
                ("LogConfig/Config", "o"),
                ("NetworkMode", "s"),
                ("PortBindings", "o"),
                ("RestartPolicy/Name", "s"),
                ("RestartPolicy/MaximumRetryCount", "n"),
                ("AutoRemove", "b"),
                ("VolumeDriver", "s"),
                ("VolumesFrom", "0"),
                ("ConsoleSize", "a"),
                ("CapAdd", "0"),
                ("CapDrop", "0"),
                ("CgroupnsMode", "s"),
                ("Dns", "0"),
                ("ExtraHosts", "0"),
                ("GroupAdd", "0"),
                ("IpcMode", "s"),
                ("Cgroup", "s"),
                ("Links", "0"),
                ("OomScoreAdj", "n"),
                ("PidMode", "s"),
                ("Privileged", "b"),
                ("PublishAllPorts", "b"),
                ("ReadonlyRootfs", "b"),
                ("SecurityOpt", "0"),
                ("UTSMode", "s"),
                ("UsernsMode", "s"),
                ("ShmSize", "n"),
                ("Runtime", "s"),
                ("Isolation", "s"),
                ("CpuShares", "n"),
                ("Memory", "n"),
                ("NanoCpus", "n"),
                ("CgroupParent", "s"),
                ("BlkioWeight", "n"),
                ("BlkioWeightDevice", "0"),
                ("CpuPeriod", "n"),
                ("CpuQuota", "n"),
                ("CpuRealtimePeriod", "n"),
                ("CpuRealtimeRuntime", "n"),
                ("CpusetCpus", "s"),
                ("CpusetMems", "s"),
                ("Devices", "0"),
                ("DeviceCgroupRules", "0"),
                ("DeviceRequests", "0"),
                ("MemoryReservation", "n"),
                ("MemorySwap", "n"),
                ("MemorySwappiness", "0"),
                ("PidsLimit", "0"),
                ("Ulimits", "0"),
                ("CpuCount", "n"),
                ("CpuPercent", "n"),
                ("IOMaximumIOps", "n"),
                ("IOMaximumBandwidth", "n"),
                ("MaskedPaths", "a"),
                ("ReadonlyPaths", "a"),
            ],
        );
        assert_eq!(h["Runtime"], "runc");
        assert_eq!(h["ConsoleSize"], serde_json::json!([0, 0]));
        assert!(h["MaskedPaths"].as_array().is_some_and(|m| m.iter().any(|p| p == "/proc/kcore")));
        lacks(h, &["KernelMemory", "KernelMemoryTCP"]);
        lacks(&v, &["SizeRw", "SizeRootFs", "Node"]);
        assert!(v["State"].get("Health").is_none(), "no healthcheck, no Health");
        // A volume has its name and driver, a bind not.
        has(&v["Mounts"][0], &[("Name", "s"), ("Driver", "s"), ("RW", "b"), ("Propagation", "s")]);
        lacks(&v["Mounts"][1], &["Name", "Driver"]);
    }

    #[test]
    fn inspect_per_version_and_size() {
        let old = inspect(&record(), &facts(), Some((1, 2)), api(41));
        has(&old, &[("HostConfig/KernelMemory", "n"), ("HostConfig/KernelMemoryTCP", "n"), ("SizeRw", "n")]);
        assert_eq!(old["SizeRootFs"], 2);
        let mut rec = record();
        rec.host_config.privileged = Some(true);
        let v = inspect(&rec, &facts(), None, api(53));
        assert!(v["HostConfig"]["MaskedPaths"].is_null(), "privileged: no masked paths");
    }

    #[test]
    fn summary_has_every_field_docker_sends() {
        let v = summary(&record(), &facts(), SystemTime::now(), None, api(53));
        has(
            &v,
            &[
                ("Id", "s"),
                ("Names", "a"),
                ("Image", "s"),
                ("ImageID", "s"),
                ("Command", "s"),
                ("Created", "n"),
                ("Ports", "a"),
                ("Labels", "o"),
                ("State", "s"),
                ("Status", "s"),
                ("HostConfig/NetworkMode", "s"),
                ("NetworkSettings/Networks/bridge/IPAddress", "s"),
                ("NetworkSettings/Networks/bridge/Aliases", "0"),
                ("Mounts", "a"),
                ("Health/Status", "s"),
                ("Health/FailingStreak", "n"),
            ],
        );
        assert_eq!(v["Command"], "sh -c 'echo hi; sleep 1'");
        assert_eq!(v["Ports"], serde_json::json!([{"PrivatePort": 80, "Type": "tcp"}]));
        lacks(&v, &["SizeRw", "SizeRootFs"]);
        let old = summary(&record(), &facts(), SystemTime::now(), Some((3, 4)), api(51));
        lacks(&old, &["Health"]);
        assert_eq!((old["SizeRw"].as_i64(), old["SizeRootFs"].as_i64()), (Some(3), Some(4)));
    }

    #[test]
    fn health_in_inspect_and_list() {
        let mut rec = record();
        rec.state.status = Status::Running;
        rec.state.health = Some(crate::health::Health {
            status: "unhealthy".into(),
            failing_streak: 3,
            log: vec![crate::health::Probe {
                start: "2026-12-06T12:00:00Z".into(),
                end: "2026-12-06T12:00:01Z".into(),
                exit_code: 1,
                output: "no".into(),
            }],
        });
        let v = inspect(&rec, &facts(), None, api(53));
        assert_eq!(v["State"]["Health"]["Status"], "unhealthy");
        assert_eq!(v["State"]["Health"]["FailingStreak"], 3);
        has(&v["State"]["Health"]["Log"][0], &[("Start", "s"), ("End", "s"), ("ExitCode", "n"), ("Output", "s")]);
        let s = summary(&rec, &facts(), SystemTime::now(), None, api(53));
        assert_eq!(
            (s["Health"]["Status"].as_str(), s["Health"]["FailingStreak"].as_i64()),
            (Some("unhealthy"), Some(3))
        );
    }

    #[test]
    fn list_commands_quote_arguments_with_spaces() {
        assert_eq!(list_command("sh", &["-c".into(), "echo hi; sleep 1".into()]), "sh -c 'echo hi; sleep 1'");
        assert_eq!(list_command("sleep", &["100".into()]), "sleep 100");
        assert_eq!(list_command("true", &[]), "true");
    }

    #[test]
    fn small_responses() {
        assert_eq!(created("x".into(), vec![]), serde_json::json!({"Id": "x", "Warnings": []}));
        assert_eq!(waited(1, None), serde_json::json!({"StatusCode": 1}));
        assert_eq!(waited(1, Some("e".into())), serde_json::json!({"StatusCode": 1, "Error": {"Message": "e"}}));
        assert_eq!(top(vec!["PID".into()], vec![]), serde_json::json!({"Titles": ["PID"], "Processes": []}));
        assert_eq!(pruned(vec![], 0), serde_json::json!({"ContainersDeleted": null, "SpaceReclaimed": 0}));
        assert_eq!(pruned(vec!["a".into()], 5), serde_json::json!({"ContainersDeleted": ["a"], "SpaceReclaimed": 5}));
    }
}
