use std::io::Write;

use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Exit;

/// Print a shell completion script (bash, zsh, fish, …) to stdout.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    // Rendered to memory first: clap_complete panics on a write error such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "jobdbctl", &mut script);
    std::io::stdout()
        .write_all(&script)
        .context("cannot write to stdout")?;
    Ok(Exit::Ok)
}
