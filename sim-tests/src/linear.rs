//! Linearizability of the client-visible process states: the workload
//! records every run/update/kill/suspend/resume/status it sends through the
//! SDK (invocation and response, in simulated time), and a Wing–Gong search
//! looks for an order of the operations, each taking effect at one instant
//! between its invocation and its response, that a sequential registry of
//! processes (alias -> state) would answer the same way.
//!
//! Histories are split by alias (operations on different aliases commute),
//! so each search is small; an operation whose answer never came (timeout,
//! no node reachable) may take effect at any time after its invocation, or
//! never. The conductor moves a Killing process to Killed on its own, so
//! the model may take that step between any two operations; and retention
//! may forget a killed process at any time after.

use std::collections::{BTreeMap, HashSet};

/// A process's state as the client sees it. A killed process gives up its
/// alias (a run may take it again) but a status read of the alias still
/// shows it until retention forgets it or a new process takes the alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No process of the alias, or none the cluster still keeps.
    Absent,
    Running,
    Suspended,
    Killing,
    /// Killed, and still kept.
    Gone,
}

impl State {
    /// The state named by the API.
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "Running" => Some(State::Running),
            "Suspended" => Some(State::Suspended),
            "Killing" => Some(State::Killing),
            "Killed" => Some(State::Gone),
            _ => None,
        }
    }

    /// Whether a live process holds the alias.
    fn is_live(self) -> bool {
        matches!(self, State::Running | State::Suspended | State::Killing)
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Run,
    Update,
    Kill,
    Suspend,
    Resume,
    Status,
}

/// What the client was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Done; a status also says the state it saw.
    Ok(Option<State>),
    /// No live process has the alias.
    NotFound,
    /// A live process already has the alias.
    Exists,
    /// Refused by the log (e.g. a transition it forbids), nothing changed.
    Refused,
    /// No answer, or one that does not say whether it took effect.
    Unknown,
}

/// One operation with its invocation and response times (ms of simulated
/// time; `None`: no response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub invoked: u64,
    pub returned: Option<u64>,
    pub answer: Answer,
}

/// The calls of a run, by alias.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub by_alias: BTreeMap<String, Vec<Call>>,
}

/// The largest per-alias history searched (the search state is a bitmask).
pub const MAX_CALLS: usize = 64;

impl History {
    pub fn record(&mut self, alias: &str, call: Call) {
        self.by_alias
            .entry(alias.to_string())
            .or_default()
            .push(call);
    }

    /// Every alias whose history no sequential order explains.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (alias, calls) in &self.by_alias {
            if calls.len() > MAX_CALLS {
                out.push(format!(
                    "history of {alias} has {} calls, more than the checker's bound {MAX_CALLS}",
                    calls.len()
                ));
            } else if !linearizable(calls) {
                out.push(format!("history of {alias} is not linearizable: {calls:?}"));
            }
        }
        out
    }
}

/// The registry's answer to `op` in state `s`: the next state, or `None`
/// if `answer` is not what it would say.
fn step(s: State, op: Op, answer: Answer) -> Option<State> {
    use State::*;
    let live = s.is_live();
    // The state after the operation succeeds, or None when it cannot.
    let effect = match op {
        Op::Run => (!live).then_some(Running),
        Op::Update => live.then_some(s),
        Op::Status => (s != Absent).then_some(s),
        Op::Kill => live.then_some(Killing),
        Op::Suspend => match s {
            Running | Suspended => Some(Suspended),
            _ => None,
        },
        Op::Resume => live.then_some(Running),
    };
    match answer {
        Answer::Unknown => Some(effect.unwrap_or(s)),
        Answer::Ok(seen) => match (effect, seen) {
            (Some(next), None) => Some(next),
            (Some(next), Some(seen)) if seen == s => Some(next),
            _ => None,
        },
        // A status read shows a killed process the cluster keeps; a
        // command finds no live one.
        Answer::NotFound if op == Op::Status => (s == Absent).then_some(s),
        Answer::NotFound => (!live).then_some(s),
        Answer::Exists => (op == Op::Run && live).then_some(s),
        Answer::Refused => (live && effect.is_none()).then_some(s),
    }
}

/// Wing & Gong's search: pick any call that could take effect first (none
/// has returned before it was invoked), apply it to the model, recurse;
/// memoise (calls done, state) pairs already explored.
pub fn linearizable(calls: &[Call]) -> bool {
    if calls.len() > MAX_CALLS {
        return false;
    }
    let must: u64 = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.returned.is_some())
        .fold(0, |m, (i, _)| m | (1 << i));
    let mut seen = HashSet::new();
    search(calls, must, 0, State::Absent, &mut seen)
}

