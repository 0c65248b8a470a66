//! `canon graph FILE.lw | ALIAS [-o OUT] [--format svg|json|dot]`: draws a
//! composition as the network it declares (canon-graph's containment
//! layout). A file is compiled here, with no cluster; an alias is read
//! from the cluster and drawn with what the cloud shows laid over it:
//! open drift red and dashed, missing resources hatched, Internet ingress
//! nobody declared as red edges.

use std::path::{Path, PathBuf};

use canon_graph::{to_dot, to_json, to_svg, Graph};
use canon_lang::{compile_file, Options};
use canon_model::Fid;
use clap::{Args, ValueEnum};

use super::common::{self, Conn, Failure, Outcome};

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// A composition (`.lw` file, compiled here) or a process's alias
    /// (read from the cluster, with drift shown).
    pub source: String,
    /// Write the drawing to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// svg, json (nodes with a parent and a kind, and edges) or dot
    /// (Graphviz). Default: from OUT's extension, else svg.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Svg,
    Json,
    Dot,
}

/// The FID a file's drawing is made with: fixed, so the same file always
/// draws the same picture (ids in JSON and DOT included).
const FILE_FID: &str = "00000000-0000-4000-8000-000000000000";

pub async fn run(args: GraphArgs) -> Outcome {
    let format = args
        .format
        .unwrap_or_else(|| format_of(args.output.as_deref()));
    let graph = if is_file(&args.source) {
        from_file(Path::new(&args.source))?
    } else {
        from_cluster(&args.source, &args.conn).await?
    };
    let text = match format {
        Format::Svg => to_svg(&graph),
        Format::Dot => to_dot(&graph),
        Format::Json => format!("{:#}\n", to_json(&graph)),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", path.display()))),
        None => {
            use std::io::Write as _;
            // A closed stdout (`canon graph x | head`) is not worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// A source is a file when one exists at that path or it is named `.lw`
/// (then a missing file is reported as such, not looked up as an alias).
fn is_file(source: &str) -> bool {
    Path::new(source).is_file() || source.ends_with(".lw")
}

fn format_of(output: Option<&Path>) -> Format {
    match output.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("dot" | "gv") => Format::Dot,
        _ => Format::Svg,
    }
}

fn from_file(file: &Path) -> Result<Graph, Failure> {
    let out = compile_file(file, Options::default())
        .map_err(|e| Failure::new(1, format!("cannot read {}: {e}", file.display())))?;
    let Some(compiled) = out.compiled.as_ref().filter(|_| !out.has_errors()) else {
        return Err(Failure::new(1, out.render().trim_end().to_string()));
    };
    let fid: Fid = FILE_FID
        .parse()
        .map_err(|e| Failure::new(1, format!("internal: {e}")))?;
    let desired = compiled
        .instantiate(fid)
        .map_err(|e| Failure::new(1, format!("{}: {e}", file.display())))?;
    Ok(Graph::from_desired(&desired))
}

async fn from_cluster(alias: &str, conn: &Conn) -> Result<Graph, Failure> {
    let client = common::connect(conn)?;
    let status = client.status(alias, false).await?;
    let history = client.history(alias, 0, 0).await?;
    if !status.observe_error.is_empty() {
        eprintln!(
            "[ WARN ] the cloud could not be observed ({}): drawn with recorded drift only",
            status.observe_error
        );
    }
    Graph::from_replies(&status, &history).map_err(|e| Failure::new(1, format!("{alias}: {e}")))
}
