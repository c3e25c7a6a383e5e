use std::path::Path;

use serde_json::json;

use crate::archive::Mode;
use crate::backup;
use crate::cli::restore::RestoreArgs;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::job_ids::high_water::Reuse;
use crate::output::{human_time, plural};
use crate::restore::recovery::Target as RecoveryTarget;
use crate::restore::{self, Archive, Request, Restored};

pub fn run(args: RestoreArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let to = recovery_target(&args, ctx)?;
    let keys = args.keys.keys(&ctx.config)?;
    let Some(given) = args.archive.clone() else {
        // A point-in-time target alone: the base backup is chosen for it.
        let target = to
            .as_ref()
            .ok_or_else(|| failure(Exit::Usage, "give an ARCHIVE"))?;
        let dir = backup::directory(ctx, args.dir.as_deref());
        let wal_archive = crate::wal::points::open_archive(&ctx.target, &ctx.places)?;
        let bases = crate::wal::bases::list(&wal_archive)?;
        let path = backup::base_for(ctx, &dir, &keys, &bases, &|b| target.after(b))
            .map_err(|e| no_base_backup(e, target, &bases))?;
        ctx.out
            .info(format!("restoring the base backup {}", path.display()));
        return restore_from(
            ctx,
            &args,
            Archive::File(path.clone()),
            keys,
            to,
            Some(&path),
        );
    };
    let latest = given == Path::new("latest");
    if args.dir.is_some() && !latest {
        return Err(failure(
            Exit::Usage,
            "--dir is for `restore latest` and point-in-time targets; give either an archive path or latest --dir DIR",
        ));
    }
    let mut chosen = None;
    let archive = if given == Path::new("-") {
        Archive::Stdin
    } else if latest {
        let dir = backup::directory(ctx, args.dir.as_deref());
        let path = backup::latest(ctx, &dir, &keys)?;
        ctx.out
            .info(format!("restoring the latest archive, {}", path.display()));
        chosen = Some(path.clone());
        Archive::File(path)
    } else {
        let path = crate::config::absolute(&given, None);
        // An object's absence is the store's to tell (exit 2 as well).
        if !crate::storage::is_url(&path) && !path.exists() {
            return Err(not_found(ctx, &given, &path));
        }
        Archive::File(path)
    };
    restore_from(ctx, &args, archive, keys, to, chosen.as_deref())
}

fn restore_from(
    ctx: &Ctx,
    args: &RestoreArgs,
    archive: Archive,
    keys: crate::archive::crypt::Keys,
    to: Option<RecoveryTarget>,
    chosen: Option<&Path>,
) -> anyhow::Result<Exit> {
    let request = Request {
        archive,
        yes: args.confirmation.yes,
        force: args.force,
        avoid_id_reuse: args.avoid_id_reuse,
        dry_run: args.dry_run,
        keys,
        to,
        remove_old: args.remove_old,
    };
    if args.dry_run {
        let plan = restore::plan(ctx, &request)?;
        report_plan(ctx, &plan, chosen)?;
        return Ok(Exit::Ok);
    }
    let restored = restore::restore(ctx, &request)?;
    report(ctx, &restored, chosen)?;
    Ok(Exit::Ok)
}

/// The `--to-*` target; a restore point's name is resolved to the newest point of that name
/// recorded in the WAL archive.
fn recovery_target(args: &RestoreArgs, ctx: &Ctx) -> anyhow::Result<Option<RecoveryTarget>> {
    if let Some(t) = args.to_time {
        return Ok(Some(RecoveryTarget::Time(t)));
    }
    if let Some(lsn) = &args.to_lsn {
        return Ok(Some(RecoveryTarget::Lsn {
            lsn: lsn.clone(),
            name: None,
        }));
    }
    if args.to_end {
        return Ok(Some(RecoveryTarget::End));
    }
    let Some(name) = &args.to_name else {
        return Ok(None);
    };
    crate::wal::points::check_name(name)?;
    let archive = crate::wal::points::open_archive(&ctx.target, &ctx.places)?;
    let points = crate::wal::points::list(&archive)?;
    let Some(point) = points.iter().rev().find(|p| p.name == *name) else {
        let known: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        return Err(failure(
            Exit::Usage,
            format!(
                "no restore point named {name:?} in {}; {}",
                archive.describe(),
                if known.is_empty() {
                    "there are none (migrate makes one before it changes anything; backup --mark NAME on demand)".to_string()
                } else {
                    format!("known: {} (`jobdbctl backups points`)", known.join(", "))
                }
            ),
        ));
    };
    Ok(Some(RecoveryTarget::Lsn {
        lsn: point.lsn.clone(),
        name: Some(point.name.clone()),
    }))
}

