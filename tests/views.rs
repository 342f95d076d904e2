//! The API's views as clients read them: the docker-py SDK and the docker CLI inspect and list containers, images,
//! networks, volumes and execs on a private berthd and read the fields Docker always sends (`Config["OnBuild"]`,
//! `HostConfig["Runtime"]`, ...), per API version where Docker's output differs. The key sets of the same objects are
//! compared with a real dockerd's: `BERTH_PEER_DOCKER_SOCK`'s, else one the test starts on private paths.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use berth_integration::{
    PeerDockerd, api, daemon_with_busybox, docker_cli, docker_py, repo_root, require_root, skip, stderr, stdout,
};
use serde_json::Value;

/// Objects the tests inspect: a created container with a published port, a label and a volume (on `network`, else
/// the default one); a running one on a user-defined network; a volume.
fn objects(run: &dyn Fn(&[&str]) -> Output, image: &str, tag: &str, network: Option<&str>) {
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    ok(&["volume", "create", &format!("{tag}-v")]);
    ok(&["network", "create", &format!("{tag}-n")]);
    let (name, volume) = (format!("{tag}-c"), format!("{tag}-v:/data"));
    let net = network.map(|n| format!("--network={n}"));
    let mut create = vec!["create"];
    create.extend(net.as_deref());
    create.extend(["--name", &name, "-l", "k=v", "-p", "127.0.0.1::80", "-v", &volume, image, "sleep", "100"]);
    ok(&create);
    ok(&["run", "-d", "--name", &format!("{tag}-r"), "--network", &format!("{tag}-n"), image, "sleep", "100"]);
}

