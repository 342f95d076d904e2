//! Restart policies, `docker update` and `--init` through the real docker CLI (and the Docker SDK for Python):
//! the `restarting` state between an exit and its restart, `rm` of a restarting container refused, `stop` cancelling a
//! pending restart, the doubling back-off, `RestartCount`, `die`/`start` events, containers coming back (or not) after
//! a daemon restart; live resource updates; Berth's init as PID 1.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_integration::*;
use serde_json::Value;

fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

fn docker_ok(d: &Berthd, args: &[&str]) -> String {
    let out = d.docker(args).unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\n--- berthd log ---\n{}",
        stderr(&out),
        tail(&d.log(), 30)
    );
    stdout(&out).trim().to_string()
}

/// `docker inspect -f FORMAT NAME` through the docker CLI.
fn dinspect(d: &Berthd, name: &str, format: &str) -> String {
    docker_ok(d, &["inspect", "-f", format, name])
}

/// The container's events between `since` and `until` (the stream ends at `until`).
fn events(d: &Berthd, name: &str, since: &str, until: &str) -> Vec<Value> {
    // Bounded: a daemon that never ends the stream at `until` fails the test instead of hanging it.
    let out = std::process::Command::new("timeout")
        .arg("30")
        .arg(docker_cli().unwrap())
        .args(["events", "--since", since, "--until", until, "--format", "{{json .}}", "--filter"])
        .arg(format!("container={name}"))
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "docker events: {}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn actions(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["Action"].as_str().unwrap()).collect()
}

