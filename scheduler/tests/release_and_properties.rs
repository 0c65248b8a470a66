//! Release and the per-process properties, carried out by the scheduler on
//! the simulated cloud: a release untags everything the process owns and
//! deletes nothing, then the process is Released and never touched again;
//! with enforcement off drift is recorded and alerted once but not healed,
//! and turning it back on heals it.

mod support;

use std::time::Duration;

use canon_model::*;
use canon_raft::Command;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    quick_config(Duration::from_millis(500))
}

const JOB_TIME: Duration = Duration::from_secs(20);

fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}

async fn running(h: &Harness, alias: &str) -> Fid {
    let fid = Fid::random();
    h.run(alias, &network(fid, alias, false)).await;
    h.wait_for(alias, fid, JOB_TIME, "RUN to succeed", |p| {
        last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    fid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_untags_everything_and_deletes_nothing() {
    let h = Harness::start(1, 2, config()).await;
    let fid = running(&h, "rel").await;
    let ids: Vec<String> = h.owned(fid).into_iter().map(|r| r.cloud_id).collect();
    assert_eq!(ids.len(), 6);

    h.set_state("rel", fid, ProcessState::Releasing).await;
    let job = h.start_job("rel", fid, JobKind::Release).await;
    let j = h.wait_job("rel", fid, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    let p = h.process("rel", fid).await;
    assert_eq!(p.state, ProcessState::Released);
    assert!(p.bindings.is_empty());
    assert!(h.owned(fid).is_empty(), "{:?}", h.owned(fid));
    for id in &ids {
        let r = h
            .cloud
            .describe(&scope(), id)
            .unwrap_or_else(|| panic!("{id} was deleted"));
        assert!(!r.spec.tags().contains_key(OWNERSHIP_TAG), "{r:?}");
    }
    // The release's calls: one DeleteTags per resource, nothing deleted.
    let calls: Vec<String> = h
        .cloud
        .mutations()
        .iter()
        .filter(|m| m.target.is_some_and(|t| t.fid == fid))
        .map(|m| m.action.clone())
        .skip_while(|a| a != "aws.ec2.delete_tags")
        .collect();
    assert_eq!(calls, vec!["aws.ec2.delete_tags"; ids.len()]);

    // Never touched again: a rogue change stays.
    let sg = ids.iter().find(|i| i.starts_with("sg-")).unwrap();
    h.cloud
        .rogue_authorize_ingress(&scope(), sg, all_traffic())
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = h.cloud.describe(&scope(), sg).unwrap();
    assert!(ingress_of(&r).contains(&all_traffic()));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_off_records_and_alerts_drift_once_and_on_heals_it() {
    let h = Harness::start(1, 2, config()).await;
    let fid = running(&h, "sam").await;
    let p = h.process("sam", fid).await;
    let sg = h.cloud_id(&p, "web-sg");
    let set = |on| Command::ProcessPropertySet {
        fid,
        property: ProcessProperty::Enforcement(on),
    };
    assert!(h.propose("sam", set(false)).await.is_applied());

    h.cloud
        .rogue_authorize_ingress(&scope(), &sg, all_traffic())
        .unwrap();
    let p = h
        .wait_for("sam", fid, Duration::from_secs(10), "drift recorded", |p| {
            !p.drift.is_empty()
        })
        .await;
    // Several ticks later: still there, recorded once, alerted once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rules = ingress_of(&h.cloud.describe(&scope(), &sg).unwrap());
    assert!(
        rules.contains(&all_traffic()),
        "healed with enforcement off"
    );
    let later = h.process("sam", fid).await;
    assert_eq!(later.drift.len(), 1, "{:?}", later.drift);
    let d = later.drift.values().next().unwrap();
    assert_eq!(d.healed_at, None);
    assert_eq!(
        p.drift.keys().collect::<Vec<_>>(),
        later.drift.keys().collect::<Vec<_>>()
    );
    assert_eq!(h.heard.of("drift.opened", "sam"), vec![d.id]);
    assert!(h.heard.of("drift.healed", "sam").is_empty());

    // On again: the recorded event is the one healed.
    assert!(h.propose("sam", set(true)).await.is_applied());
    let healed = h
        .wait_for(
            "sam",
            fid,
            Duration::from_secs(10),
            "the drift healed",
            |p| p.drift.values().all(|d| d.healed_at.is_some()),
        )
        .await;
    assert_eq!(healed.drift.len(), 1);
    let rules = ingress_of(&h.cloud.describe(&scope(), &sg).unwrap());
    assert!(!rules.contains(&all_traffic()));
    assert_eq!(h.heard.of("drift.healed", "sam"), vec![d.id]);
    h.shutdown().await;
}
