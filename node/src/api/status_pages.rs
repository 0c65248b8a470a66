//! `canon status` over a large estate: one page of process rows at a time,
//! in alias order (then FID), each page resuming after the last row of the
//! one before, named by an opaque page token.
//!
//! Processes live in many shards. A page asks every shard, concurrently and
//! linearizably, for its first `size + 1` rows after the cursor (a range
//! look-up in the shard's alias index, `canon_raft::state::AliasIndex`,
//! then those rows: O(log n + size) per shard, no walk over the shard),
//! merges the `shards × (size + 1)` rows by key and keeps `size`. One more
//! row than the page holds tells whether a next page exists, so the last
//! page says so and no empty page follows. No whole list is ever built.
//!
//! A page is not a snapshot of the estate: each shard is read when the page
//! is asked for. Because a page resumes after a key rather than at an
//! offset, a process created or killed between pages moves nothing: every
//! process that exists throughout is shown exactly once, one created after
//! the cursor's key is shown, one killed before its page is reached is not
//! (unless the reader asked for killed processes too).

use canon_model::Fid;
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::{AliasCursor, ProcessRecord};
use canon_raft::{authorise, Consistency};
use canon_trust::{AccessRequest, Action};
use tonic::Status;

use super::grpc_status::{bad, node_status};
use super::intake::valid_alias;
use super::read_auth::Reader;
use super::Api;
use crate::views::summary;

/// The largest page a node answers; a larger ask gets this many.
pub(super) const MAX_PAGE_SIZE: usize = 1000;

/// What every page token starts with (its format's version).
const TOKEN_PREFIX: &str = "p1:";

/// The token of the page after `cursor`: `p1:FID:ALIAS`. Clients treat it
/// as opaque.
pub(super) fn page_token(cursor: &AliasCursor) -> String {
    format!("{TOKEN_PREFIX}{}:{}", cursor.fid, cursor.alias)
}

/// The cursor a page token names, or InvalidArgument saying what to pass.
pub(super) fn page_cursor(token: &str) -> Result<AliasCursor, Status> {
    let refuse = |why: &str| {
        bad(&format!(
            "bad page token {token:?} ({why}): pass the next_page_token of the previous \
             Status reply, or none for the first page"
        ))
    };
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| refuse("not a page token of this version"))?;
    let (fid, alias) = rest
        .split_once(':')
        .ok_or_else(|| refuse("no alias in it"))?;
    let fid: Fid = fid.parse().map_err(|_| refuse("no FID in it"))?;
    valid_alias(alias).map_err(|_| refuse("no valid alias in it"))?;
    Ok(AliasCursor {
        alias: alias.to_string(),
        fid,
    })
}

/// One shard's candidate rows for a page: key and summary.
type Rows = Vec<(AliasCursor, pb::ProcessSummary)>;

impl Api {
    /// One page of Status without an alias (`req.page_size` > 0): the rows
    /// after `req.page_token`, and the token of the next page if any. A
    /// signed, non-root reader sees only the processes it may
    /// `process.status`; its pages may then pass over processes it may not
    /// see (they are skipped inside each shard's read).
    pub(super) async fn status_page(
        &self,
        reader: Option<&Reader>,
        req: &pb::StatusRequest,
    ) -> Result<pb::StatusReply, Status> {
        let size = (req.page_size as usize).clamp(1, MAX_PAGE_SIZE);
        let cursor = match req.page_token.as_str() {
            "" => None,
            token => Some(page_cursor(token)?),
        };
        let viewer = match reader.map(|r| &r.principal).filter(|p| !p.root) {
            Some(by) => Some((self.policy(true).await?, by)),
            None => None,
        };
        let may_see = |p: &ProcessRecord| match &viewer {
            None => true,
            Some((policy, by)) => {
                let request = AccessRequest {
                    action: Action::ProcessStatus,
                    account: Some(&p.account),
                    alias: Some(&p.alias),
                };
                authorise(&policy.document, by, &request).is_ok()
            }
        };
        let shards = self.node.shard_count();
        let reads = (0..shards).map(|shard| {
            let group = canon_raft::shard::group_of_shard(shard);
            let (cursor, may_see) = (cursor.as_ref(), &may_see);
            async move {
                self.node
                    .read(group, Consistency::Linearizable, |s| {
                        s.processes_after(cursor, req.all)
                            .filter(|p| may_see(p))
                            .take(size + 1)
                            .map(|p| (AliasCursor::after(p), summary(p, shards)))
                            .collect::<Rows>()
                    })
                    .await
                    .map_err(node_status)
            }
        });
        let per_shard = futures::future::try_join_all(reads).await?;
        Ok(merge_page(per_shard, size))
    }
}

/// The first `size` rows of every shard's candidates, in key order, and the
/// next page's token if rows remain.
fn merge_page(per_shard: Vec<Rows>, size: usize) -> pb::StatusReply {
    let mut rows: Rows = per_shard.into_iter().flatten().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let more = rows.len() > size;
    rows.truncate(size);
    let next_page_token = match rows.last() {
        Some((last, _)) if more => page_token(last),
        _ => String::new(),
    };
    pb::StatusReply {
        processes: rows.into_iter().map(|(_, row)| row).collect(),
        next_page_token,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(alias: &str) -> (AliasCursor, pb::ProcessSummary) {
        let cursor = AliasCursor {
            alias: alias.to_string(),
            fid: Fid::random(),
        };
        let summary = pb::ProcessSummary {
            alias: alias.to_string(),
            ..Default::default()
        };
        (cursor, summary)
    }

    #[test]
    fn a_token_names_its_cursor_and_a_bad_one_says_what_to_pass() {
        let cursor = AliasCursor {
            alias: "dev-sam.v2".into(),
            fid: Fid::random(),
        };
        assert_eq!(page_cursor(&page_token(&cursor)).unwrap(), cursor);
        for bad in ["garbage", "p1:", "p1:not-a-fid:web", "p2:x:y", "p1:{}:"] {
            let token = bad.replace("{}", &cursor.fid.to_string());
            let e = page_cursor(&token).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{token}");
            assert!(e.message().contains("bad page token"), "{}", e.message());
            assert!(e.message().contains("next_page_token"), "{}", e.message());
        }
    }

    #[test]
    fn shards_merge_in_alias_order_and_only_a_full_page_has_a_next() {
        let shards = vec![
            vec![row("a"), row("d"), row("e")],
            vec![row("b"), row("c")],
            vec![],
        ];
        let page = merge_page(shards, 3);
        let aliases: Vec<&str> = page.processes.iter().map(|p| p.alias.as_str()).collect();
        assert_eq!(aliases, ["a", "b", "c"]);
        let next = page_cursor(&page.next_page_token).unwrap();
        assert_eq!(next.alias, "c");
        let last = merge_page(vec![vec![row("d")], vec![row("e")]], 3);
        assert_eq!(last.processes.len(), 2);
        assert_eq!(last.next_page_token, "");
    }
}
