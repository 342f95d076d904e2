//! Issue 15, the runtime's share, through the real docker CLI (and Debian's docker-py for `network.connect`):
//! supplementary groups (`--group-add`, root's group 0), the container's own cgroup at `/sys/fs/cgroup`
//! (`--cgroupns`, `--privileged`), MAC addresses, legacy links, and the embedded DNS after `network connect`.
//! The expected values are what Docker 20.10 gave for the same commands (noted at each test).
#![allow(clippy::unwrap_used)]

use berth_integration::*;

/// Supplementary groups as Docker 20.10.24 (runc 1.1.5) gave them with the same busybox image:
/// `id` → `uid=0(root) gid=0(root) groups=0(root),10(wheel)`; `-u 1000 --group-add wheel --group-add 1234` →
/// additionalGids `[0, 10, 1234]` for the process and for every exec; an unknown group name fails the start.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn groups_of_root_and_group_add() {
    let Some(d) = docker_imported_daemon() else { return };
    let id = docker_ok(&d, &["run", "--rm", "busybox", "id"]);
    assert_eq!(id.trim(), "uid=0(root) gid=0(root) groups=0(root),10(wheel)");
    let id = docker_ok(&d, &["run", "--rm", "--group-add", "wheel", "--group-add", "1234", "busybox", "id"]);
    assert_eq!(id.trim(), "uid=0(root) gid=0(root) groups=0(root),10(wheel),1234");
    let id = docker_ok(&d, &["run", "--rm", "-u", "1000:50", "busybox", "id"]);
    assert_eq!(id.trim(), "uid=1000 gid=50(staff) groups=50(staff)");

    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "g1",
            "-u",
            "1000",
            "--group-add",
            "wheel",
            "--group-add",
            "1234",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let status = docker_ok(&d, &["exec", "g1", "grep", "Groups", "/proc/1/status"]);
    assert_eq!(status.split_whitespace().collect::<Vec<_>>(), ["Groups:", "0", "10", "1234"]);
    assert_eq!(docker_ok(&d, &["exec", "g1", "id"]).trim(), "uid=1000 gid=0(root) groups=0(root),10(wheel),1234");
    // An exec as another user keeps the container's added groups, with that user's primary group first.
    let status = docker_ok(&d, &["exec", "-u", "33", "g1", "grep", "Groups", "/proc/self/status"]);
    assert_eq!(status.split_whitespace().collect::<Vec<_>>(), ["Groups:", "10", "33", "1234"]);
    let groups = docker_ok(&d, &["inspect", "-f", "{{json .HostConfig.GroupAdd}}", "g1"]);
    assert_eq!(groups.trim(), r#"["wheel","1234"]"#);

    let out = d.docker(&["run", "--rm", "--group-add", "nosuch", "busybox", "id"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Unable to find group nosuch: no matching entries in group file"),
        "{}",
        stderr(&out)
    );
}

/// The container's own cgroup at `/sys/fs/cgroup`, read-only, as Docker 20.10 mounts it on this cgroup v1 host:
/// a tmpfs with `memory`, `cpu`, ... each the container's directory (`memory.limit_in_bytes` = 268435456 for `-m
/// 256m`), `touch` refused with "Read-only file system"; `--privileged` writable; `--cgroupns` host by default on v1.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn own_cgroup_at_sys_fs_cgroup() {
    let Some(d) = docker_imported_daemon() else { return };
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let limit = if v2 { "/sys/fs/cgroup/memory.max" } else { "/sys/fs/cgroup/memory/memory.limit_in_bytes" };
    let out = docker_ok(&d, &["run", "--rm", "-m", "256m", "busybox", "cat", limit]);
    assert_eq!(out.trim(), "268435456");
    // Only the container's cgroup: no sibling container, no host cgroup.
    let procs = if v2 { "/sys/fs/cgroup/cgroup.procs" } else { "/sys/fs/cgroup/memory/cgroup.procs" };
    let out = docker_ok(&d, &["run", "--rm", "busybox", "sh", "-c", &format!("cat {procs}; ls /sys/fs/cgroup")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("1"), "only the container's own processes: {out}");
    assert!(!lines.iter().any(|l| *l == "berth" || *l == "unified"), "{out}");
    let out = d
        .docker(&["run", "--rm", "busybox", "sh", "-c", &format!("touch {}/x", limit.rsplit_once('/').unwrap().0)])
        .unwrap();
    assert!(stderr(&out).contains("Read-only file system"), "{}{}", stdout(&out), stderr(&out));
    // --privileged: writable (Docker clears the read-only flag of /sys and /sys/fs/cgroup).
    let knob = if v2 { "/sys/fs/cgroup/memory.max" } else { "/sys/fs/cgroup/memory/memory.limit_in_bytes" };
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--privileged",
            "-m",
            "256m",
            "busybox",
            "sh",
            "-c",
            &format!("echo 134217728 > {knob} && cat {knob}"),
        ],
    );
    assert_eq!(out.trim(), "134217728");
    // The cgroup namespace: Docker 20.10's default is host on v1 and private on v2; both modes can be asked for.
    let created = docker_ok(&d, &["create", "busybox"]);
    let default_mode = docker_ok(&d, &["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", created.trim()]);
    assert_eq!(default_mode.trim(), if v2 { "private" } else { "host" });
    let own = docker_ok(&d, &["run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup"]);
    assert!(own.lines().all(|l| l.ends_with(":/")), "a private cgroup namespace is rooted at the container: {own}");
    let host = docker_ok(&d, &["run", "--rm", "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup"]);
    assert!(host.lines().any(|l| l.contains("/berth/")), "the host's cgroup namespace shows the path: {host}");
    // v1: the container's init and an exec'd process move themselves into the container's cgroup, in every
    // controller's hierarchy (the unified one of a hybrid host is not Berth's).
    if !v2 {
        let id = docker_ok(&d, &["run", "-d", "--cgroupns", "host", "busybox", "sleep", "300"]);
        let id = id.trim();
        for pid in ["1", "self"] {
            let out = docker_ok(&d, &["exec", id, "cat", &format!("/proc/{pid}/cgroup")]);
            // Named hierarchies (`name=systemd`) have no controller and are not Berth's either.
            let v1: Vec<&str> = out.lines().filter(|l| !l.starts_with("0::") && !l.contains(":name=")).collect();
            assert!(!v1.is_empty(), "{out}");
            assert!(v1.iter().all(|l| l.ends_with(id)), "/proc/{pid}/cgroup in every hierarchy: {out}");
        }
        docker_ok(&d, &["rm", "-f", id]);
    }
    let out = docker_ok(&d, &["run", "--rm", "--cgroupns", "private", "-m", "256m", "busybox", "cat", limit]);
    assert_eq!(out.trim(), "268435456");
    // berth's own flag does the same.
    let own = d.ok(&["run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup"]);
    assert!(own.lines().all(|l| l.ends_with(":/")), "berth run --cgroupns private: {own}");
    // An exec joins the container's cgroup namespace.
    docker_ok(&d, &["run", "-d", "--name", "ns", "--cgroupns", "private", "busybox", "sleep", "300"]);
    let own = docker_ok(&d, &["exec", "ns", "cat", "/proc/self/cgroup"]);
    assert!(own.lines().all(|l| l.ends_with(":/")), "{own}");
}

