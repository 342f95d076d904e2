//! Docker's event filters (`daemon/events/filter.go`): several values of one key match when any does, different keys
//! must all match.

use super::Event;
use crate::error::Error;
use crate::filters::Filters;

/// The keys `GET /events` accepts (Docker's; the swarm ones match no local event).
pub const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "pod",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Refuses unknown keys with Docker's 400.
pub fn check(f: &Filters) -> Result<(), Error> {
    f.accept(KEYS)
}

fn exact(f: &Filters, key: &str, v: &str) -> bool {
    f.any(key, |x| x == v)
}

/// Docker's `FuzzyMatch`: a value equal to, or a prefix of, the source.
fn fuzzy(f: &Filters, key: &str, v: &str) -> bool {
    f.any(key, |x| v.starts_with(x))
}

/// Docker's name-or-ID filter for objects of type `typ` (`container`, `network`, `volume`, `daemon`).
fn name_or_id(f: &Filters, typ: &str, e: &Event) -> bool {
    let name = e.attributes.get("name").map(String::as_str).unwrap_or("");
    !f.contains(typ) || (!f.get(typ).is_empty() && (fuzzy(f, typ, &e.id) || fuzzy(f, typ, name)))
}

fn strip_tag(s: &str) -> &str {
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => &s[..i],
        _ => s,
    }
}

/// Whether `e` passes the filters.
pub fn matches(f: &Filters, e: &Event) -> bool {
    // Docker matches `health_status`, `exec_create` and `exec_start` as prefixes (their actions carry a suffix).
    let fuzzy_event =
        f.get("event").iter().any(|v| ["health_status", "exec_create", "exec_start"].contains(&v.as_str()));
    let event = if fuzzy_event { fuzzy(f, "event", &e.action) } else { exact(f, "event", &e.action) };
    let image_name =
        e.attributes.get(if e.typ == "image" { "name" } else { "image" }).map(String::as_str).unwrap_or("");
    let image = !f.contains("image")
        || [e.id.as_str(), image_name, strip_tag(&e.id), strip_tag(image_name)]
            .iter()
            .any(|v| f.get("image").iter().any(|x| x == v));
    let daemon = !f.contains("daemon") || (e.typ == "daemon" && name_or_id(f, "daemon", e));
    let swarm = ["config", "node", "plugin", "secret", "service"].iter().all(|k| !f.contains(k));
    let labels: std::collections::HashMap<String, String> =
        e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    event
        && exact(f, "type", &e.typ)
        && exact(f, "scope", "local")
        && daemon
        && name_or_id(f, "container", e)
        && name_or_id(f, "network", e)
        && name_or_id(f, "volume", e)
        && (!f.contains("pod") || (e.typ == "pod" && name_or_id(f, "pod", e)))
        && image
        && swarm
        && f.match_kv("label", &labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::attrs;

    fn ev(typ: &str, action: &str, id: &str, a: &[(&str, &str)]) -> Event {
        Event { typ: typ.into(), action: action.into(), id: id.into(), attributes: attrs(a), time_nano: 0 }
    }

    fn f(json: &str) -> Filters {
        Filters::parse(json).expect("filters")
    }

    #[test]
    fn docker_rules() {
        let start = ev("container", "start", "abcdef", &[("name", "web"), ("image", "busybox:latest"), ("app", "x")]);
        let net = ev("network", "connect", "n123", &[("name", "bridge"), ("container", "abcdef"), ("type", "bridge")]);
        let health = ev("container", "health_status: healthy", "abcdef", &[("name", "web")]);
        assert!(matches(&f(""), &start));
        assert!(matches(&f(r#"{"container":["web"]}"#), &start));
        assert!(matches(&f(r#"{"container":["abc"]}"#), &start));
        assert!(!matches(&f(r#"{"container":["other"]}"#), &start));
        assert!(!matches(&f(r#"{"container":["web"]}"#), &net));
        // One key: any value; two keys: both.
        assert!(matches(&f(r#"{"event":["die","start"]}"#), &start));
        assert!(!matches(&f(r#"{"event":["start"],"type":["network"]}"#), &start));
        assert!(matches(&f(r#"{"event":["connect"],"type":["network"]}"#), &net));
        assert!(matches(&f(r#"{"event":["health_status"]}"#), &health));
        assert!(!matches(&f(r#"{"event":["health"]}"#), &health));
        assert!(matches(&f(r#"{"label":["app=x"]}"#), &start));
        assert!(!matches(&f(r#"{"label":["app=y"]}"#), &start));
        assert!(matches(&f(r#"{"image":["busybox"]}"#), &start));
        assert!(matches(&f(r#"{"image":["busybox:latest"]}"#), &start));
        assert!(matches(&f(r#"{"network":["bridge"]}"#), &net));
        assert!(matches(&f(r#"{"scope":["local"]}"#), &net));
        assert!(!matches(&f(r#"{"scope":["swarm"]}"#), &net));
        assert!(!matches(&f(r#"{"daemon":["x"]}"#), &start));
        assert!(check(&f(r#"{"bogus":["x"]}"#)).is_err());
        assert!(check(&f(r#"{"type":["container"],"label":["a"]}"#)).is_ok());
    }
}
