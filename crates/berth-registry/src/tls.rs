//! TLS for the registry client (rustls, ring provider), with Docker's trust rules: the system's CA bundle plus the
//! `*.crt` files of `<certs.d>/<host[:port]>/` (Docker's `/etc/docker/certs.d` by default). Registries that may be
//! spoken to in plain HTTP (loopback, `--insecure-registry`) are tried in HTTPS first without verification, as Docker
//! does, and fall back to HTTP when the handshake fails.
//!
//! Also the one place PEM files become rustls configurations for the rest of Berth: the registry server's
//! certificate, and the Engine API over TCP with mutual TLS (berthd's `--tlsverify` server side, the CLI's
//! `--tls*` client side).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Error, Result};

/// Docker's directory of per-registry certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Where distributions keep the system's CA bundle (`SSL_CERT_FILE` first).
const BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's CA certificates, read once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        let paths = env.into_iter().chain(BUNDLES.iter().map(PathBuf::from));
        for p in paths {
            if let Ok(it) = CertificateDer::pem_file_iter(&p) {
                let certs: Vec<_> = it.filter_map(|c| c.ok()).collect();
                if !certs.is_empty() {
                    return certs;
                }
            }
        }
        Vec::new()
    })
}

/// A client configuration that verifies the server against the system's roots and those of
/// `<certs_dir>/<authority>/*.crt`.
pub fn verifying(certs_dir: Option<&Path>, authority: &str) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(dir) = certs_dir.map(|d| d.join(authority))
        && let Ok(rd) = std::fs::read_dir(&dir)
    {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                let certs = CertificateDer::pem_file_iter(&p)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
                roots.add_parsable_certificates(certs);
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that accepts any certificate (Docker's behaviour for insecure registries).
pub fn unverified() -> Result<Arc<ClientConfig>> {
    let p = provider();
    let config = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("tls: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(p)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (a chain: leaf first); an empty file is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Invalid(format!("{}: no certificate in the file", path.display())));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// The CA certificates of a PEM file as a root store.
fn read_roots(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(read_certs(ca)?);
    if added == 0 {
        return Err(Error::Invalid(format!("{}: no usable CA certificate", ca.display())));
    }
    Ok(roots)
}

/// A server configuration for `cert` (PEM chain) and `key`; with `client_ca`, every client must present a
/// certificate signed by that CA (mutual TLS: dockerd's `--tlsverify`), else the handshake fails. HTTP/1.1 only.
pub fn server(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<ServerConfig>> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("tls: {e}")))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider())
                    .build()
                    .map_err(|e| Error::Invalid(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_single_cert(certs, key).map_err(|e| Error::Invalid(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration for the Engine API (the docker CLI's `--tls*` rules): with `verify`, the server must
/// present a certificate of `ca` (the system's CAs without one); without, any certificate is accepted (`--tls`
/// alone). `identity` (certificate, key) is presented when the server asks for one.
pub fn api_client(ca: Option<&Path>, identity: Option<(&Path, &Path)>, verify: bool) -> Result<Arc<ClientConfig>> {
    let p = provider();
    let builder = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("tls: {e}")))?;
    let builder = if verify {
        let roots = match ca {
            Some(ca) => read_roots(ca)?,
            None => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(system_roots().iter().cloned());
                roots
            }
        };
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(p)))
    };
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| Error::Invalid(format!("{} and {}: {e}", cert.display(), key.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The server name to verify for an authority (`host[:port]`, `[v6]:port`).
pub fn server_name(authority: &str) -> Result<ServerName<'static>> {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority),
    };
    ServerName::try_from(host.to_string()).map_err(|_| Error::InvalidArgument(format!("invalid host name {host:?}")))
}

/// Accepts every certificate, still checking the handshake's signatures (so the session is with the key's owner).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(server_name("127.0.0.1:5000"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]:5000"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("registry.example.com"), Ok(ServerName::DnsName(_))));
        assert!(server_name("bad name:5000").is_err());
    }

    #[test]
    fn configs_build() {
        assert!(verifying(None, "x:1").is_ok());
        assert!(unverified().is_ok());
    }
}
