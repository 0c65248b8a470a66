//! The client API (`canon.api.v1.Canon`): any node accepts any request.
//! Commands are checked at the door ([`crate::envelope`]), then proposed to
//! the shard that owns the alias (the Raft node forwards to its leader) and
//! answered after commit. Dry runs are planned here, against a fresh
//! observation of the cloud, and change nothing.
//!
//! This module holds the service and its wiring; each part lives with the
//! callers it serves:
//! - `intake`: the door of every command, Submit's, RemoveMember's,
//!   CreateJoinToken's and the SQS intake queue's (envelope, decoding,
//!   field checks, dispatch);
//! - `lifecycle`: run, update, kill, suspend and resume proposals;
//!   `rotation`: `canon fleet rotate` (a rotation request, or its dry run);
//! - `job_ids`: the job a command started and its derived command ids;
//! - `dry_run`: what a command would do, planned and not proposed;
//! - `reads` and `read_auth`: Status and History, and the read token;
//!   `status_pages`: Status a page at a time, in alias order;
//!   `queue_reads`: reads that arrive as SQS messages;
//! - `cluster_admin`: RemoveMember, ClusterStatus and Join;
//! - `console_door`: the web console's login token and its reads;
//! - `authz`: the policy the door checks keys and process commands
//!   against, and the root-key flag; `policy_admin`: changes to the
//!   policy (meta group); `policy_reads`: GetPolicy, ListAccounts, CanI;
//! - `audit_reads`: the Audit read (chain heads and records);
//!   `refusals`: refusals at the door recorded in the audit chain
//!   (rate-limited);
//! - `validations`: the organisation's validation modules stored and
//!   dropped, run and update refused when they fail one, and the
//!   Validations read (list and report);
//! - `shard`, `observe`, `grpc_status`: the shard look-ups and proposals,
//!   the cloud observations and the error codes those parts share.

mod account_use;
mod audit_reads;
mod authz;
mod cluster_admin;
pub mod console_door;
mod dry_run;
mod grpc_status;
mod import;
pub mod intake;
mod job_ids;
mod lifecycle;
mod observe;
mod policy_admin;
mod policy_reads;
mod properties;
mod queue_reads;
mod read_auth;
mod reads;
mod refusals;
mod release;
mod rotation;
mod shard;
mod status_pages;
mod validations;

use std::sync::Arc;

use canon_cloud::Cloud;
use canon_proto::canon::api::v1 as pb;
use canon_raft::RaftNode;
use canon_scheduler::{Decoder, SharedClock, SystemClock};
use tonic::{Request, Response, Status};

use crate::cluster::PeerDialer;
use crate::envelope::EnvelopeVerifier;
use crate::metrics::ApiMetrics;

use grpc_status::node_status;
use intake::{valid_alias, Arrival};

/// Everything the API needs from its node.
#[derive(Clone)]
pub struct Api {
    pub node: RaftNode,
    pub cloud: Arc<dyn Cloud>,
    pub verifier: Arc<EnvelopeVerifier>,
    pub decoder: Decoder,
    /// The account of processes whose command names none.
    pub account: String,
    pub metrics: Arc<ApiMetrics>,
    /// Reaches other nodes' client API (cluster status asks every member).
    pub peers: PeerDialer,
    /// Replicas per shard when a node joins.
    pub replicas: usize,
    /// The cluster node certificates must name when the node serves TLS:
    /// then a Join is taken only from the joining node's own certificate
    /// ([`crate::peer_gate::check_join`]).
    pub tls_cluster: Option<String>,
    /// Without TLS: admit joins that carry no join token (`--open-join`).
    pub open_join: bool,
    /// Refuse reads (Status, History, Events) without a valid read token;
    /// when false, unsigned reads pass and signed ones are still checked.
    pub signed_reads: bool,
    /// The time the API writes into the log (each proposal's time, hence
    /// the ids of the jobs commands start): the scheduler's clock, so that
    /// both write one timeline. Simulations give it their simulated clock;
    /// a wall clock there would make a run depend on how fast the machine
    /// runs it. Envelopes are still checked against the wall clock, which
    /// is the signer's.
    pub clock: SharedClock,
    /// How many refusals at the door this node records (see `refusals`).
    pub refusals: Arc<refusals::RefusalGate>,
    /// The node's numbered events, which Events subscriptions follow and
    /// resume from (started by the first one, or by the server).
    pub journal: Arc<crate::events::EventJournal>,
    /// Where compositions too large for a message are read from, and
    /// replies too large for one stored (`--overflow-bucket`), if
    /// anywhere.
    pub overflow: Option<crate::overflow::OverflowBucket>,
}

impl Api {
    /// The API of `node`, reaching peers over TCP; change [`Api::peers`]
    /// to reach them otherwise (a simulated network).
    pub fn new(
        node: RaftNode,
        cloud: Arc<dyn Cloud>,
        verifier: Arc<EnvelopeVerifier>,
        account: String,
        metrics: Arc<ApiMetrics>,
    ) -> Api {
        Api {
            node,
            cloud,
            verifier,
            decoder: crate::composition::decoder(),
            account,
            metrics,
            peers: crate::cluster::tcp_dialer(),
            replicas: canon_raft::placement::DEFAULT_REPLICAS,
            tls_cluster: None,
            open_join: false,
            signed_reads: false,
            clock: Arc::new(SystemClock),
            refusals: Arc::default(),
            journal: Arc::default(),
            overflow: None,
        }
    }

