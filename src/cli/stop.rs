//! `jobdbctl stop`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::time::Duration;

use crate::cli::help::Entry;
use crate::cluster::StopMode;
use crate::error::Exit;

/// Stop the embedded server and wait for it to exit.
///
/// When --timeout runs out the server is still running (exit 1); the shutdown it was asked
/// for goes on, and `stop --mode fast` ends a smart shutdown that waits for clients.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// How to shut down.
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: StopMode,
    /// Give up waiting after this long (exit 1).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

pub const HELP: Entry = Entry {
    command: "stop",
    examples: &[
        (
            "jobdbctl stop",
            "roll back open transactions and shut down cleanly",
        ),
        (
            "jobdbctl stop --mode smart --timeout 1m || jobdbctl stop",
            "let clients finish for a minute, then force it",
        ),
    ],
    exits: &[
        (
            Exit::Runtime,
            "the server was still running when --timeout ran out (the shutdown goes on)",
        ),
        (
            Exit::Usage,
            "bad flag, a remote target, or a cluster that belongs to another user",
        ),
    ],
};
