//! What real clients trip on (issue 15, the API's odds and ends), through the docker CLI, docker-py (Debian's
//! `/usr/bin/python3`) and raw requests: the swarm/plugin endpoints of a Docker outside any swarm, `ps` filters,
//! tags and `ps` ports, `images/load` errors, prunes (API versions, what they report, their events), and networks'
//! names, auxiliary addresses, driver options and link-local addresses.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use berth_integration::*;
use serde_json::Value;

/// `docker ARGS` that must fail; its stderr.
fn docker_err(d: &Berthd, args: &[&str]) -> String {
    let out = d.docker(args).unwrap();
    assert!(!out.status.success(), "docker {args:?} should fail: {}", stdout(&out));
    stderr(&out)
}

/// Runs a docker-py script against `d`; its stdout.
fn py(d: &Berthd, python: &str, script: &str) -> String {
    let out = Command::new(python).args(["-c", script]).env("DOCKER_HOST", d.host()).output().unwrap();
    assert!(out.status.success(), "docker-py failed: {}\n{}", stderr(&out), tail(&d.log(), 30));
    stdout(&out).trim().to_string()
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to \
                             connect this node to swarm and try again.";

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn swarm_and_plugin_endpoints_answer_as_docker_outside_a_swarm() {
    let Some(d) = docker_cli_daemon() else { return };
    // Status and message of each, as a Docker 20.10 outside any swarm answers them (compared by hand with dockerd
    // 20.10.24).
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("GET", "/swarm", "", 503, NOT_A_MANAGER),
        ("GET", "/v1.41/swarm/unlockkey", "", 503, NOT_A_MANAGER),
        ("POST", "/swarm/leave?force=1", "", 503, "This node is not part of a swarm"),
        ("POST", "/swarm/unlock", "{}", 503, NOT_A_MANAGER),
        ("POST", "/swarm/unlock", "", 400, "got EOF while reading request body"),
        ("POST", "/swarm/join", "{}", 400, "invalid ListenAddr \"\": invalid empty address"),
        ("POST", "/swarm/join", r#"{"ListenAddr":"0.0.0.0:2377"}"#, 400, "at least 1 RemoteAddr is required to join"),
        (
            "POST",
            "/swarm/init",
            r#"{"ListenAddr":"0.0.0.0:2377","Spec":{"Name":"x"}}"#,
            400,
            "swarm spec must be named \"default\"",
        ),
        (
            "POST",
            "/swarm/update",
            "{}",
            400,
            "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax",
        ),
        ("POST", "/swarm/update?version=1", "{}", 503, NOT_A_MANAGER),
        ("GET", "/services", "", 503, NOT_A_MANAGER),
        ("GET", "/services/x", "", 503, NOT_A_MANAGER),
        ("POST", "/services/create", "", 400, "got EOF while reading request body"),
        ("POST", "/services/create", "{}", 503, NOT_A_MANAGER),
        (
            "POST",
            "/services/x/update",
            "{}",
            400,
            "invalid service version '': strconv.ParseUint: parsing \"\": invalid syntax",
        ),
        ("GET", "/services/x/logs", "", 400, "Bad parameters: you must choose at least one stream"),
        ("GET", "/services/x/logs?stdout=1", "", 503, NOT_A_MANAGER),
        ("GET", "/nodes", "", 503, NOT_A_MANAGER),
        ("DELETE", "/nodes/x", "", 503, NOT_A_MANAGER),
        ("GET", "/tasks", "", 503, NOT_A_MANAGER),
        ("GET", "/tasks/x", "", 503, NOT_A_MANAGER),
        ("GET", "/secrets", "", 503, NOT_A_MANAGER),
        ("DELETE", "/secrets/x", "", 503, NOT_A_MANAGER),
        ("POST", "/configs/create", "{}", 503, NOT_A_MANAGER),
        ("GET", "/configs/x", "", 503, NOT_A_MANAGER),
        ("GET", "/plugins/foo/json", "", 404, "plugin \"foo\" not found"),
        ("GET", "/plugins/vieux/sshfs:latest/json", "", 404, "plugin \"vieux/sshfs:latest\" not found"),
        ("DELETE", "/plugins/foo/bar:1", "", 404, "plugin \"foo/bar:1\" not found"),
        ("POST", "/plugins/foo/enable", "", 404, "plugin \"foo\" not found"),
        ("GET", "/plugins?filters=%7B%22x%22%3A%5B%221%22%5D%7D", "", 400, "invalid filter 'x'"),
        ("GET", "/plugins?filters=%7B%22enabled%22%3A%5B%221%22%5D%7D", "", 400, "invalid filter 'enabled=[1]'"),
    ];
    for (method, path, body, status, message) in cases {
        let (got, _, out) = api(&d, method, path, body.as_bytes());
        assert_eq!(
            (got, json_of(&out)["message"].as_str().unwrap().to_string()),
            (*status, message.to_string()),
            "{method} {path}"
        );
    }
    let (status, _, out) = api(&d, "GET", "/plugins", b"");
    assert_eq!((status, json_of(&out)), (200, serde_json::json!([])));

    // The docker CLI.
    assert!(docker_err(&d, &["node", "ls"]).contains(NOT_A_MANAGER));
    assert!(docker_err(&d, &["service", "ls"]).contains(NOT_A_MANAGER));
    assert!(docker_err(&d, &["secret", "ls"]).contains(NOT_A_MANAGER));
    assert!(docker_err(&d, &["swarm", "leave"]).contains("This node is not part of a swarm"));
    assert!(docker_err(&d, &["plugin", "inspect", "foo"]).contains("plugin \"foo\" not found"));
    assert_eq!(docker_value(&d, &["plugin", "ls", "-q"]), "");
    assert_eq!(
        docker_value(&d, &["info", "-f", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]),
        "inactive false"
    );

    // docker-py: its test teardown leaves the swarm with force (a 503 counts as done), and inspecting raises 503.
    let Some(python) = docker_py() else { return };
    let out = py(
        &d,
        python,
        "import docker\n\
         c = docker.from_env(version='1.41')\n\
         print(c.api.leave_swarm(force=True))\n\
         try:\n    c.api.inspect_swarm()\nexcept docker.errors.APIError as e:\n    print(e.status_code)\n\
         print(c.plugins.list())",
    );
    assert_eq!(out, "True\n503\n[]");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn ps_filters_as_docker() {
    let Some(d) = docker_cli_daemon() else { return };
    // A descendant image of busybox (one more layer), for `ancestor`.
    let ctx = d.dir.join("child-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN touch /child\n").unwrap();
    docker_value(&d, &["build", "-q", "-t", "child", ctx.to_str().unwrap()]);
    docker_value(&d, &["network", "create", "pf-net"]);
    docker_value(&d, &["volume", "create", "pf-vol"]);
    let web = docker_value(
        &d,
        &["run", "-d", "--name", "pf-web", "-p", "127.0.0.1:18081:80", "--expose", "90", "busybox", "sleep", "300"],
    );
    let db = docker_value(
        &d,
        &["run", "-d", "--name", "pf-db", "--network", "pf-net", "-v", "pf-vol:/data", "child", "sleep", "300"],
    );
    let out = d.docker(&["run", "--name", "pf-done", "busybox", "sh", "-c", "exit 3"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    docker_value(&d, &["create", "--name", "pf-new", "busybox", "true"]);
    let ps = |filters: &[&str]| -> Vec<String> {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let mut v: Vec<String> = docker_value(&d, &args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // `name`: a regular expression over the name with and without its slash.
    assert_eq!(ps(&["name=^/pf-web$"]), names(&["pf-web"]));
    assert_eq!(ps(&["name=^pf-d"]), names(&["pf-db", "pf-done"]));
    assert_eq!(ps(&["name=web", "name=^/pf-db"]), names(&["pf-db", "pf-web"]));
    // `id`: a prefix.
    assert_eq!(ps(&[&format!("id={}", &web[..10])]), names(&["pf-web"]));
    assert!(ps(&[&format!("id={}", &web[2..12])]).is_empty());
    // `ancestor`: by name, name:tag and ID, and images built on it.
    let bb_id = docker_value(&d, &["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(ps(&["ancestor=busybox"]), names(&["pf-db", "pf-done", "pf-new", "pf-web"]));
    assert_eq!(ps(&[&format!("ancestor={}", &bb_id[7..19])]), names(&["pf-db", "pf-done", "pf-new", "pf-web"]));
    assert_eq!(ps(&["ancestor=child:latest"]), names(&["pf-db"]));
    assert!(ps(&["ancestor=no-such-image"]).is_empty());
    // `volume` by name or destination, `network` by name or ID prefix.
    assert_eq!(ps(&["volume=pf-vol"]), names(&["pf-db"]));
    assert_eq!(ps(&["volume=/data"]), names(&["pf-db"]));
    let net_id = docker_value(&d, &["network", "inspect", "-f", "{{.Id}}", "pf-net"]);
    assert_eq!(ps(&[&format!("network={}", &net_id[..8])]), names(&["pf-db"]));
    assert_eq!(ps(&["network=pf-net"]), names(&["pf-db"]));
    // `publish` by host port, `expose` by container port, ranges and protocols.
    assert_eq!(ps(&["publish=18081"]), names(&["pf-web"]));
    assert_eq!(ps(&["publish=18000-18100/tcp"]), names(&["pf-web"]));
    assert!(ps(&["publish=18081/udp"]).is_empty() && ps(&["publish=80"]).is_empty());
    assert_eq!(ps(&["expose=80-90", "status=running"]), names(&["pf-web"]));
    // `before`/`since`, `exited` (which does not list stopped containers without -a), `status`, `is-task`,
    // `isolation`, `health`.
    assert_eq!(ps(&["before=pf-db"]), names(&["pf-web"]));
    assert_eq!(ps(&["since=pf-done"]), names(&["pf-new"]));
    assert_eq!(ps(&["exited=3"]), names(&["pf-done"]));
    assert_eq!(docker_value(&d, &["ps", "-q", "--filter", "exited=3"]), "");
    assert_eq!(ps(&["status=created"]), names(&["pf-new"]));
    assert_eq!(ps(&["is-task=true"]), Vec::<String>::new());
    assert_eq!(ps(&["is-task=false", "isolation=default", "health=none", "name=pf-web"]), names(&["pf-web"]));
    // Bad values: Docker's messages, as 400s.
    for (filter, message) in [
        ("is-task=1", "invalid filter 'is-task=[1]'"),
        ("exited=x", "strconv.Atoi: parsing \"x\": invalid syntax"),
        ("publish=80:80", "filter for 'publish' should not contain ':': 80:80"),
        ("expose=x", "error while looking up for expose x: strconv.ParseUint: parsing \"x\": invalid syntax"),
        ("status=sleeping", "invalid filter 'status=sleeping'"),
        ("health=meh", "Unrecognised filter value for health: meh"),
        ("bogus=1", "invalid filter 'bogus'"),
    ] {
        assert!(docker_err(&d, &["ps", "-a", "--filter", filter]).contains(message), "{filter}");
        let q = format!(
            "/containers/json?all=1&filters={}",
            percent(&format!(
                r#"{{"{}":["{}"]}}"#,
                filter.split_once('=').unwrap().0,
                filter.split_once('=').unwrap().1
            ))
        );
        assert_eq!(api(&d, "GET", &q, b"").0, 400, "{filter}");
    }
    assert!(docker_err(&d, &["ps", "--filter", "before=ghost"]).contains("ghost"));
    docker_value(&d, &["rm", "-f", "pf-web", "pf-db", "pf-done", "pf-new"]);
    let _ = db;
}

/// Percent-encodes a query value.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn tags_image_list_and_ps_ports() {
    let Some(d) = docker_cli_daemon() else { return };
    // An upper-case first component is a repository name, which must be lower case (Docker 20.10).
    let err = docker_err(&d, &["tag", "busybox", "UPPER/case:1"]);
    assert!(err.contains("invalid reference format: repository name must be lowercase"), "{err}");
    assert!(docker_err(&d, &["tag", "busybox", "Upper:1"]).contains("must be lowercase"));
    assert!(!docker_value(&d, &["images", "--format", "{{.Repository}}"]).to_lowercase().contains("upper"));
    docker_value(&d, &["tag", "busybox", "localhost:5000/x:1"]);
    // One image with two tags: one entry in the API list (RepoTags), one line of `berth images -q`.
    docker_value(&d, &["tag", "busybox", "bb2:1"]);
    let (_, _, out) = api(&d, "GET", "/images/json", b"");
    let list = json_of(&out);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["RepoTags"].as_array().unwrap().len(), 3, "{list}");
    let ids = d.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 1, "{ids}");
    // EXPOSE in the image and the same port published: listed once, running or exited.
    let ctx = d.dir.join("expose-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nEXPOSE 8000\n").unwrap();
    docker_value(&d, &["build", "-q", "-t", "exposer", ctx.to_str().unwrap()]);
    docker_value(&d, &["run", "-d", "--name", "pp", "-p", "127.0.0.1:18082:8000", "exposer", "sleep", "300"]);
    assert_eq!(docker_value(&d, &["ps", "--format", "{{.Ports}}", "--filter", "name=pp"]), "127.0.0.1:18082->8000/tcp");
    assert_eq!(docker_value(&d, &["inspect", "-f", "{{json .Config.ExposedPorts}}", "pp"]), r#"{"8000/tcp":{}}"#);
    docker_value(&d, &["stop", "-t", "0", "pp"]);
    assert_eq!(docker_value(&d, &["ps", "-a", "--format", "{{.Ports}}", "--filter", "name=pp"]), "8000/tcp");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn load_errors_prunes_and_their_events() {
    let Some(d) = docker_cli_daemon() else { return };
    // An invalid archive: 200, the error in the stream (every version, quiet or not).
    for path in ["/v1.41/images/load", "/v1.41/images/load?quiet=1", "/images/load?quiet=0"] {
        let (status, _, out) = api(&d, "POST", path, b"not a tar at all");
        let text = String::from_utf8_lossy(&out).into_owned();
        let last: Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        assert!(last["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {text}");
        assert_eq!(last["errorDetail"]["message"], last["error"], "{path}: {text}");
    }
    let junk = d.dir.join("junk.tar");
    std::fs::write(&junk, b"not a tar at all").unwrap();
    assert!(!d.docker(&["load", "-i", junk.to_str().unwrap()]).unwrap().status.success());

    // Image prune reports what went: two images sharing one layer free it once (the old sum counted it twice).
    let ctx = d.dir.join("big-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=4\n").unwrap();
    docker_value(&d, &["build", "-q", "-t", "big:1", ctx.to_str().unwrap()]);
    std::fs::write(ctx.join("Dockerfile"), "FROM big:1\nLABEL second=yes\n").unwrap();
    docker_value(&d, &["build", "-q", "-t", "big:2", ctx.to_str().unwrap()]);
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let layers = |d: &Berthd| json_of(&api(d, "GET", "/system/df", b"").2)["LayersSize"].as_u64().unwrap();
    let before = layers(&d);
    let (status, _, out) = api(&d, "POST", "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D", b"");
    let pruned = json_of(&out);
    assert_eq!(status, 200, "{pruned}");
    let reclaimed = pruned["SpaceReclaimed"].as_u64().unwrap();
    // The build cache still holds the built layers (and busybox's below them): what the images' prune freed, plus
    // what the cache's prune frees, is every layer once (the sum of the images' sizes counted busybox's layer three
    // times and the 4 MiB one twice).
    let after_images = layers(&d);
    assert_eq!(reclaimed, before - after_images, "{pruned}");
    let (_, _, out) = api(&d, "POST", "/build/prune?all=1", b"");
    let cache = json_of(&out);
    assert_eq!(layers(&d), 0, "{cache}");
    assert_eq!(reclaimed + cache["SpaceReclaimed"].as_u64().unwrap(), before, "{pruned} {cache}");
    assert!(before >= 4 << 20);
    assert_eq!(docker_value(&d, &["images", "-q"]), "");

    // Volume prune: before API 1.42 named volumes go too; from 1.42 only anonymous ones unless all=true.
    for name in ["pv-old", "pv-new", "pv-all"] {
        docker_value(&d, &["volume", "create", name]);
    }
    let (_, _, out) = api(&d, "POST", "/v1.41/volumes/prune", b"");
    let old = json_of(&out);
    assert_eq!(old["VolumesDeleted"].as_array().map(Vec::len), Some(3), "{old}");
    docker_value(&d, &["volume", "create", "pv-named"]);
    let (_, _, out) = api(&d, "POST", "/v1.43/volumes/prune", b"");
    assert!(json_of(&out)["VolumesDeleted"].as_array().is_none_or(Vec::is_empty));
    let (_, _, out) = api(&d, "POST", "/v1.43/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D", b"");
    assert_eq!(json_of(&out)["VolumesDeleted"], serde_json::json!(["pv-named"]));
    docker_value(&d, &["container", "prune", "-f"]);
    docker_value(&d, &["network", "prune", "-f"]);

    // One `prune` event per prune, with what it freed.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let out = Command::new("timeout")
        .arg("30")
        .arg(docker_cli().unwrap())
        .args([
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &now.to_string(),
            "--filter",
            "event=prune",
            "--format",
            "{{json .}}",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    let events: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |t: &str| events.iter().filter(|e| e["Type"] == t).collect::<Vec<_>>();
    assert_eq!(of("image").len(), 1, "{events:?}");
    assert_eq!(of("image")[0]["Actor"]["Attributes"]["reclaimed"], reclaimed.to_string());
    assert_eq!(of("image")[0]["Actor"]["ID"], "");
    assert_eq!(of("volume").len(), 3, "{events:?}");
    assert_eq!(of("container").len(), 1, "{events:?}");
    assert_eq!(
        of("builder")[0]["Actor"]["Attributes"]["reclaimed"],
        cache["SpaceReclaimed"].as_u64().unwrap().to_string()
    );
    assert_eq!(of("network")[0]["Actor"]["Attributes"]["reclaimed"], "0");

    // docker-py raises ImageLoadError from the stream.
    let Some(python) = docker_py() else { return };
    let script = format!(
        "import docker\n\
         c = docker.from_env(version='1.41')\n\
         try:\n    c.images.load(open('{}', 'rb').read())\n    print('loaded')\n\
         except docker.errors.ImageLoadError as e:\n    print('ImageLoadError')",
        junk.display()
    );
    assert_eq!(py(&d, python, &script), "ImageLoadError");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn networks_keep_names_aux_addresses_driver_opts_and_link_local_ips() {
    let Some(d) = docker_cli_daemon() else { return };
    let subnet = docker_value(&d, &["network", "create", "probe-net"]);
    let _ = subnet;
    let probe = docker_value(&d, &["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "probe-net"]);
    docker_value(&d, &["network", "rm", "probe-net"]);
    // The same (free) subnet, with the first address a container would get (.2) reserved as an auxiliary address.
    let base = probe.split('/').next().unwrap().rsplit_once('.').unwrap().0.to_string();
    let (net, aux) = (format!("{base}.0/26"), format!("{base}.2"));
    docker_value(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            &net,
            "--aux-address",
            &format!("router={aux}"),
            "--ipam-opt",
            "ipo=1",
            "-o",
            "com.example.opt=x",
            "my net",
        ],
    );
    let ipam = docker_value(&d, &["network", "inspect", "-f", "{{json .IPAM}}|{{json .Options}}", "my net"]);
    let (ipam, opts) = ipam.split_once('|').unwrap();
    let ipam: Value = serde_json::from_str(ipam).unwrap();
    assert_eq!(ipam["Config"][0]["AuxiliaryAddresses"], serde_json::json!({"router": aux}), "{ipam}");
    assert_eq!(ipam["Options"], serde_json::json!({"ipo": "1"}));
    assert_eq!(opts, r#"{"com.example.opt":"x"}"#);
    assert!(docker_err(&d, &["network", "create", "a/b"]).contains("a/b"));
    // Outside the subnet: Docker's 403 (the CLI checks it first, so the API is asked directly).
    let body = format!(
        r#"{{"Name":"bad-aux","IPAM":{{"Config":[{{"Subnet":"{base}.64/26","AuxiliaryAddresses":{{"h":"10.0.0.1"}}}}]}}}}"#
    );
    let (status, _, out) = api(&d, "POST", "/networks/create", body.as_bytes());
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&out));

    // Endpoint DriverOpts and LinkLocalIPs kept and shown; the auxiliary address is never given out.
    docker_value(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ll",
            "--network",
            "my net",
            "--link-local-ip",
            "169.254.7.7",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let ep: Value =
        serde_json::from_str(&docker_value(&d, &["inspect", "-f", "{{json .NetworkSettings.Networks}}", "ll"]))
            .unwrap();
    assert_eq!(ep["my net"]["IPAMConfig"]["LinkLocalIPs"], serde_json::json!(["169.254.7.7"]), "{ep}");
    assert_ne!(ep["my net"]["IPAddress"], aux.as_str(), "{ep}");
    docker_value(&d, &["create", "--name", "opts", "busybox", "true"]);
    let connect = r#"{"Container":"opts","EndpointConfig":{"DriverOpts":{"k":"v"},"IPAMConfig":{"LinkLocalIPs":["169.254.8.8"]}}}"#;
    let (status, _, out) = api(&d, "POST", "/networks/my%20net/connect", connect.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let ep: Value =
        serde_json::from_str(&docker_value(&d, &["inspect", "-f", "{{json .NetworkSettings.Networks}}", "opts"]))
            .unwrap();
    assert_eq!(ep["my net"]["DriverOpts"], serde_json::json!({"k": "v"}), "{ep}");
    assert_eq!(ep["my net"]["IPAMConfig"]["LinkLocalIPs"], serde_json::json!(["169.254.8.8"]), "{ep}");
    // docker-py sees the network by its name with a space.
    if let Some(python) = docker_py() {
        let out =
            py(&d, python, "import docker\nc = docker.from_env(version='1.41')\nprint(c.networks.get('my net').name)");
        assert_eq!(out, "my net");
    }
    docker_value(&d, &["rm", "-f", "ll", "opts"]);
    docker_value(&d, &["network", "rm", "my net"]);
}
