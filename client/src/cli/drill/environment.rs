//! The environment faults as steps:
//!
//! - `replace-member`: the node's disk is lost (kill -9, its data dir
//!   wiped); the heal is the runbook's replacement (deploy/README.md):
//!   remove it, let it join afresh under the same id and address with a
//!   one-time join token, wait until it is a caught-up voter. A cluster
//!   that cannot lose a member (n − 1 below the shards' replica count)
//!   borrows the inventory's spare first, and gives it back after.
//! - `clock-skew`: the node restarted under libfaketime, its clock off by
//!   a number of seconds; the heal restarts it with the true clock.
//! - `disk-full`: the node's data dir moved onto a tmpfs a little larger
//!   than its data, the node restarted on it and caught up, then the
//!   tmpfs filled; its log must name the full disk. The heal kills it,
//!   puts the tmpfs's copy (the node's latest state: its votes and log)
//!   back on disk and restarts it. The mount lives in the drill's own
//!   mount namespace (`ip netns exec` makes one per command), which the
//!   restarted node inherits: only the drill itself can heal it, so
//!   `canon drill abort` asks the running drill to. A heal run elsewhere
//!   (the drill died) refuses to put back the copy set aside once the
//!   node has run on the tmpfs (`data.TAG.live`): that copy lacks what
//!   the node acknowledged since, and a node must never forget that.
//!
//! Some of their steps are [`Builtin`]s: calls the drill makes itself
//! (a removal, a wait on `cluster status`), shown with the CLI command
//! that does the same.

use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_client::{pb, Client};
use serde::{Deserialize, Serialize};

use super::catalogue::Roles;
use super::inject::{step, Step};
use super::inventory::{Inventory, NodeEntry};
use super::probe;

/// A step the drill carries out through the cluster's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// `canon cluster remove NODE -y` (done if it is no member).
    Remove { node: u64 },
    /// Waits until `cluster status` lists `members` members.
    Listed { members: usize },
    /// Waits until the cluster is whole with `members` members (each
    /// answers, every group led, every follower reported and caught up)
    /// and, if given, `voter` votes in the meta group.
    Settled { members: usize, voter: Option<u64> },
    /// Asks `node` itself (its address only) for a signed read: its
    /// clock judges the read token's freshness.
    SignedRead { node: u64, address: String },
    /// Checks that `log`, after the line holding `after`, says `says`
    /// (case aside).
    Logged {
        log: String,
        after: String,
        says: String,
    },
    /// Waits until `node` says its link fault is `on` (its file `applied`
    /// is there) or off.
    LinkFault {
        node: u64,
        applied: String,
        on: bool,
    },
}

/// How long a removal may take, retries included.
const REMOVE_WITHIN: Duration = Duration::from_secs(60);
/// How long one removal call may take: it changes every group's
/// membership, seconds on a busy machine, far beyond the drill client's
/// per-node attempt timeout (a paused node holds calls; a removal is slow).
const REMOVE_ATTEMPT: Duration = Duration::from_secs(30);
const _: () = assert!(REMOVE_ATTEMPT.as_secs() < REMOVE_WITHIN.as_secs());
/// How long a joining node may take to be listed.
const LISTED_WITHIN: Duration = Duration::from_secs(60);
/// How long a restarted or joining node may take to catch up.
const SETTLED_WITHIN: Duration = Duration::from_secs(120);

/// The room a `disk-full` tmpfs has beyond the data it starts with: for
/// the node to start and catch up before it is filled.
const DISK_FULL_HEADROOM_MB: u64 = 16;
/// What a node must log when its disk is full (the OS's ENOSPC text).
const DISK_FULL_SAYS: &str = "No space left on device";

/// Where Debian and others put libfaketime (`apt-get install libfaketime`).
const LIBFAKETIME: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The step that waits until the cluster is whole with `members`
/// (`voter` among its caught-up voters), shown as the script that would.
fn settled(what: String, members: usize, voter: Option<u64>) -> Step {
    let within = SETTLED_WITHIN.as_secs();
    builtin(
        what,
        format!("deploy/wait-caught-up.py {within} --members {members} -- canon"),
        Builtin::Settled { members, voter },
    )
}

fn builtin(what: String, command: String, b: Builtin) -> Step {
    Step {
        what,
        command,
        builtin: Some(b),
    }
}

