//! `jobdbctl show-params`: its arguments (their doc comments are the help text), examples and exit
//! statuses.

use crate::cli::help::{Entry, CONNECT};

/// Show the last used job ID, the job-ID high-water mark, schema version, server and data
/// paths, and the effective configuration with where each value came from. Works without a
/// job schema. Passwords are shown as ********.
#[derive(Debug, clap::Args)]
pub struct ShowParamsArgs {
    /// Print only these parameters' values, one per line, for scripts (e.g.
    /// `jobdbctl show-params last_used_job_id`).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

pub const HELP: Entry = Entry {
    command: "show-params",
    examples: &[
        ("jobdbctl show-params", "the last used job ID, schema version, paths, the job-ID high-water mark and every setting with its source"),
        ("jobdbctl show-params last_used_job_id", "just the value, for scripts (step 7 of a downgrade)"),
    ],
    exits: &[CONNECT],
};
