//! `canond`'s settings: a `canond.toml` file, each setting also a flag and a
//! `CANON_*` variable (flags and variables win over the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_raft::NodeId;
use clap::Parser;
use serde::Deserialize;

/// Settings as flags and variables; every field is optional so that the
/// file can supply it.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "canond", version, about = "A Canon conductor node")]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A canond.toml with any of the settings below (names in snake_case).
    #[arg(long, env = "CANON_NODE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, env = "CANON_NODE_ID")]
    pub id: Option<NodeId>,
    /// Where to listen for peers and clients (host:port).
    #[arg(long, env = "CANON_LISTEN")]
    pub listen: Option<String>,
    /// The address peers reach this node at (default: --listen).
    #[arg(long, env = "CANON_ADVERTISE")]
    pub advertise: Option<String>,
    /// Every member as id=host:port, comma separated (this node included).
    #[arg(long, env = "CANON_PEERS", value_delimiter = ',')]
    pub peers: Option<Vec<String>>,
    /// Create the cluster from --peers if it does not exist yet (one node).
    #[arg(long, env = "CANON_BOOTSTRAP")]
    pub bootstrap: Option<bool>,
    /// Join an existing cluster through any member (host:port): it adds
    /// this node to the meta group and gives it shards. Harmless on a
    /// restart of a member.
    #[arg(long, env = "CANON_JOIN")]
    pub join: Option<String>,
    /// The one-time join token an admin made (`canon cluster join-token`):
    /// how a cluster without TLS knows this node was invited.
    #[arg(long, env = "CANON_JOIN_TOKEN")]
    pub join_token: Option<String>,
    /// Without TLS, let nodes join this cluster without a join token
    /// (insecure: anyone who reaches the port can join; for closed
    /// networks). Ignored with TLS.
    #[arg(long, env = "CANON_OPEN_JOIN")]
    pub open_join: Option<bool>,
    /// Where the node keeps its log and snapshots.
    #[arg(long, env = "CANON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sim` (in-memory EC2, one per node) or `aws` (standard AWS_* variables).
    #[arg(long, env = "CANON_CLOUD")]
    pub cloud: Option<String>,
    /// The AWS account processes run in when a command names none.
    #[arg(long, env = "CANON_ACCOUNT")]
    pub account: Option<String>,
    /// Time between enforcement ticks (e.g. 10s, 2s, 500ms; at least 1s).
    #[arg(long, env = "CANON_TICK")]
    pub tick: Option<String>,
    /// Number of shards (fixed when the cluster is created).
    #[arg(long, env = "CANON_SHARDS")]
    pub shards: Option<u32>,
    /// POST drift alerts as JSON to this http:// URL.
    #[arg(long, env = "CANON_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// The admin's ed25519 public key (64 hex digits).
    #[arg(long, env = "CANON_ADMIN_KEY")]
    pub admin_key: Option<String>,
    /// `human` or `json`.
    #[arg(long, env = "CANON_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// The format this node writes Raft log entries, AppendEntries and
    /// proposals in: `compact` (the default) or `first` (CBOR), which
    /// releases before the compact format read; with `first`, snapshots
    /// too keep their audit chain as releases before its chunks read it.
    /// Use `first` on every upgraded node while members of such a release
    /// remain (a rolling upgrade), then roll again without it. Both are
    /// always read.
    #[arg(long, env = "CANON_ENTRY_FORMAT")]
    pub entry_format: Option<String>,
    /// Serve Prometheus /metrics on this host:port (an admin port).
    #[arg(long, env = "CANON_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Serve the read-only web console on the admin port (off by default;
    /// without --metrics-listen the admin port is 127.0.0.1:9480). Reads
    /// are signed: open it with `canon console --open`, or, over HTTPS
    /// (--console-tls), with a client certificate of a policy user.
    #[arg(long, env = "CANON_CONSOLE", num_args = 0..=1, default_missing_value = "true")]
    pub console: Option<bool>,
    /// Serve the console over HTTPS with this node's certificate, where a
    /// browser may log in with a client certificate of the client CA
    /// (`canon cert create-client`); plain HTTP on the admin port then
    /// reaches /metrics and /healthz only. Default: on when the node has
    /// TLS (--tls-*); `--console-tls false` keeps the admin port plain
    /// (behind a proxy that terminates TLS).
    #[arg(long, env = "CANON_CONSOLE_TLS")]
    pub console_tls: Option<bool>,
    /// Refuse unsigned reads (status, history, events): true by default;
    /// `--signed-reads false` lets unsigned reads pass (signed ones are
    /// still checked).
    #[arg(long, env = "CANON_SIGNED_READS")]
    pub signed_reads: Option<bool>,
    /// This cluster's id (letters, digits, `-`, `_`, `.`; default
    /// `canon`): every signed command and read names it, so commands made
    /// for one cluster (staging) are refused by another (production). Give
    /// each cluster its own.
    #[arg(long, env = "CANON_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// This node's certificate (PEM; signed by the peer CA, naming
    /// canon://CLUSTER/node/ID and the hosts the node is reached at). With
    /// --tls-key, --tls-peer-ca and --tls-client-ca: mutual TLS.
    #[arg(long, env = "CANON_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, env = "CANON_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The peer CA's certificate: the only CA peers are trusted by.
    #[arg(long, env = "CANON_TLS_PEER_CA")]
    pub tls_peer_ca: Option<PathBuf>,
    /// The client CA's certificate: the CA of the CLI's and SDK's users.
    #[arg(long, env = "CANON_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Audit records each Raft group keeps, newest first (default 20000;
    /// 0: no limit by count). Older ones are trimmed; export them first.
    #[arg(long, env = "CANON_AUDIT_KEEP_RECORDS")]
    pub audit_keep_records: Option<u64>,
    /// Days of audit records each group keeps (default and 0: no limit by
    /// age).
    #[arg(long, env = "CANON_AUDIT_KEEP_DAYS")]
    pub audit_keep_days: Option<u64>,
    /// Finished jobs each process keeps as rows, newest first (default
    /// 50; 0: all). Older ones fold into counts `canon history` shows.
    #[arg(long, env = "CANON_HISTORY_KEEP_JOBS")]
    pub history_keep_jobs: Option<u64>,
    /// Days healed drift events stay as rows (default 30; 0: forever).
    /// Older ones fold into counts; open drift always stays.
    #[arg(long, env = "CANON_HISTORY_KEEP_DRIFT_DAYS")]
    pub history_keep_drift_days: Option<u64>,
    /// Days a killed process's record stays before it is removed (default
    /// 7; 0: forever).
    #[arg(long, env = "CANON_KILLED_KEEP_DAYS")]
    pub killed_keep_days: Option<u64>,
    /// Also take commands from this SQS queue (a FIFO queue's URL; see the
    /// README's "Commands over SQS"). The meta group's leader polls it,
    /// with the standard AWS configuration (AWS_* variables,
    /// AWS_ENDPOINT_URL for an emulator).
    #[arg(long, env = "CANON_INTAKE_QUEUE")]
    pub intake_queue: Option<String>,
    /// The secret key (a file of 64 hex digits, `canon keygen`) replies
    /// over SQS are signed with; the same on every node. Clients verify
    /// replies with its public half (`reply_key` in client.toml). Needed
    /// with --intake-queue.
    #[arg(long, env = "CANON_REPLY_KEY")]
    pub reply_key: Option<PathBuf>,
    /// Serve no client port: the gRPC port takes peers only (mutual TLS),
    /// and clients send commands and reads over the intake queue.
    #[arg(long, env = "CANON_NO_CLIENT_PORT", num_args = 0..=1, default_missing_value = "true")]
    pub no_client_port: Option<bool>,
    /// Heal drift when the cloud reports it, before the tick: read
    /// CloudTrail's EC2 call events from this SQS queue (an EventBridge
    /// target; `deploy/aws/events.yaml`). The meta group's leader reads it.
    #[arg(long, env = "CANON_EVENTS_QUEUE")]
    pub events_queue: Option<String>,
    /// ARNs whose EC2 calls are the conductor's own (its identity in its
    /// own account), comma-separated; calls under the role session
    /// `canon` are known as its own without it.
    #[arg(long, env = "CANON_EVENTS_OWN_ARN", value_delimiter = ',')]
    pub events_own_arn: Option<Vec<String>>,
    /// The S3 overflow bucket: what is too large for an SQS message goes
    /// through it — compositions clients store there (`overflow_bucket`
    /// in client.toml; only this bucket is read, and only objects whose
    /// SHA-256 the command signed) and replies the node stores there.
    #[arg(long, env = "CANON_OVERFLOW_BUCKET")]
    pub overflow_bucket: Option<String>,
    /// Let drills delay and drop this node's Raft messages (`canon drill
    /// run --fault delay-peers|loss-peers`), through the file
    /// `drill-link-fault.json` in the data dir. Off by default: for drill
    /// and test clusters, never needed in production.
    #[arg(long, env = "CANON_DRILL_FAULTS", num_args = 0..=1, default_missing_value = "true")]
    pub drill_faults: Option<bool>,
}

