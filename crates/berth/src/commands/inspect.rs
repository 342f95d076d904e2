//! `inspect` (containers, images and networks, or one `--type`): the daemon's JSON as an indented array, or each object
//! through a Go template.

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::{container_path, image_path, network_path};
use crate::StatusError;
use crate::client::{ApiError, Client};
use crate::formatter;

/// `berth inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth inspect [OPTIONS] NAME|ID [NAME|ID...]")]
pub struct InspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "TYPE")]
    pub typ: Option<String>,
    /// NAME|ID...
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
    /// `network inspect -v`: ask for the verbose form.
    #[arg(skip)]
    pub verbose: bool,
}

/// `berth container inspect` / `berth image inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "berth inspect [OPTIONS] NAME|ID [NAME|ID...]")]
pub struct TypedInspectArgs {
    /// Format output using a custom template ('json', 'TEMPLATE')
    #[arg(short = 'f', long = "format", value_name = "STRING")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// NAME|ID...
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

impl TypedInspectArgs {
    /// The same request as `inspect --type TYPE`.
    pub fn with_type(self, typ: &str) -> InspectArgs {
        InspectArgs {
            format: self.format,
            size: self.size,
            typ: Some(typ.to_string()),
            names: self.names,
            verbose: false,
        }
    }
}

/// Fetches one object; `Ok(None)` when no object of the types asked for has that name.
async fn fetch(c: &Client, name: &str, a: &InspectArgs) -> Result<Option<Value>> {
    let typ = a.typ.as_deref();
    let kinds: &[&str] = match typ {
        None => &["container", "image", "network", "volume"],
        Some("container") => &["container"],
        Some("image") => &["image"],
        Some("network") => &["network"],
        Some("volume") => &["volume"],
        Some(t @ ("node" | "service" | "task" | "secret" | "config" | "plugin")) => {
            bail!("Error response from daemon: berth has no {t}s: {name}")
        }
        Some(t) => bail!("\"{t}\" is not a valid value for --type"),
    };
    for kind in kinds {
        let path = match *kind {
            "container" => format!("{}/json{}", container_path(name), if a.size { "?size=1" } else { "" }),
            "network" => format!("{}{}", network_path(name), if a.verbose { "?verbose=true" } else { "" }),
            "volume" => format!("/volumes/{}", crate::client::encode_path(name)),
            _ => format!("{}/json", image_path(name)),
        };
        match c.get_json::<Value>(&path).await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if ApiError::is(&e, 404) => {
                if typ.is_some() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// docker's indented JSON (`json.Indent` with four spaces).
pub fn indent(v: &impl Serialize) -> Result<String> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Prints `objects` as docker's inspect does: an indented array, or each through the template.
pub fn print(objects: &[Value], format: Option<&str>) -> Result<()> {
    match format.filter(|f| !f.is_empty()) {
        None => outln!("{}", indent(&objects)?),
        Some(f) => {
            let text = if f == "json" { "{{json .}}" } else { f };
            // docker ends a bad inspect template with status 64.
            let tmpl = formatter::parse(text).map_err(|e| StatusError::exit(64, e.to_string()))?;
            let mut out = String::new();
            for o in objects {
                out.push_str(&tmpl.execute(o)?);
                out.push('\n');
            }
            out!("{out}");
        }
    }
    Ok(())
}

/// `berth inspect`.
pub async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match fetch(c, name, &a).await {
            Ok(Some(v)) => found.push(v),
            Ok(None) => errors.push(format!("Error: No such object: {name}")),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !found.is_empty() || a.format.as_deref().is_none_or(str::is_empty) {
        print(&found, a.format.as_deref())?;
    }
    if errors.is_empty() { Ok(0) } else { Err(StatusError::exit(1, errors.join("\n"))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indented_like_docker() {
        let v = vec![json!({"Id": "x", "Args": [], "State": {"Pid": 1}})];
        assert_eq!(
            indent(&v).expect("indent"),
            "[\n    {\n        \"Args\": [],\n        \"Id\": \"x\",\n        \"State\": {\n            \"Pid\": 1\n        }\n    }\n]"
        );
        assert_eq!(indent(&Vec::<Value>::new()).expect("indent"), "[]");
    }
}
