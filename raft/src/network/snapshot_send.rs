//! Sending a snapshot so that its install never races the RPC's timeout.
//!
//! openraft 0.9's chunked transfer answers the last chunk only once the
//! follower has installed the snapshot: at 100,000 processes that is about
//! 11 s of decoding, against a chunk timeout of 2–5 s, so the leader gave
//! up on a snapshot that was being installed and sent it all again. Here
//! the leader ([`GroupClient`]'s `full_snapshot`) sends every chunk but
//! the last as openraft does, one InstallSnapshot call each; the last goes
//! as a [`SnapshotCall::LastChunk`]: the follower ([`BackgroundInstalls`])
//! starts the install in the background and answers at once (or with the
//! outcome, if it came within a short wait); the leader then asks
//! [`SnapshotCall::Status`] until the install is done. Every call is
//! bounded by the chunk timeout; the install by nothing but its progress
//! (and the leader's replication being closed).
//!
//! Chunks travel as [`RawChunk`]s, their bytes as one CBOR byte string
//! (openraft's own request encodes them as an array of integers, up to
//! twice the size and far slower to encode and decode).
//!
//! These calls travel as the payload of the InstallSnapshot RPC. A
//! follower of an earlier release cannot decode them and refuses the
//! call; the leader then sends that follower openraft's plain chunks, the
//! last one with a timeout scaled by the snapshot's size.

use std::future::Future;
use std::io::SeekFrom;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError,
};
use openraft::network::RPCOption;
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse, SnapshotResponse};
use openraft::{RPCTypes, RaftNetwork};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::{GroupClient, RpcKind};
use crate::ids::NodeId;
use crate::types::{Node, Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// A leader's call about a snapshot it sends (the InstallSnapshot RPC's
/// payload, beside openraft's plain chunks). Part of the wire format
/// between releases: add variants, never rename or remove them.
/// (`C` is a chunk or, for the sender, a reference to one: the same
/// encoding.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SnapshotCall<C = RawChunk> {
    /// A chunk before the last: written where it belongs, answered as
    /// openraft answers a chunk.
    Chunk(C),
    /// The last chunk: install the snapshot in the background.
    LastChunk(C),
    /// Is the install of snapshot `snapshot_id` done?
    Status { snapshot_id: String },
}

/// openraft's InstallSnapshot request, its data as a byte string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawChunk {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub done: bool,
}

impl From<InstallSnapshotRequest<TypeConfig>> for RawChunk {
    fn from(r: InstallSnapshotRequest<TypeConfig>) -> Self {
        RawChunk {
            vote: r.vote,
            meta: r.meta,
            offset: r.offset,
            data: r.data,
            done: r.done,
        }
    }
}

impl From<RawChunk> for InstallSnapshotRequest<TypeConfig> {
    fn from(c: RawChunk) -> Self {
        InstallSnapshotRequest {
            vote: c.vote,
            meta: c.meta,
            offset: c.offset,
            data: c.data,
            done: c.done,
        }
    }
}

/// Where a follower's install of a snapshot stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstallStatus {
    /// Done: openraft's answer to the last chunk, the follower's vote (a
    /// higher one than the leader's means the snapshot was refused).
    Done { vote: Vote },
    /// Still installing: ask again.
    Installing,
    /// This follower knows of no install of that snapshot (it restarted,
    /// or another snapshot came since): send it again.
    Unknown,
}

/// What a follower answers a [`SnapshotCall`].
pub type SnapshotAnswer = Result<InstallStatus, RaftError<NodeId, InstallSnapshotError>>;

/// A follower's latest snapshot install run in the background, per group.
#[derive(Debug, Default)]
pub struct BackgroundInstalls {
    latest: Mutex<Option<(String, watch::Receiver<Option<SnapshotAnswer>>)>>,
}

