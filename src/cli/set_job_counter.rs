//! `jobdbctl set-job-counter`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::error::Exit;

/// Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a
/// downgrade restore). Refuses N below the highest existing job ID, the current counter or
/// the job-ID high-water mark (IDs would be reused) unless --force.
#[derive(Debug, clap::Args)]
pub struct SetJobCounterArgs {
    /// The new last used job ID (0: the next job gets 1).
    #[arg(value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub n: i64,
    /// Allow IDs to be reused: N below the highest existing job ID, the current counter or
    /// the job-ID high-water mark.
    #[arg(long)]
    pub force: bool,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub const HELP: Entry = Entry {
    command: "set-job-counter",
    examples: &[
        ("jobdbctl set-job-counter 120000", "the next job gets ID 120001"),
        ("jobdbctl set-job-counter 5000 --dry-run", "show the old and new values and change nothing"),
    ],
    exits: &[
        (Exit::Refused, "N is below the highest job ID or the current counter (IDs would be reused) without --force, or the schema is newer than this jobdbctl"),
        CONNECT,
    ],
};
