//! Simulated network interfaces, made outside Canon only (Canon manages
//! none): a firewall appliance's interface, in a subnet and perhaps
//! attached to an instance, that a declared route may go through. They
//! exist so that routes through an interface follow EC2's rules here: the
//! interface must exist and be in the table's VPC, and a route through one
//! that is attached reads back naming the instance too.

use serde::{Deserialize, Serialize};

use crate::error::CloudError;
use crate::sim::region::{err, new_id, RegionState};

/// A stored network interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Eni {
    pub subnet: String,
    /// The instance it is attached to, if any.
    pub instance: Option<String>,
}

/// `CreateNetworkInterface` in `subnet`, attached to `instance` when one
/// is named (both must exist): the interface's id.
pub(crate) fn create<R: rand::Rng + ?Sized>(
    region: &mut RegionState,
    rng: &mut R,
    subnet: &str,
    instance: Option<&str>,
) -> Result<String, CloudError> {
    if !region.subnets.contains_key(subnet) {
        return Err(err(
            "InvalidSubnetID.NotFound",
            format!("The subnet ID '{subnet}' does not exist"),
        ));
    }
    if let Some(i) = instance {
        if !region.instances.contains_key(i) {
            return Err(err(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{i}' does not exist"),
            ));
        }
    }
    let id = new_id(rng, "eni");
    let eni = Eni {
        subnet: subnet.to_string(),
        instance: instance.map(str::to_string),
    };
    region.enis.insert(id.clone(), eni);
    Ok(id)
}

/// EC2's error for an interface that does not exist.
fn not_found(eni: &str) -> CloudError {
    err(
        "InvalidNetworkInterfaceID.NotFound",
        format!("The networkInterface ID '{eni}' does not exist"),
    )
}

/// The VPC of interface `eni` (for a route through it).
pub(crate) fn vpc_of(region: &RegionState, eni: &str) -> Result<Option<String>, CloudError> {
    let e = region.enis.get(eni).ok_or_else(|| not_found(eni))?;
    Ok(region.subnets.get(&e.subnet).map(|s| s.vpc.clone()))
}

/// `DetachNetworkInterface` (if attached) and `DeleteNetworkInterface`,
/// as an operator removing an appliance's interface does.
pub(crate) fn detach_and_delete(region: &mut RegionState, eni: &str) -> Result<(), CloudError> {
    region
        .enis
        .remove(eni)
        .map(drop)
        .ok_or_else(|| not_found(eni))
}

/// Detaches every interface attached to `instance` (terminated: EC2
/// keeps an interface made on its own, detached).
pub(crate) fn detach_all(region: &mut RegionState, instance: &str) {
    for e in region.enis.values_mut() {
        if e.instance.as_deref() == Some(instance) {
            e.instance = None;
        }
    }
}
