//! `canon console [--url URL] [--open]`: the web console's login link —
//! a read token signed now with the user's key (good for the node's
//! freshness window, 5 minutes), which the console turns into a session.
//! Printed; with `--open`, also handed to the desktop's browser.
//!
//! A node with TLS serves its console over HTTPS (where a browser holding a
//! client certificate needs no link at all) and answers `http://` with a
//! redirect there; given an `http://` address, `canon console` asks it once
//! and prints the `https://` link when it is redirected.

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The console's address (`http://host:9480`, or `https://` where the
    /// node serves TLS; given `http://`, a node that serves TLS is asked and
    /// the link is `https://`). Default: client.toml's `console` (which
    /// `canon dev` writes).
    #[arg(long, env = "CANON_CONSOLE_URL")]
    pub url: Option<String>,
    /// Open the link in a browser (xdg-open, or open on macOS) as well as
    /// printing it.
    #[arg(long)]
    pub open: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn run(args: ConsoleArgs) -> Outcome {
    let (client, cfg) = common::connect_configured(&args.conn)?;
    let base = args.url.or(cfg.console).ok_or_else(|| {
        Failure::new(
            2,
            "no console address: give --url http://HOST:PORT (canond --console serves one; \
             `canon dev` writes it into its client.toml)",
        )
    })?;
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Failure::new(
            2,
            format!("--url {base}: give http://HOST:PORT or https://HOST:PORT"),
        ));
    }
    let base = served_at(&base).await;
    let link = client.console_login_url(&base).await?;
    say!("{link}");
    if args.open {
        open_browser(&link);
    }
    Ok(())
}

/// Hands `link` to the desktop; says so on stderr when none takes it (the
/// link is printed either way).
fn open_browser(link: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener).arg(link).status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("[ WARN ] {opener} did not open the link ({s}); open it yourself"),
        Err(e) => eprintln!("[ WARN ] cannot run {opener} ({e}); open the link yourself"),
    }
}

/// How long asking the console where it is served may take.
const ASK_WITHIN: Duration = Duration::from_secs(3);

/// `base` as the console serves it: `https://` in place of `http://` when
/// the node answers plain HTTP with a redirect to HTTPS (it serves TLS);
/// otherwise (or when it cannot be asked) `base` as given.
async fn served_at(base: &str) -> String {
    let Some(authority) = base
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
    else {
        return base.to_string();
    };
    match tokio::time::timeout(ASK_WITHIN, redirects_to_https(authority)).await {
        Ok(true) => format!("https://{authority}"),
        _ => base.to_string(),
    }
}

/// Whether the server at `authority` redirects a plain `GET /` to HTTPS.
async fn redirects_to_https(authority: &str) -> bool {
    let Ok(mut conn) = tokio::net::TcpStream::connect(authority).await else {
        return false;
    };
    let ask = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if conn.write_all(ask.as_bytes()).await.is_err() {
        return false;
    }
    // The head is all that is needed; the page after it is not read.
    let mut head = vec![0u8; 2048];
    let mut got = 0;
    while got < head.len() {
        match conn.read(&mut head[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        if head[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    is_https_redirect(&String::from_utf8_lossy(&head[..got]))
}

/// Whether a response head is a redirect whose `Location` is `https://`.
fn is_https_redirect(head: &str) -> bool {
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1));
    let redirect = matches!(status, Some("301" | "302" | "307" | "308"));
    redirect
        && lines.any(|l| {
            l.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("location") && value.trim().starts_with("https://")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::is_https_redirect;

    #[test]
    fn only_a_redirect_to_https_counts() {
        let to_https = "HTTP/1.1 308 Permanent Redirect\r\nlocation: https://h:9480/\r\n\r\n";
        assert!(is_https_redirect(to_https));
        assert!(!is_https_redirect(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\r\n"
        ));
        let to_http = "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://h/\r\n\r\n";
        assert!(!is_https_redirect(to_http));
        assert!(!is_https_redirect(""));
    }
}
