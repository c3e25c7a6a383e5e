use std::path::{Path, PathBuf};

use serde_json::json;

use crate::archive::Mode;
use crate::backup;
use crate::cli::Confirmation;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::highwater::Reuse;
use crate::output::{human_time, plural};
use crate::restore::{self, Archive, Request, Restored};

/// Restore a backup archive. An online archive is loaded into a staging schema, checked
/// while loading, and swapped for the job schema in one transaction; a cold archive replaces
/// the embedded cluster's data directory. A failed or interrupted restore leaves the
/// database as it was.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive, - to read it from standard input, or latest: the newest complete archive
    /// of this database in the backup directory (a file named latest: ./latest).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// With latest: the backup directory to look in (default: backup_dir from the
    /// configuration).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Replace a job schema that has jobs (they are lost; jobs created after the backup are
    /// gone), or a schema of that name that holds no jobs. Only the job schema is ever
    /// replaced: jobdb or graphile_worker by the archive's profile, or the one --schema
    /// names; an archive of any other schema is refused unless --schema names it.
    #[arg(long)]
    pub force: bool,
    /// Raise the restored job counter to the job-ID high-water mark, so no job ID handed out
    /// since the backup is handed out again (also after `destroy`: the mark survives it).
    #[arg(long)]
    pub avoid_id_reuse: bool,
}

pub fn run(args: RestoreArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let latest = args.archive == Path::new("latest");
    if args.dir.is_some() && !latest {
        return Err(failure(
            Exit::Usage,
            "--dir is for `restore latest`; give either an archive path or latest --dir DIR",
        ));
    }
    let mut chosen = None;
    let archive = if args.archive == Path::new("-") {
        Archive::Stdin
    } else if latest {
        let dir = backup::directory(ctx, args.dir.as_deref());
        let path = backup::latest(ctx, &dir)?;
        ctx.out
            .info(format!("restoring the latest archive, {}", path.display()));
        chosen = Some(path.clone());
        Archive::File(path)
    } else {
        Archive::File(crate::config::absolute(&args.archive, None))
    };
    let restored = restore::restore(
        ctx,
        &Request {
            archive,
            yes: args.confirmation.yes,
            force: args.force,
            avoid_id_reuse: args.avoid_id_reuse,
        },
    )?;
    report(ctx, &restored, chosen.as_deref())?;
    Ok(Exit::Ok)
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
        }));
    }
    let what = match (&r.mode, &r.schema) {
        (Mode::Online, Some(s)) => format!("schema {s:?}"),
        _ => "the embedded cluster".to_string(),
    };
    // The result carries RFC 3339 (for JSON); people get the one human format.
    let taken = chrono::DateTime::parse_from_rfc3339(&r.created_at)
        .map(|t| human_time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| r.created_at.clone());
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
