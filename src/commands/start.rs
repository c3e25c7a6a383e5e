use serde_json::json;

use crate::cli::start::StartArgs;
use crate::cluster::{Cluster, ServerState};
use crate::context::Ctx;
use crate::db::schema;
use crate::error::Exit;
use crate::provision::{self, bring_up};

pub fn run(args: StartArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = ctx.cluster("start")?;
    let up = bring_up(
        cluster,
        ctx,
        provision::Request {
            create: args.create,
            timeout: args.timeout,
            announce: false,
        },
    )?;
    if up.created {
        let mut db = ctx.connect()?;
        schema::init(&mut db, ctx.native_schema(), schema::latest_version())?;
    }
    report(cluster, ctx, up)
}

/// The whole report on stdout (stderr has only the progress of a first start).
fn report(cluster: &Cluster, ctx: &Ctx, up: provision::BroughtUp) -> anyhow::Result<Exit> {
    let started = up.started;
    let pid = match cluster.state()? {
        ServerState::Running(pid) => Some(pid),
        _ => None,
    };
    if ctx.out.json {
        ctx.out.json(&json!({
            "server": if pid.is_some() { "running" } else { "stopped" },
            "pid": pid,
            "was_running": !started,
            "created": up.created,
            "data_dir": cluster.pgdata,
            "socket_dir": cluster.socket_dir(),
            "port": cluster.port,
        }))?;
    } else if let Some(pid) = pid {
        if up.created {
            ctx.out.line(format!(
                "created the embedded cluster at {} with job schema {} at version {}",
                cluster.pgdata.display(),
                ctx.native_schema(),
                schema::latest_version()
            ))?;
        }
        let how = if started {
            "started"
        } else {
            "already running"
        };
        ctx.out
            .line(format!("server {how} (pid {pid}): {}", cluster.describe()))?;
    }
    Ok(Exit::Ok)
}
