//! The `canon` command line: global options and the verbs. Every verb
//! returns an exit code (0 success, 1 failure); clap reports usage errors
//! with code 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod compile;

#[derive(Debug, Parser)]
#[command(
    name = "canon",
    version,
    about = "Canon: declare AWS infrastructure, build it, keep it as declared"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a composition and report errors, without running it.
    Compile(compile::CompileArgs),
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Compile(args) => compile::run(&args),
        }
    }
}
