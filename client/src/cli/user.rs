//! `canon user …`: the policy's users. `add` and `remove` change the
//! policy (`user.add`, `user.remove`, and the no-escalation rule: a new
//! member of a group gets that group's roles). `create` is `add` for a new
//! teammate, with their key made on the spot and a `client.toml` that
//! works as them at once. `rotate-key` replaces a key (`user.rotate-key`;
//! anyone may rotate their own). Each prints what changed.

use std::path::{Path, PathBuf};

use canon_client::{config, key_file, Client};
use clap::{Args, Subcommand};

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub verb: UserVerb,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum UserVerb {
    /// Add a user who signs with KEY (hex ed25519 public key, as `canon
    /// keygen` prints it).
    Add {
        name: String,
        /// Repeat for several keys (a rotation under way).
        #[arg(long = "key", value_name = "PUBHEX", required = true)]
        keys: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Make a new user: a fresh key pair in DIR/NAME.key, the user added
    /// to the policy, and DIR/client.toml so that `CANON_CONFIG=DIR/client.toml
    /// canon …` works as them straight away. Hand DIR to them.
    Create {
        name: String,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Where to write the key and client.toml (created if missing;
        /// neither file may exist yet).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Replace a key with a fresh one. Without NAME: your own key (the one
    /// client.toml names); the new key is written beside it and client.toml
    /// is pointed at it. With NAME (needs user.rotate-key): all of NAME's
    /// keys are replaced by a fresh key written to --out.
    RotateKey {
        name: Option<String>,
        /// Where to write the new key [default: beside the old one, named
        /// after the new key's id].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Keep the old key(s) valid too (remove them later with another
        /// rotation, or `canon policy apply`).
        #[arg(long)]
        keep_old: bool,
    },
    /// Remove a user (and their place in bindings).
    Remove {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: UserArgs) -> Outcome {
    let client = common::connect(&args.conn)?;
    let json = args.conn.json;
    let (reply, dry_run) = match args.verb {
        UserVerb::Add {
            name,
            keys,
            groups,
            dry_run,
        } => (
            client.user_add(&name, keys, groups, dry_run).await?,
            dry_run,
        ),
        UserVerb::Remove { name, dry_run } => (client.user_remove(&name, dry_run).await?, dry_run),
        UserVerb::Create { name, groups, out } => {
            return create(&client, &args.conn, &name, groups, &out).await
        }
        UserVerb::RotateKey {
            name,
            out,
            keep_old,
        } => return rotate(&client, &args.conn, name, out, keep_old).await,
    };
    common::print_change(&reply, dry_run, json);
    Ok(())
}

fn failed(e: String) -> Failure {
    Failure::new(1, e)
}

/// `canon user create`: key first (a failure later leaves no user behind
/// and removes the key), then the user, then their client.toml.
async fn create(
    client: &Client,
    conn: &Conn,
    name: &str,
    groups: Vec<String>,
    out: &Path,
) -> Outcome {
    let toml = out.join("client.toml");
    if toml.exists() {
        return Err(failed(format!(
            "{} exists; not overwriting it",
            toml.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| failed(format!("cannot create {}: {e}", out.display())))?;
    let key_path = out.join(format!("{name}.key"));
    let key = key_file::create(&key_path).map_err(failed)?;
    let public = key_file::public_hex(&key);
    let reply = match client.user_add(name, vec![public], groups, false).await {
        Ok(reply) => reply,
        Err(e) => {
            // The user was not made: the key is no one's.
            let _ = std::fs::remove_file(&key_path);
            return Err(e.into());
        }
    };
    let cfg = config::resolve(&conn.endpoints, conn.config.as_deref()).map_err(failed)?;
    let theirs = config::ClientConfig {
        endpoints: cfg.endpoints,
        user: Some(name.to_string()),
        key: Some(PathBuf::from(format!("{name}.key"))),
        cluster_id: Some(client.audience().await?.to_string()),
    };
    theirs.write(&toml).map_err(failed)?;
    common::print_change(&reply, false, conn.json);
    if !conn.json {
        say!(
            "user {name} can now run: CANON_CONFIG={} canon …",
            toml.display()
        );
    }
    Ok(())
}

/// `canon user rotate-key`: one policy change adds the new key and (unless
/// `keep_old`) removes the old ones, signed with a key still valid.
async fn rotate(
    client: &Client,
    conn: &Conn,
    name: Option<String>,
    out: Option<PathBuf>,
    keep_old: bool,
) -> Outcome {
    let me = client
        .signer()
        .ok_or_else(|| failed("no key to sign with: client.toml names none".into()))?;
    let own = name.as_deref().is_none_or(|n| n == me.user);
    let name = name.unwrap_or_else(|| me.user.clone());
    let source = config::source(conn.config.as_deref());
    let cfg = source
        .as_deref()
        .map(config::read)
        .transpose()
        .map_err(failed)?;
    let old_path = cfg.as_ref().and_then(|c| c.key.clone());
    let key = key_file::generate();
    let new_path = match (&out, own, &old_path) {
        (Some(p), _, _) => p.clone(),
        (None, true, Some(old)) => old.with_file_name(format!("{name}-{}.key", key_file::id(&key))),
        _ => return Err(failed("say where to write the new key: --out FILE".into())),
    };
    let remove = if keep_old {
        Vec::new()
    } else if own {
        vec![me.key_id().to_string()]
    } else {
        their_key_ids(client, &name).await?
    };
    key_file::write_new(&new_path, &key).map_err(failed)?;
    let reply = match client
        .user_keys(&name, vec![key_file::public_hex(&key)], remove, false)
        .await
    {
        Ok(reply) => reply,
        Err(e) => {
            let _ = std::fs::remove_file(&new_path);
            return Err(e.into());
        }
    };
    common::print_change(&reply, false, conn.json);
    if own {
        repoint(source.as_deref(), cfg, &new_path, conn.json)?;
    }
    Ok(())
}

/// The ids of `name`'s keys in the policy now.
async fn their_key_ids(client: &Client, name: &str) -> Result<Vec<String>, Failure> {
    let policy = client.policy_get().await?;
    let doc = canon_trust::PolicyDocument::from_toml(&policy.toml)
        .map_err(|e| failed(format!("the cluster's policy does not read: {e}")))?;
    let user = doc
        .user(name)
        .ok_or_else(|| Failure::new(4, format!("no user named {name} in the policy")))?;
    Ok(user.keys.iter().map(|k| k.id().0).collect())
}

/// Points the client.toml at `source` (if any) at the new key.
fn repoint(
    source: Option<&Path>,
    cfg: Option<config::ClientConfig>,
    new_key: &Path,
    json: bool,
) -> Outcome {
    let (Some(path), Some(mut cfg)) = (source, cfg) else {
        if !json {
            say!("sign with {} from now on", new_key.display());
        }
        return Ok(());
    };
    let old = cfg.key.replace(new_key.to_path_buf());
    cfg.write(path).map_err(failed)?;
    if !json {
        say!(
            "{} now signs with {}{}",
            path.display(),
            new_key.display(),
            old.map(|o| format!("; {} is no longer valid", o.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
