//! `jobdbctl restore`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::{Entry, CONNECT, S3};
use crate::cli::Confirmation;
use crate::error::Exit;

/// Restore a backup archive. An online archive is loaded into a staging schema, checked
/// while loading, and swapped for the job schema in one transaction; a cold archive replaces
/// the embedded cluster's data directory; a physical archive is recovered with the archived
/// WAL (to a point with --to-time, --to-name, --to-lsn or --to-end) beside the data
/// directory and swapped in. A failed or interrupted restore leaves the database as it was.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive (a path or an s3://bucket/prefix/NAME URL), - to read it from standard
    /// input, or latest: the newest complete online or cold archive of this database in the
    /// backup directory (a file named latest: ./latest). With a --to-* target and no ARCHIVE: the
    /// newest physical archive that ends before the target.
    #[arg(value_name = "ARCHIVE", required_unless_present_any = ["to_time", "to_name", "to_lsn", "to_end"])]
    pub archive: Option<PathBuf>,
    /// With latest, or a --to-* target and no ARCHIVE: the backup directory (or
    /// s3://bucket/prefix/) to look in (default: backup_dir from the configuration).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Point-in-time restore of the embedded cluster to the moment T (RFC 3339 with its
    /// offset, e.g. 2026-12-07T14:02:00Z): every transaction committed by then, none after.
    #[arg(long, value_name = "T", value_parser = crate::cli::parse_moment_arg, group = "to")]
    pub to_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Point-in-time restore to the restore point NAME (the newest of that name: `migrate`
    /// makes before-migrate-VERSION, `backup --mark NAME` others; `backups points` lists them).
    #[arg(long, value_name = "NAME", group = "to")]
    pub to_name: Option<String>,
    /// Point-in-time restore to just after the WAL position LSN (e.g. 0/3000148).
    #[arg(long, value_name = "LSN", value_parser = crate::cli::parse_lsn_arg, group = "to")]
    pub to_lsn: Option<String>,
    /// Point-in-time restore to the end of the archived WAL: everything the server archived
    /// (a running server first archives what it has written).
    #[arg(long, group = "to")]
    pub to_end: bool,
    /// After a point-in-time restore, remove the replaced data directory once the restored
    /// cluster has started, instead of keeping it as psql.replaced-TIME beside psql/.
    #[arg(long)]
    pub remove_old: bool,
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Replace a job schema that has jobs (they are lost; jobs created after the backup are
    /// gone), or a schema of that name that holds no jobs. Only the job schema is ever
    /// replaced: jobdb or graphile_worker by the archive's profile, or the one --schema
    /// names; an archive of any other schema is refused unless --schema names it.
    #[arg(long)]
    pub force: bool,
    /// Raise the restored job counter to the job-ID high-water mark, so no job ID handed out
    /// since the backup is handed out again (also after `destroy`: the mark survives it).
    #[arg(long)]
    pub avoid_id_reuse: bool,
    /// Make every check a restore makes before it changes anything (the whole archive, live
    /// workers, jobs without --force, the schema, the lock) and say what would be replaced;
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub keys: crate::cli::keys::KeyArgs,
}

pub const HELP: Entry = Entry {
    command: "restore",
    examples: &[
        ("jobdbctl restore /srv/backups/jobs.tar.gz --yes", "replace the job schema with the archive's"),
        ("jobdbctl restore jobs.tar.gz --yes --force --avoid-id-reuse", "replace one holding jobs, keeping the higher job counter"),
        ("ssh vault 'cat jobs.tar.gz' | jobdbctl restore - --yes", "from standard input"),
        ("jobdbctl restore latest --yes", "the newest complete archive of this database in the backup directory"),
        ("jobdbctl restore latest --dir /srv/backups --yes --force", "the same from another directory, over a database that has jobs"),
        ("jobdbctl restore latest --dry-run", "check everything and say what would be replaced, changing nothing"),
        ("jobdbctl restore latest --dir s3://backups/jobdb/ --yes", "the newest archive in a bucket"),
        ("jobdbctl restore jobs.tar.gz.age --identity /root/.config/jobdbctl/backup.key --yes", "an encrypted archive, with its age identity"),
        ("jobdbctl restore --to-time 2026-12-07T14:02:00Z --yes --force", "the embedded cluster as it was at 14:02 UTC (needs wal_archive and physical backups)"),
        ("jobdbctl restore --to-name before-migrate-42 --yes --force", "as it was just before `migrate` applied version 42"),
    ],
    exits: &[
        (Exit::Usage, "no archive at the path given (the message says where archives of this database are)"),
        (Exit::Refused, "live workers, jobs without --force, not confirmed, missing roles or dependent objects, an archive of a schema other than the job schema, a data directory that holds no cluster, an identity or passphrase file others may read; a point-in-time target before the base backup's end or after the last archived transaction (the message names the recoverable window)"),
        (Exit::BadArchive, "the archive is invalid, corrupt or hostile, or encrypted and the key is missing or wrong; a WAL segment missing from the archive between the base backup and the newest segment (named); nothing was changed"),
        CONNECT,
        S3,
        (Exit::Locked, "another backup or restore is running"),
    ],
};
