#![allow(clippy::unwrap_used)]

use serde_json::json;

use crate::generate::{self, Ctr, Health, Kind, Mount, Port, Source};
use crate::play::{self, Publish, SubPathMount};
use crate::*;

fn web() -> Ctr {
    Ctr {
        name: "web".into(),
        image: "busybox".into(),
        command: Some(vec!["sh".into(), "-c".into()]),
        args: Some(vec!["exec httpd -f -p 80".into()]),
        env: vec![("GREETING".into(), "hello".into())],
        working_dir: Some("/www".into()),
        user: Some("1000:1000".into()),
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["CAP_MKNOD".into()],
        read_only: true,
        memory: Some(64 << 20),
        nano_cpus: Some(500_000_000),
        health: Some(Health {
            test: vec!["CMD-SHELL".into(), "pidof httpd".into()],
            interval: Some(300_000_000),
            timeout: None,
            retries: Some(5),
            start_period: Some(2_000_000_000),
        }),
        restart: Some("unless-stopped".into()),
        labels: [("tier".to_string(), "front".to_string()), ("note".to_string(), "a b".to_string())].into(),
        ports: vec![Port {
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            host_port: Some(8080),
            published: true,
        }],
        mounts: vec![
            Mount { source: Source::Volume("shop_data".into()), target: "/data".into(), read_only: false },
            Mount { source: Source::Tmpfs, target: "/run/x".into(), read_only: false },
        ],
        aliases: vec!["web".into()],
        ..Ctr::default()
    }
}

#[test]
fn generate_a_pod_from_a_container() {
    let (docs, warnings) =
        generate::generate(&[web()], &generate::Options { name: "web-pod".into(), ..Default::default() }).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d.kind()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Pod"]);
    let pod = docs[1].to_value();
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["command"], json!(["sh", "-c"]));
    assert_eq!(c["args"], json!(["exec httpd -f -p 80"]));
    assert_eq!(c["env"], json!([{"name": "GREETING", "value": "hello"}]));
    assert_eq!(c["workingDir"], "/www");
    assert_eq!(c["securityContext"]["runAsUser"], 1000);
    assert_eq!(c["securityContext"]["runAsGroup"], 1000);
    assert_eq!(c["securityContext"]["capabilities"], json!({"add": ["NET_ADMIN"], "drop": ["MKNOD"]}));
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["resources"]["limits"], json!({"memory": "64Mi", "cpu": "500m"}));
    assert_eq!(c["livenessProbe"]["exec"]["command"], json!(["/bin/sh", "-c", "pidof httpd"]));
    assert_eq!(c["livenessProbe"]["periodSeconds"], 1);
    assert_eq!(c["livenessProbe"]["failureThreshold"], 5);
    assert_eq!(c["livenessProbe"]["initialDelaySeconds"], 2);
    assert_eq!(c["readinessProbe"], c["livenessProbe"]);
    assert_eq!(c["ports"], json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]));
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["metadata"]["labels"], json!({"app": "web-pod", "tier": "front"}));
    assert_eq!(pod["metadata"]["annotations"], json!({"note": "a b"}));
    let vols = &pod["spec"]["volumes"];
    assert!(vols.as_array().unwrap().iter().any(|v| v["persistentVolumeClaim"]["claimName"] == "shop-data"));
    assert!(vols.as_array().unwrap().iter().any(|v| v["emptyDir"]["medium"] == "Memory"));
    let pvc = docs[0].to_value();
    assert_eq!(pvc["metadata"]["annotations"][generate::ANNOTATION_VOLUME], "shop_data");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn generate_workloads_and_a_service() {
    for (kind, k, policy) in [
        (Kind::Deployment, "Deployment", "Always"),
        (Kind::StatefulSet, "StatefulSet", "Always"),
        (Kind::DaemonSet, "DaemonSet", "Always"),
        (Kind::Job, "Job", "OnFailure"),
    ] {
        let opts = generate::Options { name: "web".into(), kind, service: true, replicas: None };
        let (docs, warnings) = generate::generate(&[web()], &opts).unwrap();
        let w = docs.iter().find(|d| d.kind() == k).unwrap().to_value();
        assert_eq!(w["spec"]["template"]["spec"]["restartPolicy"], policy, "{k}");
        if kind != Kind::Job {
            assert_eq!(w["spec"]["selector"]["matchLabels"]["app"], "web");
        }
        let svc = docs.iter().find(|d| d.kind() == "Service").unwrap().to_value();
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        // 8080 is outside the NodePort range: it stays a hostPort, with a warning.
        assert!(svc["spec"]["ports"][0].get("nodePort").is_none());
        assert!(warnings.iter().any(|w| w.contains("outside the NodePort range")), "{warnings:?}");
    }
    let mut c = web();
    c.ports[0].host_port = Some(30080);
    let (docs, _) =
        generate::generate(&[c], &generate::Options { name: "web".into(), service: true, ..Default::default() })
            .unwrap();
    let svc = docs.iter().find(|d| d.kind() == "Service").unwrap().to_value();
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    let pod = docs.iter().find(|d| d.kind() == "Pod").unwrap().to_value();
    assert!(pod["spec"]["containers"][0]["ports"][0].get("hostPort").is_none());
}

