//! Networks themselves: loading and the predefined ones at start-up, create, remove, prune, list filters.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use berth_api::models::NetworkCreateRequest;
use berth_network::firewall::Firewall;
use berth_network::ipam::{self, Pool, Subnet};
use berth_network::netlink::BridgeUse;
use berth_network::netns::{self};
use berth_store::Store;

use crate::daemon::Daemon;
use crate::filters::Filters;
use crate::task::blocking;

use super::*;

/// Loads the networks, creates the predefined ones, brings every bridge up and applies the firewall. Called before
/// the containers are loaded.
pub async fn load(d: &Arc<Daemon>) -> anyhow::Result<()> {
    d.networks.load(&d.store).await
}

/// Creates a user-defined network. Returns its ID.
pub async fn create(d: &Arc<Daemon>, req: NetworkCreateRequest) -> Result<String, Error> {
    let id = d.networks.create(&d.store, req).await?;
    if let Ok(net) = d.networks.find(&id) {
        publish(d, &net, "create", None);
    }
    Ok(id)
}

/// Publishes `connect` (a container starts) or `disconnect` (it ended) for each network of `endpoints`, as Docker's.
pub fn publish_endpoints(d: &Daemon, container: &str, endpoints: &[Endpoint], action: &str) {
    for e in endpoints {
        if let Ok(net) = d.networks.find(&e.network_id) {
            publish(d, &net, action, Some(container));
        }
    }
}

/// Publishes a network event with Docker's attributes (`name`, `type`, and `container` for connect/disconnect).
pub fn publish(d: &Daemon, net: &NetworkRecord, action: &str, container: Option<&str>) {
    let mut a = crate::events::attrs(&[("name", &net.name), ("type", &net.driver)]);
    if let Some(c) = container {
        a.insert("container".into(), c.into());
    }
    d.events.publish("network", action, &net.id, a);
}

/// Removes a user-defined network; refused while running containers use it.
pub async fn remove(d: &Arc<Daemon>, key: &str) -> Result<(), Error> {
    let net = d.networks.find(key)?;
    d.networks.remove(&d.store, key).await?;
    publish(d, &net, "destroy", None);
    Ok(())
}

impl Networks {
    /// See [`load`].
    pub async fn load(&self, store: &Arc<Store>) -> anyhow::Result<()> {
        let n = self;
        let dir = n.netns_dir.clone();
        n.on_host(move |k| k.prepare_pins(&dir)).await?;
        let store = store.clone();
        let docs = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.list_docs(DOC_KIND)).await??
        };
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
                    aux_addresses: HashMap::new(),
                    bridge: String::new(),
                    bridge_created: None,
                };
                save(&store, &rec).await?;
                n.insert_net(rec);
            }
        }
        n.default_bridge(&store).await?;
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
    pub(super) async fn default_bridge(&self, store: &Arc<Store>) -> anyhow::Result<()> {
        let n = self;
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
            n.on_host(move |k| k.link_is_bridge(&name)).await?
        };
        let created = match link {
            None => true,
            Some(false) => {
                anyhow::bail!("--bridge {0}: existing interface {0} is not a bridge", n.config.bridge)
            }
            Some(true) => existing
                .as_ref()
                .is_some_and(|r| r.bridge == n.config.bridge && r.bridge_created.unwrap_or(!n.config.bridge_from_flag)),
        };
        // A bridge Berth did not create keeps the address it has, as dockerd's `-b` without `--bip`: its subnet is the
        // default network's (Berth adds no second address to an interface that is not its own).
        let adopted = match (link, created, wanted_subnet) {
            (Some(true), false, None) => {
                let name = n.config.bridge.clone();
                let addrs = n.on_host(move |k| k.link_addresses(&name)).await?;
                match existing.as_ref().and_then(|r| r.gateway.zip(r.subnet)) {
                    // The address it had at the last start, while the bridge still has it.
                    Some((gw, s)) if addrs.iter().any(|&(ip, p)| ip == gw && p == s.prefix()) => Some((gw, s.prefix())),
                    _ => addrs.first().copied(),
                }
            }
            _ => None,
        };
        let wanted_subnet = match adopted {
            Some((ip, prefix)) => Some(Subnet::new(ip, prefix)?),
            None => wanted_subnet,
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
                let mut taken = n.kernel.host_routes();
                taken.extend(n.all().iter().filter(|r| r.name != DEFAULT_BRIDGE).filter_map(|r| r.subnet));
                ipam::pick_subnet(&n.config.pools, &taken)?
            }
        };
        let gateway =
            n.config.bip.map(|(ip, _)| ip).or(adopted.map(|(ip, _)| ip)).unwrap_or_else(|| subnet.first_host());
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
            aux_addresses: HashMap::new(),
            bridge: n.config.bridge.clone(),
            bridge_created: Some(created),
        };
        save(store, &rec).await?;
        n.insert_net(rec);
        Ok(())
    }
}

