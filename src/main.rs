mod archive;
mod background_migrations;
mod backup;
mod cli;
mod cluster;
mod commands;
mod config;
mod context;
mod db;
mod destroy;
mod error;
mod housekeeping;
mod job_ids;
mod output;
mod params;
mod provision;
mod restore;
mod safe_fs;
mod schema_upgrade;
mod shared;
mod status;
mod storage;
mod target;
mod wal;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::cli::runlog;
use crate::db::{connection_lost, exit_code_of};
use crate::error::{Exit, CONNECTION_LOST_HINT};

fn main() -> ExitCode {
    keep_freed_buffers();
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Found before parsing, so a usage error is logged too.
    let mut log = match runlog::log_file_arg(&argv)
        .map(|p| runlog::open_log(&p))
        .transpose()
    {
        Ok(log) => log,
        Err(err) => {
            eprintln!("jobdbctl: error: {}", one_line(&err));
            return ExitCode::from(exit_code_of(&err).code());
        }
    };
    let (code, error) = run(&argv);
    if let Some(file) = log.as_mut() {
        let line = runlog::log_line(&argv, code, error.as_deref());
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("jobdbctl: error: cannot append to the log file: {e}");
            if code == 0 {
                return ExitCode::from(Exit::Runtime.code());
            }
        }
    }
    ExitCode::from(code)
}

/// Backup and restore pass every byte through buffers of a few MiB. glibc returns freed
/// buffers that big to the kernel, and the next one costs a page fault and a zeroed page per
/// 4 KiB (a tenth of a backup's CPU time); below 32 MiB they stay in the heap and are reused.
fn keep_freed_buffers() {
    // SAFETY: mallopt only changes allocator tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Runs the command line: the exit code, and the error line printed, if any.
fn run(argv: &[OsString]) -> (u8, Option<String>) {
    let cli = match cli::parse(argv) {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(hint) = foreign_flag(&e, argv) {
                eprintln!("jobdbctl: error: {hint}");
                return (Exit::Usage.code(), Some(hint));
            }
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

/// An unknown flag that the render-farm tool's `tractor-dbctl` has: the subcommand to use.
fn foreign_flag(err: &clap::Error, argv: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(flag)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cli::foreign_flag_hint(flag, &args)
}

/// The whole context chain on one line, so logs and cron mail get one line per failure.
fn one_line(err: &anyhow::Error) -> String {
    output::terminal_safe(&format!("{err:#}").replace('\n', " ")).into_owned()
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
