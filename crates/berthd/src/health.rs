//! Healthchecks (`HEALTHCHECK` / `--health-*` / compose `healthcheck:`): while a container with one runs, its
//! test runs as an exec every interval (the start interval during the start period); the result goes into
//! `State.Health` as moby keeps it: `starting` until the first success, `healthy`, or `unhealthy` after
//! `retries` consecutive failures (failures within the start period do not count), the last five results in `Log`.
//! The results live in the container's record in memory; a change of the status is persisted.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::{ContainerConfig, ExecConfig};
use tokio::io::AsyncReadExt;

use crate::containers::record::{Container, Status};
use crate::daemon::Daemon;
use crate::exec;

/// Docker's defaults (moby `daemon/health.go`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Output kept of one probe.
const MAX_OUTPUT: usize = 4096;
/// Results kept.
const MAX_LOG: usize = 5;

pub use crate::containers::record::{Health, Probe};

/// The test command of a config, `None` when there is no healthcheck (or `NONE`).
fn test_command(cfg: &ContainerConfig) -> Option<Vec<String>> {
    let test = cfg.healthcheck.as_ref()?.test.clone()?;
    match test.split_first() {
        Some((k, rest)) if k == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((k, rest)) if k == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// The health a container starts with.
pub fn initial(cfg: &ContainerConfig) -> Option<Health> {
    test_command(cfg).map(|_| Health { status: "starting".into(), failing_streak: 0, log: Vec::new() })
}

fn nanos(v: Option<i64>, default: Duration) -> Duration {
    match v {
        Some(n) if n > 0 => Duration::from_nanos(u64::try_from(n).unwrap_or(0)),
        _ => default,
    }
}

/// Runs the healthcheck of a container that just started (`started_at` tells this start from a later one).
pub fn spawn(d: Arc<Daemon>, c: Arc<Container>, started_at: String) {
    let rec = c.record();
    let Some(cmd) = test_command(&rec.config) else { return };
    let hc = rec.config.healthcheck.clone().unwrap_or_default();
    let interval = nanos(hc.interval, DEFAULT_INTERVAL);
    let timeout = nanos(hc.timeout, DEFAULT_TIMEOUT);
    let start_period = nanos(hc.start_period, Duration::ZERO);
    let start_interval = nanos(hc.start_interval, DEFAULT_START_INTERVAL);
    let retries = hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
    tokio::spawn(async move {
        let began = tokio::time::Instant::now();
        loop {
            let in_start = began.elapsed() < start_period;
            tokio::time::sleep(if in_start { start_interval.min(interval) } else { interval }).await;
            let now = c.record();
            if now.state.status != Status::Running || now.state.started_at != started_at {
                if now.state.status == Status::Paused && now.state.started_at == started_at {
                    continue;
                }
                return;
            }
            let probe = run_probe(&d, &c, &cmd, timeout).await;
            let in_start = began.elapsed() < start_period;
            let before = c.record().state.health.map(|h| h.status);
            let rec = c.update_volatile(|r| {
                if r.state.started_at != started_at {
                    return;
                }
                let h = r.state.health.get_or_insert_with(|| Health {
                    status: "starting".into(),
                    failing_streak: 0,
                    log: Vec::new(),
                });
                if probe.exit_code == 0 {
                    h.status = "healthy".into();
                    h.failing_streak = 0;
                } else if !in_start || h.status != "starting" {
                    h.failing_streak += 1;
                    if h.failing_streak >= retries {
                        h.status = "unhealthy".into();
                    }
                }
                h.log.push(probe);
                if h.log.len() > MAX_LOG {
                    let extra = h.log.len() - MAX_LOG;
                    h.log.drain(..extra);
                }
            });
            // A change of the status is written down (a restarted daemon shows it until the next check).
            let status = rec.state.health.map(|h| h.status);
            if status != before {
                crate::containers::persist::save_record(&d, &c).await;
                c.publish(&d.events, &format!("health_status: {}", status.unwrap_or_default()), &[]);
            }
        }
    });
}

/// Runs the test once as an exec; a start failure or a timeout is a failed probe (exit code -1), as moby has it.
async fn run_probe(d: &Arc<Daemon>, c: &Arc<Container>, cmd: &[String], timeout: Duration) -> Probe {
    let start = berth_api::time::now();
    let fail = |output: String| Probe { start: start.clone(), end: berth_api::time::now(), exit_code: -1, output };
    let cfg = ExecConfig {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(cmd.to_vec()),
        ..ExecConfig::default()
    };
    let id = match exec::create(d, c, cfg) {
        Ok(id) => id,
        Err(e) => return fail(e.to_string()),
    };
    let inst = match exec::get(d, &id) {
        Ok(i) => i,
        Err(e) => return fail(e.to_string()),
    };
    let result = tokio::time::timeout(timeout, async {
        let (io, child) = exec::start(d, &inst, false).await?;
        let mut output = Vec::new();
        if let exec::Io::Pipes { stdout, stderr, .. } = io {
            // Both pipes are drained at once, so a chatty stderr cannot block the test.
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let _ = tokio::join!(read_capped(stdout, &mut o), read_capped(stderr, &mut e));
            output = o;
            output.extend_from_slice(&e);
            output.truncate(MAX_OUTPUT);
        }
        let code = exec::finish(d, &inst, child).await;
        Ok::<_, berth_api::Error>((code, String::from_utf8_lossy(&output).to_string()))
    })
    .await;
    exec::forget(d, &id);
    match result {
        Ok(Ok((code, output))) => Probe { start, end: berth_api::time::now(), exit_code: code, output },
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail(format!("Health check exceeded timeout ({}s)", timeout.as_secs())),
    }
}

/// Reads a pipe to its end, keeping at most [`MAX_OUTPUT`] bytes.
async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin, out: &mut Vec<u8>) {
    let mut buf = [0u8; 1024];
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        if out.len() < MAX_OUTPUT {
            out.extend_from_slice(&buf[..n.min(MAX_OUTPUT - out.len())]);
        }
    }
}
