//! The command line, defined once with clap derive. Man pages and completions are generated
//! from these definitions (`jobdbctl man`, `jobdbctl completions`).

pub mod background_migrations;
pub mod backup;
pub mod backups;
pub mod completions;
pub mod conninfo;
pub mod destroy;
pub mod finalize_migration;
pub mod help;
pub mod init;
pub mod install;
pub mod job_logs;
pub mod keys;
pub mod logs;
pub mod man;
pub mod manpage;
pub mod migrate;
pub mod purge_archive;
pub mod purge_jobs;
pub mod restart;
pub mod restore;
pub mod runlog;
pub mod set_job_counter;
pub mod show_params;
pub mod start;
pub mod status;
pub mod stop;
pub mod unlock_stale_jobs;
pub mod vacuum;
pub mod values;
pub mod verify;
pub mod wal_fetch;
pub mod wal_push;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::db::profile::ProfileChoice;
use crate::error::Exit;

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
#[command(next_help_heading = "Global options")]
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
    crate::config::duration_in_range(text)
}

/// A retention window (`--keep-within`): at least a minute. A zero or tiny window keeps
/// nothing but the archive just written, which no one means; `--keep 0` is refused alike.
pub fn parse_keep_within_arg(text: &str) -> Result<Duration, String> {
    let window = parse_duration_arg(text)?;
    if window < Duration::from_secs(60) {
        return Err(format!(
            "a retention window of {text:?} would delete every older archive; give at least 1m (e.g. 30d)"
        ));
    }
    Ok(window)
}

/// A moment for `restore --to-time`: RFC 3339 with its offset (`2026-12-07T14:02:00Z`,
/// `2026-12-07 15:02:00+01:00`, or as psql prints it: `2026-12-07 14:02:00.5+00`); a time without an offset would mean different moments
/// on different hosts.
pub fn parse_moment_arg(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    let mut normal = match text.split_once(' ') {
        Some((day, time)) => format!("{day}T{time}"),
        None => text.to_string(),
    };
    // PostgreSQL prints whole-hour offsets as +00: what an operator copies from psql.
    let b = normal.as_bytes();
    if b.len() > 3
        && matches!(b[b.len() - 3], b'+' | b'-')
        && b[b.len() - 2..].iter().all(u8::is_ascii_digit)
    {
        normal.push_str(":00");
    }
    chrono::DateTime::parse_from_rfc3339(&normal).map_err(|_| {
        "give a time in RFC 3339 with its offset, e.g. 2026-12-07T14:02:00Z or 2026-12-07T15:02:00+01:00".to_string()
    })
}

/// An LSN as PostgreSQL prints it (`restore --to-lsn`).
pub fn parse_lsn_arg(text: &str) -> Result<String, String> {
    if crate::wal::is_lsn(text) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err("give an LSN as PostgreSQL prints it, e.g. 0/3000148".to_string())
    }
}