#[test]
fn generate_warns_about_what_cannot_be_expressed() {
    let mut c = web();
    c.user = Some("app".into());
    c.privileged = true;
    c.network_mode = Some("mynet".into());
    c.pids_limit = Some(10);
    let (_, w) = generate::generate(&[c], &generate::Options { name: "x".into(), ..Default::default() }).unwrap();
    for needle in ["user \"app\"", "privileged", "network \"mynet\"", "pids limit"] {
        assert!(w.iter().any(|x| x.contains(needle)), "no warning about {needle}: {w:?}");
    }
}

#[test]
fn generate_from_an_inspection_leaves_out_what_the_image_gives() {
    let c = json!({
        "Id": "abcdef0123456789", "Name": "/db",
        "Config": {"Image": "busybox", "Hostname": "abcdef012345", "Entrypoint": null, "Cmd": ["sleep", "1"],
                   "Env": ["PATH=/bin", "A=1"], "WorkingDir": "", "User": "", "Labels": {"com.docker.compose.project": "x", "k": "v"},
                   "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}, "RestartPolicy": {"Name": "on-failure"},
                       "NetworkMode": "bridge", "Memory": 0},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}]}},
        "Mounts": [{"Type": "volume", "Name": "0123456789012345678901234567890123456789012345678901234567890123", "Destination": "/v", "RW": true}]
    });
    let image = json!({"Config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}});
    let x = generate::from_inspect(&c, Some(&image));
    assert_eq!(x.name, "db");
    assert_eq!(x.command, None);
    assert_eq!(x.args, Some(vec!["sleep".to_string(), "1".to_string()]));
    assert_eq!(x.env, vec![("A".to_string(), "1".to_string())]);
    assert_eq!(x.hostname, None);
    assert_eq!(x.labels.len(), 1);
    assert_eq!(x.restart.as_deref(), Some("on-failure"));
    assert_eq!(x.ports.len(), 2);
    assert_eq!(x.ports[0].host_port, Some(32768));
    assert_eq!(x.ports[1].protocol, "udp");
    assert_eq!(x.mounts[0].source, Source::Anonymous);
}

const PLAY: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data:
  index.html: "<h1>hi</h1>"
  MODE: prod
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data:
  password: aHVudGVyMg==
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - name: prepare
          image: busybox
          command: [sh, -c, "echo ready > /data/ready"]
          volumeMounts: [{name: data, mountPath: /data}]
      containers:
        - name: httpd
          image: busybox
          command: [httpd, -f, -p, "80", -h, /www]
          env:
            - {name: PORT, value: 80}
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: creds, key: password}}
          envFrom: [{configMapRef: {name: site}, prefix: SITE_}]
          ports: [{containerPort: 80, name: http}]
          livenessProbe:
            httpGet: {path: /, port: http}
            periodSeconds: 2
          resources: {limits: {memory: 32Mi, cpu: 250m}}
          securityContext: {runAsUser: 1000, capabilities: {drop: [ALL]}}
          volumeMounts:
            - {name: site, mountPath: /www}
            - {name: data, mountPath: /data}
            - {name: scratch, mountPath: /tmp/scratch}
      volumes:
        - {name: site, configMap: {name: site, items: [{key: index.html, path: index.html}]}}
        - {name: data, persistentVolumeClaim: {claimName: data}}
        - {name: scratch, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
"#;

#[test]
fn play_plans_a_deployment_with_its_service_configmap_secret_and_claim() {
    let docs = parse(PLAY).unwrap();
    assert_eq!(docs.len(), 5);
    let plan = play::plan(&docs, &play::Options::default()).unwrap();
    assert_eq!(plan.volumes.len(), 1);
    assert_eq!(plan.volumes[0].name, "data");
    assert_eq!(plan.volumes[0].body["Labels"][play::LABEL_CLAIM], "data");
    assert_eq!(plan.pods.len(), 1);
    let p = &plan.pods[0];
    assert_eq!(p.name, "web-pod");
    assert_eq!(p.document, "Deployment/web");
    assert_eq!(p.body["PortBindings"]["80/tcp"], json!([{"HostIp": "", "HostPort": "30080"}]));
    assert_eq!(p.body["Labels"][play::LABEL_DOCUMENT], "Deployment/web");
    assert_eq!(p.volumes[0].name, "web-pod_scratch");
    assert_eq!(p.init.len(), 1);
    assert_eq!(p.init[0].name, "web-pod-prepare");
    assert_eq!(p.init[0].body["HostConfig"]["RestartPolicy"]["Name"], "no");
    let c = &p.containers[0];
    assert_eq!(c.name, "web-pod-httpd");
    assert_eq!(c.body["Entrypoint"], json!(["httpd", "-f", "-p", "80", "-h", "/www"]));
    let env: Vec<&str> = c.body["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(env, ["SITE_MODE=prod", "SITE_index.html=<h1>hi</h1>", "PORT=80", "PASSWORD=hunter2"]);
    assert_eq!(c.body["User"], "1000");
    assert_eq!(c.body["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(c.body["HostConfig"]["NanoCpus"], 250_000_000);
    assert_eq!(c.body["HostConfig"]["CapDrop"], json!(["ALL"]));
    assert_eq!(c.body["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert_eq!(c.body["Healthcheck"]["Interval"], 2_000_000_000i64);
    assert!(c.body["Healthcheck"]["Test"][1].as_str().unwrap().contains("http://127.0.0.1:80/"));
    let mounts = c.body["HostConfig"]["Mounts"].as_array().unwrap();
    assert_eq!(mounts[1], json!({"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": false}));
    assert_eq!(mounts[2]["Source"], "web-pod_scratch");
    // The ConfigMap: a volume of the pod with its files, mounted read-only, never filled from the image.
    assert_eq!(
        mounts[0],
        json!({"Type": "volume", "Source": "web-pod_site", "Target": "/www", "ReadOnly": true, "VolumeOptions": {"NoCopy": true}})
    );
    assert!(c.sub_paths.is_empty());
    assert_eq!(p.files.len(), 1);
    let f = &p.files[0];
    assert_eq!(f.volume.name, "web-pod_site");
    assert_eq!(f.volume.body["Labels"][play::LABEL_FILES], "web-pod");
    assert_eq!(f.volume.body["Labels"][play::LABEL_DOCUMENT], "Deployment/web");
    assert_eq!(f.files.len(), 1);
    assert_eq!((f.files[0].path.as_str(), f.files[0].mode), ("index.html", 0o644));
    assert_eq!(f.files[0].content, b"<h1>hi</h1>");
    assert_eq!(plan.images(), ["busybox"]);
    let t = play::teardown(&docs);
    assert_eq!(t.documents, ["Deployment/web"]);
    assert_eq!(t.claims, ["data"]);
}

#[test]
fn play_publish_replaces_the_node_port_and_replicas_make_pods() {
    let docs = parse(&PLAY.replace("replicas: 1", "replicas: 3")).unwrap();
    let opts = play::Options { publish: vec!["127.0.0.1:8080:80".parse().unwrap()] };
    let plan = play::plan(&docs, &opts).unwrap();
    let names: Vec<&str> = plan.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-pod-0", "web-pod-1", "web-pod-2"]);
    assert_eq!(plan.pods[0].body["PortBindings"]["80/tcp"], json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}]));
    assert_eq!(plan.pods[1].body["PortBindings"], json!({}));
    assert_eq!(
        "8080:80/udp".parse::<Publish>().unwrap(),
        Publish { host_ip: "".into(), host_port: "8080".into(), container_port: 80, protocol: "udp".into() }
    );
    assert!("x:80".parse::<Publish>().is_err());
}

fn err(text: &str) -> String {
    match parse(text).and_then(|d| play::plan(&d, &play::Options::default())) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn play_errors_name_the_document_and_the_field() {
    let pod = |extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n{extra}"
        )
    };
    assert_eq!(
        err(&pod("    lifecycle: {}\n")),
        "document 0 (Pod/p): spec.containers[0].lifecycle: unknown field `lifecycle` (not supported by berth)"
    );
    assert_eq!(
        err(&format!("---\n---\n{}", pod("    volumeMounts: [{name: nope, mountPath: /x}]\n"))),
        "document 1 (Pod/p): spec.containers[0].volumeMounts[0].name: no volume \"nope\" in the pod"
    );
    assert!(
        err("apiVersion: v1\nkind: Ingress\nmetadata: {name: i}\n")
            .starts_with("document 0 (Ingress/i): kind: Ingress is not supported")
    );
    assert_eq!(
        err("apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: d}\n"),
        "document 0 (Deployment/d): apiVersion: \"apps/v2\" is not supported for Deployment (expected apps/v1)"
    );
    assert!(
        err(&pod("    env: [{name: A, valueFrom: {configMapKeyRef: {name: m, key: k}}}]\n"))
            .contains("spec.containers[0].env[0].valueFrom.configMapKeyRef: key \"k\" of \"m\" is not in the file")
    );
    assert!(err(&pod("  hostPID: true\n")).contains("hostPID"));
    assert!(err(&pod("    ports: [{containerPort: 80, hostPort: 8080}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{containerPort: 81, hostPort: 8080}]\n")).contains("host port 8080/tcp of pod q is published by pod p too"));
    assert!(err("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{containerPort: 80}]\n  - name: c\n    image: busybox\n").contains("spec.containers[1].name: \"c\" used twice"));
}

#[test]
fn generated_documents_play_back() {
    let mut db = web();
    db.name = "db".into();
    db.ports[0].container_port = 5432;
    db.ports[0].host_port = None;
    db.ports[0].published = false;
    db.aliases = vec!["db".into(), "database".into()];
    let (docs, _) =
        generate::generate(&[web(), db], &generate::Options { name: "shop".into(), ..Default::default() }).unwrap();
    let text = render(&docs).unwrap();
    let back = parse(&text).unwrap();
    assert_eq!(back.iter().map(|d| d.object.clone()).collect::<Vec<_>>(), docs);
    let plan = play::plan(&back, &play::Options::default()).unwrap();
    let p = &plan.pods[0];
    assert_eq!(p.name, "shop");
    assert_eq!(p.body["ExtraHosts"], json!(["database:127.0.0.1", "db:127.0.0.1", "web:127.0.0.1"]));
    assert_eq!(p.body["PortBindings"]["80/tcp"], json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}]));
    // The claim's volume is the original engine volume (its data moves along).
    assert_eq!(plan.volumes[0].name, "shop_data");
    assert_eq!(p.containers[0].body["HostConfig"]["Mounts"][0]["Source"], "shop_data");
    assert_eq!(p.containers[1].body["User"], "1000:1000");
    assert_eq!(p.containers[1].body["Healthcheck"]["Test"], json!(["CMD", "/bin/sh", "-c", "pidof httpd"]));
}

