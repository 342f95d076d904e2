//! Volumes: `GET /volumes/{name}`, `GET /volumes`, `POST /volumes/create`, and the volumes of `GET /system/df`.

use std::path::Path;

use berth_api::models::{Volume as VolumeModel, VolumeScopeEnum, VolumeUsageData};
use serde_json::Value;

use super::render::render;
use crate::volumes::Volume;

/// A volume; `mountpoint`: its `_data` directory; `usage`: (bytes, containers using it) for `system df`.
pub fn volume(v: &Volume, mountpoint: &Path, usage: Option<(u64, usize)>) -> Value {
    let model = VolumeModel {
        name: v.name.clone(),
        driver: v.driver.clone(),
        mountpoint: mountpoint.display().to_string(),
        created_at: Some(v.created_at.clone()),
        labels: v.labels.clone().unwrap_or_default(),
        scope: Some(VolumeScopeEnum::LOCAL),
        options: v.options.clone().unwrap_or_default(),
        usage_data: usage.map(|(size, refs)| VolumeUsageData { size: size as i64, ref_count: refs as i64 }),
        ..Default::default()
    };
    let mut out = render(&model, &[]);
    // Docker sends a volume's unset labels and options as `null` (bollard's model has plain maps).
    if v.labels.is_none() {
        out["Labels"] = Value::Null;
    }
    if v.options.is_none() {
        out["Options"] = Value::Null;
    }
    out
}

/// `GET /volumes`.
pub fn list(volumes: Vec<Value>) -> Value {
    serde_json::json!({"Volumes": volumes, "Warnings": Vec::<String>::new()})
}

/// `POST /volumes/prune`: `VolumesDeleted` is `null` when none was.
pub fn pruned(deleted: Vec<String>, reclaimed: u64) -> Value {
    let model = berth_api::models::VolumePruneResponse {
        volumes_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: Some(reclaimed as i64),
    };
    render(&model, &[(&[], &["VolumesDeleted"])])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::check::{has, lacks};

    #[test]
    fn volume_has_docker_fields() {
        let v = Volume {
            name: "v1".into(),
            driver: "local".into(),
            created_at: "2026-12-06T12:00:00Z".into(),
            labels: None,
            options: None,
        };
        let j = volume(&v, Path::new("/data/volumes/v1/_data"), None);
        has(
            &j,
            &[
                ("Name", "s"),
                ("Driver", "s"),
                ("Mountpoint", "s"),
                ("CreatedAt", "s"),
                ("Labels", "0"),
                ("Options", "0"),
                ("Scope", "s"),
            ],
        );
        lacks(&j, &["UsageData", "Status"]);
        let j = volume(&v, Path::new("/x"), Some((5, 1)));
        assert_eq!(j["UsageData"], serde_json::json!({"Size": 5, "RefCount": 1}));
        has(&list(vec![j]), &[("Volumes", "a"), ("Warnings", "a")]);
        assert_eq!(pruned(vec![], 0), serde_json::json!({"VolumesDeleted": null, "SpaceReclaimed": 0}));
    }
}