impl BackgroundInstalls {
    /// Answers `call` for group `raft`, waiting up to `wait` for an install
    /// to finish before answering [`InstallStatus::Installing`].
    pub async fn answer(&self, raft: &Raft, call: SnapshotCall, wait: Duration) -> SnapshotAnswer {
        let mut outcome = match call {
            SnapshotCall::Chunk(chunk) => {
                return raft
                    .install_snapshot(chunk.into())
                    .await
                    .map(|r| InstallStatus::Done { vote: r.vote })
            }
            SnapshotCall::LastChunk(chunk) => {
                let req: InstallSnapshotRequest<TypeConfig> = chunk.into();
                let (tx, rx) = watch::channel(None);
                let id = req.meta.snapshot_id.clone();
                *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, rx.clone()));
                let raft = raft.clone();
                tokio::spawn(async move {
                    let answer = raft
                        .install_snapshot(req)
                        .await
                        .map(|r| InstallStatus::Done { vote: r.vote });
                    // Nobody asking any more is fine.
                    let _ = tx.send(Some(answer));
                });
                rx
            }
            SnapshotCall::Status { snapshot_id } => {
                let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
                match latest.as_ref() {
                    Some((id, rx)) if *id == snapshot_id => rx.clone(),
                    _ => return Ok(InstallStatus::Unknown),
                }
            }
        };
        let finished = tokio::time::timeout(wait, outcome.wait_for(Option::is_some)).await;
        match finished {
            Ok(Ok(answer)) => answer.clone().unwrap_or(Ok(InstallStatus::Installing)),
            // The install task went away without an answer (the node is
            // stopping): the leader sends the snapshot again.
            Ok(Err(_)) => Ok(InstallStatus::Unknown),
            Err(_) => Ok(InstallStatus::Installing),
        }
    }
}

/// How many snapshot transfers a group's leader began, per follower:
/// those whose first chunk the follower took (the snapshot bench and
/// tests read them through the node).
#[derive(Debug, Default)]
pub struct SnapshotsSent(Mutex<std::collections::BTreeMap<NodeId, u64>>);

impl SnapshotsSent {
    /// Transfers to `to`.
    pub fn to(&self, to: NodeId) -> u64 {
        let sent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sent.get(&to).copied().unwrap_or(0)
    }

    fn began(&self, to: NodeId) {
        let mut sent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *sent.entry(to).or_default() += 1;
    }
}

/// The slowest install rate assumed of a follower of an earlier release,
/// which answers the last chunk only once installed, in bytes per
/// millisecond (10 MB/s).
const LEGACY_INSTALL_BYTES_PER_MS_MIN: u64 = 10 * 1024;

/// Consecutive failed calls (timeouts, network errors) before a transfer
/// is given up (openraft then starts it again after its backoff).
const MAX_FAILURES: u32 = 5;

/// The chunk size when openraft names none.
const DEFAULT_CHUNK: usize = 1024 * 1024;

type SendError = StreamingError<TypeConfig, Fatal<NodeId>>;
type ChunkError = RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>;

/// What to do after a call failed.
enum Next {
    /// Try the same call again after this pause.
    Retry(Duration),
    /// Start the transfer again from its first byte.
    Restart,
    /// Give up (boxed: the error is far larger than the other cases).
    Stop(Box<SendError>),
}

/// Classifies a failed call; `failures` counts consecutive ones.
fn after_failure(e: ChunkError, failures: &mut u32) -> Next {
    *failures += 1;
    let retry = Next::Retry(Duration::from_millis(20 << (*failures).min(4)));
    match e {
        RPCError::RemoteError(RemoteError {
            source: RaftError::APIError(InstallSnapshotError::SnapshotMismatch(_)),
            ..
        }) => Next::Restart,
        RPCError::RemoteError(RemoteError {
            target,
            target_node,
            source: RaftError::Fatal(f),
        }) => Next::Stop(Box::new(SendError::RemoteError(RemoteError {
            target,
            target_node,
            source: f,
        }))),
        RPCError::Unreachable(u) => Next::Stop(Box::new(SendError::Unreachable(u))),
        RPCError::Timeout(t) if *failures >= MAX_FAILURES => {
            Next::Stop(Box::new(SendError::Timeout(t)))
        }
        RPCError::Network(n) if *failures >= MAX_FAILURES => {
            Next::Stop(Box::new(SendError::Network(n)))
        }
        RPCError::Timeout(_) | RPCError::Network(_) => retry,
        RPCError::PayloadTooLarge(p) => {
            Next::Stop(Box::new(SendError::Network(NetworkError::new(
                &openraft::AnyError::error(format!("snapshot chunk too large: {p}")),
            ))))
        }
    }
}

fn network(reason: String) -> ChunkError {
    RPCError::Network(NetworkError::new(&openraft::AnyError::error(reason)))
}

/// Whether the follower refused a call it cannot decode (a release before
/// [`SnapshotCall`]): its server says "bad payload"
/// (`network::HandleError::BadPayload`).
fn refused(e: &ChunkError) -> bool {
    matches!(e, RPCError::Network(n) if n.to_string().contains("bad payload"))
}

