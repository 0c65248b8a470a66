//! `canon dev`: a local cluster in this process, in the foreground, with the
//! simulated cloud (or `--cloud aws`). It writes `client.toml` in its data
//! dir, which other `canon` commands read when given no endpoints.
//! `canon dev rogue ...` plays the rogue operator on its simulated cloud.

use std::path::{Path, PathBuf};

use canon_client::{config, pb};
use canon_node::dev::{DevCloud, DevCluster, DevOptions};
use clap::{Args, Subcommand, ValueEnum};

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: Option<DevCommand>,
    /// Number of nodes (a restart keeps the data dir's cluster size).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The cloud the cluster drives.
    #[arg(long, value_enum, default_value_t = CloudArg::Sim)]
    pub cloud: CloudArg,
    /// Time between enforcement ticks (at least 1s).
    #[arg(long, default_value = "2s")]
    pub tick: String,
    /// Where the cluster keeps its state [default: ~/.local/share/canon/dev].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of shards (fixed when the data dir is first used).
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Let unsigned reads (status, history, events) through. By default a
    /// dev cluster refuses them, as canond does; the CLI signs its reads
    /// with the admin key.
    #[arg(long)]
    pub allow_unsigned_reads: bool,
    /// Refuse unsigned reads: the default now, kept so that older scripts
    /// still run.
    #[arg(long, hide = true, conflicts_with = "allow_unsigned_reads")]
    pub signed_reads: bool,
    /// Serve plaintext gRPC. By default the cluster uses mutual TLS with
    /// CAs it makes in its data dir (tls/), and client.toml points at the
    /// dev user's client certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Also take commands from this SQS queue (a FIFO queue's URL), polled
    /// by the meta group's leader, with the standard AWS configuration
    /// (AWS_* variables; AWS_ENDPOINT_URL for an emulator such as moto).
    #[arg(long)]
    pub intake_queue: Option<String>,
    /// Serve no client port (needs --intake-queue and TLS): the nodes'
    /// gRPC port takes peers only, and client.toml sends every command
    /// and read over the queue (add your reply_queue to it).
    #[arg(long, requires = "intake_queue", conflicts_with = "insecure")]
    pub no_client_port: bool,
    /// Heal drift as the cloud reports it, before the tick: read
    /// CloudTrail's EC2 call events from this SQS queue (with `--cloud
    /// aws`, on the same endpoint, for example moto).
    #[arg(long)]
    pub events_queue: Option<String>,
    /// Heal drift as the simulated cloud reports it (its CloudTrail-like
    /// event feed), before the tick. With `--cloud sim` only.
    #[arg(long, conflicts_with = "events_queue")]
    pub sim_events: bool,
    /// The S3 overflow bucket (on the same endpoint as the queues): what
    /// is too large for an SQS message goes through it, compositions in
    /// (`overflow_bucket` in client.toml) and replies out.
    #[arg(long, requires = "intake_queue")]
    pub overflow_bucket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudArg {
    Sim,
    Aws,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Change the dev cluster's simulated cloud behind Canon's back.
    Rogue {
        #[command(subcommand)]
        action: RogueAction,
        /// Region of the change.
        #[arg(long, default_value = "us-west-2", global = true)]
        region: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum RogueAction {
    /// Add an ingress rule to a security group.
    AuthorizeIngress(RuleArgs),
    /// Add an egress (outbound) rule to a security group.
    AuthorizeEgress(RuleArgs),
    /// Delete a route from a route table.
    DeleteRoute {
        /// The route table id (rtb-...).
        #[arg(long)]
        route_table: String,
        /// The route's destination.
        #[arg(long, default_value = "0.0.0.0/0")]
        destination: String,
    },
    /// Point a route at another target.
    ReplaceRoute {
        /// The route table id (rtb-...).
        #[arg(long)]
        route_table: String,
        /// The route's destination.
        #[arg(long, default_value = "0.0.0.0/0")]
        destination: String,
        /// The new target: an internet gateway (igw-...), a NAT gateway
        /// (nat-...) or an egress-only internet gateway (eigw-...).
        #[arg(long)]
        target: String,
    },
    /// Take a subnet out of its route table (back to its VPC's main one).
    DisassociateRouteTable {
        /// The subnet id (subnet-...), or the association id (rtbassoc-...).
        #[arg(long)]
        subnet: String,
    },
    /// Release an Elastic IP address (EC2 refuses while it is associated).
    ReleaseAddress {
        /// The allocation id (eipalloc-...).
        #[arg(long)]
        allocation: String,
    },
    /// Detach an EBS volume from the instance it is attached to.
    DetachVolume {
        /// The volume id (vol-...).
        #[arg(long)]
        volume: String,
        /// The instance it is attached to (i-...).
        #[arg(long)]
        instance: String,
    },
    /// Any other EC2 call the simulated cloud carries out, by its name
    /// (DeleteTags, delete-tags or delete_tags) and its parameters as the
    /// model names them: `--param resource=vpc-1 --param keys='["Name"]'`.
    /// A value is read as JSON when it is JSON (numbers, true, lists,
    /// objects), otherwise as a string; a reference is a cloud id.
    Ec2 {
        /// The call, for example DeleteRoute.
        action: String,
        /// KEY=VALUE, once per parameter.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// Delete a subnet.
    DeleteSubnet {
        /// The subnet id (subnet-...).
        #[arg(long)]
        subnet: String,
    },
    /// Add an entry to a network ACL (by default: allow all traffic in
    /// from anywhere, numbered 1, so it decides before any other).
    AddNaclEntry(NaclEntryArgs),
}

/// The rule `canon dev rogue authorize-ingress|authorize-egress` adds.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// The security group id (sg-...).
    #[arg(long)]
    group: String,
    /// tcp, udp, icmp or -1 (all traffic).
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    protocol: String,
    /// First port (tcp/udp).
    #[arg(long, default_value_t = 0)]
    from_port: i32,
    /// Last port (tcp/udp; default: --from-port).
    #[arg(long)]
    to_port: Option<i32>,
    /// The peer range: IPv4 (0.0.0.0/0) or IPv6 (::/0).
    #[arg(long, default_value = "0.0.0.0/0")]
    cidr: String,
}

impl RuleArgs {
    fn into_rule(self, egress: bool) -> pb::RogueIngress {
        pb::RogueIngress {
            to_port: self.to_port.unwrap_or(self.from_port),
            group: self.group,
            protocol: self.protocol,
            from_port: self.from_port,
            cidr: self.cidr,
            egress,
        }
    }
}

/// The entry `canon dev rogue add-nacl-entry` adds.
#[derive(Debug, Args)]
pub struct NaclEntryArgs {
    /// The network ACL id (acl-...).
    #[arg(long)]
    network_acl: String,
    /// The entry's number, 1 to 32766.
    #[arg(long, default_value_t = 1)]
    rule_number: u32,
    /// An outbound entry (default: inbound).
    #[arg(long)]
    egress: bool,
    /// tcp, udp, icmp, icmpv6, -1 (all traffic) or a number.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    protocol: String,
    /// allow or deny.
    #[arg(long, default_value = "allow")]
    action: String,
    /// First port (tcp/udp) or ICMP type.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    from_port: i32,
    /// Last port (tcp/udp; default: --from-port) or ICMP code.
    #[arg(long, allow_hyphen_values = true)]
    to_port: Option<i32>,
    /// The range: IPv4 (0.0.0.0/0) or IPv6 (::/0).
    #[arg(long, default_value = "0.0.0.0/0")]
    cidr: String,
}

impl From<NaclEntryArgs> for pb::RogueNaclEntry {
    fn from(a: NaclEntryArgs) -> Self {
        pb::RogueNaclEntry {
            to_port: a.to_port.unwrap_or(a.from_port),
            network_acl: a.network_acl,
            rule_number: a.rule_number,
            egress: a.egress,
            protocol: a.protocol,
            action: a.action,
            from_port: a.from_port,
            cidr: a.cidr,
        }
    }
}

pub async fn run(args: DevArgs) -> Outcome {
    match args.command {
        Some(DevCommand::Rogue {
            action,
            region,
            conn,
        }) => rogue(action, region, conn).await,
        None => {
            let tick = parse_tick(&args.tick)?;
            let data_dir = args.data_dir.unwrap_or_else(config::default_dev_dir);
            let intake = match &args.intake_queue {
                Some(url) => Some(canon_node::sqs::IntakeQueue {
                    only: args.no_client_port,
                    ..intake_queue(url, &data_dir).await?
                }),
                None => None,
            };
            serve(DevOptions {
                nodes: args.nodes,
                data_dir: data_dir.clone(),
                tick,
                cloud: match args.cloud {
                    CloudArg::Sim => DevCloud::Sim,
                    CloudArg::Aws => DevCloud::Aws,
                },
                shards: args.shards,
                signed_reads: !args.allow_unsigned_reads,
                tls: !args.insecure,
                // A plain page on 127.0.0.1 that any browser opens as is.
                console_tls: false,
                intake,
                events: match &args.events_queue {
                    Some(url) => Some(
                        canon_node::cloud_events::EventsQueue::from_env(url, Vec::new())
                            .await
                            .map_err(|e| Failure::new(2, e))?,
                    ),
                    None => None,
                },
                sim_events: args.sim_events,
                overflow: match &args.overflow_bucket {
                    Some(b) => Some(canon_node::overflow::OverflowBucket::from_env(b).await),
                    None => None,
                },
                retention: Default::default(),
                // `canon dev` keeps its simulated cloud between runs.
                save_cloud: true,
                // Quick failover on loopback (DevOptions::new's timings).
                ..DevOptions::new(data_dir)
            })
            .await
        }
    }
}

/// The SQS intake queue at `url`, its replies signed with the dev
/// cluster's reply key.
async fn intake_queue(
    url: &str,
    data_dir: &std::path::Path,
) -> Result<canon_node::sqs::IntakeQueue, Failure> {
    let key = canon_node::dev::reply_key(data_dir).map_err(|e| Failure::new(1, e.to_string()))?;
    canon_node::sqs::IntakeQueue::from_env(url, key)
        .await
        .map_err(|e| Failure::new(2, e))
}

/// Colour only on a terminal, and never with `NO_COLOR` set.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn parse_tick(s: &str) -> Result<std::time::Duration, Failure> {
    canon_node::config::parse_duration(s).map_err(|e| Failure::new(2, e.to_string()))
}

async fn serve(opts: DevOptions) -> Outcome {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,openraft=error,canon_scheduler=info,canon_node=info",
        )
    });
    // A second subscriber (in tests) is not an error worth stopping for.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .finish()
        .with(canon_node::logs::without_peer_call_errors())
        .try_init();
    let started = std::time::Instant::now();
    let cluster = DevCluster::start(opts.clone())
        .await
        .map_err(|e| Failure::new(1, format!("cannot start the dev cluster: {e}")))?;
    let client_toml = opts.data_dir.join("client.toml");
    if let Err(e) = client_config(&cluster).write(&client_toml) {
        cluster.shutdown().await;
        return Err(Failure::new(1, e));
    }
    say!(
        "[ OK ] Canon dev cluster ready in {:.1}s: {} nodes, {} cloud, tick {:?}, {}",
        started.elapsed().as_secs_f64(),
        cluster.endpoints.len(),
        if cluster.sim.is_some() {
            "simulated"
        } else {
            "AWS"
        },
        opts.tick,
        if cluster.tls.is_some() {
            "mutual TLS"
        } else {
            "plaintext (--insecure)"
        }
    );
    for e in &cluster.endpoints {
        say!("       node {e}");
    }
    if let Some(url) = &cluster.console {
        say!("       console {url}/ (sign in: canon console --open)");
    }
    say!("       data dir {}", opts.data_dir.display());
    say!("       client config {}", client_toml.display());
    say!("\n[ HELP ] In another terminal: canon run examples/VPC-sam.lw -a dev-sam; canon status");
    say!("[ HELP ] Ctrl-C stops the cluster; starting it again with the same data dir keeps every process (and the simulated cloud's resources).");
    canon_node::stop_signal::wait_for_stop().await;
    say!("\nStopping...");
    cluster.shutdown().await;
    Ok(())
}

