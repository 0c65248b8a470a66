//! The `Cloud` trait: observe a scope, execute one request.
//!
//! Object-safe (futures are boxed) so the scheduler can hold an
//! `Arc<dyn Cloud>` and switch between `AwsCloud` and `SimCloud` at run time.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use canon_model::import::Lookup;
use canon_model::{ObservedResource, ObservedState, Request, ResourceKind};

use crate::{ApiCalls, CloudError, ExecContext, Outcome, Scope};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which of the resources an observation finds it keeps: a node keeps
/// only those of the processes it leads ([`Cloud::observe_where`]).
pub type Keep<'a> = &'a (dyn Fn(&ObservedResource) -> bool + Send + Sync);

fn keep_every(_: &ObservedResource) -> bool {
    true
}

/// [`Cloud::observe`]'s filter: every resource.
const KEEP_EVERY: Keep<'static> = &keep_every;

/// Canon's hands and eyes on one cloud.
pub trait Cloud: Send + Sync {
    /// Everything Canon owns in `scope` (found by the ownership tag), read
    /// with batched, tag-filtered, paginated describes.
    fn observe<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<ObservedState, CloudError>> {
        self.observe_where(scope, KEEP_EVERY)
    }

    /// What [`Cloud::observe`] shows of `scope`, less the resources `keep`
    /// refuses, dropped as each page is read, so the observation never
    /// holds the whole scope: a node's observation holds the processes it
    /// leads, not the estate (issue #19, memory per node).
    fn observe_where<'a>(
        &'a self,
        scope: &'a Scope,
        keep: Keep<'a>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>>;

    /// The resources among `ids` that [`Cloud::observe`] would show
    /// (owned, live, visible), looked up by id: one describe per kind the
    /// ids name, so a look at one process costs that process's size rather
    /// than the estate's. What a process a cloud event poked looks at.
    fn observe_ids<'a>(
        &'a self,
        scope: &'a Scope,
        ids: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<ObservedState, CloudError>>;

    /// The resources of `kind` in `scope` that `lookup` admits, whoever
    /// owns them (no one, this process, another): what an import chooses
    /// from (`canon_model::import::choose`). Reads only; asks for no more
    /// than the lookup needs where the cloud can filter.
    fn candidates<'a>(
        &'a self,
        scope: &'a Scope,
        kind: ResourceKind,
        lookup: &'a Lookup,
    ) -> BoxFuture<'a, Result<Vec<ObservedResource>, CloudError>>;

    /// Executes one resolved request. Pending references fail with a
    /// terminal `Canon.Unresolved` error; errors of class already-done come
    /// back as `Ok` with [`Outcome::already_done`] set.
    fn execute<'a>(
        &'a self,
        request: &'a Request,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Outcome, CloudError>>;

    /// One look-up, per kind, of the resources the creates among
    /// `requests` (all in `scope`) would make, for kinds whose creates take
    /// no client token: what a pass's creates then consult instead of a
    /// look-up each ([`ExecContext::looked_up`]). A cloud whose look-ups
    /// cost nothing answers none (each create then looks for itself).
    fn look_up_owned<'a>(
        &'a self,
        _scope: &'a Scope,
        _requests: &'a [canon_model::Request],
    ) -> BoxFuture<'a, Result<crate::idempotency::OwnedLookups, CloudError>> {
        Box::pin(async { Ok(crate::idempotency::OwnedLookups::default()) })
    }

    /// Whether the conductor connects to TCP `port` of `instance` (as an
    /// observation of `scope` showed it) within [`crate::reach::TCP_TIMEOUT`]:
    /// a fleet's `Tcp(port)` health check. False when it cannot (no
    /// address, refused, timed out, gone). Not an API call: `AwsCloud`
    /// opens a connection to the instance's address; `SimCloud` models it
    /// and opens no socket.
    fn reach<'a>(
        &'a self,
        scope: &'a Scope,
        instance: &'a ObservedResource,
        port: u16,
    ) -> BoxFuture<'a, bool>;

    /// The API calls made so far, by action.
    fn api_calls(&self) -> &ApiCalls;
}