/// docker-py against the daemon at `host`: what clients read, printed as JSON for the test to check. Every key
/// access is a plain `[...]`, as client code does: a missing field fails the script.
const DOCKER_PY: &str = r#"
import docker, json, os, sys
tag = sys.argv[1]
c = docker.from_env(version="auto")
a = c.api
out = {}
ctr = a.inspect_container(tag + "-c")
h = ctr["HostConfig"]
out["runtime"] = h["Runtime"]
out["host_nulls"] = [h[k] for k in ["GroupAdd", "Links", "CapAdd", "SecurityOpt", "DeviceRequests"]]
out["console"] = h["ConsoleSize"]
out["masked"] = h["MaskedPaths"]
out["readonly"] = h["ReadonlyPaths"]
out["realtime"] = [h["CpuRealtimePeriod"], h["CpuRealtimeRuntime"]]
out["config"] = [ctr["Config"][k] for k in ["OnBuild", "Entrypoint", "Volumes", "Domainname", "StdinOnce"]]
out["mounts"] = [(m["Type"], m["Name"], m["Driver"]) for m in ctr["Mounts"]]
out["ports"] = ctr["NetworkSettings"]["Ports"]
img = a.inspect_image("busybox")
out["img_config"] = {k: img["Config"][k] for k in ["OnBuild", "Entrypoint", "Env", "Volumes", "Labels", "User", "WorkingDir", "Cmd"]}
out["img_new"] = sorted(k for k in ["ContainerConfig", "Container", "VirtualSize"] if k in img)
old = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="1.41")
oimg = old.inspect_image("busybox")
out["img_old"] = [oimg["ContainerConfig"]["OnBuild"], oimg["Container"], oimg["VirtualSize"] == oimg["Size"]]
out["list_old_virtual"] = all("VirtualSize" in i for i in old.images())
out["list_new_virtual"] = any("VirtualSize" in i for i in a.images())
out["history"] = [(e["Tags"], e["Size"]) for e in a.history("busybox")][:1]
ps = {x["Names"][0]: x for x in a.containers(all=True)}
run = ps["/" + tag + "-r"]
out["ps_ports"] = ps["/" + tag + "-c"]["Ports"]
out["ps_network"] = sorted(run["NetworkSettings"]["Networks"].keys())
out["ps_health"] = run["Health"]["Status"]
net = a.inspect_network(tag + "-n")
out["net"] = [len(net["Containers"]), net["IPAM"]["Driver"], net["EnableIPv6"], net["ConfigFrom"]["Network"]]
out["net_alias_new"] = a.inspect_container(tag + "-r")["NetworkSettings"]["Networks"][tag + "-n"]["Aliases"]
out["net_alias_old"] = old.inspect_container(tag + "-r")["NetworkSettings"]["Networks"][tag + "-n"]["Aliases"]
vol = c.volumes.get(tag + "-v").attrs
out["vol"] = [vol["Name"], vol["Driver"], vol["Scope"], vol["Labels"], vol["Options"]]
e = a.exec_create(tag + "-r", ["sh", "-c", "exit 3"])
before = a.exec_inspect(e["Id"])
a.exec_start(e["Id"])
after = a.exec_inspect(e["Id"])
out["exec"] = [before["ExitCode"], after["ExitCode"], after["ProcessConfig"]["entrypoint"], after["ContainerID"] == run["Id"]]
ver = c.version()
out["version"] = [ver["ApiVersion"], ver["Components"][0]["Details"]["ApiVersion"]]
info = c.info()
out["info"] = [info["Plugins"]["Authorization"], info["Swarm"]["LocalNodeState"], info["CgroupVersion"] in ("1", "2")]
print(json.dumps(out))
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_py_reads_every_field_docker_sends() {
    require_root();
    if docker_py().is_none() {
        return;
    }
    let d = daemon_with_busybox();
    objects(&|args| d.berth(args), "busybox", "views", None);
    let out = Command::new("/usr/bin/python3").args(["-c", DOCKER_PY, "views"]).env("DOCKER_HOST", d.host()).output().unwrap();
    assert!(out.status.success(), "docker-py: {}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();

    let runtime = v["runtime"].as_str().unwrap();
    assert!(!runtime.is_empty(), "HostConfig.Runtime: {v}");
    assert_eq!(v["host_nulls"], serde_json::json!([null, null, null, null, null]));
    assert_eq!(v["console"], serde_json::json!([0, 0]));
    assert!(v["masked"].as_array().unwrap().iter().any(|p| p == "/proc/kcore"), "{v}");
    assert!(v["readonly"].as_array().unwrap().iter().any(|p| p == "/proc/sys"), "{v}");
    assert_eq!(v["realtime"], serde_json::json!([0, 0]));
    assert_eq!(v["config"], serde_json::json!([null, null, null, "", false]));
    assert_eq!(v["mounts"], serde_json::json!([["volume", "views-v", "local"]]));
    assert_eq!(v["ports"], serde_json::json!({"80/tcp": null}), "created: exposed, not published");

    // The image's Config has every key, unset ones null or empty.
    let ic = &v["img_config"];
    assert!(ic["OnBuild"].is_null() && ic["Entrypoint"].is_null() && ic["Volumes"].is_null(), "{ic}");
    assert_eq!(ic["Cmd"], serde_json::json!(["sh"]));
    assert_eq!((ic["User"].as_str(), ic["WorkingDir"].as_str()), (Some(""), Some("")));
    // 1.53: no ContainerConfig/Container/VirtualSize; 1.41: all three.
    assert_eq!(v["img_new"], serde_json::json!([]));
    assert_eq!(v["img_old"], serde_json::json!([null, "", true]));
    assert_eq!((v["list_old_virtual"].as_bool(), v["list_new_virtual"].as_bool()), (Some(true), Some(false)));
    assert_eq!(v["history"][0][0], serde_json::json!(["busybox:latest"]));

    assert_eq!(v["ps_ports"], serde_json::json!([{"PrivatePort": 80, "Type": "tcp"}]));
    assert_eq!(v["ps_network"], serde_json::json!(["views-n"]));
    assert_eq!(v["ps_health"], "none");
    assert_eq!(v["net"], serde_json::json!([1, "default", false, ""]));
    // Before 1.45 the short ID and the host name are among the aliases on a user-defined network.
    assert!(v["net_alias_new"].is_null(), "{v}");
    assert_eq!(v["net_alias_old"].as_array().map(Vec::len), Some(1), "short ID = host name: {v}");
    assert_eq!(
        v["vol"].as_array().unwrap()[..3],
        serde_json::json!(["views-v", "local", "local"]).as_array().unwrap()[..]
    );
    assert!(v["vol"][3].is_object() || v["vol"][3].is_null(), "Labels: {v}");
    assert!(v["vol"][4].is_null(), "Options: {v}");
    assert_eq!(v["exec"], serde_json::json!([null, 3, "sh", true]));
    assert_eq!(v["version"][0], v["version"][1]);
    assert_eq!(v["info"], serde_json::json!([null, "inactive", true]));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_templates_read_the_fields() {
    require_root();
    if docker_cli().is_none() {
        return;
    }
    let d = daemon_with_busybox();
    let docker = |args: &[&str]| {
        let out = d.docker(args).unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    objects(&|args| d.docker(args).unwrap(), "busybox", "cli", None);
    let f = "{{.HostConfig.Runtime}}|{{json .HostConfig.GroupAdd}}|{{json .HostConfig.ConsoleSize}}|{{.HostConfig.CpuRealtimeRuntime}}|{{.HostConfig.IpcMode}}|{{.HostConfig.ShmSize}}";
    let out = docker(&["inspect", "-f", f, "cli-c"]);
    let parts: Vec<&str> = out.split('|').collect();
    assert!(!parts[0].is_empty(), "{out}");
    assert_eq!(&parts[1..], ["null", "[0,0]", "0", "private", "67108864"], "{out}");
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{json .Config.OnBuild}}|{{json .Config.Env}}", "busybox"]),
        "null|null"
    );
    assert_eq!(docker(&["volume", "inspect", "-f", "{{.Scope}} {{.Driver}}", "cli-v"]), "local local");
    let ip = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "cli-r"]);
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    let ps = docker(&["ps", "-a", "--filter", "name=cli-c", "--format", "{{.Names}} {{.Ports}} {{.Networks}}"]);
    assert_eq!(ps, "cli-c 80/tcp bridge");
    let net = docker(&["network", "inspect", "-f", "{{len .Containers}} {{.Scope}} {{.IPAM.Driver}}", "cli-n"]);
    assert_eq!(net, "1 local default");
    assert_eq!(docker(&["version", "-f", "{{.Server.APIVersion}}"]), "1.53");
    assert!(matches!(docker(&["info", "-f", "{{.CgroupVersion}}"]).as_str(), "1" | "2"));
}

