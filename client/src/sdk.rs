//! The client: typed calls for every RPC, sent to one endpoint and failed
//! over to the next when a node is unreachable. Commands are retried only
//! with the same command id (each attempt in a fresh envelope), so a retry
//! after a lost answer applies once. With an SQS transport
//! ([`crate::sqs`]) commands go through the cluster's intake queue
//! instead, and their answers come back on the user's reply queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use canon_model::Backoff;
use canon_tls::explain::Offered;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::pb;
use crate::pb::canon_client::CanonClient;
use crate::pb::dev_admin_client::DevAdminClient;
use crate::sign::Signer;
use crate::sqs::{FromReply, SqsError, SqsTransport};
use canon_proto::canon::sqs::v1::sqs_reply::Reply;

/// How many passes over all endpoints a call makes before giving up.
const ROUNDS: u32 = 3;
/// Pause between passes, the same each time (leader elections take about
/// a second).
const ROUND_PAUSE: Backoff = Backoff::fixed(Duration::from_millis(700));
/// Bound on one call (a command returns after commit; dry runs observe
/// the cloud).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows a page when [`Client::status`] reads every process: the most a
/// node answers in one page.
pub const STATUS_PAGE_ROWS: u32 = 1000;

/// What went wrong, classified for the CLI's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no cluster node reachable at {endpoints}: {last}")]
    Unreachable { endpoints: String, last: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("refused: {0}")]
    Unauthenticated(String),
    /// The policy refused it; the message names user, action, target and
    /// the missing permission.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Config(String),
    /// A command sent over SQS got no reply in time (it may still be
    /// carried out).
    #[error("{0}")]
    NoReply(String),
}

impl From<SqsError> for ClientError {
    fn from(e: SqsError) -> Self {
        match e {
            SqsError::Config(m) => ClientError::Config(m),
            SqsError::Unreachable { queue, reason } => ClientError::Unreachable {
                endpoints: queue,
                last: reason,
            },
            SqsError::TooLarge(m) => ClientError::Invalid(m),
            SqsError::Storage { uri, reason } => ClientError::Unreachable {
                endpoints: uri,
                last: reason,
            },
            SqsError::NoReply(m) => ClientError::NoReply(m),
        }
    }
}

/// The outcome an SQS reply carries: the answer, or the error the same
/// refusal is over gRPC.
fn outcome(reply: canon_proto::canon::sqs::v1::SqsReply) -> Result<Reply, ClientError> {
    if reply.code != 0 {
        let status = Status::new(Code::from(reply.code), reply.error);
        return Err(ClientError::from_status(status));
    }
    reply
        .reply
        .ok_or_else(|| ClientError::Rejected("the cluster's reply carries no answer".into()))
}

impl ClientError {
    fn from_status(s: Status) -> Self {
        let msg = s.message().to_string();
        match s.code() {
            Code::NotFound => ClientError::NotFound(msg),
            Code::AlreadyExists => ClientError::AlreadyExists(msg),
            Code::Unauthenticated => ClientError::Unauthenticated(msg),
            Code::PermissionDenied => ClientError::Forbidden(msg),
            Code::InvalidArgument => ClientError::Invalid(msg),
            _ => ClientError::Rejected(msg),
        }
    }
}

/// A lazily connected channel to `endpoint` (`host:port` gets `https://`
/// with TLS settings, `http://` without).
fn channel(endpoint: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, ClientError> {
    let url = match (endpoint.contains("://"), tls.is_some()) {
        (true, _) => endpoint.to_string(),
        (false, true) => format!("https://{endpoint}"),
        (false, false) => format!("http://{endpoint}"),
    };
    let mut ep = Endpoint::from_shared(url.clone())
        .map_err(|err| ClientError::Config(format!("bad endpoint {endpoint:?}: {err}")))?
        .connect_timeout(Duration::from_millis(500))
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let tls = tls.ok_or_else(|| {
            ClientError::Config(format!(
                "{endpoint} is an https:// endpoint, but no TLS settings are given: set ca, cert \
                 and key in client.toml's [tls] table"
            ))
        })?;
        ep = ep
            .tls_config(tls.clone())
            .map_err(|e| ClientError::Config(format!("TLS settings for {endpoint}: {e}")))?;
    }
    Ok(ep.connect_lazy())
}

