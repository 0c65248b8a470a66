//! Immutable instances: which instances the planner replaces because of
//! their life rather than their properties (older than their `maxAge`,
//! stopped out of band, failing their status checks), and which old
//! instances stay in service until the instance replacing them is ready.
//!
//! A replacement surges first: the new instance is launched, the old one
//! is kept (listed in `Plan::waiting`) while the new one is pending or its
//! checks have not passed, and terminated on the first pass that finds the
//! new one ready. What an old instance serves is read from the cloud (its
//! ownership tag) and the bindings, so a new leader resumes a rollout where
//! the last one left it. An old instance that cannot serve (stopped,
//! impaired) or that holds up a delete of this plan (its subnet or a group
//! goes) is not kept.
//!
//! A rotation the user requested (`canon fleet rotate`, a
//! `RotationRequest` in the process record) makes every instance it covers
//! due too, with the reason "requested", rationed like a rotation for age.
//!
//! A fleet's members (instances declared with a `FleetMember`) rotate at
//! staggered times (`lifecycle::next_rotation`), and replacements of
//! members that still serve are rationed (`within_budget`): never more
//! than `count + max_surge` instances, never fewer than `count -
//! max_unavailable` ready.

use std::collections::BTreeMap;

use crate::draft::Draft;
use crate::duration::format_secs;
use crate::lifecycle::next_rotation;
use crate::rollout_failure::TCP_TRIAL_MS;
use crate::{
    DesiredSpec, FleetMember, Health, HealthCheck, InstanceLife, InstanceSpec, InstanceState,
    LogicalId, ObservedResource, Ref, ReplaceReason, RotationRequest, Spec,
};

/// Why an instance is replaced although its properties match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Past its rotation time: `maxAge` after its launch, or a fleet
    /// member's staggered time (`lifecycle::next_rotation`), which comes
    /// sooner.
    Age { age_ms: u64, max_secs: u64 },
    /// Stopped (or stopping) out of band.
    Stopped(InstanceState),
    /// Its status checks failed.
    Impaired,
    /// A fleet's new instance did not pass its check within the grace.
    Unhealthy { grace_secs: u64, check: HealthCheck },
    /// The user asked for it (`canon fleet rotate`): launched `early_ms`
    /// before the request.
    Requested { early_ms: u64 },
}

impl Reason {
    /// The reason as a difference: (property, declared, observed).
    pub(crate) fn difference(self) -> (String, String, String) {
        match self {
            Reason::Age { age_ms, max_secs } => (
                "age".into(),
                format!("at most {}", format_secs(max_secs)),
                format_secs(age_ms / 1000),
            ),
            Reason::Stopped(state) => (
                "state".into(),
                "running".into(),
                format!("{state:?}").to_lowercase(),
            ),
            Reason::Impaired => ("health".into(), "ok".into(), "impaired".into()),
            Reason::Unhealthy {
                grace_secs,
                check: HealthCheck::Tcp { port },
            } => (
                "health".into(),
                format!(
                    "tcp {port} reachable from the conductor within {}",
                    format_secs(grace_secs)
                ),
                "unreachable".into(),
            ),
            Reason::Unhealthy { grace_secs, .. } => (
                "health".into(),
                format!("ok within {}", format_secs(grace_secs)),
                "initializing".into(),
            ),
            Reason::Requested { early_ms } => (
                "rotation".into(),
                "requested".into(),
                format!(
                    "launched {} before the request",
                    format_secs(early_ms / 1000)
                ),
            ),
        }
    }

    /// The reason as the replacement history names it.
    pub(crate) fn cause(self) -> ReplaceReason {
        match self {
            Reason::Age { .. } => ReplaceReason::Age,
            Reason::Stopped(_) => ReplaceReason::Stopped,
            Reason::Impaired | Reason::Unhealthy { .. } => ReplaceReason::Health,
            Reason::Requested { .. } => ReplaceReason::Requested,
        }
    }

    /// Whether the instance serves no longer (so replacing it costs no
    /// capacity and it is not kept while its replacement starts).
    fn failed(self) -> bool {
        !matches!(self, Reason::Age { .. } | Reason::Requested { .. })
    }
}

