//! A moto server for the AWS adapter's tests: found via `MOTO_SERVER`, the
//! workspace's `.venv`, or `PATH`; started once per test binary on a free
//! 127.0.0.1 port; reset between tests; stopped when the test process exits
//! (a watchdog shell kills it once its parent is gone). Missing moto is a
//! test failure with install instructions, never a skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const INSTALL: &str = "moto_server not found. Install it with:\n  \
    python3 -m venv .venv && .venv/bin/pip install \"moto[server]\"\n\
    (at the workspace root), or set MOTO_SERVER to the moto_server binary.";

fn find_moto() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Sends one HTTP/1.1 request and returns the status code.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(code)
}

struct Server {
    port: u16,
}

fn start() -> Server {
    let bin = find_moto().unwrap_or_else(|| panic!("{INSTALL}"));
    let port = free_port();
    let parent = std::process::id();
    // The watchdog stops moto when this test process is gone.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & M=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $M 2>/dev/null; do sleep 1; done; kill $M 2>/dev/null"
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    // Reap the watchdog whenever it exits.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(200) = http(port, "GET", "/moto-api/") {
            return Server { port };
        }
        if Instant::now() > deadline {
            panic!(
                "moto_server ({}) did not answer on port {port} within 60s",
                bin.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();
static LOCK: Mutex<()> = Mutex::new(());

/// Exclusive use of the shared moto server, freshly reset.
pub struct Moto {
    pub endpoint: String,
    _guard: MutexGuard<'static, ()>,
}

/// Takes the shared moto server (starting it on first use) and resets it.
pub fn moto() -> Moto {
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let server = SERVER.get_or_init(start);
    let code = http(server.port, "POST", "/moto-api/reset").expect("reset moto");
    assert_eq!(code, 200, "moto reset answered {code}");
    Moto {
        endpoint: format!("http://127.0.0.1:{}", server.port),
        _guard: guard,
    }
}

/// SDK configuration for moto with explicit test credentials and region.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "canon-tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}
