//! A fault as shell commands: the steps that inject it and the steps that
//! undo it, planned from the inventory and the roles of the moment before
//! anything runs (so `--dry-run` prints exactly what would run, and a
//! drill — or `canon drill abort` from another shell — can always undo
//! what it did). Network faults are iptables rules in the nodes' own
//! namespaces, each tagged with the drill's id; the environment faults
//! (`environment`) add steps the drill carries out itself, through the
//! cluster's API (a removal, a wait), shown with their CLI equivalent.

use serde::{Deserialize, Serialize};

use super::catalogue::{blast_radius_max, Fault, Roles};
use super::environment::{self, Builtin};
use super::inventory::{sh, Inventory, NodeEntry};
use super::link;

/// One shell command and what it does; or, with `builtin`, something the
/// drill does itself (`command` then shows its CLI equivalent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub what: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
}

/// How a fault is planned, beyond the fault and its victim.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Tags the fault's packet filters (`canon-drill-ID`).
    pub tag: String,
    pub allow_quorum_loss: bool,
    /// `clock-skew`: how far the victim's clock is moved, in seconds.
    pub skew_s: i64,
    /// `delay-peers` and `loss-peers`: what each does to a message.
    pub link: super::run::LinkFaults,
}

/// A fault made concrete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub fault: String,
    /// The nodes that lose service (or a link), with their role then.
    pub targets: Vec<(u64, String)>,
    pub inject: Vec<Step>,
    /// Run in order at the end, whatever happened.
    pub undo: Vec<Step>,
}

/// What a fault does: whom it hits, and its inject and undo steps.
#[derive(Default)]
pub(super) struct Effect {
    targets: Vec<u64>,
    inject: Vec<Step>,
    undo: Vec<Step>,
}

impl Effect {
    pub(super) fn on(target: u64, (inject, undo): (Vec<Step>, Vec<Step>)) -> Effect {
        Effect {
            targets: vec![target],
            inject,
            undo,
        }
    }
}

/// Plans `fault` on `victim` (already resolved from the target).
pub fn plan(
    fault: Fault,
    victim: u64,
    roles: &Roles,
    inv: &Inventory,
    opts: &PlanOptions,
) -> Result<Plan, String> {
    let node = inv.node(victim)?;
    let tag = opts.tag.as_str();
    let others: Vec<u64> = roles
        .members
        .iter()
        .copied()
        .filter(|n| *n != victim)
        .collect();
    let Effect {
        targets,
        inject,
        undo,
    } = match fault {
        Fault::None => Effect::default(),
        Fault::ReplaceMember => {
            Effect::on(victim, environment::replace_member(victim, roles, inv)?)
        }
        Fault::ClockSkew => Effect::on(
            victim,
            environment::clock_skew(victim, roles, inv, opts.skew_s)?,
        ),
        Fault::DiskFull => Effect::on(victim, environment::disk_full(victim, roles, inv, tag)?),
        Fault::DelayPeers => Effect::on(victim, link::link_fault(victim, inv, opts.link.delay)?),
        Fault::LossPeers => Effect::on(victim, link::link_fault(victim, inv, opts.link.loss)?),
        Fault::KillFollower | Fault::KillLeader | Fault::KillMetaLeader => Effect::on(
            victim,
            (
                vec![step(format!("kill -9 node {victim}"), &node.kill)],
                vec![step(
                    format!("restart node {victim} on its data"),
                    &node.restart,
                )],
            ),
        ),
        Fault::TermLeader => Effect::on(
            victim,
            (
                vec![step(
                    format!("SIGTERM node {victim} (it drains)"),
                    &node.stop,
                )],
                vec![step(
                    format!("restart node {victim} on its data"),
                    &node.restart,
                )],
            ),
        ),
        Fault::PauseLeader => {
            if node.pid == 0 {
                return Err(format!(
                    "the inventory has no process id for node {victim}: is it running?"
                ));
            }
            Effect::on(
                victim,
                (
                    vec![step(
                        format!("SIGSTOP node {victim}"),
                        &format!("kill -STOP {}", node.pid),
                    )],
                    vec![step(
                        format!("SIGCONT node {victim}"),
                        &format!("kill -CONT {}", node.pid),
                    )],
                ),
            )
        }
        Fault::BlackholePeer => {
            let peer = *others.first().ok_or("a blackhole needs two members")?;
            Effect::on(victim, cut(inv, victim, &[peer], tag, Direction::Both)?)
        }
        Fault::PartitionOne => Effect::on(victim, cut(inv, victim, &others, tag, Direction::Both)?),
        Fault::OneWay => Effect::on(victim, cut(inv, victim, &others, tag, Direction::InOnly)?),
        Fault::PartitionHalves => {
            let size = blast_radius_max(roles.members.len()).max(1);
            let minority: Vec<u64> = std::iter::once(victim)
                .chain(others.iter().copied())
                .take(size)
                .collect();
            let majority: Vec<u64> = others
                .iter()
                .copied()
                .filter(|n| !minority.contains(n))
                .collect();
            sides(inv, &minority, &majority, tag)?
        }
        Fault::PartitionBridge => {
            let (bridge, rest) = others.split_first().ok_or("a bridge needs three members")?;
            if rest.is_empty() {
                return Err("a bridge needs three members".into());
            }
            let split = (rest.len() - 1) / 2;
            let side_a: Vec<u64> = std::iter::once(victim)
                .chain(rest[..split].iter().copied())
                .collect();
            let mut effect = sides(inv, &side_a, &rest[split..], tag)?;
            let note = step(format!("node {bridge} bridges both sides"), "true");
            effect.inject.insert(0, note);
            effect
        }
    };
    let radius = blast_radius_max(roles.members.len());
    if targets.len() > radius && !opts.allow_quorum_loss {
        return Err(format!(
            "{fault} on {} node(s) of {} could lose a quorum (at most {radius}); give --allow-quorum-loss to mean it",
            targets.len(),
            roles.members.len()
        ));
    }
    Ok(Plan {
        fault: fault.name().into(),
        targets: targets.iter().map(|n| (*n, roles.role_of(*n))).collect(),
        inject,
        undo,
    })
}

