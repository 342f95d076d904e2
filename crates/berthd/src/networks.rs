//! The network manager: networks (the predefined `bridge`, `host`, `none`, and user-defined bridge networks) as
//! documents in the store; the live attachments of running containers (addresses, veths, held host ports) in memory,
//! rebuilt from the containers' records when berthd starts; and what follows from them: the firewall rule set (one
//! atomic batch per change) and the embedded DNS names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::Error;
use berth_api::models::{EndpointSettings, NetworkCreateRequest};
use berth_network::dns::{Dns, Entry};
use berth_network::firewall::{Firewall, NetRule, PortRule, Proto, Rules};
use berth_network::ipam::{self, AddressPool, Pool, Subnet};
use berth_network::netlink::BridgeUse;
use berth_network::netns::{self, Interface};
use berth_network::ports::{self, Reservation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::containers::{Container, Record};
use crate::daemon::{Daemon, blocking};

const DOC_KIND: &str = "network";
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
    /// The Linux bridge.
    #[serde(default)]
    pub bridge: String,
    /// Whether Berth created `bridge` (only then may it delete it). Unset in records written before this was
    /// recorded: then only a bridge named as Berth names a network's own (`br-<id>`) counts as Berth's.
    #[serde(default)]
    pub bridge_created: Option<bool>,
}

impl NetworkRecord {
    fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    fn is_default(&self) -> bool {
        self.name == DEFAULT_BRIDGE
    }

    fn pool(&self) -> Option<Pool> {
        Pool::new(self.subnet?, self.ip_range, self.gateway).ok()
    }

    fn opt_bool(&self, key: &str, default: bool) -> bool {
        self.options.get(key).map(|v| v == "true" || v == "1").unwrap_or(default)
    }

    /// Whether Berth created this network's bridge, so that it may configure and delete it.
    fn owns_bridge(&self) -> bool {
        !self.bridge.is_empty() && self.bridge_created.unwrap_or_else(|| self.bridge == bridge_name(&self.id))
    }

