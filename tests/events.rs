//! `GET /events` through the real docker CLI and docker-py: container events in order with Docker's attributes,
//! `--since`/`--until`, filters, an unknown filter refused, and the history surviving a daemon restart.
#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use berth_integration::*;
use serde_json::Value;

/// A daemon with busybox, when the docker CLI is there.

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_sees_container_events_in_order_with_filters() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = unix_now();
    let out = d.docker(&["run", "--name", "ev", "-l", "app=x", "busybox", "sh", "-c", "exit 3"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let id = d.inspect("ev", "{{.Id}}");
    docker_ok(&d, &["rm", "ev"]);
    docker_ok(&d, &["network", "create", "othernet"]);
    let until = unix_now();

    let all =
        events(&d, &since, &until, &["container=ev", "event=create", "event=start", "event=die", "event=destroy"]);
    assert_eq!(actions(&all), ["create", "start", "die", "destroy"], "{all:?}");
    for e in &all {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["Actor"]["ID"], id.as_str());
        assert_eq!(e["Actor"]["Attributes"]["name"], "ev");
        assert_eq!(e["Actor"]["Attributes"]["image"], "busybox");
        assert_eq!(e["Actor"]["Attributes"]["app"], "x");
        assert_eq!(e["scope"], "local");
        let (t, tn) = (e["time"].as_i64().unwrap(), e["timeNano"].as_i64().unwrap());
        assert_eq!(t, tn / 1_000_000_000);
    }
    assert_eq!(all[2]["Actor"]["Attributes"]["exitCode"], "3");
    let nanos: Vec<i64> = all.iter().map(|e| e["timeNano"].as_i64().unwrap()).collect();
    assert!(nanos.windows(2).all(|w| w[0] <= w[1]), "{nanos:?}");

    // Filters: label, type (one key ORs, different keys AND), by ID.
    let by_label = events(&d, &since, &until, &["label=app=x", "event=die"]);
    assert_eq!(actions(&by_label), ["die"]);
    assert!(events(&d, &since, &until, &["label=app=y"]).is_empty());
    let nets = events(&d, &since, &until, &["type=network", "event=create"]);
    assert_eq!(actions(&nets), ["create"]);
    assert_eq!(nets[0]["Actor"]["Attributes"]["name"], "othernet");
    let both = events(&d, &since, &until, &["type=network", "type=container", "event=create"]);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(events(&d, &since, &until, &[&format!("container={}", &id[..12]), "event=die"]).len(), 1);

    // The berth CLI: `events --format '{{json .}}'` and `system events` in the docker CLI's default line.
    let out =
        d.ok(&["events", "--since", &since, "--until", &until, "--filter", "container=ev", "--format", "{{json .}}"]);
    let mine: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(mine.iter().filter(|e| e["Type"] == "container").count(), all.len() + 1, "{out}"); // + the attach
    let line =
        d.ok(&["system", "events", "--since", &since, "--until", &until, "-f", "container=ev", "-f", "event=die"]);
    assert!(
        line.trim_end()
            .ends_with(&format!(" container die {id} (app=x, execDuration=0, exitCode=3, image=busybox, name=ev)")),
        "{line}"
    );

    // An unknown filter key: Docker's 400.
    let out = d.docker(&["events", "--since", &since, "--until", &until, "--filter", "bogus=1"]).unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid filter 'bogus'"), "{}", stderr(&out));

    // `until` before `since`: Docker's 400.
    let out = d.docker(&["events", "--since", &until, "--until", &since]).unwrap();
    assert!(stderr(&out).contains("cannot be after `until` time"), "{}", stderr(&out));

    // Live: a stream started before the events sees them (and ends at its `until`).
    let (tx, rx) = std::sync::mpsc::channel();
    let host = d.host();
    let cfg = d.dir.join("docker-config");
    let start = unix_now();
    let until_live = format!("{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 6);
    std::thread::spawn(move || {
        let out = std::process::Command::new(docker_cli().unwrap())
            .args(["events", "--since", &start, "--until", &until_live, "--filter", "container=live"])
            .args(["--format", "{{.Action}}"])
            .env("DOCKER_HOST", host)
            .env("DOCKER_CONFIG", cfg)
            .output()
            .unwrap();
        tx.send(stdout(&out)).unwrap();
    });
    docker_ok(&d, &["run", "--rm", "--name", "live", "busybox", "true"]);
    // Bounded by the stream's own `until` (6 s), with margin.
    let live = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    let got: Vec<&str> = live.lines().filter(|a| ["create", "start", "die", "destroy"].contains(a)).collect();
    assert_eq!(got, ["create", "start", "die", "destroy"], "{live}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_lifecycle_exec_network_volume_events() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = unix_now();
    let id = docker_ok(&d, &["run", "-d", "--name", "lc", "-v", "vol1:/data", "busybox", "sleep", "300"]);
    let id = id.trim();
    docker_ok(&d, &["exec", "lc", "true"]);
    docker_ok(&d, &["network", "create", "n1"]);
    docker_ok(&d, &["network", "connect", "n1", "lc"]);
    docker_ok(&d, &["network", "disconnect", "n1", "lc"]);
    docker_ok(&d, &["pause", "lc"]);
    docker_ok(&d, &["unpause", "lc"]);
    docker_ok(&d, &["rename", "lc", "lc2"]);
    docker_ok(&d, &["stop", "-t", "1", "lc2"]);
    docker_ok(&d, &["rm", "lc2"]);
    docker_ok(&d, &["volume", "rm", "vol1"]);
    docker_ok(&d, &["network", "rm", "n1"]);
    let until = unix_now();

    let ctr = events(&d, &since, &until, &["type=container", &format!("container={id}")]);
    let acts = actions(&ctr);
    assert_eq!(
        acts,
        [
            "create",
            "start",
            // Docker's action: the program, a space, its arguments (none here).
            "exec_create: true ",
            "exec_start: true ",
            "exec_die",
            "pause",
            "unpause",
            "rename",
            // `sleep` as PID 1 ignores SIGTERM: SIGKILL after the second, as Docker's.
            "kill",
            "kill",
            "die",
            "stop",
            "destroy"
        ],
        "{ctr:?}"
    );
    let attr = |a: &str, k: &str| ctr.iter().find(|e| e["Action"] == a).unwrap()["Actor"]["Attributes"][k].clone();
    assert_eq!(attr("exec_die", "exitCode"), "0");
    assert!(attr("exec_die", "execID").as_str().is_some_and(|x| x.len() == 64));
    assert_eq!(attr("kill", "signal"), "15");
    assert_eq!(ctr[9]["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(attr("die", "exitCode"), "137");
    assert_eq!(attr("rename", "oldName"), "/lc");
    assert_eq!(attr("rename", "name"), "lc2");
    // `event=exec_start` matches the action's prefix, as Docker's.
    assert_eq!(events(&d, &since, &until, &["event=exec_start"]).len(), 1);

    let vol = events(&d, &since, &until, &["volume=vol1"]);
    assert_eq!(actions(&vol), ["create", "mount", "unmount", "destroy"], "{vol:?}");
    assert_eq!(vol[1]["Actor"]["Attributes"]["container"], id);
    assert_eq!(vol[1]["Actor"]["Attributes"]["destination"], "/data");

    // The default bridge: joined at the start, left at the end.
    let bridge = events(&d, &since, &until, &["network=bridge"]);
    assert_eq!(actions(&bridge), ["connect", "disconnect"], "{bridge:?}");
    assert!(bridge.iter().all(|e| e["Actor"]["Attributes"]["container"] == id));

    let net = events(&d, &since, &until, &["network=n1"]);
    assert_eq!(actions(&net), ["create", "connect", "disconnect", "destroy"], "{net:?}");
    for e in &net[1..3] {
        assert_eq!(e["Actor"]["Attributes"]["container"], id);
        assert_eq!(e["Actor"]["Attributes"]["name"], "n1");
        assert_eq!(e["Actor"]["Attributes"]["type"], "bridge");
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_py_events_since_until() {
    let Some(d) = docker_cli_daemon() else { return };
    if docker_py().is_none() {
        return;
    }
    let since = unix_now();
    docker_ok(&d, &["run", "--name", "py", "busybox", "true"]);
    docker_ok(&d, &["rm", "py"]);
    let until = unix_now();
    let script = format!(
        "import docker, json\n\
         c = docker.DockerClient(base_url='{}')\n\
         for e in c.events(decode=True, since={since}, until={until}, filters={{'container': 'py'}}):\n    \
         print(json.dumps(e))\n",
        d.host()
    );
    let out = std::process::Command::new("/usr/bin/python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let evs: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let acts: Vec<&str> =
        actions(&evs).into_iter().filter(|a| ["create", "start", "die", "destroy"].contains(a)).collect();
    assert_eq!(acts, ["create", "start", "die", "destroy"], "{evs:?}");
    assert_eq!(evs.iter().find(|e| e["Action"] == "die").unwrap()["Actor"]["Attributes"]["exitCode"], "0");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn events_survive_a_daemon_restart() {
    let Some(mut d) = docker_cli_daemon() else { return };
    let since = unix_now();
    docker_ok(&d, &["run", "--name", "before", "busybox", "true"]);
    docker_ok(&d, &["rm", "before"]);
    // A clean stop (SIGTERM, as systemd's) writes what is queued for the disk before berthd exits.
    let (status, _) = d.sigterm();
    assert!(status.success(), "{status:?}");
    let log = d.dir.join("data/events.jsonl");
    assert!(std::fs::read_to_string(&log).unwrap().contains("\"destroy\""));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    d.restart();
    let until = unix_now();
    let evs = events(&d, &since, &until, &["container=before"]);
    let acts: Vec<&str> =
        actions(&evs).into_iter().filter(|a| ["create", "start", "die", "destroy"].contains(a)).collect();
    assert_eq!(acts, ["create", "start", "die", "destroy"], "{evs:?}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_image_and_health_events() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = unix_now();
    docker_ok(&d, &["tag", "busybox", "other:1"]);
    docker_ok(&d, &["rmi", "other:1"]);
    let tar = d.dir.join("img.tar");
    docker_ok(&d, &["save", "-o", tar.to_str().unwrap(), "busybox"]);
    docker_ok(&d, &["load", "-i", tar.to_str().unwrap()]);
    let root = d.dir.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello"), "hi").unwrap();
    let small = d.dir.join("small.tar");
    let out = std::process::Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&small).arg(".").output().unwrap();
    assert!(out.status.success());
    let imported = docker_ok(&d, &["import", small.to_str().unwrap(), "small:1"]);
    docker_ok(&d, &["rmi", "small:1"]);
    // A healthcheck that passes: `health_status: healthy` (the probe's execs are events too, as Docker's).
    docker_ok(
        &d,
        &["run", "-d", "--name", "hc", "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60"],
    );
    assert!(d.eventually(20, || docker_ok(&d, &["inspect", "-f", "{{.State.Health.Status}}", "hc"]) == "healthy\n"));
    docker_ok(&d, &["rm", "-f", "hc"]);
    let until = unix_now();

    let imgs = events(&d, &since, &until, &["type=image"]);
    assert_eq!(actions(&imgs), ["tag", "untag", "save", "load", "import", "untag", "delete"], "{imgs:?}");
    assert_eq!(imgs[0]["Actor"]["Attributes"]["name"], "other:1");
    assert!(imgs[0]["Actor"]["ID"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(imgs[4]["Actor"]["ID"], imported.trim());
    assert_eq!(imgs[6]["Actor"]["ID"], imported.trim());
    let health = events(&d, &since, &until, &["event=health_status"]);
    assert_eq!(actions(&health), ["health_status: healthy"], "{health:?}");
    assert_eq!(health[0]["Actor"]["Attributes"]["name"], "hc");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn push_and_pull_events() {
    let Some(d) = docker_cli_daemon() else { return };
    let r = LocalRegistry::start(d.dir.join("registry"));
    let name = format!("{}/ev/bb:v1", r.addr);
    docker_ok(&d, &["tag", "busybox", &name]);
    let since = unix_now();
    docker_ok(&d, &["push", &name]);
    docker_ok(&d, &["rmi", &name]);
    docker_ok(&d, &["pull", &name]);
    let until = unix_now();
    let evs = events(&d, &since, &until, &["type=image", "event=push", "event=pull"]);
    assert_eq!(actions(&evs), ["push", "pull"], "{evs:?}");
    for e in &evs {
        assert_eq!(e["Actor"]["ID"], name.as_str());
        assert_eq!(e["Actor"]["Attributes"]["name"], name.as_str());
    }
}

/// Descriptors open in a process.
fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_subscriber_that_does_not_read_is_dropped_and_costs_nothing_after() {
    use std::io::{Read, Write};
    require_root();
    let d = daemon_with_busybox();
    let before = fds(d.pid());
    // A client that asks for events and then reads nothing.
    let mut slow = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    slow.write_all(b"GET /events HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n").unwrap();
    // Let the daemon subscribe it (the bus has no way to be asked; a bounded pause).
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Far more events than its backlog (1,024) plus what the socket buffers hold (a few hundred lines): tag and
    // untag, 2 events a pair. None of these calls may wait for the slow client.
    let t = std::time::Instant::now();
    for i in 0..1500 {
        let (status, _, body) = api(&d, "POST", &format!("/images/busybox/tag?repo=slow&tag=t{i}"), b"");
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let (status, _, _) = api(&d, "DELETE", &format!("/images/slow:t{i}"), b"");
        assert_eq!(status, 200);
    }
    let spent = t.elapsed();
    // Now it reads: what was buffered, then the end of the stream (the daemon dropped it), not 3,000 events.
    slow.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    slow.read_to_end(&mut got).expect("the stream ends (a read timeout here means the subscriber was kept)");
    let text = String::from_utf8_lossy(&got);
    let lines = text.matches("\"Action\"").count();
    assert!(lines > 0 && lines < 3000, "{lines} events reached the slow subscriber");
    drop(slow);
    // Its connection and subscription are gone: the daemon holds no more descriptors than before (a bounded wait for
    // the connection task to notice).
    assert!(d.eventually(5, || fds(d.pid()) <= before), "descriptors: {before} before, {} after", fds(d.pid()));
    eprintln!(
        "3,000 image API calls with a stalled subscriber: {spent:?}; it got {lines} events before it was dropped"
    );
}

/// A container the kernel's OOM killer ends: `OOMKilled` in inspect, exit 137, and `oom` then `die` (issue 14).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn an_oom_killed_container_says_so_and_emits_oom_then_die() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = unix_now();
    // `tail` of a file without newlines keeps all it reads: 16 MiB of memory and no swap are soon gone.
    let out = d.berth(&["run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "busybox", "tail", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(137), "the hog was not killed: {}", stderr(&out));
    assert_eq!(d.inspect("hog", "{{.State.OOMKilled}}"), "true");
    let evs = events(&d, &since, &unix_now(), &["container=hog"]);
    let acts = actions(&evs);
    let oom = acts.iter().position(|a| *a == "oom").unwrap_or_else(|| panic!("no oom event in {acts:?}"));
    let die = acts.iter().position(|a| *a == "die").unwrap_or_else(|| panic!("no die event in {acts:?}"));
    assert!(oom < die, "oom must come before die: {acts:?}");
    assert_eq!(acts.iter().filter(|a| **a == "oom").count(), 1, "one oom, from the live watch or the exit: {acts:?}");
    assert_eq!(evs[die]["Actor"]["Attributes"]["exitCode"], "137");
    // A container that ends by itself is not taken for an OOM kill.
    d.ok(&["run", "--name", "fine", "-m", "16m", "busybox", "true"]);
    assert_eq!(d.inspect("fine", "{{.State.OOMKilled}}"), "false");
}

/// An OOM kill of a process other than the init, while the container keeps running: `oom` is published at once (the
/// cgroup's OOM notifier, not the exit) and `OOMKilled` shows in inspect while the container still runs; its exit
/// later does not publish `oom` a second time.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn an_oom_kill_inside_a_running_container_is_reported_live() {
    let Some(d) = docker_cli_daemon() else { return };
    let since = unix_now();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "tail /dev/zero; exec sleep 1000",
    ]);
    // Bounded: the hog fills 16 MiB within a second or two; 20 s is a generous margin on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.inspect("live", "{{.State.OOMKilled}}") != "true" {
        assert!(std::time::Instant::now() < deadline, "no OOMKilled while running\n{}", tail(&d.log(), 20));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(d.inspect("live", "{{.State.Status}}"), "running", "the init survives its child's OOM kill");
    let evs = events(&d, &since, &unix_now(), &["container=live"]);
    let acts = actions(&evs);
    assert_eq!(acts.iter().filter(|a| **a == "oom").count(), 1, "oom while it runs: {acts:?}");
    assert!(!acts.contains(&"die"), "it still runs: {acts:?}");
    d.ok(&["rm", "-f", "live"]);
    let evs = events(&d, &since, &unix_now(), &["container=live"]);
    let acts = actions(&evs);
    assert_eq!(acts.iter().filter(|a| **a == "oom").count(), 1, "the exit does not report it again: {acts:?}");
    assert!(acts.contains(&"die"), "{acts:?}");
}
