//! finalize-migration and background-migrations against a real server.

mod common;
use common::Exec;

use common::assert_has;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::generate::Spec;
use common::migrations::{
    copy_table, differences_from_oracle, events_copy_migration, queue, COPY, COPY_ARGS,
};
use common::{scalar_i64, wait_until, TestDb};
use postgres::Client;

const BACKFILL: &str = "BackfillColumnJob";
/// How long a test waits for an observable state before failing.
const WAIT: Duration = Duration::from_secs(60);

/// Queues a migration with exactly these recorded names (which need not exist).
#[allow(clippy::too_many_arguments)]
fn queue_raw(
    c: &mut Client,
    class: &str,
    table_name: &str,
    column_name: &str,
    args: &str,
    max_value: i64,
    batch: i32,
    sub: i32,
) -> i64 {
    c.query_one(
        "INSERT INTO jobdb.batched_background_migrations
             (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
              table_name, column_name, job_arguments)
         VALUES ($1, $2, $3, 120, 1, $4, $5, $6, $7::text::jsonb)
         RETURNING id",
        &[
            &max_value,
            &batch,
            &sub,
            &class,
            &table_name,
            &column_name,
            &args,
        ],
    )
    .expect("queue migration")
    .get(0)
}

fn migration_status(c: &mut Client, id: i64) -> i16 {
    c.query_one(
        "SELECT status FROM jobdb.batched_background_migrations WHERE id = $1",
        &[&id],
    )
    .expect("migration status")
    .get(0)
}

fn uncopied(c: &mut Client, table: &str) -> i64 {
    scalar_i64(
        c,
        &format!("SELECT count(*) FROM jobdb.{table} WHERE to_col IS DISTINCT FROM from_col"),
    )
}

/// Every batch job succeeded, and the jobs tile [min_value, max_value] without gap or overlap.
#[track_caller]
fn assert_all_jobs_succeeded_and_tile(c: &mut Client, id: i64) {
    let (min, max): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT min_value, max_value FROM jobdb.batched_background_migrations WHERE id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let jobs = c
        .query(
            "SELECT min_value, max_value, status FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = $1 ORDER BY min_value",
            &[&id],
        )
        .unwrap();
    assert!(!jobs.is_empty(), "no batch jobs");
    let mut next = min;
    for j in &jobs {
        let (lo, hi, status): (i64, i64, i16) = (j.get(0), j.get(1), j.get(2));
        assert_eq!(status, 3, "batch job {lo}..={hi} is not succeeded");
        assert_eq!(lo, next, "batch jobs leave a gap or overlap at {lo}");
        next = hi + 1;
    }
    assert_eq!(next, max + 1, "batch jobs do not reach max_value");
}

fn succeeded_jobs(c: &mut Client, id: i64) -> i64 {
    scalar_i64(
        c,
        &format!(
            "SELECT count(*) FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = {id} AND status = 3"
        ),
    )
}

