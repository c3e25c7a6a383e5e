use std::time::Duration;

use serde_json::json;

use crate::cluster::{ServerState, StopMode};
use crate::context::Ctx;
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

pub fn run(args: StopArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = ctx.cluster("stop")?;
    if cluster.state()? == ServerState::NotInitialized {
        return Err(cluster.no_cluster());
    }
    let stopped = cluster.stop_within(args.mode, args.timeout)?;
    if ctx.out.json {
        ctx.out
            .json(&json!({ "server": "stopped", "was_running": stopped }))?;
    } else if stopped {
        ctx.out.line("server stopped")?;
    } else {
        ctx.out.line("server was not running")?;
    }
    Ok(Exit::Ok)
}
