//! An in-memory [`Kernel`] for the unit tests (as youki's `TestHelperSyscall` is for its `Syscall`): it keeps what
//! it was asked to make (namespaces and their interfaces, bridges and their addresses, rule sets applied, DNS
//! listeners and names, held host ports), behaves like the host where the manager relies on it (an existing
//! interface that is not a bridge is refused, a held port cannot be taken twice, a veth needs its bridge), and fails
//! any operation it is told to fail.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_network::Error;
use berth_network::dns::Entry;
use berth_network::firewall::{Proto, Rules};
use berth_network::ipam::Subnet;
use berth_network::netlink::BridgeUse;
use berth_network::netns::Interface;

use berth_network::kernel::{Kernel, PortHold};

/// An operation the fake can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    CreateNamespace,
    AddInterfaces,
    RemoveInterfaces,
    BringUpBridge,
    DeleteBridge,
    ApplyRules,
    DnsListen,
    ReservePort,
}

/// A bridge the fake made or was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    /// Made by `bring_up_bridge` (else it was one of the host's, see [`Fake::host_link`]).
    pub created: bool,
}

/// What the fake host looks like now, and what was asked of it.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Pinned namespaces and the interfaces in them.
    pub namespaces: BTreeMap<PathBuf, Vec<Interface>>,
    pub bridges: BTreeMap<String, Bridge>,
    /// The host's own interfaces (not Berth's): name → whether it is a bridge.
    pub host_links: BTreeMap<String, bool>,
    /// The addresses of the host's own interfaces (`host_links`), with their prefix lengths.
    pub host_link_addresses: BTreeMap<String, Vec<(Ipv4Addr, u8)>>,
    /// The host's own addresses and routes (besides those of the bridges).
    pub host_addresses: Vec<Ipv4Addr>,
    pub host_routes: Vec<Subnet>,
    /// Every rule set applied, oldest first.
    pub rules: Vec<Rules>,
    /// DNS listeners: gateway → network ID.
    pub dns: BTreeMap<Ipv4Addr, String>,
    pub dns_entries: Vec<Entry>,
    pub forwarding: bool,
    /// The host ends of the veths asked to be deleted one by one (not with their namespace).
    pub removed_interfaces: Vec<String>,
}

impl Recorded {
    /// The last rule set applied (empty if none was).
    pub fn last_rules(&self) -> Rules {
        self.rules.last().cloned().unwrap_or_default()
    }

    fn link_exists(&self, name: &str) -> bool {
        self.host_links.contains_key(name)
            || self.bridges.contains_key(name)
            || self.namespaces.values().flatten().any(|i| i.host_name == name)
    }
}

type Held = Arc<Mutex<BTreeSet<(Proto, Ipv4Addr, u16)>>>;

/// The fake kernel.
#[derive(Default)]
pub struct Fake {
    rec: Mutex<Recorded>,
    held: Held,
    failing: Mutex<HashSet<Op>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Frees its port when dropped, as closing a bound socket does.
struct PortGuard {
    held: Held,
    key: (Proto, Ipv4Addr, u16),
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        lock(&self.held).remove(&self.key);
    }
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake::default())
    }

    /// What the host looks like now.
    pub fn recorded(&self) -> MutexGuard<'_, Recorded> {
        lock(&self.rec)
    }

    /// The host ports held now.
    pub fn held_ports(&self) -> Vec<(Proto, Ipv4Addr, u16)> {
        lock(&self.held).iter().copied().collect()
    }

    /// Makes `op` fail until [`Fake::heal`].
    pub fn fail(&self, op: Op) {
        lock(&self.failing).insert(op);
    }

    pub fn heal(&self, op: Op) {
        lock(&self.failing).remove(&op);
    }

    /// Adds one of the host's own interfaces.
    pub fn host_link(&self, name: &str, bridge: bool) {
        lock(&self.rec).host_links.insert(name.to_string(), bridge);
    }

    /// Gives one of the host's own interfaces an address (and the route of its subnet, as the kernel does).
    pub fn host_link_address(&self, name: &str, ip: Ipv4Addr, prefix: u8) {
        let mut rec = lock(&self.rec);
        rec.host_link_addresses.entry(name.to_string()).or_default().push((ip, prefix));
        rec.host_addresses.push(ip);
        if let Ok(s) = Subnet::new(ip, prefix) {
            rec.host_routes.push(s);
        }
    }

    fn check(&self, op: Op) -> Result<(), Error> {
        if lock(&self.failing).contains(&op) {
            return Err(Error::Netlink(format!("{op:?} failed (told to)")));
        }
        Ok(())
    }

    fn plug(rec: &Recorded, ifaces: &[Interface]) -> Result<(), Error> {
        for i in ifaces {
            if !rec.bridges.contains_key(&i.bridge) {
                return Err(Error::Netlink(format!("bridge {} not found", i.bridge)));
            }
            if rec.link_exists(&i.host_name) {
                return Err(Error::Netlink(format!("interface {} exists", i.host_name)));
            }
        }
        Ok(())
    }
}

impl Kernel for Fake {
    fn prepare_pins(&self, _dir: &Path) -> Result<(), Error> {
        Ok(())
    }

    fn create_namespace(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
        self.check(Op::CreateNamespace)?;
        let mut rec = lock(&self.rec);
        if rec.namespaces.contains_key(path) {
            return Err(Error::Netlink(format!("namespace {} exists", path.display())));
        }
        Fake::plug(&rec, &ifaces)?;
        rec.namespaces.insert(path.to_path_buf(), ifaces);
        Ok(())
    }