/// What the CLI needs to reach `cluster` as its admin.
pub fn client_config(cluster: &DevCluster) -> config::ClientConfig {
    config::ClientConfig {
        endpoints: cluster.endpoints.clone(),
        user: Some(cluster.user.clone()),
        key: Some(cluster.admin_key.clone()),
        tls: cluster.tls.as_ref().map(|t| config::TlsPaths {
            ca: Some(t.peer_ca.clone()),
            cert: Some(t.client_cert.clone()),
            key: Some(t.client_key.clone()),
            // The directory of the client CA's certificate and key.
            client_ca: t.client_ca.parent().map(Path::to_path_buf),
        }),
        cluster_id: Some(cluster.cluster_id.clone()),
        // Commands stay on gRPC unless the nodes serve no client port;
        // `transport = "sqs"` and a reply_queue of the user's send them
        // through the intake queue.
        transport: cluster.sqs_only.then(|| "sqs".to_string()),
        intake_queue: cluster.intake_queue.clone(),
        reply_queue: None,
        reply_key: cluster.reply_key.clone(),
        reply_timeout: None,
        overflow_bucket: None,
        console: cluster.console.clone(),
    }
}

async fn rogue(action: RogueAction, region: String, conn: Conn) -> Outcome {
    let client = common::connect(&conn)?;
    let action = rogue_action(action)?;
    let r = client
        .rogue(pb::RogueRequest {
            account: String::new(),
            region,
            action: Some(action),
        })
        .await?;
    if conn.json {
        common::print_json(&serde_json::json!({"message": r.message}));
    } else {
        say!("[ rogue ] {}", r.message);
    }
    Ok(())
}

