use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::cli::parse_duration_arg;
use crate::commands::finalize_migration::{finalize_by_id, FinalizeOptions};
use crate::context::Ctx;
use crate::db::migrate::{self as gates, BackgroundMigrationState, Holdout};
use crate::db::schema::{self, Migration, MIGRATIONS};
use crate::db::{status, unlock, Db, Profile};
use crate::error::{failure, Exit};
use crate::output::table;

/// Apply pending schema versions, each in its own transaction. Refuses a version whose
/// background migration is unfinished (unless --finalize) and, before a breaking version,
/// tells workers (pg_notify 'jobdb_migrate') and waits until no live worker runs an older
/// version.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Stop at this version (default: the newest this jobdbctl knows).
    #[arg(long, value_name = "N")]
    pub to: Option<i32>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for old workers before a breaking version (default 4h, config
    /// max_migration_wait).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub max_wait: Option<Duration>,
    /// When the wait runs out, release the old workers' jobs and proceed instead of failing.
    #[arg(long)]
    pub force_after_wait: bool,
    /// Finish a required background migration first instead of refusing.
    #[arg(long)]
    pub finalize: bool,
    /// How long to wait for another migrator to finish before exiting 7.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, default_value = "30s")]
    pub lock_wait: Duration,
}

#[derive(Debug, Serialize)]
struct Step {
    version: i32,
    name: &'static str,
    breaking: bool,
    requires_background_migration: Option<BackgroundMigrationState>,
    /// Live workers that cannot run against this version (breaking versions only).
    holdouts: Vec<Holdout>,
}

pub fn run(args: MigrateArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    profile.require_native("migrate")?;
    let from = status::schema_version(&mut db, &profile)?.unwrap_or(0);
    let target = args.to.unwrap_or_else(schema::latest_version);
    if !MIGRATIONS.iter().any(|m| m.version == target) {
        return Err(failure(
            Exit::Usage,
            format!(
                "unknown schema version {target}; this jobdbctl knows versions 1 to {}",
                schema::latest_version()
            ),
        ));
    }
    if target < from {
        return Err(failure(
            Exit::Usage,
            format!(
                "the schema is at version {from}; migrate only goes forward. To go back to {target}, restore a backup taken at that version"
            ),
        ));
    }
    let pending: Vec<&Migration> = MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
        .collect();
    let plan = plan(&mut db, ctx, &profile, &pending)?;
    print_plan(ctx, from, target, &plan)?;
    if pending.is_empty() || args.dry_run {
        return report(ctx, from, from, &plan, args.dry_run);
    }

    db.wait_operation_lock(
        &format!("migrate:{}", profile.schema),
        "migrate",
        args.lock_wait,
    )?;
    let orphans = gates::jobs_locked_by_unregistered(&mut db, &profile)?;
    if !orphans.is_empty() {
        let list: Vec<String> = orphans
            .iter()
            .map(|(w, n)| format!("{w} ({n} jobs)"))
            .collect();
        return Err(failure(
            Exit::Refused,
            format!(
                "jobs are locked by workers missing from the registry: {}; run `jobdbctl unlock-stale-jobs` first",
                list.join(", ")
            ),
        ));
    }
    let mut at = from;
    for m in pending {
        if let Some(required) = &m.requires {
            ensure_background_migration_finished(
                ctx,
                &mut db,
                &profile,
                m,
                required,
                args.finalize,
            )?;
        }
        if m.breaking {
            wait_for_old_workers(ctx, &mut db, &profile, m, &args)?;
        }
        if gates::apply(&mut db, &profile, m)? {
            ctx.out
                .info(format!("applied version {} ({})", m.version, m.name));
        } else {
            ctx.out.info(format!(
                "version {} was already applied by another migrator",
                m.version
            ));
        }
        at = m.version;
    }
    report(ctx, from, at, &plan, false)
}

fn plan(
    db: &mut Db,
    ctx: &Ctx,
    profile: &Profile,
    pending: &[&Migration],
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    for m in pending {
        let requires_background_migration = match &m.requires {
            Some(req) => gates::required_background_migration(db, profile, req)?,
            None => None,
        };
        let holdouts = if m.breaking {
            gates::live_workers_older_than(db, profile, m.version, ctx.config.stale_after.value)?
        } else {
            Vec::new()
        };
        steps.push(Step {
            version: m.version,
            name: m.name,
            breaking: m.breaking,
            requires_background_migration,
            holdouts,
        });
    }
    Ok(steps)
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

fn report(ctx: &Ctx, from: i32, to: i32, plan: &[Step], dry_run: bool) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(
            &json!({ "from_version": from, "to_version": to, "dry_run": dry_run, "plan": plan }),
        )?;
    } else if to != from {
        ctx.out.line(format!("schema is now at version {to}"))?;
    }
    Ok(Exit::Ok)
}

