//! Handshake failures in words that say what to fix. rustls reports them
//! as alerts and certificate errors, wrapped by tokio-rustls in an
//! `io::Error` and by tonic and hyper in transport errors; both sides of a
//! refused connection get a sentence here: the node for its WARN line, the
//! client for its error.

use std::error::Error as StdError;

use rustls::{CertificateError, Error as RustlsError};

/// A failure the client found, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub message: String,
    /// The node refused this client's TLS for good (asking again, or
    /// another node of the same cluster, will not help).
    pub refused: bool,
}

/// `host:port` of an endpoint (`https://host:port` or `host:port`).
fn host_port(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.trim_end_matches('/')
}

/// The rustls error somewhere in `err`'s chain (itself, or inside an
/// `io::Error`).
fn find_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a RustlsError> {
    let mut next: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<RustlsError>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<RustlsError>()) {
                return Some(r);
            }
        }
        next = e.source();
    }
    None
}

/// Whether `err`'s chain shows a connection that ended before HTTP/2 began
/// (what a plaintext client sees of a TLS node).
fn closed_early(err: &(dyn StdError + 'static)) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted
            ) {
                return true;
            }
        }
        let text = e.to_string();
        // A TLS alert read as HTTP/2 is a protocol error.
        if text.contains("connection closed")
            || text.contains("h2 protocol error")
            || text.contains("frame with invalid size")
            || text.contains("connection error")
            || text.contains("broken pipe")
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// A rustls error in a few words.
pub fn rustls_reason(e: &RustlsError) -> String {
    match e {
        RustlsError::InvalidCertificate(c) => certificate_reason(c),
        other => other.to_string(),
    }
}

fn certificate_reason(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "it is not signed by the expected CA".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        other => format!("{other:?}"),
    }
}

/// Why a node refused a connection's handshake (`err` from the acceptor).
pub fn server_handshake(err: &std::io::Error) -> String {
    let Some(r) = find_rustls(err) else {
        return match err.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the client closed the connection during the handshake (it may not trust this \
                 node's certificate)"
                    .into()
            }
            _ => err.to_string(),
        };
    };
    match r {
        RustlsError::InvalidMessage(_)
        | RustlsError::InappropriateMessage { .. }
        | RustlsError::InappropriateHandshakeMessage { .. } => {
            "the client did not speak TLS (a plaintext client?); this node requires TLS with a \
             client certificate"
                .into()
        }
        RustlsError::NoCertificatesPresented => {
            "the client presented no certificate; this node requires one signed by its client \
             CA (clients) or its peer CA (nodes)"
                .into()
        }
        RustlsError::InvalidCertificate(c) => format!(
            "the client's certificate was refused: {} (this node trusts its client CA and its \
             peer CA)",
            certificate_reason(c)
        ),
        RustlsError::AlertReceived(a) => format!(
            "the client refused this node's certificate ({a:?}): give it the CA that signed \
             this node's certificate"
        ),
        other => other.to_string(),
    }
}

/// What a client offered the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Plaintext,
    TlsWithoutCertificate,
    TlsWithCertificate,
}

/// The sentence for a client certificate the node requires and did not
/// get (`offered` says whether one was sent).
fn certificate_required(offered: Offered) -> &'static str {
    match offered {
        Offered::TlsWithCertificate => {
            "the node requires a client certificate signed by its client CA, and refused this one"
        }
        _ => {
            "the node requires a client certificate signed by its client CA (set cert and key \
             in client.toml)"
        }
    }
}

