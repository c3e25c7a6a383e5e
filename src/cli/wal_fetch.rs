//! `jobdbctl wal-fetch`: its arguments (their doc comments are the help text), examples and
//! exit statuses.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::help::Entry;
use crate::error::Exit;

/// Restore one archived WAL file: what the embedded server's restore_command runs during
/// recovery. The file is checked against its checksum before it appears under DEST. A file
/// that is not archived exits 1 without a word: that is how recovery finds the archive's
/// end. Reads no configuration file: a bucket's settings and keys come from the
/// environment (AWS_*, JOBDBCTL_S3_ADDRESSING), which jobdbctl start gives the server.
#[derive(Debug, clap::Args)]
pub struct WalFetchArgs {
    /// The WAL file's name (%f in restore_command).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to put it (%p in restore_command).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// The WAL archive: a directory or an s3://bucket/prefix/ URL.
    #[arg(long, value_name = "DIR|URL")]
    pub from: PathBuf,
    /// Give up (exit 1) after this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

pub const HELP: Entry = Entry {
    command: "wal-fetch",
    examples: &[(
        "restore_command = '/usr/local/bin/jobdbctl wal-fetch --from /var/lib/jobdbctl/wal %f %p'",
        "how recovery reads the archive",
    )],
    exits: &[
        (
            Exit::Runtime,
            "not archived (silent), or it cannot be read or written",
        ),
        (
            Exit::BadArchive,
            "the archived file is damaged (checksum or compression)",
        ),
        (Exit::Usage, "not a WAL file name"),
    ],
};
