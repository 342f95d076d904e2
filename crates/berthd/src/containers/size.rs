//! A container's disk use: its writable layer and its image (`ps -s`, `inspect --size`, `system df`, prune).

use std::sync::Arc;

use crate::daemon::Daemon;

use super::*;

/// A container's sizes as Docker reports them: its writable layer (`SizeRw`) and that plus its image
/// (`SizeRootFs`). The walk of the writable layer runs off the async threads.
pub async fn sizes(d: &Arc<Daemon>, rec: &Record) -> (u64, u64) {
    let (d, rec) = (d.clone(), rec.clone());
    tokio::task::spawn_blocking(move || sizes_blocking(&d, &rec)).await.unwrap_or((0, 0))
}

/// [`sizes`], for a caller that is off the async threads already. Blocking: walks the writable layer.
pub fn sizes_blocking(d: &Daemon, rec: &Record) -> (u64, u64) {
    let rw = crate::disk::dir_size(&container_dir(d, &rec.id).join("upper"));
    let image = d.store.resolve_image(&rec.image_id).map(|i| i.size.max(0) as u64).unwrap_or(0);
    (rw, rw + image)
}
