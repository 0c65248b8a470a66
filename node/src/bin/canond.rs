//! `canond --config canond.toml`: one conductor node. Every setting is also
//! a flag and a `CANON_*` variable (`canond --help`). SIGTERM or Ctrl-C
//! stops the actors, flushes the log and exits 0. So does a node that finds
//! it was removed from the cluster (`canon cluster remove`), saying so.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::{Cloud, SimCloud};
use canon_node::config::{Resolved, Settings};
use canon_node::defaults::ADMIN_USER;
use canon_node::keys::parse_public_key;
use canon_node::options::NodeOptions;
use canon_node::server::Conductor;
use canon_raft::RaftSettings;
use canon_scheduler::SchedulerConfig;
use clap::Parser;

/// How long a joining node keeps asking the cluster to add it.
const JOIN_WITHIN: Duration = Duration::from_secs(600);
/// How long a removed node keeps running so that a removal it carries out
/// itself can finish and answer (it stops as soon as it has left the meta
/// group).
const REMOVED_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    // Before any thread starts (node::malloc says why).
    canon_node::malloc::cap_arenas();
    canon_tls::install_crypto_provider();
    let settings = match Settings::parse().resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("canond: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(&settings.log_format);
    // Before any node opens: every entry this process writes is in it.
    canon_raft::entry_codec::set_write_format(settings.entry_format);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("canond: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("canond: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn"));
    let colour = {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let quiet = canon_node::logs::without_peer_call_errors();
    if format == "json" {
        builder.json().finish().with(quiet).init();
    } else {
        builder.finish().with(quiet).init();
    }
}

/// The SQS intake queue at `url`, its replies signed with the key in the
/// file `key`.
async fn intake_queue(
    url: &str,
    key: &std::path::Path,
) -> Result<canon_node::sqs::IntakeQueue, String> {
    let key = canon_node::keys::read_signing_key(key).map_err(|e| e.to_string())?;
    let key = canon_node::sqs::ReplyKey::new(key);
    tracing::info!(queue = %url, reply_key_id = %key.id(), reply_key = %key.public_hex(),
        "taking commands over SQS; clients verify replies with this reply_key");
    canon_node::sqs::IntakeQueue::from_env(url, key).await
}

async fn run(s: Resolved) -> Result<(), String> {
    let admin = parse_public_key(&s.admin_key).map_err(|e| e.to_string())?;
    if s.cluster_id == canon_node::defaults::DEFAULT_CLUSTER_ID {
        tracing::warn!(
            cluster_id = %s.cluster_id,
            "no --cluster-id given: commands signed for any other cluster left at the default are accepted here; give each cluster its own id"
        );
    }
    if s.tls.is_none() {
        tracing::warn!(
            "no TLS material given (--tls-cert, --tls-key, --tls-peer-ca, --tls-client-ca): peers and clients talk in plaintext, so anyone on the network can read commands, replies and the replicated state (signatures still keep commands authentic); configure mutual TLS for anything but a closed test network"
        );
    }
    let mut users = BTreeMap::new();
    users.insert(ADMIN_USER.to_string(), admin);
    // Each process's account is reached through the role its policy entry
    // names; the directory reads the policy once the node runs.
    let accounts = canon_node::accounts::PolicyAccounts::new();
    let cloud: Arc<dyn Cloud> = if s.cloud == "aws" {
        let config = canon_cloud::AwsConfig {
            endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
            roles: Arc::new(accounts.clone()),
            app_name: Some(format!("canon-node-{}", s.id)),
            ..canon_cloud::AwsConfig::default()
        };
        Arc::new(canon_cloud::AwsCloud::new(config).await)
    } else {
        Arc::new(SimCloud::with_clock(
            s.id,
            Arc::new(canon_cloud::sim::TokioClock::new(canon_node::now_ms())),
        ))
    };
    let intake = match &s.intake {
        Some((url, key)) => Some(canon_node::sqs::IntakeQueue {
            only: s.no_client_port,
            ..intake_queue(url, key).await?
        }),
        None => None,
    };
    let events = events_queue(s.events.as_ref()).await?;
    let overflow = match &s.overflow_bucket {
        Some(bucket) => Some(canon_node::overflow::OverflowBucket::from_env(bucket).await),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&s.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", s.listen))?;
    std::fs::create_dir_all(&s.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", s.data_dir.display()))?;
    let conductor = Conductor::start(
        NodeOptions {
            id: s.id,
            advertise: s.advertise.clone(),
            data_dir: s.data_dir.clone(),
            shards: s.shards,
            raft: RaftSettings::default(),
            fence_lease: SchedulerConfig::default().fence_lease,
            tick: s.tick,
            account: s.account.clone(),
            users,
            freshness: Duration::from_secs(300),
            cluster_id: s.cluster_id.clone(),
            webhook: s.alert_webhook.clone(),
            metrics_listen: s.metrics_listen.clone(),
            console: s.console,
            console_tls: s.console_tls,
            signed_reads: s.signed_reads,
            tls: s.tls.clone(),
            retention: s.retention,
            open_join: s.open_join,
            intake,
            events,
            // Only a node on AWS has queues to read.
            account_events: (s.cloud == "aws").then(|| s.events_own.clone()),
            overflow,
            drill_faults: s.drill_faults,
        },
        listener,
        cloud,
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    accounts.attach(conductor.node.clone());
    tracing::info!(id = s.id, listen = %s.listen, advertise = %s.advertise, "canond serving");
    if s.bootstrap {
        let node = conductor.node.clone();
        let peers = s.peers.clone();
        // Peers may still be starting: keep trying until it takes.
        tokio::spawn(async move {
            loop {
                match canon_node::cluster::create(&node, &peers).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "bootstrap failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    if let Some(target) = s.join.clone() {
        let dial = conductor.peer_dialer();
        let (id, addr, token) = (s.id, s.advertise.clone(), s.join_token.clone());
        // The cluster may be busy: keep asking in the background while
        // serving (peers replicate to this node as soon as it is added).
        tokio::spawn(async move {
            let asked = canon_node::cluster::ask_to_join(
                &dial,
                &target,
                id,
                &addr,
                token.as_deref(),
                JOIN_WITHIN,
            );
            match asked.await {
                Ok(r) => tracing::info!(through = %target, "{}", r.message),
                Err(e) => tracing::error!(error = %e, "join failed"),
            }
        });
    }
    let mut removed = conductor.removed();
    let was_removed = tokio::select! {
        () = canon_node::stop_signal::wait_for_stop() => false,
        r = removed.wait_for(|r| *r) => r.is_ok(),
    };
    if was_removed {
        let started = tokio::time::Instant::now();
        while canon_node::removal::meta_voter(&conductor.node) && started.elapsed() < REMOVED_GRACE
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the answer to a removal this node carried out reach its client.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tracing::info!("stopping");
    conductor.shutdown().await;
    if was_removed {
        eprintln!(
            "canond: node {} was removed from the cluster; stopped. To bring it back, wipe {} and start it with --join",
            s.id,
            s.data_dir.display()
        );
    }
    Ok(())
}

/// The cloud events queue `--events-queue` names (with the conductor's own
/// ARNs), if any.
async fn events_queue(
    events: Option<&(String, Vec<String>)>,
) -> Result<Option<canon_node::cloud_events::EventsFrom>, String> {
    let Some((url, own)) = events else {
        return Ok(None);
    };
    tracing::info!(queue = %url, "healing drift from cloud events");
    let q = canon_node::cloud_events::EventsQueue::from_env(url, own.clone()).await?;
    Ok(Some(canon_node::cloud_events::EventsFrom::Queue(q)))
}
