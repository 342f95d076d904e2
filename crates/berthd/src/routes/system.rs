//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Daemonic;
use crate::containers::{self, Status};
use crate::routes::{ApiError, ApiResult};

pub async fn ping() -> Response {
    (
        [
            ("builder-version", "1"),
            ("cache-control", "no-cache, no-store, must-revalidate"),
            ("pragma", "no-cache"),
            ("content-type", "text/plain; charset=utf-8"),
        ],
        "OK",
    )
        .into_response()
}

fn kernel() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

pub async fn version() -> Json<Value> {
    let v = berth_api::BERTH_VERSION;
    Json(json!({
        "Platform": {"Name": "Berth"},
        "Components": [{"Name": "Engine", "Version": v, "Details": {
            "ApiVersion": berth_api::API_VERSION.to_string(),
            "MinAPIVersion": berth_api::MIN_API_VERSION.to_string(),
            "Os": "linux", "Arch": "amd64", "KernelVersion": kernel(), "GitCommit": "", "GoVersion": "", "BuildTime": "",
            "Experimental": "false"
        }}],
        "Version": v,
        "ApiVersion": berth_api::API_VERSION.to_string(),
        "MinAPIVersion": berth_api::MIN_API_VERSION.to_string(),
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "KernelVersion": kernel(),
        "BuildTime": "",
    }))
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".into())
}

pub async fn info(d: Daemonic) -> ApiResult<Json<Value>> {
    let all = d.all_containers();
    let count = |s: &[Status]| all.iter().filter(|c| s.contains(&c.status())).count();
    let store = d.store.clone();
    let images = crate::task::blocking(move || store.list_images().map_err(crate::daemon::store_error)).await?;
    let v2 = berth_runtime::cgroups::is_unified();
    let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Json(json!({
        "ID": "",
        "Containers": all.len(),
        "ContainersRunning": count(&[Status::Running]),
        "ContainersPaused": count(&[Status::Paused]),
        "ContainersStopped": count(&[Status::Exited, Status::Created, Status::Dead]),
        "Images": images.len(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "DockerRootDir": d.config.data_root,
        "Plugins": {"Volume": [], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file", "local"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": berth_api::time::now(),
        "LoggingDriver": d.config.log.driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if v2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": kernel(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": crate::stats::machine_memory(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": berth_api::BERTH_VERSION,
        "Runtimes": {"berth": {"path": "berth-shim"}, "runc": {"path": "runc"}, "crun": {"path": "crun"}},
        "DefaultRuntime": d.config.runtime,
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": if d.config.userns_remap.is_some() {
            json!(["name=seccomp,profile=builtin", "name=userns"])
        } else {
            json!(["name=seccomp,profile=builtin"])
        },
        "Warnings": [],
    })))
}

pub async fn df(d: Daemonic) -> ApiResult<Json<Value>> {
    let store = d.store.clone();
    let images = crate::task::blocking(move || store.list_images().map_err(crate::daemon::store_error)).await?;
    let recs: Vec<_> = d.all_containers().iter().map(|c| c.record()).collect();
    let dd = d.0.clone();
    let now = std::time::SystemTime::now();
    let (img_json, ctr_json, layers) = tokio::task::spawn_blocking(move || {
        // SharedSize: the part of an image held by layers that other images use too.
        let mut uses: std::collections::HashMap<&berth_store::ChainId, usize> = std::collections::HashMap::new();
        for l in images.iter().flat_map(|i| &i.layers) {
            *uses.entry(l).or_default() += 1;
        }
        let shared = |i: &berth_store::Image| -> u64 {
            i.layers
                .iter()
                .filter(|l| uses.get(l).is_some_and(|n| *n > 1))
                .filter_map(|l| dd.store.layer(l).ok().flatten())
                .map(|l| l.size)
                .sum()
        };
        let imgs: Vec<Value> = images
            .iter()
            .map(|i| {
                let users = recs.iter().filter(|r| r.image_id == i.id.to_string()).count();
                json!({
                    "Id": i.id.to_string(), "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
                    "Created": i.created_unix(), "Size": i.size, "SharedSize": shared(i), "VirtualSize": i.size,
                    "Labels": i.labels(), "Containers": users,
                })
            })
            .collect();
        let ctrs: Vec<Value> =
            recs.iter().map(|r| containers::summary(&dd, r, now, Some(containers::sizes_blocking(&dd, r)))).collect();
        // Every layer once, however many images share it.
        let layers = dd.store.disk_usage().unwrap_or(0);
        (imgs, ctrs, layers)
    })
    .await
    .map_err(|e| ApiError(berth_api::Error::Internal(e.to_string())))?;
    let volumes = crate::volumes::usage(&d).await?;
    let store = d.store.clone();
    let cache = crate::task::blocking(move || store.cache_list().map_err(crate::daemon::store_error)).await?;
    let rfc = |t: i64| {
        berth_api::time::rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
    };
    let build_cache: Vec<Value> = cache
        .iter()
        .map(|(key, size, created, used)| {
            json!({
                "ID": &key[..key.len().min(25)], "Parents": [], "Type": "regular", "Description": "build step",
                "InUse": false, "Shared": *size == 0, "Size": size, "CreatedAt": rfc(*created),
                "LastUsedAt": rfc(*used), "UsageCount": 1,
            })
        })
        .collect();
    Ok(Json(json!({
        "LayersSize": layers,
        "Images": img_json,
        "Containers": ctr_json,
        "Volumes": volumes,
        "BuildCache": build_cache,
    })))
}

/// `GET /events`: no events are published yet; the stream stays open (as Docker's does) until the client leaves.
pub async fn events() -> Response {
    let stream = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    ([("content-type", "application/json")], axum::body::Body::from_stream(stream)).into_response()
}

pub async fn no_session() -> Response {
    ApiError(berth_api::Error::NotFound("page not found".into())).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    let _ = StatusCode::NOT_FOUND;
    ApiError(berth_api::Error::NotFound(format!("page not found: {}", uri.path()))).into_response()
}