fn running_jobs(c: &mut Client, id: i64) -> Vec<i64> {
    c.query(
        "SELECT id FROM jobdb.batched_background_migration_jobs
          WHERE batched_background_migration_id = $1 AND status = 1",
        &[&id],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A killed finalizer's backend ends (and drops its advisory lock) once the server notices.
fn wait_for_lock_release(c: &mut Client) {
    wait_until("the killed finalizer's session to end", WAIT, || {
        scalar_i64(
            c,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ) == 0
    });
}

/// Everything in the migration tables, as text, to show that a refused run changed nothing.
fn bookkeeping_snapshot(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT m::text FROM jobdb.batched_background_migrations m
         UNION ALL SELECT j::text FROM jobdb.batched_background_migration_jobs j
         ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn copy_column_integer_to_bigint_finalizes_and_matches_one_update() {
    let (db, mut c, id) = events_copy_migration(200_000, 20_000, 5_000);

    let check = db.run(&["status", "--check", "--json"]);
    check.expect(4);
    let listed = &check.json()["unfinished_background_migrations"];
    assert_eq!(listed[0]["id"], id);

    // GitLab's argument order; the JSON is compared as jsonb, so spacing does not matter.
    let run = db.run(&[
        "--json",
        "finalize-migration",
        COPY,
        "events",
        "id",
        r#"[ ["from_col"], ["to_col"] ]"#,
        "--pause-ms",
        "0",
    ]);
    run.expect(0);
    let summary = run.json();
    assert_eq!(summary["status"], "finished");
    assert_eq!(summary["id"], id);

    assert_eq!(uncopied(&mut c, "events"), 0);
    assert_eq!(differences_from_oracle(&mut c, "events"), 0);
    assert_eq!(migration_status(&mut c, id), 3);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    let rows = scalar_i64(&mut c, "SELECT count(*) FROM jobdb.events");
    assert_eq!(
        summary["rows"], rows,
        "summary rows are the rows in the table"
    );
    let batches = scalar_i64(
        &mut c,
        &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {id}"),
    );
    assert_eq!(summary["batches"], batches);
    let finished_at: Option<chrono::DateTime<chrono::Utc>> = c
        .query_one(
            "SELECT finished_at FROM jobdb.batched_background_migrations WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert!(finished_at.is_some());
    // Every job records its timings and metrics.
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM jobdb.batched_background_migration_jobs
              WHERE started_at IS NULL OR finished_at IS NULL OR attempts <> 1
                 OR NOT metrics ? 'rows' OR NOT metrics ? 'duration_ms'"
        ),
        0
    );

    db.run(&["status", "--check"]).expect(0);
    let again = db.run(&["finalize-migration", "--id", &id.to_string()]);
    again.expect(0).stdout_has("already finished");
}

#[test]
fn killed_at_any_point_then_rerun_gives_exactly_the_single_statement_result() {
    let (db, mut c, id) = events_copy_migration(200_000, 5_000, 1_000);
    let args = [
        "finalize-migration",
        "--id",
        &id.to_string(),
        "--pause-ms",
        "5",
        "--target-batch-time",
        "0",
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Each kill point is a condition on the batch jobs table, polled; `base` is the number
    // of succeeded batches when the run starts.
    let all_jobs = move |c: &mut Client| {
        scalar_i64(
            c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {id}"),
        )
    };
    type Point = Box<dyn Fn(&mut Client, i64) -> bool>;
    let points: Vec<(&str, Point)> = vec![
        (
            "first batch job created",
            Box::new(move |c: &mut Client, _| all_jobs(c) > 0),
        ),
        (
            "3 more batches succeeded",
            Box::new(move |c: &mut Client, base| succeeded_jobs(c, id) >= base + 3),
        ),
        (
            "a batch running after 2 more succeeded",
            Box::new(move |c: &mut Client, base| {
                succeeded_jobs(c, id) >= base + 2 && !running_jobs(c, id).is_empty()
            }),
        ),
        (
            "10 more batches succeeded",
            Box::new(move |c: &mut Client, base| succeeded_jobs(c, id) >= base + 10),
        ),
    ];
    let mut killed_while_running = None;
    for (name, point) in points {
        // The kill may land between two batches; the mid-batch point is tried until it
        // lands inside one.
        for _ in 0..10 {
            let base = succeeded_jobs(&mut c, id);
            let mut child = db.spawn(&args);
            wait_until(name, WAIT, || point(&mut c, base));
            child.kill().expect("kill -9");
            let out = common::finish(child);
            assert_ne!(out.code, 0, "{name}: the run finished before it was killed");
            wait_for_lock_release(&mut c);
            // Atomicity: a batch marked succeeded has all its rows copied, whatever the kill.
            let partial = scalar_i64(
                &mut c,
                &format!(
                    "SELECT count(*) FROM jobdb.events e JOIN jobdb.batched_background_migration_jobs j
                       ON e.id BETWEEN j.min_value AND j.max_value
                    WHERE j.batched_background_migration_id = {id} AND j.status = 3
                      AND e.to_col IS DISTINCT FROM e.from_col"
                ),
            );
            assert_eq!(partial, 0, "{name}: a succeeded batch has uncopied rows");
            assert_ne!(migration_status(&mut c, id), 3);
            if !name.starts_with("a batch running") {
                break;
            }
            let running = running_jobs(&mut c, id);
            assert!(running.len() <= 1);
            if let Some(job) = running.first() {
                killed_while_running = Some(*job);
                break;
            }
        }
    }

    db.run(&args).expect(0);
    assert_eq!(migration_status(&mut c, id), 3);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(differences_from_oracle(&mut c, "events"), 0);
    let retried = killed_while_running.expect("killed while a batch ran");
    let attempts: i16 = c
        .query_one(
            "SELECT attempts FROM jobdb.batched_background_migration_jobs WHERE id = $1",
            &[&retried],
        )
        .unwrap()
        .get(0);
    assert_eq!(attempts, 2, "the batch left running was retried once");
}

#[test]
fn failing_batch_is_tried_three_times_then_retry_after_fixing_data_finishes() {
    let db = TestDb::initialized();
    let mut c = db.client();
    copy_table(&mut c, "events", 20_000);
    // Row 10001 violates the check constraint once copied.
    c.batch_execute(
        "UPDATE jobdb.events SET from_col = -5 WHERE id = 10001;
         ALTER TABLE jobdb.events ADD CONSTRAINT to_col_not_negative CHECK (to_col IS NULL OR to_col >= -1);",
    )
    .unwrap();
    let id = queue(&mut c, COPY, "events", "id", COPY_ARGS, 2_000, 500);
    let ids = id.to_string();

    let run = db.run(&["finalize-migration", "--id", &ids, "--pause-ms", "0"]);
    run.expect(1);
    let error = run.one_line_error();
    assert_has(error, "to_col_not_negative");
    assert_has(error, &format!("background-migrations retry {id}"));
    assert_eq!(migration_status(&mut c, id), 4);
    let failed = c
        .query(
            "SELECT min_value, max_value, attempts, metrics->>'error' FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = $1 AND status = 2",
            &[&id],
        )
        .unwrap();
    assert_eq!(failed.len(), 1, "one batch failed");
    let (lo, hi, attempts, err): (i64, i64, i16, String) = (
        failed[0].get(0),
        failed[0].get(1),
        failed[0].get(2),
        failed[0].get(3),
    );
    assert!(lo <= 10001 && hi >= 10001);
    assert_eq!(attempts, 3);
    assert_has(&err, "to_col_not_negative");
    // Nothing of the failed batch is written, and nothing after it was attempted.
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.events WHERE id BETWEEN {lo} AND {hi} AND to_col IS NOT DISTINCT FROM from_col AND from_col IS NOT NULL")
        ),
        0
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {id} AND min_value > {hi}")
        ),
        0
    );

    let show = db.run(&["--json", "background-migrations", "show", &ids]);
    show.expect(0);
    let shown = show.json();
    assert_eq!(shown["migration"]["status_name"], "failed");
    assert_eq!(shown["migration"]["jobs_failed"], 1);
    let failed_job = shown["batch_jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["status_name"] == "failed")
        .expect("show lists the failed job");
    assert!(failed_job["metrics"]["error"]
        .as_str()
        .unwrap()
        .contains("to_col_not_negative"));
    let human = db.run(&["background-migrations", "show", &ids]);
    human.expect(0);
    assert!(human.stdout.contains("to_col_not_negative"));

    let retry = db.run(&["--json", "background-migrations", "retry", &ids]);
    retry.expect(0);
    assert_eq!(retry.json()["failed_jobs_reset"], 1);
    assert_eq!(migration_status(&mut c, id), 1);
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {id} AND status = 0 AND attempts = 0")
        ),
        1
    );

    c.batch_execute("UPDATE jobdb.events SET from_col = 5 WHERE id = 10001")
        .unwrap();
    db.run(&["finalize-migration", "--id", &ids, "--pause-ms", "0"])
        .expect(0);
    assert_eq!(migration_status(&mut c, id), 3);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(uncopied(&mut c, "events"), 0);
}

