//! The live `oom` event: while a container runs, a task waits on its cgroup's OOM notifier (v1 `memory.oom_control`
//! eventfd, v2 `memory.events` inotify) and, when the kernel's OOM killer has ended one of its processes, sets
//! `State.OOMKilled` and publishes `oom` (as dockerd does on containerd's OOM event), even when the container keeps
//! running. The exit path publishes `oom` only for a kill this task did not see.

use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use super::record::Container;
use crate::daemon::Daemon;

/// Starts watching `c`'s cgroup; None where there is nothing to watch (no memory controller, or the cgroup is gone
/// already). The caller aborts the task when the container's exit has been recorded.
pub(super) fn watch(d: &Arc<Daemon>, c: &Arc<Container>) -> Option<tokio::task::AbortHandle> {
    let cg = berth_runtime::cgroups::Cgroup::open(&format!("berth/{}", c.id)).ok()?;
    let notifier = match cg.oom_notifier() {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!("no OOM notifications for {}: {e}", &c.id[..12]);
            return None;
        }
    };
    // SAFETY: the notifier owns its descriptor (an `OwnedFd` it never replaces), so `as_raw_fd` names the same open
    // descriptor for as long as the `AsyncFd` holds the notifier.
    let registered = unsafe { AsyncFd::register_with_interest(notifier, tokio::io::Interest::READABLE) };
    let fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("no OOM notifications for {}: {e}", &c.id[..12]);
            return None;
        }
    };
    let (d, c) = (d.clone(), c.clone());
    // Kills counted before this watch (a daemon restart while the container ran) were reported already when the
    // record says so; otherwise they are reported now.
    let mut seen = if c.record().state.oom_killed { cg.oom_kills() } else { 0 };
    let task = tokio::spawn(async move {
        let mut woken = false;
        loop {
            let mut kills = cg.oom_kills();
            // v1 signals when the cgroup goes under OOM, just before the killer counts its kill: look again a few
            // times (bounded: the kill follows within microseconds unless the cgroup is going away).
            for _ in 0..20 {
                if !woken || kills > seen || fd.get_ref().gone() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                kills = cg.oom_kills();
            }
            if kills > seen {
                seen = kills;
                c.update_then(|r| r.state.oom_killed = true, |_| c.publish(&d.events, "oom", &[]));
            }
            if fd.get_ref().gone() {
                return;
            }
            match fd.readable().await {
                Ok(mut ready) => {
                    fd.get_ref().drain();
                    ready.clear_ready();
                    woken = true;
                }
                Err(e) => {
                    tracing::debug!("OOM notifications of {}: {e}", &c.id[..12]);
                    return;
                }
            }
        }
    });
    Some(task.abort_handle())
}