/// Why the instance `o`, matched to a declaration `want`, must be replaced
/// at the draft's time for its life, whatever its properties (None when
/// time plays no part, and for other kinds). A pending instance is left
/// alone. A fleet's member rotates at its staggered times
/// (`FleetMember::next_rotation`); another instance once it is `maxAge`
/// old; either as soon as a rotation request covers it.
pub(crate) fn due(draft: &Draft<'_>, want: &DesiredSpec, o: &ObservedResource) -> Option<Reason> {
    let (Spec::Instance(w), Some(life)) = (want, o.life.as_ref()) else {
        return None;
    };
    match life.state {
        InstanceState::Pending => return None,
        InstanceState::Stopping | InstanceState::Stopped => {
            return Some(Reason::Stopped(life.state))
        }
        InstanceState::Running => {}
    }
    if !life.serving() {
        return Some(Reason::Impaired);
    }
    if let (Some(fm), Some(t)) = (&w.fleet, draft.now) {
        let checking = match fm.health_check {
            HealthCheck::Ec2Status => life.health == Health::Initializing,
            HealthCheck::None => false,
            // Only a replacement (its old instance still serves) is judged
            // by the conductor's connect: an established instance it
            // cannot reach is not ready, never failed (the conductor's own
            // network may be what fails), so an unreachable port cannot
            // condemn a whole fleet at once.
            HealthCheck::Tcp { .. } => {
                !draft.reached.contains(&o.cloud_id)
                    && (replacing(draft, o) || on_trial(draft, fm, o, life, t))
            }
        };
        if checking && life.age_ms(t) > fm.health_grace_secs.saturating_mul(1000) {
            return Some(Reason::Unhealthy {
                grace_secs: fm.health_grace_secs,
                check: fm.health_check,
            });
        }
    }
    let aged = draft.now.zip(w.max_age_secs).and_then(|(now, max_secs)| {
        let fid = draft.desired.fid;
        let next = next_rotation(Some(max_secs), w.fleet.as_ref(), life.launched_at, fid)?;
        (now >= next).then_some(Reason::Age {
            age_ms: life.age_ms(now),
            max_secs,
        })
    });
    aged.or_else(|| requested(draft, w, life))
}

/// How much earlier than its replacement's record an instance may report
/// its launch and still be that replacement's (the record and the launch
/// are a pass apart, on two clocks).
const LAUNCH_SLACK_MS: u64 = 60_000;

/// Whether the instance `o` (`life`) of a fleet without surge (`fm`) is on
/// trial by its `Tcp` check at `now`: its member's latest replacement
/// launched it, and its grace is over by less than [`TCP_TRIAL_MS`]. There is
/// no old instance to fall back to, so a replacement the conductor cannot
/// reach would otherwise never pass nor fail (the fleet's floor stalls
/// it); an instance of the first build or an established one is never on
/// trial, so an unreachable port cannot condemn a whole fleet at once.
fn on_trial(
    draft: &Draft<'_>,
    fm: &FleetMember,
    o: &ObservedResource,
    life: &InstanceLife,
    now: u64,
) -> bool {
    let Some(l) = draft.rev.get(o.cloud_id.as_str()) else {
        return false;
    };
    let launched_by_replacement = draft
        .replaced_at
        .get(l)
        .is_some_and(|at| life.launched_at.saturating_add(LAUNCH_SLACK_MS) >= *at);
    let grace_ms = fm.health_grace_secs.saturating_mul(1000);
    fm.max_surge == 0
        && launched_by_replacement
        && life.age_ms(now) <= grace_ms.saturating_add(TCP_TRIAL_MS)
}

/// Whether the instance `o` is the new instance of a declared instance
/// whose old one is kept serving (a surge replacement in progress).
fn replacing(draft: &Draft<'_>, o: &ObservedResource) -> bool {
    let Some(l) = draft.rev.get(o.cloud_id.as_str()) else {
        return false;
    };
    draft.orphans.iter().any(|(s, old)| {
        s == l
            && old.cloud_id != o.cloud_id
            && matches!(old.spec, Spec::Instance(_))
            && old.life.as_ref().is_none_or(|x| x.serving())
    })
}

/// [`Reason::Requested`] if one of the draft's rotation requests covers
/// the instance declared as `w` and launched as `life` says (the latest
/// such request).
fn requested(draft: &Draft<'_>, w: &InstanceSpec<Ref>, life: &InstanceLife) -> Option<Reason> {
    let latest = covering(draft, w, life).map(|r| r.before).max()?;
    Some(Reason::Requested {
        early_ms: latest.saturating_sub(life.launched_at),
    })
}

