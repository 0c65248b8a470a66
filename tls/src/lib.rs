//! Canon's mutual TLS, shared by the node (`canond`, `canon dev`) and the
//! client (SDK, `canon`): one crate so that both speak of certificates,
//! identities and handshake failures in the same words, and so that the
//! client library reaches TLS without depending on the node.
//!
//! - [`identity`]: what a certificate says — the node URI
//!   `canon://CLUSTER/node/ID`, subjects, expiry, fingerprints — and who a
//!   connection's peer is ([`PeerIdentity`]).
//! - [`issue`]: making CAs, node and client certificates (rcgen), as
//!   `canon cert` and `canon dev` do; [`files`]: writing them (keys 0600,
//!   nothing overwritten unasked) and reading them back.
//! - [`server`]: a node's TLS (its acceptor, the peer-CA check that tells a
//!   node from a client, the client settings it dials peers with) and the
//!   connection stream its gRPC server serves.
//! - [`client`]: the client's TLS settings (`client.toml`'s `ca`, `cert`,
//!   `key`).
//! - [`explain`]: rustls and tonic failures turned into sentences that say
//!   what to fix.
//!
//! Crypto is aws-lc-rs throughout (the AWS SDK already brings it); every
//! process calls [`install_crypto_provider`] before its first handshake.

pub mod client;
pub mod explain;
pub mod files;
pub mod identity;
pub mod issue;
pub mod server;

pub use client::ClientTls;
pub use identity::{node_uri, CertInfo, PeerIdentity};
pub use server::{ConnInfo, NodeTls, NodeTlsFiles};

use std::sync::Arc;

/// The crypto provider every TLS configuration of Canon is built with.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process's default rustls provider, so that
/// code that asks rustls for "the" provider (tonic's client connector) gets
/// it rather than guessing. Idempotent: a second call, or a provider
/// already installed by someone else, changes nothing.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only if a provider is already installed: then that one stays.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Why TLS material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{path} exists; not overwriting it (give --overwrite to replace it)")]
    Exists { path: String },
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    #[test]
    fn installing_the_provider_twice_is_harmless() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
