//! A recording relay between the AWS adapter and moto: every byte the
//! adapter sends passes through and is kept, so that a test can read a
//! request's parameters (EC2's query protocol sends them as a form body:
//! `Action=DescribeSecurityGroups&…&GroupId.1=sg-…`), not only count calls.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A relay to one moto endpoint, and what was sent through it.
pub struct Recorder {
    /// The endpoint to give the adapter instead of moto's.
    pub endpoint: String,
    /// The bodies of the requests sent so far, percent-decoded.
    sent: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Starts relaying to `upstream` (`http://127.0.0.1:PORT`) on a free
    /// local port; the relay lives as long as the test's runtime.
    pub async fn start(upstream: &str) -> Recorder {
        let to = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let kept = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&to).await.expect("reach moto");
                tokio::spawn(relay(client, server, kept.clone()));
            }
        });
        Recorder { endpoint, sent }
    }

    /// Forgets what was sent so far.
    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }

    /// The bodies of the requests of EC2 action `action` sent so far, in
    /// order.
    pub fn requests(&self, action: &str) -> Vec<String> {
        let start = format!("Action={action}&");
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with(&start))
            .cloned()
            .collect()
    }
}

/// Relays one connection both ways, keeping the bodies of the requests
/// the client sends.
async fn relay(client: TcpStream, server: TcpStream, sent: Arc<Mutex<Vec<String>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    loop {
        match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(body) = take_request(&mut pending) {
                    sent.lock().unwrap().push(decode(&body));
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = server_write.shutdown().await;
    let _ = answers.await;
}

/// The body of the first whole HTTP request in `pending` (by its
/// `Content-Length`), taken out of it.
fn take_request(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let head_end = pending.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if pending.len() < head_end + length {
        return None;
    }
    let body = pending[head_end..head_end + length].to_vec();
    pending.drain(..head_end + length);
    Some(body)
}

/// A form body percent-decoded (`%3A` → `:`, `+` → space).
fn decode(form: &[u8]) -> String {
    let mut out = Vec::with_capacity(form.len());
    let mut i = 0;
    while i < form.len() {
        let hex = form
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (form[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}
