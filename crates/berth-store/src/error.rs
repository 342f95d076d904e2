//! The one error type of the store, and helpers that attach context to system errors.

use std::io;

/// Everything a store operation can fail with. `NotFound`, `Conflict` and `InvalidArgument`
/// carry a message fit to show a user as is (the daemon maps them to 404, 409 and 400).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist (e.g. `No such image: busybox:latest`).
    #[error("{0}")]
    NotFound(String),
    /// The operation clashes with existing state (a name in use, an image still referenced).
    #[error("{0}")]
    Conflict(String),
    /// The input is malformed: a bad reference, a corrupt tar, an unknown change command.
    #[error("{0}")]
    InvalidArgument(String),
    /// The data on disk is inconsistent (a missing blob, an unparsable stored config).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A system call failed; `context` says what the store was doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `creating /var/lib/berth/layers`.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The metadata database failed (a full disk says so in the words of the file system: `no space left on
    /// device`).
    #[error("metadata database: {}", db_message(.0))]
    Db(#[from] rusqlite::Error),
}

fn db_message(e: &rusqlite::Error) -> String {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        format!("no space left on device ({e})")
    } else {
        e.to_string()
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// An `Io` error with `context`.
    pub fn io(context: impl Into<String>, source: io::Error) -> StoreError {
        StoreError::Io { context: context.into(), source }
    }

    /// True for `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }
}

/// `map_err` helper: turns an `io::Error` into `StoreError::Io` with a lazily built context.
pub(crate) fn io_ctx<F: FnOnce() -> String>(f: F) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::io(f(), e)
}

/// True for the errors of a full file system (no space, or the quota used up).
pub(crate) fn full_disk(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
