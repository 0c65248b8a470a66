//! Execution through EC2: one SDK call per request (plus the idempotency
//! look-ups), with already-done outcomes for effects already in place.
//! Each action's call, and its kind's recoveries, live in the kind's file
//! under `ec2/`; this is the flow every request follows and the routing.

use std::collections::BTreeMap;

use canon_model::{Action, Request, ResourceKind};

use super::ec2::{
    dhcp_options, egress_only_internet_gateway, elastic_ip, instance, internet_gateway,
    nat_gateway, network_acl, route_table, security_group, subnet, tags, volume, vpc, vpc_endpoint,
    vpc_peering_connection, Call, Ec2,
};
use super::{AwsCloud, Resend};
use crate::idempotency::{
    client_token, found_owned, has_client_token, owner_to_find, OwnedLookups,
};
use crate::names::ec2_action;
use crate::recovery::{self, Authorization, EntryTaken, Remaining};
use crate::refs::{check_resolved, id};
use crate::request_ids::RequestIds;
use crate::{CloudError, ExecContext, Outcome, Scope};

impl AwsCloud {
    pub(super) async fn execute_request(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        check_resolved(request)?;
        let scope = ctx.scope(request);
        tracing::debug!(
            request = request.request_type(),
            guid = %request.guid(),
            job = %ctx.job_id,
            node = ctx.node_id,
            term = ctx.term,
            "executing"
        );
        let client = self.client(&scope).await?;
        let ids = RequestIds::default();
        let ec2 = Ec2 {
            cloud: self,
            scope: &scope,
            client: &client,
            ids: Some(&ids),
            select: None,
            asked: None,
        };
        let token = client_token(&ctx.job_id, request);
        let look_up = if ctx.never_sent {
            LookUp::NeverSent
        } else {
            LookUp::Before(ctx.looked_up.as_deref())
        };
        let result = carry_out(ec2, &request.action, &token, look_up).await;
        ids.attach(result)
    }

    /// One look-up per kind (of up to [`OWNERS_PER_LOOK_UP`] owners each)
    /// for every create in `requests` of a kind without client tokens.
    pub(super) async fn look_up_owned(
        &self,
        scope: &Scope,
        requests: &[Request],
    ) -> Result<OwnedLookups, CloudError> {
        let mut wanted: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        for (kind, owner) in requests.iter().filter_map(|r| owner_to_find(&r.action)) {
            wanted.entry(kind).or_default().push(owner.to_string());
        }
        let client = self.client(scope).await?;
        let ec2 = Ec2 {
            cloud: self,
            scope,
            client: &client,
            ids: None,
            select: None,
            asked: None,
        };
        let mut found = OwnedLookups::default();
        for (kind, owners) in wanted {
            for chunk in owners.chunks(OWNERS_PER_LOOK_UP) {
                let pairs = find_owned(&ec2, kind, chunk).await?;
                found.record(kind, chunk, pairs);
            }
        }
        Ok(found)
    }
}

/// The most values EC2 takes in one filter.
const OWNERS_PER_LOOK_UP: usize = 200;

/// What a create of a kind without client tokens does before it is sent.
#[derive(Clone, Copy)]
enum LookUp<'a> {
    /// No earlier attempt can have reached the cloud
    /// ([`ExecContext::never_sent`]): nothing to look for.
    NeverSent,
    /// Look for the ownership tag, unless the pass's look-up (`Some`)
    /// answered for it already.
    Before(Option<&'a OwnedLookups>),
}

/// The look-up by ownership tag before a create (none for a create never
/// sent before; done already for the whole pass when the pass's look-up
/// covers its kind), the request's call, and the recovery of its error.
async fn carry_out(
    ec2: Ec2<'_>,
    action: &Action,
    token: &str,
    look_up: LookUp<'_>,
) -> Result<Outcome, CloudError> {
    let to_find = match look_up {
        LookUp::NeverSent => None,
        LookUp::Before(looked_up) => owner_to_find(action).map(|found| (found, looked_up)),
    };
    if let Some(((kind, owner), looked_up)) = to_find {
        let existing = match looked_up.and_then(|l| l.answer(kind, owner)) {
            Some(answer) => answer.map(str::to_string),
            None => find_owned(&ec2, kind, &[owner.to_string()])
                .await?
                .into_iter()
                .next()
                .map(|(_, id)| id),
        };
        if let Some(existing) = existing {
            return Ok(found_owned(kind, existing, owner));
        }
    }
    match run(ec2, action, token).await {
        Ok(o) => Ok(o),
        Err(e) => recover(ec2, action, token, e).await,
    }
}

