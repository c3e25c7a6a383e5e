//! Steering a migration by hand, as GitLab's admin area and runbook do: pause, resume,
//! retry failed batch jobs, or mark it finished without running its remaining batches.

use super::find;
use crate::context::Ctx;
use crate::db::batched_migrations::{self as bm, status, Tables};
use crate::db::status::migration_status_name;
use crate::db::Db;
use crate::error::{failure, Exit};
use crate::output::confirm;

const MARK_FINISHED_RISK: &str = "mark-finished skips the migration: rows its remaining batches \
would have changed keep their old values, and later schema migrations that rely on it (dropping \
the old column after an integer-to-bigint copy, say) can lose data or fail. Use it only when you \
know the migration's work is done or not needed, and take a backup first (`jobdbctl backup`)";

/// A migration's status before and after a change, and how many batch jobs it rewrote.
pub struct Changed {
    pub before: i16,
    pub after: i16,
    pub jobs: u64,
}

/// Moves migration `id` from one of `from` to `to`; already at `to` is no change.
pub fn change_status(
    db: &mut Db,
    tables: &Tables,
    id: i64,
    from: &[i16],
    to: i16,
) -> anyhow::Result<Changed> {
    let m = find(db, tables, id)?;
    let before = if m.status == to {
        m.status
    } else {
        match bm::transition(db, tables, id, from, to)? {
            Some(before) => before,
            None => {
                let now = bm::status_of(db, tables, id)?.unwrap_or(m.status);
                let allowed: Vec<&str> = from.iter().map(|s| migration_status_name(*s)).collect();
                return Err(failure(
                    Exit::Runtime,
                    format!(
                        "background migration {id} is {}; only a migration that is {} can become {}",
                        migration_status_name(now),
                        allowed.join(" or "),
                        migration_status_name(to)
                    ),
                ));
            }
        }
    };
    let after = bm::status_of(db, tables, id)?.unwrap_or(to);
    Ok(Changed {
        before,
        after,
        jobs: 0,
    })
}

/// Retry and mark-finished rewrite batch jobs, so they wait for no finalizer: they take its
/// lock (exit 7 while one runs).
fn lock_against_finalizer(db: &mut Db, schema: &str, id: i64) -> anyhow::Result<()> {
    db.try_operation_lock(
        &format!("finalize-migration:{schema}:{id}"),
        &format!("finalize-migration of background migration {id}"),
    )
}

pub enum Retry {
    /// No batch job had failed; the migration stays as it is.
    NothingFailed(Changed),
    /// Failed batch jobs went back to pending (`jobs` of them) and the migration is active.
    Reset(Changed),
}

/// Puts failed batch jobs back to pending with fresh attempts.
pub fn retry(db: &mut Db, tables: &Tables, schema: &str, id: i64) -> anyhow::Result<Retry> {
    lock_against_finalizer(db, schema, id)?;
    let m = find(db, tables, id)?;
    if bm::is_finished(m.status) {
        return Err(failure(
            Exit::Runtime,
            format!(
                "background migration {id} is {}; there is nothing to retry",
                m.status_name
            ),
        ));
    }
    if m.jobs_failed == 0 && m.status != status::FAILED {
        return Ok(Retry::NothingFailed(Changed {
            before: m.status,
            after: m.status,
            jobs: 0,
        }));
    }
    let reset = bm::retry_failed_jobs(db, tables, id)?;
    let after = bm::status_of(db, tables, id)?.unwrap_or(status::ACTIVE);
    Ok(Retry::Reset(Changed {
        before: m.status,
        after,
        jobs: reset,
    }))
}

/// Marks every batch job succeeded and the migration finished, after warning of the risk
/// and asking (`yes` answers for the operator).
pub fn mark_finished(
    ctx: &Ctx,
    db: &mut Db,
    tables: &Tables,
    schema: &str,
    id: i64,
    yes: bool,
) -> anyhow::Result<Changed> {
    let m = find(db, tables, id)?;
    if bm::is_finished(m.status) {
        return Ok(Changed {
            before: m.status,
            after: m.status,
            jobs: 0,
        });
    }
    ctx.out.warn(MARK_FINISHED_RISK);
    confirm(
        &format!(
            "mark background migration {id} ({} on {}.{}, {:.1}% done) finished",
            m.job_class_name, m.table_name, m.column_name, m.progress_pct
        ),
        yes,
    )?;
    lock_against_finalizer(db, schema, id)?;
    let jobs = bm::mark_finished(db, tables, id)?;
    let after = bm::status_of(db, tables, id)?.unwrap_or(status::FINISHED);
    Ok(Changed {
        before: m.status,
        after,
        jobs,
    })
}
