//! The web console over real HTTP, as a browser meets it, on a dev cluster
//! that requires signed reads: the page is served to anyone, the data only
//! to a session opened by `canon console`'s signed link (a forged or
//! missing one gets 401 and no cookie); a session reads processes, one
//! process (declared against observed, jobs, drift), its drawing, the
//! cluster, and the live event stream, which starts with a snapshot and
//! then carries the jobs a command starts.
//!
//! Over HTTPS (a node with TLS): a client certificate of the client CA
//! reads as the policy user it names, with that user's rights (none: 403;
//! not a user: 403); without one, 401 unless a session, and the signed
//! link still works (`canon console` finds the https address); a
//! certificate of another CA is refused at the handshake; plain HTTP
//! reaches /metrics and /healthz only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use canon_node::dev::{DevCluster, DevOptions};
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
    parse_answer(&raw)
}

/// An HTTP/1.1 answer's status code (0: none), headers (lower-cased
/// names) and body (de-chunked).
fn parse_answer(raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let (top, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = top.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (code, headers, body)
}

/// A JSON body of a 200 answer.
async fn json(base: &str, path: &str, cookie: &str) -> Value {
    let (code, _, body) = get(base, path, Some(cookie)).await;
    assert_eq!(code, 200, "{path}: {body}");
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

/// The session cookie a login answer sets.
fn cookie_of(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .expect("a session cookie")
}

/// A session opened through `canon console`'s signed link.
async fn signed_session(config: &Path, base: &str) -> String {
    let (code, link, err) = canon(config, &["console", "--url", base]).await;
    assert_eq!(code, 0, "{err}");
    let path = link
        .trim()
        .strip_prefix(base)
        .expect("a link to the console");
    let (code, headers, _) = get(base, path, None).await;
    assert_eq!(code, 303, "{headers:?}");
    cookie_of(&headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_processes_as_canon_status_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config, base) = support::dev_cluster::signed_console_cluster(tmp.path()).await;
    let cookie = signed_session(&config, &base).await;
    let vpc = example("bench/one-vpc.lw");
    // Created out of alias order: pages come in alias order.
    let aliases = ["p-3", "p-1", "p-4", "p-0", "p-2"];
    for alias in aliases {
        let (code, out, err) = canon(&config, &["run", vpc.to_str().unwrap(), "-a", alias]).await;
        assert_eq!(code, 0, "{out}{err}");
    }

    // Pages of 2, followed to the end: every process once, in order.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = json(
            &base,
            &format!("/api/processes?page_size=2&page_token={token}"),
            &cookie,
        )
        .await;
        let rows = page["processes"].as_array().expect("a page's rows");
        assert!(rows.len() <= 2, "{page}");
        seen.extend(
            rows.iter()
                .map(|r| r["alias"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match page["next_page_token"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
        assert!(pages < 10, "the pages never end: {seen:?}");
    }
    assert_eq!(seen, ["p-0", "p-1", "p-2", "p-3", "p-4"]);
    // Without a page size: every row, as one array (older readers).
    let all = json(&base, "/api/processes", &cookie).await;
    assert_eq!(all.as_array().map(Vec::len), Some(5), "{all}");

    // Bad pages are the reader's error, said plainly.
    let (code, _, body) = get(&base, "/api/processes?page_size=0", Some(&cookie)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("page_size"), "{body}");
    let (code, _, body) = get(
        &base,
        "/api/processes?page_size=2&page_token=not-a-token",
        Some(&cookie),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = get(&base, "/api/processes?page_size=many", Some(&cookie)).await;
    assert_eq!(code, 400, "{body}");

    // A new event stream starts with the first page, not the estate.
    let mut lines = open_events(&base, &cookie, None).await;
    let first = next_sse(&mut lines).await;
    assert_eq!(first.event, "snapshot");
    let snapshot: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(
        snapshot["processes"].as_array().map(Vec::len),
        Some(5),
        "{snapshot}"
    );
    assert!(snapshot["next_page_token"].is_null(), "{snapshot}");
    drop(lines);

    // The page itself pages.
    let (_, _, page) = get(&base, "/", None).await;
    assert!(
        page.contains("page_size=${PAGE_SIZE}"),
        "the page reads pages"
    );
    assert!(
        page.contains("id=\"next-page\""),
        "the page links the next page"
    );
    cluster.shutdown().await;
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
    let cookie = cookie_of(&headers);
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

/// A TLS client as a browser is one: trusting the nodes' CA (`ca`),
/// presenting the client certificate `cert` (`.crt`; its key beside it,
/// `.key`) if given.
fn browser_tls(ca: &Path, cert: Option<&Path>) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(canon_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some(cert) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(cert.with_extension("key")).unwrap();
            config.with_client_auth_cert(chain, key).unwrap()
        }
        None => config.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// One GET over HTTPS at `base` (`https://127.0.0.1:PORT`): the status and
/// the body, or why no answer came (a refused handshake).
async fn get_tls(
    tls: &tokio_rustls::TlsConnector,
    base: &str,
    path: &str,
    cookie: Option<&str>,
) -> Result<(u16, Vec<(String, String)>, String), String> {
    let authority = base.trim_start_matches("https://").trim_end_matches('/');
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut s = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
    s.write_all(head(path, cookie).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    let (code, headers, body) = parse_answer(&raw);
    match code {
        0 => Err(format!("no HTTP answer: {body:?}")),
        _ => Ok((code, headers, body)),
    }
}

/// The SHA-256 (hex) of the certificate in the PEM file `cert`.
fn fingerprint_of(cert: &Path) -> String {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(cert).unwrap();
    canon_tls::identity::fingerprint(&der)
}

/// Starts the HTTPS test's dev cluster (one node, mutual TLS, the console
/// over HTTPS), the root's client.toml in `dir`; the console's address.
async fn tls_console_cluster(dir: &Path) -> (DevCluster, PathBuf, String) {
    let cluster = DevCluster::start(DevOptions {
        nodes: 1,
        tick: Duration::from_secs(1),
        shards: 1,
        tls: true,
        console_tls: true,
        ..DevOptions::new(dir.join("dev"))
    })
    .await
    .expect("the dev cluster starts");
    let config = support::dev_cluster::client_toml(&cluster, dir);
    let console = cluster.console.clone().expect("the console is served");
    (cluster, config, console)
}

/// alice reads every process; bob is a user with no rights.
fn readers_policy(alice: &str, bob: &str) -> String {
    format!(
        r#"[[users]]
name = "alice"
keys = ["{alice}"]
groups = ["readers"]

[[users]]
name = "bob"
keys = ["{bob}"]

[[roles]]
name = "reader"
rules = [{{ effect = "allow", actions = ["process.status", "process.history"] }}]

[[bindings]]
role = "reader"
subjects = ["group:readers"]
"#
    )
}

/// A fresh public key (hex), for a policy user who never signs here.
fn some_key() -> String {
    canon_node::keys::public_key_hex(&canon_node::keys::generate().verifying_key())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_client_certificate_reads_as_its_policy_user() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config, base) = tls_console_cluster(tmp.path()).await;
    assert!(base.starts_with("https://"), "{base}");
    let policy = tmp.path().join("policy.toml");
    std::fs::write(&policy, readers_policy(&some_key(), &some_key())).unwrap();
    let (code, out, err) = canon(&config, &["policy", "apply", policy.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    let vpc = example("bench/one-vpc.lw");
    let run = ["run", vpc.to_str().unwrap(), "-a", "web", "--wait"];
    let (code, out, err) = canon(&config, &run).await;
    assert_eq!(code, 0, "{out}{err}");

    // Client certificates as `canon cert` makes them: alice, bob and
    // mallory (no user) from the cluster's client CA; alice again from a
    // CA of someone else's.
    let tls_dir = tmp.path().join("dev/tls");
    let certs = tmp.path().join("certs");
    let cert_of = |user: &str| certs.join(format!("client-{user}.crt"));
    let ca = tls_dir.join("client-ca");
    for user in ["alice", "bob", "mallory"] {
        let args = ["cert", "create-client", user, "--ca", ca.to_str().unwrap()];
        let (code, _, err) = canon(
            &config,
            &[&args[..], &["--out", certs.to_str().unwrap()]].concat(),
        )
        .await;
        assert_eq!(code, 0, "{err}");
    }
    let other_ca = tmp.path().join("other-ca");
    let other = tmp.path().join("other");
    let (code, _, err) = canon(
        &config,
        &[
            "cert",
            "create-ca",
            "--kind",
            "client",
            "--out",
            other_ca.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let args = [
        "cert",
        "create-client",
        "alice",
        "--ca",
        other_ca.to_str().unwrap(),
    ];
    let (code, _, err) = canon(
        &config,
        &[&args[..], &["--out", other.to_str().unwrap()]].concat(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let nodes_ca = tls_dir.join("peer-ca/ca.crt");

    // alice's certificate is all she needs: no link, no session.
    let alice = browser_tls(&nodes_ca, Some(&cert_of("alice")));
    let (code, _, body) = get_tls(&alice, &base, "/api/processes", None)
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows[0]["alias"], "web", "{rows}");
    let (code, _, body) = get_tls(&alice, &base, "/api/processes/web", None)
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");

    // bob is a user, but may read nothing: the list is empty for him, and
    // the process is refused, naming what he lacks.
    let bob = browser_tls(&nodes_ca, Some(&cert_of("bob")));
    let (code, _, body) = get_tls(&bob, &base, "/api/processes", None).await.unwrap();
    assert_eq!((code, body.as_str()), (200, "[]"));
    let (code, _, body) = get_tls(&bob, &base, "/api/processes/web", None)
        .await
        .unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("bob") && body.contains("process.status"),
        "{body}"
    );

    // mallory's certificate is good, but no user of the policy.
    let mallory = browser_tls(&nodes_ca, Some(&cert_of("mallory")));
    let (code, _, body) = get_tls(&mallory, &base, "/api/processes", None)
        .await
        .unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("\\\"mallory\\\", who is not a user in the policy"),
        "{body}"
    );

    // Both refusals are in the audit chain, with the certificate they came
    // with.
    for (user, action) in [("mallory", "process.status"), ("bob", "process.status")] {
        let records = support::dev_cluster::canon_json(&config, &["audit", "--user", user]).await;
        let print = fingerprint_of(&cert_of(user));
        let found = records.as_array().into_iter().flatten().any(|r| {
            r["principal"]["cert_fingerprint"] == print.as_str()
                && r["action"] == action
                && r["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("refused"))
        });
        assert!(found, "{user}'s refusal with {print} in {records}");
    }

    // Another CA's certificate never gets an answer.
    let stranger = browser_tls(&nodes_ca, Some(&other.join("client-alice.crt")));
    let refused = get_tls(&stranger, &base, "/api/processes", None).await;
    assert!(refused.is_err(), "{refused:?}");

    // Without a certificate: 401, unless the signed link opened a session.
    let anyone = browser_tls(&nodes_ca, None);
    let (code, _, body) = get_tls(&anyone, &base, "/api/processes", None)
        .await
        .unwrap();
    assert_eq!(code, 401, "{body}");
    let plain = base.replacen("https://", "http://", 1);
    let (code, link, err) = canon(&config, &["console", "--url", &plain]).await;
    assert_eq!(code, 0, "{err}");
    let path = link
        .trim()
        .strip_prefix(base.as_str())
        .unwrap_or_else(|| panic!("an https link: {link}"));
    let (code, headers, _) = get_tls(&anyone, &base, path, None).await.unwrap();
    assert_eq!(code, 303, "{headers:?}");
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .expect("a session cookie");
    let (code, _, body) = get_tls(&anyone, &base, "/api/processes", Some(&cookie))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");

    // Plain HTTP on the same port: metrics and health as before, the
    // console only by way of https.
    let (code, _, metrics) = get(&plain, "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(metrics.contains("canon_"), "{metrics}");
    assert_eq!(get(&plain, "/healthz", None).await.0, 200);
    let (code, headers, _) = get(&plain, "/api/processes", None).await;
    assert_eq!(code, 308);
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.as_str());
    assert_eq!(location, Some("https://console/api/processes"));
    assert_eq!(
        get_tls(&anyone, &base, "/metrics", None).await.unwrap().0,
        200
    );
    cluster.shutdown().await;
}