#[test]
fn names_and_base64() {
    assert_eq!(dns_label("Shop_Data.v1"), "shop-data-v1");
    assert_eq!(dns_label("__"), "x");
    assert_eq!(generate::decode_base64(&generate::encode_base64(b"hunter2")).unwrap(), b"hunter2");
}

/// What `kubectl create deployment --dry-run=client -o yaml` writes plays as it is.
#[test]
fn kubectl_output_plays() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: null\n  labels:\n    app: web\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  strategy: {}\n  template:\n    metadata:\n      creationTimestamp: null\n      labels:\n        app: web\n    spec:\n      containers:\n      - image: busybox\n        name: busybox\n        resources: {}\nstatus: {}\n";
    let plan = play::plan(&parse(text).unwrap(), &play::Options::default()).unwrap();
    let names: Vec<&str> = plan.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-pod-0", "web-pod-1"]);
    assert_eq!(plan.pods[1].containers[0].name, "web-pod-1-busybox");
    // A StatefulSet's pods keep Kubernetes' names; a DaemonSet is one pod.
    let sts = text.replace("kind: Deployment", "kind: StatefulSet").replace("  strategy: {}\n", "  serviceName: web\n");
    let plan = play::plan(&parse(&sts).unwrap(), &play::Options::default()).unwrap();
    assert_eq!(plan.pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["web-0", "web-1"]);
    let ds = text
        .replace("kind: Deployment", "kind: DaemonSet")
        .replace("  replicas: 2\n", "")
        .replace("  strategy: {}\n", "");
    let plan = play::plan(&parse(&ds).unwrap(), &play::Options::default()).unwrap();
    assert_eq!(plan.pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["web-pod"]);
    // A selector that does not match the template is refused.
    let bad = text.replace("      labels:\n        app: web\n", "      labels:\n        app: other\n");
    let e = play::plan(&parse(&bad).unwrap(), &play::Options::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        "document 0 (Deployment/web): spec.selector.matchLabels: app=web does not match the template's labels"
    );
}

