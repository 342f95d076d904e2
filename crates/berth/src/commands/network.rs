//! `network` commands: `create`, `ls`, `inspect`, `rm`, `prune`, `connect`, `disconnect`, with the docker CLI's
//! flags, requests and output.

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnectRequest,
};
use clap::Args;
use serde_json::{Value, json};

use super::{inspect, network_path, opts, prompt_for_confirmation, short_id};
use crate::StatusError;
use crate::client::{ApiError, Client, query};
use crate::formatter::{self, Headers, natural_cmp};
use crate::units::go_time_string_of;

/// `berth network create`.
#[derive(Args, Debug, Default)]
#[command(override_usage = "berth network create [OPTIONS] NETWORK")]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "NAME=IP")]
    pub aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", value_name = "NETWORK")]
    pub config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", value_name = "DRIVER", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway", value_name = "IP", value_delimiter = ',')]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long = "ingress")]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "CIDR", value_delimiter = ',')]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "DRIVER", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "KEY=VALUE")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv4 address assignment (default true)
    #[arg(long = "ipv4", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(long = "ipv6", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = opts::label_flag)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet", value_name = "CIDR", value_delimiter = ',')]
    pub subnet: Vec<String>,
    /// NETWORK
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

/// `berth network ls`.
#[derive(Args, Debug, Default)]
#[command(override_usage = "berth network ls [OPTIONS]")]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `berth network inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth network inspect [OPTIONS] NETWORK [NETWORK...]")]
pub struct InspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// NETWORK...
    #[arg(value_name = "NETWORK", required = true)]
    pub names: Vec<String>,
}

impl InspectArgs {
    /// The same request as `inspect --type network`.
    pub fn into_inspect(self) -> inspect::InspectArgs {
        inspect::InspectArgs {
            format: self.format,
            size: false,
            typ: Some("network".into()),
            names: self.names,
            verbose: self.verbose,
        }
    }
}

/// `berth network rm`.
#[derive(Args, Debug)]
#[command(override_usage = "berth network rm NETWORK [NETWORK...]")]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// NETWORK...
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

/// `berth network prune`.
#[derive(Args, Debug)]
#[command(override_usage = "berth network prune [OPTIONS]")]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER", value_parser = opts::filter_flag)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// `berth network connect`.
#[derive(Args, Debug, Default)]
#[command(override_usage = "berth network connect [OPTIONS] NETWORK CONTAINER")]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "ALIAS", value_delimiter = ',')]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "KEY=VALUE", value_delimiter = ',')]
    pub driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative values.
    #[arg(long = "gw-priority", value_name = "INT", default_value_t = 0, allow_hyphen_values = true)]
    pub gw_priority: i64,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip", value_name = "IP")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6", value_name = "IP")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "CONTAINER[:ALIAS]", value_parser = opts::link_flag)]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_name = "IP", value_delimiter = ',')]
    pub link_local_ip: Vec<String>,
    /// NETWORK
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth network disconnect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth network disconnect [OPTIONS] NETWORK CONTAINER")]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// NETWORK
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// An `addr/len` as Go's `net.ParseCIDR` reads it: the address as written and the network (host bits cleared).
fn parse_cidr(s: &str) -> Result<(IpAddr, IpAddr, u8)> {
    let bad = || anyhow!("invalid CIDR address: {s}");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    let net = match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        _ => return Err(bad()),
    };
    Ok((ip, net, len))
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(i) & mask == u32::from(n)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(i) & mask == u128::from(n)
        }
        _ => false,
    }
}

/// docker's `subnetMatches`: whether `data` (an address, or an `addr/len` whose address counts) lies in `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool> {
    let (_, net, len) = parse_cidr(subnet).map_err(|e| anyhow!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') { Some(parse_cidr(data)?.0) } else { data.parse::<IpAddr>().ok() };
    Ok(ip.is_some_and(|ip| contains(net, len, ip)))
}