/// No base backup fits the target: the refusal names the recoverable window's start.
fn no_base_backup(
    err: anyhow::Error,
    target: &RecoveryTarget,
    bases: &[crate::wal::bases::Base],
) -> anyhow::Error {
    if crate::error::failure_exit(&err) != Some(Exit::Usage) {
        return err;
    }
    match bases.first() {
        Some(oldest) if !bases.iter().any(|b| target.after(b)) => failure(
            Exit::Refused,
            format!(
                "{} is before the recoverable window, which starts where the oldest base backup ended ({}); nothing was changed",
                target.describe(),
                oldest.stopped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        _ => failure(
            Exit::Usage,
            format!("{err:#}; take one with `jobdbctl backup --mode physical`"),
        ),
    }
}

/// A missing archive (exit 2): where it was looked for, and where this database's archives
/// are — the name given may be one in the backup directory.
fn not_found(ctx: &Ctx, given: &Path, path: &Path) -> anyhow::Error {
    let dir = backup::directory(ctx, None);
    let relative = if given.is_relative() {
        " (a relative path is taken from the working directory)"
    } else {
        ""
    };
    let in_backup_dir = given
        .file_name()
        .map(|name| dir.join(name))
        .filter(|p| p != path && p.is_file());
    let hint = match in_backup_dir {
        Some(there) => format!(
            "the backup directory has one of that name: jobdbctl restore {}",
            there.display()
        ),
        None => format!(
            "archives of this database are in {} (`jobdbctl backups` lists them; `jobdbctl restore latest` takes the newest)",
            dir.display()
        ),
    };
    failure(
        Exit::Usage,
        format!("no archive at {}{relative}; {hint}", path.display()),
    )
}

fn report_plan(ctx: &Ctx, plan: &restore::Plan, latest: Option<&Path>) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!({
            "dry_run": true,
            "latest_archive": latest.map(|p| p.display().to_string()),
            "mode": plan.mode.name(),
            "schema": plan.schema,
            "backup_created_at": plan.created_at,
            "would_replace": plan.replaces,
            "last_used_job_id": plan.last_used_job_id,
            "rows": plan.rows,
        }));
    }
    let what = match (&plan.replaces, plan.mode) {
        (Some(old), _) => format!("replace {old}"),
        (None, Mode::Online) => format!(
            "create schema {:?}",
            plan.schema.as_deref().unwrap_or_default()
        ),
        (None, Mode::Cold | Mode::Physical) => "create the embedded cluster".to_string(),
    };
    ctx.out.line(format!(
        "dry run: the archive is good and nothing refuses it; restore would {what} with the backup taken {}{}; nothing was changed",
        plan.created_at,
        match (plan.mode, plan.last_used_job_id) {
            (Mode::Online, Some(id)) => format!(" ({} rows, last used job ID {id})", plan.rows),
            (Mode::Online, None) => format!(" ({} rows)", plan.rows),
            (Mode::Cold | Mode::Physical, _) => String::new(),
        }
    ))
}

