//! Simulated NAT gateways: created `pending` in a subnet and `available`
//! after the simulation's NAT delay (`Faults::nat_gateway_delay`); a public
//! one holds its Elastic IP and needs an internet gateway attached to its
//! VPC; deleted, one stays `deleting` for the same delay, still holding its
//! address and its subnet, then is gone. A gateway that is not `available`
//! takes no routes.

use canon_model::{Action, CloudRef, NatGatewaySpec, ObservedSpec, ResourceKind, Spec, Tags};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::elastic_ip;
use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::NatGateway;

/// Where a gateway is in its life, by the simulation's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatState {
    Pending,
    Available,
    Deleting,
    Deleted,
}

/// A stored NAT gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Nat {
    pub meta: Meta,
    pub subnet: String,
    pub vpc: String,
    /// The Elastic IP a public gateway holds (`None`: private).
    pub allocation: Option<String>,
    /// When it becomes `available`.
    pub available_at: u64,
    /// When a deleted gateway is gone (it is `deleting` until then).
    pub gone_at: Option<u64>,
}

impl Nat {
    pub fn state(&self, now: u64) -> NatState {
        match self.gone_at {
            Some(gone) if now >= gone => NatState::Deleted,
            Some(_) => NatState::Deleting,
            None if now < self.available_at => NatState::Pending,
            None => NatState::Available,
        }
    }

    /// Whether a describe that leaves out deleted and deleting gateways
    /// shows it (Canon's observation does).
    pub fn live(&self, now: u64) -> bool {
        matches!(self.state(now), NatState::Pending | NatState::Available)
    }

    /// Whether it still holds its address and its subnet.
    pub fn holds(&self, now: u64) -> bool {
        self.state(now) != NatState::Deleted
    }

    /// The gateway as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::NatGateway(NatGatewaySpec {
            subnet: self.subnet.clone(),
            allocation: self.allocation.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

impl RegionState {
    /// The gateway `n` if it can carry routes now, else EC2's not-found
    /// error (a gateway still `pending` is not found by routes).
    pub(crate) fn available_nat(&self, n: &str, now: u64) -> Result<&Nat, CloudError> {
        match self.nats.get(n) {
            Some(g) if g.state(now) == NatState::Available => Ok(g),
            _ => Err(not_found(KIND, n)),
        }
    }

    /// Whether a gateway that still exists sits in subnet `s`.
    pub(crate) fn nat_in_subnet(&self, s: &str, now: u64) -> bool {
        self.nats.values().any(|g| g.subnet == s && g.holds(now))
    }

    /// Whether a public gateway still maps an address in VPC `v` (which
    /// keeps its internet gateway from being detached).
    pub(crate) fn public_nat_in_vpc(&self, v: &str, now: u64) -> bool {
        self.nats
            .values()
            .any(|g| g.vpc == v && g.allocation.is_some() && g.holds(now))
    }
}

/// Applies one NAT-gateway action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateNatGateway {
            subnet,
            allocation,
            tags,
        } => create(region, subnet, allocation.as_ref(), tags, call),
        Action::DeleteNatGateway { nat_gateway } => delete(region, nat_gateway, call),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    subnet: &CloudRef,
    allocation: Option<&CloudRef>,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let s = id(subnet)?.to_string();
    let vpc = region.subnet(&s)?.vpc.clone();
    let allocation = allocation.map(id).transpose()?.map(String::from);
    if let Some(a) = &allocation {
        region
            .eips
            .get(a)
            .ok_or_else(|| not_found(ResourceKind::ElasticIp, a))?;
        if !region.igws.values().any(|g| g.vpc.as_deref() == Some(&vpc)) {
            return Err(err(
                "Gateway.NotAttached",
                format!("Network {vpc} has no Internet gateway attached"),
            ));
        }
    }
    let rid = new_id(call.rng, "nat");
    if let Some(a) = &allocation {
        elastic_ip::associate(region, a, &rid, call.rng)?;
    }
    let timing = call.timing;
    region.nats.insert(
        rid.clone(),
        Nat {
            meta: Meta::new(tags, timing.visible_at),
            subnet: s,
            vpc,
            allocation,
            available_at: timing.now.saturating_add(timing.nat_ms),
            gone_at: None,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "NAT gateway"),
        Some(rid),
    ))
}

fn delete<R: Rng + ?Sized>(
    region: &mut RegionState,
    nat_gateway: &CloudRef,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let n = id(nat_gateway)?.to_string();
    let now = call.timing.now;
    let g = region.nats.get_mut(&n).ok_or_else(|| not_found(KIND, &n))?;
    match g.state(now) {
        NatState::Deleted => Err(not_found(KIND, &n)),
        NatState::Deleting => Ok(Applied::unchanged(
            Outcome::already_done(None, format!("{n} is already deleting")),
            Some(n),
        )),
        NatState::Pending | NatState::Available => {
            g.gone_at = Some(now.saturating_add(call.timing.nat_ms));
            Ok(Applied::mutated(changed(format!("deleting {n}")), Some(n)))
        }
    }
}

/// Forgets gateways whose delete has finished, freeing their addresses.
pub(crate) fn purge(region: &mut RegionState, now: u64) {
    let gone: Vec<String> = region
        .nats
        .iter()
        .filter(|(_, g)| g.state(now) == NatState::Deleted)
        .map(|(n, _)| n.clone())
        .collect();
    for n in gone {
        let Some(allocation) = region.nats.remove(&n).and_then(|g| g.allocation) else {
            continue;
        };
        if let Some(e) = region.eips.get_mut(&allocation) {
            if e.association
                .as_ref()
                .is_some_and(|(_, holder)| *holder == n)
            {
                e.association = None;
            }
        }
    }
}
