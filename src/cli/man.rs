//! `jobdbctl man`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::Entry;
use crate::error::Exit;

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

pub const HELP: Entry = Entry {
    command: "man",
    examples: &[
        (
            "jobdbctl man --install",
            "the man pages into PREFIX/share/man/man1 (PREFIX: the binary's, e.g. /usr/local)",
        ),
        (
            "jobdbctl man --install --prefix ~/.local",
            "for your user only",
        ),
        (
            "jobdbctl man | man -l -",
            "read the main page without installing",
        ),
    ],
    exits: &[(Exit::Runtime, "a file could not be written")],
};