/// ConfigMap and Secret volumes: `items` (key → path, nested paths), modes (`items[].mode` over `defaultMode` over
/// 0644), `optional` sources and keys, `subPath` as a bind of one entry, and what Kubernetes refuses.
#[test]
fn play_plans_configmap_and_secret_volumes() {
    let pod = |vols: &str, mounts: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {{readOnlyRootFilesystem: true}}\n    volumeMounts: [{mounts}]\n  volumes: [{vols}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: m}}\ndata: {{a: x, b: y}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{k: v}}\n"
        )
    };
    let plan_of = |text: &str| play::plan(&parse(text).unwrap(), &play::Options::default()).unwrap();
    let text = pod(
        "{name: cm, configMap: {name: m, defaultMode: 0440, items: [{key: a, path: conf/a.conf}, {key: b, path: b, mode: 0600}]}}, {name: sec, secret: {secretName: s}}, {name: none, configMap: {name: absent, optional: true}}",
        "{name: cm, mountPath: /etc/app}, {name: cm, mountPath: /etc/a.conf, subPath: conf/a.conf}, {name: sec, mountPath: /run/s, readOnly: false}, {name: none, mountPath: /opt/none}",
    );
    let plan = plan_of(&text);
    let p = &plan.pods[0];
    let files: Vec<(&str, Vec<(&str, u32)>)> = p
        .files
        .iter()
        .map(|f| (f.volume.name.as_str(), f.files.iter().map(|x| (x.path.as_str(), x.mode)).collect()))
        .collect();
    assert_eq!(
        files,
        [("p_cm", vec![("conf/a.conf", 0o440), ("b", 0o600)]), ("p_sec", vec![("k", 0o644)]), ("p_none", vec![])]
    );
    let c = &p.containers[0];
    let mounts = c.body["HostConfig"]["Mounts"].as_array().unwrap();
    let targets: Vec<(&str, &str, bool)> = mounts
        .iter()
        .map(|m| (m["Source"].as_str().unwrap(), m["Target"].as_str().unwrap(), m["ReadOnly"].as_bool().unwrap()))
        .collect();
    // Read-only whatever readOnly says; an optional ConfigMap that is not there is an empty volume.
    assert_eq!(targets, [("p_cm", "/etc/app", true), ("p_sec", "/run/s", true), ("p_none", "/opt/none", true)]);
    assert_eq!(
        c.sub_paths,
        [SubPathMount { volume: "p_cm".into(), path: "conf/a.conf".into(), target: "/etc/a.conf".into() }]
    );
    // A directory of items paths is a subPath too.
    let text =
        pod("{name: cm, configMap: {name: m, items: [{key: a, path: d/a}]}}", "{name: cm, mountPath: /d, subPath: d}");
    assert_eq!(plan_of(&text).pods[0].containers[0].sub_paths[0].path, "d");
    // Optional keys are left out; required ones must be there.
    let text = pod(
        "{name: cm, configMap: {name: m, optional: true, items: [{key: zz, path: z}, {key: a, path: a}]}}",
        "{name: cm, mountPath: /x}",
    );
    assert_eq!(plan_of(&text).pods[0].files[0].files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["a"]);
    let text = pod("{name: cm, configMap: {name: m, items: [{key: zz, path: z}]}}", "{name: cm, mountPath: /x}");
    assert_eq!(
        err(&text),
        "document 0 (Pod/p): spec.volumes[0].configMap.items[0].key: ConfigMap \"m\" has no key \"zz\""
    );
    assert_eq!(
        err(&pod("{name: s, secret: {secretName: nope}}", "{name: s, mountPath: /x}")),
        "document 0 (Pod/p): spec.volumes[0].secret.secretName: Secret \"nope\" is not in the file"
    );
    for (bad, what) in [
        ("items: [{key: a, path: /abs}]", "must be a relative path"),
        ("items: [{key: a, path: x/../y}]", "must be a relative path"),
        ("items: [{key: a, path: ..x}]", "must be a relative path"),
        ("items: [{key: a, path: x}, {key: b, path: x}]", "given twice"),
        ("items: [{key: a, path: x}, {key: b, path: x/y}]", "is a file and the directory of"),
        ("defaultMode: 04755", "is not a file mode"),
        ("items: [{key: a, path: x, mode: 01777}]", "is not a file mode"),
    ] {
        let text = pod(&format!("{{name: cm, configMap: {{name: m, {bad}}}}}"), "{name: cm, mountPath: /x}");
        assert!(err(&text).contains(what), "{bad}: {}", err(&text));
    }
    let text = pod("{name: cm, configMap: {name: m}}", "{name: cm, mountPath: /x, subPath: c}");
    assert!(err(&text).contains("volumeMounts[0].subPath: volume \"cm\" has no file or directory \"c\""));
}

