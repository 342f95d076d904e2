//! `berth kube generate|play|down` and `berth compose kube` against private daemons: every generated document is
//! validated against the Kubernetes OpenAPI schemas of two versions offline (PyPI's `kubernetes-validate`, strict:
//! unknown fields refused); a hand-written Deployment + Service + ConfigMap + Secret + PVC plays and serves; and
//! the round trip: a compose application → YAML → play → the page answers, the data survives down + play, and the
//! last down leaves nothing (containers, pods, volumes, links, firewall rules).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_integration::*;

/// The Kubernetes versions the generated YAML is validated against (kubernetes-validate's bundled schemas).
const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.31.0"];
/// The pinned validator (contrib/deps.sh installs it).
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

/// `/usr/bin/python3 -m kubernetes_validate`, or `None` after a skip line.
fn validator() -> Option<&'static str> {
    const PY: &str = "/usr/bin/python3";
    let ok = Command::new(PY).args(["-c", "import kubernetes_validate"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        skip_missing_tool(&format!(
            "/usr/bin/python3 has no kubernetes_validate (pip install {VALIDATOR}); the schema validation did not run"
        ));
        return None;
    }
    Some(PY)
}

/// Asserts that every document of `yaml` is valid at both versions (strict). `what` names it in failures.
fn assert_valid(dir: &Path, what: &str, yaml: &str) {
    let Some(py) = validator() else { return };
    let file = dir.join(format!("{}.yaml", what.replace([' ', '/'], "_")));
    std::fs::write(&file, yaml).unwrap();
    let docs = yaml.split("\n---\n").count();
    for v in KUBE_VERSIONS {
        let o = Command::new(py).args(["-m", "kubernetes_validate", "--strict", "-k", v]).arg(&file).output().unwrap();
        assert!(o.status.success(), "{what}: not valid for Kubernetes {v}:\n{}{}\n{yaml}", stdout(&o), stderr(&o));
        // One line per document: none was left out.
        let valid = stdout(&o).lines().filter(|l| l.starts_with("INFO") && l.contains(" passed for resource ")).count();
        assert_eq!(valid, docs, "{what}: {docs} documents, {valid} validated at {v}:\n{}", stdout(&o));
    }
}

/// The pods of the daemon (`GET /berth/pods/json`).
fn pods(d: &Berthd) -> Vec<serde_json::Value> {
    let (st, _, body) = api(d, "GET", "/berth/pods/json", b"");
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The default bridge's name and the daemon's nftables table.
fn bridge_and_table(d: &Berthd) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string();
    let table = format!("berth_{}", bridge.trim_start_matches("bb"));
    (bridge, table)
}

/// What a play leaves on the host: links on the daemon's bridge, its firewall table (None without nft).
fn host_state(bridge: &str, table: &str) -> (Vec<String>, Option<String>) {
    let ip = Command::new("ip").args(["-o", "link", "show", "master", bridge]).output().unwrap();
    let links = stdout(&ip).lines().filter_map(|l| l.split(": ").nth(1)).map(str::to_string).collect();
    let rules = nft_table(table);
    (links, rules)
}

/// The compose application of the round trip: a web service publishing a port, asking a database with a named
/// volume and a healthcheck by its name.
fn shop(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir.join("web/cgi-bin")).unwrap();
    std::fs::write(
        dir.join("web/cgi-bin/index"),
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"web says $GREETING\"\nprintf 'GET /cgi-bin/count HTTP/1.0\\r\\n\\r\\n' | nc db 5432 | tail -n 1\n",
    )
    .unwrap();
    std::fs::set_permissions(dir.join("web/cgi-bin/index"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("site.conf"), "greeting=hello\n").unwrap();
    std::fs::write(dir.join("web.env"), "COLOR=blue\n").unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"name: shop
services:
  web:
    image: busybox
    restart: unless-stopped
    command: ["sh", "-c", "echo web ready; exec httpd -f -vv -p 80 -h /www"]
    environment:
      GREETING: hello
    env_file: [web.env]
    volumes: ["./web:/www:ro"]
    ports: ["127.0.0.1:{port}:80"]
    configs:
      - source: site
        target: /etc/site.conf
    mem_limit: 64m
    cap_drop: [NET_RAW]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: e2e-db:1
    restart: unless-stopped
    volumes: ["dbdata:/data"]
    healthcheck:
      test: ["CMD-SHELL", "test -d /data && pidof httpd"]
      interval: 1s
      retries: 30
volumes:
  dbdata:
configs:
  site:
    file: ./site.conf
"#
        ),
    )
    .unwrap();
}

