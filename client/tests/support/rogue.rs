//! The rogue operator of the drift tests: an all-traffic ingress rule
//! added to a security group behind Canon's back, through the cloud
//! adapter itself, and whether the cloud still shows it.

use canon_cloud::{Cloud, ExecContext, Scope};
use canon_model::{Action, CloudRef, Fid, Ipv4Cidr, LogicalId, Peer, Protocol, Request, Rule};

/// Adds the all-traffic rule to group `sg`.
pub async fn add_all_traffic_rule(cloud: &dyn Cloud, scope: &Scope, sg: &str) {
    let action = Action::AuthorizeSecurityGroupIngress {
        group: CloudRef::Id(sg.to_string()),
        rules: [Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))].into(),
    };
    rogue(cloud, scope, action).await;
}

/// Makes the EC2 call `action` in `scope`, as someone outside Canon would.
pub async fn rogue(cloud: &dyn Cloud, scope: &Scope, action: Action) {
    let rogue = Request {
        target: LogicalId::new(Fid::random(), "rogue"),
        part: None,
        region: scope.region.clone(),
        action,
    };
    let ctx = ExecContext::new(scope.account.clone(), "rogue", 0, 0);
    cloud.execute(&rogue, &ctx).await.expect("the rogue call");
}

/// Whether group `sg` admits all traffic, as the cloud shows it.
pub async fn admits_all(cloud: &dyn Cloud, scope: &Scope, sg: &str) -> bool {
    let observed = cloud.observe(scope).await.expect("observe");
    let r = observed.get(sg).expect("the group is observed");
    let spec = serde_json::to_value(&r.spec).unwrap();
    spec["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| rule["protocol"] == "all")
}
