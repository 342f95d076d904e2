//! Issue 16's last compose items against a private daemon: `pre_start` hooks in a helper container that shares
//! the service's volumes (its output shown by an attached `up`, a failure's output in `up -d`'s error, the failed
//! helper kept until `down`), `post_start` output in an attached `up`, and `ls --filter name=` as Docker's regular
//! expressions.
#![allow(clippy::unwrap_used)]

use berth_integration::*;

/// The IDs of the daemon's containers carrying `label` (all states).
fn labelled(d: &Berthd, label: &str) -> Vec<String> {
    d.ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &format!("label={label}")]).lines().map(str::to_string).collect()
}

const HOOKS: &str = r#"services:
  app:
    image: busybox
    command: sh -c 'echo main-says $(cat /data/ready); sleep 1'
    volumes: [data:/data]
    pre_start:
      - command: sh -c 'echo prepared > /data/ready; echo pre-hook-out'
    post_start:
      - command: echo post-hook-out
  bad:
    image: busybox
    command: [sleep, "300"]
    profiles: [bad]
    pre_start:
      - command: sh -c 'echo boom-output; exit 3'
volumes:
  data: {}
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn pre_start_runs_in_a_helper_sharing_the_volumes_and_hooks_show_in_an_attached_up() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "hooks", HOOKS);
    // Attached: the helper's and the post_start exec's output are shown with Compose's `-> |` prefixes, and the
    // service sees what the helper wrote into the shared volume.
    let out = compose_ok(&d, &dir, &["up"]);
    assert!(out.contains("app pre_start[0] ->  | pre-hook-out"), "{out}");
    assert!(out.contains("app-1 ->  | post-hook-out"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("app-1") && l.ends_with("| main-says prepared")), "{out}");
    // The helper is gone once it succeeded, and never listed as a service container.
    assert!(labelled(&d, "com.docker.compose.hook").is_empty());
    assert_eq!(compose_ok(&d, &dir, &["ps", "-a", "--format", "{{.Name}}"]).trim(), "hooks-app-1");
    // Detached: nothing of the hooks on stdout (Compose runs them detached then), the hook still runs.
    compose_ok(&d, &dir, &["rm", "-f"]);
    d.ok(&["volume", "rm", "hooks_data"]);
    let out = compose(&d, &dir, &["up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("hook-out"), "{}", stdout(&out));
    let logs = compose_ok(&d, &dir, &["logs", "--no-log-prefix"]);
    assert!(logs.contains("main-says prepared"), "{logs}");
    // A failing pre_start fails the start with its code and output; the service's container is not started and the
    // helper is kept for inspection, until `down`.
    let out = compose(&d, &dir, &["--profile", "bad", "up", "-d", "bad"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("service \"bad\" pre_start[0] exited with code 3: boom-output"), "{err}");
    let kept = labelled(&d, "com.docker.compose.hook=pre_start");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}} {{.State.ExitCode}}", &kept[0]]).trim(), "/hooks-bad-pre_start-0 3");
    let states = compose_ok(&d, &dir, &["--profile", "bad", "ps", "-a", "--format", "{{.Name}} {{.State}}"]);
    assert!(states.lines().any(|l| l == "hooks-bad-1 created"), "{states}");
    // A second try replaces the kept helper (one helper, not two).
    let out = compose(&d, &dir, &["--profile", "bad", "up", "-d", "bad"]);
    assert!(!out.status.success());
    assert_eq!(labelled(&d, "com.docker.compose.hook=pre_start").len(), 1);
    compose_ok(&d, &dir, &["--profile", "bad", "down", "-v", "-t", "0"]);
    assert!(labelled(&d, "com.docker.compose.project=hooks").is_empty());
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn ls_name_filter_is_a_regular_expression() {
    let d = daemon_with_busybox();
    let text = "services:\n  s:\n    image: busybox\n    command: [sleep, \"300\"]\n";
    let dir = compose_project(&d, "lsre", text);
    for p in ["alpha1", "beta2", "alphax"] {
        compose_ok(&d, &dir, &["-p", p, "up", "-d"]);
    }
    let names = |filters: &[&str]| {
        let mut args = vec!["ls", "-q"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        compose_ok(&d, &dir, &args).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(names(&["name=^(alpha|gamma)[0-9]$"]), ["alpha1"]);
    assert_eq!(names(&["name=^a.*[0-9]$"]), ["alpha1"]);
    assert_eq!(names(&["name=a[0-9]"]), ["alpha1", "beta2"]);
    assert_eq!(names(&["name=^beta", "name=x$"]), ["alphax", "beta2"]);
    assert!(names(&["name=("]).is_empty());
    for p in ["alpha1", "beta2", "alphax"] {
        compose_ok(&d, &dir, &["-p", p, "down", "-t", "0"]);
    }
}

const BUILDS: &str = r#"services:
  a:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN echo built > /built
      cache_from: [busybox, "type=registry,ref=busybox"]
    command: [sleep, "300"]
  b:
    build:
      context: .
      dockerfile_inline: "FROM busybox\n"
      ssh: [default]
    command: [sleep, "300"]
    profiles: [b]
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn builds_pass_progress_and_cache_from_and_refuse_buildkit_keys_before_anything() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "bk", BUILDS);
    // The global --progress reaches up's builds: `classic` is the docker CLI's `Step N/M` display.
    let out = compose(&d, &dir, &["--progress", "classic", "up", "-d", "--build", "a"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), tail(&d.log(), 30));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("Step 1/2 : FROM busybox"), "{text}");
    let out = compose(&d, &dir, &["--progress", "plain", "up", "-d", "--build", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("Step 1/2"), "{text}");
    assert_eq!(d.ok(&["exec", "bk-a-1", "cat", "/built"]).trim(), "built");
    // A BuildKit-only key: refused naming the service and the key, before any network or container of it.
    compose_ok(&d, &dir, &["down", "-t", "0"]);
    let out = compose(&d, &dir, &["--profile", "b", "up", "-d", "--build"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("service \"b\": build.ssh: SSH forwarding needs BuildKit"), "{err}");
    assert!(!d.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|n| n == "bk_default"));
    assert!(labelled(&d, "com.docker.compose.project=bk").is_empty());
}

/// `config`, `config --no-interpolate` and `config --variables` need no daemon: the output of `config` loads again
/// to the same text, templates stay as written without interpolation (also where numbers are expected), and the
/// variables come in Compose's three formats.
#[test]
fn config_output_loads_again_and_without_interpolation_keeps_templates() {
    let dir = tempfile::tempdir().unwrap();
    let text = "services:\n  a:\n    image: busybox:${TAG:-1.36}\n    command: echo $(date) $$HOME\n    ports: [\"${PORT:-8080}:80\"]\n    scale: ${N:-1}\n    volumes: [\"./d:/d\", \"v:/v\"]\n    environment: [Y=yes, \"Z=${Z:?need Z}\"]\nvolumes:\n  v: {}\n";
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    let config = |cwd: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(bin("berth"))
            .current_dir(cwd)
            .env("Z", "z")
            .env_remove("TAG")
            .env_remove("PORT")
            .env_remove("N")
            .args(["compose", "-p", "cfg", "config"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "config {args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let first = config(dir.path(), &[]);
    assert!(first.contains("$$(date)") && first.contains("$$HOME") && first.contains("busybox:1.36"), "{first}");
    let again = tempfile::tempdir().unwrap();
    std::fs::write(again.path().join("compose.yaml"), &first).unwrap();
    // Relative paths were made absolute by the first load, so the second reads the same project.
    assert_eq!(config(again.path(), &[]), first);
    let raw = config(dir.path(), &["--no-interpolate"]);
    assert!(raw.contains("${PORT:-8080}:80") && raw.contains("scale: ${N:-1}"), "{raw}");
    assert!(raw.contains("Z: ${Z:?need Z}") && raw.contains("busybox:${TAG:-1.36}"), "{raw}");
    let table = config(dir.path(), &["--variables"]);
    assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Z", "true"]), "{table}");
    let json = config(dir.path(), &["--variables", "--format", "json"]);
    assert_eq!(json.lines().count(), 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["PORT"],
        serde_json::json!({"Name": "PORT", "DefaultValue": "8080", "PresenceValue": "", "Required": false})
    );
    let yaml = config(dir.path(), &["--variables", "--format", "yaml"]);
    assert!(yaml.contains("\"TAG\":\n    name: \"TAG\"\n    defaultvalue: \"1.36\""), "{yaml}");
}

/// Runs `berth compose watch ARGS` in `dir` until stderr shows `built` twice (the first rebuild after `touch`
/// writes), each wait bounded: a rebuild of a two-step busybox image takes seconds, 90 s covers a loaded machine.
fn watch_rebuild(d: &Berthd, dir: &std::path::Path, args: &[&str]) {
    use std::io::BufRead;
    let mut child = d
        .berth_cmd()
        .current_dir(dir)
        .args(["compose", "watch"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let wait_for = |text: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let mut seen = Vec::new();
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            let hit = l.contains(text);
            seen.push(l);
            if hit {
                return;
            }
        }
        panic!("watch never printed {text:?}:\n{}", seen.join("\n"));
    };
    wait_for("Watch enabled");
    std::fs::write(dir.join("app/dep.txt"), format!("{:?}", std::time::SystemTime::now())).unwrap();
    wait_for("successfully built");
    // Our child, ended by its handle (its PID).
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn watch_prune_removes_the_image_a_rebuild_left_dangling() {
    let d = daemon_with_busybox();
    let text = "services:\n  w:\n    build: ./app\n    command: [sleep, \"300\"]\n    stop_grace_period: 1s\n    develop:\n      watch:\n        - {path: ./app/dep.txt, action: rebuild}\n";
    let dir = compose_project(&d, "prune", text);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/Dockerfile"), "FROM busybox\nCOPY dep.txt /dep.txt\n").unwrap();
    std::fs::write(dir.join("app/dep.txt"), "0").unwrap();
    let dangling = || d.ok(&["images", "-q", "--filter", "dangling=true"]).lines().count();
    assert_eq!(dangling(), 0);
    // --prune=false: the replaced image stays, untagged.
    watch_rebuild(&d, &dir, &["--prune=false"]);
    assert_eq!(dangling(), 1);
    // By default (as Compose), the replaced image goes.
    watch_rebuild(&d, &dir, &[]);
    assert_eq!(dangling(), 1, "only the first run's image, which no rebuild of this run replaced");
    compose_ok(&d, &dir, &["down", "-t", "0", "--rmi", "local"]);
}
