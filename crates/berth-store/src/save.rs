//! `docker save` and `docker load`: images as one tar in docker's format, which is at the same time an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/...`) and docker's own `manifest.json`, as Docker 25+ writes
//! it. Layers go out as the uncompressed tars the store keeps (their digests are the diff ids), so saving needs no
//! compression and the manifests are plain OCI ones.
//!
//! Loading accepts that format, the older one (`<id>/layer.tar`, `<id>.json`, with symlinks between duplicate
//! layers), and a plain OCI layout (`index.json` without `manifest.json`, compressed layers allowed). The archive is
//! first unpacked into a private directory of the content store's ingest area (regular files only; links are
//! resolved inside the archive, never on disk; any path that climbs out is refused), then every image is imported
//! layer by layer with its diff ids verified. Nothing is tagged before its image is complete.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{Result, StoreError, full_disk, io_ctx};
use crate::image::host_architecture;
use crate::reference::{AnyReference, Reference};
use crate::{Image, Store};

/// OCI media types used in saved archives.
pub mod media {
    /// An OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// An uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// A Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// One image to save, with the tags it goes out under.
struct Saved {
    image: Image,
    tags: Vec<Reference>,
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument(msg.into())
}

impl Store {
    /// Writes the images `names` (references, ids or id prefixes; a repository name without a tag means all of its
    /// tags) to `out` as one tar in docker's `save` format. Unknown names fail before anything is written.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let mut saved: Vec<Saved> = Vec::new();
        for name in names {
            let (image, tags) = self.resolve_for_save(name)?;
            match saved.iter_mut().find(|s| s.image.id == image.id) {
                Some(s) => {
                    for t in tags {
                        if !s.tags.contains(&t) {
                            s.tags.push(t);
                        }
                    }
                }
                None => saved.push(Saved { image, tags }),
            }
        }
        let mut w = tar::Builder::new(out);
        let mut written: std::collections::HashSet<String> = std::collections::HashSet::new();
        for dir in ["blobs/", "blobs/sha256/"] {
            append_dir(&mut w, dir)?;
        }
        let mut index_entries = Vec::new();
        let mut manifest_json = Vec::new();
        for s in &saved {
            let config = self.content.read(s.image.id.digest())?;
            let diff_ids = diff_ids_of(&s.image.config)?;
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for d in &diff_ids {
                let size = self.content.size(d.digest())?;
                let path = format!("blobs/sha256/{}", d.hex());
                if written.insert(path.clone()) {
                    let f = self.layer_tar(d)?;
                    append_file(&mut w, &path, size, f)?;
                }
                layer_descs.push(json!({"mediaType": media::OCI_LAYER_TAR, "digest": d.as_str(), "size": size}));
                layer_paths.push(path);
            }
            let config_path = format!("blobs/sha256/{}", s.image.id.hex());
            if written.insert(config_path.clone()) {
                append_file(&mut w, &config_path, config.len() as u64, &config[..])?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": s.image.id.as_str(), "size": config.len()},
                "layers": layer_descs,
            });
            let manifest = to_json(&manifest)?;
            let mdigest = Digest::of(&manifest);
            let mpath = format!("blobs/sha256/{}", mdigest.hex());
            if written.insert(mpath.clone()) {
                append_file(&mut w, &mpath, manifest.len() as u64, &manifest[..])?;
            }
            let desc = |annotations: Option<Value>| {
                let mut d =
                    json!({"mediaType": media::OCI_MANIFEST, "digest": mdigest.as_str(), "size": manifest.len()});
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if s.tags.is_empty() {
                index_entries.push(desc(None));
            }
            for t in &s.tags {
                index_entries.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                }))));
            }
            let tags: Vec<String> = s.tags.iter().map(Reference::familiar_string).collect();
            manifest_json.push(json!({"Config": config_path, "RepoTags": tags, "Layers": layer_paths}));
        }
        let index = to_json(&json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index_entries}))?;
        append_file(&mut w, "index.json", index.len() as u64, &index[..])?;
        let manifest_json = to_json(&Value::Array(manifest_json))?;
        append_file(&mut w, "manifest.json", manifest_json.len() as u64, &manifest_json[..])?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        append_file(&mut w, "oci-layout", layout.len() as u64, &layout[..])?;
        w.into_inner()
            .map_err(io_ctx(|| "writing the archive".into()))?
            .flush()
            .map_err(io_ctx(|| "writing the archive".into()))
    }

    /// The image `name` names and the tags it is saved under.
    fn resolve_for_save(&self, name: &str) -> Result<(Image, Vec<Reference>)> {
        if let Ok(AnyReference::Named(r)) = AnyReference::parse(name) {
            if r.digest().is_some() {
                return Ok((self.resolve_image(name)?, Vec::new()));
            }
            if r.tag().is_some() {
                return Ok((self.resolve_image(name)?, vec![r]));
            }
            // A bare repository: the image of `:latest` if it exists, else whatever a bare name resolves to.
            let image = self.resolve_image(name)?;
            let mut tags = Vec::new();
            for t in &image.repo_tags {
                if let Ok(tr) = Reference::parse(t)
                    && tr.name() == r.name()
                {
                    tags.push(tr);
                }
            }
            return Ok((image, tags));
        }
        Ok((self.resolve_image(name)?, Vec::new()))
    }

    /// Loads images from a tar in docker's `save` format or an OCI image layout. `progress` gets one line per
    /// loaded image (`Loaded image: busybox:latest`, `Loaded image ID: sha256:...`), as docker prints them.
    pub fn load(&self, reader: impl Read, progress: &mut dyn FnMut(String)) -> Result<Vec<ImageId>> {
        let dir =
            TempTree::create(&self.content.ingest_dir().join(format!("load-{}", crate::content::random_hex(8)?)))?;
        let tree = dir.unpack(reader)?;
        let images = if tree.exists("manifest.json") {
            tree.docker_manifests()?
        } else if tree.exists("index.json") {
            tree.oci_manifests()?
        } else {
            return Err(bad(
                "invalid archive: it has neither manifest.json nor index.json (not an image saved by docker save, nor an OCI layout)",
            ));
        };
        let mut ids = Vec::new();
        for img in images {
            let config: Value = serde_json::from_slice(&img.config)
                .map_err(|e| bad(format!("invalid image config in the archive: {e}")))?;
            let diff_ids = diff_ids_of(&config)?;
            if diff_ids.len() != img.layers.len() {
                return Err(bad(format!(
                    "invalid archive: the image config lists {} layers, the manifest {}",
                    diff_ids.len(),
                    img.layers.len()
                )));
            }
            let mut parent: Option<ChainId> = None;
            for (path, diff) in img.layers.iter().zip(&diff_ids) {
                let f = tree.open(path)?;
                let layer = self.import_layer_verified(f, parent.as_ref(), diff)?;
                parent = Some(layer.chain_id);
                crate::fault::point("load.after-layer");
            }
            crate::fault::point("load.before-image");
            let id = self.create_image_named(&img.config, &img.tags, &[])?;
            let mut tagged = false;
            for t in &img.tags {
                let shown = Reference::parse(t).map(|r| r.familiar_string()).unwrap_or_else(|_| t.clone());
                progress(format!("Loaded image: {shown}"));
                tagged = true;
            }
            if !tagged {
                progress(format!("Loaded image ID: {id}"));
            }
            ids.push(id);
        }
        Ok(ids)
    }
}