/// What `canon dev rogue ACTION` asks the cluster to do.
fn rogue_action(action: RogueAction) -> Result<pb::rogue_request::Action, Failure> {
    use pb::rogue_request::Action as A;
    Ok(match action {
        RogueAction::AuthorizeIngress(rule) => A::AuthorizeIngress(rule.into_rule(false)),
        RogueAction::AuthorizeEgress(rule) => A::AuthorizeIngress(rule.into_rule(true)),
        RogueAction::DeleteSubnet { subnet } => A::DeleteSubnet(subnet),
        RogueAction::AddNaclEntry(entry) => A::AddNaclEntry(entry.into()),
        RogueAction::DisassociateRouteTable { subnet } => A::DisassociateRouteTable(subnet),
        RogueAction::DeleteRoute {
            route_table,
            destination,
        } => A::Ec2(ec2_call(
            "delete_route",
            &[("route_table", route_table), ("destination", destination)],
        )),
        RogueAction::ReplaceRoute {
            route_table,
            destination,
            target,
        } => A::Ec2(ec2_call(
            "replace_route",
            &[
                ("route_table", route_table),
                ("destination", destination),
                ("hop", hop_of(&target)),
                ("gateway", target),
            ],
        )),
        RogueAction::ReleaseAddress { allocation } => {
            A::Ec2(ec2_call("release_address", &[("allocation", allocation)]))
        }
        RogueAction::DetachVolume { volume, instance } => A::Ec2(ec2_call(
            "detach_volume",
            &[("volume", volume), ("instance", instance)],
        )),
        RogueAction::Ec2 { action, params } => A::Ec2(ec2_params(&action, &params)?),
    })
}

