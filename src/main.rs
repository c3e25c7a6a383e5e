mod archive;
mod backup;
mod cli;
mod cluster;
mod commands;
mod config;
mod context;
mod db;
mod error;
mod migrations;
mod output;
mod provision;
mod readiness;
mod restore;
mod target;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use crate::error::{connection_lost, exit_code_of, Exit, CONNECTION_LOST_HINT};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Found before parsing, so a usage error is logged too.
    let mut log = match log_file_arg(&argv).map(|p| open_log(&p)).transpose() {
        Ok(log) => log,
        Err(err) => {
            eprintln!("jobdbctl: error: {}", one_line(&err));
            return ExitCode::from(exit_code_of(&err).code());
        }
    };
    let (code, error) = run(argv.clone());
    if let Some(file) = log.as_mut() {
        let line = log_line(&argv, code, error.as_deref());
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("jobdbctl: error: cannot append to the log file: {e}");
            if code == 0 {
                return ExitCode::from(Exit::Runtime.code());
            }
        }
    }
    ExitCode::from(code)
}

/// Runs the command line; the exit code and the error line printed, if any.
fn run(argv: Vec<OsString>) -> (u8, Option<String>) {
    let cli = match cli::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return (0, None);
            }
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            return (Exit::Usage.code(), Some(first));
        }
    };
    match commands::run(cli) {
        Ok(code) => (code.code(), None),
        Err(err) if is_broken_pipe(&err) => (0, None),
        Err(err) => {
            let exit = exit_code_of(&err);
            let mut line = one_line(&err);
            if exit == Exit::Connect && connection_lost(&err) {
                line = format!("{line}: {CONNECTION_LOST_HINT}");
            }
            eprintln!("jobdbctl: error: {line}");
            (exit.code(), Some(line))
        }
    }
}

/// `--log-file FILE` or `--log-file=FILE`, wherever it stands (it is a global option).
fn log_file_arg(argv: &[OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--log-file" {
            found = it.next().map(PathBuf::from);
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--log-file=")) {
            found = Some(PathBuf::from(v));
        }
    }
    found
}

/// Opens the log for appending without following a link, creating it with mode 0600;
/// refuses (exit 3) anything but a regular file of this user with one name, since cron
/// runs as root and the log's directory may be writable by others.
fn open_log(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                error::failure(
                    Exit::Refused,
                    format!(
                        "refusing to write log file {}: it is a symbolic link; give the path of a regular file",
                        path.display()
                    ),
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot open log file {}", path.display()))
            }
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat log file {}", path.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != euid || meta.nlink() != 1 {
        return Err(error::failure(
            Exit::Refused,
            format!(
                "refusing to write log file {}: it is not a regular file of this user with a single name; remove it or choose another path",
                path.display()
            ),
        ));
    }
    Ok(file)
}

/// `<RFC 3339 time> jobdbctl[<pid>] <args>: exit <code>[: <error line>]`. The value of
/// --database-url is left out: it may hold a password.
fn log_line(argv: &[OsString], code: u8, error: Option<&str>) -> String {
    let mut words = Vec::new();
    let mut hide_next = false;
    for a in argv.iter().skip(1) {
        let a = a.to_string_lossy();
        if hide_next {
            words.push("<hidden>".to_string());
            hide_next = false;
        } else if a == "--database-url" {
            hide_next = true;
            words.push(a.into_owned());
        } else if a.starts_with("--database-url=") {
            words.push("--database-url=<hidden>".to_string());
        } else {
            words.push(output::printable(&a, 200));
        }
    }
    let mut line = format!(
        "{} jobdbctl[{}] {}: exit {code}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        std::process::id(),
        words.join(" ")
    );
    if let Some(e) = error {
        line.push_str(": ");
        line.push_str(&output::printable(e, 2000));
    }
    line.push('\n');
    line
}

/// The whole context chain on one line, so logs and cron mail get one line per failure.
fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

/// A reader of our stdout went away (`jobdbctl status | head`): not an error. A broken pipe
/// to the server is one, so only I/O errors outside a database error count.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    !connection_lost(err)
        && err.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
}
