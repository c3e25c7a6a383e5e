//! `jobdbctl unlock-stale-jobs`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::error::Exit;

/// Release job and queue locks held by workers that are not live, so their jobs run again.
///
/// Released jobs go back to `queued` with run_at no earlier than now; attempts are kept. Each
/// table is released by one statement that re-checks liveness as it runs, so a worker whose
/// heartbeat lands meanwhile keeps its jobs. On a Graphile Worker database it does what the
/// Worker Pro runbook's SQL does for the detected generation; without Worker Pro's tables
/// nothing says which workers are alive, so only --older-than or --worker may release.
#[derive(Debug, clap::Args)]
pub struct UnlockStaleJobsArgs {
    /// Show what would be released and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Release only the locks of these workers (repeatable).
    #[arg(long = "worker", value_name = "ID", num_args = 1..)]
    pub workers: Vec<String>,
    /// With --worker: release workers that are still live too.
    #[arg(long, requires = "workers")]
    pub force: bool,
    /// Locks older than this count as stale whatever the registry says (e.g. 4h, 90m).
    #[arg(long, value_name = "DURATION", conflicts_with = "workers")]
    pub older_than: Option<String>,
    /// Also delete the registry rows of workers that are not live (native profile).
    #[arg(long)]
    pub prune_workers: bool,
}

pub const HELP: Entry = Entry {
    command: "unlock-stale-jobs",
    examples: &[
        ("jobdbctl unlock-stale-jobs --dry-run", "show which locks would be released"),
        ("jobdbctl unlock-stale-jobs --prune-workers", "release locks of workers that are not live and forget those workers"),
        ("jobdbctl unlock-stale-jobs --worker host1-4711 --force", "release one worker's locks even though it still heartbeats"),
    ],
    exits: &[
        (Exit::Usage, "bad duration, unknown worker, conflicting flags"),
        (Exit::Refused, "a live worker named without --force, or Graphile Worker without Pro and without --older-than/--worker"),
        CONNECT,
    ],
};
