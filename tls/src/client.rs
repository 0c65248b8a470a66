//! The client's TLS settings (`client.toml`'s `ca`, `cert` and `key`): the
//! CA that signed the nodes' certificates (the peer CA's certificate; only
//! its public half) and the user's client certificate and key.

use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::files::read_text;
use crate::TlsError;

/// Where a client's TLS material is (PEM files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA the nodes' certificates chain to.
    pub ca: Option<PathBuf>,
    /// This user's client certificate (signed by the cluster's client CA).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// Whether any TLS setting is given.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The tonic settings; a certificate without its key (or the other
    /// way round) is refused, naming what is missing.
    pub fn config(&self) -> Result<ClientTlsConfig, TlsError> {
        let mut c = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            c = c.ca_certificate(Certificate::from_pem(read_text(ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let cert = read_text(cert)?;
                let key = read_text(key)?;
                Ok(c.identity(Identity::from_pem(cert, key)))
            }
            (None, None) => Ok(c),
            (Some(_), None) => Err(TlsError::Invalid(
                "a client certificate (cert) is given without its key (key)".into(),
            )),
            (None, Some(_)) => Err(TlsError::Invalid(
                "a client key (key) is given without its certificate (cert)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_an_identity_is_refused_and_missing_files_named() {
        let half = ClientTls {
            ca: None,
            cert: Some("a.crt".into()),
            key: None,
        };
        assert!(half
            .config()
            .unwrap_err()
            .to_string()
            .contains("without its key"));
        let missing = ClientTls {
            ca: Some("/nonexistent/ca.crt".into()),
            ..ClientTls::default()
        };
        assert!(missing.is_set());
        let e = missing.config().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
        assert!(!ClientTls::default().is_set());
    }
}
