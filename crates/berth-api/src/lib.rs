//! The Docker Engine API contract as Berth speaks it: the wire models (re-exported from `bollard-stubs`, API v1.53),
//! version negotiation, and the one mapping from an error class to an HTTP status and a Docker error body.
//!
//! Neither processes nor disks are known here: the daemon and the CLI both build on this crate.

pub use bollard_stubs::models;

pub mod auth;
pub mod base64;
pub mod build_context;
pub mod security_opt;
pub mod stats;
pub mod time;
pub mod units;

/// The newest Engine API version Berth serves (the version of `shared/specs/docker-engine-api-v1.53.yaml`).
pub const API_VERSION: ApiVersion = ApiVersion { major: 1, minor: 53 };
/// The oldest Engine API version Berth accepts.
pub const MIN_API_VERSION: ApiVersion = ApiVersion { major: 1, minor: 24 };
/// Berth's own version, reported by `/version`.
pub const BERTH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An Engine API version such as `1.41`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// Parses `1.41` (as found in a `/v1.41/...` path or an `Api-Version` header).
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Checks a version a client asked for in its request path. `None` (an unversioned path) means the newest.
pub fn negotiate(requested: Option<ApiVersion>) -> Result<ApiVersion, Error> {
    match requested {
        None => Ok(API_VERSION),
        Some(v) if v > API_VERSION => Err(Error::InvalidArgument(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        ))),
        Some(v) if v < MIN_API_VERSION => Err(Error::InvalidArgument(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ))),
        Some(v) => Ok(v),
    }
}

/// The error classes of the Engine API, each with Docker's HTTP status. The message is what the user reads.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// 404: no such container, image, exec instance, ...
    #[error("{0}")]
    NotFound(String),
    /// 409: name in use, container running, image in use, ...
    #[error("{0}")]
    Conflict(String),
    /// 400: a malformed body or parameter.
    #[error("{0}")]
    InvalidArgument(String),
    /// 304: already started, already stopped.
    #[error("{0}")]
    NotModified(String),
    /// 403: an operation the object does not allow (removing a predefined network, overlapping pools).
    #[error("{0}")]
    Forbidden(String),
    /// 401: registry credentials refused.
    #[error("{0}")]
    Unauthorized(String),
    /// 500: a real fault of the server or the host.
    #[error("{0}")]
    Internal(String),
    /// 501: the object cannot do this (the logs of a container whose log driver cannot be read).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a service this daemon does not run (swarm mode: "This node is not a swarm manager...").
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// Docker's HTTP status for this class.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::InvalidArgument(_) => 400,
            Error::NotModified(_) => 304,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::Internal(_) => 500,
            Error::NotImplemented(_) => 501,
            Error::Unavailable(_) => 503,
        }
    }

    /// Docker's error body: `{"message": "..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.to_string() }).to_string()
    }
}

/// The body of every Docker error response.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct ErrorBody {
    pub message: String,
}

/// Stream identifiers of Docker's multiplexed attach/logs stream (the first byte of each 8-byte frame header).
pub mod stream {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    /// Media type of a multiplexed (non-TTY) hijacked stream.
    pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
    /// Media type of a raw (TTY) hijacked stream.
    pub const RAW: &str = "application/vnd.docker.raw-stream";

    /// The 8-byte header of one frame: stream id, three zero bytes, big-endian payload length.
    pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
        let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
    }

    /// Splits a frame header into (stream id, payload length).
    pub fn parse_header(h: &[u8; 8]) -> (u8, usize) {
        (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_bounds() {
        assert_eq!(negotiate(None), Ok(API_VERSION));
        assert_eq!(negotiate(ApiVersion::parse("1.41")), Ok(ApiVersion { major: 1, minor: 41 }));
        assert!(
            matches!(negotiate(ApiVersion::parse("1.99")), Err(Error::InvalidArgument(m)) if m.contains("too new"))
        );
        assert!(
            matches!(negotiate(ApiVersion::parse("1.12")), Err(Error::InvalidArgument(m)) if m.contains("too old"))
        );
        assert_eq!(ApiVersion::parse("x.1"), None);
    }

    #[test]
    fn frame_roundtrip() {
        let h = stream::frame_header(stream::STDERR, 70000);
        assert_eq!(stream::parse_header(&h), (2, 70000));
        assert_eq!(Error::Conflict("x".into()).status(), 409);
        assert_eq!(Error::NotFound("No such container: a".into()).body(), r#"{"message":"No such container: a"}"#);
    }
}
