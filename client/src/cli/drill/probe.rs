//! What a drill measures while it runs: a bounded load of signed commands
//! (each a new process of a one-VPC composition, then a status read of
//! it), and the cluster's roles polled from `cluster status` (leader
//! changes with their terms). Each runs as its own task until told to
//! stop, and hands back its samples.

use std::collections::BTreeMap;
use std::time::Duration;

use canon_client::{pb, Client};
use serde::Serialize;
use tokio::sync::watch;

use super::catalogue::Roles;

/// The composition the load runs: the smallest one that reaches the cloud.
const LOAD_COMPOSITION: &str = "composition\n\nimport Canon.AWS.EC2 as EC2\nimport Canon.Core.AWS.Common as AWS\n\ndrill-vpc: EC2.Vpc.new {\n  cidrBlock: \"10.42.0.0/16\",\n  region: AWS.Us-west-2,\n}\n";

/// A call the load gives up on (the client's own failover is inside it).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One command of the load.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Milliseconds since the drill began.
    pub at_ms: u64,
    pub ok: bool,
    pub latency_ms: u64,
    /// The alias it ran (acknowledged if `ok`).
    pub alias: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The load's composition, compiled once.
pub fn load_composition() -> Result<pb::CompiledComposition, String> {
    let loader = canon_lang::MapLoader(std::collections::HashMap::new());
    let out = canon_lang::compile_str("drill.lw", LOAD_COMPOSITION, &loader, Default::default());
    let c = out
        .compiled
        .as_ref()
        .ok_or_else(|| format!("the drill's composition does not compile: {}", out.render()))?;
    Ok(pb::CompiledComposition {
        bytes: c.encode(),
        source_hash: c.source_hash.clone(),
    })
}

/// Runs the load until `stop` turns true: one command every `every`.
pub async fn load(
    client: Client,
    composition: pb::CompiledComposition,
    prefix: String,
    every: Duration,
    begun: tokio::time::Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut n = 0u64;
    while !*stop.borrow() {
        n += 1;
        let alias = format!("{prefix}-{n}");
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(CALL_TIMEOUT, async {
            client.run(&alias, composition.clone(), false).await?;
            client.status(&alias, false).await
        })
        .await;
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {CALL_TIMEOUT:?}")),
        };
        samples.push(Sample {
            at_ms: ms(begun.elapsed()),
            ok: error.is_none(),
            latency_ms: ms(started.elapsed()),
            alias,
            error,
        });
        tokio::select! {
            _ = tokio::time::sleep(every.saturating_sub(started.elapsed())) => {}
            _ = stop.changed() => {}
        }
    }
    samples
}

/// A change of a group's leader, as `cluster status` showed it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderChange {
    pub at_ms: u64,
    pub group: u64,
    /// 0: none.
    pub leader: u64,
    pub term: u64,
}

/// The roles in one `cluster status` answer.
pub fn roles_of(s: &pb::ClusterStatusReply) -> Roles {
    let mut members: Vec<u64> = s.members.iter().map(|m| m.node).collect();
    members.sort_unstable();
    Roles {
        members,
        leaders: s
            .groups
            .iter()
            .filter(|g| g.leader != 0)
            .map(|g| (g.group, g.leader))
            .collect(),
        // A cluster without a recorded placement keeps the default three.
        replicas: s
            .placement
            .iter()
            .map(|p| p.replicas.len())
            .max()
            .unwrap_or(3),
    }
}

/// Each group's leader by the nodes' own views: the leader named at the
/// highest term (a node cut off from the others may still believe it
/// leads, at an older term; a candidate names none).
pub fn leaders_of(views: &[pb::ClusterStatusReply]) -> BTreeMap<u64, (u64, u64)> {
    let mut best: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for g in views.iter().flat_map(|v| &v.groups) {
        let entry = best.entry(g.group).or_insert((0, 0));
        if g.leader != 0 && (entry.0 == 0 || g.term > entry.1) {
            *entry = (g.leader, g.term);
        }
    }
    best
}

