use serde_json::json;

use crate::cluster::StopMode;
use crate::context::Ctx;
use crate::error::Exit;

/// Stop the embedded server and wait for it to exit.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// fast: roll back open transactions (default); immediate: abort, recovery on next start;
    /// smart: wait for clients to disconnect.
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: StopMode,
}

pub fn run(args: StopArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = ctx.cluster("stop")?;
    let stopped = cluster.stop(args.mode)?;
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