fn storage(e: std::io::Error, snapshot: &Snapshot) -> SendError {
    SendError::StorageError(
        openraft::StorageIOError::read_snapshot(Some(snapshot.meta.signature()), &e).into(),
    )
}

impl GroupClient {
    /// Sends `snapshot` chunk by chunk, the last one installed in the
    /// background and polled (see the module's doc).
    pub(super) async fn send_snapshot(
        &mut self,
        vote: Vote,
        mut snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, SendError> {
        let size = snapshot
            .snapshot
            .seek(SeekFrom::End(0))
            .await
            .map_err(|e| storage(e, &snapshot))?;
        let chunk = option.snapshot_chunk_size().unwrap_or(DEFAULT_CHUNK).max(1);
        let mut cancel = std::pin::pin!(cancel);
        let (mut offset, mut failures) = (0u64, 0u32);
        loop {
            if let Some(closed) = cancel.as_mut().now_or_never() {
                return Err(SendError::Closed(closed));
            }
            snapshot
                .snapshot
                .seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| storage(e, &snapshot))?;
            let mut data = Vec::with_capacity(chunk);
            while data.len() < chunk {
                let n = (&mut snapshot.snapshot)
                    .take((chunk - data.len()) as u64)
                    .read_to_end(&mut data)
                    .await
                    .map_err(|e| storage(e, &snapshot))?;
                if n == 0 {
                    break;
                }
            }
            let read = data.len() as u64;
            let done = offset + read >= size;
            let req = InstallSnapshotRequest {
                vote,
                meta: snapshot.meta.clone(),
                offset,
                data,
                done,
            };
            let answer = if done {
                self.last_chunk(req.into(), size, &option, cancel.as_mut())
                    .await
            } else {
                self.chunk(req.into(), &option).await
            };
            if offset == 0 && answer.is_ok() {
                // The follower took the first chunk: a transfer begins.
                self.sent.began(self.target);
            }
            match answer {
                Ok(resp) if done || resp.vote > vote => {
                    return Ok(SnapshotResponse::new(resp.vote))
                }
                Ok(_) => {
                    failures = 0;
                    offset += read;
                }
                Err(e) => match after_failure(e, &mut failures) {
                    Next::Retry(pause) => tokio::time::sleep(pause).await,
                    Next::Restart => offset = 0,
                    Next::Stop(e) => return Err(*e),
                },
            }
        }
    }

