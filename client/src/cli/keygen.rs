//! `canon keygen -o FILE`: makes an ed25519 key for signing commands and
//! prints its public half, which `canond --admin-key` takes. For clusters
//! started with `canond`; `canon dev` makes its own key.

use std::path::PathBuf;

use clap::Args;
use ed25519_dalek::SigningKey;

use super::common::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (hex); refused if the file exists.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

pub fn run(args: &KeygenArgs) -> Outcome {
    if args.output.exists() {
        return Err(Failure::new(
            1,
            format!("{} exists; not overwriting a key", args.output.display()),
        ));
    }
    let key = SigningKey::generate(&mut rand08::rngs::OsRng);
    std::fs::write(&args.output, hex::encode(key.to_bytes()) + "\n")
        .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", args.output.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.output, std::fs::Permissions::from_mode(0o600)).map_err(
            |e| Failure::new(1, format!("cannot protect {}: {e}", args.output.display())),
        )?;
    }
    say!("{}", hex::encode(key.verifying_key().as_bytes()));
    Ok(())
}
