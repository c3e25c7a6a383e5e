//! Housekeeping commands against a real server: purge-jobs (plain, --archive, --dry-run,
//! kill -9 mid-purge, a live worker alongside), purge-archive, vacuum, logs, bad inputs.

mod common;
use common::Exec;

use common::path_str;

use common::generate;
use common::generate::Spec;
use common::scalar_i64;
use common::wait_until;
use common::TestDb;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

/// Ids of the jobs that a purge with `where` as its cut-off condition must remove.
fn purgeable_ids(client: &mut postgres::Client, cutoff_sql: &str) -> BTreeSet<i64> {
    client
        .query(
            &format!(
                "SELECT id FROM jobdb.jobs WHERE state IN ('succeeded','failed','cancelled')
                  AND locked_by IS NULL AND updated_at < {cutoff_sql}"
            ),
            &[],
        )
        .expect("purgeable ids")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn all_ids(client: &mut postgres::Client, table: &str) -> BTreeSet<i64> {
    client
        .query(&format!("SELECT id FROM {table}"), &[])
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn archive_ids(client: &mut postgres::Client) -> BTreeSet<i64> {
    let tables: Vec<String> = common::column(client, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'jobdb' AND tablename LIKE 'jobs\\_archive\\_%'");
    let mut ids = BTreeSet::new();
    for t in tables {
        let n_before = ids.len();
        let these = all_ids(client, &format!("jobdb.{t}"));
        let n = these.len();
        ids.extend(these);
        assert_eq!(ids.len(), n_before + n, "an id is in two archive tables");
    }
    ids
}

fn last_value(client: &mut postgres::Client) -> i64 {
    scalar_i64(client, "SELECT last_value FROM jobdb.jobs_id_seq")
}

/// Ages a slice of finished jobs into given months, so cut-offs and archive months are exact.
fn age_jobs(client: &mut postgres::Client) {
    client.exec(
        "UPDATE jobdb.jobs SET updated_at = '2026-01-15 12:00:00+00' WHERE id % 10 IN (1, 2);
             UPDATE jobdb.jobs SET updated_at = '2026-02-20 12:00:00+00' WHERE id % 10 = 3;
             UPDATE jobdb.jobs SET updated_at = '2026-03-02 00:00:00+00' WHERE id % 10 = 4;",
    );
}

#[test]
fn purge_removes_only_finished_jobs_before_the_cutoff_and_keeps_the_counter() {
    let db = TestDb::populated(&Spec::jobs(5000));
    let mut c = db.client();
    age_jobs(&mut c);
    let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
    assert!(doomed.len() > 500, "test data must have old finished jobs");
    let before = all_ids(&mut c, "jobdb.jobs");
    // The highest id, finished long ago: purging it must not let the counter go back.
    let top = *before.last().expect("jobs");
    c.execute(
        "UPDATE jobdb.jobs SET state = 'succeeded', locked_by = NULL, locked_at = NULL,
                updated_at = '2026-01-01' WHERE id = $1",
        &[&top],
    )
    .expect("age the newest job");
    let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
    assert!(doomed.contains(&top));
    let counter = last_value(&mut c);
    let unfinished_before = scalar_i64(
        &mut c,
        "SELECT count(*) FROM jobdb.jobs WHERE state IN ('queued', 'running')",
    );

    let run = db.run(&["purge-jobs", "--before", "2026-03-01", "--json"]);
    run.expect(0);
    let json = run.json();
    assert_eq!(json["jobs"].as_i64(), Some(doomed.len() as i64));
    assert!(json["batches"].as_u64().unwrap_or(0) >= 1);

    let after = all_ids(&mut c, "jobdb.jobs");
    let expected: BTreeSet<i64> = before.difference(&doomed).copied().collect();
    assert_eq!(after, expected, "exactly the purgeable jobs are gone");
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM jobdb.jobs WHERE state IN ('queued', 'running')"
        ),
        unfinished_before,
        "queued and running jobs are kept whatever their age"
    );
    assert_eq!(
        last_value(&mut c),
        counter,
        "the job-ID counter never moves back"
    );
    let next: i64 = scalar_i64(
        &mut c,
        "INSERT INTO jobdb.jobs (task_identifier) VALUES ('after_purge') RETURNING id",
    );
    assert!(next > top, "a new job gets an id above every purged one");
    // Nothing left to do: a rerun purges nothing.
    let again = db.run(&["purge-jobs", "--before", "2026-03-01", "--json"]);
    assert_eq!(again.expect(0).json()["jobs"].as_i64(), Some(0));
}

#[test]
fn purge_by_state_and_older_than() {
    let db = TestDb::populated(&Spec::jobs(3000));
    let mut c = db.client();
    age_jobs(&mut c);
    let failed: BTreeSet<i64> = common::column(&mut c, "SELECT id FROM jobdb.jobs WHERE state IN ('failed', 'cancelled') AND updated_at < now() - interval '30 days'");
    assert!(!failed.is_empty());
    let before = all_ids(&mut c, "jobdb.jobs");
    db.run(&[
        "purge-jobs",
        "--older-than",
        "30d",
        "--state",
        "failed,cancelled",
    ])
    .expect(0);
    let after = all_ids(&mut c, "jobdb.jobs");
    assert_eq!(
        after,
        before.difference(&failed).copied().collect::<BTreeSet<_>>()
    );
}

#[test]
fn dry_run_counts_and_changes_nothing() {
    let db = TestDb::populated(&Spec::jobs(3000));
    let mut c = db.client();
    age_jobs(&mut c);
    let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
    let before = all_ids(&mut c, "jobdb.jobs");
    for archive in [false, true] {
        let mut args = vec![
            "purge-jobs",
            "--before",
            "2026-03-01",
            "--dry-run",
            "--json",
        ];
        if archive {
            args.push("--archive");
        }
        let json = db.run(&args).expect(0).json();
        assert_eq!(json["jobs"].as_i64(), Some(doomed.len() as i64));
        assert_eq!(json["dry_run"], true);
        let months: BTreeSet<String> = json["by_month"]
            .as_array()
            .expect("by_month")
            .iter()
            .map(|m| m["month"].as_str().expect("month").to_string())
            .collect();
        assert_eq!(
            months,
            ["2026-01", "2026-02"]
                .map(String::from)
                .into_iter()
                .collect()
        );
        assert_eq!(all_ids(&mut c, "jobdb.jobs"), before);
        assert!(
            archive_ids(&mut c).is_empty(),
            "dry run creates no archive table"
        );
    }
    let human = db.run(&["purge-jobs", "--before", "2026-03-01", "--dry-run"]);
    assert!(human
        .expect(0)
        .stdout
        .contains(&format!("would delete {}", doomed.len())));
}

#[test]
fn archive_moves_rows_into_month_tables_and_purge_archive_drops_months() {
    let db = TestDb::populated(&Spec::jobs(4000));
    let mut c = db.client();
    age_jobs(&mut c);
    let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
    let january: BTreeSet<i64> = common::column(
        &mut c,
        "SELECT id FROM jobdb.jobs WHERE state IN ('succeeded','failed','cancelled')
              AND locked_by IS NULL AND updated_at < '2026-02-01'",
    );
    let original: Vec<String> = c
        .query(
            "SELECT t::text FROM jobdb.jobs t WHERE id = ANY($1) ORDER BY id",
            &[&doomed.iter().copied().collect::<Vec<i64>>()],
        )
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();

    db.run(&["purge-jobs", "--before", "2026-03-01", "--archive"])
        .expect(0);
    assert!(all_ids(&mut c, "jobdb.jobs").is_disjoint(&doomed));
    assert_eq!(
        archive_ids(&mut c),
        doomed,
        "every purged job is archived once"
    );
    assert_eq!(all_ids(&mut c, "jobdb.jobs_archive_2026_01"), january);
    let archived: Vec<String> = common::column(&mut c, "SELECT t::text FROM (SELECT * FROM jobdb.jobs_archive_2026_01
                                  UNION ALL SELECT * FROM jobdb.jobs_archive_2026_02) t ORDER BY id");
    assert_eq!(
        archived, original,
        "archived rows are the jobs, column for column"
    );

    // purge-archive: dry run and no terminal change nothing; --yes drops up to the month.
    let dry = db.run(&["purge-archive", "--to", "2026-01", "--dry-run", "--json"]);
    let tables = dry.expect(0).json()["tables"].clone();
    assert_eq!(tables.as_array().map(Vec::len), Some(1));
    assert_eq!(tables[0]["rows"].as_i64(), Some(january.len() as i64));
    let refused = db.run(&["purge-archive", "--to", "2026-01"]);
    refused.expect(3);
    assert!(refused.one_line_error().contains("--yes"));
    assert_eq!(archive_ids(&mut c), doomed);
    db.run(&["purge-archive", "--to", "2026-01", "--yes"])
        .expect(0);
    assert_eq!(
        archive_ids(&mut c),
        doomed
            .difference(&january)
            .copied()
            .collect::<BTreeSet<_>>()
    );
    assert!(!common::table_names(&mut c, "jobdb").contains(&"jobs_archive_2026_01".to_string()));
}

#[test]
fn bad_durations_timestamps_and_months_exit_2_and_change_nothing() {
    let db = TestDb::populated(&Spec::jobs(200));
    let mut c = db.client();
    let before = all_ids(&mut c, "jobdb.jobs");
    for args in [
        vec!["purge-jobs", "--older-than", "5 fortnights"],
        vec!["purge-jobs", "--older-than", "-3d"],
        vec!["purge-jobs", "--before", "yesterday-ish"],
        vec!["purge-jobs", "--before", "2026-13-01"],
        vec!["purge-jobs"],
        vec!["purge-jobs", "--older-than", "1d", "--before", "2026-01-01"],
        vec!["purge-jobs", "--older-than", "1d", "--state", "queued"],
        vec!["purge-archive", "--to", "2026-13"],
        vec!["purge-archive", "--to", "26-01"],
        vec!["purge-archive", "--to", "2026-1"],
    ] {
        let run = db.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
    let run = db.run(&["purge-jobs", "--older-than", "5 fortnights"]);
    assert!(run.one_line_error().contains("invalid duration"));
    let run = db.run(&["purge-archive", "--to", "2026-13"]);
    assert!(run.one_line_error().contains("YYYY-MM"));
    assert_eq!(all_ids(&mut c, "jobdb.jobs"), before);
}

#[test]
fn a_second_purger_exits_7_and_dependents_are_refused() {
    let db = TestDb::populated(&Spec::jobs(500));
    let mut c = db.client();
    age_jobs(&mut c);
    let before = all_ids(&mut c, "jobdb.jobs");
    let mut holder = db.client();
    holder.exec("SELECT pg_advisory_lock(hashtextextended('jobdbctl:purge', 0))");
    let run = db.run(&["purge-jobs", "--before", "2026-03-01"]);
    run.expect(7);
    assert!(run.one_line_error().contains("another jobdbctl"));
    let run = db.run(&["purge-archive", "--to", "2026-01", "--yes"]);
    run.expect(7);
    drop(holder);

    c.exec(
        "CREATE TABLE public.job_notes (job_id bigint REFERENCES jobdb.jobs(id), note text);
         INSERT INTO public.job_notes SELECT id, 'n' FROM jobdb.jobs WHERE id % 10 = 1 LIMIT 5;",
    );
    let run = db.run(&["purge-jobs", "--before", "2026-03-01"]);
    run.expect(3);
    assert!(run.one_line_error().contains("job_notes"));
    let run = db.run(&["purge-jobs", "--before", "2026-03-01", "--archive"]);
    run.expect(3);
    assert_eq!(all_ids(&mut c, "jobdb.jobs"), before);
    // With ON DELETE CASCADE the notes go with their jobs.
    c.exec(
        "ALTER TABLE public.job_notes DROP CONSTRAINT job_notes_job_id_fkey,
           ADD FOREIGN KEY (job_id) REFERENCES jobdb.jobs(id) ON DELETE CASCADE",
    );
    db.run(&["purge-jobs", "--before", "2026-03-01"]).expect(0);
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM public.job_notes"),
        0
    );
}

/// No advisory lock of jobdbctl is held in this database (a killed run's backend is gone).
fn purge_lock_free(c: &mut postgres::Client) -> bool {
    scalar_i64(
        c,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == 0
}

#[test]
fn kill_9_mid_purge_leaves_each_row_in_exactly_one_place_and_a_rerun_finishes() {
    let db = TestDb::populated(&Spec::jobs(300_000));
    let mut c = db.client();
    age_jobs(&mut c);
    let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
    let before = all_ids(&mut c, "jobdb.jobs");
    let mut child = db.spawn(&["purge-jobs", "--before", "2026-03-01", "--archive"]);
    // Kill once some windows have committed and more are to come.
    wait_until("a committed purge window", Duration::from_secs(120), || {
        let moved = scalar_i64(
            &mut c,
            "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables
              WHERE schemaname = 'jobdb' AND relname LIKE 'jobs\\_archive\\_%'",
        );
        moved > 0 || child.try_wait().ok().flatten().is_some()
    });
    let _ = child.kill();
    let status = child.wait().expect("wait for the killed purge");
    wait_until(
        "the killed run's session ends",
        Duration::from_secs(60),
        || purge_lock_free(&mut c),
    );
    let remaining = all_ids(&mut c, "jobdb.jobs");
    let archived = archive_ids(&mut c);
    assert!(remaining.is_disjoint(&archived), "no row is in both places");
    let union: BTreeSet<i64> = remaining.union(&archived).copied().collect();
    assert_eq!(union, before, "no row is lost");
    assert!(archived.is_subset(&doomed));
    if status.success() {
        eprintln!("note: the purge finished before the kill landed");
    }

    db.run(&["purge-jobs", "--before", "2026-03-01", "--archive"])
        .expect(0);
    assert_eq!(archive_ids(&mut c), doomed);
    assert_eq!(
        all_ids(&mut c, "jobdb.jobs"),
        before.difference(&doomed).copied().collect::<BTreeSet<_>>()
    );
}

#[test]
fn a_live_worker_keeps_its_jobs_and_is_not_held_up_during_a_purge() {
    let db = TestDb::populated(&Spec::jobs(200_000));
    let mut c = db.client();
    // Everything finished is old; the worker's jobs finish now and must stay.
    c.exec(
        "UPDATE jobdb.jobs SET updated_at = now() - interval '40 days'
          WHERE state IN ('succeeded', 'failed', 'cancelled', 'running')",
    );
    let running_before: BTreeSet<i64> =
        common::column(&mut c, "SELECT id FROM jobdb.jobs WHERE state = 'running'");
    let stop = Arc::new(AtomicBool::new(false));
    let finished_by_worker = Arc::new(Mutex::new(Vec::<i64>::new()));
    let worker = {
        let stop = stop.clone();
        let finished_by_worker = finished_by_worker.clone();
        let mut w = db.client();
        thread::spawn(move || {
            let mut max_wait = Duration::ZERO;
            w.exec("SET lock_timeout = '10s'");
            while !stop.load(Ordering::SeqCst) {
                let Some((id, waited)) = generate::work_one_job(&mut w, "live-0") else {
                    break;
                };
                max_wait = max_wait.max(waited);
                finished_by_worker.lock().expect("lock").push(id);
            }
            max_wait
        })
    };
    wait_until("the worker finished a job", Duration::from_secs(30), || {
        !finished_by_worker.lock().expect("lock").is_empty()
    });
    let run = db.run(&["purge-jobs", "--older-than", "30d", "--archive", "--json"]);
    stop.store(true, Ordering::SeqCst);
    let max_wait = worker.join().expect("worker thread");
    run.expect(0);
    eprintln!(
        "worker max statement time during purge: {max_wait:?}; purge batch max {} ms",
        run.json()["batch_ms_max"]
    );
    let finished = finished_by_worker.lock().expect("lock").clone();
    assert!(!finished.is_empty());
    let remaining = all_ids(&mut c, "jobdb.jobs");
    for id in &finished {
        assert!(
            remaining.contains(id),
            "job {id} finished by the live worker during the purge was purged"
        );
    }
    for id in &running_before {
        assert!(remaining.contains(id), "running job {id} was purged");
    }
    let archived = archive_ids(&mut c);
    assert!(remaining.is_disjoint(&archived));
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM jobdb.jobs WHERE state <> 'queued' AND state <> 'running'
              AND updated_at < now() - interval '30 days'"
        ),
        0,
        "every old finished job was purged"
    );
}

