//! `jobdbctl wal-push`: its arguments (their doc comments are the help text), examples and
//! exit statuses.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::help::Entry;
use crate::error::Exit;

/// Archive one WAL file: what the embedded server's archive_command runs (jobdbctl start
/// sets it when wal_archive is configured). Exits 0 only once the file is durably stored,
/// compressed and checksummed, in the archive directory or bucket, and read back; a file
/// archived before with the same contents is success, with other contents a failure (never
/// replaced). Reads no configuration file: a bucket's settings and keys come from the
/// environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server.
#[derive(Debug, clap::Args)]
pub struct WalPushArgs {
    /// The WAL file (%p in archive_command).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The WAL archive: a directory or an s3://bucket/prefix/ URL.
    #[arg(long, value_name = "DIR|URL")]
    pub to: PathBuf,
    /// Give up (exit 1) after this long, so a hung disk cannot hang the archiver.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

pub const HELP: Entry = Entry {
    command: "wal-push",
    examples: &[(
        "archive_command = '/usr/local/bin/jobdbctl wal-push --to /var/lib/jobdbctl/wal %p'",
        "what jobdbctl start writes into the server's configuration",
    )],
    exits: &[
        (Exit::Runtime, "not stored: the archive has other contents under the name, or it cannot be written (the server retries)"),
        (Exit::Usage, "not a WAL file name, the archive directory does not exist, or no keys for the bucket in the environment"),
    ],
};
