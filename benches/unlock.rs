//! unlock-stale-jobs against the runbook's raw SQL in one transaction, on identical copies:
//! DEAD jobs locked by dead workers plus LIVE jobs locked by live ones (default 1M + 100k),
//! on the native schema and on a Graphile Worker v0.17 schema with Worker Pro's pool table.
//!
//! `cargo bench --bench unlock` (sizes: UNLOCK_BENCH_DEAD, UNLOCK_BENCH_LIVE).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestDb;

const RUNS: usize = 3;
const JOBS_PER_WORKER: i64 = 1000;

fn size(var: &str, default: i64) -> i64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const NATIVE_RUNBOOK: &str = "
begin;
update jobdb.jobs
set state = 'queued', locked_at = null, locked_by = null, run_at = greatest(run_at, now()), updated_at = now()
where locked_by is not null and locked_by not in (
  select worker_id from jobdb.workers where last_heartbeat_at > now() - interval '5 minutes'
);
update jobdb.job_queues
set locked_at = null, locked_by = null
where locked_by is not null and locked_by not in (
  select worker_id from jobdb.workers where last_heartbeat_at > now() - interval '5 minutes'
);
commit;";

/// The Worker Pro runbook's SQL for v0.17+, verbatim.
const GRAPHILE_RUNBOOK: &str = "
begin;
update graphile_worker._private_jobs as jobs
set locked_at = null, locked_by = null
where locked_by is not null and locked_by not in (
  select pool_id from graphile_worker._private_pro_pools
);
update graphile_worker._private_job_queues as job_queues
set locked_at = null, locked_by = null
where locked_by is not null and locked_by not in (
  select pool_id from graphile_worker._private_pro_pools
);
commit;";

fn native_fixture(client: &mut postgres::Client, dead: i64, live: i64) {
    client
        .execute(
            "INSERT INTO jobdb.workers (worker_id, last_heartbeat_at)
             SELECT 'dead-' || g, now() - interval '1 hour' FROM generate_series(0, $1::int8 / $3 - 1) g
             UNION ALL
             SELECT 'live-' || g, now() + interval '1 day' FROM generate_series(0, $2::int8 / $3 - 1) g",
            &[&dead, &live, &JOBS_PER_WORKER],
        )
        .expect("workers");
    client
        .execute(
            "WITH queues AS (
                 INSERT INTO jobdb.job_queues (queue_name)
                 SELECT 'queue-' || q FROM generate_series(0, 499) q
                 RETURNING id, queue_name
             )
             INSERT INTO jobdb.jobs (job_queue_id, task_identifier, payload, run_at, attempts, state, locked_at, locked_by)
             SELECT q.id, 'render_frame',
                    jsonb_build_object('frame', g, 'scene', 'shot-' || (g % 997)),
                    now() - (g % 10000) * interval '1 second', 1, 'running', now() - interval '10 minutes',
                    CASE WHEN g <= $1 THEN 'dead-' || (g % ($1 / $3)) ELSE 'live-' || (g % ($2 / $3)) END
               FROM generate_series(1, $1::int8 + $2::int8) g
               LEFT JOIN queues q ON g % 3 = 0 AND q.queue_name = 'queue-' || (g % 500)",
            &[&dead, &live, &JOBS_PER_WORKER],
        )
        .expect("jobs");
    client
        .execute(
            "INSERT INTO jobdb.job_queues (queue_name, locked_at, locked_by)
             SELECT 'lock-' || worker_id, now(), worker_id FROM jobdb.workers",
            &[],
        )
        .expect("queues");
}

