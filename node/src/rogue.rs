//! `canon.api.v1.DevAdmin`: the rogue operator who changes a dev cluster's
//! simulated cloud behind Canon's back (`canon dev rogue ...`). Every node
//! with a simulated cloud serves it next to the client API, so the server
//! wires it in; it is its own module because the rest of the dev story
//! (a cluster in one process, [`crate::dev`]) sits on top of that server.

use std::sync::Arc;

use canon_cloud::{Scope, SimCloud};
use canon_model::{AclEntry, Action, CloudRef, IpCidr, Peer, Protocol, Rule};
use canon_proto::canon::api::v1 as pb;
use tonic::{Request, Response, Status};

/// `canon.api.v1.DevAdmin` over a simulated cloud.
#[derive(Clone)]
pub struct DevAdminService {
    sim: Arc<SimCloud>,
    account: String,
}

impl DevAdminService {
    pub fn new(sim: Arc<SimCloud>, account: String) -> Self {
        DevAdminService { sim, account }
    }

    pub fn into_server(self) -> pb::dev_admin_server::DevAdminServer<DevAdminService> {
        pb::dev_admin_server::DevAdminServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::dev_admin_server::DevAdmin for DevAdminService {
    async fn rogue(
        &self,
        request: Request<pb::RogueRequest>,
    ) -> Result<Response<pb::RogueReply>, Status> {
        let r = request.into_inner();
        let account = if r.account.is_empty() {
            self.account.clone()
        } else {
            r.account
        };
        let region = if r.region.is_empty() {
            "us-west-2".to_string()
        } else {
            r.region
        };
        let scope = Scope::new(account, region);
        let outcome = match r.action {
            Some(pb::rogue_request::Action::AuthorizeIngress(i)) => {
                let protocol = Protocol::parse(&i.protocol).ok_or_else(|| {
                    Status::invalid_argument(format!("unknown protocol {:?}", i.protocol))
                })?;
                let peer = match range(&i.cidr)? {
                    IpCidr::V4(c) => Peer::Cidr(c),
                    IpCidr::V6(c) => Peer::Ipv6Cidr(c),
                };
                let rule = Rule::new(protocol, i.from_port, i.to_port, peer);
                if i.egress {
                    let action = Action::AuthorizeSecurityGroupEgress {
                        group: CloudRef::Id(i.group),
                        rules: [rule.map_peer(|g: &String| CloudRef::Id(g.clone()))].into(),
                    };
                    self.sim.rogue(&scope, &action)
                } else {
                    self.sim.rogue_authorize_ingress(&scope, &i.group, rule)
                }
            }
            Some(pb::rogue_request::Action::DeleteSubnet(subnet)) => {
                self.sim.rogue_delete_subnet(&scope, &subnet)
            }
            Some(pb::rogue_request::Action::AddNaclEntry(e)) => {
                let entry = nacl_entry(&e)?;
                self.sim.rogue_add_nacl_entry(&scope, &e.network_acl, entry)
            }
            Some(pb::rogue_request::Action::Ec2(json)) => {
                let action = ec2_action(&json)?;
                self.sim.rogue(&scope, &action)
            }
            Some(pb::rogue_request::Action::DisassociateRouteTable(of)) => {
                let association_id = association(&self.sim, &scope, of)?;
                let action = Action::DisassociateRouteTable { association_id };
                self.sim.rogue(&scope, &action)
            }
            None => return Err(Status::invalid_argument("no rogue action")),
        };
        match outcome {
            Ok(o) => Ok(Response::new(pb::RogueReply {
                message: format!("done in {scope}: {}", o.changes.join("; ")),
            })),
            Err(e) => Err(Status::failed_precondition(e.to_string())),
        }
    }
}

/// An IPv4 or IPv6 range as a rogue request spells it.
fn range(cidr: &str) -> Result<IpCidr, Status> {
    IpCidr::parse_range(cidr).map_err(Status::invalid_argument)
}

/// The network ACL entry a rogue request describes.
fn nacl_entry(e: &pb::RogueNaclEntry) -> Result<AclEntry, Status> {
    let words = (e.protocol.as_str(), e.action.as_str(), e.cidr.as_str());
    AclEntry::from_words(e.egress, e.rule_number, words, (e.from_port, e.to_port))
        .map_err(Status::invalid_argument)
}

/// The EC2 call a rogue request spells as a model action in JSON.
fn ec2_action(json: &str) -> Result<Action, Status> {
    serde_json::from_str(json)
        .map_err(|e| Status::invalid_argument(format!("not an EC2 call Canon knows: {e}")))
}

/// The route table association `of` names: itself (`rtbassoc-…`), or the
/// one of subnet `of`.
fn association(sim: &SimCloud, scope: &Scope, of: String) -> Result<String, Status> {
    if of.starts_with("rtbassoc-") {
        return Ok(of);
    }
    sim.route_table_association(scope, &of).ok_or_else(|| {
        Status::failed_precondition(format!(
            "{of} is in no route table of {scope} but its VPC's main one (give a subnet-… \
             associated with a route table, or an rtbassoc-… id)"
        ))
    })
}
