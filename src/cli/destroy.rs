//! `jobdbctl destroy`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::{Entry, CONNECT};
use crate::cli::Confirmation;
use crate::error::Exit;

/// Drop the job database: every object of the profile's schema. With --cluster, also remove
/// the embedded cluster. The last used job ID is printed and recorded first as the job-ID
/// high-water mark, which survives (`restore --avoid-id-reuse` continues above it).
/// Afterwards `init` gives an empty database whose job IDs start at 1.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Also stop the embedded server and remove its cluster (<data dir>/psql). Kept beside it:
    /// the backups directory and the job-ID high-water mark. A stopped server is started
    /// briefly to read its last used job ID.
    #[arg(long)]
    pub cluster: bool,
    /// Destroy even while workers are live.
    #[arg(long)]
    pub force: bool,
    /// Show what would be destroyed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a backup archive to PATH first (online; cold when the embedded server is
    /// stopped) and destroy only if it succeeded. backup --keep never deletes this archive.
    #[arg(long, value_name = "PATH")]
    pub backup_first: Option<PathBuf>,
}

pub const HELP: Entry = Entry {
    command: "destroy",
    examples: &[
        ("jobdbctl destroy --dry-run", "show what would be dropped"),
        (
            "jobdbctl destroy --yes --backup-first /srv/backups/before-destroy.tar.gz",
            "back up, then drop the job schema",
        ),
        (
            "jobdbctl stop && jobdbctl destroy --cluster --yes",
            "remove the whole embedded cluster; `init` then starts again at job ID 1",
        ),
    ],
    exits: &[
        (
            Exit::Refused,
            "not confirmed (no --yes and no terminal), or live workers without --force",
        ),
        CONNECT,
        (
            Exit::Locked,
            "with --backup-first: another backup or restore is running",
        ),
    ],
};