/// Polls every node's own view every `every` until `stop`: each group's
/// leader changes (see [`leaders_of`]).
pub async fn watch_leaders(
    client: Client,
    every: Duration,
    begun: tokio::time::Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<LeaderChange> {
    let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut changes = Vec::new();
    while !*stop.borrow() {
        let views: Vec<pb::ClusterStatusReply> = client
            .node_views()
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        if !views.is_empty() {
            for (group, now) in leaders_of(&views) {
                if last.get(&group) != Some(&now) {
                    last.insert(group, now);
                    changes.push(LeaderChange {
                        at_ms: ms(begun.elapsed()),
                        group,
                        leader: now.0,
                        term: now.1,
                    });
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
    changes
}

/// Whether the cluster has settled: every member answers, every group has
/// a leader that reports every follower caught up.
pub fn settled(s: &pb::ClusterStatusReply) -> Result<(), String> {
    if let Some(m) = s.members.iter().find(|m| !m.reachable) {
        return Err(format!("node {} does not answer", m.node));
    }
    for g in &s.groups {
        if g.leader == 0 {
            return Err(format!("group {} has no leader", g.group));
        }
        if g.reported_by != g.leader {
            return Err(format!("group {}'s leader did not report", g.group));
        }
        if let Some(f) = g.followers.iter().find(|f| !f.matched_known || f.lag > 0) {
            // The leader, its term and the follower's matched index say
            // whether replication is stuck or merely slow.
            return Err(format!(
                "group {}: node {} is {} entries behind (leader node {}, term {}, last index {}, matched {}{})",
                g.group,
                f.node,
                f.lag,
                g.leader,
                g.term,
                g.last_log_index,
                f.matched_index,
                if f.matched_known { "" } else { ", not known" }
            ));
        }
    }
    Ok(())
}

/// Waits until the cluster has settled (within `within`): how long it took.
pub async fn converge(client: &Client, within: Duration) -> Result<Duration, String> {
    let started = tokio::time::Instant::now();
    loop {
        let why = match tokio::time::timeout(CALL_TIMEOUT, client.cluster_status()).await {
            Ok(Ok(s)) => match settled(&s) {
                Ok(()) => return Ok(started.elapsed()),
                Err(why) => why,
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "cluster status did not answer".into(),
        };
        if started.elapsed() > within {
            return Err(format!("not settled after {within:?}: {why}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_composition_compiles() {
        let c = load_composition().unwrap();
        assert!(!c.bytes.is_empty());
    }

    #[test]
    fn the_leader_is_the_one_named_at_the_highest_term() {
        let view = |leader: u64, term: u64| pb::ClusterStatusReply {
            groups: vec![pb::GroupView {
                group: 1,
                leader,
                term,
                ..Default::default()
            }],
            ..Default::default()
        };
        // The cut-off old leader, the majority's new one, a candidate.
        let views = [view(1, 3), view(2, 4), view(0, 9)];
        assert_eq!(leaders_of(&views).get(&1), Some(&(2, 4)));
        assert_eq!(leaders_of(&[view(0, 5)]).get(&1), Some(&(0, 0)));
    }

    #[test]
    fn settled_means_every_member_answers_and_every_follower_caught_up() {
        let group = |lag: u64| pb::GroupView {
            group: 1,
            leader: 2,
            reported_by: 2,
            followers: vec![pb::FollowerView {
                node: 1,
                matched_index: 5,
                matched_known: true,
                lag,
            }],
            ..Default::default()
        };
        let member = |reachable| pb::Member {
            node: 1,
            reachable,
            ..Default::default()
        };
        let mut s = pb::ClusterStatusReply {
            members: vec![member(true)],
            groups: vec![group(0)],
            ..Default::default()
        };
        assert!(settled(&s).is_ok());
        s.groups = vec![group(3)];
        assert!(settled(&s).unwrap_err().contains("3 entries behind"));
        s.groups = vec![group(0)];
        s.members = vec![member(false)];
        assert!(settled(&s).unwrap_err().contains("does not answer"));
    }
}
