//! `canon status` a page at a time, on a 3-node dev cluster of four shards
//! holding a few hundred processes: the SDK's pages show every process
//! once, in alias order across shards, while processes are created and
//! killed between pages; a bad page token is a clear error; the CLI prints
//! the pages as one table or one JSON array, and `--limit` stops early.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use canon_client::{pb, Client, ClientError};
use canon_node::dev::{DevCluster, DevOptions};
use futures::StreamExt;

mod support;
use support::dev_cluster::canon;

/// Processes seeded before paging.
const SEEDED: usize = 300;

fn empty_composition(dir: &Path) -> pb::CompiledComposition {
    let path = dir.join("empty.lw");
    std::fs::write(&path, "composition\n").unwrap();
    support::dev_cluster::compiled(&path)
}

/// The seeded aliases, created in an order unlike their alias order.
fn seeded_aliases() -> Vec<String> {
    (0..SEEDED)
        .map(|i| format!("m-{:04}", (i * 7919) % 10_000))
        .collect()
}

async fn create_all(client: &Arc<Client>, aliases: &[String], c: &pb::CompiledComposition) {
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    for alias in aliases {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (client, alias, c) = (client.clone(), alias.clone(), c.clone());
        set.spawn(async move {
            let r = client.run(&alias, c, false).await;
            drop(permit);
            r.map_err(|e| format!("{alias}: {e}"))
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
}

/// Kills `alias` once its create job is done: `create_all` does not wait
/// for the jobs, and a kill while one is in progress is refused.
async fn kill_once_created(client: &Client, alias: &str) {
    let what = format!("{alias}'s create job to finish so it can be killed");
    support::dev_cluster::wait_until_async(&what, Duration::from_secs(60), || async {
        match client.kill(alias, false).await {
            Ok(_) => true,
            Err(ClientError::Rejected(why)) if why.contains("still in progress") => false,
            Err(e) => panic!("kill {alias}: {e}"),
        }
    })
    .await;
}

/// (alias, FID) of each row, for order checks.
fn keys(rows: &[pb::ProcessSummary]) -> Vec<(String, String)> {
    rows.iter()
        .map(|p| (p.alias.clone(), p.fid.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_shows_each_process_once_in_order_across_shards_and_the_cli_streams_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(DevOptions {
        tick: Duration::from_secs(60),
        tls: false,
        ..DevOptions::new(tmp.path())
    })
    .await
    .unwrap();
    let config = support::dev_cluster::client_toml(&cluster, tmp.path());
    let client = support::dev_cluster::admin_client(&cluster);
    let empty = empty_composition(tmp.path());
    let seeded = seeded_aliases();
    create_all(&client, &seeded, &empty).await;

    // Page through with creates and kills between pages.
    let mut shown: Vec<pb::ProcessSummary> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    let (early, late) = (["a-early-1", "a-early-2"], ["z-late-1", "z-late-2"]);
    let killed_ahead = ["m-8000", "m-9000"].map(|from| {
        seeded
            .iter()
            .filter(|a| a.as_str() > from)
            .min()
            .unwrap()
            .clone()
    });
    let killed_behind = seeded.iter().min().unwrap().clone();
    loop {
        let page = client.status_page(false, 37, &token).await.unwrap();
        assert!(page.processes.len() <= 37);
        shown.extend(page.processes);
        pages += 1;
        if pages == 2 {
            let new: Vec<String> = early.iter().chain(&late).map(|a| a.to_string()).collect();
            create_all(&client, &new, &empty).await;
            for alias in killed_ahead.iter().chain([&killed_behind]) {
                kill_once_created(&client, alias).await;
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= SEEDED / 37, "{pages} pages");
    let order = keys(&shown);
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted, "pages in alias order, no row twice");
    let aliases: BTreeSet<&str> = shown.iter().map(|p| p.alias.as_str()).collect();
    // Every process that lived throughout, exactly once (no duplicates:
    // the order check above). Killed ones still show while Killing.
    let untouched = seeded
        .iter()
        .filter(|a| !killed_ahead.contains(a) && **a != killed_behind);
    for alias in untouched {
        assert!(aliases.contains(alias.as_str()), "{alias} missing");
    }
    // Created after the cursor passed their place: not shown; ahead of it:
    // shown.
    for alias in early {
        assert!(!aliases.contains(alias), "{alias} is before the cursor");
    }
    for alias in late {
        assert!(aliases.contains(alias), "{alias} is after the cursor");
    }
    let groups: BTreeSet<u64> = shown.iter().map(|p| p.group).collect();
    assert!(groups.len() > 1, "rows from several shards: {groups:?}");

    // A bad token is refused, saying what to pass.
    for bad in ["garbage", "p1:not-a-fid:m-0001"] {
        match client.status_page(false, 10, bad).await {
            Err(ClientError::Invalid(message)) => {
                assert!(message.contains("bad page token"), "{message}");
                assert!(message.contains("next_page_token"), "{message}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }

    // Killed processes: only with `all`.
    let gone = killed_behind.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let every: Vec<pb::ProcessSummary> = client
            .status_pages(true, 100)
            .map(|page| page.unwrap())
            .concat()
            .await;
        let killed = every.iter().any(|p| p.alias == gone && p.state == "Killed");
        if killed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{gone} not killed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live: Vec<pb::ProcessSummary> = client
        .status_pages(false, 100)
        .map(|page| page.unwrap())
        .concat()
        .await;
    assert!(live.iter().all(|p| p.alias != gone));
    let live_aliases: Vec<String> = live.iter().map(|p| p.alias.clone()).collect();

    // The CLI: one JSON array over many pages, in alias order.
    let (code, out, err) = canon(&config, &["status", "--json", "--page-size", "7"]).await;
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let cli_aliases: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alias"].as_str().unwrap().to_string())
        .collect();
    // A process killed earlier may finish killing between the two reads.
    let settled = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|a| !killed_ahead.contains(a))
            .cloned()
            .collect()
    };
    assert_eq!(settled(&cli_aliases), settled(&live_aliases));

    // The table: one report line and header, then a row per process.
    let (code, out, err) = canon(&config, &["status", "--page-size", "11"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Canon Status Report for "), "{out}");
    assert!(lines[1].starts_with("State"), "{out}");
    assert_eq!(out.matches("Canon Status Report").count(), 1, "{out}");
    let table_aliases: Vec<String> = lines[3..]
        .iter()
        .map(|l| {
            // The alias follows the FID.
            let cells: Vec<&str> = l.split_whitespace().collect();
            let fid = cells
                .iter()
                .position(|c| c.len() == 36 && c.matches('-').count() == 4)
                .unwrap_or_else(|| panic!("no FID in {l:?}"));
            cells[fid + 1].to_string()
        })
        .collect();
    assert_eq!(settled(&table_aliases), settled(&live_aliases));

    // --limit: the first N, and a note that there are more.
    let (code, out, err) = canon(&config, &["status", "--json", "--limit", "5"]).await;
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alias"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        live_aliases[..5]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(err.contains("the first 5 processes"), "{err}");
    // A page size out of range is a usage error.
    let (code, _, err) = canon(&config, &["status", "--page-size", "0"]).await;
    assert_eq!(code, 2, "{err}");

    // Old clients (no page size) still get every process at once.
    let whole = client.status_page(false, 0, "").await.unwrap();
    let mut old: Vec<String> = whole.processes.iter().map(|p| p.alias.clone()).collect();
    old.sort();
    assert_eq!(settled(&old), settled(&live_aliases));
    assert_eq!(whole.next_page_token, "");
    let by_alias: BTreeMap<&str, &str> = whole
        .processes
        .iter()
        .map(|p| (p.alias.as_str(), p.fid.as_str()))
        .collect();
    assert_eq!(by_alias.len(), whole.processes.len());
    // The SDK's every-process status reads pages and returns them
    // together: the same rows, in alias order, with no next page.
    let every = client.status("", false).await.unwrap();
    let aliases: Vec<String> = every.processes.iter().map(|p| p.alias.clone()).collect();
    let mut sorted = aliases.clone();
    sorted.sort();
    assert_eq!(aliases, sorted, "pages come in alias order");
    assert_eq!(settled(&aliases), settled(&live_aliases));
    assert_eq!(every.next_page_token, "");

    cluster.shutdown().await;
}
