//! A corpus of compose files written the way real projects write them (`tests/fixtures/*`: a Django application
//! with overrides, a monitoring stack, shell-heavy services, a project built from `extends` and `include`): each
//! loads to the normalised model checked here, and `config`'s output (YAML and JSON) loads again to the same model,
//! services and resources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_compose::plan::{self, ContainerSpec};
use berth_compose::{Options, Project, config_text, load};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn options(name: &str, files: &[&str], profiles: &[&str]) -> Options {
    Options {
        files: files.iter().map(PathBuf::from).collect(),
        profiles: profiles.iter().map(|s| s.to_string()).collect(),
        working_dir: fixture(name),
        environment: BTreeMap::new(),
        ..Options::default()
    }
}

fn load_ok(o: &Options) -> Project {
    load(o).unwrap_or_else(|e| panic!("{}: {e}", o.working_dir.display()))
}

/// `config` in both formats, written to a scratch directory and loaded from there (with the same profiles): the
/// same project.
fn round_trip(p: &Project) {
    let scratch = tempfile::tempdir().expect("tempdir");
    for format in ["yaml", "json"] {
        let text = config_text(&p.model, format, true).unwrap_or_else(|e| panic!("{e}"));
        let f = scratch.path().join(format!("config.{format}"));
        std::fs::write(&f, &text).expect("write");
        let o = Options {
            files: vec![f],
            working_dir: scratch.path().to_path_buf(),
            profiles: p.profiles.clone(),
            ..Options::default()
        };
        let again = load(&o).unwrap_or_else(|e| panic!("{format}: {e}\n{text}"));
        assert_eq!(again.model, p.model, "{format}:\n{text}");
        assert_eq!(format!("{:?}", again.services), format!("{:?}", p.services), "{format}");
        assert_eq!(format!("{:?}", again.networks), format!("{:?}", p.networks), "{format}");
        assert_eq!(format!("{:?}", again.volumes), format!("{:?}", p.volumes), "{format}");
        for s in p.services.keys() {
            assert_eq!(plan::config_hash(&again, s), plan::config_hash(p, s), "{format}: {s}");
        }
    }
}

fn env(p: &Project, svc: &str, key: &str) -> Option<String> {
    p.services[svc].environment.get(key).cloned().flatten()
}

