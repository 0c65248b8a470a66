//! The actor's fence: what keeps a deposed leader's actor from acting.
//! Every write is fenced to the term the actor was started in (the state
//! machine refuses a fence from another term); every cloud mutation needs
//! leadership in that term and a fence younger than the lease; and the
//! actor stops when its supervisor cancels it or drops its mailbox.
//!
//! The test-only `break-fencing` sabotage (`SchedulerConfig::break_fencing`,
//! compiled in only with the feature) lives here and nowhere else: it turns
//! each of those guarantees off, so that sim-tests can prove its checker
//! catches a scheduler that interleaves two leaders' mutations.

use std::time::Duration;

use canon_model::UnixMillis;
use canon_raft::{Command, GroupId, Leadership, RaftNode, Rejection, Request, Response};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SchedulerConfig;
use crate::tick_error::TickError;

/// One actor's fence to its leadership term.
pub(crate) struct Fence {
    term: u64,
    leadership: watch::Receiver<Leadership>,
    /// How long after a fenced write the actor may keep mutating.
    lease: Duration,
    /// When the last fenced write was sent (and then committed).
    fenced_at: Instant,
    /// The sabotage is on.
    #[cfg(feature = "break-fencing")]
    broken: bool,
}

impl Fence {
    pub(crate) fn new(
        term: u64,
        leadership: watch::Receiver<Leadership>,
        config: &SchedulerConfig,
    ) -> Self {
        Fence {
            term,
            leadership,
            lease: config.fence_lease,
            fenced_at: Instant::now(),
            #[cfg(feature = "break-fencing")]
            broken: config.break_fencing,
        }
    }

    /// The leadership term the actor acts in.
    pub(crate) fn term(&self) -> u64 {
        self.term
    }

    /// True when the sabotage is on (never in production builds: the
    /// feature is off unless a test turns it on).
    fn broken(&self) -> bool {
        #[cfg(feature = "break-fencing")]
        return self.broken;
        #[cfg(not(feature = "break-fencing"))]
        false
    }

    /// Whether this node still leads the shard in the actor's term.
    pub(crate) fn leads(&self) -> bool {
        if self.broken() {
            return true;
        }
        let l = *self.leadership.borrow();
        l.is_me && l.term == self.term
    }

