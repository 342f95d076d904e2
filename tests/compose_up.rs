//! Attached `berth compose up` as Compose v2 runs it (output followed from each container's start, interleaved in
//! arrival order, a slow dependency's logs shown while it starts, containers started later picked up, Ctrl-C
//! stopping gracefully and a second one killing at once, `--exit-code-from`), and the commands added with it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_integration::*;

/// An attached `berth compose ARGS` with its stdout and stderr lines arriving on channels.
struct Attached {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    /// Everything received so far, for messages.
    seen: Vec<String>,
}

fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

impl Attached {
    fn start(d: &Berthd, dir: &Path, args: &[&str]) -> Attached {
        let mut child = d
            .berth_cmd()
            .current_dir(dir)
            .arg("compose")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Attached { child, out, err, seen: Vec::new() }
    }

    /// The next stdout line, within `secs` (the output the test waits for is due by then).
    fn next_out(&mut self, secs: u64) -> String {
        match self.out.recv_timeout(Duration::from_secs(secs)) {
            Ok(l) => {
                self.seen.push(format!("out: {l}"));
                l
            }
            Err(e) => panic!("no stdout line within {secs}s ({e}); so far:\n{}", self.seen.join("\n")),
        }
    }

    /// Stderr lines until one contains `needle`, within `secs`.
    fn wait_err(&mut self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(format!("err: {l}"));
                    if l.contains(needle) {
                        return;
                    }
                }
                Err(e) => panic!("no {needle:?} on stderr within {secs}s ({e}); so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn sigint(&self) {
        // SAFETY: kill(2) on the PID of our own child, which has not been waited for (it cannot have been reused).
        let r = unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        assert_eq!(r, 0, "kill -INT {}", self.child.id());
    }

    /// Waits for the exit, within `secs`; the rest of stdout/stderr go to `seen`.
    fn wait(&mut self, secs: u64) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        let deadline = t + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let took = t.elapsed();
                // The pipes close with the process: drain them (bounded by that).
                while let Ok(l) = self.out.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(format!("out: {l}"));
                }
                while let Ok(l) = self.err.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(format!("err: {l}"));
                }
                return (st, took);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("berth compose did not exit within {secs}s; so far:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The text of a prefixed line (`web-1  | text` → `web-1`, `text`).
fn split(line: &str) -> (String, String) {
    match line.split_once(" | ") {
        Some((p, t)) => (p.trim().to_string(), t.to_string()),
        None => (String::new(), line.to_string()),
    }
}

/// `db` takes 5 s to become healthy and speaks meanwhile; `web` depends on its health. The two then talk through a
/// shared volume so that the order of their lines is fixed by causality (each waits a second after the other's
/// line): web-1, db-saw-web, web-2. `web` exits 3.
const SLOW_DEP: &str = r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db-starting; sleep 5; touch /tmp/ready; echo db-ready; until [ -f /shared/web1 ]; do sleep 0.1; done; sleep 1; echo db-saw-web; touch /shared/dbsaw; while :; do sleep 0.2; done"]
    volumes: [shared:/shared]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 60
  web:
    image: busybox
    command: ["sh", "-c", "echo web-1; touch /shared/web1; until [ -f /shared/dbsaw ]; do sleep 0.1; done; sleep 1; echo web-2; exit 3"]
    volumes: [shared:/shared]
    depends_on:
      db:
        condition: service_healthy
volumes:
  shared: {}
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn attached_up_shows_a_slow_dependency_while_it_starts_and_interleaves_in_order() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "slow", SLOW_DEP);
    let mut up = Attached::start(&d, &dir, &["up", "--exit-code-from", "web", "-t", "1", "--menu=false"]);
    up.wait_err("Attaching to db-1, web-1", 60);
    // db's first line arrives while it is still starting: web is not even started.
    let first = up.next_out(20);
    assert_eq!(split(&first), ("db-1".into(), "db-starting".into()), "{first}");
    assert_eq!(d.inspect("slow-db-1", "{{.State.Health.Status}}"), "starting");
    assert_eq!(d.inspect("slow-web-1", "{{.State.Status}}"), "created");
    // Then in arrival (causal) order.
    let rest: Vec<(String, String)> = (0..4).map(|_| split(&up.next_out(30))).collect();
    let want = [("db-1", "db-ready"), ("web-1", "web-1"), ("db-1", "db-saw-web"), ("web-1", "web-2")];
    assert_eq!(rest, want.map(|(a, b)| (a.to_string(), b.to_string())), "{}", up.seen.join("\n"));
    // --exit-code-from web: web's exit aborts the run, db is stopped, and up returns web's code.
    let (st, _) = up.wait(30);
    let all = up.seen.join("\n");
    assert_eq!(st.code(), Some(3), "{all}");
    assert!(all.contains("out: web-1 exited with code 3"), "{all}");
    assert!(all.contains("err: Aborting on container exit..."), "{all}");
    assert!(all.contains("Container slow-db-1  Stopped"), "{all}");
    assert_eq!(d.inspect("slow-db-1", "{{.State.Running}}"), "false");
    compose_ok(&d, &dir, &["down", "-v", "-t", "0"]);
}

