//! The embedded DNS server of user-defined networks. It listens on each such network's gateway address (UDP and TCP
//! port 53; containers get it as their `nameserver`), with its sockets bound to that network's bridge
//! (`SO_BINDTODEVICE`): the kernel delivers them only what arrived on that bridge, so neither a container of another
//! network (its packets arrive on its own bridge) nor a host process (its packets arrive on `lo`) reaches them.
//! A query is answered only when its source is a container's address on that very network; then it sees the names of
//! the containers that share a network with the asker — container name, short ID, aliases, `name.network` — and
//! every other query is relayed to the container's `--dns` servers (or berthd's, or the host's resolvers). Anything
//! else gets REFUSED: no names, no relay.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use simple_dns::rdata::{A, PTR, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::Error;

const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// One container's presence on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub network: String,
    /// The network's name (for `name.network` lookups).
    pub network_name: String,
    pub container: String,
    pub ip: Ipv4Addr,
    /// Names it answers to on this network, first the canonical one (used for reverse lookups).
    pub names: Vec<String>,
    /// The container's own `--dns` servers (queries it asks that are not for containers go there).
    pub upstream: Vec<Ipv4Addr>,
    /// The network is `--internal`: a container on internal networks only gets no answers from outside.
    pub internal: bool,
    /// Its legacy links on this network (`--link name:alias`): (alias, linked container's name). Only this
    /// container resolves the alias, to what the name resolves to on this network.
    pub links: Vec<(String, String)>,
}

/// The names of every network, replaced as containers come and go.
#[derive(Debug, Default)]
pub struct Table {
    entries: Vec<Entry>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Addresses(Vec<Ipv4Addr>),
    Name(String),
    /// Not a container name: ask upstream.
    Forward(Vec<Ipv4Addr>),
    /// Not a container name, and the asker has no way out (internal networks only).
    Unknown,
    /// The asker is not a container on the network whose server it reached: nothing is answered or relayed.
    Refused,
}

impl Table {
    /// The container asking: the one whose address on `network` (the network whose server the query reached,
    /// through that network's bridge) is `client`. Then the networks it may see (all it is on), where its other
    /// queries go, and whether they may go anywhere. `None`: not a container of that network.
    fn scope(&self, network: &str, client: Ipv4Addr) -> Option<(Vec<&str>, Vec<Ipv4Addr>, bool)> {
        let asker = self.entries.iter().find(|e| e.ip == client && e.network == network)?;
        let mine: Vec<&Entry> = self.entries.iter().filter(|e| e.container == asker.container).collect();
        let out = mine.iter().any(|e| !e.internal);
        Some((mine.iter().map(|e| e.network.as_str()).collect(), asker.upstream.clone(), out))
    }

    fn lookup(&self, network: &str, client: Ipv4Addr, qname: &str, qtype: QTYPE) -> Answer {
        let Some((nets, upstream, out)) = self.scope(network, client) else { return Answer::Refused };
        let forward = |upstream: Vec<Ipv4Addr>| if out { Answer::Forward(upstream) } else { Answer::Unknown };
        let mut name = qname.trim_end_matches('.').to_ascii_lowercase();
        // The asker's own link aliases on this network stand for the linked container's name there.
        let asker = self.entries.iter().find(|e| e.ip == client && e.network == network);
        if let Some((_, target)) =
            asker.and_then(|a| a.links.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(&name)))
        {
            let target = target.to_ascii_lowercase();
            let ips: Vec<Ipv4Addr> = self
                .entries
                .iter()
                .filter(|e| e.network == network && e.names.iter().any(|n| n.eq_ignore_ascii_case(&target)))
                .map(|e| e.ip)
                .collect();
            if !ips.is_empty() {
                return match qtype {
                    QTYPE::TYPE(TYPE::A) | QTYPE::ANY => Answer::Addresses(ips),
                    _ => Answer::Addresses(Vec::new()),
                };
            }
            name = target;
        }
        if let Some(ip) = reverse_name(&name) {
            if let Some(e) = self.entries.iter().find(|e| e.ip == ip && nets.contains(&e.network.as_str())) {
                return Answer::Name(e.names.first().cloned().unwrap_or_default());
            }
            return forward(upstream);
        }
        let mut ips = Vec::new();
        for e in self.entries.iter().filter(|e| nets.contains(&e.network.as_str())) {
            let hit = e.names.iter().any(|n| {
                let n = n.to_ascii_lowercase();
                name == n || name == format!("{n}.{}", e.network_name.to_ascii_lowercase())
            });
            if hit && !ips.contains(&e.ip) {
                ips.push(e.ip);
            }
        }
        if ips.is_empty() {
            return forward(upstream);
        }
        match qtype {
            QTYPE::TYPE(TYPE::A) | QTYPE::ANY => Answer::Addresses(ips),
            // A known name has no other records (AAAA, MX, …): an empty answer, not NXDOMAIN.
            _ => Answer::Addresses(Vec::new()),
        }
    }
}

