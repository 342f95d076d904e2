//! IPv4 address management: subnets, gateways, ranges, and the choice of a free subnet for a new network.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// An IPv4 prefix such as `172.18.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from any address inside it and a prefix length (the host bits are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, Error> {
        if prefix > 32 {
            return Err(Error::InvalidArgument(format!("invalid prefix length /{prefix}")));
        }
        Ok(Subnet { addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Whether `other` lies entirely inside this subnet.
    pub fn covers(&self, other: &Subnet) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// The first usable address (Docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).saturating_add(u32::from(self.prefix < 31)))
    }

    /// Parses `a.b.c.d/n`; `strict` refuses host bits (as Docker does for `--subnet`).
    pub fn parse(s: &str, strict: bool) -> Result<Subnet, Error> {
        let bad = || Error::InvalidArgument(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr = Ipv4Addr::from_str(a).map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let net = Subnet::new(addr, prefix).map_err(|_| bad())?;
        if strict && net.addr != addr {
            return Err(Error::InvalidArgument(format!("invalid subnet {s}: it should be {net}")));
        }
        Ok(net)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s, false).map_err(serde::de::Error::custom)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
}

/// The address pool a network allocates from: its subnet, optionally narrowed by `--ip-range`, minus the network,
/// broadcast and gateway addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub subnet: Subnet,
    pub range: Option<Subnet>,
    pub gateway: Ipv4Addr,
}

impl Pool {
    /// Checks that gateway and range belong to the subnet.
    pub fn new(subnet: Subnet, range: Option<Subnet>, gateway: Option<Ipv4Addr>) -> Result<Pool, Error> {
        if subnet.prefix > 30 {
            return Err(Error::InvalidArgument(format!("subnet {subnet} is too small for a network")));
        }
        if let Some(r) = range
            && !subnet.covers(&r)
        {
            return Err(Error::InvalidArgument(format!("ip-range {r} is not inside subnet {subnet}")));
        }
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
            return Err(Error::InvalidArgument(format!(
                "gateway {gateway} is not a usable address in subnet {subnet}"
            )));
        }
        Ok(Pool { subnet, range, gateway })
    }

    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip) && ip != self.subnet.network() && ip != self.subnet.broadcast() && ip != self.gateway
    }

    /// Reserves a specific address (`--ip`), which may lie outside `--ip-range` but must be in the subnet.
    pub fn claim(&self, used: &mut BTreeSet<Ipv4Addr>, ip: Ipv4Addr) -> Result<Ipv4Addr, Error> {
        if !self.usable(ip) {
            return Err(Error::InvalidArgument(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        if !used.insert(ip) {
            return Err(Error::Conflict(format!("Address already in use: {ip}")));
        }
        Ok(ip)
    }

    /// The lowest free address of the range (or subnet); a range's own first address is skipped as Docker does.
    pub fn allocate(&self, used: &mut BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, Error> {
        let r = self.range.unwrap_or(self.subnet);
        let (lo, hi) = (u32::from(r.network()).saturating_add(1), u32::from(r.broadcast()));
        for n in lo..=hi {
            let ip = Ipv4Addr::from(n);
            if self.usable(ip) && !used.contains(&ip) {
                used.insert(ip);
                return Ok(ip);
            }
        }
        Err(Error::Exhausted(format!("no available IPv4 addresses on this network's address pools: {r}")))
    }
}

/// Where new networks get their subnets from when none is given: Docker's default pools (172.17–31.0.0/16, then
/// 192.168.x.0/20), or what `--default-address-pool` configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Subnet,
    pub size: u8,
}

impl AddressPool {
    pub fn docker_defaults() -> Vec<AddressPool> {
        let mut v = Vec::new();
        for second in 17..=31 {
            if let Ok(base) = Subnet::new(Ipv4Addr::new(172, second, 0, 0), 16) {
                v.push(AddressPool { base, size: 16 });
            }
        }
        if let Ok(base) = Subnet::new(Ipv4Addr::new(192, 168, 0, 0), 16) {
            v.push(AddressPool { base, size: 20 });
        }
        v
    }

    /// Parses Docker's `base=10.10.0.0/16,size=24`.
    pub fn parse(s: &str) -> Result<AddressPool, Error> {
        let mut base = None;
        let mut size = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(Subnet::parse(v, false)?),
                Some(("size", v)) => {
                    size = Some(v.parse::<u8>().map_err(|_| Error::InvalidArgument(format!("invalid size: {v}")))?)
                }
                _ => return Err(Error::InvalidArgument(format!("invalid address pool field {kv:?} in {s:?}"))),
            }
        }
        let base = base.ok_or_else(|| Error::InvalidArgument(format!("address pool {s:?} has no base")))?;
        let size = size.unwrap_or(base.prefix);
        if size < base.prefix || size > 30 {
            return Err(Error::InvalidArgument(format!("invalid pool size /{size} for base {base}")));
        }
        Ok(AddressPool { base, size })
    }
}

