//! Docker's legacy links (`--link name:alias`). On the default bridge a link gives the linking container an
//! `/etc/hosts` line for the linked one (`IP alias hostname name`) and moby's `<ALIAS>_PORT…`, `<ALIAS>_NAME`,
//! `<ALIAS>_ENV_…` variables; it is kept in `HostConfig.Links` as Docker shows it (`/db:/web/alias`). On a
//! user-defined network a link (the endpoint's `Links`) is a DNS alias that only the linking container resolves.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::containers::record::Record;
use crate::daemon::Daemon;
use crate::error::Error;

use super::state::parse_link;
use super::state::{DEFAULT_BRIDGE, Mode, mode};

/// Whether a container in network mode `network_mode` takes legacy links (the default bridge).
fn on_default_bridge(network_mode: &str) -> bool {
    mode(network_mode) == Mode::Bridge && matches!(network_mode, "" | "default" | DEFAULT_BRIDGE)
}

/// `HostConfig.Links` of a new container `name`, checked and stored as Docker stores them (`/db:/name/alias`).
/// Links of containers on user-defined networks are left as given (they are the endpoint's DNS aliases).
pub fn links_at_create(d: &Daemon, name: &str, network_mode: &str, links: &[String]) -> Result<Vec<String>, Error> {
    if !on_default_bridge(network_mode) {
        return Ok(links.to_vec());
    }
    let mut out = Vec::new();
    for l in links {
        let (child, alias) = parse_link(l)?;
        // Not a 404: the docker CLI takes a 404 from create for a missing image and tries to pull it.
        let c = d
            .container(&child)
            .map_err(|e| Error::InvalidArgument(format!("could not get container for {child}: {e}")))?;
        let crec = c.record();
        if mode(crec.host_config.network_mode.as_deref().unwrap_or("")) == Mode::Host {
            return Err(Error::InvalidArgument(
                "conflicting options: host type networking can't be used with links. This would result in undefined \
                 behavior"
                    .into(),
            ));
        }
        let stored = format!("/{}:/{name}/{alias}", crec.name);
        if !out.contains(&stored) {
            out.push(stored);
        }
    }
    Ok(out)
}

/// A linked container as the linking one sees it at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub alias: String,
    pub name: String,
    pub hostname: String,
    pub ip: Ipv4Addr,
    /// The variables the link adds to the linking container's environment.
    pub env: Vec<String>,
}

impl Linked {
    /// Its `/etc/hosts` line, as libnetwork writes it: the alias, the hostname, and the name when it differs.
    pub fn hosts_line(&self) -> String {
        let mut names = format!("{} {}", self.alias, self.hostname);
        if self.alias != self.name {
            names = format!("{names} {}", self.name);
        }
        format!("{}\t{names}\n", self.ip)
    }
}

/// The links of container `rec` at its start (default bridge only): each linked container must be running on the
/// default bridge (Docker's errors otherwise); one that no longer exists is left out, as Docker drops its link.
pub fn resolve(d: &Arc<Daemon>, rec: &Record) -> Result<Vec<Linked>, Error> {
    if !on_default_bridge(rec.host_config.network_mode.as_deref().unwrap_or("")) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for l in rec.host_config.links.iter().flatten() {
        let (child, alias) = parse_link(l)?;
        let Ok(c) = d.container(&child) else { continue };
        let crec = c.record();
        let link_name = format!("/{}/{alias}", rec.name);
        if !c.is_running() {
            return Err(Error::Internal(format!(
                "Cannot link to a non running container: /{} AS {link_name}",
                crec.name
            )));
        }
        let ip = crec.net.endpoints.iter().find(|e| e.network == DEFAULT_BRIDGE).and_then(|e| e.ip);
        let Some(ip) = ip else {
            return Err(Error::Internal(format!(
                "Cannot link to /{}, as it does not belong to the default network",
                crec.name
            )));
        };
        let ports: Vec<String> = crec.config.exposed_ports.iter().flatten().cloned().collect();
        let env = link_env(&link_name, ip, &ports, crec.config.env.as_deref().unwrap_or_default());
        out.push(Linked {
            alias,
            name: crec.name.clone(),
            hostname: crec.config.hostname.clone().unwrap_or_default(),
            ip,
            env,
        });
    }
    Ok(out)
}

