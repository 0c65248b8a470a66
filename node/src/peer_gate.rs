//! Who may call what, by the certificate a connection presented (mutual
//! TLS; with TLS off every connection is [`PeerIdentity::Plain`] and
//! passes). Decided per request, against the membership this node knows
//! at that moment, so a node removed from the cluster is refused from its
//! next call on, whatever connection it holds.
//!
//! - The peer transport (Raft): only a node certificate of this cluster
//!   (peer CA, `canon://CLUSTER/node/ID`) whose node is a member of the
//!   meta group — or any node of this cluster while this node belongs to
//!   none yet (it is new, waiting to be created or joined).
//! - The client API: a client certificate (client CA), or a node
//!   certificate of this cluster (nodes ask each other for status, and a
//!   new node asks to join). Join itself checks that the certificate
//!   names the joining node ([`check_join`]). A node that serves no client
//!   port (`--no-client-port`: clients come over its SQS intake queue)
//!   takes node certificates only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canon_raft::{NodeId, RaftNode, META_GROUP};
use canon_tls::{ConnInfo, NodeTls, PeerIdentity};
use tonic::{Request, Status};

/// At most one WARN line per refused peer in this window (a removed node
/// keeps knocking several times a second).
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Remembers when each refused peer was last logged.
#[derive(Default)]
struct Quiet(Mutex<HashMap<String, Instant>>);

impl Quiet {
    /// True if `who` was not logged within [`WARN_EVERY`] (and notes it).
    fn should_log(&self, who: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get(who) {
            Some(at) if now.duration_since(*at) < WARN_EVERY => false,
            _ => {
                seen.insert(who.to_string(), now);
                true
            }
        }
    }
}

/// The node ids the meta group lists (voters and learners), as this node
/// knows them; empty while this node belongs to no cluster yet.
fn known_members(node: &RaftNode) -> Vec<NodeId> {
    node.membership(META_GROUP)
        .map(|m| m.addrs.keys().copied().collect())
        .unwrap_or_default()
}

/// Whether `peer` may use the peer transport of `node` (of `cluster`).
pub fn check_peer(
    peer: &PeerIdentity,
    cluster: &str,
    members: &[NodeId],
) -> Result<NodeId, String> {
    let Some(id) = peer.node_of(cluster) else {
        return Err(format!(
            "the peer transport takes only node certificates of cluster {cluster:?} signed by \
             the peer CA; this connection presented {}",
            peer.describe()
        ));
    };
    if members.is_empty() || members.contains(&id) {
        Ok(id)
    } else {
        Err(format!(
            "node {id} is not a member of cluster {cluster:?} (members: {members:?}); its peer \
             calls are refused"
        ))
    }
}

/// Whether `peer` may use the client API of a node of `cluster` that
/// takes `clients` (else only its peers).
pub fn check_client(peer: &PeerIdentity, cluster: &str, clients: bool) -> Result<(), String> {
    match peer {
        PeerIdentity::Plain | PeerIdentity::Client { .. } if !clients => Err(format!(
            "this node serves no client port: cluster {cluster:?} takes commands and reads over \
             its SQS intake queue (client.toml transport = \"sqs\")"
        )),
        PeerIdentity::Plain | PeerIdentity::Client { .. } => Ok(()),
        PeerIdentity::Node { .. } if peer.node_of(cluster).is_some() => Ok(()),
        other => Err(format!(
            "the client API takes client certificates of the client CA and node certificates \
             of cluster {cluster:?}; this connection presented {}",
            other.describe()
        )),
    }
}

/// Whether the connection of a Join call may add node `node` reached at
/// `addr`: with TLS, only that node's own certificate may (it names the
/// node and the host peers will dial).
pub fn check_join(
    conn: Option<&ConnInfo>,
    cluster: Option<&str>,
    node: NodeId,
    addr: &str,
) -> Result<(), Status> {
    let (Some(conn), Some(cluster)) = (conn, cluster) else {
        return Ok(());
    };
    let refuse = |why: String| {
        tracing::warn!(peer = %conn.remote_text(), node, %addr, "join refused: {why}");
        Err(Status::permission_denied(format!("join refused: {why}")))
    };
    match conn.peer.node_of(cluster) {
        Some(id) if id == node => Ok(()),
        Some(id) => refuse(format!(
            "the certificate names node {id}, and the join asks for node {node}"
        )),
        None => refuse(format!(
            "a node joins with its own certificate (node {node} of cluster {cluster:?}, signed \
             by the peer CA); this connection presented {}",
            conn.peer.describe()
        )),
    }
}

