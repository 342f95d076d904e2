//! Issue 12, findings 3 and 4: Berth never configures or deletes a host interface it did not create (a network's
//! `bridge.name`, `berthd --bridge`, records whose bridge was replaced), refuses subnets over loopback, other networks
//! and the host's own addresses, and keeps containers' secrets (bundles, logs, shim sockets) from local users.
//!
//! Interfaces are the test's own (`ip link add bt<pid><x> type veth|bridge`, deleted by a guard), never the machine's
//! `lo` or `eth0`: a faulty build would reconfigure or delete them.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_integration::*;

/// The kind of the non-bridge interfaces the test creates: a veth (the `dummy` module is not everywhere; veths are,
/// since Berth needs them).
const NOT_A_BRIDGE: &str = "veth";

/// A link the test created; deleted on drop.
struct Link(String);

impl Link {
    /// `ip link add NAME type KIND` (up). A `veth`'s peer gets a name of its own (deleting one end deletes both).
    /// Berth itself needs veths and bridges: a host where they cannot be made fails the test rather than skip it.
    fn add(name: String, kind: &str) -> Link {
        static PEERS: AtomicUsize = AtomicUsize::new(0);
        let _ = Command::new("ip").args(["link", "del", &name]).output();
        let mut args = vec!["link".to_string(), "add".into(), name.clone(), "type".into(), kind.into()];
        if kind == "veth" {
            let peer = link_name(&format!("p{}", PEERS.fetch_add(1, Ordering::SeqCst)));
            let _ = Command::new("ip").args(["link", "del", &peer]).output();
            args.extend(["peer".into(), "name".into(), peer]);
        }
        let out = Command::new("ip").args(&args).output().unwrap();
        assert!(out.status.success(), "cannot create a {kind} interface: {}", stderr(&out));
        let l = Link(name);
        assert!(Command::new("ip").args(["link", "set", &l.0, "up"]).status().unwrap().success());
        l
    }

    fn exists(&self) -> bool {
        Command::new("ip").args(["link", "show", &self.0]).output().unwrap().status.success()
    }

    /// `ip -o link` details of the link: its kind (`veth`, `bridge`) among them.
    fn kind(&self) -> String {
        let out = Command::new("ip").args(["-d", "-o", "link", "show", &self.0]).output().unwrap();
        stdout(&out)
    }

    /// Its IPv4 addresses.
    fn addresses(&self) -> String {
        stdout(&Command::new("ip").args(["-4", "-o", "addr", "show", "dev", &self.0]).output().unwrap())
    }

