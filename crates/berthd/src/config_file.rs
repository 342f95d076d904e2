//! The daemon configuration file: `/etc/berth/daemon.json` by default (`--config-file`), with dockerd's
//! `daemon.json` keys where Berth has the setting. Each key becomes the command-line arguments of the flag it stands
//! for, so that `main.rs` resolves flags and file in one place, with the same checks (clap's); a key given both ways
//! is refused there, as dockerd refuses it.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The keys Berth reads: the key, the clap id of its flag (empty: no flag) and the flag.
const KEYS: &[(&str, &str, &str)] = &[
    ("bip", "bip", "--bip"),
    ("bridge", "bridge", "--bridge"),
    ("data-root", "data_root", "--data-root"),
    ("default-address-pools", "default_address_pool", "--default-address-pool"),
    ("default-runtime", "runtime", "--runtime"),
    ("dns", "dns", "--dns"),
    ("exec-root", "exec_root", "--exec-root"),
    ("hosts", "host", "--host"),
    ("init", "init", "--init"),
    ("init-path", "init_path", "--init-path"),
    ("insecure-registries", "insecure_registry", "--insecure-registry"),
    ("live-restore", "", ""),
    ("log-driver", "log_driver", "--log-driver"),
    ("log-level", "log_level", "--log-level"),
    ("log-opts", "log_opt", "--log-opt"),
    ("registry-mirrors", "", ""),
    ("tls", "tls", "--tls"),
    ("tlscacert", "tlscacert", "--tlscacert"),
    ("tlscert", "tlscert", "--tlscert"),
    ("tlskey", "tlskey", "--tlskey"),
    ("tlsverify", "tlsverify", "--tlsverify"),
    ("ui", "ui", "--ui"),
    ("userns-remap", "userns_remap", "--userns-remap"),
];

/// Why the file is refused; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("open {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The file is JSON, but not an object.
    #[error("want a JSON object, got {0}")]
    NotObject(String),
    /// Keys Berth does not read.
    #[error("the following directives don't match any configuration option: {unknown} (Berth reads {known})")]
    Unknown {
        /// The keys, sorted, comma-separated.
        unknown: String,
        /// The keys Berth reads, comma-separated.
        known: String,
    },
    /// A key's value has the wrong type or shape.
    #[error("{key}: want {want}, got {got}")]
    Want {
        /// The key (and the option of `log-opts`).
        key: String,
        /// What it takes.
        want: &'static str,
        /// What it is.
        got: String,
    },
    /// `registry-mirrors` with mirrors.
    #[error("registry-mirrors: Berth has no registry mirrors (images are pulled from the registry their name gives)")]
    Mirrors,
}

/// One key of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub key: String,
    /// The clap id of the flag it stands for (empty when there is none).
    pub id: &'static str,
    /// The value in the file (for messages).
    pub value: Value,
    /// The command-line arguments it stands for.
    pub args: Vec<String>,
}

/// Reads the file: no directives when it is missing and was not asked for (`explicit`), or empty. The errors name
/// the key (the caller names the file).
pub fn read(path: &Path, explicit: bool) -> Result<Vec<Directive>, ConfigFileError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Vec::new()),
        Err(source) => return Err(ConfigFileError::Open { path: path.to_path_buf(), source }),
    };
    parse(&data)
}

