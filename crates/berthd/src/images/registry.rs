//! The daemon's registry clients: one constructor with its trust settings (`--registry-certs-dir`,
//! `--insecure-registry`) for pulls, pushes and logins, and the check behind `POST /auth`.

use crate::error::Error;
use berth_registry::{Credentials, Registry};

use crate::daemon::{Daemon, store_error};

/// Maps a registry error to its API class.
pub fn registry_error(e: berth_registry::Error) -> Error {
    use berth_registry::Error as R;
    match e {
        R::NotFound(m) => Error::NotFound(m),
        R::Unauthorized(m) => Error::Unauthorized(m),
        R::Denied(m) => Error::Forbidden(m),
        R::InvalidArgument(m) => Error::InvalidArgument(m),
        R::Store(s) => store_error(s),
        other => Error::Internal(other.to_string()),
    }
}

/// A client for `registry` with the daemon's trust settings: its certificates directory and insecure registries.
pub fn registry(d: &Daemon, registry: &str, creds: Credentials, scopes: Vec<String>) -> Result<Registry, Error> {
    Registry::new(registry, &d.config.insecure_registries, creds, scopes)
        .map(|r| r.with_certs_dir(Some(d.config.registry_certs_dir.clone())))
        .map_err(registry_error)
}

/// `docker login`: checks `creds` against their registry (`GET /v2/`), with Docker's message for refused ones.
pub async fn login(d: &Daemon, creds: Credentials) -> Result<(), Error> {
    let server = berth_registry::auth::normalize_server(&creds.server_address);
    let reg = registry(d, &server, creds, Vec::new())?;
    reg.ping().await.map_err(|e| match e {
        berth_registry::Error::Unauthorized(m) => Error::Unauthorized(format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized ({m})",
            reg.name
        )),
        e => registry_error(e),
    })
}
