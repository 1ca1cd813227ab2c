//! TLS to Redis: `rediss://` URLs, which CAs to trust, and an optional client certificate.
//!
//! rustls does the TLS, on aws-lc-rs like every other piece of cryptography in tessera. The
//! server's certificate must chain to a trusted CA and name the host of the URL (a DNS name,
//! or the IP address as an IP SAN): without a CA file the system's trust store
//! (`/etc/ssl/certs`) decides, with one only the CAs in that file do — a private CA for
//! Redis should not make every public CA able to impersonate it.
//!
//! The files are read once, at start, so a typo stops start-up with the setting's name
//! rather than failing every reconnection later.

use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tessera_core::store::StoreError;

/// Where the TLS material for Redis is. Empty: the system trust store, no client certificate.
#[derive(Debug, Clone, Default)]
pub struct RedisTls {
    /// PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to servers that ask for one (`tls-auth-clients`).
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
}

impl RedisTls {
    pub(super) fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert_file.is_none() && self.client_key_file.is_none()
    }

    /// Reads and checks the files; `None` when nothing is configured (the system trust store).
    pub(super) fn load(&self) -> Result<Option<TlsCertificates>, StoreError> {
        if self.is_empty() {
            return Ok(None);
        }
        let root_cert = match &self.ca_file {
            Some(path) => {
                let pem = read("store.redis_ca_file", path)?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("store.redis_ca_file", path, &e.to_string()))?;
                if certs.is_empty() {
                    return Err(invalid("store.redis_ca_file", path, "no PEM certificate in it"));
                }
                Some(pem)
            }
            None => None,
        };
        let client_tls = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert_path), Some(key_path)) => {
                let client_cert = read("store.redis_client_cert_file", cert_path)?;
                let chain = CertificateDer::pem_slice_iter(&client_cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("store.redis_client_cert_file", cert_path, &e.to_string()))?;
                if chain.is_empty() {
                    return Err(invalid("store.redis_client_cert_file", cert_path, "no PEM certificate in it"));
                }
                let client_key = read("store.redis_client_key_file", key_path)?;
                // The message of a key parse error never quotes the key.
                PrivateKeyDer::from_pem_slice(&client_key)
                    .map_err(|_| invalid("store.redis_client_key_file", key_path, "no PEM private key in it"))?;
                Some(ClientTlsConfig { client_cert, client_key })
            }
            (None, None) => None,
            _ => {
                return Err(StoreError::Other(
                    "store.redis_client_cert_file and store.redis_client_key_file go together".into(),
                ));
            }
        };
        Ok(Some(TlsCertificates { client_tls, root_cert }))
    }
}

/// A client for one URL, with the TLS material when the URL is `rediss://` and some is set.
pub(super) fn client(url: &str, certs: Option<&TlsCertificates>) -> redis::RedisResult<redis::Client> {
    match certs {
        Some(certs) if is_tls(url) => redis::Client::build_with_tls(url, certs.clone()),
        _ => redis::Client::open(url),
    }
}

pub(super) fn is_tls(url: &str) -> bool {
    url.trim_start().get(..9).is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
}

/// rustls needs one process-wide crypto provider when a library (here the Redis client) builds
/// its configuration without naming one. aws-lc-rs, the only provider in tessera's tree;
/// installing it twice is harmless.
pub(super) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::Other(format!("{setting}: cannot read {}: {e}", path.display())))
}

fn invalid(setting: &str, path: &Path, why: &str) -> StoreError {
    StoreError::Other(format!("{setting}: {}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rediss_urls_are_tls() {
        assert!(is_tls("rediss://cache:6380"));
        assert!(is_tls("REDISS://cache"));
        assert!(!is_tls("redis://cache:6379"));
        assert!(!is_tls("unix:///run/redis.sock"));
        assert!(!is_tls("redis"));
    }

    #[test]
    fn nothing_configured_is_the_system_trust_store() {
        assert!(RedisTls::default().load().unwrap().is_none());
    }

    #[test]
    fn a_missing_ca_file_names_the_setting() {
        let tls = RedisTls { ca_file: Some("/nonexistent/ca.pem".into()), ..RedisTls::default() };
        let e = tls.load().unwrap_err().to_string();
        assert!(e.contains("store.redis_ca_file") && e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate\n").unwrap();
        let tls = RedisTls { ca_file: Some(file.path().into()), ..RedisTls::default() };
        let e = tls.load().unwrap_err().to_string();
        assert!(e.contains("store.redis_ca_file") && e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let tls = RedisTls { client_cert_file: Some("/etc/hostname".into()), ..RedisTls::default() };
        let e = tls.load().unwrap_err().to_string();
        assert!(e.contains("store.redis_client_key_file"), "{e}");
    }
}