    fn add_interfaces(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
        self.check(Op::AddInterfaces)?;
        let mut rec = lock(&self.rec);
        Fake::plug(&rec, &ifaces)?;
        let ns =
            rec.namespaces.get_mut(path).ok_or_else(|| Error::Netlink(format!("no namespace {}", path.display())))?;
        ns.extend(ifaces);
        Ok(())
    }

    fn remove_interfaces(&self, host_names: &[String]) -> Result<(), Error> {
        self.check(Op::RemoveInterfaces)?;
        let mut rec = lock(&self.rec);
        rec.removed_interfaces.extend(host_names.iter().cloned());
        for ns in rec.namespaces.values_mut() {
            ns.retain(|i| !host_names.contains(&i.host_name));
        }
        Ok(())
    }

    fn unpin(&self, path: &Path) {
        lock(&self.rec).namespaces.remove(path);
    }

    fn destroy_namespace(&self, path: &Path, host_names: &[String]) -> Result<(), Error> {
        let r = self.remove_interfaces(host_names);
        self.unpin(path);
        r
    }

    fn pinned(&self, dir: &Path) -> Vec<PathBuf> {
        lock(&self.rec).namespaces.keys().filter(|p| p.parent() == Some(dir)).cloned().collect()
    }

    fn link_is_bridge(&self, name: &str) -> Result<Option<bool>, Error> {
        let rec = lock(&self.rec);
        Ok(rec.host_links.get(name).copied().or_else(|| rec.link_exists(name).then(|| rec.bridges.contains_key(name))))
    }

    fn link_exists(&self, name: &str) -> bool {
        lock(&self.rec).link_exists(name)
    }

    fn link_addresses(&self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
        let rec = lock(&self.rec);
        let mut v = rec.host_link_addresses.get(name).cloned().unwrap_or_default();
        if let Some(b) = rec.bridges.get(name)
            && !v.contains(&(b.gateway, b.prefix))
        {
            v.push((b.gateway, b.prefix));
        }
        Ok(v)
    }

    fn bring_up_bridge(
        &self,
        name: &str,
        _mtu: Option<u32>,
        want: BridgeUse,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error> {
        self.check(Op::BringUpBridge)?;
        let mut rec = lock(&self.rec);
        let exists = match rec.host_links.get(name) {
            Some(false) => return Err(Error::Conflict(format!("existing interface {name} is not a bridge"))),
            Some(true) => true,
            None => rec.bridges.contains_key(name),
        };
        match (exists, want) {
            (true, BridgeUse::New) => {
                return Err(Error::Conflict(format!("bridge {name} already exists and was not created by berth")));
            }
            (false, BridgeUse::Existing) => return Err(Error::InvalidArgument(format!("bridge {name} not found"))),
            _ => {}
        }
        let created = rec.bridges.get(name).map(|b| b.created).unwrap_or(!exists);
        rec.bridges.insert(name.to_string(), Bridge { gateway, prefix, created });
        Ok(())
    }

    fn delete_bridge(&self, name: &str) -> Result<(), Error> {
        self.check(Op::DeleteBridge)?;
        let mut rec = lock(&self.rec);
        if rec.host_links.get(name) == Some(&false) {
            return Err(Error::Conflict(format!("interface {name} is not a bridge: not deleting it")));
        }
        rec.bridges.remove(name);
        rec.host_links.remove(name);
        Ok(())
    }

    fn host_addresses(&self) -> Result<Vec<Ipv4Addr>, Error> {
        let rec = lock(&self.rec);
        Ok(rec.host_addresses.iter().copied().chain(rec.bridges.values().map(|b| b.gateway)).collect())
    }

    fn host_routes(&self) -> Vec<Subnet> {
        let rec = lock(&self.rec);
        let bridges = rec.bridges.values().filter_map(|b| Subnet::new(b.gateway, b.prefix).ok());
        rec.host_routes.iter().copied().chain(bridges).collect()
    }

    fn enable_forwarding(&self) {
        lock(&self.rec).forwarding = true;
    }

    fn has_firewall(&self) -> bool {
        true
    }

    fn apply_rules(&self, rules: &Rules) -> Result<(), Error> {
        self.check(Op::ApplyRules)?;
        lock(&self.rec).rules.push(rules.clone());
        Ok(())
    }

    fn dns_listen(&self, network: &str, gateway: Ipv4Addr, _bridge: &str) -> Result<(), Error> {
        self.check(Op::DnsListen)?;
        lock(&self.rec).dns.entry(gateway).or_insert_with(|| network.to_string());
        Ok(())
    }

    fn dns_stop(&self, gateway: Ipv4Addr) {
        lock(&self.rec).dns.remove(&gateway);
    }

    fn dns_set_entries(&self, entries: Vec<Entry>) {
        lock(&self.rec).dns_entries = entries;
    }

    fn reserve_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> Result<(u16, PortHold), Error> {
        self.check(Op::ReservePort)?;
        let mut held = lock(&self.held);
        let clash = |held: &BTreeSet<(Proto, Ipv4Addr, u16)>, port: u16| {
            held.iter()
                .any(|(p, a, n)| *p == proto && *n == port && (*a == ip || a.is_unspecified() || ip.is_unspecified()))
        };
        let port = match port {
            0 => (32768..=60999).find(|p| !clash(&held, *p)).ok_or_else(|| Error::PortInUse("no free port".into()))?,
            p if clash(&held, p) => {
                return Err(Error::PortInUse(format!(
                    "Error starting userland proxy: listen {}4 {ip}:{p}: bind: address already in use",
                    proto.as_str()
                )));
            }
            p => p,
        };
        let key = (proto, ip, port);
        held.insert(key);
        Ok((port, Box::new(PortGuard { held: self.held.clone(), key })))
    }
}
