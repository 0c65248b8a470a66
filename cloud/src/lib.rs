//! Canon's hands and eyes on the cloud: the [`Cloud`] trait, [`AwsCloud`]
//! over the real AWS SDK and [`SimCloud`], an in-memory deterministic EC2 with
//! faults. Both observe with batched, tag-filtered, paginated describes and
//! execute `canon_model` requests with idempotency and classified errors.
//!
//! - [`cloud`]: the trait; [`context`]: scope and execution identity;
//!   [`outcome`]: what a request did; [`error`]: classified errors;
//!   `request_ids`: the cloud's ids of the calls a request made, handed
//!   back on its outcome or error;
//! - [`rules`]: flat rules ↔ EC2 `IpPermission`s; [`idempotency`]: client
//!   tokens and the ownership-tag look-up before a create; `recovery`:
//!   errors whose effect may be in place (the duplicate-rule retry);
//!   [`ratelimit`] and [`retry`]: staying inside EC2's budget;
//!   [`metrics`]: API-call counters; [`names`]: EC2 action names;
//!   [`import`]: an import's matching, declaration by declaration, over
//!   `Cloud::candidates` (the unowned resources a lookup admits);
//!   [`reach`]: the conductor's TCP connect of a fleet's `Tcp` health
//!   check (`Cloud::reach`);
//! - [`sim`]: the simulated cloud; [`aws`]: the AWS adapter.
//!
//! The scheduler holds an `Arc<dyn Cloud>`: the trait is object-safe (boxed
//! futures), so `canon dev` and tests pick `SimCloud` or `AwsCloud` at run
//! time. Errors come back as values ([`CloudError`] with an [`ErrorClass`]);
//! already-done conditions come back as `Ok` with [`Outcome::already_done`].
//!
//! # Testing against moto, and its gaps
//!
//! The conformance suite (`tests/conformance.rs`) runs against both clouds;
//! `AwsCloud` runs it against a moto server started by the test setup. What
//! moto does not do, and what covers it instead:
//!
//! - it ignores `ClientToken` (route tables, network ACLs, instances):
//!   covered by SimCloud's `client_tokens_make_reruns_idempotent` and
//!   `network_acl_entries_associations_and_deletes`;
//! - it returns every security group on one page (no `MaxResults`): covered by
//!   SimCloud's `pagination_and_observation_cost_for_10000_groups_in_1000_processes`;
//! - it never throttles and is strongly consistent: covered by SimCloud's
//!   `throttling_is_retried_with_backoff_and_counted`,
//!   `eventual_consistency_hides_new_resources_until_the_delay_passes` and the
//!   rate limiter's unit tests;
//! - `CreateDhcpOptions` ignores `TagSpecifications`: `AwsCloud` adds any tag
//!   missing from a create's answer with `CreateTags` (no extra call on EC2);
//! - a VPC without a DHCP set reads `default` where EC2 names the account's
//!   default set: both read as `None`; the default-set recognition is unit
//!   tested (`default_dhcp_sets_are_recognised`);
//! - `DeleteVpc` also deletes the VPC's DHCP set (EC2 keeps it): the later
//!   `DeleteDhcpOptions` is then already done.
//! - `DescribeNatGateways` ignores tag filters and pages: the adapter keeps
//!   only gateways carrying the ownership tag (which EC2's filter already
//!   did); paging is covered as for the other describes;
//! - a NAT gateway is `available` at once and `deleted` at once, where
//!   EC2's take a minute or more either way (and a deleted one keeps its
//!   address, subnet and internet gateway until it is gone): covered by
//!   SimCloud's `nat_gateway_delay`, in
//!   `nat_gateways_are_pending_then_available_and_deleting_then_gone`;
//! - a deleted NAT gateway's address stays associated with the gateway's
//!   network interface, and `ReleaseAddress` releases an address in use
//!   (EC2 refuses with `InvalidIPAddress.InUse`, which Canon retries):
//!   the same SimCloud test covers the refusal;
//! - a public NAT gateway needs no internet gateway in its VPC, and a VPC's
//!   internet gateway detaches while one maps an address (EC2 refuses
//!   both): SimCloud refuses them and the planner's reference interpreter
//!   checks that no plan asks for either.
//! - an instance launched without security groups is in none (EC2 puts it
//!   in its VPC's default group, as SimCloud does): the conformance suite
//!   accepts either, and the planner never enforces the groups of an
//!   instance declared without any;
//! - `DescribeEgressOnlyInternetGateways` ignores filters and pages: the
//!   adapter keeps only gateways carrying the ownership tag (which EC2's
//!   filter already did), as for NAT gateways;
//! - a network ACL entry loses its ICMP type and code (moto reads them
//!   under another name), so the conformance suite declares ICMP for any
//!   type and code; SimCloud's
//!   `network_acl_entries_associations_and_deletes` keeps a type and code
//!   through observation, and the golden JSON shows `IcmpTypeCode`;
//! - a volume attaches at once and to an instance already holding one on
//!   that device, and `AttachVolume` does not check the zone: SimCloud
//!   refuses both (`InvalidParameterValue`, `InvalidVolume.ZoneMismatch`)
//!   and the language refuses a volume attached outside its zone;
//!   `DetachVolume` and `ModifyVolume` take effect at once where EC2's take
//!   seconds (a delete or attach meanwhile is `VolumeInUse` or
//!   `IncorrectState`, which Canon retries);
//! - a network ACL entry's delete or replace of a missing entry fails with
//!   a server error rather than `InvalidNetworkAclEntry.NotFound`, a new
//!   ACL has no 32767 entries (observation leaves them out anyway), a
//!   deleted subnet keeps its ACL association, and `DeleteVpc` neither
//!   waits for the VPC's ACLs nor deletes its default one: the same
//!   SimCloud test covers EC2's behaviour, and the planner's reference
//!   interpreter refuses a plan that relies on any of them.
//! - `DescribeVpcPeeringConnections` ignores filters and pages, and shows
//!   deleted connections: the adapter keeps the live ones carrying the
//!   ownership tag; moto peers a VPC with itself or with an overlapping
//!   one, and never leaves a connection `provisioning`: SimCloud refuses
//!   both peerings (`InvalidParameterValue`) and the language and
//!   `DesiredState::validate` refuse them first
//!   (`peering_connections_follow_ec2s_rules`).
//! - gateway VPC endpoints: `CreateVpcEndpoint` ignores `ClientToken` (a
//!   rerun makes a second endpoint), accepts a route table of another VPC
//!   and two endpoints to one service in one table; `ModifyVpcEndpoint`
//!   changes the endpoint's list of tables but not their prefix-list routes
//!   (so a `DeleteVpcEndpoints` after a table was added to an endpoint
//!   fails on the missing route with `InvalidRoute.NotFound`: the
//!   conformance suite only adds back a table moto never took the route
//!   from); a deleted endpoint stays `deleted` (the adapter keeps live
//!   states, compared as text: EC2 and moto write them in lower case,
//!   which the SDK's `State` does not parse); deleting an unknown endpoint
//!   succeeds. SimCloud's `gateway_endpoints_follow_ec2s_rules` covers the
//!   token, the other VPC's table, `RouteAlreadyExists` and the not-found
//!   codes, and keeps the prefix-list routes in step with the tables.
//! - routes through a network interface: moto shows such a route with the
//!   interface alone, and a route through an instance with the instance
//!   alone, where EC2 names both when the interface is attached to an
//!   instance. SimCloud shows both as EC2 does, and
//!   `sim_routes_through_a_network_interface` and
//!   `network_interface_routes_follow_ec2s_rules` check that Canon counts
//!   either as the declared route.
//! - VPC IPv6: moto takes any IPv6 block for a subnet (of any size, outside
//!   its VPC's `/56`, or one another subnet holds) and lets a VPC's `/56`
//!   go while its subnets hold `/64`s of it; its `/56`s are of
//!   `2400:6500::/32`, not Amazon's `2600:1f00::/24`; and it writes a
//!   subnet's association state nested where the SDK does not read it (the
//!   adapter counts a block without a state as held, and leaves out only
//!   the ones on their way out). SimCloud's `vpc_ipv6_follows_ec2s_rules`
//!   covers the sizes, ranges, conflicts, one `/56` per VPC, the `/56`
//!   kept while in use, and a fresh `/56` after one was taken away.
//! - interface VPC endpoints and endpoint policies: moto makes the
//!   endpoint's interfaces and keeps its subnets, groups and policy, and
//!   `ModifyVpcEndpoint` adds and removes subnets and groups and sets a
//!   `PolicyDocument`; but it ignores `PrivateDnsEnabled` and `ResetPolicy`
//!   in a modify (the old value stays), gives an endpoint created without
//!   groups none (EC2 gives it the VPC's default group), keeps the policy
//!   text as sent (EC2 reformats it), and accepts two subnets of one zone
//!   (EC2: `DuplicateSubnetsInSameZone`), a subnet or group of another VPC,
//!   an unknown group, private DNS in a VPC without DNS hostnames, and a
//!   gateway-only service as an interface; it does not refuse to delete a
//!   subnet or group an endpoint uses. The shared suite
//!   (`interface_endpoint_suite`) changes subnets, groups and the policy
//!   only; SimCloud's `interface_endpoints_follow_ec2s_rules` covers the
//!   rest (the refusals and their codes, the default group, private DNS
//!   and a policy reset by a modify, the reformatted and default policy,
//!   `DependencyViolation` of a used subnet or group).

pub mod aws;
pub mod cloud;
pub mod context;
pub mod error;
pub mod idempotency;
pub mod import;
pub mod metrics;
pub mod names;
pub mod outcome;
pub mod ratelimit;
pub mod reach;
mod recovery;
mod refs;
mod request_ids;
pub mod retry;
pub mod rules;
pub mod sim;

pub use aws::{AccountRoles, AssumeRole, AwsCloud, AwsConfig};
pub use cloud::{BoxFuture, Cloud, Keep};
pub use context::{ExecContext, Scope};
pub use error::{CloudError, ErrorClass};
pub use metrics::ApiCalls;
pub use outcome::Outcome;
pub use ratelimit::{ApiClass, BucketConfig, RateLimiter, RateLimits};
pub use retry::RetryPolicy;
pub use sim::SimCloud;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn both_clouds_fit_behind_one_trait_object() {
        let clouds: Vec<Arc<dyn Cloud>> = vec![Arc::new(SimCloud::new(1))];
        assert_eq!(clouds[0].api_calls().total(), 0);
        fn is_cloud<T: Cloud + 'static>() {}
        is_cloud::<AwsCloud>();
        is_cloud::<SimCloud>();
    }
}
