//! Networks (`GET /networks`, `GET /networks/{id}`) and a container's networking (`NetworkSettings` of container
//! inspect, `Ports` and `NetworkSettings` of the container list).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use berth_api::ApiVersion;
use berth_api::models::{
    ConfigReference, EndpointIpamConfig, EndpointResource, EndpointSettings, Ipam, IpamConfig, IpamStatus,
    NetworkInspect, NetworkSettings, NetworkStatus, PortBinding, PortMap, PortSummary, PortSummaryTypeEnum,
    SubnetStatus,
};
use serde::Serialize;
use serde_json::Value;

use super::render::{Nulls, api, merge, render};
use crate::containers::{Record, Status};
use crate::networks::{DEFAULT_BRIDGE, Endpoint, Mode, NetworkRecord, mode};

/// A container attached to a network: its ID, name and endpoint.
pub type User = (String, String, Endpoint);

const NETWORK_NULLS: Nulls = &[(&["IPAM"], &["Options"])];

/// An entry of `GET /networks` (Docker lists networks with `Containers: {}`).
pub fn summary(rec: &NetworkRecord, version: ApiVersion) -> Value {
    network(rec, &[], None, version)
}

/// `GET /networks/{id}`, with `users`, the containers attached (and from 1.52 the `Status` of its addresses).
pub fn inspect(rec: &NetworkRecord, users: &[User], version: ApiVersion) -> Value {
    network(rec, users, if version >= api(52) { status(rec, users) } else { None }, version)
}

/// The `Status` of a network's subnet, counted as libnetwork's address bitmap does: the network and broadcast
/// addresses reserved, the gateway and each attached endpoint's address in use; what is left of the range (the
/// subnet without `--ip-range`) is available.
fn status(rec: &NetworkRecord, users: &[User]) -> Option<NetworkStatus> {
    let subnet = rec.subnet?;
    let range = rec.ip_range.unwrap_or(subnet);
    let mut used: BTreeSet<Ipv4Addr> = users.iter().filter_map(|(_, _, e)| e.ip).collect();
    used.extend(rec.gateway);
    if subnet.prefix() < 31 {
        used.extend([subnet.network(), subnet.broadcast()]);
    }
    used.retain(|ip| subnet.contains(*ip));
    let range_size = 1u64 << (32 - u32::from(range.prefix()));
    let in_range = used.iter().filter(|ip| range.contains(**ip)).count() as u64;
    let s = SubnetStatus {
        ips_in_use: Some(used.len() as u64),
        dynamic_ips_available: Some(range_size.saturating_sub(in_range)),
    };
    Some(NetworkStatus { ipam: Some(IpamStatus { subnets: Some(HashMap::from([(subnet.to_string(), s)])) }) })
}

fn network(rec: &NetworkRecord, users: &[User], status: Option<NetworkStatus>, version: ApiVersion) -> Value {
    let containers = users
        .iter()
        .map(|(cid, name, e)| {
            let r = EndpointResource {
                name: Some(name.clone()),
                endpoint_id: Some(e.endpoint_id.clone()),
                mac_address: Some(e.mac.clone()),
                ipv4_address: Some(e.ip.map(|ip| format!("{ip}/{}", e.prefix)).unwrap_or_default()),
                ipv6_address: Some(String::new()),
            };
            (cid.clone(), r)
        })
        .collect();
    let config = match (rec.subnet, rec.gateway) {
        (Some(s), Some(g)) => vec![IpamConfig {
            subnet: Some(s.to_string()),
            gateway: Some(g.to_string()),
            ip_range: rec.ip_range.map(|r| r.to_string()),
            auxiliary_addresses: (!rec.aux_addresses.is_empty()).then(|| rec.aux_addresses.clone()),
        }],
        _ => Vec::new(),
    };
    let n = NetworkInspect {
        name: Some(rec.name.clone()),
        id: Some(rec.id.clone()),
        created: Some(rec.created.clone()),
        scope: Some("local".into()),
        driver: Some(rec.driver.clone()),
        // 1.47 added EnableIPv4.
        enable_ipv4: (version >= api(47)).then_some(true),
        enable_ipv6: Some(false),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(config),
            options: (!rec.ipam_options.is_empty()).then(|| rec.ipam_options.clone()),
        }),
        internal: Some(rec.internal),
        attachable: Some(rec.attachable),
        ingress: Some(false),
        config_from: Some(ConfigReference { network: Some(String::new()) }),
        config_only: Some(false),
        containers: Some(containers),
        options: Some(rec.options.clone()),
        labels: Some(rec.labels.clone()),
        status,
        ..Default::default()
    };
    render(&n, NETWORK_NULLS)
}

