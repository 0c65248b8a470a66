//! The webhook sink POSTs each alert as JSON; a bad URL is refused up front;
//! an unreachable hook does not block the caller.

use std::time::Duration;

use canon_model::{Fid, LogicalId, ResourceKind};
use canon_scheduler::{Alert, AlertSink, WebhookSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn alert() -> Alert {
    let fid = Fid::random();
    Alert {
        event: "drift.opened",
        fid,
        alias: "dev-sam".into(),
        drift: 7,
        resource: LogicalId::new(fid, "web-sg"),
        kind: ResourceKind::SecurityGroup,
        cloud_id: Some("sg-0123".into()),
        property: "ingress".into(),
        declared: None,
        observed: Some("all traffic 0.0.0.0/0".into()),
        detected_at: 1_700_000_000_000,
        healed_at: None,
        violates: vec!["org.no-admin-ports".into()],
    }
}

/// Reads one HTTP request (headers and a content-length body) and answers 200.
async fn receive_one(listener: TcpListener) -> (String, serde_json::Value) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return (head, body);
            }
        }
    }
}

#[tokio::test]
async fn webhook_posts_the_alert_as_json() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/drift", listener.local_addr().unwrap());
    let sink = WebhookSink::new(&url, Duration::from_secs(2)).unwrap();
    let server = tokio::spawn(receive_one(listener));
    let a = alert();
    sink.send(&a);
    let (head, body) = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("POST /hooks/drift HTTP/1.1"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    assert_eq!(body["event"], "drift.opened");
    assert_eq!(body["alias"], "dev-sam");
    assert_eq!(body["property"], "ingress");
    assert_eq!(body["observed"], "all traffic 0.0.0.0/0");
    assert_eq!(body["cloud_id"], "sg-0123");
    assert_eq!(body["resource"], a.resource.to_string());
    assert_eq!(body["violates"], serde_json::json!(["org.no-admin-ports"]));
}

#[test]
fn bad_webhook_urls_are_refused() {
    for url in [
        "",
        "not a url",
        "https://example.invalid/x",
        "ftp://h/x",
        "http:///x",
    ] {
        assert!(
            WebhookSink::new(url, Duration::from_secs(1)).is_err(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_webhook_does_not_block() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sink = WebhookSink::new(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(200),
    )
    .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        sink.send(&alert());
    }
    assert!(started.elapsed() < Duration::from_millis(100));
}
