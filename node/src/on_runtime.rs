//! Running a gRPC service's calls on another runtime than the server's.
//!
//! The node's one tonic server (peer transport and client API on one port)
//! runs on the Raft runtime ([`canon_raft::threads`]), so that peers'
//! heartbeats are read however busy the application is. The client API,
//! health and reflection are the application's work: wrapped in
//! [`OnRuntime`], each of their calls runs on the application's runtime,
//! and only the bytes of its answer pass through the Raft runtime.

use std::convert::Infallible;

use tokio::runtime::Handle;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Bytes, Context, Poll, Service, StdError};
use tonic::server::NamedService;

/// `inner`, each of whose calls is spawned on `runtime`.
#[derive(Debug, Clone)]
pub struct OnRuntime<S> {
    inner: S,
    runtime: Handle,
}

impl<S> OnRuntime<S> {
    /// `inner` with its calls run on `runtime`.
    pub fn new(inner: S, runtime: Handle) -> Self {
        OnRuntime { inner, runtime }
    }
}

impl<S, B> Service<http::Request<Body>> for OnRuntime<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let call = self.runtime.spawn(self.inner.call(req));
        Box::pin(async move {
            match call.await {
                Ok(answer) => answer.map(|r| r.map(Body::new)),
                // The application's runtime is shutting down (or the call
                // panicked): the client is told, the server goes on.
                Err(e) => {
                    Ok(tonic::Status::unavailable(format!("call not completed: {e}")).into_http())
                }
            }
        })
    }
}

impl<S: NamedService> NamedService for OnRuntime<S> {
    const NAME: &'static str = S::NAME;
}
