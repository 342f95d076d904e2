//! Start-up: the daemon's directories and store opened, its state assembled, then everything loaded and reconciled
//! with what is actually running (networks, stray shims, containers, build leftovers, orphans), in that order.

use std::sync::Arc;

use anyhow::{Context, Result};
use berth_store::Store;

use crate::containers::shim_client::BerthShim;
use crate::daemon::{Config, Daemon};

/// Opens the data root, loads every container and reconciles it with what is actually running.
pub async fn open(mut config: Config) -> Result<Arc<Daemon>> {
    // Containers' directories (logs, bundles with their environment, shim sockets), builds' and copies' scratch
    // space are root's only.
    let private = [
        config.data_root.join("containers"),
        config.exec_root.join("containers"),
        config.exec_root.join("runtime"),
        config.exec_root.join("build"),
        config.exec_root.join("tmp"),
    ];
    for d in private {
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("chmod {}", d.display()))?;
    }
    if let Some(m) = config.userns_remap {
        // Passable (not listable) by remapped containers' root, on the way to their rootfs, files and volumes.
        for d in [config.data_root.join("containers"), config.exec_root.join("containers")] {
            crate::userns::let_through(&d, m)?;
        }
    }
    config.engine_id = engine_id(&config.data_root)?;
    let root = config.data_root.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&root))
        .await
        .context("open store")?
        .with_context(|| format!("open the store in {}", config.data_root.display()))?;
    let shims = Arc::new(BerthShim::new(&config.shim));
    let events = crate::events::Events::open(&config.data_root)
        .with_context(|| format!("open the event log in {}", config.data_root.display()))?;
    let daemon = Daemon::assemble(config, store, shims, events);
    crate::build::clean_leftovers(&daemon.config.data_root, &daemon.config.exec_root);
    crate::networks::load(&daemon).await?;
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || crate::recover::stray_shims(&d)).await.context("recovery")?;
    crate::containers::load_all(&daemon).await?;
    crate::build::remove_step_containers(&daemon).await;
    crate::pods::reconcile(&daemon).await?;
    crate::recover::orphans(&daemon).await;
    Ok(daemon)
}

/// The engine's ID: a random UUID made at the first start on this data root (`engine-id`, as dockerd 23+ keeps it),
/// the same on every start after.
fn engine_id(data_root: &std::path::Path) -> Result<String> {
    let path = data_root.join("engine-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    let id = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    // Written whole or not at all: a crash never leaves a half ID to be read back.
    let tmp = data_root.join("engine-id.tmp");
    std::fs::write(&tmp, &id)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("write {}", path.display()))?;
    Ok(id)
}
