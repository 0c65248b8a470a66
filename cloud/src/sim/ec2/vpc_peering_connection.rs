//! Simulated VPC peering connections, within one account and region:
//! requested between two different VPCs whose IPv4 blocks do not overlap
//! (`pcx-` ids, no client token: the adapter looks for the ownership tag
//! before a create), `pending-acceptance` until accepted, then `active`;
//! deleted, one stays `deleted` (describes by id still show it to EC2, not
//! to Canon's observation, which asks for live connections only). Routes
//! go through an active connection one end of which is the table's VPC;
//! a deleted connection leaves them black holes, as on EC2. A VPC with a
//! live connection is not deleted (the simulation is stricter than EC2,
//! which deletes the connection with it).

use canon_model::{
    Action, CloudRef, ObservedSpec, ResourceKind, Spec, Tags, VpcPeeringConnectionSpec,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::VpcPeeringConnection;

/// Where a connection is in its life (EC2's `Status.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PcxStatus {
    PendingAcceptance,
    Active,
    Deleted,
}

impl PcxStatus {
    /// EC2's name of the status.
    pub fn code(self) -> &'static str {
        match self {
            PcxStatus::PendingAcceptance => "pending-acceptance",
            PcxStatus::Active => "active",
            PcxStatus::Deleted => "deleted",
        }
    }
}

/// A stored peering connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pcx {
    pub meta: Meta,
    /// The requester VPC.
    pub vpc: String,
    /// The accepter VPC.
    pub peer_vpc: String,
    pub status: PcxStatus,
}

impl Pcx {
    /// The connection as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
            vpc: self.vpc.clone(),
            peer_vpc: self.peer_vpc.clone(),
            accepted: self.status != PcxStatus::PendingAcceptance,
            tags: self.meta.tags.clone(),
        })
    }

    /// Whether it is not deleted (what Canon's observation shows).
    pub fn live(&self) -> bool {
        self.status != PcxStatus::Deleted
    }

    /// Whether `vpc` is one of its ends.
    pub fn joins(&self, vpc: &str) -> bool {
        self.vpc == vpc || self.peer_vpc == vpc
    }
}

impl RegionState {
    /// The connection `c`, deleted ones included, or EC2's not-found
    /// error.
    pub(crate) fn pcx(&self, c: &str) -> Result<&Pcx, CloudError> {
        self.pcxs.get(c).ok_or_else(|| not_found(KIND, c))
    }

    /// The VPC a route through connection `c` from VPC `table_vpc` may
    /// use: `table_vpc` itself when the connection is active and joins it,
    /// else none (EC2's error for a connection that is not active).
    pub(crate) fn peering_vpc(
        &self,
        c: &str,
        table_vpc: &str,
    ) -> Result<Option<String>, CloudError> {
        let p = self.pcx(c)?;
        if p.status != PcxStatus::Active {
            return Err(err(
                "InvalidVpcPeeringConnectionID.NotFound",
                format!(
                    "The vpcPeeringConnection ID '{c}' is {}, not active",
                    p.status.code()
                ),
            ));
        }
        Ok(p.joins(table_vpc).then(|| table_vpc.to_string()))
    }
}

/// Applies one peering-connection action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateVpcPeeringConnection {
            vpc,
            peer_vpc,
            tags,
        } => create(region, (vpc, peer_vpc), tags, call),
        Action::AcceptVpcPeeringConnection {
            vpc_peering_connection,
        } => accept(region, vpc_peering_connection),
        Action::DeleteVpcPeeringConnection {
            vpc_peering_connection,
        } => delete(region, vpc_peering_connection),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    (vpc, peer_vpc): (&CloudRef, &CloudRef),
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let (v, p) = (id(vpc)?.to_string(), id(peer_vpc)?.to_string());
    let a = region.vpc(&v)?.cidr;
    let b = region.vpc(&p)?.cidr;
    if v == p {
        return Err(err(
            "InvalidParameterValue",
            format!("The VPC {v} cannot be peered with itself"),
        ));
    }
    if a.overlaps(b) {
        return Err(err(
            "InvalidParameterValue",
            format!("The CIDR blocks of {v} ({a}) and {p} ({b}) overlap"),
        ));
    }
    let rid = new_id(call.rng, "pcx");
    let pcx = Pcx {
        meta: Meta::new(tags, call.timing.visible_at),
        vpc: v,
        peer_vpc: p,
        status: PcxStatus::PendingAcceptance,
    };
    region.pcxs.insert(rid.clone(), pcx);
    Ok(Applied::mutated(
        Outcome::created(&rid, "VPC peering connection"),
        Some(rid),
    ))
}

fn accept(region: &mut RegionState, pcx: &CloudRef) -> Result<Applied, CloudError> {
    let c = id(pcx)?.to_string();
    match region.pcx(&c)?.status {
        PcxStatus::PendingAcceptance => {}
        PcxStatus::Active => {
            return Ok(Applied::unchanged(
                Outcome::already_done(None, format!("{c} is active")),
                Some(c),
            ))
        }
        PcxStatus::Deleted => {
            return Err(err(
                "InvalidStateTransition",
                format!("The vpcPeeringConnection {c} is deleted and cannot be accepted"),
            ))
        }
    }
    if let Some(p) = region.pcxs.get_mut(&c) {
        p.status = PcxStatus::Active;
    }
    Ok(Applied::mutated(changed(format!("accepted {c}")), Some(c)))
}

fn delete(region: &mut RegionState, pcx: &CloudRef) -> Result<Applied, CloudError> {
    let c = id(pcx)?.to_string();
    if !region.pcx(&c)?.live() {
        return Err(not_found(KIND, &c));
    }
    if let Some(p) = region.pcxs.get_mut(&c) {
        p.status = PcxStatus::Deleted;
    }
    Ok(Applied::mutated(changed(format!("deleted {c}")), Some(c)))
}