fn api_json(d: &Berthd, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, _, out) = api(d, method, path, body.as_bytes());
    (status, serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null))
}

/// The veth's address inside a running container.
fn mac_inside(d: &Berthd, name: &str, ifname: &str) -> String {
    docker_ok(d, &["exec", name, "cat", &format!("/sys/class/net/{ifname}/address")]).trim().to_string()
}

/// MAC addresses: the docker CLI's `--mac-address` (per endpoint from API 1.44), the legacy `Config.MacAddress` of
/// older clients (docker-compose 1.29 sends it at 1.38; Docker 20.10 showed it back in `Config.MacAddress` and
/// the network's `MacAddress`), an endpoint's address on `network connect`; a malformed address is a 400.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn mac_addresses() {
    let Some(d) = docker_imported_daemon() else { return };
    docker_ok(&d, &["run", "-d", "--name", "m1", "--mac-address", "02:11:22:33:44:55", "busybox", "sleep", "300"]);
    assert_eq!(mac_inside(&d, "m1", "eth0"), "02:11:22:33:44:55");
    let shown = docker_ok(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.MacAddress}} {{.NetworkSettings.Networks.bridge.MacAddress}}", "m1"],
    );
    assert_eq!(shown.trim(), "02:11:22:33:44:55 02:11:22:33:44:55");

    docker_ok(&d, &["network", "create", "macnet"]);
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "m2",
            "--network",
            "macnet",
            "--mac-address",
            "02-11-22-33-44-AA",
            "busybox",
            "sleep",
            "300",
        ],
    );
    assert_eq!(mac_inside(&d, "m2", "eth0"), "02:11:22:33:44:aa");
    let shown = docker_ok(&d, &["inspect", "-f", "{{.NetworkSettings.Networks.macnet.MacAddress}}", "m2"]);
    assert_eq!(shown.trim(), "02:11:22:33:44:aa");

    // An old client's container-wide address goes to the primary network.
    let (code, v) = api_json(
        &d,
        "POST",
        "/v1.38/containers/create?name=m3",
        r#"{"Image":"busybox","Cmd":["sleep","300"],"MacAddress":"02:11:22:33:44:66","HostConfig":{"NetworkMode":"macnet"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    docker_ok(&d, &["start", "m3"]);
    assert_eq!(mac_inside(&d, "m3", "eth0"), "02:11:22:33:44:66");
    let (_, v) = api_json(&d, "GET", "/v1.38/containers/m3/json", "");
    assert_eq!(v["Config"]["MacAddress"], "02:11:22:33:44:66");
    assert_eq!(v["NetworkSettings"]["Networks"]["macnet"]["MacAddress"], "02:11:22:33:44:66");

    // network connect with an endpoint's own address.
    let (code, v) = api_json(
        &d,
        "POST",
        "/networks/macnet/connect",
        r#"{"Container":"m1","EndpointConfig":{"MacAddress":"02:11:22:33:44:77"}}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(mac_inside(&d, "m1", "eth1"), "02:11:22:33:44:77");

    // Malformed addresses: Docker's 400, nothing created.
    let before = docker_ok(&d, &["ps", "-aq"]).lines().count();
    for (path, body) in [
        ("/v1.38/containers/create", r#"{"Image":"busybox","MacAddress":"zz:11"}"#),
        (
            "/v1.44/containers/create",
            r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"macnet":{"MacAddress":"02:11:22:33:44"}}},"HostConfig":{"NetworkMode":"macnet"}}"#,
        ),
    ] {
        let (code, v) = api_json(&d, "POST", path, body);
        assert_eq!(code, 400, "{path}: {v}");
        assert!(v["message"].as_str().unwrap().starts_with("invalid MAC address "), "{v}");
    }
    let (code, v) = api_json(
        &d,
        "POST",
        "/v1.44/containers/create",
        r#"{"Image":"busybox","MacAddress":"02:11:22:33:44:01","NetworkingConfig":{"EndpointsConfig":{"macnet":{"MacAddress":"02:11:22:33:44:02"}}},"HostConfig":{"NetworkMode":"macnet"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("must match the endpoint-specific MAC address"), "{v}");
    let (code, v) = api_json(
        &d,
        "POST",
        "/networks/bridge/connect",
        r#"{"Container":"m2","EndpointConfig":{"MacAddress":"nope"}}"#,
    );
    assert_eq!((code, v["message"].as_str()), (400, Some("invalid MAC address nope")));
    assert_eq!(docker_ok(&d, &["ps", "-aq"]).lines().count(), before);
}

