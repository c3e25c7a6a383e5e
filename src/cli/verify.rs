//! `jobdbctl verify`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::{Entry, S3};
use crate::error::Exit;

/// Check an archive completely without a database. Exit 5 when anything is wrong.
///
/// Checks the structure, every entry's size and SHA-256, the row counts, that no entry
/// could be written outside a restore's target directory (absolute or `..` paths, links,
/// devices, special entries), and everything restore checks before it changes anything that
/// needs no database: a known profile, names PostgreSQL can hold, table data that is COPY
/// text, and a schema.json that creates every table and column the data is loaded into.
/// Restore makes the same checks before it creates anything, so after exit 0 it can fail
/// only on what takes a server to tell: a statement of schema.json the server rejects, a
/// value a column's type rejects, missing roles, live workers, jobs, a held lock.
///
/// It does not make an untrusted archive safe to restore: schema.json holds SQL statements
/// that restore runs as the connecting role, as a pg_dump file does, and verify does not
/// check what else they do. Restore only archives you trust.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The archive (a path or an s3://bucket/prefix/NAME URL), or - to read it from standard
    /// input.
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    #[command(flatten)]
    pub keys: crate::cli::keys::KeyArgs,
}

pub const HELP: Entry = Entry {
    command: "verify",
    examples: &[
        ("jobdbctl verify /srv/backups/jobs.tar.gz", "check every entry's size and checksum; no database needed"),
        ("for f in /srv/backups/*.tar.gz; do jobdbctl --quiet verify \"$f\" || echo \"$f\"; done", "list the bad ones"),
        ("jobdbctl verify --identity backup.key jobs.tar.gz.age", "an encrypted archive"),
    ],
    exits: &[
        (Exit::Usage, "an identity or passphrase file that cannot be read or is not a key"),
        (Exit::Refused, "an identity or passphrase file that others may read"),
        (Exit::BadArchive, "the archive is invalid, corrupt or hostile; encrypted with no key given, to another key, or its ciphertext tampered with; an object in a bucket that changed while it was read"),
        S3,
    ],
};
