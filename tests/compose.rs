//! `berth compose` end to end against private daemons: the issue's project (web → db and redis by name, a named
//! volume for the data, a healthcheck condition, a published port), recreation by configuration hash, scale,
//! orphans, one-off runs, the per-container commands, and bad input that creates nothing.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_integration::*;

/// The `db` and `redis` images of the end-to-end project: busybox with a CGI server each, made locally.
fn service_images(d: &Berthd) {
    e2e_db_image(d);
    image(
        d,
        "e2e-redis:1",
        &["CMD [\"sh\", \"-c\", \"echo redis ready; exec httpd -f -vv -p 6379 -h /srv\"]"],
        |root| {
            let cgi = root.join("srv/cgi-bin");
            std::fs::create_dir_all(&cgi).unwrap();
            std::fs::write(cgi.join("ping"), "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho PONG\n").unwrap();
            std::fs::set_permissions(cgi.join("ping"), std::fs::Permissions::from_mode(0o755)).unwrap();
        },
    );
}

/// The web service's CGI: asks db and redis by name.
const WEB_CGI: &str = "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"web says $GREETING\"\nprintf 'GET /cgi-bin/count HTTP/1.0\\r\\n\\r\\n' | nc db 5432 | tail -n 1\nprintf 'GET /cgi-bin/ping HTTP/1.0\\r\\n\\r\\n' | nc cache 6379 | tail -n 1\n";

/// The project of the issue's end-to-end case; `web` is `WEB` (an image, or a build).
fn e2e_compose(web: &str) -> String {
    format!(
        r#"
name: shop
x-restart: &restart
  restart: unless-stopped
services:
  web:
    <<: *restart
{web}
    command: ["sh", "-c", "echo web ready; exec httpd -f -vv -p 80 -h /www"]
    environment:
      GREETING: ${{GREETING:-hello}}
    ports:
      - "127.0.0.1::80"
    depends_on:
      db:
        condition: service_healthy
      redis:
        condition: service_started
  db:
    <<: *restart
    image: e2e-db:1
    volumes:
      - dbdata:/data
    healthcheck:
      test: ["CMD-SHELL", "test -d /data && pidof httpd"]
      interval: 300ms
      retries: 50
  redis:
    image: e2e-redis:1
    networks:
      default:
        aliases: [cache]
volumes:
  dbdata:
"#
    )
}

