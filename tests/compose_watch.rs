//! `berth compose` running what Compose v2 runs around containers: `watch` (`develop.watch` sync, sync+exec,
//! rebuild), the `post_start`/`pre_stop` hooks, `depends_on.restart`, `deploy.resources`/`restart_policy` in the
//! containers' HostConfig, and secrets/configs from `environment:`/`content:` written into the containers.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_integration::*;

/// Polls `f` every 100 ms until it returns `Some`, for at most `bound` (the watcher acts asynchronously: a
/// change's effect shows after the quiet period of 500 ms and the copy or rebuild).
fn eventually<T>(bound: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {bound:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `berth compose watch` running in the background; killed (by its PID) when dropped.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(p: &Project<'_>) -> Watch {
        Watch::start_with(p, &["watch"])
    }

    fn start_with(p: &Project<'_>, args: &[&str]) -> Watch {
        let mut child =
            p.d.berth_cmd()
                .current_dir(&p.dir)
                .arg("compose")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The CPU time (user + system, in clock ticks) the watch process has used.
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id() as i32).unwrap()
    }

    /// Waits (at most `bound`) for a line of stderr containing `text`; returns the lines seen.
    fn wait_for(&self, text: &str, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        let mut seen = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let hit = l.contains(text);
            seen.push(l);
            if hit {
                return seen;
            }
        }
        panic!("compose watch never printed {text:?} within {bound:?}; it printed:\n{}", seen.join("\n"));
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WATCH_FILE: &str = r#"
services:
  web:
    build: ./app
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./app/src
          action: sync
          target: /app/src
          ignore: ["*.tmp", "cache/"]
        - path: ./app/conf
          action: sync+exec
          target: /etc/web
          exec:
            command: ["sh", "-c", "cat /etc/web/x.conf > /tmp/exec-ran"]
        - path: ./app/settings.ini
          action: sync+restart
          target: /etc/settings.ini
        - path: ./app/deps
          action: rebuild
"#;

/// `watch`: a changed file is synced into the running container (ignored ones are not, deleted ones go),
/// sync+exec runs its command after the copy, and a change under a rebuild path rebuilds the image and
/// recreates the container (a new container ID holding the new file).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_watch_syncs_execs_and_rebuilds() {
    let d = daemon_with_busybox();
    let p = Project::new(
        &d,
        "live",
        &[
            ("compose.yaml", WATCH_FILE),
            ("app/Dockerfile", "FROM busybox\nCOPY . /app\nCMD [\"sleep\", \"1000\"]\n"),
            ("app/src/old.txt", "old"),
            ("app/conf/x.conf", "v1"),
            ("app/deps/req.txt", "a==1"),
            ("app/settings.ini", "debug=0"),
        ],
    );
    let w = Watch::start(&p);
    w.wait_for("Watch enabled", Duration::from_secs(180));
    let first = p.inspect("web")["Id"].as_str().unwrap().to_string();
    assert_eq!(p.sh("web", "cat /app/src/old.txt").as_deref(), Some("old"));

    // sync: a new file (and one in a new directory) arrive; an ignored one does not; a deleted one goes.
    p.write("app/src/new.txt", "fresh");
    p.write("app/src/sub/deep.txt", "deep");
    p.write("app/src/junk.tmp", "junk");
    p.write("app/src/cache/c.bin", "cache");
    std::fs::remove_file(p.dir.join("app/src/old.txt")).unwrap();
    eventually(Duration::from_secs(20), "the synced files", || {
        let got = p.sh("web", "cat /app/src/new.txt /app/src/sub/deep.txt")?;
        (got == "freshdeep").then_some(())
    });
    eventually(Duration::from_secs(20), "old.txt to be removed", || {
        p.sh("web", "test ! -e /app/src/old.txt").map(drop)
    });
    assert!(
        p.sh("web", "test ! -e /app/src/junk.tmp && test ! -e /app/src/cache").is_some(),
        "an ignored path was synced"
    );
    assert_eq!(p.inspect("web")["Id"], first.as_str(), "a sync recreated the container");

    // sync+exec: the file is copied, then the command runs in the container.
    p.write("app/conf/x.conf", "v2");
    eventually(Duration::from_secs(20), "the sync+exec command", || {
        (p.sh("web", "cat /tmp/exec-ran")? == "v2").then_some(())
    });

    // sync+restart on a single file: copied, then the same container restarted.
    let started = p.inspect("web")["State"]["StartedAt"].as_str().unwrap().to_string();
    p.write("app/settings.ini", "debug=1");
    eventually(Duration::from_secs(20), "the restart after the sync", || {
        let v = p.inspect("web");
        (v["State"]["StartedAt"] != started.as_str() && v["State"]["Running"] == true).then_some(())
    });
    assert_eq!(p.sh("web", "cat /etc/settings.ini").as_deref(), Some("debug=1"));
    assert_eq!(p.inspect("web")["Id"], first.as_str(), "sync+restart recreated the container");

    // Idle, the watcher costs nothing: it sleeps on inotify, nothing polls (a loose bound: 5 ticks, 50 ms, in 2 s).
    let before = w.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = w.cpu_ticks() - before;
    assert!(used <= 5, "the idle watcher used {used} ticks of CPU in 2 s");

    // rebuild: a new image with the change, a new container under the same name.
    p.write("app/deps/req.txt", "a==2");
    w.wait_for("Rebuilding service(s)", Duration::from_secs(20));
    let second = eventually(Duration::from_secs(180), "the recreated container", || {
        let id = p.compose(&["ps", "-q", "web"]);
        let id = stdout(&id).trim().to_string();
        (!id.is_empty() && id != first && p.sh("web", "cat /app/deps/req.txt")? == "a==2").then_some(id)
    });
    assert_ne!(second, first);
    // The old container is gone (recreated, not added).
    assert_eq!(p.ok(&["ps", "-aq"]).lines().count(), 1);
    drop(w);
    p.ok(&["down", "-t", "1"]);
}

