//! Reloading the configuration on `SIGHUP`, as dockerd does (`systemctl reload berthd`): the flags and the daemon
//! configuration file are resolved again with the same checks as at start-up, and the settings Berth can change while
//! it runs (`log-level` and `insecure-registries`) take effect; every other setting takes effect at the next start.
//! A configuration that does not resolve changes nothing (the error is logged, the daemon keeps running). A reload
//! publishes the `daemon` `reload` event, its attributes the settings as they now are (as dockerd's).

use std::collections::BTreeMap;

use crate::daemon::Daemon;

pub use crate::daemon::Reloadable;

/// Applies `new`: the log level through `set_level`, the rest in the daemon's state; publishes `reload`.
pub fn apply(d: &Daemon, new: Reloadable, set_level: &dyn Fn(tracing::Level)) {
    let old = d.reloadable();
    if new.log_level != old.log_level {
        set_level(new.log_level);
    }
    tracing::info!(
        "reloaded the configuration: log-level {}, insecure registries {:?} (other settings take effect at the next \
         start)",
        new.log_level.as_str().to_lowercase(),
        new.insecure_registries
    );
    let attrs = attributes(&new, &d.config.runtime);
    d.set_reloadable(new);
    d.events.publish("daemon", "reload", &d.config.engine_id, attrs);
}

/// The `reload` event's attributes: the daemon's name and its settings, under dockerd's keys where it has them.
fn attributes(r: &Reloadable, default_runtime: &str) -> BTreeMap<String, String> {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    BTreeMap::from([
        ("name".to_string(), hostname),
        ("debug".to_string(), (r.log_level >= tracing::Level::DEBUG).to_string()),
        ("log-level".to_string(), r.log_level.as_str().to_lowercase()),
        ("insecure-registries".to_string(), json(&r.insecure_registries)),
        ("registry-mirrors".to_string(), "[]".to_string()),
        ("labels".to_string(), "[]".to_string()),
        ("live-restore".to_string(), "true".to_string()),
        ("default-runtime".to_string(), default_runtime.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_dockerds_keys() {
        let r = Reloadable { log_level: tracing::Level::DEBUG, insecure_registries: vec!["reg.example:5000".into()] };
        let a = attributes(&r, "berth");
        assert_eq!(a["insecure-registries"], r#"["reg.example:5000"]"#);
        assert_eq!(a["debug"], "true");
        assert_eq!(a["log-level"], "debug");
        assert_eq!(a["default-runtime"], "berth");
        assert!(a.contains_key("name"));
        let a = attributes(&Reloadable::default(), "runc");
        assert_eq!((a["debug"].as_str(), a["insecure-registries"].as_str()), ("false", "[]"));
    }
}
