//! A shard leader's lease lapsing *within* its term, end to end (issue #19).
//!
//! A leader counts itself leader (`canon_raft::Leadership::is_me`) only
//! while a quorum acknowledged it within its lease. On a loaded machine
//! that lapses and returns within one term; at 100,000 processes an actor
//! that ticked during such a lapse ended for good (its RUN job stuck IN
//! PROGRESS) while its node went on leading the same term. Here the
//! leader of a process's shard loses its followers' answers for a few
//! ticks, so that its lease lapses and returns in the same term; afterwards
//! the same node, in the same term, must still heal a rogue change to the
//! process and carry out an update of it, within a few ticks, with no
//! restart of anything, and without having restarted the process's actor.
//!
//! Why the followers' answers and not both directions: a follower cut off
//! from its leader in both directions may campaign as soon as the lease
//! ends. Canon calls elections itself (`canon_raft`'s pre-vote module,
//! openraft's timer is off): a voter asks after a silence drawn from
//! `[election_max, 2 × election_max − election_min)`, and its peers agree
//! once they too heard no leader for `election_max`: the very lease after
//! which the leader stops counting itself leader. No cut length sits
//! between the two for every draw. And a turmoil partition refuses new
//! connections at once, which quick failover (`canon_raft`'s failover
//! module) takes for a dead leader and replaces it within a few
//! heartbeats. With only the followers' answers lost, the followers keep
//! hearing their leader, so none campaigns, while the leader hears no
//! acknowledgement: its lease lapses, as with a loaded machine's late
//! acknowledgements, and returns when they do.
//!
//! One fixed seed on three nodes: turmoil replays it exactly, so the lapse
//! happens the same way on every run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_client::pb;
use canon_cloud::sim::Caller;
use canon_cloud::SimCloud;
use canon_model::{Fid, JobKind, JobStatus};
use canon_raft::shard::group_of_alias;
use canon_raft::state::ProcessRecord;
use canon_raft::{Consistency, Leadership, NodeId, RaftNode};
use canon_scheduler::SchedulerConfig;
use sim_tests::cluster::{host_name, leading, lock, Handles, SchedulerStatsByNode, SHARD_COUNT};
use sim_tests::net::sdk_client;
use sim_tests::workload::{composition_index, compositions, open_everything};
use sim_tests::world::{raft_settings, World};
use sim_tests::SimConfig;
use tokio::time::Instant;

const SEED: u64 = 1;
const NODES: usize = 3;
const ALIAS: &str = "lapse";

/// The scheduler's tick, and its jitter (each interval is scaled by
/// `1 ± JITTER`).
const TICK: Duration = Duration::from_secs(1);
const JITTER: f64 = 0.1;

/// How long the leader's followers cannot answer it. With the simulation's
/// Raft settings its lease lapses at most 700 ms in (`lapsed_by`: a 600 ms
/// lease judged every 100 ms heartbeat), so it stays lapsed 2.3 s at
/// least: two ticks of at most 1.1 s each
/// (`the_cut_outlasts_the_lease_by_ticks`), so the actor ticks while it is
/// lapsed. However long the cut, no follower campaigns: they all still
/// hear the leader.
const CUT: Duration = Duration::from_millis(3_000);

/// Within how long after the heal the leader must count itself leader
/// again, and then heal a rogue change or finish an update: a few ticks.
const LEADS_AGAIN_WITHIN: Duration = Duration::from_secs(2);
const FEW_TICKS: Duration = Duration::from_secs(3);

/// How long the cluster may take to form and run the process at first.
const START_WITHIN: Duration = Duration::from_secs(30);

/// How far into the cut the leader's lease has surely lapsed: it counts
/// itself leader while a quorum acknowledged it within `election_max`,
/// judged every heartbeat.
fn lapsed_by() -> Duration {
    let s = raft_settings();
    s.election_max + s.heartbeat
}

fn tick_every_second(config: &mut SchedulerConfig) {
    config.tick_interval = TICK;
    config.jitter = JITTER;
}

#[test]
fn the_cut_outlasts_the_lease_by_ticks() {
    let longest_tick = TICK.mul_f64(1.0 + JITTER);
    assert!(
        lapsed_by() + 2 * longest_tick <= CUT,
        "the actor must tick at least twice while the lease is lapsed: lapsed by {:?}, a tick every {longest_tick:?} at most, cut {CUT:?}",
        lapsed_by()
    );
}

