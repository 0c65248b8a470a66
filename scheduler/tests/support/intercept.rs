//! One pass-through `Cloud` for tests that watch or change some of the
//! calls the scheduler makes (count the looks, hide a resource, cut a call
//! off): a test writes only the methods it intercepts ([`Intercept`]), and
//! [`Intercepted`] hands every other call to the cloud it wraps.

use std::collections::BTreeSet;
use std::sync::Arc;

use canon_cloud::idempotency::OwnedLookups;
use canon_cloud::{ApiCalls, BoxFuture, Cloud, CloudError, ExecContext, Keep, Outcome, Scope};
use canon_model::import::Lookup;
use canon_model::{ObservedResource, ObservedState, Request, ResourceKind};

/// What a test's cloud does around the cloud it wraps; each method passes
/// the call through unless the test says otherwise.
pub trait Intercept: Send + Sync + 'static {
    /// The cloud wrapped.
    fn inner(&self) -> &dyn Cloud;

    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.inner().observe_where(scope, keep)
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.inner().observe_ids(scope, ids)
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        self.inner().execute(request, ctx)
    }

    fn look_up_owned<'a>(
        &'a self,
        scope: &'a Scope,
        requests: &'a [Request],
    ) -> BoxFuture<'a, Result<OwnedLookups, CloudError>> {
        self.inner().look_up_owned(scope, requests)
    }
}

/// The `Cloud` the scheduler is given: `I`'s calls where it intercepts
/// them, the wrapped cloud's everywhere else. The test keeps the other
/// `Arc` to read what `I` saw.
pub struct Intercepted<I>(pub Arc<I>);

impl<I: Intercept> Cloud for Intercepted<I> {
    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.0.observe_where(scope, keep)
    }

    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.0.observe_ids(scope, ids)
    }

    fn candidates<'a>(
        &'a self,
        scope: &'a Scope,
        kind: ResourceKind,
        lookup: &'a Lookup,
    ) -> BoxFuture<'a, Result<Vec<ObservedResource>, CloudError>> {
        self.0.inner().candidates(scope, kind, lookup)
    }

    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>> {
        self.0.execute(request, ctx)
    }

    fn look_up_owned<'a>(
        &'a self,
        scope: &'a Scope,
        requests: &'a [Request],
    ) -> BoxFuture<'a, Result<OwnedLookups, CloudError>> {
        self.0.look_up_owned(scope, requests)
    }

    fn reach<'a>(
        &'a self,
        scope: &'a Scope,
        instance: &'a ObservedResource,
        port: u16,
    ) -> BoxFuture<'a, bool> {
        self.0.inner().reach(scope, instance, port)
    }

    fn api_calls(&self) -> &ApiCalls {
        self.0.inner().api_calls()
    }
}