/// Settings checked and filled with defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: NodeId,
    pub listen: String,
    pub advertise: String,
    pub peers: BTreeMap<NodeId, String>,
    pub bootstrap: bool,
    /// A member to join the cluster through.
    pub join: Option<String>,
    /// The join token to present (clusters without TLS).
    pub join_token: Option<String>,
    /// Admit joins without a token (clusters without TLS).
    pub open_join: bool,
    pub data_dir: PathBuf,
    pub cloud: String,
    pub account: String,
    pub tick: Duration,
    pub shards: u32,
    pub alert_webhook: Option<String>,
    pub admin_key: String,
    pub log_format: String,
    /// The Raft entry format this node writes.
    pub entry_format: canon_raft::entry_codec::WriteFormat,
    pub metrics_listen: Option<String>,
    pub console: bool,
    /// Serve the console over HTTPS (TLS is configured then).
    pub console_tls: bool,
    pub signed_reads: bool,
    pub cluster_id: String,
    /// Mutual TLS material, when configured.
    pub tls: Option<canon_tls::NodeTlsFiles>,
    pub retention: crate::retention::Retention,
    /// The intake queue and the reply key, together.
    pub intake: Option<(String, PathBuf)>,
    /// Clients only over the intake queue.
    pub no_client_port: bool,
    /// The cloud events queue, and the ARNs that are the conductor's own.
    pub events: Option<(String, Vec<String>)>,
    /// The ARNs that are the conductor's own, for the accounts' events
    /// queues too.
    pub events_own: Vec<String>,
    /// The S3 bucket what is too large for an SQS message goes through.
    pub overflow_bucket: Option<String>,
    /// Drills may set link faults on this node.
    pub drill_faults: bool,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds
