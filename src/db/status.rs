//! What `status` reports. Built to stay cheap on 10M jobs: locks and running jobs come from
//! the small locked-jobs index (exact), queued jobs from their partial index while it is
//! small; other counts come from planner statistics unless exact counts are asked for, and
//! the result says which. Graphile Worker's jobs table has no state column and no index on
//! locked jobs: once it is big, its buckets are estimated from a sample of its pages, and its
//! job locks can only be counted by reading all of it (see [`JobCounts::locks_need_a_scan`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use postgres::types::ToSql;

use crate::db::profile::LiveSet;
use crate::db::workers::interval_text;
use crate::db::{qualified, quote_ident, Db, Profile, ProfileKind, ServerFacts, Sql};

/// Below this many heap pages an exact count is as cheap as reading statistics.
const EXACT_BELOW_PAGES: i64 = 1280;

/// How many heap pages of a big Graphile Worker jobs table the estimate reads: at 60 jobs a
/// page about 12,000 rows (ANALYZE samples 30,000), a fixed 2-3 ms whatever the table's
/// size. At 10M jobs 300 pages came within 6% of every bucket above 1%, and cost 1.5 ms more.
const GRAPHILE_SAMPLE_PAGES: f64 = 200.0;

#[derive(Debug, Serialize)]
pub struct JobCounts {
    /// Per state (native), or per Graphile Worker bucket ([`GRAPHILE_BUCKETS`]); some native
    /// states may be estimates (see `estimated`).
    pub by_state: BTreeMap<String, i64>,
    pub total: i64,
    /// States whose count is an estimate (see `estimated_from`).
    pub estimated: Vec<String>,
    /// Where the estimates come from: "planner statistics" (native) or "a sample of the jobs
    /// table" (Graphile Worker); absent when every count is exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_from: Option<&'static str>,
}

impl JobCounts {
    /// Whether the job locks behind the `locked` bucket must be counted by scanning the whole
    /// jobs table (a big Graphile Worker table, whose locked jobs no index holds).
    pub fn locks_need_a_scan(&self) -> bool {
        self.estimated.iter().any(|s| s == "locked")
    }
}

#[derive(Debug, Serialize)]
pub struct LockHolder {
    pub locked_by: String,
    pub jobs: i64,
    pub queues: i64,
    /// Locks of this holder that count as stale.
    pub stale_jobs: i64,
    pub stale_queues: i64,
    pub oldest_lock: Option<DateTime<Utc>>,
    /// In the live set: heartbeating within stale_after, or listed by Graphile Worker Pro.
    pub live: bool,
    pub registered: bool,
    /// The process holding the lock, where the id says or the registry knows it: a native
    /// worker's `hostname:pid`, a Graphile Worker v0.17+ pool id (one pool is one process).
    /// Ids of one process are grouped by this in the human output.
    pub process: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UnfinishedMigration {
    pub id: i64,
    pub job_class_name: String,
    pub table_name: String,
    pub column_name: String,
    pub job_arguments: serde_json::Value,
    pub status: i16,
    pub status_name: &'static str,
    pub progress_pct: f64,
}

/// Graphile Worker treats a lock older than this as expired (its `resetLockedAt`).
pub const GRAPHILE_LOCK_EXPIRY: &str = "4 hours";

pub const NATIVE_STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "cancelled"];

/// Graphile Worker keeps no state column; its jobs fall into these, in this order (each job
/// into the first that fits): held by a worker; out of attempts (kept, never run again);
/// waiting to retry after a failure; never tried and due; never tried and due later.
pub const GRAPHILE_BUCKETS: [&str; 5] = ["locked", "failed", "retrying", "due_now", "scheduled"];

pub fn migration_status_name(status: i16) -> &'static str {
    match status {
        0 => "paused",
        1 => "active",
        3 => "finished",
        4 => "failed",
        5 => "finalizing",
        6 => "finalized",
        _ => "unknown",
    }
}