#[test]
fn archive_tables_round_trip_through_backup_and_restore() {
    let db = TestDb::populated(&Spec::jobs(2000));
    let mut c = db.client();
    age_jobs(&mut c);
    db.run(&["purge-jobs", "--before", "2026-03-01", "--archive"])
        .expect(0);
    let archived = archive_ids(&mut c);
    assert!(!archived.is_empty());
    let dir = common::temp_dir("hk");
    let path = dir.path().join("with-archive.tar.gz");
    let path = path.to_str().expect("utf-8 path");
    db.run(&["backup", "--output", path]).expect(0);
    let target = TestDb::empty();
    target.run(&["restore", path]).expect(0);
    let mut t = target.client();
    assert_eq!(archive_ids(&mut t), archived);
    assert_eq!(all_ids(&mut t, "jobdb.jobs"), all_ids(&mut c, "jobdb.jobs"));
    // The restored archive can be dropped by month like the original.
    target
        .run(&["purge-archive", "--to", "2026-12", "--yes"])
        .expect(0);
    assert!(archive_ids(&mut t).is_empty());
}

fn dead_tuples(c: &mut postgres::Client, table: &str) -> i64 {
    c.exec("SELECT pg_stat_clear_snapshot()");
    scalar_i64(
        c,
        &format!(
            "SELECT coalesce((SELECT n_dead_tup FROM pg_stat_user_tables
                              WHERE schemaname = 'jobdb' AND relname = '{table}'), 0)"
        ),
    )
}