/// The resources of `kind` carrying an ownership tag among `owners` (at
/// most [`OWNERS_PER_LOOK_UP`]), as (owner, id): the look-up before
/// creates of kinds without client tokens (`owner_to_find`).
async fn find_owned(
    ec2: &Ec2<'_>,
    kind: ResourceKind,
    owners: &[String],
) -> Result<Vec<(String, String)>, CloudError> {
    match kind {
        ResourceKind::DhcpOptions => dhcp_options::find_owned(ec2, owners).await,
        ResourceKind::Vpc => vpc::find_owned(ec2, owners).await,
        ResourceKind::InternetGateway => internet_gateway::find_owned(ec2, owners).await,
        ResourceKind::ElasticIp => elastic_ip::find_owned(ec2, owners).await,
        ResourceKind::Subnet => subnet::find_owned(ec2, owners).await,
        ResourceKind::NatGateway => nat_gateway::find_owned(ec2, owners).await,
        ResourceKind::VpcPeeringConnection => vpc_peering_connection::find_owned(ec2, owners).await,
        // Their creates take a client token: never looked up.
        ResourceKind::EgressOnlyInternetGateway
        | ResourceKind::RouteTable
        | ResourceKind::VpcEndpoint
        | ResourceKind::NetworkAcl
        | ResourceKind::Instance
        | ResourceKind::Volume => Ok(Vec::new()),
        ResourceKind::SecurityGroup => security_group::find_owned(ec2, owners).await,
    }
}

/// Sends the one call `action` maps to, in the file of its kind.
async fn run(ec2: Ec2<'_>, action: &Action, token: &str) -> Result<Outcome, CloudError> {
    let request_type = action.request_type();
    let name = ec2_action(request_type);
    // A create of a kind without client tokens is not sent again after a
    // failure that may have made it: only a look-up may tell.
    let resend = if action.creates().is_some_and(|k| !has_client_token(k)) {
        Resend::OnlyIfRefused
    } else {
        Resend::AfterAnyTransient
    };
    let call = Call {
        ec2,
        name: &name,
        request_type,
        token,
        resend,
    };
    match action {
        Action::CreateDhcpOptions { .. }
        | Action::DeleteDhcpOptions { .. }
        | Action::AssociateDhcpOptions { .. } => dhcp_options::run(&call, action).await,
        Action::CreateVpc { .. }
        | Action::ModifyVpcAttribute { .. }
        | Action::AssociateVpcCidrBlock { .. }
        | Action::DisassociateVpcCidrBlock { .. }
        | Action::DeleteVpc { .. } => vpc::run(&call, action).await,
        Action::CreateInternetGateway { .. }
        | Action::AttachInternetGateway { .. }
        | Action::DetachInternetGateway { .. }
        | Action::DeleteInternetGateway { .. } => internet_gateway::run(&call, action).await,
        Action::CreateEgressOnlyInternetGateway { .. }
        | Action::DeleteEgressOnlyInternetGateway { .. } => {
            egress_only_internet_gateway::run(&call, action).await
        }
        Action::AllocateAddress { .. }
        | Action::DisassociateAddress { .. }
        | Action::ReleaseAddress { .. } => elastic_ip::run(&call, action).await,
        Action::CreateSubnet { .. }
        | Action::ModifySubnetAttribute { .. }
        | Action::AssociateSubnetCidrBlock { .. }
        | Action::DisassociateSubnetCidrBlock { .. }
        | Action::DeleteSubnet { .. } => subnet::run(&call, action).await,
        Action::CreateNatGateway { .. } | Action::DeleteNatGateway { .. } => {
            nat_gateway::run(&call, action).await
        }
        Action::CreateVpcPeeringConnection { .. }
        | Action::AcceptVpcPeeringConnection { .. }
        | Action::DeleteVpcPeeringConnection { .. } => {
            vpc_peering_connection::run(&call, action).await
        }
        Action::CreateRouteTable { .. }
        | Action::CreateRoute { .. }
        | Action::ReplaceRoute { .. }
        | Action::DeleteRoute { .. }
        | Action::AssociateRouteTable { .. }
        | Action::DisassociateRouteTable { .. }
        | Action::DeleteRouteTable { .. } => route_table::run(&call, action).await,
        Action::CreateVpcEndpoint { .. }
        | Action::ModifyVpcEndpoint { .. }
        | Action::DeleteVpcEndpoint { .. } => vpc_endpoint::run(&call, action).await,
        Action::CreateNetworkAcl { .. }
        | Action::CreateNetworkAclEntry { .. }
        | Action::ReplaceNetworkAclEntry { .. }
        | Action::DeleteNetworkAclEntry { .. }
        | Action::ReplaceNetworkAclAssociation { .. }
        | Action::DeleteNetworkAcl { .. } => network_acl::run(&call, action).await,
        Action::CreateSecurityGroup { .. }
        | Action::AuthorizeSecurityGroupIngress { .. }
        | Action::AuthorizeSecurityGroupEgress { .. }
        | Action::RevokeSecurityGroupIngress { .. }
        | Action::RevokeSecurityGroupEgress { .. }
        | Action::DeleteSecurityGroup { .. } => security_group::run(&call, action).await,
        Action::RunInstances { .. }
        | Action::ModifyInstanceSecurityGroups { .. }
        | Action::ModifyInstanceSourceDestCheck { .. }
        | Action::TerminateInstances { .. } => instance::run(&call, action).await,
        Action::CreateVolume { .. }
        | Action::ModifyVolume { .. }
        | Action::AttachVolume { .. }
        | Action::DetachVolume { .. }
        | Action::DeleteVolume { .. } => volume::run(&call, action).await,
        Action::CreateTags { .. } | Action::DeleteTags { .. } => tags::run(&call, action).await,
    }
}

