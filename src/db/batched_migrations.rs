//! Bookkeeping of batched background migrations: the GitLab-shaped
//! `batched_background_migrations` and `batched_background_migration_jobs` tables.
//!
//! A migration's batch jobs tile `[min_value, max_value]` of its column without gaps or
//! overlaps, so its progress is the share of that range covered by succeeded jobs.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::status::migration_status_name;
use crate::db::{qualified, Db, Sql, Tx};

pub mod status {
    pub const PAUSED: i16 = 0;
    pub const ACTIVE: i16 = 1;
    pub const FINISHED: i16 = 3;
    pub const FAILED: i16 = 4;
    pub const FINALIZING: i16 = 5;
    pub const FINALIZED: i16 = 6;
}

pub mod job_status {
    pub const PENDING: i16 = 0;
    pub const RUNNING: i16 = 1;
    pub const FAILED: i16 = 2;
    pub const SUCCEEDED: i16 = 3;
}

pub fn job_status_name(status: i16) -> &'static str {
    match status {
        job_status::PENDING => "pending",
        job_status::RUNNING => "running",
        job_status::FAILED => "failed",
        job_status::SUCCEEDED => "succeeded",
        _ => "unknown",
    }
}

pub fn is_finished(status: i16) -> bool {
    status == status::FINISHED || status == status::FINALIZED
}

/// The two tables of one job schema, quoted.
pub struct Tables {
    migrations: String,
    jobs: String,
}

