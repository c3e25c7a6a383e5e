//! `jobdbctl conninfo`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::Entry;
use crate::error::Exit;

/// Print how an engine or psql connects to the job database: for the embedded cluster its
/// Unix socket (a libpq URL and a psql command that works as printed) and, when
/// listen_addresses is set, its TCP address; for any other server its URL without the
/// password.
///
/// The embedded cluster's superuser is postgres, trusted on the socket, whose directory
/// (the data directory, mode 0700) only the server user and root can enter: run psql as the
/// server user (as printed). Over TCP every role needs a password (scram-sha-256): set one
/// through the socket, e.g. `ALTER ROLE postgres PASSWORD '…'`, or create a role for the
/// engine. docs/schema.md says how an engine enqueues jobs.
#[derive(Debug, clap::Args)]
pub struct ConninfoArgs {}

pub const HELP: Entry = Entry {
    command: "conninfo",
    examples: &[
        (
            "jobdbctl conninfo",
            "the socket URL, a psql command that works as printed, and the TCP URL when enabled",
        ),
        (
            "DATABASE_URL=\"$(jobdbctl conninfo --json | jq -r .socket_url)\" engine",
            "hand it to an engine",
        ),
    ],
    exits: &[(Exit::Usage, "bad configuration")],
};