/// The interceptors of a node's two services.
#[derive(Clone)]
pub struct Gates {
    node: RaftNode,
    tls: Option<Arc<NodeTls>>,
    quiet: Arc<Quiet>,
    /// The client API takes clients (not only peers).
    clients: bool,
}

impl Gates {
    pub fn new(node: RaftNode, tls: Option<Arc<NodeTls>>) -> Gates {
        Gates {
            node,
            tls,
            quiet: Arc::new(Quiet::default()),
            clients: true,
        }
    }

    /// Gates whose client API takes peers only (`--no-client-port`; TLS
    /// tells them apart).
    pub fn peers_only(self) -> Gates {
        Gates {
            clients: false,
            ..self
        }
    }

    /// The cluster certificates must name, if the node serves TLS.
    pub fn cluster(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cluster.as_str())
    }

    fn refuse(&self, conn: &ConnInfo, service: &str, why: String) -> Status {
        let remote = conn.remote_text();
        if self.quiet.should_log(&remote) {
            tracing::warn!(peer = %remote, "{service} call from {remote} refused: {why}");
        }
        Status::permission_denied(why)
    }

    /// The peer transport's interceptor.
    pub fn peer(&self, r: Request<()>) -> Result<Request<()>, Status> {
        let (Some(tls), Some(conn)) = (&self.tls, ConnInfo::of(&r)) else {
            return Ok(r);
        };
        match check_peer(&conn.peer, &tls.cluster, &known_members(&self.node)) {
            Ok(_) => Ok(r),
            Err(why) => Err(self.refuse(conn, "peer", why)),
        }
    }

    /// The client API's check of the certificate.
    pub fn client(&self, r: &Request<()>) -> Result<(), Status> {
        let (Some(tls), Some(conn)) = (&self.tls, ConnInfo::of(r)) else {
            return Ok(());
        };
        check_client(&conn.peer, &tls.cluster, self.clients)
            .map_err(|why| self.refuse(conn, "API", why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cluster: &str, id: u64) -> PeerIdentity {
        PeerIdentity::Node {
            cluster: cluster.into(),
            id,
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn only_member_nodes_of_this_cluster_use_the_peer_transport() {
        assert_eq!(check_peer(&node("prod", 2), "prod", &[1, 2, 3]), Ok(2));
        let e = check_peer(&node("prod", 9), "prod", &[1, 2, 3]).unwrap_err();
        assert!(e.contains("node 9 is not a member"), "{e}");
        let e = check_peer(&node("staging", 2), "prod", &[1, 2, 3]).unwrap_err();
        assert!(e.contains("node 2 of cluster \"staging\""), "{e}");
        let alice = PeerIdentity::Client {
            name: "alice".into(),
            fingerprint: "f".into(),
        };
        let e = check_peer(&alice, "prod", &[1]).unwrap_err();
        assert!(e.contains("client certificate of \"alice\""), "{e}");
        // A node that belongs to no cluster yet hears from any node of its
        // cluster (the one creating the cluster, or the one adding it).
        assert_eq!(check_peer(&node("prod", 7), "prod", &[]), Ok(7));
    }

    #[test]
    fn the_client_api_takes_clients_and_this_clusters_nodes() {
        let alice = PeerIdentity::Client {
            name: "alice".into(),
            fingerprint: "f".into(),
        };
        assert!(check_client(&alice, "prod", true).is_ok());
        assert!(check_client(&node("prod", 4), "prod", true).is_ok());
        assert!(check_client(&node("staging", 4), "prod", true).is_err());
        let unnamed = PeerIdentity::Unnamed {
            subject: "x".into(),
            fingerprint: "f".into(),
        };
        assert!(check_client(&unnamed, "prod", true).is_err());
        // No client port: peers still ask each other; clients go over SQS.
        assert!(check_client(&node("prod", 4), "prod", false).is_ok());
        let e = check_client(&alice, "prod", false).unwrap_err();
        assert!(e.contains("serves no client port"), "{e}");
    }

    #[test]
    fn a_node_joins_only_as_itself() {
        let conn = |peer| ConnInfo {
            remote: None,
            peer: Arc::new(peer),
        };
        let four = conn(node("prod", 4));
        assert!(check_join(Some(&four), Some("prod"), 4, "10.0.0.4:7700").is_ok());
        let e = check_join(Some(&four), Some("prod"), 5, "10.0.0.5:7700").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("names node 4"), "{}", e.message());
        let alice = conn(PeerIdentity::Client {
            name: "alice".into(),
            fingerprint: "f".into(),
        });
        assert!(check_join(Some(&alice), Some("prod"), 4, "h:1").is_err());
        // Without TLS there is no certificate to check.
        assert!(check_join(None, None, 4, "h:1").is_ok());
    }
}
