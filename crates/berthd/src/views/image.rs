//! Images: `GET /images/{name}/json`, the entries of `GET /images/json`, `GET /images/{name}/history`.

use std::collections::HashMap;

use berth_api::ApiVersion;
use berth_api::models::{
    ContainerConfig, DriverData, ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect, ImageInspectMetadata,
    ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};
use berth_store::Image;
use serde::Serialize;
use serde_json::Value;

use super::render::{Nulls, api, merge, render};

/// The image config's `config` (or `container_config`) as a container `Config` with every key Docker sends: the
/// unset ones `""`, `false` or `null` (clients read `Config["OnBuild"]`, `Config["Env"]` without checking).
fn full_config(v: &Value) -> Value {
    let c: ContainerConfig = serde_json::from_value(v.clone()).unwrap_or_default();
    render(&super::container::config(&c), &[(&[], CONFIG_NULLS)])
}

/// Fields of an image's `Config` Docker sends as `null` when unset.
const CONFIG_NULLS: &[&str] = &["Env", "Cmd", "Volumes", "Entrypoint", "OnBuild", "Labels"];

/// Fields the v1.53 model does not have: `Parent` and `DockerVersion` (Docker sends them still, empty for pulled
/// images), and before 1.45 `Container` and `ContainerConfig`, before 1.44 `VirtualSize`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Legacy {
    parent: String,
    docker_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_size: Option<i64>,
}

/// `GET /images/{name}/json`.
pub fn inspect(i: &Image, version: ApiVersion) -> Value {
    let cfg = &i.config;
    let str_of = |k: &str, default: &str| cfg[k].as_str().unwrap_or(default).to_string();
    let lower: Vec<String> = i.lower_dirs().iter().map(|p| p.display().to_string()).collect();
    let layers: Vec<String> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(String::from))
        .collect();
    let model = ImageInspect {
        id: Some(i.id.to_string()),
        repo_tags: Some(i.repo_tags.clone()),
        repo_digests: Some(i.repo_digests.clone()),
        comment: Some(str_of("comment", "")),
        created: Some(str_of("created", berth_api::time::ZERO)),
        author: Some(str_of("author", "")),
        config: None,
        architecture: Some(str_of("architecture", "amd64")),
        variant: cfg["variant"].as_str().filter(|v| !v.is_empty()).map(String::from),
        os: Some(str_of("os", "linux")),
        os_version: cfg["os.version"].as_str().filter(|v| !v.is_empty()).map(String::from),
        size: Some(i.size),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data: HashMap::from([("LowerDir".to_string(), lower.join(":"))]),
        }),
        root_fs: Some(ImageInspectRootFs { typ: "layers".into(), layers: Some(layers) }),
        metadata: Some(ImageInspectMetadata { last_tag_time: Some(berth_api::time::ZERO.into()) }),
        ..Default::default()
    };
    let mut v = render(&model, &[]);
    if let Value::Object(m) = &mut v {
        m.insert("Config".into(), full_config(&cfg["config"]));
    }
    let legacy = Legacy {
        parent: String::new(),
        docker_version: str_of("docker_version", ""),
        container: (version < api(45)).then(|| str_of("container", "")),
        container_config: (version < api(45)).then(|| full_config(&cfg["container_config"])),
        virtual_size: (version < api(44)).then_some(i.size),
    };
    merge(&mut v, &[], &legacy);
    v
}

/// Before 1.44 the list has `VirtualSize`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListLegacy {
    virtual_size: i64,
}

/// One entry of `GET /images/json` (`Containers` and `SharedSize` -1: not counted, as Docker's list by default).
pub fn summary(i: &Image, version: ApiVersion) -> Value {
    entry(i, -1, -1, version)
}

/// One image of `GET /system/df`: with the containers using it and the bytes it shares with other images.
pub fn usage(i: &Image, containers: i64, shared_size: i64, version: ApiVersion) -> Value {
    entry(i, containers, shared_size, version)
}

fn entry(i: &Image, containers: i64, shared_size: i64, version: ApiVersion) -> Value {
    let labels: HashMap<String, String> = serde_json::from_value(i.labels()).unwrap_or_default();
    let model = ImageSummary {
        id: i.id.to_string(),
        parent_id: String::new(),
        repo_tags: i.repo_tags.clone(),
        repo_digests: i.repo_digests.clone(),
        created: i.created_unix(),
        size: i.size,
        shared_size,
        labels,
        containers,
        manifests: None,
        descriptor: None,
    };
    let mut v = render(&model, &[]);
    if version < api(44) {
        merge(&mut v, &[], &ListLegacy { virtual_size: i.size });
    }
    v
}

