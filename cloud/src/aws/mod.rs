//! `AwsCloud`: the real EC2 API through aws-sdk-ec2.
//!
//! Configured the way AWS users expect (the standard credential chain,
//! `AWS_*` variables, profiles, `AWS_ENDPOINT_URL` for an emulator such as
//! moto, and an optional role to assume per account). Every call goes through
//! one wrapper that takes a token from the node's shared rate limiter,
//! counts the call, retries transient failures with jittered backoff (the
//! SDK's own retries are off so that every attempt is counted and paced) and
//! classifies the error.

mod candidates;
mod convert;
mod ec2;
mod execute;
mod observe;
mod roles;

pub use roles::{AccountRoles, AssumeRole};

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{classify, BAD_RESPONSE, NO_ROLE, TRANSPORT};
use crate::{
    ApiCalls, ApiClass, BoxFuture, Cloud, CloudError, ErrorClass, ExecContext, Outcome,
    RateLimiter, RateLimits, RetryPolicy, Scope,
};

/// Attempts for a call that names a resource EC2 does not show yet.
const CONSISTENCY_ATTEMPTS: u32 = 3;

/// How to reach AWS and how hard to push it.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// A named profile from `~/.aws/config`; `None` uses `AWS_PROFILE` or the
    /// default chain.
    pub profile: Option<String>,
    /// An endpoint to use instead of EC2's (moto, LocalStack); `None` honours
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// The role to assume per account (`Scope.account`); accounts without
    /// one use the base credentials. Asked again for every new client, so
    /// a changed role takes effect without a restart.
    pub roles: Arc<dyn AccountRoles>,
    /// The node's rate limits (shared by every caller of this cloud).
    pub rate_limits: RateLimits,
    pub retry: RetryPolicy,
    /// How long observed VPC DNS attributes (which `DescribeVpcs` does not
    /// return and need one call per VPC each) are reused; zero reads them on
    /// every observation.
    pub vpc_attribute_ttl: Duration,
    /// The name the SDK's user agent carries (`app/NAME`; canond's is
    /// `canon-node-ID`), so that CloudTrail, or an emulator's recording,
    /// shows which node made each call. An invalid name is left out.
    pub app_name: Option<String>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            profile: None,
            endpoint_url: None,
            roles: Arc::new(BTreeMap::<String, AssumeRole>::new()),
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            vpc_attribute_ttl: Duration::from_secs(300),
            app_name: None,
        }
    }
}

/// Cached DNS attributes of one VPC: (support, hostnames, read at).
type VpcAttrs = (bool, bool, tokio::time::Instant);

/// The AWS adapter.
pub struct AwsCloud {
    base: SdkConfig,
    config: AwsConfig,
    /// One client per scope and role (a changed role makes a new one).
    clients: tokio::sync::Mutex<HashMap<(Scope, Option<AssumeRole>), Client>>,
    limiter: Arc<RateLimiter>,
    calls: ApiCalls,
    rng: Mutex<ChaCha8Rng>,
    vpc_attrs: Mutex<HashMap<(Scope, String), VpcAttrs>>,
    /// User data of instances already seen (immutable while they run).
    user_data: Mutex<HashMap<(Scope, String), Option<String>>>,
    /// Per scope, DHCP option sets known to be the account's default.
    default_dhcp: Mutex<HashMap<Scope, std::collections::BTreeSet<String>>>,
}

impl std::fmt::Debug for AwsCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCloud").finish_non_exhaustive()
    }
}

impl AwsCloud {
    /// Loads the standard AWS configuration (credential chain, profile,
    /// `AWS_*` variables, `AWS_ENDPOINT_URL`) with `config` on top.
    pub async fn new(config: AwsConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &config.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &config.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        if let Some(name) = &config.app_name {
            match aws_config::AppName::new(name.clone()) {
                Ok(app) => loader = loader.app_name(app),
                Err(e) => tracing::warn!("app name {name:?} left out of the user agent: {e}"),
            }
        }
        let base = loader.load().await;
        Self::from_sdk_config(base, config)
    }

