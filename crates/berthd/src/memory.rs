//! What the daemon gives back to the kernel between bursts of work.
//!
//! Most of an idle berthd's RSS was not its data: it was the pages of its own binary that start-up and the last
//! requests touched (clean page cache, mapped in chunks by the kernel's fault-around), and what glibc's allocator kept
//! in its arenas after a burst (a pull, a build, hundreds of container starts) had freed it. berthd uses few arenas
//! (set at start, [`berth_runtime::sys::limit_malloc_arenas`]) and, once its API has been quiet for [`QUIET`] after
//! start-up or after work, trims them ([`berth_runtime::sys::trim_heap`]) and unmaps the clean pages
//! ([`berth_runtime::sys::CleanPages`]: they stay in the page cache; the next request maps what it uses
//! again). Nothing runs while the daemon is idle: the end of a connection schedules the trim.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How long the API must have been quiet before a trim: longer than the pause between a client's requests of one
/// command (a `run` is several), so that a command's later requests do not map its code again.
const QUIET: Duration = Duration::from_secs(3);

/// Arenas: two, the number of tokio's workers on the 2-core machines Berth aims at, and enough that the blocking
/// threads (an unpack, a store write) rarely wait for a worker's arena.
pub const MALLOC_ARENAS: i32 = 2;

static ENDED: AtomicU64 = AtomicU64::new(0);
static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// Start-up is over, or a connection ended: trims once the API has been quiet for [`QUIET`].
pub fn work_done() {
    ENDED.fetch_add(1, Ordering::Relaxed);
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        loop {
            let seen = ENDED.load(Ordering::Relaxed);
            tokio::time::sleep(QUIET).await;
            if ENDED.load(Ordering::Relaxed) == seen {
                break;
            }
        }
        // A connection that ends from here on schedules the next trim.
        SCHEDULED.store(false, Ordering::Release);
        let _ = tokio::task::spawn_blocking(|| {
            berth_runtime::sys::trim_heap();
            berth_runtime::sys::CleanPages::find().drop_now();
        })
        .await;
    });
}
