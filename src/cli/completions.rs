//! `jobdbctl completions`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use clap_complete::Shell;

use crate::cli::help::Entry;
use crate::error::Exit;

/// Print a shell completion script (bash, zsh, fish, …) to stdout, or install them.
///
/// --install writes bash, zsh and fish completions (or just SHELL's) under PREFIX/share, where
/// bash-completion, zsh and fish look: bash-completion/completions/jobdbctl,
/// zsh/site-functions/_jobdbctl, fish/vendor_completions.d/jobdbctl.fish. PREFIX defaults to
/// the prefix the running binary is installed in (/usr/local for /usr/local/bin/jobdbctl).
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print (or install) completions for.
    #[arg(value_enum, required_unless_present = "install")]
    pub shell: Option<Shell>,
    /// Install into PREFIX/share instead of printing.
    #[arg(long)]
    pub install: bool,
    /// Install under this prefix (default: the running binary's, e.g. /usr/local).
    #[arg(long, value_name = "DIR", requires = "install")]
    pub prefix: Option<PathBuf>,
}

pub const HELP: Entry = Entry {
    command: "completions",
    examples: &[
        (
            "jobdbctl completions --install",
            "bash, zsh and fish completions under the binary's prefix (e.g. /usr/local/share)",
        ),
        (
            "jobdbctl completions --install --prefix ~/.local",
            "for your user only",
        ),
        (
            "jobdbctl completions zsh > ~/.zfunc/_jobdbctl",
            "print one shell's script",
        ),
    ],
    exits: &[(Exit::Runtime, "a file could not be written")],
};