fn to_json(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| bad(format!("cannot serialise JSON: {e}")))
}

fn diff_ids_of(config: &Value) -> Result<Vec<DiffId>> {
    match &config["rootfs"]["diff_ids"] {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|v| DiffId::parse(v.as_str().ok_or_else(|| bad("image config: a diff id is not a string"))?))
            .collect(),
        _ => Err(bad("image config: rootfs.diff_ids is not a list")),
    }
}

fn append_dir<W: Write>(w: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    w.append_data(&mut h, path, io::empty()).map_err(io_ctx(|| "writing the archive".into()))
}

fn append_file<W: Write>(w: &mut tar::Builder<W>, path: &str, size: u64, data: impl Read) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    w.append_data(&mut h, path, data.take(size)).map_err(io_ctx(|| format!("writing {path} to the archive")))
}

/// An image found in an archive: config bytes, layer paths in the archive, full references to tag.
struct Found {
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<String>,
}

/// A private directory that is removed when dropped.
struct TempTree {
    path: PathBuf,
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), "removing the load directory: {e}");
        }
    }
}

/// Cleans an archive path to its normal components; `None` if it climbs out or is absolute.
fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if name.starts_with('/') {
        return None;
    }
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// The unpacked archive: its files, and its links (path → target path, both cleaned, relative to the archive root).
struct Tree<'a> {
    root: &'a Path,
    files: std::collections::HashSet<String>,
    links: HashMap<String, String>,
}

