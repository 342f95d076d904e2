//! Registry credentials: the `X-Registry-Auth` header (the Engine API's `AuthConfig`) and docker's client
//! configuration file `config.json`, shared by `docker login` and `berth login`. (The one place this crate touches a
//! file: the file's format is part of the contract between the CLIs.)

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::base64;

type Result<T> = std::result::Result<T, Error>;

/// The key Docker Hub's credentials are stored under in `config.json`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry, as `X-Registry-Auth` and `POST /auth` carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password (or a personal access token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// A refresh token from an earlier login (used instead of username and password).
    #[serde(default, rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    /// A bearer token to use as it is.
    #[serde(default, rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
    /// The registry the credentials are for.
    #[serde(default, rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
}

impl Credentials {
    /// True when there is nothing to authenticate with.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// Decodes an `X-Registry-Auth` header (base64url JSON; an empty or `{}` header means anonymous).
    pub fn from_header(h: &str) -> Result<Credentials> {
        let h = h.trim();
        if h.is_empty() {
            return Ok(Credentials::default());
        }
        let bytes = base64::decode(h).ok_or_else(|| Error::InvalidArgument("invalid X-Registry-Auth header".into()))?;
        // Field names are matched case-insensitively, as Go's JSON decoder does.
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidArgument(format!("invalid X-Registry-Auth header: {e}")))?;
        Ok(Credentials::from_json(&v))
    }

    /// Reads credentials from a JSON object with any capitalisation of the field names.
    pub fn from_json(v: &Value) -> Credentials {
        let get = |name: &str| -> String {
            v.as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        Credentials {
            username: get("username"),
            password: get("password"),
            identity_token: get("identitytoken"),
            registry_token: get("registrytoken"),
            server_address: get("serveraddress"),
        }
    }

    /// The `X-Registry-Auth` header for these credentials.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::encode(&json).replace('+', "-").replace('/', "_")
    }

    /// `Basic <base64(user:password)>`, if there is a user name.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        Some(format!("Basic {}", base64::encode(format!("{}:{}", self.username, self.password).as_bytes())))
    }
}

/// The key of a registry in `config.json` (`docker.io` → Docker Hub's historic URL).
pub fn config_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        r => r.to_string(),
    }
}

/// Normalises a `login` server argument: scheme and path dropped (`https://host:5000/v2/` → `host:5000`), Docker
/// Hub's names → `docker.io`.
pub fn normalize_server(s: &str) -> String {
    if s.is_empty() || s == DOCKER_HUB_KEY {
        return "docker.io".into();
    }
    let s = s.trim_start_matches("https://").trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// docker's client configuration (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`). Unknown fields are
/// kept as they are when it is written back.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Value,
}

impl DockerConfig {
    /// The default location: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("config.json");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker").join("config.json")
    }

    /// Reads the file at `path` (missing means empty).
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let doc = match std::fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => json!({}),
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::InvalidArgument(format!("loading config file {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => return Err(Error::Internal(format!("reading {}: {e}", path.display()))),
        };
        Ok(DockerConfig { path: path.to_path_buf(), doc })
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored credentials for `registry` (`docker.io`, `host:5000`). Entries stored under a URL
    /// (`https://host:5000/v1/`) match too.
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        let auths = self.doc["auths"].as_object()?;
        let key = config_key(registry);
        let entry = auths.get(&key).or_else(|| {
            auths.iter().find(|(k, _)| normalize_server(k) == normalize_server(registry)).map(|(_, v)| v)
        })?;
        let mut c = Credentials::from_json(entry);
        if let Some(a) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
            let raw = base64::decode(a)?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            c.username = u.to_string();
            c.password = p.to_string();
        }
        c.server_address = registry.to_string();
        if c.is_empty() { None } else { Some(c) }
    }

    /// Stores credentials for `registry` in docker's format (`auth` = base64 of `user:password`).
    pub fn set(&mut self, registry: &str, c: &Credentials) {
        if !self.doc.is_object() {
            self.doc = json!({});
        }
        let mut entry = json!({"auth": base64::encode(format!("{}:{}", c.username, c.password).as_bytes())});
        if !c.identity_token.is_empty() {
            entry = json!({"identitytoken": c.identity_token});
        }
        if !self.doc["auths"].is_object() {
            self.doc["auths"] = json!({});
        }
        self.doc["auths"][config_key(registry)] = entry;
    }

    /// Removes the credentials for `registry`; false if there were none.
    pub fn remove(&mut self, registry: &str) -> bool {
        let Some(auths) = self.doc["auths"].as_object_mut() else { return false };
        let key = config_key(registry);
        if auths.remove(&key).is_some() {
            return true;
        }
        let other: Vec<String> =
            auths.keys().filter(|k| normalize_server(k) == normalize_server(registry)).cloned().collect();
        for k in &other {
            auths.remove(k);
        }
        !other.is_empty()
    }

    /// The context the CLI uses (`currentContext`; `None`: the default).
    pub fn current_context(&self) -> Option<String> {
        self.doc["currentContext"].as_str().filter(|c| !c.is_empty()).map(String::from)
    }

    /// Sets the current context (`None` or `default`: the key is removed).
    pub fn set_current_context(&mut self, name: Option<&str>) {
        if !self.doc.is_object() {
            self.doc = json!({});
        }
        if let Some(o) = self.doc.as_object_mut() {
            match name.filter(|n| *n != "default") {
                Some(n) => {
                    o.insert("currentContext".into(), json!(n));
                }
                None => {
                    o.remove("currentContext");
                }
            }
        }
    }

    /// Writes the file atomically (a temporary file beside it, mode 0600, renamed into place).
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(&self.doc).map_err(|e| Error::Internal(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&text)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Internal(format!("writing {}: {e}", self.path.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"psFormat":"x"}"#)
            .expect("write");
        let mut c = DockerConfig::load(&path).expect("load");
        let hub = c.get("docker.io").expect("hub");
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        c.set("localhost:5000", &Credentials { username: "a".into(), password: "b:c".into(), ..Default::default() });
        c.save().expect("save");
        let c = DockerConfig::load(&path).expect("reload");
        assert_eq!(c.get("localhost:5000").map(|x| x.password), Some("b:c".into()));
        assert_eq!(c.doc["psFormat"], "x");
        let hdr = Credentials { username: "a".into(), password: "b".into(), ..Default::default() }.to_header();
        assert_eq!(Credentials::from_header(&hdr).expect("hdr").username, "a");
        assert_eq!(normalize_server("https://localhost:5000/v2/"), "localhost:5000");
    }
}