/// The model's name for the hop a route target's id names (its serde
/// name, as the action's JSON takes it).
fn hop_of(target: &str) -> String {
    match serde_json::to_value(canon_model::Hop::of_id(target)) {
        Ok(serde_json::Value::String(name)) => name,
        // A unit variant always serialises to its name.
        _ => "internet_gateway".into(),
    }
}

/// The JSON of model action `action` with string parameters `params`.
fn ec2_call(action: &str, params: &[(&str, String)]) -> String {
    let mut call = serde_json::Map::new();
    call.insert("action".into(), action.into());
    for (k, v) in params {
        call.insert((*k).into(), v.clone().into());
    }
    serde_json::Value::Object(call).to_string()
}

/// The JSON of `canon dev rogue ec2 ACTION --param K=V…`: the action's
/// name in the model's snake case, each value JSON if it reads as JSON.
fn ec2_params(action: &str, params: &[String]) -> Result<String, Failure> {
    let mut call = serde_json::Map::new();
    call.insert("action".into(), snake_case(action).into());
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            return Err(Failure::new(
                2,
                format!("--param {p:?}: write KEY=VALUE, for example --param route_table=rtb-1"),
            ));
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| v.into());
        call.insert(k.trim().to_string(), value);
    }
    Ok(serde_json::Value::Object(call).to_string())
}

/// `DeleteRoute`, `delete-route` and `delete_route` as `delete_route`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        match c {
            '-' | '_' | ' ' => out.push('_'),
            c if c.is_ascii_uppercase() => {
                if i > 0 && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ec2_call_is_named_as_the_model_names_it() {
        for name in ["DeleteRoute", "delete-route", "delete_route"] {
            assert_eq!(snake_case(name), "delete_route");
        }
        let json = ec2_params(
            "DeleteTags",
            &["resource=vpc-1".into(), r#"keys=["Name"]"#.into()],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action": "delete_tags", "resource": "vpc-1", "keys": ["Name"]})
        );
        let action: canon_model::Action = serde_json::from_str(&json).unwrap();
        assert_eq!(action.request_type(), "aws.ec2.delete_tags");
        assert!(ec2_params("DeleteTags", &["resource".into()]).is_err());
    }
}
