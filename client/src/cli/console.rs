//! `canon console [--url URL] [--open]`: the web console's login link —
//! a read token signed now with the user's key (good for the node's
//! freshness window, 5 minutes), which the console turns into a session.
//! Printed; with `--open`, also handed to the desktop's browser.

use clap::Args;

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The console's address (`http://host:9480`). Default: client.toml's
    /// `console` (which `canon dev` writes).
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
            format!("--url {base}: give http://HOST:PORT"),
        ));
    }
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
