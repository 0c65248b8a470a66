//! NAT gateways take their time: a RUN job waits for a `pending` gateway
//! (saying so on the job) without failing or blocking the node's other
//! processes, finishes once the routes through it are made, and a gateway
//! deleted behind Canon's back is replaced, its route following once the
//! new one is available.

mod support;

use std::time::Duration;

use canon_cloud::sim::Faults;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    quick_config(Duration::from_secs(1))
}

/// The route through `nat` in the private table, as the cloud shows it.
fn private_route(h: &Harness, p: &canon_raft::state::ProcessRecord) -> Option<String> {
    let table = h.cloud_id(p, "net.privateRoutes");
    match h.cloud.describe(&scope(), &table)?.spec {
        Spec::RouteTable(t) => t
            .routes
            .iter()
            .find(|r| r.destination == canon_model::IpCidr::V4(Ipv4Cidr::ANY))
            .map(|r| r.target.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_a_pending_nat_gateway_and_others_go_on() {
    let h = Harness::start(1, 4, config()).await;
    h.cloud.set_faults(Faults {
        nat_gateway_delay: Duration::from_secs(3),
        ..Faults::none()
    });
    let fid = Fid::random();
    h.run("private", &demo::nat_network(fid).unwrap()).await;
    let p = h
        .wait_for(
            "private",
            fid,
            Duration::from_secs(10),
            "the job to wait",
            |p| {
                last_job(p, JobKind::Run)
                    .is_some_and(|j| j.message.starts_with("waiting for net.nat"))
            },
        )
        .await;
    assert_eq!(
        last_job(&p, JobKind::Run).unwrap().status,
        JobStatus::InProgress
    );
    assert_eq!(private_route(&h, &p), None);

    // Another process runs to the end meanwhile.
    let other = Fid::random();
    h.run("other", &network(other, "other", false)).await;
    h.wait_for(
        "other",
        other,
        Duration::from_secs(10),
        "RUN to succeed",
        |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
    )
    .await;

    let p = h
        .wait_for(
            "private",
            fid,
            Duration::from_secs(20),
            "RUN to succeed",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
        )
        .await;
    let nat = h.cloud_id(&p, "net.nat");
    assert_eq!(private_route(&h, &p), Some(nat.clone()));

    // Deleted behind Canon's back: a new gateway, then the route through it.
    h.cloud.rogue_delete_nat_gateway(&scope(), &nat).unwrap();
    let p = h
        .wait_for(
            "private",
            fid,
            Duration::from_secs(30),
            "the route healed",
            |p| {
                p.bindings
                    .get(&LogicalId::new(fid, "net.nat"))
                    .is_some_and(|b| b.cloud_id != nat)
                    && p.drift.values().filter(|d| d.healed_at.is_some()).count() >= 2
            },
        )
        .await;
    let replaced = h.cloud_id(&p, "net.nat");
    assert_eq!(private_route(&h, &p), Some(replaced));
    h.shutdown().await;
}
