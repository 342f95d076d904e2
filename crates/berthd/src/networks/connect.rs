//! Release at exit, restore at start-up, rename, and `network connect`/`disconnect` of a container.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;
use berth_api::models::EndpointSettings;
use berth_network::ipam::{self};
use berth_network::netns::Interface;

use crate::containers::persist::container_dir;
use crate::containers::record::{Container, Record};
use crate::daemon::Daemon;

use super::*;

/// Releases a container's networking (after it exits, a failed start, or removal): addresses, ports, DNS names,
/// firewall rules, and its namespace (whose veths the kernel then destroys with it). Safe to call more than once,
/// and for containers berthd did not see running (it was down when they ended).
pub async fn release(d: &Arc<Daemon>, id: &str) {
    let running = || d.all_containers().iter().filter(|c| c.is_running()).map(|c| c.record()).collect();
    d.networks.release(id, running).await
}

/// Takes back the attachments of containers that kept running while berthd was down (their addresses and ports
/// stay theirs), then removes namespaces that belong to no running container.
pub async fn restore(d: &Arc<Daemon>, running: &[Record]) {
    d.networks.restore(running).await
}

impl Networks {
    /// See [`release`]. `running`: the records of the running containers (asked for only when the namespace had
    /// interfaces, to find containers that joined it).
    pub async fn release(&self, id: &str, running: impl FnOnce() -> Vec<Record>) {
        let n = self;
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
            && running().into_iter().any(|r| {
                let m = r.host_config.network_mode.unwrap_or_default();
                r.id != id
                    && (m == format!("container:{id}")
                        || (!name.is_empty() && m == format!("container:{name}"))
                        || m.strip_prefix("container:").is_some_and(|t| t.len() >= 12 && id.starts_with(t)))
            });
        n.refresh_dns();
        if had_ports && let Err(e) = n.apply_firewall().await {
            tracing::warn!("firewall after {} ended: {e}", &id[..12]);
        }
        let _ = n
            .on_host(move |k| {
                if shared && let Err(e) = k.remove_interfaces(&host_names) {
                    tracing::warn!("remove the interfaces of a shared namespace: {e}");
                }
                k.unpin(&sandbox);
                Ok(())
            })
            .await;
    }