    fn mtu(&self) -> Option<u32> {
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
struct Attachment {
    name: String,
    sandbox: PathBuf,
    endpoints: Vec<Endpoint>,
    ports: Vec<(BoundPort, Ipv4Addr)>,
    upstream: Vec<Ipv4Addr>,
}

struct Net {
    rec: NetworkRecord,
    pool: Option<Pool>,
    used: BTreeSet<Ipv4Addr>,
    /// Its bridge could not be brought up (e.g. a host interface of that name is no bridge): left out of the firewall.
    down: bool,
}

#[derive(Default)]
struct State {
    nets: BTreeMap<String, Net>,
    attached: HashMap<String, Attachment>,
    /// Held host ports: (protocol, host address, port) → reservation.
    held: BTreeMap<(Proto, Ipv4Addr, u16), (String, Reservation)>,
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
    config: NetConfig,
    state: Mutex<State>,
    dns: Dns,
    fw: Firewall,
    /// Serialises firewall updates, so that the last one applied renders the latest state.
    fw_lock: tokio::sync::Mutex<()>,
    netns_dir: PathBuf,
}

fn net_error(e: berth_network::Error) -> Error {
    use berth_network::Error as N;
    match e {
        N::InvalidArgument(m) => Error::InvalidArgument(m),
        N::Conflict(m) => Error::Conflict(m),
        N::Exhausted(m) => Error::Forbidden(m),
        other => Error::Internal(other.to_string()),
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Networks {
    pub fn new(config: NetConfig, exec_root: &Path) -> Networks {
        let fw = Firewall::new(&config.table, config.firewall.clone());
        Networks {
            config,
            state: Mutex::new(State::default()),
            dns: Dns::new(),
            fw,
            fw_lock: tokio::sync::Mutex::new(()),
            netns_dir: exec_root.join("netns"),
        }
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
    fn rules(&self) -> Rules {
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
    async fn apply_firewall(&self) -> Result<(), Error> {
        if self.fw.backend == berth_network::firewall::Backend::None {
            tracing::warn!("neither nft nor iptables is installed: no masquerading, isolation or published ports");
            return Ok(());
        }
        let _g = self.fw_lock.lock().await;
        let rules = self.rules();
        let fw = self.fw.clone();
        blocking(move || fw.apply(&rules).map_err(|e| Error::Internal(e.to_string()))).await
    }

    /// Rebuilds the DNS names from the attachments.
    fn refresh_dns(&self) {
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
                });
            }
        }
        self.dns.set_entries(entries);
    }

    fn insert_net(&self, rec: NetworkRecord) {
        let pool = rec.pool();
        lock(&self.state).nets.insert(rec.id.clone(), Net { rec, pool, used: BTreeSet::new(), down: false });
    }
}

/// Why a container cannot join a network whose bridge could not be brought up.
fn down_error(rec: &NetworkRecord) -> Error {
    Error::Conflict(format!(
        "network {} is unusable: its bridge {} could not be brought up (see berthd's log); remove and recreate it",
        rec.name, rec.bridge
    ))
}

/// The bridge name Berth gives a user-defined network: Docker's `br-<12 hex of the ID>`.
fn bridge_name(id: &str) -> String {
    format!("br-{}", &id[..12])
}

/// Creates (or, once Berth has created it, finds) the bridge of a network with its gateway address, and serves DNS
/// on it (user-defined networks). `want`: which bridge may be used; a host interface that is not a bridge never is.
/// On failure a bridge created here is deleted again.
async fn bring_up(n: &Networks, rec: &NetworkRecord, want: BridgeUse) -> Result<(), Error> {
    let (Some(subnet), Some(gw)) = (rec.subnet, rec.gateway) else { return Ok(()) };
    let (bridge, mtu) = (rec.bridge.clone(), rec.mtu());
    blocking(move || {
        let mut nl = berth_network::netlink::Netlink::open().map_err(net_error)?;
        let (idx, created) = nl.ensure_bridge(&bridge, mtu, want).map_err(net_error)?;
        if let Err(e) = nl.add_address(idx, gw, subnet.prefix()) {
            if created {
                let _ = nl.delete_bridge_named(&bridge);
            }
            return Err(net_error(e));
        }
        // Published ports reached through 127.0.0.1 are routed out of the bridge.
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"), "1");
        Ok(())
    })
    .await?;
    if !rec.internal {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
    }
    if !rec.is_default() {
        n.dns.listen(&rec.id, gw, &rec.bridge).map_err(net_error)?;
    }
    Ok(())
}

/// Loads the networks, creates the predefined ones, brings every bridge up and applies the firewall. Called before
/// the containers are loaded.
pub async fn load(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let n = &d.networks;
    blocking({
        let dir = n.netns_dir.clone();
        move || netns::shared_mount_point(&dir).map_err(net_error)
    })
    .await?;
    let store = d.store.clone();
    let docs = tokio::task::spawn_blocking(move || store.list_docs(DOC_KIND)).await??;
    for doc in docs {
        match serde_json::from_value::<NetworkRecord>(doc) {
            Ok(r) => n.insert_net(r),
            Err(e) => tracing::warn!("skipping an unreadable network record: {e}"),
        }
    }
    for (name, driver) in [("host", "host"), ("none", "null")] {
        if n.find(name).is_err() {
            let rec = NetworkRecord {
                id: crate::names::new_id()?,
                name: name.into(),
                driver: driver.into(),
                created: berth_api::time::now(),
                subnet: None,
                gateway: None,
                ip_range: None,
                user_subnet: false,
                internal: false,
                attachable: false,
                labels: HashMap::new(),
                options: HashMap::new(),
                ipam_options: HashMap::new(),
                bridge: String::new(),
                bridge_created: None,
            };
            save(d, &rec).await?;
            n.insert_net(rec);
        }
    }
    default_bridge(d).await?;
    for rec in n.all() {
        let want = if rec.owns_bridge() { BridgeUse::Own } else { BridgeUse::Existing };
        if rec.is_bridge()
            && let Err(e) = bring_up(n, &rec, want).await
        {
            tracing::warn!("network {}: {e}", rec.name);
            if let Some(net) = lock(&n.state).nets.get_mut(&rec.id) {
                net.down = true;
            }
        }
    }
    // The firewall is applied by `restore`, once the running containers' published ports are known again: applying
    // it here would take their port rules away for a moment.
    Ok(())
}

/// The default `bridge` network: created on first start with `--bip` or the first free default subnet; its bridge
/// and subnet follow `--bridge`/`--bip` when those change.
async fn default_bridge(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let n = &d.networks;
    let existing = n.find(DEFAULT_BRIDGE).ok();
    let wanted_subnet = n.config.bip.map(|(ip, p)| Subnet::new(ip, p)).transpose()?;
    if let Some(s) = &wanted_subnet {
        ipam::check_not_loopback(s).map_err(|e| anyhow::anyhow!("--bip: {e}"))?;
    }
    // Who made the bridge: Berth creates a missing one (and may delete it later); a bridge that exists and that the
    // record does not say Berth created is used as dockerd uses `-b`'s, never deleted; any other interface is
    // refused.
    let link = {
        let name = n.config.bridge.clone();
        blocking(move || {
            berth_network::netlink::Netlink::open().and_then(|mut nl| nl.link_info(&name)).map_err(net_error)
        })
        .await?
    };
    let created = match link {
        None => true,
        Some((_, false)) => {
            anyhow::bail!("--bridge {0}: existing interface {0} is not a bridge", n.config.bridge)
        }
        Some((_, true)) => existing
            .as_ref()
            .is_some_and(|r| r.bridge == n.config.bridge && r.bridge_created.unwrap_or(!n.config.bridge_from_flag)),
    };
    if let Some(rec) = &existing {
        let same_bridge = rec.bridge == n.config.bridge && rec.bridge_created == Some(created);
        let same_subnet = wanted_subnet.is_none_or(|s| Some(s) == rec.subnet);
        if same_bridge && same_subnet {
            return Ok(());
        }
    }
    let subnet = match wanted_subnet {
        Some(s) => s,
        None => {
            let mut taken = ipam::host_routes();
            taken.extend(n.all().iter().filter(|r| r.name != DEFAULT_BRIDGE).filter_map(|r| r.subnet));
            ipam::pick_subnet(&n.config.pools, &taken)?
        }
    };
    let gateway = n.config.bip.map(|(ip, _)| ip).unwrap_or_else(|| subnet.first_host());
    let mut options = HashMap::new();
    for (k, v) in [
        ("com.docker.network.bridge.default_bridge", "true"),
        ("com.docker.network.bridge.enable_icc", "true"),
        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        ("com.docker.network.driver.mtu", "1500"),
    ] {
        options.insert(k.to_string(), v.to_string());
    }
    options.insert("com.docker.network.bridge.name".into(), n.config.bridge.clone());
    let rec = NetworkRecord {
        id: existing.as_ref().map(|r| r.id.clone()).unwrap_or(crate::names::new_id()?),
        name: DEFAULT_BRIDGE.into(),
        driver: "bridge".into(),
        created: existing.as_ref().map(|r| r.created.clone()).unwrap_or_else(berth_api::time::now),
        subnet: Some(subnet),
        gateway: Some(gateway),
        ip_range: None,
        user_subnet: false,
        internal: false,
        attachable: false,
        labels: HashMap::new(),
        options,
        ipam_options: HashMap::new(),
        bridge: n.config.bridge.clone(),
        bridge_created: Some(created),
    };
    save(d, &rec).await?;
    n.insert_net(rec);
    Ok(())
}

async fn save(d: &Daemon, rec: &NetworkRecord) -> Result<(), Error> {
    let store = d.store.clone();
    let doc = serde_json::to_value(rec).map_err(|e| Error::Internal(e.to_string()))?;
    let (id, name) = (rec.id.clone(), rec.name.clone());
    blocking(move || store.put_doc(DOC_KIND, &id, Some(&name), &doc).map_err(crate::daemon::store_error)).await
}

// ---------------------------------------------------------------------------------------------------------------
// Networks: create, remove, prune

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Creates a user-defined network. Returns its ID.
pub async fn create(d: &Arc<Daemon>, req: NetworkCreateRequest) -> Result<String, Error> {
    let n = &d.networks;
    let name = req.name.clone();
    if name.is_empty() {
        return Err(Error::InvalidArgument("network name cannot be empty".into()));
    }
    if !valid_name(&name) {
        return Err(Error::InvalidArgument(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let driver = req.driver.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "bridge".into());
    match driver.as_str() {
        "bridge" => {}
        "host" | "null" => {
            return Err(Error::Forbidden(format!("only one instance of \"{driver}\" network is allowed")));
        }
        "overlay" | "ipvlan" | "macvlan" => {
            return Err(Error::InvalidArgument(format!("network driver {driver:?} is not supported by berth")));
        }
        other => return Err(Error::NotFound(format!("plugin \"{other}\" not found"))),
    }
    if req.enable_ipv6.unwrap_or(false) {
        return Err(Error::InvalidArgument("IPv6 networks are not supported by berth yet".into()));
    }
    if req.config_only.unwrap_or(false) || req.config_from.as_ref().is_some_and(|c| c.network.is_some()) {
        return Err(Error::InvalidArgument("config-only networks are not supported by berth".into()));
    }
    if let Some(drv) = req.ipam.as_ref().and_then(|i| i.driver.clone()).filter(|d| !d.is_empty() && d != "default") {
        return Err(Error::NotFound(format!("plugin \"{drv}\" not found")));
    }
    if n.find(&name).is_ok_and(|r| r.name == name) {
        return Err(Error::Conflict(format!("network with name {name} already exists")));
    }
    let options = req.options.clone().unwrap_or_default();
    if options.get("com.docker.network.bridge.enable_icc").is_some_and(|v| v == "false") {
        return Err(Error::InvalidArgument(
            "com.docker.network.bridge.enable_icc=false is not supported by berth yet".into(),
        ));
    }
    let configs = req.ipam.as_ref().and_then(|i| i.config.clone()).unwrap_or_default();
    if configs.len() > 1 {
        return Err(Error::InvalidArgument("berth supports one IPv4 subnet per network".into()));
    }
    let c = configs.into_iter().next().unwrap_or_default();
    let parse_ip = |s: &str, what: &str| {
        s.parse::<Ipv4Addr>().map_err(|_| Error::InvalidArgument(format!("invalid {what} address: {s}")))
    };
    let user_subnet = c.subnet.as_deref().filter(|s| !s.is_empty());
    if user_subnet.is_none()
        && (c.gateway.as_deref().is_some_and(|g| !g.is_empty()) || c.ip_range.as_deref().is_some_and(|r| !r.is_empty()))
    {
        return Err(Error::InvalidArgument("--gateway and --ip-range need --subnet".into()));
    }
    let id = crate::names::new_id()?;
    let bridge = options.get("com.docker.network.bridge.name").cloned().unwrap_or_else(|| bridge_name(&id));
    if bridge.is_empty() || bridge.len() > 15 || bridge.contains('/') || bridge.contains(char::is_whitespace) {
        return Err(Error::InvalidArgument(format!("invalid bridge name {bridge:?}")));
    }
    let host_addresses: Vec<Ipv4Addr> = blocking(|| {
        let mut nl = berth_network::netlink::Netlink::open().map_err(net_error)?;
        Ok(nl.all_addresses().map_err(net_error)?.into_iter().map(|(_, ip, _)| ip).collect())
    })
    .await?;
    // Subnet choice and the overlap check happen under the state lock, so two creates cannot take the same one.
    let rec = {
        let mut taken: Vec<Subnet> = ipam::host_routes();
        let st = lock(&n.state);
        let ours: Vec<Subnet> = st.nets.values().filter_map(|x| x.rec.subnet).collect();
        if st.nets.values().any(|x| x.rec.bridge == bridge) {
            return Err(Error::Conflict(format!("bridge {bridge} is used by another network")));
        }
        let subnet = match user_subnet {
            Some(s) => {
                let s = Subnet::parse(s, true).map_err(net_error)?;
                ipam::check_not_loopback(&s).map_err(net_error)?;
                if ours.iter().any(|o| o.overlaps(&s)) {
                    return Err(Error::Forbidden("Pool overlaps with other one on this address space".into()));
                }
                s
            }
            None => {
                taken.extend(ours);
                ipam::pick_subnet(&n.config.pools, &taken).map_err(net_error)?
            }
        };
        let gateway = match c.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => Some(parse_ip(g, "gateway")?),
            None => None,
        };
        let range = match c.ip_range.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Some(Subnet::parse(r, false).map_err(net_error)?),
            None => None,
        };
        let pool = Pool::new(subnet, range, gateway).map_err(net_error)?;
        if host_addresses.contains(&pool.gateway) {
            return Err(Error::InvalidArgument(format!(
                "gateway {} is an address of a host interface: berth does not take over the host's addresses",
                pool.gateway
            )));
        }
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: berth_api::time::now(),
            subnet: Some(subnet),
            gateway: Some(pool.gateway),
            ip_range: range,
            user_subnet: user_subnet.is_some(),
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options,
            ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()).unwrap_or_default(),
            bridge,
            bridge_created: Some(true),
        };
        drop(st);
        n.insert_net(rec.clone());
        rec
    };
    let undo = |n: &Networks| {
        lock(&n.state).nets.remove(&rec.id);
    };
    if let Err(e) = save(d, &rec).await {
        undo(n);
        return Err(match e {
            Error::Conflict(_) => Error::Conflict(format!("network with name {name} already exists")),
            e => e,
        });
    }
    // A new bridge only: an existing interface of that name (the host's, another daemon's) is refused untouched.
    let up = match bring_up(n, &rec, BridgeUse::New).await {
        Ok(()) => n.apply_firewall().await.map_err(|e| (e, true)),
        Err(e) => Err((e, false)),
    };
    if let Err((e, made)) = up {
        undo(n);
        if made {
            teardown_bridge(n, &rec).await;
        }
        let store = d.store.clone();
        let id = rec.id.clone();
        let _ = blocking(move || store.delete_doc(DOC_KIND, &id).map_err(crate::daemon::store_error)).await;
        let _ = n.apply_firewall().await;
        return Err(e);
    }
    Ok(id)
}

