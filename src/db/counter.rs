//! The job-ID sequence: whatever sequence owns the jobs table's `id` column.

use crate::db::{Profile, Sql, Tx};
use crate::error::{failure, Exit};

/// The regclass text of the sequence behind `id` (serial or identity).
pub fn sequence_name(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<String> {
    let row = db.query_one(
        "job_id_sequence",
        "SELECT pg_get_serial_sequence($1, 'id')",
        &[&profile.jobs_table()],
    )?;
    let name: Option<String> = row.get(0);
    name.ok_or_else(|| {
        failure(
            Exit::Runtime,
            format!(
                "{}.id is not backed by a sequence; cannot manage the job counter",
                profile.jobs_table()
            ),
        )
    })
}

/// The last job ID handed out (0 if none yet), read from the sequence itself.
pub fn last_used(db: &mut impl Sql, sequence: &str) -> anyhow::Result<i64> {
    // The sequence name came from pg_get_serial_sequence, so it is already quoted.
    let row = db.query_one(
        "read_job_sequence",
        &format!("SELECT last_value, is_called FROM {sequence}"),
        &[],
    )?;
    let last: i64 = row.get(0);
    let called: bool = row.get(1);
    Ok(if called { last } else { last - 1 })
}

/// Holds off job inserts until the transaction ends (SHARE lock on the jobs table), so the
/// highest ID and the counter cannot move while they are checked and set. Waits at most 5 s
/// for the lock rather than queue behind workers.
pub fn lock_against_inserts(tx: &mut Tx<'_>, profile: &Profile) -> anyhow::Result<()> {
    tx.batch("lock_timeout", "SET LOCAL lock_timeout = '5s'")?;
    tx.batch(
        "lock_jobs_against_inserts",
        &format!("LOCK TABLE {} IN SHARE MODE", profile.jobs_table()),
    )
}

pub fn max_job_id(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<Option<i64>> {
    Ok(db
        .query_one(
            "max_job_id",
            &format!("SELECT max(id) FROM {}", profile.jobs_table()),
            &[],
        )?
        .get(0))
}

/// Makes `last` the last used ID, so the next job gets `last + 1`.
pub fn set_last_used(db: &mut impl Sql, sequence: &str, last: i64) -> anyhow::Result<()> {
    if last == 0 {
        db.execute(
            "reset_job_sequence",
            "SELECT setval($1::text::regclass, 1, false)",
            &[&sequence],
        )?;
    } else {
        db.execute(
            "set_job_sequence",
            "SELECT setval($1::text::regclass, $2, true)",
            &[&sequence, &last],
        )?;
    }
    Ok(())
}