pub(super) async fn save(store: &Arc<Store>, rec: &NetworkRecord) -> Result<(), Error> {
    let store = store.clone();
    let doc = serde_json::to_value(rec).map_err(|e| Error::Internal(e.to_string()))?;
    let (id, name) = (rec.id.clone(), rec.name.clone());
    blocking(move || store.put_doc(DOC_KIND, &id, Some(&name), &doc).map_err(Error::from)).await
}

/// Docker refuses only what cannot be a name in its API paths: a `/` or a control character (spaces, other
/// punctuation and non-ASCII letters are accepted; the Linux bridge is named from the ID, never from the name).
pub(super) fn valid_name(name: &str) -> bool {
    !name.contains('/') && !name.chars().any(char::is_control)
}

impl Networks {
    /// See [`create`].
    pub async fn create(&self, store: &Arc<Store>, req: NetworkCreateRequest) -> Result<String, Error> {
        let n = self;
        let name = req.name.clone();
        if name.is_empty() {
            return Err(Error::InvalidArgument("network name cannot be empty".into()));
        }
        if !valid_name(&name) {
            return Err(Error::InvalidArgument(format!(
                "invalid network name {name:?}: '/' and control characters are not allowed"
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
        if let Some(drv) = req.ipam.as_ref().and_then(|i| i.driver.clone()).filter(|d| !d.is_empty() && d != "default")
        {
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
            && (c.gateway.as_deref().is_some_and(|g| !g.is_empty())
                || c.ip_range.as_deref().is_some_and(|r| !r.is_empty()))
        {
            return Err(Error::InvalidArgument("--gateway and --ip-range need --subnet".into()));
        }
        let id = crate::names::new_id()?;
        let bridge = options.get("com.docker.network.bridge.name").cloned().unwrap_or_else(|| bridge_name(&id));
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains('/') || bridge.contains(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!("invalid bridge name {bridge:?}")));
        }
        let host_addresses: Vec<Ipv4Addr> = n.on_host(|k| k.host_addresses()).await?;
        // Subnet choice and the overlap check happen under the state lock, so two creates cannot take the same one.
        let rec = {
            let mut taken: Vec<Subnet> = n.kernel.host_routes();
            let st = lock(&n.state);
            let ours: Vec<Subnet> = st.nets.values().filter_map(|x| x.rec.subnet).collect();
            if st.nets.values().any(|x| x.rec.bridge == bridge) {
                return Err(Error::Conflict(format!("bridge {bridge} is used by another network")));
            }
            let subnet = match user_subnet {
                Some(s) => {
                    let s = Subnet::parse(s, true).map_err(Error::from)?;
                    ipam::check_not_loopback(&s).map_err(Error::from)?;
                    if ours.iter().any(|o| o.overlaps(&s)) {
                        return Err(Error::Forbidden("Pool overlaps with other one on this address space".into()));
                    }
                    s
                }
                None => {
                    taken.extend(ours);
                    ipam::pick_subnet(&n.config.pools, &taken).map_err(Error::from)?
                }
            };
            let gateway = match c.gateway.as_deref().filter(|g| !g.is_empty()) {
                Some(g) => Some(parse_ip(g, "gateway")?),
                None => None,
            };
            let range = match c.ip_range.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => Some(Subnet::parse(r, false).map_err(Error::from)?),
                None => None,
            };
            let pool = Pool::new(subnet, range, gateway).map_err(Error::from)?;
            // Docker's IPAM checks of `AuxiliaryAddresses` (they are then kept out of the addresses given out).
            let aux = c.auxiliary_addresses.clone().unwrap_or_default();
            for (k, v) in &aux {
                let ip: Ipv4Addr = v.parse().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "non parsable secondary ip address ({k}:{v}) passed for network {name}"
                    ))
                })?;
                if !subnet.contains(ip) {
                    return Err(Error::Forbidden(format!(
                        "auxilairy address: ({k}:{v}) must belong to the master pool: {subnet}"
                    )));
                }
            }
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
                aux_addresses: aux,
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
        if let Err(e) = save(store, &rec).await {
            undo(n);
            // The store's own conflict (a name taken by a create racing this one) arrives wrapped: `is_conflict`.
            return Err(if e.is_conflict() {
                Error::Conflict(format!("network with name {name} already exists"))
            } else {
                e
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
            let store = store.clone();
            let id = rec.id.clone();
            let _ = blocking(move || store.delete_doc(DOC_KIND, &id).map_err(Error::from)).await;
            let _ = n.apply_firewall().await;
            return Err(e);
        }
        Ok(id)
    }

    /// See [`remove`].
    pub async fn remove(&self, store: &Arc<Store>, key: &str) -> Result<(), Error> {
        let n = self;
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
        let store = store.clone();
        let id = rec.id.clone();
        if let Err(e) = blocking(move || store.delete_doc(DOC_KIND, &id).map_err(Error::from)).await {
            n.insert_net(rec);
            return Err(e);
        }
        teardown_bridge(n, &rec).await;
        n.apply_firewall().await
    }
}

/// Stops a network's DNS server and deletes its bridge if Berth created it (and it still is a bridge).
pub(super) async fn teardown_bridge(n: &Networks, rec: &NetworkRecord) {
    if let Some(gw) = rec.gateway {
        n.kernel.dns_stop(gw);
    }
    if !rec.owns_bridge() {
        return;
    }
    let bridge = rec.bridge.clone();
    if let Err(e) = n.on_host(move |k| k.delete_bridge(&bridge)).await {
        tracing::warn!("network {}: {e}", rec.name);
    }
}

/// The filters `GET /networks` accepts (Docker's).
pub const LIST_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];
/// The filters `POST /networks/prune` accepts (Docker's).
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// Removes every user-defined network no running container uses (and that matches the filters).
pub async fn prune(d: &Arc<Daemon>, f: &Filters) -> Result<Vec<String>, Error> {
    f.accept(PRUNE_FILTERS)?;
    let until = f.time("until", std::time::SystemTime::now())?;
    let mut removed = Vec::new();
    for rec in d.networks.all() {
        if matches!(rec.name.as_str(), "bridge" | "host" | "none") || !d.networks.users(&rec.id).is_empty() {
            continue;
        }
        let created = berth_api::time::parse(&rec.created);
        if !f.match_labels(&rec.labels) || until.is_some_and(|u| created.is_none_or(|c| c >= u)) {
            continue;
        }
        match remove(d, &rec.id).await {
            Ok(()) => removed.push(rec.name),
            Err(e) => tracing::warn!("prune network {}: {e}", rec.name),
        }
    }
    d.events.publish_prune("network", 0);
    Ok(removed)
}

/// The networks `network ls` lists, by name: `driver`, `id` (a prefix), `name` (a part), `label`, `scope` (`local`),
/// `type` (`custom`/`builtin`), `dangling` (a user-defined network no container uses).
pub fn list(d: &Daemon, f: &Filters) -> Result<Vec<NetworkRecord>, Error> {
    f.accept(LIST_FILTERS)?;
    let dangling = f.bool("dangling")?;
    let mut recs = d.networks.all();
    recs.sort_by(|a, b| a.name.cmp(&b.name));
    recs.retain(|rec| {
        let builtin = matches!(rec.name.as_str(), "bridge" | "host" | "none");
        f.any("driver", |v| v == rec.driver)
            && f.any("id", |v| rec.id.starts_with(v))
            && f.any("name", |v| rec.name.contains(v))
            && f.match_kv("label", &rec.labels)
            && f.any("scope", |v| v == "local")
            && f.any("type", |v| match v {
                "custom" => !builtin,
                "builtin" => builtin,
                _ => false,
            })
            && dangling.is_none_or(|want| want == (!builtin && d.networks.users(&rec.id).is_empty()))
    });
    Ok(recs)
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
