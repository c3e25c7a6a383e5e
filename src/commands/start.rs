use std::time::Duration;

use serde_json::json;

use crate::cluster::{Cluster, ServerState};
use crate::context::Ctx;
use crate::db::schema;
use crate::error::Exit;
use crate::provision::{self, bring_up};

/// Start the embedded server and wait until it accepts connections.
///
/// In the default data directory the cluster, its `jobdb` database and the job schema are
/// created on first use. A data directory given with --data-dir, $JOBDBCTL_DATA_DIR or
/// data_dir in the config file must already hold a cluster (else exit 3), so a mistyped path
/// cannot give an empty database whose job IDs restart at 1; create one there with `init`
/// or --create.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Create the cluster if the data directory holds none, as `init` does.
    #[arg(long)]
    pub create: bool,
    /// Give up waiting after this long (exit 6; the server goes on starting).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::cli::parse_timeout_arg)]
    pub timeout: Duration,
}

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
