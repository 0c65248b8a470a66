//! A dev cluster's own certificates, in `DATA_DIR/tls/`: a peer CA and a
//! client CA made on the first start and kept (so a client certificate
//! stays good across restarts), and, made afresh on every start, each
//! node's certificate (127.0.0.1 and localhost, `canon://CLUSTER/node/ID`)
//! and the dev user's client certificate, which the generated
//! `client.toml` points at.

use std::path::{Path, PathBuf};

use canon_raft::NodeId;
use canon_tls::files::{write_all, Output};
use canon_tls::issue::{self, Ca, CaKind};
use canon_tls::NodeTlsFiles;

use canon_tls::TlsError;

/// The hosts a dev node's certificate names.
const DEV_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// A dev cluster's TLS material.
#[derive(Debug, Clone)]
pub struct DevTls {
    dir: PathBuf,
    cluster: String,
    /// The peer CA's certificate: what clients trust nodes by.
    pub peer_ca: PathBuf,
    pub client_ca: PathBuf,
    /// The dev user's client certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The CA of `kind` in `dir`, made if it is not there yet.
fn ca(dir: &Path, kind: CaKind) -> Result<Ca, TlsError> {
    if !dir.join(issue::CA_CERT).exists() {
        let made = issue::new_ca(kind, issue::CA_DAYS)?;
        write_all(
            &[
                Output {
                    path: dir.join(issue::CA_CERT),
                    contents: made.cert_pem,
                    secret: false,
                },
                Output {
                    path: dir.join(issue::CA_KEY),
                    contents: made.key_pem,
                    secret: true,
                },
            ],
            false,
        )?;
    }
    Ca::load(dir)
}

impl DevTls {
    /// The CAs under `data_dir/tls` (made the first time) and a fresh
    /// client certificate for `user`.
    pub fn prepare(data_dir: &Path, cluster: &str, user: &str) -> Result<DevTls, TlsError> {
        canon_tls::install_crypto_provider();
        let dir = data_dir.join("tls");
        let peer_dir = dir.join("peer-ca");
        let client_dir = dir.join("client-ca");
        ca(&peer_dir, CaKind::Peer)?;
        let clients = ca(&client_dir, CaKind::Client)?;
        let stem = format!("client-{user}");
        let cert = clients.client(user, issue::LEAF_DAYS)?;
        write_all(&cert.outputs(&dir, &stem), true)?;
        Ok(DevTls {
            peer_ca: peer_dir.join(issue::CA_CERT),
            client_ca: client_dir.join(issue::CA_CERT),
            client_cert: dir.join(format!("{stem}.crt")),
            client_key: dir.join(format!("{stem}.key")),
            cluster: cluster.to_string(),
            dir,
        })
    }

    /// A fresh certificate for node `id`, and the files it serves with.
    pub fn node(&self, id: NodeId) -> Result<NodeTlsFiles, TlsError> {
        let peers = Ca::load(&self.dir.join("peer-ca"))?;
        let hosts: Vec<String> = DEV_HOSTS.iter().map(|h| h.to_string()).collect();
        let stem = format!("node-{id}");
        let cert = peers.node(&self.cluster, id, &hosts, issue::LEAF_DAYS)?;
        write_all(&cert.outputs(&self.dir, &stem), true)?;
        Ok(NodeTlsFiles {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
            peer_ca: self.peer_ca.clone(),
            client_ca: self.client_ca.clone(),
        })
    }
}
