//! `jobdbctl purge-jobs`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::error::Exit;

/// Delete finished jobs older than a cut-off, in short batches, optionally moving them into
/// month archive tables first.
///
/// Only finished jobs go (succeeded, failed, cancelled; on graphile-worker, permanently
/// failed jobs), never queued or running ones, never one a worker holds. The finish time is
/// the job's updated_at. Each batch is one transaction well under a second; a killed run
/// loses nothing and a rerun finishes the work. With --archive each purged job is moved, in
/// the same transaction, into <schema>.jobs_archive_YYYY_MM (its UTC finish month), which
/// backups include. Job ids are never reused. One purge at a time (exit 7).
#[derive(Debug, clap::Args)]
pub struct PurgeJobsArgs {
    /// Purge jobs that finished longer ago than this (e.g. 30d, 12h).
    #[arg(
        long,
        value_name = "DURATION",
        required_unless_present = "before",
        conflicts_with = "before"
    )]
    pub older_than: Option<String>,
    /// Purge jobs that finished before this time (RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in UTC).
    #[arg(long, value_name = "TIMESTAMP")]
    pub before: Option<String>,
    /// Finished states to purge, comma-separated (default: all three).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATE")]
    pub state: Vec<FinishedState>,
    /// Move purged jobs into month archive tables instead of only deleting them.
    #[arg(long)]
    pub archive: bool,
    /// Count what would be purged, by month and state, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FinishedState {
    Succeeded,
    Failed,
    Cancelled,
}

pub const HELP: Entry = Entry {
    command: "purge-jobs",
    examples: &[
        (
            "jobdbctl purge-jobs --older-than 90d --dry-run",
            "count the finished jobs older than 90 days and change nothing",
        ),
        (
            "jobdbctl purge-jobs --older-than 90d --archive",
            "move them into month tables jobs_archive_YYYY_MM of the job schema, batch by batch",
        ),
        (
            "jobdbctl purge-jobs --before 2026-01-01T00:00:00Z --state failed,cancelled",
            "only failed and cancelled jobs finished before 2026",
        ),
    ],
    exits: &[
        (Exit::Usage, "bad duration, timestamp or state"),
        (
            Exit::Refused,
            "a table outside the archive references jobs without ON DELETE CASCADE or SET NULL",
        ),
        CONNECT,
        (
            Exit::Locked,
            "another purge-jobs is running on this database",
        ),
    ],
};