#[test]
fn timeouts_halve_the_batch() {
    let (db, mut c, id) = events_copy_migration(8_000, 4_000, 4_000);
    let ids = id.to_string();
    // Another session holds a row of the first batch for the whole run.
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT 1 FROM jobdb.events WHERE id = 100 FOR UPDATE", &[])
        .unwrap();

    let run = db.run(&[
        "finalize-migration",
        "--id",
        &ids,
        "--lock-timeout",
        "50ms",
        "--pause-ms",
        "0",
    ]);
    run.expect(1);
    assert!(run.one_line_error().contains("lock"), "{}", run.stderr);
    let jobs = c
        .query(
            "SELECT min_value, max_value, batch_size, status, attempts FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = $1 ORDER BY min_value",
            &[&id],
        )
        .unwrap();
    let sizes: Vec<i32> = jobs.iter().map(|j| j.get(2)).collect();
    // Each of the three timeouts halved the batch holding the locked row; the other halves
    // wait as pending jobs.
    assert_eq!(sizes, vec![500, 500, 1000, 2000]);
    let (lo, hi, status, attempts): (i64, i64, i16, i16) = (
        jobs[0].get(0),
        jobs[0].get(1),
        jobs[0].get(3),
        jobs[0].get(4),
    );
    assert!(lo <= 100 && hi >= 100);
    assert_eq!(
        (status, attempts),
        (2, 3),
        "the batch holding the locked row failed 3 times"
    );
    assert!(jobs[1..].iter().all(|j| j.get::<_, i16>(3) == 0));
    assert_eq!(migration_status(&mut c, id), 4);

    tx.rollback().unwrap();
    // An explicit finalize gives exhausted batches fresh attempts, as GitLab's does.
    db.run(&["finalize-migration", "--id", &ids, "--pause-ms", "0"])
        .expect(0);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(uncopied(&mut c, "events"), 0);
}