/// Refused before anything is created: what berthd cannot mount, and keys Kubernetes refuses.
#[test]
fn play_refuses_subpaths_of_volumes_and_bad_keys() {
    let pod = |vol: &str, mount: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts: [{mount}]\n{extra}  volumes: [{vol}]\n"
        )
    };
    let m = "{name: v, mountPath: /x, subPath: a}";
    assert!(
        err(&pod("{name: v, emptyDir: {}}", m, ""))
            .contains("spec.containers[0].volumeMounts[0].subPath: not run on a persistentVolumeClaim or emptyDir")
    );
    assert!(err(&pod("{name: v, persistentVolumeClaim: {claimName: d}}", m, "")).contains("volumeMounts[0].subPath"));
    // A hostPath's subPath is a path under it.
    let ok = parse(&pod("{name: v, hostPath: {path: /srv}}", m, "")).unwrap();
    let plan = play::plan(&ok, &play::Options::default()).unwrap();
    assert_eq!(plan.pods[0].containers[0].body["HostConfig"]["Mounts"][0]["Source"], "/srv/a");
    // Keys: Kubernetes' pattern; no directories.
    for bad in ["a/b", "..", ".", "a b", "\"\""] {
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: m}}\ndata: {{{bad}: x}}\n");
        assert!(err(&text).contains("not a valid key"), "{bad}: {}", err(&text));
        let text = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{{bad}: x}}\n");
        assert!(err(&text).contains("stringData."), "{bad}");
    }
    for good in ["a.b", "_x-1", "..a"] {
        assert!(valid_data_key(good), "{good}");
    }
}

