//! `jobdbctl background-migrations`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::cli::Confirmation;
use crate::error::Exit;

/// List, inspect, pause, resume, retry or skip batched background migrations.
#[derive(Debug, clap::Args)]
pub struct BackgroundMigrationsArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Every migration with its status, progress and failed batch jobs.
    List,
    /// One migration and its recent batch jobs, with durations and errors.
    Show {
        /// The migration's id (see `list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Stop an active (or finalizing) migration after its current batch.
    Pause {
        /// The migration's id (see `list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Make a paused migration active again.
    Resume {
        /// The migration's id (see `list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Put failed batch jobs back to pending with fresh attempts and make the migration
    /// active; then run `finalize-migration --id ID`.
    Retry {
        /// The migration's id (see `list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// DANGEROUS: mark every batch job succeeded and the migration finished without running
    /// the remaining batches, as GitLab's runbook does to skip a migration.
    MarkFinished {
        /// The migration's id (see `list`).
        #[arg(value_name = "ID")]
        id: i64,
        #[command(flatten)]
        confirmation: Confirmation,
    },
}

pub const HELP: Entry = Entry {
    command: "background-migrations",
    examples: &[
        (
            "jobdbctl background-migrations list",
            "status, progress and failed batch jobs of every migration",
        ),
        (
            "jobdbctl background-migrations show 7",
            "one migration and its recent batch jobs",
        ),
        (
            "jobdbctl background-migrations retry 7 && jobdbctl finalize-migration --id 7",
            "retry failed batch jobs, then finish",
        ),
    ],
    exits: &[
        (
            Exit::Runtime,
            "the change does not apply to the migration's status",
        ),
        (
            Exit::Usage,
            "unknown id, or a profile without background migrations",
        ),
        (
            Exit::Refused,
            "not confirmed: mark-finished without --yes and no terminal to ask on",
        ),
        CONNECT,
        (Exit::Locked, "a finalizer is running on this migration"),
    ],
};