/// The draft's rotation requests that cover the instance declared as `w`
/// and launched as `life` says.
fn covering<'a>(
    draft: &Draft<'a>,
    w: &'a InstanceSpec<Ref>,
    life: &'a InstanceLife,
) -> impl Iterator<Item = &'a RotationRequest> + 'a {
    draft
        .requested
        .iter()
        .filter(|r| r.covers(w.fleet.as_ref(), life.launched_at))
}

/// The declared instances a rotation request still covers: bound to an
/// instance launched before it (whether this pass replaces it or it
/// waits its turn). Empty once the request is done, and without one.
pub(crate) fn outstanding(draft: &Draft<'_>) -> Vec<LogicalId> {
    draft
        .matched
        .iter()
        .filter(|(l, o)| {
            let declared = draft.desired.resources.get(l).map(|d| &d.spec);
            match (declared, o.life.as_ref()) {
                (Some(Spec::Instance(w)), Some(life)) => covering(draft, w, life).next().is_some(),
                _ => false,
            }
        })
        .map(|(l, _)| *l)
        .collect()
}

/// Of the replacements `newly` found (each with the [`due`] reason its
/// instance has, if any), those this pass may start: every one outside a
/// fleet, and every fleet member whose instance no longer serves; the
/// others (their instances serve) as the fleet's rules allow, the oldest
/// first. With a surge, a fleet has at most `max_surge` instances beyond
/// its count; without, at least `count - max_unavailable` ready.
pub(crate) fn within_budget(
    draft: &Draft<'_>,
    newly: Vec<(LogicalId, Option<Reason>)>,
) -> Vec<LogicalId> {
    let mut out = Vec::new();
    let mut costly: Vec<(&FleetMember, (u64, &str), LogicalId)> = Vec::new();
    for (l, why) in newly {
        let (Some(fm), Some(o)) = (member(draft, l), draft.matched.get(&l)) else {
            out.push(l);
            continue;
        };
        if why.is_some_and(Reason::failed) {
            if !(fails_in_place(draft, l, why) && retry_held(draft, l, o, fm)) {
                out.push(l);
            }
        } else if !held_back(draft, l, fm) {
            costly.push((fm, launched(o), l));
        }
    }
    costly.sort_by(|a, b| (&a.0.fleet, a.1).cmp(&(&b.0.fleet, b.1)));
    let mut left: BTreeMap<&str, i64> = BTreeMap::new();
    for (fm, _, l) in costly {
        let n = left
            .entry(fm.fleet.as_str())
            .or_insert_with(|| allowance(draft, fm));
        if *n > 0 {
            *n -= 1;
            out.push(l);
        }
    }
    out
}

/// Whether member `l` of `fm`'s fleet may not start a replacement now:
/// its fleet's rollout is parked (a member failed `PARK_AFTER` times in a
/// row), or its last failure's backoff is not over.
fn held_back(draft: &Draft<'_>, l: LogicalId, fm: &FleetMember) -> bool {
    let parked = draft
        .failures
        .iter()
        .any(|(m, f)| f.parked() && member(draft, *m).is_some_and(|x| x.fleet == fm.fleet));
    let backing_off = draft
        .failures
        .get(&l)
        .zip(draft.now)
        .is_some_and(|(f, now)| now < f.retry_at());
    parked || backing_off
}

/// Whether member `l`, whose instance is `due` for the reason given, is
/// the failed replacement of a fleet without surge: its new instance did
/// not pass its check within the grace, and there is no old one to keep
/// (it was terminated first). It is recorded as a failure
/// ([`failed_in_place`]) and replaced only once its backoff is over, and
/// never while its fleet is parked (an impaired instance, which may be an
/// established one, is replaced at once).
pub(crate) fn fails_in_place(draft: &Draft<'_>, l: LogicalId, due: Option<Reason>) -> bool {
    member(draft, l).is_some_and(|m| m.max_surge == 0)
        && matches!(due, Some(Reason::Unhealthy { .. }))
}