/// Probe URLs and hosts are one shell word whatever they hold.
#[test]
fn probe_commands_quote_their_urls() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    livenessProbe: {httpGet: {path: \"/it's;x\", port: 80}}\n    readinessProbe: {tcpSocket: {host: \"a b\", port: 81}}\n";
    let plan = play::plan(&parse(text).unwrap(), &play::Options::default()).unwrap();
    let test = &plan.pods[0].containers[0].body["Healthcheck"]["Test"];
    assert_eq!(
        test[1],
        "wget -q -O /dev/null 'http://127.0.0.1:80/it'\\''s;x' || curl -fsS -o /dev/null 'http://127.0.0.1:80/it'\\''s;x'"
    );
    let text = text.replace("livenessProbe: {httpGet: {path: \"/it's;x\", port: 80}}\n    ", "");
    let plan = play::plan(&parse(&text).unwrap(), &play::Options::default()).unwrap();
    assert_eq!(plan.pods[0].containers[0].body["Healthcheck"]["Test"][1], "nc -z 'a b' 81 </dev/null");
}

/// Mounts whose names map to one DNS label get volumes of their own.
#[test]
fn generate_suffixes_volume_names_that_collide() {
    let mut c = web();
    let long = format!("/{}", "d".repeat(70));
    c.mounts = vec![
        Mount { source: Source::Bind("/data/x".into()), target: "/a".into(), read_only: false },
        Mount { source: Source::Bind("/data-x".into()), target: "/b".into(), read_only: false },
        Mount { source: Source::Bind("/data/x".into()), target: "/c".into(), read_only: true },
        Mount { source: Source::Bind(format!("{long}1")), target: "/d".into(), read_only: false },
        Mount { source: Source::Bind(format!("{long}2")), target: "/e".into(), read_only: false },
    ];
    let (docs, _) = generate::generate(&[c], &generate::Options { name: "p".into(), ..Default::default() }).unwrap();
    let pod = docs.iter().find(|d| d.kind() == "Pod").unwrap().to_value();
    let vols = pod["spec"]["volumes"].as_array().unwrap();
    let path_of = |name: &str| {
        vols.iter().find(|v| v["name"] == name).map(|v| v["hostPath"]["path"].as_str().unwrap().to_string()).unwrap()
    };
    let mounts = pod["spec"]["containers"][0]["volumeMounts"].as_array().unwrap();
    let by_target = |t: &str| mounts.iter().find(|m| m["mountPath"] == t).unwrap()["name"].as_str().unwrap();
    assert_eq!(path_of(by_target("/a")), "/data/x");
    assert_eq!(path_of(by_target("/b")), "/data-x");
    assert_eq!(by_target("/c"), by_target("/a"), "the same host path is one volume");
    assert_eq!(path_of(by_target("/d")), format!("{long}1"));
    assert_eq!(path_of(by_target("/e")), format!("{long}2"));
    assert_eq!(vols.len(), 4);
    assert!(vols.iter().all(|v| v["name"].as_str().unwrap().len() <= 63));
    // And the result plays back with each mount on its own source.
    let plan = play::plan(&parse(&render(&docs).unwrap()).unwrap(), &play::Options::default()).unwrap();
    let m = plan.pods[0].containers[0].body["HostConfig"]["Mounts"].as_array().unwrap().clone();
    assert_eq!(m.iter().find(|x| x["Target"] == "/b").unwrap()["Source"], "/data-x");
}
