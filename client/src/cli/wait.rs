//! `--wait` on `canon run`, `update` and `kill`: follows the job the
//! command started until it ends, over the node's event stream (no
//! polling). On a terminal it shows a progress spinner with the process's
//! events above it; otherwise it prints them as plain lines (nothing with
//! `--json`, whose output stays the command's own). `--timeout` gives up
//! after a while, says what is still in progress, and exits 7: the job
//! goes on.
//!
//! The stream is opened before the one history read that starts the wait,
//! so a job that ends at any moment is seen either by the read or as an
//! event. A stream that loses events (`events.lost`) or breaks is followed
//! by one more history read (after re-subscribing, for a break).

use std::io::IsTerminal;
use std::time::Duration;

use canon_client::job_status::{is_finished, job_status, status_words};
use canon_client::{pb, Client, ClientError};
use canon_model::JobStatus;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{Failure, Outcome};

/// The exit code of a wait that timed out (see [`super::EXIT_CODES`]).
pub const TIMED_OUT: u8 = 7;

/// Pause before re-subscribing after the stream broke.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(500);
/// Bound on the history read that describes a timed-out job.
const LAST_LOOK: Duration = Duration::from_secs(5);

/// `--wait` and `--timeout`, shared by the verbs that start a job.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Follow the job the command starts until it ends (a progress display
    /// on a terminal, plain lines otherwise); fail if the job fails.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (e.g. 90s, 5m) and exit 7,
    /// saying what is still in progress; the job goes on. Default: wait
    /// until the job ends.
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
}

impl WaitArgs {
    /// The `--timeout` duration, if any.
    pub fn timeout(&self) -> Result<Option<Duration>, Failure> {
        self.timeout
            .as_deref()
            .map(canon_model::parse_duration)
            .transpose()
            .map_err(|e| Failure::new(2, format!("--timeout: {e}")))
    }
}

/// The job being waited for.
#[derive(Debug, Clone)]
pub struct Target {
    pub alias: String,
    /// The process's FID (empty: any process of the alias).
    pub fid: String,
    pub job: u64,
    /// RUN, UPDATE, KILL or RELEASE.
    pub kind: &'static str,
}

impl Target {
    /// Job `job` of the process in `reply`.
    pub fn of(alias: &str, reply: &pb::CommandReply, kind: &'static str) -> Target {
        Target {
            alias: alias.to_string(),
            fid: reply
                .process
                .as_ref()
                .map(|p| p.fid.clone())
                .unwrap_or_default(),
            job: reply.job,
            kind,
        }
    }

    fn name(&self) -> String {
        format!("{} job {} of {}", self.kind, self.job, self.alias)
    }

    fn is_ours(&self, fid: &str) -> bool {
        self.fid.is_empty() || self.fid == fid
    }
}

/// What one look at the job found.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Still running (as last seen, if seen at all).
    InProgress(Option<pb::JobView>),
    /// It ended: succeeded or failed.
    Finished(pb::JobView),
    /// The alias no longer names the process: it was killed or released
    /// (for a KILL or RELEASE job, that is the job's success).
    Gone,
}

/// What an event means for the wait.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Not about the job: show it if it is about the process.
    Show,
    /// Not for us at all.
    Skip,
    /// The job ended.
    Finished(pb::JobView),
    /// Events were lost: read the job's state once.
    Reread,
}

/// What `e` means for the wait for `target`.
pub fn step(target: &Target, e: &pb::Event) -> Step {
    if e.kind == "events.lost" {
        return Step::Reread;
    }
    if !target.is_ours(&e.fid) {
        return Step::Skip;
    }
    match &e.job {
        Some(j) if j.id == target.job && is_finished(j) => Step::Finished(j.clone()),
        _ => Step::Show,
    }
}

/// How the wait shows itself.
enum Display {
    /// `--json`: nothing but the command's own output.
    Quiet,
    /// Not a terminal: one line per event.
    Lines,
    /// A terminal: a spinner, events printed above it.
    Spinner(ProgressBar),
}

