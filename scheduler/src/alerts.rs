//! Alert sinks: where drift (and a fleet's parked rollout) is announced. A structured log line always; a
//! webhook that receives each event as a JSON POST when configured.
//!
//! Sinks never block the actor: the webhook posts from its own task, with a
//! timeout, and a failed post is logged, not retried forever.

use std::sync::Arc;
use std::time::Duration;

use canon_model::{Fid, LogicalId, ResourceKind, UnixMillis};
use serde::Serialize;

/// One alert: drift found, or drift healed; or a fleet's rollout parked
/// after repeated failed replacements (`rollout.parked`: `drift` 0,
/// `resource` the member, `observed` what `canon status` says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// `drift.opened`, `drift.healed` or `rollout.parked`.
    pub event: &'static str,
    pub fid: Fid,
    pub alias: String,
    pub drift: u64,
    pub resource: LogicalId,
    pub kind: ResourceKind,
    pub cloud_id: Option<String>,
    pub property: String,
    pub declared: Option<String>,
    pub observed: Option<String>,
    pub detected_at: UnixMillis,
    /// For `drift.healed`: when the heal finished.
    pub healed_at: Option<UnixMillis>,
    /// The organisation's validations the drift breaks (`MODULE.validation`).
    pub violates: Vec<String>,
}

impl Alert {
    /// `drift.healed` for drift event `e` of process `alias`, healed at
    /// `healed_at`.
    pub fn healed(alias: &str, e: &canon_model::DriftEvent, healed_at: UnixMillis) -> Self {
        Alert {
            event: "drift.healed",
            fid: e.fid,
            alias: alias.to_string(),
            drift: e.id,
            resource: e.resource,
            kind: e.kind,
            cloud_id: e.cloud_id.clone(),
            property: e.property.clone(),
            declared: e.declared.clone(),
            observed: e.observed.clone(),
            detected_at: e.detected_at,
            healed_at: Some(healed_at),
            violates: e.violates.clone(),
        }
    }
}

/// Something that wants to hear about drift.
pub trait AlertSink: Send + Sync {
    fn send(&self, alert: &Alert);
}

/// Writes each alert as a structured `tracing` event (target `canon::drift`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

impl AlertSink for LogSink {
    fn send(&self, a: &Alert) {
        tracing::warn!(
            target: "canon::drift",
            event = a.event,
            fid = %a.fid,
            alias = %a.alias,
            drift = a.drift,
            resource = %a.resource,
            kind = %a.kind,
            cloud_id = a.cloud_id.as_deref().unwrap_or(""),
            property = %a.property,
            declared = a.declared.as_deref().unwrap_or("(absent)"),
            observed = a.observed.as_deref().unwrap_or("(absent)"),
            healed_at = a.healed_at,
            violates = %a.violates.join(","),
            "drift {}", a.event
        );
    }
}

/// POSTs each alert as JSON to an `http://` URL.
pub struct WebhookSink {
    url: hyper::Uri,
    timeout: Duration,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

/// A webhook URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("bad webhook url {url:?}: {why}")]
pub struct WebhookError {
    pub url: String,
    pub why: String,
}

impl WebhookSink {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, WebhookError> {
        let bad = |why: &str| WebhookError {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// URLs are supported"));
        }
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(WebhookSink {
            url: uri,
            timeout,
            client,
        })
    }
}

impl AlertSink for WebhookSink {
    fn send(&self, alert: &Alert) {
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alert");
                return;
            }
        };
        let request = hyper::Request::post(self.url.clone())
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot build webhook request");
                return;
            }
        };
        let client = self.client.clone();
        let timeout = self.timeout;
        let url = self.url.to_string();
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, client.request(request)).await {
                Ok(Ok(resp)) if resp.status().is_success() => {}
                Ok(Ok(resp)) => {
                    tracing::warn!(%url, status = %resp.status(), "webhook refused alert")
                }
                Ok(Err(e)) => tracing::warn!(%url, error = %e, "webhook post failed"),
                Err(_) => tracing::warn!(%url, ?timeout, "webhook post timed out"),
            }
        });
    }
}

/// Every configured sink.
#[derive(Clone, Default)]
pub struct Alerts {
    sinks: Vec<Arc<dyn AlertSink>>,
}

impl Alerts {
    /// The log sink only.
    pub fn log_only() -> Self {
        Alerts {
            sinks: vec![Arc::new(LogSink)],
        }
    }

    pub fn with(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    pub fn send(&self, alert: &Alert) {
        for s in &self.sinks {
            s.send(alert);
        }
    }
}
