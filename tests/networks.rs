//! Networking end to end: the default bridge, user-defined networks with name resolution, isolation, live
//! connect/disconnect, published ports reached with real TCP requests, the other network modes, and no leaks after
//! removal, failed starts and daemon restarts. Traffic stays on loopback and Berth's own bridges; names that are not
//! Berth's go to the daemon's `--dns` (the default bridge's gateway, where nothing answers), never off the host.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::Duration;

use berth_integration::*;

/// A container serving `body` over HTTP on port 80 (busybox httpd).
const WEB: &str = "mkdir -p /www && echo \"$BODY\" > /www/index.html && exec httpd -f -p 80 -h /www";

/// `GET /` from the host; the body, or the error.
fn page(addr: &str, port: u16) -> Result<String, String> {
    http_get(addr, port, "/").map(|a| http_body(&a).to_string())
}

/// Waits until a published port answers.
fn wait_http(d: &Berthd, addr: &str, port: u16) -> String {
    let mut last = String::new();
    d.eventually(10, || match page(addr, port) {
        Ok(b) => {
            last = b;
            true
        }
        Err(e) => {
            last = e;
            false
        }
    });
    last
}

/// Whether no link named `name` exists within a few seconds (the kernel destroys a namespace, and the veths in it,
/// asynchronously after its pin is removed).
fn link_goes(d: &Berthd, name: &str) -> bool {
    d.eventually(10, || !links().contains(name))
}

