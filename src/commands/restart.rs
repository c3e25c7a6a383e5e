use std::time::Duration;

use serde_json::json;

use crate::cluster::{ServerState, StopMode};
use crate::context::Ctx;
use crate::error::Exit;
use crate::provision::{self, bring_up};

/// Stop the embedded server (if running) and start it again, e.g. after changing
/// postgresql.conf or the port. Never creates a cluster.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// How to shut down before starting again.
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: StopMode,
    /// Give up waiting for the stop, and then for the start, after this long each (exit 1
    /// while stopping, 6 while starting).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

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