fn reverse_name(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o: Vec<u8> = rest.split('.').map(|p| p.parse::<u8>().ok()).collect::<Option<_>>()?;
    if o.len() != 4 {
        return None;
    }
    o.reverse();
    Some(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
}

/// The DNS service: the name table and one listener pair per network gateway.
#[derive(Clone, Default)]
pub struct Dns {
    table: Arc<RwLock<Table>>,
    listeners: Arc<std::sync::Mutex<HashMap<Ipv4Addr, Vec<JoinHandle<()>>>>>,
}

impl Dns {
    pub fn new() -> Dns {
        Dns::default()
    }

    /// Replaces the names (called after every change of containers on networks).
    pub fn set_entries(&self, entries: Vec<Entry>) {
        if let Ok(mut t) = self.table.write() {
            t.entries = entries;
        }
    }

    /// Serves network `network` on `gateway:53` (UDP and TCP) to what arrives on its bridge `bridge` only. Must
    /// run inside a tokio runtime.
    pub fn listen(&self, network: &str, gateway: Ipv4Addr, bridge: &str) -> Result<(), Error> {
        let mut ls = self.listeners.lock().map_err(|_| Error::Netlink("dns lock poisoned".into()))?;
        if ls.contains_key(&gateway) {
            return Ok(());
        }
        let addr = SocketAddr::V4(SocketAddrV4::new(gateway, 53));
        let udp = bind_udp(addr, bridge)?;
        let tcp = bind_tcp(addr, bridge)?;
        let (t1, t2) = (self.table.clone(), self.table.clone());
        let u = tokio::spawn(serve_udp(udp, network.to_string(), t1));
        let t = tokio::spawn(serve_tcp(tcp, network.to_string(), t2));
        ls.insert(gateway, vec![u, t]);
        Ok(())
    }

    /// Stops serving a gateway (its network was removed).
    pub fn stop(&self, gateway: Ipv4Addr) {
        if let Ok(mut ls) = self.listeners.lock()
            && let Some(tasks) = ls.remove(&gateway)
        {
            for t in tasks {
                t.abort();
            }
        }
    }
}

fn sock2(addr: SocketAddr, bridge: &str, ty: socket2::Type) -> Result<socket2::Socket, Error> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, ty, None)
        .map_err(|e| Error::Os(format!("dns socket {addr}"), e))?;
    s.set_reuse_address(true).map_err(|e| Error::Os("SO_REUSEADDR".into(), e))?;
    // Only what arrives on the network's own bridge: not other bridges' containers, not the host (`lo`).
    s.bind_device(Some(bridge.as_bytes()))
        .map_err(|e| Error::Os(format!("bind the DNS server of {addr} to {bridge} (SO_BINDTODEVICE)"), e))?;
    // The gateway address may still be on its way onto the bridge.
    s.set_freebind_v4(true).map_err(|e| Error::Os("IP_FREEBIND".into(), e))?;
    s.set_nonblocking(true).map_err(|e| Error::Os("O_NONBLOCK".into(), e))?;
    s.bind(&addr.into()).map_err(|e| Error::Os(format!("bind the DNS server to {addr}"), e))?;
    Ok(s)
}