/// EC2's code for an attachment or association that exists already.
const ALREADY_ASSOCIATED: &str = "Resource.AlreadyAssociated";

/// Turns errors whose effect may already be in place into outcomes: an
/// authorize refused for a duplicate is narrowed to the missing rules, an
/// ACL entry refused as existing is done if it is that entry; the kinds'
/// own checks come next; then the already-done class.
async fn recover(
    ec2: Ec2<'_>,
    action: &Action,
    token: &str,
    e: CloudError,
) -> Result<Outcome, CloudError> {
    if let Some(refused) = Authorization::refused(action, &e) {
        let gid = refused.group_id()?;
        let have = security_group::rules(&ec2, gid, refused.ingress).await?;
        return match refused.remaining(gid, &have) {
            Remaining::Nothing(done) => Ok(done),
            Remaining::Authorize(rest) => run(ec2, &rest, token).await,
        };
    }
    if let Some(taken) = EntryTaken::refused(action, &e) {
        let have = network_acl::entries(&ec2, taken.acl_id()?).await?;
        return taken.settle(&have, e);
    }
    match (action, e.code.as_str()) {
        (
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            },
            ALREADY_ASSOCIATED,
        ) => internet_gateway::attached_already(&ec2, id(internet_gateway)?, id(vpc)?, e).await,
        (
            Action::CreateRoute {
                route_table,
                destination,
                gateway,
                ..
            },
            "RouteAlreadyExists",
        ) => route_table::route_exists(&ec2, id(route_table)?, *destination, id(gateway)?, e).await,
        (
            Action::AssociateRouteTable {
                route_table,
                subnet,
            },
            ALREADY_ASSOCIATED,
        ) => route_table::associated_already(&ec2, id(route_table)?, id(subnet)?, e).await,
        (
            Action::AttachVolume {
                volume,
                instance,
                device,
            },
            "VolumeInUse",
        ) => volume::attached_already(&ec2, id(volume)?, id(instance)?, device, e).await,
        _ => recovery::already_done(e),
    }
}