    /// Sends a chunk before the last.
    async fn chunk(
        &mut self,
        chunk: RawChunk,
        option: &RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, ChunkError> {
        if !self.legacy_snapshots {
            match self
                .call_raw(&SnapshotCall::Chunk(&chunk), option.hard_ttl())
                .await
            {
                Ok(Ok(InstallStatus::Done { vote })) => {
                    return Ok(InstallSnapshotResponse { vote })
                }
                Ok(Ok(other)) => return Err(network(format!("{other:?} answered to a chunk"))),
                Ok(Err(e)) => return Err(self.remote(e)),
                Err(e) if !refused(&e) => return Err(e),
                Err(_) => self.legacy_snapshots = true,
            }
        }
        self.install_snapshot(chunk.into(), option.clone()).await
    }

    /// Sends the last chunk for a background install and asks until it
    /// is done. A follower of an earlier release gets it as a plain chunk
    /// and answers once installed.
    async fn last_chunk(
        &mut self,
        chunk: RawChunk,
        size: u64,
        option: &RPCOption,
        mut cancel: std::pin::Pin<&mut (impl Future<Output = ReplicationClosed> + Send)>,
    ) -> Result<InstallSnapshotResponse<NodeId>, ChunkError> {
        let ttl = option.hard_ttl();
        let legacy_ttl = ttl + Duration::from_millis(size / LEGACY_INSTALL_BYTES_PER_MS_MIN);
        let snapshot_id = chunk.meta.snapshot_id.clone();
        if self.legacy_snapshots {
            return self
                .install_snapshot(chunk.into(), RPCOption::new(legacy_ttl))
                .await;
        }
        let mut status = match self.call_raw(&SnapshotCall::LastChunk(&chunk), ttl).await {
            Ok(answer) => answer,
            Err(e) if refused(&e) => {
                self.legacy_snapshots = true;
                return self
                    .install_snapshot(chunk.into(), RPCOption::new(legacy_ttl))
                    .await;
            }
            Err(e) => return Err(e),
        };
        let mut failures = 0;
        loop {
            match status {
                Ok(InstallStatus::Done { vote }) => return Ok(InstallSnapshotResponse { vote }),
                Ok(InstallStatus::Unknown) => {
                    return Err(network(format!(
                        "node {} lost the install of snapshot {snapshot_id}",
                        self.target
                    )))
                }
                Err(e) => return Err(self.remote(e)),
                Ok(InstallStatus::Installing) => {}
            }
            if cancel.as_mut().now_or_never().is_some() {
                return Err(network(
                    "replication closed while a snapshot installed".into(),
                ));
            }
            let ask: SnapshotCall<&RawChunk> = SnapshotCall::Status {
                snapshot_id: snapshot_id.clone(),
            };
            status = loop {
                match self.call_raw(&ask, ttl).await {
                    Ok(answer) => {
                        // MAX_FAILURES counts consecutive failures only.
                        failures = 0;
                        break answer;
                    }
                    Err(RPCError::Timeout(_) | RPCError::Network(_)) if failures < MAX_FAILURES => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
        }
    }

    /// One [`SnapshotCall`] and its answer.
    async fn call_raw(
        &self,
        call: &SnapshotCall<&RawChunk>,
        timeout: Duration,
    ) -> Result<SnapshotAnswer, ChunkError> {
        self.rpc::<_, InstallStatus, InstallSnapshotError>(
            RpcKind::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            call,
            timeout,
        )
        .await
        .map(Ok)
        .or_else(|e| match e {
            RPCError::RemoteError(r) => Ok(Err(r.source)),
            e => Err(e),
        })
    }

    fn remote(&self, e: RaftError<NodeId, InstallSnapshotError>) -> ChunkError {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;

    use super::*;
    use crate::codec;
    use crate::network::{HandleError, TransportError};

    fn request(data: Vec<u8>, done: bool) -> InstallSnapshotRequest<TypeConfig> {
        InstallSnapshotRequest {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 1, 40)),
                last_membership: Default::default(),
                snapshot_id: "s-40".into(),
            },
            offset: 1 << 20,
            data,
            done,
        }
    }

    /// Chunks travel as byte strings: about their own size on the wire,
    /// where openraft's request writes each byte as an integer.
    #[test]
    fn a_chunk_is_a_byte_string_on_the_wire() {
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 + 200) as u8).collect();
        let plain = codec::encode(&request(data.clone(), false)).unwrap();
        let call: SnapshotCall = SnapshotCall::Chunk(request(data.clone(), false).into());
        let raw = codec::encode(&call).unwrap();
        assert!(raw.len() < data.len() + 512, "{} bytes", raw.len());
        assert!(plain.len() > data.len() * 3 / 2, "{} bytes", plain.len());
        let SnapshotCall::Chunk(back) = codec::decode::<SnapshotCall>(&raw).unwrap() else {
            panic!("not a chunk")
        };
        assert_eq!(InstallSnapshotRequest::from(back), request(data, false));
    }

    /// A follower of an earlier release cannot read the calls (it refuses
    /// them, and the leader then sends plain chunks); a follower of this
    /// release tells a plain chunk of an earlier leader from a call.
    #[test]
    fn calls_and_plain_chunks_are_told_apart() {
        let calls: [SnapshotCall; 3] = [
            SnapshotCall::Chunk(request(vec![1, 2, 3], false).into()),
            SnapshotCall::LastChunk(request(vec![4], true).into()),
            SnapshotCall::Status {
                snapshot_id: "s-40".into(),
            },
        ];
        for call in &calls {
            let bytes = codec::encode(call).unwrap();
            assert!(codec::decode::<InstallSnapshotRequest<TypeConfig>>(&bytes).is_err());
        }
        for done in [false, true] {
            let plain = codec::encode(&request(vec![9; 100], done)).unwrap();
            assert!(codec::decode::<SnapshotCall>(&plain).is_err());
        }
        // How the refusal reaches the leader: the server's "bad payload",
        // through the transport's error.
        let reason = HandleError::BadPayload("unknown field".into()).to_string();
        let e = TransportError::Failed {
            target: 2,
            reason: format!("Client specified an invalid argument: {reason}"),
        };
        let refusal: ChunkError = RPCError::Network(NetworkError::new(&e));
        assert!(refused(&refusal));
        let lost = TransportError::Failed {
            target: 2,
            reason: "connection reset".into(),
        };
        assert!(!refused(&RPCError::Network(NetworkError::new(&lost))));
    }
}
