use crate::context::Ctx;
use crate::db;
use crate::error::Exit;
use crate::job_ids::high_water;
use crate::status;

/// Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers,
/// unfinished background migrations.
///
/// Running jobs, locks (by holder, grouped by process where the ids tell), workers and
/// background migrations are always exact on the native schema. On a native jobs table over
/// 10 MB the finished states, and queued jobs once about 100,000 are queued (their index
/// passes 5 MB), are estimated from planner statistics and marked with ~. Graphile Worker's
/// buckets (due now, scheduled later, retrying, failed, locked) are exact while its jobs
/// table is under 10 MB; above that they are estimated from a sample of the table and marked
/// with ~, and its job locks, which no index holds, are counted only by --check and --exact
/// (a read of the whole table): plain status then says the locks were not counted and
/// readiness is unknown. --exact counts everything.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Exit 4 unless ready to upgrade: server up, no unfinished background migration, no
    /// stale lock (counted exactly, even where that reads a whole Graphile Worker jobs
    /// table).
    #[arg(long)]
    pub check: bool,
    /// Count every state exactly (a full scan of the jobs table) instead of estimating the
    /// big ones from planner statistics or a sample.
    #[arg(long)]
    pub exact: bool,
}

pub fn run(args: StatusArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    // A stopped embedded server is reported by connect() itself, without retries.
    let mut db = match ctx.connect() {
        Ok(db) => db,
        Err(e) if crate::error::exit_code_of(&e) == Exit::Connect => {
            return report_down(ctx, args.check, &e)
        }
        Err(e) => return Err(e),
    };
    let report = status::assess(
        &mut db,
        ctx,
        status::Request {
            exact: args.exact,
            check: args.check,
        },
    )?;
    // Cheap: one read, and a one-row update only when the counter passed the mark. Status
    // never creates the mark's table on a server; it only updates one that exists.
    if let (Some(schema), Some(last)) = (&report.schema, report.last_used_job_id) {
        high_water::note(ctx, &mut db, schema, last, false);
    }
    if ctx.out.json {
        ctx.out.json(&report)?;
    } else {
        status::report::print(ctx, &report)?;
    }
    Ok(if args.check && report.ready_to_upgrade != Some(true) {
        Exit::NotReady
    } else {
        Exit::Ok
    })
}

fn report_down(ctx: &Ctx, check: bool, err: &anyhow::Error) -> anyhow::Result<Exit> {
    let why = format!("{err:#}");
    // A server that refuses our credentials is up: saying "down" would send the operator to
    // restart a healthy server.
    let server = if db::authentication_failed(err) {
        "up, but authentication failed"
    } else {
        "down"
    };
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "server": server,
            "target": ctx.target.describe(),
            "error": why,
            "ready_to_upgrade": false,
        }))?;
    } else {
        ctx.out
            .line(format!("server: {server} ({})", ctx.target.describe()))?;
    }
    eprintln!("jobdbctl: error: {why}");
    Ok(if check { Exit::NotReady } else { Exit::Connect })
}