fn graphile_fixture(client: &mut postgres::Client, dead: i64, live: i64) {
    client
        .batch_execute(
            "create schema graphile_worker;
             create table graphile_worker.migrations (id int primary key, ts timestamptz default now() not null,
                                                      breaking boolean not null default false);
             insert into graphile_worker.migrations (id) select generate_series(1, 19);
             create table graphile_worker._private_job_queues (
               id int primary key generated always as identity,
               queue_name text not null unique check (length(queue_name) <= 128),
               locked_at timestamptz, locked_by text,
               is_available boolean generated always as ((locked_at is null)) stored not null);
             create table graphile_worker._private_tasks (
               id int primary key generated always as identity,
               identifier text not null unique check (length(identifier) <= 128));
             create table graphile_worker._private_jobs (
               id bigint primary key generated always as identity (sequence name graphile_worker.jobs_id_seq1),
               job_queue_id int null, task_id int not null, payload json default '{}'::json not null,
               priority smallint default 0 not null, run_at timestamptz default now() not null,
               attempts smallint default 0 not null,
               max_attempts smallint default 25 not null constraint jobs_max_attempts_check check (max_attempts >= 1),
               last_error text, created_at timestamptz default now() not null,
               updated_at timestamptz default now() not null,
               key text unique constraint jobs_key_check check (length(key) > 0 and length(key) <= 512),
               locked_at timestamptz, locked_by text, revision integer default 0 not null, flags jsonb,
               is_available boolean generated always as (((locked_at is null) and (attempts < max_attempts))) stored not null);
             create index jobs_main_index on graphile_worker._private_jobs using btree (priority, run_at)
               include (id, task_id, job_queue_id) where (is_available = true);
             create index jobs_no_queue_index on graphile_worker._private_jobs using btree (priority, run_at)
               include (id, task_id) where (is_available = true and job_queue_id is null);
             create table graphile_worker._private_pro_pools (pool_id text primary key);
             insert into graphile_worker._private_tasks (identifier) values ('render_frame');",
        )
        .expect("graphile schema");
    client
        .execute(
            "insert into graphile_worker._private_pro_pools
             select 'live-' || g from generate_series(0, $1::int8 / $2 - 1) g",
            &[&live, &JOBS_PER_WORKER],
        )
        .expect("pools");
    client
        .execute(
            "insert into graphile_worker._private_jobs (task_id, payload, run_at, attempts, locked_at, locked_by)
             select 1, json_build_object('frame', g, 'scene', 'shot-' || (g % 997)),
                    now() - (g % 10000) * interval '1 second', 1, now() - interval '10 minutes',
                    case when g <= $1 then 'dead-' || (g % ($1 / $3)) else 'live-' || (g % ($2 / $3)) end
               from generate_series(1, $1::int8 + $2::int8) g",
            &[&dead, &live, &JOBS_PER_WORKER],
        )
        .expect("jobs");
    client
        .execute(
            "insert into graphile_worker._private_job_queues (queue_name, locked_at, locked_by)
             select 'lock-' || h, now(), h
               from (select distinct locked_by as h from graphile_worker._private_jobs) x",
            &[],
        )
        .expect("queues");
}

/// A fresh copy of `template` (file-level, so every run starts from the same pages).
fn copy_of(template: &TestDb) -> TestDb {
    let copy = TestDb::empty();
    let mut admin = common::shared().admin();
    admin
        .batch_execute(&format!("DROP DATABASE {}", copy.name))
        .expect("drop placeholder");
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            copy.name, template.name
        ))
        .expect("copy database");
    admin.batch_execute("CHECKPOINT").expect("checkpoint");
    copy
}

fn drop_db(db: &TestDb) {
    common::shared()
        .admin()
        .batch_execute(&format!("DROP DATABASE {}", db.name))
        .expect("drop copy");
}

fn time_command(template: &TestDb) -> (Duration, i64) {
    let copy = copy_of(template);
    let started = Instant::now();
    let out = copy.run(&["--json", "unlock-stale-jobs"]);
    let elapsed = started.elapsed();
    out.expect(0);
    let released = out.json()["jobs_released"].as_i64().expect("jobs_released");
    drop_db(&copy);
    (elapsed, released)
}

fn time_raw(template: &TestDb, sql: &str) -> Duration {
    let copy = copy_of(template);
    let mut client = copy.client();
    let started = Instant::now();
    client.batch_execute(sql).expect("runbook SQL");
    let elapsed = started.elapsed();
    drop(client);
    drop_db(&copy);
    elapsed
}

fn compare(name: &str, template: &TestDb, raw_sql: &str, dead: i64) {
    let mut command = Vec::new();
    let mut raw = Vec::new();
    // Alternate, so neither side always runs on a warmer cache.
    for _ in 0..RUNS {
        let (t, released) = time_command(template);
        assert_eq!(
            released, dead,
            "{name}: released {released}, expected {dead}"
        );
        command.push(t);
        raw.push(time_raw(template, raw_sql));
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (c, r) = (best(&command), best(&raw));
    println!(
        "{name}: unlock-stale-jobs {:.2} s (runs {:?}), runbook SQL {:.2} s (runs {:?}), ratio {:.2} (goal <= 1.2)",
        c.as_secs_f64(),
        command.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>(),
        r.as_secs_f64(),
        raw.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>(),
        c.as_secs_f64() / r.as_secs_f64()
    );
}

fn main() {
    let dead = size("UNLOCK_BENCH_DEAD", 1_000_000);
    let live = size("UNLOCK_BENCH_LIVE", 100_000);
    println!(
        "unlock benchmark: {dead} jobs locked by dead workers, {live} by live ones, best of {RUNS}"
    );

    let native = TestDb::initialized();
    let started = Instant::now();
    {
        let mut client = native.client();
        native_fixture(&mut client, dead, live);
        client.batch_execute("VACUUM ANALYZE").expect("vacuum");
    }
    println!(
        "native fixture built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    compare("native jobdb", &native, NATIVE_RUNBOOK, dead);

    let graphile = TestDb::empty();
    let started = Instant::now();
    {
        let mut client = graphile.client();
        graphile_fixture(&mut client, dead, live);
        client.batch_execute("VACUUM ANALYZE").expect("vacuum");
    }
    println!(
        "graphile fixture built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    compare(
        "graphile-worker v0.17 + Pro",
        &graphile,
        GRAPHILE_RUNBOOK,
        dead,
    );
    drop_db(&native);
    drop_db(&graphile);
}