#[test]
fn webapp_with_its_override() {
    let p = load_ok(&options("webapp", &[], &[]));
    let dir = fixture("webapp");
    assert_eq!(p.name, "webapp");
    assert_eq!(p.config_files, [dir.join("compose.yaml"), dir.join("compose.override.yaml")]);
    let names: Vec<&str> = p.services.keys().map(String::as_str).collect();
    assert_eq!(names, ["db", "nginx", "redis", "web", "worker"]);
    assert!(p.disabled.contains_key("beat"));
    let web = &p.services["web"];
    // The override: restart reset, command replaced, ports added, DEBUG a string, not a boolean.
    assert_eq!(web.restart, None);
    assert_eq!(
        web.command.as_deref(),
        Some(&["python", "manage.py", "runserver", "0.0.0.0:8000"].map(String::from)[..])
    );
    assert_eq!(env(&p, "web", "DEBUG").as_deref(), Some("yes"));
    assert_eq!(env(&p, "worker", "DEBUG").as_deref(), Some("no"));
    assert_eq!(env(&p, "web", "DATABASE_URL").as_deref(), Some("postgres://app:s3cr3t$pw@db:5432/app"));
    assert_eq!(env(&p, "web", "SECRET_KEY").as_deref(), Some("django-insecure-$x!y"));
    assert_eq!(web.image.as_deref(), Some("webapp/django:2024.06"));
    assert_eq!(web.build.as_ref().map(|b| b.args["PYTHON_VERSION"].clone()), Some(Some("3.12".into())));
    let targets: Vec<&str> = web.volumes.iter().map(|v| v.target.as_str()).collect();
    assert_eq!(targets, ["/app/static", "/app/media", "/app"]);
    assert_eq!(web.ports.len(), 1);
    assert_eq!(web.depends_on["db"].condition, "service_healthy");
    // The worker's deploy replaced (no limits left), its own environment merged with the anchor's.
    let worker = &p.services["worker"];
    assert_eq!(worker.replicas(), 1);
    assert!(worker.deploy.as_ref().is_some_and(|d| d.resources.is_none()));
    assert_eq!(env(&p, "worker", "C_FORCE_ROOT").as_deref(), Some("true"));
    // Gunicorn's command of the base file used WORKERS from .env before the override replaced it.
    let db = &p.services["db"];
    assert_eq!(env(&p, "db", "POSTGRES_INITDB_ARGS").as_deref(), Some("\"--data-checksums\""));
    assert_eq!(
        db.healthcheck.as_ref().map(|h| h.test.clone()),
        Some(vec!["CMD-SHELL".into(), "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}".into()])
    );
    assert_eq!(p.model["services"]["db"]["env_file"][0]["format"], "raw");
    assert_eq!(p.services["redis"].sysctls["net.core.somaxconn"].as_deref(), Some("1024"));
    let nginx = &p.services["nginx"];
    assert!(nginx.ports.is_empty());
    assert_eq!(nginx.extra_hosts, ["api.local=127.0.0.1"]);
    assert_eq!(p.networks["front"].labels["com.example.tier"].as_deref(), Some("front"));
    assert_eq!(p.volumes["pgdata"].labels["com.example.backup"].as_deref(), Some("daily"));
    assert_eq!(p.volumes["static"].name, "webapp_static");
    assert_eq!(plan::start_order(&p, None), ["db", "redis", "web", "nginx", "worker"]);
    round_trip(&p);
    // With the scheduler profile and only the base file.
    let p = load_ok(&options("webapp", &["compose.yaml"], &["scheduler"]));
    assert_eq!(p.services["web"].restart.as_deref(), Some("unless-stopped"));
    assert_eq!(p.services["nginx"].ports.len(), 2);
    assert!(p.services["worker"].deploy.as_ref().and_then(|d| d.resources.as_ref()).is_some());
    assert_eq!(p.services["web"].command.as_ref().map(|c| c.last().cloned()), Some(Some("4".to_string())));
    assert!(p.services.contains_key("beat"));
    round_trip(&p);
}

