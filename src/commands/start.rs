use serde_json::json;

use crate::cluster::{Cluster, ServerState};
use crate::context::Ctx;
use crate::db::schema;
use crate::error::Exit;
use crate::provision::bring_up;

/// Start the embedded server (creating the cluster and job schema on first use).
#[derive(Debug, clap::Args)]
pub struct StartArgs {}

pub fn run(_args: StartArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = ctx.cluster("start")?;
    let created = bring_up(cluster, ctx)?;
    if created {
        let mut db = ctx.connect()?;
        schema::init(&mut db, ctx.native_schema(), schema::latest_version())?;
        ctx.out.info(format!(
            "created job schema {:?} at version {}",
            ctx.native_schema(),
            schema::latest_version()
        ));
    }
    report(cluster, ctx)
}

fn report(cluster: &Cluster, ctx: &Ctx) -> anyhow::Result<Exit> {
    let pid = match cluster.state()? {
        ServerState::Running(pid) => Some(pid),
        _ => None,
    };
    if ctx.out.json {
        ctx.out.json(&json!({
            "server": if pid.is_some() { "running" } else { "stopped" },
            "pid": pid,
            "data_dir": cluster.pgdata,
            "socket_dir": cluster.socket_dir(),
            "port": cluster.port,
        }))?;
    } else if let Some(pid) = pid {
        ctx.out.line(format!(
            "server running (pid {pid}) at {}",
            cluster.pgdata.display()
        ))?;
    }
    Ok(Exit::Ok)
}
