//! `jobdbctl backups`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::{Entry, S3};
use crate::cli::Confirmation;
use crate::error::Exit;

/// The backup catalog: list the archives in the backup directory (default), check them
/// completely, or prune old ones.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupsArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the archives, newest first: when and where each was taken, its size and state,
    /// and whether retention may prune it (the default action).
    List(ListArgs),
    /// Like list --verify: read every archive completely; exit 5 if any is damaged.
    Verify(VerifyArgs),
    /// Delete this database's old archives that jobdbctl named itself, by the same rules as
    /// backup --keep/--keep-within. Asks first; without a terminal needs --yes.
    Prune(PruneArgs),
    /// For cron and monitoring: exit 4 with one line when this database's newest archive is
    /// older than --max-age, missing, or damaged (read in full with --verify).
    Check(CheckArgs),
    /// List the restore points recorded in the embedded cluster's WAL archive (wal_archive),
    /// oldest first: those migrate made before changing the schema and backup --mark NAME.
    Points,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// How old the newest archive may be (e.g. 26h for a nightly backup).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_keep_within_arg)]
    pub max_age: std::time::Duration,
    /// Read the newest archive in full (as verify does) instead of its header and end.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The backup directory, or s3://bucket/prefix/ (default: backup_dir from the
    /// configuration).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub keys: crate::cli::keys::KeyArgs,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Also show where each archive came from (see list --wide).
    #[arg(long, short = 'w')]
    pub wide: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Read every archive completely, as verify does (slower: the whole directory is read),
    /// instead of only its header and end; exit 5 if any is damaged.
    #[arg(long)]
    pub verify: bool,
    /// Also show where each archive came from: mode, database and server, profile, schema
    /// and its version, last used job ID (the default columns fit 80 columns).
    #[arg(long, short = 'w')]
    pub wide: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Keep the newest N complete archives of this database.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Keep every complete archive of this database newer than DURATION (e.g. 30d). With
    /// --keep, an archive is kept if either rule keeps it.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_keep_within_arg)]
    pub keep_within: Option<std::time::Duration>,
    /// Show what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirmation: Confirmation,
}

pub const HELP: Entry = Entry {
    command: "backups",
    examples: &[
        ("jobdbctl backups", "the archives in the backup directory, newest first, with their state and whether pruning may remove them"),
        ("jobdbctl backups verify", "read every archive in full; exit 5 naming any damaged one"),
        ("jobdbctl backups prune --keep 14 --dry-run", "what `--keep 14` would delete, changing nothing"),
        ("jobdbctl --quiet backups check --max-age 26h", "from cron or a monitor: silent while last night's backup is there"),
        ("jobdbctl backups prune --dir s3://backups/jobdb/ --keep 14 --yes", "retention in a bucket (also removes uploads of runs killed over a day ago)"),
        ("jobdbctl backups points", "the restore points migrate and backup --mark made in the WAL archive"),
    ],
    exits: &[
        (Exit::Usage, "prune without --keep or --keep-within, a directory that does not exist, or points without wal_archive"),
        (Exit::Refused, "prune not confirmed (no --yes and no terminal)"),
        (Exit::NotReady, "check: the newest archive of this database is older than --max-age, missing or damaged"),
        (Exit::BadArchive, "verify: an archive is damaged, or encrypted and no key was given; points: a damaged restore point record"),
        S3,
    ],
};