#[test]
fn a_second_finalizer_gets_exit_7_and_pause_stops_the_first() {
    let (db, mut c, id) = events_copy_migration(100_000, 2_000, 500);
    let ids = id.to_string();
    let first = db.spawn(&[
        "finalize-migration",
        "--id",
        &ids,
        "--pause-ms",
        "20",
        "--target-batch-time",
        "0",
    ]);
    wait_until("the first finalizer to run a batch", WAIT, || {
        succeeded_jobs(&mut c, id) >= 1
    });

    let second = db.run(&["finalize-migration", COPY, "events", "id", COPY_ARGS]);
    second.expect(7);
    assert!(second.one_line_error().contains("another jobdbctl"));
    // retry and mark-finished also wait for no finalizer.
    db.run(&["background-migrations", "retry", &ids]).expect(7);
    db.run(&["background-migrations", "mark-finished", &ids, "--yes"])
        .expect(7);
    assert_eq!(migration_status(&mut c, id), 5, "still finalizing");

    // Pausing is how an operator stops a running finalizer.
    db.run(&["background-migrations", "pause", &ids]).expect(0);
    let out = common::finish(first);
    out.expect(1);
    assert!(out.one_line_error().contains("paused"), "{}", out.stderr);
    assert_eq!(migration_status(&mut c, id), 0);
    assert_eq!(running_jobs(&mut c, id).len(), 0);

    let resumed = db.run(&["--json", "background-migrations", "resume", &ids]);
    resumed.expect(0);
    assert_eq!(resumed.json()["new_status"], "active");
    assert_eq!(migration_status(&mut c, id), 1);
    db.run(&[
        "finalize-migration",
        "--id",
        &ids,
        "--pause-ms",
        "0",
        "--batch-size",
        "20000",
    ])
    .expect(0);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(differences_from_oracle(&mut c, "events"), 0);
}

#[test]
fn concurrent_writers_with_a_sync_trigger_keep_working() {
    let db = TestDb::initialized();
    let mut c = db.client();
    copy_table(&mut c, "events", 100_000);
    // GitLab's integer-to-bigint conversion installs a trigger that keeps new writes in step.
    c.batch_execute(
        "CREATE FUNCTION jobdb.sync_to_col() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.to_col := NEW.from_col; RETURN NEW; END $$;
         CREATE TRIGGER sync_to_col BEFORE INSERT OR UPDATE ON jobdb.events
           FOR EACH ROW EXECUTE FUNCTION jobdb.sync_to_col();
         CREATE SEQUENCE jobdb.events_new_ids START 1000000;",
    )
    .unwrap();
    let id = queue(&mut c, COPY, "events", "id", COPY_ARGS, 5_000, 1_000);

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, ops) = (stop.clone(), ops.clone());
        let mut w = db.client();
        std::thread::spawn(move || -> Result<(), postgres::Error> {
            let mut k: i64 = 0;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                // New rows beyond the migration's range, rows in its gaps, and updates inside it.
                w.execute(
                    "INSERT INTO jobdb.events (id, from_col) VALUES (nextval('jobdb.events_new_ids'), $1)",
                    &[&(k as i32)],
                )?;
                let gap = ((k * 7) % 7_000) * 13 + 13;
                w.execute(
                    "INSERT INTO jobdb.events (id, from_col) VALUES ($1::int8::int4, $2) ON CONFLICT (id) DO NOTHING",
                    &[&gap, &(k as i32)],
                )?;
                w.execute(
                    "UPDATE jobdb.events SET from_col = coalesce(from_col, 0) + 1 WHERE id = $1::int8::int4",
                    &[&((k * 7919) % 100_000 + 1)],
                )?;
                ops.fetch_add(3, Ordering::SeqCst);
            }
            Ok(())
        })
    };
    wait_until("the writer to start", WAIT, || {
        ops.load(Ordering::SeqCst) > 0
    });
    let at_start = ops.load(Ordering::SeqCst);
    let run = db.run(&[
        "finalize-migration",
        "--id",
        &id.to_string(),
        "--pause-ms",
        "2",
    ]);
    let during = ops.load(Ordering::SeqCst) - at_start;
    stop.store(true, Ordering::SeqCst);
    writer
        .join()
        .expect("writer thread")
        .expect("the writer never failed");
    run.expect(0);
    assert!(during > 0, "the writer made progress while finalize ran");
    assert_eq!(migration_status(&mut c, id), 3);
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(uncopied(&mut c, "events"), 0);
}

