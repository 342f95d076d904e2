//! The daemon's registry clients: one constructor with its trust settings (`--registry-certs-dir`,
//! `--insecure-registry`) for pulls, pushes and logins, the check behind `POST /auth`, and `GET /distribution`.

use crate::error::Error;
use berth_registry::{Credentials, Registry};

use crate::daemon::Daemon;

/// A client for `registry` with the daemon's trust settings: its certificates directory and insecure registries.
pub fn registry(d: &Daemon, registry: &str, creds: Credentials, scopes: Vec<String>) -> Result<Registry, Error> {
    Registry::new(registry, &d.reloadable().insecure_registries, creds, scopes)
        .map(|r| r.with_certs_dir(Some(d.config.registry_certs_dir.clone())))
        .map_err(Error::from)
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
        e => Error::from(e),
    })
}

/// `GET /distribution/{name}/json`: the registry's manifest descriptor and platforms of `name`, nothing pulled.
pub async fn distribution(
    d: &Daemon,
    name: &str,
    creds: Credentials,
) -> Result<berth_registry::pull::Distribution, Error> {
    let r = berth_store::Reference::parse(name).map_err(Error::from)?;
    let reg = registry(d, r.domain(), creds, vec![berth_registry::pull::pull_scope(&r)])?;
    berth_registry::pull::distribution(&reg, &r).await.map_err(Error::from)
}
