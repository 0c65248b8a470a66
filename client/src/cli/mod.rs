//! The `canon` command line: global options and the verbs. Every verb
//! returns an exit code (see [`EXIT_CODES`]); clap reports usage errors with
//! code 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that ignores a closed stdout (`canon status | head`): output
/// nobody reads is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod account;
pub mod audit;
pub mod auth;
pub mod cert;
pub mod cluster;
pub mod common;
pub mod compile;
pub mod compile_validations;
pub mod console;
#[cfg(feature = "dev")]
pub mod dev;
pub mod drill;
pub mod events;
pub mod fleet;
pub mod graph;
pub mod history;
pub mod keygen;
pub mod lifecycle;
pub mod policy;
pub mod property;
pub mod release;
pub mod run;
pub mod status;
pub mod table;
pub mod user;
pub mod validation;
pub mod wait;

/// Shown at the end of `canon --help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the command failed (compile error, refused by the cluster, aborted)
  2  bad usage (flags, arguments)
  3  no cluster node reachable, or no cluster configured
  4  no process with that alias (cluster remove: no member with that id)
  5  the alias is taken by a live process
  6  the cluster refused the signature or key, or the policy refused the
     command (auth can-i: the answer is deny)
  7  --wait gave up at --timeout before the job ended (the job goes on)

Cluster: --endpoints, CANON_ENDPOINTS, CANON_CONFIG (a client.toml), or the
client.toml that `canon dev` writes in its data dir.";

#[derive(Debug, Parser)]
#[command(
    name = "canon",
    version,
    about = "Canon: declare AWS infrastructure, build it, keep it as declared",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a composition and report errors, without running it.
    Compile(compile::CompileArgs),
    /// Compile a composition and run it as a new process.
    Run(run::RunArgs),
    /// Give a running process a new composition.
    Update(run::UpdateArgs),
    /// Delete everything a process owns, then forget it.
    Kill(lifecycle::KillArgs),
    /// Pause enforcement of a process (drift stays).
    Suspend(lifecycle::StateArgs),
    /// Resume enforcement of a suspended process.
    Resume(lifecycle::StateArgs),
    /// Stop managing a process without deleting anything: its resources
    /// lose Canon's ownership tag and stay in the cloud.
    Release(release::ReleaseArgs),
    /// Set a process's property: `enforcement on|off` (off: drift is
    /// recorded and alerted, not healed) or `lock on|off` (on: update and
    /// kill are refused).
    Property(property::PropertyArgs),
    /// A process's fleets: `rotate` replaces their members (or every
    /// instance, --all) now, rolling, with capacity held.
    Fleet(fleet::FleetArgs),
    /// The processes, or one process with every resource.
    Status(status::StatusArgs),
    /// A process's jobs and drift events.
    History(history::HistoryArgs),
    /// Draw a composition (FILE.lw) or a process (ALIAS, with drift) as
    /// the network it declares: SVG, JSON or DOT.
    Graph(graph::GraphArgs),
    /// The web console's login link (signed with your key); --open opens it.
    Console(console::ConsoleArgs),
    /// Follow jobs, process states and drift as they happen.
    Events(events::EventsArgs),
    /// Make a signing key; prints the public key for `canond --admin-key`.
    Keygen(keygen::KeygenArgs),
    /// The cluster: members, groups, leaders; remove a member.
    Cluster(cluster::ClusterArgs),
    /// The trust policy: users, accounts, roles, bindings.
    Policy(policy::PolicyArgs),
    /// Ask whether a user may do an action (`auth can-i`).
    Auth(auth::AuthArgs),
    /// Add or remove users of the policy.
    User(user::UserArgs),
    /// The AWS accounts processes run in.
    Account(account::AccountArgs),
    /// The organisation's validations: add, list, remove, report.
    Validation(validation::ValidationArgs),
    /// Certificates for mutual TLS: CAs, nodes, clients.
    Cert(cert::CertArgs),
    /// The audit log: list, verify its hash chains, export.
    Audit(audit::AuditArgs),
    /// Chaos drills on a real deployment: inject a fault under load, heal, report.
    Drill(drill::DrillArgs),
    /// A local cluster in this process (and its rogue operator).
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Compile(args) => compile::run(&args),
            Command::Run(args) => common::block_on(run::run(args)),
            Command::Update(args) => common::block_on(run::update(args)),
            Command::Kill(args) => common::block_on(lifecycle::kill(args)),
            Command::Suspend(args) => common::block_on(lifecycle::suspend(args)),
            Command::Resume(args) => common::block_on(lifecycle::resume(args)),
            Command::Release(args) => common::block_on(release::release(args)),
            Command::Property(args) => common::block_on(property::run(args)),
            Command::Fleet(args) => common::block_on(fleet::run(args)),
            Command::Status(args) => common::block_on(status::run(args)),
            Command::History(args) => common::block_on(history::run(args)),
            Command::Graph(args) => common::block_on(graph::run(args)),
            Command::Console(args) => common::block_on(console::run(args)),
            Command::Events(args) => common::block_on(events::run(args)),
            Command::Keygen(args) => common::exit(keygen::run(&args)),
            Command::Cluster(args) => common::block_on(cluster::run(args)),
            Command::Policy(args) => common::block_on(policy::run(args)),
            Command::Auth(args) => common::block_on(auth::run(args)),
            Command::User(args) => common::block_on(user::run(args)),
            Command::Account(args) => common::block_on(account::run(args)),
            Command::Validation(args) => common::block_on(validation::run(args)),
            Command::Cert(args) => common::exit(cert::run(args)),
            Command::Audit(args) => common::block_on(audit::run(args)),
            Command::Drill(args) => common::block_on(drill::run(args)),
            #[cfg(feature = "dev")]
            Command::Dev(args) => common::block_on(dev::run(args)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The times the help offers as `-10m` are values, not flags.
    #[test]
    fn times_before_now_are_values_not_flags() {
        let history = [
            "canon", "history", "web", "--since", "-5m", "--until", "-1m",
        ];
        match Cli::try_parse_from(history).map(|c| c.command) {
            Ok(Command::History(h)) => {
                assert_eq!(h.start.as_deref(), Some("-5m"));
                assert_eq!(h.end.as_deref(), Some("-1m"));
            }
            other => panic!("{history:?}: {other:?}"),
        }
        let history = ["canon", "history", "web", "--start", "-2h", "--end", "-1h"];
        assert!(Cli::try_parse_from(history).is_ok(), "{history:?}");
        let audit = ["canon", "audit", "--since", "-1d"];
        match Cli::try_parse_from(audit).map(|c| c.command) {
            Ok(Command::Audit(a)) => assert_eq!(a.since.as_deref(), Some("-1d")),
            other => panic!("{audit:?}: {other:?}"),
        }
    }
}