/// Whether the replacement of `l`'s failed instance `o` (of `fm`'s fleet)
/// waits: the failure is not recorded yet (this plan records it, and its
/// backoff starts now), its backoff is not over, or the fleet is parked.
fn retry_held(draft: &Draft<'_>, l: LogicalId, o: &ObservedResource, fm: &FleetMember) -> bool {
    let recorded = draft.failures.get(&l).filter(|f| f.cloud_id == o.cloud_id);
    recorded.is_none() || held_back(draft, l, fm)
}

/// The members of fleets without surge whose instance failed in place
/// ([`fails_in_place`]) and is not recorded yet: (member, instance), for
/// the caller to record like a fallback's failure.
pub(crate) fn failed_in_place(draft: &Draft<'_>) -> Vec<(LogicalId, String)> {
    draft
        .matched
        .iter()
        .filter(|(l, o)| {
            draft
                .failures
                .get(l)
                .is_none_or(|f| f.cloud_id != o.cloud_id)
                && draft
                    .desired
                    .resources
                    .get(l)
                    .is_some_and(|d| fails_in_place(draft, **l, due(draft, &d.spec, o)))
        })
        .map(|(l, o)| (*l, o.cloud_id.clone()))
        .collect()
}

/// Whether member `l`, whose instance is `due` for the reason given, falls
/// back to its old instance rather than being replaced again: its new
/// instance failed its checks (impaired, or unready past its grace) while
/// the old one, kept by the surge, still serves.
pub(crate) fn falls_back(draft: &Draft<'_>, l: LogicalId, due: Option<Reason>) -> bool {
    let surges = member(draft, l).is_some_and(|m| m.max_surge > 0);
    let failed = matches!(due, Some(Reason::Impaired | Reason::Unhealthy { .. }));
    surges
        && failed
        && draft.orphans.iter().any(|(s, o)| {
            *s == l
                && matches!(o.spec, Spec::Instance(_))
                && o.life.as_ref().is_none_or(|x| x.serving())
        })
}

/// Members with recorded failures whose instance is ready and was
/// launched after the last failure, or is the instance that failed last
/// (in a fleet without surge it is kept, and may pass late): their
/// replacement worked.
pub(crate) fn recovered(draft: &Draft<'_>) -> Vec<LogicalId> {
    draft
        .failures
        .iter()
        .filter(|(l, f)| {
            !draft.replaced.contains(l)
                && !draft.fallen.contains(l)
                && draft.matched.get(l).is_some_and(|o| {
                    let newer = o.life.is_some_and(|x| x.launched_at > f.last_at);
                    (newer || o.cloud_id == f.cloud_id) && ready(draft, **l, o)
                })
        })
        .map(|(l, _)| *l)
        .collect()
}

/// How many more serving members of `fm`'s fleet this pass may replace.
fn allowance(draft: &Draft<'_>, fm: &FleetMember) -> i64 {
    let members: Vec<LogicalId> = draft
        .desired
        .resources
        .keys()
        .filter(|l| member(draft, **l).is_some_and(|m| m.fleet == fm.fleet))
        .copied()
        .collect();
    let serving = |o: &ObservedResource| o.life.as_ref().is_none_or(|x| x.serving());
    let count = |f: &dyn Fn(&LogicalId) -> bool| members.iter().filter(|l| f(l)).count() as i64;
    if fm.max_surge > 0 {
        let old_copies = count(&|l| {
            draft
                .orphans
                .iter()
                .any(|(s, o)| s == l && matches!(o.spec, Spec::Instance(_)) && serving(o))
        });
        let replacing = count(&|l| {
            draft.replaced.contains(l) && draft.matched.get(l).is_some_and(|o| serving(o))
        });
        i64::from(fm.max_surge) - old_copies - replacing
    } else {
        let ready = count(&|l| !draft.replaced.contains(l) && successor_ready(draft, *l));
        ready - (i64::from(fm.count) - i64::from(fm.max_unavailable))
    }
}

