//! Who may use the dashboard: one-time login tokens (handed out on the API's Unix socket, `POST /berth/ui/token`),
//! exchanged once for a session (a random cookie with a server-side expiry), each session with its own CSRF token.
//! All in memory: a daemon restart logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login token may wait to be used.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long a session lasts (from the login; not extended by use).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many tokens waiting and sessions alive: the oldest goes first (memory stays bounded however often
/// `berth ui` is run).
const MAX_TOKENS: usize = 32;
const MAX_SESSIONS: usize = 64;

/// Why a random value could not be made.
#[derive(Debug, thiserror::Error)]
#[error("random: {0}")]
pub struct RandomError(String);

/// A session: its CSRF token (sent back with every state-changing request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf: String,
}

#[derive(Default)]
struct State {
    /// Login tokens not used yet, with when they were made.
    tokens: HashMap<String, Instant>,
    /// Session IDs (the cookie's value), with when they were made.
    sessions: HashMap<String, (Instant, Session)>,
}

/// The tokens and sessions.
#[derive(Default)]
pub struct Access {
    state: Mutex<State>,
}

/// 256 random bits, in hex.
fn random_hex() -> Result<String, RandomError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(b))
}

/// Drops what expired; then the oldest entries beyond `max`.
fn trim<V>(map: &mut HashMap<String, V>, made: impl Fn(&V) -> Instant, ttl: Duration, max: usize, now: Instant) {
    map.retain(|_, v| now.saturating_duration_since(made(v)) < ttl);
    while map.len() > max {
        let Some(oldest) = map.iter().min_by_key(|(_, v)| made(v)).map(|(k, _)| k.clone()) else { break };
        map.remove(&oldest);
    }
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Access {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A fresh login token, valid once within [`TOKEN_TTL`].
    pub fn issue_token(&self) -> Result<String, RandomError> {
        let token = random_hex()?;
        let now = Instant::now();
        let mut s = self.state();
        s.tokens.insert(token.clone(), now);
        trim(&mut s.tokens, |t| *t, TOKEN_TTL, MAX_TOKENS, now);
        Ok(token)
    }

    /// Exchanges a login token for a new session: its ID (the cookie) and the session. `None` for a token that was
    /// never issued, was used already or expired.
    pub fn redeem(&self, token: &str) -> Result<Option<(String, Session)>, RandomError> {
        let now = Instant::now();
        let (id, csrf) = (random_hex()?, random_hex()?);
        let mut s = self.state();
        trim(&mut s.tokens, |t| *t, TOKEN_TTL, MAX_TOKENS, now);
        if s.tokens.remove(token).is_none() {
            return Ok(None);
        }
        let session = Session { csrf };
        s.sessions.insert(id.clone(), (now, session.clone()));
        trim(&mut s.sessions, |(t, _)| *t, SESSION_TTL, MAX_SESSIONS, now);
        Ok(Some((id, session)))
    }

    /// The live session with this ID.
    pub fn session(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut s = self.state();
        trim(&mut s.sessions, |(t, _)| *t, SESSION_TTL, MAX_SESSIONS, now);
        s.sessions.get(id).map(|(_, session)| session.clone())
    }

    /// Ends a session (logout).
    pub fn end(&self, id: &str) {
        self.state().sessions.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once() {
        let a = Access::default();
        let t = a.issue_token().expect("test");
        assert_eq!(t.len(), 64);
        let (id, s) = a.redeem(&t).expect("test").expect("first use");
        assert_eq!(a.session(&id), Some(s.clone()));
        assert!(a.redeem(&t).expect("test").is_none(), "replayed token");
        assert!(a.redeem("").expect("test").is_none());
        assert!(a.session("nope").is_none());
        assert_ne!(id, s.csrf);
        a.end(&id);
        assert!(a.session(&id).is_none());
    }

    #[test]
    fn tokens_and_sessions_stay_bounded() {
        let a = Access::default();
        for _ in 0..MAX_TOKENS + 5 {
            a.issue_token().expect("test");
        }
        assert_eq!(a.state().tokens.len(), MAX_TOKENS);
        for _ in 0..MAX_SESSIONS + 5 {
            let t = a.issue_token().expect("test");
            a.redeem(&t).expect("test").expect("test");
        }
        assert_eq!(a.state().sessions.len(), MAX_SESSIONS);
    }

    #[test]
    fn expired_entries_go() {
        let mut m: HashMap<String, Instant> = HashMap::new();
        let now = Instant::now();
        m.insert("old".into(), now.checked_sub(TOKEN_TTL + Duration::from_secs(1)).unwrap_or(now));
        m.insert("new".into(), now);
        trim(&mut m, |t| *t, TOKEN_TTL, 10, now);
        assert!(m.contains_key("new"));
        assert!(!m.contains_key("old") || now.checked_sub(TOKEN_TTL).is_none());
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