/// moby's `links.Link.ToEnv`: `link_name` is the link's full name (`/web/db`), `ports` the linked container's
/// exposed ports (`80/tcp`), `child_env` its environment.
pub fn link_env(link_name: &str, ip: Ipv4Addr, ports: &[String], child_env: &[String]) -> Vec<String> {
    let alias = link_name.rsplit('/').next().unwrap_or(link_name).to_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            Some((n.parse().ok()?, proto.to_lowercase()))
        })
        .collect();
    // By number, tcp first for the same number (nat.Sort with moby's comparison).
    ports.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| (b.1 == "tcp").cmp(&(a.1 == "tcp"))));
    let mut env = Vec::new();
    if let Some((n, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{n}"));
    }
    // Runs of three or more consecutive numbers also get _START/_END variables (moby's `nextContiguous`, which
    // looks at the numbers only).
    let next_contiguous = |index: usize| -> usize {
        let values = u32::from(ports[index].0)..;
        for (value, (k, p)) in values.zip(ports.iter().enumerate().skip(index + 1)) {
            if u32::from(p.0) > value + 1 {
                return k - 1;
            }
        }
        ports.len() - 1
    };
    let mut i = 0;
    while i < ports.len() {
        let j = next_contiguous(i);
        if j > i + 1 {
            let ((start, proto), (end, end_proto)) = (&ports[i], &ports[j]);
            let (up, end_up) = (proto.to_uppercase(), end_proto.to_uppercase());
            env.push(format!("{alias}_PORT_{start}_{up}_START={proto}://{ip}:{start}"));
            env.push(format!("{alias}_PORT_{start}_{up}_ADDR={ip}"));
            env.push(format!("{alias}_PORT_{start}_{up}_PROTO={proto}"));
            env.push(format!("{alias}_PORT_{start}_{up}_PORT_START={start}"));
            env.push(format!("{alias}_PORT_{start}_{end_up}_END={end_proto}://{ip}:{end}"));
            env.push(format!("{alias}_PORT_{start}_{end_up}_PORT_END={end}"));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for (n, proto) in &ports {
        let up = proto.to_uppercase();
        env.push(format!("{alias}_PORT_{n}_{up}={proto}://{ip}:{n}"));
        env.push(format!("{alias}_PORT_{n}_{up}_ADDR={ip}"));
        env.push(format!("{alias}_PORT_{n}_{up}_PORT={n}"));
        env.push(format!("{alias}_PORT_{n}_{up}_PROTO={proto}"));
    }
    env.push(format!("{alias}_NAME={link_name}"));
    for v in child_env {
        let Some((k, val)) = v.split_once('=') else { continue };
        // moby leaves out what builds add and means nothing to the linking container.
        if k == "HOME" || k == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{k}={val}"));
    }
    env
}

/// `DELETE /containers/{parent}/{alias}?link=1` (`docker rm --link /web/db`): the link `alias` of container `parent`,
/// as it is kept in `HostConfig.Links`; `None` when there is no such link.
pub fn without_link(links: &[String], link_name: &str) -> Option<Vec<String>> {
    let (parent, alias) = link_name.trim_start_matches('/').split_once('/')?;
    let before = links.len();
    let kept: Vec<String> = links
        .iter()
        .filter(|l| !matches!(l.split_once(':'), Some((_, full)) if full == format!("/{parent}/{alias}")))
        .cloned()
        .collect();
    (kept.len() < before).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_as_moby() {
        assert_eq!(parse_link("db").expect("ok"), ("db".into(), "db".into()));
        assert_eq!(parse_link("db:alias").expect("ok"), ("db".into(), "alias".into()));
        assert_eq!(parse_link("/db:/web/alias").expect("ok"), ("db".into(), "alias".into()));
        assert!(parse_link("a:b:c").is_err() && parse_link("").is_err());
    }

    #[test]
    fn env_as_moby() {
        let ip: Ipv4Addr = [172, 17, 0, 2].into();
        let ports = ["5432/tcp".to_string(), "53/udp".into(), "53/tcp".into()];
        let env =
            link_env("/web/my-db", ip, &ports, &["HOME=/root".into(), "PGDATA=/var/lib/pg".into(), "A=b=c".into()]);
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.2:53",
                "MY_DB_PORT_53_TCP=tcp://172.17.0.2:53",
                "MY_DB_PORT_53_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_TCP_PORT=53",
                "MY_DB_PORT_53_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PGDATA=/var/lib/pg",
                "MY_DB_ENV_A=b=c",
            ]
        );
        // A run of three or more consecutive ports also gets the range variables; no port, no _PORT.
        let env = link_env("/w/x", ip, &["8000/tcp".into(), "8001/tcp".into(), "8002/tcp".into()], &[]);
        assert!(env.contains(&"X_PORT_8000_TCP_START=tcp://172.17.0.2:8000".to_string()), "{env:?}");
        assert!(env.contains(&"X_PORT_8000_TCP_PORT_END=8002".to_string()), "{env:?}");
        assert_eq!(link_env("/w/x", ip, &[], &[]), ["X_NAME=/w/x"]);
    }

    #[test]
    fn hosts_line_and_removal() {
        let l = Linked {
            alias: "db".into(),
            name: "db".into(),
            hostname: "abc".into(),
            ip: [10, 0, 0, 2].into(),
            env: vec![],
        };
        assert_eq!(l.hosts_line(), "10.0.0.2\tdb abc\n");
        let l = Linked { alias: "d".into(), ..l };
        assert_eq!(l.hosts_line(), "10.0.0.2\td abc db\n");
        let links = vec!["/db:/web/d".to_string(), "/cache:/web/c".into()];
        assert_eq!(without_link(&links, "web/d"), Some(vec!["/cache:/web/c".to_string()]));
        assert_eq!(without_link(&links, "/web/nope"), None);
        assert_eq!(without_link(&links, "web"), None);
        assert_eq!(
            super::super::state::dns_aliases(&["db:database".into(), "cache".into()]),
            [("database".into(), "db".into()), ("cache".into(), "cache".into())]
        );
    }
}
