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

use std::process::ExitCode;

use clap::Parser;

use crate::error::{exit_code_of, Exit};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
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
            eprintln!("jobdbctl: error: {}", one_line(&err));
            ExitCode::from(exit_code_of(&err).code())
        }
    }
}

/// The whole context chain on one line, so logs and cron mail get one line per failure.
fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