/// The first subnet of the pools that overlaps neither a taken subnet (other networks) nor a host route.
pub fn pick_subnet(pools: &[AddressPool], taken: &[Subnet]) -> Result<Subnet, Error> {
    for p in pools {
        let step = 1u64 << (32 - u32::from(p.size));
        let start = u64::from(u32::from(p.base.network()));
        let end = u64::from(u32::from(p.base.broadcast()));
        let mut n = start;
        while n <= end {
            let candidate = Subnet::new(Ipv4Addr::from(n as u32), p.size)?;
            if !taken.iter().any(|t| t.overlaps(&candidate)) && !candidate.overlaps(&LOOPBACK) {
                return Ok(candidate);
            }
            n += step;
        }
    }
    Err(Error::Exhausted(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
            .into(),
    ))
}

/// The loopback network, 127.0.0.0/8: never a network's subnet.
pub const LOOPBACK: Subnet = Subnet { addr: Ipv4Addr::new(127, 0, 0, 0), prefix: 8 };

/// Refuses a subnet that overlaps loopback: the host's own traffic to 127.0.0.0/8 would be routed to the bridge.
pub fn check_not_loopback(s: &Subnet) -> Result<(), Error> {
    if s.overlaps(&LOOPBACK) {
        return Err(Error::InvalidArgument(format!("invalid subnet {s}: it overlaps the loopback network {LOOPBACK}")));
    }
    Ok(())
}

/// The IPv4 destinations of the host's routes (except the default route), from `/proc/net/route`.
pub fn host_routes() -> Vec<Subnet> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else { return Vec::new() };
    parse_routes(&text)
}

fn parse_routes(text: &str) -> Vec<Subnet> {
    let mut v = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // The kernel prints the raw network-order words in the host's byte order.
        let (Ok(dst), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        let (dst, m) = (u32::from_be(dst), u32::from_be(m));
        if m == 0 {
            continue;
        }
        if let Ok(s) = Subnet::new(Ipv4Addr::from(dst), m.count_ones() as u8) {
            v.push(s);
        }
    }
    v
}