/// A node's optional inventory command, or why `fault` needs it.
fn need<'a>(v: &'a Option<String>, field: &str, node: u64, fault: &str) -> Result<&'a str, String> {
    v.as_deref().ok_or_else(|| {
        format!(
            "{fault} needs `{field}` for node {node} in the inventory (deploy/netns/up.sh writes it)"
        )
    })
}

/// `replace-member` on `victim`: inject and undo steps.
pub fn replace_member(
    victim: u64,
    roles: &Roles,
    inv: &Inventory,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    const FAULT: &str = "replace-member";
    let node = inv.node(victim)?;
    let wipe = need(&node.wipe, "wipe", victim, FAULT)?;
    let join = need(&node.join, "join", victim, FAULT)?;
    let through = roles
        .members
        .iter()
        .copied()
        .find(|n| *n != victim)
        .ok_or("replace-member needs another member to join through")?;
    let n = roles.members.len();
    let inject = vec![
        step(format!("kill -9 node {victim}"), &node.kill),
        step(format!("wipe node {victim}'s data dir"), wipe),
    ];
    let mut undo = Vec::new();
    // A removal must leave every shard its voters: a cluster that cannot
    // lose one borrows the spare first, as the runbook adds a member.
    let spare = if n.saturating_sub(1) < roles.replicas.max(1) {
        let s = inv.spare.as_ref().ok_or_else(|| {
            format!(
                "replace-member on {n} members needs a [spare] in the inventory: removing one would leave fewer than the {} voters each shard keeps",
                roles.replicas
            )
        })?;
        if roles.members.contains(&s.id) {
            return Err(format!("the inventory's spare, node {}, is a member", s.id));
        }
        undo.extend([
            step(format!("wipe spare node {}'s data dir", s.id), &s.wipe),
            step(
                format!("spare node {} joins through node {through}", s.id),
                &format!("{} {through}", s.join),
            ),
            builtin(
                format!("wait until the cluster lists {} members", n + 1),
                format!(
                    "deploy/wait-caught-up.py {} --listed {} -- canon",
                    LISTED_WITHIN.as_secs(),
                    n + 1
                ),
                Builtin::Listed { members: n + 1 },
            ),
        ]);
        Some(s)
    } else {
        None
    };
    let members = n + usize::from(spare.is_some());
    undo.extend([
        step(format!("kill -9 node {victim} (if it runs)"), &node.kill),
        builtin(
            format!("remove node {victim} from the cluster"),
            format!("canon cluster remove {victim} -y"),
            Builtin::Remove { node: victim },
        ),
        settled(
            format!("wait until the {} members left are whole", members - 1),
            members - 1,
            None,
        ),
        step(format!("wipe node {victim}'s data dir"), wipe),
        step(
            format!("node {victim} joins afresh through node {through} (same id and address)"),
            &format!("{join} {through}"),
        ),
        settled(
            format!("wait until node {victim} is a caught-up voter"),
            members,
            Some(victim),
        ),
    ]);
    if let Some(s) = spare {
        undo.extend([
            builtin(
                format!("remove spare node {}", s.id),
                format!("canon cluster remove {} -y", s.id),
                Builtin::Remove { node: s.id },
            ),
            step(format!("stop spare node {}", s.id), &s.stop),
            step(format!("wipe spare node {}'s data dir", s.id), &s.wipe),
        ]);
    }
    Ok((inject, undo))
}

/// `clock-skew` on `victim`, `skew_s` seconds off: inject and undo steps.
pub fn clock_skew(
    victim: u64,
    roles: &Roles,
    inv: &Inventory,
    skew_s: i64,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    let node = inv.node(victim)?;
    let lib = libfaketime(
        std::env::var_os("CANON_LIBFAKETIME").map(PathBuf::from),
        &LIBFAKETIME.map(PathBuf::from),
    )?;
    clock_skew_steps(node, roles.members.len(), skew_s, &lib)
}

fn clock_skew_steps(
    node: &NodeEntry,
    members: usize,
    skew_s: i64,
    lib: &Path,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    let victim = node.id;
    if skew_s == 0 {
        return Err("clock-skew with --skew 0 moves no clock".into());
    }
    let restart_env = need(
        &node.restart_with_env,
        "restart_with_env",
        victim,
        "clock-skew",
    )?;
    let lib = lib.display().to_string();
    if lib.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
        return Err(format!("libfaketime's path {lib:?} needs quoting: move it"));
    }
    let inject = vec![
        step(
            format!("restart node {victim} under libfaketime, its clock {skew_s:+} s off"),
            &format!("{restart_env} LD_PRELOAD={lib} FAKETIME={skew_s:+}"),
        ),
        settled(
            format!("wait until node {victim} (skewed) is back and caught up"),
            members,
            Some(victim),
        ),
        builtin(
            format!("node {victim} (skewed) takes a signed read itself"),
            format!("canon --endpoints http://{} status", node.address),
            Builtin::SignedRead {
                node: victim,
                address: node.address.clone(),
            },
        ),
    ];
    let undo = vec![step(
        format!("restart node {victim} with the true clock"),
        &node.restart,
    )];
    Ok((inject, undo))
}