fn bind_udp(addr: SocketAddr, bridge: &str) -> Result<UdpSocket, Error> {
    let s = sock2(addr, bridge, socket2::Type::DGRAM)?;
    UdpSocket::from_std(s.into()).map_err(|e| Error::Os("dns udp".into(), e))
}

fn bind_tcp(addr: SocketAddr, bridge: &str) -> Result<TcpListener, Error> {
    let s = sock2(addr, bridge, socket2::Type::STREAM)?;
    s.listen(128).map_err(|e| Error::Os(format!("listen on {addr}"), e))?;
    TcpListener::from_std(s.into()).map_err(|e| Error::Os("dns tcp".into(), e))
}

/// At most this many queries of one network are answered (or relayed) at a time; more are dropped, as a busy
/// resolver does, instead of taking berthd's file descriptors.
const IN_FLIGHT: usize = 256;
/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

async fn serve_udp(sock: UdpSocket, network: String, table: Arc<RwLock<Table>>) {
    let sock = Arc::new(sock);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let query = buf[..n].to_vec();
        let (sock, table, network) = (sock.clone(), table.clone(), network.clone());
        tokio::spawn(async move {
            if let Some(reply) = respond(&table, &network, peer, &query, false).await {
                let _ = sock.send_to(&reply, peer).await;
            }
            drop(slot);
        });
    }
}