/// What the key-set test made in the real dockerd, removed when it ends, failed or not.
struct PeerObjects {
    host: String,
    tag: String,
}

impl Drop for PeerObjects {
    fn drop(&mut self) {
        let t = &self.tag;
        for args in [
            vec!["rm".to_string(), "-f".into(), format!("{t}-c"), format!("{t}-r")],
            vec!["network".into(), "rm".into(), format!("{t}-n")],
            vec!["volume".into(), "rm".into(), format!("{t}-v")],
            vec!["rmi".into(), format!("{t}:latest")],
        ] {
            if let Some(docker) = docker_cli() {
                let _ = Command::new(docker).args(&args).env("DOCKER_HOST", &self.host).output();
            }
        }
    }
}

/// Keys of the object at `path` of `v` (`/`-separated; `*` the first value of a map, a number an element of a list).
fn keys(v: &Value, path: &str) -> BTreeSet<String> {
    let mut at = v;
    for k in path.split('/').filter(|k| !k.is_empty()) {
        at = match (k, k.parse::<usize>()) {
            ("*", _) => at.as_object().and_then(|m| m.values().next()).unwrap_or(&Value::Null),
            (_, Ok(n)) => &at[n],
            _ => &at[k],
        };
    }
    at.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn get(sock: &Path, path: &str) -> Value {
    let out =
        Command::new("curl").args(["-sf", "--unix-socket"]).arg(sock).arg(format!("http://d{path}")).output().unwrap();
    assert!(out.status.success(), "GET {path} on {}: {}", sock.display(), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The same objects on Berth and on a real dockerd, through API 1.41 (dockerd 20.10's): every key Docker sends, Berth
/// sends too.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn key_sets_match_a_real_dockerd() {
    require_root();
    // A dockerd of the caller's (`BERTH_PEER_DOCKER_SOCK`), else one of the test's own on private paths (Debian's
    // docker.io, which test.sh installs; without it the test fails under BERTH_TESTS_STRICT=1 and skips otherwise).
    let own;
    let peer = match std::env::var_os("BERTH_PEER_DOCKER_SOCK") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            own = PeerDockerd::start();
            let Some(own) = &own else { return };
            own.socket()
        }
    };
    if !peer.exists() || docker_cli().is_none() {
        skip(&format!(
            "BERTH_PEER_DOCKER_SOCK={} is not a socket, or no docker CLI: key sets not compared",
            peer.display()
        ));
        return;
    }
    let d = daemon_with_busybox();
    let tag = format!("berth-views-{}", std::process::id());
    let image = format!("{tag}:latest");
    let peer_host = format!("unix://{}", peer.display());
    let peer_docker =
        |args: &[&str]| Command::new(docker_cli().unwrap()).args(args).env("DOCKER_HOST", &peer_host).output().unwrap();
    let _cleanup = PeerObjects { host: peer_host.clone(), tag: tag.clone() };
    let made = Command::new(repo_root().join("contrib/mkimage-busybox.sh"))
        .arg(&image)
        .env("BERTH", docker_cli().unwrap())
        .env("DOCKER_HOST", &peer_host)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    // The peer's default bridge may be off (`--bridge=none`): the created container goes on the user network, on
    // both daemons.
    let net = format!("{tag}-n");
    objects(&peer_docker, &image, &tag, Some(&net));
    objects(&|args| d.berth(args), "busybox", &tag, Some(&net));

    let v = "/v1.41";
    let pairs = [
        (
            format!("{v}/containers/{tag}-c/json"),
            vec!["", "HostConfig", "Config", "State", "NetworkSettings", "NetworkSettings/Networks/*"],
        ),
        (format!("{v}/containers/{tag}-r/json"), vec!["NetworkSettings", "NetworkSettings/Networks/*"]),
        (format!("{v}/networks/{tag}-n"), vec!["", "IPAM", "Containers/*"]),
        (format!("{v}/volumes/{tag}-v"), vec![""]),
        (format!("{v}/version"), vec![""]),
        (
            format!("{v}/containers/json?all=1&filters=%7B%22name%22%3A%5B%22{tag}-c%22%5D%7D"),
            vec!["0", "0/HostConfig", "0/NetworkSettings/Networks/*", "0/Mounts/0"],
        ),
        (format!("{v}/info"), vec!["", "Plugins", "RegistryConfig", "Swarm"]),
        (format!("{v}/system/df"), vec![""]),
    ];
    let mut missing = Vec::new();
    for (path, objs) in &pairs {
        let theirs = get(&peer, path);
        let (status, _, body) = api(&d, "GET", path, b"");
        assert_eq!(status, 200, "{path}");
        let ours: Value = serde_json::from_slice(&body).unwrap();
        for o in objs {
            assert!(!keys(&theirs, o).is_empty(), "dockerd's {path} has no object at {o:?}: {theirs}");
            for k in keys(&theirs, o).difference(&keys(&ours, o)) {
                missing.push(format!("{path} {o}/{k}"));
            }
            // Newer fields (and the ones Docker 20.10 left out): for the record, not a failure.
            for k in keys(&ours, o).difference(&keys(&theirs, o)) {
                eprintln!("berth only: {path} {o}/{k}");
            }
        }
    }
    let image_paths = [(format!("{v}/images/{image}/json"), "/images/busybox/json")];
    for (theirs_path, ours_path) in &image_paths {
        let theirs = get(&peer, theirs_path);
        let (_, _, body) = api(&d, "GET", &format!("{v}{ours_path}"), b"");
        let ours: Value = serde_json::from_slice(&body).unwrap();
        for o in ["", "Config", "ContainerConfig", "RootFS", "Metadata"] {
            assert!(!keys(&theirs, o).is_empty(), "dockerd's image has no object at {o:?}: {theirs}");
            for k in keys(&theirs, o).difference(&keys(&ours, o)) {
                missing.push(format!("image {o}/{k}"));
            }
            for k in keys(&ours, o).difference(&keys(&theirs, o)) {
                eprintln!("berth only: image {o}/{k}");
            }
        }
    }
    let theirs = get(&peer, &format!("{v}/images/json"));
    let (_, _, body) = api(&d, "GET", &format!("{v}/images/json"), b"");
    let ours: Value = serde_json::from_slice(&body).unwrap();
    for k in keys(&theirs[0], "").difference(&keys(&ours[0], "")) {
        missing.push(format!("images/json {k}"));
    }
    for k in keys(&ours[0], "").difference(&keys(&theirs[0], "")) {
        eprintln!("berth only: images/json {k}");
    }
    // Docker 20.10 fields Berth leaves out on purpose: none.
    assert!(missing.is_empty(), "keys dockerd sends and Berth does not:\n{}", missing.join("\n"));
}
