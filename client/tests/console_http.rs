//! The web console over real HTTP, as a browser meets it, on a dev cluster
//! that requires signed reads: the page is served to anyone, the data only
//! to a session opened by `canon console`'s signed link (a forged or
//! missing one gets 401 and no cookie); a session reads processes, one
//! process (declared against observed, jobs, drift), its drawing, the
//! cluster, and the live event stream, which starts with a snapshot and
//! then carries the jobs a command starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod support;
use support::dev_cluster::canon;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// `host:port` of an `http://host:port` address.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// A request's head as the browser would send it.
fn head(path: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: console\r\n{cookie}Connection: close\r\n\r\n")
}

/// One server-sent event: its name, id and data.
#[derive(Debug, Default, Clone)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// The event stream of `/api/events`, as an `EventSource` that reconnects
/// with `Last-Event-ID: after` would open it.
async fn open_events(
    base: &str,
    cookie: &str,
    after: Option<&str>,
) -> tokio::io::Lines<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(authority(base)).await.unwrap();
    let last = after
        .map(|a| format!("Last-Event-ID: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: console\r\nCookie: {cookie}\r\n{last}Connection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    BufReader::new(s).lines()
}

/// The next whole event of an SSE stream (chunk sizes and keep-alive
/// comments skipped).
async fn next_sse(lines: &mut tokio::io::Lines<BufReader<TcpStream>>) -> Sse {
    let mut e = Sse::default();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .expect("the stream stays open");
        if let Some(v) = line.strip_prefix("event: ") {
            e.event = v.to_string();
        } else if let Some(v) = line.strip_prefix("id: ") {
            e.id = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            e.data.push_str(v);
        } else if line.is_empty() && !e.event.is_empty() {
            return e;
        }
    }
}

/// One GET: the status code, the headers (lower-cased names) and the body.
async fn get(base: &str, path: &str, cookie: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(authority(base)).await.unwrap();
    s.write_all(head(path, cookie).as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (top, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = top.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (code, headers, body.to_string())
}

/// A JSON body of a 200 answer (chunked bodies are de-chunked first).
async fn json(base: &str, path: &str, cookie: &str) -> Value {
    let (code, headers, body) = get(base, path, Some(cookie)).await;
    assert_eq!(code, 200, "{path}: {body}");
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(&body) } else { body };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_a_signed_session_and_streams_events() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config, base) = support::dev_cluster::signed_console_cluster(tmp.path()).await;

    // The page is for anyone; the data is not.
    let (code, _, page) = get(&base, "/", None).await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>Canon console</title>"), "{page}");
    let (code, _, body) = get(&base, "/api/processes", None).await;
    assert_eq!(code, 401, "{body}");

    // The signed link opens a session; a forged one does not.
    let (code, link, err) = canon(&config, &["console", "--url", &base]).await;
    assert_eq!(code, 0, "{err}");
    let path = link
        .trim()
        .strip_prefix(base.as_str())
        .expect("a link to the console");
    let forged = path.replace("signature=", "signature=00");
    let (code, headers, _) = get(&base, &forged, None).await;
    assert_eq!(code, 401);
    assert!(!headers.iter().any(|(k, _)| k == "set-cookie"));
    let (code, headers, _) = get(&base, path, None).await;
    assert_eq!(code, 303, "{headers:?}");
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .expect("a session cookie");
    assert!(headers.iter().any(|(_, v)| v.contains("HttpOnly")));
    assert_eq!(
        json(&base, "/api/processes", &cookie).await,
        Value::Array(vec![])
    );

    // The live stream: a snapshot first, then the jobs of a run.
    let mut sse = TcpStream::connect(authority(&base)).await.unwrap();
    sse.write_all(head("/api/events", Some(&cookie)).as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(sse).lines();
    let mut seen = Vec::new();
    let next_event = |seen: &mut Vec<String>, line: String| {
        if let Some(kind) = line.strip_prefix("event: ") {
            seen.push(kind.to_string());
        }
    };
    while !seen.contains(&"snapshot".to_string()) {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the snapshot arrives")
            .unwrap()
            .expect("the stream stays open");
        next_event(&mut seen, line);
    }
    let vpc = example("bench/one-vpc.lw");
    let (code, out, err) = canon(
        &config,
        &["run", vpc.to_str().unwrap(), "-a", "web", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    while !seen.contains(&"job.finished".to_string()) {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the run's jobs arrive live")
            .unwrap()
            .expect("the stream stays open");
        next_event(&mut seen, line);
    }
    assert!(seen.contains(&"job.started".to_string()), "{seen:?}");
    drop(lines);

    // A reconnect resumes: the stream carries what happened while it was
    // away, and no snapshot, when it names where it stopped.
    let mut lines = open_events(&base, &cookie, None).await;
    assert_eq!(next_sse(&mut lines).await.event, "snapshot");
    let (code, out, err) = canon(&config, &["suspend", "web"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let suspended = loop {
        let e = next_sse(&mut lines).await;
        if e.event == "process.state" && e.data.contains("Suspended") {
            break e;
        }
    };
    let position = suspended.id.expect("every event names its position");
    drop(lines);
    let (code, out, err) = canon(&config, &["resume", "web"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let mut lines = open_events(&base, &cookie, Some(&position)).await;
    loop {
        let missed = next_sse(&mut lines).await;
        assert_ne!(missed.event, "snapshot", "a resume is not a fresh start");
        assert!(
            !(missed.event == "process.state" && missed.data.contains("Suspended")),
            "an event delivered before the reconnect came again: {missed:?}"
        );
        assert!(missed.id.is_some(), "{missed:?}");
        if missed.event == "process.state" && missed.data.contains("Running") {
            break;
        }
    }
    drop(lines);
    // A position that names none of the groups the stream follows
    // (another cluster's, a hand-made one) starts afresh.
    let mut lines = open_events(&base, &cookie, Some("0:0")).await;
    assert_eq!(next_sse(&mut lines).await.event, "snapshot");
    drop(lines);

    // What the session reads.
    let rows = json(&base, "/api/processes", &cookie).await;
    assert_eq!(rows[0]["alias"], "web", "{rows}");
    assert_eq!(rows[0]["open_drift"], 0, "{rows}");
    let p = json(&base, "/api/processes/web", &cookie).await;
    assert_eq!(p["process"]["state"], "Running", "{p}");
    let vpc_row = p["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "vpc")
        .cloned()
        .unwrap_or_else(|| panic!("the VPC in {p}"));
    assert!(
        vpc_row["cloud_id"].as_str().unwrap().starts_with("vpc-"),
        "{vpc_row}"
    );
    assert_eq!(
        vpc_row["declared"]["cidr_block"], vpc_row["observed"]["cidr_block"],
        "{vpc_row}"
    );
    assert!(!p["jobs"].as_array().unwrap().is_empty(), "{p}");
    let (code, headers, svg) = get(&base, "/api/processes/web/graph.svg", Some(&cookie)).await;
    assert_eq!(code, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "image/svg+xml"));
    assert!(svg.contains("<svg"), "{svg}");
    let cluster_view = json(&base, "/api/cluster", &cookie).await;
    assert_eq!(cluster_view["members"].as_array().map(Vec::len), Some(1));
    let (code, _, body) = get(&base, "/api/processes/nobody", Some(&cookie)).await;
    assert_eq!(code, 404, "{body}");
    cluster.shutdown().await;
}