/// `POST /networks/create`.
pub fn created(id: String) -> Value {
    render(&berth_api::models::NetworkCreateResponse { id, warning: String::new() }, &[])
}

/// `POST /networks/prune`.
pub fn pruned(deleted: Vec<String>) -> Value {
    render(&berth_api::models::NetworkPruneResponse { networks_deleted: Some(deleted) }, &[])
}

/// The per-network entries of `NetworkSettings.Networks`. `special` maps `host`/`none` to their network IDs.
fn endpoints(
    rec: &Record,
    special: &HashMap<String, String>,
    version: ApiVersion,
) -> HashMap<String, EndpointSettings> {
    let running = matches!(rec.state.status, Status::Running | Status::Paused);
    let network_mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let mut networks = HashMap::new();
    let blank = |network_id: String| EndpointSettings {
        network_id: Some(network_id),
        mac_address: Some(String::new()),
        endpoint_id: Some(String::new()),
        gateway: Some(String::new()),
        ip_address: Some(String::new()),
        ip_prefix_len: Some(0),
        ipv6_gateway: Some(String::new()),
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        gw_priority: (version >= api(48)).then_some(0),
        ..Default::default()
    };
    match mode(&network_mode) {
        Mode::Host | Mode::None => {
            let name = if network_mode == "host" { "host" } else { "none" };
            networks.insert(name.to_string(), blank(special.get(name).cloned().unwrap_or_default()));
        }
        Mode::Container(_) => {}
        Mode::Bridge => {
            for e in &rec.net.endpoints {
                let live = running && e.ip.is_some();
                let s = |v: String| if live { v } else { String::new() };
                let mut aliases = e.aliases.clone();
                // 1.44 added DNSNames.
                let dns_names = (e.network != DEFAULT_BRIDGE && version >= api(44)).then(|| {
                    let mut v = vec![rec.name.clone(), short(&rec.id).to_string()];
                    v.extend(e.aliases.iter().cloned());
                    v
                });
                // Before 1.45 Docker added the short ID and the host name to the aliases on user-defined networks.
                if version < api(45) && e.network != DEFAULT_BRIDGE {
                    for a in [short(&rec.id).to_string(), rec.config.hostname.clone().unwrap_or_default()] {
                        if !a.is_empty() && !aliases.contains(&a) {
                            aliases.push(a);
                        }
                    }
                }
                let entry = EndpointSettings {
                    ipam_config: (e.requested_ip.is_some() || !e.link_local_ips.is_empty()).then(|| {
                        EndpointIpamConfig {
                            ipv4_address: e.requested_ip.map(|ip| ip.to_string()),
                            link_local_ips: (!e.link_local_ips.is_empty()).then(|| e.link_local_ips.clone()),
                            ..Default::default()
                        }
                    }),
                    driver_opts: (!e.driver_opts.is_empty()).then(|| e.driver_opts.clone()),
                    links: (!e.links.is_empty()).then(|| e.links.clone()),
                    aliases: (!aliases.is_empty()).then_some(aliases),
                    mac_address: Some(s(e.mac.clone())),
                    endpoint_id: Some(s(e.endpoint_id.clone())),
                    gateway: Some(s(e.gateway.map(|g| g.to_string()).unwrap_or_default())),
                    ip_address: Some(s(e.ip.map(|g| g.to_string()).unwrap_or_default())),
                    ip_prefix_len: Some(if live { i64::from(e.prefix) } else { 0 }),
                    dns_names,
                    ..blank(e.network_id.clone())
                };
                networks.insert(e.network.clone(), entry);
            }
        }
    }
    networks
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `null`s of an endpoint in `NetworkSettings.Networks` (1.44 added `DNSNames`).
const ENDPOINT_NULLS: &[&str] = &["IPAMConfig", "Links", "Aliases", "DriverOpts", "DNSNames"];
const ENDPOINT_NULLS_OLD: &[&str] = &["IPAMConfig", "Links", "Aliases", "DriverOpts"];

/// The top-level fields of `NetworkSettings` that v1.53's model no longer has; Docker still sends them (the
/// default bridge's address among them), and clients read `NetworkSettings.IPAddress`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LegacySettings {
    bridge: String,
    hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    link_local_ipv6_prefix_len: i64,
    #[serde(rename = "SecondaryIPAddresses")]
    secondary_ip_addresses: Option<()>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    secondary_ipv6_addresses: Option<()>,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    ipv6_gateway: String,
    mac_address: String,
}