fn setup() -> Option<Berthd> {
    require_root();
    if docker_cli().is_none() {
        skip_missing_tool("the docker CLI is not installed");
        return None;
    }
    Some(daemon_with_busybox())
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn restarting_state_rm_refused_stop_cancels_and_backoff_doubles() {
    let Some(d) = setup() else { return };
    let since = now();
    docker_ok(&d, &["run", "-d", "--name", "loop", "--restart", "always", "busybox", "true"]);
    // The back-off doubles from 100 ms (100, 200, 400, 800, 1600 ms, ...): within 20 s the container is seen
    // `restarting` (a window that grows to over a second).
    let seen = d.eventually(20, || dinspect(&d, "loop", "{{.State.Status}}") == "restarting");
    assert!(seen, "never seen restarting; log:\n{}", tail(&d.log(), 30));
    assert_eq!(dinspect(&d, "loop", "{{.State.Running}} {{.State.Restarting}} {{.State.Pid}}"), "true true 0");
    let ps = docker_ok(&d, &["ps", "--filter", "name=loop", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Restarting (0)"), "{ps}");

    // Wait until the back-off is over a second, then check the window while restarting.
    assert!(d.eventually(30, || dinspect(&d, "loop", "{{.RestartCount}}").parse::<i64>().unwrap() >= 6));
    assert!(d.eventually(20, || dinspect(&d, "loop", "{{.State.Status}}") == "restarting"));
    let out = d.docker(&["rm", "loop"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("You cannot remove a restarting container") && stderr(&out).contains("Stop the container"),
        "{}",
        stderr(&out)
    );
    // `stop` cancels the pending restart: no further start, whatever the back-off was.
    let count = dinspect(&d, "loop", "{{.RestartCount}}");
    docker_ok(&d, &["stop", "loop"]);
    let stopped = dinspect(&d, "loop", "{{.State.Status}} {{.State.StartedAt}}");
    assert!(stopped.starts_with("exited "), "{stopped}");
    // Longer than the pending back-off (a few seconds at this count, see above): nothing started meanwhile.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(dinspect(&d, "loop", "{{.State.Status}} {{.State.StartedAt}}"), stopped);
    assert_eq!(dinspect(&d, "loop", "{{.RestartCount}}"), count);
    let until = now();

    // Events: `die` then `start` for each policy restart (no `restart`, as Docker 20.10), then the `stop`.
    let evs = events(&d, "loop", &since, &until);
    let acts: Vec<&str> = actions(&evs).into_iter().filter(|a| !a.starts_with("exec")).collect();
    // `RestartCount` counts from each exit its policy restarts: the last one's start was cancelled by the `stop`.
    let n: usize = count.parse::<usize>().unwrap() - 1;
    assert_eq!(acts[..2], ["create", "start"], "{acts:?}");
    for i in 0..n {
        assert_eq!(acts[2 + 2 * i..4 + 2 * i], ["die", "start"], "{acts:?}");
    }
    assert_eq!(acts[2 + 2 * n..], ["die", "stop"], "{acts:?}");
    // The gaps between a `die` and the next `start` double: the fifth is well over the first (100 ms vs 1.6 s;
    // generous bounds for a loaded machine).
    let t = |e: &Value| e["timeNano"].as_i64().unwrap();
    let evs: Vec<&Value> = evs.iter().filter(|e| !e["Action"].as_str().unwrap().starts_with("exec")).collect();
    let gaps: Vec<i64> = (0..n).map(|i| t(evs[3 + 2 * i]) - t(evs[2 + 2 * i])).collect();
    assert!(gaps[0] < 1_000_000_000, "first back-off {gaps:?}");
    assert!(gaps[4] >= 1_200_000_000, "fifth back-off {gaps:?}");
    assert!(gaps[4] > 4 * gaps[0], "{gaps:?}");
    // A manual start starts the count over.
    docker_ok(&d, &["start", "loop"]);
    let c = dinspect(&d, "loop", "{{.RestartCount}}").parse::<i64>().unwrap();
    assert!(c <= 1, "RestartCount after a manual start: {c}");
    docker_ok(&d, &["rm", "-f", "loop"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn on_failure_counts_and_stops_at_its_maximum() {
    let Some(d) = setup() else { return };
    let since = now();
    let out = d.docker(&["run", "--name", "of", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3"]).unwrap();
    // `docker run` attached returns at the first exit, as with Docker.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // 100 + 200 ms of back-off: done well within 15 s.
    let done = d.eventually(15, || {
        dinspect(&d, "of", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}") == "exited 2 3"
    });
    assert!(done, "{}", dinspect(&d, "of", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(dinspect(&d, "of", "{{.State.Status}} {{.RestartCount}}"), "exited 2");
    let evs = events(&d, "of", &since, &now());
    let acts: Vec<&str> = actions(&evs).into_iter().filter(|a| matches!(*a, "start" | "die" | "restart")).collect();
    assert_eq!(acts, ["start", "die", "start", "die", "start", "die"], "{evs:?}");
    let die = evs.iter().rfind(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");

    // A success ends an on-failure container; `no` never restarts.
    docker_ok(&d, &["run", "--name", "ok", "--restart", "on-failure", "busybox", "true"]);
    let out = d.docker(&["run", "--name", "no", "busybox", "false"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(dinspect(&d, "ok", "{{.State.Status}} {{.RestartCount}}"), "exited 0");
    assert_eq!(dinspect(&d, "no", "{{.State.Status}} {{.RestartCount}}"), "exited 0");
}

/// The PID of a running container, as the daemon reports it.
fn pid(d: &Berthd, name: &str) -> i32 {
    dinspect(d, name, "{{.State.Pid}}").parse().unwrap()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn daemon_restart_brings_back_what_its_policy_restarts_and_leaves_the_running_alone() {
    let Some(mut d) = setup() else { return };
    for (name, policy) in [("al", "always"), ("us", "unless-stopped"), ("us2", "unless-stopped"), ("no", "no")] {
        docker_ok(&d, &["run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000"]);
    }
    docker_ok(&d, &["run", "-d", "--name", "alstop", "--restart", "always", "busybox", "sleep", "1000"]);
    docker_ok(&d, &["stop", "-t", "1", "us2"]);
    docker_ok(&d, &["stop", "-t", "1", "alstop"]);
    // Live restore: a container still running across a daemon restart keeps its process (not restarted).
    let al_pid = pid(&d, "al");
    // `us` and `no` die while berthd is down (as at a host's boot: nothing of them runs any more).
    let (us_pid, no_pid) = (pid(&d, "us"), pid(&d, "no"));
    d.kill9();
    for p in [us_pid, no_pid] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    // The shim records the exit and goes: bounded by the shim's own exit handling.
    assert!(d.eventually(10, || !std::path::Path::new(&format!("/proc/{us_pid}")).exists()));
    d.restart();
    let state = |n: &str| dinspect(&d, n, "{{.State.Status}}");
    // Docker's restore: `always` (even after a manual stop) and `unless-stopped` (unless stopped by hand) come back.
    assert!(d.eventually(20, || state("us") == "running" && state("alstop") == "running"), "{}", tail(&d.log(), 30));
    assert_eq!(pid(&d, "al"), al_pid, "a container running across the daemon restart is not restarted");
    assert_eq!(dinspect(&d, "al", "{{.RestartCount}}"), "0");
    assert_ne!(pid(&d, "us"), us_pid);
    assert_eq!(state("us2"), "exited", "unless-stopped, stopped by hand, stays stopped");
    assert_eq!(state("no"), "exited");
    for n in ["al", "us", "us2", "no", "alstop"] {
        docker_ok(&d, &["rm", "-f", n]);
    }
}
