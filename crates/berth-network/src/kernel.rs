//! The seam between berthd's network manager and the host: everything it does to the kernel (network namespaces,
//! links, addresses, routes, the firewall, the DNS servers' sockets, held host ports) goes through [`Kernel`], in the
//! style of youki's `Syscall` trait. [`Host`] does it with this crate's modules; berthd's unit tests use an in-memory
//! fake that records what was asked and can be told to fail.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::dns::{Dns, Entry};
use crate::firewall::{Backend, Firewall, Proto, Rules};
use crate::ipam::{self, Subnet};
use crate::netlink::{BridgeUse, Netlink};
use crate::netns::{self, Interface};
use crate::ports;

/// A held host port: dropping it frees the port.
pub type PortHold = Box<dyn Send>;

/// What the network manager asks of the host kernel. Blocking calls: the manager runs them off the async threads.
pub trait Kernel: Send + Sync {
    /// Makes the directory of namespace pins a shared mount point of its own.
    fn prepare_pins(&self, dir: &Path) -> Result<(), Error>;
    /// Creates a namespace pinned at `path` with `ifaces` (veths on their bridges); on failure nothing is left.
    fn create_namespace(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error>;
    /// Adds interfaces to a pinned namespace (`network connect`).
    fn add_interfaces(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error>;
    /// Deletes veths by their host ends.
    fn remove_interfaces(&self, host_names: &[String]) -> Result<(), Error>;
    /// Drops a namespace's pin (the kernel destroys it with its veths once its processes are gone).
    fn unpin(&self, path: &Path);
    /// Deletes the veths `host_names`, then the pin.
    fn destroy_namespace(&self, path: &Path, host_names: &[String]) -> Result<(), Error>;
    /// The pinned namespaces under `dir`.
    fn pinned(&self, dir: &Path) -> Vec<PathBuf>;

    /// Whether a link of that name exists, and whether it is a bridge.
    fn link_is_bridge(&self, name: &str) -> Result<Option<bool>, Error>;
    /// Whether a link of that name exists.
    fn link_exists(&self, name: &str) -> bool;
    /// The IPv4 addresses (with their prefix lengths) of the link of that name; none when there is no such link.
    fn link_addresses(&self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>, Error>;
    /// Brings up a bridge as `want` allows with `gateway/prefix` on it; a bridge created here is deleted again when
    /// the address cannot be added.
    fn bring_up_bridge(
        &self,
        name: &str,
        mtu: Option<u32>,
        want: BridgeUse,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error>;
    /// Deletes a bridge (gone already is fine; a link of that name that is no bridge is refused).
    fn delete_bridge(&self, name: &str) -> Result<(), Error>;
    /// Every IPv4 address of the host's interfaces.
    fn host_addresses(&self) -> Result<Vec<Ipv4Addr>, Error>;
    /// The destinations of the host's routes (but the default route).
    fn host_routes(&self) -> Vec<Subnet>;
    /// Turns IPv4 forwarding on.
    fn enable_forwarding(&self);

    /// Whether a firewall tool is there to apply rules with.
    fn has_firewall(&self) -> bool;
    /// Replaces berthd's firewall rules with `rules`, atomically.
    fn apply_rules(&self, rules: &Rules) -> Result<(), Error>;

    /// Serves the embedded DNS of network `network` on `gateway:53`, to what arrives on `bridge` only.
    fn dns_listen(&self, network: &str, gateway: Ipv4Addr, bridge: &str) -> Result<(), Error>;
    /// Stops serving a gateway.
    fn dns_stop(&self, gateway: Ipv4Addr);
    /// Replaces the names the embedded DNS answers.
    fn dns_set_entries(&self, entries: Vec<Entry>);

    /// Holds host port `ip:port` (`port` 0: any free one); returns the port.
    fn reserve_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> Result<(u16, PortHold), Error>;
}

/// The real host.
pub struct Host {
    fw: Firewall,
    dns: Dns,
}

impl Host {
    pub fn new(table: &str, backend: Backend) -> Host {
        Host { fw: Firewall::new(table, backend), dns: Dns::new() }
    }
}

impl Kernel for Host {
    fn prepare_pins(&self, dir: &Path) -> Result<(), Error> {
        netns::shared_mount_point(dir)
    }

    fn create_namespace(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
        netns::create(path, ifaces)
    }

    fn add_interfaces(&self, path: &Path, ifaces: Vec<Interface>) -> Result<(), Error> {
        netns::add(path, ifaces)
    }

    fn remove_interfaces(&self, host_names: &[String]) -> Result<(), Error> {
        netns::remove_interfaces(host_names)
    }

    fn unpin(&self, path: &Path) {
        netns::unpin(path)
    }

    fn destroy_namespace(&self, path: &Path, host_names: &[String]) -> Result<(), Error> {
        netns::destroy(path, host_names)
    }

    fn pinned(&self, dir: &Path) -> Vec<PathBuf> {
        netns::pinned(dir)
    }

    fn link_is_bridge(&self, name: &str) -> Result<Option<bool>, Error> {
        Ok(Netlink::open()?.link_info(name)?.map(|(_, bridge)| bridge))
    }

    fn link_exists(&self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn link_addresses(&self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
        let mut nl = Netlink::open()?;
        let Some((index, _)) = nl.link_info(name)? else {
            return Ok(Vec::new());
        };
        Ok(nl.all_addresses()?.into_iter().filter(|(i, _, _)| *i == index).map(|(_, ip, p)| (ip, p)).collect())
    }

    fn bring_up_bridge(
        &self,
        name: &str,
        mtu: Option<u32>,
        want: BridgeUse,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), Error> {
        let mut nl = Netlink::open()?;
        let (idx, created) = nl.ensure_bridge(name, mtu, want)?;
        if let Err(e) = nl.add_address(idx, gateway, prefix) {
            if created {
                let _ = nl.delete_bridge_named(name);
            }
            return Err(e);
        }
        // Published ports reached through 127.0.0.1 are routed out of the bridge.
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"), "1");
        Ok(())
    }

    fn delete_bridge(&self, name: &str) -> Result<(), Error> {
        Netlink::open()?.delete_bridge_named(name)
    }

    fn host_addresses(&self) -> Result<Vec<Ipv4Addr>, Error> {
        Ok(Netlink::open()?.all_addresses()?.into_iter().map(|(_, ip, _)| ip).collect())
    }

    fn host_routes(&self) -> Vec<Subnet> {
        ipam::host_routes()
    }

    fn enable_forwarding(&self) {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
    }

    fn has_firewall(&self) -> bool {
        self.fw.backend != Backend::None
    }

    fn apply_rules(&self, rules: &Rules) -> Result<(), Error> {
        self.fw.apply(rules)
    }

    fn dns_listen(&self, network: &str, gateway: Ipv4Addr, bridge: &str) -> Result<(), Error> {
        self.dns.listen(network, gateway, bridge)
    }

    fn dns_stop(&self, gateway: Ipv4Addr) {
        self.dns.stop(gateway)
    }

    fn dns_set_entries(&self, entries: Vec<Entry>) {
        self.dns.set_entries(entries)
    }

    fn reserve_port(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> Result<(u16, PortHold), Error> {
        let (port, res) = ports::reserve(proto, ip, port)?;
        Ok((port, Box::new(res)))
    }
}
