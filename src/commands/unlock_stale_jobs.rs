use std::time::Duration;

use serde_json::json;

use crate::cli::unlock_stale_jobs::UnlockStaleJobsArgs;
use crate::config::parse_duration;
use crate::context::Ctx;
use crate::db::profile::LiveSet;
use crate::db::unlock::{self, Report, Scope};
use crate::db::Profile;
use crate::error::{failure, Exit};
use crate::output::{human_time, plural, printable, table, MAX_SHOWN_ID};

/// Graphile Worker treats a lock as expired after this long; shorter may take jobs from
/// workers that are still running them.
const GRAPHILE_EXPIRY: Duration = Duration::from_secs(4 * 3600);

pub fn run(args: UnlockStaleJobsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let older_than = match &args.older_than {
        Some(text) => Some(parse_duration(text).map_err(|e| e.context("--older-than"))?),
        None => None,
    };
    let stale_after = ctx.config.stale_after.value;
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    check_profile(ctx, &profile, &args, older_than)?;
    let scope = Scope {
        workers: (!args.workers.is_empty()).then(|| args.workers.clone()),
        include_live: args.force,
        older_than,
        prune_workers: args.prune_workers,
    };
    if let Some(ids) = &scope.workers {
        check_named(&mut db, &profile, ids, args.force, stale_after)?;
    }

    let report = if args.dry_run {
        unlock::preview(&mut db, &profile, &scope, stale_after)?
    } else {
        let mut tx = db.transaction()?;
        let report = unlock::release(&mut tx, &profile, &scope, stale_after)?;
        tx.commit()?;
        report
    };
    print(ctx, &profile, &report, args.dry_run)?;
    Ok(Exit::Ok)
}

/// What the profile allows: Graphile Worker has no registry jobdbctl may prune, and without
/// Worker Pro no live set to release by.
fn check_profile(
    ctx: &Ctx,
    profile: &Profile,
    args: &UnlockStaleJobsArgs,
    older_than: Option<Duration>,
) -> anyhow::Result<()> {
    if profile.is_native() {
        return Ok(());
    }
    if args.prune_workers {
        return Err(failure(
            Exit::Usage,
            "--prune-workers needs the native worker registry; on graphile-worker, Worker Pro's own sweeper removes workers that stop checking in",
        ));
    }
    if profile.live_set == LiveSet::Unknown && older_than.is_none() && args.workers.is_empty() {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to release locks by liveness: schema {:?} has no Graphile Worker Pro tables, so nothing says which workers are alive; \
                 pass --older-than 4h (Graphile Worker's own lock expiry) or --worker ID for workers you know are gone",
                profile.schema
            ),
        ));
    }
    if older_than.is_some_and(|d| d < GRAPHILE_EXPIRY) {
        ctx.out.warn(
            "Graphile Worker keeps a lock for 4 hours; releasing younger locks may run jobs twice if their workers are still alive",
        );
    }
    Ok(())
}

/// `--worker` ids must exist, and must not be live unless forced.
fn check_named(
    db: &mut crate::db::Db,
    profile: &Profile,
    ids: &[String],
    force: bool,
    stale_after: Duration,
) -> anyhow::Result<()> {
    let named = unlock::inspect_named(db, profile, ids, stale_after)?;
    let unknown: Vec<&str> = named
        .iter()
        .filter(|w| !w.registered && !w.holds_locks)
        .map(|w| w.id.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(failure(
            Exit::Usage,
            format!(
                "unknown worker {}: not registered and holding no locks; check the id with `jobdbctl status`",
                unknown.join(", ")
            ),
        ));
    }
    let live: Vec<&str> = named
        .iter()
        .filter(|w| w.live)
        .map(|w| w.id.as_str())
        .collect();
    if !live.is_empty() && !force {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to release the locks of live worker {}: it may still be running its jobs; stop it first, or pass --force",
                live.join(", ")
            ),
        ));
    }
    Ok(())
}

fn print(ctx: &Ctx, profile: &Profile, report: &Report, dry_run: bool) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!({
            "dry_run": dry_run,
            "profile": profile.name(),
            "graphile_generation": profile.generation_label(),
            "schema": profile.schema,
            "jobs_released": report.jobs_released,
            "queues_released": report.queues_released,
            "workers_pruned": report.workers_pruned,
            "workers": report.workers,
        }));
    }
    let verb = if dry_run { "would release" } else { "released" };
    if report.workers.is_empty() {
        return ctx.out.line("nothing to release: no stale locks");
    }
    let mut t = table(&[
        "worker",
        "registry",
        "last heartbeat",
        "jobs",
        "queues",
        "pruned",
    ]);
    for w in &report.workers {
        let registry = match (w.registered, w.live) {
            (true, true) => "live",
            (true, false) => "stale",
            (false, _) => "not registered",
        };
        t.add_row(vec![
            printable(&w.worker_id, MAX_SHOWN_ID),
            registry.to_string(),
            w.last_heartbeat_at.map_or_else(String::new, human_time),
            w.jobs_released.to_string(),
            w.queues_released.to_string(),
            if w.pruned { "yes" } else { "" }.to_string(),
        ]);
    }
    ctx.out.line(t.to_string())?;
    let pruned = if report.workers_pruned > 0 {
        let prune_verb = if dry_run { "would prune" } else { "pruned" };
        format!(
            "; {prune_verb} {}",
            plural(
                report.workers_pruned,
                "worker registration",
                "worker registrations"
            )
        )
    } else {
        String::new()
    };
    ctx.out.line(format!(
        "{verb} {} and {}{pruned}",
        plural(report.jobs_released, "job lock", "job locks"),
        plural(report.queues_released, "queue lock", "queue locks")
    ))
}
