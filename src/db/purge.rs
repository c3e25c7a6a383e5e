//! Statements of `purge-jobs` and `purge-archive`: which jobs count as finished before a
//! cut-off, one bounded batch that deletes (or moves into a month archive table) them, and
//! the archive tables themselves.
//!
//! Archive tables live in the job schema as `jobs_archive_YYYY_MM` (the UTC month of the
//! job's finish time), so every backup of the schema carries them and a restore brings
//! them back (docs/decisions.md, docs/housekeeping.md).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{qualified, quote_ident, Profile, ProfileKind, Sql, Tx};
use crate::error::{failure, Exit};

/// The prefix of archive tables; the rest of the name is `YYYY_MM`.
pub const ARCHIVE_PREFIX: &str = "jobs_archive_";

/// Which jobs are finished, by profile.
#[derive(Debug, Clone)]
pub enum Finished {
    /// Native: these states (a subset of succeeded, failed, cancelled), held by no worker.
    States(Vec<String>),
    /// Graphile Worker deletes jobs that succeed; a permanently failed job stays with
    /// attempts >= max_attempts. Only those, and never one a worker holds.
    GraphilePermanentlyFailed,
}

impl Finished {
    /// The predicate on unqualified columns; `$3` is the states array. Graphile's form
    /// mentions it too (always true), so every statement binds the same parameters.
    fn predicate(&self) -> &'static str {
        match self {
            Finished::States(_) => "state = ANY($3::text[]) AND locked_by IS NULL",
            Finished::GraphilePermanentlyFailed => {
                "attempts >= max_attempts AND locked_at IS NULL AND locked_by IS NULL \
                 AND $3::text[] IS NOT NULL"
            }
        }
    }

    fn states(&self) -> Vec<String> {
        match self {
            Finished::States(s) => s.clone(),
            Finished::GraphilePermanentlyFailed => Vec::new(),
        }
    }
}

/// The UTC finish month of a job row, `YYYY_MM`, as archive table names carry it.
const MONTH_OF: &str = "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY_MM')";

/// The jobs table's name without its schema.
pub fn jobs_table_name(profile: &Profile) -> &'static str {
    match profile.kind {
        ProfileKind::GraphileWorker(crate::db::profile::GraphileGeneration::V016)
        | ProfileKind::GraphileWorker(crate::db::profile::GraphileGeneration::V017Plus) => {
            "_private_jobs"
        }
        _ => "jobs",
    }
}

/// A foreign key that points at the jobs table from elsewhere.
#[derive(Debug, Clone, Serialize)]
pub struct Dependent {
    pub constraint: String,
    pub table: String,
    /// `ON DELETE` action: cascade, set null, set default, restrict or no action.
    pub on_delete: String,
}

/// Foreign keys referencing the jobs table: their rows would block a delete or go with it.
pub fn dependents(sql: &mut impl Sql, profile: &Profile) -> anyhow::Result<Vec<Dependent>> {
    let rows = sql.query(
        "jobs_dependents",
        "SELECT c.conname::text, c.conrelid::regclass::text,
                CASE c.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null'
                                   WHEN 'd' THEN 'set default' WHEN 'r' THEN 'restrict'
                                   ELSE 'no action' END
           FROM pg_constraint c
          WHERE c.contype = 'f'
            AND c.confrelid = (SELECT r.oid FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
                                WHERE n.nspname = $1 AND r.relname = $2)
          ORDER BY 1",
        &[&profile.schema, &jobs_table_name(profile)],
    )?;
    Ok(rows
        .iter()
        .map(|r| Dependent {
            constraint: r.get(0),
            table: r.get(1),
            on_delete: r.get(2),
        })
        .collect())
}

/// The server's clock minus `older_than`, read once so every batch uses the same cut-off.
pub fn cutoff_before_now(sql: &mut impl Sql, older_than_ms: i64) -> anyhow::Result<DateTime<Utc>> {
    let text = format!("{older_than_ms} milliseconds");
    Ok(sql
        .query_one(
            "purge_cutoff",
            "SELECT now() - $1::text::interval",
            &[&text],
        )?
        .get(0))
}

