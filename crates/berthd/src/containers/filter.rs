//! The container list's and prune's filters (Docker's keys, through [`crate::filters::Filters`]).

use std::collections::{HashMap, HashSet};

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
    // Podman's; applied by the route (its names are the pod manager's).
    "pod",
    "publish",
    "since",
    "status",
    "volume",
];
/// The filters `POST /containers/prune` accepts (Docker's).
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// The values of a list's filters, checked and parsed once before the containers are walked (Docker's `foldFilter`:
/// a bad value is refused even when no container would be looked at).
#[derive(Debug, Default)]
pub struct Context {
    /// `name`, `isolation`: Docker matches them as (unanchored) regular expressions; a value that is not one only
    /// matches exactly.
    regexes: HashMap<String, Option<regex::Regex>>,
    exited: Vec<i64>,
    is_task: Option<bool>,
    /// The creation times of the `before`/`since` containers.
    before: Option<String>,
    since: Option<String>,
    /// The image IDs of `ancestor` and of the images built on them (`None`: no `ancestor` filter).
    ancestors: Option<HashSet<String>>,
    publish: HashSet<(u16, String)>,
    expose: HashSet<(u16, String)>,
}

/// Docker's `portOp`: `port[/proto]` or `first-last[/proto]` (tcp when no protocol is given) into `into`.
fn ports(key: &str, value: &str, into: &mut HashSet<(u16, String)>) -> Result<(), Error> {
    if value.contains(':') {
        return Err(Error::InvalidArgument(format!("filter for '{key}' should not contain ':': {value}")));
    }
    let (range, proto) = match value.split_once('/') {
        Some((r, "")) => (r, "tcp"),
        Some((r, p)) => (r, p.split('/').next().unwrap_or(p)),
        None => (value, "tcp"),
    };
    let bad = |e: String| Error::InvalidArgument(format!("error while looking up for {key} {value}: {e}"));
    let num =
        |s: &str| s.parse::<u16>().map_err(|_| bad(format!("strconv.ParseUint: parsing \"{s}\": invalid syntax")));
    if range.is_empty() {
        return Err(bad("Empty string specified for ports.".into()));
    }
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (num(a)?, num(b.split('-').next().unwrap_or(b))?),
        None => (num(range)?, num(range)?),
    };
    if last < first {
        return Err(bad(format!("Invalid range specified for the Port: {range}")));
    }
    into.extend((first..=last).map(|p| (p, proto.to_string())));
    Ok(())
}

impl Context {
    /// Checks and parses the values of `f` (its keys are already checked against [`LIST_FILTERS`]). `created` gives
    /// the creation time of the container a `before`/`since` names (Docker's "No such container" when there is none);
    /// `ancestors` the image IDs an `ancestor` filter stands for (see [`descendants`]).
    pub fn new(
        f: &Filters,
        created: impl Fn(&str) -> Result<String, Error>,
        ancestors: Option<HashSet<String>>,
    ) -> Result<Context, Error> {
        let mut c = Context { ancestors, ..Default::default() };
        for v in f.get("exited") {
            let code = v
                .parse::<i64>()
                .map_err(|_| Error::InvalidArgument(format!("strconv.Atoi: parsing \"{v}\": invalid syntax")))?;
            c.exited.push(code);
        }
        for v in f.get("status") {
            if !["created", "restarting", "running", "removing", "paused", "exited", "dead"].contains(&v.as_str()) {
                return Err(Error::InvalidArgument(format!("invalid filter 'status={v}'")));
            }
        }
        if f.contains("is-task") {
            let vals = f.get("is-task");
            c.is_task = if vals.iter().any(|v| v == "true") {
                Some(true)
            } else if vals.iter().any(|v| v == "false") {
                Some(false)
            } else {
                return Err(Error::InvalidArgument(format!("invalid filter 'is-task=[{}]'", vals.join(" "))));
            };
        }
        for v in f.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
                return Err(Error::InvalidArgument(format!("Unrecognised filter value for health: {v}")));
            }
        }
        // With several values the last one counts, as in Docker's walk over them.
        for v in f.get("before") {
            c.before = Some(created(v)?);
        }
        for v in f.get("since") {
            c.since = Some(created(v)?);
        }
        for v in f.get("publish") {
            ports("publish", v, &mut c.publish)?;
        }
        for v in f.get("expose") {
            ports("expose", v, &mut c.expose)?;
        }
        for key in ["name", "isolation"] {
            for v in f.get(key) {
                c.regexes.insert(v.clone(), regex::Regex::new(v).ok());
            }
        }
        Ok(c)
    }

    /// Docker's `Args.Match`: true when `key` is absent, or one of its values equals `source` or, as a regular
    /// expression, matches somewhere in it.
    fn matches(&self, f: &Filters, key: &str, source: &str) -> bool {
        f.any(key, |v| v == source || self.regexes.get(v).and_then(Option::as_ref).is_some_and(|r| r.is_match(source)))
    }
}