    /// Returns once this node leads the shard in the actor's term again.
    /// A leader counts itself leader only while a quorum acknowledged it
    /// within the lease (`canon_raft::Leadership::is_me`): on a loaded
    /// machine that lapses and returns within one term, and the watch may
    /// show the supervisor only the end of it, so an actor that saw the
    /// lapse must resume, not end. Never returns once the term is over:
    /// the supervisor stops the actor then.
    pub(crate) async fn until_leads(&mut self) {
        while !self.leads() {
            if self.leadership.changed().await.is_err() {
                // The group stopped: only the supervisor's cancel ends this.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether the last fenced write is older than the lease, so that a
    /// fresh one must be committed before the next mutation (no other
    /// leader can have been elected within the lease of a committed fence).
    pub(crate) fn lease_expired(&self) -> bool {
        self.fenced_at.elapsed() > self.lease && !self.broken()
    }

    /// Commits `command` to `group`, fenced to the actor's term.
    pub(crate) async fn write(
        &mut self,
        node: &RaftNode,
        group: GroupId,
        now: UnixMillis,
        command: Command,
    ) -> Result<(), TickError> {
        if !self.leads() {
            return Err(TickError::Deposed);
        }
        let sent = Instant::now();
        if self.broken() {
            let req = Request::new(now, command);
            if let Err(e) = node.propose(group, req).await {
                tracing::warn!("break-fencing: ignoring a failed write: {e}");
            }
            return Ok(());
        }
        let req = Request::fenced(self.term, now, command);
        let answer = node
            .propose(group, req)
            .await
            .map_err(TickError::WriteLog)?;
        self.answered(sent, answer)
    }

    /// What an answer to a fenced write sent at `sent` means: applied (the
    /// fence renewed), refused by the fence (deposed), or refused.
    // The tick's own error type, as `write` returns it: boxing it here
    // alone would only move the size elsewhere.
    #[allow(clippy::result_large_err)]
    fn answered(&mut self, sent: Instant, answer: Response) -> Result<(), TickError> {
        match answer {
            Response::Applied => {
                self.fenced_at = sent;
                Ok(())
            }
            Response::Rejected(Rejection::Fenced { .. }) => Err(TickError::Deposed),
            Response::Rejected(r) => Err(TickError::WriteRefused(r)),
        }
    }

    /// Commits `commands` to `group` in order, each fenced to the actor's
    /// term, pipelined ([`RaftNode::propose_in_order`]): one round of the
    /// log for all when this node leads the group. None applies unless
    /// those before it did; but they are sent together, so a refusal does
    /// not keep the ones after it from applying: give it only commands
    /// that each stand alone (a call's binding and its record).
    pub(crate) async fn write_in_order(
        &mut self,
        node: &RaftNode,
        group: GroupId,
        now: UnixMillis,
        commands: Vec<Command>,
    ) -> Result<(), TickError> {
        if commands.len() < 2 || self.broken() {
            for command in commands {
                self.write(node, group, now, command).await?;
            }
            return Ok(());
        }
        if !self.leads() {
            return Err(TickError::Deposed);
        }
        let sent = Instant::now();
        let reqs = commands
            .into_iter()
            .map(|c| Request::fenced(self.term, now, c))
            .collect();
        let answers = node
            .propose_in_order(group, reqs)
            .await
            .map_err(TickError::WriteLog)?;
        for answer in answers {
            self.answered(sent, answer)?;
        }
        Ok(())
    }

    /// Whether the actor must run detached from its supervisor's task: only
    /// under the sabotage, where the supervisor aborting its actors (on
    /// losing leadership) must not stop this one, as a deposed leader that
    /// carries on would not stop.
    pub(crate) fn runs_detached(&self) -> bool {
        self.broken()
    }

    /// The stop signals the actor obeys: its supervisor's `cancel` and the
    /// closing of its `wake` mailbox. Under the sabotage it obeys neither:
    /// a token nobody cancels, and a mailbox that stays open once the
    /// supervisor drops it.
    pub(crate) fn stop_signals<W>(
        &self,
        cancel: CancellationToken,
        wake: mpsc::Receiver<W>,
    ) -> (CancellationToken, Mailbox<W>) {
        let broken = self.broken();
        let cancel = if broken {
            CancellationToken::new()
        } else {
            cancel
        };
        let mailbox = Mailbox {
            wake,
            outlives_sender: broken,
            closed: false,
        };
        (cancel, mailbox)
    }
}

/// An actor's wakes from its supervisor.
pub(crate) struct Mailbox<W> {
    wake: mpsc::Receiver<W>,
    /// Once the supervisor is gone, wait forever instead of saying so.
    outlives_sender: bool,
    closed: bool,
}

impl<W> Mailbox<W> {
    /// The next wake; `None` once the supervisor has dropped the mailbox
    /// (which stops the actor), or never if the mailbox outlives it.
    pub(crate) async fn recv(&mut self) -> Option<W> {
        if !self.closed {
            match self.wake.recv().await {
                Some(w) => return Some(w),
                None if self.outlives_sender => self.closed = true,
                None => return None,
            }
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leading(term: u64, is_me: bool) -> Leadership {
        Leadership {
            leader: Some(1),
            term,
            is_me,
            since: None,
        }
    }

    /// A leader's lease lapsing and returning within its term (a loaded
    /// machine) pauses the actor and resumes it; a newer term never does.
    #[tokio::test]
    async fn an_actor_resumes_when_its_lease_returns_in_its_term_and_not_in_another() {
        let (tx, rx) = watch::channel(leading(7, true));
        let mut fence = Fence::new(7, rx, &SchedulerConfig::default());
        // Leading: at once.
        tokio::time::timeout(Duration::from_millis(100), fence.until_leads())
            .await
            .expect("leads now");

        tx.send_replace(leading(7, false));
        let waiting = tokio::time::timeout(Duration::from_millis(50), fence.until_leads()).await;
        assert!(waiting.is_err(), "not leading: it waits");
        // The lease returns in the same term, seen only as the latest value.
        tx.send_replace(leading(7, false));
        tx.send_replace(leading(7, true));
        tokio::time::timeout(Duration::from_millis(100), fence.until_leads())
            .await
            .expect("leads again in its term");

        tx.send_replace(leading(8, true));
        let other_term = tokio::time::timeout(Duration::from_millis(50), fence.until_leads()).await;
        assert!(other_term.is_err(), "a newer term is not its own");
        drop(tx);
        let closed = tokio::time::timeout(Duration::from_millis(50), fence.until_leads()).await;
        assert!(
            closed.is_err(),
            "a stopped group leaves it to the supervisor"
        );
    }
}