#[test]
fn bad_input_is_rejected_with_one_line_and_nothing_changed() {
    let db = TestDb::initialized();
    let mut c = db.client();
    copy_table(&mut c, "events", 1_000);
    c.batch_execute("CREATE TABLE jobdb.victim (x int)")
        .unwrap();
    let mut q = |class: &str, table: &str, column: &str, args: &str| {
        queue_raw(&mut c, class, table, column, args, 1000, 100, 10)
    };
    let good = q(COPY, "events", "id", COPY_ARGS);
    let unknown_class = q("FooJob", "events", "id", "[]");
    let bad_shape = q(COPY, "events", "id", r#"[["from_col"]]"#);
    let hostile_table = q(COPY, "events; DROP TABLE jobdb.victim; --", "id", COPY_ARGS);
    let hostile_column = q(
        COPY,
        "events",
        "id",
        r#"[["from_col"],["to_col\" = 1; DROP TABLE jobdb.victim; --"]]"#,
    );
    let hostile_batch_column = q(
        COPY,
        "events",
        "id\" >= 0; DROP TABLE jobdb.victim; --",
        r#"[["payload"],["to_col"]]"#,
    );
    let bad_expression = q(
        BACKFILL,
        "events",
        "id",
        r#"["payload", "1; DROP TABLE jobdb.victim"]"#,
    );
    let wrong_type = q(COPY, "events", "id", r#"[["payload"],["to_col"]]"#);
    let not_integer = q(COPY, "events", "payload", COPY_ARGS);

    let before = bookkeeping_snapshot(&mut c);
    let data_before = scalar_i64(
        &mut c,
        "SELECT count(*) FROM jobdb.events WHERE to_col IS NULL",
    );
    let id = |n: i64| n.to_string();
    let good_hint = format!("--id {good}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["FooJob".into(), "events".into(), "id".into()],
            "unknown job class",
        ),
        (
            vec!["--id".into(), id(unknown_class)],
            "CopyColumnUsingBackgroundMigrationJob",
        ),
        (
            vec![
                COPY.into(),
                "events".into(),
                "id".into(),
                r#"[["from_col"],"#.into(),
            ],
            "not valid JSON",
        ),
        (
            vec![
                COPY.into(),
                "events".into(),
                "id".into(),
                r#"[["from_col"],["nope"]]"#.into(),
            ],
            &good_hint,
        ),
        (
            vec![
                COPY.into(),
                "events; DROP TABLE jobdb.victim".into(),
                "id".into(),
                COPY_ARGS.into(),
            ],
            "no background migration",
        ),
        (
            vec!["--id".into(), "999999".into()],
            "no background migration with id 999999",
        ),
        (vec!["--id".into(), id(bad_shape)], "two arrays"),
        (vec!["--id".into(), id(hostile_table)], "does not exist"),
        (vec!["--id".into(), id(hostile_column)], "has no column"),
        (
            vec!["--id".into(), id(hostile_batch_column)],
            "has no column",
        ),
        (vec!["--id".into(), id(bad_expression)], "does not compile"),
        (vec!["--id".into(), id(wrong_type)], "does not compile"),
        (vec!["--id".into(), id(not_integer)], "integer column"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["finalize-migration".to_string()];
        full.extend(args.iter().cloned());
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let run = db.run(&full);
        run.expect(2);
        let line = run.one_line_error();
        assert!(
            line.contains(expected),
            "{full:?}: expected {expected:?} in {line}"
        );
    }
    assert_eq!(
        bookkeeping_snapshot(&mut c),
        before,
        "a refused run changed bookkeeping"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM jobdb.events WHERE to_col IS NULL"
        ),
        data_before
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'jobdb' AND tablename = 'victim'"
        ),
        1,
        "the victim table survived"
    );
    // Bad CLI usage is a usage error from clap.
    db.run(&["finalize-migration"]).expect(2);
    db.run(&["finalize-migration", COPY, "events"]).expect(2);
    db.run(&["finalize-migration", "--id", "1", "--all"])
        .expect(2);
    db.run(&["finalize-migration", "--id", "1", "--batch-size", "0"])
        .expect(2);
    db.run(&["background-migrations", "show", "424242"])
        .expect(2);
}

