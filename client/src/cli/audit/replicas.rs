//! `canon audit verify --replicas`: every node's own replica of every
//! group's audit chain, each checked from its anchor, then compared. The
//! chains are computed in each replica's state machine, so replicas that
//! applied the same log hold the same hashes; one that differs at the
//! newest record all of them hold has applied something else (a bug, or
//! a data file changed behind the cluster's back). A replica may lag:
//! only what every replica holds is compared.

use std::collections::BTreeMap;

use canon_client::audit::{AuditQuery, FetchedChain};
use canon_client::{pb, Client};

use super::verify_fetched;
use crate::cli::common::{self, Conn, Failure, Outcome};

/// One node's replica of every chain.
struct Replica {
    endpoint: String,
    node: u64,
    chains: Vec<FetchedChain>,
}

/// What the replicas hold of one group at the newest record they all have.
struct Comparison {
    group: u64,
    seq: u64,
    /// endpoint → the hash its replica holds at `seq`.
    hashes: BTreeMap<String, String>,
}

impl Comparison {
    fn agrees(&self) -> bool {
        let mut hashes = self.hashes.values();
        let first = hashes.next();
        hashes.all(|h| Some(h) == first)
    }
}

pub(super) async fn verify_replicas(conn: &Conn) -> Outcome {
    let mut replicas = Vec::new();
    for (endpoint, client) in common::connect_each(conn)? {
        let replica = fetch(&endpoint, &client).await?;
        for chain in &replica.chains {
            verify_fetched(chain).map_err(|b| {
                Failure::new(
                    1,
                    format!(
                        "the replica of {endpoint} (node {}): audit chain broken at {b}",
                        replica.node
                    ),
                )
            })?;
        }
        replicas.push(replica);
    }
    let comparisons = compare(&replicas);
    report(&replicas, &comparisons, conn.json)
}

/// `endpoint`'s replica: its node id and its chains, read locally.
async fn fetch(endpoint: &str, client: &Client) -> Result<Replica, Failure> {
    // The client's own exit code (3 out of reach, 6 refused, …), naming
    // the node.
    let unreachable = |e: canon_client::ClientError| {
        let f = Failure::from(e);
        Failure::new(f.code, format!("{endpoint}: {}", f.message))
    };
    let heads = pb::AuditRequest {
        local: true,
        ..pb::AuditRequest::default()
    };
    let node = client.audit(heads).await.map_err(unreachable)?.node;
    let query = AuditQuery {
        local: true,
        ..AuditQuery::default()
    };
    let chains = client.audit_chains(&query).await.map_err(unreachable)?;
    Ok(Replica {
        endpoint: endpoint.to_string(),
        node,
        chains,
    })
}

/// For each group, the hash every replica holds at the newest record all
/// of them have.
fn compare(replicas: &[Replica]) -> Vec<Comparison> {
    let mut groups: BTreeMap<u64, Vec<(&str, &FetchedChain)>> = BTreeMap::new();
    for r in replicas {
        for c in &r.chains {
            groups
                .entry(c.head.group)
                .or_default()
                .push((&r.endpoint, c));
        }
    }
    groups
        .into_iter()
        .map(|(group, held)| {
            let seq = held.iter().map(|(_, c)| c.head.head_seq).min().unwrap_or(0);
            let hashes = held
                .iter()
                .map(|(endpoint, c)| (endpoint.to_string(), hash_at(c, seq)))
                .collect();
            Comparison { group, seq, hashes }
        })
        .collect()
}

/// The hash `chain` (already checked) holds at `seq`: its anchor's, or
/// its record's (the empty string if it holds neither, which then agrees
/// with no replica that does).
fn hash_at(chain: &FetchedChain, seq: u64) -> String {
    if seq == chain.head.anchor_seq {
        return chain.head.anchor_hash.clone();
    }
    chain
        .records
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|r| r["seq"].as_u64() == Some(seq))
        .and_then(|r| r["hash"].as_str().map(String::from))
        .unwrap_or_default()
}

