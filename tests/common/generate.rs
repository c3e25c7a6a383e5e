//! Realistic job data for tests and benchmarks, generated server-side with set-based SQL so
//! 10M jobs take seconds, not hours. Used by `tests/` and `benches/`.

use super::Exec;
use postgres::Client;

#[derive(Debug, Clone)]
pub struct Spec {
    pub jobs: i64,
    pub live_workers: i32,
    pub dead_workers: i32,
    /// Adds one background migration in each status (paused, active, finished, failed,
    /// finalizing, finalized), with batch jobs.
    pub migrations: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            jobs: 1000,
            live_workers: 2,
            dead_workers: 2,
            migrations: false,
        }
    }
}

impl Spec {
    /// `jobs` jobs, the rest as by default.
    pub fn jobs(jobs: i64) -> Spec {
        Spec {
            jobs,
            ..Spec::default()
        }
    }
}

pub fn live_worker_id(i: i32) -> String {
    format!("live-{i}")
}

pub fn dead_worker_id(i: i32) -> String {
    format!("dead-{i}")
}

/// Fills the native schema `schema`. State mix per 100 jobs: 85 succeeded, 5 failed,
/// 2 cancelled, 7 queued, 1 running. Running jobs are locked round-robin by all workers,
/// live and dead, so dead workers hold stale locks; every fifth queue is locked likewise.
pub fn populate(client: &mut Client, schema: &str, spec: &Spec) {
    let workers = spec.live_workers + spec.dead_workers;
    assert!(
        workers > 0,
        "running jobs need at least one worker to hold them"
    );
    let mut tx = client.transaction().expect("begin");
    tx.exec(&format!("SET LOCAL search_path TO \"{schema}\""));
    // Workers report the newest schema they can run against: this database's version.
    let schema_version: i32 = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .expect("schema version")
        .get(0);
    // From version 2 on, jobs reference their queue by id (authoritative from version 3).
    let has_queue_ids: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                             WHERE table_schema = current_schema() AND table_name = 'jobs'
                               AND column_name = 'job_queue_id')",
            &[],
        )
        .expect("columns")
        .get(0);
    for i in 0..spec.live_workers {
        tx.execute(
            "INSERT INTO workers (worker_id, hostname, pid, version, schema_version, last_heartbeat_at)
             VALUES ($1, 'host-live', 1000 + $2, '1.0.0', $3, now())",
            &[&live_worker_id(i), &i, &schema_version],
        )
        .expect("insert live worker");
    }
    for i in 0..spec.dead_workers {
        tx.execute(
            "INSERT INTO workers (worker_id, hostname, pid, version, schema_version, started_at, last_heartbeat_at)
             VALUES ($1, 'host-dead', 2000 + $2, '1.0.0', $3, now() - interval '2 days', now() - interval '1 hour')",
            &[&dead_worker_id(i), &i, &schema_version],
        )
        .expect("insert dead worker");
    }
    // Worker k (0-based) is live-k for k < live_workers, else dead-(k - live_workers).
    let holder = format!(
        "CASE WHEN (g / 100) % {workers} < {live} THEN 'live-' || ((g / 100) % {workers})
              ELSE 'dead-' || ((g / 100) % {workers} - {live}) END",
        live = spec.live_workers
    );
    tx.execute(
        &format!(
            "INSERT INTO job_queues (queue_name, locked_at, locked_by)
             SELECT 'queue-' || q,
                    CASE WHEN q % 5 = 0 THEN now() - interval '5 minutes' END,
                    CASE WHEN q % 5 = 0 THEN {} END
               FROM generate_series(0, 49) AS q",
            holder.replace("(g / 100)", "(q / 5)")
        ),
        &[],
    )
    .expect("insert queues");
    tx.execute(
        &format!(
            "INSERT INTO jobs ({queue_id_column}queue_name, task_identifier, payload, priority, run_at, attempts,
                               max_attempts, last_error, state, locked_at, locked_by, created_at, updated_at)
             SELECT {queue_id_value}CASE WHEN g % 3 = 0 THEN 'queue-' || (g % 50) END,
                    (ARRAY['render_frame', 'send_email', 'transcode', 'thumbnail'])[1 + g % 4],
                    jsonb_build_object('frame', g, 'scene', 'shot-' || (g % 997), 'opts', jsonb_build_array(g % 7, g % 11)),
                    g % 5,
                    now() - (g % 10000) * interval '1 second',
                    CASE WHEN g % 100 BETWEEN 85 AND 89 THEN 3 ELSE 1 END,
                    25,
                    CASE WHEN g % 100 BETWEEN 85 AND 89 THEN 'exit status 1: frame ' || g || ' failed' END,
                    CASE WHEN g % 100 < 85 THEN 'succeeded'
                         WHEN g % 100 < 90 THEN 'failed'
                         WHEN g % 100 < 92 THEN 'cancelled'
                         WHEN g % 100 < 99 THEN 'queued'
                         ELSE 'running' END,
                    CASE WHEN g % 100 = 99 THEN now() - interval '10 minutes' END,
                    CASE WHEN g % 100 = 99 THEN {holder} END,
                    now() - (g % 100000) * interval '1 second',
                    now() - (g % 50000) * interval '1 second'
               FROM generate_series(1, $1::bigint) AS g",
            queue_id_column = if has_queue_ids { "job_queue_id, " } else { "" },
            queue_id_value = if has_queue_ids {
                "CASE WHEN g % 3 = 0 THEN (SELECT q.id FROM job_queues q WHERE q.queue_name = 'queue-' || (g % 50)) END, "
            } else {
                ""
            },
        ),
        &[&spec.jobs],
    )
    .expect("insert jobs");
    if spec.migrations {
        insert_migrations(&mut tx);
    }
    tx.commit().expect("commit generated data");
}