/// `locked_jobs`: the jobs holding a lock, when the caller counted them already (native
/// running jobs are exactly those, so they need not be counted twice).
pub fn job_counts(
    db: &mut impl Sql,
    profile: &Profile,
    exact: bool,
    locked_jobs: Option<i64>,
) -> anyhow::Result<JobCounts> {
    let jobs = profile.jobs_table();
    if profile.kind != ProfileKind::Jobdb {
        return graphile_job_counts(db, &jobs, exact);
    }
    let stats = db.query_one(
        "jobs_table_stats",
        "SELECT c.reltuples::float8, c.relpages::int8,
                pg_relation_size(c.oid) / current_setting('block_size')::int8,
                coalesce(pg_relation_size(to_regclass(quote_ident($2) || '.jobs_queued_idx')), 0)
                    / current_setting('block_size')::int8
           FROM pg_class c WHERE c.oid = $1::text::regclass",
        &[&jobs, &profile.schema],
    )?;
    let (reltuples, relpages, pages_now, queued_index_pages): (f64, i64, i64, i64) =
        (stats.get(0), stats.get(1), stats.get(2), stats.get(3));
    let statistics_usable = reltuples >= 0.0 && relpages > 0;
    let mut by_state = BTreeMap::new();
    let mut estimated = Vec::new();
    if exact || pages_now < EXACT_BELOW_PAGES || !statistics_usable {
        for s in NATIVE_STATES {
            by_state.insert(s.to_string(), 0);
        }
        for row in db.query(
            "count_jobs_by_state",
            &format!("SELECT state, count(*) FROM {jobs} GROUP BY state"),
            &[],
        )? {
            by_state.insert(row.get(0), row.get(1));
        }
    } else {
        // Scale the last ANALYZE's density to the table's current size, as the planner does.
        let total_estimate = reltuples / relpages as f64 * pages_now as f64;
        let freqs = db.query(
            "state_frequencies",
            "SELECT v.state, v.freq::float8
               FROM pg_stats s,
                    unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS v(state, freq)
              WHERE s.schemaname = $1 AND s.tablename = 'jobs' AND s.attname = 'state'",
            &[&profile.schema],
        )?;
        let exact_queued = queued_index_pages < EXACT_BELOW_PAGES / 2;
        for s in ["queued", "succeeded", "failed", "cancelled"] {
            if s == "queued" && exact_queued {
                continue;
            }
            let freq: f64 = freqs
                .iter()
                .find(|r| r.get::<_, String>(0) == s)
                .map_or(0.0, |r| r.get(1));
            by_state.insert(s.to_string(), (total_estimate * freq).round() as i64);
            estimated.push(s.to_string());
        }
        if exact_queued {
            let queued: i64 = db
                .query_one(
                    "count_queued_jobs",
                    &format!("SELECT count(*) FROM {jobs} WHERE state = 'queued'"),
                    &[],
                )?
                .get(0);
            by_state.insert("queued".to_string(), queued);
        }
        // Running jobs are exactly the locked ones (constraint jobs_running_is_locked), and
        // those are counted from the small locked-jobs index without touching the heap.
        let running: i64 = match locked_jobs {
            Some(n) => n,
            None => db
                .query_one(
                    "count_running_jobs",
                    &format!("SELECT count(*) FROM {jobs} WHERE locked_by IS NOT NULL"),
                    &[],
                )?
                .get(0),
        };
        by_state.insert("running".to_string(), running);
    }
    let total = by_state.values().sum();
    Ok(JobCounts {
        by_state,
        total,
        estimated_from: (!estimated.is_empty()).then_some("planner statistics"),
        estimated,
    })
}

/// Each Graphile Worker bucket's condition, in [`GRAPHILE_BUCKETS`] order.
const GRAPHILE_BUCKET_FILTERS: &str = "count(*) FILTER (WHERE locked_by IS NOT NULL),
     count(*) FILTER (WHERE locked_by IS NULL AND attempts >= max_attempts),
     count(*) FILTER (WHERE locked_by IS NULL AND attempts > 0 AND attempts < max_attempts),
     count(*) FILTER (WHERE locked_by IS NULL AND attempts = 0 AND run_at <= now()),
     count(*) FILTER (WHERE locked_by IS NULL AND attempts = 0 AND run_at > now())";

