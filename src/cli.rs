//! The command line, defined once with clap derive. Man pages and completions are generated
//! from these definitions (`jobdbctl man`, `jobdbctl completions`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::db::profile::ProfileChoice;

#[derive(Debug, Parser)]
#[command(
    name = "jobdbctl",
    version,
    about = "Operate the PostgreSQL database behind a job engine",
    long_about = "Operate the PostgreSQL database behind a job engine: run its embedded server, \
                  report its status, back it up and restore it, destroy it, set its job-ID counter, \
                  finish batched background migrations and release jobs held by dead workers.\n\n\
                  Without --database-url (or JOBDBCTL_DATABASE_URL, or PGHOST/PGPORT) jobdbctl \
                  manages an embedded PostgreSQL cluster in <data dir>/psql.",
    after_long_help = exit_codes_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// PostgreSQL URL of the job database (else JOBDBCTL_DATABASE_URL, PGHOST/PGPORT, the
    /// config file, or the embedded cluster). Keep passwords in PGPASSWORD or ~/.pgpass.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory holding jobdbctl.toml (else JOBDBCTL_CONFIGDIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub configdir: Option<PathBuf>,
    /// Data directory of the embedded cluster (else JOBDBCTL_DATA_DIR, data_dir in config).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Schema profile; detected from the catalog when not given.
    #[arg(long, global = true, value_enum)]
    pub profile: Option<ProfileChoice>,
    /// Schema holding the job tables (default: jobdb, or graphile_worker).
    #[arg(long, global = true, value_name = "NAME")]
    pub schema: Option<String>,
    /// A worker is live while its last heartbeat is newer than this (default 5m).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub stale_after: Option<Duration>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (for cron).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log each SQL statement to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Append one line per run to FILE (for cron): RFC 3339 time, the command, the exit
    /// code and the error line. Created with mode 0600; a link or another user's file is
    /// refused (exit 3) before the command runs.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

pub fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{e}; use forms like 30s, 90m, 4h"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(commands::init::InitArgs),
    Start(commands::start::StartArgs),
    Stop(commands::stop::StopArgs),
    Status(commands::status::StatusArgs),
    ShowParams(commands::show_params::ShowParamsArgs),
    Destroy(commands::destroy::DestroyArgs),
    SetJobCounter(commands::set_job_counter::SetJobCounterArgs),
    UnlockStaleJobs(commands::unlock_stale_jobs::UnlockStaleJobsArgs),
    FinalizeMigration(commands::finalize_migration::FinalizeMigrationArgs),
    BackgroundMigrations(commands::background_migrations::BackgroundMigrationsArgs),
    Migrate(commands::migrate::MigrateArgs),
    Backup(commands::backup::BackupArgs),
    Restore(commands::restore::RestoreArgs),
    Verify(commands::verify::VerifyArgs),
    Backups(commands::backups::BackupsArgs),
    Completions(commands::completions::CompletionsArgs),
    Man(commands::man::ManArgs),
}

/// `--yes`, defined once for every destructive command.
#[derive(Debug, Args)]
pub struct Confirmation {
    /// Do not ask; needed when there is no terminal.
    #[arg(short, long)]
    pub yes: bool,
}

fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (exit, meaning) in crate::error::Exit::TABLE {
        text.push_str(&format!("  {}  {meaning}\n", exit.code()));
    }
    text
}
