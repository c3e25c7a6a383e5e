use serde_json::json;

use crate::cli::restart::RestartArgs;
use crate::cluster::ServerState;
use crate::context::Ctx;
use crate::error::Exit;
use crate::provision::{self, bring_up};

pub fn run(args: RestartArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = ctx.cluster("restart")?;
    if cluster.state()? == ServerState::NotInitialized {
        return Err(cluster.no_cluster());
    }
    let was_running = cluster.stop_within(args.mode, args.timeout)?;
    bring_up(
        cluster,
        ctx,
        provision::Request {
            create: false,
            timeout: args.timeout,
            ..Default::default()
        },
    )?;
    let pid = match cluster.state()? {
        ServerState::Running(pid) => Some(pid),
        _ => None,
    };
    if ctx.out.json {
        ctx.out.json(&json!({
            "server": if pid.is_some() { "running" } else { "stopped" },
            "pid": pid,
            "was_running": was_running,
            "data_dir": cluster.pgdata,
        }))?;
    } else {
        let how = if was_running {
            "restarted"
        } else {
            "was not running; started"
        };
        ctx.out.line(format!(
            "server {how} (pid {}) at {}",
            pid.map_or("?".to_string(), |p| p.to_string()),
            cluster.pgdata.display()
        ))?;
    }
    Ok(Exit::Ok)
}
