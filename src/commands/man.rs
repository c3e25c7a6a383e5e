use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Exit;

/// Generate man pages: the main page to stdout, or every page into --out-dir.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write jobdbctl.1 and one jobdbctl-<command>.1 per subcommand here.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> anyhow::Result<Exit> {
    let pages = render_all()?;
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, body) in pages {
                let path = dir.join(name);
                std::fs::write(&path, body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        None => {
            let (_, body) = pages.into_iter().next().context("no man page rendered")?;
            std::io::stdout()
                .write_all(&body)
                .context("cannot write to stdout")?;
        }
    }
    Ok(Exit::Ok)
}

/// Every page, main page first: (file name, roff).
fn render_all() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut main = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render(&mut main).context("cannot render man page")?;
    main.extend_from_slice(exit_status_section().as_bytes());
    pages.push(("jobdbctl.1".to_string(), main));
    for sub in cmd.get_subcommands() {
        let name = format!("jobdbctl-{}", sub.get_name());
        let mut body = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .render(&mut body)
            .with_context(|| format!("cannot render {name}"))?;
        pages.push((format!("{name}.1"), body));
    }
    Ok(pages)
}

fn exit_status_section() -> String {
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for (exit, meaning) in crate::error::Exit::TABLE {
        s.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            exit.code(),
            meaning.replace('-', "\\-")
        ));
    }
    s
}
