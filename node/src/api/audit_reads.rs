//! The Audit read (`canon audit`, `audit verify`, `audit export`): every
//! group's chain head, or one group's records as the JSON lines their
//! hashes are recomputed from, read linearizably and paged, or (`local`)
//! from this node's own replica, so that `audit verify --replicas` can
//! compare what each replica holds. Needs a signed reader allowed
//! `audit.read`; the records are sent as stored, so the client checks the
//! chain itself rather than trusting the node's word.

use canon_proto::canon::api::v1 as pb;
use canon_raft::audit::AuditChain;
use canon_raft::shard::group_of_shard;
use canon_raft::{Consistency, GroupId, META_GROUP};
use canon_trust::audit::AuditRecord;
use canon_trust::Action;
use tonic::Status;

use super::grpc_status::node_status;
use super::read_auth::Reader;
use super::Api;

/// Records per reply when the request names no limit.
const DEFAULT_LIMIT: usize = 1000;
/// The most records one reply carries.
const MAX_LIMIT: usize = 5000;

impl Api {
    /// Chain heads, or one group's records after `after_seq`.
    pub(super) async fn handle_audit(
        &self,
        by: &Reader,
        req: pb::AuditRequest,
    ) -> Result<pb::AuditReply, Status> {
        self.authorise(by.asker(), Action::AuditRead, None, None)
            .await?;
        let consistency = match req.local {
            true => Consistency::Stale,
            false => Consistency::Linearizable,
        };
        let Some(group) = req.group else {
            let mut chains = Vec::new();
            for g in self.groups() {
                let head = self
                    .node
                    .read(g, consistency, |s| chain_head(g, &s.audit))
                    .await
                    .map_err(node_status)?;
                chains.push(head);
            }
            return Ok(pb::AuditReply {
                records: Vec::new(),
                chains,
                more: false,
                node: self.node.id(),
            });
        };
        if !self.groups().contains(&group) {
            return Err(Status::not_found(format!("no group {group}")));
        }
        let limit = match req.limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let filter = Filter::of(&req);
        let after = req.after_seq;
        let (head, records, more) = self
            .node
            .read(group, consistency, move |s| {
                let chain = &s.audit;
                if after > 0 && after < chain.anchor.seq {
                    return Err(after);
                }
                let mut picked = chain
                    .records
                    .iter()
                    .filter(|r| r.entry.seq > after && filter.keeps(r))
                    .map(AuditRecord::to_json_line);
                let records: Vec<String> = picked.by_ref().take(limit).collect();
                let more = picked.next().is_some();
                Ok((chain_head(group, chain), records, more))
            })
            .await
            .map_err(node_status)?
            .map_err(|after| {
                Status::failed_precondition(format!(
                    "group {group}'s records after {after} were trimmed by retention while \
                     you read them: read again"
                ))
            })?;
        Ok(pb::AuditReply {
            records,
            chains: vec![head],
            more,
            node: self.node.id(),
        })
    }

    /// Every group: the meta group, then the shards.
    fn groups(&self) -> Vec<GroupId> {
        std::iter::once(META_GROUP)
            .chain((0..self.node.shard_count()).map(group_of_shard))
            .collect()
    }
}

fn chain_head(group: GroupId, chain: &AuditChain) -> pb::AuditChainHead {
    let (head_seq, head_hash) = chain.head();
    pb::AuditChainHead {
        group,
        anchor_seq: chain.anchor.seq,
        anchor_hash: chain.anchor.hash.clone(),
        head_seq,
        head_hash,
        records: chain.records.len() as u64,
    }
}

/// Which records a request keeps.
struct Filter {
    alias: Option<String>,
    user: Option<String>,
    since_ms: u64,
}

impl Filter {
    fn of(req: &pb::AuditRequest) -> Filter {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Filter {
            alias: some(&req.alias),
            user: some(&req.user),
            since_ms: req.since_ms,
        }
    }

    fn keeps(&self, r: &AuditRecord) -> bool {
        let e = &r.entry;
        let alias_ok = self
            .alias
            .as_ref()
            .is_none_or(|a| e.target.alias.as_deref() == Some(a.as_str()));
        let user_ok = self
            .user
            .as_ref()
            .is_none_or(|u| e.principal.as_ref().map(|p| p.user.as_str()) == Some(u.as_str()));
        alias_ok && user_ok && e.at >= self.since_ms
    }
}
