//! The simulated EC2's resource kinds, one file each: how the kind is
//! stored, how a describe shows it, and the semantics and error codes of
//! every call that touches it. [`RegionState::apply`](super::region::RegionState::apply)
//! routes each action to its kind's `apply`.

pub(crate) mod dhcp_options;
pub(crate) mod egress_only_internet_gateway;
pub(crate) mod elastic_ip;
pub(crate) mod instance;
pub(crate) mod internet_gateway;
pub(crate) mod nat_gateway;
pub(crate) mod network_acl;
pub(crate) mod network_interface;
pub(crate) mod route_table;
pub(crate) mod security_group;
pub(crate) mod subnet;
pub(crate) mod tags;
pub(crate) mod volume;
pub(crate) mod vpc;
pub(crate) mod vpc_endpoint;
pub(crate) mod vpc_peering_connection;