/// The doomed instances of fleet members that cannot serve while their
/// member's new instance starts (the one a replaced member is bound to,
/// and any old copy left over): every one in a fleet without surge, and
/// those that no longer serve in any fleet. They are terminated before
/// the creates, so that a fleet never has more than `count + maxSurge`
/// instances, even for the moment between a launch and a terminate.
pub(crate) fn terminated_first<'a>(draft: &Draft<'a>) -> Vec<&'a str> {
    let replaced = draft
        .matched
        .iter()
        .filter(|(l, _)| draft.replaced.contains(l))
        .map(|(l, o)| (*l, *o));
    let left_over = draft.orphans.iter().map(|(l, o)| (*l, *o));
    replaced
        .chain(left_over)
        .filter(|(l, o)| {
            matches!(o.spec, Spec::Instance(_))
                && member(draft, *l).is_some_and(|m| m.max_surge == 0 || !serves(draft, *l, o))
        })
        .map(|(_, o)| o.cloud_id.as_str())
        .collect()
}

/// Whether the instance `o` bound to (or left over from) the declared
/// instance `l` serves: not stopped, impaired, or past its grace unready
/// (no [`Reason::failed`]).
fn serves(draft: &Draft<'_>, l: LogicalId, o: &ObservedResource) -> bool {
    let failed = draft
        .desired
        .resources
        .get(&l)
        .and_then(|d| due(draft, &d.spec, o))
        .is_some_and(Reason::failed);
    o.life.as_ref().is_none_or(|life| life.serving()) && !failed
}

/// The fleet the declared instance `l` belongs to, if any.
fn member<'a>(draft: &Draft<'a>, l: LogicalId) -> Option<&'a FleetMember> {
    match &draft.desired.resources.get(&l)?.spec {
        Spec::Instance(i) => i.fleet.as_ref(),
        _ => None,
    }
}

/// Of the instances this plan would delete (`doomed`: the logical id each
/// served, and the cloud resource), those kept in service for now: at most
/// one per declared instance while what replaces it is not ready, the one
/// that serves best (a ready one before one still starting, then the
/// youngest).
pub(crate) fn held<'a>(
    draft: &Draft<'a>,
    doomed: &[(LogicalId, &'a ObservedResource)],
) -> BTreeMap<LogicalId, &'a ObservedResource> {
    let mut kept: BTreeMap<LogicalId, &'a ObservedResource> = BTreeMap::new();
    for (l, o) in doomed {
        if !may_stay(draft, *l, o) || successor_ready(draft, *l) {
            continue;
        }
        let rank = |o: &'a ObservedResource| (ready(draft, *l, o), launched(o));
        if kept.get(l).is_some_and(|k| rank(k) >= rank(o)) {
            continue;
        }
        kept.insert(*l, o);
    }
    kept
}

/// Whether the doomed instance `o` could serve `l` while its replacement
/// starts: `l` is a declared instance, `o` serves (not stopped, impaired
/// or past its grace unready: no [`Reason::failed`]), and nothing this
/// plan deletes needs it gone first.
fn may_stay(draft: &Draft<'_>, l: LogicalId, o: &ObservedResource) -> bool {
    let Spec::Instance(_) = &o.spec else {
        return false;
    };
    let declared = draft.desired.resources.get(&l).map(|d| &d.spec);
    if !matches!(declared, Some(Spec::Instance(_))) {
        return false;
    }
    member(draft, l).is_none_or(|m| m.max_surge > 0)
        && serves(draft, l, o)
        && !draft.early.contains(o.cloud_id.as_str())
        && !o
            .spec
            .references()
            .iter()
            .any(|r| draft.doomed_ids.contains(r.as_str()))
}

/// Whether the instance that serves `l` after this plan is ready: one
/// this plan launches is not.
fn successor_ready(draft: &Draft<'_>, l: LogicalId) -> bool {
    if draft.replaced.contains(&l) {
        return false;
    }
    draft.matched.get(&l).is_some_and(|o| ready(draft, l, o))
}

/// Whether the instance `o` is ready to serve `l`, by `l`'s fleet's
/// health check (EC2's status checks outside a fleet); a `Tcp` check
/// needs the conductor to have reached it too.
fn ready(draft: &Draft<'_>, l: LogicalId, o: &ObservedResource) -> bool {
    let check = member(draft, l).map_or(HealthCheck::Ec2Status, |m| m.health_check);
    let reached = !matches!(check, HealthCheck::Tcp { .. }) || draft.reached.contains(&o.cloud_id);
    reached && o.life.as_ref().is_none_or(|life| life.ready_by(check))
}

fn launched(o: &ObservedResource) -> (u64, &str) {
    (o.life.map_or(0, |l| l.launched_at), o.cloud_id.as_str())
}