/// `GET /images/{name}/history`, newest first; `layer_sizes`: the size of each of the image's layers, bottom first.
pub fn history(i: &Image, layer_sizes: &[i64]) -> Value {
    let entries = i.config["history"].as_array().cloned().unwrap_or_default();
    let n = entries.len();
    // Each entry that made a layer has the next layer's size.
    let mut next = 0;
    let sizes: Vec<i64> = entries
        .iter()
        .map(|h| {
            if h["empty_layer"].as_bool().unwrap_or(false) {
                return 0;
            }
            next += 1;
            layer_sizes.get(next - 1).copied().unwrap_or(0)
        })
        .collect();
    let items: Vec<ImageHistoryResponseItem> = entries
        .iter()
        .enumerate()
        .rev()
        .map(|(idx, h)| {
            let top = idx + 1 == n;
            ImageHistoryResponseItem {
                id: if top { i.id.to_string() } else { "<missing>".to_string() },
                created: h["created"].as_str().and_then(berth_api::time::parse).map(berth_api::time::unix).unwrap_or(0),
                created_by: h["created_by"].as_str().unwrap_or("").to_string(),
                tags: if top { i.repo_tags.clone() } else { Vec::new() },
                size: sizes[idx],
                comment: h["comment"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect();
    // Docker sends `Tags: null` for the entries below the top one (bollard's model has a plain list).
    const NULLS: Nulls = &[];
    let mut v = render(&items, NULLS);
    if let Value::Array(a) = &mut v {
        for (e, item) in a.iter_mut().zip(&items) {
            if item.id == "<missing>" {
                e["Tags"] = Value::Null;
            }
        }
    }
    v
}

/// A `{"status": ...}` line of a JSON progress stream (import).
pub fn progress_status(status: &str) -> Value {
    render(&berth_api::models::CreateImageInfo { status: Some(status.to_string()), ..Default::default() }, &[])
}

/// A `{"stream": ...}` line of a JSON progress stream (load); bollard's `BuildInfo` has it but cannot be serialized.
#[derive(Serialize)]
struct Stream<'a> {
    stream: &'a str,
}

/// A `{"stream": ...}` line of a JSON progress stream (load).
pub fn progress_stream(text: &str) -> Value {
    render(&Stream { stream: text }, &[])
}

/// The error line that ends a JSON progress stream: `{"errorDetail": {"message": ...}, "error": ...}` (docker-py's
/// `ImageLoadError`, the CLI's "Error response from daemon" after a 200).
#[derive(Serialize)]
struct StreamError<'a> {
    #[serde(rename = "errorDetail")]
    error_detail: berth_api::models::ErrorDetail,
    error: &'a str,
}

/// See [`StreamError`].
pub fn progress_error(message: &str) -> Value {
    let detail = berth_api::models::ErrorDetail { message: Some(message.to_string()), code: None };
    render(&StreamError { error_detail: detail, error: message }, &[])
}

/// One entry of `DELETE /images/{name}` and of `POST /images/prune`: a tag removed.
pub fn untagged(tag: &str) -> Value {
    render(&ImageDeleteResponseItem { untagged: Some(tag.to_string()), deleted: None }, &[])
}

/// One entry of `DELETE /images/{name}` and of `POST /images/prune`: an image or layer deleted.
pub fn deleted(id: &str) -> Value {
    render(&ImageDeleteResponseItem { untagged: None, deleted: Some(id.to_string()) }, &[])
}

/// `POST /images/prune` (`entries` from [`untagged`] and [`deleted`]): `ImagesDeleted` is `null` when none was.
pub fn pruned(entries: Vec<Value>, reclaimed: i64) -> Value {
    let mut v = render(&ImagePruneResponse { images_deleted: None, space_reclaimed: Some(reclaimed) }, &[]);
    v["ImagesDeleted"] = if entries.is_empty() { Value::Null } else { Value::Array(entries) };
    v
}

/// `GET /distribution/{name}/json`.
pub fn distribution(dist: &berth_registry::pull::Distribution) -> Value {
    use berth_api::models::{DistributionInspect, OciDescriptor, OciPlatform};
    let platforms =
        dist.platforms.iter().filter_map(|p| serde_json::from_value::<OciPlatform>(p.clone()).ok()).collect();
    let model = DistributionInspect {
        descriptor: OciDescriptor {
            media_type: Some(dist.media_type.clone()),
            digest: Some(dist.digest.to_string()),
            size: Some(dist.size as i64),
            ..Default::default()
        },
        platforms,
    };
    render(&model, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::check::{CONFIG_KEYS, has, lacks};

    /// An image as `docker import` makes one: a config with `Cmd` only, one layer.
    fn image(store: &berth_store::Store) -> Image {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(nix::unistd::getuid().as_raw() as u64);
        h.set_gid(nix::unistd::getgid().as_raw() as u64);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"hi"[..]).expect("tar");
        let tar = b.into_inner().expect("tar");
        let opts = berth_store::ImportOptions { changes: vec!["CMD [\"sh\"]".into()], ..Default::default() };
        let id = store.import_image(&tar[..], opts).expect("import");
        store.tag(&id, "busybox").expect("tag");
        store.resolve_image("busybox:latest").expect("image")
    }

    #[test]
    fn inspect_has_every_config_key_and_per_version_fields() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = berth_store::Store::open(tmp.path()).expect("store");
        let i = image(&store);
        let v = inspect(&i, api(53));
        has(
            &v,
            &[
                ("Id", "s"),
                ("RepoTags", "a"),
                ("RepoDigests", "a"),
                ("Parent", "s"),
                ("Comment", "s"),
                ("Created", "s"),
                ("DockerVersion", "s"),
                ("Author", "s"),
                ("Architecture", "s"),
                ("Os", "s"),
                ("Size", "n"),
                ("GraphDriver/Name", "s"),
                ("GraphDriver/Data/LowerDir", "s"),
                ("RootFS/Type", "s"),
                ("RootFS/Layers", "a"),
                ("Metadata/LastTagTime", "s"),
            ],
        );
        has(&v["Config"], CONFIG_KEYS);
        assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
        for k in ["Env", "Volumes", "Entrypoint", "OnBuild", "Labels"] {
            assert!(v["Config"][k].is_null(), "Config.{k} unset: null");
        }
        lacks(&v, &["Container", "ContainerConfig", "VirtualSize"]);
        let v44 = inspect(&i, api(44));
        has(&v44, &[("Container", "s")]);
        has(&v44["ContainerConfig"], CONFIG_KEYS);
        lacks(&v44, &["VirtualSize"]);
        has(&inspect(&i, api(43)), &[("VirtualSize", "n")]);

        let s = summary(&i, api(53));
        has(
            &s,
            &[
                ("Id", "s"),
                ("ParentId", "s"),
                ("RepoTags", "a"),
                ("RepoDigests", "a"),
                ("Created", "n"),
                ("Size", "n"),
                ("SharedSize", "n"),
                ("Labels", "o"),
                ("Containers", "n"),
            ],
        );
        assert_eq!(s["Containers"], -1);
        lacks(&s, &["VirtualSize"]);
        let old = summary(&i, api(43));
        assert_eq!((old["Containers"].as_i64(), old["VirtualSize"].as_i64()), (Some(-1), Some(i.size)));

        let p = pruned(vec![untagged("a:b"), deleted("sha256:x")], 3);
        assert_eq!(
            p,
            serde_json::json!({"ImagesDeleted": [{"Untagged": "a:b"}, {"Deleted": "sha256:x"}], "SpaceReclaimed": 3})
        );
        assert_eq!(progress_status("s"), serde_json::json!({"status": "s"}));
        assert_eq!(progress_stream("l\n"), serde_json::json!({"stream": "l\n"}));
        assert_eq!(pruned(vec![], 0), serde_json::json!({"ImagesDeleted": null, "SpaceReclaimed": 0}));
        let u = usage(&i, 1, 5, api(41));
        assert_eq!(
            (u["Containers"].as_i64(), u["SharedSize"].as_i64(), u["VirtualSize"].as_i64()),
            (Some(1), Some(5), Some(i.size))
        );
        let h = history(&i, &[7]);
        has(
            &h[0],
            &[("Id", "s"), ("Created", "n"), ("CreatedBy", "s"), ("Tags", "a"), ("Size", "n"), ("Comment", "s")],
        );
    }
}