/// `compose kube` and `kube generate -f` need no daemon: every type, with and without a Service, is valid.
#[test]
fn compose_project_generates_valid_yaml_of_every_type() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path(), 18080);
    let run = |args: &[&str]| {
        let o = Command::new(bin("berth"))
            .current_dir(dir.path())
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent")
            .output()
            .unwrap();
        assert!(o.status.success(), "berth {args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    for typ in ["pod", "deployment", "statefulset", "daemonset", "job"] {
        for service in [false, true] {
            let mut args = vec!["kube", "generate", "-f", "compose.yaml", "--type", typ];
            if service {
                args.push("--service");
            }
            let (yaml, warnings) = run(&args);
            assert_valid(dir.path(), &format!("compose {typ} {service}"), &yaml);
            // What cannot be expressed is said.
            assert!(warnings.contains("depends_on cannot be expressed"), "{warnings}");
            assert!(
                yaml.contains("kind: PersistentVolumeClaim") && yaml.contains("io.berth.volume-name: shop_dbdata"),
                "{yaml}"
            );
            assert!(yaml.contains("kind: ConfigMap") && yaml.contains("greeting=hello"), "{yaml}");
            // The env file is a ConfigMap the container takes its environment from.
            assert!(yaml.contains("COLOR: blue") && yaml.contains("name: shop-web-env"), "{yaml}");
            assert!(yaml.contains("envFrom:\n") && !yaml.contains("name: COLOR"), "{yaml}");
            assert_eq!(yaml.contains("kind: Service"), service, "{yaml}");
        }
    }
    // `compose kube` is the same.
    assert_eq!(run(&["compose", "kube"]).0, run(&["kube", "generate", "-f", "compose.yaml"]).0);
    let o = Command::new(bin("berth"))
        .current_dir(dir.path())
        .args(["kube", "generate", "-f", "compose.yaml", "--type", "cronjob"])
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("invalid type \"cronjob\""), "{}", stderr(&o));
}

/// Containers made with every option `generate` translates: valid YAML of every type, with the options in it.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn containers_generate_valid_yaml() {
    let d = daemon_with_busybox();
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["sleep", "300"], "Env": ["A=1"], "WorkingDir": "/tmp",
        "User": "1000:1000", "Labels": {"tier": "front", "note": "not a label value"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Healthcheck": {"Test": ["CMD-SHELL", "pidof httpd"], "Interval": 2000000000i64, "Retries": 3},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}, "CapAdd": ["NET_ADMIN"],
                       "CapDrop": ["MKNOD"], "ReadonlyRootfs": true, "Memory": 67108864, "NanoCpus": 500000000,
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                       "Binds": ["data:/data"], "Tmpfs": {"/run/x": ""}}
    });
    let (st, _, out) = api(&d, "POST", "/containers/create?name=web", body.to_string().as_bytes());
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&out));
    d.ok(&["start", "web"]);
    d.ok(&["run", "-d", "--name", "side", "--privileged", "--network", "none", "busybox", "sleep", "300"]);
    let bound = d.ok(&["port", "web", "80"]);
    let bound = bound.trim().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for typ in ["pod", "deployment", "statefulset", "daemonset", "job"] {
        for service in [false, true] {
            let mut args = vec!["kube", "generate", "--type", typ, "web", "side"];
            if service {
                args.push("--service");
            }
            let o = d.berth(&args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            let yaml = stdout(&o);
            assert_valid(dir.path(), &format!("containers {typ} {service}"), &yaml);
            for needle in [
                "- name: A\n",
                "workingDir: /tmp",
                "runAsUser: 1000",
                "runAsGroup: 1000",
                "- NET_ADMIN",
                "- MKNOD",
                "readOnlyRootFilesystem: true",
                "memory: 64Mi",
                "cpu: 500m",
                "livenessProbe:",
                "readinessProbe:",
                "periodSeconds: 2",
                "tier: front",
                "note: not a label value",
                "claimName: data",
                "medium: Memory",
                "privileged: true",
                "protocol: UDP",
            ] {
                assert!(yaml.contains(needle), "{typ}: no {needle:?} in\n{yaml}");
            }
            if typ == "pod" && !service {
                assert!(
                    yaml.contains(&format!("hostPort: {bound}")) && yaml.contains("hostIP: \"127.0.0.1\""),
                    "{yaml}"
                );
                assert!(yaml.contains("restartPolicy: OnFailure"), "{yaml}");
            }
            let warnings = stderr(&o);
            assert!(warnings.contains("privileged") && warnings.contains("restart policies differ"), "{warnings}");
        }
    }
    // A name that is neither.
    let o = d.berth(&["kube", "generate", "nothing"]);
    assert!(!o.status.success() && stderr(&o).contains("nothing"), "{}", stderr(&o));
}