/// Gives each of `items` (ranges or gateways) to the pools whose subnet holds it, as docker does: a range must
/// be an `addr/len`, and a pool takes one of each.
fn assign(
    pools: &mut [IpamConfig],
    items: &[String],
    what: &str,
    field: fn(&mut IpamConfig) -> &mut Option<String>,
    conflict: fn(&str, &str, &str) -> String,
) -> Result<()> {
    for item in items {
        let mut matched = false;
        for p in pools.iter_mut() {
            let s = p.subnet.clone().unwrap_or_default();
            if what == "range" {
                parse_cidr(&s).map_err(|e| anyhow!("invalid subnet: {e}"))?;
                parse_cidr(item)?;
            }
            if !subnet_matches(&s, item)? {
                continue;
            }
            let slot = field(p);
            if let Some(old) = slot {
                bail!("{}", conflict(item, old, &s));
            }
            *slot = Some(item.clone());
            matched = true;
        }
        if !matched {
            bail!("no matching subnet for {what} {item}");
        }
    }
    Ok(())
}

/// docker's `consolidateIpam`: one IPAM pool per subnet, each range, gateway and auxiliary address given to the
/// subnet holding it.
fn consolidate_ipam(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &HashMap<String, String>,
) -> Result<Vec<IpamConfig>> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let mut pools: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        for p in &pools {
            let k = p.subnet.as_deref().unwrap_or("");
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                bail!("multiple overlapping subnet configuration is not supported");
            }
        }
        pools.push(IpamConfig { subnet: Some(s.clone()), ..Default::default() });
    }
    fn range(p: &mut IpamConfig) -> &mut Option<String> {
        &mut p.ip_range
    }
    fn gateway(p: &mut IpamConfig) -> &mut Option<String> {
        &mut p.gateway
    }
    assign(&mut pools, ranges, "range", range, |r, old, s| {
        format!("cannot configure multiple ranges ({r}, {old}) on the same subnet ({s})")
    })?;
    assign(&mut pools, gateways, "gateway", gateway, |g, old, s| {
        format!("cannot configure multiple gateways ({g}, {old}) for the same subnet ({s})")
    })?;
    let mut aux: Vec<(&String, &String)> = aux.iter().collect();
    aux.sort();
    for (name, addr) in aux {
        let mut matched = false;
        for p in pools.iter_mut() {
            let s = p.subnet.clone().unwrap_or_default();
            if subnet_matches(&s, addr)? {
                p.auxiliary_addresses.get_or_insert_with(HashMap::new).insert(name.clone(), addr.clone());
                matched = true;
            }
        }
        if !matched {
            bail!("no matching subnet for aux-address {addr}");
        }
    }
    Ok(pools)
}

/// The create request for `network create`'s flags, as the docker CLI builds it.
fn create_request(a: &CreateArgs) -> Result<NetworkCreateRequest> {
    let aux = opts::labels(&[], &a.aux_address)?;
    let config = consolidate_ipam(&a.subnet, &a.ip_range, &a.gateway, &aux)?;
    Ok(NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        scope: Some(a.scope.clone().unwrap_or_default()),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        ingress: Some(a.ingress),
        config_only: Some(a.config_only),
        config_from: a.config_from.as_ref().map(|n| berth_api::models::ConfigReference { network: Some(n.clone()) }),
        ipam: Some(Ipam {
            driver: Some(a.ipam_driver.clone()),
            config: Some(config),
            options: Some(opts::labels(&[], &a.ipam_opt)?),
        }),
        enable_ipv4: a.ipv4,
        enable_ipv6: a.ipv6,
        options: Some(opts::labels(&[], &a.opt)?),
        labels: Some(opts::labels(&[], &a.label)?),
    })
}

/// `berth network create`: prints the new network's ID.
pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let req = create_request(&a)?;
    let body = c.post_json("/networks/create", &req).await?;
    let resp: NetworkCreateResponse = serde_json::from_slice(&body).context("decode the network create answer")?;
    outln!("{}", resp.id);
    Ok(0)
}

const HEADERS: Headers = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("CreatedAt", "CREATED AT"),
];

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const RAW: &str = "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n";

