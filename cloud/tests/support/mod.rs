//! Shared test support: the demo's declaration, a minimal executor of plans,
//! and the moto server.

#![allow(dead_code)]

pub mod conformance;
pub mod import;
pub mod moto;
pub mod recorder;
pub mod release;

use canon_cloud::{Cloud, CloudError, ExecContext, Outcome, Scope};
use canon_model::plan::{plan, Plan};
use canon_model::*;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-west-2";

pub fn scope() -> Scope {
    Scope::new(ACCOUNT, REGION)
}

pub fn ctx(job: &str) -> ExecContext {
    ExecContext::new(ACCOUNT, job, 1, 1)
}

pub fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
}

pub fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn web(port: i32) -> Rule<Ref> {
    demo::web_rule(port)
}

pub fn sg_id(fid: Fid) -> LogicalId {
    LogicalId::new(fid, "dev-sam-sg")
}

/// The demo's network (`canon_model::demo`), optionally with SSH.
pub fn demo(fid: Fid, ssh: bool) -> DesiredState {
    demo::DemoNetwork::default()
        .with_ssh(ssh)
        .build(fid)
        .unwrap()
}

/// Executes a plan in order the way the scheduler will: adopt, resolve each
/// request with the bindings so far, execute, bind what was created.
pub async fn apply(
    cloud: &dyn Cloud,
    p: &Plan,
    bindings: &mut Bindings,
    ctx: &ExecContext,
) -> Result<Vec<Outcome>, CloudError> {
    for (l, c) in &p.adoptions {
        bindings.bind(*l, c.clone());
    }
    let mut out = Vec::new();
    for req in &p.requests {
        let resolved = req
            .resolve(|l| bindings.cloud_id(l).map(String::from))
            .map_err(|u| CloudError::terminal("Canon.Unresolved", u.to_string()))?;
        let o = cloud.execute(&resolved, ctx).await?;
        if req.action.creates().is_some() {
            let id = o.cloud_id.clone().expect("a create returns a cloud id");
            bindings.bind(req.target, id);
        }
        out.push(o);
    }
    Ok(out)
}

/// Observes and plans `desired` (or kill, when `None`).
pub async fn observe_and_plan(
    cloud: &dyn Cloud,
    fid: Fid,
    desired: Option<&DesiredState>,
    bindings: &Bindings,
) -> (ObservedState, Plan) {
    let observed = cloud.observe(&scope()).await.expect("observe");
    let p = match desired {
        Some(d) => plan(d, &observed, bindings),
        None => canon_model::plan::plan_kill(fid, &observed, bindings),
    };
    (observed, p)
}

/// The observed security group bound to the demo's group.
pub fn observed_group(
    observed: &ObservedState,
    bindings: &Bindings,
    fid: Fid,
) -> SecurityGroupSpec<String> {
    let id = bindings.cloud_id(&sg_id(fid)).expect("group bound");
    match &observed.get(id).expect("group observed").spec {
        Spec::SecurityGroup(s) => s.clone(),
        other => panic!("not a group: {other:?}"),
    }
}

pub fn rules(ports: &[i32]) -> canon_model::SortedVecSet<Rule<String>> {
    ports
        .iter()
        .map(|p| Rule::new(Protocol::Tcp, *p, *p, Peer::Cidr(Ipv4Cidr::ANY)))
        .collect()
}

pub fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}
