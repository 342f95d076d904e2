//! An event as the Engine API shows it: bollard's `EventMessage`, plus, for API versions before 1.52, the fields
//! Docker deprecated in 1.22 and still sent until then (`status` and `id` for container and image events, `from`
//! with the container's image).

use berth_api::ApiVersion;
use berth_api::models::{EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum};
use serde_json::Value;

use crate::events::Event;

fn type_enum(t: &str) -> EventMessageTypeEnum {
    use EventMessageTypeEnum as T;
    match t {
        "builder" => T::BUILDER,
        "config" => T::CONFIG,
        "container" => T::CONTAINER,
        "daemon" => T::DAEMON,
        "image" => T::IMAGE,
        "network" => T::NETWORK,
        "node" => T::NODE,
        "plugin" => T::PLUGIN,
        "secret" => T::SECRET,
        "service" => T::SERVICE,
        "volume" => T::VOLUME,
        _ => T::EMPTY,
    }
}

/// The first API version without the deprecated fields.
const NO_LEGACY_FIELDS: ApiVersion = ApiVersion { major: 1, minor: 52 };

/// The JSON of `e` for a client of API `version`.
pub fn render(e: &Event, version: ApiVersion) -> Value {
    let msg = EventMessage {
        typ: Some(type_enum(&e.typ)),
        action: Some(e.action.clone()),
        actor: Some(EventActor {
            id: Some(e.id.clone()),
            attributes: Some(e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }),
        scope: Some(EventMessageScopeEnum::LOCAL),
        time: Some(e.time_nano.div_euclid(1_000_000_000)),
        time_nano: Some(e.time_nano),
    };
    let mut v = serde_json::to_value(msg).unwrap_or(Value::Null);
    if version < NO_LEGACY_FIELDS
        && (e.typ == "container" || e.typ == "image")
        && let Some(o) = v.as_object_mut()
    {
        o.insert("status".into(), Value::from(e.action.as_str()));
        o.insert("id".into(), Value::from(e.id.as_str()));
        if e.typ == "container"
            && let Some(from) = e.attributes.get("image")
        {
            o.insert("from".into(), Value::from(from.as_str()));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::attrs;

    #[test]
    fn fields_and_legacy_fields() {
        let e = Event {
            typ: "container".into(),
            action: "die".into(),
            id: "abc".into(),
            attributes: attrs(&[("image", "busybox"), ("exitCode", "3")]),
            time_nano: 1_700_000_000_123_456_789,
        };
        let new = render(&e, ApiVersion { major: 1, minor: 53 });
        assert_eq!(new["Type"], "container");
        assert_eq!(new["Action"], "die");
        assert_eq!(new["Actor"]["ID"], "abc");
        assert_eq!(new["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(new["scope"], "local");
        assert_eq!(new["time"], 1_700_000_000);
        assert_eq!(new["timeNano"], 1_700_000_000_123_456_789i64);
        assert!(new.get("status").is_none());
        let old = render(&e, ApiVersion { major: 1, minor: 41 });
        assert_eq!(
            (old["status"].as_str(), old["id"].as_str(), old["from"].as_str()),
            (Some("die"), Some("abc"), Some("busybox"))
        );
    }
}
