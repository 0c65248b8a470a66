//! A member whose data dir was wiped while it was still a member (a
//! replaced disk, or a drill's replace-member whose removal had not gone
//! through) comes back with an empty log. Its leader must give it the log
//! again from the start and carry on; openraft 0.9's leader otherwise
//! panics on a follower's log that went backwards, and the whole group
//! stops on that leader (the drill saw a follower left 900 entries behind
//! for good).

mod common;

use std::time::Duration;

use canon_raft::shard::group_of_shard;
use canon_raft::RaftSettings;
use common::{aliases_in, create, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_back_on_an_empty_data_dir_gets_the_log_again() {
    let shards = 1;
    let g = group_of_shard(0);
    let aliases = aliases_in(g, shards, 40, "p");
    let mut c = Cluster::start(3, shards, RaftSettings::loopback()).await;
    c.bootstrap().await;
    let leader = c.wait_leader(g, Duration::from_secs(10)).await;
    let wiped = (0..3).find(|i| *i != leader).unwrap();
    for (n, alias) in aliases[..20].iter().enumerate() {
        c.node(leader)
            .propose(g, create(alias, n as u64))
            .await
            .expect("a write before the wipe");
    }
    c.wait_applied(wiped, g, c.applied(leader, g), Duration::from_secs(10))
        .await;

    c.kill(wiped).await;
    // Wiped by moving the dir aside: the stopped node's last writes may
    // still land in it (remove_dir_all then races them: "Directory not
    // empty"); the node restarts on an empty dir either way.
    let dir = c.data_dir(wiped);
    std::fs::rename(&dir, dir.with_extension("wiped")).unwrap();
    c.restart(wiped).await;

    // The group goes on: writes through the leader still commit...
    let leader = c.wait_leader(g, Duration::from_secs(10)).await;
    for (n, alias) in aliases[20..].iter().enumerate() {
        tokio::time::timeout(
            Duration::from_secs(10),
            c.node(leader).propose(g, create(alias, 100 + n as u64)),
        )
        .await
        .expect("a write after the wipe within 10 s")
        .expect("a write after the wipe");
    }
    // ...and the wiped member has the whole log again, old entries too.
    c.wait_applied(wiped, g, c.applied(leader, g), Duration::from_secs(20))
        .await;
    let held = c
        .node(wiped)
        .read_applied(g, |s| {
            aliases
                .iter()
                .filter(|a| s.process_by_alias(a).is_some())
                .count()
        })
        .unwrap()
        .1;
    assert_eq!(held, 40, "the wiped member holds every process again");
    c.shutdown().await;
}
