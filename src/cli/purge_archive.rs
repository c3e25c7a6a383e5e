//! `jobdbctl purge-archive`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::cli::Confirmation;
use crate::error::Exit;

/// Drop archived job months up to and including a month.
///
/// Drops <schema>.jobs_archive_YYYY_MM tables (made by `purge-jobs --archive`) whose month is
/// at or before --to, all in one transaction. Lists what it drops and asks on a terminal;
/// without one it needs --yes.
#[derive(Debug, clap::Args)]
pub struct PurgeArchiveArgs {
    /// The last month to drop, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    pub to: String,
    /// List the months that would be dropped and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirmation: Confirmation,
}

pub const HELP: Entry = Entry {
    command: "purge-archive",
    examples: &[
        (
            "jobdbctl purge-archive --to 2025-12 --dry-run",
            "list the archived months up to December 2025 and their sizes",
        ),
        ("jobdbctl purge-archive --to 2025-12 --yes", "drop them"),
    ],
    exits: &[
        (Exit::Usage, "bad month"),
        (Exit::Refused, "not confirmed (no --yes and no terminal)"),
        CONNECT,
    ],
};