#[test]
fn odd_identifiers_are_quoted_and_backfill_runs_its_expression() {
    let db = TestDb::initialized();
    let mut c = db.client();
    c.batch_execute(
        r#"CREATE TABLE jobdb."We""ird tab" ("Id" bigint PRIMARY KEY, "fr""om" integer, "t o" bigint, note text);
           INSERT INTO jobdb."We""ird tab" SELECT g, g * 3, NULL, NULL FROM generate_series(1, 3000) g;
           CREATE SCHEMA other;
           CREATE TABLE other.things (id integer PRIMARY KEY, label text);
           INSERT INTO other.things SELECT g, NULL FROM generate_series(1, 2500) g;"#,
    )
    .unwrap();
    // The recorded names are the real (unquoted) ones, as GitLab stores them.
    let weird = queue_raw(
        &mut c,
        COPY,
        r#"We"ird tab"#,
        "Id",
        r#"[["fr\"om"],["t o"]]"#,
        3000,
        500,
        100,
    );
    db.run(&[
        "finalize-migration",
        "--id",
        &weird.to_string(),
        "--pause-ms",
        "0",
    ])
    .expect(0);
    assert_eq!(
        scalar_i64(
            &mut c,
            r#"SELECT count(*) FROM jobdb."We""ird tab" WHERE "t o" IS DISTINCT FROM "fr""om""#
        ),
        0
    );

    // A schema-qualified table outside the job schema, and a BackfillColumnJob expression.
    let backfill = queue_raw(
        &mut c,
        BACKFILL,
        "other.things",
        "id",
        r#"["label", "'thing-' || id"]"#,
        2500,
        1000,
        250,
    );
    db.run(&[
        "finalize-migration",
        BACKFILL,
        "other.things",
        "id",
        r#"["label", "'thing-' || id"]"#,
        "--pause-ms",
        "0",
    ])
    .expect(0);
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM other.things WHERE label IS DISTINCT FROM 'thing-' || id"
        ),
        0
    );
    assert_all_jobs_succeeded_and_tile(&mut c, backfill);
}

#[test]
fn finalize_all_runs_every_unfinished_migration_in_id_order() {
    let db = TestDb::initialized();
    let mut c = db.client();
    copy_table(&mut c, "a", 3_000);
    copy_table(&mut c, "b", 3_000);
    let first = queue(&mut c, COPY, "a", "id", COPY_ARGS, 1000, 500);
    let second = queue(&mut c, COPY, "b", "id", COPY_ARGS, 700, 700);
    let run = db.run(&["--json", "finalize-migration", "--all", "--pause-ms", "0"]);
    run.expect(0);
    let out = run.json();
    let ids: Vec<i64> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![first, second]);
    for (table, id) in [("a", first), ("b", second)] {
        assert_eq!(migration_status(&mut c, id), 3);
        assert_eq!(differences_from_oracle(&mut c, table), 0);
    }
    let none = db.run(&["--json", "finalize-migration", "--all"]);
    none.expect(0);
    assert_eq!(none.json(), serde_json::json!([]));
}