fn links() -> String {
    String::from_utf8_lossy(&std::process::Command::new("ip").args(["-o", "link"]).output().unwrap().stdout).to_string()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn default_bridge_gives_an_address_a_route_and_hosts_entries() {
    let d = daemon_with_busybox();
    let gw = gateway(&d, "bridge");
    let octets: Vec<u8> = gw.split('.').map(|o| o.parse().unwrap()).collect();
    assert!(octets[0] == 10 && octets[1] >= 128 && octets[3] == 1, "the harness's --bip is used: {gw}");
    let out = d.ok(&["run", "--rm", "--name", "c1", "-h", "box1", "busybox", "sh", "-c",
        "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; ping -c1 -W2 $(ip route | awk '/default/{print $3}') >/dev/null && echo gateway-ok"]);
    let prefix: String = gw.rsplit_once('.').unwrap().0.to_string();
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    assert!(out.contains("\tbox1\n") && out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.contains(&format!("nameserver {gw}")), "the daemon's --dns: {out}");
    assert!(out.contains("gateway-ok"), "{out}");
    // inspect reports the address while it runs, and MAC as Docker derives it.
    d.ok(&["run", "-d", "--name", "c2", "busybox", "sleep", "60"]);
    let ip = d.inspect("c2", "{{.NetworkSettings.IPAddress}}");
    let mac = d.inspect("c2", "{{.NetworkSettings.MacAddress}}");
    assert!(ip.starts_with(&prefix), "{ip}");
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(mac, format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]));
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "c2"]).trim().to_string();
    let veth = format!("vb{}0", &id[..10]);
    assert!(links().contains(&veth), "host end {veth} exists");
    // A container started later copies the mount table (with c2's namespace pin) into its shim: stopping c2 must
    // still destroy c2's namespace and veth while that one runs.
    d.ok(&["run", "-d", "--name", "c3", "busybox", "sleep", "60"]);
    d.ok(&["stop", "-t", "0", "c2"]);
    assert_eq!(d.inspect("c2", "{{.NetworkSettings.IPAddress}}"), "", "no address when stopped");
    assert!(link_goes(&d, &veth), "the veth goes when the container stops");
    assert!(!d.dir.join("run/netns").join(&id).exists(), "and its namespace");
    // Restarted, it gets an address again.
    d.ok(&["start", "c2"]);
    assert!(d.inspect("c2", "{{.NetworkSettings.IPAddress}}").starts_with(&prefix));
    d.ok(&["rm", "-f", "c2"]);
    assert!(link_goes(&d, &veth));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn user_networks_resolve_names_and_stay_isolated() {
    let d = daemon_with_busybox();
    d.ok(&["network", "create", "app1"]);
    d.ok(&["network", "create", "--subnet", "10.231.5.0/24", "--label", "tier=back", "app2"]);
    d.ok(&["run", "-d", "--name", "db", "--network", "app1", "--network-alias", "database", "busybox", "sleep", "300"]);
    let db_ip = ip_on(&d, "db", "app1");
    let db_id = d.inspect("db", "{{.Id}}");
    let look =
        |net: &str, name: &str| d.berth(&["run", "--rm", "--network", net, "busybox", "nslookup", "-type=a", name]);
    for name in ["db", "database", &db_id[..12], "db.app1"] {
        let out = look("app1", name);
        assert!(stdout(&out).contains(&format!("Address: {db_ip}")), "{name}: {}{}", stdout(&out), stderr(&out));
    }
    // Not from another network.
    let out = look("app2", "db");
    assert!(!stdout(&out).contains(&db_ip), "{}", stdout(&out));
    // A container that comes later is found too, and one that is gone is not.
    d.ok(&["run", "-d", "--name", "cache", "--network", "app1", "busybox", "sleep", "300"]);
    let cache_ip = ip_on(&d, "cache", "app1");
    assert!(stdout(&look("app1", "cache")).contains(&cache_ip));
    d.ok(&["rm", "-f", "cache"]);
    assert!(!stdout(&look("app1", "cache")).contains(&cache_ip));
    // Reachable by name on the same network, not across networks.
    d.ok(&["run", "--rm", "--network", "app1", "busybox", "ping", "-c1", "-W2", "db"]);
    let across = d.berth(&["run", "--rm", "--network", "app2", "busybox", "ping", "-c1", "-W1", &db_ip]);
    assert_ne!(across.status.code(), Some(0), "networks are isolated");
    let on_default = d.berth(&["run", "--rm", "busybox", "ping", "-c1", "-W1", &db_ip]);
    assert_ne!(on_default.status.code(), Some(0), "the default bridge is isolated from app1");
    // The fixed address and the subnet of app2.
    d.ok(&["run", "-d", "--name", "fixed", "--network", "app2", "--ip", "10.231.5.77", "busybox", "sleep", "300"]);
    assert_eq!(ip_on(&d, "fixed", "app2"), "10.231.5.77");
    let taken = d.berth(&["run", "--rm", "--network", "app2", "--ip", "10.231.5.77", "busybox", "true"]);
    assert_ne!(taken.status.code(), Some(0));
    assert!(stderr(&taken).contains("Address already in use"), "{}", stderr(&taken));
    // Network inspect lists the running containers.
    let json = d.ok(&["network", "inspect", "app1"]);
    assert!(json.contains(&db_id) && json.contains(&format!("{db_ip}/")), "{json}");
    // Filters.
    assert_eq!(d.ok(&["network", "ls", "-q", "--filter", "label=tier=back"]).lines().count(), 1);
    assert!(d.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "bridge"));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn connect_and_disconnect_running_containers() {
    let d = daemon_with_busybox();
    d.ok(&["network", "create", "front"]);
    d.ok(&["network", "create", "back"]);
    d.ok(&["run", "-d", "--name", "api", "--network", "front", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "--alias", "apiback", "back", "api"]);
    let ip_back = ip_on(&d, "api", "back");
    assert!(!ip_back.is_empty());
    let ifs = d.ok(&["exec", "api", "ip", "-o", "-4", "addr"]);
    assert!(ifs.contains("eth0") && ifs.contains("eth1") && ifs.contains(&ip_back), "{ifs}");
    let out = d.ok(&["run", "--rm", "--network", "back", "busybox", "nslookup", "-type=a", "apiback"]);
    assert!(out.contains(&ip_back), "{out}");
    // Connected twice: refused.
    assert_ne!(d.berth(&["network", "connect", "back", "api"]).status.code(), Some(0));
    d.ok(&["network", "disconnect", "back", "api"]);
    let ifs = d.ok(&["exec", "api", "ip", "-o", "-4", "addr"]);
    assert!(!ifs.contains("eth1"), "{ifs}");
    let out = d.berth(&["run", "--rm", "--network", "back", "busybox", "nslookup", "-type=a", "apiback"]);
    assert!(!stdout(&out).contains(&ip_back));
    // A stopped container: connect is remembered and applied at start.
    d.ok(&["create", "--name", "later", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "back", "later"]);
    d.ok(&["start", "later"]);
    assert!(!ip_on(&d, "later", "back").is_empty());
    assert!(!ip_on(&d, "later", "bridge").is_empty());
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn published_ports_reach_the_container() {
    let d = daemon_with_busybox();
    // Free ports chosen by the kernel, then released for the container.
    let free = free_port;
    let (p1, p2) = (free(), free());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "BODY=hello-web",
        "-p",
        &format!("{p1}:80"),
        "-p",
        &format!("127.0.0.1:{p2}:80"),
        "-p",
        "80",
        "busybox",
        "sh",
        "-c",
        WEB,
    ]);
    assert_eq!(wait_http(&d, "127.0.0.1", p1).trim(), "hello-web");
    assert_eq!(page("127.0.0.1", p2).unwrap().trim(), "hello-web");
    // Through one of the host's own (non-loopback) addresses: the default bridge's gateway is one.
    let gw = gateway(&d, "bridge");
    assert_eq!(page(&gw, p1).unwrap().trim(), "hello-web");
    assert!(page(&gw, p2).is_err(), "bound to 127.0.0.1 only");
    // The random one, reported by `port` and inspect.
    let port_out = d.ok(&["port", "web"]);
    assert!(port_out.contains(&format!("80/tcp -> 0.0.0.0:{p1}")), "{port_out}");
    assert!(port_out.contains(&format!("80/tcp -> 127.0.0.1:{p2}")), "{port_out}");
    let random: u16 = d
        .inspect("web", "{{range (index .NetworkSettings.Ports \"80/tcp\")}}{{.HostIp}}:{{.HostPort}} {{end}}")
        .split_whitespace()
        .filter_map(|b| b.strip_prefix("0.0.0.0:"))
        .map(|p| p.parse().unwrap())
        .find(|p| *p != p1)
        .expect("a random host port");
    assert_eq!(page("127.0.0.1", random).unwrap().trim(), "hello-web");
    let ps = d.ok(&["ps", "--format", "{{.Ports}}", "-f", "name=web"]);
    assert!(ps.contains(&format!("0.0.0.0:{p1}->80/tcp")), "{ps}");
    // From other containers, on the same bridge (hairpin) and on another network.
    d.ok(&["network", "create", "other"]);
    for net in ["bridge", "other"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w3 {gw} {p1}"),
        ]);
        assert!(out.contains("hello-web"), "from {net}: {out}");
    }
    // A port another container holds: Docker's error, exit 125, nothing left behind.
    let out = d.berth(&["run", "--name", "clash", "-p", &format!("{p1}:80"), "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("port is already allocated"), "{}", stderr(&out));
    let clash_id = d.inspect("clash", "{{.Id}}");
    assert!(!d.dir.join("run/netns").join(&clash_id).exists());
    assert!(link_goes(&d, &format!("vb{}0", &clash_id[..10])));
    // A port a host program holds.
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let out = d.berth(&["run", "--rm", "-p", &format!("{held}:80"), "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("address already in use"), "{}", stderr(&out));
    // Stopped: the ports are free again.
    d.ok(&["stop", "-t", "0", "web"]);
    assert!(page("127.0.0.1", p1).is_err());
    TcpListener::bind(("0.0.0.0", p1)).expect("the port is released");
    // -P publishes the exposed ports.
    d.ok(&["run", "-d", "--name", "web2", "-e", "BODY=two", "--expose", "80", "-P", "busybox", "sh", "-c", WEB]);
    let hp = d.inspect("web2", "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}");
    assert_eq!(wait_http(&d, "127.0.0.1", hp.parse().unwrap()).trim(), "two");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn internal_networks_have_no_way_out() {
    let d = daemon_with_busybox();
    d.ok(&["network", "create", "--internal", "sealed"]);
    d.ok(&["run", "-d", "--name", "outside", "busybox", "sleep", "300"]);
    let outside_ip = d.inspect("outside", "{{.NetworkSettings.IPAddress}}");
    d.ok(&["run", "-d", "--name", "inner", "--network", "sealed", "busybox", "sleep", "300"]);
    let routes = d.ok(&["exec", "inner", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let out = d.berth(&["exec", "inner", "ping", "-c1", "-W1", &outside_ip]);
    assert_ne!(out.status.code(), Some(0));
    // Names still resolve inside; other names are not relayed anywhere (NXDOMAIN at once, not the SERVFAIL of an
    // unreachable upstream).
    d.ok(&["run", "--rm", "--network", "sealed", "busybox", "ping", "-c1", "-W2", "inner"]);
    let out = d.berth(&["run", "--rm", "--network", "sealed", "busybox", "nslookup", "-type=a", "elsewhere.invalid"]);
    assert!(stdout(&out).contains("NXDOMAIN"), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(d.ok(&["network", "inspect", "-f", "{{.Internal}}", "sealed"]).trim(), "true");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn none_host_and_container_modes() {
    let d = daemon_with_busybox();
    let out = d.ok(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("lo:") && out.contains("UP"), "loopback is up: {out}");
    let bridge = d.ok(&["network", "inspect", "-f", "{{index .Options \"com.docker.network.bridge.name\"}}", "bridge"]);
    let out = d.ok(&["run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"]);
    assert!(out.contains(bridge.trim()), "the host's interfaces: {out}");
    // A sidecar in another container's namespace: same address, and localhost between them.
    d.ok(&["run", "-d", "--name", "app", "-e", "BODY=sidecar-ok", "busybox", "sh", "-c", WEB]);
    let ip = d.inspect("app", "{{.NetworkSettings.IPAddress}}");
    let out = d.ok(&["run", "--rm", "--network", "container:app", "busybox", "sh", "-c",
        "ip -o -4 addr show eth0; for i in 1 2 3 4 5; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w2 127.0.0.1 80 && break; sleep 0.2; done"]);
    assert!(out.contains(&ip) && out.contains("sidecar-ok"), "{out}");
    let out = d.berth(&["run", "--rm", "--network", "container:nothere", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("No such container: nothere"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn network_rules_and_refusals() {
    let d = daemon_with_busybox();
    d.ok(&["network", "create", "--subnet", "10.232.0.0/24", "a"]);
    let out = d.berth(&["network", "create", "--subnet", "10.232.0.128/25", "b"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("overlaps"), "{}", stderr(&out));
    let out = d.berth(&["network", "create", "a"]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = d.berth(&["network", "create", "--subnet", "nonsense", "c"]);
    assert!(stderr(&out).contains("invalid"), "{}", stderr(&out));
    let out = d.berth(&["network", "rm", "bridge"]);
    assert!(stderr(&out).contains("pre-defined network"), "{}", stderr(&out));
    d.ok(&["run", "-d", "--name", "user", "--network", "a", "busybox", "sleep", "300"]);
    let out = d.berth(&["network", "rm", "a"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("active endpoints"), "{}", stderr(&out));
    let out = d.berth(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("network nosuchnet not found"), "{}", stderr(&out));
    let out = d.berth(&["run", "--rm", "--network-alias", "x", "busybox", "true"]);
    let err = stderr(&out);
    assert!(err.contains("user defined networks") || err.contains("user-defined networks"), "{err}");
    // Prune leaves networks in use and the predefined ones.
    d.ok(&["network", "create", "unused"]);
    let bridge_of = |n: &str| format!("br-{}", &d.ok(&["network", "inspect", "-f", "{{.Id}}", n]).trim()[..12]);
    let unused_bridge = bridge_of("unused");
    assert!(links().contains(&unused_bridge));
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(out.contains("unused") && !out.contains("bridge\n"), "{out}");
    assert!(!links().contains(&unused_bridge), "its bridge is deleted");
    let names = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(names.contains("a\n") && names.contains("bridge") && names.contains("host") && names.contains("none"));
    d.ok(&["rm", "-f", "user"]);
    d.ok(&["network", "rm", "a"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn restarted_daemon_keeps_connectivity_and_cleans_up() {
    let mut d = daemon_with_busybox();
    let free = free_port();
    d.ok(&["network", "create", "keep"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--network",
        "keep",
        "-e",
        "BODY=still-here",
        "-p",
        &format!("127.0.0.1:{free}:80"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]);
    assert_eq!(wait_http(&d, "127.0.0.1", free).trim(), "still-here");
    let ip = ip_on(&d, "svc", "keep");
    d.ok(&["run", "-d", "--name", "gone-soon", "--network", "keep", "busybox", "sleep", "300"]);
    let gone_id = d.inspect("gone-soon", "{{.Id}}");
    let gone_pid: i32 = d.inspect("gone-soon", "{{.State.Pid}}").parse().unwrap();
    d.kill9();
    // While berthd is down one container ends for good (its program and its shim).
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(gone_pid), nix::sys::signal::Signal::SIGKILL);
    for p in processes_with(&gone_id) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    // The survivor keeps its address, its name and its port; a new container does not get its address.
    assert_eq!(wait_http(&d, "127.0.0.1", free).trim(), "still-here");
    assert_eq!(ip_on(&d, "svc", "keep"), ip);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "sh",
        "-c",
        "nslookup -type=a svc; ip -o -4 addr show eth0",
    ]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert_eq!(out.matches(&format!("{ip}/")).count(), 0, "its address is not handed out again: {out}");
    // What belonged to the container that died meanwhile is gone.
    assert!(d.eventually(10, || !d.dir.join("run/netns").join(&gone_id).exists()));
    assert!(link_goes(&d, &format!("vb{}0", &gone_id[..10])));
    d.ok(&["rm", "-f", "svc", "gone-soon"]);
    assert!(page("127.0.0.1", free).is_err());
    let left: Vec<_> = std::fs::read_dir(d.dir.join("run/netns")).unwrap().flatten().collect();
    assert!(left.is_empty(), "no namespace pins left: {left:?}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn no_leaks_after_many_containers() {
    let d = daemon_with_busybox();
    d.ok(&["network", "create", "busy"]);
    for i in 0..6 {
        let net = if i % 2 == 0 { "busy" } else { "bridge" };
        d.ok(&["run", "--rm", "--network", net, "-p", "80", "busybox", "true"]);
    }
    let ids: Vec<String> = (0..4)
        .map(|_| d.ok(&["run", "-d", "--network", "busy", "busybox", "sleep", "300"]).trim().to_string())
        .collect();
    d.ok(&["rm", "-f", &ids[0], &ids[1], &ids[2], &ids[3]]);
    for id in &ids {
        assert!(link_goes(&d, &format!("vb{}", &id[..10])), "{}", links());
    }
    let left: Vec<_> = std::fs::read_dir(d.dir.join("run/netns")).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The iptables backend (hosts without nft): published ports, masquerading and isolation through Berth's own
/// chains, all gone after the daemon's networking is removed.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn iptables_backend_when_there_is_no_nft() {
    require_root();
    if !std::path::Path::new("/usr/sbin/iptables-restore").exists() {
        skip_missing_tool("iptables is not installed; the iptables backend was not tried");
        return;
    }
    let d = Berthd::start_with(&["--firewall", "iptables"]);
    d.busybox();
    let port = free_port();
    d.ok(&["network", "create", "ipt"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "ipt",
        "-e",
        "BODY=via-iptables",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]);
    assert_eq!(wait_http(&d, "127.0.0.1", port).trim(), "via-iptables");
    let gw = gateway(&d, "bridge");
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w3 {gw} {port}"),
    ]);
    assert!(out.contains("via-iptables"), "another network reaches the published port: {out}");
    let ip = ip_on(&d, "web", "ipt");
    let across = d.berth(&["run", "--rm", "busybox", "ping", "-c1", "-W1", &ip]);
    assert_ne!(across.status.code(), Some(0), "isolated");
    let nat = String::from_utf8_lossy(
        &std::process::Command::new("iptables").args(["-w", "-t", "nat", "-S"]).output().unwrap().stdout,
    )
    .to_string();
    assert!(nat.contains(&format!("--dport {port} -j DNAT --to-destination {ip}:80")), "{nat}");
    let chain = nat.lines().find(|l| l.starts_with("-N BERTH_") && l.ends_with("-PORTS")).map(|l| l[3..].to_string());
    let chain = chain.expect("berth's chain");
    drop(d);
    let nat = String::from_utf8_lossy(
        &std::process::Command::new("iptables").args(["-w", "-t", "nat", "-S"]).output().unwrap().stdout,
    )
    .to_string();
    assert!(!nat.contains(&chain), "removed with the daemon's networking: {nat}");
}