/// True for failures another node (or a later try) may not have: the node
/// is down, starting, or has no leader yet.
fn retryable(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// How a process is run or updated, beyond its composition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// Time between the process's enforcement ticks (1 s to 24 h); `None`:
    /// the node's default on run, unchanged on update.
    pub tick_interval: Option<Duration>,
    /// Plan only: report the requests, change nothing.
    pub dry_run: bool,
    /// The account (of the cluster's policy) to run in; `None`: the
    /// cluster's default. Ignored on update (a process keeps its account).
    pub account: Option<String>,
    /// Run only: adopt existing resources that match the declaration
    /// (`canon run --import`).
    pub import: bool,
}

impl ProcessOptions {
    /// No options but (maybe) a dry run.
    pub fn dry_run(dry_run: bool) -> Self {
        ProcessOptions {
            dry_run,
            ..ProcessOptions::default()
        }
    }

    /// The interval as the API carries it (0: none); sub-millisecond
    /// precision and intervals under a millisecond are refused here rather
    /// than silently rounded.
    fn tick_interval_ms(&self) -> Result<u64, ClientError> {
        match self.tick_interval {
            None => Ok(0),
            Some(d) if d.as_millis() == 0 => Err(ClientError::Invalid(format!(
                "tick interval {d:?} is too short: use at least 1s"
            ))),
            Some(d) => u64::try_from(d.as_millis())
                .map_err(|_| ClientError::Invalid(format!("tick interval {d:?} is too long"))),
        }
    }
}

/// A connection to a cluster.
pub struct Client {
    endpoints: Vec<String>,
    channels: Vec<Channel>,
    current: AtomicUsize,
    signer: Option<Signer>,
    /// What the channels offer nodes (failures are explained accordingly).
    offered: Offered,
    /// The cluster id signatures name: configured, or asked of the
    /// cluster once.
    audience: tokio::sync::OnceCell<String>,
    /// How long one node gets to answer before the call moves on to the
    /// next (`None`: the channel's own bound, [`CALL_TIMEOUT`]).
    attempt_timeout: Option<Duration>,
    /// Commands go over SQS instead of gRPC.
    sqs: Option<SqsTransport>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the cluster at `endpoints` (`http://host:port`).
    /// Connections are made lazily; an unreachable node is skipped. Call it
    /// inside a Tokio runtime (its connections run there).
    pub fn connect(endpoints: &[String]) -> Result<Client, ClientError> {
        Client::connect_with(endpoints, None)
    }