fn report(replicas: &[Replica], comparisons: &[Comparison], json: bool) -> Outcome {
    let differ = comparisons.iter().find(|c| !c.agrees());
    if json {
        common::print_json(&serde_json::json!({
            "agree": differ.is_none(),
            "replicas": replicas.iter().map(|r| serde_json::json!({
                "endpoint": r.endpoint,
                "node": r.node,
                "records": r.chains.iter().map(|c| c.records.len()).sum::<usize>(),
            })).collect::<Vec<_>>(),
            "groups": comparisons.iter().map(|c| serde_json::json!({
                "group": c.group, "seq": c.seq, "agree": c.agrees(), "hashes": c.hashes,
            })).collect::<Vec<_>>(),
        }));
    } else {
        for r in replicas {
            let records: usize = r.chains.iter().map(|c| c.records.len()).sum();
            say!(
                "[ OK ] node {} ({}): {records} records in {} chains check out",
                r.node,
                r.endpoint,
                r.chains.len()
            );
        }
    }
    match differ {
        None => {
            if !json {
                say!(
                    "[ OK ] {} replicas agree on every chain ({} groups, up to the newest record all hold)",
                    replicas.len(),
                    comparisons.len()
                );
            }
            Ok(())
        }
        Some(c) => {
            let held: Vec<String> = c
                .hashes
                .iter()
                .map(|(e, h)| format!("{e} holds {h}"))
                .collect();
            Err(Failure::new(
                1,
                format!(
                    "the replicas differ in group {} at record {}: {}",
                    c.group,
                    c.seq,
                    held.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(
        group: u64,
        anchor: (u64, &str),
        head: (u64, &str),
        records: &[(u64, &str)],
    ) -> FetchedChain {
        let records = records
            .iter()
            .map(|(seq, hash)| {
                serde_json::json!({"group": group, "seq": seq, "hash": hash}).to_string()
            })
            .collect();
        FetchedChain {
            head: pb::AuditChainHead {
                group,
                anchor_seq: anchor.0,
                anchor_hash: anchor.1.into(),
                head_seq: head.0,
                head_hash: head.1.into(),
                records: 0,
            },
            records,
        }
    }

    fn replica(endpoint: &str, chains: Vec<FetchedChain>) -> Replica {
        Replica {
            endpoint: endpoint.into(),
            node: 0,
            chains,
        }
    }

    #[test]
    fn replicas_are_compared_at_the_newest_record_all_hold() {
        let z = (0, "z");
        let a = replica(
            "a",
            vec![
                chain(0, (5, "x"), (5, "x"), &[]),
                chain(1, z, (3, "c"), &[(1, "a"), (2, "b"), (3, "c")]),
            ],
        );
        // Lagging: it has not applied record 3 of group 1 yet, and holds
        // record 6 of group 0 that `a` has not.
        let b = replica(
            "b",
            vec![
                chain(0, (5, "x"), (6, "y"), &[(6, "y")]),
                chain(1, z, (2, "b"), &[(1, "a"), (2, "b")]),
            ],
        );
        let compared = compare(&[a, b]);
        assert_eq!(compared.len(), 2);
        assert!(compared.iter().all(Comparison::agrees));
        assert_eq!((compared[0].seq, compared[1].seq), (5, 2));
        // One that applied something else at record 2.
        let c = replica(
            "c",
            vec![
                chain(0, (5, "x"), (5, "x"), &[]),
                chain(1, z, (3, "q"), &[(1, "a"), (2, "p"), (3, "q")]),
            ],
        );
        let a = replica(
            "a",
            vec![chain(1, z, (3, "c"), &[(1, "a"), (2, "b"), (3, "c")])],
        );
        let compared = compare(&[a, c]);
        let differ: Vec<_> = compared.iter().filter(|c| !c.agrees()).collect();
        assert_eq!(differ.len(), 1);
        assert_eq!((differ[0].group, differ[0].seq), (1, 3));
        assert!(report(&[], &compared, true).is_err());
    }
}
