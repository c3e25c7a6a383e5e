//! `jobdbctl job-logs`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use std::path::PathBuf;

use crate::cli::help::Entry;
use crate::cli::Confirmation;
use crate::error::Exit;

/// List, and with --delete remove, the engine's per-job log directories of jobs whose ID is
/// above N: the IDs a restored (or new) job database hands out again, whose old log files
/// the engine would otherwise append to. Symbolic links are never followed: a linked user
/// or job directory is reported and skipped. Needs no database.
#[derive(Debug, clap::Args)]
pub struct JobLogsArgs {
    /// The engine's log directory (else job_logs_dir in jobdbctl.toml).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Entries of jobs whose ID is above N: the last used job ID that restore or show-params
    /// printed (0 for a new, empty job database).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub above: i64,
    /// Where a job's logs are below DIR: `{user}` stands for any name, `{jid}` for the job
    /// ID; the entry with `{jid}` (last) is the one listed and removed. Default
    /// `{user}/J{jid}` (Tractor), else job_logs_pattern in jobdbctl.toml.
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Remove them (asks on a terminal; -y to not ask).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: show what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirmation: Confirmation,
}

pub const HELP: Entry = Entry {
    command: "job-logs",
    examples: &[
        (
            "jobdbctl job-logs --dir /var/log/engine --above 1000",
            "list the log directories of jobs above ID 1000 (DIR/<user>/J<id>)",
        ),
        (
            "jobdbctl job-logs --dir /var/log/engine --above 1000 --delete --yes",
            "remove them before IDs 1001 and up are handed out again",
        ),
        (
            "jobdbctl job-logs --dir /logs --above 1000 --pattern 'J{jid}' --json",
            "another layout, as JSON",
        ),
    ],
    exits: &[
        (Exit::Usage, "bad pattern, or the directory does not exist"),
        (
            Exit::Refused,
            "--delete not confirmed (no --yes and no terminal)",
        ),
    ],
};
