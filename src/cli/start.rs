//! `jobdbctl start`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::time::Duration;

use crate::cli::help::Entry;
use crate::error::Exit;

/// Start the embedded server and wait until it accepts connections.
///
/// In the default data directory the cluster, its `jobdb` database and the job schema are
/// created on first use. A data directory given with --data-dir, $JOBDBCTL_DATA_DIR or
/// data_dir in the config file must already hold a cluster (else exit 3), so a mistyped path
/// cannot give an empty database whose job IDs restart at 1; create one there with `init`
/// or --create.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Create the cluster if the data directory holds none, as `init` does.
    #[arg(long)]
    pub create: bool,
    /// Give up waiting after this long (exit 6; the server goes on starting).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

pub const HELP: Entry = Entry {
    command: "start",
    examples: &[
        ("jobdbctl start", "start the embedded server; on a fresh machine create the cluster in the default data directory"),
        ("jobdbctl --data-dir /srv/jobdb start --create", "create a cluster in a named data directory (a plain start refuses an empty one)"),
        ("jobdbctl start --timeout 30s || jobdbctl status", "give up waiting after 30 seconds"),
    ],
    exits: &[
        (Exit::Usage, "bad flag, a remote target, or a cluster that belongs to another user"),
        (Exit::Refused, "a data directory given with --data-dir, $JOBDBCTL_DATA_DIR or the config file holds no cluster (use init or --create)"),
        (Exit::Connect, "the server did not start, or was still starting when --timeout ran out"),
    ],
};
