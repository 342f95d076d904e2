//! Pods (issue 18, section 1): `berth pod ...` and `/berth/pods/...`, members that share the pod's network (localhost,
//! published ports), IPC and UTS namespaces, the lifecycle acting on the members, the daemon's restart with a running
//! pod, the API's refusals, and nothing left behind: links, nft rules, cgroups, mounts, processes.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use berth_integration::*;
use serde_json::Value;

fn pod_json(d: &Berthd, pod: &str) -> Value {
    let (status, _, body) = api(d, "GET", &format!("/berth/pods/{pod}/json"), b"");
    assert_eq!(status, 200, "inspect {pod}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Namespace identity of a process (`net:[4026…]`).
fn ns(pid: &str, typ: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{typ}")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// A member serving `hello-pod` on port 80 with busybox's httpd.
const HTTPD: &str = "mkdir -p /www && echo hello-pod > /www/index.html && exec httpd -f -p 80 -h /www";

/// Checks that nothing of the containers `ids` (a removed pod's holder and members) is left on the host: veths,
/// cgroups, shims and their processes, mounts under the daemon's roots but its own two, nft rules for `port`.
fn assert_nothing_left(d: &Berthd, ids: &[String], port: u16) {
    // A veth goes with its network namespace, which the kernel destroys asynchronously once its last user is gone:
    // a bounded wait.
    let veths = || -> Vec<String> {
        host_links().into_iter().filter(|l| ids.iter().any(|id| l.starts_with(&format!("vb{}", &id[..10])))).collect()
    };
    assert!(d.eventually(10, || veths().is_empty()), "veths left: {:?}", veths());
    for id in ids {
        let shims = processes_with(&format!("{}/run/containers/{id}", d.dir.display()));
        assert!(shims.is_empty(), "processes of {} left: {shims:?}", &id[..12]);
        assert!(!d.dir.join("run/netns").join(id).exists(), "netns pin of {} left", &id[..12]);
        assert!(!d.dir.join("data/containers").join(id).exists(), "directory of {} left", &id[..12]);
    }
    // Shims release their cgroups as they exit, after the removal answered: a bounded wait.
    assert!(d.eventually(10, || cgroups_left(ids).is_empty()), "cgroups left: {:?}", cgroups_left(ids));
    let netns_dir = d.dir.join("run/netns").display().to_string();
    let volumes_dir = d.dir.join("data/volumes").display().to_string();
    for m in mounts_under(&d.dir) {
        assert!(m == netns_dir || m == volumes_dir, "unexpected mount {m}");
    }
    let rules = nft_rules();
    assert!(!rules.contains(&format!("dport {port} ")), "nft rules for port {port} left:\n{rules}");
}

/// The pod's holder and members' IDs.
fn pod_ids(d: &Berthd, pod: &str) -> Vec<String> {
    let p = pod_json(d, pod);
    let mut ids = vec![p["InfraContainerId"].as_str().unwrap().to_string()];
    ids.extend(p["Containers"].as_array().unwrap().iter().map(|c| c["Id"].as_str().unwrap().to_string()));
    ids
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn pod_members_share_localhost_and_the_published_port() {
    let d = daemon_with_busybox();
    let port = test_port(1000);
    let since = unix_now();
    let id = d.ok(&["pod", "create", "--name", "web", "-p", &format!("127.0.0.1:{port}:80"), "--label", "tier=front"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "pod create prints the ID: {id}");
    let p = pod_json(&d, "web");
    assert_eq!(p["Status"], "Created");
    assert_eq!(p["InfraPid"], 0);
    assert_eq!(p["Share"], serde_json::json!(["net", "ipc", "uts"]));
    assert_eq!(p["PortBindings"]["80/tcp"][0]["HostPort"], port.to_string());

    d.ok(&["run", "-d", "--pod", "web", "--name", "srv", "busybox", "sh", "-c", HTTPD]);
    let p = pod_json(&d, "web");
    assert_eq!(p["Status"], "Running", "{p}");
    let infra_pid = p["InfraPid"].as_i64().unwrap().to_string();
    assert_ne!(infra_pid, "0");
    assert_eq!(p["Containers"][0]["Name"], "srv");
    assert_eq!(p["Containers"][0]["State"], "running");
    // The member shares the holder's network, IPC and UTS namespaces, not its PID namespace (not shared by default).
    let srv_pid = d.inspect("srv", "{{.State.Pid}}");
    for typ in ["net", "ipc", "uts"] {
        assert_eq!(ns(&srv_pid, typ), ns(&infra_pid, typ), "{typ} namespace not shared");
    }
    assert_ne!(ns(&srv_pid, "pid"), ns(&infra_pid, "pid"));
    // `--ipc container:NAME` joins another container's IPC namespace the same way.
    let ipc = d.ok(&["run", "--rm", "--ipc", "container:srv", "busybox", "readlink", "/proc/self/ns/ipc"]);
    assert_eq!(ipc.trim(), ns(&srv_pid, "ipc"));
    assert_eq!(d.inspect("srv", "{{.Config.Labels}}"), format!("map[io.berth.pod:{id}]"));
    // The holder runs hardened: no capabilities, no new privileges, in its own cgroup, with its veth (which the
    // leak checks below must see go).
    let status = std::fs::read_to_string(format!("/proc/{infra_pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "CapEff:\t0000000000000000"), "holder capabilities:\n{status}");
    assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "holder no_new_privs:\n{status}");
    let holder = p["InfraContainerId"].as_str().unwrap().to_string();
    assert!(!cgroups_left(std::slice::from_ref(&holder)).is_empty(), "the holder's cgroup");
    assert!(host_links().iter().any(|l| l.starts_with(&format!("vb{}", &holder[..10]))), "the holder's veth");
    if let Some(rules) = nft_list(&["ruleset"]) {
        assert!(rules.contains(&format!("dport {port} ")), "the port's nft rule:\n{rules}");
    }
    // Another member reaches it on localhost; the pod's hostname is its name.
    let got = d.ok(&[
        "run",
        "--rm",
        "--pod",
        "web",
        "busybox",
        "sh",
        "-c",
        "hostname; for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80 && exit 0; sleep 0.1; done",
    ]);
    assert!(got.starts_with("web\n"), "hostname: {got}");
    assert!(got.contains("hello-pod"), "member to member on localhost: {got}");
    // The pod's published port answers on the host.
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "published port"
    );

    // Lists: the holder is not a listed container; `ps --pod` names the pod; `--filter pod=`.
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "srv", "ps -a lists the members only");
    let ps = d.ok(&["ps", "--pod", "--format", "{{.Names}} {{.PodName}}"]);
    assert_eq!(ps.trim(), "srv web");
    assert!(d.ok(&["ps", "--pod"]).lines().next().unwrap().contains("PODNAME"));
    assert_eq!(d.ok(&["ps", "-a", "-q", "--filter", "pod=web"]).lines().count(), 1);
    assert_eq!(d.ok(&["ps", "-a", "-q", "--filter", "pod=nosuchpod"]).lines().count(), 0);
    let ls = d.ok(&["pod", "ls", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}"]);
    assert_eq!(ls.trim(), "web Running 1");
    assert_eq!(d.ok(&["pod", "ps", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(d.ok(&["pod", "ls", "-q", "--filter", "label=tier=front"]).trim(), &id[..12]);
    assert_eq!(d.ok(&["pod", "ls", "-q", "--filter", "status=exited"]).trim(), "");
    assert_eq!(d.ok(&["pod", "inspect", "-f", "{{.Name}} {{.Hostname}}", "web"]).trim(), "web web");

    // Stop: every member, then the holder; the port is closed.
    d.ok(&["pod", "stop", "-t", "1", "web"]);
    let p = pod_json(&d, "web");
    assert_eq!(p["Status"], "Exited", "{p}");
    assert_eq!(p["InfraPid"], 0);
    assert_eq!(d.inspect("srv", "{{.State.Status}}"), "exited");
    assert!(http_get("127.0.0.1", port, "/").is_err(), "the stopped pod's port still answers");
    // Start: the holder, then the members.
    d.ok(&["pod", "start", "web"]);
    assert_eq!(pod_json(&d, "web")["Status"], "Running");
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "port after start"
    );
    d.ok(&["pod", "restart", "-t", "1", "web"]);
    assert_eq!(pod_json(&d, "web")["Status"], "Running");
    // Starting a member of a stopped pod starts the holder first.
    d.ok(&["pod", "stop", "-t", "1", "web"]);
    d.ok(&["start", "srv"]);
    assert_eq!(pod_json(&d, "web")["Status"], "Running");
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "port after member start"
    );
    // Logs: each line with the member's name.
    let logs = d.ok(&["run", "--pod", "web", "--name", "talker", "busybox", "echo", "said-something"]);
    assert_eq!(logs.trim(), "said-something");
    let logs = d.ok(&["pod", "logs", "web"]);
    assert!(logs.lines().any(|l| l.starts_with("talker") && l.ends_with("| said-something")), "pod logs: {logs}");
    // Removing a member leaves the pod.
    d.ok(&["rm", "talker"]);
    assert_eq!(pod_json(&d, "web")["Containers"].as_array().unwrap().len(), 1);

    // rm without force: a pod with a running member stays (409); with force it goes with its members.
    let out = d.berth(&["pod", "rm", "web"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    let ids = pod_ids(&d, "web");
    d.ok(&["pod", "rm", "-f", "web"]);
    assert_eq!(d.ok(&["pod", "ls", "-q"]).trim(), "");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    let (status, _, _) = api(&d, "GET", "/berth/pods/web/json", b"");
    assert_eq!(status, 404);
    assert_nothing_left(&d, &ids, port);
    assert!(http_get("127.0.0.1", port, "/").is_err());

    // Events of type pod.
    let ev =
        d.ok(&["events", "--since", &since, "--until", &unix_now(), "--filter", "type=pod", "--format", "{{.Action}}"]);
    let actions: Vec<&str> = ev.lines().collect();
    for a in ["create", "stop", "start", "remove"] {
        assert!(actions.contains(&a), "pod event {a} missing: {actions:?}");
    }
    // The holder publishes no container events.
    let holder = &ids[0];
    let ev = d.ok(&["events", "--since", &since, "--until", &unix_now(), "--filter", &format!("container={holder}")]);
    assert_eq!(ev.trim(), "", "container events of the holder");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn pod_api_refusals() {
    let d = daemon_with_busybox();
    let (status, _, body) = api(&d, "POST", "/berth/pods/create", br#"{"Name":"p1","Share":["ipc","bogus"]}"#);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = api(&d, "POST", "/v1.41/berth/pods/create", br#"{"Name":"p1"}"#);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["Id"].as_str().unwrap().len(), 64);
    assert_eq!(created["Warnings"], serde_json::json!([]));
    let (status, _, body) = api(&d, "POST", "/berth/pods/create", br#"{"Name":"p1"}"#);
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = api(&d, "POST", "/berth/pods/create", br#"{"Network":"nosuchnet"}"#);
    assert_eq!(status, 400, "the pod API's 400 for a bad field");
    // The pod labels are berthd's: a user's is refused, naming it.
    let (status, _, body) =
        api(&d, "POST", "/containers/create", br#"{"Image":"busybox","Labels":{"io.berth.pod.infra":"x"}}"#);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("io.berth.pod.infra"));
    // A member may not have its own ports or network.
    let c = |q: &str, body: &str| api(&d, "POST", &format!("/containers/create?{q}"), body.as_bytes()).0;
    assert_eq!(
        c("pod=p1", r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#),
        400
    );
    assert_eq!(c("pod=p1", r#"{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}"#), 400);
    assert_eq!(c("pod=p1", r#"{"Image":"busybox","Hostname":"own"}"#), 400);
    assert_eq!(c("pod=p1", r#"{"Image":"busybox","HostConfig":{"Dns":["1.1.1.1"]}}"#), 400);
    assert_eq!(c("pod=p1", r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"other":{}}}}"#), 400);
    assert_eq!(c("pod=nosuchpod", r#"{"Image":"busybox"}"#), 400);
    assert_eq!(c("pod=p1&name=m1", r#"{"Image":"busybox","Cmd":["sleep","60"]}"#), 201);
    assert_eq!(
        d.inspect("m1", "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", pod_json(&d, "p1")["InfraContainerId"].as_str().unwrap())
    );
    // The holder cannot be removed on its own.
    let holder = pod_json(&d, "p1")["InfraContainerId"].as_str().unwrap().to_string();
    let (status, _, _) = api(&d, "DELETE", &format!("/containers/{holder}?force=1"), b"");
    assert_eq!(status, 409);
    // The CLI's `--pod`: the same refusal.
    let out = d.berth(&["run", "--pod", "p1", "-p", "8080:80", "busybox", "true"]);
    assert!(!out.status.success());
    // rm of a pod with a running member: 409 without force.
    let (status, _, _) = api(&d, "POST", "/berth/pods/p1/start", b"");
    assert_eq!(status, 204);
    let (status, _, _) = api(&d, "DELETE", "/berth/pods/p1", b"");
    assert_eq!(status, 409);
    let (status, _, _) = api(&d, "POST", "/berth/pods/p1/kill?signal=NOPE", b"");
    assert_eq!(status, 400);
    let (status, _, _) = api(&d, "POST", "/berth/pods/p1/kill", b"");
    assert_eq!(status, 204);
    assert_eq!(pod_json(&d, "p1")["Status"], "Exited");
    let (status, _, _) = api(&d, "POST", "/berth/pods/p1/kill", b"");
    assert_eq!(status, 409, "kill of a pod with nothing running");
    let ids = pod_ids(&d, "p1");
    let (status, _, _) = api(&d, "DELETE", "/berth/pods/p1", b"");
    assert_eq!(status, 204, "a stopped pod goes without force");
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    let (status, _, _) = api(&d, "GET", "/berth/pods/p1/json", b"");
    assert_eq!(status, 404);
    assert_nothing_left(&d, &ids, 0);
    // `--pod new:NAME` makes the pod with the container's ports.
    let port = test_port(1000 + 1);
    d.ok(&[
        "run",
        "-d",
        "--pod",
        "new:p2",
        "--name",
        "m2",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let p = pod_json(&d, "p2");
    assert_eq!(p["PortBindings"]["80/tcp"][0]["HostPort"], port.to_string());
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "new:p2's port"
    );
    let ids = pod_ids(&d, "p2");
    d.ok(&["pod", "rm", "-f", "p2"]);
    assert_nothing_left(&d, &ids, port);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn running_pod_survives_a_daemon_kill() {
    let mut d = daemon_with_busybox();
    d.ok(&["network", "create", "podnet"]);
    let port = test_port(1000 + 2);
    d.ok(&[
        "pod",
        "create",
        "--name",
        "kp",
        "--network",
        "podnet",
        "--share",
        "net,ipc,uts,pid",
        "-p",
        &format!("127.0.0.1:{port}:80"),
    ]);
    d.ok(&["run", "-d", "--pod", "kp", "--name", "ksrv", "busybox", "sh", "-c", HTTPD]);
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "published port"
    );
    // A shared PID namespace: the member sees the holder as PID 1.
    let ps = d.ok(&["exec", "ksrv", "ps", "-o", "pid,args"]);
    assert!(ps.lines().any(|l| l.trim_start().starts_with("1 ") && l.contains("--pause")), "pid namespace: {ps}");
    // On a user network, the pod's name resolves to it.
    let p = pod_json(&d, "kp");
    let ip = p["IPAddress"].as_str().unwrap().to_string();
    assert!(!ip.is_empty());
    let looked = d.ok(&["run", "--rm", "--network", "podnet", "busybox", "nslookup", "kp"]);
    assert!(looked.contains(&ip), "kp resolves to {ip}: {looked}");
    let infra_pid = p["InfraPid"].as_i64().unwrap();
    d.kill9();
    d.restart();
    let p = pod_json(&d, "kp");
    assert_eq!(p["Status"], "Running", "{p}");
    assert_eq!(p["InfraPid"].as_i64().unwrap(), infra_pid, "the holder kept running");
    assert!(http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod")), "the port after the restart");
    // A second kill -9 and restart, then the pod goes: nothing left behind.
    d.kill9();
    d.restart();
    let ids = pod_ids(&d, "kp");
    d.ok(&["pod", "rm", "-f", "kp"]);
    assert_nothing_left(&d, &ids, port);
    d.ok(&["network", "rm", "podnet"]);
    assert!(!Path::new(&d.dir).join("run/netns").join(&ids[0]).exists());
}

/// `kill -9` of berthd half-way through `pod create` and `pod rm`: the restarted daemon removes the holder of a pod
/// that was never recorded, and a pod whose holder went first is finished by `pod rm` or given a new holder by
/// `pod start`; nothing is left behind either way.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn crash_during_pod_create_and_rm() {
    let mut d = daemon_with_busybox();
    let port = test_port(1000 + 3);
    let publish = format!("127.0.0.1:{port}:80");
    crash_at(
        &mut d,
        "pod.create-after-holder",
        |d| d.berth(&["pod", "create", "--name", "cp", "-p", &publish]),
        |_| (),
    );
    assert_eq!(d.ok(&["pod", "ls", "-q"]).trim(), "");
    let dirs: Vec<_> = std::fs::read_dir(d.dir.join("data/containers")).unwrap().flatten().collect();
    assert!(dirs.is_empty(), "the holder of the unrecorded pod is still there: {dirs:?}");
    // The name and the port are free.
    d.ok(&["pod", "create", "--name", "cp", "-p", &publish]);
    d.ok(&["run", "-d", "--pod", "cp", "--name", "csrv", "busybox", "sh", "-c", HTTPD]);
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "published port"
    );
    let ids = pod_ids(&d, "cp");
    crash_at(&mut d, "pod.rm-after-holder", |d| d.berth(&["pod", "rm", "-f", "cp"]), |_| ());
    assert_nothing_left(&d, &ids, port);
    // The pod is still listed, without containers; starting it makes a new holder with the pod's port.
    let p = pod_json(&d, "cp");
    assert_eq!(p["Containers"], serde_json::json!([]));
    d.ok(&["pod", "start", "cp"]);
    d.ok(&["run", "-d", "--pod", "cp", "--name", "csrv2", "busybox", "sh", "-c", HTTPD]);
    assert!(
        d.eventually(10, || http_get("127.0.0.1", port, "/").is_ok_and(|b| b.contains("hello-pod"))),
        "the new holder's port"
    );
    let ids = pod_ids(&d, "cp");
    assert_ne!(ids[0], p["InfraContainerId"].as_str().unwrap());
    d.ok(&["pod", "rm", "-f", "cp"]);
    assert_nothing_left(&d, &ids, port);
}

/// `pod logs -f --tail N`: each member's last lines and what follows, prefixed with its name (padded to the longest),
/// until every member has ended.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn pod_logs_follow_every_member() {
    let d = daemon_with_busybox();
    d.ok(&["pod", "create", "--name", "lp"]);
    d.ok(&[
        "run",
        "-d",
        "--pod",
        "lp",
        "--name",
        "one",
        "busybox",
        "sh",
        "-c",
        "echo one-a; echo one-b; sleep 2; echo one-c",
    ]);
    d.ok(&["run", "-d", "--pod", "lp", "--name", "two-long", "busybox", "sh", "-c", "echo two-a; sleep 2; echo two-b"]);
    // The first lines are written before the follow starts.
    assert!(
        d.eventually(10, || d.ok(&["logs", "one"]).contains("one-b") && d.ok(&["logs", "two-long"]).contains("two-a"))
    );
    let mut child = d
        .berth_cmd()
        .args(["pod", "logs", "-f", "--tail", "1", "lp"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The members end within about 2 s; 30 s bounds a follow that would never end.
    let ended = d.eventually(30, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(ended, "pod logs -f did not end with its members");
    let text = stdout(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let want = [
        format!("{:<8}  | one-b", "one"),
        format!("{:<8}  | one-c", "one"),
        "two-long  | two-a".to_string(),
        "two-long  | two-b".to_string(),
    ];
    assert_eq!(lines, want.iter().map(String::as_str).collect::<Vec<_>>(), "pod logs -f --tail 1:\n{text}");
    d.ok(&["pod", "rm", "lp"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn pod_members_share_dev_shm_and_the_holder_is_the_pods() {
    let d = daemon_with_busybox();
    d.ok(&["pod", "create", "--name", "ipc", "--share", "net,ipc,uts,pid"]);
    let writer = "echo shared > /dev/shm/x && exec sleep 300";
    d.ok(&["run", "-d", "--pod", "ipc", "--name", "wr", "busybox", "sh", "-c", writer]);
    let holder = pod_json(&d, "ipc")["InfraContainerId"].as_str().unwrap().to_string();
    // The holder's /dev/shm is a tmpfs on the host while it runs (64 MiB, Docker's default), bound into the members.
    let shm = d.dir.join("data/containers").join(&holder).join("shm");
    // `run -d` answers once the writer's shell is started, not once it wrote: a bounded wait for its write.
    assert!(d.eventually(10, || shm.join("x").exists()), "the writer's /dev/shm/x is not in the holder's shm");
    assert_eq!(d.ok(&["run", "--rm", "--pod", "ipc", "busybox", "cat", "/dev/shm/x"]).trim(), "shared");
    assert_eq!(d.ok(&["run", "--rm", "--ipc", "container:wr", "busybox", "cat", "/dev/shm/x"]).trim(), "shared");
    let size = d.ok(&["run", "--rm", "--pod", "ipc", "busybox", "df", "-k", "/dev/shm"]);
    assert!(size.contains("65536"), "the shared /dev/shm is not 64 MiB: {size}");
    // PID sharing: the holder is PID 1 of the members, and they cannot look into it (it is not dumpable).
    let probe = "cat /proc/1/cmdline | tr '\\0' ' '; echo; \
        cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable; \
        ls /proc/1/root/ >/dev/null 2>&1 && echo root-readable; echo end";
    let out = d.ok(&["run", "--rm", "--pod", "ipc", "busybox", "sh", "-c", probe]);
    assert!(out.contains("docker-init --pause"), "PID 1 is not the holder: {out}");
    assert!(!out.contains("environ-readable") && !out.contains("root-readable"), "the holder is readable: {out}");
    assert!(out.contains("end"), "{out}");
    // The holder is the pod's: refused on its own, naming the pod.
    let ops: [&[&str]; 7] = [
        &["stop"],
        &["kill"],
        &["restart"],
        &["pause"],
        &["update", "--memory", "64m"],
        &["network", "disconnect", "bridge"],
        &["commit"],
    ];
    for args in ops.iter().chain([&["rename", "HOLDER", "other"][..]].iter()) {
        let mut a: Vec<&str> = args.iter().copied().filter(|x| *x != "HOLDER").collect();
        if args.contains(&"HOLDER") {
            a.insert(1, &holder);
        } else {
            a.push(&holder);
        }
        let o = d.berth(&a);
        assert!(!o.status.success(), "{a:?} on the holder worked");
        assert!(stderr(&o).contains("infra container of pod"), "{a:?}: {}", stderr(&o));
    }
    // A holder killed from the host: the members lose their network and are stopped.
    let infra_pid = pod_json(&d, "ipc")["InfraPid"].as_i64().unwrap();
    assert!(infra_pid > 0);
    // The holder's init, a process this test's daemon started.
    assert!(Command::new("kill").args(["-9", &infra_pid.to_string()]).status().unwrap().success());
    assert!(
        d.eventually(20, || d.inspect("wr", "{{.State.Running}}").trim() == "false"),
        "the member still runs after its holder ended"
    );
    // A commit of a member copies its labels into the image: a container of that image is no member.
    d.ok(&["commit", "wr", "frommember"]);
    d.ok(&["create", "--name", "notmember", "frommember", "true"]);
    let labels = d.inspect("notmember", "{{json .Config.Labels}}");
    assert!(!labels.contains("io.berth.pod"), "the image's pod labels were kept: {labels}");
    assert_eq!(pod_json(&d, "ipc")["Containers"].as_array().unwrap().len(), 1, "only wr is a member");
    let ids = pod_ids(&d, "ipc");
    d.ok(&["pod", "rm", "-f", "ipc"]);
    assert!(d.berth(&["inspect", "notmember"]).status.success(), "pod rm removed a container of another image");
    d.ok(&["rm", "notmember"]);
    assert!(!shm.exists(), "the holder's shm directory is left");
    assert_nothing_left(&d, &ids, 0);
}