/// Stops a network's DNS server and deletes its bridge if Berth created it (and it still is a bridge).
async fn teardown_bridge(n: &Networks, rec: &NetworkRecord) {
    if let Some(gw) = rec.gateway {
        n.dns.stop(gw);
    }
    if !rec.owns_bridge() {
        return;
    }
    let bridge = rec.bridge.clone();
    if let Err(e) = blocking(move || {
        let mut nl = berth_network::netlink::Netlink::open().map_err(net_error)?;
        nl.delete_bridge_named(&bridge).map_err(net_error)
    })
    .await
    {
        tracing::warn!("network {}: {e}", rec.name);
    }
}

/// Removes a user-defined network; refused while running containers use it.
pub async fn remove(d: &Arc<Daemon>, key: &str) -> Result<(), Error> {
    let n = &d.networks;
    let rec = n.find(key)?;
    if matches!(rec.name.as_str(), "bridge" | "host" | "none") {
        return Err(Error::Forbidden(format!("{} is a pre-defined network and cannot be removed", rec.name)));
    }
    {
        // The check and the removal under one lock: no container can attach in between.
        let mut st = lock(&n.state);
        let in_use = st.attached.values().any(|a| a.endpoints.iter().any(|e| e.network_id == rec.id));
        if in_use {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        st.nets.remove(&rec.id);
    }
    let store = d.store.clone();
    let id = rec.id.clone();
    if let Err(e) = blocking(move || store.delete_doc(DOC_KIND, &id).map_err(crate::daemon::store_error)).await {
        n.insert_net(rec);
        return Err(e);
    }
    teardown_bridge(n, &rec).await;
    n.apply_firewall().await
}

/// Removes every user-defined network no running container uses (and that matches the filters).
pub async fn prune(d: &Arc<Daemon>, filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for rec in d.networks.all() {
        if matches!(rec.name.as_str(), "bridge" | "host" | "none") || !d.networks.users(&rec.id).is_empty() {
            continue;
        }
        if !prune_filter(&rec, filters)? {
            continue;
        }
        match remove(d, &rec.id).await {
            Ok(()) => removed.push(rec.name),
            Err(e) => tracing::warn!("prune network {}: {e}", rec.name),
        }
    }
    Ok(removed)
}

fn label_match(labels: &HashMap<String, String>, v: &str) -> bool {
    match v.split_once('=') {
        Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
        None => labels.contains_key(v),
    }
}

fn prune_filter(rec: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> Result<bool, Error> {
    for (k, vals) in f {
        let ok = match k.as_str() {
            "label" => vals.iter().all(|v| label_match(&rec.labels, v)),
            "label!" => !vals.iter().any(|v| label_match(&rec.labels, v)),
            "until" => {
                let created = berth_api::time::parse(&rec.created);
                vals.iter().all(|v| {
                    let limit = berth_api::time::parse_since(v, std::time::SystemTime::now());
                    matches!((created, limit), (Some(c), Some(l)) if c < l)
                })
            }
            other => return Err(Error::InvalidArgument(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a network matches `network ls` filters.
pub fn list_filter(d: &Daemon, rec: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> Result<bool, Error> {
    for (k, vals) in f {
        if vals.is_empty() {
            continue;
        }
        let builtin = matches!(rec.name.as_str(), "bridge" | "host" | "none");
        let ok = match k.as_str() {
            "driver" => vals.contains(&rec.driver),
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            "name" => vals.iter().any(|v| rec.name.contains(v.as_str())),
            "label" => vals.iter().all(|v| label_match(&rec.labels, v)),
            "scope" => vals.iter().any(|v| v == "local"),
            "type" => vals.iter().any(|v| match v.as_str() {
                "custom" => !builtin,
                "builtin" => builtin,
                _ => false,
            }),
            "dangling" => {
                let want = vals.iter().any(|v| v == "true" || v == "1");
                let dangling = !builtin && d.networks.users(&rec.id).is_empty();
                want == dangling
            }
            other => return Err(Error::InvalidArgument(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Docker's network JSON.
pub fn inspect(d: &Daemon, rec: &NetworkRecord, with_containers: bool) -> Value {
    let mut containers = serde_json::Map::new();
    if with_containers {
        for (cid, name, e) in d.networks.users(&rec.id) {
            containers.insert(
                cid,
                json!({
                    "Name": name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": e.ip.map(|ip| format!("{ip}/{}", e.prefix)).unwrap_or_default(),
                    "IPv6Address": "",
                }),
            );
        }
    }
    let config: Vec<Value> = match (rec.subnet, rec.gateway) {
        (Some(s), Some(g)) => {
            let mut c = json!({"Subnet": s.to_string(), "Gateway": g.to_string()});
            if let Some(r) = rec.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            vec![c]
        }
        _ => Vec::new(),
    };
    json!({
        "Name": rec.name,
        "Id": rec.id,
        "Created": rec.created,
        "Scope": "local",
        "Driver": rec.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": if rec.ipam_options.is_empty() { Value::Null } else { json!(rec.ipam_options) }, "Config": config},
        "Internal": rec.internal,
        "Attachable": rec.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": rec.options,
        "Labels": rec.labels,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Containers: endpoints at creation, attachment at start, release at exit

fn parse_ipv4(s: Option<&str>) -> Result<Option<Ipv4Addr>, Error> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map(Some).map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {s}"))),
        None => Ok(None),
    }
}

/// The endpoint a container asks for on network `rec`, validated as Docker does.
pub fn endpoint_for(rec: &NetworkRecord, cfg: Option<&EndpointSettings>) -> Result<Endpoint, Error> {
    let aliases: Vec<String> = cfg.and_then(|c| c.aliases.clone()).unwrap_or_default();
    let ip = parse_ipv4(cfg.and_then(|c| c.ipam_config.as_ref()).and_then(|i| i.ipv4_address.as_deref()))?;
    if !rec.is_bridge() {
        return Err(Error::InvalidArgument(format!(
            "container cannot be connected to network {}: it has no endpoints",
            rec.name
        )));
    }
    if rec.is_default() && !aliases.is_empty() {
        return Err(Error::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if let Some(ip) = ip {
        if !rec.user_subnet {
            return Err(Error::InvalidArgument(
                "user specified IP address is supported only when connecting to networks with user configured subnets"
                    .into(),
            ));
        }
        rec.pool()
            .ok_or_else(|| Error::Internal("network without a pool".into()))?
            .claim(&mut BTreeSet::new(), ip)
            .map_err(net_error)?;
    }
    Ok(Endpoint {
        network: rec.name.clone(),
        network_id: rec.id.clone(),
        aliases,
        requested_ip: ip,
        links: cfg.and_then(|c| c.links.clone()).unwrap_or_default(),
        ..Default::default()
    })
}

/// The endpoints of a new container: its network mode's network, then any others of `EndpointsConfig`.
pub fn endpoints_at_create(
    d: &Daemon,
    network_mode: &str,
    configs: &HashMap<String, EndpointSettings>,
) -> Result<Vec<Endpoint>, Error> {
    match mode(network_mode) {
        Mode::Host | Mode::None => return Ok(Vec::new()),
        Mode::Container(target) => {
            // Not a 404: the docker CLI takes a 404 from create for a missing image and tries to pull it.
            d.container(&target).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            return Ok(Vec::new());
        }
        Mode::Bridge => {}
    }
    let primary = match network_mode {
        "" | "default" => DEFAULT_BRIDGE,
        m => m,
    };
    // As in Docker, a network that does not exist fails the start, not the creation (the docker CLI would take a
    // 404 here for a missing image and try to pull it).
    let missing = |name: &str| Endpoint { network: name.to_string(), ..Default::default() };
    // The docker CLI names the default network `default` in EndpointsConfig too.
    let configs: HashMap<&str, &EndpointSettings> =
        configs.iter().map(|(k, v)| (if k == "default" { DEFAULT_BRIDGE } else { k.as_str() }, v)).collect();
    let cfg_for = |r: &NetworkRecord| configs.get(r.name.as_str()).or_else(|| configs.get(r.id.as_str())).copied();
    let mut eps = vec![match d.networks.find(primary) {
        Ok(rec) => endpoint_for(&rec, cfg_for(&rec).or(configs.get(primary).copied()))?,
        Err(_) => missing(primary),
    }];
    let mut keys: Vec<&&str> = configs.keys().collect();
    keys.sort();
    for key in keys {
        let cfg = configs[*key];
        let Ok(r) = d.networks.find(key) else {
            if !eps.iter().any(|e| e.network == **key) {
                eps.push(missing(key));
            }
            continue;
        };
        if eps.iter().any(|e| e.network_id == r.id || e.network == r.name) {
            continue;
        }
        eps.push(endpoint_for(&r, Some(cfg))?);
    }
    Ok(eps)
}

/// Where a started container's namespace and `/etc` files come from.
pub struct Sandbox {
    /// The network namespace to join (`None`: the host's).
    pub netns: Option<PathBuf>,
    /// The directory whose `hosts`, `resolv.conf` and `hostname` the container gets.
    pub files_dir: PathBuf,
    /// The hostname (another container's, for `container:`).
    pub hostname: Option<String>,
}

fn slot_names(id: &str, slot: usize) -> (String, String) {
    (format!("eth{slot}"), format!("vb{}{slot:x}", &id[..10]))
}

/// The host ends of a running container's veths that exist but that its record does not list: a `network connect`
/// cut short by a crash between making the veth and recording the endpoint.
pub fn unrecorded_interfaces(rec: &Record) -> Vec<String> {
    (0..8)
        .map(|s| slot_names(&rec.id, s).1)
        .filter(|h| !rec.net.endpoints.iter().any(|e| &e.host_ifname == h))
        .filter(|h| Path::new("/sys/class/net").join(h).exists())
        .collect()
}

/// Sets up a container's networking before it starts: allocates addresses, binds published ports, creates its
/// namespace and veths, writes its `hosts` and `resolv.conf`, updates DNS and the firewall. On failure nothing is
/// left behind. Returns the record's new network state and the sandbox to give the runtime.
pub async fn attach(d: &Arc<Daemon>, rec: &Record, dir: &Path) -> Result<(NetState, Sandbox), Error> {
    let n = &d.networks;
    let network_mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    match mode(&network_mode) {
        Mode::Host => {
            write_files(d, dir, &hostname, &[], rec, None)?;
            return Ok((NetState::default(), Sandbox { netns: None, files_dir: dir.to_path_buf(), hostname: None }));
        }
        Mode::Container(target) => {
            let other = d.container(&target)?;
            let orec = other.record();
            if !other.is_running() || orec.state.pid <= 0 {
                return Err(Error::Conflict(format!("cannot join network of a non running container: {}", orec.id)));
            }
            let ns = match orec.net.sandbox.as_str() {
                "" => PathBuf::from(format!("/proc/{}/ns/net", orec.state.pid)),
                s => PathBuf::from(s),
            };
            let host_ns = mode(orec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host;
            return Ok((
                NetState::default(),
                Sandbox {
                    netns: (!host_ns).then_some(ns),
                    files_dir: crate::containers::container_dir(d, &orec.id),
                    hostname: orec.config.hostname.clone(),
                },
            ));
        }
        Mode::None | Mode::Bridge => {}
    }
    let id = rec.id.clone();
    let sandbox = n.netns_path(&id);
    let upstream = upstream_dns(n, rec);
    // Addresses and ports, under the lock.
    let (endpoints, ifaces, ports) = {
        let mut st = lock(&n.state);
        let mut endpoints = Vec::new();
        let mut ifaces = Vec::new();
        let mut failure = None;
        let mut gateway_set = false;
        for (slot, want) in rec.net.endpoints.iter().enumerate() {
            // By ID; else by name (the network was created after the container, or recreated since).
            let key = if st.nets.contains_key(&want.network_id) {
                Some(want.network_id.clone())
            } else {
                st.nets.values().find(|n| n.rec.name == want.network).map(|n| n.rec.id.clone())
            };
            let Some(net) = key.and_then(|k| st.nets.get_mut(&k)) else {
                failure = Some(Error::NotFound(format!("network {} not found", want.network)));
                break;
            };
            if net.down {
                failure = Some(down_error(&net.rec));
                break;
            }
            let (Some(pool), Some(subnet)) = (net.pool.clone(), net.rec.subnet) else {
                failure = Some(Error::Internal(format!("network {} has no address pool", net.rec.name)));
                break;
            };
            let ip = match want.requested_ip {
                Some(ip) => pool.claim(&mut net.used, ip),
                None => pool.allocate(&mut net.used),
            };
            let ip = match ip {
                Ok(ip) => ip,
                Err(e) => {
                    failure = Some(net_error(e));
                    break;
                }
            };
            let (ifname, host_ifname) = slot_names(&id, slot);
            let mac = ipam::mac_for(ip);
            let default_gateway = (!net.rec.internal && !gateway_set).then_some(pool.gateway);
            gateway_set |= default_gateway.is_some();
            ifaces.push(Interface {
                host_name: host_ifname.clone(),
                bridge: net.rec.bridge.clone(),
                name: ifname.clone(),
                ip,
                prefix: subnet.prefix(),
                mac,
                default_gateway,
                mtu: net.rec.mtu(),
            });
            let mut ep = want.clone();
            ep.network = net.rec.name.clone();
            ep.network_id = net.rec.id.clone();
            ep.endpoint_id = hex_id(&id, &net.rec.id);
            ep.ip = Some(ip);
            ep.prefix = subnet.prefix();
            ep.gateway = Some(pool.gateway);
            ep.mac = ipam::mac_string(&mac);
            ep.ifname = ifname;
            ep.host_ifname = host_ifname;
            endpoints.push(ep);
        }
        let ports = match failure {
            None => match bind_ports(&mut st, rec, &endpoints) {
                Ok(p) => Some(p),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            },
            Some(_) => None,
        };
        if let Some(e) = failure {
            free_addresses(&mut st, &endpoints);
            return Err(e);
        }
        let ports = ports.unwrap_or_default();
        st.attached.insert(
            id.clone(),
            Attachment {
                name: rec.name.clone(),
                sandbox: sandbox.clone(),
                endpoints: endpoints.clone(),
                ports: ports.clone(),
                upstream: upstream.clone(),
            },
        );
        (endpoints, ifaces, ports)
    };
    let made = {
        let sandbox = sandbox.clone();
        blocking(move || netns::create(&sandbox, ifaces).map_err(net_error)).await
    };
    let result = async {
        made?;
        if !ports.is_empty() {
            n.apply_firewall().await?;
        }
        n.refresh_dns();
        let resolver =
            endpoints.iter().find_map(|e| n.find(&e.network_id).ok().filter(|r| !r.is_default()).and(e.gateway));
        write_files(d, dir, &hostname, &endpoints, rec, resolver)
    };
    if let Err(e) = result.await {
        release(d, &id).await;
        return Err(e);
    }
    let state = NetState {
        endpoints,
        ports: ports.into_iter().map(|(p, _)| p).collect(),
        sandbox: sandbox.display().to_string(),
    };
    Ok((state, Sandbox { netns: Some(sandbox), files_dir: dir.to_path_buf(), hostname: None }))
}

/// Where the embedded DNS relays a container's other queries: its `--dns`, else berthd's `--dns`, else (empty) the
/// host's resolvers.
fn upstream_dns(n: &Networks, rec: &Record) -> Vec<Ipv4Addr> {
    let own: Vec<Ipv4Addr> = rec.host_config.dns.iter().flatten().filter_map(|s| s.parse().ok()).collect();
    if own.is_empty() { n.config.dns.clone() } else { own }
}

fn hex_id(a: &str, b: &str) -> String {
    // Stable per (container, network): the endpoint's identity needs no randomness.
    let mut s: String = a.chars().rev().zip(b.chars()).flat_map(|(x, y)| [x, y]).collect();
    s.truncate(64);
    s
}

fn free_addresses(st: &mut State, endpoints: &[Endpoint]) {
    for e in endpoints {
        if let (Some(net), Some(ip)) = (st.nets.get_mut(&e.network_id), e.ip) {
            net.used.remove(&ip);
        }
    }
}

/// Binds the container's published ports (`-p`, and `-P` for its exposed ports) on the host. All or nothing.
fn bind_ports(st: &mut State, rec: &Record, endpoints: &[Endpoint]) -> Result<Vec<(BoundPort, Ipv4Addr)>, Error> {
    let mut wanted: Vec<(Proto, u16, Option<Ipv4Addr>, String)> = Vec::new();
    let bindings = rec.host_config.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    for key in keys {
        let (port, proto) = parse_port_key(key)?;
        let list = bindings.get(key).cloned().flatten().unwrap_or_default();
        for b in list {
            let ip = parse_ipv4(b.host_ip.as_deref())?;
            wanted.push((proto, port, ip, b.host_port.clone().unwrap_or_default()));
        }
    }
    if rec.host_config.publish_all_ports.unwrap_or(false) {
        let mut exposed: Vec<&String> = rec.config.exposed_ports.iter().flatten().collect();
        exposed.sort();
        for key in exposed {
            let (port, proto) = parse_port_key(key)?;
            if !wanted.iter().any(|w| w.0 == proto && w.1 == port) {
                wanted.push((proto, port, None, String::new()));
            }
        }
    }
    // Every host port is parsed before any is reserved, so bad input holds nothing.
    let mut plan: Vec<(Proto, u16, Option<Ipv4Addr>, Vec<u16>)> = Vec::new();
    for (proto, cport, ip, host_port) in wanted {
        let candidates: Vec<u16> = match host_port.as_str() {
            "" | "0" => vec![0],
            hp => match hp.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (parse_host_port(a)?, parse_host_port(b)?);
                    if a > b {
                        return Err(Error::InvalidArgument(format!("invalid port range: {hp}")));
                    }
                    (a..=b).collect()
                }
                None => vec![parse_host_port(hp)?],
            },
        };
        plan.push((proto, cport, ip, candidates));
    }
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let Some(first) = endpoints.first() else { return Ok(Vec::new()) };
    // Docker publishes nothing for a container whose network is internal.
    if st.nets.get(&first.network_id).is_some_and(|n| n.rec.internal) {
        return Ok(Vec::new());
    }
    let Some(container_ip) = first.ip else { return Ok(Vec::new()) };
    let mut bound: Vec<(BoundPort, Ipv4Addr)> = Vec::new();
    let mut keys_taken: Vec<(Proto, Ipv4Addr, u16)> = Vec::new();
    let undo = |st: &mut State, keys: &[(Proto, Ipv4Addr, u16)]| {
        for k in keys {
            st.held.remove(k);
        }
    };
    // The network's `com.docker.network.bridge.host_binding_ipv4` is the address for ports given without one.
    let default_ip = endpoints
        .first()
        .and_then(|e| st.nets.get(&e.network_id))
        .and_then(|n| n.rec.options.get("com.docker.network.bridge.host_binding_ipv4"))
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    for (proto, cport, ip, candidates) in plan {
        let host_ip = ip.unwrap_or(default_ip);
        let mut last_err = None;
        let mut done = None;
        for hp in &candidates {
            // A port another container holds on the same (or the wildcard) address is Docker's "already allocated".
            let clash = *hp != 0
                && st.held.keys().any(|(p, a, port)| {
                    *p == proto && *port == *hp && (*a == host_ip || a.is_unspecified() || host_ip.is_unspecified())
                });
            if clash {
                last_err = Some(Error::Internal(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): Bind for {host_ip}:{hp} failed: port is already allocated",
                    rec.name, endpoints[0].endpoint_id
                )));
                continue;
            }
            match ports::reserve(proto, host_ip, *hp) {
                Ok((port, res)) => {
                    done = Some((port, res));
                    break;
                }
                Err(e) => {
                    last_err = Some(Error::Internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {e}",
                        rec.name, endpoints[0].endpoint_id
                    )))
                }
            }
        }
        match done {
            Some((port, res)) => {
                let key = (proto, host_ip, port);
                st.held.insert(key, (rec.id.clone(), res));
                keys_taken.push(key);
                bound.push((BoundPort { proto, container_port: cport, host_ip, host_port: port }, container_ip));
            }
            None => {
                undo(st, &keys_taken);
                return Err(last_err.unwrap_or_else(|| Error::Internal("no host port available".into())));
            }
        }
    }
    Ok(bound)
}

fn parse_host_port(s: &str) -> Result<u16, Error> {
    s.parse::<u16>().map_err(|_| Error::InvalidArgument(format!("invalid host port: {s}")))
}

/// `80/tcp` → (80, tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, Proto), Error> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = Proto::parse(proto)
        .ok_or_else(|| Error::InvalidArgument(format!("invalid proto {proto:?} (berth supports tcp and udp)")))?;
    let port = port.parse::<u16>().map_err(|_| Error::InvalidArgument(format!("invalid port: {key}")))?;
    if port == 0 {
        return Err(Error::InvalidArgument(format!("invalid port: {key}")));
    }
    Ok((port, proto))
}

const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
                               ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes one of a container's `/etc` files, mode 0644 whatever berthd's umask: the container's non-root users read
/// it through its bind mount (the directory around it stays root's only).
fn write_etc_file(path: PathBuf, data: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, data)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
}

/// Writes the container's `hostname`, `hosts` and `resolv.conf`: its own addresses and `--add-host` entries; the
/// embedded DNS server (`resolver`) on user-defined networks, else the host's resolvers (or `--dns`).
pub fn write_files(
    d: &Daemon,
    dir: &Path,
    hostname: &str,
    endpoints: &[Endpoint],
    rec: &Record,
    resolver: Option<Ipv4Addr>,
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Internal(format!("write the container's /etc files: {e}"));
    let host_mode = mode(rec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host;
    write_etc_file(dir.join("hostname"), format!("{hostname}\n")).map_err(io)?;
    let mut hosts =
        if host_mode { std::fs::read_to_string("/etc/hosts").unwrap_or_default() } else { LOCALHOST_LINES.to_string() };
    for h in rec.host_config.extra_hosts.iter().flatten() {
        let (name, ip) = h.split_once(':').or_else(|| h.split_once('=')).unwrap_or((h.as_str(), ""));
        hosts += &format!("{ip}\t{name}\n");
    }
    if !host_mode {
        for e in endpoints {
            if let Some(ip) = e.ip {
                hosts += &format!("{ip}\t{hostname}\n");
            }
        }
    }
    write_etc_file(dir.join("hosts"), hosts).map_err(io)?;
    let host_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let parsed = berth_network::dns::parse_resolv_conf(&host_conf);
    let h = &rec.host_config;
    let search: Vec<String> = h.dns_search.clone().filter(|s| !s.is_empty()).unwrap_or(parsed.search.clone());
    let mut options: Vec<String> = h.dns_options.clone().filter(|s| !s.is_empty()).unwrap_or(parsed.options.clone());
    let servers: Vec<String> = match resolver {
        Some(gw) => {
            if !options.iter().any(|o| o.starts_with("ndots:")) {
                options.push("ndots:0".into());
            }
            vec![gw.to_string()]
        }
        None => match h.dns.clone().filter(|s| !s.is_empty()) {
            Some(s) => s,
            None if !d.networks.config.dns.is_empty() => {
                d.networks.config.dns.iter().map(|ip| ip.to_string()).collect()
            }
            None if host_mode => {
                return write_etc_file(dir.join("resolv.conf"), host_conf).map_err(io);
            }
            None => {
                // Docker drops the host's loopback resolvers (unreachable from the container) and falls back to
                // public ones when nothing is left.
                let s: Vec<String> =
                    parsed.nameservers.iter().filter(|ip| !ip.is_loopback()).map(|ip| ip.to_string()).collect();
                if s.is_empty() { vec!["8.8.8.8".into(), "8.8.4.4".into()] } else { s }
            }
        },
    };
    let mut text = String::new();
    for s in servers {
        text += &format!("nameserver {s}\n");
    }
    if !search.is_empty() {
        text += &format!("search {}\n", search.join(" "));
    }
    if !options.is_empty() {
        text += &format!("options {}\n", options.join(" "));
    }
    write_etc_file(dir.join("resolv.conf"), text).map_err(io)
}

/// Releases a container's networking (after it exits, a failed start, or removal): addresses, ports, DNS names,
/// firewall rules, and its namespace (whose veths the kernel then destroys with it). Safe to call more than once,
/// and for containers berthd did not see running (it was down when they ended).
pub async fn release(d: &Arc<Daemon>, id: &str) {
    let n = &d.networks;
    let (sandbox, had_ports, name, host_names) = {
        let mut st = lock(&n.state);
        match st.attached.remove(id) {
            Some(a) => {
                free_addresses(&mut st, &a.endpoints);
                st.held.retain(|_, (cid, _)| cid != id);
                let hosts: Vec<String> = a.endpoints.iter().map(|e| e.host_ifname.clone()).collect();
                (a.sandbox, !a.ports.is_empty(), a.name, hosts)
            }
            None => (n.netns_path(id), false, String::new(), Vec::new()),
        }
    };
    // A container that joined this one's namespace (`container:`) keeps it alive: its interfaces, whose addresses
    // are free again now, must go at once rather than with the namespace.
    let shared = !host_names.is_empty()
        && d.all_containers().iter().any(|c| {
            let r = c.record();
            let m = r.host_config.network_mode.unwrap_or_default();
            r.id != id
                && c.is_running()
                && (m == format!("container:{id}")
                    || (!name.is_empty() && m == format!("container:{name}"))
                    || m.strip_prefix("container:").is_some_and(|t| t.len() >= 12 && id.starts_with(t)))
        });
    n.refresh_dns();
    if had_ports && let Err(e) = n.apply_firewall().await {
        tracing::warn!("firewall after {} ended: {e}", &id[..12]);
    }
    let _ = blocking(move || {
        if shared && let Err(e) = netns::remove_interfaces(&host_names) {
            tracing::warn!("remove the interfaces of a shared namespace: {e}");
        }
        netns::unpin(&sandbox);
        Ok(())
    })
    .await;
}

/// Takes back the attachments of containers that kept running while berthd was down (their addresses and ports
/// stay theirs), then removes namespaces that belong to no running container.
pub async fn restore(d: &Arc<Daemon>, running: &[Record]) {
    let n = &d.networks;
    {
        let mut st = lock(&n.state);
        for rec in running {
            if rec.net.sandbox.is_empty() {
                continue;
            }
            for e in &rec.net.endpoints {
                if let (Some(net), Some(ip)) = (st.nets.get_mut(&e.network_id), e.ip) {
                    net.used.insert(ip);
                }
            }
            let container_ip = rec.net.endpoints.first().and_then(|e| e.ip);
            let mut ports = Vec::new();
            for p in &rec.net.ports {
                match ports::reserve(p.proto, p.host_ip, p.host_port) {
                    Ok((_, res)) => {
                        st.held.insert((p.proto, p.host_ip, p.host_port), (rec.id.clone(), res));
                    }
                    Err(e) => tracing::warn!("container {}: port {}: {e}", &rec.id[..12], p.host_port),
                }
                if let Some(ip) = container_ip {
                    ports.push((p.clone(), ip));
                }
            }
            st.attached.insert(
                rec.id.clone(),
                Attachment {
                    name: rec.name.clone(),
                    sandbox: PathBuf::from(&rec.net.sandbox),
                    endpoints: rec.net.endpoints.clone(),
                    ports,
                    upstream: upstream_dns(n, rec),
                },
            );
        }
    }
    n.refresh_dns();
    if let Err(e) = n.apply_firewall().await {
        tracing::warn!("firewall: {e}");
    }
    let mut keep: BTreeSet<String> = running.iter().map(|r| r.id.clone()).collect();
    keep.extend(lock(&n.state).attached.keys().cloned());
    let dir = n.netns_dir.clone();
    let _ = blocking(move || {
        for pin in netns::pinned(&dir) {
            let id = pin.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            if !keep.contains(&id) && id.len() >= 10 {
                let hosts: Vec<String> = (0..8).map(|s| slot_names(&id, s).1).collect();
                tracing::info!("removing the network namespace of {} (not running)", &id[..10.min(id.len())]);
                let _ = netns::destroy(&pin, &hosts);
            }
        }
        Ok(())
    })
    .await;
}

/// Renames a container's DNS names.
pub fn renamed(d: &Daemon, id: &str, name: &str) {
    if let Some(a) = lock(&d.networks.state).attached.get_mut(id) {
        a.name = name.to_string();
    }
    d.networks.refresh_dns();
}

/// `network connect`: adds an endpoint to a container; a running one gets the interface at once.
pub async fn connect(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    key: &str,
    cfg: Option<EndpointSettings>,
) -> Result<(), Error> {
    let n = &d.networks;
    let net = n.find(key)?;
    let _guard = c.lifecycle.lock().await;
    let rec = c.record();
    match mode(rec.host_config.network_mode.as_deref().unwrap_or("")) {
        Mode::Bridge => {}
        Mode::None | Mode::Host | Mode::Container(_) => {
            return Err(Error::Forbidden("container sharing network namespace with another container or host cannot be connected to any other network".to_string()));
        }
    }
    if rec.net.endpoints.iter().any(|e| e.network_id == net.id) {
        return Err(Error::Forbidden(format!(
            "endpoint with name {} already exists in network {}",
            rec.name, net.name
        )));
    }
    let mut ep = endpoint_for(&net, cfg.as_ref())?;
    if !c.is_running() {
        crate::containers::set_endpoints(d, c, |eps| eps.push(ep)).await?;
        return Ok(());
    }
    let id = rec.id.clone();
    let slot = (0..).find(|s| !rec.net.endpoints.iter().any(|e| e.ifname == format!("eth{s}"))).unwrap_or(0);
    let (ifname, host_ifname) = slot_names(&id, slot);
    let iface = {
        let mut st = lock(&n.state);
        let Some(nn) = st.nets.get_mut(&net.id) else {
            return Err(Error::NotFound(format!("network {key} not found")));
        };
        if nn.down {
            return Err(down_error(&nn.rec));
        }
        let pool = nn.pool.clone().ok_or_else(|| Error::Internal("network without a pool".into()))?;
        let ip = match ep.requested_ip {
            Some(ip) => pool.claim(&mut nn.used, ip),
            None => pool.allocate(&mut nn.used),
        }
        .map_err(net_error)?;
        let prefix = net.subnet.map(|s| s.prefix()).unwrap_or(16);
        let mac = ipam::mac_for(ip);
        ep.endpoint_id = hex_id(&id, &net.id);
        ep.ip = Some(ip);
        ep.prefix = prefix;
        ep.gateway = Some(pool.gateway);
        ep.mac = ipam::mac_string(&mac);
        ep.ifname = ifname.clone();
        ep.host_ifname = host_ifname.clone();
        let has_gateway = rec.net.endpoints.iter().any(|e| st.nets.get(&e.network_id).is_some_and(|x| !x.rec.internal));
        Interface {
            host_name: host_ifname,
            bridge: net.bridge.clone(),
            name: ifname,
            ip,
            prefix,
            mac,
            default_gateway: (!net.internal && !has_gateway).then_some(pool.gateway),
            mtu: net.mtu(),
        }
    };
    let sandbox = n.netns_path(&id);
    let added = {
        let sandbox = sandbox.clone();
        blocking(move || netns::add(&sandbox, vec![iface]).map_err(net_error)).await
    };
    if let Err(e) = added {
        let mut st = lock(&n.state);
        free_addresses(&mut st, std::slice::from_ref(&ep));
        return Err(e);
    }
    berth_store::fault::point("network.connect-after-veth");
    {
        let mut st = lock(&n.state);
        match st.attached.get_mut(&id) {
            Some(a) => a.endpoints.push(ep.clone()),
            None => {
                // It ended meanwhile (its namespace, and the new interface, are gone with it).
                free_addresses(&mut st, std::slice::from_ref(&ep));
                return Err(Error::Conflict(format!("container {id} is not running")));
            }
        }
    }
    n.refresh_dns();
    let ip = ep.ip;
    crate::containers::set_endpoints(d, c, |eps| eps.push(ep)).await?;
    // The container's own entry for the new address, as Docker adds it.
    if let Some(ip) = ip {
        let hosts = crate::containers::container_dir(d, &id).join("hosts");
        let mut text = std::fs::read_to_string(&hosts).unwrap_or_default();
        text += &format!("{ip}\t{}\n", rec.config.hostname.clone().unwrap_or_default());
        let _ = std::fs::write(&hosts, text);
    }
    Ok(())
}

/// `network disconnect`.
pub async fn disconnect(d: &Arc<Daemon>, c: &Arc<Container>, key: &str, _force: bool) -> Result<(), Error> {
    let n = &d.networks;
    let net = n.find(key)?;
    let _guard = c.lifecycle.lock().await;
    let rec = c.record();
    let Some(ep) = rec.net.endpoints.iter().find(|e| e.network_id == net.id).cloned() else {
        return Err(Error::Forbidden(format!("container {} is not connected to network {}", rec.id, net.name)));
    };
    if c.is_running() {
        let host = ep.host_ifname.clone();
        blocking(move || netns::remove_interfaces(&[host]).map_err(net_error)).await?;
        berth_store::fault::point("network.disconnect-after-veth");
        let ports_dropped = {
            let mut st = lock(&n.state);
            // Only what the attachment still has is freed (an exit may have released it all already).
            let live = st.attached.get_mut(&rec.id).and_then(|a| {
                let i = a.endpoints.iter().position(|e| e.network_id == net.id)?;
                let gone = a.endpoints.remove(i);
                let before = a.ports.len();
                let dropped: Vec<BoundPort> =
                    a.ports.iter().filter(|(_, ip)| Some(*ip) == gone.ip).map(|(p, _)| p.clone()).collect();
                a.ports.retain(|(_, ip)| Some(*ip) != gone.ip);
                Some((gone, dropped, before))
            });
            match live {
                Some((gone, dropped, _)) => {
                    free_addresses(&mut st, std::slice::from_ref(&gone));
                    for p in &dropped {
                        st.held.remove(&(p.proto, p.host_ip, p.host_port));
                    }
                    dropped
                }
                None => Vec::new(),
            }
        };
        n.refresh_dns();
        if !ports_dropped.is_empty() {
            // Its published ports pointed at the address it just gave up.
            n.apply_firewall().await?;
            let keep: Vec<BoundPort> =
                c.record().net.ports.into_iter().filter(|p| !ports_dropped.contains(p)).collect();
            c.update_net_ports(keep);
        }
    }
    crate::containers::set_endpoints(d, c, |eps| eps.retain(|e| e.network_id != net.id)).await
}

/// `NetworkSettings` of a container, as Docker shows it.
pub fn settings(d: &Daemon, rec: &Record) -> Value {
    let running = matches!(rec.state.status, crate::containers::Status::Running | crate::containers::Status::Paused);
    let mut networks = serde_json::Map::new();
    let network_mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let mut primary = json!({"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""});
    match mode(&network_mode) {
        Mode::Host | Mode::None => {
            let name = if network_mode == "host" { "host" } else { "none" };
            let id = d.networks.find(name).map(|r| r.id).unwrap_or_default();
            networks.insert(
                name.into(),
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "NetworkID": id,
                       "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                       "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null}),
            );
        }
        Mode::Container(_) => {}
        Mode::Bridge => {
            for e in &rec.net.endpoints {
                let live = running && e.ip.is_some();
                let s = |v: String| if live { v } else { String::new() };
                let dns_names: Value = if e.network == DEFAULT_BRIDGE {
                    Value::Null
                } else {
                    let mut v = vec![rec.name.clone(), rec.id[..12].to_string()];
                    v.extend(e.aliases.iter().cloned());
                    json!(v)
                };
                let entry = json!({
                    "IPAMConfig": e.requested_ip.map(|ip| json!({"IPv4Address": ip.to_string()})),
                    "Links": if e.links.is_empty() { Value::Null } else { json!(e.links) },
                    "Aliases": if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) },
                    "MacAddress": s(e.mac.clone()),
                    "NetworkID": e.network_id,
                    "EndpointID": s(e.endpoint_id.clone()),
                    "Gateway": s(e.gateway.map(|g| g.to_string()).unwrap_or_default()),
                    "IPAddress": s(e.ip.map(|g| g.to_string()).unwrap_or_default()),
                    "IPPrefixLen": if live { e.prefix } else { 0 },
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "DriverOpts": null,
                    "DNSNames": dns_names,
                });
                if e.network == DEFAULT_BRIDGE {
                    for k in ["EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"] {
                        primary[k] = entry[k].clone();
                    }
                }
                networks.insert(e.network.clone(), entry);
            }
        }
    }
    let mut ports = serde_json::Map::new();
    for key in rec.config.exposed_ports.iter().flatten() {
        ports.insert(key.clone(), Value::Null);
    }
    if running {
        for p in &rec.net.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let entry = json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
            match ports.get_mut(&key) {
                Some(Value::Array(a)) => a.push(entry),
                _ => {
                    ports.insert(key, json!([entry]));
                }
            }
        }
    }
    json!({
        "Bridge": "",
        "SandboxID": if running && !rec.net.sandbox.is_empty() { rec.id.clone() } else { String::new() },
        "SandboxKey": if running { rec.net.sandbox.clone() } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": primary["EndpointID"],
        "Gateway": primary["Gateway"],
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": primary["IPAddress"],
        "IPPrefixLen": primary["IPPrefixLen"],
        "IPv6Gateway": "",
        "MacAddress": primary["MacAddress"],
        "Networks": networks,
    })
}

/// The `Ports` of a container in `GET /containers/json`.
pub fn list_ports(rec: &Record) -> Value {
    let running = matches!(rec.state.status, crate::containers::Status::Running | crate::containers::Status::Paused);
    let mut v = Vec::new();
    let mut published = BTreeSet::new();
    if running {
        for p in &rec.net.ports {
            published.insert((p.container_port, p.proto));
            v.push(json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port, "PublicPort": p.host_port,
                          "Type": p.proto.as_str()}));
        }
    }
    for key in rec.config.exposed_ports.iter().flatten() {
        if let Ok((port, proto)) = parse_port_key(key)
            && !published.contains(&(port, proto))
        {
            v.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
        }
    }
    Value::Array(v)
}

/// Removes berthd's networking from the host: every bridge of its networks, its firewall rules, the pin directory.
/// For tests and uninstalling (`berthd --remove-networking`); containers must be gone.
pub fn remove_everything(
    store: &berth_store::Store,
    table: &str,
    backend: berth_network::firewall::Backend,
    netns_dir: &Path,
) -> anyhow::Result<()> {
    let mut nl = berth_network::netlink::Netlink::open()?;
    for doc in store.list_docs(DOC_KIND)? {
        // Only the bridges Berth created: never a host interface or a bridge it was given (`--bridge`).
        if let Ok(rec) = serde_json::from_value::<NetworkRecord>(doc)
            && rec.owns_bridge()
            && let Err(e) = nl.delete_bridge_named(&rec.bridge)
        {
            tracing::warn!("network {}: {e}", rec.name);
        }
    }
    Firewall::new(table, backend).clear()?;
    for pin in netns::pinned(netns_dir) {
        let _ = netns::destroy(&pin, &[]);
    }
    netns::release_shared_mount_point(netns_dir)?;
    Ok(())
}
