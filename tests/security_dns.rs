//! Issue 12, finding 6: the embedded DNS server answers a container only with the names of the networks it shares
//! with the target, and answers (or relays) nothing for the host's users or for containers of other networks —
//! including the default bridge — that query a network's gateway.
//!
//! Traffic stays on loopback and Berth's own bridges: names that are not Berth's go to a fake upstream server the
//! test runs on a loopback address (`127.x.y.z:53`), which counts the queries it gets.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth_integration::*;

/// What the fake upstream answers for every name.
const RELAYED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
/// A name no container has: relayed, if at all, to the upstream.
const OUTSIDE: &str = "relay.invalid";

fn bridge_of(d: &Berthd, net: &str) -> String {
    let id = d.ok(&["network", "inspect", "-f", "{{.Id}}", net]).trim().to_string();
    format!("br-{}", &id[..12])
}

/// A DNS server on a loopback address of the test's own that answers every query with [`RELAYED`] and counts them.
struct Upstream {
    addr: Ipv4Addr,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Upstream {
        // Unique to this test process and to each server in it.
        static N: AtomicUsize = AtomicUsize::new(0);
        let (p, n) = (std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let addr = Ipv4Addr::new(127, 77 + (n % 16) as u8, (p >> 8) as u8, (p as u8).max(2));
        let sock = UdpSocket::bind((addr, 53)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let (count, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
                if n < 12 {
                    continue;
                }
                c.fetch_add(1, Ordering::SeqCst);
                let mut r = buf[..n].to_vec();
                // Header: a response, recursion available, one answer, no authority or additional records.
                r[2] = 0x81;
                r[3] = 0x80;
                r[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
                // Only the question, then the answer (a pointer to the question's name).
                let qend = question_end(&r).unwrap_or(n);
                r.truncate(qend);
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&RELAYED.octets());
                let _ = sock.send_to(&r, peer);
            }
        });
        Upstream { addr, count, stop, thread: Some(thread) }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the (first) question of a DNS message ends.
fn question_end(m: &[u8]) -> Option<usize> {
    let mut i = 12;
    while *m.get(i)? != 0 {
        i += usize::from(m[i]) + 1;
    }
    Some(i + 5)
}

/// A DNS query for `name`'s A record.
fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// What a reply said: its RCODE and the addresses of its A records.
#[derive(Debug)]
struct Reply {
    rcode: u8,
    addresses: Vec<Ipv4Addr>,
}

fn parse_reply(m: &[u8]) -> Reply {
    let ancount = u16::from_be_bytes([m[6], m[7]]);
    let mut addresses = Vec::new();
    let mut i = question_end(m).unwrap();
    for _ in 0..ancount {
        // Name: a pointer, or labels.
        if m[i] & 0xc0 == 0xc0 {
            i += 2;
        } else {
            while m[i] != 0 {
                i += usize::from(m[i]) + 1;
            }
            i += 1;
        }
        let (ty, len) = (u16::from_be_bytes([m[i], m[i + 1]]), usize::from(u16::from_be_bytes([m[i + 8], m[i + 9]])));
        i += 10;
        if ty == 1 && len == 4 {
            addresses.push(Ipv4Addr::new(m[i], m[i + 1], m[i + 2], m[i + 3]));
        }
        i += len;
    }
    Reply { rcode: m[3] & 0x0f, addresses }
}

/// Asks `server:53` over UDP from the host (as the test's user, root), optionally from a socket bound to `device`
/// (SO_BINDTODEVICE, as if the query came in on that bridge). `None`: no reply (refused by the kernel, or none
/// within 3 s — the server answers or refuses at once, relays time out after 3 s).
fn udp_ask(server: &str, name: &str, device: Option<&str>) -> Option<Reply> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    if let Some(dev) = device {
        // SAFETY: setsockopt on a socket this function owns, with a buffer and its length.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_BINDTODEVICE {dev}: {}", std::io::Error::last_os_error());
    }
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.connect(format!("{server}:53")).unwrap();
    s.send(&query(name)).ok()?;
    let mut buf = [0u8; 1500];
    let n = s.recv(&mut buf).ok()?;
    Some(parse_reply(&buf[..n]))
}

/// The same over TCP.
fn tcp_ask(server: &str, name: &str) -> Option<Reply> {
    let addr: SocketAddr = format!("{server}:53").parse().unwrap();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let q = query(name);
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&q);
    c.write_all(&msg).ok()?;
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut r).ok()?;
    Some(parse_reply(&r))
}

