//! The web console in a real browser (Debian's chromium, driven over
//! WebDriver by chromium-driver, headless): signed in with `canon
//! console`'s link, it lists the processes; on a process's page, a rogue
//! rule injected into the cloud appears in the drift table and turns to
//! healed while the page stays loaded (a marker set on the page before the
//! rogue change survives: nothing reloaded it).
//!
//! Needs `chromedriver` and `chromium` on PATH (`scripts/test` installs
//! them, and sets CANON_REQUIRE_BROWSER so that CI fails without them);
//! elsewhere the test says it is skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::ClientBuilder;
use serde_json::{json, Value};

mod support;
use support::dev_cluster::canon;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// `name` on PATH, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver(Child, u16);

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `script` (which returns a value) until `ok` accepts it.
async fn wait_for(
    browser: &fantoccini::Client,
    what: &str,
    script: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let v = browser
            .execute(script, vec![])
            .await
            .expect("the script runs");
        if ok(&v) {
            return v;
        }
        let page = browser
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; last {v}; the page: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With `CANON_CONSOLE_SCREENSHOTS=DIR`, saves what the browser shows as
/// `DIR/NAME.png` (the README's pictures come from this test).
async fn keep_screenshot(browser: &fantoccini::Client, name: &str) {
    let Some(dir) = std::env::var_os("CANON_CONSOLE_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("screenshot written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_drift_appear_and_heal_without_reloading() {
    let (Some(driver), Some(chromium)) = (on_path("chromedriver"), on_path("chromium")) else {
        assert!(
            std::env::var_os("CANON_REQUIRE_BROWSER").is_none(),
            "CANON_REQUIRE_BROWSER is set, but chromedriver or chromium is not on PATH"
        );
        eprintln!(
            "skipped: no chromedriver/chromium on PATH (apt install chromium chromium-driver)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, config, base) = support::dev_cluster::signed_console_cluster(tmp.path()).await;
    let sam = example("VPC-sam.lw");
    let (code, out, err) = canon(
        &config,
        &["run", sam.to_str().unwrap(), "-a", "dev-sam", "--wait"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = canon(&config, &["status", "dev-sam", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).expect("status JSON");
    let sg = status["resources"]["dev-sam-sg"]["cloud_id"]
        .as_str()
        .expect("the group is bound")
        .to_string();
    let (code, link, err) = canon(&config, &["console", "--url", &base]).await;
    assert_eq!(code, 0, "{err}");

    let chromedriver = Driver::start(&driver);
    let profile = tmp.path().join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", chromedriver.1))
        .await
        .expect("a browser session");

    // Signed in, the processes page lists the process.
    browser.goto(link.trim()).await.expect("the link opens");
    wait_for(
        &browser,
        "the process listed",
        "return document.querySelector('#processes tr[data-alias=\"dev-sam\"] .state')?.textContent ?? null",
        |v| v == "Running",
    )
    .await;
    keep_screenshot(&browser, "console-processes").await;

    // The process's page; then a rogue rule, without touching the page.
    browser
        .goto(&format!("{base}/#/p/dev-sam"))
        .await
        .expect("the process page");
    wait_for(
        &browser,
        "the process page",
        "return document.querySelector('#drift') ? 'table' : (document.body.innerText.includes('No drift recorded') ? 'none' : null)",
        |v| v == "none",
    )
    .await;
    browser
        .execute("window.__canonMarker = 'still here'; return null", vec![])
        .await
        .expect("marker set");
    let (code, out, err) = canon(
        &config,
        &[
            "dev",
            "rogue",
            "authorize-ingress",
            "--group",
            &sg,
            "--protocol",
            "-1",
            "--cidr",
            "0.0.0.0/0",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let row = wait_for(
        &browser,
        "the drift to appear and be healed",
        "const r = document.querySelector('#drift tr[data-id]'); \
         return r ? [r.querySelector('.status').textContent, r.cells[r.cells.length - 1].textContent, r.textContent] : null",
        |v| v[0] == "healed",
    )
    .await;
    assert!(
        row[1].as_str().is_some_and(|t| t.ends_with(" s")),
        "time to heal shown: {row}"
    );
    assert!(
        row[2].as_str().is_some_and(|t| t.contains("0.0.0.0/0")),
        "{row}"
    );
    let marker = browser
        .execute("return window.__canonMarker ?? null", vec![])
        .await
        .expect("marker read");
    assert_eq!(marker, "still here", "the page was reloaded");
    keep_screenshot(&browser, "console-process").await;
    // The drawing is on the page.
    let drawn = browser
        .execute(
            "const i = document.querySelector('#diagram'); return i ? i.naturalWidth : 0",
            vec![],
        )
        .await
        .expect("diagram read");
    assert!(
        drawn.as_u64().is_some_and(|w| w > 0),
        "the diagram loaded: {drawn}"
    );
    browser.close().await.expect("the browser closes");
    cluster.shutdown().await;
}
