//! Garbage collection (`berth registry gc`): mark every blob a manifest of any repository references (config,
//! layers, an index's manifests, an artifact's blobs, the manifests themselves), sweep the rest.
//!
//! A push uploads its blobs before the manifest that references them, so a blob, a repository link or an upload
//! younger than the grace period is kept: with a grace longer than any push takes, gc can run while the server
//! serves. With `grace` zero it must run while the server is stopped.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// What a collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs: usize,
    /// Bytes they held.
    pub bytes: u64,
    /// Abandoned uploads deleted.
    pub uploads: usize,
}

fn young(meta: &std::fs::Metadata, cutoff: SystemTime) -> bool {
    meta.modified().is_ok_and(|m| m > cutoff)
}

/// Collects `root`, keeping anything modified within `grace`. With `dry_run`, only counts.
pub fn garbage_collect(root: &Path, grace: Duration, dry_run: bool) -> std::io::Result<GcReport> {
    let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut keep = HashSet::new();
    let mut repos = Vec::new();
    super::storage::walk_repos(&root.join("repositories"), "", &mut repos);
    for r in &repos {
        let dir = root.join("repositories").join(r);
        for e in std::fs::read_dir(dir.join("_manifests")).into_iter().flatten().flatten() {
            let hex = e.file_name().to_string_lossy().into_owned();
            if let Ok(data) = std::fs::read(super::blob_path(root, &hex))
                && let Ok(v) = serde_json::from_slice::<Value>(&data)
            {
                let mut add = |d: &Value| {
                    if let Some(h) = d.as_str().and_then(|s| s.strip_prefix("sha256:")) {
                        keep.insert(h.to_string());
                    }
                };
                add(&v["config"]["digest"]);
                for key in ["layers", "manifests", "blobs"] {
                    for l in v[key].as_array().into_iter().flatten() {
                        add(&l["digest"]);
                    }
                }
            }
            keep.insert(hex);
        }
        // A fresh link (an upload or mount of a push still in progress) protects its blob.
        for e in std::fs::read_dir(dir.join("_layers")).into_iter().flatten().flatten() {
            if e.metadata().is_ok_and(|m| young(&m, cutoff)) {
                keep.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut report = GcReport::default();
    for e in std::fs::read_dir(root.join("blobs/sha256"))?.flatten() {
        let hex = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.metadata() else { continue };
        if keep.contains(&hex) || young(&meta, cutoff) {
            continue;
        }
        if !dry_run {
            std::fs::remove_file(e.path())?;
        }
        report.blobs += 1;
        report.bytes += meta.len();
    }
    if dry_run {
        return Ok(report);
    }
    // Links to blobs that are gone.
    for r in &repos {
        let dir = root.join("repositories").join(r).join("_layers");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !super::blob_path(root, &e.file_name().to_string_lossy()).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // Uploads nobody has written to within the grace period, and leftovers of interrupted writes.
    for dir in ["uploads", "tmp"] {
        for e in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            if e.metadata().is_ok_and(|m| !young(&m, cutoff)) {
                let name = e.file_name().to_string_lossy().into_owned();
                if std::fs::remove_file(e.path()).is_ok() && dir == "uploads" && !name.ends_with(".repo") {
                    report.uploads += 1;
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(root)).ok();
        std::fs::write(p, data).ok();
    }

    #[test]
    fn keeps_what_manifests_reference() -> std::io::Result<()> {
        let t = tempfile::tempdir()?;
        let root = t.path();
        let (cfg, layer, orphan, man) = ("c".repeat(64), "l".repeat(64), "o".repeat(64), "m".repeat(64));
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{cfg}"}},"layers":[{{"digest":"sha256:{layer}"}}]}}"#
        );
        for (h, d) in [(&cfg, b"c".as_slice()), (&layer, b"ll"), (&orphan, b"ooo"), (&man, manifest.as_bytes())] {
            put(root, &format!("blobs/sha256/{h}"), d);
        }
        put(root, &format!("repositories/a/_manifests/{man}"), b"application/vnd.oci.image.manifest.v1+json");
        put(root, &format!("repositories/a/_layers/{orphan}"), b"");
        put(root, "uploads/abc", b"partial");
        // Within the grace period everything stays.
        assert_eq!(garbage_collect(root, Duration::from_secs(3600), false)?, GcReport::default());
        let dry = garbage_collect(root, Duration::ZERO, true)?;
        assert_eq!((dry.blobs, dry.bytes), (1, 3));
        assert!(root.join(format!("blobs/sha256/{orphan}")).exists());
        let r = garbage_collect(root, Duration::ZERO, false)?;
        assert_eq!(r, GcReport { blobs: 1, bytes: 3, uploads: 1 });
        for h in [&cfg, &layer, &man] {
            assert!(root.join(format!("blobs/sha256/{h}")).exists());
        }
        assert!(!root.join(format!("blobs/sha256/{orphan}")).exists());
        assert!(!root.join(format!("repositories/a/_layers/{orphan}")).exists());
        Ok(())
    }
}