/// The hand-written case: a Deployment with an init container, a Service (NodePort), a ConfigMap (files and
/// environment), a Secret and a PVC, serving a page through the published port; `--replace` with `--publish`; down
/// removes the pods and the emptyDir volume, not the claim's volume unless --force.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn play_a_deployment_with_service_configmap_secret_and_claim() {
    let d = daemon_with_busybox();
    let node_port = free_port_in(30000..=32767);
    let yaml = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: site}}
data:
  index.html: "<h1>hello from a ConfigMap</h1>"
  MODE: production
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData:
  password: hunter2
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: content}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      initContainers:
        - name: first
          image: busybox
          command: [sh, -c, "echo one >> /srv/data/init.txt"]
          volumeMounts: [{{name: content, mountPath: /srv/data}}]
        - name: second
          image: busybox
          command: [sh, -c, "echo two >> /srv/data/init.txt"]
          volumeMounts: [{{name: content, mountPath: /srv/data}}]
      containers:
        - name: httpd
          image: busybox
          command: [httpd, -f, -p, "80", -h, /srv]
          envFrom: [{{configMapRef: {{name: site}}}}]
          env:
            - name: PASSWORD
              valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
          ports: [{{containerPort: 80, name: http}}]
          livenessProbe:
            httpGet: {{path: /index.html, port: http}}
            periodSeconds: 1
          resources: {{limits: {{memory: 64Mi}}}}
          volumeMounts:
            - {{name: site, mountPath: /srv/index.html, subPath: index.html}}
            - {{name: content, mountPath: /srv/data}}
            - {{name: scratch, mountPath: /scratch}}
            - {{name: creds, mountPath: /etc/creds, readOnly: true}}
      volumes:
        - {{name: site, configMap: {{name: site}}}}
        - {{name: content, persistentVolumeClaim: {{claimName: content}}}}
        - {{name: scratch, emptyDir: {{}}}}
        - {{name: creds, secret: {{secretName: creds, defaultMode: 0400}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http, nodePort: {node_port}}}]
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.to_str().unwrap();
    let out = berth_ok_in(&d, dir.path(), &["kube", "play", f]);
    assert!(out.starts_with("Pod:\n"), "{out}");
    assert_eq!(http_get_200(node_port, "/index.html", 20).trim(), "<h1>hello from a ConfigMap</h1>");
    // The init containers ran, in order, before the server, and are gone.
    assert_eq!(http_get_200(node_port, "/data/init.txt", 20), "one\ntwo\n");
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "web-pod-httpd", "{names}");
    assert_eq!(
        d.ok(&[
            "exec",
            "web-pod-httpd",
            "sh",
            "-c",
            "echo $MODE $PASSWORD; cat /etc/creds/password; stat -c %a /etc/creds/password"
        ]),
        "production hunter2\nhunter2400\n"
    );
    assert_eq!(
        d.inspect("web-pod-httpd", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}"),
        "67108864 always"
    );
    let healthy = d.eventually(20, || d.inspect("web-pod-httpd", "{{.State.Health.Status}}") == "healthy");
    assert!(
        healthy,
        "the httpGet probe did not make it healthy: {}",
        d.inspect("web-pod-httpd", "{{json .State.Health}}")
    );
    let vols = d.ok(&["volume", "ls", "-q"]);
    // The ConfigMap and the Secret are volumes of the pod too (read-only mounts: tests/kube_ro.rs).
    assert_eq!(
        vols.split_whitespace().collect::<Vec<_>>(),
        ["content", "web-pod_creds", "web-pod_scratch", "web-pod_site"],
        "{vols}"
    );
    // A second play without --replace is refused before anything is created.
    let o = berth_in(&d, dir.path(), &["kube", "play", f]);
    assert!(!o.status.success() && stderr(&o).contains("pod web-pod exists already"), "{}", stderr(&o));
    // --replace, now published on 127.0.0.1 only by --publish.
    let port = free_port_in(20000..=29999);
    berth_ok_in(&d, dir.path(), &["kube", "play", "--replace", "--publish", &format!("127.0.0.1:{port}:80"), f]);
    assert_eq!(http_get_200(port, "/data/init.txt", 20), "one\ntwo\none\ntwo\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", node_port)).is_err(), "the node port is still published");
    assert_eq!(pods(&d).len(), 1);
    // down: pods, containers and the emptyDir go; the claim's volume stays without --force.
    let out = berth_ok_in(&d, dir.path(), &["kube", "down", f]);
    assert!(out.contains("Pods removed:") && out.contains("web-pod_scratch") && out.contains("web-pod_creds"), "{out}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert!(pods(&d).is_empty());
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "content");
    berth_ok_in(&d, dir.path(), &["kube", "down", "--force", f]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
    // Errors name the document and the field, and nothing is created.
    std::fs::write(&file, yaml.replace("livenessProbe:", "lifecycle: {}\n          livenessProbe:")).unwrap();
    let o = berth_in(&d, dir.path(), &["kube", "play", f]);
    assert!(!o.status.success(), "accepted");
    assert!(
        stderr(&o).contains(
            "document 3 (Deployment/web): spec.template.spec.containers[0].lifecycle: unknown field `lifecycle`"
        ),
        "{}",
        stderr(&o)
    );
    assert!(pods(&d).is_empty() && d.ok(&["volume", "ls", "-q"]).trim().is_empty());
}

