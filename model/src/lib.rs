//! Canon's resource model: what a composition declares, what the cloud has,
//! and the planner that turns the difference into an ordered list of requests.
//!
//! Pure Rust — no I/O, no async, no SDK types — so that `lang` can produce it,
//! `cloud` can fill it, `scheduler` can act on it, and the planner can be
//! property-tested against a reference interpreter.
//!
//! - [`acl`]: network ACL entries; [`protocol`]: IP protocols, as rules
//!   and entries name them;
//! - [`id`]: FIDs and logical ids; [`kind`]: resource kinds and the
//!   mutability of their properties; [`spec`]: their properties;
//! - `kinds`: one module per kind with its property table, its requests'
//!   parameters and its planning rules, and the dispatch into them;
//! - [`state`]: desired state, observed state, bindings; [`lifecycle`]:
//!   what the cloud says of an instance's launch, state and health;
//! - [`request`]: typed cloud requests and their dry-run JSON;
//! - [`plan`]: the planner — diff, replacement, dependency order — over
//!   `matching` (which cloud resource serves each declared one) and
//!   `draft` (the plan being written, which each kind's rules add to) and
//!   `rotation` (which instances are replaced for age, a stop or failed
//!   checks, and which old ones stay until their replacement is ready);
//! - [`rotation_request`]: a rotation the user asked for (`canon fleet
//!   rotate`), and [`rollout_failure`]: a fleet's failed replacements
//!   (backoff, parking), which the planner reads beside the observation;
//! - [`import`]: which existing resource each declaration adopts under
//!   `canon run --import`, and the tags that adopt them;
//! - [`process`]: process, job and drift records;
//! - [`demo`]: the demo's network as a declaration, for tests and benchmarks;
//! - [`backoff`]: how long to wait before a retry, for every crate that retries;
//! - [`sorted_vec`]: the small sorted-`Vec` sets and maps specs hold their
//!   rules, references and tags in (a B-tree's leaf is mostly empty slots).

pub mod acl;
pub mod backoff;
pub mod cidr;
pub mod demo;
mod draft;
pub mod duration;
pub mod endpoint_policy;
pub mod id;
pub mod import;
pub mod kind;
mod kinds;
pub mod lifecycle;
pub mod live_heap;
mod matching;
pub mod plan;
pub mod process;
pub mod properties;
pub mod protocol;
pub mod release;
pub mod request;
pub mod rollout_failure;
mod rotation;
pub mod rotation_request;
pub mod sorted_vec;
pub mod spec;
pub mod state;
pub mod utc;
pub mod volume_type;

pub use acl::parse_protocol as parse_acl_protocol;
pub use acl::{AclAction, AclEntry, ICMPV6, RULE_NUMBERS};
pub use backoff::{Backoff, Jitter};
pub use cidr::{CidrError, IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use duration::{format_secs, parse_duration, DurationError};
pub use id::{Fid, IdError, LogicalId, OWNERSHIP_TAG};
pub use kind::{Mutability, ResourceKind};
pub use lifecycle::{next_rotation, FleetMember, Health, HealthCheck, InstanceLife, InstanceState};
pub use plan::{plan, plan_at, plan_kill, plan_requested, plan_with, Difference, Plan, Waiting};
pub use process::{
    DetectedBy, DriftEvent, JobKind, JobRecord, JobStatus, ProcessState, ReplaceReason,
    ReplacedInstance, ReplacementRecord, UnixMillis, MAX_TICK_INTERVAL, MIN_TICK_INTERVAL,
};
pub use properties::{ProcessProperties, ProcessProperty};
pub use protocol::Protocol;
pub use release::{release_plan, releases, Released};
pub use request::{Action, CloudRef, Request, Unresolved, VpcAttribute};
pub use rollout_failure::{Intent, RolloutFailure};
pub use rotation_request::{RotationRequest, RotationScope};
pub use sorted_vec::{SortedVecMap, SortedVecSet};
pub use spec::EndpointType;
pub use spec::{
    DesiredSpec, DhcpOptionsSpec, EgressOnlyInternetGatewaySpec, ElasticIpSpec, EndpointService,
    Hop, InstanceSpec, InternetGatewaySpec, NatGatewaySpec, NetworkAclSpec, ObservedSpec, Peer,
    Ref, Region, Route, RouteTableSpec, Rule, SecurityGroupSpec, Spec, SubnetSpec, Tags, Tenancy,
    VolumeAttachment, VolumeSpec, VpcEndpointSpec, VpcPeeringConnectionSpec, VpcSpec,
};
pub use state::{
    Bindings, DesiredState, ObservedResource, ObservedState, Resource, StateError, IPV6_ASSOCIATION,
};