/// Docker's MAC address for a container address: `02:42` and the four bytes of the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// An Ethernet (48-bit) address in Go's `net.ParseMAC` forms: `02:42:ac:11:00:02`, `02-42-ac-11-00-02`,
/// `0242.ac11.0002`. The longer forms Go also reads (EUI-64, InfiniBand) cannot be a veth's address: `None`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let mut digits = String::new();
    let sep = s.bytes().find(|b| matches!(b, b':' | b'-' | b'.'))?;
    let (parts, width) = if sep == b'.' { (3, 4) } else { (6, 2) };
    let groups: Vec<&str> = s.split(sep as char).collect();
    if groups.len() != parts {
        return None;
    }
    for g in groups {
        if !hex(g, width) {
            return None;
        }
        digits.push_str(g);
    }
    let mut mac = [0u8; 6];
    for (i, b) in mac.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_go_forms() {
        let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x0b];
        let want = Some(mac);
        assert_eq!(parse_mac("02:42:ac:11:00:0b"), want);
        assert_eq!(parse_mac("02-42-AC-11-00-0B"), want);
        assert_eq!(parse_mac("0242.ac11.000b"), want);
        for bad in [
            "",
            "zz",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0b:01",
            "2:42:ac:11:00:0b",
            "02:42-ac:11:00:0b",
            "0g:42:ac:11:00:0b",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert_eq!(mac_string(&mac), "02:42:ac:11:00:0b");
    }

    fn s(x: &str) -> Subnet {
        Subnet::parse(x, false).expect("subnet")
    }

    #[test]
    fn subnets() {
        let n = s("172.18.3.4/16");
        assert_eq!(n.to_string(), "172.18.0.0/16");
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert!(n.contains(Ipv4Addr::new(172, 18, 9, 9)) && !n.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(n.overlaps(&s("172.18.5.0/24")) && s("172.18.5.0/24").overlaps(&n));
        assert!(!n.overlaps(&s("172.19.0.0/16")));
        assert!(Subnet::parse("172.18.3.4/16", true).is_err());
        assert!(Subnet::parse("172.18.0.0/33", false).is_err());
        assert!(Subnet::parse("nope", false).is_err());
        assert_eq!(n.first_host(), Ipv4Addr::new(172, 18, 0, 1));
    }

    #[test]
    fn allocation_skips_reserved_and_used() {
        let pool = Pool::new(s("10.0.0.0/29"), None, None).expect("pool");
        let mut used = BTreeSet::new();
        let got: Vec<Ipv4Addr> = (0..5).map(|_| pool.allocate(&mut used).expect("ip")).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 0, 0, 6));
        assert!(pool.allocate(&mut used).is_err(), "the /29 has 5 usable addresses besides the gateway");
        used.remove(&Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(pool.allocate(&mut used).expect("reuse"), Ipv4Addr::new(10, 0, 0, 3));
        assert!(pool.claim(&mut used, Ipv4Addr::new(10, 0, 0, 1)).is_err(), "the gateway");
        assert!(pool.claim(&mut used, Ipv4Addr::new(10, 0, 0, 4)).is_err(), "taken");
        assert!(pool.claim(&mut used, Ipv4Addr::new(10, 0, 1, 4)).is_err(), "outside");
    }

    #[test]
    fn ranges_and_gateways() {
        let pool =
            Pool::new(s("10.1.0.0/16"), Some(s("10.1.5.0/24")), Some(Ipv4Addr::new(10, 1, 0, 254))).expect("pool");
        let mut used = BTreeSet::new();
        assert_eq!(pool.allocate(&mut used).expect("ip"), Ipv4Addr::new(10, 1, 5, 1));
        assert!(Pool::new(s("10.1.0.0/16"), Some(s("10.2.0.0/24")), None).is_err());
        assert!(Pool::new(s("10.1.0.0/16"), None, Some(Ipv4Addr::new(10, 2, 0, 1))).is_err());
        assert!(Pool::new(s("10.1.0.0/16"), None, Some(Ipv4Addr::new(10, 1, 0, 0))).is_err());
    }

    #[test]
    fn picks_free_subnets() {
        let pools = AddressPool::docker_defaults();
        let first = pick_subnet(&pools, &[]).expect("subnet");
        assert_eq!(first.to_string(), "172.17.0.0/16");
        let next = pick_subnet(&pools, &[s("172.17.0.0/16"), s("172.18.1.0/24")]).expect("subnet");
        assert_eq!(next.to_string(), "172.19.0.0/16");
        let p = AddressPool::parse("base=10.9.0.0/16,size=24").expect("pool");
        assert_eq!(
            pick_subnet(std::slice::from_ref(&p), &[s("10.9.0.0/24")]).expect("subnet").to_string(),
            "10.9.1.0/24"
        );
        assert!(AddressPool::parse("base=10.9.0.0/16,size=8").is_err());
        assert!(pick_subnet(&[p], &[s("10.0.0.0/8")]).is_err());
        let lo = AddressPool::parse("base=126.0.0.0/7,size=8").expect("pool");
        assert_eq!(pick_subnet(std::slice::from_ref(&lo), &[]).expect("subnet").to_string(), "126.0.0.0/8");
        assert!(pick_subnet(&[lo], &[s("126.0.0.0/8")]).is_err(), "127.0.0.0/8 is loopback");
        assert!(check_not_loopback(&s("127.3.0.0/16")).is_err() && check_not_loopback(&s("120.0.0.0/5")).is_err());
        assert!(check_not_loopback(&s("126.0.0.0/8")).is_ok());
    }

    #[test]
    fn reads_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(parse_routes(text), vec![s("172.17.0.0/16")]);
    }

    #[test]
    fn macs() {
        assert_eq!(mac_string(&mac_for(Ipv4Addr::new(172, 17, 0, 2))), "02:42:ac:11:00:02");
    }
}