/// A bounded wait (`--timeout`): at least a second, since pg_ctl counts whole seconds.
pub fn parse_timeout_arg(text: &str) -> Result<Duration, String> {
    let wait = parse_duration_arg(text)?;
    if wait < Duration::from_secs(1) {
        return Err("the wait must be at least 1s".to_string());
    }
    // pg_ctl counts the wait in an int of seconds; a week is longer than any start or stop.
    if wait > Duration::from_secs(7 * 86_400) {
        return Err(format!("a wait of {text:?} is too long: at most 7d"));
    }
    Ok(wait)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Start(start::StartArgs),
    Stop(stop::StopArgs),
    Restart(restart::RestartArgs),
    Status(status::StatusArgs),
    ShowParams(show_params::ShowParamsArgs),
    Conninfo(conninfo::ConninfoArgs),
    Destroy(destroy::DestroyArgs),
    SetJobCounter(set_job_counter::SetJobCounterArgs),
    UnlockStaleJobs(unlock_stale_jobs::UnlockStaleJobsArgs),
    FinalizeMigration(finalize_migration::FinalizeMigrationArgs),
    BackgroundMigrations(background_migrations::BackgroundMigrationsArgs),
    Migrate(migrate::MigrateArgs),
    Backup(backup::BackupArgs),
    Restore(restore::RestoreArgs),
    Verify(verify::VerifyArgs),
    JobLogs(job_logs::JobLogsArgs),
    PurgeJobs(purge_jobs::PurgeJobsArgs),
    PurgeArchive(purge_archive::PurgeArchiveArgs),
    Vacuum(vacuum::VacuumArgs),
    Logs(logs::LogsArgs),
    Backups(backups::BackupsArgs),
    WalPush(wal_push::WalPushArgs),
    WalFetch(wal_fetch::WalFetchArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

/// `--yes`, defined once for every destructive command.
#[derive(Debug, Args)]
pub struct Confirmation {
    /// Do not ask; needed when there is no terminal.
    #[arg(short, long)]
    pub yes: bool,
}

/// The command line with each command's examples (and, in the long help, exit statuses)
/// after its options: what `--help`, the man pages and the completions are made from.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command()
        .after_help(help::examples_text(help::MAIN_EXAMPLES))
        .after_long_help(format!(
            "{}\n{}",
            help::examples_text(help::MAIN_EXAMPLES),
            help::exits_text(&Exit::TABLE)
        ));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        if let Some(entry) = help::entry(&name) {
            cmd = cmd.mut_subcommand(&name, |sub| {
                sub.after_help(help::examples_text(entry.examples))
                    .after_long_help(format!(
                        "{}\n{}",
                        help::examples_text(entry.examples),
                        help::exits_text(&help::exits_of(entry))
                    ))
            });
        }
    }
    cmd
}

/// Parses the process's arguments with [`command`].
pub fn parse(argv: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(argv)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// How a foreign flag's value is passed to the subcommand: (option, placeholder); an empty
/// option means a positional argument.
type ValueAs = Option<(&'static str, &'static str)>;

/// tractor-dbctl's flags and the subcommand that does the same here.
const FOREIGN_FLAGS: [(&str, &str, ValueAs); 11] = [
    ("--status", "status", None),
    ("--start", "start", None),
    ("--start-for-engine", "start", None),
    ("--stop", "stop", None),
    ("--backup", "backup", Some(("--output", "FILE"))),
    ("--restore", "restore", Some(("", "FILE"))),
    ("--destroy", "destroy", None),
    ("--set-job-counter", "set-job-counter", Some(("", "N"))),
    ("--show-params", "show-params", None),
    ("--purge-jobs", "purge-jobs", None),
    ("--vacuum", "vacuum", None),
];

/// For an operator typing the render-farm tool's flags (`jobdbctl --backup FILE`): the
/// subcommand to use instead, as one line. `flag` is the argument clap did not know; `args`
/// the whole command line, to carry the flag's value over into the suggestion.
pub fn foreign_flag_hint(flag: &str, args: &[String]) -> Option<String> {
    let (name, inline_value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (flag, None),
    };
    let (_, subcommand, takes) = FOREIGN_FLAGS.iter().find(|(f, _, _)| *f == name)?;
    if Cli::command().find_subcommand(subcommand).is_none() {
        return Some(format!(
            "{name} has no equivalent in this jobdbctl (there is no `{subcommand}` command); \
             run `jobdbctl --help` for the commands it has"
        ));
    }
    let mut suggestion = format!("jobdbctl {subcommand}");
    if let Some((option, placeholder)) = takes {
        let prefix = format!("{name}=");
        let value = inline_value
            .or_else(|| {
                args.iter()
                    .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
            })
            .or_else(|| {
                let at = args.iter().position(|a| a == name)?;
                args.get(at + 1).filter(|v| !v.starts_with('-')).cloned()
            })
            .map(|v| shell_word(&v))
            .unwrap_or_else(|| placeholder.to_string());
        if !option.is_empty() {
            suggestion.push(' ');
            suggestion.push_str(option);
        }
        suggestion.push(' ');
        suggestion.push_str(&value);
    }
    Some(format!(
        "{name} is a subcommand here: {suggestion} (see `jobdbctl {subcommand} --help`)"
    ))
}

/// `text` as one shell word, quoted only when it needs to be.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
