//! Making certificates: the two CAs (peer and client), node certificates
//! (server and client use, the node URI, the hosts it is reached at) and
//! client certificates (client use, the user's name). Keys are ECDSA P-256.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::files::{read_text, Output};
use crate::identity::node_uri;
use crate::TlsError;

/// A CA's certificate file in its directory.
pub const CA_CERT: &str = "ca.crt";
/// A CA's key file in its directory.
pub const CA_KEY: &str = "ca.key";
/// How long a CA is valid by default.
pub const CA_DAYS: u32 = 3650;
/// How long a node or client certificate is valid by default.
pub const LEAF_DAYS: u32 = 365;

/// Which side a CA vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    /// Signs node certificates: the only CA nodes trust for each other.
    Peer,
    /// Signs the certificates of users of the CLI and SDK.
    Client,
}

impl CaKind {
    /// The CA's common name, which also tells its kind when it is loaded.
    fn common_name(self) -> &'static str {
        match self {
            CaKind::Peer => "Canon peer CA",
            CaKind::Client => "Canon client CA",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CaKind::Peer => "peer",
            CaKind::Client => "client",
        }
    }
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// The two files `stem.crt` and `stem.key` in `dir`.
    pub fn outputs(&self, dir: &Path, stem: &str) -> Vec<Output> {
        vec![
            Output {
                path: dir.join(format!("{stem}.crt")),
                contents: self.cert_pem.clone(),
                secret: false,
            },
            Output {
                path: dir.join(format!("{stem}.key")),
                contents: self.key_pem.clone(),
                secret: true,
            },
        ]
    }
}

fn rcgen_err(what: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |e| TlsError::Invalid(format!("cannot make {what}: {e}"))
}

/// Parameters valid from an hour ago (clocks differ) for `days`, with a
/// random serial number.
fn params(common_name: &str, days: u32) -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Canon");
    p.distinguished_name = dn;
    let now = SystemTime::now();
    p.not_before = (now - Duration::from_secs(3600)).into();
    p.not_after = (now + Duration::from_secs(u64::from(days.max(1)) * 86_400)).into();
    let mut serial = [0u8; 16];
    crate::provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| TlsError::Invalid("no randomness for a serial number".into()))?;
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(p)
}

