use std::cell::RefCell;

use serde_json::json;

use crate::background_migrations::finalizer::{finalize_by_id, FinalizeOptions};
use crate::cli::migrate::MigrateArgs;
use crate::context::Ctx;
use crate::db::schema;
use crate::db::{status, Db};
use crate::error::Exit;
use crate::output::table;
use crate::schema_upgrade::{self, Options, Step};
use crate::wal::points::{self, Point};

pub fn run(args: MigrateArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    profile.require_native("migrate")?;
    let from = status::schema_version(&mut db, &profile)?.unwrap_or(0);
    let target = args.to.unwrap_or_else(schema::latest_version);
    let pending = schema_upgrade::pending(from, target)?;
    let plan = schema_upgrade::plan(&mut db, ctx, &profile, &pending)?;
    print_plan(ctx, from, target, &plan)?;
    if pending.is_empty() || args.dry_run {
        return report(ctx, from, from, &plan, args.dry_run, None);
    }
    let finalize = |ctx: &Ctx, db: &mut Db, id: i64| {
        finalize_by_id(ctx, db, id, &FinalizeOptions::default()).map(drop)
    };
    let archive = points::archive_of(&ctx.target)
        .map(|location| crate::wal::Archive::open(location, &ctx.places))
        .transpose()?;
    if let Some(archive) = &archive {
        // Before any wait: a migration that would end refused should not wait first.
        points::check_ready(&mut db, archive)?;
    }
    let to = pending.last().map_or(from, |m| m.version);
    let point = RefCell::new(None);
    let mark = |db: &mut Db| match &archive {
        Some(archive) => restore_point(ctx, db, archive, from, pending[0].version, to, &point),
        None => Ok(()),
    };
    let options = Options {
        max_wait: args.max_wait,
        force_after_wait: args.force_after_wait,
        finalize: args.finalize.then_some(&finalize),
        lock_wait: args.lock_wait,
        before_change: Some(&mark),
    };
    schema_upgrade::apply(ctx, &mut db, &profile, &pending, &options)?;
    report(ctx, from, to, &plan, false, point.into_inner().as_ref())
}

/// With WAL archiving, a restore point `before-migrate-N` (N the first version applied)
/// right before the schema changes, for the downgrade runbook's `restore --to-name`. A point
/// that cannot be made stops the migration: the runbook would have nothing to go back to.
fn restore_point(
    ctx: &Ctx,
    db: &mut Db,
    archive: &crate::wal::Archive,
    from: i32,
    first: i32,
    to: i32,
    made: &RefCell<Option<Point>>,
) -> anyhow::Result<()> {
    let name = format!("before-migrate-{first}");
    let point = points::mark(db, archive, &name, &format!("migrate {from} -> {to}"))?;
    ctx.out
        .info(format!("restore point {} at {}", point.name, point.lsn));
    made.replace(Some(point));
    Ok(())
}

fn print_plan(ctx: &Ctx, from: i32, target: i32, plan: &[Step]) -> anyhow::Result<()> {
    if ctx.out.json {
        return Ok(());
    }
    if plan.is_empty() {
        return ctx
            .out
            .line(format!("schema is at version {from}; nothing to migrate"));
    }
    ctx.out.line(format!("schema version {from} -> {target}"))?;
    let mut t = table(&["version", "name", "breaking", "gates"]);
    for s in plan {
        let mut gates = Vec::new();
        if let Some(bm) = &s.requires_background_migration {
            gates.push(format!(
                "background migration {} {}",
                bm.id,
                if bm.is_finished() {
                    "finished"
                } else {
                    "NOT finished"
                }
            ));
        }
        if s.breaking {
            gates.push(format!(
                "{} live workers of older versions",
                s.holdouts.len()
            ));
        }
        t.add_row(vec![
            s.version.to_string(),
            s.name.to_string(),
            if s.breaking { "yes" } else { "no" }.to_string(),
            gates.join("; "),
        ]);
    }
    ctx.out.line(t.to_string())
}

fn report(
    ctx: &Ctx,
    from: i32,
    to: i32,
    plan: &[Step],
    dry_run: bool,
    point: Option<&Point>,
) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(&json!({
            "from_version": from,
            "to_version": to,
            "dry_run": dry_run,
            "plan": plan,
            "restore_point": point,
        }))?;
    } else if to != from {
        ctx.out.line(format!("schema is now at version {to}"))?;
    }
    Ok(Exit::Ok)
}