/// Graphile Worker deletes finished jobs, so its table holds only the work still to do (and
/// permanent failures), and while it is small counting it is cheap. A bucket is a condition
/// on four columns (lock, attempts, max_attempts, run_at against now) whose joint
/// distribution planner statistics do not keep (they are per column, and the engine's schema
/// is not ours to add extended statistics to); so a big table is estimated from a sample of
/// its pages: the buckets' shares in the sample, times the table's size estimated as the
/// planner does (the last ANALYZE's rows per page times its current pages).
fn graphile_job_counts(db: &mut impl Sql, jobs: &str, exact: bool) -> anyhow::Result<JobCounts> {
    let stats = db.query_one(
        "graphile_jobs_table_stats",
        "SELECT c.reltuples::float8, c.relpages::int8,
                pg_relation_size(c.oid) / current_setting('block_size')::int8
           FROM pg_class c WHERE c.oid = $1::text::regclass",
        &[&jobs],
    )?;
    let (reltuples, relpages, pages_now): (f64, i64, i64) =
        (stats.get(0), stats.get(1), stats.get(2));
    let sampled = !exact && pages_now >= EXACT_BELOW_PAGES;
    let percent = (GRAPHILE_SAMPLE_PAGES * 100.0 / pages_now.max(1) as f64).min(100.0);
    let row = if sampled {
        // SYSTEM sampling reads only the chosen pages. A fixed seed picks the same pages every
        // run while the table keeps its size: the estimates move only when the table does,
        // and a status run every minute finds its pages in shared buffers.
        db.query_one(
            "sample_graphile_jobs_by_bucket",
            &format!(
                "SELECT {GRAPHILE_BUCKET_FILTERS}, count(*)
                   FROM {jobs} TABLESAMPLE SYSTEM ($1::float8) REPEATABLE (0)"
            ),
            &[&percent],
        )?
    } else {
        db.query_one(
            "count_graphile_jobs_by_bucket",
            &format!("SELECT {GRAPHILE_BUCKET_FILTERS}, count(*) FROM {jobs}"),
            &[],
        )?
    };
    let counted: Vec<i64> = (0..GRAPHILE_BUCKETS.len()).map(|i| row.get(i)).collect();
    let seen: i64 = row.get(GRAPHILE_BUCKETS.len());
    let by_state: BTreeMap<String, i64> = if sampled {
        let total = if reltuples >= 0.0 && relpages > 0 {
            reltuples / relpages as f64 * pages_now as f64
        } else {
            // Never analyzed: the sample's own rows, scaled by the share of pages it read.
            seen as f64 * 100.0 / percent
        };
        GRAPHILE_BUCKETS
            .iter()
            .zip(&counted)
            .map(|(bucket, n)| {
                let share = if seen > 0 {
                    *n as f64 / seen as f64
                } else {
                    0.0
                };
                (bucket.to_string(), (total * share).round() as i64)
            })
            .collect()
    } else {
        GRAPHILE_BUCKETS
            .iter()
            .zip(&counted)
            .map(|(bucket, n)| (bucket.to_string(), *n))
            .collect()
    };
    Ok(JobCounts {
        total: by_state.values().sum(),
        by_state,
        estimated: if sampled {
            GRAPHILE_BUCKETS.iter().map(|b| b.to_string()).collect()
        } else {
            Vec::new()
        },
        estimated_from: sampled.then_some("a sample of the jobs table"),
    })
}

