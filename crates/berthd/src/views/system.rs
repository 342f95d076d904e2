//! The daemon and its host: `GET /version`, `GET /info`.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_api::ApiVersion;
use berth_api::models::{
    BuildCache, BuildCacheTypeEnum, Commit, IndexInfo, LocalNodeState, PluginsInfo, RegistryServiceConfig, Runtime,
    SwarmInfo, SystemInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemInfoIsolationEnum,
    SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};
use serde::Serialize;
use serde_json::Value;

use super::render::{Nulls, api, merge, render};

/// What `/version` and `/info` report of the host.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_name: String,
    pub hostname: String,
    pub mem_total: u64,
    pub ncpu: usize,
    pub cgroup2: bool,
}

impl Host {
    /// Reads them from the running system.
    pub fn read() -> Host {
        let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        let os_name = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            })
            .unwrap_or_else(|| "Linux".into());
        let mem_total = crate::stats::machine_memory();
        Host {
            kernel,
            os_name,
            hostname: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            mem_total,
            ncpu: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cgroup2: berth_runtime::cgroups::is_unified(),
        }
    }
}

/// Go's name of the architecture (`amd64`, `arm64`).
fn go_arch() -> String {
    std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64")
}

/// `GET /version`.
pub fn version(host: &Host) -> Value {
    let v = berth_api::BERTH_VERSION.to_string();
    let api = berth_api::API_VERSION.to_string();
    let min = berth_api::MIN_API_VERSION.to_string();
    let details = HashMap::from(
        [
            ("ApiVersion", api.as_str()),
            ("MinAPIVersion", min.as_str()),
            ("Os", "linux"),
            ("Arch", go_arch().as_str()),
            ("KernelVersion", host.kernel.as_str()),
            ("GitCommit", ""),
            ("GoVersion", ""),
            ("BuildTime", ""),
            ("Experimental", "false"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let model = SystemVersion {
        platform: Some(SystemVersionPlatform { name: "Berth".into() }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: v.clone(),
            details: Some(details),
        }]),
        version: Some(v),
        api_version: Some(api),
        min_api_version: Some(min),
        git_commit: Some(String::new()),
        go_version: Some(String::new()),
        os: Some("linux".into()),
        arch: Some(go_arch()),
        kernel_version: Some(host.kernel.clone()),
        experimental: None,
        build_time: Some(String::new()),
    };
    render(&model, &[])
}

/// Counts for `/info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
}

/// The daemon's settings `/info` shows.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub engine_id: String,
    pub debug: bool,
    pub insecure_registries: Vec<String>,
    pub data_root: PathBuf,
    pub log_driver: String,
    pub default_runtime: String,
    pub userns_remap: bool,
}

/// Fields of `/info` that v1.53's model no longer has: before 1.42 `KernelMemory` and `KernelMemoryTCP`; before
/// 1.50 the bridge netfilter flags (always false once deprecated); before 1.49 the registry's
/// `AllowNondistributableArtifacts*` lists (in `RegistryConfig`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InfoLegacy {
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_memory: Option<bool>,
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "Option::is_none")]
    kernel_memory_tcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge_nf_iptables: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge_nf_ip6tables: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RegistryLegacy {
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    allow_nondistributable_artifacts_cidrs: Vec<String>,
    allow_nondistributable_artifacts_hostnames: Vec<String>,
}

/// `RegistryConfig`: loopback and the `--insecure-registry` CIDRs as `InsecureRegistryCIDRs`, the insecure registries
/// named by host beside `docker.io` in `IndexConfigs` (not secure), as dockerd lists them.
fn registry_config(insecure: &[String]) -> RegistryServiceConfig {
    let index = |name: &str, secure: bool, official: bool| IndexInfo {
        name: Some(name.into()),
        mirrors: Some(Vec::new()),
        secure: Some(secure),
        official: Some(official),
    };
    let mut cidrs = vec!["127.0.0.0/8".to_string()];
    let mut index_configs = HashMap::from([("docker.io".to_string(), index("docker.io", true, true))]);
    for r in insecure {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            index_configs.insert(r.clone(), index(r, false, false));
        }
    }
    RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(index_configs),
        mirrors: Some(Vec::new()),
    }
}

