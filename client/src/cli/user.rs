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
    /// canon …` works as them straight away. On a cluster with mutual TLS,
    /// also their client certificate (DIR/client-NAME.crt, .key) from the
    /// client CA in --client-ca, and the nodes' CA certificate. Hand DIR to
    /// them.
    Create {
        name: String,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Where to write the key and client.toml (created if missing;
        /// neither file may exist yet).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The client CA's directory (`canon cert create-ca --kind client`;
        /// a dev cluster's is DATA_DIR/tls/client-ca): needed when the
        /// cluster uses mutual TLS [default: client_ca in client.toml's
        /// [tls], which `canon dev` writes].
        #[arg(long, value_name = "DIR")]
        client_ca: Option<PathBuf>,
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
    let (client, cfg) = common::connect_configured(&args.conn)?;
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
        UserVerb::Create {
            name,
            groups,
            out,
            client_ca,
        } => {
            let new = NewUser {
                name: &name,
                groups,
                out: &out,
                client_ca: client_ca.as_deref(),
            };
            return create(&client, cfg, &args.conn, new).await;
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

/// What `canon user create` makes.
struct NewUser<'a> {
    name: &'a str,
    groups: Vec<String>,
    out: &'a Path,
    client_ca: Option<&'a Path>,
}

/// `canon user create`: key (and certificate) first, then the user, then
/// their client.toml; a failure before the user exists removes the files.
async fn create(
    client: &Client,
    cfg: config::ClientConfig,
    conn: &Conn,
    new: NewUser<'_>,
) -> Outcome {
    let out = new.out;
    let toml = out.join("client.toml");
    if toml.exists() {
        return Err(failed(format!(
            "{} exists; not overwriting it",
            toml.display()
        )));
    }
    let made_dir = !out.exists();
    std::fs::create_dir_all(out)
        .map_err(|e| failed(format!("cannot create {}: {e}", out.display())))?;
    let made = create_in(client, cfg, conn, new, &toml).await;
    if made.is_err() && made_dir {
        // Best effort, and only if empty: what failed removed its files.
        let _ = std::fs::remove_dir(out);
    }
    made
}

/// [`create`] once `new.out` exists.
async fn create_in(
    client: &Client,
    cfg: config::ClientConfig,
    conn: &Conn,
    new: NewUser<'_>,
    toml: &Path,
) -> Outcome {
    let (name, out) = (new.name, new.out);
    let tls = match &cfg.tls {
        Some(tls) => Some(issue_certificate(tls, &new)?),
        None => None,
    };
    let key_path = out.join(format!("{name}.key"));
    let made = |extra: &[PathBuf]| {
        let mut all = extra.to_vec();
        if let Some(t) = &tls {
            all.extend(t.files(out));
        }
        all
    };
    let key = match key_file::create(&key_path) {
        Ok(key) => key,
        Err(e) => {
            remove(&made(&[]));
            return Err(failed(e));
        }
    };
    let public = key_file::public_hex(&key);
    let reply = match client.user_add(name, vec![public], new.groups, false).await {
        Ok(reply) => reply,
        Err(e) => {
            // The user was not made: the key and certificate are no one's.
            remove(&made(&[key_path]));
            return Err(e.into());
        }
    };
    let theirs = config::ClientConfig {
        endpoints: cfg.endpoints,
        user: Some(name.to_string()),
        key: Some(PathBuf::from(format!("{name}.key"))),
        cluster_id: Some(client.audience().await?.to_string()),
        tls: tls.map(|t| t.paths),
        // The cluster's queue and reply key; the reply queue is theirs.
        transport: cfg.transport,
        intake_queue: cfg.intake_queue,
        reply_queue: None,
        reply_key: cfg.reply_key,
        reply_timeout: cfg.reply_timeout,
        overflow_bucket: cfg.overflow_bucket,
        console: cfg.console,
    };
    theirs.write(toml).map_err(failed)?;
    common::print_change(&reply, false, conn.json);
    if !conn.json {
        say!(
            "user {name} can now run: CANON_CONFIG={} canon …",
            toml.display()
        );
    }
    Ok(())
}

/// A new user's TLS files: relative paths for their client.toml.
struct UserTls {
    paths: config::TlsPaths,
}

impl UserTls {
    /// The files written into `out`.
    fn files(&self, out: &Path) -> Vec<PathBuf> {
        [&self.paths.ca, &self.paths.cert, &self.paths.key]
            .into_iter()
            .flatten()
            .map(|p| out.join(p))
            .collect()
    }
}

/// Issues `new.name`'s client certificate from the client CA and copies
/// the nodes' CA certificate beside it.
fn issue_certificate(admin: &config::TlsPaths, new: &NewUser<'_>) -> Result<UserTls, Failure> {
    let Some(ca_dir) = new.client_ca.or(admin.client_ca.as_deref()) else {
        return Err(failed(format!(
            "this cluster uses mutual TLS: give --client-ca DIR (the client CA's directory), \
             or name it as client_ca in client.toml's [tls], to issue {}'s certificate",
            new.name
        )));
    };
    canon_tls::install_crypto_provider();
    let tls_err = |e: canon_tls::TlsError| failed(e.to_string());
    let ca = canon_tls::issue::Ca::load(ca_dir).map_err(tls_err)?;
    let issued = ca
        .client(new.name, canon_tls::issue::LEAF_DAYS)
        .map_err(tls_err)?;
    let stem = format!("client-{}", new.name);
    let mut outputs = issued.outputs(new.out, &stem);
    if let Some(nodes_ca) = &admin.ca {
        let contents = canon_tls::files::read_text(nodes_ca).map_err(tls_err)?;
        outputs.push(canon_tls::files::Output {
            path: new.out.join("nodes-ca.crt"),
            contents,
            secret: false,
        });
    }
    canon_tls::files::write_all(&outputs, false).map_err(tls_err)?;
    Ok(UserTls {
        paths: config::TlsPaths {
            ca: admin.ca.as_ref().map(|_| PathBuf::from("nodes-ca.crt")),
            cert: Some(PathBuf::from(format!("{stem}.crt"))),
            key: Some(PathBuf::from(format!("{stem}.key"))),
            client_ca: None,
        },
    })
}

/// Removes files made for a user who was not made (best effort: a file
/// left behind holds no one's key).
fn remove(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
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
    // Your own rotation removes the key you sign with (keys on other
    // machines stay); someone else's replaces all of theirs.
    let (remove, replace_all) = match (keep_old, own) {
        (true, _) => (Vec::new(), false),
        (false, true) => (vec![me.key_id().to_string()], false),
        (false, false) => (Vec::new(), true),
    };
    key_file::write_new(&new_path, &key).map_err(failed)?;
    let keys = canon_client::pb::UserKeys {
        name: name.clone(),
        add: vec![key_file::public_hex(&key)],
        remove,
        replace_all,
    };
    let reply = match client.user_keys(keys, false).await {
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
    // client.toml reads a relative path as relative to itself, not to
    // where this runs.
    let new_key = std::path::absolute(new_key).unwrap_or_else(|_| new_key.to_path_buf());
    let old = cfg.key.replace(new_key.clone());
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
