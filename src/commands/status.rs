use crate::archive::crypt::Keys;
use crate::backup;
use crate::backup::catalog::Depth;
use crate::cli::status::StatusArgs;
use crate::context::Ctx;
use crate::db;
use crate::error::Exit;
use crate::job_ids::high_water;
use crate::status;

pub fn run(args: StatusArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    // A stopped embedded server is reported by connect() itself, without retries.
    let mut db = match ctx.connect() {
        Ok(db) => db,
        Err(e) if crate::db::exit_code_of(&e) == Exit::Connect => {
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
    let mut report = report;
    report.newest_backup = newest_backup(ctx);
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

/// This database's newest archive in the backup directory, read no further than its header:
/// status stays cheap, and a catalog that cannot be read is not status's failure.
fn newest_backup(ctx: &Ctx) -> Option<status::NewestBackup> {
    let dir = backup::directory(ctx, None);
    if !crate::storage::is_url(&dir) && !dir.is_dir() {
        return None;
    }
    let item = backup::newest(ctx, &dir, &Keys::default(), Depth::Header).ok()??;
    let taken_at = item.taken_at()?;
    Some(status::NewestBackup {
        archive: item.path().display().to_string(),
        taken_at,
        age_seconds: (chrono::Utc::now() - taken_at)
            .to_std()
            .map_or(0, |a| a.as_secs()),
    })
}