/// A service that ignores SIGTERM and has a minute's grace period.
const STUBBORN: &str = r#"services:
  stubborn:
    image: busybox
    command: ["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.2; done"]
    stop_grace_period: 60s
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn second_ctrl_c_kills_at_once() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "stub", STUBBORN);
    let mut up = Attached::start(&d, &dir, &["up"]);
    up.wait_err("Attaching to stubborn-1", 60);
    assert_eq!(split(&up.next_out(20)).1, "up");
    up.sigint();
    up.wait_err("Gracefully stopping... (press Ctrl+C again to force)", 10);
    up.wait_err("Container stub-stubborn-1  Stopping", 10);
    // The graceful stop would take the 60 s grace period; the second Ctrl-C kills it now. 15 s is a wide margin
    // over what a kill takes, and far below the grace period.
    up.sigint();
    let (st, took) = up.wait(15);
    let all = up.seen.join("\n");
    assert_eq!(st.code(), Some(130), "{all}");
    assert!(took < Duration::from_secs(15), "{took:?}\n{all}");
    assert!(all.contains("Container stub-stubborn-1  Killed"), "{all}");
    assert_eq!(d.inspect("stub-stubborn-1", "{{.State.Running}} {{.State.ExitCode}}"), "false 137");
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}

const GREETER: &str = r#"services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo hello from $$HOSTNAME; while :; do sleep 0.2; done"]
  quiet:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo not-shown; while :; do sleep 0.2; done"]
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn attached_up_picks_up_later_containers_and_stops_gracefully() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "greet", GREETER);
    let mut up = Attached::start(&d, &dir, &["up", "--no-attach", "quiet"]);
    up.wait_err("Attaching to web-1", 60);
    let (p, t) = split(&up.next_out(20));
    assert_eq!(p, "web-1");
    assert!(t.starts_with("hello from "), "{t}");
    // A replica started by another command is followed too (the daemon's start event).
    compose_ok(&d, &dir, &["up", "-d", "--scale", "web=2", "web"]);
    let (p, t) = split(&up.next_out(20));
    assert_eq!(p, "web-2");
    assert!(t.starts_with("hello from "), "{t}");
    up.sigint();
    up.wait_err("Gracefully stopping... (press Ctrl+C again to force)", 10);
    let (st, _) = up.wait(30);
    let all = up.seen.join("\n");
    assert_eq!(st.code(), Some(130), "{all}");
    for c in ["greet-web-1", "greet-web-2", "greet-quiet-1"] {
        assert!(all.contains(&format!("Container {c}  Stopped")), "{c}\n{all}");
        assert_eq!(d.inspect(c, "{{.State.Running}} {{.State.ExitCode}}"), "false 0", "{c}");
    }
    // The containers' last words while stopping are shown; the unattached one's never.
    assert!(all.contains("| bye"), "{all}");
    assert!(!all.contains("not-shown"), "{all}");
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn recreation_prints_compose_lines_and_unknown_services_are_named() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "rec", "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n");
    compose_ok(&d, &dir, &["up", "-d"]);
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"301\"]\n",
    )
    .unwrap();
    let out = compose(&d, &dir, &["up", "-d", "-t", "0"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Container rec-web-1  Recreate\n"), "{err}");
    assert!(err.contains("Container rec-web-1  Recreated\n"), "{err}");
    assert!(!err.contains("_rec-web-1"), "the temporary name shows: {err}");
    let out = compose(&d, &dir, &["exec", "-T", "nosuch", "ls"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim(), "no such service: nosuch");
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_pull_that_cannot_reach_a_registry_says_why_and_creates_nothing() {
    let d = daemon_with_busybox();
    // Name resolution: `.invalid` never resolves (RFC 2606). Connection: nothing listens on loopback's port 1.
    for (name, image, why) in
        [("dns", "registry.invalid/app:1", "lookup"), ("conn", "127.0.0.1:1/app:1", "connection refused")]
    {
        let dir = compose_project(&d, name, &format!("services:\n  web:\n    image: {image}\n"));
        let out = compose(&d, &dir, &["up", "-d"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(err.to_lowercase().contains(why), "{name}: {err}");
        assert!(!err.contains("docker login"), "{name}: {err}");
        let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(!nets.contains(&format!("{name}_default")), "{name}: a network was created: {nets}");
    }
    // A build whose FROM cannot be pulled says why too.
    let dir = compose_project(&d, "from", "services:\n  web:\n    build: .\n");
    std::fs::write(dir.join("Dockerfile"), "FROM registry.invalid/base:1\n").unwrap();
    let out = compose(&d, &dir, &["up", "-d"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("registry.invalid") && err.to_lowercase().contains("lookup"), "{err}");
    assert!(!err.contains("docker login"), "{err}");
}

const TOOLS: &str = r#"services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'echo bye; exit 0' TERM; while :; do sleep 0.2; done"]
  job:
    image: busybox
    command: ["sh", "-c", "sleep 1; exit 7"]
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn service_container_commands() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "tools", TOOLS);
    compose_ok(&d, &dir, &["up", "-d"]);
    // wait: the job's status code, as Compose prints it, and exits with it.
    let job = d.inspect("tools-job-1", "{{.Id}}");
    let out = compose(&d, &dir, &["wait", "job"]);
    assert_eq!(stdout(&out), format!("container \"{job}\" exited with status code 7\n"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(7));
    // cp both ways.
    std::fs::write(dir.join("note.txt"), "from the host\n").unwrap();
    compose_ok(&d, &dir, &["cp", "note.txt", "web:/tmp/note.txt"]);
    assert_eq!(d.ok(&["exec", "tools-web-1", "cat", "/tmp/note.txt"]), "from the host\n");
    compose_ok(&d, &dir, &["cp", "web:/tmp/note.txt", "back.txt"]);
    assert_eq!(std::fs::read_to_string(dir.join("back.txt")).unwrap(), "from the host\n");
    let out = compose(&d, &dir, &["cp", "nosuch:/x", "y"]);
    assert_eq!(stderr(&out).trim(), "no such service: nosuch");
    // commit and export.
    let img = compose_ok(&d, &dir, &["commit", "-a", "me", "-c", "ENV SNAP=1", "web", "tools-snap:1"]);
    assert!(img.trim().starts_with("sha256:"), "{img}");
    let meta = d.ok(&["image", "inspect", "-f", "{{.Author}} {{.Config.Env}}", "tools-snap:1"]);
    assert!(meta.starts_with("me ") && meta.contains("SNAP=1"), "{meta}");
    compose_ok(&d, &dir, &["export", "-o", "web.tar", "web"]);
    let list = std::process::Command::new("tar").arg("tf").arg(dir.join("web.tar")).output().unwrap();
    assert!(stdout(&list).lines().any(|l| l == "tmp/note.txt"), "{}", tail(&stdout(&list), 20));
    // scale: more replicas, the first one left alone.
    let first = d.inspect("tools-web-1", "{{.Id}}");
    compose_ok(&d, &dir, &["scale", "web=3"]);
    let names = compose_ok(&d, &dir, &["ps", "--format", "{{.Name}}", "web"]);
    assert_eq!(names, "tools-web-1\ntools-web-2\ntools-web-3\n");
    assert_eq!(d.inspect("tools-web-1", "{{.Id}}"), first);
    // ls --filter name=.
    assert_eq!(compose_ok(&d, &dir, &["ls", "-q", "--filter", "name=tool"]), "tools\n");
    assert_eq!(compose_ok(&d, &dir, &["ls", "-q", "--filter", "name=^ools"]), "");
    // attach: the container's output from now on, ending with it.
    let mut att = Attached::start(&d, &dir, &["attach", "--no-stdin", "--index", "2", "web"]);
    // The attach connects within milliseconds; 2 s is a wide margin before the stop it must see.
    std::thread::sleep(Duration::from_secs(2));
    d.ok(&["stop", "tools-web-2"]);
    assert_eq!(att.next_out(20), "bye");
    let (st, _) = att.wait(20);
    assert!(st.success(), "{}", att.seen.join("\n"));
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}

/// `berth compose ARGS` in `dir`, needing no daemon.
fn offline(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin("berth"))
        .current_dir(dir)
        .arg("compose")
        .args(args)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env("TAG", "1.2")
        .output()
        .unwrap()
}

#[test]
fn config_flags_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("compose.yaml"),
        "name: cfg\nservices:\n  web:\n    image: \"busybox:${TAG:-latest}\"\n    env_file: [web.env]\n    environment: {OWN: \"${OWN?set it}\"}\n    networks: [front]\n  db:\n    image: \"busybox:${DB_TAG:+pinned}\"\n    volumes: [\"data:/d\"]\nnetworks:\n  front: {}\nvolumes:\n  data: {}\n",
    )
    .unwrap();
    std::fs::write(dir.join("web.env"), "FROM_FILE=1\n").unwrap();
    let ok = |args: &[&str]| {
        let out = offline(dir, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    // --variables: the templates as written, Compose's columns (no value needed for the required one).
    let vars = ok(&["config", "--variables"]);
    let rows: Vec<Vec<&str>> = vars.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE", "VALUE"], "{vars}");
    assert_eq!(rows[1..], [vec!["DB_TAG", "false", "pinned"], vec!["OWN", "true"], vec!["TAG", "false", "latest"]]);
    // --no-interpolate: printed as written, not re-escaped; interpolated, the required variable is missing.
    let raw = ok(&["config", "--no-interpolate"]);
    assert!(raw.contains("image: busybox:${TAG:-latest}"), "{raw}");
    assert!(!offline(dir, &["config"]).status.success());
    std::fs::write(dir.join(".env"), "OWN=mine\n").unwrap();
    // --environment: what interpolation used.
    let env = ok(&["config", "--environment"]);
    assert!(env.lines().any(|l| l == "OWN=mine") && env.lines().any(|l| l == "TAG=1.2"), "{env}");
    // --networks, --volumes, --images.
    assert_eq!(ok(&["config", "--networks"]), "default\nfront\n");
    assert_eq!(ok(&["config", "--volumes"]), "data\n");
    assert_eq!(ok(&["config", "--images"]), "busybox:\nbusybox:1.2\n");
    // --no-env-resolution: env_file stays a reference, not merged into environment.
    let merged = ok(&["config"]);
    assert!(merged.contains("FROM_FILE"), "{merged}");
    let unresolved = ok(&["config", "--no-env-resolution"]);
    assert!(!unresolved.contains("FROM_FILE") && unresolved.contains("web.env"), "{unresolved}");
    // --no-consistency: an undefined network is let through.
    std::fs::write(dir.join("compose.yaml"), "services:\n  a:\n    image: x\n    networks: [nope]\n").unwrap();
    let err = stderr(&offline(dir, &["config"]));
    assert!(err.contains("undefined network nope"), "{err}");
    assert!(ok(&["config", "--no-consistency"]).contains("nope"));
    // -o writes the file.
    ok(&["config", "--no-consistency", "-o", "out.yaml"]);
    assert!(std::fs::read_to_string(dir.join("out.yaml")).unwrap().contains("nope"));
    // version.
    let short = ok(&["version", "--short"]);
    assert!(short.trim().starts_with('2') && !short.contains('v'), "{short}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(json["version"], format!("v{}", short.trim()));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_build_draws_steps_as_berth_build() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "bld", "services:\n  app:\n    build: .\n    image: bld-app:1\n");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN echo built-here && sleep 1 && echo after-sleep\n")
        .unwrap();
    let mut child = d
        .berth_cmd()
        .current_dir(&dir)
        .args(["compose", "--progress", "plain", "build"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap());
    // The RUN output comes while the step runs: `built-here` before the step's DONE (a second later).
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(l) = err.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(l);
    }
    assert!(child.wait().unwrap().success(), "{}", seen.join("\n"));
    let all = seen.join("\n");
    let pos = |needle: &str| seen.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {all}"));
    // An output line of step 2: `#2 0.102 built-here`.
    let out_line = |text: &str| {
        seen.iter()
            .position(|l| l.starts_with("#2 ") && l.ends_with(&format!(" {text}")) && !l.contains("RUN"))
            .unwrap_or_else(|| panic!("{text}: {all}"))
    };
    assert!(pos("#2 [app 2/2] RUN echo built-here") < out_line("built-here"), "{all}");
    assert!(out_line("built-here") < out_line("after-sleep") && out_line("after-sleep") < pos("#2 DONE"), "{all}");
    let id = d.inspect("bld-app:1", "{{.Id}}");
    assert!(all.contains(&format!("writing image {id} done")), "{all}");
    assert!(all.contains("naming to docker.io/library/bld-app:1 done"), "{all}");
    assert!(all.contains("Service app  Built"), "{all}");
    assert!(!all.contains("Step 1/2"), "{all}");
    // quiet: nothing but the result.
    let out = compose(&d, &dir, &["--progress", "quiet", "build"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains('#'), "{}", stderr(&out));
}

const FIRST_EXIT: &str = r#"services:
  job:
    image: busybox
    command: ["sh", "-c", "echo job-done; exit 5"]
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo web-up; while :; do sleep 0.2; done"]
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn abort_returns_the_first_exit_or_the_named_services_code() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "first", FIRST_EXIT);
    // --abort-on-container-exit: the code of the container that exited first (job's 5); web is stopped.
    let out = compose(&d, &dir, &["up", "--abort-on-container-exit"]);
    assert_eq!(out.status.code(), Some(5), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("job-1 exited with code 5"), "{}", stdout(&out));
    assert_eq!(d.inspect("first-web-1", "{{.State.Running}}"), "false");
    // --exit-code-from web: web's code (0, stopped by the abort), not job's.
    let out = compose(&d, &dir, &["up", "--exit-code-from", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("web-1 exited with code 0"), "{}", stdout(&out));
    compose_ok(&d, &dir, &["down", "-t", "0"]);
}
