//! purge-jobs against one set-based statement on identical copies of a generated database:
//! JOBS jobs (default 10M), about half of them finished before the cut-off.
//!
//! `cargo bench --bench purge`; on a small or shared machine run it with fewer jobs, e.g.
//! `JOBS=500000 cargo bench --bench purge`. Prints, not asserts: the throughput ratios
//! (purge / one DELETE; purge --archive / one INSERT … SELECT + DELETE), the p99 and max
//! batch transaction, and the longest lock wait of a simulated live worker that claims and
//! finishes jobs in a loop during the archiving purge.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::generate::{self, Spec};
use common::{scalar_i64, TestDb};

const CUTOFF: &str = "2026-03-01 00:00:00+00";
/// The same instant as purge-jobs takes it (a date is midnight UTC).
const CUTOFF_ARG: &str = "2026-03-01";
const FINISHED: &str = "state IN ('succeeded', 'failed', 'cancelled') AND locked_by IS NULL";

fn jobs() -> i64 {
    std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// A copy of `template` (which must have no open connections) as a database of its own.
fn copy_of(template: &TestDb, name: &str) -> TestDb {
    let name = format!("{}_{name}", template.name);
    common::shared()
        .admin()
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            template.name
        ))
        .expect("copy database");
    TestDb {
        name,
        configdir: common::temp_dir("pb"),
    }
}

fn timed(what: &str, f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    let took = t.elapsed();
    println!("{what}: {:.2} s", took.as_secs_f64());
    took
}

fn main() {
    let n = jobs();
    println!("generating {n} jobs …");
    let template = TestDb::populated(&Spec::jobs(n));
    {
        let mut c = template.client();
        // Half the jobs (by id) are old: the finished ones among them go.
        c.batch_execute(
            "UPDATE jobdb.jobs SET updated_at = '2026-01-15'::timestamptz + (id % 40) * interval '1 day'
              WHERE id % 100 < 54",
        )
        .expect("age jobs");
        // On its own: VACUUM cannot run inside the implicit transaction of a multi-statement
        // query.
        c.batch_execute("VACUUM ANALYZE jobdb.jobs")
            .expect("vacuum");
        let doomed = scalar_i64(
            &mut c,
            &format!(
                "SELECT count(*) FROM jobdb.jobs WHERE {FINISHED} AND updated_at < '{CUTOFF}'"
            ),
        );
        println!("{doomed} of {n} jobs finished before the cut-off");
    }

    let plain = copy_of(&template, "delete");
    let baseline_delete = timed("one DELETE", || {
        plain
            .client()
            .batch_execute(&format!(
                "DELETE FROM jobdb.jobs WHERE {FINISHED} AND updated_at < '{CUTOFF}'"
            ))
            .expect("baseline delete");
    });

    let purged = copy_of(&template, "purge");
    let mut summary = serde_json::Value::Null;
    let purge = timed("purge-jobs", || {
        let run = purged.run(&["purge-jobs", "--before", CUTOFF_ARG, "--json"]);
        run.expect(0);
        summary = run.json();
    });
    println!(
        "purge-jobs: {} jobs in {} batches, batch p99 {} ms, max {} ms",
        summary["jobs"], summary["batches"], summary["batch_ms_p99"], summary["batch_ms_max"]
    );

    let moved = copy_of(&template, "move");
    let baseline_move = timed("one INSERT … SELECT + DELETE", || {
        moved
            .client()
            .batch_execute(&format!(
                "BEGIN;
                 CREATE TABLE jobdb.moved (LIKE jobdb.jobs, PRIMARY KEY (id));
                 INSERT INTO jobdb.moved SELECT * FROM jobdb.jobs WHERE {FINISHED} AND updated_at < '{CUTOFF}';
                 DELETE FROM jobdb.jobs WHERE {FINISHED} AND updated_at < '{CUTOFF}';
                 COMMIT;"
            ))
            .expect("baseline move");
    });

    let archived = copy_of(&template, "archive");
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        let mut w = archived.client();
        thread::spawn(move || {
            let mut max_wait = Duration::ZERO;
            let mut done = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let Some((_, waited)) = generate::work_one_job(&mut w, "bench-worker") else {
                    break;
                };
                max_wait = max_wait.max(waited);
                done += 1;
            }
            (max_wait, done)
        })
    };
    let mut summary = serde_json::Value::Null;
    let archive = timed("purge-jobs --archive (live worker running)", || {
        let run = archived.run(&["purge-jobs", "--before", CUTOFF_ARG, "--archive", "--json"]);
        run.expect(0);
        summary = run.json();
    });
    stop.store(true, Ordering::SeqCst);
    let (max_wait, done) = worker.join().expect("worker");
    println!(
        "purge-jobs --archive: {} jobs in {} batches, batch p99 {} ms, max {} ms",
        summary["jobs"], summary["batches"], summary["batch_ms_p99"], summary["batch_ms_max"]
    );
    println!(
        "live worker: {done} jobs claimed and finished, longest statement (lock wait included) {:.0} ms",
        max_wait.as_secs_f64() * 1000.0
    );
    println!(
        "throughput ratio purge / DELETE: {:.2} (goal >= 0.7)",
        baseline_delete.as_secs_f64() / purge.as_secs_f64()
    );
    println!(
        "throughput ratio purge --archive / INSERT…SELECT + DELETE: {:.2} (goal >= 0.5)",
        baseline_move.as_secs_f64() / archive.as_secs_f64()
    );
}
