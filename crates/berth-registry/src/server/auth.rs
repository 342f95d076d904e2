//! Basic authentication against an htpasswd file, as distribution's `auth: htpasswd` does: bcrypt entries only
//! (`htpasswd -B`), every request authenticated (the docker CLI sends its credentials with each one).
//!
//! bcrypt costs tens of milliseconds by design, and a push is hundreds of requests, so a verified
//! (user, password, entry) triple is remembered in memory by its SHA-256; a changed password or entry misses.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use super::ServerError;
use super::api::DistError;

/// Remembered verifications, at most.
const CACHE_MAX: usize = 4096;

/// What is wrong with the entries of an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdError {
    /// A line without a colon.
    #[error("line {0}: not user:hash")]
    NotUserHash(usize),
    /// An entry whose hash is not bcrypt.
    #[error("line {line}: {user}: not a bcrypt entry (write it with `htpasswd -B`)")]
    NotBcrypt {
        /// 1-based.
        line: usize,
        /// The entry's user.
        user: String,
    },
    /// Only comments and blank lines.
    #[error("no users")]
    NoUsers,
}

/// The users of an htpasswd file.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    challenge: HeaderValue,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Reads `path`: `user:hash` lines, `#` comments and blank lines ignored; a non-bcrypt entry is an error.
    pub fn load(path: &Path, realm: &str) -> Result<Htpasswd, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServerError::HtpasswdRead { path: path.to_path_buf(), source })?;
        let users =
            Self::parse(&text).map_err(|source| ServerError::HtpasswdEntries { path: path.to_path_buf(), source })?;
        let realm = realm.replace(['"', '\\'], "");
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
            .map_err(|_| ServerError::Realm(realm.clone()))?;
        Ok(Htpasswd { users, challenge, verified: Mutex::new(HashSet::new()) })
    }

    fn parse(text: &str) -> Result<HashMap<String, String>, HtpasswdError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or(HtpasswdError::NotUserHash(i + 1))?;
            if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
                return Err(HtpasswdError::NotBcrypt { line: i + 1, user: user.to_string() });
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(HtpasswdError::NoUsers);
        }
        Ok(users)
    }

    /// Whether `user`/`password` match an entry.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else { return false };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self.verified.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return true;
        }
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return false;
        }
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= CACHE_MAX {
            v.clear();
        }
        v.insert(key);
        true
    }

    /// `user`/`password` of a `Basic` `Authorization` header.
    fn credentials(header: Option<&HeaderValue>) -> Option<(String, String)> {
        let v = header?.to_str().ok()?;
        let (scheme, b64) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let raw = String::from_utf8(berth_api::base64::decode(b64.trim())?).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

/// The middleware: a request without valid credentials gets `401 UNAUTHORIZED` with the `Basic` challenge.
pub async fn require(State(auth): State<Arc<Htpasswd>>, req: Request, next: Next) -> Response {
    if let Some((user, password)) = Htpasswd::credentials(req.headers().get("authorization")) {
        let a = auth.clone();
        let ok = tokio::task::spawn_blocking(move || a.verify(&user, &password)).await.unwrap_or(false);
        if ok {
            return next.run(req).await;
        }
    }
    let mut resp =
        DistError(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required".into()).into_response();
    resp.headers_mut().insert("www-authenticate", auth.challenge.clone());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        assert!(Htpasswd::parse("# c\n\nalice:$2y$05$abc\n").is_ok());
        assert_eq!(
            Htpasswd::parse("bob:{SHA}x").map_err(|e| e.to_string()),
            Err("line 1: bob: not a bcrypt entry (write it with `htpasswd -B`)".to_string())
        );
        assert_eq!(Htpasswd::parse("#\nnocolon"), Err(HtpasswdError::NotUserHash(2)));
        assert_eq!(Htpasswd::parse(""), Err(HtpasswdError::NoUsers));
    }

    #[test]
    fn verifies_bcrypt_and_caches() {
        let hash = bcrypt::hash_with_result("s3cret", 4).map(|h| h.to_string());
        let Ok(hash) = hash else { return };
        let h = Htpasswd {
            users: HashMap::from([("alice".to_string(), hash)]),
            challenge: HeaderValue::from_static("Basic realm=\"x\""),
            verified: Mutex::new(HashSet::new()),
        };
        assert!(!h.verify("alice", "wrong"));
        assert!(h.verify("alice", "s3cret"));
        assert!(h.verify("alice", "s3cret"));
        assert!(!h.verify("bob", "s3cret"));
        let hv = HeaderValue::from_static("Basic YWxpY2U6czNjcmV0");
        assert_eq!(Htpasswd::credentials(Some(&hv)), Some(("alice".into(), "s3cret".into())));
    }
}