/// A populated database whose jobs table has `deleted` dead tuples autovacuum will not touch.
fn with_dead_tuples(spec: &Spec, deleted: i64) -> TestDb {
    let db = TestDb::populated(spec);
    let mut c = db.client();
    c.exec("ALTER TABLE jobdb.jobs SET (autovacuum_enabled = false)");
    c.execute("DELETE FROM jobdb.jobs WHERE id <= $1", &[&deleted])
        .expect("delete");
    // Statistics reach the shared view a moment after commit.
    wait_until("dead tuples counted", Duration::from_secs(30), || {
        dead_tuples(&mut c, "jobs") >= deleted
    });
    db
}

#[test]
fn vacuum_reports_dead_tuples_before_and_after_and_status_warns_on_bloat() {
    let db = with_dead_tuples(&Spec::jobs(40_000), 30_000);
    let mut c = db.client();
    let status = db.run(&["status"]);
    status.expect(0).stdout_has("jobs table");
    status.stderr_has("bloated");
    let json = db.run(&["status", "--json"]).expect(0).json();
    assert!(
        json["jobs_table_health"]["dead_tuples"]
            .as_i64()
            .unwrap_or(0)
            >= 30_000
    );

    let json = db.run(&["vacuum", "--analyze", "--json"]).expect(0).json();
    let tables = json["tables"].as_array().expect("tables");
    let names: Vec<&str> = tables.iter().filter_map(|t| t["table"].as_str()).collect();
    assert_eq!(names, ["jobs", "job_queues", "workers"]);
    assert!(tables[0]["before"]["dead_tuples"].as_i64().unwrap_or(0) >= 30_000);
    assert_eq!(tables[0]["after"]["dead_tuples"].as_i64(), Some(0));
    let vacuumed = scalar_i64(
        &mut c,
        "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'jobdb'
            AND relname IN ('jobs', 'job_queues', 'workers')
            AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL",
    );
    assert_eq!(vacuumed, 3, "the server recorded a VACUUM ANALYZE of each");
    let status = db.run(&["status"]);
    assert!(!status.expect(0).stderr.contains("bloated"));
}