/// `up --watch`: the attached `up` watches too (an image service may sync; only rebuild needs a build).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_up_watch_syncs() {
    let d = daemon_with_busybox();
    let file = "services:\n  a:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    develop:\n      watch:\n        - {path: ./src, action: sync, target: /src, initial_sync: true}\n";
    let p = Project::new(&d, "upwatch", &[("compose.yaml", file), ("src/one.txt", "1")]);
    let w = Watch::start_with(&p, &["up", "--watch"]);
    w.wait_for("Watch enabled", Duration::from_secs(60));
    // initial_sync copied what was there before watching began.
    assert_eq!(p.sh("a", "cat /src/one.txt").as_deref(), Some("1"));
    p.write("src/two.txt", "2");
    eventually(Duration::from_secs(20), "the synced file", || (p.sh("a", "cat /src/two.txt")? == "2").then_some(()));
    drop(w);
    p.ok(&["down", "-t", "1"]);
}

/// `watch` without any `develop.watch` rule fails as Compose v2 does, starting nothing.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_watch_without_rules_fails() {
    let d = daemon_with_busybox();
    let p = Project::new(&d, "nowatch", &[("compose.yaml", "services:\n  a:\n    image: busybox\n")]);
    let out = p.compose(&["watch"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("none of the selected services is configured for watch"), "{}", stderr(&out));
    assert_eq!(p.ok(&["ps", "-aq"]).trim(), "");
}

/// `post_start` runs in the started container with its user, working directory and environment; `pre_stop`
/// runs before `down` stops it; a failing `post_start` fails `up`.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_hooks_run_in_the_container() {
    let d = daemon_with_busybox();
    let file = r#"
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    volumes: ["./out:/out"]
    post_start:
      - command: sh -c 'echo "$$MSG $$(id -u) $$(pwd)" > /out/post_start'
        user: "1000"
        working_dir: /tmp
        environment:
          MSG: hello
    pre_stop:
      - command: ["sh", "-c", "echo stopping > /out/pre_stop"]
  bad:
    image: busybox
    command: ["sleep", "1000"]
    profiles: [bad]
    post_start:
      - command: ["sh", "-c", "exit 3"]
"#;
    let p = Project::new(&d, "hooks", &[("compose.yaml", file)]);
    std::fs::create_dir_all(p.dir.join("out")).unwrap();
    std::fs::set_permissions(p.dir.join("out"), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    p.ok(&["up", "-d"]);
    let got = std::fs::read_to_string(p.dir.join("out/post_start")).unwrap();
    assert_eq!(got.trim(), "hello 1000 /tmp");
    assert!(!p.dir.join("out/pre_stop").exists(), "pre_stop ran before any stop");
    // restart runs pre_stop, then post_start again.
    std::fs::remove_file(p.dir.join("out/post_start")).unwrap();
    p.ok(&["restart", "app"]);
    assert!(p.dir.join("out/post_start").exists(), "restart did not run post_start");
    assert!(p.dir.join("out/pre_stop").exists(), "restart did not run pre_stop");
    std::fs::remove_file(p.dir.join("out/pre_stop")).unwrap();
    p.ok(&["down", "-t", "1"]);
    assert_eq!(std::fs::read_to_string(p.dir.join("out/pre_stop")).unwrap().trim(), "stopping");
    // A failing post_start is up's failure, naming the status.
    let out = p.compose(&["--profile", "bad", "up", "-d", "bad"]);
    assert!(!out.status.success(), "up succeeded with a failing post_start hook");
    assert!(stderr(&out).contains("hook exited with status 3"), "{}", stderr(&out));
    p.ok(&["--profile", "bad", "down", "-t", "1"]);
}

fn started_at(p: &Project<'_>, service: &str) -> (String, String) {
    let v = p.inspect(service);
    (v["Id"].as_str().unwrap().to_string(), v["State"]["StartedAt"].as_str().unwrap().to_string())
}

