//! What a certificate says about its holder, and who a connection's peer
//! is. A node's certificate carries the URI `canon://CLUSTER/node/ID` as a
//! subject alternative name; that URI, on a certificate the peer CA signed,
//! is the only thing that makes a connection a node of a cluster.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

use crate::TlsError;

/// The URI scheme of Canon identities in certificates.
const SCHEME: &str = "canon://";

/// The URI a node certificate carries: `canon://CLUSTER/node/ID`.
pub fn node_uri(cluster: &str, id: u64) -> String {
    format!("{SCHEME}{cluster}/node/{id}")
}

/// The cluster and node id of a `canon://CLUSTER/node/ID` URI.
pub fn parse_node_uri(uri: &str) -> Option<(String, u64)> {
    let rest = uri.strip_prefix(SCHEME)?;
    let (cluster, id) = rest.split_once("/node/")?;
    if cluster.is_empty() || cluster.contains('/') {
        return None;
    }
    let id: u64 = id.parse().ok()?;
    (id > 0).then(|| (cluster.to_string(), id))
}

/// Who is at the other end of a connection to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// The node serves without TLS: nobody is identified.
    Plain,
    /// A certificate the peer CA signed, naming node `id` of `cluster`.
    Node {
        cluster: String,
        id: u64,
        fingerprint: String,
    },
    /// A certificate the client CA signed (a user of the CLI or SDK).
    Client { name: String, fingerprint: String },
    /// A certificate the peer CA signed that names no node (no
    /// `canon://…/node/ID` URI): trusted by no service.
    Unnamed {
        subject: String,
        fingerprint: String,
    },
}

impl PeerIdentity {
    /// The node id, if this is node `id` of `cluster`.
    pub fn node_of(&self, cluster: &str) -> Option<u64> {
        match self {
            PeerIdentity::Node { cluster: c, id, .. } if c == cluster => Some(*id),
            _ => None,
        }
    }

    /// How to name this peer in a log line or a refusal.
    pub fn describe(&self) -> String {
        match self {
            PeerIdentity::Plain => "a plaintext connection".into(),
            PeerIdentity::Node { cluster, id, .. } => {
                format!("the certificate of node {id} of cluster {cluster:?}")
            }
            PeerIdentity::Client { name, .. } => format!("the client certificate of {name:?}"),
            PeerIdentity::Unnamed { subject, .. } => {
                format!("a peer-CA certificate naming no node ({subject})")
            }
        }
    }

    /// The SHA-256 of the certificate (hex), if there is one.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            PeerIdentity::Plain => None,
            PeerIdentity::Node { fingerprint, .. }
            | PeerIdentity::Client { fingerprint, .. }
            | PeerIdentity::Unnamed { fingerprint, .. } => Some(fingerprint),
        }
    }
}

/// What `canon cert list` and the node's checks read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name (or the whole subject if it has none).
    pub subject: String,
    pub issuer: String,
    pub is_ca: bool,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    /// SHA-256 of the DER (hex).
    pub fingerprint: String,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Invalid(format!("not an X.509 certificate: {e}")))?;
        let name = |n: &x509_parser::x509::X509Name<'_>| {
            n.iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| n.to_string())
        };
        let mut info = CertInfo {
            subject: name(cert.subject()),
            issuer: name(cert.issuer()),
            is_ca: cert.is_ca(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            uris: Vec::new(),
            fingerprint: fingerprint(der),
        };
        let sans = cert
            .subject_alternative_name()
            .map_err(|e| TlsError::Invalid(format!("bad subject alternative names: {e}")))?;
        for san in sans.iter().flat_map(|s| s.value.general_names.iter()) {
            match san {
                GeneralName::DNSName(d) => info.dns_names.push((*d).to_string()),
                GeneralName::URI(u) => info.uris.push((*u).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        info.ips.push(ip);
                    }
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// The node this certificate names (`canon://CLUSTER/node/ID`), if any.
    pub fn node(&self) -> Option<(String, u64)> {
        self.uris.iter().find_map(|u| parse_node_uri(u))
    }

    /// Whether `host` (a name or an IP address) is among its names.
    pub fn names_host(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip),
            Err(_) => self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(host)),
        }
    }
}

/// SHA-256 of a DER certificate, hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_uris_round_trip_and_reject_lookalikes() {
        assert_eq!(node_uri("canon", 3), "canon://canon/node/3");
        assert_eq!(
            parse_node_uri("canon://prod-1/node/12"),
            Some(("prod-1".into(), 12))
        );
        for bad in [
            "canon://prod/node/0",
            "canon://prod/node/x",
            "canon:///node/1",
            "https://prod/node/1",
            "canon://a/b/node/1",
            "canon://prod/user/1",
        ] {
            assert_eq!(parse_node_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_node_identity_counts_only_in_its_own_cluster() {
        let n = PeerIdentity::Node {
            cluster: "prod".into(),
            id: 2,
            fingerprint: "ab".into(),
        };
        assert_eq!(n.node_of("prod"), Some(2));
        assert_eq!(n.node_of("staging"), None);
        let c = PeerIdentity::Client {
            name: "alice".into(),
            fingerprint: "cd".into(),
        };
        assert_eq!(c.node_of("prod"), None);
        assert_eq!(c.fingerprint(), Some("cd"));
        assert_eq!(PeerIdentity::Plain.fingerprint(), None);
    }
}