/// Every lock holder of jobs or queues, with whether it is live and how many of its locks are
/// stale. With a live set, all locks of a holder outside it are stale; without one (Graphile
/// Worker without Pro) only locks older than Graphile's own 4-hour expiry are.
pub fn lock_holders(
    db: &mut impl Sql,
    profile: &Profile,
    stale_after: Duration,
) -> anyhow::Result<Vec<LockHolder>> {
    let stale_text = interval_text(stale_after);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let registry = match &profile.live_set {
        LiveSet::Heartbeats => {
            params.push(&stale_text);
            format!(
                "SELECT worker_id AS id, last_heartbeat_at > now() - $1::text::interval AS live FROM {}",
                qualified(&profile.schema, "workers")
            )
        }
        LiveSet::Pro { table, column } => format!(
            "SELECT {}::text AS id, true AS live FROM {}",
            quote_ident(column),
            qualified(&profile.schema, table)
        ),
        LiveSet::Unknown => "SELECT NULL::text AS id, false AS live WHERE false".to_string(),
    };
    let rows = db.query(
        "lock_holders",
        &format!(
            "WITH registry AS ({registry}),
                  job_locks AS (SELECT locked_by, count(*) AS n, min(locked_at) AS oldest,
                                       count(*) FILTER (WHERE locked_at < now() - interval '{GRAPHILE_LOCK_EXPIRY}') AS expired
                                  FROM {jobs} WHERE locked_by IS NOT NULL GROUP BY locked_by),
                  queue_locks AS (SELECT locked_by, count(*) AS n, min(locked_at) AS oldest,
                                         count(*) FILTER (WHERE locked_at < now() - interval '{GRAPHILE_LOCK_EXPIRY}') AS expired
                                    FROM {queues} WHERE locked_by IS NOT NULL GROUP BY locked_by)
             SELECT coalesce(j.locked_by, q.locked_by),
                    coalesce(j.n, 0), coalesce(q.n, 0),
                    coalesce(j.expired, 0), coalesce(q.expired, 0),
                    least(j.oldest, q.oldest),
                    coalesce(r.live, false), r.id IS NOT NULL
               FROM job_locks j
               FULL JOIN queue_locks q ON q.locked_by = j.locked_by
               LEFT JOIN registry r ON r.id = coalesce(j.locked_by, q.locked_by)
              ORDER BY 1",
            jobs = profile.jobs_table(),
            queues = profile.queues_table(),
        ),
        &params,
    )?;
    let has_live_set = profile.live_set != LiveSet::Unknown;
    Ok(rows
        .iter()
        .map(|r| {
            let (jobs, queues, expired_jobs, expired_queues): (i64, i64, i64, i64) =
                (r.get(1), r.get(2), r.get(3), r.get(4));
            let live: bool = r.get(6);
            let (stale_jobs, stale_queues) = match (has_live_set, live) {
                (true, true) => (0, 0),
                (true, false) => (jobs, queues),
                (false, _) => (expired_jobs, expired_queues),
            };
            LockHolder {
                locked_by: r.get(0),
                jobs,
                queues,
                stale_jobs,
                stale_queues,
                oldest_lock: r.get(5),
                live,
                registered: r.get(7),
                process: None,
            }
        })
        .collect())
}

pub fn unfinished_migrations(
    db: &mut impl Sql,
    profile: &Profile,
) -> anyhow::Result<Vec<UnfinishedMigration>> {
    if profile.kind != ProfileKind::Jobdb {
        return Ok(Vec::new());
    }
    let rows = db.query(
        "unfinished_background_migrations",
        &format!(
            "SELECT m.id, m.job_class_name, m.table_name, m.column_name, m.job_arguments, m.status,
                    coalesce((SELECT sum(j.max_value - j.min_value + 1)
                                FROM {jobs} j
                               WHERE j.batched_background_migration_id = m.id AND j.status = 3), 0)::float8
                    / greatest(m.max_value - m.min_value + 1, 1)::float8 * 100
               FROM {migrations} m
              WHERE m.status NOT IN (3, 6)
              ORDER BY m.id",
            jobs = qualified(&profile.schema, "batched_background_migration_jobs"),
            migrations = qualified(&profile.schema, "batched_background_migrations"),
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let status: i16 = r.get(5);
            let pct: f64 = r.get(6);
            UnfinishedMigration {
                id: r.get(0),
                job_class_name: r.get(1),
                table_name: r.get(2),
                column_name: r.get(3),
                job_arguments: r.get(4),
                status,
                status_name: migration_status_name(status),
                progress_pct: (pct.min(100.0) * 10.0).round() / 10.0,
            }
        })
        .collect())
}

