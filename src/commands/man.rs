use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::cli::install;
use crate::cli::manpage::render_all;
use crate::error::Exit;
use crate::output::Output;

/// Generate the man pages: the main page to stdout, every page into --out-dir, or install them
/// where `man` finds them.
///
/// --install writes jobdbctl.1 and a jobdbctl-COMMAND.1 per command into
/// PREFIX/share/man/man1. PREFIX defaults to the prefix the running binary is installed in
/// (/usr/local for /usr/local/bin/jobdbctl), which man also derives from PATH.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write jobdbctl.1 and one jobdbctl-COMMAND.1 per command here.
    #[arg(long, value_name = "DIR", conflicts_with = "install")]
    pub out_dir: Option<PathBuf>,
    /// Install every page into PREFIX/share/man/man1.
    #[arg(long)]
    pub install: bool,
    /// Install under this prefix (default: the running binary's, e.g. /usr/local).
    #[arg(long, value_name = "DIR", requires = "install")]
    pub prefix: Option<PathBuf>,
}

pub fn run(args: ManArgs, out: Output) -> anyhow::Result<Exit> {
    let pages = render_all();
    let (base, sub) = match (args.install, args.out_dir) {
        (true, _) => (install::prefix(args.prefix)?, install::MAN_DIR),
        (false, Some(dir)) => (dir, ""),
        (false, None) => {
            let (_, body) = pages.into_iter().next().context("no man page rendered")?;
            std::io::stdout()
                .write_all(body.as_bytes())
                .context("cannot write to stdout")?;
            return Ok(Exit::Ok);
        }
    };
    let mut written = Vec::new();
    for (name, body) in &pages {
        written.push(install::write_file(&base, sub, name, body.as_bytes())?);
    }
    if out.json {
        out.json(&json!({ "installed": written }))?;
    } else if args.install {
        out.line(format!(
            "installed {} man pages in {} (try `man jobdbctl`)",
            written.len(),
            base.join(sub).display()
        ))?;
    }
    Ok(Exit::Ok)
}