    fn route_localnet(&self) -> String {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{}/route_localnet", self.0))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Asserts Berth left the link as the test made it: present, of its kind, no address, no `route_localnet`, in
    /// no firewall rule.
    fn assert_untouched(&self, kind: &str, d: &Berthd) {
        assert!(self.exists(), "{} was deleted; berthd log:\n{}", self.0, tail(&d.log(), 30));
        assert!(self.kind().contains(kind), "{} is no longer a {kind}: {}", self.0, self.kind());
        assert_eq!(self.addresses(), "", "{} got an address", self.0);
        assert_eq!(self.route_localnet(), "0", "{} got route_localnet", self.0);
        let rules = firewall_rules();
        assert!(!rules.contains(&self.0), "{} is in the firewall rules:\n{rules}", self.0);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// A name for a test link, unique to this test process.
fn link_name(suffix: &str) -> String {
    format!("bt{}{suffix}", std::process::id() % 100_000)
}

/// Every firewall rule of the host (nftables and iptables, whichever exists).
fn firewall_rules() -> String {
    let mut s = String::new();
    for (tool, args) in [("nft", &["list", "ruleset"][..]), ("iptables-save", &[][..])] {
        if let Ok(o) = Command::new(tool).args(args).output() {
            s += &stdout(&o);
        }
    }
    s
}

fn create_network(d: &Berthd, body: &str) -> (u16, String) {
    let (status, _, body) = api(d, "POST", "/networks/create", body.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `berthd --remove-networking` on a stopped daemon's roots, as an uninstall runs it.
fn remove_networking(data: &Path, run: &Path, extra: &[&str]) {
    let out = Command::new(bin("berthd"))
        .arg("--data-root")
        .arg(data)
        .arg("--exec-root")
        .arg(run)
        .arg("--remove-networking")
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "--remove-networking: {}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn network_create_refuses_existing_interfaces_and_leaves_them_alone() {
    require_root();
    let iface = Link::add(link_name("d"), NOT_A_BRIDGE);
    let foreign = Link::add(link_name("b"), "bridge");
    let d = Berthd::start();

    let (status, body) = create_network(
        &d,
        &format!(r#"{{"Name":"takeover","Options":{{"com.docker.network.bridge.name":"{}"}}}}"#, iface.0),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&format!("existing interface {} is not a bridge", iface.0)), "{body}");
    // The CLI path too (docker's `-o`).
    let out = d.berth(&["network", "create", "-o", &format!("com.docker.network.bridge.name={}", iface.0), "t2"]);
    assert!(!out.status.success() && stderr(&out).contains("is not a bridge"), "{}", stderr(&out));

    // A bridge that exists but that this daemon did not create (the host's, another daemon's): refused as well.
    let (status, body) = create_network(
        &d,
        &format!(r#"{{"Name":"takeover2","Options":{{"com.docker.network.bridge.name":"{}"}}}}"#, foreign.0),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not created by berth"), "{body}");

    let names = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.contains("takeover") && !names.contains("t2"), "{names}");
    iface.assert_untouched(NOT_A_BRIDGE, &d);
    foreign.assert_untouched("bridge", &d);

    // The daemon's own networks still come and go, and neither their removal nor an uninstall touches the links.
    d.ok(&["network", "create", "mine"]);
    d.ok(&["network", "rm", "mine"]);
    let (data, run) = (d.dir.join("data"), d.dir.join("run"));
    let mut d = d;
    d.sigterm();
    remove_networking(&data, &run, &[]);
    iface.assert_untouched(NOT_A_BRIDGE, &d);
    foreign.assert_untouched("bridge", &d);
}

/// A network's bridge deleted while berthd was down and replaced by some other interface of the same name: the
/// restarted daemon neither configures it, nor deletes it on `network rm` or `--remove-networking`.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_replaced_bridge_is_neither_configured_nor_deleted() {
    let mut d = Berthd::start();
    d.ok(&["network", "create", "replaced"]);
    let id = d.ok(&["network", "inspect", "-f", "{{.Id}}", "replaced"]).trim().to_string();
    let bridge = format!("br-{}", &id[..12]);
    d.sigterm();
    assert!(Command::new("ip").args(["link", "del", &bridge]).status().unwrap().success());
    let impostor = Link::add(bridge.clone(), NOT_A_BRIDGE);
    d.restart();
    assert!(d.log().contains(&format!("existing interface {bridge} is not a bridge")), "{}", tail(&d.log(), 30));
    impostor.assert_untouched(NOT_A_BRIDGE, &d);
    // No container joins it either (its veth would be enslaved to the impostor).
    d.busybox();
    let out = d.berth(&["run", "--rm", "--network", "replaced", "busybox", "true"]);
    assert!(!out.status.success() && stderr(&out).contains("unusable"), "{}", stderr(&out));
    d.ok(&["create", "--name", "later", "busybox", "true"]);
    let out = d.berth(&["network", "connect", "replaced", "later"]);
    assert!(out.status.success(), "connecting a stopped container only records it: {}", stderr(&out));
    d.ok(&["rm", "later"]);
    let running = d.ok(&["run", "-d", "busybox", "sleep", "60"]).trim().to_string();
    let out = d.berth(&["network", "connect", "replaced", &running]);
    assert!(!out.status.success() && stderr(&out).contains("unusable"), "{}", stderr(&out));
    d.ok(&["rm", "-f", &running]);
    impostor.assert_untouched(NOT_A_BRIDGE, &d);
    d.ok(&["network", "rm", "replaced"]);
    impostor.assert_untouched(NOT_A_BRIDGE, &d);

    // A record of a network whose bridge is not a bridge, left for the uninstall.
    d.ok(&["network", "create", "replaced2"]);
    let id = d.ok(&["network", "inspect", "-f", "{{.Id}}", "replaced2"]).trim().to_string();
    let bridge2 = format!("br-{}", &id[..12]);
    d.sigterm();
    assert!(Command::new("ip").args(["link", "del", &bridge2]).status().unwrap().success());
    let impostor2 = Link::add(bridge2, NOT_A_BRIDGE);
    remove_networking(&d.dir.join("data"), &d.dir.join("run"), &[]);
    impostor2.assert_untouched(NOT_A_BRIDGE, &d);
    impostor.assert_untouched(NOT_A_BRIDGE, &d);
}

/// `berthd --bridge NAME`: a non-bridge refuses the start untouched; a bridge Berth did not create is used (as dockerd
/// uses `-b`'s) and never deleted.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn berthd_bridge_flag_never_takes_or_deletes_a_foreign_interface() {
    require_root();
    let iface = Link::add(link_name("e"), NOT_A_BRIDGE);
    let dir = PathBuf::from(format!("/tmp/bt-secnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (data, run) = (dir.join("data"), dir.join("run"));
    let mut args: Vec<std::ffi::OsString> = vec!["--host".into()];
    args.push(format!("unix://{}", dir.join("s.sock").display()).into());
    args.extend([
        "--data-root".into(),
        data.clone().into_os_string(),
        "--exec-root".into(),
        run.clone().into_os_string(),
    ]);
    args.extend(["--bip", "10.127.254.1/24", "--bridge", &iface.0].map(Into::into));
    // It refuses while loading its networks, long before 20 s.
    let (status, err) = berthd_refusing(args, 20);
    remove_networking(&data, &run, &["--bridge", &iface.0]);
    for m in mounts_under(&dir).iter().rev() {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.expect("berthd --bridge <a veth> kept running");
    assert!(!status.success(), "berthd started on a veth as its bridge: {err}");
    assert!(err.contains(&format!("existing interface {} is not a bridge", iface.0)), "{err}");
    assert!(iface.exists() && iface.addresses().is_empty() && iface.route_localnet() == "0");
    assert!(!firewall_rules().contains(&iface.0));

    // A bridge that exists: used, then left in place by the daemon's stop and its uninstall (the harness's drop
    // runs `--remove-networking --bridge NAME`).
    let given = Link::add(link_name("g"), "bridge");
    let d = Berthd::start_with(&["--bridge", &given.0]);
    assert!(!given.addresses().is_empty(), "the default network's gateway goes on the given bridge");
    d.ok(&["network", "create", "other"]);
    drop(d);
    assert!(given.exists(), "the bridge given with --bridge was deleted");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn subnets_over_loopback_other_networks_or_host_addresses_are_refused() {
    let d = Berthd::start();
    let (status, body) = create_network(&d, r#"{"Name":"lo1","IPAM":{"Config":[{"Subnet":"127.5.0.0/16"}]}}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("loopback"), "{body}");
    let (status, body) = create_network(&d, r#"{"Name":"lo2","IPAM":{"Config":[{"Subnet":"96.0.0.0/3"}]}}"#);
    assert_eq!(status, 400, "a subnet around 127.0.0.0/8: {body}");

    let bridge_subnet =
        d.ok(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "bridge"]).trim().to_string();
    d.ok(&["network", "create", "first"]);
    let first =
        d.ok(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "first"]).trim().to_string();
    for taken in [&bridge_subnet, &first] {
        let (status, body) =
            create_network(&d, &format!(r#"{{"Name":"over","IPAM":{{"Config":[{{"Subnet":"{taken}"}}]}}}}"#));
        assert_eq!(status, 403, "{taken}: {body}");
        assert!(body.contains("Pool overlaps with other one on this address space"), "{body}");
    }

    // A gateway that is one of the host's own addresses (on the test's veth, in TEST-NET-1: no traffic).
    let iface = Link::add(link_name("h"), NOT_A_BRIDGE);
    assert!(Command::new("ip").args(["addr", "add", "192.0.2.1/32", "dev", &iface.0]).status().unwrap().success());
    let (status, body) = create_network(
        &d,
        r#"{"Name":"hostaddr","IPAM":{"Config":[{"Subnet":"192.0.2.0/29","Gateway":"192.0.2.1"}]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("address of a host interface"), "{body}");

    let names = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["lo1", "lo2", "over", "hostaddr"] {
        assert!(!names.lines().any(|l| l == n), "{n} was created: {names}");
    }
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

/// Runs `args` as `nobody` (65534, no supplementary groups).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .unwrap()
}

/// Connects to a Unix socket with perl; the exit code says whether it worked.
fn connect_cmd(sock: &Path) -> Vec<String> {
    vec![
        "perl".into(),
        "-MIO::Socket::UNIX".into(),
        "-e".into(),
        "IO::Socket::UNIX->new(Peer => $ARGV[0]) or die qq(connect: $!\\n)".into(),
        sock.display().to_string(),
    ]
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn local_users_cannot_read_container_secrets() {
    let d = daemon_with_busybox();
    if Command::new("setpriv").arg("--version").output().is_err() || Command::new("perl").arg("-v").output().is_err() {
        skip_missing_tool("setpriv or perl is not installed");
        return;
    }
    let id = d
        .ok(&["run", "-d", "-e", "SECRET_TOKEN=s3cr3t-value", "busybox", "sh", "-c", "echo logged-s3cr3t; sleep 300"])
        .trim()
        .to_string();
    assert!(d.eventually(10, || d.ok(&["logs", &id]).contains("logged-s3cr3t")));
    let run = d.dir.join("run");
    let bundle = run.join("containers").join(&id);
    let log = PathBuf::from(d.inspect(&id, "{{.LogPath}}"));
    let cdir = d.dir.join("data").join("containers").join(&id);

    // Modes: the exec root only passable (the API socket lives there), everything below root's only.
    assert_eq!(mode_of(&run), 0o711);
    for sub in ["containers", "runtime", "build", "tmp"] {
        assert_eq!(mode_of(&run.join(sub)), 0o700, "{sub}");
    }
    assert_eq!(mode_of(&d.dir.join("data").join("containers")), 0o700);
    assert_eq!(mode_of(&bundle), 0o700);
    for f in ["config.json", "shim.json", "shim.sock"] {
        assert_eq!(mode_of(&bundle.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode_of(&log), 0o600, "the log");
    // The files containers read through bind mounts stay readable for their non-root users.
    for f in ["hosts", "resolv.conf", "hostname"] {
        assert_eq!(mode_of(&cdir.join(f)), 0o644, "{f}");
    }

    // What a local user actually gets. The control: `nobody` can read a world-readable file.
    let control = as_nobody(&["cat", "/etc/hostname"]);
    assert!(control.status.success(), "setpriv does not work here: {}", stderr(&control));
    assert!(std::fs::read_to_string(bundle.join("config.json")).unwrap().contains("s3cr3t-value"));
    for f in [bundle.join("config.json"), bundle.join("shim.json"), log.clone(), cdir.join("hosts")] {
        let out = as_nobody(&["cat", f.to_str().unwrap()]);
        assert!(!out.status.success(), "nobody read {}: {}", f.display(), stdout(&out));
        assert!(stderr(&out).contains("Permission denied"), "{}: {}", f.display(), stderr(&out));
    }
    let out = as_nobody(&["ls", bundle.to_str().unwrap()]);
    assert!(!out.status.success(), "nobody listed the bundle (exec requests land there): {}", stdout(&out));
    // The shim's socket: root connects, nobody does not.
    let sock = bundle.join("shim.sock");
    let cmd = connect_cmd(&sock);
    let root = Command::new(&cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(root.status.success(), "root cannot connect to the shim: {}", stderr(&root));
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = as_nobody(&args);
    assert!(!out.status.success(), "nobody connected to the shim socket");
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));

    // Containers still work: exec (its request file is written root-only), and a non-root user in a container reads
    // its /etc files, on the default bridge and on a user-defined network.
    assert_eq!(d.ok(&["exec", "-e", "X=exec-ok", &id, "sh", "-c", "echo $X"]).trim(), "exec-ok");
    let out = d.ok(&["run", "--rm", "-u", "1000", "busybox", "cat", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]);
    assert!(out.contains("localhost") && out.contains("nameserver"), "{out}");
    d.ok(&["network", "create", "secnet"]);
    let out = d.ok(&["run", "--rm", "-u", "1000:1000", "--network", "secnet", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(out.contains("nameserver"), "{out}");
    d.ok(&["rm", "-f", &id]);
}