#[test]
fn monitoring_stack() {
    let p = load_ok(&options("monitoring", &[], &[]));
    let prom = &p.services["prometheus"];
    assert_eq!(prom.user.as_deref(), Some("65534:65534"));
    assert_eq!(prom.volumes[0].target, "/prometheus");
    assert_eq!(prom.labels["com.example.scrape"].as_deref(), Some("on"));
    assert_eq!(p.model["services"]["prometheus"]["configs"][0]["mode"], json!(288));
    assert_eq!(p.model["services"]["prometheus"]["configs"][1]["mode"], json!(292));
    assert_eq!(
        p.model["services"]["prometheus"]["volumes"][0]["volume"]["labels"],
        json!({"com.example.retention": "15d"})
    );
    let g = |k: &str| env(&p, "grafana", k).unwrap_or_default();
    assert_eq!(
        [
            g("GF_USERS_ALLOW_SIGN_UP"),
            g("GF_AUTH_ANONYMOUS_ENABLED"),
            g("GF_FEATURE_TOGGLES_ENABLE"),
            g("GF_LOG_LEVEL")
        ],
        ["false", "yes", "n", "off"]
    );
    assert_eq!(
        [
            g("GF_DASHBOARDS_MIN_REFRESH_INTERVAL"),
            g("GF_PANELS_RATIO"),
            g("GF_ALERTING_MAX_ATTEMPTS"),
            g("GF_RENDERING_SCALE")
        ],
        ["1e1s", "1e3", ".inf", "1.10"]
    );
    let grafana = &p.services["grafana"];
    assert_eq!(grafana.volumes[1].target, "/etc/grafana/provisioning");
    assert_eq!(grafana.volumes[2].tmpfs.as_ref().and_then(|t| t.mode), Some(0o1777));
    assert_eq!(grafana.depends_on["prometheus"].restart, Some(true));
    let nets: Vec<String> = grafana.network_list().into_iter().map(|(n, _)| n).collect();
    assert_eq!(nets, ["monitoring", "on"]);
    assert_eq!(p.networks["on"].name, "monitoring-on-call");
    assert_eq!(p.networks["monitoring"].labels["com.example.net"].as_deref(), Some("monitoring"));
    assert_eq!(p.volumes["prometheus-data"].labels["com.example.backup"].as_deref(), Some("weekly"));
    assert_eq!(p.volumes["grafana-data"].name, "shared-grafana");
    assert_eq!(p.model["secrets"]["slack_webhook"]["labels"], json!({"com.example.rotate": "monthly"}));
    assert_eq!(p.services["node-exporter"].network_mode.as_deref(), Some("host"));
    assert_eq!(p.services["node-exporter"].volumes[0].target, "/host");
    // The create bodies: the tmpfs mode as a number, configs and secrets as read-only binds.
    let (_, body) = plan::container_body(&p, grafana, &ContainerSpec::default()).expect("body");
    let mounts = body["HostConfig"]["Mounts"].as_array().cloned().unwrap_or_default();
    assert!(mounts.iter().any(|m| m["TmpfsOptions"]["Mode"] == json!(1023)), "{mounts:?}");
    assert!(mounts.iter().any(|m| m["Target"] == "/run/secrets/grafana_admin" && m["ReadOnly"] == true));
    round_trip(&p);
}

#[test]
fn shell_in_commands_hooks_and_a_provider() {
    let p = load_ok(&options("shell", &[], &[]));
    let db = &p.services["db"];
    assert_eq!(
        db.healthcheck.as_ref().map(|h| h.test.clone()),
        Some(vec!["CMD-SHELL".into(), "mysqladmin ping -h 127.0.0.1 -u$MYSQL_USER -p$MYSQL_PASSWORD --silent".into()])
    );
    assert_eq!(db.environment["MYSQL_ONETIME_PASSWORD"], None);
    assert_eq!(db.post_start[0].command, ["sh", "-c", "echo started at $(date +%s) > /tmp/started"]);
    assert_eq!(db.pre_stop[0].command[2], "mysqladmin -uroot -p$MYSQL_ROOT_PASSWORD shutdown || true");
    assert_eq!(db.pre_stop[0].environment["GRACE"].as_deref(), Some("10"));
    let wp = &p.services["wordpress"];
    assert_eq!(
        env(&p, "wordpress", "WORDPRESS_CONFIG_EXTRA").as_deref(),
        Some("define('WP_HOME', 'http://' . $_SERVER['HTTP_HOST']);")
    );
    assert_eq!(wp.environment["EMPTY_ON_PURPOSE"], None);
    assert_eq!(wp.pre_start[0].command, ["echo", "preparing", "$1", "$@"]);
    assert_eq!(wp.pre_start[0].privileged, Some(false));
    assert_eq!(wp.volumes[0].target, "/var/www/html");
    let (_, body) = plan::container_body(&p, wp, &ContainerSpec::default()).expect("body");
    assert!(body["Env"].as_array().is_some_and(|e| e.contains(&json!("EMPTY_ON_PURPOSE"))), "{}", body["Env"]);
    assert!(!p.services.contains_key("backup") && !p.services.contains_key("assistant"));
    round_trip(&p);
    let p = load_ok(&options("shell", &[], &["*"]));
    let backup = &p.services["backup"];
    assert_eq!(backup.entrypoint.as_deref(), Some(&["/bin/sh", "-c", "exec \"$0\" \"$@\""].map(String::from)[..]));
    assert_eq!(
        backup.command.as_ref().map(|c| c[2].as_str()),
        Some("while :; do backup wordpress $MYSQL_PASSWORD; sleep 86400; done")
    );
    assert_eq!(
        (env(&p, "backup", "PRICE").as_deref(), env(&p, "backup", "PROMPT").as_deref()),
        (Some("5$"), Some("$ "))
    );
    let inline = backup.build.as_ref().and_then(|b| b.dockerfile_inline.clone()).unwrap_or_default();
    assert!(inline.contains("/backup/$(date +%F).sql") && inline.contains("-mtime +$KEEP"), "{inline}");
    assert_eq!(backup.volumes[0].target, "/backup");
    assert_eq!(p.services["assistant"].provider.as_ref().map(|p| p.typ.as_str()), Some("model"));
    let e = plan::check_supported(&p, &p.services.keys().cloned().collect()).expect_err("provider");
    assert!(e.to_string().starts_with("service \"assistant\" uses provider \"model\""));
    round_trip(&p);
}

