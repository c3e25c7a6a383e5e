//! Upgrading the job schema (`migrate`): pending versions are applied one by one, behind
//! gates that keep running workers safe.
//!
//! What it guarantees: each schema version is applied in its own transaction, so a kill
//! leaves whole versions only. One migrator at a time (others wait `--lock-wait`, then exit
//! 7). A version is applied only once its required background migration is finished and,
//! when breaking, once no live worker of an older version is left (or, with
//! `--force-after-wait`, after their jobs were released).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::context::Ctx;
use crate::db::migrate::{self as gates, BackgroundMigrationState, Holdout};
use crate::db::schema::{self, SchemaVersion, MIGRATIONS};
use crate::db::{unlock, Db, Profile};
use crate::error::{failure, Exit};

/// Finishes the background migration with this id in the foreground (`migrate --finalize`
/// passes the background-migrations engine's finalizer).
pub type Finalize<'a> = &'a dyn Fn(&Ctx, &mut Db, i64) -> anyhow::Result<()>;
pub type BeforeChange<'a> = &'a dyn Fn(&mut Db) -> anyhow::Result<()>;

/// How `migrate` may get past its gates.
pub struct Options<'a> {
    /// How long to wait for old workers before a breaking version (default: config
    /// max_migration_wait).
    pub max_wait: Option<Duration>,
    /// When the wait runs out, release the old workers' jobs and proceed instead of failing.
    pub force_after_wait: bool,
    /// Finish a required background migration first instead of refusing.
    pub finalize: Option<Finalize<'a>>,
    /// How long to wait for another migrator to finish before exiting 7.
    pub lock_wait: Duration,
    /// Run once, after every gate has passed and right before the first schema change (a
    /// restore point): as late as it can be, so it holds every job committed before it.
    pub before_change: Option<BeforeChange<'a>>,
}

/// One pending version and what stands in its way, as `migrate` plans and reports it.
#[derive(Debug, Serialize)]
pub struct Step {
    pub version: i32,
    pub name: &'static str,
    pub breaking: bool,
    pub requires_background_migration: Option<BackgroundMigrationState>,
    /// Live workers that cannot run against this version (breaking versions only).
    pub holdouts: Vec<Holdout>,
}

/// The versions after `from` up to `target`; refuses an unknown target or going back.
pub fn pending(from: i32, target: i32) -> anyhow::Result<Vec<&'static SchemaVersion>> {
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
    Ok(MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
        .collect())
}

/// What each pending version needs before it can be applied, as things stand now.
pub fn plan(
    db: &mut Db,
    ctx: &Ctx,
    profile: &Profile,
    pending: &[&SchemaVersion],
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

/// Applies `pending` in order behind the migrate lock and the gates. A version another
/// migrator applied meanwhile counts as applied.
pub fn apply(
    ctx: &Ctx,
    db: &mut Db,
    profile: &Profile,
    pending: &[&SchemaVersion],
    opts: &Options,
) -> anyhow::Result<()> {
    db.wait_operation_lock(
        &format!("migrate:{}", profile.schema),
        "migrate",
        opts.lock_wait,
    )?;
    let orphans = gates::jobs_locked_by_unregistered(db, profile)?;
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
    let mut before_change = opts.before_change;
    for m in pending {
        if let Some(required) = &m.requires {
            ensure_background_migration_finished(ctx, db, profile, m, required, opts.finalize)?;
        }
        if m.breaking {
            wait_for_old_workers(ctx, db, profile, m, opts)?;
        }
        if let Some(hook) = before_change.take() {
            hook(db)?;
        }
        if gates::apply(db, profile, m)? {
            ctx.out
                .info(format!("applied version {} ({})", m.version, m.name));
        } else {
            ctx.out.info(format!(
                "version {} was already applied by another migrator",
                m.version
            ));
        }
    }
    Ok(())
}

fn ensure_background_migration_finished(
    ctx: &Ctx,
    db: &mut Db,
    profile: &Profile,
    m: &SchemaVersion,
    required: &schema::RequiredBackgroundMigration,
    finalize: Option<Finalize<'_>>,
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
    let Some(finalize) = finalize else {
        return Err(failure(
            Exit::Refused,
            format!(
                "version {} needs background migration {} finished first; run `{}` (or migrate --finalize)",
                m.version,
                bm.id,
                finalize_command(ctx, &bm)
            ),
        ));
    };
    ctx.out.info(format!(
        "finalizing background migration {} before version {}",
        bm.id, m.version
    ));
    finalize(ctx, db, bm.id)
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
    m: &SchemaVersion,
    opts: &Options,
) -> anyhow::Result<()> {
    let stale_after = ctx.config.stale_after.value;
    let max_wait = opts.max_wait.unwrap_or(ctx.config.max_migration_wait.value);
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
            if !opts.force_after_wait {
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