    /// See [`restore`].
    pub async fn restore(&self, running: &[Record]) {
        let n = self;
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
                    match n.kernel.reserve_port(p.proto, p.host_ip, p.host_port) {
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
        let _ = n
            .on_host(move |k| {
                for pin in k.pinned(&dir) {
                    let id = pin.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    if !keep.contains(&id) && id.len() >= 10 {
                        let hosts: Vec<String> = (0..8).map(|s| slot_names(&id, s).1).collect();
                        tracing::info!("removing the network namespace of {} (not running)", &id[..10.min(id.len())]);
                        let _ = k.destroy_namespace(&pin, &hosts);
                    }
                }
                Ok(())
            })
            .await;
    }
}

/// Renames a container's DNS names.
pub fn renamed(d: &Daemon, id: &str, name: &str) {
    d.networks.renamed(id, name)
}

impl Networks {
    /// See [`renamed`].
    pub fn renamed(&self, id: &str, name: &str) {
        if let Some(a) = lock(&self.state).attached.get_mut(id) {
            a.name = name.to_string();
        }
        self.refresh_dns();
    }
}

/// A change to a container's stored list of networks.
pub type EndpointEdit = Box<dyn FnOnce(&mut Vec<Endpoint>) + Send>;

/// `network connect`: adds an endpoint to a container; a running one gets the interface at once. `save` changes and
/// stores the container's list of networks (the container manager's `set_endpoints`: networks import no manager).
pub async fn connect<S, F>(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    key: &str,
    cfg: Option<EndpointSettings>,
    save: S,
) -> Result<(), Error>
where
    S: FnOnce(EndpointEdit) -> F,
    F: Future<Output = Result<(), Error>>,
{
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
    let ep = endpoint_for(&net, cfg.as_ref())?;
    if !c.is_running() {
        save(Box::new(|eps| eps.push(ep))).await?;
        super::manage::publish(d, &net, "connect", Some(&rec.id));
        return Ok(());
    }
    let id = rec.id.clone();
    let ep = n.connect_running(&rec, &net, ep).await?;
    let ip = ep.ip;
    let before = n.resolver(&rec.net.endpoints);
    let mut after_eps = rec.net.endpoints.clone();
    after_eps.push(ep.clone());
    save(Box::new(|eps| eps.push(ep))).await?;
    // A container of the default bridge connected to a user-defined network switches to the embedded DNS server,
    // as Docker does: its `--dns` servers (or berthd's, or the host's) stay its upstreams there.
    if before.is_none()
        && let Some(resolver) = n.resolver(&after_eps)
        && let Err(e) = n.write_resolv_conf(&container_dir(d, &id), &rec, Some(resolver))
    {
        tracing::warn!("network connect {}: {e}", &id[..12]);
    }
    // The container's own entry for the new address, as Docker adds it.
    if let Some(ip) = ip {
        let hosts = container_dir(d, &id).join("hosts");
        let mut text = std::fs::read_to_string(&hosts).unwrap_or_default();
        text += &format!("{ip}\t{}\n", rec.config.hostname.clone().unwrap_or_default());
        let _ = std::fs::write(&hosts, text);
    }
    super::manage::publish(d, &net, "connect", Some(&id));
    Ok(())
}

/// `network disconnect`. `save` as for [`connect`].
pub async fn disconnect<S, F>(
    d: &Arc<Daemon>,
    c: &Arc<Container>,
    key: &str,
    _force: bool,
    save: S,
) -> Result<(), Error>
where
    S: FnOnce(EndpointEdit) -> F,
    F: Future<Output = Result<(), Error>>,
{
    let n = &d.networks;
    let net = n.find(key)?;
    let _guard = c.lifecycle.lock().await;
    let rec = c.record();
    let Some(ep) = rec.net.endpoints.iter().find(|e| e.network_id == net.id).cloned() else {
        return Err(Error::Forbidden(format!("container {} is not connected to network {}", rec.id, net.name)));
    };
    if c.is_running() {
        let ports_dropped = n.disconnect_running(&rec.id, &ep).await?;
        if !ports_dropped.is_empty() {
            let keep: Vec<BoundPort> =
                c.record().net.ports.into_iter().filter(|p| !ports_dropped.contains(p)).collect();
            c.update_net_ports(keep);
        }
    }
    let net_id = net.id.clone();
    let left: Vec<Endpoint> = rec.net.endpoints.iter().filter(|e| e.network_id != net_id).cloned().collect();
    save(Box::new(move |eps| eps.retain(|e| e.network_id != net_id))).await?;
    // The DNS server it asked may have gone with that network: the next user-defined network's, or the host's
    // resolvers again.
    let resolver = n.resolver(&left);
    if c.is_running()
        && resolver != n.resolver(&rec.net.endpoints)
        && let Err(e) = n.write_resolv_conf(&container_dir(d, &rec.id), &rec, resolver)
    {
        tracing::warn!("network disconnect {}: {e}", &rec.id[..12]);
    }
    super::manage::publish(d, &net, "disconnect", Some(&rec.id));
    Ok(())
}

impl Networks {
    /// The running part of [`connect`]: an address on `net` for container `rec`, its interface in the container's
    /// namespace, its DNS names. Returns the endpoint with its address; on failure nothing is left.
    pub async fn connect_running(
        &self,
        rec: &Record,
        net: &NetworkRecord,
        mut ep: Endpoint,
    ) -> Result<Endpoint, Error> {
        let n = self;
        let id = rec.id.clone();
        let slot = (0..).find(|s| !rec.net.endpoints.iter().any(|e| e.ifname == format!("eth{s}"))).unwrap_or(0);
        let (ifname, host_ifname) = slot_names(&id, slot);
        let iface = {
            let mut st = lock(&n.state);
            let Some(nn) = st.nets.get_mut(&net.id) else {
                return Err(Error::NotFound(format!("network {} not found", net.id)));
            };
            if nn.down {
                return Err(down_error(&nn.rec));
            }
            let pool = nn.pool.clone().ok_or_else(|| Error::Internal("network without a pool".into()))?;
            let ip = match ep.requested_ip {
                Some(ip) => pool.claim(&mut nn.used, ip),
                None => pool.allocate(&mut nn.used),
            }
            .map_err(Error::from)?;
            let prefix = net.subnet.map(|s| s.prefix()).unwrap_or(16);
            let mac = mac_of(&ep, ip);
            ep.endpoint_id = hex_id(&id, &net.id);
            ep.ip = Some(ip);
            ep.prefix = prefix;
            ep.gateway = Some(pool.gateway);
            ep.mac = ipam::mac_string(&mac);
            ep.ifname = ifname.clone();
            ep.host_ifname = host_ifname.clone();
            let has_gateway =
                rec.net.endpoints.iter().any(|e| st.nets.get(&e.network_id).is_some_and(|x| !x.rec.internal));
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
            n.on_host(move |k| k.add_interfaces(&sandbox, vec![iface])).await
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
        Ok(ep)
    }

    /// The running part of [`disconnect`]: removes container `id`'s interface of endpoint `ep`, frees its address
    /// and the published ports that pointed at it, updates DNS and the firewall. Returns the ports dropped.
    pub async fn disconnect_running(&self, id: &str, ep: &Endpoint) -> Result<Vec<BoundPort>, Error> {
        let n = self;
        let host = ep.host_ifname.clone();
        n.on_host(move |k| k.remove_interfaces(&[host])).await?;
        berth_store::fault::point("network.disconnect-after-veth");
        let ports_dropped = {
            let mut st = lock(&n.state);
            // Only what the attachment still has is freed (an exit may have released it all already).
            let live = st.attached.get_mut(id).and_then(|a| {
                let i = a.endpoints.iter().position(|e| e.network_id == ep.network_id)?;
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
        }
        Ok(ports_dropped)
    }
}