impl Display {
    fn new(json: bool, target: &Target) -> Display {
        if json {
            return Display::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("[ wait ] {} in progress", target.name());
            return Display::Lines;
        }
        let bar = ProgressBar::new_spinner();
        // The template is a constant; the default style stands in if it
        // were ever refused.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(format!("{} in progress", target.name()));
        bar.enable_steady_tick(Duration::from_millis(120));
        Display::Spinner(bar)
    }

    fn line(&self, text: &str) {
        match self {
            Display::Quiet => {}
            Display::Lines => eprintln!("{text}"),
            Display::Spinner(bar) => bar.println(text),
        }
    }

    fn progress(&self, target: &Target, j: &pb::JobView) {
        if let Display::Spinner(bar) = self {
            let last = if j.message.is_empty() {
                String::new()
            } else {
                format!(": {}", j.message)
            };
            bar.set_message(format!(
                "{} in progress ({} passes){last}",
                target.name(),
                j.ticks
            ));
        }
    }

    /// Takes the spinner away (the wait is over).
    fn clear(&self) {
        if let Display::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }

    /// Ends the display with `text`.
    fn done(&self, text: &str) {
        self.clear();
        if !matches!(self, Display::Quiet) {
            eprintln!("{text}");
        }
    }
}

/// Follows `target` until it ends; fails if it failed, or if `timeout`
/// passed first (exit 7, saying what is still in progress).
pub async fn wait_job(
    client: &Client,
    target: &Target,
    timeout: Option<Duration>,
    json: bool,
) -> Outcome {
    let display = Display::new(json, target);
    let followed = match timeout {
        Some(t) => tokio::time::timeout(t, follow(client, target, &display))
            .await
            .ok(),
        None => Some(follow(client, target, &display).await),
    };
    match followed {
        Some(Ok(seen)) => ended(target, seen, &display),
        Some(Err(e)) => {
            display.clear();
            Err(e.into())
        }
        None => Err(timed_out(client, target, timeout, &display).await),
    }
}