/// The smallest and largest job id now (None on an empty table). Jobs created after this
/// are newer than any cut-off in the past, so the purge stops at the largest.
pub fn id_bounds(sql: &mut impl Sql, profile: &Profile) -> anyhow::Result<Option<(i64, i64)>> {
    let row = sql.query_one(
        "jobs_id_bounds",
        &format!("SELECT min(id), max(id) FROM {}", profile.jobs_table()),
        &[],
    )?;
    let min: Option<i64> = row.get(0);
    let max: Option<i64> = row.get(1);
    Ok(min.zip(max))
}

/// Jobs that a purge would remove, counted by finish month and state.
#[derive(Debug, Clone, Serialize)]
pub struct MonthCount {
    pub month: String,
    pub state: String,
    pub jobs: i64,
}

/// In the id window `[lo, hi)` (the ids the purge would visit).
pub fn preview(
    sql: &mut impl Sql,
    profile: &Profile,
    finished: &Finished,
    cutoff: DateTime<Utc>,
    window: (i64, i64),
) -> anyhow::Result<Vec<MonthCount>> {
    let state = match finished {
        Finished::States(_) => "state",
        Finished::GraphilePermanentlyFailed => "'failed'",
    };
    let rows = sql.query(
        "preview_purge",
        &format!(
            "SELECT {MONTH_OF}, {state}, count(*) FROM {table}
              WHERE id >= $1 AND id < $2 AND updated_at < $4 AND {pred}
              GROUP BY 1, 2 ORDER BY 1, 2",
            table = profile.jobs_table(),
            pred = finished.predicate(),
        ),
        &[&window.0, &window.1, &finished.states(), &cutoff],
    )?;
    Ok(rows
        .iter()
        .map(|r| MonthCount {
            month: r.get::<_, String>(0).replace('_', "-"),
            state: r.get(1),
            jobs: r.get(2),
        })
        .collect())
}

