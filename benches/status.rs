//! `status` on a big job database vs one `SELECT count(*)` over its jobs table, on the native
//! schema and on a Graphile Worker schema installed by the real engine (v0.18.0 from npm; its
//! migrations make the tables and indexes, the jobs are then inserted into them directly).
//! Run by hand: `cargo bench --bench status` (JOBS=10000000 by default, GRAPHILE_JOBS the same
//! unless set; 0 skips that half).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::generate::{self, Spec};
use common::{graphile_npm, TestDb};

const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn env_i64(name: &str) -> Option<i64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn time_count(client: &mut postgres::Client, table: &str, expected: i64) -> Duration {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .expect("count")
            .get(0);
        times.push(t.elapsed());
        assert_eq!(n, expected);
    }
    median(times)
}

/// The median of [`RUNS`] runs, and the first (which reads what later runs find cached).
fn time_status(db: &TestDb, args: &[&str], code: i32) -> (Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        db.run(args).expect(code);
        times.push(t.elapsed());
    }
    (median(times.clone()), times[0])
}

fn report(what: &str, (status, first): (Duration, Duration), count: Duration, goal: &str) {
    println!(
        "{what} (median of {RUNS}): {status:.1?}; ratio status / count(*) = {:.3}{goal}; first run {first:.1?}",
        status.as_secs_f64() / count.as_secs_f64()
    );
}

fn native(jobs: i64) {
    let db = TestDb::initialized();
    let mut client = db.client();
    let t = Instant::now();
    generate::populate(
        &mut client,
        "jobdb",
        &Spec {
            jobs,
            live_workers: 8,
            dead_workers: 4,
            migrations: true,
        },
    );
    client
        .batch_execute("VACUUM ANALYZE jobdb.jobs")
        .expect("vacuum analyze");
    // A checkpoint writes out what generating left dirty, so neither side is timed while
    // the server writes gigabytes in the background.
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    println!("native: generated {jobs} jobs in {:.1?}", t.elapsed());
    let count = time_count(&mut client, "jobdb.jobs", jobs);
    println!("native: SELECT count(*) on jobs (median of {RUNS}): {count:.1?}");
    let status = time_status(&db, &["status", "--json"], 0);
    report(
        "native: jobdbctl status --json, whole process",
        status,
        count,
        " (goal <= 0.1)",
    );
}

/// A backlog as a busy Graphile Worker deployment has it: 70% due now, 20% scheduled, 8%
/// retrying, 2% out of attempts, a third of the jobs in 500 named queues, and 1 in 10,000
/// held by a worker that died 7 hours ago (past Graphile's 4-hour expiry; the holder's id
/// and the lock's age repeat every 10,000 rows, so it is one worker).
fn graphile(jobs: i64) {
    let engine = graphile_npm::engine("0.18.0");
    let db = TestDb::empty();
    engine.migrate(&db);
    let mut client = db.client();
    let t = Instant::now();
    client
        .batch_execute(
            "INSERT INTO graphile_worker._private_tasks (identifier)
             VALUES ('render_frame'), ('send_email'), ('resize');
             INSERT INTO graphile_worker._private_job_queues (queue_name)
             SELECT 'queue-' || q FROM generate_series(0, 499) q;",
        )
        .expect("tasks and queues");
    client
        .execute(
            "INSERT INTO graphile_worker._private_jobs
                    (job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts,
                     last_error, locked_at, locked_by)
             SELECT CASE WHEN g % 3 = 0 THEN 1 + g % 500 END, 1 + g % 3,
                    json_build_object('frame', g, 'scene', 'shot-' || (g % 997)), (g % 5)::int2,
                    CASE WHEN g % 100 < 30 THEN now() + (g % 10000) * interval '1 second'
                         ELSE now() - (g % 10000) * interval '1 second' END,
                    CASE WHEN g % 10000 = 7 THEN 1
                         WHEN g % 100 < 2 THEN 25
                         WHEN g % 100 < 10 THEN 1 + g % 5
                         ELSE 0 END,
                    25,
                    CASE WHEN g % 100 < 10 THEN 'failed on purpose' END,
                    CASE WHEN g % 10000 = 7 THEN now() - (g % 8) * interval '1 hour' END,
                    CASE WHEN g % 10000 = 7 THEN 'worker-' || (g % 20) END
               FROM generate_series(1, $1::int8) g",
            &[&jobs],
        )
        .expect("jobs");
    client
        .batch_execute("VACUUM ANALYZE graphile_worker._private_jobs")
        .expect("vacuum analyze");
    // As for native: nothing is timed while the server writes out the generated rows.
    client.batch_execute("CHECKPOINT").expect("checkpoint");
    println!(
        "graphile-worker 0.18.0: generated {jobs} jobs in {:.1?}",
        t.elapsed()
    );
    let count = time_count(&mut client, "graphile_worker._private_jobs", jobs);
    println!("graphile-worker: SELECT count(*) on _private_jobs (median of {RUNS}): {count:.1?}");
    let status = time_status(&db, &["status", "--json"], 0);
    report(
        "graphile-worker: jobdbctl status --json, whole process",
        status,
        count,
        " (goal <= 0.1)",
    );
    // How close the estimates came (the exact run is not timed).
    let estimated = db.run(&["--json", "status"]).expect(0).json();
    let exact = db.run(&["--json", "status", "--exact"]).expect(0).json();
    println!(
        "graphile-worker: estimated {} vs exact {}",
        estimated["jobs"]["by_state"], exact["jobs"]["by_state"]
    );
    // The locks are older than 4 hours: not ready.
    let check = time_status(&db, &["status", "--json", "--check"], 4);
    report(
        "graphile-worker: jobdbctl status --json --check (counts job locks: reads the whole table)",
        check,
        count,
        "",
    );
}

fn main() {
    let jobs = env_i64("JOBS").unwrap_or(10_000_000);
    let graphile_jobs = env_i64("GRAPHILE_JOBS").unwrap_or(jobs);
    if jobs > 0 {
        native(jobs);
    }
    if graphile_jobs > 0 {
        graphile(graphile_jobs);
    }
}
