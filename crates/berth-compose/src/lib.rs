//! Compose files for Berth: finding and loading them ([`load`]), YAML as Compose v2 reads it ([`yaml`]), `.env`
//! files ([`dotenv`]), interpolation ([`interpolate`]), validation against the compose specification ([`schema`]), merging several files and
//! normalising them to their long forms ([`normalize`]), the typed model ([`model`]), and the plan of the Engine
//! API objects a project consists of ([`plan`]: names, labels, create bodies, config hashes, dependency order).
//!
//! The crate does no I/O with a daemon: the `berth compose` commands (crates/berth) execute the plan through the
//! Engine API, so they drive a real dockerd as well as berthd.

pub mod dotenv;
pub mod error;
pub mod interpolate;
pub mod schema;
pub mod yaml;

pub use error::{Error, Result};
pub mod load;
pub mod model;
pub mod normalize;

pub use load::{Options, Project, load};
pub mod plan;

use serde_json::Value;

/// Renders a value as YAML.
pub fn to_yaml(v: &Value) -> Result<String> {
    serde_saphyr::to_string(v).map_err(|e| Error::Project(format!("render YAML: {e}")))
}

/// Every `$` of every string value (not the keys, which are never interpolated) written `$$`, so that the text
/// loads again to the same values.
pub fn escape_dollars(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(a) => Value::Array(a.iter().map(escape_dollars).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), escape_dollars(v))).collect()),
        o => o.clone(),
    }
}

/// What `config` prints of a model, `yaml` (top-level keys in Compose's order) or `json`; with `escape`, `$`
/// re-escaped as `$$` as Compose v2 does, so the output loads again to the same model (not for a model read
/// without interpolation, whose templates are printed as written).
pub fn config_text(model: &Value, format: &str, escape: bool) -> Result<String> {
    let model = if escape { escape_dollars(model) } else { model.clone() };
    match format {
        "json" => serde_json::to_string_pretty(&model)
            .map(|s| format!("{s}\n"))
            .map_err(|e| Error::Project(format!("render JSON: {e}"))),
        "yaml" => {
            let order = ["name", "services", "networks", "volumes", "secrets", "configs"];
            let obj = model.as_object().cloned().unwrap_or_default();
            let rest = obj.keys().filter(|k| !order.contains(&k.as_str())).cloned();
            let mut text = String::new();
            for k in order.iter().map(|s| s.to_string()).chain(rest) {
                if let Some(v) = obj.get(&k) {
                    text.push_str(&to_yaml(&serde_json::json!({ k: v }))?);
                }
            }
            Ok(text)
        }
        f => Err(Error::Project(format!("unsupported format {f:?}: expected yaml or json"))),
    }
}
