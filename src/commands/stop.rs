use serde_json::json;

use crate::cli::stop::StopArgs;
use crate::cluster::ServerState;
use crate::context::Ctx;
use crate::error::Exit;

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
