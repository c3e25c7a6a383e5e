//! `jobdbctl restart`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::time::Duration;

use crate::cli::help::Entry;
use crate::cluster::StopMode;
use crate::error::Exit;

/// Stop the embedded server (if running) and start it again, e.g. after changing
/// postgresql.conf or the port. Never creates a cluster.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// How to shut down before starting again.
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: StopMode,
    /// Give up waiting for the stop, and then for the start, after this long each (exit 1
    /// while stopping, 6 while starting).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

pub const HELP: Entry = Entry {
    command: "restart",
    examples: &[
        (
            "jobdbctl restart",
            "after editing postgresql.conf in the cluster",
        ),
        (
            "jobdbctl restart --mode smart --timeout 5m",
            "wait up to 5 minutes for clients to disconnect first",
        ),
    ],
    exits: &[
        (
            Exit::Runtime,
            "the server was still running when --timeout ran out while stopping",
        ),
        (
            Exit::Usage,
            "bad flag, a remote target, or a cluster that belongs to another user",
        ),
        (Exit::Refused, "there is no cluster to restart"),
        (
            Exit::Connect,
            "the server did not start again, or was still starting when --timeout ran out",
        ),
    ],
};