fn ensure_background_migration_finished(
    ctx: &Ctx,
    db: &mut Db,
    profile: &Profile,
    m: &Migration,
    required: &schema::RequiredBackgroundMigration,
    finalize: bool,
) -> anyhow::Result<()> {
    let Some(bm) = gates::required_background_migration(db, profile, required)? else {
        return Err(failure(
            Exit::Refused,
            format!(
                "version {} needs background migration {} on {}.{} (filling {}), but none is recorded; \
                 restore from a backup or recreate it before migrating",
                m.version, required.job_class_name, required.table_name, required.column_name, required.fills_column
            ),
        ));
    };
    if bm.is_finished() {
        return Ok(());
    }
    if !finalize {
        return Err(failure(
            Exit::Refused,
            format!(
                "version {} needs background migration {} finished first; run `{}` (or migrate --finalize)",
                m.version,
                bm.id,
                finalize_command(ctx, &bm)
            ),
        ));
    }
    ctx.out.info(format!(
        "finalizing background migration {} before version {}",
        bm.id, m.version
    ));
    finalize_by_id(ctx, db, bm.id, &FinalizeOptions::default())?;
    Ok(())
}

/// The exact command, GitLab-style, an operator can paste.
fn finalize_command(ctx: &Ctx, bm: &BackgroundMigrationState) -> String {
    let schema = match ctx.schema_override() {
        Some(s) => format!(" --schema {}", shell_quote(s)),
        None => String::new(),
    };
    format!(
        "jobdbctl{schema} finalize-migration {} {} {} {}",
        bm.job_class_name,
        shell_quote(&bm.table_name),
        shell_quote(&bm.column_name),
        shell_quote(&bm.job_arguments.to_string())
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Notifies workers, then waits until no live worker runs a version older than `m`; on
/// expiry either fails naming the holdouts or, with --force-after-wait, releases their jobs.
fn wait_for_old_workers(
    ctx: &Ctx,
    db: &mut Db,
    profile: &Profile,
    m: &Migration,
    args: &MigrateArgs,
) -> anyhow::Result<()> {
    let stale_after = ctx.config.stale_after.value;
    let max_wait = args.max_wait.unwrap_or(ctx.config.max_migration_wait.value);
    gates::notify_workers(
        db,
        &json!({ "event": "breaking_migration", "version": m.version, "name": m.name,
                 "workers_below_schema_version_must_exit": m.version }),
    )?;
    let deadline = Instant::now() + max_wait;
    let spinner = ctx.out.progress(0, "{spinner} {msg}");
    let mut announced = false;
    loop {
        let holdouts = gates::live_workers_older_than(db, profile, m.version, stale_after)?;
        if holdouts.is_empty() {
            spinner.finish_and_clear();
            return Ok(());
        }
        let now = Instant::now();
        let summary = describe_holdouts(&holdouts);
        if now >= deadline {
            spinner.finish_and_clear();
            if !args.force_after_wait {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "version {} is breaking and {} live workers of older versions are still running after {}: {summary}; \
                         stop them, or rerun with --force-after-wait",
                        m.version,
                        holdouts.len(),
                        humantime::format_duration(max_wait)
                    ),
                ));
            }
            let ids: Vec<String> = holdouts.iter().map(|h| h.worker_id.clone()).collect();
            let mut tx = db.transaction()?;
            let released = unlock::release_workers(&mut tx, profile, &ids, stale_after)?;
            tx.commit()?;
            ctx.out.warn(format!(
                "gave up waiting for {summary}; released {} jobs and {} queues they held",
                released.jobs_released, released.queues_released
            ));
            return Ok(());
        }
        if !announced {
            ctx.out.info(format!(
                "version {} is breaking: waiting up to {} for live workers of older versions to exit: {summary}",
                m.version,
                humantime::format_duration(max_wait)
            ));
            announced = true;
        }
        spinner.set_message(format!(
            "waiting for {} live workers of older versions ({summary}); {} left",
            holdouts.len(),
            humantime::format_duration(Duration::from_secs((deadline - now).as_secs()))
        ));
        spinner.tick();
        // Workers leave on their own schedule; there is nothing to be notified of here.
        std::thread::sleep((deadline - now).min(Duration::from_millis(500)));
    }
}

fn describe_holdouts(holdouts: &[Holdout]) -> String {
    holdouts
        .iter()
        .map(|h| {
            format!(
                "{} ({}, schema {})",
                h.worker_id,
                h.version.as_deref().unwrap_or("unknown version"),
                h.schema_version
                    .map_or("unknown".to_string(), |v| v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
