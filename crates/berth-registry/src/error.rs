//! The errors of registry operations; their messages are fit to show a user (Docker's texts where Docker has one).

/// Everything a registry operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository, tag, manifest or blob does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The registry refused the credentials, or wants some (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are fine but not allowed to do this (403).
    #[error("{0}")]
    Denied(String),
    /// Bad input: a malformed reference, header or request.
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry cannot be reached, timed out, or answered something that is not the distribution protocol.
    #[error("{0}")]
    Unavailable(String),
    /// Content that does not match its digest, a malformed manifest, an unsupported media type.
    #[error("{0}")]
    Invalid(String),
    /// A local file operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The local store failed.
    #[cfg(feature = "client")]
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
