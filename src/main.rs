mod archive;
mod backup;
mod cli;
mod cluster;
mod commands;
mod config;
mod context;
mod db;
mod error;
mod help;
mod highwater;
mod housekeeping;
mod install;
mod job_log_dirs;
mod manpage;
mod migrations;
mod output;
mod provision;
mod readiness;
mod restore;
mod target;

use std::process::ExitCode;

use crate::error::{connection_lost, exit_code_of, Exit, CONNECTION_LOST_HINT};

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(hint) = foreign_flag(&e) {
                eprintln!("jobdbctl: error: {hint}");
                return ExitCode::from(Exit::Usage.code());
            }
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code.code()),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let exit = exit_code_of(&err);
            let mut line = one_line(&err);
            if exit == Exit::Connect && connection_lost(&err) {
                line = format!("{line}: {CONNECTION_LOST_HINT}");
            }
            eprintln!("jobdbctl: error: {line}");
            ExitCode::from(exit.code())
        }
    }
}

/// An unknown flag that the render-farm tool's `tractor-dbctl` has: the subcommand to use.
fn foreign_flag(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(flag)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args: Vec<String> = std::env::args().collect();
    cli::foreign_flag_hint(flag, &args)
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
