//! `canon`, the command-line tool. Each verb lives in its own module under
//! `src/cli/`; add a verb by adding a variant to [`cli::Command`] and a
//! module with its arguments and `run`.

#[path = "../cli/mod.rs"]
mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::Cli::parse().run()
}
