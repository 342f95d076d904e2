//! The container list's and prune's filters (Docker's keys, through [`crate::filters::Filters`]).

use std::collections::HashMap;

use super::record::{Record, Status};
use crate::error::Error;
use crate::filters::Filters;

/// The filters `GET /containers/json` accepts (Docker's).
pub const LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
/// The filters `POST /containers/prune` accepts (Docker's).
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// Whether `port` (`80/tcp`) is in a `publish`/`expose` filter value: `port[/proto]` or `first-last[/proto]` (tcp
/// when no protocol is given).
fn port_in(filter: &str, port: &str) -> Result<bool, Error> {
    let bad = || Error::InvalidArgument(format!("invalid filter value: {filter}"));
    let (range, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let (first, last): (u16, u16) = (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
    let (p, pproto) = port.split_once('/').unwrap_or((port, "tcp"));
    Ok(pproto == proto && p.parse::<u16>().is_ok_and(|p| first <= p && p <= last))
}

/// `GET /containers/json` filters for one container; `before`/`since` are the creation times of the containers
/// they name.
pub fn matches(rec: &Record, f: &Filters, before: Option<&str>, since: Option<&str>) -> Result<bool, Error> {
    for v in f.get("status") {
        if !["created", "restarting", "running", "removing", "paused", "exited", "dead"].contains(&v.as_str()) {
            return Err(Error::InvalidArgument(format!("invalid filter 'status={v}'")));
        }
    }
    for v in f.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            return Err(Error::InvalidArgument(format!("Unrecognised filter value for health: {v}")));
        }
    }
    let health = rec.state.health.as_ref().map_or("none", |h| h.status.as_str());
    let exposed: Vec<&String> = rec.config.exposed_ports.iter().flatten().collect();
    let bindings = rec.host_config.port_bindings.iter().flatten();
    let published: Vec<String> = bindings
        .flat_map(|(k, v)| {
            let proto = k.split_once('/').map_or("tcp", |(_, p)| p).to_string();
            v.iter().flatten().filter_map(move |b| b.host_port.as_ref().map(|h| format!("{h}/{proto}")))
        })
        .collect();
    let any_port = |key: &str, ports: &[&String]| -> Result<bool, Error> {
        for v in f.get(key) {
            for p in ports {
                if port_in(v, p)? {
                    return Ok(true);
                }
            }
        }
        Ok(f.get(key).is_empty())
    };
    let exposed_or_bound: Vec<&String> =
        exposed.iter().copied().chain(rec.host_config.port_bindings.iter().flat_map(|m| m.keys())).collect();
    Ok(f.any("status", |v| v == rec.state.status.as_str())
        && f.any("name", |v| rec.name.contains(v.trim_start_matches('/')))
        && f.any("id", |v| rec.id.starts_with(v))
        && f.match_kv("label", rec.config.labels.as_ref().unwrap_or(&HashMap::new()))
        && f.any("exited", |v| {
            v.parse::<i64>().ok() == Some(rec.state.exit_code) && rec.state.status == Status::Exited
        })
        && f.any("ancestor", |v| {
            rec.image == v || rec.image_id == v || rec.image_id.trim_start_matches("sha256:").starts_with(v)
        })
        && f.any("network", |v| {
            rec.host_config.network_mode.as_deref() == Some(v)
                || rec.net.endpoints.iter().any(|e| e.network == v || e.network_id.starts_with(v))
        })
        && f.any("volume", |v| rec.mounts.iter().any(|m| m.name == v || m.destination == v))
        && f.any("health", |v| v == health)
        && f.bool("is-task")? != Some(true)
        && f.any("isolation", |v| v == "default")
        && before.is_none_or(|b| rec.created.as_str() < b)
        && since.is_none_or(|s| rec.created.as_str() > s)
        && any_port("expose", &exposed_or_bound)?
        && any_port("publish", &published.iter().collect::<Vec<_>>())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rec(name: &str, created: &str, status: &str, extra: Value) -> Record {
        let mut v = json!({
            "id": format!("{name}0123456789"), "name": format!("/{name}"), "created": created,
            "image": "busybox", "image_id": "sha256:abc", "path": "sh", "args": [],
            "config": {"Labels": {"tier": "web"}, "ExposedPorts": {"80/tcp": {}}},
            "host_config": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
            "state": {"status": status, "pid": 0, "exit_code": 0, "error": "", "started_at": "", "finished_at": "",
                      "oom_killed": false},
            "restart_count": 0, "runtime": "berth", "lower_dirs": [],
        });
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::from_value(v).expect("record")
    }

    #[test]
    fn list_filters() {
        let a = rec("a", "2026-01-01T00:00:01.000000000Z", "running", json!({}));
        let b = rec("b", "2026-01-01T00:00:02.000000000Z", "exited", json!({"config": {}, "host_config": {}}));
        let m = |r: &Record, f: &str, before: Option<&str>, since: Option<&str>| {
            let f = Filters::parse(f).expect("filters");
            f.accept(LIST_FILTERS).and_then(|()| matches(r, &f, before, since))
        };
        let yes = |r: &Record, f: &str| m(r, f, None, None).expect("valid");
        assert!(yes(&a, r#"{"label":["tier=web"]}"#) && !yes(&b, r#"{"label":["tier"]}"#));
        assert!(yes(&a, r#"{"status":["running"],"name":["a"]}"#) && !yes(&b, r#"{"status":["running"]}"#));
        assert!(yes(&b, r#"{"exited":["0"]}"#) && !yes(&a, r#"{"exited":["0"]}"#));
        assert!(yes(&a, r#"{"health":["none"]}"#) && !yes(&a, r#"{"health":["healthy"]}"#));
        assert!(yes(&a, r#"{"publish":["8080"]}"#) && yes(&a, r#"{"publish":["8000-8100/tcp"]}"#));
        assert!(!yes(&a, r#"{"publish":["80"]}"#) && !yes(&a, r#"{"publish":["8080/udp"]}"#));
        assert!(yes(&a, r#"{"expose":["80"]}"#) && !yes(&b, r#"{"expose":["80"]}"#));
        assert!(yes(&a, r#"{"is-task":["false"],"isolation":["default"]}"#) && !yes(&a, r#"{"is-task":["true"]}"#));
        assert!(
            m(&a, "{}", Some(&b.created), None).expect("before") && !m(&b, "{}", Some(&b.created), None).expect("b")
        );
        assert!(
            m(&b, "{}", None, Some(&a.created)).expect("since") && !m(&a, "{}", None, Some(&a.created)).expect("a")
        );
        let bad = |f: &str| m(&a, f, None, None).expect_err(f).to_string();
        assert_eq!(bad(r#"{"bogus":["1"]}"#), "invalid filter 'bogus'");
        assert_eq!(bad(r#"{"status":["sleeping"]}"#), "invalid filter 'status=sleeping'");
        assert!(bad(r#"{"health":["meh"]}"#).contains("health"));
        assert!(bad(r#"{"publish":["http"]}"#).contains("http"));
    }
}