fn run_e2e(p: &Project<'_>) {
    let d = p.d;
    p.ok(&["up", "-d", "--build"]);
    let ps = p.ok(&["ps", "--format", "{{.Service}} {{.State}}"]);
    assert_eq!(ps.lines().collect::<Vec<_>>(), vec!["db running", "redis running", "web running"], "{ps}");
    let port = p.ok(&["port", "web", "80"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    let page = http_get_200(port.parse().unwrap(), "/cgi-bin/index", 5);
    assert!(page.contains("web says hello"), "{page}");
    assert!(page.contains("visits=1"), "{page}");
    assert!(page.contains("PONG"), "{page}");
    // logs shows all three, prefixed by service and number.
    let logs = p.ok(&["logs", "--no-color"]);
    for s in ["web-1", "db-1", "redis-1"] {
        assert!(logs.lines().any(|l| l.starts_with(s) && l.contains(" | ")), "no {s} in logs:\n{logs}");
    }
    assert!(logs.contains("db ready") && logs.contains("redis ready") && logs.contains("web ready"), "{logs}");
    // logs -f follows: it is still running after a moment, and it has the lines.
    let mut follow = d
        .berth_cmd()
        .current_dir(&p.dir)
        .args(["compose", "logs", "-f", "--tail", "1", "db"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(follow.try_wait().unwrap().is_none(), "logs -f ended on its own");
    let _ = follow.kill();
    let _ = follow.wait();
    // exec works (names resolve from inside, too).
    assert_eq!(p.ok(&["exec", "-T", "web", "sh", "-c", "echo $GREETING"]).trim(), "hello");
    let out = p.ok(&["exec", "-T", "web", "nslookup", "cache"]);
    assert!(out.contains("Address"), "{out}");
    // down keeps the volume; up again finds the data.
    p.ok(&["down"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert!(!d.ok(&["network", "ls", "--format", "{{.Name}}"]).contains("shop_default"));
    assert!(d.ok(&["volume", "ls", "-q"]).contains("shop_dbdata"));
    p.ok(&["up", "-d"]);
    let port = p.ok(&["port", "web", "80"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    let page = http_get_200(port.parse().unwrap(), "/cgi-bin/index", 5);
    assert!(page.contains("visits=2"), "the data did not survive down/up: {page}");
    // down -v removes it.
    p.ok(&["down", "-v"]);
    assert!(!d.ok(&["volume", "ls", "-q"]).contains("shop_dbdata"));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

/// The issue's end-to-end case, with `web` on the busybox image and its CGI bind-mounted from the project.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_end_to_end() {
    let d = daemon_with_busybox();
    service_images(&d);
    let web = "    image: busybox\n    volumes: [\"./web:/www:ro\"]";
    let p = Project::new(&d, "shop", &[("compose.yaml", &e2e_compose(web)), ("web/cgi-bin/index", WEB_CGI)]);
    run_e2e(&p);
}

/// The same with `web` built from a Dockerfile in the project.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_end_to_end_with_build() {
    let d = daemon_with_busybox();
    service_images(&d);
    let web = "    build:\n      context: ./web\n      args: {GREETING_DEFAULT: hi}";
    let p = Project::new(
        &d,
        "shop",
        &[
            ("compose.yaml", &e2e_compose(web)),
            ("web/Dockerfile", "FROM busybox\nARG GREETING_DEFAULT\nCOPY cgi-bin /www/cgi-bin\n"),
            ("web/.dockerignore", "*.tmp\n"),
            ("web/junk.tmp", "ignored"),
            ("web/cgi-bin/index", WEB_CGI),
        ],
    );
    run_e2e(&p);
    assert!(d.ok(&["images", "--format", "{{.Repository}}"]).contains("shop-web"));
}

/// Labels as Compose v2 sets them, recreation only on a changed configuration, scale, orphans, one-off runs and
/// the per-container commands.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_recreate_scale_orphans_and_commands() {
    let d = daemon_with_busybox();
    let file = |extra: &str| {
        format!(
            "services:\n  app:\n    image: busybox\n    command: sleep 1000\n    stop_grace_period: 1s\n    environment:\n      - MODE=${{MODE:-a}}\n{extra}  side:\n    image: busybox\n    command: sleep 1000\n    init: true\n"
        )
    };
    let p = Project::new(&d, "Demo.App", &[("compose.yaml", &file(""))]);
    p.ok(&["up", "-d"]);
    // The directory's name, normalised, names the project.
    let id1 = d.inspect("demoapp-app-1", "{{.Id}}");
    let labels = d.inspect("demoapp-app-1", "{{json .Config.Labels}}");
    let l: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(l["com.docker.compose.project"], "demoapp");
    assert_eq!(l["com.docker.compose.service"], "app");
    assert_eq!(l["com.docker.compose.container-number"], "1");
    assert_eq!(l["com.docker.compose.oneoff"], "False");
    assert_eq!(l["com.docker.compose.project.working_dir"], p.dir.display().to_string());
    assert_eq!(l["com.docker.compose.project.config_files"], p.dir.join("compose.yaml").display().to_string());
    assert_eq!(l["com.docker.compose.depends_on"], "");
    assert!(l["com.docker.compose.image"].as_str().unwrap().starts_with("sha256:"));
    let hash = p.ok(&["config", "--hash", "app"]);
    assert_eq!(hash.split_whitespace().nth(1), l["com.docker.compose.config-hash"].as_str());
    let ls = p.ok(&["ls"]);
    assert!(
        ls.lines().any(|l| l.starts_with("demoapp") && l.contains("running(2)") && l.contains("compose.yaml")),
        "{ls}"
    );
    let net = d.inspect("demoapp_default", "{{json .Labels}}");
    assert!(net.contains("\"com.docker.compose.network\":\"default\""), "{net}");
    // Unchanged: kept. Changed: recreated. Forced: recreated. --no-recreate: kept.
    p.ok(&["up", "-d"]);
    assert_eq!(d.inspect("demoapp-app-1", "{{.Id}}"), id1);
    p.write(".env", "MODE=b\n");
    p.ok(&["up", "-d"]);
    let id2 = d.inspect("demoapp-app-1", "{{.Id}}");
    assert_ne!(id2, id1);
    assert!(d.inspect("demoapp-app-1", "{{json .Config.Env}}").contains("MODE=b"));
    let side = d.inspect("demoapp-side-1", "{{.Id}}");
    p.ok(&["up", "-d", "--force-recreate", "side"]);
    assert_ne!(d.inspect("demoapp-side-1", "{{.Id}}"), side);
    p.write(".env", "MODE=c\n");
    p.ok(&["up", "-d", "--no-recreate"]);
    assert_eq!(d.inspect("demoapp-app-1", "{{.Id}}"), id2);
    // Scale up and down.
    p.ok(&["up", "-d", "--scale", "app=3", "--no-recreate"]);
    assert_eq!(p.ok(&["ps", "-q", "app"]).lines().count(), 3);
    let names = p.ok(&["ps", "--format", "{{.Name}}", "app"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), vec!["demoapp-app-1", "demoapp-app-2", "demoapp-app-3"]);
    assert_eq!(
        p.ok(&[
            "exec",
            "-T",
            "--index",
            "2",
            "-e",
            "X=2",
            "-w",
            "/tmp",
            "-u",
            "65534",
            "app",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)"
        ])
        .trim(),
        "2 /tmp 65534"
    );
    p.ok(&["up", "-d", "--scale", "app=1", "--no-recreate"]);
    assert_eq!(p.ok(&["ps", "-q", "app"]).lines().count(), 1);
    // One-off runs: oneoff labels, removed with --rm, dependencies untouched with --no-deps.
    assert_eq!(p.ok(&["run", "--rm", "-T", "-e", "Y=7", "side", "sh", "-c", "echo run $Y"]).trim(), "run 7");
    let out = p.ok(&["run", "--rm", "-T", "--entrypoint", "echo", "--no-deps", "app", "via-entrypoint"]);
    assert_eq!(out.trim(), "via-entrypoint");
    assert_eq!(p.ok(&["ps", "-aq"]).lines().count(), 2, "one-off containers were left behind");
    // stop / start / restart / pause / unpause / kill / rm / top / images.
    p.ok(&["stop", "side"]);
    assert_eq!(d.inspect("demoapp-side-1", "{{.State.Status}}"), "exited");
    assert!(p.ok(&["ps", "--format", "{{.Name}}"]).lines().all(|l| l != "demoapp-side-1"));
    assert!(p.ok(&["ps", "-a", "--format", "{{.Name}} {{.State}}"]).contains("demoapp-side-1 exited"));
    p.ok(&["start", "side"]);
    assert_eq!(d.inspect("demoapp-side-1", "{{.State.Status}}"), "running");
    p.ok(&["restart", "-t", "1", "side"]);
    p.ok(&["pause", "app"]);
    assert_eq!(d.inspect("demoapp-app-1", "{{.State.Status}}"), "paused");
    p.ok(&["unpause", "app"]);
    let top = p.ok(&["top", "app"]);
    assert!(top.contains("demoapp-app-1") && top.contains("sleep 1000"), "{top}");
    let images = p.ok(&["images"]);
    assert!(images.contains("busybox") && images.contains("demoapp-app-1"), "{images}");
    p.ok(&["kill", "side"]);
    assert_eq!(d.inspect("demoapp-side-1", "{{.State.Status}}"), "exited");
    p.ok(&["rm", "-f", "side"]);
    assert!(!p.ok(&["ps", "-a", "--format", "{{.Name}}"]).contains("side"));
    // A service removed from the file is an orphan: named by up, removed with --remove-orphans.
    p.ok(&["up", "-d"]);
    p.write("compose.yaml", "services:\n  app:\n    image: busybox\n    command: sleep 1000\n    stop_grace_period: 1s\n    environment:\n      - MODE=${MODE:-a}\n");
    let out = p.compose(&["up", "-d"]);
    assert!(stderr(&out).contains("Found orphan containers (demoapp-side-1)"), "{}", stderr(&out));
    p.ok(&["up", "-d", "--remove-orphans"]);
    assert!(d.berth(&["inspect", "demoapp-side-1"]).status.code() != Some(0));
    p.ok(&["down"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // `down -p` works without the file, by the labels.
    p.ok(&["up", "-d"]);
    std::fs::remove_file(p.dir.join("compose.yaml")).unwrap();
    p.ok(&["-p", "demoapp", "down"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert!(!d.ok(&["network", "ls", "--format", "{{.Name}}"]).contains("demoapp_default"));
}

/// Invalid projects are refused with the file, the key and what was expected, before anything is created; a
/// service that cannot start is named, and `down` cleans up what was made.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_bad_input_and_failed_starts() {
    let d = daemon_with_busybox();
    let cases: &[(&str, &str)] = &[
        ("services:\n  web:\n    image: busybox\n    ports: [true]\n", "compose.yaml: services.web.ports.0: expected"),
        (
            "services:\n  web:\n    image: busybox\n    restrat: always\n",
            "compose.yaml: services.web.restrat: unknown key",
        ),
        (
            "services:\n  a: {image: busybox, depends_on: [b]}\n  b: {image: busybox, depends_on: [a]}\n",
            "dependency cycle detected: a -> b -> a",
        ),
        (
            "services:\n  web:\n    image: \"${IMAGE:?IMAGE is required}\"\n",
            "compose.yaml: services.web.image: required variable IMAGE is missing a value: IMAGE is required",
        ),
        (
            "services:\n  web:\n    image: busybox\n    depends_on:\n      db: {condition: sometimes}\n",
            "services.web.depends_on.db.condition: expected one of",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = Project::new(&d, &format!("bad{i}"), &[("compose.yaml", text)]);
        let err = p.fails(&["up", "-d"]);
        assert!(err.contains(want), "case {i}: {err}");
        let err = p.fails(&["config"]);
        assert!(err.contains(want), "config, case {i}: {err}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bad"), "{nets}");
    // A service whose program does not exist: named, and down cleans the rest.
    let p = Project::new(
        &d,
        "broken",
        &[(
            "compose.yaml",
            "services:\n  ok:\n    image: busybox\n    command: sleep 1000\n  broken:\n    image: busybox\n    command: /no/such/program\n    depends_on: [ok]\n",
        )],
    );
    let err = p.fails(&["up", "-d"]);
    assert!(err.contains("service \"broken\" failed to start") && err.contains("broken-broken-1"), "{err}");
    assert_eq!(d.inspect("broken-ok-1", "{{.State.Status}}"), "running");
    p.ok(&["down"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // A dependency that never becomes healthy: a clear message, within the timeout.
    let p = Project::new(
        &d,
        "sick",
        &[(
            "compose.yaml",
            "services:\n  db:\n    image: busybox\n    command: sleep 1000\n    healthcheck: {test: [\"CMD\", \"false\"], interval: 200ms, retries: 2}\n  web:\n    image: busybox\n    command: sleep 1000\n    depends_on: {db: {condition: service_healthy}}\n",
        )],
    );
    let err = p.fails(&["up", "-d"]);
    assert!(err.contains("dependency failed to start: container sick-db-1 is unhealthy"), "{err}");
    p.ok(&["down"]);
}

/// `config` prints the normalised model: the merge of several files, interpolation, long forms, names.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_config_merges_and_normalises() {
    let d = daemon_with_busybox();
    let p = Project::new(
        &d,
        "cfg",
        &[
            (
                "base.yaml",
                "services:\n  web:\n    image: busybox\n    ports: [\"8080:80\"]\n    environment: {A: \"1\"}\n",
            ),
            ("override.yaml", "services:\n  web:\n    environment: {B: \"${B_VALUE}\"}\n    profiles: [x]\n"),
            ("vars.env", "B_VALUE=two\n"),
        ],
    );
    let out = p.ok(&[
        "-f",
        "base.yaml",
        "-f",
        "override.yaml",
        "--env-file",
        "vars.env",
        "--profile",
        "x",
        "-p",
        "named",
        "config",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "named");
    assert_eq!(v["services"]["web"]["environment"], serde_json::json!({"A": "1", "B": "two"}));
    assert_eq!(v["services"]["web"]["ports"][0]["published"], "8080");
    assert_eq!(v["networks"]["default"]["name"], "named_default");
    let yaml = p.ok(&["-f", "base.yaml", "config"]);
    assert!(yaml.contains("name: cfg") && yaml.contains("target: 80"), "{yaml}");
    assert_eq!(p.ok(&["-f", "base.yaml", "-f", "override.yaml", "config", "--services"]).trim(), "");
}

/// The service keys of the issue reach the container as the Engine API has them.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_service_options_reach_the_container() {
    let d = daemon_with_busybox();
    let p = Project::new(
        &d,
        "opts",
        &[
            (
                "compose.yaml",
                r#"
services:
  app:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: ["echo started; exec sleep 1000"]
    container_name: opts-custom
    hostname: apphost
    user: "65534"
    working_dir: /tmp
    labels: [tier=back]
    extra_hosts: ["gateway.test:10.9.9.9"]
    dns: [10.9.9.53]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    read_only: true
    tmpfs: [/run/x]
    stop_signal: SIGINT
    stop_grace_period: 2s
    init: true
    restart: unless-stopped
    expose: ["7000"]
    ports:
      - target: 8000
        published: "0"
        host_ip: 127.0.0.1
        protocol: tcp
    volumes:
      - type: volume
        source: cache
        target: /cache
      - type: tmpfs
        target: /scratch
    networks:
      front:
        aliases: [api]
        ipv4_address: 10.77.0.10
    deploy:
      resources:
        limits: {memory: 64m, cpus: "0.5", pids: 50}
    secrets: [token]
  probe:
    image: busybox
    command: sleep 1000
    networks: [front]
networks:
  front:
    ipam:
      config: [{subnet: 10.77.0.0/24}]
volumes:
  cache:
    external: false
secrets:
  token:
    file: ./token.txt
"#,
            ),
            ("token.txt", "s3cret"),
        ],
    );
    p.ok(&["up", "-d"]);
    let i = |f: &str| d.inspect("opts-custom", f);
    assert_eq!(i("{{.Config.Hostname}} {{.Config.User}} {{.Config.WorkingDir}}"), "apphost 65534 /tmp");
    assert_eq!(i("{{index .Config.Labels \"tier\"}}"), "back");
    assert_eq!(i("{{json .HostConfig.ExtraHosts}}"), "[\"gateway.test:10.9.9.9\"]");
    assert_eq!(i("{{json .HostConfig.Dns}}"), "[\"10.9.9.53\"]");
    assert_eq!(i("{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}"), "[\"NET_ADMIN\"] [\"MKNOD\"]");
    assert_eq!(i("{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Init}}"), "true true");
    assert_eq!(i("{{.Config.StopSignal}} {{.Config.StopTimeout}}"), "SIGINT 2");
    assert_eq!(i("{{.HostConfig.RestartPolicy.Name}}"), "unless-stopped");
    assert_eq!(i("{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"), "67108864 500000000 50");
    assert!(i("{{json .HostConfig.Tmpfs}}").contains("/run/x"));
    let mounts = i("{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}");
    assert!(mounts.contains("volume:/cache") && mounts.contains("tmpfs:/scratch"), "{mounts}");
    assert_eq!(i("{{(index .NetworkSettings.Networks \"opts_front\").IPAddress}}"), "10.77.0.10");
    // The service name and the alias resolve from the other service; the read-only root holds.
    for name in ["app", "api", "opts-custom"] {
        let out = p.ok(&["exec", "-T", "probe", "nslookup", name]);
        assert!(out.contains("10.77.0.10"), "{name}: {out}");
    }
    let out = p.compose(&["exec", "-T", "app", "touch", "/nope"]);
    assert!(!out.status.success(), "the root is writable");
    assert_eq!(
        p.ok(&["exec", "-T", "app", "cat", "/etc/hosts"]).lines().filter(|l| l.contains("gateway.test")).count(),
        1
    );
    let port = p.ok(&["port", "app", "8000"]);
    assert!(port.trim().starts_with("127.0.0.1:"), "{port}");
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/run/secrets/token"]), "s3cret");
    let logs = p.ok(&["logs", "--no-log-prefix", "app"]);
    assert_eq!(logs.trim(), "started");
    p.ok(&["down", "-v"]);
    assert!(!d.ok(&["volume", "ls", "-q"]).contains("opts_cache"));
}

/// Attached `up` shows the run's output and ends with the containers; `--abort-on-container-exit` stops the rest
/// when one ends; `run` starts the dependencies first.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_up_attached_and_run_with_dependencies() {
    let d = daemon_with_busybox();
    let p = Project::new(
        &d,
        "att",
        &[(
            "compose.yaml",
            "services:\n  quick:\n    image: busybox\n    command: sh -c 'sleep 1; echo quick says hi'\n  slow:\n    image: busybox\n    command: sh -c 'echo slow starts; exec sleep 30'\n    stop_signal: SIGKILL\n  job:\n    image: busybox\n    command: \"true\"\n    depends_on:\n      quick: {condition: service_completed_successfully}\n",
        )],
    );
    let out = p.ok(&["up", "--no-color", "quick"]);
    assert!(out.lines().any(|l| l.starts_with("quick-1") && l.ends_with("| quick says hi")), "{out}");
    let started = std::time::Instant::now();
    let out = p.ok(&["up", "--no-color", "--abort-on-container-exit", "quick", "slow"]);
    assert!(started.elapsed() < Duration::from_secs(20), "did not abort when quick exited");
    assert!(out.contains("slow starts"), "{out}");
    // This run's output only: the first run's line is not repeated.
    assert_eq!(out.matches("quick says hi").count(), 1, "{out}");
    assert_eq!(d.inspect("att-slow-1", "{{.State.Status}}"), "exited");
    // run waits for the dependency's completion first.
    p.ok(&["run", "--rm", "-T", "job"]);
    assert_eq!(d.inspect("att-quick-1", "{{.State.ExitCode}}"), "0");
    p.ok(&["down"]);
}
