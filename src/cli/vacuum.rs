//! `jobdbctl vacuum`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::cli::Confirmation;
use crate::error::Exit;

/// VACUUM the job tables and report dead tuples and size before and after.
///
/// A plain VACUUM runs alongside the workers. --full rewrites each table to give space back
/// to the operating system, holding an exclusive lock that stops every reader and writer of
/// that table meanwhile: it says how long, asks (or needs --yes), and refuses while live
/// workers exist unless --force.
#[derive(Debug, clap::Args)]
pub struct VacuumArgs {
    /// Also ANALYZE, refreshing the planner's statistics.
    #[arg(long)]
    pub analyze: bool,
    /// VACUUM FULL: rewrite the tables under an exclusive lock.
    #[arg(long)]
    pub full: bool,
    /// Only this table of the job schema (default: the jobs, queue and worker tables).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// With --full: go ahead although live workers exist.
    #[arg(long, requires = "full")]
    pub force: bool,
    #[command(flatten)]
    pub confirmation: Confirmation,
}

pub const HELP: Entry = Entry {
    command: "vacuum",
    examples: &[
        (
            "jobdbctl vacuum --analyze",
            "VACUUM (ANALYZE) the job tables, with dead tuples and sizes before and after",
        ),
        (
            "jobdbctl vacuum --full --table jobs --yes",
            "rewrite the jobs table under an exclusive lock (workers stopped)",
        ),
    ],
    exits: &[
        (Exit::Usage, "a table that is not one of the job tables"),
        (
            Exit::Refused,
            "--full without --yes, or with live workers and no --force",
        ),
        CONNECT,
    ],
};
