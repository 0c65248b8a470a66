//! `canon run --import` carried out by the scheduler on the simulated
//! cloud: a network that exists untagged (released by an earlier process)
//! is adopted by a new one's RUN job — tagged, bound, no create — and then
//! enforced; a kill deletes it.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    quick_config(Duration::from_millis(500))
}

const JOB_TIME: Duration = Duration::from_secs(20);

async fn job_succeeded(h: &Harness, alias: &str, fid: Fid, kind: JobKind) {
    h.wait_for(alias, fid, JOB_TIME, "the job to succeed", |p| {
        last_job(p, kind).is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_network_is_adopted_without_a_create_then_enforced_and_killed() {
    let h = Harness::start(1, 2, config()).await;
    // What exists: a network a released process left untagged.
    let maker = Fid::random();
    h.run("maker", &network(maker, "brown", false)).await;
    job_succeeded(&h, "maker", maker, JobKind::Run).await;
    let existing: BTreeSet<String> = h.owned(maker).into_iter().map(|r| r.cloud_id).collect();
    h.set_state("maker", maker, ProcessState::Releasing).await;
    h.start_job("maker", maker, JobKind::Release).await;
    job_succeeded(&h, "maker", maker, JobKind::Release).await;
    assert!(h.owned(maker).is_empty());

    // The import: the same network, but with SSH (drift to heal).
    let fid = Fid::random();
    let declared = network(fid, "brown", true);
    let found = canon_cloud::import::find(&*h.cloud, ACCOUNT, &declared)
        .await
        .expect("every declaration matches");
    assert!(found.plan.created.is_empty(), "{:?}", found.plan.created);
    h.run_importing("brown", &declared, None, found.plan.mapping())
        .await;
    job_succeeded(&h, "brown", fid, JobKind::Run).await;
    let adopted: BTreeSet<String> = h.owned(fid).into_iter().map(|r| r.cloud_id).collect();
    assert_eq!(adopted, existing, "the same resources, none new");
    let p = h.process("brown", fid).await;
    assert_eq!(p.bindings.len(), declared.resources.len());
    let calls: Vec<String> = h
        .cloud
        .mutations()
        .iter()
        .filter(|m| m.target.is_some_and(|t| t.fid == fid))
        .map(|m| m.action.clone())
        .collect();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("create") && !c.contains("tags")),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.contains("authorize")),
        "SSH added: {calls:?}"
    );

    // Owned now: a kill deletes it.
    let job = h.kill_process("brown", fid).await;
    let j = h.wait_job("brown", fid, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    for id in &existing {
        assert!(
            h.cloud.describe(&scope(), id).is_none(),
            "{id} survived the kill"
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_resources_another_process_took_since_fails_and_tags_nothing_over() {
    let h = Harness::start(1, 2, config()).await;
    let maker = Fid::random();
    h.run("maker", &network(maker, "contested", false)).await;
    job_succeeded(&h, "maker", maker, JobKind::Run).await;
    h.set_state("maker", maker, ProcessState::Releasing).await;
    h.start_job("maker", maker, JobKind::Release).await;
    job_succeeded(&h, "maker", maker, JobKind::Release).await;

    // Two imports of the same network, both accepted at the door while it
    // was untagged: the second runs after the first adopted everything.
    let first = Fid::random();
    let second = Fid::random();
    let decl_first = network(first, "contested", false);
    let decl_second = network(second, "contested", false);
    let found_first = canon_cloud::import::find(&*h.cloud, ACCOUNT, &decl_first)
        .await
        .unwrap();
    let found_second = canon_cloud::import::find(&*h.cloud, ACCOUNT, &decl_second)
        .await
        .unwrap();
    h.run_importing("first", &decl_first, None, found_first.plan.mapping())
        .await;
    job_succeeded(&h, "first", first, JobKind::Run).await;
    let held: BTreeSet<String> = h.owned(first).into_iter().map(|r| r.cloud_id).collect();
    assert_eq!(held.len(), decl_first.resources.len());

    h.run_importing("second", &decl_second, None, found_second.plan.mapping())
        .await;
    let p = h
        .wait_for("second", second, JOB_TIME, "the RUN job to end", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    let run = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(run.status, JobStatus::Failed, "{run:?}");
    assert!(run.message.contains("another process"), "{}", run.message);
    assert!(run.message.contains(&first.to_string()), "{}", run.message);
    assert!(p.bindings.is_empty(), "{:?}", p.bindings);
    // Nothing tagged over: the first still owns all of it, the second none.
    assert!(h.owned(second).is_empty(), "{:?}", h.owned(second));
    let still: BTreeSet<String> = h.owned(first).into_iter().map(|r| r.cloud_id).collect();
    assert_eq!(still, held);
    // And it stays that way: the failed process waits for an update.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.owned(second).is_empty());
    assert!(h
        .cloud
        .mutations()
        .iter()
        .all(|m| m.target.is_none_or(|t| t.fid != second)));
    h.shutdown().await;
}
