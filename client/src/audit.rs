//! The audit log's calls: every group's chain head, and a group's records
//! paged through to the end. Records come back as the JSON lines the node
//! holds, untouched, so the caller can recompute their hashes
//! (`canon_trust::audit::verify`) instead of trusting the node.

use crate::pb;
use crate::sdk::{Client, ClientError};

/// Which records to fetch (empty or zero: every one).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub alias: String,
    pub user: String,
    pub since_ms: u64,
    /// Read the asked node's own replica (it may lag) instead of the
    /// groups' leaders: a client of one endpoint, asked so, shows what
    /// that replica holds.
    pub local: bool,
}

/// One group's chain as fetched: its head when first asked, and its
/// records as JSON lines, oldest first.
#[derive(Debug, Clone)]
pub struct FetchedChain {
    pub head: pb::AuditChainHead,
    pub records: Vec<String>,
}

impl Client {
    /// One Audit call.
    pub async fn audit(&self, req: pb::AuditRequest) -> Result<pb::AuditReply, ClientError> {
        self.signed_read(
            "Audit",
            &req,
            |mut api, req| async move { api.audit(req).await },
        )
        .await
    }

    /// Every group's chain head and the records `query` keeps, each group
    /// read page by page to its end.
    pub async fn audit_chains(&self, query: &AuditQuery) -> Result<Vec<FetchedChain>, ClientError> {
        let heads = self
            .audit(pb::AuditRequest {
                local: query.local,
                ..pb::AuditRequest::default()
            })
            .await?
            .chains;
        let mut out = Vec::new();
        for head in heads {
            let mut records = Vec::new();
            let mut after = 0;
            loop {
                let page = self
                    .audit(pb::AuditRequest {
                        group: Some(head.group),
                        after_seq: after,
                        limit: 0,
                        alias: query.alias.clone(),
                        user: query.user.clone(),
                        since_ms: query.since_ms,
                        local: query.local,
                    })
                    .await?;
                let last = page.records.last().and_then(|l| seq_of(l));
                records.extend(page.records);
                match last {
                    Some(seq) if page.more => after = seq,
                    _ => break,
                }
            }
            out.push(FetchedChain { head, records });
        }
        Ok(out)
    }
}

/// The `seq` of a record's JSON line.
fn seq_of(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("seq")?.as_u64()
}
