//! Mutual TLS at a node's one port: a dev cluster with its own CAs forms
//! over TLS (its Raft traffic is mutual TLS between the nodes) and answers
//! a client holding the dev user's certificate; a plaintext client, a
//! client without a certificate and one whose certificate another CA
//! signed are refused at the handshake, the node logging a WARN that names
//! the remote address and the reason; a node certificate of the right CA
//! whose node is not a member is refused by the peer transport, and a Join
//! is taken only from the joining node's own certificate. Its own test
//! binary, so the global log subscriber is this test's alone.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};
use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_client::CanonClient;
use canon_proto::canon::raft::v1::raft_transport_client::RaftTransportClient;
use canon_proto::canon::raft::v1::RaftMessage;
use canon_tls::explain::Offered;
use canon_tls::issue::{self, Ca, CaKind};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

/// Where the subscriber writes: one buffer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();
    logs
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A channel to `endpoint` (https://…) trusting `ca` and presenting
/// `identity` (cert, key PEM), if any.
fn tls_channel(endpoint: &str, ca: &Path, identity: Option<(String, String)>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .connect_lazy()
}

async fn status(channel: Channel) -> Result<pb::ClusterStatusReply, tonic::Status> {
    CanonClient::new(channel)
        .cluster_status(pb::ClusterStatusRequest { local: false })
        .await
        .map(|r| r.into_inner())
}

/// Waits (a few seconds at most) for a log line holding every one of
/// `parts`.
async fn logged(logs: &Captured, parts: &[&str]) -> String {
    for _ in 0..50 {
        let text = logs.text();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no log line with {parts:?} in:\n{}", logs.text());
}

fn explained(endpoint: &str, s: &tonic::Status, offered: Offered) -> String {
    canon_tls::explain::client_error(endpoint, s, offered)
        .map(|x| x.message)
        .unwrap_or_else(|| format!("not explained: {s:?}"))
}

/// A Vote for a group that does not exist: a member gets an answer about
/// the group, never a refusal of its certificate.
fn vote() -> RaftMessage {
    RaftMessage {
        group: 999,
        payload: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_clusters_clients_and_member_nodes_get_in() {
    let logs = capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(5),
        shards: 2,
        signed_reads: false,
        ..DevOptions::new(tmp.path())
    })
    .await
    .expect("a TLS dev cluster forms (its peers speak mutual TLS)");
    let tls = cluster.tls.clone().expect("TLS material");
    let endpoint = cluster.endpoints[1].clone();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let at = endpoint.trim_start_matches("https://").to_string();
    let me = Some((read(&tls.client_cert), read(&tls.client_key)));

    // The dev user's certificate: every member reachable, over TLS.
    let view = status(tls_channel(&endpoint, &tls.peer_ca, me.clone()))
        .await
        .expect("the dev user is served");
    assert_eq!(view.members.len(), 3, "{view:?}");
    assert!(view.members.iter().all(|m| m.reachable), "{view:?}");

    // Plaintext: refused; the node says why, naming the remote address.
    let plain = Endpoint::from_shared(format!("http://{at}"))
        .unwrap()
        .connect_lazy();
    let e = status(plain).await.unwrap_err();
    let said = explained(&endpoint, &e, Offered::Plaintext);
    assert!(said.contains("requires TLS"), "{said}");
    let line = logged(
        &logs,
        &["TLS handshake from 127.0.0.1:", "did not speak TLS"],
    )
    .await;
    assert!(line.contains("WARN"), "{line}");

    // TLS without a client certificate.
    let e = status(tls_channel(&endpoint, &tls.peer_ca, None))
        .await
        .unwrap_err();
    let said = explained(&endpoint, &e, Offered::TlsWithoutCertificate);
    assert_eq!(
        said,
        format!(
            "TLS handshake with {at} failed: the node requires a client certificate signed by \
             its client CA (set cert and key in client.toml)"
        )
    );
    logged(&logs, &["presented no certificate"]).await;

    // A certificate from another client CA.
    let foreign = issue::new_ca(CaKind::Client, 1).unwrap();
    let foreign = Ca::from_pem(&foreign.cert_pem, &foreign.key_pem, Path::new("foreign")).unwrap();
    let mallory = foreign.client("mallory", 1).unwrap();
    let e = status(tls_channel(
        &endpoint,
        &tls.peer_ca,
        Some((mallory.cert_pem, mallory.key_pem)),
    ))
    .await
    .unwrap_err();
    let said = explained(&endpoint, &e, Offered::TlsWithCertificate);
    assert_eq!(
        said,
        format!(
            "TLS handshake with {at} failed: the node requires a client certificate signed by \
             its client CA, and refused this one"
        )
    );
    logged(
        &logs,
        &[
            "client's certificate was refused",
            "not signed by the expected CA",
        ],
    )
    .await;

    // A node certificate of the cluster's own peer CA, for a node that is
    // not a member: the handshake passes, the peer transport refuses it.
    let peers = Ca::load(&tmp.path().join("tls/peer-ca")).unwrap();
    let nine = peers
        .node(&cluster.cluster_id, 9, &["127.0.0.1".to_string()], 1)
        .unwrap();
    let nine_id = Some((nine.cert_pem.clone(), nine.key_pem.clone()));
    let mut raft = RaftTransportClient::new(tls_channel(&endpoint, &tls.peer_ca, nine_id.clone()));
    let e = raft.vote(vote()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("node 9 is not a member"),
        "{}",
        e.message()
    );
    logged(
        &logs,
        &["peer call from 127.0.0.1:", "node 9 is not a member"],
    )
    .await;
    // Nor may a client certificate speak Raft.
    let mut raft = RaftTransportClient::new(tls_channel(&endpoint, &tls.peer_ca, me.clone()));
    let e = raft.vote(vote()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A member's certificate is let through to the group (which does not
    // exist).
    let dir = tmp.path().join("tls");
    let two = Some((read(&dir.join("node-2.crt")), read(&dir.join("node-2.key"))));
    let mut raft = RaftTransportClient::new(tls_channel(&endpoint, &tls.peer_ca, two));
    if let Err(e) = raft.vote(vote()).await {
        assert_ne!(e.code(), Code::PermissionDenied, "{e:?}");
    }

    // Joining: only as the node the certificate names.
    let join = |node: u64| pb::JoinRequest {
        node,
        addr: "127.0.0.1:1".into(),
        token: String::new(),
    };
    let mut api = CanonClient::new(tls_channel(&endpoint, &tls.peer_ca, nine_id));
    let e = api.join(join(10)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("names node 9"), "{}", e.message());
    let mut api = CanonClient::new(tls_channel(&endpoint, &tls.peer_ca, me));
    let e = api.join(join(10)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("joins with its own certificate"),
        "{}",
        e.message()
    );

    cluster.shutdown().await;
}
