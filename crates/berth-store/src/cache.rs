//! The builder's cache: what a build step produced, keyed by the digest of everything the step depended on (the
//! keys of the steps before it, the instruction, the content of the files it copied, the build arguments it saw).
//! An entry holds the step's record (a JSON document: its history entry, its time) and the layer it made, if any;
//! that layer counts as used while the entry exists, so image removal and start-up repair leave it. `prune` drops
//! entries and collects the layers nothing else uses.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use crate::db::now_unix;
use crate::digest::ChainId;
use crate::error::{Result, StoreError};
use crate::{Store, remove_dir_logged};

/// A cache entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    /// The layer the step made (none for a step that only changed the config).
    pub chain: Option<ChainId>,
    /// The step's record.
    pub record: Value,
}

/// What [`Store::cache_prune`] removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CachePruned {
    pub entries: Vec<String>,
    /// Bytes of the layers that went with them.
    pub reclaimed: u64,
}

impl Store {
    /// The entry for `key`, if there is one whose layer is still present; marks it used.
    pub fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>> {
        let conn = self.db.lock();
        let row: Option<(Option<String>, String)> = conn
            .query_row("SELECT chain_id, record FROM build_cache WHERE key = ?1", params![key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((chain, record)) = row else { return Ok(None) };
        let chain = chain.map(|c| ChainId::parse(&c)).transpose()?;
        if let Some(c) = &chain
            && (crate::db::get_layer(&conn, c)?.is_none() || !self.layers.join(c.hex()).is_dir())
        {
            return Ok(None);
        }
        conn.execute("UPDATE build_cache SET last_used = ?2 WHERE key = ?1", params![key, now_unix()])?;
        let record =
            serde_json::from_str(&record).map_err(|e| StoreError::Corrupt(format!("build cache entry {key}: {e}")))?;
        Ok(Some(CacheEntry { chain, record }))
    }

    /// Records (or replaces) the entry for `key`. Its layer must be in the store.
    pub fn cache_put(&self, key: &str, entry: &CacheEntry) -> Result<()> {
        let text = serde_json::to_string(&entry.record)
            .map_err(|e| StoreError::InvalidArgument(format!("cannot serialise a build cache entry: {e}")))?;
        let conn = self.db.lock();
        if let Some(c) = &entry.chain
            && crate::db::get_layer(&conn, c)?.is_none()
        {
            return Err(StoreError::NotFound(format!("layer {c} is not in the store")));
        }
        let now = now_unix();
        conn.execute(
            "INSERT INTO build_cache (key, chain_id, record, created, last_used) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (key) DO UPDATE SET chain_id = excluded.chain_id, record = excluded.record,
                                             last_used = excluded.last_used",
            params![key, entry.chain.as_ref().map(|c| c.as_str()), text, now],
        )?;
        drop(conn);
        if let Some(c) = &entry.chain {
            self.unpin(std::slice::from_ref(c));
        }
        Ok(())
    }

    /// Every entry: (key, the unpacked size of its layer when only the cache holds it, created, last used; Unix
    /// seconds), for `system df`.
    pub fn cache_list(&self) -> Result<Vec<(String, u64, i64, i64)>> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT c.key, COALESCE(CASE WHEN c.chain_id IN (SELECT chain_id FROM image_layers) THEN 0 ELSE l.size END, 0),
                    c.created, c.last_used
             FROM build_cache c LEFT JOIN layers l ON l.chain_id = c.chain_id ORDER BY c.created",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?)))?;
        let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(|(k, s, c, u)| (k, s.max(0) as u64, c, u)).collect())
    }

    /// Number of entries and the unpacked bytes of the layers only the cache holds (for `system df`).
    pub fn cache_usage(&self) -> Result<(u64, u64)> {
        let conn = self.db.lock();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
        let size: i64 = conn.query_row(
            "SELECT COALESCE(SUM(size), 0) FROM layers WHERE chain_id IN (SELECT chain_id FROM build_cache)
             AND chain_id NOT IN (SELECT chain_id FROM image_layers)",
            [],
            |r| r.get(0),
        )?;
        Ok((count.max(0) as u64, size.max(0) as u64))
    }

