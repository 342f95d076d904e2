//! Images and their references: an image is its config JSON (stored as a blob; its digest is the image id) plus the
//! stack of layers its `rootfs.diff_ids` name. References (`docker.io/library/busybox:latest`) point at images.
//! Resolution follows docker: a name or `name:tag`, a full id (`sha256:<hex>` or 64 hex digits), or a unique id prefix.

use std::io::Read;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use crate::db::now_unix;
use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{Result, StoreError};
use crate::reference::{AnyReference, Reference};
use crate::{Store, change};

/// An image as the store knows it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The digest of the config JSON.
    pub id: ImageId,
    /// The image config (OCI / Docker image config: `architecture`, `os`, `config`, `rootfs`, `history`, ...).
    pub config: Value,
    /// Tags in docker's familiar form (`busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// Digest references (`busybox@sha256:...`), sorted.
    pub repo_digests: Vec<String>,
    /// Unpacked size of all its layers in bytes.
    pub size: i64,
    /// Chain ids of the layers, bottom first.
    pub layers: Vec<ChainId>,
    /// Unpacked layer directories, top first (overlay's `lowerdir` order).
    dirs: Vec<PathBuf>,
}

impl Image {
    /// The read-only layers of a container of this image, top first (overlay's `lowerdir` order). An image without
    /// layers gets one empty directory.
    pub fn lower_dirs(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    /// The config's `created` time in Unix seconds (0 when absent or unreadable).
    pub fn created_unix(&self) -> i64 {
        self.config["created"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// The image's labels (`config.Labels`), `{}` when there are none.
    pub fn labels(&self) -> Value {
        match &self.config["config"]["Labels"] {
            Value::Null => json!({}),
            v => v.clone(),
        }
    }
}

/// How `import` builds the image around the imported layer.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-style changes (`-c 'CMD ["sh"]'`).
    pub changes: Vec<String>,
    /// The commit message, recorded as the history comment.
    pub message: Option<String>,
    /// The image's OS (default `linux`).
    pub os: Option<String>,
    /// The image's architecture (default: the host's, in Go's naming).
    pub architecture: Option<String>,
    /// References to point at the image, recorded with it.
    pub tags: Vec<String>,
}

/// The host architecture in Go's naming (what image configs use).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn no_such_image(s: &str) -> StoreError {
    let shown = AnyReference::parse(s).map(|r| r.familiar_string_with_default_tag()).unwrap_or_else(|_| s.to_string());
    StoreError::NotFound(format!("No such image: {shown}"))
}

/// The stored form of a tag (`busybox` → `docker.io/library/busybox:latest`); a digest reference is refused.
fn tag_name(name: &str) -> Result<String> {
    let r = Reference::parse(name)?;
    if r.digest().is_some() {
        return Err(StoreError::InvalidArgument(format!("refusing to create a tag with a digest reference: {name}")));
    }
    Ok(r.with_default_tag().to_string())
}

/// The stored form of a digest reference (`name@sha256:...`); anything else is refused.
fn digest_name(name: &str) -> Result<String> {
    let r = Reference::parse(name)?;
    if r.digest().is_none() {
        return Err(StoreError::InvalidArgument(format!("not a digest reference: {name}")));
    }
    Ok(r.to_string())
}

/// Points the reference `name` (stored form) of `kind` (`tag`, `digest`) at image `id`, moving it from the image it
/// pointed at before.
fn insert_ref(conn: &Connection, name: &str, id: &ImageId, kind: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO refs (name, image_id, kind, created) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created",
        params![name, id.as_str(), kind, now_unix()],
    )?;
    Ok(())
}

/// The diff ids an image config names.
fn diff_ids(config: &Value) -> Result<Vec<DiffId>> {
    let ids = match &config["rootfs"]["diff_ids"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(StoreError::InvalidArgument("image config: rootfs.diff_ids is not a list".into())),
    };
    ids.iter()
        .map(|v| {
            let s = v
                .as_str()
                .ok_or_else(|| StoreError::InvalidArgument("image config: a diff id is not a string".into()))?;
            DiffId::parse(s)
        })
        .collect()
}