/// `disk-full` on `victim` (`tag` names the mount and the files it
/// makes): inject and undo steps.
pub fn disk_full(
    victim: u64,
    roles: &Roles,
    inv: &Inventory,
    tag: &str,
) -> Result<(Vec<Step>, Vec<Step>), String> {
    const FAULT: &str = "disk-full";
    let node = inv.node(victim)?;
    let data = need(&node.data_dir, "data_dir", victim, FAULT)?;
    let log = need(&node.log, "log", victim, FAULT)?;
    for p in [data, log, tag] {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        {
            return Err(format!(
                "disk-full: {p:?} needs quoting in a shell: move it"
            ));
        }
    }
    let members = roles.members.len();
    let inject = vec![
        step(format!("stop node {victim} (SIGTERM)"), &node.stop),
        step(
            format!("move node {victim}'s data dir onto a tmpfs {DISK_FULL_HEADROOM_MB} MiB larger than its data"),
            &format!(
                "d={data}; t={tag}; mv $d $d.$t && mkdir $d && mount -t tmpfs -o size=$(( $(du -sm $d.$t | cut -f1) + {DISK_FULL_HEADROOM_MB} ))m $t $d && cp -a $d.$t/. $d/ && touch $d.$t.live"
            ),
        ),
        step(format!("start node {victim} on the tmpfs"), &node.restart),
        settled(format!("wait until node {victim} (on the tmpfs) is back and caught up"), members, Some(victim)),
        step(
            format!("fill node {victim}'s tmpfs"),
            &format!(
                "d={data}; echo \"{tag}: node {victim}'s data dir is full from here\" >>{log}; dd if=/dev/zero of=$d/{tag}.fill bs=1M 2>/dev/null; [ $(df --output=avail -B1 $d | tail -n 1) -lt 1048576 ]"
            ),
        ),
    ];
    let undo = vec![
        builtin(
            format!("node {victim}'s log names the full disk"),
            format!("sed -n '/{tag}/,$p' {log} | grep -i '{DISK_FULL_SAYS}'"),
            Builtin::Logged {
                log: log.into(),
                after: tag.into(),
                says: DISK_FULL_SAYS.into(),
            },
        ),
        step(format!("kill -9 node {victim}"), &node.kill),
        step(
            format!("put node {victim}'s data, as the tmpfs holds it, back on disk"),
            &format!(
                "d={data}; t={tag}; if mountpoint -q $d && [ -e $d.$t.live ]; then rm -f $d/$t.fill && rm -rf $d.$t.new && mkdir $d.$t.new && cp -a $d/. $d.$t.new/ && umount $d && rmdir $d && mv $d.$t.new $d && rm -rf $d.$t $d.$t.live; elif [ -e $d.$t.live ]; then echo \"node {victim}'s latest data is on the drill's tmpfs, which this mount namespace does not see: replace the member\" >&2; exit 1; elif [ -d $d.$t ]; then {{ ! mountpoint -q $d || umount $d; }} && rm -rf $d && mv $d.$t $d; fi"
            ),
        ),
        step(format!("restart node {victim} on its data"), &node.restart),
    ];
    Ok((inject, undo))
}

/// libfaketime: `explicit` (CANON_LIBFAKETIME) if given, else the first
/// of `candidates` that exists.
fn libfaketime(explicit: Option<PathBuf>, candidates: &[PathBuf]) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "CANON_LIBFAKETIME={} is no file: clock-skew needs libfaketime",
                p.display()
            ))
        };
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!(
            "clock-skew needs libfaketime, which is not installed (apt-get install libfaketime, or set CANON_LIBFAKETIME); looked in {}",
            looked.join(", ")
        )
    })
}

