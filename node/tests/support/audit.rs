//! Reading the audit log as root, each chain checked from its anchor.

use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::api::v1::canon_client::CanonClient;
use canon_trust::audit::{verify, Anchor, AuditRecord};
use tonic::transport::Channel;

use super::who::Who;

/// Every group's audit records as `root` reads them, each chain checked
/// from its anchor.
pub async fn records(api: &mut CanonClient<Channel>, root: &Who) -> Vec<AuditRecord> {
    let req = root.read("Audit", pb::AuditRequest::default());
    let heads = api.audit(req).await.unwrap().into_inner().chains;
    let mut all = Vec::new();
    for h in heads {
        let body = pb::AuditRequest {
            group: Some(h.group),
            limit: 5000,
            ..pb::AuditRequest::default()
        };
        let req = root.read("Audit", body);
        let reply = api.audit(req).await.unwrap().into_inner();
        assert!(!reply.more);
        let records: Vec<AuditRecord> = reply
            .records
            .iter()
            .map(|l| AuditRecord::from_json_line(l).unwrap())
            .collect();
        let anchor = Anchor {
            seq: h.anchor_seq,
            hash: h.anchor_hash.clone(),
        };
        verify(h.group, &anchor, &records).unwrap();
        all.extend(records);
    }
    all
}

/// The deny records among `records`: (user, action, outcome).
pub fn denials(records: &[AuditRecord]) -> Vec<(String, String, String)> {
    records
        .iter()
        .filter(|r| r.entry.decision.effect == canon_trust::Effect::Deny)
        .map(|r| {
            let user = r.entry.principal.as_ref().map(|p| p.user.to_string());
            (
                user.unwrap_or_default(),
                r.entry.action.to_string(),
                r.entry.outcome.to_string(),
            )
        })
        .collect()
}
