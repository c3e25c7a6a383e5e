//! `jobdbctl init`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};
use crate::error::Exit;

/// Create the embedded cluster (if absent) and the job schema. Idempotent.
///
/// On the embedded cluster the server is started if needed and left running. Refuses a
/// schema that already holds objects jobdbctl did not create.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Create this schema version instead of the latest (to rehearse an upgrade).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub schema_version: Option<i32>,
}

pub const HELP: Entry = Entry {
    command: "init",
    examples: &[
        ("jobdbctl init", "create the embedded cluster if absent, start it, and create the job schema at the latest version"),
        ("jobdbctl --data-dir /srv/jobdb init", "the same in another data directory (start alone refuses one without a cluster)"),
        ("jobdbctl init --schema-version 2", "create an older schema version, to rehearse an upgrade with migrate"),
    ],
    exits: &[
        (Exit::Refused, "the schema holds objects jobdbctl did not create, or the data directory is not empty and not a cluster"),
        CONNECT,
    ],
};