/// `NetworkSettings` of container inspect.
pub fn settings(rec: &Record, special: &HashMap<String, String>, version: ApiVersion) -> Value {
    let running = matches!(rec.state.status, Status::Running | Status::Paused);
    let networks = endpoints(rec, special, version);
    let mut ports: PortMap = HashMap::new();
    for key in rec.config.exposed_ports.iter().flatten() {
        ports.insert(key.clone(), None);
    }
    if running {
        for p in &rec.net.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let b = PortBinding { host_ip: Some(p.host_ip.to_string()), host_port: Some(p.host_port.to_string()) };
            ports.entry(key).or_insert(None).get_or_insert_with(Vec::new).push(b);
        }
    }
    let primary = networks.get(DEFAULT_BRIDGE);
    let field = |f: fn(&EndpointSettings) -> Option<String>| primary.and_then(f).unwrap_or_default();
    let legacy = LegacySettings {
        bridge: String::new(),
        hairpin_mode: false,
        link_local_ipv6_address: String::new(),
        link_local_ipv6_prefix_len: 0,
        secondary_ip_addresses: None,
        secondary_ipv6_addresses: None,
        endpoint_id: field(|e| e.endpoint_id.clone()),
        gateway: field(|e| e.gateway.clone()),
        global_ipv6_address: String::new(),
        global_ipv6_prefix_len: 0,
        ip_address: field(|e| e.ip_address.clone()),
        ip_prefix_len: primary.and_then(|e| e.ip_prefix_len).unwrap_or(0),
        ipv6_gateway: String::new(),
        mac_address: field(|e| e.mac_address.clone()),
    };
    let s = NetworkSettings {
        sandbox_id: Some(if running && !rec.net.sandbox.is_empty() { rec.id.clone() } else { String::new() }),
        sandbox_key: Some(if running { rec.net.sandbox.clone() } else { String::new() }),
        ports: Some(ports),
        networks: Some(networks),
    };
    let nulls: Nulls = if version >= api(44) {
        &[(&["Networks", "*"], ENDPOINT_NULLS)]
    } else {
        &[(&["Networks", "*"], ENDPOINT_NULLS_OLD)]
    };
    let mut v = render(&s, nulls);
    merge(&mut v, &[], &legacy);
    v
}

/// `NetworkSettings` of a container list entry: its `Networks` only.
pub fn summary_settings(rec: &Record, special: &HashMap<String, String>, version: ApiVersion) -> Value {
    let networks =
        berth_api::models::ContainerSummaryNetworkSettings { networks: Some(endpoints(rec, special, version)) };
    let nulls: Nulls = if version >= api(44) {
        &[(&["Networks", "*"], ENDPOINT_NULLS)]
    } else {
        &[(&["Networks", "*"], ENDPOINT_NULLS_OLD)]
    };
    render(&networks, nulls)
}