/// The job's end, from the stream (re-subscribing when it breaks).
async fn follow(client: &Client, target: &Target, display: &Display) -> Result<Seen, ClientError> {
    loop {
        let mut stream = client.events(&target.alias).await?;
        // Subscribed: whatever ended before now shows in this read.
        match look(client, target).await? {
            Seen::InProgress(Some(j)) => display.progress(target, &j),
            Seen::InProgress(None) => {}
            ended => return Ok(ended),
        }
        loop {
            let e = match stream.message().await {
                Ok(Some(e)) => e,
                Ok(None) | Err(_) => {
                    display.line("[ note ] event stream interrupted; reconnecting");
                    break;
                }
            };
            match step(target, &e) {
                Step::Skip => {}
                Step::Show => display.line(&super::events::line(&e, false)),
                Step::Finished(j) => return Ok(Seen::Finished(j)),
                Step::Reread => {
                    display.line(&super::events::line(&e, false));
                    match look(client, target).await? {
                        Seen::InProgress(Some(j)) => display.progress(target, &j),
                        Seen::InProgress(None) => {}
                        ended => return Ok(ended),
                    }
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
    }
}

/// One history read: where the job stands.
async fn look(client: &Client, target: &Target) -> Result<Seen, ClientError> {
    let h = match client.history(&target.alias, 0, 0).await {
        Ok(h) => h,
        Err(ClientError::NotFound(_)) => return Ok(Seen::Gone),
        Err(e) => return Err(e),
    };
    let fid = h.process.as_ref().map(|p| p.fid.as_str()).unwrap_or("");
    if !target.is_ours(fid) {
        return Ok(Seen::Gone);
    }
    Ok(match h.jobs.into_iter().find(|j| j.id == target.job) {
        Some(j) if is_finished(&j) => Seen::Finished(j),
        j => Seen::InProgress(j),
    })
}

/// The outcome of a job that ended (or whose process is gone).
fn ended(target: &Target, seen: Seen, display: &Display) -> Outcome {
    match seen {
        Seen::Finished(j) => {
            let words = status_words(&j);
            display.done(&format!("[ wait ] {} {words} {}", target.name(), j.message));
            if job_status(&j) == Some(JobStatus::Succeeded) {
                Ok(())
            } else {
                Err(Failure::new(
                    1,
                    format!("{} job failed: {}", target.kind, j.message),
                ))
            }
        }
        // A kill or a release that ended frees the alias.
        Seen::Gone if matches!(target.kind, "KILL" | "RELEASE") => {
            let done = if target.kind == "KILL" {
                "killed"
            } else {
                "released"
            };
            display.done(&format!("[ wait ] {} SUCCEEDED: {done}", target.name()));
            Ok(())
        }
        Seen::Gone => {
            display.clear();
            Err(Failure::new(
                1,
                format!(
                    "{} ended without finishing: process {} was killed",
                    target.name(),
                    target.alias
                ),
            ))
        }
        Seen::InProgress(_) => Err(Failure::new(
            1,
            format!("{} is still in progress", target.name()),
        )),
    }
}

/// The failure of a wait that gave up: what is still in progress, as one
/// last read shows it.
async fn timed_out(
    client: &Client,
    target: &Target,
    timeout: Option<Duration>,
    display: &Display,
) -> Failure {
    display.clear();
    let after = timeout.map(|t| format!(" after {t:?}")).unwrap_or_default();
    let now = match tokio::time::timeout(LAST_LOOK, look(client, target)).await {
        Ok(Ok(Seen::InProgress(Some(j)))) => {
            let last = if j.message.is_empty() {
                String::new()
            } else {
                format!("; last: {}", j.message)
            };
            format!(" ({} passes so far{last})", j.ticks)
        }
        _ => String::new(),
    };
    Failure::new(
        TIMED_OUT,
        format!(
            "gave up waiting{after}: {} is still in progress{now}; it goes on \
             (`canon history {}` or `canon events {}` follow it)",
            target.name(),
            target.alias,
            target.alias
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            alias: "dev-sam".into(),
            fid: "f1".into(),
            job: 7,
            kind: "RUN",
        }
    }

    fn job_event(fid: &str, job: u64, status: pb::JobStatus) -> pb::Event {
        pb::Event {
            kind: "job.finished".into(),
            alias: "dev-sam".into(),
            fid: fid.into(),
            job: Some(pb::JobView {
                id: job,
                status: status.into(),
                ..pb::JobView::default()
            }),
            ..pb::Event::default()
        }
    }

    #[test]
    fn only_our_jobs_end_marks_the_end() {
        let t = target();
        let ours = job_event("f1", 7, pb::JobStatus::Failed);
        assert!(matches!(step(&t, &ours), Step::Finished(j) if j.id == 7));
        let started = job_event("f1", 7, pb::JobStatus::InProgress);
        assert_eq!(step(&t, &started), Step::Show);
        let other_job = job_event("f1", 8, pb::JobStatus::Succeeded);
        assert_eq!(step(&t, &other_job), Step::Show);
        let other_process = job_event("f0", 7, pb::JobStatus::Succeeded);
        assert_eq!(step(&t, &other_process), Step::Skip);
    }

    #[test]
    fn lost_events_ask_for_one_read() {
        let lost = pb::Event {
            kind: "events.lost".into(),
            lost: 3,
            ..pb::Event::default()
        };
        assert_eq!(step(&target(), &lost), Step::Reread);
    }

    #[test]
    fn a_gone_process_ends_a_kill_well_and_a_run_badly() {
        let display = Display::Quiet;
        let kill = Target {
            kind: "KILL",
            ..target()
        };
        assert!(ended(&kill, Seen::Gone, &display).is_ok());
        let run = ended(&target(), Seen::Gone, &display).unwrap_err();
        assert_eq!(run.code, 1);
    }
}
