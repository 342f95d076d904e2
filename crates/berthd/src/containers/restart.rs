//! Restart policies as Docker's restart manager applies them: the decision at an exit, the doubling back-off, the
//! `restarting` state between the exit and the new start, its cancellation by `stop`/`kill`/`rm -f`, and the
//! containers a starting daemon brings back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_api::models::{RestartPolicy, RestartPolicyNameEnum};

use crate::daemon::Daemon;

use super::*;

/// Docker's first delay before a policy restart; it doubles at each restart, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A container that ran this long starts its back-off over.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Docker's `RestartManager.ShouldRestart`: whether `policy` restarts a container that exited with `exit_code`.
/// `always` ignores a manual stop here: at run time the stop cancels the restart before (`Container::stopping`), and at
/// a daemon's start an `always` container comes back even after a manual stop, as with Docker.
pub(super) fn should_restart(
    policy: &RestartPolicy,
    exit_code: i64,
    manually_stopped: bool,
    restart_count: i64,
) -> bool {
    match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) => true,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => !manually_stopped,
        Some(RestartPolicyNameEnum::ON_FAILURE) => {
            let max = policy.maximum_retry_count.unwrap_or(0);
            exit_code != 0 && (max == 0 || restart_count < max)
        }
        _ => false,
    }
}

/// The next back-off after `previous` for a container that ran `ran`: 100 ms, doubled each time up to a minute, and
/// back to 100 ms after a run of at least ten seconds.
pub(super) fn next_backoff(previous: Duration, ran: Duration) -> Duration {
    let previous = if ran >= RESET_AFTER { Duration::ZERO } else { previous };
    if previous.is_zero() { FIRST_BACKOFF } else { (previous * 2).min(MAX_BACKOFF) }
}

/// How long the container ran before its exit (zero when unknown).
pub(super) fn ran_for(rec: &Record) -> Duration {
    match (berth_api::time::parse(&rec.state.started_at), berth_api::time::parse(&rec.state.finished_at)) {
        (Some(s), Some(e)) => e.duration_since(s).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// At an exit: whether the policy restarts it (and not a user's `stop`/`kill` in progress).
pub(super) fn wants_restart(c: &Container, rec: &Record, exit_code: i64) -> bool {
    let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
    !c.stopping.load(Ordering::SeqCst)
        && !rec.host_config.auto_remove.unwrap_or(false)
        && should_restart(&policy, exit_code, rec.manually_stopped, rec.restart_count)
}

/// Starts a `restarting` container after its back-off, unless a `stop`, `kill`, `rm -f` or a manual start came first.
pub(super) fn schedule(d: &Arc<Daemon>, c: &Arc<Container>) {
    let ran = ran_for(&c.record());
    let delay = match c.backoff.lock() {
        Ok(mut b) => {
            *b = next_backoff(*b, ran);
            *b
        }
        Err(_) => FIRST_BACKOFF,
    };
    let ticket = c.restart_gen.fetch_add(1, Ordering::SeqCst) + 1;
    let (d, c) = (d.clone(), c.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _guard = c.lifecycle.lock().await;
        if c.restart_gen.load(Ordering::SeqCst) != ticket || c.status() != Status::Restarting {
            return;
        }
        if let Err(e) = start_locked(&d, &c).await {
            tracing::warn!("restart {}: {e}", &c.id[..12]);
        }
    });
}

/// Cancels a pending policy restart (the caller holds the lifecycle lock): the container is `exited` with its last
/// exit code, as Docker leaves it. `manual`: a user's stop or kill (an `unless-stopped` container stays stopped).
pub(super) async fn cancel(d: &Arc<Daemon>, c: &Arc<Container>, manual: bool) {
    c.restart_gen.fetch_add(1, Ordering::SeqCst);
    let rec = c.update(|r| {
        if r.state.status == Status::Restarting {
            r.state.status = Status::Exited;
        }
        r.manually_stopped |= manual;
    });
    if let Err(e) = persist(d, c, &rec).await {
        tracing::warn!("persist {}: {e}", &rec.id[..12]);
    }
}

/// A user's start (`start`, `restart`, and a daemon's start bringing a container back): the policy starts over, as
/// Docker's reset of its restart manager (`RestartCount` 0, no manual stop, no back-off, no pending restart).
pub(super) fn reset_for_manual_start(c: &Container) {
    c.restart_gen.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut b) = c.backoff.lock() {
        *b = Duration::ZERO;
    }
    c.update(|r| {
        r.restart_count = 0;
        r.manually_stopped = false;
    });
}

/// At the daemon's start, after the records are loaded and the survivors reattached: the stopped containers that
/// their policy restarts (Docker's restore: started before, `always`, `unless-stopped` unless stopped by hand,
/// `on-failure` after a failure within its count) are started again, each as a manual start.
pub(super) fn start_at_boot(d: &Arc<Daemon>, containers: Vec<Arc<Container>>) {
    for c in containers {
        let rec = c.record();
        let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
        let started_before = !rec.state.started_at.is_empty() && !rec.state.started_at.starts_with("0001-");
        if rec.state.status != Status::Exited
            || !started_before
            || rec.host_config.auto_remove.unwrap_or(false)
            || !should_restart(&policy, rec.state.exit_code, rec.manually_stopped, rec.restart_count)
        {
            continue;
        }
        let d = d.clone();
        tokio::spawn(async move {
            let _guard = c.lifecycle.lock().await;
            if c.status() != Status::Exited {
                return;
            }
            tracing::info!("starting {} again (restart policy)", &c.id[..12]);
            reset_for_manual_start(&c);
            if let Err(e) = start_locked(&d, &c).await {
                tracing::warn!("restart {} at start-up: {e}", &c.id[..12]);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(name: RestartPolicyNameEnum, max: i64) -> RestartPolicy {
        RestartPolicy { name: Some(name), maximum_retry_count: Some(max) }
    }

    #[test]
    fn decisions_follow_dockers_restart_manager() {
        use RestartPolicyNameEnum::*;
        assert!(!should_restart(&policy(NO, 0), 1, false, 0));
        assert!(!should_restart(&RestartPolicy::default(), 1, false, 0));
        assert!(should_restart(&policy(ALWAYS, 0), 0, false, 5));
        assert!(should_restart(&policy(ALWAYS, 0), 0, true, 5), "always comes back even after a manual stop");
        assert!(should_restart(&policy(UNLESS_STOPPED, 0), 0, false, 0));
        assert!(!should_restart(&policy(UNLESS_STOPPED, 0), 0, true, 0));
        assert!(!should_restart(&policy(ON_FAILURE, 0), 0, false, 0), "a success is not a failure");
        assert!(should_restart(&policy(ON_FAILURE, 0), 3, false, 1000), "0: no maximum");
        assert!(should_restart(&policy(ON_FAILURE, 2), 1, false, 1));
        assert!(!should_restart(&policy(ON_FAILURE, 2), 1, false, 2));
    }

    #[test]
    fn backoff_doubles_from_100ms_to_a_minute_and_resets_after_10s() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            b = next_backoff(b, Duration::from_secs(1));
            seen.push(b.as_millis());
        }
        assert_eq!(seen[..5], [100, 200, 400, 800, 1600]);
        assert_eq!(*seen.last().unwrap(), 60_000);
        assert_eq!(next_backoff(b, Duration::from_secs(10)).as_millis(), 100);
        assert_eq!(next_backoff(Duration::from_millis(400), Duration::from_millis(9_999)).as_millis(), 800);
    }
}
