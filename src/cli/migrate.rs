//! `jobdbctl migrate`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::time::Duration;

use crate::cli::help::{Entry, CONNECT};
use crate::cli::parse_duration_arg;
use crate::error::Exit;

/// Apply pending schema versions, each in its own transaction. Refuses a version whose
/// background migration is unfinished (unless --finalize) and, before a breaking version,
/// tells workers (pg_notify 'jobdb_migrate') and waits until no live worker runs an older
/// version.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Stop at this version (default: the newest this jobdbctl knows).
    #[arg(long, value_name = "N")]
    pub to: Option<i32>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for old workers before a breaking version (default 4h, config
    /// max_migration_wait).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub max_wait: Option<Duration>,
    /// When the wait runs out, release the old workers' jobs and proceed instead of failing.
    #[arg(long)]
    pub force_after_wait: bool,
    /// Finish a required background migration first instead of refusing.
    #[arg(long)]
    pub finalize: bool,
    /// How long to wait for another migrator to finish before exiting 7.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, default_value = "30s")]
    pub lock_wait: Duration,
}

pub const HELP: Entry = Entry {
    command: "migrate",
    examples: &[
        ("jobdbctl migrate --dry-run", "show the pending versions and what gates them"),
        ("jobdbctl migrate --finalize", "apply them, finishing background migrations they need"),
        ("jobdbctl migrate --max-wait 30m --force-after-wait", "wait up to 30 minutes for old workers, then release their jobs"),
    ],
    exits: &[
        (Exit::Refused, "stale locks, an unfinished background migration, old workers still live, a schema newer than this jobdbctl, or (with wal_archive) a restore point that cannot be made: the server does not archive its WAL yet"),
        CONNECT,
        (Exit::Locked, "another migrate holds the lock past --lock-wait"),
    ],
};
