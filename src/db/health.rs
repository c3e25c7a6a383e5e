//! Database health signals that make a background migration hold off, in the spirit of
//! GitLab's batched-migration health checks.

use std::time::Duration;

use crate::db::Sql;

/// Why a batch should wait now, or `None` when it may run.
pub fn reason_to_wait(
    db: &mut impl Sql,
    table: &str,
    max_replication_lag: Duration,
) -> anyhow::Result<Option<String>> {
    {
        let max = max_replication_lag;
        // A standby that has replayed everything is not lagging, whatever its last sample
        // said; one that is behind lags by its last measured replay delay.
        let rows = db.query(
            "standby_replay_lag",
            "SELECT application_name,
                    CASE WHEN replay_lsn IS NULL OR replay_lsn >= pg_current_wal_lsn() THEN 0
                         ELSE coalesce(extract(epoch FROM replay_lag), 0) END::float8 AS lag
               FROM pg_stat_replication
              ORDER BY lag DESC LIMIT 1",
            &[],
        )?;
        if let Some(row) = rows.first() {
            let (name, lag): (String, f64) = (row.get(0), row.get(1));
            if lag > max.as_secs_f64() {
                return Ok(Some(format!(
                    "standby {name} replays {lag:.1}s behind (--max-replication-lag {})",
                    humantime::format_duration(max)
                )));
            }
        }
    }
    // Only an anti-wraparound autovacuum holds the batches off: it cannot be cancelled and
    // must finish before the server runs out of transaction IDs, so its I/O comes first. A
    // routine autovacuum is removing the dead rows the batches themselves leave (one starts
    // for every fifth of the table updated, by default) and takes no lock a batch waits
    // for; waiting for it made finalizing a 5M-row table 3x slower (decision 22).
    let vacuuming: bool = db
        .query_one(
            "wraparound_autovacuum_on_table",
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p
                              JOIN pg_stat_activity a ON a.pid = p.pid
                             WHERE p.relid = $1::text::regclass AND a.backend_type = 'autovacuum worker'
                               AND a.query LIKE '%(to prevent wraparound)')",
            &[&table],
        )?
        .get(0);
    Ok(vacuuming.then(|| format!("an anti-wraparound autovacuum is working on {table}")))
}
