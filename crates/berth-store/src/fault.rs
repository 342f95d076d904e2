//! Fault injection for crash-consistency tests: `point("pull.after-layer")` kills the process with `SIGKILL` (as
//! `kill -9` would: no destructors, no flushing) when the environment variable `BERTH_FAULT` names that point.
//! Debug builds only (the integration tests use them); in release builds `point` is an empty inline function.
//!
//! The points are listed in `docs/ARCHITECTURE.md` ("Crash consistency"). `BERTH_FAULT=name@N` fires at the
//! `N`th time the point is reached (counted from 1) instead of the first.

/// Kills the process here when `BERTH_FAULT` names this point (debug builds only).
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let armed = ARMED.get_or_init(|| {
        let v = std::env::var("BERTH_FAULT").ok().filter(|v| !v.is_empty())?;
        Some(match v.split_once('@') {
            Some((n, count)) => (n.to_string(), count.parse().unwrap_or(1)),
            None => (v, 1),
        })
    });
    let Some((wanted, nth)) = armed else { return };
    if wanted != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    eprintln!("BERTH_FAULT: killing the process at {name}");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    // SIGKILL cannot be caught; should `raise` fail, abort is the next best thing.
    std::process::abort();
}

/// Release builds: no fault injection.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