fn search(
    calls: &[Call],
    must: u64,
    done: u64,
    state: State,
    seen: &mut HashSet<(u64, State)>,
) -> bool {
    if done & must == must {
        return true;
    }
    if !seen.insert((done, state)) {
        return false;
    }
    // No call can take effect after a pending call's response.
    let horizon = calls
        .iter()
        .enumerate()
        .filter(|(i, _)| done & (1 << i) == 0)
        .filter_map(|(_, c)| c.returned)
        .min()
        .unwrap_or(u64::MAX);
    // The conductor may finish a kill on its own before the next call, and
    // retention may forget a killed process.
    let states: &[State] = match state {
        State::Killing => &[State::Killing, State::Gone, State::Absent],
        State::Gone => &[State::Gone, State::Absent],
        _ => std::slice::from_ref(&state),
    };
    for (i, c) in calls.iter().enumerate() {
        if done & (1 << i) != 0 || c.invoked > horizon {
            continue;
        }
        for &s in states {
            if let Some(next) = step(s, c.op, c.answer) {
                if search(calls, must, done | (1 << i), next, seen) {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(op: Op, invoked: u64, returned: u64, answer: Answer) -> Call {
        Call {
            op,
            invoked,
            returned: Some(returned),
            answer,
        }
    }

    #[test]
    fn accepts_a_sequential_history() {
        let h = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Status, 11, 12, Answer::Ok(Some(State::Running))),
            call(Op::Suspend, 13, 20, Answer::Ok(None)),
            call(Op::Status, 21, 22, Answer::Ok(Some(State::Suspended))),
            call(Op::Kill, 23, 30, Answer::Ok(None)),
            call(Op::Suspend, 31, 32, Answer::Refused),
            // The conductor finished the kill on its own.
            call(Op::Status, 40, 41, Answer::NotFound),
        ];
        assert!(linearizable(&h));
    }

    #[test]
    fn accepts_overlap_resolved_either_way() {
        // The status overlaps the suspend, so it may see either state.
        for seen in [State::Running, State::Suspended] {
            let h = [
                call(Op::Run, 0, 10, Answer::Ok(None)),
                call(Op::Suspend, 20, 40, Answer::Ok(None)),
                call(Op::Status, 25, 30, Answer::Ok(Some(seen))),
            ];
            assert!(linearizable(&h), "{seen:?}");
        }
    }

    #[test]
    fn a_killed_process_reads_as_killed_until_forgotten_and_never_before_it_was() {
        let killed = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Kill, 20, 30, Answer::Ok(None)),
            call(Op::Status, 40, 41, Answer::Ok(Some(State::Gone))),
            call(Op::Resume, 42, 43, Answer::NotFound),
            call(Op::Status, 50, 51, Answer::NotFound),
            call(Op::Run, 60, 70, Answer::Ok(None)),
            call(Op::Status, 71, 72, Answer::Ok(Some(State::Running))),
        ];
        assert!(linearizable(&killed));
        let never_ran = [call(Op::Status, 0, 1, Answer::Ok(Some(State::Gone)))];
        assert!(!linearizable(&never_ran), "no process was ever killed");
        let forgotten_then_seen = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Kill, 20, 30, Answer::Ok(None)),
            call(Op::Status, 40, 41, Answer::NotFound),
            call(Op::Status, 50, 51, Answer::Ok(Some(State::Gone))),
        ];
        assert!(
            !linearizable(&forgotten_then_seen),
            "a process forgotten does not come back"
        );
        let running_read_as_killed = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Status, 11, 12, Answer::Ok(Some(State::Gone))),
        ];
        assert!(!linearizable(&running_read_as_killed));
    }

    #[test]
    fn rejects_a_stale_read() {
        // The suspend returned before the status began, yet the status saw
        // the process still running.
        let h = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Suspend, 20, 30, Answer::Ok(None)),
            call(Op::Status, 31, 35, Answer::Ok(Some(State::Running))),
        ];
        assert!(!linearizable(&h));
    }

    #[test]
    fn a_kill_that_finds_a_live_process_gone_is_not_linearizable() {
        // A retried kill is answered from its first attempt (the node
        // remembers the command id), so "not found" for a process that was
        // running when the kill began cannot be explained.
        let h = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Kill, 20, 90, Answer::NotFound),
            call(Op::Status, 91, 92, Answer::NotFound),
        ];
        assert!(!linearizable(&h));
    }

    #[test]
    fn rejects_a_lost_create() {
        // Run acknowledged, then the alias is unknown with no kill at all.
        let h = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Status, 11, 12, Answer::NotFound),
        ];
        assert!(!linearizable(&h));
    }

    #[test]
    fn an_unanswered_call_may_take_effect_late_or_never() {
        let lost_kill = Call {
            op: Op::Kill,
            invoked: 11,
            returned: None,
            answer: Answer::Unknown,
        };
        let before = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            lost_kill,
            call(Op::Status, 50, 51, Answer::Ok(Some(State::Running))),
        ];
        assert!(linearizable(&before));
        let after = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            lost_kill,
            call(Op::Status, 50, 51, Answer::Ok(Some(State::Killing))),
        ];
        assert!(linearizable(&after));
        // But it cannot take effect before it was sent.
        let early = [
            call(Op::Run, 0, 10, Answer::Ok(None)),
            call(Op::Status, 5, 8, Answer::Ok(Some(State::Killing))),
            lost_kill,
        ];
        assert!(!linearizable(&early));
    }
}