impl Tables {
    pub fn new(schema: &str) -> Tables {
        Tables {
            migrations: qualified(schema, "batched_background_migrations"),
            jobs: qualified(schema, "batched_background_migration_jobs"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackgroundMigration {
    pub id: i64,
    pub job_class_name: String,
    pub table_name: String,
    pub column_name: String,
    pub job_arguments: serde_json::Value,
    pub status: i16,
    pub status_name: &'static str,
    pub min_value: i64,
    pub max_value: i64,
    pub batch_size: i32,
    pub sub_batch_size: i32,
    pub max_batch_size: Option<i32>,
    pub pause_ms: i32,
    pub total_tuple_count: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Share of `[min_value, max_value]` covered by succeeded batch jobs.
    pub progress_pct: f64,
    pub jobs_total: i64,
    pub jobs_succeeded: i64,
    pub jobs_failed: i64,
}

const MIGRATION_COLUMNS: &str =
    "m.id, m.job_class_name, m.table_name, m.column_name, m.job_arguments,
       m.status, m.min_value, m.max_value, m.batch_size, m.sub_batch_size, m.max_batch_size,
       m.pause_ms, m.total_tuple_count, m.created_at, m.updated_at, m.started_at, m.finished_at,
       coalesce(j.covered, 0)::float8 / greatest(m.max_value - m.min_value + 1, 1)::float8 * 100,
       coalesce(j.total, 0), coalesce(j.succeeded, 0), coalesce(j.failed, 0)";

fn migration_query(t: &Tables, condition: &str) -> String {
    format!(
        "SELECT {MIGRATION_COLUMNS}
           FROM {migrations} m
           LEFT JOIN LATERAL (
                SELECT count(*) AS total,
                       count(*) FILTER (WHERE status = 3) AS succeeded,
                       count(*) FILTER (WHERE status = 2) AS failed,
                       sum(max_value - min_value + 1) FILTER (WHERE status = 3) AS covered
                  FROM {jobs} WHERE batched_background_migration_id = m.id) j ON true
          WHERE {condition}
          ORDER BY m.id",
        migrations = t.migrations,
        jobs = t.jobs,
    )
}

fn migration_from(r: &postgres::Row) -> BackgroundMigration {
    let status: i16 = r.get(5);
    let pct: f64 = r.get(17);
    BackgroundMigration {
        id: r.get(0),
        job_class_name: r.get(1),
        table_name: r.get(2),
        column_name: r.get(3),
        job_arguments: r.get(4),
        status,
        status_name: migration_status_name(status),
        min_value: r.get(6),
        max_value: r.get(7),
        batch_size: r.get(8),
        sub_batch_size: r.get(9),
        max_batch_size: r.get(10),
        pause_ms: r.get(11),
        total_tuple_count: r.get(12),
        created_at: r.get(13),
        updated_at: r.get(14),
        started_at: r.get(15),
        finished_at: r.get(16),
        // A finished migration is done whatever its batch jobs say (one marked finished by
        // hand, or finished by a tool that records no batch jobs).
        progress_pct: if is_finished(status) {
            100.0
        } else {
            (pct.min(100.0) * 10.0).round() / 10.0
        },
        jobs_total: r.get(18),
        jobs_succeeded: r.get(19),
        jobs_failed: r.get(20),
    }
}

pub fn list(db: &mut impl Sql, t: &Tables) -> anyhow::Result<Vec<BackgroundMigration>> {
    let rows = db.query(
        "list_background_migrations",
        &migration_query(t, "true"),
        &[],
    )?;
    Ok(rows.iter().map(migration_from).collect())
}

pub fn unfinished_ids(db: &mut impl Sql, t: &Tables) -> anyhow::Result<Vec<i64>> {
    let rows = db.query(
        "unfinished_background_migration_ids",
        &format!(
            "SELECT id FROM {} WHERE status NOT IN (3, 6) ORDER BY id",
            t.migrations
        ),
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub fn by_id(
    db: &mut impl Sql,
    t: &Tables,
    id: i64,
) -> anyhow::Result<Option<BackgroundMigration>> {
    let rows = db.query(
        "background_migration_by_id",
        &migration_query(t, "m.id = $1"),
        &[&id],
    )?;
    Ok(rows.first().map(migration_from))
}

/// GitLab's lookup: class, table, column and arguments (compared as jsonb) name one migration.
pub fn by_configuration(
    db: &mut impl Sql,
    t: &Tables,
    job_class_name: &str,
    table_name: &str,
    column_name: &str,
    job_arguments: &serde_json::Value,
) -> anyhow::Result<Option<BackgroundMigration>> {
    let rows = db.query(
        "background_migration_by_configuration",
        &migration_query(
            t,
            "m.job_class_name = $1 AND m.table_name = $2 AND m.column_name = $3 AND m.job_arguments = $4",
        ),
        &[&job_class_name, &table_name, &column_name, job_arguments],
    )?;
    Ok(rows.first().map(migration_from))
}

/// Migrations sharing at least two of class, table and column with what was asked for, or
/// all unfinished ones when none does: the candidates an operator most likely meant.
pub fn close_matches(
    db: &mut impl Sql,
    t: &Tables,
    job_class_name: &str,
    table_name: &str,
    column_name: &str,
) -> anyhow::Result<Vec<BackgroundMigration>> {
    let shares_two =
        "(job_class_name = $1)::int + (table_name = $2)::int + (column_name = $3)::int >= 2";
    let condition = format!(
        "m.id IN (SELECT id FROM {m} WHERE {shares_two})
         OR (m.status NOT IN (3, 6) AND NOT EXISTS (SELECT 1 FROM {m} WHERE {shares_two}))",
        m = t.migrations
    );
    let rows = db.query(
        "background_migration_close_matches",
        &migration_query(t, &condition),
        &[&job_class_name, &table_name, &column_name],
    )?;
    Ok(rows.iter().map(migration_from).collect())
}

pub fn status_of(db: &mut impl Sql, t: &Tables, id: i64) -> anyhow::Result<Option<i16>> {
    let rows = db.query(
        "background_migration_status",
        &format!("SELECT status FROM {} WHERE id = $1", t.migrations),
        &[&id],
    )?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// Moves a migration to `to` if it is in one of `from`; returns its status before, or
/// `None` when it was in none of them (nothing changed).
pub fn transition(
    db: &mut impl Sql,
    t: &Tables,
    id: i64,
    from: &[i16],
    to: i16,
) -> anyhow::Result<Option<i16>> {
    let rows = db.query(
        "background_migration_transition",
        &format!(
            "UPDATE {m} m SET status = $3::int2, updated_at = now(),
                    started_at = CASE WHEN $3::int2 = 5 THEN coalesce(m.started_at, now()) ELSE m.started_at END,
                    finished_at = CASE WHEN $3::int2 IN (3, 6) THEN now() END
               FROM (SELECT status FROM {m} WHERE id = $1 FOR UPDATE) before
              WHERE m.id = $1 AND before.status = ANY($2::int2[])
             RETURNING before.status",
            m = t.migrations
        ),
        &[&id, &from, &to],
    )?;
    Ok(rows.first().map(|r| r.get(0)))
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchJob {
    pub id: i64,
    pub min_value: i64,
    pub max_value: i64,
    pub batch_size: i32,
    pub sub_batch_size: i32,
    pub pause_ms: i32,
    pub status: i16,
    pub status_name: &'static str,
    pub attempts: i16,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub metrics: serde_json::Value,
}

const JOB_COLUMNS: &str =
    "id, min_value, max_value, batch_size, sub_batch_size, pause_ms, status, attempts,
       started_at, finished_at, metrics";

fn job_from(r: &postgres::Row) -> BatchJob {
    let status: i16 = r.get(6);
    BatchJob {
        id: r.get(0),
        min_value: r.get(1),
        max_value: r.get(2),
        batch_size: r.get(3),
        sub_batch_size: r.get(4),
        pause_ms: r.get(5),
        status,
        status_name: job_status_name(status),
        attempts: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
        metrics: r.get(10),
    }
}

/// The most recent `limit` batch jobs and every failed one, newest first.
pub fn recent_jobs(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<BatchJob>> {
    let rows = db.query(
        "recent_batch_jobs",
        &format!(
            "(SELECT {JOB_COLUMNS} FROM {jobs} WHERE batched_background_migration_id = $1
               ORDER BY id DESC LIMIT $2)
             UNION
             SELECT {JOB_COLUMNS} FROM {jobs} WHERE batched_background_migration_id = $1 AND status = 2
             ORDER BY id DESC",
            jobs = t.jobs
        ),
        &[&migration_id, &limit],
    )?;
    Ok(rows.iter().map(job_from).collect())
}

/// The first batch job not yet succeeded (pending, failed, or left running by a killed
/// run), lowest range first.
pub fn next_unfinished_job(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
) -> anyhow::Result<Option<BatchJob>> {
    let rows = db.query(
        "next_unfinished_batch_job",
        &format!(
            "SELECT {JOB_COLUMNS} FROM {jobs}
              WHERE batched_background_migration_id = $1 AND status <> 3
              ORDER BY min_value LIMIT 1",
            jobs = t.jobs
        ),
        &[&migration_id],
    )?;
    Ok(rows.first().map(job_from))
}

/// The highest value covered by any batch job, succeeded or not.
pub fn last_covered_value(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
) -> anyhow::Result<Option<i64>> {
    Ok(db
        .query_one(
            "last_covered_value",
            &format!(
                "SELECT max(max_value) FROM {} WHERE batched_background_migration_id = $1",
                t.jobs
            ),
            &[&migration_id],
        )?
        .get(0))
}

/// What has been done before this run and what is left, for the progress bar: rows of
/// succeeded jobs (as recorded in their metrics, else their batch size) and batch sizes of
/// the jobs still to run.
pub fn rows_done_and_pending(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
) -> anyhow::Result<(i64, i64)> {
    let row = db.query_one(
        "batch_rows_done_and_pending",
        &format!(
            "SELECT coalesce(sum(coalesce((metrics->>'rows')::int8, batch_size)) FILTER (WHERE status = 3), 0)::int8,
                    coalesce(sum(batch_size) FILTER (WHERE status <> 3), 0)::int8
               FROM {} WHERE batched_background_migration_id = $1",
            t.jobs
        ),
        &[&migration_id],
    )?;
    Ok((row.get(0), row.get(1)))
}

pub struct NewJob {
    pub min_value: i64,
    pub max_value: i64,
    pub batch_size: i32,
    pub sub_batch_size: i32,
    pub pause_ms: i32,
}

/// Inserts a pending batch job.
pub fn insert_job(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
    job: &NewJob,
) -> anyhow::Result<BatchJob> {
    let row = db.query_one(
        "insert_batch_job",
        &format!(
            "INSERT INTO {jobs} (batched_background_migration_id, min_value, max_value, batch_size,
                                 sub_batch_size, pause_ms, status)
             VALUES ($1, $2, $3, $4, $5, $6, 0)
             RETURNING {JOB_COLUMNS}",
            jobs = t.jobs
        ),
        &[
            &migration_id,
            &job.min_value,
            &job.max_value,
            &job.batch_size,
            &job.sub_batch_size,
            &job.pause_ms,
        ],
    )?;
    Ok(job_from(&row))
}

/// Inserts a batch job already running its first attempt (see [`start_job`]).
pub fn insert_started_job(
    db: &mut Db,
    t: &Tables,
    migration_id: i64,
    job: &NewJob,
) -> anyhow::Result<BatchJob> {
    let mut tx = db.transaction()?;
    without_flush_wait(&mut tx)?;
    let row = tx.query_one(
        "insert_started_batch_job",
        &format!(
            "INSERT INTO {jobs} (batched_background_migration_id, min_value, max_value, batch_size,
                                 sub_batch_size, pause_ms, status, attempts, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, 1, now())
             RETURNING {JOB_COLUMNS}",
            jobs = t.jobs
        ),
        &[
            &migration_id,
            &job.min_value,
            &job.max_value,
            &job.batch_size,
            &job.sub_batch_size,
            &job.pause_ms,
        ],
    )?;
    tx.commit()?;
    Ok(job_from(&row))
}

/// Marks a job running and counts the attempt, committed before the batch's own
/// transaction begins, so a run killed mid-batch leaves a visible `running` job whose
/// attempt counts.
pub fn start_job(db: &mut Db, t: &Tables, job_id: i64) -> anyhow::Result<i16> {
    let mut tx = db.transaction()?;
    without_flush_wait(&mut tx)?;
    let attempts = tx
        .query_one(
            "start_batch_job",
            &format!(
                "UPDATE {} SET status = 1, attempts = attempts + 1, started_at = now(),
                        finished_at = NULL, updated_at = now()
                  WHERE id = $1 RETURNING attempts",
                t.jobs
            ),
            &[&job_id],
        )?
        .get(0);
    tx.commit()?;
    Ok(attempts)
}

/// The transaction's commit does not wait for its WAL flush. Safe for batch bookkeeping and
/// batches: a server crash can lose only the last commits, in order, and a lost batch
/// (data and its `succeeded` record alike) is simply run again; the migration's final
/// `finished` commit waits for the flush of everything before it.
pub fn without_flush_wait(tx: &mut Tx<'_>) -> anyhow::Result<()> {
    tx.execute(
        "commit_without_flush_wait",
        "SELECT set_config('synchronous_commit', 'off', true)",
        &[],
    )?;
    Ok(())
}

/// Records success inside the batch's transaction, so data and bookkeeping commit together.
pub fn job_succeeded(
    db: &mut impl Sql,
    t: &Tables,
    job_id: i64,
    metrics: &serde_json::Value,
) -> anyhow::Result<()> {
    record_job_end(db, t, job_id, 3, metrics, "batch_job_succeeded")
}

pub fn job_failed(
    db: &mut impl Sql,
    t: &Tables,
    job_id: i64,
    metrics: &serde_json::Value,
) -> anyhow::Result<()> {
    record_job_end(db, t, job_id, 2, metrics, "batch_job_failed")
}

fn record_job_end(
    db: &mut impl Sql,
    t: &Tables,
    job_id: i64,
    status: i16,
    metrics: &serde_json::Value,
    name: &str,
) -> anyhow::Result<()> {
    db.execute(
        name,
        &format!(
            "UPDATE {} SET status = $3, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                    metrics = $2
              WHERE id = $1",
            t.jobs
        ),
        &[&job_id, metrics, &status],
    )?;
    Ok(())
}

/// Halves a job at `mid`: it keeps `[min, mid]` (and its attempts); a new pending job takes
/// `(mid, max]`. One transaction, so the tiling never has a gap.
pub fn split_job(
    db: &mut Db,
    t: &Tables,
    migration_id: i64,
    job: &BatchJob,
    mid: i64,
    first_size: i32,
    second_size: i32,
) -> anyhow::Result<()> {
    let mut tx = db.transaction()?;
    tx.execute(
        "shrink_batch_job",
        &format!(
            "UPDATE {} SET max_value = $2, batch_size = $3, sub_batch_size = least(sub_batch_size, $3),
                    updated_at = now()
              WHERE id = $1",
            t.jobs
        ),
        &[&job.id, &mid, &first_size],
    )?;
    insert_job(
        &mut tx,
        t,
        migration_id,
        &NewJob {
            min_value: mid + 1,
            max_value: job.max_value,
            batch_size: second_size,
            sub_batch_size: job.sub_batch_size.min(second_size),
            pause_ms: job.pause_ms,
        },
    )?;
    tx.commit()
}

/// GitLab's `reset_attempts_of_blocked_jobs!`: an explicit finalize gives batches that used
/// up their attempts a fresh set.
pub fn reset_exhausted_jobs(
    db: &mut impl Sql,
    t: &Tables,
    migration_id: i64,
    max_attempts: i16,
) -> anyhow::Result<u64> {
    db.execute(
        "reset_exhausted_batch_jobs",
        &format!(
            "UPDATE {} SET attempts = 0, updated_at = now()
              WHERE batched_background_migration_id = $1 AND status IN (1, 2) AND attempts >= $2",
            t.jobs
        ),
        &[&migration_id, &max_attempts],
    )
}

/// Failed jobs back to pending with fresh attempts, and the migration active again.
pub fn retry_failed_jobs(db: &mut Db, t: &Tables, id: i64) -> anyhow::Result<u64> {
    let mut tx = db.transaction()?;
    let reset = tx.execute(
        "retry_failed_batch_jobs",
        &format!(
            "UPDATE {} SET status = 0, attempts = 0, updated_at = now()
              WHERE batched_background_migration_id = $1 AND status = 2",
            t.jobs
        ),
        &[&id],
    )?;
    tx.execute(
        "reactivate_background_migration",
        &format!(
            "UPDATE {} SET status = 1, finished_at = NULL, updated_at = now() WHERE id = $1",
            t.migrations
        ),
        &[&id],
    )?;
    tx.commit()?;
    Ok(reset)
}

/// The GitLab runbook's "mark a failed migration finished": every job succeeded, the
/// migration finished. Returns how many jobs changed.
pub fn mark_finished(db: &mut Db, t: &Tables, id: i64) -> anyhow::Result<u64> {
    let mut tx = db.transaction()?;
    let changed = tx.execute(
        "mark_batch_jobs_succeeded",
        &format!(
            "UPDATE {} SET status = 3, updated_at = now()
              WHERE batched_background_migration_id = $1 AND status <> 3",
            t.jobs
        ),
        &[&id],
    )?;
    tx.execute(
        "mark_background_migration_finished",
        &format!(
            "UPDATE {} SET status = 3, finished_at = now(), updated_at = now() WHERE id = $1",
            t.migrations
        ),
        &[&id],
    )?;
    tx.commit()?;
    Ok(changed)
}

#[derive(Debug, Serialize)]
pub struct RunStats {
    pub batches: i64,
    pub rows: i64,
    pub rows_updated: i64,
    pub batch_ms_p50: Option<f64>,
    pub batch_ms_p99: Option<f64>,
    pub batch_ms_max: Option<f64>,
}

/// Figures for the given batch jobs, read back from their recorded metrics.
pub fn run_stats(db: &mut impl Sql, t: &Tables, job_ids: &[i64]) -> anyhow::Result<RunStats> {
    let row = db.query_one(
        "batch_run_stats",
        &format!(
            "SELECT count(*), coalesce(sum((metrics->>'rows')::int8), 0)::int8,
                    coalesce(sum((metrics->>'rows_updated')::int8), 0)::int8,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    max((metrics->>'duration_ms')::float8)
               FROM {} WHERE id = ANY($1) AND status = 3",
            t.jobs
        ),
        &[&job_ids],
    )?;
    Ok(RunStats {
        batches: row.get(0),
        rows: row.get(1),
        rows_updated: row.get(2),
        batch_ms_p50: row.get(3),
        batch_ms_p99: row.get(4),
        batch_ms_max: row.get(5),
    })
}