impl TempTree {
    fn create(path: &Path) -> Result<TempTree> {
        fs::create_dir(path).map_err(io_ctx(|| format!("creating {}", path.display())))?;
        Ok(TempTree { path: path.to_path_buf() })
    }

    fn unpack(&self, reader: impl Read) -> Result<Tree<'_>> {
        let mut archive = tar::Archive::new(reader);
        let mut tree = Tree { root: &self.path, files: Default::default(), links: HashMap::new() };
        let entries = archive.entries().map_err(|e| bad(format!("invalid archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("invalid archive: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name =
                clean(&raw).ok_or_else(|| bad(format!("invalid archive: the path {raw:?} leaves the archive")))?;
            let kind = entry.header().entry_type();
            if name.is_empty() {
                continue;
            }
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let dest = self.path.join(&name);
                    // A full disk is the host's fault, not the archive's.
                    let fail = |what: &str, e: io::Error| match full_disk(&e) {
                        true => StoreError::io(format!("writing {name}"), e),
                        false => bad(format!("invalid archive: {what}{name}: {e}")),
                    };
                    if let Some(p) = dest.parent() {
                        fs::create_dir_all(p).map_err(|e| fail("", e))?;
                    }
                    let mut f =
                        fs::OpenOptions::new().write(true).create_new(true).open(&dest).map_err(|e| fail("", e))?;
                    io::copy(&mut entry, &mut f).map_err(|e| fail("reading ", e))?;
                    tree.files.insert(name);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| bad(format!("invalid archive: the link {name} has no target")))?;
                    let joined = if kind == tar::EntryType::Symlink {
                        let base = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        format!("{base}/{target}")
                    } else {
                        target.clone()
                    };
                    let resolved = clean(&joined).ok_or_else(|| {
                        bad(format!("invalid archive: the link {name} → {target} leaves the archive"))
                    })?;
                    tree.links.insert(name, resolved);
                }
                _ => {}
            }
        }
        Ok(tree)
    }
}

