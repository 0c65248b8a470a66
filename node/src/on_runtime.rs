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

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every call with the name of the thread it ran on.
    #[derive(Clone)]
    struct WhereAmI;

    impl Service<http::Request<Body>> for WhereAmI {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Infallible>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            Box::pin(async {
                let name = std::thread::current().name().unwrap_or("").to_string();
                Ok(http::Response::new(Body::new(http_body_util::Full::new(
                    Bytes::from(name),
                ))))
            })
        }
    }

    #[tokio::test]
    async fn calls_run_on_the_given_runtime() {
        let app = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("the-app")
            .enable_all()
            .build()
            .unwrap();
        let mut svc = OnRuntime::new(WhereAmI, app.handle().clone());
        let answer = svc.call(http::Request::new(Body::empty())).await.unwrap();
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"the-app");
        app.shutdown_background();
    }
}
