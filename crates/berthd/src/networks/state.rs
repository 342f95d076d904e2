//! A network's record, a container's endpoints and ports, and the in-memory state of live attachments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use berth_network::dns::Entry;
use berth_network::firewall::{NetRule, PortRule, Proto, Rules};
use berth_network::ipam::{AddressPool, Pool, Subnet};
use berth_network::netlink::BridgeUse;
use serde::{Deserialize, Serialize};

use berth_network::kernel::{Host, Kernel, PortHold};

use crate::task::blocking;

pub(super) const DOC_KIND: &str = "network";
/// The name of the default bridge network, as in Docker.
pub const DEFAULT_BRIDGE: &str = "bridge";

/// A network, persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// Whether the subnet was given by the user (only then may containers ask for a fixed `--ip`).
    #[serde(default)]
    pub user_subnet: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    #[serde(default)]
    pub ipam_options: HashMap<String, String>,
    /// The IPAM config's `AuxiliaryAddresses` (host name to address, inside the subnet), kept and shown as given.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub aux_addresses: HashMap<String, String>,
    /// The Linux bridge.
    #[serde(default)]
    pub bridge: String,
    /// Whether Berth created `bridge` (only then may it delete it). Unset in records written before this was
    /// recorded: then only a bridge named as Berth names a network's own (`br-<id>`) counts as Berth's.
    #[serde(default)]
    pub bridge_created: Option<bool>,
}

impl NetworkRecord {
    pub(super) fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    pub(super) fn is_default(&self) -> bool {
        self.name == DEFAULT_BRIDGE
    }

    pub(super) fn pool(&self) -> Option<Pool> {
        Pool::new(self.subnet?, self.ip_range, self.gateway).ok()
    }

    pub(super) fn opt_bool(&self, key: &str, default: bool) -> bool {
        self.options.get(key).map(|v| v == "true" || v == "1").unwrap_or(default)
    }

    /// Whether Berth created this network's bridge, so that it may configure and delete it.
    pub(super) fn owns_bridge(&self) -> bool {
        !self.bridge.is_empty() && self.bridge_created.unwrap_or_else(|| self.bridge == bridge_name(&self.id))
    }

    pub(super) fn mtu(&self) -> Option<u32> {
        self.options.get("com.docker.network.driver.mtu").and_then(|m| m.parse().ok()).filter(|m| *m > 0)
    }
}

/// One network a container is (to be) connected to, stored in its record. The address fields are set while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub requested_ip: Option<Ipv4Addr>,
    /// The MAC address asked for (`EndpointSettings.MacAddress`, or the legacy `Config.MacAddress` for the primary
    /// network), normalised; otherwise one is made from the IP address.
    #[serde(default)]
    pub requested_mac: Option<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix: u8,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub ifname: String,
    #[serde(default)]
    pub host_ifname: String,
    /// `DriverOpts` of the endpoint, kept and shown as given.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub driver_opts: HashMap<String, String>,
    /// `IPAMConfig.LinkLocalIPs`, kept and shown as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
}

/// A host port bound for a container while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BoundPort {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// A container's networking, in its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetState {
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Vec<BoundPort>,
    /// The pinned network namespace while it runs (empty for `host` and `container:`).
    #[serde(default)]
    pub sandbox: String,
}

/// What a network mode asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Host,
    None,
    /// Another container's namespace.
    Container(String),
    /// Bridge networks (the default one or user-defined): the endpoints in the record.
    Bridge,
}

pub fn mode(network_mode: &str) -> Mode {
    match network_mode {
        "host" => Mode::Host,
        "none" => Mode::None,
        m if m.starts_with("container:") => Mode::Container(m["container:".len()..].to_string()),
        _ => Mode::Bridge,
    }
}

/// The live state of a running container's networking.
#[derive(Debug)]
pub(super) struct Attachment {
    pub(super) name: String,
    pub(super) sandbox: PathBuf,
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) ports: Vec<(BoundPort, Ipv4Addr)>,
    pub(super) upstream: Vec<Ipv4Addr>,
}

pub(super) struct Net {
    pub(super) rec: NetworkRecord,
    pub(super) pool: Option<Pool>,
    pub(super) used: BTreeSet<Ipv4Addr>,
    /// Its bridge could not be brought up (e.g. a host interface of that name is no bridge): left out of the firewall.
    pub(super) down: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) nets: BTreeMap<String, Net>,
    pub(super) attached: HashMap<String, Attachment>,
    /// Held host ports: (protocol, host address, port) → reservation.
    pub(super) held: BTreeMap<(Proto, Ipv4Addr, u16), (String, PortHold)>,
}