/// The `Ports` of a container in `GET /containers/json` (`networks::listed_ports`).
pub fn list_ports(rec: &Record) -> Vec<PortSummary> {
    let typ = |p: &str| match p {
        "udp" => PortSummaryTypeEnum::UDP,
        "sctp" => PortSummaryTypeEnum::SCTP,
        _ => PortSummaryTypeEnum::TCP,
    };
    crate::networks::listed_ports(rec)
        .into_iter()
        .map(|p| PortSummary {
            ip: p.host_ip.map(|ip| ip.to_string()),
            private_port: p.container_port,
            public_port: p.host_port,
            typ: Some(typ(p.proto.as_str())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::check::has;
    use crate::views::container::tests::record;

    #[test]
    fn network_inspect_has_docker_fields() {
        let rec: NetworkRecord = serde_json::from_value(serde_json::json!({
            "id": "n1", "name": "front", "driver": "bridge", "created": "2026-01-01T00:00:00Z",
            "subnet": "10.9.0.0/24", "gateway": "10.9.0.1"
        }))
        .expect("record");
        let user = Endpoint {
            network: "front".into(),
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            ip: Some("10.9.0.2".parse().expect("ip")),
            prefix: 24,
            mac: "02:42:0a:09:00:02".into(),
            ..Default::default()
        };
        let v = inspect(&rec, &[("c1".into(), "web".into(), user)], api(53));
        has(
            &v,
            &[
                ("Name", "s"),
                ("Id", "s"),
                ("Created", "s"),
                ("Scope", "s"),
                ("Driver", "s"),
                ("EnableIPv4", "b"),
                ("EnableIPv6", "b"),
                ("IPAM/Driver", "s"),
                ("IPAM/Options", "0"),
                ("IPAM/Config", "a"),
                ("Internal", "b"),
                ("Attachable", "b"),
                ("Ingress", "b"),
                ("ConfigFrom/Network", "s"),
                ("ConfigOnly", "b"),
                ("Containers/c1/IPv4Address", "s"),
                ("Containers/c1/IPv6Address", "s"),
                ("Containers/c1/EndpointID", "s"),
                ("Options", "o"),
                ("Labels", "o"),
            ],
        );
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.9.0.0/24");
        assert_eq!(v["Containers"]["c1"]["IPv4Address"], "10.9.0.2/24");
        // 1.52 added Status: network, broadcast, gateway and the one endpoint.
        let subnet = &v["Status"]["IPAM"]["Subnets"]["10.9.0.0/24"];
        assert_eq!((subnet["IPsInUse"].as_u64(), subnet["DynamicIPsAvailable"].as_u64()), (Some(4), Some(252)));
        assert!(inspect(&rec, &[], api(51)).get("Status").is_none());
        assert!(inspect(&rec, &[], api(46)).get("EnableIPv4").is_none());
        let s = summary(&rec, api(53));
        assert!(s.get("Status").is_none() && s["Containers"] == serde_json::json!({}), "{s}");
    }

    #[test]
    fn a_port_exposed_twice_is_listed_once() {
        // Records written before exposed ports were merged as a set can hold one twice (the image's and the run's).
        let mut rec = record();
        rec.config.exposed_ports = Some(vec!["8000/tcp".into(), "8000/tcp".into(), "53/udp".into()]);
        let ports: Vec<(u16, String)> = list_ports(&rec)
            .iter()
            .map(|p| (p.private_port, p.typ.map(|t| t.to_string()).unwrap_or_default()))
            .collect();
        assert_eq!(ports, vec![(8000, "tcp".to_string()), (53, "udp".to_string())]);
    }

    #[test]
    fn small_responses() {
        assert_eq!(created("n".into()), serde_json::json!({"Id": "n", "Warning": ""}));
        assert_eq!(pruned(vec![]), serde_json::json!({"NetworksDeleted": []}));
    }

    #[test]
    fn settings_have_legacy_fields_and_endpoint_nulls() {
        let mut rec = record();
        rec.host_config.network_mode = Some("none".into());
        let special = HashMap::from([("none".to_string(), "nid".to_string())]);
        let v = settings(&rec, &special, api(53));
        has(
            &v,
            &[
                ("SandboxID", "s"),
                ("SandboxKey", "s"),
                ("Ports", "o"),
                ("Bridge", "s"),
                ("HairpinMode", "b"),
                ("SecondaryIPAddresses", "0"),
                ("IPAddress", "s"),
                ("IPPrefixLen", "n"),
                ("MacAddress", "s"),
                ("Networks/none/NetworkID", "s"),
                ("Networks/none/IPAMConfig", "0"),
                ("Networks/none/Links", "0"),
                ("Networks/none/Aliases", "0"),
                ("Networks/none/DriverOpts", "0"),
                ("Networks/none/DNSNames", "0"),
                ("Networks/none/GwPriority", "n"),
                ("Networks/none/IPv6Gateway", "s"),
                ("Networks/none/GlobalIPv6PrefixLen", "n"),
            ],
        );
        assert_eq!(v["Networks"]["none"]["NetworkID"], "nid");
        let old = settings(&rec, &special, api(41));
        assert!(old["Networks"]["none"].get("DNSNames").is_none(), "1.44 added DNSNames");
        assert!(old["Networks"]["none"].get("GwPriority").is_none(), "1.48 added GwPriority");
        let mut user = record();
        user.net.endpoints = vec![Endpoint { network: "front".into(), network_id: "n1".into(), ..Default::default() }];
        assert!(settings(&user, &special, api(43))["Networks"]["front"].get("DNSNames").is_none());
    }

    #[test]
    fn old_versions_alias_user_networks_with_the_short_id() {
        let mut rec = record();
        rec.net.endpoints = vec![Endpoint { network: "front".into(), network_id: "n1".into(), ..Default::default() }];
        let v = settings(&rec, &HashMap::new(), api(44));
        assert_eq!(v["Networks"]["front"]["Aliases"], serde_json::json!([short(&rec.id), "c0ffee"]));
        let v = settings(&rec, &HashMap::new(), api(45));
        assert!(v["Networks"]["front"]["Aliases"].is_null());
        assert_eq!(v["Networks"]["front"]["DNSNames"], serde_json::json!(["web", short(&rec.id)]));
    }
}