/// ([`canon_model::parse_duration`], shared with the CLI).
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    canon_model::parse_duration(s).map_err(|e| ConfigError(e.to_string()))
}

/// A cluster id is 1-64 letters, digits, `-`, `_` or `.` (it appears in
/// certificates' URIs and in every signature).
pub fn check_cluster_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "bad cluster id {id:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The TLS files: all four, or none (plaintext); some but not all is an
/// error naming the missing ones.
/// Whether the console is served over HTTPS: as `asked`, by default when
/// the node has TLS material (`has_tls`), which asking for it needs.
fn console_tls(asked: Option<bool>, has_tls: bool) -> Result<bool, ConfigError> {
    match asked {
        Some(true) if !has_tls => Err(ConfigError(
            "--console-tls serves the console with the node's certificate: give --tls-cert, \
             --tls-key, --tls-peer-ca and --tls-client-ca too"
                .into(),
        )),
        Some(asked) => Ok(asked),
        None => Ok(has_tls),
    }
}

fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    peer_ca: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<canon_tls::NodeTlsFiles>, ConfigError> {
    match (cert, key, peer_ca, client_ca) {
        (None, None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(peer_ca), Some(client_ca)) => {
            Ok(Some(canon_tls::NodeTlsFiles {
                cert,
                key,
                peer_ca,
                client_ca,
            }))
        }
        (cert, key, peer_ca, client_ca) => {
            let missing: Vec<&str> = [
                ("--tls-cert", cert.is_none()),
                ("--tls-key", key.is_none()),
                ("--tls-peer-ca", peer_ca.is_none()),
                ("--tls-client-ca", client_ca.is_none()),
            ]
            .into_iter()
            .filter_map(|(flag, absent)| absent.then_some(flag))
            .collect();
            Err(ConfigError(format!(
                "mutual TLS needs all four of --tls-cert, --tls-key, --tls-peer-ca and \
                 --tls-client-ca; missing {}",
                missing.join(", ")
            )))
        }
    }
}

