//! The metadata database: one SQLite file (`berth.db`, WAL, `synchronous=FULL`) holding the
//! daemon's documents (containers, later networks and volumes), layers, images, image
//! references and the queue of blobs to delete. The schema is versioned with
//! `PRAGMA user_version` and migrated when the store opens. Every multi-row change is one
//! transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::digest::{ChainId, DiffId};
use crate::error::{Result, StoreError};
use crate::layer::Layer;

/// The schema version this code writes.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE docs (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    name TEXT,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, id),
    UNIQUE (kind, name)
);
CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id  TEXT NOT NULL,
    parent   TEXT,
    size     INTEGER NOT NULL,
    tar_size INTEGER NOT NULL,
    created  INTEGER NOT NULL
);
CREATE INDEX layers_diff_id ON layers (diff_id);
CREATE TABLE images (
    id      TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers (chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain_id ON image_layers (chain_id);
CREATE TABLE refs (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
    created  INTEGER NOT NULL
);
CREATE INDEX refs_image_id ON refs (image_id);
CREATE TABLE blob_deletes (
    digest TEXT PRIMARY KEY
);
";

/// Version 2: the builder's cache. A step's result (its layer, if it made one) keyed by the hash of everything it
/// depended on; its layer counts as used while the entry exists.
const SCHEMA_V2: &str = "
CREATE TABLE build_cache (
    key       TEXT PRIMARY KEY,
    chain_id  TEXT REFERENCES layers (chain_id),
    record    TEXT NOT NULL,
    created   INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE INDEX build_cache_chain_id ON build_cache (chain_id);
";

/// The connection, serialised behind a mutex (the store is shared between threads).
pub(crate) struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating) the database at `path`, sets the pragmas and migrates the schema.
    pub(crate) fn open(path: &Path) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "sqlite did not switch to WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        migrate(&mut conn)?;
        Ok(Db { conn: Mutex::new(conn) })
    }

    /// Locks the connection. A panic while it was held leaves no open transaction
    /// (rusqlite rolls back on drop), so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 | 1 => {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if version == 0 {
                tx.execute_batch(SCHEMA_V1)?;
            }
            tx.execute_batch(SCHEMA_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        n => Err(StoreError::Corrupt(format!(
            "the metadata database has schema version {n}, newer than this berth understands ({SCHEMA_VERSION})"
        ))),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Inserts or replaces a document; a name held by another id of the same kind is `Conflict`.
pub(crate) fn put_doc(conn: &mut Connection, kind: &str, id: &str, name: Option<&str>, doc: &str) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(name) = name {
        let holder: Option<String> = tx
            .query_row("SELECT id FROM docs WHERE kind = ?1 AND name = ?2 AND id <> ?3", params![kind, name, id], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(other) = holder {
            return Err(StoreError::Conflict(format!("the {kind} name {name:?} is already in use by {kind} {other}")));
        }
    }
    tx.execute(
        "INSERT INTO docs (kind, id, name, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
        params![kind, id, name, doc],
    )?;
    tx.commit()?;
    Ok(())
}

/// The document `kind`/`id` as stored text.
pub(crate) fn get_doc(conn: &Connection, kind: &str, id: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT doc FROM docs WHERE kind = ?1 AND id = ?2", params![kind, id], |r| r.get(0))
        .optional()?)
}