/// `latest` is the archive `restore latest` chose.
fn report(ctx: &Ctx, r: &Restored, latest: Option<&Path>) -> anyhow::Result<()> {
    let seconds = r.seconds;
    let reuse = r
        .last_used_job_id
        .and_then(|last| Reuse::between(last, r.high_water));
    let raised_from = match (r.archived_last_used_job_id, r.last_used_job_id) {
        (Some(archived), Some(last)) if last > archived => Some(archived),
        _ => None,
    };
    if ctx.out.json {
        return ctx.out.json(&json!({
            "latest_archive": latest.map(|p| p.display().to_string()),
            "mode": r.mode.name(),
            "schema": r.schema,
            "backup_created_at": r.created_at,
            "last_used_job_id": r.last_used_job_id,
            "next_job_id": r.last_used_job_id.map(|n| n.saturating_add(1)),
            "archived_last_used_job_id": r.archived_last_used_job_id,
            "job_id_high_water": r.high_water,
            "counter_raised_from": raised_from,
            "reused_job_ids": reuse,
            "rescheduled_jobs": r.rescheduled,
            "rows": r.rows,
            "seconds": seconds,
            "config_left_out": r.config_left_out,
            "recovery": r.recovery.as_ref().map(|rec| json!({
                "target": rec.target,
                "last_replayed_commit": rec.last_commit,
                "timeline": rec.timeline,
                "replaced_cluster_kept_at": rec.kept_aside.as_ref().map(|p| p.display().to_string()),
            })),
            "phases": r.phases.iter().map(|(name, s)| json!({"phase": name, "seconds": s})).collect::<Vec<_>>(),
        }));
    }
    if ctx.verbose && !r.phases.is_empty() {
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(name, s)| format!("{name} {s:.2} s"))
            .collect();
        ctx.out.info(format!("phases: {}", phases.join(", ")));
    }
    let what = match (&r.mode, &r.schema) {
        (Mode::Online, Some(s)) => format!("schema {s:?}"),
        _ => "the embedded cluster".to_string(),
    };
    // The result carries RFC 3339 (for JSON); people get the one human format.
    let taken = chrono::DateTime::parse_from_rfc3339(&r.created_at)
        .map(|t| human_time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| r.created_at.clone());
    if let Some(rec) = &r.recovery {
        ctx.out.line(format!(
            "recovered the embedded cluster to {} from the base backup of {taken} in {seconds:.1} s (last transaction replayed committed {}; timeline {}), {} queued again",
            rec.target,
            rec.last_commit.as_deref().unwrap_or("before the backup ended"),
            rec.timeline,
            plural(
                i64::try_from(r.rescheduled).unwrap_or(i64::MAX),
                "formerly running job",
                "formerly running jobs"
            )
        ))?;
        if let Some(aside) = &rec.kept_aside {
            ctx.out.line(format!(
                "the replaced data directory is kept at {}; remove it once the restored jobs are right",
                aside.display()
            ))?;
        }
    }
    if r.recovery.is_none() {
        ctx.out.line(format!(
            "restored {what} from the backup of {taken} in {seconds:.1} s{}",
            if r.mode == Mode::Online {
                format!(
                    ", {} rows, {} queued again",
                    r.rows,
                    plural(
                        i64::try_from(r.rescheduled).unwrap_or(i64::MAX),
                        "formerly running job",
                        "formerly running jobs"
                    )
                )
            } else {
                String::new()
            }
        ))?;
    }
    if let Some(id) = r.last_used_job_id {
        ctx.out.line(format!(
            "last used job ID {id} (the next job gets {})",
            id.saturating_add(1)
        ))?;
    }
    let mark = r
        .high_water
        .map_or("none recorded".to_string(), |m| m.to_string());
    match raised_from {
        Some(archived) => ctx.out.line(format!(
            "job-ID high-water mark {mark}: the backup's counter {archived} was raised to it (--avoid-id-reuse), so no job ID is handed out twice"
        ))?,
        None => ctx.out.line(format!("job-ID high-water mark {mark}"))?,
    }
    if !r.config_left_out.is_empty() {
        ctx.out.warn(format!(
            "the archive's server configuration set what runs commands, loads code or reads other files; left out (commented out) of the restored cluster: {}. Review them, and set those you trust again with ALTER SYSTEM",
            r.config_left_out.join(", ")
        ));
    }
    if let (Some(reuse), Some(last)) = (reuse, r.last_used_job_id) {
        ctx.out.warn(format!(
            "{reuse} were handed out before and will be handed out again; the engine appends new jobs' output to their old log files. \
             To avoid it, run `jobdbctl set-job-counter {}` (what --avoid-id-reuse does) before starting the engine; \
             or remove those jobs' logs: `jobdbctl job-logs --dir LOG_DIR --above {last} --delete`",
            reuse.last
        ));
    }
    Ok(())
}
