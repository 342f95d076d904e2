//! A container's endpoints at creation and its attachment at start: addresses, ports, namespace, `/etc` files.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use berth_api::models::EndpointSettings;
use berth_network::firewall::Proto;
use berth_network::ipam::{self};
use berth_network::netns::Interface;

use berth_network::kernel::Kernel;

use crate::containers::persist::container_dir;
use crate::containers::record::Record;
use crate::daemon::Daemon;

use super::links::Linked;

use super::*;

pub(super) fn parse_ipv4(s: Option<&str>) -> Result<Option<Ipv4Addr>, Error> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map(Some).map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {s}"))),
        None => Ok(None),
    }
}

/// A MAC address asked for, normalised (`02:42:…`); Docker's 400 when it is not one.
pub(super) fn parse_mac(s: Option<&str>) -> Result<Option<String>, Error> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => ipam::parse_mac(s)
            .map(|m| Some(ipam::mac_string(&m)))
            .ok_or_else(|| Error::InvalidArgument(format!("invalid MAC address {s}"))),
        None => Ok(None),
    }
}

/// The MAC address of an endpoint: the one asked for, else one made from its IP address (as Docker's bridge driver).
pub(super) fn mac_of(ep: &Endpoint, ip: Ipv4Addr) -> [u8; 6] {
    ep.requested_mac.as_deref().and_then(ipam::parse_mac).unwrap_or_else(|| ipam::mac_for(ip))
}