pub(super) fn step(what: String, command: &str) -> Step {
    Step {
        what,
        command: command.to_string(),
        builtin: None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Both,
    InOnly,
}

/// Rules in `node`'s namespace dropping its traffic with `peers`.
fn cut(
    inv: &Inventory,
    node: u64,
    peers: &[u64],
    tag: &str,
    dir: Direction,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    let entry = inv.node(node)?;
    let ns = namespace(entry)?;
    let mut inject = Vec::new();
    let mut undo = Vec::new();
    for peer in peers {
        let ip = host(&inv.node(*peer)?.address);
        let mut rules = vec![("INPUT", "-s", "from")];
        if dir == Direction::Both {
            rules.push(("OUTPUT", "-d", "to"));
        }
        for (chain, flag, word) in rules {
            let rule = format!("{chain} {flag} {ip} -m comment --comment {tag} -j DROP");
            inject.push(step(
                format!("node {node} drops packets {word} node {peer}"),
                &format!("ip netns exec {ns} iptables -w -I {rule}"),
            ));
            undo.push(step(
                format!("node {node} takes packets {word} node {peer} again"),
                &format!("ip netns exec {ns} iptables -w -D {rule}"),
            ));
        }
    }
    Ok((inject, undo))
}

/// Cuts every link between `a` and `c` (rules on `a`'s side).
fn sides(inv: &Inventory, a: &[u64], c: &[u64], tag: &str) -> Result<Effect, String> {
    let mut effect = Effect {
        targets: a.to_vec(),
        ..Effect::default()
    };
    for n in a {
        let (i, u) = cut(inv, *n, c, tag, Direction::Both)?;
        effect.inject.extend(i);
        effect.undo.extend(u);
    }
    Ok(effect)
}

fn namespace(n: &NodeEntry) -> Result<&str, String> {
    n.namespace.as_deref().ok_or_else(|| {
        format!(
            "node {} has no network namespace in the inventory: network faults need one (deploy/netns/up.sh)",
            n.id
        )
    })
}

/// The host part of `host:port`.
fn host(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

/// Runs one step: its shell command, or its builtin against the
/// inventory's cluster.
async fn run_step(inv: &Inventory, s: &Step) -> Result<(), String> {
    match &s.builtin {
        Some(b) => environment::run_builtin(inv, b).await,
        None => sh(&s.command).await,
    }
    .map_err(|e| format!("{}: {e}", s.what))
}

/// Runs `steps` in order, stopping at the first failure (its error).
pub async fn run_steps(inv: &Inventory, steps: &[Step]) -> Result<(), String> {
    for s in steps {
        run_step(inv, s).await?;
    }
    Ok(())
}

/// Runs every step of `steps`, whatever fails; the failures.
pub async fn run_all(inv: &Inventory, steps: &[Step]) -> Vec<String> {
    let mut failed = Vec::new();
    for s in steps {
        if let Err(e) = run_step(inv, s).await {
            failed.push(e);
        }
    }
    failed
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cli::drill::inventory::NodeEntry;
    use std::path::PathBuf;

    pub(in crate::cli::drill) fn inv(n: u64) -> Inventory {
        Inventory {
            dir: None,
            client_config: PathBuf::from("c"),
            nodes: (1..=n)
                .map(|id| NodeEntry {
                    id,
                    address: format!("10.9.0.{id}:7700"),
                    pid: 100 + id as u32,
                    namespace: Some(format!("ns{id}")),
                    stop: format!("stop {id}"),
                    kill: format!("kill {id}"),
                    restart: format!("restart {id}"),
                    wipe: Some(format!("wipe {id}")),
                    join: Some(format!("join {id}")),
                    restart_with_env: Some(format!("restart-env {id}")),
                    data_dir: Some(format!("/d/node-{id}/data")),
                    log: Some(format!("/d/node-{id}/canond.log")),
                })
                .collect(),
            spare: None,
            cloud: None,
        }
    }

    pub(in crate::cli::drill) fn opts(tag: &str, allow_quorum_loss: bool) -> PlanOptions {
        PlanOptions {
            tag: tag.into(),
            allow_quorum_loss,
            skew_s: 90,
            link: crate::cli::drill::run::LinkFaults {
                delay: link::LinkFault {
                    delay_ms: 200,
                    jitter_ms: 50,
                    loss_percent: 0,
                },
                loss: link::LinkFault {
                    delay_ms: 0,
                    jitter_ms: 0,
                    loss_percent: 20,
                },
            },
        }
    }

    pub(in crate::cli::drill) fn roles(n: u64) -> Roles {
        Roles {
            members: (1..=n).collect(),
            leaders: [(0, 1)].into_iter().collect(),
            replicas: 3,
        }
    }

    #[test]
    fn process_faults_undo_what_they_do() {
        let p = plan(Fault::KillLeader, 2, &roles(3), &inv(3), &opts("t", false)).unwrap();
        assert_eq!(p.inject[0].command, "kill 2");
        assert_eq!(p.undo[0].command, "restart 2");
        let p = plan(Fault::PauseLeader, 3, &roles(3), &inv(3), &opts("t", false)).unwrap();
        assert_eq!(p.inject[0].command, "kill -STOP 103");
        assert_eq!(p.undo[0].command, "kill -CONT 103");
        assert_eq!(p.targets, vec![(3, "follower".to_string())]);
    }

    #[test]
    fn network_faults_are_tagged_rules_removed_one_for_one() {
        let p = plan(
            Fault::PartitionOne,
            1,
            &roles(3),
            &inv(3),
            &opts("canon-drill-x", false),
        )
        .unwrap();
        assert_eq!(p.inject.len(), 4, "in and out, two peers");
        for (i, u) in p.inject.iter().zip(&p.undo) {
            assert!(
                i.command.starts_with("ip netns exec ns1 iptables -w -I "),
                "{}",
                i.command
            );
            assert!(i.command.contains("--comment canon-drill-x"));
            assert_eq!(i.command.replace(" -I ", " -D "), u.command);
        }
        let p = plan(Fault::OneWay, 2, &roles(3), &inv(3), &opts("t", false)).unwrap();
        assert!(p.inject.iter().all(|s| s.command.contains(" INPUT -s ")));
        let mut no_ns = inv(3);
        no_ns.nodes[0].namespace = None;
        let e = plan(
            Fault::BlackholePeer,
            1,
            &roles(3),
            &no_ns,
            &opts("t", false),
        )
        .unwrap_err();
        assert!(e.contains("namespace"), "{e}");
    }

    #[test]
    fn halves_and_bridges_cut_between_sides_only() {
        let p = plan(
            Fault::PartitionHalves,
            3,
            &roles(5),
            &inv(5),
            &opts("t", false),
        )
        .unwrap();
        let cut: Vec<u64> = p.targets.iter().map(|t| t.0).collect();
        assert_eq!(cut, vec![3, 1], "a minority of two, with the target");
        assert!(p
            .inject
            .iter()
            .all(|s| s.command.contains("ns3") || s.command.contains("ns1")));
        assert_eq!(p.inject.len(), 2 * 3 * 2);
        let p = plan(
            Fault::PartitionBridge,
            1,
            &roles(3),
            &inv(3),
            &opts("t", false),
        )
        .unwrap();
        assert!(p.inject[0].what.contains("node 2 bridges"));
        assert!(p.inject[1..]
            .iter()
            .all(|s| s.command.contains("10.9.0.3 ")));
    }

    #[test]
    fn more_than_a_minority_needs_allow_quorum_loss() {
        let e = plan(
            Fault::PartitionHalves,
            1,
            &roles(2),
            &inv(2),
            &opts("t", false),
        )
        .unwrap_err();
        assert!(e.contains("--allow-quorum-loss"), "{e}");
        assert!(plan(
            Fault::PartitionHalves,
            1,
            &roles(2),
            &inv(2),
            &opts("t", true)
        )
        .is_ok());
    }
}
