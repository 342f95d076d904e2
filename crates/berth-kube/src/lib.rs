//! Kubernetes YAML for Berth. [`model`] holds hand-written serde models of the part of the Kubernetes API Berth
//! reads and writes (Pod, Deployment, StatefulSet, DaemonSet, Job, Service, ConfigMap, Secret,
//! PersistentVolumeClaim); [`generate`] turns containers (their Engine API inspection) and compose services into
//! such documents (`berth kube generate`, `berth compose kube`); [`play`] turns documents into a plan of pods,
//! containers and volumes as Engine API and pod API bodies (`berth kube play`). Nothing here talks to a daemon:
//! the CLI executes the plan, as `berth compose` does.

pub mod generate;
pub mod model;
pub mod play;
pub mod quantity;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{ClaimSpec, JobSpec, Object, ObjectMeta, PodSpec, ServiceSpec, StrMap, WorkloadSpec};

/// What went wrong with input: always names the document (its index in the file, counted from 0, and
/// `Kind/name`) and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A document Berth cannot read or run.
    #[error("document {index} ({what}): {field}: {message}")]
    Document {
        /// Its position in the file (0 is the first).
        index: usize,
        /// `Kind/name`.
        what: String,
        /// The field's path (`spec.template.spec.containers[0].image`), or `kind`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Anything else (a container that cannot be expressed, names that clash).
    #[error("{0}")]
    Input(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A document of a file with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Its index in the file (empty documents count).
    pub index: usize,
    /// The object.
    pub object: Object,
}

impl Document {
    /// `Kind/name`.
    pub fn what(&self) -> String {
        format!("{}/{}", self.object.kind(), self.object.metadata().name)
    }

    /// An error about one of its fields.
    pub fn error(&self, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Document { index: self.index, what: self.what(), field: field.into(), message: message.into() }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw<S> {
    #[serde(rename = "apiVersion")]
    _api_version: Value,
    #[serde(rename = "kind")]
    _kind: Value,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: S,
    #[serde(default, rename = "status")]
    _status: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawData {
    #[serde(rename = "apiVersion")]
    _api_version: Value,
    #[serde(rename = "kind")]
    _kind: Value,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: StrMap,
    #[serde(default)]
    binary_data: StrMap,
    #[serde(default)]
    string_data: StrMap,
    #[serde(default, rename = "type")]
    typ: Option<String>,
    #[serde(default, rename = "immutable")]
    _immutable: Option<bool>,
}

fn typed<T: serde::de::DeserializeOwned>(v: Value, index: usize, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // serde's list of the expected fields is long and says nothing useful here.
        if let Some(i) = message.find(", expected one of") {
            message.truncate(i);
            message.push_str(" (not supported by berth)");
        }
        Error::Document { index, what: what.to_string(), field, message }
    })
}

/// Scalars where Kubernetes wants strings (`env[].value: 80`, a label `"true"` written `true`) made strings, as
/// `kubectl` would refuse them but people write them: only in the maps and lists named here.
fn stringify_scalars(v: &mut Value) {
    fn fix_map(m: &mut Value) {
        if let Some(o) = m.as_object_mut() {
            for v in o.values_mut() {
                if let Some(s) = berth_compose::normalize::scalar_string(v)
                    && !v.is_string()
                {
                    *v = Value::String(s);
                }
            }
        }
    }
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                match k.as_str() {
                    "labels" | "annotations" | "data" | "stringData" | "matchLabels" | "selector" => fix_map(child),
                    "env" => {
                        if let Some(items) = child.as_array_mut() {
                            for it in items {
                                if let Some(val) = it.get_mut("value")
                                    && !val.is_string()
                                    && let Some(s) = berth_compose::normalize::scalar_string(val)
                                {
                                    *val = Value::String(s);
                                }
                            }
                        }
                    }
                    "command" | "args" => {
                        if let Some(items) = child.as_array_mut() {
                            for it in items {
                                if !it.is_string()
                                    && let Some(s) = berth_compose::normalize::scalar_string(it)
                                {
                                    *it = Value::String(s);
                                }
                            }
                        }
                    }
                    _ => stringify_scalars(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(stringify_scalars),
        _ => {}
    }
}

/// Reads one document (`index` its position in the file).
pub fn parse_document(index: usize, mut v: Value) -> Result<Document> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let what = format!("{}/{}", if kind.is_empty() { "?" } else { &kind }, name);
    let err =
        |field: &str, message: String| Error::Document { index, what: what.clone(), field: field.into(), message };
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let want = match kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Job" => "batch/v1",
        "Pod" | "Service" | "ConfigMap" | "Secret" | "PersistentVolumeClaim" => "v1",
        "" => return Err(err("kind", "missing".into())),
        k => {
            return Err(err(
                "kind",
                format!(
                    "{k} is not supported by berth kube play (Pod, Deployment, StatefulSet, DaemonSet, Job, Service, ConfigMap, Secret, PersistentVolumeClaim are)"
                ),
            ));
        }
    };
    if api != want {
        return Err(err("apiVersion", format!("{api:?} is not supported for {kind} (expected {want})")));
    }
    if name.is_empty() {
        return Err(err("metadata.name", "missing".into()));
    }
    stringify_scalars(&mut v);
    let object = match kind.as_str() {
        "Pod" => {
            let r: Raw<PodSpec> = typed(v, index, &what)?;
            Object::Pod { metadata: r.metadata, spec: r.spec }
        }
        "Deployment" => {
            let r: Raw<WorkloadSpec> = typed(v, index, &what)?;
            Object::Deployment { metadata: r.metadata, spec: r.spec }
        }
        "StatefulSet" => {
            let r: Raw<WorkloadSpec> = typed(v, index, &what)?;
            Object::StatefulSet { metadata: r.metadata, spec: r.spec }
        }
        "DaemonSet" => {
            let r: Raw<WorkloadSpec> = typed(v, index, &what)?;
            Object::DaemonSet { metadata: r.metadata, spec: r.spec }
        }
        "Job" => {
            let r: Raw<JobSpec> = typed(v, index, &what)?;
            Object::Job { metadata: r.metadata, spec: r.spec }
        }
        "Service" => {
            let r: Raw<ServiceSpec> = typed(v, index, &what)?;
            Object::Service { metadata: r.metadata, spec: r.spec }
        }
        "PersistentVolumeClaim" => {
            let r: Raw<ClaimSpec> = typed(v, index, &what)?;
            Object::PersistentVolumeClaim { metadata: r.metadata, spec: r.spec }
        }
        "ConfigMap" => {
            let r: RawData = typed(v, index, &what)?;
            if r.typ.is_some() || !r.string_data.is_empty() {
                return Err(err("type", "not a field of a ConfigMap".into()));
            }
            data_keys(&r, &err)?;
            Object::ConfigMap { metadata: r.metadata, data: r.data, binary_data: r.binary_data }
        }
        _ => {
            let r: RawData = typed(v, index, &what)?;
            if !r.binary_data.is_empty() {
                return Err(err("binaryData", "not a field of a Secret".into()));
            }
            data_keys(&r, &err)?;
            Object::Secret { metadata: r.metadata, data: r.data, string_data: r.string_data, typ: r.typ }
        }
    };
    Ok(Document { index, object })
}

/// Whether `k` is a key Kubernetes takes in a ConfigMap or Secret (`[-._a-zA-Z0-9]+`, not `.` or `..`): each is a
/// file name in a volume, so no `/`.
pub fn valid_data_key(k: &str) -> bool {
    !k.is_empty()
        && k != "."
        && k != ".."
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Refuses the keys of a ConfigMap's or Secret's data that Kubernetes refuses.
fn data_keys(r: &RawData, err: &dyn Fn(&str, String) -> Error) -> Result<()> {
    for (field, keys) in [
        ("data", r.data.keys().collect::<Vec<_>>()),
        ("binaryData", r.binary_data.keys().collect()),
        ("stringData", r.string_data.keys().collect()),
    ] {
        if let Some(k) = keys.into_iter().find(|k| !valid_data_key(k)) {
            return Err(err(
                &format!("{field}.{k}"),
                "not a valid key (letters, digits, '-', '.' and '_'; not '.' or '..')".into(),
            ));
        }
    }
    Ok(())
}

/// Reads a file of documents (`---` between them); empty documents are skipped (they still count for the index).
pub fn parse(text: &str) -> Result<Vec<Document>> {
    let values = berth_compose::yaml::parse_all(text).map_err(Error::Yaml)?;
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        match v {
            Value::Null => continue,
            Value::Object(_) => out.push(parse_document(i, v)?),
            _ => {
                return Err(Error::Document {
                    index: i,
                    what: "?".into(),
                    field: "(document)".into(),
                    message: "expected a mapping".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Renders documents as one YAML stream (`---` between them).
pub fn render(objects: &[Object]) -> Result<String> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&berth_compose::to_yaml(&o.to_value()).map_err(|e| Error::Input(e.to_string()))?);
    }
    Ok(out)
}

/// A name as Kubernetes wants one (RFC 1123 label: lower case letters, digits and `-`, starting and ending
/// alphanumeric, at most 63 characters): other characters become `-`.
pub fn dns_label(s: &str) -> String {
    let mut out: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    out.truncate(63);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "x".to_string() } else { out }
}

#[cfg(test)]
mod tests;
