//! `jobdbctl backup`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::archive::{Codec, Mode};
use crate::cli::help::{Entry, CONNECT, S3};
use crate::error::Exit;

/// Back up the job database to an archive (.tar.gz by default, .tar.zst or .tar with
/// --compression): an online, consistent snapshot of the job schema (default), or a cold copy
/// of the embedded cluster's data directory.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// online: consistent snapshot through SQL while the engine runs (any server); cold:
    /// stop the embedded server, archive its data directory, start it again if it was running;
    /// physical: a base backup of the running embedded cluster for point-in-time restore
    /// (needs wal_archive; see restore --to-time).
    #[arg(long, value_enum, default_value_t = Mode::Online)]
    pub mode: Mode,
    /// Archive to write, or - for standard output. A directory gets a timestamped name
    /// inside it. Default: a timestamped name in backup_dir (config). An existing file of
    /// the same name is replaced only if it is a regular file of this user. An
    /// s3://bucket/prefix/ URL is a directory in object storage (a last segment that is an
    /// archive's name, e.g. s3://b/p/pre-upgrade.tar.zst, is a name; an existing object is
    /// never overwritten).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// After a successful backup, keep only the newest N complete archives of this database
    /// that jobdbctl named itself in the destination directory, and delete older ones.
    /// Archives written to a name you chose and destroy --backup-first archives are never
    /// deleted; damaged ones are reported and kept.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Like --keep, but keep every such archive newer than DURATION (e.g. 30d). With both,
    /// an archive is kept if either rule keeps it.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_keep_within_arg)]
    pub keep_within: Option<std::time::Duration>,
    /// Mark the archive pinned: --keep, --keep-within and backups prune never delete it,
    /// even under a name jobdbctl chose. (An archive written to a file name you chose is
    /// always pinned.)
    #[arg(long)]
    pub pin: bool,
    /// Write the archive even when the destination's free space looks too small.
    #[arg(long)]
    pub no_space_check: bool,
    /// gzip (.tar.gz), zstd (.tar.zst: faster, under half the size) or none (.tar).
    /// Default: compression in jobdbctl.toml, else gzip. verify and restore read all three.
    #[arg(long, value_enum, value_name = "CODEC")]
    pub compression: Option<Codec>,
    /// Make no archive: write a restore point named NAME in the embedded cluster's WAL (it
    /// needs wal_archive) and record it beside the archived WAL, for a later restore
    /// --to-name NAME. `jobdbctl backups points` lists them.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["mode", "output", "keep", "keep_within", "pin", "no_space_check", "compression"])]
    pub mark: Option<String>,
    #[command(flatten)]
    pub seal: crate::cli::keys::SealArgs,
}

pub const HELP: Entry = Entry {
    command: "backup",
    examples: &[
        ("jobdbctl backup", "an online backup into the backup directory"),
        ("jobdbctl --quiet backup --output /srv/backups --keep 14", "nightly from cron: only failures print"),
        ("jobdbctl backup --output - | ssh vault 'cat > jobs.tar.gz'", "stream it elsewhere"),
        ("jobdbctl --quiet backup --output s3://backups/jobdb/ --keep 14", "off the host, into a bucket (AWS S3, MinIO, SeaweedFS, Ceph)"),
        ("jobdbctl backup --compression zstd", "a .tar.zst: faster, and under half the size"),
        ("jobdbctl backup --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "encrypted: a .age file that `age -d -i KEY` turns back into the archive"),
        ("jobdbctl backup --mark before-deploy", "no archive: a restore point in the archived WAL (wal_archive)"),
    ],
    exits: &[
        (Exit::Refused, "refused by a safety check, before any archive is written: not enough free space (both figures printed; --no-space-check), rows hidden by row-level security, a link or another user's file at the output's name or its .partial, an object already at the name in a bucket, a schema newer than this jobdbctl, a data directory that holds no cluster; with --mark or --mode physical, a server not archiving its WAL"),
        CONNECT,
        S3,
        (Exit::Locked, "another backup or restore is running"),
    ],
};
