//! Start-up: the daemon's directories and store opened, its state assembled, then everything loaded and reconciled
//! with what is actually running (networks, stray shims, containers, build leftovers, orphans), in that order.

use std::sync::Arc;

use anyhow::{Context, Result};
use berth_store::Store;

use crate::containers::shim_client::BerthShim;
use crate::daemon::{Config, Daemon};

/// Opens the data root, loads every container and reconciles it with what is actually running.
pub async fn open(config: Config) -> Result<Arc<Daemon>> {
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
    crate::recover::orphans(&daemon).await;
    Ok(daemon)
}