/// One `network ls` row with docker's formatter fields.
fn row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let flag = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let labels = n["Labels"].as_object().cloned().unwrap_or_default();
    let mut label_list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    label_list.sort();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": n["Name"].as_str().unwrap_or(""),
        "Driver": n["Driver"].as_str().unwrap_or(""),
        "Scope": n["Scope"].as_str().unwrap_or(""),
        "IPv4": flag("EnableIPv4"),
        "IPv6": flag("EnableIPv6"),
        "Internal": flag("Internal"),
        "Labels": label_list.join(","),
        "Label": labels,
        "CreatedAt": go_time_string_of(n["Created"].as_str().unwrap_or("")),
    })
}

/// docker's `network.NewFormat`: `-q` turns the default table into IDs; `raw` has its own template.
fn list_format(format: &str, quiet: bool) -> &str {
    match (format, quiet) {
        ("" | "table", true) => "{{.ID}}",
        ("" | "table", false) => DEFAULT,
        ("raw", true) => "network_id: {{.ID}}",
        ("raw", false) => RAW,
        (f, _) => f,
    }
}

/// `berth network ls`: sorted by name as docker sorts (numbers by value).
pub async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let mut list: Vec<Value> = c.get_json(&format!("/networks{}", query(&q))).await?;
    list.sort_by(|x, y| natural_cmp(x["Name"].as_str().unwrap_or(""), y["Name"].as_str().unwrap_or("")));
    let rows: Vec<Value> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    let format = list_format(a.format.as_deref().unwrap_or(""), a.quiet);
    out!("{}", formatter::render(format, DEFAULT, HEADERS, &rows)?);
    Ok(0)
}

/// `berth network rm`: prints each network removed; each failure goes to stderr as it happens (exit 1).
pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.networks {
        match c.delete(&network_path(name)).await {
            Ok(_) => outln!("{name}"),
            Err(e) if a.force && ApiError::is(&e, 404) => {}
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    if failed { Err(StatusError::exit(1, "")) } else { Ok(0) }
}

const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.
Are you sure you want to continue?";

/// What `network prune` prints for the networks the daemon removed (nothing when none were).
fn prune_report(deleted: &[String]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Networks:\n");
    for n in deleted {
        out.push_str(n);
        out.push('\n');
    }
    // docker prints the report with Println: a blank line ends it.
    out.push('\n');
    out
}

/// `berth network prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force && !prompt_for_confirmation(PRUNE_WARNING).await? {
        return Ok(0);
    }
    let mut q = Vec::new();
    if let Some(f) = opts::filters(&a.filter)? {
        q.push(("filters", f));
    }
    let body = c.post(&format!("/networks/prune{}", query(&q))).await?;
    let v: Value = serde_json::from_slice(&body).context("decode the prune answer")?;
    let deleted: Vec<String> =
        v["NetworksDeleted"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    out!("{}", prune_report(&deleted));
    Ok(0)
}

/// docker's `convertDriverOpt`: `k=v` pairs, trimmed.
fn driver_opts(list: &[String]) -> Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    for o in list {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                m.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => bail!("invalid key/value pair format in driver options"),
        }
    }
    Ok(m)
}

/// The connect request for `network connect`'s flags, as the docker CLI builds it.
fn connect_request(a: &ConnectArgs) -> Result<NetworkConnectRequest> {
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    Ok(NetworkConnectRequest {
        container: a.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: non_empty(&a.ip),
                ipv6_address: non_empty(&a.ip6),
                link_local_ips: (!a.link_local_ip.is_empty()).then(|| a.link_local_ip.clone()),
            }),
            links: (!a.link.is_empty()).then(|| a.link.clone()),
            aliases: Some(a.alias.clone()),
            driver_opts: Some(driver_opts(&a.driver_opt)?),
            gw_priority: Some(a.gw_priority),
            ..Default::default()
        }),
    })
}

/// `berth network connect`.
pub async fn connect(c: &Client, a: ConnectArgs) -> Result<i32> {
    let req = connect_request(&a)?;
    c.post_json(&format!("{}/connect", network_path(&a.network)), &req).await?;
    Ok(0)
}