#[test]
fn a_lease_lapse_within_a_term_leaves_the_process_enforced_and_commanded() {
    let config = SimConfig {
        scheduler: Some(tick_every_second),
        events: false,
        ..SimConfig::new(SEED, NODES)
    };
    let mut world = World::build(&config);
    let scenario = Scenario {
        cloud: world.cloud.clone(),
        handles: world.handles.clone(),
        schedulers: world.schedulers.clone(),
        signer: world.signer.clone(),
        fid: Fid(uuid::Uuid::from_u128(0x1a95e)),
        group: group_of_alias(ALIAS, SHARD_COUNT),
    };
    let outcome: Arc<Mutex<Option<Result<(), String>>>> = Arc::default();
    let slot = outcome.clone();
    world.sim.client("client", async move {
        let result = scenario.run().await;
        *lock(&slot) = Some(result);
        Ok(())
    });
    world.drive().expect("the simulation runs");
    let outcome = lock(&outcome).take().expect("the scenario ran to its end");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// What the client host needs to drive the scenario and look at the
/// cluster.
struct Scenario {
    cloud: Arc<SimCloud>,
    handles: Handles,
    schedulers: SchedulerStatsByNode,
    signer: canon_client::Signer,
    fid: Fid,
    group: u64,
}

/// The shard's leader and term before the cut.
#[derive(Debug, Clone, Copy)]
struct Led {
    node: NodeId,
    term: u64,
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

impl Scenario {
    async fn run(&self) -> Result<(), String> {
        self.start_process().await?;
        let led = self.leader()?;
        let actors_before = self.actors_started(led.node)?;

        self.leave_unanswered(led).await?;
        self.leads_again(led).await?;

        self.heals_a_rogue_change(led).await?;
        self.carries_out_an_update(led).await?;

        let actors_after = self.actors_started(led.node)?;
        ensure(actors_after == actors_before, || {
            format!(
                "node {} started {} actors during the lapse (before {actors_before}, after {actors_after}): \
                 a lapse within the term must keep the shard's actors, not restart them",
                led.node,
                actors_after - actors_before
            )
        })
    }

    /// Runs the process and waits until its RUN job succeeded and the cloud
    /// matches it.
    #[allow(clippy::needless_update)]
    async fn start_process(&self) -> Result<(), String> {
        let compiled = compositions()?;
        let run = pb::command::Action::Run(pb::Run {
            alias: ALIAS.into(),
            fid: self.fid.0.to_string(),
            account: String::new(),
            composition: Some(compiled[composition_index(false, false)].clone()),
            ..Default::default()
        });
        let began = Instant::now();
        self.submit(run, START_WITHIN).await?;
        self.wait_for(
            "the RUN job to succeed and the cloud to match",
            START_WITHIN,
            move || async move {
                self.job_done(|j| j.kind == JobKind::Run).await && self.converged().await
            },
        )
        .await?;
        eprintln!("process converged {:?} after its RUN", began.elapsed());
        Ok(())
    }

    /// The node leading the process's shard, and its term.
    fn leader(&self) -> Result<Led, String> {
        match leading(&self.handles, self.group) {
            Some(Leadership {
                leader: Some(node),
                term,
                ..
            }) => Ok(Led { node, term }),
            other => Err(format!("nobody leads group {}: {other:?}", self.group)),
        }
    }

    /// Drops every message from the other nodes to the leader for [`CUT`],
    /// checking that its lease lapsed meanwhile, in its term; then heals
    /// the network.
    async fn leave_unanswered(&self, led: Led) -> Result<(), String> {
        let leader = host_name(led.node as usize - 1);
        let others: Vec<String> = (0..NODES).map(host_name).filter(|h| *h != leader).collect();
        for other in &others {
            turmoil::partition_oneway(other.as_str(), leader.as_str());
        }
        let began = Instant::now();
        let mut lapsed_at = None;
        while began.elapsed() < CUT {
            let l = self.leadership_on(led.node)?;
            if lapsed_at.is_none() && l.term == led.term && !l.is_me {
                lapsed_at = Some(began.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for other in &others {
            turmoil::repair_oneway(other.as_str(), leader.as_str());
        }
        let lapsed_at = lapsed_at.ok_or_else(|| {
            format!(
                "node {}'s lease never lapsed in term {} while unanswered for {CUT:?}: the test proves nothing",
                led.node, led.term
            )
        })?;
        eprintln!(
            "node {} unanswered for {CUT:?}; its lease lapsed {lapsed_at:?} into the cut",
            led.node
        );
        Ok(())
    }

    /// After the heal: the same node counts itself leader again, in the
    /// same term (nobody campaigned), and every node agrees.
    async fn leads_again(&self, led: Led) -> Result<(), String> {
        let began = Instant::now();
        self.wait_for(
            "the unanswered leader to lead again",
            LEADS_AGAIN_WITHIN,
            move || async move {
                self.leadership_on(led.node)
                    .is_ok_and(|l| l.is_me || l.term != led.term)
            },
        )
        .await?;
        for node in 1..=NODES as NodeId {
            let l = self.leadership_on(node)?;
            ensure(l.term == led.term && l.leader == Some(led.node), || {
                format!(
                    "after the heal node {node} sees {l:?}; want node {} leading in term {}",
                    led.node, led.term
                )
            })?;
        }
        ensure(self.leadership_on(led.node)?.is_me, || {
            format!("node {} does not count itself leader again", led.node)
        })?;
        eprintln!(
            "node {} leads term {} again {:?} after the heal",
            led.node,
            led.term,
            began.elapsed()
        );
        Ok(())
    }

    /// A rogue change to the process's security group is healed within a
    /// few ticks, by the leader in its term.
    async fn heals_a_rogue_change(&self, led: Led) -> Result<(), String> {
        let since = self.cloud.mutations().len();
        let sg = open_everything(&self.cloud, self.fid)
            .ok_or("the process has no security group to open")?;
        let began = Instant::now();
        self.wait_for(
            &format!("the rogue rule on {sg} to be healed"),
            FEW_TICKS,
            move || self.converged(),
        )
        .await?;
        eprintln!("rogue rule healed {:?} after it was made", began.elapsed());
        self.acted_only_as(led, since)
    }

    /// An update of the process (SSH let in) is carried out within a few
    /// ticks, by the leader in its term: its job SUCCEEDED and the cloud
    /// matches.
    #[allow(clippy::needless_update)]
    async fn carries_out_an_update(&self, led: Led) -> Result<(), String> {
        let compiled = compositions()?;
        let update = pb::command::Action::Update(pb::Update {
            alias: ALIAS.into(),
            composition: Some(compiled[composition_index(true, false)].clone()),
            ..Default::default()
        });
        let since = self.cloud.mutations().len();
        let began = Instant::now();
        let job = self.submit(update, FEW_TICKS).await?;
        self.wait_for(
            &format!("update job {job} to succeed and the cloud to match"),
            FEW_TICKS,
            move || async move { self.job_done(|j| j.id == job).await && self.converged().await },
        )
        .await?;
        eprintln!(
            "update job {job} succeeded {:?} after it was sent",
            began.elapsed()
        );
        self.acted_only_as(led, since)
    }

    /// Every conductor's cloud mutation since the `since`-th was made by
    /// `led`'s node in its term, and there was one at least.
    fn acted_only_as(&self, led: Led, since: usize) -> Result<(), String> {
        let by_conductors: Vec<(u64, u64)> = self
            .cloud
            .mutations()
            .iter()
            .skip(since)
            .filter_map(|m| match &m.caller {
                Caller::Conductor { node_id, term, .. } => Some((*node_id, *term)),
                Caller::Rogue => None,
            })
            .collect();
        ensure(!by_conductors.is_empty(), || {
            "no conductor changed the cloud".to_string()
        })?;
        ensure(
            by_conductors.iter().all(|&m| m == (led.node, led.term)),
            || {
                format!(
                    "cloud changed by (node, term) {by_conductors:?}; want only ({}, {})",
                    led.node, led.term
                )
            },
        )
    }

    /// Submits `action` until a node accepts it (for up to `within`); the
    /// job it started.
    async fn submit(&self, action: pb::command::Action, within: Duration) -> Result<u64, String> {
        let began = Instant::now();
        loop {
            let hosts = (0..NODES).map(host_name).collect();
            let client = sdk_client(hosts, self.signer.clone()).map_err(|e| e.to_string())?;
            match client.submit(action.clone(), false).await {
                Ok(reply) => return Ok(reply.job),
                Err(e) if began.elapsed() > within => {
                    return Err(format!("no node took {action:?} within {within:?}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Polls `done` every 100 ms for up to `within`.
    async fn wait_for<F, Fut>(&self, what: &str, within: Duration, done: F) -> Result<(), String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let began = Instant::now();
        while !done().await {
            if began.elapsed() > within {
                let record = self.record().await;
                return Err(format!(
                    "waited {within:?} for {what}; unsettled: {:?}; jobs: {:?}",
                    self.unsettled().await,
                    record.map(|r| r.jobs.into_values().collect::<Vec<_>>())
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// What keeps the process from matching the cloud on every node.
    async fn unsettled(&self) -> Vec<String> {
        let created = [(ALIAS.to_string(), self.fid)];
        sim_tests::check::state(&self.cloud, &self.handles, &created).await
    }

    async fn converged(&self) -> bool {
        self.unsettled().await.is_empty()
    }

    /// Whether a job `which` picks succeeded, as the shard's leader has it.
    async fn job_done(&self, which: impl Fn(&canon_model::JobRecord) -> bool) -> bool {
        self.record().await.is_some_and(|r| {
            r.jobs
                .values()
                .any(|j| which(j) && j.status == JobStatus::Succeeded)
        })
    }

    /// The process's record on the node leading its shard.
    async fn record(&self) -> Option<ProcessRecord> {
        let node = self
            .node(leading(&self.handles, self.group)?.leader?)
            .ok()?;
        let fid = self.fid;
        node.read(self.group, Consistency::Stale, |s| s.process(&fid).cloned())
            .await
            .ok()
            .flatten()
    }

    fn node(&self, id: NodeId) -> Result<RaftNode, String> {
        lock(&self.handles)
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("node {id} is not running"))
    }

    fn leadership_on(&self, id: NodeId) -> Result<Leadership, String> {
        let rx = self
            .node(id)?
            .leadership(self.group)
            .map_err(|e| e.to_string())?;
        let l = *rx.borrow();
        Ok(l)
    }

    fn actors_started(&self, id: NodeId) -> Result<u64, String> {
        lock(&self.schedulers)
            .get(&id)
            .map(|s| s.actors_started())
            .ok_or_else(|| format!("node {id} runs no scheduler"))
    }
}
