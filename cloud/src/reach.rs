//! The conductor's TCP connect to an instance, a fleet's `Tcp(port)`
//! health check: the one place Canon opens a connection to what it
//! launched rather than to the cloud's API. `AwsCloud::reach` uses it;
//! `SimCloud` models the outcome instead (simulations open no socket).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use canon_model::ObservedResource;

/// How long one connect may take before the instance counts as not
/// reached (this pass; the planner asks again next tick).
pub const TCP_TIMEOUT: Duration = Duration::from_secs(2);

/// The address a `Tcp` check connects to: the instance's observed one
/// (public if it has one, else private), if the observation says.
pub fn address(instance: &ObservedResource) -> Option<IpAddr> {
    instance.life.as_ref().and_then(|l| l.address)
}

/// Whether a TCP connection to `port` on `ip` opens within `timeout`.
pub async fn connect(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::new(ip, port);
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_reached_and_a_closed_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr").port();
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(connect(ip, open, TCP_TIMEOUT).await);
        drop(listener);
        assert!(!connect(ip, open, TCP_TIMEOUT).await);
    }
}