#[test]
fn vacuum_full_needs_yes_refuses_live_workers_and_shrinks_the_table() {
    let spec = Spec {
        jobs: 20_000,
        live_workers: 1,
        dead_workers: 1,
        migrations: false,
    };
    let db = with_dead_tuples(&spec, 18_000);
    let mut c = db.client();
    let file = |c: &mut postgres::Client| {
        scalar_i64(c, "SELECT pg_relation_filenode('jobdb.jobs')::bigint")
    };
    let before = file(&mut c);
    let run = db.run(&["vacuum", "--full", "--yes"]);
    run.expect(3);
    assert!(run.one_line_error().contains("live worker"));
    c.exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 day'");
    let run = db.run(&["vacuum", "--full"]);
    run.expect(3);
    assert!(run.one_line_error().contains("--yes"));
    assert_eq!(file(&mut c), before, "refused runs rewrite nothing");

    let json = db
        .run(&["vacuum", "--full", "--yes", "--table", "jobs", "--json"])
        .expect(0)
        .json();
    let t = &json["tables"][0];
    assert!(t["after"]["bytes"].as_i64() < t["before"]["bytes"].as_i64());
    assert_ne!(file(&mut c), before, "VACUUM FULL rewrote the table");
    // A live worker may be overridden with --force.
    c.exec("UPDATE jobdb.workers SET last_heartbeat_at = now()");
    db.run(&["vacuum", "--full", "--force", "--yes", "--table", "workers"])
        .expect(0);
}

