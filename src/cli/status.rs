//! `jobdbctl status`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::Entry;
use crate::error::Exit;

/// Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers,
/// unfinished background migrations.
///
/// Running jobs, locks (by holder, grouped by process where the ids tell), workers and
/// background migrations are always exact on the native schema. On a native jobs table over
/// 10 MB the finished states, and queued jobs once about 100,000 are queued (their index
/// passes 5 MB), are estimated from planner statistics and marked with ~. Graphile Worker's
/// buckets (due now, scheduled later, retrying, failed, locked) are exact while its jobs
/// table is under 10 MB; above that they are estimated from a sample of the table and marked
/// with ~, and its job locks, which no index holds, are counted only by --check and --exact
/// (a read of the whole table): plain status then says the locks were not counted and
/// readiness is unknown. --exact counts everything.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Exit 4 unless ready to upgrade: server up, no unfinished background migration, no
    /// stale lock (counted exactly, even where that reads a whole Graphile Worker jobs
    /// table).
    #[arg(long)]
    pub check: bool,
    /// Count every state exactly (a full scan of the jobs table) instead of estimating the
    /// big ones from planner statistics or a sample.
    #[arg(long)]
    pub exact: bool,
}

pub const HELP: Entry = Entry {
    command: "status",
    examples: &[
        (
            "jobdbctl status",
            "server, schema, jobs, locks, workers and background migrations",
        ),
        (
            "jobdbctl status --check && jobdbctl migrate",
            "upgrade only when nothing blocks it",
        ),
        (
            "jobdbctl --json status | jq .jobs",
            "the job counts as JSON",
        ),
    ],
    exits: &[
        (
            Exit::NotReady,
            "with --check: not ready to upgrade (the output says why), or the server is down",
        ),
        (Exit::Connect, "without --check: the server is down"),
    ],
};
