use serde_json::json;

use crate::cli::set_job_counter::SetJobCounterArgs;
use crate::context::Ctx;
use crate::db::counter;
use crate::error::{failure, Exit};
use crate::job_ids::high_water::{self, Reuse};

pub fn run(args: SetJobCounterArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    let sequence = counter::sequence_name(&mut db, &profile)?;
    let n = args.n;

    let mut tx = db.transaction()?;
    // Hold off inserts while checking and setting, so no job slips in between with an ID
    // the check did not see.
    counter::lock_against_inserts(&mut tx, &profile)?;
    let old = counter::last_used(&mut tx, &sequence)?;
    let max_id = counter::max_job_id(&mut tx, &profile)?.unwrap_or(0);
    let mark = high_water::read(ctx, Some(&mut tx), &profile.schema)?;
    if n < max_id && !args.force {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to set the job counter to {n}: job {max_id} exists, so {} would be reused; \
                 choose N >= {max_id} or pass --force",
                Reuse { first: n.saturating_add(1), last: max_id }
            ),
        ));
    }
    if n < old && !args.force {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to lower the job counter from {old} to {n}: {} would be reused (already handed out); \
                 pass --force if that is intended",
                Reuse { first: n.saturating_add(1), last: old }
            ),
        ));
    }
    if let (Some(reuse), false) = (Reuse::between(n, mark), args.force) {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to set the job counter to {n}: the job-ID high-water mark is {} ({}), so {reuse} would be reused (handed out before; \
                 their log files may still exist); choose N >= {} or pass --force \
                 (after removing their logs with `jobdbctl job-logs --dir LOG_DIR --above {n} --delete`)",
                reuse.last,
                high_water::Store::of(ctx).describe(),
                reuse.last
            ),
        ));
    }
    if args.dry_run {
        drop(tx);
        return print(ctx, old, n, &sequence, true, mark);
    }
    // The counter being replaced is recorded with the change, so a lowered counter (with
    // --force) still leaves its old IDs in the mark.
    high_water::raise(ctx, &mut tx, &profile.schema, old)?;
    counter::set_last_used(&mut tx, &sequence, n)?;
    let new = counter::last_used(&mut tx, &sequence)?;
    tx.commit()?;
    // Only once it is real does the new counter join the mark.
    let mark = high_water::raise(ctx, &mut db, &profile.schema, new)?;
    print(ctx, old, new, &sequence, false, Some(mark))
}

fn print(
    ctx: &Ctx,
    old: i64,
    new: i64,
    sequence: &str,
    dry_run: bool,
    mark: Option<i64>,
) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(&json!({
            "sequence": sequence,
            "old_last_used_job_id": old,
            "new_last_used_job_id": new,
            "next_job_id": new.saturating_add(1),
            "job_id_high_water": mark,
            "dry_run": dry_run,
        }))?;
    } else {
        let verb = if dry_run { "would change" } else { "changed" };
        ctx.out.line(format!(
            "job counter {verb}: last used job ID {old} -> {new} (next job gets {})",
            new.saturating_add(1)
        ))?;
        if let Some(reuse) = Reuse::between(new, mark) {
            ctx.out.warn(format!(
                "{reuse} were handed out before (job-ID high-water mark {}) and will be handed out again",
                reuse.last
            ));
        }
    }
    Ok(Exit::Ok)
}