/// Issue 18's round trip: the compose application → `kube generate` → schema-valid → `kube play` → the page
/// answers through the published port → `kube down` + `kube play` keep the data → `kube down --force` leaves
/// nothing.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_round_trip_through_kubernetes_yaml() {
    let d = daemon_with_busybox();
    e2e_db_image(&d);
    let dir = d.dir.join("shop");
    let port = free_port_in(20000..=29999);
    shop(&dir, port);
    let (bridge, table) = bridge_and_table(&d);
    let before = host_state(&bridge, &table);
    let yaml = berth_ok_in(&d, &dir, &["compose", "kube"]);
    assert_valid(&dir, "round trip", &yaml);
    let file = dir.join("shop.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.to_str().unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", f]);
    let page = http_get_200(port, "/cgi-bin/index", 20);
    assert!(page.contains("web says hello") && page.contains("visits=1"), "{page}");
    // The pod is on the bridge and its port in the firewall (what the last down must take away again).
    let during = host_state(&bridge, &table);
    assert!(!during.0.is_empty(), "no link of the pod on {bridge}");
    assert!(during.1.is_none() || during.1 != before.1, "no firewall rule for the published port");
    // What compose said is what runs.
    assert_eq!(d.ok(&["exec", "shop-web", "cat", "/etc/site.conf"]), "greeting=hello\n");
    assert_eq!(d.ok(&["exec", "shop-web", "sh", "-c", "echo $COLOR $GREETING"]), "blue hello\n");
    assert_eq!(d.inspect("shop-web", "{{.HostConfig.Memory}} {{json .HostConfig.CapDrop}}"), "67108864 [\"NET_RAW\"]");
    let healthy = d.eventually(30, || d.inspect("shop-db", "{{.State.Health.Status}}") == "healthy");
    assert!(healthy, "db: {}", d.inspect("shop-db", "{{json .State.Health}}"));
    // The named volume is the compose project's (so `compose up` and `kube play` share the data); the config's
    // ConfigMap is a volume of the pod.
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "shop_dbdata\nshop_shop-site");
    berth_ok_in(&d, &dir, &["kube", "down", f]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "shop_dbdata");
    berth_ok_in(&d, &dir, &["kube", "play", f]);
    let page = http_get_200(port, "/cgi-bin/index", 20);
    assert!(page.contains("visits=2"), "the data did not survive kube down + play: {page}");
    berth_ok_in(&d, &dir, &["kube", "down", "--force", f]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "containers left");
    assert!(pods(&d).is_empty(), "pods left: {:?}", pods(&d));
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "", "volumes left");
    assert_eq!(host_state(&bridge, &table), before, "links on the bridge or firewall rules left");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the port still answers");
}