/// How berthd's networking is configured.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The Linux bridge of the default network.
    pub bridge: String,
    /// Whether `bridge` was given (`--bridge`) rather than derived from the data root.
    pub bridge_from_flag: bool,
    /// The default bridge's gateway address and prefix (`--bip`), else picked from the pools.
    pub bip: Option<(Ipv4Addr, u8)>,
    pub pools: Vec<AddressPool>,
    /// The name of berthd's nftables table (or iptables chain prefix).
    pub table: String,
    /// Name servers for containers without `--dns` (dockerd's `--dns`); empty: the host's.
    pub dns: Vec<Ipv4Addr>,
    pub firewall: berth_network::firewall::Backend,
}

/// The network manager.
pub struct Networks {
    pub(super) config: NetConfig,
    pub(super) state: Mutex<State>,
    /// Everything done to the host's kernel goes through it.
    pub(super) kernel: Arc<dyn Kernel>,
    /// Serialises firewall updates, so that the last one applied renders the latest state.
    pub(super) fw_lock: tokio::sync::Mutex<()>,
    pub(super) netns_dir: PathBuf,
}

pub(super) fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Networks {
    /// The network manager of the host (`berth_network`).
    pub fn new(config: NetConfig, exec_root: &Path) -> Networks {
        let host = Host::new(&config.table, config.firewall.clone());
        Networks::with_kernel(config, exec_root, Arc::new(host))
    }

    /// The network manager with another kernel (the unit tests' fake).
    pub fn with_kernel(config: NetConfig, exec_root: &Path, kernel: Arc<dyn Kernel>) -> Networks {
        Networks {
            config,
            state: Mutex::new(State::default()),
            kernel,
            fw_lock: tokio::sync::Mutex::new(()),
            netns_dir: exec_root.join("netns"),
        }
    }

    /// Runs a kernel operation off the async threads.
    pub(super) async fn on_host<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Kernel) -> Result<T, berth_network::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let kernel = self.kernel.clone();
        blocking(move || f(&*kernel).map_err(Error::from)).await
    }

    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Every network record.
    pub fn all(&self) -> Vec<NetworkRecord> {
        lock(&self.state).nets.values().map(|n| n.rec.clone()).collect()
    }

    /// Finds a network by full ID, name, or unique ID prefix (Docker's order).
    pub fn find(&self, key: &str) -> Result<NetworkRecord, Error> {
        let st = lock(&self.state);
        if let Some(n) = st.nets.get(key) {
            return Ok(n.rec.clone());
        }
        if let Some(n) = st.nets.values().find(|n| n.rec.name == key) {
            return Ok(n.rec.clone());
        }
        let mut m = st.nets.values().filter(|n| !key.is_empty() && n.rec.id.starts_with(key));
        match (m.next(), m.next()) {
            (Some(n), None) => Ok(n.rec.clone()),
            (Some(_), Some(_)) => Err(Error::NotFound(format!("network {key} is ambiguous"))),
            _ => Err(Error::NotFound(format!("network {key} not found"))),
        }
    }

    /// Container IDs attached (running) to a network, with their endpoints.
    pub fn users(&self, net_id: &str) -> Vec<(String, String, Endpoint)> {
        let st = lock(&self.state);
        let mut v = Vec::new();
        for (cid, a) in &st.attached {
            for e in &a.endpoints {
                if e.network_id == net_id {
                    v.push((cid.clone(), a.name.clone(), e.clone()));
                }
            }
        }
        v
    }

    /// The firewall rules the current state calls for.
    pub(super) fn rules(&self) -> Rules {
        let st = lock(&self.state);
        let networks = st
            .nets
            .values()
            .filter(|n| n.rec.is_bridge() && !n.down)
            .filter_map(|n| {
                Some(NetRule {
                    bridge: n.rec.bridge.clone(),
                    subnet: n.rec.subnet?,
                    gateway: n.rec.gateway?,
                    internal: n.rec.internal,
                    dns: !n.rec.is_default(),
                    masquerade: n.rec.opt_bool("com.docker.network.bridge.enable_ip_masquerade", true),
                })
            })
            .collect();
        let mut ports = Vec::new();
        for a in st.attached.values() {
            for (p, container_ip) in &a.ports {
                ports.push(PortRule {
                    proto: p.proto,
                    host_ip: Some(p.host_ip),
                    host_port: p.host_port,
                    container_ip: *container_ip,
                    container_port: p.container_port,
                });
            }
        }
        ports.sort_by_key(|p| (p.host_port, p.proto));
        Rules { networks, ports }
    }

    /// Renders and applies the firewall rules.
    pub(super) async fn apply_firewall(&self) -> Result<(), Error> {
        if !self.kernel.has_firewall() {
            tracing::warn!("neither nft nor iptables is installed: no masquerading, isolation or published ports");
            return Ok(());
        }
        let _g = self.fw_lock.lock().await;
        let rules = self.rules();
        let kernel = self.kernel.clone();
        blocking(move || kernel.apply_rules(&rules).map_err(|e| Error::Internal(e.to_string()))).await
    }

    /// Rebuilds the DNS names from the attachments.
    pub(super) fn refresh_dns(&self) {
        let st = lock(&self.state);
        let mut entries = Vec::new();
        for (cid, a) in &st.attached {
            for e in &a.endpoints {
                let Some(ip) = e.ip else { continue };
                let Some(net) = st.nets.get(&e.network_id) else { continue };
                if !net.rec.is_bridge() || net.rec.is_default() {
                    continue;
                }
                let mut names = vec![a.name.clone(), cid[..12].to_string()];
                names.extend(e.aliases.iter().cloned());
                entries.push(Entry {
                    network: net.rec.id.clone(),
                    network_name: net.rec.name.clone(),
                    container: cid.clone(),
                    ip,
                    names,
                    upstream: a.upstream.clone(),
                    internal: net.rec.internal,
                    links: dns_aliases(&e.links),
                });
            }
        }
        self.kernel.dns_set_entries(entries);
    }

    pub(super) fn insert_net(&self, rec: NetworkRecord) {
        let pool = rec.pool();
        // The auxiliary addresses are reserved: never given to a container.
        let used = rec.aux_addresses.values().filter_map(|a| a.parse().ok()).collect();
        lock(&self.state).nets.insert(rec.id.clone(), Net { rec, pool, used, down: false });
    }
}