    /// An adapter over an already loaded SDK configuration (tests give
    /// static credentials and a moto endpoint this way).
    pub fn from_sdk_config(base: SdkConfig, config: AwsConfig) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.rate_limits));
        Self::with_limiter(base, config, limiter)
    }

    /// Like [`from_sdk_config`](Self::from_sdk_config) but sharing a rate
    /// limiter with other clouds of the node.
    pub fn with_limiter(base: SdkConfig, config: AwsConfig, limiter: Arc<RateLimiter>) -> Self {
        AwsCloud {
            base,
            config,
            clients: tokio::sync::Mutex::new(HashMap::new()),
            limiter,
            calls: ApiCalls::new(),
            rng: Mutex::new(ChaCha8Rng::from_os_rng()),
            vpc_attrs: Mutex::new(HashMap::new()),
            user_data: Mutex::new(HashMap::new()),
            default_dhcp: Mutex::new(HashMap::new()),
        }
    }

    /// The rate limiter this adapter uses.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// The EC2 client of `scope`, built on first use (assuming the
    /// account's role if it has one: STS AssumeRole with its external id;
    /// the SDK caches the credentials and refreshes them before they
    /// expire).
    async fn client(&self, scope: &Scope) -> Result<Client, CloudError> {
        let role = self
            .config
            .roles
            .role_of(&scope.account)
            .await
            .map_err(|e| {
                CloudError::new(
                    ErrorClass::Retryable,
                    NO_ROLE,
                    format!("the role of account {} is unknown now: {e}", scope.account),
                )
            })?;
        let key = (scope.clone(), role);
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let region = aws_config::Region::new(scope.region.as_str().to_string());
        let mut builder = aws_sdk_ec2::config::Builder::from(&self.base)
            .region(region.clone())
            .retry_config(RetryConfig::disabled());
        if let Some(role) = &key.1 {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name("canon")
                .region(region);
            if let Some(id) = &role.external_id {
                provider = provider.external_id(id.clone());
            }
            let provider = provider.configure(&self.base).build().await;
            builder = builder.credentials_provider(provider);
        }
        let client = Client::from_conf(builder.build());
        // A role changed for this scope: its old client is no use now.
        clients.retain(|(s, _), _| s != scope);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// One API call: rate-limited, counted, retried on transient failures
    /// with jittered backoff, its error classified for `request_type`;
    /// each attempt's request id (answer or error) goes to `noted`. With
    /// `resend`, [`Resend::OnlyIfRefused`], a failure that may have taken
    /// effect ([`CloudError::may_have_taken_effect`]) is not retried.
    async fn call<T, E, F, Fut>(
        &self,
        scope: &Scope,
        (action, request_type): (&str, &str),
        resend: Resend,
        noted: impl Fn(Option<&str>),
        mut f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let class = ApiClass::of(action);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.limiter.acquire(scope, class).await;
            self.calls.record(action);
            match f().await {
                Ok(v) => {
                    noted(v.request_id());
                    self.limiter.succeeded(scope, class);
                    return Ok(v);
                }
                Err(e) => {
                    noted(e.request_id());
                    let err = sdk_error(request_type, &e);
                    if err.is_throttle() {
                        self.limiter.throttled(scope, class);
                    }
                    // EC2 is eventually consistent: a resource created a
                    // moment ago may not be found yet by the next call that
                    // names it. Retry such misses a few times (not for
                    // describes or deletes, where NotFound means what it says).
                    let consistency = err.class == ErrorClass::Terminal
                        && err.code.ends_with(".NotFound")
                        && !request_type.contains(".describe_")
                        && attempt < CONSISTENCY_ATTEMPTS;
                    let final_answer =
                        resend == Resend::OnlyIfRefused && err.may_have_taken_effect();
                    if !(err.is_transient() || consistency)
                        || final_answer
                        || attempt >= self.config.retry.max_attempts
                    {
                        tracing::debug!(action, code = %err.code, attempt, "EC2 call failed");
                        return Err(err);
                    }
                    let pause = {
                        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                        self.config.retry.backoff(attempt, &mut *rng)
                    };
                    tracing::debug!(action, code = %err.code, attempt, ?pause, "retrying EC2 call");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// Whether a call is sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// After any transient failure: the call is a read, or sending it twice
    /// makes nothing twice (a client token, a delete, a modify).
    AfterAnyTransient,
    /// Only after a clean refusal (throttling): a create of a kind without
    /// client tokens, which a resend after a lost answer would make twice.
    /// Its failure goes back to the actor, whose next pass looks the
    /// resource up by its ownership tag before any resend (issue #19).
    OnlyIfRefused,
}

/// Classifies an SDK error: the service's code and message when EC2
/// answered, `Canon.Transport` (retryable) when it did not.
pub(crate) fn sdk_error<E>(request_type: &str, e: &SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = match se.err().code() {
                Some(c) => c.to_string(),
                None if status >= 500 => format!("Http{status}"),
                None => format!("Http{status}"),
            };
            let message = se.err().message().unwrap_or("").to_string();
            let mut err = CloudError::classified(request_type, &code, &message);
            if status >= 500 && err.class == ErrorClass::Terminal {
                err.class = ErrorClass::Retryable;
            }
            err
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CloudError::new(
                classify(request_type, TRANSPORT),
                TRANSPORT,
                aws_sdk_ec2::error::DisplayErrorContext(e).to_string(),
            )
        }
        _ => CloudError::terminal(
            "Canon.Request",
            aws_sdk_ec2::error::DisplayErrorContext(e).to_string(),
        ),
    }
}

/// A cloud answer missing a field it must have.
pub(crate) fn missing(what: &str) -> CloudError {
    CloudError::terminal(BAD_RESPONSE, format!("the response has no {what}"))
}

impl Cloud for AwsCloud {
    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: crate::Keep<'a>,
    ) -> BoxFuture<'a, Result<canon_model::ObservedState, CloudError>> {
        Box::pin(self.observe_scope(scope, keep))
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a std::collections::BTreeSet<String>,
    ) -> BoxFuture<'a, Result<canon_model::ObservedState, CloudError>> {
        Box::pin(self.observe_by_ids(scope, ids))
    }

    fn execute<'a>(
        &'a self,
        request: &'a canon_model::Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        Box::pin(self.execute_request(request, ctx))
    }

    fn look_up_owned<'a>(
        &'a self,
        scope: &'a Scope,
        requests: &'a [canon_model::Request],
    ) -> BoxFuture<'a, Result<crate::idempotency::OwnedLookups, CloudError>> {
        Box::pin(AwsCloud::look_up_owned(self, scope, requests))
    }

    fn candidates<'a>(
        &'a self,
        scope: &'a Scope,
        kind: canon_model::ResourceKind,
        lookup: &'a canon_model::import::Lookup,
    ) -> BoxFuture<'a, Result<Vec<canon_model::ObservedResource>, CloudError>> {
        Box::pin(self.find_candidates(scope, kind, lookup))
    }

    fn reach<'a>(
        &'a self,
        _scope: &'a Scope,
        instance: &'a canon_model::ObservedResource,
        port: u16,
    ) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match crate::reach::address(instance) {
                Some(ip) => crate::reach::connect(ip, port, crate::reach::TCP_TIMEOUT).await,
                None => false,
            }
        })
    }

    fn api_calls(&self) -> &ApiCalls {
        &self.calls
    }
}
