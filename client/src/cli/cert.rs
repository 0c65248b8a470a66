//! `canon cert`: the certificates of a cluster using mutual TLS. Two CAs
//! (peer: signs node certificates, the only CA nodes trust for each other;
//! client: signs users' certificates), node certificates naming
//! `canon://CLUSTER/node/ID` and the hosts a node is reached at, client
//! certificates naming a user, and a listing with expiry. Keys are written
//! 0600; nothing is replaced without `--overwrite`.

use std::path::{Path, PathBuf};

use canon_tls::files::{read_certs, write_all, Output};
use canon_tls::issue::{self, Ca, CaKind, Issued};
use canon_tls::CertInfo;
use clap::{Args, Subcommand, ValueEnum};

use super::common::{self, Failure, Outcome};

#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Signs node certificates (Raft traffic, node-to-node calls).
    Peer,
    /// Signs the certificates of users of the CLI and SDK.
    Client,
}

/// Where and how long: what every `create-*` shares.
#[derive(Debug, Args)]
pub struct Common {
    /// Days the certificate is valid.
    #[arg(long)]
    pub days: Option<u32>,
    /// Replace files that exist.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a CA in DIR (ca.crt, ca.key).
    CreateCa {
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The CA's directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Make node ID's certificate (node-ID.crt, node-ID.key), signed by
    /// the peer CA in --ca, naming each HOST (DNS name or IP address) the
    /// node is reached at and canon://CLUSTER/node/ID.
    CreateNode {
        id: u64,
        #[arg(required = true)]
        hosts: Vec<String>,
        /// The peer CA's directory.
        #[arg(long)]
        ca: PathBuf,
        /// Where to write the certificate and key.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The cluster's id (canond --cluster-id).
        #[arg(long, env = "CANON_CLUSTER_ID", default_value = "canon")]
        cluster: String,
        #[command(flatten)]
        common: Common,
    },
    /// Make USER's client certificate (client-USER.crt, client-USER.key),
    /// signed by the client CA in --ca.
    CreateClient {
        user: String,
        /// The client CA's directory.
        #[arg(long)]
        ca: PathBuf,
        /// Where to write the certificate and key.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// The certificates (*.crt, *.pem) in DIR and the directories in it:
    /// subject, kind and expiry.
    List {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: CertArgs) -> Outcome {
    canon_tls::install_crypto_provider();
    match args.command {
        CertCommand::CreateCa { kind, out, common } => {
            let kind = match kind {
                KindArg::Peer => CaKind::Peer,
                KindArg::Client => CaKind::Client,
            };
            let ca = issue::new_ca(kind, common.days.unwrap_or(issue::CA_DAYS)).map_err(fail)?;
            let files = vec![
                Output {
                    path: out.join(issue::CA_CERT),
                    contents: ca.cert_pem,
                    secret: false,
                },
                Output {
                    path: out.join(issue::CA_KEY),
                    contents: ca.key_pem,
                    secret: true,
                },
            ];
            write(&files, common.overwrite, &format!("{} CA", kind.name()))
        }
        CertCommand::CreateNode {
            id,
            hosts,
            ca,
            out,
            cluster,
            common,
        } => {
            let ca = Ca::load(&ca).map_err(fail)?;
            let days = common.days.unwrap_or(issue::LEAF_DAYS);
            let cert = ca.node(&cluster, id, &hosts, days).map_err(fail)?;
            let what = format!("node {id} of cluster {cluster:?}");
            write_leaf(&cert, &out, &format!("node-{id}"), common.overwrite, &what)
        }
        CertCommand::CreateClient {
            user,
            ca,
            out,
            common,
        } => {
            let ca = Ca::load(&ca).map_err(fail)?;
            let days = common.days.unwrap_or(issue::LEAF_DAYS);
            let cert = ca.client(&user, days).map_err(fail)?;
            let what = format!("client {user:?}");
            write_leaf(
                &cert,
                &out,
                &format!("client-{user}"),
                common.overwrite,
                &what,
            )
        }
        CertCommand::List { dir, json } => list(&dir, json),
    }
}

fn fail(e: canon_tls::TlsError) -> Failure {
    Failure::new(1, e.to_string())
}

fn write_leaf(cert: &Issued, dir: &Path, stem: &str, overwrite: bool, what: &str) -> Outcome {
    write(&cert.outputs(dir, stem), overwrite, what)
}

fn write(files: &[Output], overwrite: bool, what: &str) -> Outcome {
    write_all(files, overwrite).map_err(fail)?;
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            let shown = f.path.display();
            if f.secret {
                format!("{shown} (0600)")
            } else {
                shown.to_string()
            }
        })
        .collect();
    say!("[ OK ] {what}: {}", names.join(", "));
    Ok(())
}

/// What a certificate is, in a word or three.
fn kind_of(info: &CertInfo) -> String {
    if info.is_ca {
        return match info.subject.as_str() {
            "Canon peer CA" => "peer CA".into(),
            "Canon client CA" => "client CA".into(),
            _ => "CA".into(),
        };
    }
    match info.node() {
        Some((cluster, id)) => format!("node {id} of {cluster}"),
        None => format!("client (issuer: {})", info.issuer),
    }
}

/// Every certificate in `dir`'s `.crt` and `.pem` files, by file name.
fn certificates(dir: &Path) -> Result<Vec<(PathBuf, CertInfo)>, Failure> {
    let mut paths = certificate_files(dir)?;
    // The CAs' own directories (`peer-ca/`, `client-ca/` as `canon dev`
    // lays them out): one level down.
    for sub in subdirectories(dir) {
        paths.extend(certificate_files(&sub).unwrap_or_default());
    }
    paths.sort();
    let mut found = Vec::new();
    for p in paths {
        // A .pem holding only a key is not a certificate: skip it.
        let Ok(certs) = read_certs(&p) else { continue };
        for der in certs {
            let info = CertInfo::from_der(&der)
                .map_err(|e| Failure::new(1, format!("{}: {e}", p.display())))?;
            found.push((p.clone(), info));
        }
    }
    Ok(found)
}

/// The `*.crt` and `*.pem` files in `dir`.
fn certificate_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", dir.display())))?;
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "crt" || x == "pem"))
        .collect())
}

/// The directories in `dir` (none if it cannot be read).
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        },
    )
}

fn list(dir: &Path, json: bool) -> Outcome {
    let found = certificates(dir)?;
    let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
    let day = |secs: i64| common::date_time(u64::try_from(secs).unwrap_or(0) * 1000);
    if json {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|(p, i)| {
                serde_json::json!({
                    "file": p.display().to_string(),
                    "subject": i.subject,
                    "kind": kind_of(i),
                    "not_after": day(i.not_after),
                    "expired": i.not_after <= now,
                    "fingerprint": i.fingerprint,
                })
            })
            .collect();
        common::print_json(&serde_json::Value::Array(rows));
        return Ok(());
    }
    if found.is_empty() {
        say!("no certificates in {}", dir.display());
        return Ok(());
    }
    for (p, i) in &found {
        let left = (i.not_after - now) / 86_400;
        let expiry = if i.not_after <= now {
            format!("EXPIRED {}", day(i.not_after))
        } else {
            format!("expires {} (in {left} days)", day(i.not_after))
        };
        let file = p.strip_prefix(dir).unwrap_or(p).display().to_string();
        say!("{file:<24} {:<20} {:<28} {expiry}", i.subject, kind_of(i));
    }
    Ok(())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