/// All documents of `kind`, ordered by id.
pub(crate) fn list_docs(conn: &Connection, kind: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT doc FROM docs WHERE kind = ?1 ORDER BY id")?;
    let rows = stmt.query_map(params![kind], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Deletes a document; returns whether it existed.
pub(crate) fn delete_doc(conn: &Connection, kind: &str, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM docs WHERE kind = ?1 AND id = ?2", params![kind, id])? > 0)
}

/// The id of the `kind` document named `name`.
pub(crate) fn id_by_name(conn: &Connection, kind: &str, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT id FROM docs WHERE kind = ?1 AND name = ?2", params![kind, name], |r| r.get(0))
        .optional()?)
}

/// Reads a layer row.
pub(crate) fn get_layer(conn: &Connection, chain: &ChainId) -> Result<Option<Layer>> {
    let row = conn
        .query_row(
            "SELECT chain_id, diff_id, parent, size, tar_size FROM layers WHERE chain_id = ?1",
            params![chain.as_str()],
            read_layer_row,
        )
        .optional()?;
    row.map(layer_from_row).transpose()
}

/// All layer rows.
pub(crate) fn all_layers(conn: &Connection) -> Result<Vec<Layer>> {
    let mut stmt = conn.prepare_cached("SELECT chain_id, diff_id, parent, size, tar_size FROM layers")?;
    let rows = stmt.query_map([], read_layer_row)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(layer_from_row).collect()
}

type LayerRow = (String, String, Option<String>, i64, i64);

/// The columns `chain_id, diff_id, parent, size, tar_size` of a `layers` row.
fn read_layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn layer_from_row((chain, diff, parent, size, tar_size): LayerRow) -> Result<Layer> {
    let corrupt = |e: StoreError| StoreError::Corrupt(format!("layer record {chain}: {e}"));
    Ok(Layer {
        chain_id: ChainId::parse(&chain).map_err(corrupt)?,
        diff_id: DiffId::parse(&diff).map_err(corrupt)?,
        parent: parent.as_deref().map(ChainId::parse).transpose().map_err(corrupt)?,
        size: size.max(0) as u64,
        tar_size: tar_size.max(0) as u64,
    })
}

/// Records a layer (replacing a stale row for the same chain id).
pub(crate) fn insert_layer(conn: &Connection, l: &Layer) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO layers (chain_id, diff_id, parent, size, tar_size, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            l.chain_id.as_str(),
            l.diff_id.as_str(),
            l.parent.as_ref().map(|p| p.as_str()),
            i64::try_from(l.size).unwrap_or(i64::MAX),
            i64::try_from(l.tar_size).unwrap_or(i64::MAX),
            now_unix()
        ],
    )?;
    Ok(())
}

/// True if the layer is in use: by an image, by a build cache entry, or as the parent of another layer.
pub(crate) fn layer_referenced(conn: &Connection, chain: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM image_layers WHERE chain_id = ?1
             UNION ALL SELECT 1 FROM build_cache WHERE chain_id = ?1
             UNION ALL SELECT 1 FROM layers WHERE parent = ?1 LIMIT 1",
            params![chain],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// True if a blob is still needed: some layer's tar or some image's config.
pub(crate) fn blob_referenced(conn: &Connection, digest: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM layers WHERE diff_id = ?1 UNION ALL SELECT 1 FROM images WHERE id = ?1 LIMIT 1",
            params![digest],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_with_unique_names() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let db = Db::open(&tmp.path().join("t.db"))?;
        let mut c = db.lock();
        put_doc(&mut c, "container", "a", Some("web"), "{}")?;
        put_doc(&mut c, "network", "n", Some("web"), "{}")?;
        assert!(matches!(put_doc(&mut c, "container", "b", Some("web"), "{}"), Err(StoreError::Conflict(_))));
        put_doc(&mut c, "container", "b", None, "{}")?;
        put_doc(&mut c, "container", "c", None, "{}")?;
        put_doc(&mut c, "container", "a", Some("web2"), "{\"x\":1}")?;
        put_doc(&mut c, "container", "b", Some("web"), "{}")?;
        assert_eq!(id_by_name(&c, "container", "web")?.as_deref(), Some("b"));
        assert_eq!(get_doc(&c, "container", "a")?.as_deref(), Some("{\"x\":1}"));
        assert_eq!(list_docs(&c, "container")?.len(), 3);
        assert!(delete_doc(&c, "container", "a")?);
        assert!(!delete_doc(&c, "container", "a")?);
        drop(c);
        drop(db);
        // Reopening keeps the data and the schema version.
        let db = Db::open(&tmp.path().join("t.db"))?;
        assert_eq!(list_docs(&db.lock(), "container")?.len(), 2);
        Ok(())
    }
}
