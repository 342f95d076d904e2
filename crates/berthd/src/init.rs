//! Berth's own init for `--init` containers (`init/berth-init.rs`, built static by `build.rs` and embedded here):
//! written to the exec root at start, from where each `--init` container gets it bind-mounted read-only at
//! `/sbin/docker-init`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The static `berth-init` executable.
const BERTH_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// Writes `berth-init` to `<exec_root>/berth-init` (root's, 0755) unless it is there already, and returns its path.
/// Replaced by a rename: containers running with the previous copy keep their mount of it.
pub fn install(exec_root: &Path) -> Result<PathBuf> {
    let path = exec_root.join("berth-init");
    if std::fs::read(&path).is_ok_and(|b| b == BERTH_INIT) {
        return Ok(path);
    }
    let tmp = exec_root.join(".berth-init.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(BERTH_INIT).and_then(|()| f.sync_all()).with_context(|| format!("write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    Ok(path)
}
