//! `berth compose events` and `berth compose stats` against a private daemon: both see exactly the project's
//! containers (by the project label), never another container of the same daemon.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_integration::*;
use serde_json::Value;

const FILE: &str = "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n  db:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n";

/// A project `live` in `d.dir/live` with the services `web` and `db`.
fn project(d: &Berthd) -> std::path::PathBuf {
    compose_project(d, "live", FILE)
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_stats_lists_the_projects_containers() {
    let d = daemon_with_busybox();
    let dir = project(&d);
    compose_ok(&d, &dir, &["up", "-d"]);
    d.ok(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]);
    let names = compose_ok(&d, &dir, &["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(sorted_lines(&names), ["live-db-1", "live-web-1"], "{names}");
    // A service, and the default table's header.
    let table = compose_ok(&d, &dir, &["stats", "--no-stream", "web"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("CONTAINER ID") && lines[0].contains("MEM USAGE / LIMIT"), "{table}");
    assert!(lines[1].contains("live-web-1"), "{table}");
    // Running ones by default; --all has the stopped one too.
    compose_ok(&d, &dir, &["stop", "db"]);
    let names = compose_ok(&d, &dir, &["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(sorted_lines(&names), ["live-web-1"], "{names}");
    let names = compose_ok(&d, &dir, &["stats", "--no-stream", "--all", "--format", "{{.Name}}"]);
    assert_eq!(sorted_lines(&names), ["live-db-1", "live-web-1"], "{names}");
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}

/// Reads a child's stdout lines into a channel.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// The JSON events from `rx` until one satisfies `last` (bounded: the actions that make them are done by then, so
/// they arrive within milliseconds; 20 s covers a loaded machine).
fn events_until(rx: &mpsc::Receiver<String>, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx.recv_timeout(left).unwrap_or_else(|e| panic!("{e}: events so far: {got:#?}"));
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        let done = last(&v);
        got.push(v);
        if done {
            return got;
        }
    }
}

fn actions(events: &[Value], id: &str) -> Vec<String> {
    events.iter().filter(|e| e["id"] == id).map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_events_follows_the_projects_containers() {
    let d = daemon_with_busybox();
    let dir = project(&d);
    compose_ok(&d, &dir, &["up", "-d"]);
    let other = d.ok(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]).trim().to_string();
    let web = compose_ok(&d, &dir, &["ps", "-q", "web"]).trim().to_string();
    let db = compose_ok(&d, &dir, &["ps", "-q", "db"]).trim().to_string();
    assert!(!web.is_empty() && !db.is_empty() && !other.is_empty());
    let spawn = |args: &[&str]| {
        d.berth_cmd()
            .current_dir(&dir)
            .args(["compose", "events", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut all = spawn(&[]);
    let mut only_db = spawn(&["db"]);
    let (all_rx, db_rx) = (lines_of(&mut all), lines_of(&mut only_db));
    // Nothing tells the test when the two subscriptions are live, so it pauses and unpauses db until both streams
    // show it (bounded: 15 rounds of at most 2 s each), then drains what the probe left (until 300 ms of silence).
    let unpaused = |rx: &mpsc::Receiver<String>| {
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if serde_json::from_str::<Value>(&l).is_ok_and(|v| v["id"] == db.as_str() && v["action"] == "unpause") {
                return true;
            }
        }
        false
    };
    let mut live = false;
    for _ in 0..15 {
        compose_ok(&d, &dir, &["pause", "db"]);
        compose_ok(&d, &dir, &["unpause", "db"]);
        let (a, b) = (unpaused(&all_rx), unpaused(&db_rx));
        if a && b {
            live = true;
            break;
        }
    }
    assert!(live, "the compose events processes never showed db's unpause");
    for rx in [&all_rx, &db_rx] {
        while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
    compose_ok(&d, &dir, &["restart", "-t", "1", "web"]);
    d.ok(&["restart", "-t", "0", "other"]);
    compose_ok(&d, &dir, &["stop", "-t", "1", "db"]);
    let is_db_stop = |e: &Value| e["id"] == db.as_str() && e["action"] == "stop";
    let got = events_until(&all_rx, is_db_stop);
    let got_db = events_until(&db_rx, is_db_stop);
    for c in [&mut all, &mut only_db] {
        let _ = c.kill();
        let _ = c.wait();
    }
    // Only the project's containers, with Compose's keys.
    for e in &got {
        assert!(e["id"] == web.as_str() || e["id"] == db.as_str(), "not the project's: {e}\nall: {got:#?}");
        assert_eq!(e["type"], "container", "{e}");
        let svc = if e["id"] == web.as_str() { "web" } else { "db" };
        assert_eq!(e["service"], svc, "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        let attrs = e["attributes"].as_object().unwrap();
        assert!(attrs.keys().all(|k| !k.starts_with("com.docker.compose.")), "{e}");
        assert_eq!(attrs["name"], format!("live-{svc}-1"), "{e}");
    }
    let web_actions = actions(&got, &web);
    for a in ["die", "start", "restart"] {
        assert!(web_actions.iter().any(|x| x == a), "no {a} for web: {web_actions:?}");
    }
    let db_actions = actions(&got, &db);
    for a in ["kill", "die", "stop"] {
        assert!(db_actions.iter().any(|x| x == a), "no {a} for db: {db_actions:?}");
    }
    // The service filter: db's events alone, the same ones.
    assert!(got_db.iter().all(|e| e["id"] == db.as_str()), "{got_db:#?}");
    assert_eq!(actions(&got_db, &db), db_actions);
    compose_ok(&d, &dir, &["down", "-t", "0"]);
    d.ok(&["rm", "-f", "other"]);
}