impl Tree<'_> {
    /// The file a path names, following the archive's links.
    fn resolve(&self, path: &str) -> Result<String> {
        let mut cur =
            clean(path).ok_or_else(|| bad(format!("invalid archive: the path {path:?} leaves the archive")))?;
        for _ in 0..16 {
            if self.files.contains(&cur) {
                return Ok(cur);
            }
            match self.links.get(&cur) {
                Some(t) => cur = t.clone(),
                None => return Err(bad(format!("invalid archive: {path} is missing"))),
            }
        }
        Err(bad(format!("invalid archive: too many levels of links at {path}")))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    fn open(&self, path: &str) -> Result<File> {
        let p = self.resolve(path)?;
        File::open(self.root.join(&p)).map_err(io_ctx(|| format!("opening {p}")))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open(path)?.read_to_end(&mut buf).map_err(io_ctx(|| format!("reading {path}")))?;
        Ok(buf)
    }

    fn read_json(&self, path: &str) -> Result<Value> {
        serde_json::from_slice(&self.read(path)?).map_err(|e| bad(format!("invalid archive: {path}: {e}")))
    }

    /// A blob of an OCI layout, verified against its digest.
    fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        let d = Digest::parse(digest)?;
        let bytes = self.read(&blob_path(&d))?;
        if Digest::of(&bytes) != d {
            return Err(bad(format!("invalid archive: blob {d} does not match its digest")));
        }
        Ok(bytes)
    }

    /// Images listed in docker's `manifest.json`.
    fn docker_manifests(&self) -> Result<Vec<Found>> {
        let m = self.read_json("manifest.json")?;
        let list = m.as_array().ok_or_else(|| bad("invalid archive: manifest.json is not a list"))?;
        let mut out = Vec::new();
        for e in list {
            let config_path = e["Config"].as_str().ok_or_else(|| bad("invalid archive: manifest.json: no Config"))?;
            let layers = match &e["Layers"] {
                Value::Null => Vec::new(),
                Value::Array(a) => a
                    .iter()
                    .map(|l| {
                        l.as_str().map(str::to_string).ok_or_else(|| bad("invalid archive: a layer is not a path"))
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(bad("invalid archive: manifest.json: Layers is not a list")),
            };
            let mut tags = Vec::new();
            if let Some(a) = e["RepoTags"].as_array() {
                for t in a.iter().filter_map(Value::as_str) {
                    let r = Reference::parse(t)
                        .map_err(|err| bad(format!("invalid archive: invalid reference {t:?}: {err}")))?;
                    tags.push(r.with_default_tag().to_string());
                }
            }
            out.push(Found { config: self.read(config_path)?, layers, tags });
        }
        Ok(out)
    }

    /// Images of a plain OCI layout's `index.json` (nested indexes resolved to the host's platform).
    fn oci_manifests(&self) -> Result<Vec<Found>> {
        let index = self.read_json("index.json")?;
        let mut out: Vec<Found> = Vec::new();
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        for desc in manifests {
            let ann = &desc["annotations"];
            let tag = ann["io.containerd.image.name"]
                .as_str()
                .or_else(|| ann["org.opencontainers.image.ref.name"].as_str())
                .and_then(|n| Reference::parse(n).ok())
                .filter(|r| r.digest().is_none())
                .map(|r| r.with_default_tag().to_string());
            let mut desc = desc.clone();
            for _ in 0..8 {
                let mt = desc["mediaType"].as_str().unwrap_or(media::OCI_MANIFEST);
                if mt != media::OCI_INDEX && mt != media::DOCKER_LIST {
                    break;
                }
                let sub: Value = serde_json::from_slice(&self.blob(desc["digest"].as_str().unwrap_or(""))?)
                    .map_err(|e| bad(format!("invalid archive: an index: {e}")))?;
                desc = pick_platform(&sub, host_architecture(), "linux", None).ok_or_else(|| {
                    bad(format!("invalid archive: no image for linux/{} in an index", host_architecture()))
                })?;
            }
            let manifest: Value = serde_json::from_slice(&self.blob(desc["digest"].as_str().unwrap_or(""))?)
                .map_err(|e| bad(format!("invalid archive: a manifest: {e}")))?;
            let config_digest = manifest["config"]["digest"].as_str().unwrap_or("");
            let config = self.blob(config_digest)?;
            let layers = manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| Digest::parse(l["digest"].as_str().unwrap_or("")).map(|d| blob_path(&d)))
                .collect::<Result<Vec<_>>>()?;
            let config_id = Digest::of(&config);
            match out.iter_mut().find(|f| Digest::of(&f.config) == config_id) {
                Some(f) => f.tags.extend(tag),
                None => out.push(Found { config, layers, tags: tag.into_iter().collect() }),
            }
        }
        Ok(out)
    }
}

fn blob_path(d: &Digest) -> String {
    let (alg, hex) = d.as_str().split_once(':').unwrap_or(("sha256", d.hex()));
    format!("blobs/{alg}/{hex}")
}

/// Picks the manifest of an index (OCI index or Docker manifest list) for `os`/`arch` (and `variant`, if given).
pub fn pick_platform(index: &Value, arch: &str, os: &str, variant: Option<&str>) -> Option<Value> {
    let list = index["manifests"].as_array()?;
    let matches = |d: &&Value| {
        let p = &d["platform"];
        p["os"].as_str() == Some(os)
            && p["architecture"].as_str() == Some(arch)
            && variant.is_none_or(|v| p["variant"].as_str() == Some(v))
    };
    list.iter()
        .find(matches)
        .or_else(|| if list.len() == 1 && list[0]["platform"].is_null() { list.first() } else { None })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_refuses_escapes() {
        assert_eq!(clean("a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("/etc/passwd"), None);
    }

    #[test]
    fn platform_selection() {
        let idx = json!({"manifests": [
            {"digest": "a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "b", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(pick_platform(&idx, "amd64", "linux", None).map(|d| d["digest"].clone()), Some(json!("b")));
        assert_eq!(pick_platform(&idx, "arm64", "linux", Some("v8")).map(|d| d["digest"].clone()), Some(json!("a")));
        assert!(pick_platform(&idx, "s390x", "linux", None).is_none());
    }
}