    /// [`Client::connect`] with mutual TLS when `tls` is given: endpoints
    /// without a scheme are reached over `https://`, and every `https://`
    /// endpoint trusts `tls.ca` and presents `tls.cert`. An `https://`
    /// endpoint without TLS settings is refused (there is no CA to trust).
    pub fn connect_with(
        endpoints: &[String],
        tls: Option<&canon_tls::ClientTls>,
    ) -> Result<Client, ClientError> {
        canon_tls::install_crypto_provider();
        let tls_config = tls
            .map(|t| t.config())
            .transpose()
            .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::Config(
                "Client::connect must be called inside a Tokio runtime".into(),
            ));
        }
        if endpoints.is_empty() {
            return Err(ClientError::Config("no endpoints".into()));
        }
        let mut channels = Vec::new();
        for e in endpoints {
            channels.push(channel(e, tls_config.as_ref())?);
        }
        let mut client = Client::from_channels(endpoints.to_vec(), channels)?;
        client.offered = match tls {
            None => Offered::Plaintext,
            Some(t) if t.cert.is_some() => Offered::TlsWithCertificate,
            Some(_) => Offered::TlsWithoutCertificate,
        };
        Ok(client)
    }

    /// A client over channels the caller built (a custom connector, e.g.
    /// a simulated network); `names[i]` names `channels[i]` in errors.
    /// The channels should bound each call themselves.
    pub fn from_channels(
        names: Vec<String>,
        channels: Vec<Channel>,
    ) -> Result<Client, ClientError> {
        if channels.is_empty() || names.len() != channels.len() {
            return Err(ClientError::Config(format!(
                "{} endpoint names for {} channels",
                names.len(),
                channels.len()
            )));
        }
        Ok(Client {
            endpoints: names,
            channels,
            current: AtomicUsize::new(0),
            signer: None,
            offered: Offered::Plaintext,
            audience: tokio::sync::OnceCell::new(),
            attempt_timeout: None,
            sqs: None,
        })
    }

    /// A client that sends commands over SQS only, to a cluster that
    /// serves no client port: it must be told the cluster's id
    /// ([`Client::with_audience`]), and has no reads yet.
    pub fn over_sqs(transport: SqsTransport) -> Client {
        Client {
            endpoints: Vec::new(),
            channels: Vec::new(),
            current: AtomicUsize::new(0),
            signer: None,
            offered: Offered::Plaintext,
            audience: tokio::sync::OnceCell::new(),
            attempt_timeout: None,
            sqs: Some(transport),
        }
    }

    /// Sends commands over SQS (`transport`) instead of gRPC; reads still
    /// go to the endpoints.
    pub fn with_sqs(mut self, transport: SqsTransport) -> Self {
        self.sqs = Some(transport);
        self
    }

    /// Signs commands and reads as this user.
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Gives each node `d` to answer before moving on to the next one (a
    /// node that is paused or cut off from its peers may hold a call
    /// without failing it). A command keeps its id across nodes, so it
    /// applies once wherever it lands. Without it a node has up to the
    /// channel's bound (30 s).
    pub fn with_attempt_timeout(self, d: Duration) -> Self {
        Client {
            attempt_timeout: Some(d),
            ..self
        }
    }

    /// The user this client signs as, if any.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// Signs for cluster `cluster_id` (the audience every signature names)
    /// instead of asking the cluster for its id.
    pub fn with_audience(self, cluster_id: impl Into<String>) -> Self {
        let audience = tokio::sync::OnceCell::new_with(Some(cluster_id.into()));
        Client { audience, ..self }
    }

    /// The cluster id to sign for: the configured one, else the one the
    /// cluster states (asked once; over TLS the answer is the node's own).
    pub async fn audience(&self) -> Result<&str, ClientError> {
        let ask = || async {
            let reply = self
                .call(|ch| async move {
                    CanonClient::new(ch)
                        .cluster_status(pb::ClusterStatusRequest { local: true })
                        .await
                        .map(tonic::Response::into_inner)
                })
                .await?;
            if reply.cluster_id.is_empty() {
                return Err(ClientError::Config(
                    "the cluster does not state its id (a node older than this client?): \
                     set cluster_id in client.toml"
                        .into(),
                ));
            }
            Ok(reply.cluster_id)
        };
        self.audience.get_or_try_init(ask).await.map(String::as_str)
    }

    /// The audience a read is signed for: none when the client has no key
    /// (the read goes unsigned and costs no extra call).
    async fn read_audience(&self) -> Result<Option<&str>, ClientError> {
        match self.signer {
            Some(_) => self.audience().await.map(Some),
            None => Ok(None),
        }
    }

    /// Calls `f` on the current endpoint, failing over to the next while
    /// the failure is one another node may not have.
    pub(crate) async fn call<T, F, Fut>(&self, mut f: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let n = self.channels.len();
        if n == 0 {
            return Err(ClientError::Config(
                "no endpoints: over SQS, set cluster_id in client.toml; events need endpoints"
                    .into(),
            ));
        }
        let mut last = String::new();
        for round in 0..ROUNDS {
            if let Some(retry) = round.checked_sub(1) {
                // Drawn before the await: the thread's generator is not Send.
                let pause = ROUND_PAUSE.delay(retry, &mut rand::rng());
                tokio::time::sleep(pause).await;
            }
            for _ in 0..n {
                let i = self.current.load(Ordering::Relaxed) % n;
                let endpoint = &self.endpoints[i];
                let attempt = f(self.channels[i].clone());
                let outcome = match self.attempt_timeout {
                    Some(d) => tokio::time::timeout(d, attempt).await.unwrap_or_else(|_| {
                        Err(Status::deadline_exceeded(format!("no answer within {d:?}")))
                    }),
                    None => attempt.await,
                };
                // Only a failure of the connection itself (a status the
                // node sent carries no source) can be a TLS failure.
                let tls = outcome
                    .as_ref()
                    .err()
                    .filter(|s| std::error::Error::source(s).is_some())
                    .and_then(|s| canon_tls::explain::client_error(endpoint, s, self.offered));
                match (outcome, tls) {
                    (Ok(v), _) => return Ok(v),
                    // Every node of the cluster would refuse it.
                    (Err(_), Some(x)) if x.refused => {
                        return Err(ClientError::Unauthenticated(x.message))
                    }
                    (Err(_), Some(x)) => {
                        last = x.message;
                        self.current.store((i + 1) % n, Ordering::Relaxed);
                    }
                    (Err(s), None) if retryable(&s) => {
                        last = format!("{endpoint}: {}", s.message());
                        self.current.store((i + 1) % n, Ordering::Relaxed);
                    }
                    (Err(s), None) => return Err(ClientError::from_status(s)),
                }
            }
        }
        Err(ClientError::Unreachable {
            endpoints: self.endpoints.join(", "),
            last,
        })
    }

    /// A read (`method`, e.g. `Status`) of `req`: over SQS when the
    /// client has an SQS transport (always signed), else [`grpc_read`].
    ///
    /// [`grpc_read`]: Client::grpc_read
    pub(crate) async fn signed_read<Req, Rep, F, Fut>(
        &self,
        method: &str,
        req: &Req,
        rpc: F,
    ) -> Result<Rep, ClientError>
    where
        Req: prost::Message + Clone,
        Rep: FromReply,
        F: Fn(CanonClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Rep>, Status>>,
    {
        let Some(transport) = &self.sqs else {
            return self.grpc_read(method, req, rpc).await;
        };
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| ClientError::Config("reads over SQS are signed: no key".into()))?;
        let audience = self.audience().await?;
        let sign = |body| signer.sqs_read(audience, method, body);
        let reply = transport.read(audience, req.encode_to_vec(), sign).await?;
        Rep::from_reply(outcome(reply)?)
            .ok_or_else(|| ClientError::Rejected("the cluster answered another call".into()))
    }

    /// A read (`method`, e.g. `Status`) of `req` over gRPC, signed afresh
    /// for each attempt when the client has a key, failed over like every
    /// call: `rpc` makes the call on a node's API client.
    pub(crate) async fn grpc_read<Req, Rep, F, Fut>(
        &self,
        method: &str,
        req: &Req,
        rpc: F,
    ) -> Result<Rep, ClientError>
    where
        Req: prost::Message + Clone,
        F: Fn(CanonClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Rep>, Status>>,
    {
        let audience = self.read_audience().await?;
        self.call(|ch| {
            let call = rpc(
                CanonClient::new(ch),
                self.read_request(audience, method, req),
            );
            async move { call.await.map(tonic::Response::into_inner) }
        })
        .await
    }

    /// The web console's login link at `base` (`http://host:port`): a read
    /// token for the method `Console`, signed now with this client's key.
    /// A node takes it within its freshness window (5 minutes) and opens a
    /// session for the signer.
    pub async fn console_login_url(&self, base: &str) -> Result<String, ClientError> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            ClientError::Config("a console link is signed: client.toml needs a `key`".into())
        })?;
        let audience = self.audience().await?.to_string();
        let token = signer.read_token(&audience, "Console", &[]);
        let names = ["user", "key_id", "audience", "timestamp", "signature"];
        let query: Vec<String> = names
            .iter()
            .zip(token.iter())
            .map(|(name, (_, value))| format!("{name}={}", url_escape(value)))
            .collect();
        Ok(format!(
            "{}/login?{}",
            base.trim_end_matches('/'),
            query.join("&")
        ))
    }

    /// `req` with a fresh read token for `audience` when the client has a
    /// key (nodes requiring signed reads refuse reads without one).
    fn read_request<T: prost::Message + Clone>(
        &self,
        audience: Option<&str>,
        method: &str,
        req: &T,
    ) -> tonic::Request<T> {
        let mut r = tonic::Request::new(req.clone());
        if let (Some(signer), Some(audience)) = (&self.signer, audience) {
            for (key, value) in signer.read_token(audience, method, &req.encode_to_vec()) {
                // Hex digits, decimal digits and a user name that the
                // config gave: a value that is not valid metadata is sent
                // unsigned, and a node that requires signing says so.
                if let Ok(v) = value.parse() {
                    r.metadata_mut().insert(key, v);
                }
            }
        }
        r
    }

    /// The signer and a command with a fresh id around `action`.
    fn command(
        &self,
        action: pb::command::Action,
        dry_run: bool,
    ) -> Result<(&Signer, pb::Command), ClientError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| ClientError::Config("no key to sign commands with".into()))?;
        let command = pb::Command {
            command_id: uuid::Uuid::new_v4().to_string(),
            dry_run,
            reply_queue: String::new(),
            action: Some(action),
        };
        Ok((signer, command))
    }

    /// Sends `command` over the SQS transport, if the client has one, and
    /// takes its answer from the reply.
    async fn over_sqs_transport<T: FromReply>(
        &self,
        signer: &Signer,
        command: &pb::Command,
    ) -> Option<Result<T, ClientError>> {
        let transport = self.sqs.as_ref()?;
        let sent = async {
            let audience = self.audience().await?;
            let sign = |c: &pb::Command| signer.envelope(audience, c);
            let reply = transport.command(audience, command.clone(), sign).await?;
            T::from_reply(outcome(reply)?)
                .ok_or_else(|| ClientError::Rejected("the cluster answered another call".into()))
        };
        Some(sent.await)
    }

    /// Sends a command (signed afresh for each attempt; same command id).
    pub async fn submit(
        &self,
        action: pb::command::Action,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let rpc = |mut api: CanonClient<Channel>, env| async move { api.submit(env).await };
        self.signed_command(action, dry_run, rpc).await
    }

    /// Sends `action` with the call `rpc` makes (Submit, RemoveMember,
    /// CreateJoinToken), signed afresh for each attempt: a retry after a
    /// lost answer keeps the command id, so it finishes the same command.
    async fn signed_command<Rep, F, Fut>(
        &self,
        action: pb::command::Action,
        dry_run: bool,
        rpc: F,
    ) -> Result<Rep, ClientError>
    where
        Rep: FromReply,
        F: Fn(CanonClient<Channel>, pb::SignedEnvelope) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Rep>, Status>>,
    {
        let (signer, command) = self.command(action, dry_run)?;
        if let Some(answer) = self.over_sqs_transport(signer, &command).await {
            return answer;
        }
        let audience = self.audience().await?;
        self.call(|ch| {
            let call = rpc(CanonClient::new(ch), signer.envelope(audience, &command));
            async move { call.await.map(tonic::Response::into_inner) }
        })
        .await
    }

    /// Takes node `node` out of the cluster: its replicas move to the other
    /// members, then it leaves every group. Signed like every command (the
    /// node asked may be the one leaving: a retry finishes the same
    /// removal). A dry run answers with the placement the removal would
    /// make.
    pub async fn remove_member(
        &self,
        node: u64,
        dry_run: bool,
    ) -> Result<pb::RemoveMemberReply, ClientError> {
        let action = pb::command::Action::RemoveMember(pb::RemoveMember { node });
        let rpc = |mut api: CanonClient<Channel>, env| async move { api.remove_member(env).await };
        self.signed_command(action, dry_run, rpc).await
    }

    /// A one-time join token for a node joining a cluster without TLS
    /// (`canond --join-token`): living `ttl_ms` (0: the node's default),
    /// admitting node `node` only (0: any id). Needs `cluster.join`.
    pub async fn create_join_token(
        &self,
        ttl_ms: u64,
        node: u64,
    ) -> Result<pb::JoinTokenReply, ClientError> {
        let action = pb::command::Action::CreateJoinToken(pb::CreateJoinToken { ttl_ms, node });
        let rpc =
            |mut api: CanonClient<Channel>, env| async move { api.create_join_token(env).await };
        self.signed_command(action, false, rpc).await
    }

    /// Creates a process running `composition` under `alias`.
    pub async fn run(
        &self,
        alias: &str,
        composition: pb::CompiledComposition,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        self.run_with(alias, composition, &ProcessOptions::dry_run(dry_run))
            .await
    }

    /// [`Client::run`] with every option.
    pub async fn run_with(
        &self,
        alias: &str,
        composition: pb::CompiledComposition,
        opts: &ProcessOptions,
    ) -> Result<pb::CommandReply, ClientError> {
        let run = pb::Run {
            alias: alias.to_string(),
            fid: uuid::Uuid::new_v4().to_string(),
            account: opts.account.clone().unwrap_or_default(),
            composition: Some(composition),
            tick_interval_ms: opts.tick_interval_ms()?,
            import: opts.import,
            composition_ref: None,
        };
        self.submit(pb::command::Action::Run(run), opts.dry_run)
            .await
    }

    /// Gives process `alias` a new composition.
    pub async fn update(
        &self,
        alias: &str,
        composition: pb::CompiledComposition,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        self.update_with(alias, composition, &ProcessOptions::dry_run(dry_run))
            .await
    }

    /// [`Client::update`] with every option (a tick interval given here
    /// replaces the process's; none keeps it).
    pub async fn update_with(
        &self,
        alias: &str,
        composition: pb::CompiledComposition,
        opts: &ProcessOptions,
    ) -> Result<pb::CommandReply, ClientError> {
        let u = pb::Update {
            alias: alias.to_string(),
            composition: Some(composition),
            tick_interval_ms: opts.tick_interval_ms()?,
            composition_ref: None,
        };
        self.submit(pb::command::Action::Update(u), opts.dry_run)
            .await
    }

    /// Deletes everything process `alias` owns.
    pub async fn kill(&self, alias: &str, dry_run: bool) -> Result<pb::CommandReply, ClientError> {
        let k = pb::Kill {
            alias: alias.to_string(),
        };
        self.submit(pb::command::Action::Kill(k), dry_run).await
    }

    /// Pauses enforcement of `alias`.
    pub async fn suspend(
        &self,
        alias: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let s = pb::Suspend {
            alias: alias.to_string(),
        };
        self.submit(pb::command::Action::Suspend(s), dry_run).await
    }

    /// Resumes enforcement of `alias`.
    pub async fn resume(
        &self,
        alias: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let r = pb::Resume {
            alias: alias.to_string(),
        };
        self.submit(pb::command::Action::Resume(r), dry_run).await
    }

    /// Stops managing `alias` without deleting anything: its RELEASE job
    /// removes the ownership tag from everything it owns. A dry run lists
    /// what it would release (`plan_json`).
    pub async fn release(
        &self,
        alias: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let r = pb::Release {
            alias: alias.to_string(),
        };
        self.submit(pb::command::Action::Release(r), dry_run).await
    }

    /// Sets property `name` (`enforcement` or `lock`) of `alias` on or off.
    pub async fn set_property(
        &self,
        alias: &str,
        name: &str,
        on: bool,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let p = pb::SetProperty {
            alias: alias.to_string(),
            name: name.to_string(),
            on,
        };
        self.submit(pb::command::Action::SetProperty(p), dry_run)
            .await
    }

    /// Asks `alias` to replace, rolling, every instance launched before
    /// now of fleet `fleet` (empty: every fleet member; `all`: every
    /// instance). A dry run answers with what it would replace.
    pub async fn rotate_fleet(
        &self,
        alias: &str,
        fleet: &str,
        all: bool,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let r = pb::RotateFleet {
            alias: alias.to_string(),
            fleet: fleet.to_string(),
            all,
        };
        self.submit(pb::command::Action::RotateFleet(r), dry_run)
            .await
    }

    /// Every live process (`alias` empty), or one with its resources.
    /// Every process is read a page of [`STATUS_PAGE_ROWS`] at a time
    /// ([`Client::status_pages`]) and returned together: one reply of a
    /// large estate outgrows a gRPC message (16.5 MB at 100,000 processes,
    /// against the client's 4 MiB). The rows are those of successive
    /// pages in alias order, not of one instant.
    pub async fn status(&self, alias: &str, all: bool) -> Result<pb::StatusReply, ClientError> {
        if alias.is_empty() {
            let mut processes = Vec::new();
            let mut pages = std::pin::pin!(self.status_pages(all, STATUS_PAGE_ROWS));
            while let Some(page) = futures::StreamExt::next(&mut pages).await {
                processes.extend(page?);
            }
            return Ok(pb::StatusReply {
                processes,
                ..Default::default()
            });
        }
        let req = pb::StatusRequest {
            alias: alias.to_string(),
            all,
            ..Default::default()
        };
        self.signed_read("Status", &req, |mut api, req| async move {
            api.status(req).await
        })
        .await
    }

    /// One page of the process list: up to `page_size` processes (live
    /// ones, killed ones too with `all`) after `page_token` (empty: the
    /// first page), in alias order, with the token of the next page in
    /// `next_page_token` (empty on the last page). A node answers at most
    /// 1000 rows a page. A node from before paging answers every process
    /// at once, with no next page.
    pub async fn status_page(
        &self,
        all: bool,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::StatusReply, ClientError> {
        let req = pb::StatusRequest {
            all,
            page_size,
            page_token: page_token.to_string(),
            ..Default::default()
        };
        self.signed_read("Status", &req, |mut api, req| async move {
            api.status(req).await
        })
        .await
    }

    /// Every process, a page at a time ([`Client::status_page`]): each
    /// item is the next page's rows, asked for when the previous one has
    /// been taken. Ends after the last page, or with the first error.
    pub fn status_pages(
        &self,
        all: bool,
        page_size: u32,
    ) -> impl futures::Stream<Item = Result<Vec<pb::ProcessSummary>, ClientError>> + '_ {
        futures::stream::try_unfold(Some(String::new()), move |token| async move {
            let Some(token) = token else {
                return Ok(None);
            };
            let reply = self.status_page(all, page_size, &token).await?;
            let next = match reply.next_page_token {
                t if t.is_empty() => None,
                t if t == token => {
                    return Err(ClientError::Rejected(format!(
                        "the node answered page {token:?} with itself as the next page"
                    )))
                }
                t => Some(t),
            };
            Ok(Some((reply.processes, next)))
        })
    }

    /// The jobs and drift of `alias` (times in ms; 0 = unbounded).
    pub async fn history(
        &self,
        alias: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<pb::HistoryReply, ClientError> {
        let req = pb::HistoryRequest {
            alias: alias.to_string(),
            start_ms,
            end_ms,
        };
        self.signed_read("History", &req, |mut api, req| async move {
            api.history(req).await
        })
        .await
    }

    /// Members, groups and leaders as the answering node sees them.
    pub async fn cluster_status(&self) -> Result<pb::ClusterStatusReply, ClientError> {
        self.call(|ch| async move {
            CanonClient::new(ch)
                .cluster_status(pb::ClusterStatusRequest { local: false })
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }

    /// Each node's own view of the cluster (`cluster status --local`), one
    /// answer (or error) per endpoint, in their order: no failover, so a
    /// node cut off from its peers still says what it believes.
    pub async fn node_views(&self) -> Vec<Result<pb::ClusterStatusReply, ClientError>> {
        let bound = self.attempt_timeout.unwrap_or(CALL_TIMEOUT);
        let asks = self.channels.iter().map(|ch| {
            let mut api = CanonClient::new(ch.clone());
            async move {
                let call = api.cluster_status(pb::ClusterStatusRequest { local: true });
                match tokio::time::timeout(bound, call).await {
                    Ok(Ok(r)) => Ok(r.into_inner()),
                    Ok(Err(s)) => Err(ClientError::from_status(s)),
                    Err(_) => Err(ClientError::from_status(Status::deadline_exceeded(
                        format!("no answer within {bound:?}"),
                    ))),
                }
            }
        });
        futures::future::join_all(asks).await
    }

    /// Follows events (every process if `alias` is empty) from now on. The
    /// stream ends if its node goes away; call again to resume on another.
    pub async fn events(&self, alias: &str) -> Result<tonic::Streaming<pb::Event>, ClientError> {
        self.events_after(alias, "").await
    }

    /// [`Client::events`] resumed after `cursor` (an event's `cursor`; empty:
    /// from now): the node first sends the events after it that it still
    /// holds, or an `events.gap` event when it no longer holds them all.
    pub async fn events_after(
        &self,
        alias: &str,
        cursor: &str,
    ) -> Result<tonic::Streaming<pb::Event>, ClientError> {
        let req = pb::EventsRequest {
            alias: alias.to_string(),
            after: cursor.to_string(),
        };
        self.grpc_read("Events", &req, |mut api, req| async move {
            api.events(req).await
        })
        .await
    }

    /// Plays the rogue operator on a `canon dev` cluster's simulated cloud.
    pub async fn rogue(&self, req: pb::RogueRequest) -> Result<pb::RogueReply, ClientError> {
        self.call(|ch| {
            let req = req.clone();
            async move {
                DevAdminClient::new(ch)
                    .rogue(req)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
    }
}

/// `text` as a URL query value: unreserved characters kept, every other
/// byte percent-encoded.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_proto::canon::sqs::v1::SqsReply;

    #[test]
    fn a_refusal_over_sqs_reads_as_the_same_error_as_over_grpc() {
        let denied = SqsReply {
            code: Code::PermissionDenied as i32,
            error: "user bob may not process.run".into(),
            ..Default::default()
        };
        assert!(matches!(outcome(denied), Err(ClientError::Forbidden(_))));
        let gone = SqsReply {
            code: Code::NotFound as i32,
            ..Default::default()
        };
        assert!(matches!(outcome(gone), Err(ClientError::NotFound(_))));
        assert!(matches!(
            outcome(SqsReply::default()),
            Err(ClientError::Rejected(_))
        ));
    }
}