#[test]
fn vacuum_of_an_unknown_table_exits_2() {
    let db = TestDb::populated(&Spec::jobs(100));
    let run = db.run(&["vacuum", "--table", "no_such_table"]);
    run.expect(2);
    assert!(run.one_line_error().contains("no such table"));
    db.run(&["vacuum", "--force"]).expect(2);
}

#[test]
fn logs_of_the_embedded_cluster_rotate_into_log_dir_show_tail_and_purge_old_files() {
    let cluster = common::TestCluster::started();
    let log_dir = cluster.pgdata().join("log");
    let mut c = cluster.client();
    // A line only this test writes, logged through the collector.
    c.exec("DO $$ BEGIN RAISE LOG 'housekeeping-marker-4711'; END $$");
    wait_until(
        "the marker in the collector's file",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(&log_dir).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains("housekeeping-marker-4711"))
                })
            })
        },
    );
    let run = cluster.run(&["logs", "--tail", "20"]);
    assert!(run.expect(0).stdout.contains("housekeeping-marker-4711"));
    assert!(run.stdout.lines().count() <= 20);
    let json = cluster
        .run(&["logs", "--since", "1h", "--json"])
        .expect(0)
        .json();
    assert!(json["lines"].as_array().expect("lines").iter().any(|l| l
        .as_str()
        .is_some_and(|l| l.contains("housekeeping-marker-4711"))));

    // An old rotated file goes; the current one and the start-up log stay.
    let old = log_dir.join("postgresql-2020-01-01_000000.log");
    std::fs::write(&old, "2020-01-01 00:00:00.000 UTC [1] LOG:  old\n").expect("old log");
    let month_ago = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(month_ago))
        .expect("age the old log");
    let current: Vec<_> = std::fs::read_dir(&log_dir)
        .expect("log dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| *p != old)
        .collect();
    assert!(!current.is_empty());
    let dry = cluster.run(&["logs", "--purge", "--older-than", "30d", "--dry-run"]);
    assert!(dry.expect(0).stdout.contains("would remove 1"));
    assert!(old.exists());
    cluster
        .run(&["logs", "--purge", "--older-than", "30d"])
        .expect(0);
    assert!(!old.exists());
    for p in &current {
        assert!(p.exists(), "{} was removed", p.display());
    }
    assert!(cluster.pgdata().join("jobdbctl-server.log").exists());
    cluster
        .run(&["logs", "--purge", "--older-than", "soon"])
        .expect(2);
}

