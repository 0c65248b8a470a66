//! `canon keygen -o FILE`: makes an ed25519 key for signing commands and
//! prints its public half, which `canond --admin-key` takes. For clusters
//! started with `canond`; `canon dev` makes its own key.

use std::path::PathBuf;

use canon_client::key_file;
use clap::Args;

use super::common::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (hex); refused if the file exists.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

pub fn run(args: &KeygenArgs) -> Outcome {
    let key = key_file::create(&args.output).map_err(|e| Failure::new(1, e))?;
    say!("{}", key_file::public_hex(&key));
    Ok(())
}