#[test]
fn extends_include_and_production_overrides() {
    let dir = fixture("layered");
    let p = load_ok(&options("layered", &["compose.yaml"], &[]));
    let api = &p.services["api"];
    assert_eq!(api.image.as_deref(), Some("example/api:1.4.2"));
    assert_eq!(api.user.as_deref(), Some("1000"));
    assert_eq!(api.build.as_ref().map(|b| b.context.clone()), Some(dir.join("src").display().to_string()));
    assert_eq!(api.volumes[0].source.as_deref(), Some(dir.join("src").display().to_string().as_str()));
    assert_eq!(env(&p, "api", "LOG_LEVEL").as_deref(), Some("warning"));
    assert_eq!(env(&p, "api", "PYTHONUNBUFFERED").as_deref(), Some("1"));
    assert_eq!(env(&p, "api", "TZ").as_deref(), Some("UTC"));
    assert_eq!(env(&p, "api", "SENTRY_DSN").as_deref(), Some(""));
    assert_eq!(api.ports.len(), 3);
    assert_eq!(api.healthcheck.as_ref().and_then(|h| h.interval.clone()).as_deref(), Some("15s"));
    assert_eq!(api.logging.as_ref().and_then(|l| l.options["max-size"].clone()).as_deref(), Some("5m"));
    assert_eq!(p.services["worker"].replicas(), 3);
    assert_eq!(p.services["queue"].volumes[0].target, "/var/lib/rabbitmq");
    assert_eq!(
        p.services["queue"].volumes[0].source.as_deref(),
        Some(dir.join("queue/data").display().to_string().as_str())
    );
    assert_eq!(plan::start_order(&p, None), ["migrate", "queue", "api", "worker"]);
    round_trip(&p);
    // The production file: replaced ports and environment, volumes and dns reset, fewer workers.
    let p = load_ok(&options("layered", &["compose.yaml", "compose.prod.yaml"], &[]));
    let api = &p.services["api"];
    assert_eq!(api.ports.len(), 1);
    assert_eq!(api.ports[0].published.as_deref(), Some("80"));
    assert!(api.volumes.is_empty());
    // `environment` replaced: none of the base's own variables is left; the env_file's still apply.
    assert_eq!(
        api.environment.keys().map(String::as_str).collect::<Vec<_>>(),
        ["FEATURES", "QUEUE_URL", "ROLE", "SENTRY_DSN", "TZ"]
    );
    assert_eq!(env(&p, "api", "QUEUE_URL").as_deref(), Some("amqp://queue.internal:5672"));
    assert_eq!(api.healthcheck.as_ref().and_then(|h| h.interval.clone()).as_deref(), Some("30s"));
    assert_eq!(api.healthcheck.as_ref().map(|h| h.retries), Some(Some(3)));
    let worker = &p.services["worker"];
    assert_eq!((worker.replicas(), worker.volumes.len()), (2, 0));
    assert_eq!(worker.dns, ["10.0.0.2"]);
    assert!(p.services["migrate"].dns.is_empty());
    round_trip(&p);
}