/// busybox `nslookup -type=a NAME [SERVER]` run by `nobody` on the host; its output.
fn nobody_nslookup(name: &str, server: &str) -> String {
    let out = Command::new("timeout")
        .args(["20", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "busybox", "nslookup", "-type=a"])
        .args([name, server])
        .output()
        .unwrap();
    format!("{}{}", stdout(&out), stderr(&out))
}

/// `nslookup -type=a NAME [SERVER]` in a new container with `run_args`; its output.
fn lookup_in(d: &Berthd, run_args: &[&str], name: &str, server: Option<&str>) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(run_args);
    args.extend(["busybox", "nslookup", "-type=a", name]);
    args.extend(server);
    let out = d.berth(&args);
    format!("{}{}", stdout(&out), stderr(&out))
}

/// The same in a running container.
fn lookup_exec(d: &Berthd, c: &str, name: &str, server: Option<&str>) -> String {
    let mut args = vec!["exec", c, "nslookup", "-type=a", name];
    args.extend(server);
    let out = d.berth(&args);
    format!("{}{}", stdout(&out), stderr(&out))
}

/// Whether the host's firewall (nftables or iptables) has a rule dropping port 53 of `gateway` (from other bridges).
fn dns_port_dropped(gateway: &str) -> bool {
    let mut rules = String::new();
    for (tool, args) in [("nft", &["list", "ruleset"][..]), ("iptables-save", &["-t", "raw"][..])] {
        if let Ok(o) = Command::new(tool).args(args).output() {
            rules += &stdout(&o);
        }
    }
    rules
        .lines()
        .any(|l| l.contains(gateway) && l.contains("dport 53") && (l.contains(" drop") || l.contains("-j DROP")))
}