/// `depends_on.restart: true`: recreating or restarting the dependency restarts the dependent (same container,
/// a new start); a dependent without it is left alone.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_depends_on_restart_restarts_dependents() {
    let d = daemon_with_busybox();
    let file = |v: &str| {
        format!(
            "services:\n  db:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    environment: [V={v}]\n  app:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    depends_on:\n      db: {{condition: service_started, restart: true}}\n  other:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n    depends_on: [db]\n"
        )
    };
    let p = Project::new(&d, "deps", &[("compose.yaml", &file("1"))]);
    p.ok(&["up", "-d"]);
    let (app1, app_t1) = started_at(&p, "app");
    let other1 = started_at(&p, "other");
    // Timestamps have nanoseconds, but a restart within the same instant must not pass by accident.
    std::thread::sleep(Duration::from_millis(20));
    p.write("compose.yaml", &file("2"));
    p.ok(&["up", "-d"]);
    let (app2, app_t2) = started_at(&p, "app");
    assert_eq!(app2, app1, "app was recreated, not restarted");
    assert_ne!(app_t2, app_t1, "app was not restarted when db was recreated");
    assert_eq!(started_at(&p, "other"), other1, "other (no restart: true) was restarted");
    assert_eq!(p.inspect("app")["State"]["Status"], "running");
    // `restart db` restarts app too.
    std::thread::sleep(Duration::from_millis(20));
    p.ok(&["restart", "-t", "1", "db"]);
    assert_ne!(started_at(&p, "app").1, app_t2, "restart db did not restart app");
    assert_eq!(started_at(&p, "other"), other1, "restart db restarted other");
    p.ok(&["down", "-t", "1"]);
}

/// `deploy.resources` and `deploy.restart_policy` end up in HostConfig as Compose v2 maps them (deploy's limits
/// over the service's keys; a CPU reservation ignored).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_deploy_resources_and_restart_policy() {
    let d = daemon_with_busybox();
    let file = r#"
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    mem_limit: 128m
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64m, pids: 50}
        reservations: {cpus: "0.25", memory: 32m}
      restart_policy: {condition: on-failure, max_attempts: 3}
  any:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    restart: "no"
    deploy:
      restart_policy: {condition: any}
"#;
    let p = Project::new(&d, "deploy", &[("compose.yaml", file)]);
    p.ok(&["up", "-d"]);
    let h = &p.inspect("app")["HostConfig"];
    assert_eq!(h["NanoCpus"], 500_000_000, "{h}");
    assert_eq!(h["Memory"], 64 * 1024 * 1024, "{h}");
    assert_eq!(h["MemoryReservation"], 32 * 1024 * 1024, "{h}");
    assert_eq!(h["PidsLimit"], 50, "{h}");
    assert_eq!(h["RestartPolicy"]["Name"], "on-failure", "{h}");
    assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 3, "{h}");
    let h = &p.inspect("any")["HostConfig"];
    assert_eq!(h["RestartPolicy"]["Name"], "always", "{h}");
    // The limit is the container's: a fork bomb stops at 50 processes.
    let out = p.compose(&["exec", "-T", "app", "sh", "-c", "for i in $(seq 1 80); do sleep 30 & done; wait"]);
    assert!(!out.status.success() || stderr(&out).contains("fork"), "80 processes ran under pids: 50");
    p.ok(&["down", "-t", "1"]);
}

/// Secrets and configs from `environment:` and `content:` are written into the container with the long
/// syntax's uid, gid and mode (default 0444, root); an unset variable fails `up`; a file-based one's uid/gid/mode
/// draw Compose's warning.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_secrets_and_configs_from_environment_and_content() {
    let d = daemon_with_busybox();
    let file = r#"
services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    secrets:
      - source: token
        uid: "1000"
        gid: "1001"
        mode: 0o400
      - source: onfile
        mode: 0o400
    configs:
      - source: app
        target: /etc/app.conf
      - plain
secrets:
  token: {environment: TOKEN}
  onfile: {file: ./onfile.txt}
configs:
  app:
    content: |
      port=8080
  plain: {content: "just text"}
"#;
    let p = Project::new(&d, "secrets", &[("compose.yaml", file), ("onfile.txt", "from a file")]);
    let out = p.compose(&["up", "-d"]);
    assert!(!out.status.success(), "up succeeded without TOKEN");
    assert!(
        stderr(&out).contains("environment variable \"TOKEN\" required by file \"token\" is not set"),
        "{}",
        stderr(&out)
    );
    p.ok(&["down", "-t", "1"]);
    let out = p.compose_env(&["up", "-d"], &[("TOKEN", "s3cret")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("`uid`, `gid` and `mode` are not supported"), "{}", stderr(&out));
    let sh = |s: &str| p.sh("app", s).unwrap_or_else(|| panic!("{s} failed"));
    assert_eq!(sh("cat /run/secrets/token"), "s3cret");
    assert_eq!(sh("stat -c '%u %g %a' /run/secrets/token").trim(), "1000 1001 400");
    assert_eq!(sh("cat /plain"), "just text");
    assert_eq!(sh("stat -c '%u %g %a' /plain").trim(), "0 0 444");
    assert_eq!(sh("cat /run/secrets/onfile"), "from a file");
    assert_eq!(sh("cat /etc/app.conf"), "port=8080\n");
    p.ok(&["down", "-t", "1"]);
}
