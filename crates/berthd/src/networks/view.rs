//! Networks and a container's network settings as the API shows them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::containers::record::{Record, Status};
use crate::daemon::Daemon;

use super::*;

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

/// `NetworkSettings` of a container, as Docker shows it.
pub fn settings(d: &Daemon, rec: &Record) -> Value {
    let running = matches!(rec.state.status, Status::Running | Status::Paused);
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
    let running = matches!(rec.state.status, Status::Running | Status::Paused);
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
