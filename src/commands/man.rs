use std::io::Write;

use anyhow::Context as _;
use serde_json::json;

use crate::cli::install;
use crate::cli::man::ManArgs;
use crate::cli::manpage::render_all;
use crate::error::Exit;
use crate::output::Output;

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
