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

/// When the last connection ended, in milliseconds since [`epoch`].
static LAST_END_MS: AtomicU64 = AtomicU64::new(0);
static SCHEDULED: AtomicBool = AtomicBool::new(false);

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Start-up is over, or a connection ended: trims once the API has been quiet for [`QUIET`] since the last end (not
/// in fixed windows, which could put the trim up to twice `QUIET` after it).
pub fn work_done() {
    LAST_END_MS.store(now_ms(), Ordering::Relaxed);
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        loop {
            let due = LAST_END_MS.load(Ordering::Relaxed).saturating_add(QUIET.as_millis() as u64);
            let now = now_ms();
            if now >= due {
                break;
            }
            tokio::time::sleep(Duration::from_millis(due - now)).await;
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