/// Parses `--skew`: a duration with an optional sign (`+90s`, `-2m`,
/// `90`), in whole seconds.
pub fn parse_skew(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = canon_model::parse_duration(rest).map_err(|e| format!("--skew: {e}"))?;
    if d.subsec_nanos() != 0 {
        return Err(format!("--skew {s}: whole seconds only"));
    }
    let secs = i64::try_from(d.as_secs()).map_err(|_| format!("--skew {s}: too far"))?;
    Ok(sign * secs)
}

/// Carries out a builtin step against the inventory's cluster.
pub async fn run_builtin(inv: &Inventory, b: &Builtin) -> Result<(), String> {
    if let Builtin::SignedRead { node, address } = b {
        let client = super::connect_to(inv, &format!("http://{address}"))?;
        return match tokio::time::timeout(Duration::from_secs(10), client.status("", false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("node {node} refused it: {e}")),
            Err(_) => Err(format!("node {node} did not answer within 10s")),
        };
    }
    if let Builtin::LinkFault { node, applied, on } = b {
        return super::link::wait_applied(*node, applied, *on).await;
    }
    if let Builtin::Logged { log, after, says } = b {
        let text = std::fs::read_to_string(log).map_err(|e| format!("cannot read {log}: {e}"))?;
        return logged(&text, after, says);
    }
    let client = super::connect(inv)?;
    match b {
        Builtin::Remove { node } => {
            remove(&client.with_attempt_timeout(REMOVE_ATTEMPT), *node).await
        }
        Builtin::Listed { members } => wait(&client, LISTED_WITHIN, |s| listed(s, *members)).await,
        Builtin::Settled { members, voter } => {
            wait(&client, SETTLED_WITHIN, |s| whole(s, *members, *voter)).await
        }
        Builtin::SignedRead { .. } | Builtin::Logged { .. } | Builtin::LinkFault { .. } => Ok(()),
    }
}