/// The endpoint a container asks for on network `rec`, validated as Docker does.
pub fn endpoint_for(rec: &NetworkRecord, cfg: Option<&EndpointSettings>) -> Result<Endpoint, Error> {
    let aliases: Vec<String> = cfg.and_then(|c| c.aliases.clone()).unwrap_or_default();
    let requested_mac = parse_mac(cfg.and_then(|c| c.mac_address.as_deref()))?;
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
            .map_err(Error::from)?;
    }
    Ok(Endpoint {
        network: rec.name.clone(),
        network_id: rec.id.clone(),
        aliases,
        requested_ip: ip,
        requested_mac,
        links: cfg.and_then(|c| c.links.clone()).unwrap_or_default(),
        driver_opts: cfg.and_then(|c| c.driver_opts.clone()).unwrap_or_default(),
        link_local_ips: cfg
            .and_then(|c| c.ipam_config.as_ref())
            .and_then(|i| i.link_local_ips.clone())
            .unwrap_or_default(),
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
#[derive(Debug)]
pub struct Sandbox {
    /// The network namespace to join (`None`: the host's).
    pub netns: Option<PathBuf>,
    /// The directory whose `hosts`, `resolv.conf` and `hostname` the container gets.
    pub files_dir: PathBuf,
    /// The hostname (another container's, for `container:`).
    pub hostname: Option<String>,
    /// The variables of its legacy links (`<ALIAS>_PORT`…), for its environment.
    pub link_env: Vec<String>,
}

pub(super) fn slot_names(id: &str, slot: usize) -> (String, String) {
    (format!("eth{slot}"), format!("vb{}{slot:x}", &id[..10]))
}

impl Networks {
    /// The host ends of a running container's veths that exist but that its record does not list: a `network
    /// connect` cut short by a crash between making the veth and recording the endpoint.
    pub fn unrecorded_interfaces(&self, rec: &Record) -> Vec<String> {
        (0..8)
            .map(|s| slot_names(&rec.id, s).1)
            .filter(|h| !rec.net.endpoints.iter().any(|e| &e.host_ifname == h))
            .filter(|h| self.kernel.link_exists(h))
            .collect()
    }
}

/// Sets up a container's networking before it starts: allocates addresses, binds published ports, creates its
/// namespace and veths, writes its `hosts` and `resolv.conf`, updates DNS and the firewall. On failure nothing is
/// left behind. Returns the record's new network state and the sandbox to give the runtime.
pub async fn attach(d: &Arc<Daemon>, rec: &Record, dir: &Path) -> Result<(NetState, Sandbox), Error> {
    let network_mode = rec.host_config.network_mode.clone().unwrap_or_default();
    match mode(&network_mode) {
        Mode::Host => {
            let hostname = rec.config.hostname.clone().unwrap_or_default();
            d.networks.write_files(dir, &hostname, &[], rec, None, &[])?;
            Ok((
                NetState::default(),
                Sandbox { netns: None, files_dir: dir.to_path_buf(), hostname: None, link_env: Vec::new() },
            ))
        }
        Mode::Container(target) => {
            let orec = d.join_target(&target, "network")?;
            let ns = match orec.net.sandbox.as_str() {
                "" => PathBuf::from(format!("/proc/{}/ns/net", orec.state.pid)),
                s => PathBuf::from(s),
            };
            let host_ns = mode(orec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host;
            Ok((
                NetState::default(),
                Sandbox {
                    netns: (!host_ns).then_some(ns),
                    files_dir: container_dir(d, &orec.id),
                    hostname: orec.config.hostname.clone(),
                    link_env: Vec::new(),
                },
            ))
        }
        Mode::None | Mode::Bridge => {
            let links = super::links::resolve(d, rec)?;
            d.networks.attach(rec, dir, &links).await
        }
    }
}

impl Networks {
    /// [`attach`] of a container with a namespace of its own (network mode `none` or bridge networks), with its
    /// legacy links resolved.
    pub async fn attach(&self, rec: &Record, dir: &Path, links: &[Linked]) -> Result<(NetState, Sandbox), Error> {
        let n = self;
        let hostname = rec.config.hostname.clone().unwrap_or_default();
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
                        failure = Some(Error::from(e));
                        break;
                    }
                };
                let (ifname, host_ifname) = slot_names(&id, slot);
                let mac = mac_of(want, ip);
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
                None => match bind_ports(&*n.kernel, &mut st, rec, &endpoints) {
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
            n.on_host(move |k| k.create_namespace(&sandbox, ifaces)).await
        };
        let result = async {
            made?;
            if !ports.is_empty() {
                n.apply_firewall().await?;
            }
            n.refresh_dns();
            n.write_files(dir, &hostname, &endpoints, rec, n.resolver(&endpoints), links)
        };
        if let Err(e) = result.await {
            // No other container can have joined a namespace that is only being made.
            n.release(&id, Vec::new).await;
            return Err(e);
        }
        let state = NetState {
            endpoints,
            ports: ports.into_iter().map(|(p, _)| p).collect(),
            sandbox: sandbox.display().to_string(),
        };
        let link_env = links.iter().flat_map(|l| l.env.iter().cloned()).collect();
        Ok((state, Sandbox { netns: Some(sandbox), files_dir: dir.to_path_buf(), hostname: None, link_env }))
    }
}

/// Where the embedded DNS relays a container's other queries: its `--dns`, else berthd's `--dns`, else (empty) the
/// host's resolvers.
pub(super) fn upstream_dns(n: &Networks, rec: &Record) -> Vec<Ipv4Addr> {
    let own: Vec<Ipv4Addr> = rec.host_config.dns.iter().flatten().filter_map(|s| s.parse().ok()).collect();
    if own.is_empty() { n.config.dns.clone() } else { own }
}

pub(super) fn hex_id(a: &str, b: &str) -> String {
    // Stable per (container, network): the endpoint's identity needs no randomness.
    let mut s: String = a.chars().rev().zip(b.chars()).flat_map(|(x, y)| [x, y]).collect();
    s.truncate(64);
    s
}

pub(super) fn free_addresses(st: &mut State, endpoints: &[Endpoint]) {
    for e in endpoints {
        if let (Some(net), Some(ip)) = (st.nets.get_mut(&e.network_id), e.ip) {
            net.used.remove(&ip);
        }
    }
}

/// Binds the container's published ports (`-p`, and `-P` for its exposed ports) on the host. All or nothing.
pub(super) fn bind_ports(
    kernel: &dyn Kernel,
    st: &mut State,
    rec: &Record,
    endpoints: &[Endpoint],
) -> Result<Vec<(BoundPort, Ipv4Addr)>, Error> {
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
            match kernel.reserve_port(proto, host_ip, *hp) {
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

pub(super) fn parse_host_port(s: &str) -> Result<u16, Error> {
    s.parse::<u16>().map_err(|_| Error::InvalidArgument(format!("invalid host port: {s}")))
}

/// A port of a container as `GET /containers/json` lists it: the host address and port when published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedPort {
    pub host_ip: Option<std::net::Ipv4Addr>,
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub proto: Proto,
}

/// The ports of a container in `GET /containers/json` (and its `publish`/`expose` filters): the published ones while
/// it runs, then the exposed ones not published, each once.
pub fn listed_ports(rec: &Record) -> Vec<ListedPort> {
    let running = matches!(
        rec.state.status,
        crate::containers::record::Status::Running | crate::containers::record::Status::Paused
    );
    let mut v = Vec::new();
    let mut published = std::collections::BTreeSet::new();
    if running {
        for p in &rec.net.ports {
            published.insert((p.container_port, p.proto));
            v.push(ListedPort {
                host_ip: Some(p.host_ip),
                container_port: p.container_port,
                host_port: Some(p.host_port),
                proto: p.proto,
            });
        }
    }
    for key in rec.config.exposed_ports.iter().flatten() {
        // `insert`: a port listed twice (records made before exposed ports were merged as a set) shows once.
        if let Ok((port, proto)) = parse_port_key(key)
            && published.insert((port, proto))
        {
            v.push(ListedPort { host_ip: None, container_port: port, host_port: None, proto });
        }
    }
    v
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

pub(super) const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
                               ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes one of a container's `/etc` files, mode 0644 whatever berthd's umask: the container's non-root users read
/// it through its bind mount (the directory around it stays root's only).
pub(super) fn write_etc_file(path: PathBuf, data: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, data)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
}

impl Networks {
    /// Writes the container's `hostname`, `hosts` and `resolv.conf`: its own addresses, `--add-host` entries and
    /// legacy links; the embedded DNS server (`resolver`) on user-defined networks, else the host's resolvers (or
    /// `--dns`).
    pub fn write_files(
        &self,
        dir: &Path,
        hostname: &str,
        endpoints: &[Endpoint],
        rec: &Record,
        resolver: Option<Ipv4Addr>,
        links: &[Linked],
    ) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Internal(format!("write the container's /etc files: {e}"));
        let host_mode = mode(rec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host;
        write_etc_file(dir.join("hostname"), format!("{hostname}\n")).map_err(io)?;
        let mut hosts = if host_mode {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            LOCALHOST_LINES.to_string()
        };
        for h in rec.host_config.extra_hosts.iter().flatten() {
            let (name, ip) = h.split_once(':').or_else(|| h.split_once('=')).unwrap_or((h.as_str(), ""));
            hosts += &format!("{ip}\t{name}\n");
        }
        for l in links {
            hosts += &l.hosts_line();
        }
        if !host_mode {
            for e in endpoints {
                if let Some(ip) = e.ip {
                    hosts += &format!("{ip}\t{hostname}\n");
                }
            }
        }
        write_etc_file(dir.join("hosts"), hosts).map_err(io)?;
        self.write_resolv_conf(dir, rec, resolver)
    }

    /// The embedded DNS server a container with `endpoints` asks: its first user-defined network's gateway (`None`:
    /// only the default bridge, whose containers ask the host's resolvers, as in Docker).
    pub fn resolver(&self, endpoints: &[Endpoint]) -> Option<Ipv4Addr> {
        endpoints.iter().find_map(|e| self.find(&e.network_id).ok().filter(|r| !r.is_default()).and(e.gateway))
    }

    /// Writes the container's `resolv.conf`: the embedded DNS server (`resolver`) on user-defined networks, else
    /// the host's resolvers (or `--dns`); a running container reads the file in place (its bind mount).
    pub fn write_resolv_conf(&self, dir: &Path, rec: &Record, resolver: Option<Ipv4Addr>) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Internal(format!("write the container's /etc files: {e}"));
        let host_mode = mode(rec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host;
        let host_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let parsed = berth_network::dns::parse_resolv_conf(&host_conf);
        let h = &rec.host_config;
        let search: Vec<String> = h.dns_search.clone().filter(|s| !s.is_empty()).unwrap_or(parsed.search.clone());
        let mut options: Vec<String> =
            h.dns_options.clone().filter(|s| !s.is_empty()).unwrap_or(parsed.options.clone());
        let servers: Vec<String> = match resolver {
            Some(gw) => {
                if !options.iter().any(|o| o.starts_with("ndots:")) {
                    options.push("ndots:0".into());
                }
                vec![gw.to_string()]
            }
            None => match h.dns.clone().filter(|s| !s.is_empty()) {
                Some(s) => s,
                None if !self.config.dns.is_empty() => self.config.dns.iter().map(|ip| ip.to_string()).collect(),
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
}