/// One background migration per status, each over `jobs.id` with a few batch jobs.
fn insert_migrations(tx: &mut postgres::Transaction<'_>) {
    for (i, status) in [0i16, 1, 3, 4, 5, 6].into_iter().enumerate() {
        let column = format!("col_{i}");
        let id: i64 = tx
            .query_one(
                "INSERT INTO batched_background_migrations
                     (min_value, max_value, batch_size, sub_batch_size, \"interval\", status,
                      job_class_name, table_name, column_name, job_arguments)
                 VALUES (1, 1000, 100, 10, 120, $1, 'BackfillColumnJob', 'jobs', $2, '[]')
                 RETURNING id",
                &[&status, &column],
            )
            .expect("insert migration")
            .get(0);
        // Finished migrations have all batches done; others have done the first three.
        let done_batches: i64 = if status == 3 || status == 6 { 10 } else { 3 };
        tx.execute(
            "INSERT INTO batched_background_migration_jobs
                 (batched_background_migration_id, min_value, max_value, batch_size, sub_batch_size,
                  status, attempts, started_at, finished_at)
             SELECT $1, b * 100 + 1, b * 100 + 100, 100, 10, 3, 1, now() - interval '1 hour', now()
               FROM generate_series(0, $2::int8 - 1) AS b",
            &[&id, &done_batches],
        )
        .expect("insert batch jobs");
    }
}

/// What a live worker does, once: claims the next queued job as `worker` (skipping locked
/// ones, as the engine does) and finishes it. Returns the job's id and the longer of the two
/// statements' times (how long the worker waited), or None when nothing is queued.
pub fn work_one_job(client: &mut Client, worker: &str) -> Option<(i64, std::time::Duration)> {
    let t = std::time::Instant::now();
    let claimed = client
        .query(
            "UPDATE jobdb.jobs SET state = 'running', locked_by = $1, locked_at = now()
              WHERE id = (SELECT id FROM jobdb.jobs WHERE state = 'queued'
                           ORDER BY priority, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
              RETURNING id",
            &[&worker],
        )
        .expect("claim");
    let claim_time = t.elapsed();
    let id: i64 = claimed.first()?.get(0);
    let t = std::time::Instant::now();
    client
        .execute(
            "UPDATE jobdb.jobs SET state = 'succeeded', locked_by = NULL, locked_at = NULL,
                    updated_at = now() WHERE id = $1",
            &[&id],
        )
        .expect("finish");
    Some((id, claim_time.max(t.elapsed())))
}