/// `GET /info`.
pub fn info(counts: Counts, host: &Host, s: &Settings, version: ApiVersion) -> Value {
    let runtime = |p: &str| Runtime { path: Some(p.into()), ..Default::default() };
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if s.userns_remap {
        security.push("name=userns".into());
    }
    let model = SystemInfo {
        id: Some(s.engine_id.clone()),
        containers: Some(counts.containers as i64),
        containers_running: Some(counts.running as i64),
        containers_paused: Some(counts.paused as i64),
        containers_stopped: Some(counts.stopped as i64),
        images: Some(counts.images as i64),
        driver: Some("overlay2".into()),
        driver_status: Some(vec![
            vec!["Backing Filesystem".into(), "extfs".into()],
            vec!["Supports d_type".into(), "true".into()],
        ]),
        docker_root_dir: Some(s.data_root.display().to_string()),
        plugins: Some(PluginsInfo {
            volume: Some(vec!["local".into()]),
            network: Some(vec!["bridge".into(), "host".into(), "null".into()]),
            authorization: None,
            log: Some(vec!["json-file".into(), "local".into(), "none".into()]),
        }),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(!host.cgroup2),
        ipv4_forwarding: Some(true),
        debug: Some(s.debug),
        nfd: Some(0),
        n_goroutines: Some(0),
        system_time: Some(berth_api::time::now()),
        logging_driver: Some(s.log_driver.clone()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if host.cgroup2 {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(host.kernel.clone()),
        operating_system: Some(host.os_name.clone()),
        os_version: Some(String::new()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(host.ncpu as i64),
        mem_total: Some(host.mem_total as i64),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        registry_config: Some(registry_config(&s.insecure_registries)),
        http_proxy: Some(String::new()),
        https_proxy: Some(String::new()),
        no_proxy: Some(String::new()),
        name: Some(host.hostname.clone()),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(berth_api::BERTH_VERSION.into()),
        runtimes: Some(HashMap::from([
            ("berth".to_string(), runtime("berth-shim")),
            ("runc".to_string(), runtime("runc")),
            ("crun".to_string(), runtime("crun")),
        ])),
        default_runtime: Some(s.default_runtime.clone()),
        swarm: Some(SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            ..Default::default()
        }),
        live_restore_enabled: Some(true),
        isolation: Some(SystemInfoIsolationEnum::EMPTY),
        init_binary: Some(String::new()),
        containerd_commit: Some(Commit { id: Some(String::new()) }),
        runc_commit: Some(Commit { id: Some(String::new()) }),
        init_commit: Some(Commit { id: Some(String::new()) }),
        security_options: Some(security),
        warnings: Some(Vec::new()),
        ..Default::default()
    };
    const NULLS: Nulls =
        &[(&[], &["GenericResources"]), (&["Plugins"], &["Authorization"]), (&["Swarm"], &["RemoteManagers"])];
    let mut v = render(&model, NULLS);
    let old_kernel = version < api(42);
    let bridge_nf = version < api(50);
    let legacy = InfoLegacy {
        kernel_memory: old_kernel.then_some(false),
        kernel_memory_tcp: old_kernel.then_some(false),
        bridge_nf_iptables: bridge_nf.then_some(false),
        bridge_nf_ip6tables: bridge_nf.then_some(false),
    };
    merge(&mut v, &[], &legacy);
    if version < api(49) {
        let registry = RegistryLegacy {
            allow_nondistributable_artifacts_cidrs: Vec::new(),
            allow_nondistributable_artifacts_hostnames: Vec::new(),
        };
        merge(&mut v, &["RegistryConfig"], &registry);
    }
    v
}

/// `POST /auth`.
pub fn logged_in() -> Value {
    let model =
        berth_api::models::AuthResponse { status: "Login Succeeded".into(), identity_token: Some(String::new()) };
    render(&model, &[])
}

/// One build cache record of `GET /system/df`: its key, size, and creation and last use (Unix seconds).
pub fn cache_entry(key: &str, size: u64, created: i64, used: i64) -> Value {
    let rfc = |t: i64| {
        berth_api::time::rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
    };
    let model = BuildCache {
        id: Some(key[..key.len().min(25)].to_string()),
        parents: Some(Vec::new()),
        typ: Some(BuildCacheTypeEnum::REGULAR),
        description: Some("build step".into()),
        in_use: Some(false),
        shared: Some(size == 0),
        size: Some(size as i64),
        created_at: Some(rfc(created)),
        last_used_at: Some(rfc(used)),
        usage_count: Some(1),
    };
    render(&model, &[])
}

/// `GET /system/df` in the form Docker sends (v1.53's model describes a newer form no client asks for yet);
/// `BuilderSize` before 1.42.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DiskUsage {
    layers_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    builder_size: Option<u64>,
    images: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    build_cache: Vec<Value>,
}

/// `GET /system/df`: the bytes of all layers, and the entries of images, containers, volumes and the build cache.
pub fn df(
    layers_size: u64,
    images: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    cache: Vec<Value>,
    version: ApiVersion,
) -> Value {
    let builder_size = (version < api(42)).then_some(0);
    render(&DiskUsage { layers_size, builder_size, images, containers, volumes, build_cache: cache }, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::check::has;

    #[test]
    fn version_and_info_have_docker_fields() {
        let host = Host { kernel: "6.1.0".into(), ncpu: 2, ..Default::default() };
        let v = version(&host);
        has(
            &v,
            &[
                ("Platform/Name", "s"),
                ("Components", "a"),
                ("Version", "s"),
                ("ApiVersion", "s"),
                ("MinAPIVersion", "s"),
                ("GitCommit", "s"),
                ("GoVersion", "s"),
                ("Os", "s"),
                ("Arch", "s"),
                ("KernelVersion", "s"),
                ("BuildTime", "s"),
            ],
        );
        assert_eq!(v["Components"][0]["Details"]["ApiVersion"], berth_api::API_VERSION.to_string());
        let i = info(Counts { containers: 3, running: 1, ..Default::default() }, &host, &Settings::default(), api(53));
        has(
            &i,
            &[
                ("ID", "s"),
                ("Containers", "n"),
                ("ContainersRunning", "n"),
                ("ContainersPaused", "n"),
                ("ContainersStopped", "n"),
                ("Images", "n"),
                ("Driver", "s"),
                ("DriverStatus", "a"),
                ("DockerRootDir", "s"),
                ("Plugins/Volume", "a"),
                ("Plugins/Authorization", "0"),
                ("MemoryLimit", "b"),
                ("SwapLimit", "b"),
                ("CpuCfsPeriod", "b"),
                ("CPUShares", "b"),
                ("CPUSet", "b"),
                ("PidsLimit", "b"),
                ("OomKillDisable", "b"),
                ("IPv4Forwarding", "b"),
                ("Debug", "b"),
                ("NFd", "n"),
                ("NGoroutines", "n"),
                ("SystemTime", "s"),
                ("LoggingDriver", "s"),
                ("CgroupDriver", "s"),
                ("CgroupVersion", "s"),
                ("NEventsListener", "n"),
                ("KernelVersion", "s"),
                ("OperatingSystem", "s"),
                ("OSVersion", "s"),
                ("OSType", "s"),
                ("Architecture", "s"),
                ("NCPU", "n"),
                ("MemTotal", "n"),
                ("IndexServerAddress", "s"),
                ("RegistryConfig/IndexConfigs", "o"),
                ("RegistryConfig/InsecureRegistryCIDRs", "a"),
                ("RegistryConfig/Mirrors", "a"),
                ("HttpProxy", "s"),
                ("HttpsProxy", "s"),
                ("NoProxy", "s"),
                ("Name", "s"),
                ("Labels", "a"),
                ("ExperimentalBuild", "b"),
                ("ServerVersion", "s"),
                ("Runtimes/runc/path", "s"),
                ("DefaultRuntime", "s"),
                ("Swarm/LocalNodeState", "s"),
                ("Swarm/RemoteManagers", "0"),
                ("LiveRestoreEnabled", "b"),
                ("Isolation", "s"),
                ("InitBinary", "s"),
                ("SecurityOptions", "a"),
                ("Warnings", "a"),
            ],
        );
        assert_eq!(i["CgroupVersion"], "1");
        for k in ["KernelMemory", "BridgeNfIptables"] {
            assert!(i.get(k).is_none(), "{k} at 1.53");
        }
        let old = info(Counts::default(), &host, &Settings::default(), api(41));
        has(
            &old,
            &[
                ("KernelMemory", "b"),
                ("KernelMemoryTCP", "b"),
                ("BridgeNfIptables", "b"),
                ("BridgeNfIp6tables", "b"),
                ("ContainerdCommit/ID", "s"),
                ("GenericResources", "0"),
                ("RegistryConfig/AllowNondistributableArtifactsCIDRs", "a"),
            ],
        );
        let c = cache_entry("0123456789012345678901234567890", 0, 0, 1);
        has(&c, &[("ID", "s"), ("Parents", "a"), ("Type", "s"), ("InUse", "b"), ("Shared", "b"), ("CreatedAt", "s")]);
        let d = df(1, vec![], vec![], vec![], vec![c], api(53));
        assert!(d.get("BuilderSize").is_none());
        has(&df(1, vec![], vec![], vec![], vec![], api(41)), &[("BuilderSize", "n")]);
        has(&d, &[("LayersSize", "n"), ("Images", "a"), ("Containers", "a"), ("Volumes", "a"), ("BuildCache", "a")]);
    }
}