#[test]
fn adaptive_batch_size_honours_max_batch_size() {
    let (db, mut c, id) = events_copy_migration(30_000, 1_000, 500);
    c.execute(
        "UPDATE jobdb.batched_background_migrations SET max_batch_size = 4000 WHERE id = $1",
        &[&id],
    )
    .unwrap();
    // A generous target makes the optimizer grow the batch size, 20% at a time, up to the cap.
    let run = db.run(&[
        "--json",
        "finalize-migration",
        "--id",
        &id.to_string(),
        "--pause-ms",
        "0",
        "--target-batch-time",
        "30s",
    ]);
    run.expect(0);
    assert_eq!(run.json()["final_batch_size"], 4000);
    let sizes: Vec<i32> = c
        .query(
            "SELECT batch_size FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = $1 ORDER BY min_value",
            &[&id],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(&sizes[..4], &[1000, 1200, 1440, 1728], "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 4000), "{sizes:?}");
    assert!(sizes
        .windows(2)
        .all(|w| f64::from(w[1]) <= f64::from(w[0]) * 1.2 + 1.0));
    assert_all_jobs_succeeded_and_tile(&mut c, id);
    assert_eq!(uncopied(&mut c, "events"), 0);
}

#[test]
fn background_migrations_subcommands_change_the_database() {
    let db = TestDb::populated(&Spec {
        migrations: true,
        ..Spec::jobs(1000)
    });
    let mut c = db.client();
    let by_status = |c: &mut Client, status: i16| -> i64 {
        c.query_one(
            // The generator's migration of that status (a fresh schema has its own finished one).
            "SELECT max(id) FROM jobdb.batched_background_migrations WHERE status = $1",
            &[&status],
        )
        .unwrap()
        .get(0)
    };
    let (paused, active, finished, failed) = (
        by_status(&mut c, 0),
        by_status(&mut c, 1),
        by_status(&mut c, 3),
        by_status(&mut c, 4),
    );

    let list = db.run(&["--json", "background-migrations", "list"]);
    list.expect(0);
    let listed = list.json();
    // The generator's six plus the schema's own (finished) job_queue_id backfill.
    assert_eq!(listed.as_array().unwrap().len(), 7);
    let entry = |id: i64| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(entry(active)["status_name"], "active");
    assert_eq!(entry(active)["progress_pct"], 30.0);
    assert_eq!(entry(finished)["progress_pct"], 100.0);
    let human = db.run(&["background-migrations", "list"]);
    human.expect(0);
    assert!(human.stdout.contains("finalizing") && human.stdout.contains("30.0%"));

    let show = db.run(&[
        "--json",
        "background-migrations",
        "show",
        &active.to_string(),
    ]);
    show.expect(0);
    assert_eq!(show.json()["batch_jobs"].as_array().unwrap().len(), 3);

    // pause / resume
    db.run(&["background-migrations", "pause", &active.to_string()])
        .expect(0);
    assert_eq!(migration_status(&mut c, active), 0);
    let again = db.run(&["background-migrations", "pause", &active.to_string()]);
    again.expect(0);
    assert!(again.stdout.contains("already paused"));
    let refused = db.run(&["background-migrations", "pause", &finished.to_string()]);
    refused.expect(1);
    assert!(refused.one_line_error().contains("is finished"));
    assert_eq!(migration_status(&mut c, finished), 3);
    db.run(&["background-migrations", "resume", &paused.to_string()])
        .expect(0);
    assert_eq!(migration_status(&mut c, paused), 1);
    db.run(&["background-migrations", "resume", &failed.to_string()])
        .expect(1);
    assert_eq!(migration_status(&mut c, failed), 4);

    // retry: failed jobs back to pending with fresh attempts, migration active.
    c.execute(
        "UPDATE jobdb.batched_background_migration_jobs SET status = 2, attempts = 3
          WHERE id = (SELECT min(id) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = $1)",
        &[&failed],
    )
    .unwrap();
    db.run(&["background-migrations", "retry", &failed.to_string()])
        .expect(0);
    assert_eq!(migration_status(&mut c, failed), 1);
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {failed} AND (status = 2 OR attempts = 3)")
        ),
        0
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {failed} AND status = 0 AND attempts = 0")
        ),
        1
    );

    // mark-finished: refused without --yes (no terminal), explains the risk, then skips.
    c.execute(
        "UPDATE jobdb.batched_background_migration_jobs SET status = 2
          WHERE id = (SELECT min(id) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = $1)",
        &[&paused],
    )
    .unwrap();
    let before = bookkeeping_snapshot(&mut c);
    let refused = db.run(&[
        "background-migrations",
        "mark-finished",
        &paused.to_string(),
    ]);
    refused.expect(3).stderr_has("lose data");
    assert_eq!(bookkeeping_snapshot(&mut c), before);
    let marked = db.run(&[
        "--json",
        "background-migrations",
        "mark-finished",
        &paused.to_string(),
        "--yes",
    ]);
    marked.expect(0);
    assert_eq!(marked.json()["jobs_marked_succeeded"], 1);
    assert_eq!(migration_status(&mut c, paused), 3);
    assert_eq!(
        scalar_i64(
            &mut c,
            &format!("SELECT count(*) FROM jobdb.batched_background_migration_jobs WHERE batched_background_migration_id = {paused} AND status <> 3")
        ),
        0
    );
    let finished_at: Option<chrono::DateTime<chrono::Utc>> = c
        .query_one(
            "SELECT finished_at FROM jobdb.batched_background_migrations WHERE id = $1",
            &[&paused],
        )
        .unwrap()
        .get(0);
    assert!(finished_at.is_some());
}

#[test]
fn finalize_needs_the_native_profile() {
    let c = TestDb::empty();
    let mut client = c.client();
    client
        .batch_execute(
            "CREATE SCHEMA graphile_worker;
             CREATE TABLE graphile_worker.migrations (id int PRIMARY KEY, ts timestamptz DEFAULT now());
             INSERT INTO graphile_worker.migrations (id) VALUES (1), (2);
             CREATE TABLE graphile_worker.jobs (id bigserial PRIMARY KEY, locked_at timestamptz, locked_by text);
             CREATE TABLE graphile_worker.job_queues (queue_name text PRIMARY KEY, locked_at timestamptz, locked_by text);",
        )
        .unwrap();
    let run = c.run(&[
        "--profile",
        "graphile-worker",
        "finalize-migration",
        "--id",
        "1",
    ]);
    run.expect(2);
    assert!(run
        .one_line_error()
        .contains("needs the native jobdb schema"));
    c.run(&[
        "--profile",
        "graphile-worker",
        "background-migrations",
        "list",
    ])
    .expect(2);
}

