use serde_json::json;

use crate::context::Ctx;
use crate::db::counter;
use crate::error::{failure, Exit};
use crate::output::id_range;

/// Make N the last used job ID, so the next job gets N+1 (avoids reusing job IDs after a
/// downgrade restore).
#[derive(Debug, clap::Args)]
pub struct SetJobCounterArgs {
    /// The new last used job ID (0: the next job gets 1).
    #[arg(value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub n: i64,
    /// Allow IDs to be reused: N below the highest existing job ID or below the current
    /// counter.
    #[arg(long)]
    pub force: bool,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

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
    if n < max_id && !args.force {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to set the job counter to {n}: job {max_id} exists, so {} would be reused; \
                 choose N >= {max_id} or pass --force",
                id_range(n.saturating_add(1), max_id)
            ),
        ));
    }
    if n < old && !args.force {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to lower the job counter from {old} to {n}: {} would be reused (already handed out); \
                 pass --force if that is intended",
                id_range(n.saturating_add(1), old)
            ),
        ));
    }
    if args.dry_run {
        drop(tx);
        return print(ctx, old, n, &sequence, true);
    }
    counter::set_last_used(&mut tx, &sequence, n)?;
    let new = counter::last_used(&mut tx, &sequence)?;
    tx.commit()?;
    print(ctx, old, new, &sequence, false)
}

fn print(ctx: &Ctx, old: i64, new: i64, sequence: &str, dry_run: bool) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(&json!({
            "sequence": sequence,
            "old_last_used_job_id": old,
            "new_last_used_job_id": new,
            "next_job_id": new.saturating_add(1),
            "dry_run": dry_run,
        }))?;
    } else {
        let verb = if dry_run { "would change" } else { "changed" };
        ctx.out.line(format!(
            "job counter {verb}: last used job ID {old} -> {new} (next job gets {})",
            new.saturating_add(1)
        ))?;
    }
    Ok(Exit::Ok)
}
