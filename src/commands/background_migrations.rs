//! `background-migrations`: look at and steer batched background migrations from the CLI,
//! as GitLab's admin area and runbook do.

use serde_json::json;

use crate::background_migrations::steer::{self, Changed, Retry};
use crate::background_migrations::{self as migrations, report};
use crate::cli::background_migrations::{Action, BackgroundMigrationsArgs};
use crate::context::Ctx;
use crate::db::batched_migrations::{self as bm, status, Tables};
use crate::db::status::migration_status_name;
use crate::db::Db;
use crate::error::Exit;

/// How many of the newest batch jobs `show` lists (failed ones are always listed).
const RECENT_JOBS: i64 = 20;

pub fn run(args: BackgroundMigrationsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut db = ctx.connect()?;
    let profile = match args.action {
        Action::List | Action::Show { .. } => ctx.profile(&mut db)?,
        _ => ctx.writable_profile(&mut db)?,
    };
    profile.require_native("background-migrations")?;
    let tables = Tables::new(&profile.schema);
    match args.action {
        Action::List => list(ctx, &mut db, &tables),
        Action::Show { id } => show(ctx, &mut db, &tables, id),
        Action::Pause { id } => {
            let from = [status::ACTIVE, status::FINALIZING];
            let c = steer::change_status(&mut db, &tables, id, &from, status::PAUSED)?;
            report(ctx, id, &c, None)
        }
        Action::Resume { id } => {
            let c = steer::change_status(&mut db, &tables, id, &[status::PAUSED], status::ACTIVE)?;
            report(ctx, id, &c, None)
        }
        Action::Retry { id } => match steer::retry(&mut db, &tables, &profile.schema, id)? {
            Retry::NothingFailed(c) => {
                ctx.out.info(format!(
                    "background migration {id} has no failed batch jobs"
                ));
                report(ctx, id, &c, Some("failed_jobs_reset"))
            }
            Retry::Reset(c) => {
                report(ctx, id, &c, Some("failed_jobs_reset"))?;
                ctx.out.info(format!(
                    "run `jobdbctl finalize-migration --id {id}` to run them now"
                ));
                Ok(Exit::Ok)
            }
        },
        Action::MarkFinished { id, confirmation } => {
            let (schema, yes) = (&profile.schema, confirmation.yes);
            let c = steer::mark_finished(ctx, &mut db, &tables, schema, id, yes)?;
            report(ctx, id, &c, Some("jobs_marked_succeeded"))
        }
    }
}

fn list(ctx: &Ctx, db: &mut Db, tables: &Tables) -> anyhow::Result<Exit> {
    let migrations = bm::list(db, tables)?;
    if ctx.out.json {
        ctx.out.json(&migrations)?;
    } else {
        ctx.out.line(report::list(&migrations))?;
    }
    Ok(Exit::Ok)
}

fn show(ctx: &Ctx, db: &mut Db, tables: &Tables, id: i64) -> anyhow::Result<Exit> {
    let m = migrations::find(db, tables, id)?;
    let jobs = bm::recent_jobs(db, tables, id, RECENT_JOBS)?;
    if ctx.out.json {
        ctx.out
            .json(&json!({ "migration": m, "batch_jobs": jobs }))?;
    } else {
        ctx.out.line(report::show(&m, &jobs))?;
    }
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, id: i64, c: &Changed, jobs_key: Option<&str>) -> anyhow::Result<Exit> {
    let (before, after) = (c.before, c.after);
    if ctx.out.json {
        let mut value = json!({
            "id": id,
            "old_status": migration_status_name(before),
            "new_status": migration_status_name(after),
        });
        if let Some(key) = jobs_key {
            value[key] = json!(c.jobs);
        }
        ctx.out.json(&value)?;
    } else {
        let mut line = if before == after {
            format!(
                "background migration {id} is already {}",
                migration_status_name(after)
            )
        } else {
            format!(
                "background migration {id}: {} -> {}",
                migration_status_name(before),
                migration_status_name(after)
            )
        };
        if let Some(key) = jobs_key {
            line.push_str(&format!(" ({} {})", key.replace('_', " "), c.jobs));
        }
        ctx.out.line(line)?;
    }
    Ok(Exit::Ok)
}
