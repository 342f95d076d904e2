//! The project's live view: `compose events` (the daemon's events for the project's containers, as Compose v2
//! prints them) and `compose stats` (`berth stats` over the project's containers).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use berth_compose::plan::{LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
use clap::Args;
use serde_json::{Map, Value, json};

use super::ops::project_or_name;
use super::{OneOff, ProjectArgs, containers, id};
use crate::commands::{events, stats};

/// `events`' flags.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long = "json")]
    pub json: bool,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `stats`' flags: `berth stats`' with services instead of containers.
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub opts: stats::StatsOptions,
    /// Services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Compose's event (`api.Event`): the time, service, container ID, action and the attributes without Compose's own
/// labels. `None` for what Compose leaves out: other types than containers, one-off containers, other services.
fn compose_event(e: &Value, services: &[String]) -> Option<Value> {
    if e["Type"].as_str() != Some("container") {
        return None;
    }
    let attrs = e.pointer("/Actor/Attributes").and_then(Value::as_object).cloned().unwrap_or_default();
    let attr = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    if attr(LABEL_ONEOFF) == "True" {
        return None;
    }
    let service = attr(LABEL_SERVICE).to_string();
    if !services.is_empty() && !services.contains(&service) {
        return None;
    }
    let nanos = match e["timeNano"].as_i64() {
        Some(n) if n != 0 => n,
        _ => e["time"].as_i64().unwrap_or(0).saturating_mul(1_000_000_000),
    };
    let attributes: Map<String, Value> =
        attrs.into_iter().filter(|(k, _)| !k.starts_with("com.docker.compose.")).collect();
    Some(json!({
        "time": go_rfc3339_nano(nanos),
        "type": "container",
        "service": service,
        "id": e.pointer("/Actor/ID").and_then(Value::as_str).unwrap_or(""),
        "action": e["Action"].as_str().or_else(|| e["status"].as_str()).unwrap_or(""),
        "attributes": attributes,
    }))
}

/// Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped), as Compose's `--json` writes `time`.
fn go_rfc3339_nano(nanos: i64) -> String {
    let t = berth_api::time::rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64));
    match t.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((secs, frac)) => match frac.trim_end_matches('0') {
            "" => format!("{secs}Z"),
            f => format!("{secs}.{f}Z"),
        },
        None => t,
    }
}

/// Compose's line: `2026-12-06 10:00:00.123456 container start <id> (image=busybox, name=p-web-1)` (attributes
/// sorted; Compose prints them in Go's map order).
fn line(ev: &Value) -> String {
    let nanos = berth_api::time::parse(ev["time"].as_str().unwrap_or(""))
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    let t = berth_api::time::rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos));
    // `2006-01-02T15:04:05.123456789Z` → `2006-01-02 15:04:05.123456`.
    let t = format!("{} {}", t.get(..10).unwrap_or(""), t.get(11..26).unwrap_or(""));
    let mut kv: Vec<String> = ev["attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    kv.sort();
    let s = |k: &str| ev[k].as_str().unwrap_or("").to_string();
    format!("{t} container {} {} ({})", s("action"), s("id"), kv.join(", "))
}

/// `berth compose events`: follows the events of the project's containers (the daemon filters by the project label,
/// as Compose asks) until interrupted.
pub async fn events(c: &crate::client::Client, p: &ProjectArgs, a: EventsArgs) -> Result<i32> {
    let (_, project) = project_or_name(p, &[])?;
    let filters = json!({"label": [format!("{LABEL_PROJECT}={project}")]}).to_string();
    events::follow(c, &[("filters", filters)], |e| {
        Ok(compose_event(e, &a.services).map(|ev| if a.json { ev.to_string() } else { line(&ev) }))
    })
    .await?;
    Ok(0)
}

/// `berth compose stats`: `berth stats` over the project's containers (one-off ones included, as Compose's label
/// filter has them), running ones unless `--all`.
pub async fn stats(c: &crate::client::Client, p: &ProjectArgs, a: StatsArgs) -> Result<i32> {
    let (_, project) = project_or_name(p, &[])?;
    let services = a.services;
    stats::stats_of(c, a.opts, Vec::new(), |all| {
        let (project, services) = (&project, &services);
        async move { Ok(containers(c, project, services, OneOff::Include, all).await?.iter().map(id).collect()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_compose() {
        let e = json!({
            "Type": "container", "Action": "start", "time": 1, "timeNano": 1_000_500_000i64,
            "Actor": {"ID": "abc", "Attributes": {
                "name": "p-web-1", "image": "busybox", "com.docker.compose.service": "web",
                "com.docker.compose.project": "p", "com.docker.compose.oneoff": "False", "tier": "front"}},
        });
        let ev = compose_event(&e, &[]).expect("an event");
        assert_eq!(
            ev,
            json!({"time": "1970-01-01T00:00:01.0005Z", "type": "container", "service": "web", "id": "abc",
                   "action": "start", "attributes": {"name": "p-web-1", "image": "busybox", "tier": "front"}})
        );
        assert_eq!(
            line(&ev),
            "1970-01-01 00:00:01.000500 container start abc (image=busybox, name=p-web-1, tier=front)"
        );
        assert!(compose_event(&e, &["web".into()]).is_some());
        assert!(compose_event(&e, &["db".into()]).is_none());
        let mut oneoff = e.clone();
        oneoff["Actor"]["Attributes"]["com.docker.compose.oneoff"] = json!("True");
        assert!(compose_event(&oneoff, &[]).is_none());
        let mut net = e.clone();
        net["Type"] = json!("network");
        assert!(compose_event(&net, &[]).is_none());
        // Whole seconds: no fraction, as Go.
        let mut whole = e;
        whole["timeNano"] = json!(0);
        assert_eq!(compose_event(&whole, &[]).expect("an event")["time"], "1970-01-01T00:00:01Z");
    }
}