    /// Removes the entries last used before `unused_before` (Unix seconds; `None`: all of them) and the layers that
    /// only they held.
    pub fn cache_prune(&self, unused_before: Option<i64>) -> Result<CachePruned> {
        let mut conn = self.db.lock();
        let cutoff = unused_before.unwrap_or(i64::MAX);
        let rows: Vec<(String, Option<String>)> = {
            let mut stmt = conn.prepare("SELECT key, chain_id FROM build_cache WHERE last_used < ?1")?;
            let rows = stmt.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let tx = conn.transaction()?;
        let mut candidates = Vec::new();
        let mut pruned = CachePruned::default();
        for (key, chain) in &rows {
            tx.execute("DELETE FROM build_cache WHERE key = ?1", params![key])?;
            pruned.entries.push(key.clone());
            // The layer and those below it, top first: each is free once the one above it is gone.
            let mut cur = chain.as_deref().map(ChainId::parse).transpose()?;
            while let Some(c) = cur {
                let parent = crate::db::get_layer(&tx, &c)?.and_then(|l| l.parent);
                candidates.push(c);
                cur = parent;
            }
        }
        // Deeper layers first across all entries, so that no chain keeps another alive.
        let mut depth = std::collections::HashMap::new();
        for c in &candidates {
            let mut n = 0usize;
            let mut cur = crate::db::get_layer(&tx, c)?.and_then(|l| l.parent);
            while let Some(p) = cur {
                n += 1;
                cur = crate::db::get_layer(&tx, &p)?.and_then(|l| l.parent);
            }
            depth.insert(c.clone(), n);
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(depth.get(c).copied().unwrap_or(0)));
        let mut sizes = Vec::new();
        for c in &candidates {
            if let Some(l) = crate::db::get_layer(&tx, c)? {
                sizes.push((c.clone(), l.size));
            }
        }
        let deleted = self.gc_in_tx(&tx, &candidates, &[])?;
        tx.commit()?;
        pruned.reclaimed = sizes.iter().filter(|(c, _)| deleted.contains(c)).map(|(_, s)| *s).sum();
        let aside = self.finish_gc(&conn, &deleted)?;
        drop(conn);
        for d in aside {
            remove_dir_logged(&d);
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn layer_tar(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"hi"[..]).expect("append");
        b.into_inner().expect("tar")
    }

    #[test]
    fn entries_keep_their_layers_until_pruned() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| StoreError::io("tempdir", e))?;
        let store = Store::open(tmp.path())?;
        let base = store.import_layer(&layer_tar("a")[..], None)?;
        let top = store.import_layer(&layer_tar("b")[..], Some(&base.chain_id))?;
        store.cache_put("k1", &CacheEntry { chain: Some(top.chain_id.clone()), record: json!({"n": 1}) })?;
        store.cache_put("k0", &CacheEntry { chain: None, record: json!({"n": 0}) })?;
        assert_eq!(store.cache_get("k1")?.map(|e| e.record), Some(json!({"n": 1})));
        assert_eq!(store.cache_get("nope")?, None);
        drop(store);
        // Re-opening repairs: layers no image uses go, unless the cache (or a layer above them) holds them.
        let store = Store::open(tmp.path())?;
        assert!(store.layer(&base.chain_id)?.is_some() && store.layer(&top.chain_id)?.is_some());
        assert_eq!(store.cache_usage()?.0, 2);
        assert_eq!(store.cache_list()?.len(), 2);
        let pruned = store.cache_prune(None)?;
        assert_eq!(pruned.entries.len(), 2);
        assert_eq!(pruned.reclaimed, base.size + top.size);
        assert!(store.layer(&base.chain_id)?.is_none() && store.layer(&top.chain_id)?.is_none());
        assert!(!store.layer_dir(&top.chain_id).exists());
        Ok(())
    }
}