/// `name[:alias]` as moby's `opts.ParseLink`: the alias defaults to the name; a stored link (`/db:/web/alias`)
/// gives back `db` and `alias`.
pub fn parse_link(s: &str) -> Result<(String, String), Error> {
    if s.is_empty() {
        return Err(Error::InvalidArgument("empty string specified for links".into()));
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((name.to_string(), name.to_string())),
        [name, alias] if name.starts_with('/') => {
            Ok((name[1..].to_string(), alias.rsplit('/').next().unwrap_or(alias).to_string()))
        }
        [name, alias] => Ok((name.to_string(), alias.to_string())),
        _ => Err(Error::InvalidArgument(format!("bad format for links: {s}"))),
    }
}

/// The DNS aliases of an endpoint's links on a user-defined network: (alias, linked container's name).
pub fn dns_aliases(links: &[String]) -> Vec<(String, String)> {
    links.iter().filter_map(|l| parse_link(l).ok()).map(|(name, alias)| (alias, name)).collect()
}

/// Why a container cannot join a network whose bridge could not be brought up.
pub(super) fn down_error(rec: &NetworkRecord) -> Error {
    Error::Conflict(format!(
        "network {} is unusable: its bridge {} could not be brought up (see berthd's log); remove and recreate it",
        rec.name, rec.bridge
    ))
}

/// The bridge name Berth gives a user-defined network: Docker's `br-<12 hex of the ID>`.
pub(super) fn bridge_name(id: &str) -> String {
    format!("br-{}", &id[..12])
}

/// Creates (or, once Berth has created it, finds) the bridge of a network with its gateway address, and serves DNS
/// on it (user-defined networks). `want`: which bridge may be used; a host interface that is not a bridge never is.
/// On failure a bridge created here is deleted again.
pub(super) async fn bring_up(n: &Networks, rec: &NetworkRecord, want: BridgeUse) -> Result<(), Error> {
    let (Some(subnet), Some(gw)) = (rec.subnet, rec.gateway) else { return Ok(()) };
    let (bridge, mtu) = (rec.bridge.clone(), rec.mtu());
    n.on_host(move |k| k.bring_up_bridge(&bridge, mtu, want, gw, subnet.prefix())).await?;
    if !rec.internal {
        n.kernel.enable_forwarding();
    }
    if !rec.is_default() {
        n.kernel.dns_listen(&rec.id, gw, &rec.bridge).map_err(Error::from)?;
    }
    Ok(())
}
