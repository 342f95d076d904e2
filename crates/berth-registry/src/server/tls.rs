//! HTTPS for the registry server: a PEM certificate chain and private key, rustls with the ring provider (the
//! configuration is [`crate::tls::server`]'s, shared with berthd's Engine API over TCP).

use std::path::Path;

use super::ServerError;

/// A TLS acceptor for `cert` (PEM chain, leaf first) and `key` (PEM: PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    let config = crate::tls::server(cert, key, None).map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}
