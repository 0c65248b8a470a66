//! `SimCloud`: an in-memory, deterministic EC2 with switchable faults.
//!
//! It exists so that the scheduler, the simulations and `canon dev` can run
//! against EC2's semantics and error codes without an account: every random
//! choice comes from a seeded RNG and every timestamp from an injected clock,
//! so a run replays exactly from its seed. It counts every API call the way
//! `AwsCloud` does (one describe per kind per page), keeps a log of every
//! mutation with its caller, and offers a rogue-operator API for drift. Its
//! resources can be saved to a file and loaded back (`canon dev` restarts).
//! An event feed (`events`) plays CloudTrail: each mutation's record, with
//! seeded delivery faults.

mod clock;
mod ec2;
mod events;
mod faults;
mod log;
mod persist;
mod region;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use canon_model::import::Lookup;
use canon_model::{
    Action, CloudRef, ObservedResource, ObservedSpec, ObservedState, Request, ResourceKind, Rule,
    Spec, Tags,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use clock::{Clock, ManualClock, TokioClock};
use ec2::instance;
pub use events::{conductor_arn, rogue_arn, FeedCounts};
pub use faults::{EventFaults, Faults};
pub use log::{writer_violations, Caller, Mutation};
pub use persist::PersistError;
use region::{Applied, Call, RegionState, Timing};

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

use crate::error::{classify, ErrorClass};
use crate::idempotency::{client_token, found_owned, has_client_token, owner_to_find};
use crate::names::{describe_action, describe_request_type, ec2_action, max_results};
use crate::recovery::{self, Authorization, EntryTaken, Remaining};
use crate::refs::check_resolved;
use crate::request_ids::RequestIds;
use crate::{
    ApiCalls, BoxFuture, Cloud, CloudError, ExecContext, Keep, Outcome, RetryPolicy, Scope,
};

struct Inner {
    rng: ChaCha8Rng,
    regions: BTreeMap<Scope, RegionState>,
    faults: Faults,
    /// Failures to inject next: (EC2 action or `*`, error code).
    scripted: VecDeque<(String, String)>,
    log: Vec<Mutation>,
    retry: RetryPolicy,
    /// Calls answered so far: the simulated request ids count them.
    requests: u64,
    /// CloudTrail's records of the mutations, once a reader opened it.
    events: Option<events::EventFeed>,
}

/// Appends `m` to the mutation log and, when the feed is open, sends its
/// CloudTrail record on its way.
fn logged<R: Rng + ?Sized>(
    log: &mut Vec<Mutation>,
    feed: &mut Option<events::EventFeed>,
    faults: &Faults,
    rng: &mut R,
    m: Mutation,
) {
    if let Some(feed) = feed {
        feed.publish(&m, &faults.events, rng);
    }
    log.push(m);
}

impl Inner {
    /// The next call's request id: deterministic, shaped like EC2's.
    fn next_request_id(&mut self) -> String {
        self.requests += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.requests)
    }

    fn region(&mut self, scope: &Scope) -> &mut RegionState {
        let Inner { rng, regions, .. } = self;
        regions
            .entry(scope.clone())
            .or_insert_with(|| RegionState::new(scope.region.clone(), rng))
    }

    /// Draws the fault (if any) of one call of `action`.
    fn fault(&mut self, action: &str) -> Option<CloudError> {
        if let Some(pos) = self
            .scripted
            .iter()
            .position(|(a, _)| a == "*" || a == action)
        {
            let (_, code) = self.scripted.remove(pos)?;
            let class = classify(&format!("aws.ec2.{}", snake(action)), &code);
            return Some(CloudError::new(
                class,
                &code,
                format!("injected {code} for {action}"),
            ));
        }
        if self.faults.throttle_rate > 0.0
            && self.rng.random_bool(self.faults.throttle_rate.min(1.0))
        {
            return Some(CloudError::retryable(
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ));
        }
        if self.faults.error_rate > 0.0 && self.rng.random_bool(self.faults.error_rate.min(1.0)) {
            return Some(CloudError::retryable(
                "InternalError",
                "An internal error has occurred",
            ));
        }
        None
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The simulated cloud. Cheap to share behind an `Arc`.
pub struct SimCloud {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    calls: ApiCalls,
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud").finish_non_exhaustive()
    }
}

impl SimCloud {
    /// A simulated cloud seeded with `seed`, on a [`ManualClock`] that moves
    /// only when the caller advances it.
    pub fn new(seed: u64) -> Self {
        Self::with_clock(seed, Arc::new(ManualClock::default()))
    }

    /// A simulated cloud seeded with `seed` reading time from `clock`.
    pub fn with_clock(seed: u64, clock: Arc<dyn Clock>) -> Self {
        SimCloud {
            inner: Mutex::new(Inner {
                rng: ChaCha8Rng::seed_from_u64(seed),
                regions: BTreeMap::new(),
                faults: Faults::none(),
                scripted: VecDeque::new(),
                log: Vec::new(),
                retry: RetryPolicy {
                    max_attempts: 6,
                    base: std::time::Duration::from_millis(5),
                    cap: std::time::Duration::from_millis(500),
                },
                requests: 0,
                events: None,
            }),
            clock,
            calls: ApiCalls::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the event feed: from now on every mutation's CloudTrail
    /// record is delivered (per [`Faults::events`]) to
    /// [`SimCloud::take_events`].
    pub fn open_event_feed(&self) {
        self.lock().events.get_or_insert_with(Default::default);
    }

    /// Up to `max` CloudTrail records (EventBridge-wrapped JSON) that have
    /// arrived by now, oldest arrival first; none while the feed is closed.
    pub fn take_events(&self, max: usize) -> Vec<String> {
        let now = self.clock.now_ms();
        self.lock()
            .events
            .as_mut()
            .map_or_else(Vec::new, |f| f.take(now, max))
    }

    /// What the event feed has done so far, if it is open.
    pub fn event_counts(&self) -> Option<FeedCounts> {
        self.lock().events.as_ref().map(|f| f.counts)
    }

    /// Switches faults on or off.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Makes the next call of `action` (an EC2 action name such as
    /// `CreateVpc`, or `*` for any) fail with `code`.
    pub fn fail_next(&self, action: &str, code: &str) {
        self.lock()
            .scripted
            .push_back((action.to_string(), code.to_string()));
    }

    /// How the cloud retries transient failures within one call.
    pub fn set_retry(&self, retry: RetryPolicy) {
        self.lock().retry = retry;
    }

    /// Every mutation so far, in order.
    pub fn mutations(&self) -> Vec<Mutation> {
        self.lock().log.clone()
    }

    /// Interleaved-writer violations in the mutation log (see
    /// [`writer_violations`]).
    pub fn writer_violations(&self) -> Vec<String> {
        writer_violations(&self.lock().log)
    }

    /// Every resource carrying the ownership tag in `scope`, visible to
    /// describes yet or not (for duplicate checks).
    pub fn all_owned(&self, scope: &Scope) -> Vec<ObservedResource> {
        let mut inner = self.lock();
        let region = inner.region(scope);
        let mut out = Vec::new();
        for kind in ResourceKind::ALL {
            let (page, _) = region.page(kind, None, usize::MAX, u64::MAX);
            out.extend(page);
        }
        out
    }

    /// Logical ids that more than one resource in `scope` claims through its
    /// ownership tag, with those resources' ids: the simulations' check of
    /// "no duplicate cloud resources".
    pub fn duplicate_owners(&self, scope: &Scope) -> Vec<(canon_model::LogicalId, Vec<String>)> {
        let mut by_owner: BTreeMap<canon_model::LogicalId, Vec<String>> = BTreeMap::new();
        for r in self.all_owned(scope) {
            if let Some(owner) = r.owner() {
                by_owner.entry(owner).or_default().push(r.cloud_id);
            }
        }
        by_owner
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .collect()
    }

    /// One resource by id, as a describe by id would show it (ignores the
    /// ownership tag; includes main route tables and default groups).
    pub fn describe(&self, scope: &Scope, cloud_id: &str) -> Option<ObservedResource> {
        let now = self.clock.now_ms();
        self.lock().region(scope).observed(cloud_id, now)
    }

    /// Whether the conductor's TCP connect to `port` of instance `i`
    /// succeeds, as modelled: the instance is running and not impaired,
    /// and no fault makes it unreachable (`Faults::tcp_unreachable`,
    /// `Faults::tcp_unreachable_launched_from`).
    /// Every port listens; no socket is opened.
    pub fn reachable(&self, scope: &Scope, i: &str, _port: u16) -> bool {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        if inner.faults.tcp_unreachable {
            return false;
        }
        let deaf_from = inner.faults.tcp_unreachable_launched_from;
        inner.region(scope).instances.get(i).is_some_and(|x| {
            let life = x.life(now);
            life.serving() && deaf_from.is_none_or(|from| life.launched_at < from)
        })
    }

    /// The main route table and default security group of a VPC.
    pub fn vpc_defaults(&self, scope: &Scope, vpc: &str) -> Option<(String, String)> {
        self.lock()
            .region(scope)
            .vpcs
            .get(vpc)
            .map(|v| (v.main_rtb.clone(), v.default_sg.clone()))
    }

    /// Runs `action` as someone outside Canon would (the console, another
    /// tool): no faults, not counted as Canon's API calls, logged as rogue.
    pub fn rogue(&self, scope: &Scope, action: &Action) -> Result<Outcome, CloudError> {
        self.rogue_change(scope, action.request_type(), |region, call| {
            region.apply(action, call)
        })
    }

    /// Makes a network interface in `subnet` as someone outside Canon
    /// would (an appliance's), attached to `instance` if one is named: its
    /// id. Canon manages none; a declared route may go through one.
    pub fn rogue_create_network_interface(
        &self,
        scope: &Scope,
        subnet: &str,
        instance: Option<&str>,
    ) -> Result<String, CloudError> {
        let outcome =
            self.rogue_change(scope, "aws.ec2.create_network_interface", |region, call| {
                let eni = ec2::network_interface::create(region, call.rng, subnet, instance)?;
                let outcome = Outcome::created(eni.clone(), format!("network interface {eni}"));
                Ok(Applied::mutated(outcome, Some(eni)))
            })?;
        Ok(outcome.cloud_id.unwrap_or_default())
    }

    /// Detaches (if attached) and deletes a network interface made with
    /// [`SimCloud::rogue_create_network_interface`].
    pub fn rogue_delete_network_interface(
        &self,
        scope: &Scope,
        eni: &str,
    ) -> Result<(), CloudError> {
        self.rogue_change(scope, "aws.ec2.delete_network_interface", |region, _| {
            ec2::network_interface::detach_and_delete(region, eni)?;
            let outcome = Outcome::changed([format!("deleted {eni}")]);
            Ok(Applied::mutated(outcome, Some(eni.to_string())))
        })
        .map(drop)
    }

    /// Rogue: stops an instance (stopping for the shutdown delay, then
    /// stopped).
    pub fn rogue_stop_instance(&self, scope: &Scope, i: &str) -> Result<(), CloudError> {
        self.rogue_change(scope, "aws.ec2.stop_instances", |region, call| {
            instance::stop(region, i, call.timing)
        })
        .map(drop)
    }

    /// Rogue: makes an instance's status checks fail (no EC2 call does
    /// that: the hardware under it fails).
    pub fn rogue_impair_instance(&self, scope: &Scope, i: &str) -> Result<(), CloudError> {
        self.rogue_change(scope, "sim.impair_instance", |region, call| {
            instance::impair(region, i, call.timing.now)
        })
        .map(drop)
    }

    /// Makes `change` (whose request type is `request_type`) as someone
    /// outside Canon would: see [`SimCloud::rogue`].
    fn rogue_change(
        &self,
        scope: &Scope,
        request_type: &str,
        change: impl FnOnce(&mut RegionState, Call<'_, ChaCha8Rng>) -> Result<Applied, CloudError>,
    ) -> Result<Outcome, CloudError> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let Inner {
            rng,
            regions,
            log,
            faults,
            events,
            ..
        } = &mut *inner;
        let timing = Timing::new(now, now, faults);
        let region = regions
            .entry(scope.clone())
            .or_insert_with(|| RegionState::new(scope.region.clone(), rng));
        let call = Call {
            token: None,
            timing,
            rng: &mut *rng,
        };
        match change(region, call) {
            Ok(applied) => {
                if applied.mutated {
                    let seq = log.len() as u64;
                    let m = Mutation {
                        seq,
                        at_ms: now,
                        caller: Caller::Rogue,
                        scope: scope.clone(),
                        action: request_type.to_string(),
                        target: None,
                        resource: applied.resource,
                    };
                    logged(log, events, faults, rng, m);
                }
                Ok(applied.outcome)
            }
            Err(e) => Err(CloudError::classified(request_type, &e.code, &e.message)),
        }
    }

    /// Rogue: adds an ingress rule to a group (the demo's "all traffic from
    /// 0.0.0.0/0").
    pub fn rogue_authorize_ingress(
        &self,
        scope: &Scope,
        group: &str,
        rule: Rule<String>,
    ) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::AuthorizeSecurityGroupIngress {
                group: CloudRef::Id(group.to_string()),
                rules: [rule.map_peer(|g| CloudRef::Id(g.clone()))]
                    .into_iter()
                    .collect(),
            },
        )
    }

    /// Rogue: deletes a subnet.
    pub fn rogue_delete_subnet(&self, scope: &Scope, subnet: &str) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::DeleteSubnet {
                subnet: CloudRef::Id(subnet.to_string()),
            },
        )
    }

    /// Rogue: releases an Elastic IP address (refused, as by EC2, while it
    /// is associated).
    pub fn rogue_release_address(
        &self,
        scope: &Scope,
        allocation: &str,
    ) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::ReleaseAddress {
                allocation: CloudRef::Id(allocation.to_string()),
            },
        )
    }

    /// Rogue: associates an Elastic IP address with `holder` (an instance or
    /// a network interface, by id); returns the association id.
    pub fn rogue_associate_address(
        &self,
        scope: &Scope,
        allocation: &str,
        holder: &str,
    ) -> Result<String, CloudError> {
        let mut inner = self.lock();
        let Inner { rng, regions, .. } = &mut *inner;
        let region = regions
            .entry(scope.clone())
            .or_insert_with(|| RegionState::new(scope.region.clone(), rng));
        ec2::elastic_ip::associate(region, allocation, holder, rng)
    }

    /// Rogue: deletes a NAT gateway (it stays `deleting` for the NAT delay).
    pub fn rogue_delete_nat_gateway(
        &self,
        scope: &Scope,
        nat_gateway: &str,
    ) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::DeleteNatGateway {
                nat_gateway: CloudRef::Id(nat_gateway.to_string()),
            },
        )
    }

    /// Rogue: deletes the route to `destination` from a route table.
    pub fn rogue_delete_route(
        &self,
        scope: &Scope,
        route_table: &str,
        destination: canon_model::IpCidr,
    ) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::DeleteRoute {
                route_table: CloudRef::Id(route_table.to_string()),
                destination,
            },
        )
    }

    /// Rogue: adds an entry to a network ACL (the console's "allow all
    /// traffic" at a low number).
    pub fn rogue_add_nacl_entry(
        &self,
        scope: &Scope,
        network_acl: &str,
        entry: canon_model::AclEntry,
    ) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::CreateNetworkAclEntry {
                network_acl: CloudRef::Id(network_acl.to_string()),
                entry,
            },
        )
    }

    /// Rogue: puts a subnet back in its VPC's default network ACL.
    pub fn rogue_default_acl(&self, scope: &Scope, subnet: &str) -> Result<Outcome, CloudError> {
        self.rogue(
            scope,
            &Action::ReplaceNetworkAclAssociation {
                subnet: CloudRef::Id(subnet.to_string()),
                network_acl: None,
            },
        )
    }

    /// The default network ACL of a VPC.
    /// The id of the association that puts `subnet` in a route table
    /// (`rtbassoc-…`), if it has one (other than its VPC's main table).
    pub fn route_table_association(&self, scope: &Scope, subnet: &str) -> Option<String> {
        let mut inner = self.lock();
        let region = inner.region(scope);
        region
            .rtbs
            .values()
            .find_map(|t| t.assoc.get(subnet).cloned())
    }

    pub fn default_acl(&self, scope: &Scope, vpc: &str) -> Option<String> {
        self.lock().region(scope).default_acl_of(vpc).cloned()
    }

    /// Rogue: sets (adds or changes) one tag.
    pub fn rogue_set_tag(
        &self,
        scope: &Scope,
        resource: &str,
        key: &str,
        value: &str,
    ) -> Result<Outcome, CloudError> {
        let mut tags = Tags::new();
        tags.insert(key.to_string(), value.to_string());
        self.rogue(
            scope,
            &Action::CreateTags {
                resource: CloudRef::Id(resource.to_string()),
                tags,
            },
        )
    }

    /// Rogue: detaches an internet gateway from whatever VPC it is attached to.
    pub fn rogue_detach_gateway(&self, scope: &Scope, igw: &str) -> Result<Outcome, CloudError> {
        let vpc = self
            .lock()
            .region(scope)
            .igws
            .get(igw)
            .and_then(|g| g.vpc.clone())
            .ok_or_else(|| {
                CloudError::new(
                    ErrorClass::AlreadyDone,
                    "Gateway.NotAttached",
                    format!("resource {igw} is not attached"),
                )
            })?;
        self.rogue(
            scope,
            &Action::DetachInternetGateway {
                internet_gateway: CloudRef::Id(igw.to_string()),
                vpc: CloudRef::Id(vpc),
            },
        )
    }

    /// One API call: counted, delayed, faulted and retried like a real one,
    /// each attempt's request id noted in `ids` (when a request is being
    /// executed). `f` runs under the lock with the simulation's time.
    async fn call<T, F>(
        &self,
        scope: &Scope,
        action: &str,
        request_type: &str,
        ids: Option<&RequestIds>,
        mut f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut(&mut Inner, u64) -> Result<T, CloudError>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.calls.record(action);
            let latency = self.lock().faults.latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let result = {
                let mut inner = self.lock();
                let id = inner.next_request_id();
                if let Some(ids) = ids {
                    ids.push(Some(&id));
                }
                match inner.fault(action) {
                    Some(e) => Err(e),
                    None => {
                        let now = self.clock.now_ms();
                        let _ = inner.region(scope);
                        f(&mut inner, now)
                            .map_err(|e| CloudError::classified(request_type, &e.code, &e.message))
                    }
                }
            };
            match result {
                Err(e) if e.is_transient() => {
                    let pause = {
                        let mut inner = self.lock();
                        if attempt >= inner.retry.max_attempts {
                            return Err(e);
                        }
                        let retry = inner.retry;
                        retry.backoff(attempt, &mut inner.rng)
                    };
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn observe_scope(
        &self,
        scope: &Scope,
        keep: Keep<'_>,
    ) -> Result<ObservedState, CloudError> {
        let mut observed = ObservedState::new();
        for kind in ResourceKind::ALL {
            let mut after: Option<String> = None;
            loop {
                let (page, next) = self
                    .call(
                        scope,
                        describe_action(kind),
                        describe_request_type(kind),
                        None,
                        |inner, now| {
                            Ok(inner.region(scope).page(
                                kind,
                                after.as_deref(),
                                max_results(kind),
                                now,
                            ))
                        },
                    )
                    .await?;
                for r in page.into_iter().filter(|r| keep(r)) {
                    observed.insert(r);
                }
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        Ok(observed)
    }

    /// [`Cloud::observe_ids`]: one describe call per kind among `ids`.
    async fn observe_by_ids(
        &self,
        scope: &Scope,
        ids: &BTreeSet<String>,
    ) -> Result<ObservedState, CloudError> {
        let mut observed = ObservedState::new();
        for kind in ResourceKind::ALL {
            let mine: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| kind.is_cloud_id(id))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let found = self
                .call(
                    scope,
                    describe_action(kind),
                    describe_request_type(kind),
                    None,
                    |inner, now| Ok(inner.region(scope).by_ids(kind, &mine, now)),
                )
                .await?;
            for r in found {
                observed.insert(r);
            }
        }
        Ok(observed)
    }

    /// Applies `action` for a conductor, logging the mutation.
    async fn apply(&self, call: &Executing<'_>, action: &Action) -> Result<Outcome, CloudError> {
        let Executing {
            scope,
            request,
            ctx,
            ids,
        } = *call;
        let token = action
            .creates()
            .filter(|k| has_client_token(*k))
            .map(|_| client_token(&ctx.job_id, request));
        let token = token.as_deref();
        let rt = action.request_type();
        let name = ec2_action(rt);
        self.call(scope, &name, rt, Some(ids), |inner, now| {
            let visible_at = now.saturating_add(ms(inner.faults.visibility_delay));
            let timing = Timing::new(now, visible_at, &inner.faults);
            let Inner {
                rng,
                regions,
                log,
                events,
                faults,
                ..
            } = inner;
            let region = regions
                .entry(scope.clone())
                .or_insert_with(|| RegionState::new(scope.region.clone(), rng));
            let call = Call {
                token,
                timing,
                rng: &mut *rng,
            };
            let applied = region.apply(action, call)?;
            if applied.mutated {
                let seq = log.len() as u64;
                let m = Mutation {
                    seq,
                    at_ms: now,
                    caller: Caller::Conductor {
                        node_id: ctx.node_id,
                        term: ctx.term,
                        job_id: ctx.job_id.clone(),
                    },
                    scope: scope.clone(),
                    action: rt.to_string(),
                    target: Some(request.target),
                    resource: applied.resource,
                };
                logged(log, events, faults, rng, m);
            }
            Ok(applied.outcome)
        })
        .await
    }

    async fn execute_request(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        check_resolved(request)?;
        let scope = ctx.scope(request);
        let ids = RequestIds::default();
        let call = Executing {
            scope: &scope,
            request,
            ctx,
            ids: &ids,
        };
        let result = self.carry_out(&call).await;
        ids.attach(result)
    }

    /// The look-up by ownership tag before a create (none for a create
    /// never sent before, `ExecContext::never_sent`), the request's call,
    /// and the recovery of its error. Its faults fail a call before it
    /// acts, so resending after one makes nothing twice.
    async fn carry_out(&self, call: &Executing<'_>) -> Result<Outcome, CloudError> {
        let (scope, action) = (call.scope, &call.request.action);
        let to_find = owner_to_find(action).filter(|_| !call.ctx.never_sent);
        if let Some((kind, owner)) = to_find {
            let found = self
                .call(
                    scope,
                    describe_action(kind),
                    describe_request_type(kind),
                    Some(call.ids),
                    |inner, now| Ok(inner.region(scope).find_owned(kind, owner, now)),
                )
                .await?;
            if let Some(existing) = found {
                return Ok(found_owned(kind, existing, owner));
            }
        }
        match self.apply(call, action).await {
            Ok(o) => Ok(o),
            Err(e) => {
                if let Some(refused) = Authorization::refused(action, &e) {
                    return self.authorize_missing(call, refused).await;
                }
                if let Some(taken) = EntryTaken::refused(action, &e) {
                    let acl = taken.acl_id()?;
                    return taken.settle(&self.acl_entries(call, acl).await?, e);
                }
                recovery::already_done(e)
            }
        }
    }

    /// Resource `rid` as a describe of `kind` shows it (one metered call,
    /// its request id noted for the request being executed), if it
    /// exists: what the recoveries read the cloud with.
    async fn describe_one(
        &self,
        call: &Executing<'_>,
        kind: ResourceKind,
        rid: &str,
    ) -> Result<Option<ObservedSpec>, CloudError> {
        let scope = call.scope;
        let current = self
            .call(
                scope,
                describe_action(kind),
                describe_request_type(kind),
                Some(call.ids),
                |inner, now| Ok(inner.region(scope).observed(rid, now)),
            )
            .await?;
        Ok(current.map(|r| r.spec))
    }

    /// The entries of network ACL `acl`, as a describe shows them.
    async fn acl_entries(
        &self,
        call: &Executing<'_>,
        acl: &str,
    ) -> Result<std::collections::BTreeSet<canon_model::AclEntry>, CloudError> {
        let kind = ResourceKind::NetworkAcl;
        let Some(Spec::NetworkAcl(a)) = self.describe_one(call, kind, acl).await? else {
            return Err(region::not_found(kind, acl));
        };
        Ok(a.entries.into())
    }

    /// Reads the group of an authorize EC2 refused for a duplicate and
    /// authorizes only the missing rules.
    async fn authorize_missing(
        &self,
        call: &Executing<'_>,
        refused: Authorization<'_>,
    ) -> Result<Outcome, CloudError> {
        let gid = refused.group_id()?;
        let kind = ResourceKind::SecurityGroup;
        let Some(Spec::SecurityGroup(sg)) = self.describe_one(call, kind, gid).await? else {
            return Err(region::not_found(kind, gid));
        };
        let have = if refused.ingress {
            sg.ingress
        } else {
            sg.egress
        };
        match refused.remaining(gid, &have) {
            Remaining::Nothing(done) => Ok(done),
            Remaining::Authorize(rest) => self.apply(call, &rest).await,
        }
    }
}

/// One request being executed: where, what, for whom, and where its calls'
/// request ids go.
#[derive(Clone, Copy)]
struct Executing<'a> {
    scope: &'a Scope,
    request: &'a Request,
    ctx: &'a ExecContext,
    ids: &'a RequestIds,
}

impl Cloud for SimCloud {
    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        Box::pin(self.observe_scope(scope, keep))
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        Box::pin(self.observe_by_ids(scope, ids))
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        Box::pin(self.execute_request(request, ctx))
    }

    fn candidates<'a>(
        &'a self,
        scope: &'a Scope,
        kind: ResourceKind,
        lookup: &'a Lookup,
    ) -> BoxFuture<'a, Result<Vec<ObservedResource>, CloudError>> {
        Box::pin(self.call(
            scope,
            describe_action(kind),
            describe_request_type(kind),
            None,
            move |inner, now| Ok(inner.region(scope).candidates(kind, lookup, now)),
        ))
    }

    fn reach<'a>(
        &'a self,
        scope: &'a Scope,
        instance: &'a ObservedResource,
        port: u16,
    ) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.reachable(scope, &instance.cloud_id, port) })
    }

    fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }
}
