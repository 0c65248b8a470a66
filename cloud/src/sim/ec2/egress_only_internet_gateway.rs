//! Simulated egress-only internet gateways: made for a VPC (with a client
//! token), carrying IPv6 routes of its route tables, deleted whatever
//! routes still name them (they become black holes, as on EC2), and kept
//! from the delete of their VPC.

use canon_model::{
    Action, CloudRef, EgressOnlyInternetGatewaySpec, ObservedSpec, ResourceKind, Spec, Tags,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, not_found, Applied, Call, Meta, RegionState};
use crate::CloudError;

const KIND: ResourceKind = ResourceKind::EgressOnlyInternetGateway;

/// A stored egress-only internet gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Eigw {
    pub meta: Meta,
    pub vpc: String,
}

impl Eigw {
    /// The gateway as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
            vpc: self.vpc.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

impl RegionState {
    /// The gateway `g`, or EC2's not-found error.
    pub(crate) fn eigw(&self, g: &str) -> Result<&Eigw, CloudError> {
        self.eigws.get(g).ok_or_else(|| not_found(KIND, g))
    }
}

/// Applies one egress-only-gateway action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateEgressOnlyInternetGateway { vpc, tags } => {
            create(region, action, vpc, tags, call)
        }
        Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway,
        } => {
            let g = id(egress_only_internet_gateway)?.to_string();
            region.eigw(&g)?;
            region.eigws.remove(&g);
            Ok(Applied::mutated(changed(format!("deleted {g}")), Some(g)))
        }
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    vpc: &CloudRef,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let store = |region: &mut RegionState, rid: &str, meta, vpc| {
        region.eigws.insert(rid.to_string(), Eigw { meta, vpc });
    };
    let what = ("eigw", "egress-only internet gateway");
    region.create_in_vpc(action, (vpc, tags), what, call, store)
}