/// The IDs of `roots` and of every image built on one of them (whose layers start with all of the root's), for an
/// `ancestor` filter; images as (ID, layers bottom first).
pub fn descendants<L: PartialEq>(roots: &[(String, Vec<L>)], all: &[(String, Vec<L>)]) -> HashSet<String> {
    let mut ids: HashSet<String> = roots.iter().map(|(id, _)| id.clone()).collect();
    for (_, layers) in roots.iter().filter(|(_, l)| !l.is_empty()) {
        ids.extend(all.iter().filter(|(_, l)| l.starts_with(layers)).map(|(id, _)| id.clone()));
    }
    ids
}

/// Whether one container passes the `GET /containers/json` filters `f` (whose values `ctx` holds parsed).
pub fn matches(rec: &Record, f: &Filters, ctx: &Context) -> bool {
    let running = matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting);
    let started = !rec.state.started_at.is_empty() && !rec.state.started_at.starts_with("0001-");
    let health = rec.state.health.as_ref().map_or("none", |h| h.status.as_str());
    let bare = rec.name.trim_start_matches('/');
    let name_ok = ctx.matches(f, "name", &format!("/{bare}")) || ctx.matches(f, "name", bare);
    let exited_ok = ctx.exited.is_empty() || (!running && started && ctx.exited.contains(&rec.state.exit_code));
    // Volumes by name (a bind by its source) or by destination.
    let volume_ok = f.any("volume", |v| {
        rec.mounts.iter().any(|m| m.destination == v || if m.name.is_empty() { m.source == v } else { m.name == v })
    });
    let network_ok = f.any("network", |v| {
        rec.net.endpoints.iter().any(|e| e.network == v || e.network_id.starts_with(v))
            || (matches!(v, "host" | "none") && rec.host_config.network_mode.as_deref() == Some(v))
    });
    let ancestor_ok = ctx.ancestors.as_ref().is_none_or(|ids| ids.contains(&rec.image_id));
    // Docker compares against the list's `Ports`: published by host port, exposed by container port.
    let ports_ok = (ctx.publish.is_empty() && ctx.expose.is_empty())
        || crate::networks::listed_ports(rec).iter().any(|p| {
            let proto = p.proto.as_str().to_string();
            ctx.publish.contains(&(p.host_port.unwrap_or(0), proto.clone()))
                || ctx.expose.contains(&(p.container_port, proto))
        });
    name_ok
        // An ID prefix (Docker looks it up in its ID index).
        && f.any("id", |v| rec.id.starts_with(v))
        && ctx.is_task.is_none_or(|t| !t)
        && f.match_kv("label", rec.config.labels.as_ref().unwrap_or(&HashMap::new()))
        && ctx.matches(f, "isolation", "default")
        && exited_ok
        && f.any("status", |v| v == rec.state.status.as_str())
        && f.any("health", |v| v == health)
        && volume_ok
        && ancestor_ok
        && network_ok
        && ports_ok
        && ctx.before.as_ref().is_none_or(|b| rec.created < *b)
        && ctx.since.as_ref().is_none_or(|s| rec.created > *s)
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

    fn check(r: &Record, f: &str, created: &[(&str, &str)], ancestors: Option<HashSet<String>>) -> Result<bool, Error> {
        let f = Filters::parse(f)?;
        f.accept(LIST_FILTERS)?;
        let ctx = Context::new(
            &f,
            |n| {
                created
                    .iter()
                    .find(|(name, _)| *name == n)
                    .map(|(_, c)| c.to_string())
                    .ok_or_else(|| Error::NotFound(format!("No such container: {n}")))
            },
            ancestors,
        )?;
        Ok(matches(r, &f, &ctx))
    }

    #[test]
    fn list_filters() {
        let a = rec(
            "a",
            "2026-01-01T00:00:01.000000000Z",
            "running",
            json!({"net": {"ports": [{"proto": "tcp", "container_port": 80, "host_ip": "0.0.0.0", "host_port": 8080}]}}),
        );
        let mut b = rec("b", "2026-01-01T00:00:02.000000000Z", "exited", json!({"config": {}, "host_config": {}}));
        b.state.started_at = "2026-01-01T00:00:03Z".into();
        let times = [("a", a.created.as_str()), ("b", b.created.as_str())];
        let yes = |r: &Record, f: &str| check(r, f, &times, None).expect(f);
        assert!(yes(&a, r#"{"label":["tier=web"]}"#) && !yes(&b, r#"{"label":["tier"]}"#));
        assert!(yes(&a, r#"{"status":["running"],"name":["a"]}"#) && !yes(&b, r#"{"status":["running"]}"#));
        assert!(yes(&b, r#"{"exited":["0"]}"#) && !yes(&a, r#"{"exited":["0"]}"#));
        assert!(yes(&a, r#"{"health":["none"]}"#) && !yes(&a, r#"{"health":["healthy"]}"#));
        assert!(yes(&a, r#"{"publish":["8080"]}"#) && yes(&a, r#"{"publish":["8000-8100/tcp"]}"#));
        assert!(!yes(&a, r#"{"publish":["80"]}"#) && !yes(&a, r#"{"publish":["8080/udp"]}"#));
        assert!(
            yes(&a, r#"{"expose":["80"]}"#)
                && yes(&a, r#"{"expose":["79-81/tcp"]}"#)
                && !yes(&b, r#"{"expose":["80"]}"#)
        );
        assert!(yes(&a, r#"{"is-task":["false"],"isolation":["default"]}"#) && !yes(&a, r#"{"is-task":["true"]}"#));
        assert!(yes(&a, r#"{"before":["b"]}"#) && !yes(&b, r#"{"before":["b"]}"#));
        assert!(yes(&b, r#"{"since":["a"]}"#) && !yes(&a, r#"{"since":["a"]}"#));
    }

    #[test]
    fn name_and_isolation_are_regular_expressions_id_a_prefix() {
        let mut a = rec("app-1", "2026-01-01T00:00:01Z", "running", json!({}));
        // Records keep the name without its slash.
        a.name = "app-1".into();
        let yes = |f: &str| check(&a, f, &[], None).expect(f);
        // Over the name with and without its leading slash, unanchored.
        assert!(yes(r#"{"name":["^/app-1$"]}"#) && yes(r#"{"name":["^app"]}"#) && yes(r#"{"name":["p-"]}"#));
        assert!(!yes(r#"{"name":["^/app$"]}"#) && !yes(r#"{"name":["^pp"]}"#));
        // Several values: any of them.
        assert!(yes(r#"{"name":["nope","app"]}"#));
        // Not a regular expression: only an exact match counts.
        assert!(!yes(r#"{"name":["app-1("]}"#));
        assert!(yes(r#"{"id":["app-1012"]}"#) && !yes(r#"{"id":["^app-1"]}"#) && !yes(r#"{"id":["0123"]}"#));
        assert!(yes(r#"{"isolation":["def"]}"#) && !yes(r#"{"isolation":["hyperv"]}"#));
    }

    #[test]
    fn volume_network_and_ancestor() {
        let a = rec(
            "a",
            "2026-01-01T00:00:01Z",
            "running",
            json!({"image_id": "sha256:child", "mounts": [
                {"type": "volume", "name": "data", "source": "/v/data/_data", "destination": "/data", "driver": "local",
                 "mode": "", "rw": true, "propagation": "", "copy_data": true, "named": true, "create_source": false,
                 "non_recursive": false, "recursive_ro": false, "tmpfs_options": ""},
                {"type": "bind", "name": "", "source": "/srv", "destination": "/srv-in", "driver": "",
                 "mode": "", "rw": true, "propagation": "", "copy_data": false, "named": false, "create_source": false,
                 "non_recursive": false, "recursive_ro": false, "tmpfs_options": ""}],
             "net": {"endpoints": [{"network": "front", "network_id": "f00d1234"}]}}),
        );
        let yes = |f: &str| check(&a, f, &[], None).expect(f);
        assert!(yes(r#"{"volume":["data"]}"#) && yes(r#"{"volume":["/data"]}"#) && yes(r#"{"volume":["/srv"]}"#));
        assert!(yes(r#"{"volume":["/srv-in"]}"#) && !yes(r#"{"volume":["/v/data/_data"]}"#));
        assert!(yes(r#"{"network":["front"]}"#) && yes(r#"{"network":["f00d"]}"#) && !yes(r#"{"network":["back"]}"#));
        let ids = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<HashSet<_>>());
        let anc = |set| check(&a, r#"{"ancestor":["x"]}"#, &[], set).expect("ancestor");
        assert!(anc(ids(&["sha256:base", "sha256:child"])) && !anc(ids(&["sha256:base"])) && !anc(ids(&[])));
    }

    #[test]
    fn bad_values_get_dockers_errors() {
        let a = rec("a", "2026-01-01T00:00:01Z", "running", json!({}));
        let bad = |f: &str| check(&a, f, &[], None).expect_err(f);
        assert_eq!(bad(r#"{"bogus":["1"]}"#).to_string(), "invalid filter 'bogus'");
        assert_eq!(bad(r#"{"status":["sleeping"]}"#).to_string(), "invalid filter 'status=sleeping'");
        assert_eq!(bad(r#"{"health":["meh"]}"#).to_string(), "Unrecognised filter value for health: meh");
        assert_eq!(bad(r#"{"is-task":["yes"]}"#).to_string(), "invalid filter 'is-task=[yes]'");
        assert_eq!(bad(r#"{"exited":["x"]}"#).to_string(), "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(
            bad(r#"{"publish":["http"]}"#).to_string(),
            "error while looking up for publish http: strconv.ParseUint: parsing \"http\": invalid syntax"
        );
        assert_eq!(bad(r#"{"expose":["8080:80"]}"#).to_string(), "filter for 'expose' should not contain ':': 8080:80");
        assert!(bad(r#"{"publish":["90-80"]}"#).to_string().contains("Invalid range specified for the Port: 90-80"));
        assert!(bad(r#"{"before":["ghost"]}"#).is_not_found());
        for e in [bad(r#"{"status":["x"]}"#), bad(r#"{"publish":["x"]}"#), bad(r#"{"exited":["x"]}"#)] {
            assert_eq!(berth_api::Error::from(e).status(), 400);
        }
    }

    #[test]
    fn descendants_share_the_roots_layers() {
        let img = |id: &str, layers: &[u8]| (id.to_string(), layers.to_vec());
        let (base, child, other) = (img("a", &[1]), img("b", &[1, 2]), img("c", &[3, 2]));
        let ids = descendants(std::slice::from_ref(&base), &[base.clone(), child.clone(), other.clone()]);
        assert!(ids.contains("a") && ids.contains("b") && !ids.contains("c"));
    }
}