fn resolved(out: &str, ip: &str) -> bool {
    out.contains(&format!("Address: {ip}"))
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn containers_resolve_only_names_of_networks_they_share() {
    require_root();
    let up = Upstream::start();
    let d = Berthd::start();
    d.busybox();
    d.ok(&["network", "create", "dnsa"]);
    d.ok(&["network", "create", "dnsb"]);
    d.ok(&["run", "-d", "--name", "peer", "--network", "dnsa", "--network-alias", "pa", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "other", "--network", "dnsb", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "both", "--network", "dnsa", "busybox", "sleep", "300"]);
    d.ok(&["network", "connect", "dnsb", "both"]);
    let (gwa, gwb) = (gateway(&d, "dnsa"), gateway(&d, "dnsb"));
    let peer_ip = ip_on(&d, "peer", "dnsa");
    let other_ip = ip_on(&d, "other", "dnsb");
    let peer_id = d.inspect("peer", "{{.Id}}");
    // Besides the sockets bound to each bridge, the firewall drops the DNS port of a network's gateway for the
    // other bridges; the default bridge's gateway has no server and no such rule.
    assert!(dns_port_dropped(&gwa) && dns_port_dropped(&gwb), "no firewall rule for the DNS ports");
    assert!(!dns_port_dropped(&gateway(&d, "bridge")));

    // A container of A: its peers on A by name, alias, short ID and name.network.
    for name in ["peer", "pa", &peer_id[..12], "peer.dnsa"] {
        let out = lookup_in(&d, &["--network", "dnsa"], name, None);
        assert!(resolved(&out, &peer_ip), "{name} from dnsa: {out}");
    }
    // Not B's containers: not through its own gateway, not through B's.
    for server in [None, Some(gwa.as_str()), Some(gwb.as_str())] {
        let out = lookup_in(&d, &["--network", "dnsa"], "other", server);
        assert!(!resolved(&out, &other_ip), "dnsa resolved other through {server:?}: {out}");
    }
    // A container on the default bridge resolves nothing through the networks' gateways.
    for (server, name, ip) in [(&gwa, "peer", &peer_ip), (&gwb, "other", &other_ip)] {
        let out = lookup_in(&d, &[], name, Some(server));
        assert!(!resolved(&out, ip), "the default bridge resolved {name} through {server}: {out}");
    }
    // And a relay through them neither.
    let before = up.count();
    let out = lookup_in(&d, &["--dns", &up.addr.to_string()], OUTSIDE, Some(&gwa));
    assert!(!resolved(&out, &RELAYED.to_string()), "the default bridge got a relay through {gwa}: {out}");
    assert_eq!(up.count(), before, "the default bridge's query was relayed");

    // A container on A and B sees both, through either gateway.
    for server in [None, Some(gwa.as_str()), Some(gwb.as_str())] {
        let out = lookup_exec(&d, "both", "peer", server);
        assert!(resolved(&out, &peer_ip), "both: peer through {server:?}: {out}");
        let out = lookup_exec(&d, "both", "other", server);
        assert!(resolved(&out, &other_ip), "both: other through {server:?}: {out}");
    }
    // After leaving B, not B's names.
    d.ok(&["network", "disconnect", "dnsb", "both"]);
    let out = lookup_exec(&d, "both", "other", None);
    assert!(!resolved(&out, &other_ip), "both resolved other after leaving dnsb: {out}");

    // Names that are not containers' are relayed for containers, to their --dns.
    let before = up.count();
    let out = lookup_in(&d, &["--network", "dnsa", "--dns", &up.addr.to_string()], OUTSIDE, None);
    assert!(resolved(&out, &RELAYED.to_string()), "relay for a container of dnsa: {out}");
    assert!(up.count() > before, "the upstream got the query");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn host_users_get_no_names_and_no_relay() {
    require_root();
    let up = Upstream::start();
    // berthd's own --dns is the fake upstream: whatever it relayed would end there (the harness's first --dns, the
    // default bridge's gateway, has no server).
    let d = Berthd::start_with(&["--dns", &up.addr.to_string()]);
    d.busybox();
    d.ok(&["network", "create", "dnsh"]);
    d.ok(&["run", "-d", "--name", "peer", "--network", "dnsh", "busybox", "sleep", "300"]);
    let gw = gateway(&d, "dnsh");
    let bridge = bridge_of(&d, "dnsh");
    let peer_ip: Ipv4Addr = ip_on(&d, "peer", "dnsh").parse().unwrap();
    // The server does answer the network's containers (so silence below is not a dead server).
    let out = lookup_in(&d, &["--network", "dnsh"], "peer", None);
    assert!(resolved(&out, &peer_ip.to_string()), "{out}");

    // root: UDP, UDP from a socket bound to the network's bridge, TCP. No names, whatever the path.
    let no_names = |r: &Option<Reply>| r.as_ref().is_none_or(|r| r.addresses.is_empty());
    let r = udp_ask(&gw, "peer", None);
    assert!(no_names(&r), "root (UDP) resolved peer through {gw}: {r:?}");
    let r = udp_ask(&gw, "peer", Some(&bridge));
    assert!(no_names(&r), "root (UDP bound to {bridge}) resolved peer through {gw}: {r:?}");
    if let Some(r) = &r {
        assert_eq!(r.rcode, 5, "REFUSED: {r:?}");
    }
    let r = tcp_ask(&gw, "peer");
    assert!(no_names(&r), "root (TCP) resolved peer through {gw}: {r:?}");
    // nobody, with busybox nslookup.
    let out = nobody_nslookup("peer", &gw);
    assert!(!resolved(&out, &peer_ip.to_string()), "nobody resolved peer through {gw}: {out}");

    // Nor relays.
    let before = up.count();
    for r in [udp_ask(&gw, OUTSIDE, None), udp_ask(&gw, OUTSIDE, Some(&bridge)), tcp_ask(&gw, OUTSIDE)] {
        assert!(no_names(&r), "root got a relay through {gw}: {r:?}");
    }
    let out = nobody_nslookup(OUTSIDE, &gw);
    assert!(!resolved(&out, &RELAYED.to_string()), "nobody got a relay through {gw}: {out}");
    assert_eq!(up.count(), before, "a host user's query was relayed");
    // While the network's containers still get theirs (through berthd's --dns).
    let out = lookup_in(&d, &["--network", "dnsh"], OUTSIDE, None);
    assert!(resolved(&out, &RELAYED.to_string()), "relay for a container: {out}");
    assert!(up.count() > before);
}