#[test]
fn logs_of_a_remote_server_exit_2() {
    let db = TestDb::initialized();
    let run = db.run(&["logs", "--tail", "5"]);
    run.expect(2);
    assert!(run.one_line_error().contains("the server's own"));
}

/// A row some session holds locked (a worker re-queueing a failed job, an operator's open
/// transaction) stops the fast plain DELETE of its window within the lock timeout; the window
/// is taken again skipping that row, so everything else goes and the held row stays, in the
/// jobs table or (with --archive) nowhere else.
#[test]
fn purge_skips_a_row_held_by_another_session_and_removes_the_rest() {
    for archive in [false, true] {
        let db = TestDb::populated(&Spec::jobs(3000));
        let mut c = db.client();
        age_jobs(&mut c);
        let doomed = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
        let held = *doomed
            .iter()
            .nth(doomed.len() / 2)
            .expect("a purgeable job");
        let mut holder = db.client();
        let mut tx = holder.transaction().expect("begin");
        tx.execute(
            "SELECT 1 FROM jobdb.jobs WHERE id = $1 FOR UPDATE",
            &[&held],
        )
        .expect("hold the row");

        let mut args = vec!["purge-jobs", "--before", "2026-03-01", "--json"];
        if archive {
            args.push("--archive");
        }
        let run = db.run(&args);
        let json = run.expect(0).json();
        tx.rollback().expect("release");
        assert_eq!(json["jobs"].as_i64(), Some(doomed.len() as i64 - 1));
        assert!(
            json["retried_batches"].as_u64().unwrap_or(0) >= 1,
            "the plain DELETE must have met the lock: {json}"
        );
        let left = purgeable_ids(&mut c, "'2026-03-01 00:00:00+00'");
        assert_eq!(
            left,
            BTreeSet::from([held]),
            "archive {archive}: only the held row stays"
        );
        if archive {
            let archived = archive_ids(&mut c);
            let mut expected = doomed.clone();
            expected.remove(&held);
            assert_eq!(
                archived, expected,
                "every other purged row is archived, once"
            );
        }
        // The held row goes on the next run.
        let again = db.run(&["purge-jobs", "--before", "2026-03-01", "--json"]);
        assert_eq!(again.expect(0).json()["jobs"].as_i64(), Some(1));
    }
}