/// Whether `h` is a DNS name: dot-separated labels of letters, digits and
/// inner hyphens.
fn dns_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A new self-signed CA of `kind`, valid for `days`.
pub fn new_ca(kind: CaKind, days: u32) -> Result<Issued, TlsError> {
    let mut p = params(kind.common_name(), days)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(rcgen_err("a key"))?;
    let cert = p.self_signed(&key).map_err(rcgen_err("the CA"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A CA loaded to sign with.
pub struct Ca {
    pub kind: CaKind,
    issuer: Issuer<'static, KeyPair>,
    /// Where it was read from (for messages).
    pub dir: PathBuf,
}

impl Ca {
    /// The CA in `dir` (`ca.crt`, `ca.key`, as `canon cert create-ca`
    /// writes them).
    pub fn load(dir: &Path) -> Result<Ca, TlsError> {
        let cert = read_text(&dir.join(CA_CERT))?;
        let key_text = read_text(&dir.join(CA_KEY))?;
        Ca::from_pem(&cert, &key_text, dir)
    }

    /// A CA from its certificate and key (PEM); `dir` names it in messages.
    pub fn from_pem(cert: &str, key: &str, dir: &Path) -> Result<Ca, TlsError> {
        let shown = dir.display();
        let der: rustls_pki_types::CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
                .map_err(|e| TlsError::Invalid(format!("{shown}/{CA_CERT}: bad PEM: {e}")))?;
        let info = crate::identity::CertInfo::from_der(&der)
            .map_err(|e| TlsError::Invalid(format!("{shown}/{CA_CERT}: {e}")))?;
        let kind = [CaKind::Peer, CaKind::Client]
            .into_iter()
            .find(|k| k.common_name() == info.subject)
            .filter(|_| info.is_ca)
            .ok_or_else(|| {
                TlsError::Invalid(format!(
                    "{shown}/{CA_CERT} is not a Canon CA (its subject is {:?}; make one with \
                     `canon cert create-ca`)",
                    info.subject
                ))
            })?;
        let key = KeyPair::from_pem(key)
            .map_err(|e| TlsError::Invalid(format!("{shown}/{CA_KEY}: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| TlsError::Invalid(format!("{shown}/{CA_CERT}: {e}")))?;
        Ok(Ca {
            kind,
            issuer,
            dir: dir.to_path_buf(),
        })
    }

    fn require(&self, kind: CaKind, what: &str) -> Result<(), TlsError> {
        if self.kind == kind {
            return Ok(());
        }
        Err(TlsError::Invalid(format!(
            "{} holds the {} CA; {what} certificates are signed by the {} CA",
            self.dir.display(),
            self.kind.name(),
            kind.name()
        )))
    }

    /// A certificate for node `id` of `cluster`, reached at `hosts` (DNS
    /// names or IP addresses): it serves peers and clients and dials peers.
    pub fn node(
        &self,
        cluster: &str,
        id: u64,
        hosts: &[String],
        days: u32,
    ) -> Result<Issued, TlsError> {
        self.require(CaKind::Peer, "node")?;
        if id == 0 {
            return Err(TlsError::Invalid("node id 0 is reserved".into()));
        }
        if hosts.is_empty() {
            return Err(TlsError::Invalid(
                "name at least one host (DNS name or IP address) the node is reached at".into(),
            ));
        }
        let mut p = params(&format!("canon node {id}"), days)?;
        for h in hosts {
            let not_a_host =
                || TlsError::Invalid(format!("{h:?} is neither a DNS name nor an IP address"));
            p.subject_alt_names.push(match h.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) if dns_name(h) => {
                    SanType::DnsName(h.as_str().try_into().map_err(|_| not_a_host())?)
                }
                Err(_) => return Err(not_a_host()),
            });
        }
        let uri = node_uri(cluster, id);
        p.subject_alt_names.push(SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(|_| TlsError::Invalid(format!("bad cluster id {cluster:?}")))?,
        ));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(p, "the node certificate")
    }

    /// A client certificate for `user`.
    pub fn client(&self, user: &str, days: u32) -> Result<Issued, TlsError> {
        self.require(CaKind::Client, "client")?;
        if user.is_empty() {
            return Err(TlsError::Invalid(
                "a client certificate needs a user name".into(),
            ));
        }
        self.client_with(params(user, days)?)
    }

    /// A client certificate made from `p` (its subject and validity).
    fn client_with(&self, mut p: CertificateParams) -> Result<Issued, TlsError> {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p, "the client certificate")
    }

    /// [`Ca::client`] for `user`, valid from `from` until `until` (tests
    /// that need a certificate expired or not yet valid).
    #[cfg(test)]
    pub(crate) fn client_valid(
        &self,
        user: &str,
        from: SystemTime,
        until: SystemTime,
    ) -> Result<Issued, TlsError> {
        let mut p = params(user, 1)?;
        p.not_before = from.into();
        p.not_after = until.into();
        self.client_with(p)
    }

    fn sign(&self, mut p: CertificateParams, what: &str) -> Result<Issued, TlsError> {
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(rcgen_err("a key"))?;
        let cert = p.signed_by(&key, &self.issuer).map_err(rcgen_err(what))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CertInfo;

    fn der(pem: &str) -> Vec<u8> {
        let d: rustls_pki_types::CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
        d.to_vec()
    }

    fn ca(kind: CaKind) -> Ca {
        let issued = new_ca(kind, 10).unwrap();
        Ca::from_pem(&issued.cert_pem, &issued.key_pem, Path::new("ca-dir")).unwrap()
    }

    #[test]
    fn a_node_certificate_names_its_node_and_hosts() {
        let peer = ca(CaKind::Peer);
        let hosts = vec!["127.0.0.1".to_string(), "node-2.canon".to_string()];
        let n = peer.node("prod", 2, &hosts, 30).unwrap();
        let info = CertInfo::from_der(&der(&n.cert_pem)).unwrap();
        assert_eq!(info.node(), Some(("prod".into(), 2)));
        assert!(info.names_host("127.0.0.1"));
        assert!(info.names_host("NODE-2.canon"));
        assert!(!info.names_host("10.0.0.1"));
        assert_eq!(info.issuer, "Canon peer CA");
        assert!(!info.is_ca);
        let days = (info.not_after - info.not_before) / 86_400;
        assert_eq!(days, 30, "an hour of slack before, 30 days after");
    }

    #[test]
    fn each_ca_signs_only_its_own_kind() {
        let peer = ca(CaKind::Peer);
        let client = ca(CaKind::Client);
        let e = peer.client("alice", 1).unwrap_err().to_string();
        assert!(e.contains("ca-dir holds the peer CA"), "{e}");
        let e = client
            .node("prod", 1, &["127.0.0.1".into()], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signed by the peer CA"), "{e}");
        let alice = client.client("alice", 1).unwrap();
        let info = CertInfo::from_der(&der(&alice.cert_pem)).unwrap();
        assert_eq!(info.subject, "alice");
        assert_eq!(info.node(), None);
        assert!(peer.node("prod", 0, &["h".into()], 1).is_err());
        assert!(peer.node("prod", 1, &[], 1).is_err());
        assert!(peer.node("prod", 1, &["not a host".into()], 1).is_err());
    }

    #[test]
    fn a_leaf_is_not_a_ca() {
        let peer = ca(CaKind::Peer);
        let n = peer.node("prod", 1, &["127.0.0.1".into()], 1).unwrap();
        let e = Ca::from_pem(&n.cert_pem, &n.key_pem, Path::new("d"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a Canon CA"), "{e}");
    }
}