/// `berth network disconnect`.
pub async fn disconnect(c: &Client, a: DisconnectArgs) -> Result<i32> {
    let req = NetworkDisconnectRequest { container: a.container.clone(), force: Some(a.force) };
    c.post_json(&format!("{}/disconnect", network_path(&a.network)), &req).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_args(subnet: &[&str], range: &[&str], gw: &[&str]) -> CreateArgs {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        CreateArgs {
            driver: "bridge".into(),
            ipam_driver: "default".into(),
            subnet: v(subnet),
            ip_range: v(range),
            gateway: v(gw),
            name: "n".into(),
            ..Default::default()
        }
    }

    fn err_of(subnet: &[&str], range: &[&str], gw: &[&str]) -> String {
        match create_request(&create_args(subnet, range, gw)) {
            Ok(r) => panic!("no error: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn create_request_like_docker() {
        let mut a = create_args(&["10.5.0.0/16"], &["10.5.1.0/24"], &["10.5.0.1"]);
        a.internal = true;
        a.label = vec!["a=1".into(), "b".into()];
        a.opt = vec!["com.docker.network.bridge.name=br5".into()];
        a.ipam_opt = vec!["p=q".into()];
        a.aux_address = vec!["host1=10.5.0.5".into()];
        a.ipv6 = Some(true);
        let v = serde_json::to_value(create_request(&a).expect("request")).expect("json");
        assert_eq!(
            v,
            json!({"Name": "n", "Driver": "bridge", "Scope": "", "Internal": true, "Attachable": false,
                   "Ingress": false, "ConfigOnly": false, "EnableIPv6": true,
                   "IPAM": {"Driver": "default", "Options": {"p": "q"}, "Config": [{"Subnet": "10.5.0.0/16",
                            "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1",
                            "AuxiliaryAddresses": {"host1": "10.5.0.5"}}]},
                   "Options": {"com.docker.network.bridge.name": "br5"}, "Labels": {"a": "1", "b": ""}})
        );
        let plain = serde_json::to_value(create_request(&create_args(&[], &[], &[])).expect("request")).expect("json");
        assert_eq!(plain["IPAM"], json!({"Driver": "default", "Options": {}, "Config": []}));
        assert!(plain.get("EnableIPv4").is_none() && plain.get("EnableIPv6").is_none());
        // One subnet alone is the daemon's to check, as with docker.
        assert!(create_request(&create_args(&["x"], &[], &[])).is_ok());
        let two = create_request(&create_args(&["10.0.0.0/8", "fd00::/64"], &[], &["10.0.0.1", "fd00::1"]))
            .expect("two subnets");
        let cfg = two.ipam.and_then(|i| i.config).unwrap_or_default();
        assert_eq!(cfg[1].gateway.as_deref(), Some("fd00::1"));
    }

    #[test]
    fn ipam_errors_like_docker() {
        assert_eq!(err_of(&[], &[], &["10.0.0.1"]), "every ip-range or gateway must have a corresponding subnet");
        assert_eq!(err_of(&["10.0.0.0/8"], &[], &["11.0.0.1"]), "no matching subnet for gateway 11.0.0.1");
        assert_eq!(err_of(&["10.0.0.0/8"], &[], &["zz"]), "no matching subnet for gateway zz");
        assert_eq!(err_of(&["10.0.0.0/8"], &[], &["zz/8"]), "invalid CIDR address: zz/8");
        assert_eq!(
            err_of(&["10.0.0.0/8", "10.1.0.0/16"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err_of(&["10.0.0.0/8", "10.0.0.0/8"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(err_of(&["10.0.0.0/8", "x"], &[], &[]), "invalid subnet: invalid CIDR address: x");
        assert_eq!(err_of(&["x"], &[], &["10.0.0.1"]), "invalid subnet: invalid CIDR address: x");
        assert_eq!(err_of(&["10.0.0.0/8"], &["10.1.0.5"], &[]), "invalid CIDR address: 10.1.0.5");
        assert_eq!(err_of(&["10.0.0.0/8"], &["10.1.0.0/33"], &[]), "invalid CIDR address: 10.1.0.0/33");
        assert_eq!(err_of(&["10.0.0.0/8"], &["11.0.0.0/16"], &[]), "no matching subnet for range 11.0.0.0/16");
        assert_eq!(
            err_of(&["10.0.0.0/8", "11.0.0.0/8"], &["10.1.0.0/16", "10.2.0.0/16"], &[]),
            "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet (10.0.0.0/8)"
        );
        assert_eq!(
            err_of(&["10.0.0.0/8", "11.0.0.0/8"], &[], &["10.0.0.1", "10.0.0.2"]),
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/8)"
        );
        let mut a = create_args(&["10.0.0.0/8"], &[], &[]);
        a.aux_address = vec!["zz".into()];
        assert_eq!(create_request(&a).expect_err("aux").to_string(), "no matching subnet for aux-address ");
        // A gateway written with a length counts by its address, as in docker.
        assert!(create_request(&create_args(&["10.0.0.0/8"], &[], &["10.0.0.1/8"])).is_ok());
    }

    #[test]
    fn ls_rows_and_formats() {
        let n = json!({"Name": "net10", "Id": "a1b2c3d4e5f6a7b8c9d0", "Created": "2026-11-30T10:00:00.120Z",
                       "Scope": "local", "Driver": "bridge", "EnableIPv4": true, "Internal": false,
                       "Labels": {"b": "2", "a": "1"}});
        let r = row(&n, true);
        assert_eq!(r["ID"], "a1b2c3d4e5f6");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["IPv4"], "true");
        assert_eq!(r["IPv6"], "false");
        assert_eq!(r["CreatedAt"], "2026-11-30 10:00:00.12 +0000 UTC");
        assert_eq!(row(&n, false)["ID"], "a1b2c3d4e5f6a7b8c9d0");
        let rows = vec![r];
        let table = formatter::render(list_format("", false), DEFAULT, HEADERS, &rows).expect("table");
        assert_eq!(table, "NETWORK ID     NAME      DRIVER    SCOPE\na1b2c3d4e5f6   net10     bridge    local\n");
        assert_eq!(formatter::render(list_format("", true), DEFAULT, HEADERS, &rows).expect("q"), "a1b2c3d4e5f6\n");
        assert_eq!(formatter::render(list_format("{{.Name}}", true), DEFAULT, HEADERS, &rows).expect("q"), "net10\n");
        assert_eq!(
            formatter::render(list_format("raw", false), DEFAULT, HEADERS, &rows).expect("raw"),
            "network_id: a1b2c3d4e5f6\nname: net10\ndriver: bridge\nscope: local\n\n"
        );
        assert_eq!(
            formatter::render("json", DEFAULT, HEADERS, &rows).expect("json"),
            "{\"CreatedAt\":\"2026-11-30 10:00:00.12 +0000 UTC\",\"Driver\":\"bridge\",\"ID\":\"a1b2c3d4e5f6\",\
             \"IPv4\":\"true\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"a=1,b=2\",\"Name\":\"net10\",\
             \"Scope\":\"local\"}\n"
        );
        assert_eq!(
            formatter::render("table {{.Name}}\t{{.Label \"a\"}}", DEFAULT, HEADERS, &rows).expect("label"),
            "NAME      a\nnet10     1\n"
        );
    }

    #[test]
    fn connect_and_prune_like_docker() {
        let a = ConnectArgs {
            alias: vec!["a".into(), "b".into()],
            ip: Some("10.0.0.5".into()),
            network: "net".into(),
            container: "web".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(connect_request(&a).expect("request")).expect("json");
        assert_eq!(
            v,
            json!({"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.0.0.5"},
                   "Aliases": ["a", "b"], "DriverOpts": {}, "GwPriority": 0}})
        );
        let bad = ConnectArgs { driver_opt: vec!["novalue".into()], ..Default::default() };
        assert!(connect_request(&bad).is_err());
        assert_eq!(prune_report(&[]), "");
        assert_eq!(prune_report(&["n1".into(), "n2".into()]), "Deleted Networks:\nn1\nn2\n\n");
    }
}