/// Removes `node`, retrying what a leader change or a busy member fails.
async fn remove(client: &Client, node: u64) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    loop {
        let why = match tokio::time::timeout(REMOVE_WITHIN, client.remove_member(node, false)).await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => {
                let e = e.to_string();
                if e.contains(&format!("no member {node}")) {
                    return Ok(());
                }
                if e.contains("would remain") {
                    return Err(e);
                }
                e
            }
            Err(_) => format!("no answer within {REMOVE_WITHIN:?}"),
        };
        if started.elapsed() > REMOVE_WITHIN {
            return Err(format!("node {node} not removed: {why}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Polls `cluster status` until `check` passes (or `within` is over).
async fn wait(
    client: &Client,
    within: Duration,
    check: impl Fn(&pb::ClusterStatusReply) -> Result<(), String>,
) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    loop {
        let why = match tokio::time::timeout(Duration::from_secs(10), client.cluster_status()).await
        {
            Ok(Ok(s)) => match check(&s) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "cluster status did not answer".into(),
        };
        if started.elapsed() > within {
            return Err(format!("not within {within:?}: {why}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether `text` says `says` (case aside) after its last line holding
/// `after`.
fn logged(text: &str, after: &str, says: &str) -> Result<(), String> {
    let from = text
        .rfind(after)
        .ok_or_else(|| format!("the log has no line with {after:?}"))?;
    if text[from..].to_lowercase().contains(&says.to_lowercase()) {
        Ok(())
    } else {
        Err(format!("the log does not say {says:?} after {after:?}"))
    }
}

fn listed(s: &pb::ClusterStatusReply, members: usize) -> Result<(), String> {
    if s.members.len() == members {
        Ok(())
    } else {
        Err(format!(
            "{} members listed, want {members}",
            s.members.len()
        ))
    }
}

/// Whether the cluster in `s` is whole (as deploy/wait-caught-up.py
/// judges) with `members` members, `voter` voting in the meta group.
fn whole(s: &pb::ClusterStatusReply, members: usize, voter: Option<u64>) -> Result<(), String> {
    if s.members.len() != members {
        return Err(format!("{} members, want {members}", s.members.len()));
    }
    probe::settled(s)?;
    for g in &s.groups {
        let replicas = g.voters.len() + g.learners.len();
        if g.followers.len() + 1 != replicas {
            return Err(format!(
                "group {}: its leader reports {} of {} followers",
                g.group,
                g.followers.len(),
                replicas.saturating_sub(1)
            ));
        }
    }
    if let Some(v) = voter {
        let meta = s.groups.iter().find(|g| g.group == 0);
        if !meta.is_some_and(|g| g.voters.contains(&v)) {
            return Err(format!("node {v} is no voter of the meta group"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::drill::inject::tests::{inv, roles};
    use crate::cli::drill::inventory::SpareEntry;

    fn spare() -> SpareEntry {
        SpareEntry {
            id: 9,
            join: "join 9".into(),
            stop: "stop 9".into(),
            wipe: "wipe 9".into(),
        }
    }

    fn commands(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.command.as_str()).collect()
    }

    #[test]
    fn a_replacement_on_three_borrows_the_spare_and_gives_it_back() {
        let mut i = inv(3);
        let e = replace_member(2, &roles(3), &i).unwrap_err();
        assert!(e.contains("[spare]"), "{e}");
        i.spare = Some(spare());
        let (inject, undo) = replace_member(2, &roles(3), &i).unwrap();
        assert_eq!(commands(&inject), ["kill 2", "wipe 2"]);
        assert_eq!(
            commands(&undo),
            [
                "wipe 9",
                "join 9 1",
                "deploy/wait-caught-up.py 60 --listed 4 -- canon",
                "kill 2",
                "canon cluster remove 2 -y",
                "deploy/wait-caught-up.py 120 --members 3 -- canon",
                "wipe 2",
                "join 2 1",
                "deploy/wait-caught-up.py 120 --members 4 -- canon",
                "canon cluster remove 9 -y",
                "stop 9",
                "wipe 9",
            ]
        );
        assert_eq!(undo[4].builtin, Some(Builtin::Remove { node: 2 }));
        assert_eq!(
            undo[8].builtin,
            Some(Builtin::Settled {
                members: 4,
                voter: Some(2)
            })
        );
        assert!(undo.iter().filter(|s| s.builtin.is_none()).count() == 7);
        let mut member = spare();
        member.id = 3;
        i.spare = Some(member);
        assert!(replace_member(1, &roles(3), &i)
            .unwrap_err()
            .contains("is a member"));
    }

    #[test]
    fn a_replacement_on_five_needs_no_spare_and_joins_through_another() {
        let (_, undo) = replace_member(1, &roles(5), &inv(5)).unwrap();
        assert_eq!(undo[0].command, "kill 1");
        assert!(undo.iter().all(|s| !s.command.contains('9')));
        assert!(undo.iter().any(|s| s.command == "join 1 2"));
        let mut no_wipe = inv(5);
        no_wipe.nodes[0].wipe = None;
        let e = replace_member(1, &roles(5), &no_wipe).unwrap_err();
        assert!(e.contains("`wipe` for node 1"), "{e}");
    }

    #[test]
    fn clock_skew_restarts_under_libfaketime_and_back() {
        let i = inv(3);
        let lib = Path::new("/lib/faketime.so");
        let (inject, undo) = clock_skew_steps(i.node(3).unwrap(), 3, 90, lib).unwrap();
        assert_eq!(
            inject[0].command,
            "restart-env 3 LD_PRELOAD=/lib/faketime.so FAKETIME=+90"
        );
        assert!(inject[0].what.contains("+90 s off"));
        assert_eq!(
            inject[1].builtin,
            Some(Builtin::Settled {
                members: 3,
                voter: Some(3)
            })
        );
        assert_eq!(
            inject[2].builtin,
            Some(Builtin::SignedRead {
                node: 3,
                address: "10.9.0.3:7700".into()
            })
        );
        assert_eq!(
            inject[2].command,
            "canon --endpoints http://10.9.0.3:7700 status"
        );
        assert_eq!(commands(&undo), ["restart 3"]);
        let (inject, _) = clock_skew_steps(i.node(1).unwrap(), 3, -30, lib).unwrap();
        assert!(inject[0].command.ends_with("FAKETIME=-30"));
        assert!(clock_skew_steps(i.node(1).unwrap(), 3, 0, lib).is_err());
        assert!(clock_skew_steps(i.node(1).unwrap(), 3, 5, Path::new("/a b/x.so")).is_err());
        let mut no_env = inv(3);
        no_env.nodes[0].restart_with_env = None;
        let e = clock_skew_steps(no_env.node(1).unwrap(), 3, 5, lib).unwrap_err();
        assert!(e.contains("restart_with_env"), "{e}");
    }

    #[test]
    fn disk_full_moves_the_data_onto_a_tmpfs_and_back() {
        let i = inv(3);
        let (inject, undo) = disk_full(2, &roles(3), &i, "canon-drill-ab").unwrap();
        assert_eq!(inject[0].command, "stop 2");
        assert!(inject[1].command.starts_with(
            "d=/d/node-2/data; t=canon-drill-ab; mv $d $d.$t && mkdir $d && mount -t tmpfs"
        ));
        assert_eq!(inject[2].command, "restart 2");
        assert!(matches!(
            inject[3].builtin,
            Some(Builtin::Settled { voter: Some(2), .. })
        ));
        assert!(inject[4].command.contains(">>/d/node-2/canond.log"));
        assert!(inject[4].command.contains("of=$d/canon-drill-ab.fill"));
        assert_eq!(
            undo[0].builtin,
            Some(Builtin::Logged {
                log: "/d/node-2/canond.log".into(),
                after: "canon-drill-ab".into(),
                says: "No space left on device".into(),
            })
        );
        assert_eq!(undo[1].command, "kill 2");
        assert!(undo[2].command.contains("umount $d"));
        assert!(inject[1].command.ends_with("touch $d.$t.live"));
        assert!(undo[2].command.contains("elif [ -e $d.$t.live ]; then"));
        assert_eq!(undo[3].command, "restart 2");
        let mut odd = inv(3);
        odd.nodes[1].data_dir = Some("/a b/data".into());
        assert!(disk_full(2, &roles(3), &odd, "t")
            .unwrap_err()
            .contains("quoting"));
        odd.nodes[1].data_dir = None;
        assert!(disk_full(2, &roles(3), &odd, "t")
            .unwrap_err()
            .contains("`data_dir`"));
    }

    #[test]
    fn the_log_check_reads_after_the_drills_mark() {
        let log = "old: No space left on device\nmark t1\nfine\n";
        assert!(logged(log, "mark t1", "no space left on device").is_err());
        let log = format!("{log}ERROR sled: IO error: No space left on device (os error 28)\n");
        assert!(logged(&log, "mark t1", "no space left on device").is_ok());
        assert!(logged(&log, "mark t2", "x")
            .unwrap_err()
            .contains("no line"));
    }

    #[test]
    fn libfaketime_is_found_or_named_missing() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("libfaketime.so.1");
        std::fs::write(&there, "").unwrap();
        let missing = dir.path().join("nope.so");
        let found = libfaketime(None, &[missing.clone(), there.clone()]).unwrap();
        assert_eq!(found, there);
        let e = libfaketime(None, std::slice::from_ref(&missing)).unwrap_err();
        assert!(e.contains("apt-get install libfaketime"), "{e}");
        assert!(e.contains("nope.so"), "{e}");
        let e = libfaketime(Some(missing), std::slice::from_ref(&there)).unwrap_err();
        assert!(e.contains("CANON_LIBFAKETIME"), "{e}");
        assert_eq!(libfaketime(Some(there.clone()), &[]).unwrap(), there);
    }

    #[test]
    fn skews_parse_with_a_sign() {
        assert_eq!(parse_skew("+90s").unwrap(), 90);
        assert_eq!(parse_skew("90").unwrap(), 90);
        assert_eq!(parse_skew("-2m").unwrap(), -120);
        assert!(parse_skew("1.5s").is_err());
        assert!(parse_skew("soon").is_err());
    }

    #[test]
    fn whole_means_every_follower_reported_and_the_voter_voting() {
        let group = |group: u64, followers: Vec<u64>| pb::GroupView {
            group,
            leader: 1,
            reported_by: 1,
            voters: vec![1, 2, 3],
            followers: followers
                .into_iter()
                .map(|node| pb::FollowerView {
                    node,
                    matched_index: 5,
                    matched_known: true,
                    lag: 0,
                })
                .collect(),
            ..Default::default()
        };
        let member = |node| pb::Member {
            node,
            reachable: true,
            ..Default::default()
        };
        let mut s = pb::ClusterStatusReply {
            members: vec![member(1), member(2), member(3)],
            groups: vec![group(0, vec![2, 3]), group(1, vec![2, 3])],
            ..Default::default()
        };
        assert!(whole(&s, 3, Some(2)).is_ok());
        assert!(whole(&s, 4, None).unwrap_err().contains("want 4"));
        assert!(whole(&s, 3, Some(7))
            .unwrap_err()
            .contains("no voter of the meta group"));
        s.groups[1] = group(1, vec![2]);
        assert!(whole(&s, 3, None).unwrap_err().contains("1 of 2 followers"));
        assert!(listed(&s, 3).is_ok());
        assert!(listed(&s, 4).is_err());
    }
}
