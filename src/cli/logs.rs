//! `jobdbctl logs`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::Entry;
use crate::error::Exit;

/// Show, follow or purge the embedded server's log files.
///
/// The embedded cluster logs to <data dir>/psql/log/, rotated daily or at 100 MB, and its
/// start-up messages to <data dir>/psql/jobdbctl-server.log. Works with the server stopped.
/// A remote server's logs belong to that server: read them where it keeps them.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Show the last N lines (default 100; 0 for all).
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Keep printing lines as the server writes them (Ctrl-C stops).
    #[arg(long, conflicts_with = "purge")]
    pub follow: bool,
    /// Only lines logged within this long (e.g. 1h).
    #[arg(long, value_name = "DURATION", conflicts_with = "purge")]
    pub since: Option<String>,
    /// Remove rotated log files older than --older-than (never the current one).
    #[arg(long, requires = "older_than")]
    pub purge: bool,
    /// With --purge: remove files last written longer ago than this (e.g. 30d).
    #[arg(long, value_name = "DURATION", requires = "purge")]
    pub older_than: Option<String>,
    /// With --purge: list the files that would be removed and remove nothing.
    #[arg(long, requires = "purge")]
    pub dry_run: bool,
}

pub const HELP: Entry = Entry {
    command: "logs",
    examples: &[
        (
            "jobdbctl logs --tail 50",
            "the embedded server's last 50 log lines",
        ),
        (
            "jobdbctl logs --since 1h --follow",
            "the last hour, then follow new lines",
        ),
        (
            "jobdbctl logs --purge --older-than 30d",
            "remove log files older than 30 days",
        ),
    ],
    exits: &[(
        Exit::Usage,
        "a remote target (its logs are the server's), or a bad duration",
    )],
};