impl Store {
    /// Imports a root file system tar (plain or gzip) as a one-layer image (`docker import`), applying
    /// `opts.changes` to its config. Nothing is left behind when the tar is malformed or truncated.
    pub fn import_image(&self, reader: impl Read, opts: ImportOptions) -> Result<ImageId> {
        let os = opts.os.clone().unwrap_or_else(|| "linux".into());
        let mut cfg = Map::new();
        change::apply_changes(&mut cfg, &opts.changes, &os)?;
        let layer = self.import_layer(reader, None)?;
        crate::fault::point("import.after-layer");
        let created = now_rfc3339();
        let comment = opts.message.clone().unwrap_or_else(|| "Imported from -".into());
        let mut config = json!({
            "architecture": opts.architecture.clone().unwrap_or_else(|| host_architecture().to_string()),
            "os": os,
            "created": created,
            "config": Value::Object(cfg),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.as_str()]},
            "history": [{"created": created, "created_by": "", "comment": comment}],
        });
        if let Some(m) = &opts.message {
            config["comment"] = json!(m);
        }
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| StoreError::InvalidArgument(format!("cannot serialise the image config: {e}")))?;
        self.create_image_named(&bytes, &opts.tags, &[])
    }

    /// Records an image from its config JSON, whose layers must already be in the store. Returns its id; creating an
    /// image that exists is not an error.
    pub fn create_image(&self, config_json: &[u8]) -> Result<ImageId> {
        self.create_image_named(config_json, &[], &[])
    }

    /// [`Store::create_image`] with the tags and digest references (see [`Store::tag`], [`Store::add_repo_digest`])
    /// to point at it, in the same transaction: a crash leaves either no image or the image with all its names.
    pub fn create_image_named(&self, config_json: &[u8], tags: &[String], digests: &[String]) -> Result<ImageId> {
        let refs: Vec<(String, &str)> = tags
            .iter()
            .map(|t| tag_name(t).map(|n| (n, "tag")))
            .chain(digests.iter().map(|d| digest_name(d).map(|n| (n, "digest"))))
            .collect::<Result<_>>()?;
        let config: Value = serde_json::from_slice(config_json)
            .map_err(|e| StoreError::InvalidArgument(format!("invalid image config: {e}")))?;
        if !config.is_object() {
            return Err(StoreError::InvalidArgument("invalid image config: not a JSON object".into()));
        }
        let chains = ChainId::chain(&diff_ids(&config)?);
        let id = ImageId::from(Digest::of(config_json));
        let mut conn = self.db.lock();
        let mut size: u64 = 0;
        for c in &chains {
            let l = crate::db::get_layer(&conn, c)?
                .ok_or_else(|| StoreError::NotFound(format!("layer {c} of image {id} is not in the store")))?;
            size = size.saturating_add(l.size);
        }
        let written = self.content.write(config_json)?;
        debug_assert_eq!(written.as_str(), id.as_str());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists =
            tx.query_row("SELECT 1 FROM images WHERE id = ?1", params![id.as_str()], |_| Ok(())).optional()?.is_some();
        if !exists {
            tx.execute(
                "INSERT INTO images (id, size, created) VALUES (?1, ?2, ?3)",
                params![id.as_str(), i64::try_from(size).unwrap_or(i64::MAX), now_unix()],
            )?;
            for (pos, c) in chains.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, chain_id) VALUES (?1, ?2, ?3)",
                    params![id.as_str(), pos as i64, c.as_str()],
                )?;
            }
        }
        tx.execute("DELETE FROM blob_deletes WHERE digest = ?1", params![id.as_str()])?;
        for (name, kind) in &refs {
            insert_ref(&tx, name, &id, kind)?;
        }
        tx.commit()?;
        drop(conn);
        self.unpin(&chains);
        Ok(id)
    }

    /// Points the reference `name` (`busybox`, `busybox:1`, `localhost:5000/a/b:v1`) at image `id`, moving it from
    /// the image it pointed at before.
    pub fn tag(&self, id: &ImageId, name: &str) -> Result<()> {
        let full = tag_name(name)?;
        let conn = self.db.lock();
        if load_row(&conn, id)?.is_none() {
            return Err(no_such_image(id.as_str()));
        }
        insert_ref(&conn, &full, id, "tag")
    }

    /// Records the digest reference `name` (`localhost:5000/app@sha256:...`, the manifest an image was pulled or
    /// pushed as) for image `id`: one of its `RepoDigests`.
    pub fn add_repo_digest(&self, id: &ImageId, name: &str) -> Result<()> {
        let full = digest_name(name)?;
        let conn = self.db.lock();
        if load_row(&conn, id)?.is_none() {
            return Err(no_such_image(id.as_str()));
        }
        insert_ref(&conn, &full, id, "digest")
    }

    /// Removes the reference `name`. The image stays (untagged) even if this was its last reference.
    pub fn untag(&self, name: &str) -> Result<()> {
        let r = Reference::parse(name)?;
        let full = if r.digest().is_some() { r.to_string() } else { r.with_default_tag().to_string() };
        let n = self.db.lock().execute("DELETE FROM refs WHERE name = ?1", params![full])?;
        if n == 0 {
            return Err(no_such_image(name));
        }
        Ok(())
    }

    /// Finds an image by reference, full id or unique id prefix. Unknown is `NotFound("No such image: ...")`.
    pub fn resolve_image(&self, s: &str) -> Result<Image> {
        let conn = self.db.lock();
        let id = match AnyReference::parse(s) {
            Ok(AnyReference::Digest(d)) => ImageId::parse(&d).ok(),
            Ok(AnyReference::Named(r)) => {
                let full = if r.digest().is_some() { r.to_string() } else { r.clone().with_default_tag().to_string() };
                let by_ref: Option<String> = conn
                    .query_row("SELECT image_id FROM refs WHERE name = ?1", params![full], |r| r.get(0))
                    .optional()?;
                match by_ref {
                    Some(i) => {
                        Some(ImageId::parse(&i).map_err(|e| StoreError::Corrupt(format!("reference {full}: {e}")))?)
                    }
                    None if r.tag().is_none() && r.digest().is_none() => by_prefix(&conn, s)?,
                    None => None,
                }
            }
            Err(_) => by_prefix(&conn, s)?,
        };
        let id = id.ok_or_else(|| no_such_image(s))?;
        self.load_image(&conn, &id)?.ok_or_else(|| no_such_image(s))
    }

    /// Every image.
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let conn = self.db.lock();
        let ids: Vec<String> = {
            let mut stmt = conn.prepare_cached("SELECT id FROM images ORDER BY created DESC, id")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for i in ids {
            let id = ImageId::parse(&i).map_err(|e| StoreError::Corrupt(format!("image record {i}: {e}")))?;
            if let Some(img) = self.load_image(&conn, &id)? {
                out.push(img);
            }
        }
        Ok(out)
    }

    /// Deletes image `id` with all its references, and the layers and blobs nothing else uses. Returns what was
    /// deleted as docker reports it: the image id, then the chain ids of deleted layers.
    pub fn remove_image(&self, id: &ImageId) -> Result<Vec<String>> {
        let mut conn = self.db.lock();
        let image = self.load_image(&conn, id)?.ok_or_else(|| no_such_image(id.as_str()))?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM refs WHERE image_id = ?1", params![id.as_str()])?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", params![id.as_str()])?;
        tx.execute("DELETE FROM images WHERE id = ?1", params![id.as_str()])?;
        let mut candidates = image.layers.clone();
        candidates.reverse();
        let deleted = self.gc_in_tx(&tx, &candidates, &[id.digest().clone()])?;
        tx.commit()?;
        let aside = self.finish_gc(&conn, &deleted)?;
        drop(conn);
        for d in aside {
            crate::remove_dir_logged(&d);
        }
        let mut out = vec![id.to_string()];
        out.extend(deleted.iter().map(|c| c.to_string()));
        Ok(out)
    }

    fn load_image(&self, conn: &Connection, id: &ImageId) -> Result<Option<Image>> {
        let Some(size) = load_row(conn, id)? else { return Ok(None) };
        let bytes = self.content.read(id.digest())?;
        let config: Value =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("config of image {id}: {e}")))?;
        let layers: Vec<ChainId> = {
            let mut stmt =
                conn.prepare_cached("SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY position")?;
            let rows = stmt.query_map(params![id.as_str()], |r| r.get::<_, String>(0))?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|c| ChainId::parse(c).map_err(|e| StoreError::Corrupt(format!("layer of image {id}: {e}"))))
                .collect::<Result<_>>()?
        };
        let refs: Vec<(String, String)> = {
            let mut stmt = conn.prepare_cached("SELECT name, kind FROM refs WHERE image_id = ?1")?;
            let rows = stmt.query_map(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let (mut repo_tags, mut repo_digests) = (Vec::new(), Vec::new());
        for (name, kind) in refs {
            let familiar = Reference::parse(&name).map(|r| r.familiar_string()).unwrap_or(name);
            if kind == "digest" { repo_digests.push(familiar) } else { repo_tags.push(familiar) }
        }
        repo_tags.sort();
        repo_digests.sort();
        let mut dirs: Vec<PathBuf> = layers.iter().rev().map(|c| self.layer_dir(c)).collect();
        if dirs.is_empty() {
            dirs.push(self.empty_layer_dir());
        }
        Ok(Some(Image { id: id.clone(), config, repo_tags, repo_digests, size, layers, dirs }))
    }
}

/// The size column of an image row, if the image exists.
fn load_row(conn: &Connection, id: &ImageId) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT size FROM images WHERE id = ?1", params![id.as_str()], |r| r.get(0)).optional()?)
}

/// The image whose id starts with `prefix` (hex, optionally after `sha256:`), if exactly one does.
fn by_prefix(conn: &Connection, prefix: &str) -> Result<Option<ImageId>> {
    let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached("SELECT id FROM images WHERE id >= ?1 AND id < ?2 LIMIT 2")?;
    let lo = format!("sha256:{hex}");
    let hi = format!("sha256:{hex}g");
    let rows = stmt.query_map(params![lo, hi], |r| r.get::<_, String>(0))?;
    let found = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    match found.as_slice() {
        [one] => Ok(Some(ImageId::parse(one).map_err(|e| StoreError::Corrupt(format!("image record {one}: {e}")))?)),
        _ => Ok(None),
    }
}