/// Legacy links on the default bridge, as Docker 20.10 makes them (moby's `links.Link.ToEnv` and libnetwork's
/// hosts entry `IP alias hostname name`), their checks, `docker rm --link`; on a user-defined network a link is a
/// DNS alias of the linking container only.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn legacy_links() {
    let Some(d) = docker_imported_daemon() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--hostname",
            "dbhost",
            "-e",
            "PGDATA=/pg",
            "--expose",
            "5432",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let ip = ip_on(&d, "db", "bridge");
    let out = docker_ok(
        &d,
        &[
            "run",
            "--name",
            "web",
            "--link",
            "db:dbalias",
            "-e",
            "DBALIAS_NAME=mine",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; env; ping -c 1 -W 2 dbalias >/dev/null && echo reached",
        ],
    );
    assert!(out.contains(&format!("{ip}\tdbalias dbhost db\n")), "{out}");
    for want in [
        format!("DBALIAS_PORT=tcp://{ip}:5432"),
        format!("DBALIAS_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("DBALIAS_PORT_5432_TCP_ADDR={ip}"),
        "DBALIAS_PORT_5432_TCP_PORT=5432".into(),
        "DBALIAS_PORT_5432_TCP_PROTO=tcp".into(),
        "DBALIAS_ENV_PGDATA=/pg".into(),
        "reached".into(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing:\n{out}");
    }
    // The container's own variable wins over the link's.
    assert!(out.lines().any(|l| l == "DBALIAS_NAME=mine") && !out.contains("DBALIAS_NAME=/web/dbalias"), "{out}");
    assert!(!out.contains("DBALIAS_ENV_PATH") && !out.contains("DBALIAS_ENV_HOME"), "{out}");
    let links = docker_ok(&d, &["inspect", "-f", "{{json .HostConfig.Links}}", "web"]);
    assert_eq!(links.trim(), r#"["/db:/web/dbalias"]"#);
    // A link without alias: name and alias are one, listed once.
    let out =
        docker_ok(&d, &["run", "--rm", "--link", "db", "busybox", "sh", "-c", "grep dbhost /etc/hosts; echo $DB_NAME"]);
    assert!(out.starts_with(&format!("{ip}\tdb dbhost\n")) && out.trim_end().ends_with("/db"), "{out}");

    // Docker's refusals: a missing container at create (400, nothing created), a stopped one at start.
    let out = d.docker(&["create", "--link", "nosuch:x", "busybox"]).unwrap();
    assert!(stderr(&out).contains("could not get container for nosuch"), "{}", stderr(&out));
    docker_ok(&d, &["create", "--name", "stopped", "busybox"]);
    docker_ok(&d, &["create", "--name", "late", "--link", "stopped:s", "busybox", "true"]);
    let out = d.docker(&["start", "late"]).unwrap();
    assert!(stderr(&out).contains("Cannot link to a non running container: /stopped AS /late/s"), "{}", stderr(&out));

    // docker rm --link: the link is forgotten (the next start has neither the entry nor the variables).
    docker_ok(&d, &["rm", "--link", "/web/dbalias"]);
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{json .HostConfig.Links}}", "web"]).trim(), "[]");
    let out = d.docker(&["rm", "--link", "/web/dbalias"]).unwrap();
    assert!(stderr(&out).contains("No such container: web/dbalias"), "{}", stderr(&out));
    let out = d.docker(&["rm", "--link", "web"]).unwrap();
    assert!(stderr(&out).contains("cannot remove the default link name"), "{}", stderr(&out));
    docker_ok(&d, &["rm", "--link", "/late/s"]);
    docker_ok(&d, &["start", "late"]);
    docker_ok(&d, &["start", "web"]);
    docker_ok(&d, &["wait", "web"]);
    let logs = docker_ok(&d, &["logs", "web"]);
    let second_run = logs.rsplit("127.0.0.1").next().unwrap();
    assert!(!second_run.contains("dbalias") && second_run.contains("DBALIAS_NAME=mine"), "{logs}");

    // A user-defined network: the alias resolves for the linking container only, to the linked one's address there.
    docker_ok(&d, &["network", "create", "linknet"]);
    docker_ok(&d, &["run", "-d", "--name", "db2", "--network", "linknet", "busybox", "sleep", "300"]);
    let ip2 = ip_on(&d, "db2", "linknet");
    let out =
        docker_ok(&d, &["run", "--rm", "--network", "linknet", "--link", "db2:store", "busybox", "nslookup", "store"]);
    assert!(out.contains(&format!("Address: {ip2}")), "{out}");
    let out = d.docker(&["run", "--rm", "--network", "linknet", "busybox", "nslookup", "store"]).unwrap();
    assert!(!stdout(&out).contains(&ip2), "another container resolved the alias: {}", stdout(&out));
}

/// A container of the default bridge connected to a user-defined network (docker-py 5's `network.connect`, as
/// Debian's python3-docker) resolves that network's names: its resolv.conf is switched to the embedded DNS server;
/// disconnecting gives it its previous servers back.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn connect_switches_to_embedded_dns() {
    let Some(d) = docker_imported_daemon() else { return };
    if docker_py().is_none() {
        return;
    }
    docker_ok(&d, &["network", "create", "pynet"]);
    docker_ok(&d, &["run", "-d", "--name", "target", "--network", "pynet", "busybox", "sleep", "300"]);
    docker_ok(&d, &["run", "-d", "--name", "plain", "busybox", "sleep", "300"]);
    let before = docker_ok(&d, &["exec", "plain", "cat", "/etc/resolv.conf"]);
    let script = format!(
        "import docker\n\
         c = docker.DockerClient(base_url='{}', version='1.41')\n\
         c.networks.get('pynet').connect(c.containers.get('plain'))\n",
        d.host()
    );
    let out = std::process::Command::new("/usr/bin/python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let gw = docker_ok(&d, &["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "pynet"]);
    let conf = docker_ok(&d, &["exec", "plain", "cat", "/etc/resolv.conf"]);
    assert!(conf.starts_with(&format!("nameserver {}\n", gw.trim())) && conf.contains("ndots:0"), "{conf}");
    let ip = ip_on(&d, "target", "pynet");
    let out = docker_ok(&d, &["exec", "plain", "nslookup", "target"]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    docker_ok(&d, &["network", "disconnect", "pynet", "plain"]);
    assert_eq!(docker_ok(&d, &["exec", "plain", "cat", "/etc/resolv.conf"]), before);
}