    /// The tonic service.
    pub fn into_server(self) -> pb::canon_server::CanonServer<Api> {
        pb::canon_server::CanonServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::canon_server::Canon for Api {
    async fn submit(
        &self,
        request: Request<pb::SignedEnvelope>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let arrival = Arrival::grpc(&request);
        let (cmd, principal, hash) = self.open_envelope(request.get_ref(), &arrival).await?;
        Ok(Response::new(
            self.handle_command(cmd, &principal, &hash, &arrival)
                .await?,
        ))
    }

    async fn remove_member(
        &self,
        request: Request<pb::SignedEnvelope>,
    ) -> Result<Response<pb::RemoveMemberReply>, Status> {
        let arrival = Arrival::grpc(&request);
        let (cmd, principal, request_hash) =
            self.open_envelope(request.get_ref(), &arrival).await?;
        let by = authz::Asker {
            principal: &principal,
            request_hash: &request_hash,
            arrival: &arrival,
        };
        Ok(Response::new(self.remove_member_command(cmd, by).await?))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let reader = self
            .check_read(&request, "Status", &request.get_ref().alias)
            .await?;
        Ok(Response::new(
            self.handle_status(reader.as_ref(), request.into_inner())
                .await?,
        ))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryReply>, Status> {
        let reader = self
            .check_read(&request, "History", &request.get_ref().alias)
            .await?;
        Ok(Response::new(
            self.handle_history(reader.as_ref(), request.into_inner())
                .await?,
        ))
    }

    type EventsStream = tokio_stream::wrappers::ReceiverStream<Result<pb::Event, Status>>;

    async fn events(
        &self,
        request: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        self.metrics.call("events");
        let reader = self
            .check_read(&request, "Events", &request.get_ref().alias)
            .await?;
        let pb::EventsRequest { alias, after } = request.into_inner();
        if !alias.is_empty() {
            valid_alias(&alias)?;
        }
        let after = match after.as_str() {
            "" => None,
            text => Some(crate::events::Cursor::parse(text).map_err(Status::invalid_argument)?),
        };
        let viewer = match reader {
            Some(by) if !by.principal.root => crate::events::Viewer::User(by.principal),
            _ => crate::events::Viewer::Anyone,
        };
        // Subscribed before the answer: a change made after it is an event.
        let sub = crate::events::Subscription::open(
            self.node.clone(),
            &self.journal,
            alias,
            viewer,
            after,
        )
        .await
        .map_err(node_status)?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::events::BUFFER);
        tokio::spawn(sub.run(tx));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn cluster_status(
        &self,
        request: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusReply>, Status> {
        let reply = self.handle_cluster_status(request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinReply>, Status> {
        self.admit_join(canon_tls::ConnInfo::of(&request), request.get_ref())
            .await?;
        Ok(Response::new(self.handle_join(request.into_inner()).await?))
    }

    async fn create_join_token(
        &self,
        request: Request<pb::SignedEnvelope>,
    ) -> Result<Response<pb::JoinTokenReply>, Status> {
        let arrival = Arrival::grpc(&request);
        let (cmd, principal, request_hash) =
            self.open_envelope(request.get_ref(), &arrival).await?;
        let by = authz::Asker {
            principal: &principal,
            request_hash: &request_hash,
            arrival: &arrival,
        };
        Ok(Response::new(self.join_token_command(cmd, by).await?))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyReply>, Status> {
        self.metrics.call("get_policy");
        let by = self.signed_reader(&request, "GetPolicy").await?;
        Ok(Response::new(self.handle_get_policy(&by).await?))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsReply>, Status> {
        self.metrics.call("list_accounts");
        let by = self.signed_reader(&request, "ListAccounts").await?;
        Ok(Response::new(self.handle_list_accounts(&by).await?))
    }

    async fn audit(
        &self,
        request: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditReply>, Status> {
        self.metrics.call("audit");
        let by = self.signed_reader(&request, "Audit").await?;
        Ok(Response::new(
            self.handle_audit(&by, request.into_inner()).await?,
        ))
    }

    async fn can_i(
        &self,
        request: Request<pb::CanIRequest>,
    ) -> Result<Response<pb::CanIReply>, Status> {
        self.metrics.call("can_i");
        let by = self.signed_reader(&request, "CanI").await?;
        Ok(Response::new(
            self.handle_can_i(&by, request.into_inner()).await?,
        ))
    }

    async fn validations(
        &self,
        request: Request<pb::ValidationsRequest>,
    ) -> Result<Response<pb::ValidationsReply>, Status> {
        self.metrics.call("validations");
        let by = self.signed_reader(&request, "Validations").await?;
        Ok(Response::new(
            self.handle_validations(&by, request.into_inner()).await?,
        ))
    }
}
