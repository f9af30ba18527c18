//! HTTPS for `serve --tls-cert/--tls-key`: rustls (ring) in front of the same router.
//!
//! Production must run behind TLS (personal data in transit, BRIEF §3): either this listener or a
//! reverse proxy that terminates TLS. Plain HTTP is for loopback tests only. The listener, with
//! its handshake timeout, is `crate::server`.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Certificate or key that cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("certificate file {0}: {1}")]
    Cert(String, String),
    #[error("private key file {0}: {1}")]
    Key(String, String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds the acceptor from PEM files (certificate chain, PKCS#8/SEC1/RSA key).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert(cert.display().to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(
            cert.display().to_string(),
            "no certificate in file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.display().to_string(), e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
