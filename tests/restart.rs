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

/// `docker inspect -f FORMAT NAME` through the docker CLI.
fn dinspect(d: &Berthd, name: &str, format: &str) -> String {
    docker_value(d, &["inspect", "-f", format, name])
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn restarting_state_rm_refused_stop_cancels_and_backoff_doubles() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = now();
    docker_value(&d, &["run", "-d", "--name", "loop", "--restart", "always", "busybox", "true"]);
    // The back-off doubles from 100 ms (100, 200, 400, 800, 1600 ms, ...): within 20 s the container is seen
    // `restarting` (a window that grows to over a second).
    let seen = d.eventually(20, || dinspect(&d, "loop", "{{.State.Status}}") == "restarting");
    assert!(seen, "never seen restarting; log:\n{}", tail(&d.log(), 30));
    assert_eq!(dinspect(&d, "loop", "{{.State.Running}} {{.State.Restarting}} {{.State.Pid}}"), "true true 0");
    let ps = docker_value(&d, &["ps", "--filter", "name=loop", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Restarting (0)"), "{ps}");

    // Wait until the back-off is over a second, then check the window while restarting.
    assert!(d.eventually(30, || dinspect(&d, "loop", "{{.RestartCount}}").parse::<i64>().unwrap() >= 6));
    assert!(d.eventually(20, || dinspect(&d, "loop", "{{.State.Status}}") == "restarting"));
    let out = d.docker(&["rm", "loop"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("You cannot remove a restarting container")
            && stderr(&out).contains("Stop the container"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["exec", "loop", "true"]).unwrap();
    assert!(stderr(&out).contains("is restarting, wait until the container is running"), "{}", stderr(&out));
    let out = d.docker(&["pause", "loop"]).unwrap();
    assert!(stderr(&out).contains("is restarting, wait until the container is running"), "{}", stderr(&out));
    // `stop` cancels the pending restart: no further start, whatever the back-off was.
    let count = dinspect(&d, "loop", "{{.RestartCount}}");
    docker_value(&d, &["stop", "loop"]);
    let stopped = dinspect(&d, "loop", "{{.State.Status}} {{.State.StartedAt}}");
    assert!(stopped.starts_with("exited "), "{stopped}");
    // Longer than the pending back-off (a few seconds at this count, see above): nothing started meanwhile.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(dinspect(&d, "loop", "{{.State.Status}} {{.State.StartedAt}}"), stopped);
    assert_eq!(dinspect(&d, "loop", "{{.RestartCount}}"), count);
    let until = now();

    // Events: `die` then `start` for each policy restart (no `restart`, as Docker 20.10), then the `stop`.
    let evs = events(&d, &since, &until, &["container=loop"]);
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
    docker_value(&d, &["start", "loop"]);
    let c = dinspect(&d, "loop", "{{.RestartCount}}").parse::<i64>().unwrap();
    assert!(c <= 1, "RestartCount after a manual start: {c}");
    let id = dinspect(&d, "loop", "{{.Id}}");
    docker_value(&d, &["rm", "-f", "loop"]);
    // What a crash loop and its cancellation cost is given back: no cgroup is left (bounded by the rmdir retries).
    assert!(d.eventually(5, || cgroups_left(std::slice::from_ref(&id)).is_empty()));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn on_failure_counts_and_stops_at_its_maximum() {
    let Some(d) = docker_cli_daemon() else { return };
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
    let evs = events(&d, &since, &now(), &["container=of"]);
    let acts: Vec<&str> = actions(&evs).into_iter().filter(|a| matches!(*a, "start" | "die" | "restart")).collect();
    assert_eq!(acts, ["start", "die", "start", "die", "start", "die"], "{evs:?}");
    let die = evs.iter().rfind(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");

    // A success ends an on-failure container; `no` never restarts.
    docker_value(&d, &["run", "--name", "ok", "--restart", "on-failure", "busybox", "true"]);
    // Docker's create-time checks, through the API (the CLI checks these itself first).
    let body = br#"{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}}"#;
    let (code, _, msg) = api(&d, "POST", "/v1.41/containers/create", body);
    assert_eq!(
        (
            code,
            String::from_utf8_lossy(&msg).contains("maximum retry count cannot be used with restart policy 'always'")
        ),
        (400, true)
    );
    let body = br#"{"Image": "busybox", "HostConfig": {"AutoRemove": true, "RestartPolicy": {"Name": "on-failure"}}}"#;
    let (code, _, msg) = api(&d, "POST", "/v1.41/containers/create", body);
    assert_eq!(
        (code, String::from_utf8_lossy(&msg).contains("can't create 'AutoRemove' container with restart policy")),
        (400, true)
    );
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
    let Some(mut d) = docker_cli_daemon() else { return };
    for (name, policy) in [("al", "always"), ("us", "unless-stopped"), ("us2", "unless-stopped"), ("no", "no")] {
        docker_value(&d, &["run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000"]);
    }
    docker_value(&d, &["run", "-d", "--name", "alstop", "--restart", "always", "busybox", "sleep", "1000"]);
    docker_value(&d, &["stop", "-t", "1", "us2"]);
    docker_value(&d, &["stop", "-t", "1", "alstop"]);
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
        docker_value(&d, &["rm", "-f", n]);
    }
}

/// A file of the container's v1 cgroup (this machine: v1 hybrid), or its v2 equivalent.
fn cgroup_file(id: &str, v1: &str, v2: &str) -> String {
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let p = if unified {
        format!("/sys/fs/cgroup/berth/{id}/{v2}")
    } else {
        format!("/sys/fs/cgroup/{v1}").replace("{id}", id)
    };
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")).trim().to_string()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn update_applies_limits_live_stores_them_and_refuses_as_docker() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = now();
    docker_value(&d, &["run", "-d", "--name", "up", "-m", "256m", "busybox", "sleep", "1000"]);
    let id = dinspect(&d, "up", "{{.Id}}");
    let out = docker_value(
        &d,
        &[
            "update",
            "-m",
            "300m",
            "--memory-swap",
            "600m",
            "--memory-reservation",
            "100m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "50",
            "--cpuset-cpus",
            "0",
            "--restart",
            "on-failure:3",
            "up",
        ],
    );
    assert_eq!(out, "up");
    // Applied to the running container's cgroup at once.
    assert_eq!(cgroup_file(&id, "memory/berth/{id}/memory.limit_in_bytes", "memory.max"), (300u64 << 20).to_string());
    assert_eq!(
        cgroup_file(&id, "memory/berth/{id}/memory.soft_limit_in_bytes", "memory.low"),
        (100u64 << 20).to_string()
    );
    if std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}/memory.memsw.limit_in_bytes")).exists() {
        assert_eq!(cgroup_file(&id, "memory/berth/{id}/memory.memsw.limit_in_bytes", ""), (600u64 << 20).to_string());
    }
    assert_eq!(cgroup_file(&id, "cpu/berth/{id}/cpu.cfs_quota_us", "cpu.max").split(' ').next().unwrap(), "50000");
    assert_eq!(
        cgroup_file(&id, "cpu/berth/{id}/cpu.shares", "cpu.weight"),
        if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "20" } else { "512" }
    );
    assert_eq!(cgroup_file(&id, "pids/berth/{id}/pids.max", "pids.max"), "50");
    assert_eq!(cgroup_file(&id, "cpuset/berth/{id}/cpuset.cpus", "cpuset.cpus"), "0");
    // Stored, and shown by inspect.
    let h = dinspect(
        &d,
        "up",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} \
         {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
    );
    assert_eq!(h, format!("{} {} {} 500000000 512 50 0 on-failure:3", 300u64 << 20, 600u64 << 20, 100u64 << 20));

    // Docker's refusals: a limit below the reservation (400), a limit over the swap already set (409), CPU quota
    // against NanoCpus already set (409); nothing changes.
    let out = d.docker(&["update", "-m", "50m", "--memory-reservation", "60m", "up"]).unwrap();
    assert!(
        stderr(&out).contains("Minimum memory limit can not be less than memory reservation limit"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["update", "-m", "1g", "up"]).unwrap();
    assert!(
        stderr(&out).contains(&format!(
            "Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit"
        )),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["update", "--cpu-quota", "20000", "up"]).unwrap();
    assert!(
        stderr(&out).contains("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["update", "--cpus", "0.5", "--cpu-period", "50000", "up"]).unwrap();
    assert!(
        stderr(&out).contains("Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dinspect(&d, "up", "{{.HostConfig.Memory}}"), (300u64 << 20).to_string());
    // A block I/O weight: applied where the host has a proportional I/O scheduler, else Docker's warning.
    let out = docker_value(&d, &["update", "--blkio-weight", "300", "up"]);
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .any(|f| std::path::Path::new(&format!("/sys/fs/cgroup/blkio/{f}")).exists());
    if !weight_file && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(
            out.contains(
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
            ),
            "{out}"
        );
        assert_eq!(dinspect(&d, "up", "{{.HostConfig.BlkioWeight}}"), "0");
    }
    let out = d.berth(&["update", "up"]);
    assert!(stderr(&out).contains("you must provide one or more flags"), "{}", stderr(&out));

    // A stopped container's update is stored and applied at its next start.
    docker_value(&d, &["stop", "-t", "0", "up"]);
    docker_value(&d, &["update", "--pids-limit", "70", "up"]);
    docker_value(&d, &["start", "up"]);
    assert_eq!(cgroup_file(&id, "pids/berth/{id}/pids.max", "pids.max"), "70");
    // The berth CLI's `update` too.
    assert_eq!(d.ok(&["update", "--pids-limit", "-1", "up"]).trim(), "up");
    assert_eq!(cgroup_file(&id, "pids/berth/{id}/pids.max", "pids.max"), "max");
    let until = now();
    let evs: Vec<Value> =
        events(&d, &since, &until, &["container=up"]).into_iter().filter(|e| e["Action"] == "update").collect();
    assert_eq!(evs.len(), 4, "one update event per successful update (4): {evs:?}");
    assert_eq!(evs[0]["Actor"]["Attributes"]["name"], "up");
    docker_value(&d, &["rm", "-f", "up"]);
}

const PY_UPDATE: &str = r#"
import docker, json, sys
c = docker.from_env(version=sys.argv[1])
ct = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="pyup")
r = c.api.update_container(ct.id, mem_limit="64m", memswap_limit=-1, restart_policy={"Name": "always"}, kernel_memory="8m")
ct.reload()
hc = ct.attrs["HostConfig"]
print(json.dumps({"warnings": r["Warnings"], "memory": hc["Memory"], "policy": hc["RestartPolicy"]["Name"],
                  "count": ct.attrs["RestartCount"], "running": ct.attrs["State"]["Running"]}))
ct.remove(force=True)
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_py_updates_a_container() {
    let Some(d) = docker_cli_daemon() else { return };
    if docker_py().is_none() {
        return;
    }
    for version in ["1.38", "1.41"] {
        let out = std::process::Command::new("/usr/bin/python3")
            .args(["-c", PY_UPDATE, version])
            .env("DOCKER_HOST", d.host())
            .output()
            .unwrap();
        assert!(out.status.success(), "{version}: {}", stderr(&out));
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["memory"], 64 << 20, "{v}");
        assert_eq!(v["policy"], "always");
        assert_eq!(v["running"], true);
        let w: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
        assert!(
            w.contains(&"Specifying a kernel memory limit is deprecated and will be removed in a future release."),
            "{w:?}"
        );
    }
}

/// The command line of the container's PID 1, arguments separated by spaces.
fn pid1(d: &Berthd, name: &str) -> String {
    docker_value(d, &["exec", name, "cat", "/proc/1/cmdline"]).replace('\0', " ").trim().to_string()
}

/// Zombie processes in the container (`ps` state `Z`).
fn zombies(d: &Berthd, name: &str) -> usize {
    docker_value(d, &["exec", name, "ps", "-o", "stat"]).lines().filter(|l| l.trim().starts_with('Z')).count()
}

/// Orphans that end after a moment: each inner `sh` exits at once, its `sleep` is reparented to PID 1. Then the
/// command becomes `sleep`, which never reaps anything.
const ORPHANS: &str = "for i in 1 2 3 4 5; do sh -c 'sleep 0.2 &'; done; exec sleep 1000";

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn init_is_pid_1_forwards_signals_reaps_zombies_and_passes_the_exit_code() {
    let Some(d) = docker_cli_daemon() else { return };
    docker_value(&d, &["run", "-d", "--init", "--name", "in", "busybox", "sleep", "100"]);
    assert_eq!(pid1(&d, "in"), "/sbin/docker-init -- sleep 100");
    // Docker shows the command, not the init, and `Init` in the host config.
    assert_eq!(dinspect(&d, "in", "{{.Path}} {{.Args}} {{.HostConfig.Init}}"), "sleep [100] true");
    // Read-only, and static: it runs in busybox, which has no dynamic loader.
    let out = d.docker(&["exec", "in", "sh", "-c", "echo x > /sbin/docker-init"]).unwrap();
    assert!(!out.status.success(), "the init is mounted read-only");
    // `stop` ends `sleep` at once: the init forwards SIGTERM (sleep as PID 1 would ignore it until the 10 s timeout).
    let t = std::time::Instant::now();
    docker_value(&d, &["stop", "in"]);
    let took = t.elapsed();
    // Generous: the stop itself takes milliseconds; the timeout it would otherwise wait is 10 s.
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(dinspect(&d, "in", "{{.State.ExitCode}}"), "143");

    // Orphans are reaped by the init; without it they stay zombies under `sleep` (the test can fail).
    docker_value(&d, &["run", "-d", "--init", "--name", "reaped", "busybox", "sh", "-c", ORPHANS]);
    docker_value(&d, &["run", "-d", "--name", "zombies", "busybox", "sh", "-c", ORPHANS]);
    // The orphans' `sleep 0.2` are over well within 3 s; reaping follows their exit at once.
    assert!(d.eventually(10, || zombies(&d, "zombies") == 5), "zombies without init: {}", zombies(&d, "zombies"));
    assert_eq!(zombies(&d, "reaped"), 0);
    docker_value(&d, &["rm", "-f", "reaped", "zombies"]);

    // The command's exit code, or 128 + its signal.
    let out = d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"]).unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"]).unwrap();
    assert_eq!(out.status.code(), Some(137));
    // A signal from `docker kill` reaches the command through the init.
    docker_value(
        &d,
        &[
            "run",
            "-d",
            "--init",
            "--name",
            "trap",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 42' USR1; while :; do sleep 0.1; done",
        ],
    );
    // The trap is set once the shell runs its loop: give it a moment (bounded by the wait below).
    std::thread::sleep(Duration::from_millis(500));
    docker_value(&d, &["kill", "-s", "USR1", "trap"]);
    assert_eq!(docker_value(&d, &["wait", "trap"]), "42");
    docker_value(&d, &["rm", "-f", "in", "trap"]);
    // The init's bind mount lives in the containers' mount namespaces only: nothing of it on the host.
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains("docker-init"), "{host_mounts}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn daemon_init_default_is_overridden_per_container_and_compose_init_works() {
    require_root();
    if docker_cli().is_none() {
        skip_missing_tool("the docker CLI is not installed");
        return;
    }
    // `"init": true` in daemon.json is the daemon's `--init`.
    // The file lives as long as the daemon: its clean-up (`--remove-networking`) reads it again.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"init": true}"#).unwrap();
    let d = Berthd::start_with(&["--config-file", cfg.to_str().unwrap()]);
    d.busybox();
    let cmdline = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(extra);
        args.extend(["busybox", "cat", "/proc/1/cmdline"]);
        docker_value(&d, &args).replace('\0', " ").trim().to_string()
    };
    assert_eq!(cmdline(&[]), "/sbin/docker-init -- cat /proc/1/cmdline");
    assert_eq!(cmdline(&["--init=false"]), "cat /proc/1/cmdline");

    // docker-compose 1.29's `init: true` (on a daemon without the default).
    let d = daemon_with_busybox();
    let Some(compose) = ComposeV1::new(
        &d,
        "initproj",
        "version: '2.4'\nservices:\n  s:\n    image: busybox\n    init: true\n    command: sleep 1000\n",
        "the compose init check",
    ) else {
        return;
    };
    compose.run_ok(&["up", "-d"]);
    assert_eq!(pid1(&d, "initproj_s_1"), "/sbin/docker-init -- sleep 1000");
    docker_value(&d, &["rm", "-f", "initproj_s_1"]);
}

/// The same requests against a real dockerd 20.10 and berthd: a policy restart's events (`die`, `start`, no
/// `restart`), `RestartCount`, an `update`'s output and the refusal of `rm` of a restarting container.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn policy_restarts_and_updates_match_a_real_dockerd() {
    let Some(d) = docker_cli_daemon() else { return };
    let Some(peer) = PeerDockerd::start() else { return };
    let made = std::process::Command::new(repo_root().join("contrib/mkimage-busybox.sh"))
        .env("BERTH", docker_cli().unwrap())
        .env("DOCKER_HOST", format!("unix://{}", peer.socket().display()))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let berth = |args: &[&str]| d.docker(args).unwrap();
    let docker = |args: &[&str]| peer.docker(args);
    let mut seen = Vec::new();
    for run in [&berth as &dyn Fn(&[&str]) -> std::process::Output, &docker] {
        let ok = |args: &[&str]| {
            let out = run(args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            stdout(&out).trim().to_string()
        };
        let since = now();
        ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "pp",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]);
        // 100 + 200 ms of back-off (dockerd's too): both done within 20 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "pp"]) != "exited 2" {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "pp"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let evs = ok(&[
            "events",
            "--since",
            &since,
            "--until",
            &now(),
            "--filter",
            "container=pp",
            "--format",
            "{{.Action}}",
        ]);
        let acts: Vec<String> = evs.lines().map(String::from).collect();
        let update = ok(&["update", "--cpu-shares", "512", "--restart", "always", "pp"]);
        let policy = ok(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.CpuShares}}", "pp"]);
        // A restarting container cannot be removed without force.
        ok(&["rm", "-f", "pp"]);
        ok(&["run", "-d", "--network", "none", "--name", "qq", "--restart", "always", "busybox", "true"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Caught restarting after a few restarts: the back-off (100 ms, doubled each time) is then long enough
        // for the `rm` below to find it still restarting, on a loaded machine too.
        while !ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "qq"])
            .split_once(' ')
            .is_some_and(|(s, n)| s == "restarting" && n.parse::<u32>().is_ok_and(|n| n >= 3))
        {
            assert!(std::time::Instant::now() < deadline, "never restarting");
            std::thread::sleep(Duration::from_millis(20));
        }
        let rm = run(&["rm", "qq"]);
        let id = ok(&["inspect", "-f", "{{.Id}}", "qq"]);
        let rm_err = stderr(&rm).trim().replace(&id, "ID");
        ok(&["rm", "-f", "qq"]);
        seen.push((acts, update, policy, rm_err));
    }
    assert_eq!(seen[0], seen[1], "berthd (left) and dockerd (right)");
}
