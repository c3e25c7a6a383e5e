//! Statements of `vacuum` and of the jobs-table health line in `status`: per-table dead
//! tuples, size and last (auto)vacuum from the statistics views, and VACUUM itself.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{qualified, Db, Sql};

/// Dead tuples above this share of all tuples (and above `BLOATED_MIN_DEAD`) count as bloat.
pub const BLOATED_RATIO: f64 = 0.2;
pub const BLOATED_MIN_DEAD: i64 = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct TableStats {
    pub table: String,
    pub live_tuples: i64,
    pub dead_tuples: i64,
    /// dead / (live + dead); 0 for an empty table.
    pub dead_ratio: f64,
    /// Table, indexes and TOAST.
    pub bytes: i64,
    pub last_vacuum: Option<DateTime<Utc>>,
    pub last_autovacuum: Option<DateTime<Utc>>,
    pub last_analyze: Option<DateTime<Utc>>,
    pub last_autoanalyze: Option<DateTime<Utc>>,
}

impl TableStats {
    pub fn bloated(&self) -> bool {
        self.dead_tuples >= BLOATED_MIN_DEAD && self.dead_ratio > BLOATED_RATIO
    }
}

/// Statistics of `tables` in `schema`, in the order given; unknown names are left out.
pub fn table_stats(
    sql: &mut impl Sql,
    schema: &str,
    tables: &[String],
) -> anyhow::Result<Vec<TableStats>> {
    // A fresh snapshot: within one session the statistics are otherwise cached.
    sql.query(
        "clear_stat_snapshot",
        "SELECT pg_stat_clear_snapshot()",
        &[],
    )?;
    let rows = sql.query(
        "table_vacuum_stats",
        // The functions behind pg_stat_user_tables: planning that view costs a fresh session
        // more than a millisecond.
        "SELECT t.name, pg_stat_get_live_tuples(c.oid), pg_stat_get_dead_tuples(c.oid),
                pg_total_relation_size(c.oid), pg_stat_get_last_vacuum_time(c.oid),
                pg_stat_get_last_autovacuum_time(c.oid), pg_stat_get_last_analyze_time(c.oid),
                pg_stat_get_last_autoanalyze_time(c.oid)
           FROM unnest($2::text[]) WITH ORDINALITY AS t(name, ord)
           JOIN pg_namespace n ON n.nspname = $1
           JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind = 'r'
          ORDER BY t.ord",
        &[&schema, &tables],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let live: i64 = r.get(1);
            let dead: i64 = r.get(2);
            TableStats {
                table: r.get(0),
                live_tuples: live,
                dead_tuples: dead,
                dead_ratio: if live + dead > 0 {
                    dead as f64 / (live + dead) as f64
                } else {
                    0.0
                },
                bytes: r.get(3),
                last_vacuum: r.get(4),
                last_autovacuum: r.get(5),
                last_analyze: r.get(6),
                last_autoanalyze: r.get(7),
            }
        })
        .collect())
}

/// Whether `schema` has an ordinary table `table`.
pub fn table_exists(sql: &mut impl Sql, schema: &str, table: &str) -> anyhow::Result<bool> {
    Ok(sql
        .query_one(
            "table_exists",
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r')",
            &[&schema, &table],
        )?
        .get(0))
}

/// VACUUM of one table, outside any transaction as VACUUM must be. FULL waits at most
/// `lock_wait_ms` for its exclusive lock, so it never queues in front of the workers for long.
pub fn vacuum_table(
    db: &mut Db,
    schema: &str,
    table: &str,
    full: bool,
    analyze: bool,
    lock_wait_ms: u64,
) -> anyhow::Result<()> {
    let mut options = Vec::new();
    if full {
        options.push("FULL");
    }
    if analyze {
        options.push("ANALYZE");
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("({}) ", options.join(", "))
    };
    db.batch(
        "vacuum_lock_wait",
        &format!("SET lock_timeout = {lock_wait_ms}"),
    )?;
    let result = db.batch(
        if full {
            "vacuum_full_table"
        } else {
            "vacuum_table"
        },
        &format!("VACUUM {options}{}", qualified(schema, table)),
    );
    db.batch("vacuum_lock_wait_reset", "RESET lock_timeout")?;
    result
}