async fn serve_tcp(listener: TcpListener, network: String, table: Arc<RwLock<Table>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    loop {
        let (mut conn, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let (table, network) = (table.clone(), network.clone());
        tokio::spawn(async move {
            let _slot = slot;
            loop {
                let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, conn.read_u16()).await else { return };
                let mut query = vec![0u8; usize::from(len)];
                if !matches!(tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut query)).await, Ok(Ok(_))) {
                    return;
                }
                let Some(reply) = respond(&table, &network, peer, &query, true).await else { return };
                let Ok(rlen) = u16::try_from(reply.len()) else { return };
                if conn.write_u16(rlen).await.is_err() || conn.write_all(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Answers one query (wire format in, wire format out) that reached the server of `network`.
async fn respond(table: &RwLock<Table>, network: &str, peer: SocketAddr, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let packet = Packet::parse(query).ok()?;
    let q = packet.questions.first()?;
    let client = match peer.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let answer = {
        let t = table.read().ok()?;
        t.lookup(network, client, &q.qname.to_string(), q.qtype)
    };
    let mut reply = Packet::new_reply(packet.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions.push(q.clone());
    match answer {
        Answer::Addresses(ips) => {
            for ip in ips {
                reply.answers.push(ResourceRecord::new(
                    q.qname.clone(),
                    CLASS::IN,
                    TTL,
                    RData::A(A { address: u32::from(ip) }),
                ));
            }
        }
        Answer::Name(n) => {
            let target = Name::new(&n).ok()?.into_owned();
            reply.answers.push(ResourceRecord::new(q.qname.clone(), CLASS::IN, TTL, RData::PTR(PTR(target))));
        }
        Answer::Unknown => {
            *reply.rcode_mut() = RCODE::NameError;
        }
        Answer::Refused => {
            *reply.rcode_mut() = RCODE::Refused;
        }
        Answer::Forward(upstream) => {
            let servers = if upstream.is_empty() { host_resolvers() } else { upstream };
            for s in servers {
                if let Some(r) = forward(SocketAddr::V4(SocketAddrV4::new(s, 53)), query, tcp).await {
                    return Some(r);
                }
            }
            *reply.rcode_mut() = RCODE::ServerFailure;
        }
    }
    let wire = reply.build_bytes_vec().ok()?;
    // Over UDP an answer larger than the client takes (512 bytes, or its EDNS size) is truncated: the client then
    // asks again over TCP.
    let limit = packet.opt().map(|o| usize::from(o.udp_packet_size).max(512)).unwrap_or(512);
    if !tcp && wire.len() > limit {
        reply.answers.clear();
        reply.set_flags(PacketFlag::TRUNCATION);
        return reply.build_bytes_vec().ok();
    }
    Some(wire)
}

async fn forward(server: SocketAddr, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let work = async {
        if tcp {
            let mut c = tokio::net::TcpStream::connect(server).await.ok()?;
            c.write_u16(u16::try_from(query.len()).ok()?).await.ok()?;
            c.write_all(query).await.ok()?;
            let len = c.read_u16().await.ok()?;
            let mut r = vec![0u8; usize::from(len)];
            c.read_exact(&mut r).await.ok()?;
            Some(r)
        } else {
            let s = UdpSocket::bind("0.0.0.0:0").await.ok()?;
            // Connected, so that an unreachable server is an immediate error rather than a timeout.
            s.connect(server).await.ok()?;
            s.send(query).await.ok()?;
            let mut r = vec![0u8; 65535];
            let n = s.recv(&mut r).await.ok()?;
            r.truncate(n);
            Some(r)
        }
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, work).await.ok().flatten()
}

/// The host's IPv4 name servers (`/etc/resolv.conf`).
pub fn host_resolvers() -> Vec<Ipv4Addr> {
    parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()).nameservers
}

/// The parts of a resolv.conf that matter to containers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<Ipv4Addr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut r = ResolvConf::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(Ok(ip)) = f.next().map(str::parse::<Ipv4Addr>) {
                    r.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => r.search = f.map(str::to_string).collect(),
            Some("options") => r.options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(net: &str, c: &str, ip: [u8; 4], names: &[&str]) -> Entry {
        Entry {
            network: net.into(),
            network_name: format!("{net}-name"),
            container: c.into(),
            ip: ip.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            upstream: Vec::new(),
            internal: net == "n3",
            links: Vec::new(),
        }
    }

    fn table() -> Table {
        Table {
            entries: vec![
                entry("n1", "web", [10, 1, 0, 2], &["web", "abcdef123456", "frontend"]),
                entry("n1", "db", [10, 1, 0, 3], &["db"]),
                entry("n2", "db", [10, 2, 0, 2], &["db", "database"]),
                entry("n2", "other", [10, 2, 0, 3], &["other"]),
                entry("n3", "sealed", [10, 3, 0, 2], &["sealed"]),
            ],
        }
    }

    const A_Q: QTYPE = QTYPE::TYPE(TYPE::A);

    #[test]
    fn link_aliases_answer_only_the_linking_container() {
        let mut t = table();
        t.entries[0].links = vec![("database".into(), "DB".into())];
        let web: Ipv4Addr = [10, 1, 0, 2].into();
        // web's alias is db's address on the network it was asked through (not db's n2 alias `database`).
        assert_eq!(t.lookup("n1", web, "database", A_Q), Answer::Addresses(vec![[10, 1, 0, 3].into()]));
        assert_eq!(t.lookup("n1", web, "Database.", QTYPE::TYPE(TYPE::AAAA)), Answer::Addresses(vec![]));
        // Nobody else has it: db itself gets its own n2 alias, other containers of n1 nothing.
        t.entries.push(entry("n1", "third", [10, 1, 0, 4], &["third"]));
        assert_eq!(t.lookup("n1", [10, 1, 0, 4].into(), "database", A_Q), Answer::Forward(vec![]));
    }

    #[test]
    fn names_resolve_within_shared_networks_only() {
        let t = table();
        let web: Ipv4Addr = [10, 1, 0, 2].into();
        assert_eq!(t.lookup("n1", web, "db.", A_Q), Answer::Addresses(vec![[10, 1, 0, 3].into()]));
        assert_eq!(t.lookup("n1", web, "FRONTEND", A_Q), Answer::Addresses(vec![web]));
        assert_eq!(t.lookup("n1", web, "abcdef123456", A_Q), Answer::Addresses(vec![web]));
        assert_eq!(t.lookup("n1", web, "db.n1-name", A_Q), Answer::Addresses(vec![[10, 1, 0, 3].into()]));
        // `other` is on n2 only: web must not see it.
        assert_eq!(t.lookup("n1", web, "other", A_Q), Answer::Forward(vec![]));
        // db is on both networks and sees both.
        let db: Ipv4Addr = [10, 1, 0, 3].into();
        assert_eq!(t.lookup("n1", db, "other", A_Q), Answer::Addresses(vec![[10, 2, 0, 3].into()]));
        assert_eq!(t.lookup("n1", db, "database", A_Q), Answer::Addresses(vec![[10, 2, 0, 2].into()]));
        // And through its other network's server, from its address there.
        assert_eq!(t.lookup("n2", [10, 2, 0, 2].into(), "web", A_Q), Answer::Addresses(vec![web]));
        // Known names have no AAAA records.
        assert_eq!(t.lookup("n1", web, "db", QTYPE::TYPE(TYPE::AAAA)), Answer::Addresses(vec![]));
    }

    #[test]
    fn only_containers_of_the_servers_network_are_answered() {
        let t = table();
        let web: Ipv4Addr = [10, 1, 0, 2].into();
        // Not the host (loopback, a gateway), not an address of no container: no names, no relay.
        for client in [Ipv4Addr::LOCALHOST, [10, 1, 0, 1].into(), [10, 9, 0, 2].into()] {
            assert_eq!(t.lookup("n1", client, "web", A_Q), Answer::Refused, "{client}");
            assert_eq!(t.lookup("n1", client, "example.org", A_Q), Answer::Refused, "{client}");
        }
        // A container asking the server of a network it is not on, even with its own address (its packets would
        // arrive on another bridge).
        assert_eq!(t.lookup("n2", web, "other", A_Q), Answer::Refused);
        assert_eq!(t.lookup("n2", web, "example.org", A_Q), Answer::Refused);
        assert_eq!(t.lookup("n1", [10, 2, 0, 3].into(), "web", A_Q), Answer::Refused);
    }

    #[test]
    fn internal_networks_get_no_outside_answers() {
        let t = table();
        let sealed: Ipv4Addr = [10, 3, 0, 2].into();
        assert_eq!(t.lookup("n3", sealed, "example.org", A_Q), Answer::Unknown);
        assert_eq!(t.lookup("n3", sealed, "sealed", A_Q), Answer::Addresses(vec![sealed]));
        assert_eq!(t.lookup("n3", Ipv4Addr::LOCALHOST, "example.org", A_Q), Answer::Refused);
    }

    #[test]
    fn reverse_lookups() {
        let t = table();
        let web: Ipv4Addr = [10, 1, 0, 2].into();
        assert_eq!(t.lookup("n1", web, "3.0.1.10.in-addr.arpa.", QTYPE::TYPE(TYPE::PTR)), Answer::Name("db".into()));
        assert_eq!(t.lookup("n1", web, "3.0.2.10.in-addr.arpa", QTYPE::TYPE(TYPE::PTR)), Answer::Forward(vec![]));
    }

    #[test]
    fn resolv_conf() {
        let r = parse_resolv_conf(
            "# x\nnameserver 10.0.0.1\nnameserver ::1\nsearch a.example b.example\noptions ndots:2\n",
        );
        assert_eq!(r.nameservers, vec![Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(r.search, vec!["a.example", "b.example"]);
        assert_eq!(r.options, vec!["ndots:2"]);
    }

    #[tokio::test]
    async fn answers_over_the_wire() {
        let table = RwLock::new(table());
        let mut q = Packet::new_query(7);
        q.set_flags(PacketFlag::RECURSION_DESIRED);
        q.questions.push(simple_dns::Question::new(
            Name::new("db").expect("name"),
            A_Q,
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let wire = q.build_bytes_vec().expect("wire");
        let peer = SocketAddr::V4(SocketAddrV4::new([10, 1, 0, 2].into(), 5353));
        let r = respond(&table, "n1", peer, &wire, false).await.expect("reply");
        let p = Packet::parse(&r).expect("parse");
        assert_eq!(p.id(), 7);
        assert_eq!(p.answers.len(), 1);
        assert!(
            matches!(p.answers[0].rdata, RData::A(A { address }) if address == u32::from(Ipv4Addr::new(10, 1, 0, 3)))
        );
        // The host gets REFUSED, with no answer.
        let host = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5353));
        let r = respond(&table, "n1", host, &wire, false).await.expect("reply");
        let p = Packet::parse(&r).expect("parse");
        assert_eq!(p.rcode(), RCODE::Refused);
        assert!(p.answers.is_empty());
    }
}