pub fn schema_version(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<Option<i32>> {
    let table = match profile.kind {
        ProfileKind::Jobdb => qualified(&profile.schema, "schema_migrations"),
        ProfileKind::GraphileWorker(_) => qualified(&profile.schema, "migrations"),
    };
    let column = match profile.kind {
        ProfileKind::Jobdb => "version",
        ProfileKind::GraphileWorker(_) => "id",
    };
    Ok(db
        .query_one(
            "schema_version",
            &format!("SELECT max({column})::int4 FROM {table}"),
            &[],
        )?
        .get(0))
}

#[derive(Debug, Serialize)]
pub struct Replication {
    /// "primary" or "standby".
    pub role: &'static str,
    /// On a standby: how long ago the last replayed transaction committed on the primary.
    pub replay_delay_seconds: Option<f64>,
    /// On a primary: the standbys streaming from it that this role may see.
    pub standbys: Vec<Standby>,
}

#[derive(Debug, Serialize)]
pub struct Standby {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub replay_lag_seconds: Option<f64>,
    pub replay_lag_bytes: Option<i64>,
}

pub fn replication(db: &mut Db, server: &ServerFacts) -> anyhow::Result<Replication> {
    if server.in_recovery {
        let delay: Option<f64> = db
            .query_one(
                "standby_replay_delay",
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
                &[],
            )?
            .get(0);
        return Ok(Replication {
            role: "standby",
            replay_delay_seconds: delay,
            standbys: Vec::new(),
        });
    }
    if !server.wal_senders {
        return Ok(Replication {
            role: "primary",
            replay_delay_seconds: None,
            standbys: Vec::new(),
        });
    }
    let rows = db.query(
        "standbys",
        "SELECT application_name, client_addr::text, state, sync_state,
                extract(epoch FROM replay_lag)::float8,
                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8
           FROM pg_stat_replication ORDER BY application_name",
        &[],
    )?;
    Ok(Replication {
        role: "primary",
        replay_delay_seconds: None,
        standbys: rows
            .iter()
            .map(|r| Standby {
                application_name: r.get(0),
                client_addr: r.get(1),
                state: r.get(2),
                sync_state: r.get(3),
                replay_lag_seconds: r.get(4),
                replay_lag_bytes: r.get(5),
            })
            .collect(),
    })
}

/// The newest applied breaking version: workers that cannot run against it must not run.
pub fn breaking_level(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<Option<i32>> {
    if profile.kind != ProfileKind::Jobdb {
        return Ok(None);
    }
    Ok(db
        .query_one(
            "breaking_level",
            &format!(
                "SELECT max(version) FROM {} WHERE breaking",
                qualified(&profile.schema, "schema_migrations")
            ),
            &[],
        )?
        .get(0))
}

/// WAL archiving as the server's archiver reports it (`pg_stat_archiver`), and the size of
/// `pg_wal` where this role may read it.
#[derive(Debug, serde::Serialize)]
pub struct Archiving {
    pub archived_count: i64,
    pub last_archived_wal: Option<String>,
    pub last_archived_age_seconds: Option<f64>,
    pub failed_count: i64,
    pub last_failed_wal: Option<String>,
    pub last_failed_age_seconds: Option<f64>,
    /// The latest attempt failed (the archiver retries it; pg_wal keeps growing meanwhile).
    pub failing: bool,
    pub pg_wal_bytes: Option<i64>,
}

pub fn archiving(db: &mut Db) -> anyhow::Result<Archiving> {
    let row = db.query_one(
        "archiver",
        "SELECT archived_count, last_archived_wal,
                extract(epoch FROM now() - last_archived_time)::float8,
                failed_count, last_failed_wal,
                extract(epoch FROM now() - last_failed_time)::float8,
                coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
                has_function_privilege('pg_ls_waldir()', 'EXECUTE')
           FROM pg_stat_archiver",
        &[],
    )?;
    let pg_wal_bytes = if row.get::<_, bool>(7) {
        Some(
            db.query_one(
                "pg_wal_size",
                "SELECT coalesce(sum(size), 0)::int8 FROM pg_ls_waldir()",
                &[],
            )?
            .get(0),
        )
    } else {
        None
    };
    Ok(Archiving {
        archived_count: row.get(0),
        last_archived_wal: row.get(1),
        last_archived_age_seconds: row.get(2),
        failed_count: row.get(3),
        last_failed_wal: row.get(4),
        last_failed_age_seconds: row.get(5),
        failing: row.get(6),
        pg_wal_bytes,
    })
}
