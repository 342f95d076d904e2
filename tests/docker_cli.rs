//! The compatibility tier: the real `docker` CLI drives berthd. Skipped, loudly, where the docker CLI is absent.
#![allow(clippy::unwrap_used)]

use berth_integration::*;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_version_info_images() {
    let Some(d) = docker_imported_daemon() else { return };
    let v = docker_ok(&d, &["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]);
    assert!(v.starts_with("0.1.0 1."), "{v}");
    let info = docker_ok(&d, &["info", "--format", "{{.Driver}} {{.CgroupVersion}} {{.Images}}"]);
    assert!(info.starts_with("overlay2 ") && info.trim().ends_with(" 1"), "{info}");
    let images = docker_ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "busybox:latest\n");
    docker_ok(&d, &["tag", "busybox", "other:1"]);
    assert!(docker_ok(&d, &["rmi", "other:1"]).contains("Untagged: other:1"));
    let out = d.docker(&["image", "inspect", "nosuch"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_run_exit_codes_and_streams() {
    let Some(d) = docker_imported_daemon() else { return };
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "to-out\n");
    assert_eq!(stderr(&out), "to-err\n");
    let out = d.docker(&["run", "--rm", "busybox", "nope"]).unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("executable file not found"), "{}", stderr(&out));
    let id = docker_ok(
        &d,
        &["run", "-d", "--name", "bg", "-e", "GREETING=hi", "busybox", "sh", "-c", "echo $GREETING; sleep 300"],
    );
    assert_eq!(id.trim().len(), 64);
    assert!(d.eventually(5, || docker_ok(&d, &["logs", "bg"]) == "hi\n"));
    let ps = docker_ok(&d, &["ps"]);
    assert!(ps.contains("bg") && ps.contains("Up "), "{ps}");
    assert_eq!(docker_ok(&d, &["exec", "bg", "sh", "-c", "echo $GREETING from exec"]), "hi from exec\n");
    let out = d.docker(&["exec", "bg", "sh", "-c", "exit 9"]).unwrap();
    assert_eq!(out.status.code(), Some(9));
    docker_ok(&d, &["pause", "bg"]);
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "bg"]), "paused\n");
    docker_ok(&d, &["unpause", "bg"]);
    docker_ok(&d, &["stop", "-t", "1", "bg"]);
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "bg"]), "exited 137\n");
    docker_ok(&d, &["rename", "bg", "bg2"]);
    docker_ok(&d, &["rm", "bg2"]);
    let out = d.docker(&["rm", "bg2"]).unwrap();
    assert!(stderr(&out).contains("No such container: bg2"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_create_start_attach_wait() {
    let Some(d) = docker_imported_daemon() else { return };
    docker_ok(&d, &["create", "--name", "c1", "busybox", "sh", "-c", "echo created-then-started; exit 5"]);
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "c1"]), "created\n");
    let out = d.docker(&["start", "-a", "c1"]).unwrap();
    assert_eq!(stdout(&out), "created-then-started\n");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(docker_ok(&d, &["wait", "c1"]), "5\n");
    let out = d.docker(&["run", "--name", "c1", "busybox", "true"]).unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("is already in use"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_tty_exec_and_run() {
    let Some(d) = docker_imported_daemon() else { return };
    if which("script").is_none() {
        skip_missing_tool("`script` (bsdutils) is needed to give the docker CLI a terminal");
        return;
    }
    docker_ok(&d, &["run", "-d", "--name", "tty1", "busybox", "sleep", "300"]);
    let docker = docker_cli().unwrap();
    // script's terminal has no size when its stdin is not a terminal: give it one, which the docker CLI passes on.
    let cmd = format!("stty rows 30 cols 100; {} exec -it tty1 sh -c 'tty; echo size=$(stty size)'", docker.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text} / {}", stderr(&out));
    assert!(text.contains("size=30 100"), "the terminal size did not reach the exec: {text}");
    let cmd = format!("{} run --rm -it busybox sh -c 'tty; exit 2'", docker.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    assert!(stdout(&out).contains("/dev/pts/0"), "{} / {}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_networks_names_and_ports() {
    let Some(d) = docker_imported_daemon() else { return };
    let id = docker_ok(&d, &["network", "create", "--subnet", "10.233.1.0/24", "--label", "k=v", "dnet"]);
    assert_eq!(id.trim().len(), 64);
    let ls = docker_ok(&d, &["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    for want in ["bridge bridge local", "host host local", "none null local", "dnet bridge local"] {
        assert!(ls.contains(want), "{ls}");
    }
    let port = free_port();
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "dnet",
            "--network-alias",
            "www",
            "--ip",
            "10.233.1.50",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "mkdir -p /w && echo via-docker > /w/index.html && exec httpd -f -p 80 -h /w",
        ],
    );
    let out = docker_ok(&d, &["run", "--rm", "--network", "dnet", "busybox", "nslookup", "-type=a", "www"]);
    assert!(out.contains("Address: 10.233.1.50"), "{out}");
    let out = docker_ok(&d, &["port", "web", "80"]);
    assert_eq!(out.trim(), format!("127.0.0.1:{port}"));
    let ps = docker_ok(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let body = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "dnet",
            "busybox",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w3 web 80",
        ],
    );
    assert!(body.contains("via-docker"), "{body}");
    let inspect =
        docker_ok(&d, &["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "dnet"]);
    assert_eq!(inspect.trim(), "web 10.233.1.50/24");
    docker_ok(&d, &["network", "connect", "bridge", "web"]);
    let nets = docker_ok(&d, &["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "web"]);
    assert_eq!(nets.trim(), "bridge dnet");
    docker_ok(&d, &["network", "disconnect", "bridge", "web"]);
    let out = d.docker(&["network", "rm", "dnet"]).unwrap();
    assert_ne!(out.status.code(), Some(0), "in use");
    docker_ok(&d, &["rm", "-f", "web"]);
    assert_eq!(docker_ok(&d, &["network", "rm", "dnet"]).trim(), "dnet");
}

/// Debian's docker-compose 1.29 (docker-py) drives berthd: a project network, a second network, service names that
/// resolve, a published port, a named volume, a `service_healthy` dependency (berthd runs the healthcheck), and
/// `down -v` removing it all; `berth compose` sees the same project through the labels.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_compose_v1_networks() {
    require_root();
    let d = Berthd::start();
    d.busybox();
    let port = free_port();
    let Some(compose) = ComposeV1::new(
        &d,
        "proj",
        &format!(
            "services:\n  db:\n    image: busybox\n    command: sh -c \"echo kept > /data/v; sleep 300\"\n    networks: [back]\n    \
             volumes: [\"dbdata:/data\"]\n    healthcheck: {{test: [\"CMD-SHELL\", \"test -f /data/v\"], interval: 1s, retries: 30}}\n  \
             web:\n    image: busybox\n    command: sh -c \"mkdir -p /w && echo composed > /w/index.html && exec httpd -f -p 80 -h /w\"\n    \
             ports: [\"127.0.0.1:{port}:80\"]\n    depends_on: {{db: {{condition: service_healthy}}}}\n    networks: [default, back]\n\
             networks:\n  back: {{}}\nvolumes:\n  dbdata: {{}}\n"
        ),
        "the compose compatibility test",
    ) else {
        return;
    };
    let proj = &compose.p.dir;
    let run = |args: &[&str]| stdout(&compose.run_ok(args));
    run(&["up", "-d"]);
    let out = run(&["exec", "-T", "web", "nslookup", "-type=a", "db"]);
    assert!(out.contains("Name:\tdb"), "{out}");
    let body = run(&["exec", "-T", "db", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w3 web 80"]);
    assert!(body.contains("composed"), "{body}");
    let from_host = d.eventually(10, || {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(3)));
        let mut body = String::new();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
            && c.read_to_string(&mut body).is_ok()
            && body.contains("composed")
    });
    assert!(from_host, "the published port answers from the host");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.contains("proj_default") && nets.contains("proj_back"), "{nets}");
    assert_eq!(d.inspect("proj_db_1", "{{.State.Health.Status}}"), "healthy");
    // `berth compose` finds docker-compose's project by its labels.
    let out = d
        .berth_cmd()
        .current_dir(proj)
        .args(["compose", "ps", "--format", "{{.Service}} {{.State}}"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), vec!["db running", "web running"], "{}", stderr(&out));
    run(&["down", "-v", "-t", "1"]);
    assert!(!d.ok(&["volume", "ls", "-q"]).contains("proj_dbdata"));
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("proj_"), "{nets}");
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Debian's docker-compose 1.29 recreates a changed service (issue 15): `up -d --build` after a change of its build
/// context builds through `POST /build`, recreates that service (it reads the old container's image `ContainerConfig`,
/// which it needs at API 1.38) and leaves the unchanged one running as it was.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_compose_v1_recreates_a_changed_service() {
    require_root();
    let d = Berthd::start();
    d.busybox();
    let Some(compose) = ComposeV1::new(
        &d,
        "rproj",
        "services:\n  app:\n    build: ./app\n  other:\n    image: busybox\n    command: sleep 300\n",
        "the compose compatibility test",
    ) else {
        return;
    };
    let dockerfile = |v: &str| {
        compose.p.write("app/Dockerfile", &format!("FROM busybox\nRUN echo {v} > /v\nCMD [\"sleep\", \"300\"]\n"))
    };
    let run = |args: &[&str]| {
        let out = compose.run_ok(args);
        format!("{}{}", stdout(&out), stderr(&out))
    };
    dockerfile("one");
    run(&["up", "-d", "--build"]);
    let (app1, other1) = (d.inspect("rproj_app_1", "{{.Id}}"), d.inspect("rproj_other_1", "{{.Id}}"));
    assert_eq!(d.ok(&["exec", "rproj_app_1", "cat", "/v"]).trim(), "one");
    dockerfile("two");
    let out = run(&["up", "-d", "--build"]);
    assert!(!out.contains("KeyError"), "{out}");
    let app2 = d.inspect("rproj_app_1", "{{.Id}}");
    assert_ne!(app1, app2, "the changed service is recreated: {out}");
    assert_eq!(d.ok(&["exec", "rproj_app_1", "cat", "/v"]).trim(), "two");
    assert_eq!(d.inspect("rproj_other_1", "{{.Id}}"), other1, "the unchanged one is left as it was: {out}");
    run(&["down", "-t", "1"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Healthchecks that the docker CLI asks for (`--health-*`) run in berthd: `State.Health` goes from `starting` to
/// `healthy` or `unhealthy` (after `retries` failures), keeps the last five results, shows in `ps`, and starts over
/// after a daemon restart.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_healthchecks() {
    let Some(mut d) = docker_imported_daemon() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "good",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "3",
            "busybox",
            "sh",
            "-c",
            "sleep 1; touch /tmp/ok; exec sleep 100",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "bad",
            "--health-cmd",
            "echo failing; exit 1",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "100",
        ],
    );
    docker_ok(&d, &["run", "-d", "--name", "none", "busybox", "sleep", "100"]);
    fn status(d: &Berthd, n: &str) -> String {
        docker_ok(d, &["inspect", "-f", "{{.State.Health.Status}}", n]).trim().to_string()
    }
    assert_eq!(status(&d, "good"), "starting");
    assert!(d.eventually(10, || status(&d, "good") == "healthy"), "good: {}", status(&d, "good"));
    assert!(d.eventually(10, || status(&d, "bad") == "unhealthy"), "bad: {}", status(&d, "bad"));
    let log = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{len .State.Health.Log}} {{.State.Health.FailingStreak}} {{(index .State.Health.Log 0).Output}}",
            "bad",
        ],
    );
    assert!(
        d.eventually(10, || docker_ok(&d, &["inspect", "-f", "{{len .State.Health.Log}}", "bad"]).trim() == "5"),
        "{log}"
    );
    assert!(log.contains("failing"), "{log}");
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{json .State.Health}}", "none"]).trim(), "null");
    let ps = docker_ok(&d, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.lines().any(|l| l.starts_with("good ") && l.ends_with("(healthy)")), "{ps}");
    assert!(ps.lines().any(|l| l.starts_with("bad ") && l.ends_with("(unhealthy)")), "{ps}");
    // After a restart of the daemon the checks go on.
    d.kill9();
    d.restart();
    let streak = |n: &str| docker_ok(&d, &["inspect", "-f", "{{.State.Health.FailingStreak}}", n]).trim().to_string();
    assert!(d.eventually(10, || status(&d, "good") == "healthy"), "good after restart: {}", status(&d, "good"));
    assert!(
        d.eventually(10, || streak("bad").parse::<i64>().unwrap_or(0) >= 2),
        "no healthcheck ran after the restart"
    );
    assert_eq!(status(&d, "bad"), "unhealthy");
}
