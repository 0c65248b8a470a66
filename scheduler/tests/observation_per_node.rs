//! Each node's observations keep only the resources of the processes it
//! leads (issue #19, memory per node): on three nodes, each holds about a
//! third of the estate instead of all of it. A node that takes a shard
//! over after its leader crashed looks afresh, keeps the shard's
//! resources, and heals them; nothing is made twice.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use canon_model::*;
use support::*;

fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}

/// Waits until every running node's newest observation kept exactly the
/// resources of the processes it leads and refused the others'. Panics
/// with what each node kept if that does not happen `within`.
async fn wait_kept_as_led(h: &Harness, processes: &[(String, Fid)], within: Duration) {
    let from = tokio::time::Instant::now();
    loop {
        let mut expected: BTreeMap<usize, u64> = BTreeMap::new();
        let mut total = 0;
        for (alias, fid) in processes {
            let owned = h.owned(*fid).len() as u64;
            *expected.entry(h.leader_of(alias).await).or_default() += owned;
            total += owned;
        }
        let seen: BTreeMap<usize, (u64, u64)> = h
            .schedulers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?.stats().last_observation())))
            .collect();
        let as_led = seen.iter().all(|(i, (kept, refused))| {
            let want = expected.get(i).copied().unwrap_or(0);
            // A node leading nothing observes nothing (no actor ticks).
            (*kept, *refused) == (want, total - want) || (want == 0 && *kept == 0)
        });
        if as_led {
            return;
        }
        assert!(
            from.elapsed() < within,
            "observations did not keep what each node leads: expected kept {expected:?} of \
             {total}, (kept, refused) by node {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_keeps_what_it_leads_and_a_new_leader_heals_what_it_took_over() {
    let mut h = Harness::start(3, 6, quick_config(Duration::from_secs(1))).await;
    h.cluster.enable_balancer(Duration::from_millis(200));
    let from = tokio::time::Instant::now();
    while h
        .cluster
        .leader_counts()
        .values()
        .filter(|n| **n > 0)
        .count()
        < 3
    {
        assert!(
            from.elapsed() < Duration::from_secs(20),
            "leadership did not spread: {:?}",
            h.cluster.leader_counts()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut processes = Vec::new();
    for i in 0..9 {
        let (alias, fid) = (format!("team-{i}"), Fid::random());
        h.run(&alias, &network(fid, &alias, false)).await;
        processes.push((alias, fid));
    }
    for (alias, fid) in &processes {
        h.wait_for(
            alias,
            *fid,
            Duration::from_secs(30),
            "RUN to succeed",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
        )
        .await;
    }
    let mut leaders = std::collections::BTreeSet::new();
    for (alias, _) in &processes {
        leaders.insert(h.leader_of(alias).await);
    }
    assert!(
        leaders.len() >= 2,
        "the processes' shards are led by one node: {leaders:?}"
    );
    wait_kept_as_led(&h, &processes, Duration::from_secs(10)).await;

    // The leader of team-0's shard crashes; the node that takes it over
    // keeps team-0's resources and heals a rogue rule on its group.
    let (alias, fid) = processes[0].clone();
    let before = h.owned(fid).len();
    let crashed = h.leader_of(&alias).await;
    h.crash(crashed).await;
    let mut new_leader = h.leader_of(&alias).await;
    while new_leader == crashed {
        tokio::time::sleep(Duration::from_millis(100)).await;
        new_leader = h.leader_of(&alias).await;
    }
    wait_kept_as_led(&h, &processes, Duration::from_secs(15)).await;
    let p = h.process(&alias, fid).await;
    let sg = h.cloud_id(&p, "web-sg");
    h.cloud
        .rogue_authorize_ingress(&scope(), &sg, all_traffic())
        .unwrap();
    let healed = tokio::time::Instant::now();
    while ingress_of(&h.cloud.describe(&scope(), &sg).unwrap()).contains(&all_traffic()) {
        assert!(
            healed.elapsed() < Duration::from_secs(15),
            "node {new_leader}, team-0's new leader, did not heal its rogue rule"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.owned(fid).len(),
        before,
        "the new leader made something twice"
    );
    h.shutdown().await;
}