fn parse(data: &[u8]) -> Result<Vec<Directive>, ConfigFileError> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    if data.trim_ascii().is_empty() {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_slice(data).map_err(ConfigFileError::Json)?;
    let Value::Object(map) = doc else {
        return Err(ConfigFileError::NotObject(kind(&doc)));
    };
    let mut unknown: Vec<&str> =
        map.keys().map(String::as_str).filter(|k| !KEYS.iter().any(|(n, ..)| n == k)).collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let known: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
        return Err(ConfigFileError::Unknown { unknown: unknown.join(", "), known: known.join(", ") });
    }
    let mut out = Vec::new();
    for (key, id, flag) in KEYS {
        let Some(value) = map.get(*key) else { continue };
        let bad = |want| ConfigFileError::Want { key: key.to_string(), want, got: kind(value) };
        let strings = || -> Result<Vec<String>, ConfigFileError> {
            let Value::Array(items) = value else { return Err(bad("a list of strings")) };
            items.iter().map(|v| v.as_str().map(String::from).ok_or_else(|| bad("a list of strings"))).collect()
        };
        let values: Vec<String> = match *key {
            "live-restore" => {
                // Always on in Berth: containers outlive the daemon whatever the file says.
                value.as_bool().ok_or_else(|| bad("a boolean"))?;
                Vec::new()
            }
            "registry-mirrors" => {
                if !strings()?.is_empty() {
                    return Err(ConfigFileError::Mirrors);
                }
                Vec::new()
            }
            "dns" | "insecure-registries" | "hosts" => strings()?,
            "tls" | "tlsverify" | "init" => {
                // A switch: `true` is the bare flag, `false` leaves it off.
                let on = value.as_bool().ok_or_else(|| bad("a boolean"))?;
                let args = if on { vec![flag.to_string()] } else { Vec::new() };
                out.push(Directive { key: key.to_string(), id, value: value.clone(), args });
                continue;
            }
            "log-opts" => {
                let Value::Object(opts) = value else { return Err(bad("an object of strings")) };
                let mut pairs = Vec::new();
                for (k, v) in opts {
                    let v = v.as_str().ok_or_else(|| ConfigFileError::Want {
                        key: format!("{key}: {k}"),
                        want: "a string",
                        got: kind(v),
                    })?;
                    pairs.push(format!("{k}={v}"));
                }
                pairs
            }
            "default-address-pools" => {
                let Value::Array(pools) = value else { return Err(bad("a list of {\"base\": ..., \"size\": ...}")) };
                let mut list = Vec::new();
                for p in pools {
                    let base = p.get("base").and_then(Value::as_str);
                    let size = p.get("size").and_then(Value::as_u64);
                    let extra = p.as_object().is_some_and(|o| o.keys().any(|k| k != "base" && k != "size"));
                    match (base, size, extra) {
                        (Some(b), Some(s), false) => list.push(format!("base={b},size={s}")),
                        _ => {
                            return Err(ConfigFileError::Want {
                                key: key.to_string(),
                                want: "{\"base\": \"CIDR\", \"size\": N}",
                                got: p.to_string(),
                            });
                        }
                    }
                }
                list
            }
            _ => vec![value.as_str().ok_or_else(|| bad("a string"))?.to_string()],
        };
        let args = values.into_iter().flat_map(|v| [flag.to_string(), v]).collect();
        out.push(Directive { key: key.to_string(), id, value: value.clone(), args });
    }
    Ok(out)
}

/// What a JSON value is, for messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A value as dockerd prints it in its conflict message (Go's `%v`).
pub fn go_format(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_format).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", go_format(v))).collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flags() {
        let d = parse(
            br#"{"log-driver": "local", "log-opts": {"max-size": "1m"}, "dns": ["10.0.0.1", "10.0.0.2"],
                 "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}], "live-restore": true,
                 "registry-mirrors": []}"#,
        )
        .expect("valid");
        let args: Vec<String> = d.iter().flat_map(|d| d.args.clone()).collect();
        assert_eq!(
            args,
            [
                "--default-address-pool",
                "base=10.10.0.0/16,size=24",
                "--dns",
                "10.0.0.1",
                "--dns",
                "10.0.0.2",
                "--log-driver",
                "local",
                "--log-opt",
                "max-size=1m"
            ]
        );
        assert!(parse(b"  \n").expect("empty").is_empty());
        let d = parse(
            br#"{"hosts": ["unix:///run/b.sock", "tcp://127.0.0.1:2376"], "tlsverify": true, "tls": false,
                 "tlscacert": "/c/ca.pem"}"#,
        )
        .expect("valid");
        let args: Vec<String> = d.iter().flat_map(|d| d.args.clone()).collect();
        assert_eq!(
            args,
            [
                "--host",
                "unix:///run/b.sock",
                "--host",
                "tcp://127.0.0.1:2376",
                "--tlscacert",
                "/c/ca.pem",
                "--tlsverify"
            ]
        );
    }

    #[test]
    fn bad_files_name_the_key() {
        let err = |s: &str| parse(s.as_bytes()).expect_err("refused").to_string();
        assert!(err(r#"{"log-opts": {"max-file": 3}}"#).starts_with("log-opts: max-file: want a string"));
        assert!(err(r#"{"log-driver": 1}"#).starts_with("log-driver: want a string"));
        assert!(err(r#"{"storage-driver": "x"}"#).contains("don't match any configuration option: storage-driver"));
        assert!(err(r#"{"registry-mirrors": ["https://m"]}"#).contains("no registry mirrors"));
        assert!(err("{").starts_with("invalid JSON"));
        assert_eq!(err("[1]"), "want a JSON object, got a list");
        assert_eq!(err(r#"{"log-opts": {"max-file": 3}}"#), "log-opts: max-file: want a string, got a number (3)");
        assert_eq!(
            err(r#"{"default-address-pools": [{"base": "10.0.0.0/8"}]}"#),
            r#"default-address-pools: want {"base": "CIDR", "size": N}, got {"base":"10.0.0.0/8"}"#
        );
        assert_eq!(
            err(r#"{"registry-mirrors": ["https://m"]}"#),
            "registry-mirrors: Berth has no registry mirrors (images are pulled from the registry their name gives)"
        );
        let missing = read(Path::new("/nonexistent-berth-test/daemon.json"), true).expect_err("missing").to_string();
        assert_eq!(missing, "open /nonexistent-berth-test/daemon.json: No such file or directory (os error 2)");
        assert_eq!(go_format(&serde_json::json!({"b": "2", "a": "1"})), "map[a:1 b:2]");
    }
}
