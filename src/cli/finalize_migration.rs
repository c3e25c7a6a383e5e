//! `jobdbctl finalize-migration`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::time::Duration;

use crate::cli::help::{Entry, CONNECT};
use crate::cli::parse_duration_arg;
use crate::error::Exit;

/// Run the remaining batches of a batched background migration until it is finished.
///
/// Identify the migration as GitLab does (JOB_CLASS TABLE COLUMN [JOB_ARGUMENTS_JSON]), by
/// --id, or take every unfinished one with --all.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["job_class", "id", "all"])))]
pub struct FinalizeMigrationArgs {
    /// Job class, e.g. CopyColumnUsingBackgroundMigrationJob.
    #[arg(value_name = "JOB_CLASS", requires_all = ["table", "column"])]
    pub job_class: Option<String>,
    /// Table name as recorded in the migration (unqualified means the job schema).
    #[arg(value_name = "TABLE")]
    pub table: Option<String>,
    /// Batching column, e.g. id.
    #[arg(value_name = "COLUMN")]
    pub column: Option<String>,
    /// Job arguments as JSON, e.g. '[["id"],["id_convert_to_bigint"]]' (default []).
    #[arg(value_name = "JOB_ARGUMENTS_JSON")]
    pub job_arguments: Option<String>,
    /// The migration's id (see `background-migrations list`).
    #[arg(long, value_name = "N", conflicts_with_all = ["job_class", "all"])]
    pub id: Option<i64>,
    /// Every unfinished migration, in id order; stops at the first that fails.
    #[arg(long, conflicts_with = "job_class")]
    pub all: bool,
    #[command(flatten)]
    pub options: FinalizeOptionsArgs,
}

/// How a finalize run batches and paces its work; `migrate --finalize` takes the same.
#[derive(Debug, Clone, clap::Args)]
pub struct FinalizeOptionsArgs {
    /// Values of the batching column per batch transaction, to start with (default: the
    /// migration's batch_size).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub batch_size: Option<i32>,
    /// Rows per UPDATE statement inside a batch (default: the migration's sub_batch_size).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub sub_batch_size: Option<i32>,
    /// Pause between sub-batches in milliseconds (default: the migration's pause_ms).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub pause_ms: Option<u32>,
    /// Adapt the batch size so a batch transaction takes about this long, like GitLab's
    /// batch optimizer; 0 keeps the batch size fixed.
    #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = parse_duration_arg)]
    pub target_batch_time: Duration,
    /// Longest any statement of a batch may run; a batch that hits it is halved and retried.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg)]
    pub statement_timeout: Duration,
    /// Longest a batch waits for a lock held by the engine; then it is halved and retried.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg)]
    pub lock_timeout: Duration,
    /// Pause before a batch while a standby replays more than this far behind (checked on
    /// the primary's pg_stat_replication); resume by itself. Batches also wait while an
    /// anti-wraparound autovacuum works on the migrated table.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration_arg)]
    pub max_replication_lag: Duration,
}

pub const HELP: Entry = Entry {
    command: "finalize-migration",
    examples: &[
        ("jobdbctl finalize-migration --all", "finish every unfinished background migration, in id order"),
        ("jobdbctl finalize-migration --id 7 --pause-ms 0", "finish one, without pauses (maintenance window)"),
        ("jobdbctl finalize-migration CopyColumnUsingBackgroundMigrationJob events id '[[\"id\"],[\"id_convert_to_bigint\"]]'", "name it as GitLab does"),
    ],
    exits: &[
        (Exit::Runtime, "a batch failed three times, or the migration was paused"),
        (Exit::Usage, "unknown migration, bad arguments, or a profile without background migrations"),
        CONNECT,
        (Exit::Locked, "another run is finalizing this migration"),
    ],
};