/// A pod made with the pod API generates YAML that plays back into the same pod.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_pod_generates_and_plays_back() {
    let d = daemon_with_busybox();
    let port = free_port_in(20000..=29999);
    let body = serde_json::json!({"Name": "duo", "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]}});
    let (st, _, out) = api(&d, "POST", "/berth/pods/create", body.to_string().as_bytes());
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&out));
    for (name, cmd) in [
        ("duo-web", serde_json::json!(["sh", "-c", "echo pod-page > /tmp/index.html; exec httpd -f -p 80 -h /tmp"])),
        ("duo-side", serde_json::json!(["sleep", "300"])),
    ] {
        let body = serde_json::json!({"Image": "busybox", "Cmd": cmd, "Env": ["X=1"]});
        let (st, _, out) =
            api(&d, "POST", &format!("/containers/create?name={name}&pod=duo"), body.to_string().as_bytes());
        assert_eq!(st, 201, "{}", String::from_utf8_lossy(&out));
    }
    let (st, _, out) = api(&d, "POST", "/berth/pods/duo/start", b"");
    assert_eq!(st, 204, "{}", String::from_utf8_lossy(&out));
    assert_eq!(http_get_200(port, "/index.html", 20).trim(), "pod-page");
    let yaml = d.ok(&["kube", "generate", "duo"]);
    let dir = tempfile::tempdir().unwrap();
    assert_valid(dir.path(), "pod", &yaml);
    assert!(
        yaml.contains("  name: duo\n") && yaml.contains("  name: web\n") && yaml.contains("  name: side\n"),
        "{yaml}"
    );
    assert!(yaml.contains("- name: X\n"), "{yaml}");
    assert!(yaml.contains(&format!("hostPort: {port}")), "{yaml}");
    let (st, _, out) = api(&d, "DELETE", "/berth/pods/duo?force=1", b"");
    assert_eq!(st, 204, "{}", String::from_utf8_lossy(&out));
    let file = dir.path().join("duo.yaml");
    std::fs::write(&file, &yaml).unwrap();
    berth_ok_in(&d, dir.path(), &["kube", "play", file.to_str().unwrap()]);
    assert_eq!(http_get_200(port, "/index.html", 20).trim(), "pod-page");
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["duo-side", "duo-web"]);
    berth_ok_in(&d, dir.path(), &["kube", "down", file.to_str().unwrap()]);
    assert!(pods(&d).is_empty());
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