/// A routine autovacuum on the migrated table (the kind the batches' own dead rows start)
/// does not hold the batches off: finalize runs to the end while it is still working. On a
/// cluster of its own, so the autovacuum naptime can be short without touching other tests.
#[test]
fn a_routine_autovacuum_on_the_table_does_not_hold_batches_off() {
    let cluster = common::TestCluster::started();
    let mut c = cluster.client();
    c.exec("ALTER SYSTEM SET autovacuum_naptime = '1s'");
    c.exec("SELECT pg_reload_conf()");
    // The slowest autovacuum the server allows (1 cost unit per 100 ms), so it is still on
    // the table when finalize ends; a threshold of zero makes any dead row start it.
    c.exec("CREATE TABLE jobdb.events (id bigint PRIMARY KEY, from_col integer, to_col bigint)
           WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
                 autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
         INSERT INTO jobdb.events (id, from_col) SELECT g, g % 1000 FROM generate_series(1, 20000) g;
         DELETE FROM jobdb.events WHERE id % 100 = 0;");
    let vacuuming = |c: &mut Client| -> bool {
        c.query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p
                              JOIN pg_stat_activity a ON a.pid = p.pid
                             WHERE p.relid = 'jobdb.events'::regclass
                               AND a.backend_type = 'autovacuum worker'
                               AND a.query NOT LIKE '%(to prevent wraparound)')",
            &[],
        )
        .expect("vacuum progress")
        .get(0)
    };
    wait_until("a routine autovacuum on jobdb.events", WAIT, || {
        vacuuming(&mut c)
    });
    let id = queue_raw(
        &mut c, COPY, "events", "id", COPY_ARGS, 20_000, 2_000, 1_000,
    );
    let run = cluster.run(&[
        "finalize-migration",
        "--id",
        &id.to_string(),
        "--pause-ms",
        "0",
    ]);
    run.expect(0);
    assert!(
        vacuuming(&mut c),
        "the autovacuum ended before finalize did: finalize waited for it, or it was too quick to show anything"
    );
    assert!(!run.stderr.contains("paused"), "{}", run.stderr);
    assert_eq!(uncopied(&mut c, "events"), 0);
    assert_eq!(migration_status(&mut c, id), 3);
}

#[test]
fn the_migrations_own_pause_applies_only_while_a_live_worker_exists() {
    let (db, mut c, quiet) = events_copy_migration(2_000, 1_000, 250);
    copy_table(&mut c, "busy", 2_000);
    let busy = queue(&mut c, COPY, "busy", "id", COPY_ARGS, 1_000, 250);
    c.execute(
        "UPDATE jobdb.batched_background_migrations SET pause_ms = 20",
        &[],
    )
    .expect("pause");
    c.execute("DELETE FROM jobdb.workers", &[])
        .expect("no workers");

    // The engine is stopped: nothing to protect, no pause.
    let run = db.run(&["--json", "finalize-migration", "--id", &quiet.to_string()]);
    run.expect(0);
    assert_eq!(run.json()["paused_s"], 0.0, "{}", run.stdout);
    assert_eq!(migration_status(&mut c, quiet), 3);

    // A live worker: every pause between sub-batches is taken, as the batch jobs record.
    c.execute(
        "INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version, started_at, last_heartbeat_at)
         VALUES ('w-live', 'h', 1, '1', 3, now(), now())",
        &[],
    )
    .expect("live worker");
    let run = db.run(&["--json", "finalize-migration", "--id", &busy.to_string()]);
    run.expect(0);
    let pauses = scalar_i64(
        &mut c,
        &format!(
            "SELECT sum((metrics->>'sub_batches')::int8 - 1)::int8 FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = {busy} AND status = 3"
        ),
    );
    assert!(pauses > 0);
    let paused = run.json()["paused_s"].as_f64().expect("paused_s");
    assert!(
        (paused - pauses as f64 * 0.020).abs() < 1e-6,
        "paused {paused} s for {pauses} pauses"
    );
    assert_eq!(migration_status(&mut c, busy), 3);

    // Finished migrations show as done in the list.
    let list = db.run(&["--json", "background-migrations", "list"]);
    list.expect(0);
    for m in list.json().as_array().expect("rows") {
        assert_eq!(m["progress_pct"], 100.0, "{m}");
    }
    let human = db.run(&["background-migrations", "list"]);
    assert!(
        human.expect(0).stdout.contains("100.0%"),
        "{}",
        human.stdout
    );
}
