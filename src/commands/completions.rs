use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap_complete::Shell;
use serde_json::json;

use crate::cli::completions::CompletionsArgs;
use crate::cli::install;
use crate::error::{failure, Exit};
use crate::output::Output;

pub fn run(args: CompletionsArgs, out: Output) -> anyhow::Result<Exit> {
    if !args.install {
        let shell = args.shell.context("no shell given")?;
        std::io::stdout()
            .write_all(&script(shell))
            .context("cannot write to stdout")?;
        return Ok(Exit::Ok);
    }
    let prefix = install::prefix(args.prefix)?;
    let shells = match args.shell {
        Some(shell) => vec![shell],
        None => vec![Shell::Bash, Shell::Zsh, Shell::Fish],
    };
    let mut written = Vec::new();
    for shell in shells {
        let (dir, name) = match shell {
            Shell::Bash => ("share/bash-completion/completions", "jobdbctl"),
            Shell::Zsh => ("share/zsh/site-functions", "_jobdbctl"),
            Shell::Fish => ("share/fish/vendor_completions.d", "jobdbctl.fish"),
            other => {
                return Err(failure(
                    Exit::Usage,
                    format!("{other} has no standard completion directory; use `jobdbctl completions {other} > FILE` and load FILE from your profile"),
                ))
            }
        };
        written.push(install::write_file(&prefix, dir, name, &script(shell))?);
    }
    report(out, &written)
}

fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::cli::command();
    // Rendered to memory first: clap_complete panics on a write error such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "jobdbctl", &mut script);
    script
}

fn report(out: Output, written: &[PathBuf]) -> anyhow::Result<Exit> {
    if out.json {
        out.json(&json!({ "installed": written }))?;
    } else {
        for path in written {
            out.line(format!("installed {}", path.display()))?;
        }
    }
    Ok(Exit::Ok)
}