/// `--build` from a directory named like the image, a Job read from stdin, and an init container that fails: the
/// play stops naming it, and down removes what was created.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn play_builds_runs_a_job_from_stdin_and_stops_at_a_failed_init_container() {
    let d = daemon_with_busybox();
    let dir = d.dir.join("job");
    std::fs::create_dir_all(dir.join("kubeweb")).unwrap();
    std::fs::write(dir.join("kubeweb/Dockerfile"), "FROM busybox\nRUN echo built > /built\n").unwrap();
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: kubeweb:1\n        command: [cat, /built]\n";
    std::fs::write(dir.join("job.yaml"), job).unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", "--build", "job.yaml"]);
    assert!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("kubeweb:1"));
    let code = d.ok(&["wait", "once-pod-main"]);
    assert_eq!(code.trim(), "0");
    assert_eq!(d.ok(&["logs", "once-pod-main"]), "built\n");
    assert_eq!(d.inspect("once-pod-main", "{{.HostConfig.RestartPolicy.Name}}"), "no");
    berth_ok_in(&d, &dir, &["kube", "down", "job.yaml"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // --start=false creates without starting.
    berth_ok_in(&d, &dir, &["kube", "play", "--start=false", "job.yaml"]);
    assert_eq!(d.inspect("once-pod-main", "{{.State.Status}}"), "created");
    assert_eq!(pods(&d).len(), 1);
    berth_ok_in(&d, &dir, &["kube", "down", "job.yaml"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // From stdin, an init container that fails: the play removes what it made (the pod with its holder and
    // containers, the emptyDir volume) and shows the end of the container's output.
    let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  initContainers:\n  - name: fail\n    image: busybox\n    command: [sh, -c, 'echo boom-from-init; exit 3']\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, '300']\n  volumes: [{name: tmp, emptyDir: {}}]\n";
    let o = d.berth_input(&["kube", "play", "-"], bad.as_bytes());
    assert!(!o.status.success(), "a failed init container was accepted");
    assert!(stderr(&o).contains("init container bad-fail exited with 3"), "{}", stderr(&o));
    assert!(stderr(&o).contains("boom-from-init"), "{}", stderr(&o));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "the play left containers");
    assert!(pods(&d).is_empty(), "the play left its pod");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
}

/// Names are names: a pod whose ID starts with a container's name is not that container (`kube generate`), nor a
/// Pod document named like an ID prefix an existing pod (`kube play`); and `run/create --pod new:NAME` removes the
/// pod it made when the container is not made (a name in use, an image that cannot be pulled).
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn names_are_not_id_prefixes_and_a_failed_create_leaves_no_new_pod() {
    let d = daemon_with_busybox();
    let dir = d.dir.join("names");
    std::fs::create_dir_all(&dir).unwrap();
    let pod_id = d.ok(&["pod", "create", "--name", "holder"]).trim().to_string();
    assert_eq!(pod_id.len(), 64, "{pod_id}");
    let short = &pod_id[..8];
    d.ok(&["create", "--name", short, "busybox", "sleep", "300"]);
    let yaml = berth_ok_in(&d, &dir, &["kube", "generate", short]);
    assert!(yaml.contains(&format!("name: {short}-pod")), "the pod was taken for the container {short}:\n{yaml}");
    assert!(yaml.contains("image: busybox"), "{yaml}");
    d.ok(&["rm", "-f", short]);
    // A Pod named like a prefix of the existing pod's ID is a new pod.
    let longer = &pod_id[..10];
    let doc = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {longer}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '300']\n"
    );
    std::fs::write(dir.join("p.yaml"), &doc).unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", "p.yaml"]);
    assert_eq!(d.inspect(&format!("{longer}-c"), "{{.State.Status}}"), "running");
    berth_ok_in(&d, &dir, &["kube", "down", "p.yaml"]);
    let names = |d: &Berthd| pods(d).iter().map(|p| p["Name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&d), ["holder"]);
    // --pod new: with a container name in use, then with an image that cannot be pulled.
    d.ok(&["create", "--name", "taken", "busybox", "true"]);
    let o = d.berth(&["create", "--pod", "new:leak1", "--name", "taken", "busybox", "true"]);
    assert!(!o.status.success(), "a second container named taken was made");
    let o = d.berth(&["run", "-d", "--pod", "new:leak2", "127.0.0.1:1/nowhere:1", "true"]);
    assert!(!o.status.success(), "an image from nowhere ran");
    assert_eq!(names(&d), ["holder"], "a pod made for a container that was not made is left");
    // The path that works still keeps its pod.
    d.ok(&["create", "--pod", "new:kept", "--name", "member", "busybox", "true"]);
    let mut n = names(&d);
    n.sort();
    assert_eq!(n, ["holder", "kept"]);
}