/// The finish months (`YYYY_MM`) of the jobs in one id window, read without locking so the
/// batch can create their archive tables before it moves rows.
pub fn window_months(
    tx: &mut Tx<'_>,
    profile: &Profile,
    finished: &Finished,
    cutoff: DateTime<Utc>,
    window: (i64, i64),
) -> anyhow::Result<Vec<String>> {
    let rows = tx.query(
        "purge_window_months",
        &format!(
            "SELECT DISTINCT {MONTH_OF} FROM {table}
              WHERE id >= $1 AND id < $2 AND updated_at < $4 AND {pred}",
            table = profile.jobs_table(),
            pred = finished.predicate(),
        ),
        &[&window.0, &window.1, &finished.states(), &cutoff],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The jobs table's columns, in order: the archive tables carry the same.
pub fn job_columns(sql: &mut impl Sql, profile: &Profile) -> anyhow::Result<Vec<String>> {
    table_columns(sql, &profile.schema, jobs_table_name(profile))
}

fn table_columns(sql: &mut impl Sql, schema: &str, table: &str) -> anyhow::Result<Vec<String>> {
    let rows = sql.query(
        "table_columns",
        "SELECT a.attname::text FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
        &[&schema, &table],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Creates the archive table of `month` (`YYYY_MM`) unless it exists: the jobs table's
/// columns and NOT NULLs (no defaults, so it depends on no sequence), keyed by id. An
/// existing one must have every column of the jobs table, or its rows would lose data.
pub fn ensure_archive_table(
    tx: &mut Tx<'_>,
    profile: &Profile,
    month: &str,
    columns: &[String],
) -> anyhow::Result<()> {
    let name = format!("{ARCHIVE_PREFIX}{month}");
    let existing = table_columns(tx, &profile.schema, &name)?;
    if existing.is_empty() {
        tx.batch(
            "create_archive_table",
            &format!(
                "CREATE TABLE {archive} (LIKE {jobs}, PRIMARY KEY (id))",
                archive = qualified(&profile.schema, &name),
                jobs = profile.jobs_table()
            ),
        )?;
        return Ok(());
    }
    let missing: Vec<&str> = columns
        .iter()
        .filter(|c| !existing.contains(c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(failure(
            Exit::Refused,
            format!(
                "archive table {name} lacks column(s) {} of the jobs table (it predates a schema change); \
                 add them to it with ALTER TABLE, or purge without --archive",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// What one batch removed, by month (`YYYY-MM`).
#[derive(Debug, Default)]
pub struct BatchResult {
    pub deleted: i64,
    pub by_month: Vec<(String, i64)>,
}

/// How a window's rows are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// One `DELETE` over the window: as fast as a single `DELETE` of the same rows. A row a
    /// worker has locked makes it wait, up to the batch's `lock_timeout`.
    Delete,
    /// `SELECT … FOR UPDATE SKIP LOCKED` first, then delete what it got: rows locked right
    /// now are left for the next run, at about four times the cost (every row is written
    /// twice). For a window whose plain `DELETE` ran into a lock.
    SkipLocked,
}

/// Deletes the finished jobs before `cutoff` in the id window `[lo, hi)`. With `archive`
/// (the months whose tables exist, and the jobs table's columns) the same statement inserts
/// every deleted row into its month's table, and the counts must agree or the caller's
/// transaction rolls back. Without it, only the total is counted (`by_month` stays empty):
/// returning every row to count it by month doubled the cost of the delete.
pub fn purge_window(
    tx: &mut Tx<'_>,
    profile: &Profile,
    finished: &Finished,
    cutoff: DateTime<Utc>,
    window: (i64, i64),
    archive: Option<(&[String], &[String])>,
    rows: Rows,
) -> anyhow::Result<BatchResult> {
    let table = profile.jobs_table();
    let pred = finished.predicate();
    let states = finished.states();
    // The month filter keeps rows whose archive table does not exist yet out of the delete.
    let months_filter = if archive.is_some() {
        format!(" AND {MONTH_OF} = ANY($5::text[])")
    } else {
        String::new()
    };
    // The window bounds are repeated on the DELETE so its join reads the window through the
    // primary key instead of scanning the whole table.
    let (doomed, delete) = match rows {
        Rows::Delete => (
            String::new(),
            format!(
                "DELETE FROM {table} j
                  WHERE j.id >= $1 AND j.id < $2 AND updated_at < $4 AND {pred}{months_filter}"
            ),
        ),
        Rows::SkipLocked => (
            format!(
                "doomed AS (
                     SELECT id FROM {table}
                      WHERE id >= $1 AND id < $2 AND updated_at < $4 AND {pred}{months_filter}
                      FOR UPDATE SKIP LOCKED
                 ), "
            ),
            format!(
                "DELETE FROM {table} j USING doomed d
                  WHERE j.id = d.id AND j.id >= $1 AND j.id < $2"
            ),
        ),
    };
    let Some((months, columns)) = archive else {
        let deleted = match rows {
            Rows::Delete => tx.execute(
                "purge_jobs_batch",
                &delete,
                &[&window.0, &window.1, &states, &cutoff],
            )? as i64,
            Rows::SkipLocked => tx
                .query_one(
                    "purge_jobs_batch_skip_locked",
                    &format!(
                        "WITH {doomed}gone AS ({delete} RETURNING 1) SELECT count(*) FROM gone"
                    ),
                    &[&window.0, &window.1, &states, &cutoff],
                )?
                .get(0),
        };
        return Ok(BatchResult {
            deleted,
            by_month: Vec::new(),
        });
    };
    if months.is_empty() {
        return Ok(BatchResult::default());
    }
    let cols = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut inserts = String::new();
    let mut counts = Vec::new();
    for (i, month) in months.iter().enumerate() {
        let archive = qualified(&profile.schema, &format!("{ARCHIVE_PREFIX}{month}"));
        // Months are `YYYY_MM` from the server and bound, never spliced, in the filter.
        inserts.push_str(&format!(
            ", ins{i} AS (INSERT INTO {archive} ({cols}) SELECT {cols} FROM gone
                          WHERE {MONTH_OF} = ($5::text[])[{n}] RETURNING 1)",
            n = i + 1
        ));
        counts.push(format!(
            "SELECT ($5::text[])[{n}], (SELECT count(*) FROM ins{i})",
            n = i + 1
        ));
    }
    // The total deleted is compared with the inserts below.
    let statement = format!(
        "WITH {doomed}gone AS ({delete} RETURNING j.*){inserts}
         SELECT m, n FROM ({union}) per_month(m, n)
         UNION ALL SELECT NULL, (SELECT count(*) FROM gone)",
        union = counts.join(" UNION ALL ")
    );
    let months_param: Vec<String> = months.to_vec();
    let rows = tx.query(
        "purge_jobs_to_archive_batch",
        &statement,
        &[&window.0, &window.1, &states, &cutoff, &months_param],
    )?;
    let mut per_month = Vec::new();
    let mut gone = 0;
    for r in &rows {
        let month: Option<String> = r.get(0);
        let n: i64 = r.get(1);
        match month {
            Some(m) if n > 0 => per_month.push((m, n)),
            Some(_) => {}
            None => gone = n,
        }
    }
    let archived: i64 = per_month.iter().map(|(_, n)| n).sum();
    if archived != gone {
        return Err(failure(
            Exit::Runtime,
            format!("archive batch moved {archived} row(s) but deleted {gone}; rolled back, nothing changed"),
        ));
    }
    Ok(result(per_month))
}

fn result(per_month: Vec<(String, i64)>) -> BatchResult {
    BatchResult {
        deleted: per_month.iter().map(|(_, n)| n).sum(),
        by_month: per_month
            .into_iter()
            .map(|(m, n)| (m.replace('_', "-"), n))
            .collect(),
    }
}

/// Bounds each statement of a batch transaction, so a batch never runs or waits long.
pub fn limit_batch(tx: &mut Tx<'_>, statement_ms: u64, lock_ms: u64) -> anyhow::Result<()> {
    tx.batch(
        "limit_purge_batch",
        &format!(
            "SET LOCAL statement_timeout = {statement_ms}; SET LOCAL lock_timeout = {lock_ms}"
        ),
    )
}

/// An archive month table.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveTable {
    pub table: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Exact row count.
    pub rows: i64,
    pub bytes: i64,
}

/// The archive tables of the job schema, oldest month first.
pub fn archive_tables(sql: &mut impl Sql, schema: &str) -> anyhow::Result<Vec<ArchiveTable>> {
    let rows = sql.query(
        "list_archive_tables",
        "SELECT c.relname::text, pg_total_relation_size(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r'
            AND c.relname ~ ('^' || $2 || '[0-9]{4}_[0-9]{2}$')
          ORDER BY c.relname",
        &[&schema, &ARCHIVE_PREFIX],
    )?;
    let mut tables = Vec::new();
    for r in rows {
        let table: String = r.get(0);
        let count: i64 = sql
            .query_one(
                "count_archive_rows",
                &format!("SELECT count(*) FROM {}", qualified(schema, &table)),
                &[],
            )?
            .get(0);
        let month = table[ARCHIVE_PREFIX.len()..].replace('_', "-");
        tables.push(ArchiveTable {
            table,
            month,
            rows: count,
            bytes: r.get(1),
        });
    }
    Ok(tables)
}

/// Drops archive tables in one transaction: all go, or none.
pub fn drop_archive_tables(tx: &mut Tx<'_>, schema: &str, tables: &[String]) -> anyhow::Result<()> {
    tx.batch("limit_archive_drop", "SET LOCAL lock_timeout = '5s'")?;
    for table in tables {
        tx.batch(
            "drop_archive_table",
            &format!("DROP TABLE {}", qualified(schema, table)),
        )?;
    }
    Ok(())
}