#[test]
fn a_job_log_tree_thousands_deep_is_removed_with_few_descriptors() {
    let dir = common::temp_dir("tr");
    let logs = dir.path().join("logs");
    let job = logs.join("alice/J2000");
    // 3000 levels: more than the 64 descriptors the run may open. Made level by level
    // from an open descriptor (a path this long is too long for one call, and the working
    // directory is shared by the tests running alongside).
    fs::create_dir_all(&job).expect("mkdir job");
    let mut level = fs::File::open(&job).expect("open job");
    for i in 0..3000 {
        let name = if i % 2 == 0 { "d" } else { "e" };
        let here = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&level));
        fs::create_dir(format!("{here}/{name}")).expect("mkdir level");
        fs::write(format!("{here}/{name}.log"), "x").expect("write log");
        level = fs::File::open(format!("{here}/{name}")).expect("open level");
    }
    let here = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&level));
    fs::write(format!("{here}/T1.log"), "deepest").expect("write deepest");
    drop(level);
    fs::create_dir_all(logs.join("alice/J5")).expect("keep");
    let etc = dir.path().join("etc");
    fs::create_dir(&etc).expect("configdir");
    let run = common::run({
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"ulimit -n 64 && exec "$@""#)
            .arg("sh")
            .arg(common::BIN)
            .args([
                "--configdir",
                path_str(&etc),
                "--data-dir",
                "/nonexistent/jd",
            ])
            .args([
                "--json",
                "job-logs",
                "--dir",
                path_str(&logs),
                "--above",
                "1000",
                "--delete",
                "--yes",
            ]);
        cmd
    });
    run.expect(0);
    assert!(
        !job.exists(),
        "the deep job directory is still there: {}",
        run.stdout
    );
    assert!(
        logs.join("alice/J5").exists(),
        "a job at or below --above was removed"
    );
}