/// The intake queue and its reply key: both, or neither.
fn intake(
    queue: Option<String>,
    reply_key: Option<PathBuf>,
) -> Result<Option<(String, PathBuf)>, ConfigError> {
    match (queue, reply_key) {
        (None, None) => Ok(None),
        (Some(q), Some(k)) => Ok(Some((q, k))),
        (Some(_), None) => Err(ConfigError(
            "--intake-queue needs --reply-key: the key every node signs its replies with".into(),
        )),
        (None, Some(_)) => Err(ConfigError(
            "--reply-key signs replies over SQS: give --intake-queue too".into(),
        )),
    }
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

impl Settings {
    /// Flags and variables over the file named by `--config`, with defaults.
    pub fn resolve(self) -> Result<Resolved, ConfigError> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => Settings::default(),
        };
        let id = self
            .id
            .or(file.id)
            .ok_or_else(|| ConfigError("--id is required".into()))?;
        if id == 0 {
            return Err(ConfigError("--id must be positive".into()));
        }
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:7700".into());
        let advertise = self.advertise.or(file.advertise).unwrap_or(listen.clone());
        let mut peers = BTreeMap::new();
        for p in self.peers.or(file.peers).unwrap_or_default() {
            let (pid, addr) = p
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("bad peer {p:?}: use id=host:port")))?;
            let pid: NodeId = pid
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("bad peer id in {p:?}")))?;
            peers.insert(pid, addr.trim().to_string());
        }
        peers.entry(id).or_insert(advertise.clone());
        let cloud = self.cloud.or(file.cloud).unwrap_or_else(|| "sim".into());
        if cloud != "sim" && cloud != "aws" {
            return Err(ConfigError(format!(
                "--cloud must be sim or aws, not {cloud:?}"
            )));
        }
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "human".into());
        if log_format != "human" && log_format != "json" {
            return Err(ConfigError(format!(
                "--log-format must be human or json, not {log_format:?}"
            )));
        }
        let entry_format = self.entry_format.or(file.entry_format).map_or(
            Ok(canon_raft::entry_codec::WriteFormat::Compact),
            |f| {
                f.parse()
                    .map_err(|e| ConfigError(format!("--entry-format: {e}")))
            },
        )?;
        let tick = parse_duration(&self.tick.or(file.tick).unwrap_or_else(|| "10s".into()))?;
        let admin_key = self.admin_key.or(file.admin_key).ok_or_else(|| {
            ConfigError("--admin-key (the admin's public key) is required".into())
        })?;
        let bootstrap = self.bootstrap.or(file.bootstrap).unwrap_or(false);
        let join = self.join.or(file.join);
        let join_token = self.join_token.or(file.join_token);
        if join_token.is_some() && join.is_none() {
            return Err(ConfigError(
                "--join-token is presented when joining: give --join too".into(),
            ));
        }
        let cluster_id = self
            .cluster_id
            .or(file.cluster_id)
            .unwrap_or_else(|| crate::defaults::DEFAULT_CLUSTER_ID.into());
        check_cluster_id(&cluster_id)?;
        let tls = tls_files(
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
            self.tls_peer_ca.or(file.tls_peer_ca),
            self.tls_client_ca.or(file.tls_client_ca),
        )?;
        let console_tls = console_tls(self.console_tls.or(file.console_tls), tls.is_some())?;
        let no_client_port = self.no_client_port.or(file.no_client_port) == Some(true);
        if no_client_port && (self.intake_queue.is_none() && file.intake_queue.is_none()) {
            return Err(ConfigError(
                "--no-client-port needs --intake-queue: clients reach the cluster over SQS".into(),
            ));
        }
        if bootstrap && join.is_some() {
            return Err(ConfigError(
                "--bootstrap creates a cluster and --join joins one: pick one".into(),
            ));
        }
        let events_own = self
            .events_own_arn
            .or(file.events_own_arn)
            .unwrap_or_default();
        Ok(Resolved {
            id,
            join,
            join_token,
            open_join: self.open_join.or(file.open_join).unwrap_or(false),
            listen,
            advertise,
            peers,
            bootstrap,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(format!("canon-data/node-{id}"))),
            cloud,
            account: self
                .account
                .or(file.account)
                .unwrap_or_else(|| crate::defaults::DEFAULT_ACCOUNT.into()),
            tick,
            shards: self
                .shards
                .or(file.shards)
                .unwrap_or(canon_raft::DEFAULT_SHARD_COUNT),
            alert_webhook: self.alert_webhook.or(file.alert_webhook),
            admin_key,
            log_format,
            entry_format,
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            console: self.console.or(file.console).unwrap_or(false),
            console_tls,
            signed_reads: self.signed_reads.or(file.signed_reads).unwrap_or(true),
            cluster_id,
            tls,
            retention: crate::retention::Retention {
                audit: crate::retention::AuditRetention::from_settings(
                    self.audit_keep_records.or(file.audit_keep_records),
                    self.audit_keep_days.or(file.audit_keep_days),
                ),
                history: crate::retention::HistoryRetention::from_settings(
                    self.history_keep_jobs.or(file.history_keep_jobs),
                    self.history_keep_drift_days
                        .or(file.history_keep_drift_days),
                    self.killed_keep_days.or(file.killed_keep_days),
                ),
                sweep_every: crate::retention::SWEEP_EVERY_DEFAULT,
            },
            intake: intake(
                self.intake_queue.or(file.intake_queue),
                self.reply_key.or(file.reply_key),
            )?,
            no_client_port,
            events: self
                .events_queue
                .or(file.events_queue)
                .map(|url| (url, events_own.clone())),
            events_own,
            overflow_bucket: self.overflow_bucket.or(file.overflow_bucket),
            drill_faults: self.drill_faults.or(file.drill_faults) == Some(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's whole TLS material, as flags.
    const TLS_FLAGS: [&str; 8] = [
        "--tls-cert",
        "n.crt",
        "--tls-key",
        "n.key",
        "--tls-peer-ca",
        "p.crt",
        "--tls-client-ca",
        "c.crt",
    ];

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canond.toml");
        std::fs::write(
            &path,
            "id = 2\nlisten = \"127.0.0.1:9000\"\ntick = \"2s\"\npeers = [\"1=127.0.0.1:8000\"]\nadmin_key = \"ab\"\n",
        )
        .unwrap();
        let s =
            Settings::parse_from(["canond", "--config", path.to_str().unwrap(), "--tick", "3s"]);
        let r = s.resolve().unwrap();
        assert_eq!(r.id, 2);
        assert_eq!(r.tick, Duration::from_secs(3));
        assert_eq!(r.advertise, "127.0.0.1:9000");
        assert_eq!(r.peers.len(), 2);
        assert_eq!(r.cloud, "sim");
        assert!(!r.console, "the console is off unless asked for");
    }

    #[test]
    fn the_console_is_on_by_flag_or_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canond.toml");
        std::fs::write(&path, "id = 1\nadmin_key = \"ab\"\nconsole = true\n").unwrap();
        let from_file = Settings::parse_from(["canond", "--config", path.to_str().unwrap()]);
        assert!(from_file.resolve().unwrap().console);
        let flag = Settings::parse_from(["canond", "--id", "1", "--admin-key", "ab", "--console"]);
        assert!(flag.resolve().unwrap().console);
        let off = [
            "canond",
            "--id",
            "1",
            "--admin-key",
            "ab",
            "--console",
            "false",
        ];
        assert!(!Settings::parse_from(off).resolve().unwrap().console);
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canond.toml");
        std::fs::write(&path, "colour = 3\n").unwrap();
        let s = Settings::parse_from(["canond", "--config", path.to_str().unwrap(), "--id", "1"]);
        assert!(s.resolve().is_err());
        let s = Settings::parse_from(["canond", "--id", "1", "--cloud", "gcp", "--admin-key", "x"]);
        assert!(s.resolve().is_err());
    }

    #[test]
    fn the_entry_format_is_compact_unless_a_rolling_upgrade_asks_for_the_first() {
        use canon_raft::entry_codec::WriteFormat;
        let base = ["canond", "--id", "1", "--admin-key", "x"];
        let r = Settings::parse_from(base).resolve().unwrap();
        assert_eq!(r.entry_format, WriteFormat::Compact);
        let flag = [&base[..], &["--entry-format", "first"]].concat();
        let r = Settings::parse_from(flag).resolve().unwrap();
        assert_eq!(r.entry_format, WriteFormat::First);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canond.toml");
        std::fs::write(
            &path,
            "id = 1\nadmin_key = \"ab\"\nentry_format = \"first\"\n",
        )
        .unwrap();
        let from_file = Settings::parse_from(["canond", "--config", path.to_str().unwrap()]);
        assert_eq!(
            from_file.resolve().unwrap().entry_format,
            WriteFormat::First
        );
        let bad = [&base[..], &["--entry-format", "v3"]].concat();
        let e = Settings::parse_from(bad).resolve().unwrap_err().0;
        assert!(e.contains("--entry-format") && e.contains("compact"), "{e}");
    }

    #[test]
    fn tls_takes_all_four_files_or_none() {
        let base = ["canond", "--id", "1", "--admin-key", "x"];
        let r = Settings::parse_from(base).resolve().unwrap();
        assert_eq!(r.tls, None);
        assert_eq!(r.cluster_id, "canon");
        let mut half = base.to_vec();
        half.extend(["--tls-cert", "n.crt", "--tls-peer-ca", "p.crt"]);
        let e = Settings::parse_from(half)
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing --tls-key, --tls-client-ca"), "{e}");
        let mut all = base.to_vec();
        all.extend(TLS_FLAGS);
        all.extend(["--cluster-id", "prod"]);
        let r = Settings::parse_from(all).resolve().unwrap();
        assert_eq!(r.tls.map(|t| t.client_ca), Some(PathBuf::from("c.crt")));
        assert_eq!(r.cluster_id, "prod");
        let mut bad = base.to_vec();
        bad.extend(["--cluster-id", "a/b"]);
        assert!(Settings::parse_from(bad).resolve().is_err());
    }

    #[test]
    fn the_console_is_https_by_default_with_tls_and_only_with_it() {
        let base = ["canond", "--id", "1", "--admin-key", "x"];
        let tls = TLS_FLAGS;
        let plain = Settings::parse_from(base).resolve().unwrap();
        assert!(!plain.console_tls, "no TLS material: plain HTTP");
        let with_tls = Settings::parse_from([&base[..], &tls[..]].concat());
        assert!(with_tls.resolve().unwrap().console_tls);
        let off = [&base[..], &tls[..], &["--console-tls", "false"][..]].concat();
        assert!(!Settings::parse_from(off).resolve().unwrap().console_tls);
        let asked = [&base[..], &["--console-tls", "true"][..]].concat();
        let e = Settings::parse_from(asked)
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tls-cert"), "{e}");
    }

    #[test]
    fn an_intake_queue_comes_with_its_reply_key() {
        let base = ["canond", "--id", "1", "--admin-key", "x"];
        let url = "https://sqs.us-east-1.amazonaws.com/1/canon.fifo";
        let mut queue_only = base.to_vec();
        queue_only.extend(["--intake-queue", url]);
        let e = Settings::parse_from(queue_only).resolve().unwrap_err();
        assert!(e.to_string().contains("--reply-key"), "{e}");
        let mut both = base.to_vec();
        both.extend(["--intake-queue", url, "--reply-key", "reply.key"]);
        let r = Settings::parse_from(both.clone()).resolve().unwrap();
        assert_eq!(r.intake, Some((url.into(), PathBuf::from("reply.key"))));
        assert!(!r.no_client_port);
        let mut portless = base.to_vec();
        portless.push("--no-client-port");
        let e = Settings::parse_from(portless).resolve().unwrap_err();
        assert!(e.to_string().contains("needs --intake-queue"), "{e}");
        both.push("--no-client-port");
        assert!(Settings::parse_from(both).resolve().unwrap().no_client_port);
    }
}