/// A client's failure to reach `endpoint`, explained, if TLS (or its
/// absence) is what went wrong.
///
/// With TLS 1.3 a node refuses a client certificate after the client
/// thinks the handshake done, so the client may see only the connection
/// closing (hyper reports the closed connection rather than the alert
/// that came with it). A TLS connection that closes before its first
/// answer is therefore read as the certificate refused, but not counted
/// as a final refusal (`refused` false: another node is still tried).
pub fn client_error(
    endpoint: &str,
    err: &(dyn StdError + 'static),
    offered: Offered,
) -> Option<Explained> {
    let tls = offered != Offered::Plaintext;
    let at = host_port(endpoint);
    let failed = |why: String, refused: bool| {
        Some(Explained {
            message: format!("TLS handshake with {at} failed: {why}"),
            refused,
        })
    };
    if let Some(alert) = alert_received(err) {
        return match alert.as_str() {
            "CertificateRequired" => failed(certificate_required(offered).into(), true),
            "CertificateExpired" => failed(
                "the node refused the client certificate: it has expired".into(),
                true,
            ),
            "UnknownCA" | "BadCertificate" | "CertificateUnknown" | "AccessDenied"
            | "DecryptError" | "HandshakeFailure" => {
                failed(certificate_required(offered).into(), true)
            }
            other => failed(format!("the node sent the alert {other}"), false),
        };
    }
    let Some(r) = find_rustls(err) else {
        if !tls && closed_early(err) {
            return Some(Explained {
                message: format!(
                    "{at} closed the connection before answering: the node requires TLS (set \
                     ca, cert and key in client.toml's [tls] table, or use an https:// endpoint)"
                ),
                refused: false,
            });
        }
        if tls && closed_early(err) {
            return failed(certificate_required(offered).into(), false);
        }
        return None;
    };
    match r {
        RustlsError::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => failed(
            "the node's certificate is not signed by the CA this client trusts (client.toml: \
             ca)"
            .into(),
            true,
        ),
        RustlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => failed(
            format!("the node's certificate does not name the host it was reached at ({at})"),
            true,
        ),
        RustlsError::InvalidCertificate(c) => failed(
            format!("the node's certificate: {}", certificate_reason(c)),
            true,
        ),
        RustlsError::InvalidMessage(_) | RustlsError::InappropriateMessage { .. } => failed(
            "the node did not answer in TLS (it serves plaintext: use an http:// endpoint \
             without a [tls] table)"
                .into(),
            true,
        ),
        other => failed(other.to_string(), false),
    }
}

/// The name of the TLS alert the peer sent (`UnknownCA`), if `err`'s chain
/// holds one: as a rustls error, or as the text rustls gives it once a
/// connection is established ("received fatal alert: UnknownCA").
fn alert_received(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(RustlsError::AlertReceived(a)) = find_rustls(err) {
        return Some(format!("{a:?}"));
    }
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some((_, name)) = text.split_once("received fatal alert: ") {
            let name: String = name
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            return Some(name);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: RustlsError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn a_refused_client_certificate_reads_as_such_on_both_sides() {
        let e = io(RustlsError::AlertReceived(
            rustls::AlertDescription::UnknownCA,
        ));
        let x = client_error("https://127.0.0.1:7001", &e, Offered::TlsWithCertificate).unwrap();
        assert_eq!(
            x.message,
            "TLS handshake with 127.0.0.1:7001 failed: the node requires a client certificate \
             signed by its client CA, and refused this one"
        );
        assert!(x.refused);
        // As rustls reports it after the handshake: text only.
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: CertificateRequired",
        );
        let x = client_error("127.0.0.1:7001", &e, Offered::TlsWithoutCertificate).unwrap();
        assert!(
            x.message.ends_with("(set cert and key in client.toml)"),
            "{}",
            x.message
        );
        let e = io(RustlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let s = server_handshake(&e);
        assert!(s.contains("not signed by the expected CA"), "{s}");
    }

    #[test]
    fn plaintext_is_named_on_both_sides() {
        let e = io(RustlsError::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(server_handshake(&e).contains("did not speak TLS"));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let x = client_error("127.0.0.1:7001", &reset, Offered::Plaintext).unwrap();
        assert!(x.message.contains("requires TLS"), "{}", x.message);
        // Over TLS, a connection closed at once is a refused certificate,
        // though not a final one.
        let x = client_error("127.0.0.1:7001", &reset, Offered::TlsWithCertificate).unwrap();
        assert!(x.message.ends_with("and refused this one"), "{}", x.message);
        assert!(!x.refused);
    }
}
