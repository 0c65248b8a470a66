//! The etcd side of `--compare-etcd`: a 3-member etcd cluster from Debian's
//! `etcd-server` package (3.4) on loopback, with the same heartbeat and
//! election timeout Canon's nodes are given, and the two calls the
//! comparison makes of it over its gRPC API (`KV/Put`,
//! `Maintenance/Status`). The messages are written out here with prost's
//! derive, field numbers from etcd's `rpc.proto`: two calls do not justify
//! an etcd client crate.
//!
//! etcd fsyncs its write-ahead log before acknowledging by default; the
//! members are started without any flag that relaxes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

/// Where Debian puts the server.
const ETCD_PATHS: [&str; 2] = ["/usr/bin/etcd", "/usr/local/bin/etcd"];

/// etcd's `PutRequest` (the fields the bench sets).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// etcd's `ResponseHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int64, tag = "3")]
    pub revision: i64,
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// etcd's `PutResponse` (its header; the previous value is not asked for).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// etcd's `StatusRequest` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

/// etcd's `StatusResponse` (who answers, and whom it follows).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(uint64, tag = "4")]
    pub leader: u64,
}

/// One member's client connection.
#[derive(Clone)]
pub struct EtcdClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl EtcdClient {
    /// A lazily connecting client of `url` (`http://127.0.0.1:PORT`).
    pub fn new(url: &str) -> Result<Self, String> {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url}: {e}"))?
            .connect_timeout(Duration::from_millis(200))
            .connect_lazy();
        Ok(EtcdClient {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// `Put(key, value)`; answers once the write is committed (and fsynced).
    pub async fn put(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut req = tonic::Request::new(PutRequest { key, value });
        req.set_timeout(timeout);
        self.grpc.ready().await.map_err(|e| e.to_string())?;
        let path = PathAndQuery::from_static("/etcdserverpb.KV/Put");
        let codec = ProstCodec::<PutRequest, PutResponse>::default();
        self.grpc
            .unary(req, path, codec)
            .await
            .map(drop)
            .map_err(|s| s.message().to_string())
    }

    /// The member's own id and the leader it knows (0: none).
    pub async fn status(&mut self, timeout: Duration) -> Result<(u64, u64), String> {
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(timeout);
        self.grpc.ready().await.map_err(|e| e.to_string())?;
        let path = PathAndQuery::from_static("/etcdserverpb.Maintenance/Status");
        let codec = ProstCodec::<StatusRequest, StatusResponse>::default();
        let reply = self
            .grpc
            .unary(req, path, codec)
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let me = reply.header.map_or(0, |h| h.member_id);
        Ok((me, reply.leader))
    }
}

/// The index of the member of `urls` (`None`: not asked) that the members
/// answering `Status` within `timeout` call leader, if one does.
pub async fn leader_among(urls: &[Option<&str>], timeout: Duration) -> Option<usize> {
    let mut ids = vec![0u64; urls.len()];
    let mut leader = 0u64;
    for (i, url) in urls.iter().enumerate() {
        let Some(Ok(mut client)) = url.map(EtcdClient::new) else {
            continue;
        };
        if let Ok((me, l)) = client.status(timeout).await {
            ids[i] = me;
            leader = leader.max(l);
        }
    }
    (leader != 0)
        .then(|| ids.iter().position(|id| *id == leader))
        .flatten()
}

/// One etcd member: its flags, and its process while it runs.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// A 3-member etcd on loopback.
pub struct EtcdCluster {
    binary: PathBuf,
    members: Vec<Member>,
    initial_cluster: String,
    heartbeat_ms: u64,
    election_ms: u64,
}

impl EtcdCluster {
    /// Debian's etcd, or how to get it.
    pub fn find_binary() -> Result<PathBuf, String> {
        ETCD_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                "etcd is not installed: `apt-get install etcd-server` (Debian's etcd 3.4) \
                 puts it at /usr/bin/etcd"
                    .to_string()
            })
    }

    /// Starts `ports.len()` members (each `(client, peer)` ports on
    /// 127.0.0.1) with data under `base`. etcd draws its election timeout
    /// from `[election_ms, 2 × election_ms)`, as Canon draws from
    /// `[election_min, election_max)`.
    pub fn start(
        binary: PathBuf,
        base: &Path,
        ports: &[(u16, u16)],
        heartbeat_ms: u64,
        election_ms: u64,
    ) -> Result<EtcdCluster, String> {
        let members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| Member {
                name: format!("e{}", i + 1),
                client_url: format!("http://127.0.0.1:{client}"),
                peer_url: format!("http://127.0.0.1:{peer}"),
                dir: base.join(format!("etcd-{}", i + 1)),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = EtcdCluster {
            binary,
            members,
            initial_cluster,
            heartbeat_ms,
            election_ms,
        };
        for i in 0..c.members.len() {
            c.launch(i)?;
        }
        Ok(c)
    }

    fn launch(&mut self, i: usize) -> Result<(), String> {
        let m = &self.members[i];
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.dir)
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "canon-bench"])
            .args(["--heartbeat-interval", &self.heartbeat_ms.to_string()])
            .args(["--election-timeout", &self.election_ms.to_string()])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.binary.display()))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// The running members' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| Some(m.child.as_ref()?.id()))
            .collect()
    }

    /// Client URLs, by member index.
    pub fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// kill -9 member `i`.
    pub fn kill(&mut self, i: usize) -> Result<(), String> {
        let mut child = self.members[i]
            .child
            .take()
            .ok_or_else(|| format!("etcd member {i} is not running"))?;
        // `Child::kill` is SIGKILL on Unix.
        child
            .kill()
            .map_err(|e| format!("kill etcd member {i}: {e}"))?;
        child.wait().map(drop).map_err(|e| e.to_string())
    }

    /// Starts member `i` again on its data (the cluster flags are ignored
    /// once the data directory holds a member).
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.launch(i)
    }

    /// The index of the member leading, as the members see it.
    pub async fn leader(&self, within: Duration) -> Result<usize, String> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(i) = self.ask_leader().await {
                return Ok(i);
            }
            if started.elapsed() >= within {
                return Err(format!("etcd elected no leader within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ask_leader(&self) -> Option<usize> {
        let live: Vec<Option<&str>> = self
            .members
            .iter()
            .map(|m| m.child.as_ref().map(|_| m.client_url.as_str()))
            .collect();
        leader_among(&live, Duration::from_millis(200)).await
    }

    /// Stops every member.
    pub fn stop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // Already gone is fine: nothing to stop.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
