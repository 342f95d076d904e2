//! Blocking work (the store, file trees, system calls) run off the async threads.

use crate::error::Error;

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, Error> + Send + 'static,
) -> std::result::Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("task failed: {e}")))?
}
