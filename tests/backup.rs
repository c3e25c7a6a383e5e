//! backup, restore, verify and destroy --backup-first against real servers: round trips
//! compared with pg_dump, consistency under concurrent writers, the downgrade runbook,
//! kill -9 at several points, disk full, hostile archives and refusals.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::generate::{self, Spec};
use common::{scalar_i64, schema_exists, wait_until, TestCluster, TestDb};

/// Schema and data of `schema`, as pg_dump sees them.
fn snapshot(db: &TestDb, schema: &str) -> (Vec<String>, Vec<String>) {
    (
        common::pg_dump_sorted(db, schema, "--schema-only"),
        common::pg_dump_sorted(db, schema, "--data-only"),
    )
}

#[track_caller]
fn assert_same(before: &(Vec<String>, Vec<String>), after: &(Vec<String>, Vec<String>)) {
    for (what, b, a) in [
        ("schema", &before.0, &after.0),
        ("data", &before.1, &after.1),
    ] {
        if b != a {
            let missing: Vec<_> = b.iter().filter(|l| !a.contains(l)).take(5).collect();
            let extra: Vec<_> = a.iter().filter(|l| !b.contains(l)).take(5).collect();
            panic!("{what} differs\nmissing after: {missing:#?}\nextra after: {extra:#?}");
        }
    }
}

/// No job holds a lock, so a restore (which requeues locked jobs) gives back the same rows.
fn release_locks(client: &mut postgres::Client) {
    client
        .exec("UPDATE jobdb.jobs SET state = 'succeeded', locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL;
             UPDATE jobdb.job_queues SET locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL;");
}

/// Workers stop heartbeating: restore refuses while any is live.
fn stop_workers(client: &mut postgres::Client) {
    client.exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
}

fn archive_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn backup_to(db: &TestDb, path: &Path) {
    db.run(&["backup", "--output", path_str(path)]).expect(0);
}

fn backup_graphile_to(db: &TestDb, path: &Path) {
    db.run(&[
        "--profile",
        "graphile-worker",
        "backup",
        "--output",
        path_str(path),
    ])
    .expect(0);
}

/// How long the kill tests wait for an observable state before failing.
const WAIT: Duration = Duration::from_secs(120);

/// jobdbctl sessions on `db` (a killed run's backends linger until they notice).
fn jobdbctl_backends(admin: &mut postgres::Client, db: &TestDb) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'jobdbctl' AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .expect("pg_stat_activity")
        .get(0)
}

/// Waits until `reached`, kills the run and waits until its server sessions are gone, so the
/// next step sees what the kill left.
fn kill_when(db: &TestDb, run: Child, what: &str, reached: impl FnMut() -> bool) {
    kill_releasing(db, run, what, reached, || ())
}

/// `kill_when` for a run blocked on a lock: its backend notices the kill only once `release`
/// has let go of the lock.
fn kill_releasing(
    db: &TestDb,
    mut run: Child,
    what: &str,
    reached: impl FnMut() -> bool,
    release: impl FnOnce(),
) {
    wait_until(what, WAIT, reached);
    run.kill().expect("kill");
    run.wait().expect("wait");
    release();
    wait_for_backends_gone(db);
}

fn wait_for_backends_gone(db: &TestDb) {
    let mut admin = common::shared().admin();
    wait_until("the killed run's sessions end", WAIT, || {
        jobdbctl_backends(&mut admin, db) == 0
    });
}

fn activity(admin: &mut postgres::Client, db: &TestDb, pattern: &str) -> bool {
    admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'jobdbctl'
                             AND state = 'active' AND query LIKE $2)",
            &[&db.name, &pattern],
        )
        .expect("pg_stat_activity")
        .get(0)
}

fn sha256_of(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).expect("read archive")).to_vec()
}

#[test]
fn round_trip_of_a_generated_job_database_is_identical() {
    let db = TestDb::with_migrations(3000);
    let mut client = db.client();
    release_locks(&mut client);
    let before = snapshot(&db, "jobdb");
    let last_before = scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq");
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "round.tar.gz");
    let run = db.run(&["backup", "--output", path_str(&archive), "--json"]);
    run.expect(0);
    let report = run.json();
    assert_eq!(report["last_used_job_id"], last_before);
    assert_eq!(report["archive"], path_str(&archive));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "archive must be private");
    assert!(!Path::new(&format!("{}.partial", archive.display())).exists());

    db.run(&["destroy", "--yes", "--force"]).expect(0);
    assert!(!schema_exists(&mut client, "jobdb"));
    let restore = db.run(&["restore", path_str(&archive)]);
    restore.expect(0);
    assert!(
        restore
            .stdout
            .contains(&format!("last used job ID {last_before}")),
        "{}",
        restore.stdout
    );
    assert_same(&before, &snapshot(&db, "jobdb"));
    assert!(common::leftover_schemas(&mut client).is_empty());
    let next: i64 = client
        .query_one(
            "INSERT INTO jobdb.jobs (task_identifier) VALUES ('after') RETURNING id",
            &[],
        )
        .expect("insert")
        .get(0);
    assert_eq!(next, last_before + 1);
}

const GRAPHILE_LIKE: &str = r#"
CREATE SCHEMA graphile_worker;
SET search_path TO graphile_worker;
CREATE TABLE migrations (id int PRIMARY KEY, ts timestamptz DEFAULT now() NOT NULL);
INSERT INTO migrations (id) SELECT generate_series(1, 18);
CREATE TYPE job_spec AS (identifier text, payload json, queue_name text, run_at timestamptz, flags text[]);
CREATE TYPE job_status AS ENUM ('waiting', 'running', 'done');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE _private_job_queues (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name text NOT NULL UNIQUE CHECK (length(queue_name) <= 128),
    locked_at timestamptz,
    locked_by text,
    is_available boolean GENERATED ALWAYS AS (locked_at IS NULL) STORED NOT NULL
);
CREATE TABLE _private_tasks (
    id int GENERATED BY DEFAULT AS IDENTITY (START WITH 10 INCREMENT BY 5) PRIMARY KEY,
    identifier text NOT NULL UNIQUE CHECK (length(identifier) <= 128)
);
CREATE TABLE _private_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_queue_id int REFERENCES _private_job_queues (id) ON DELETE SET NULL,
    task_id int NOT NULL REFERENCES _private_tasks (id),
    payload json DEFAULT '{}'::json NOT NULL,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamptz DEFAULT now() NOT NULL,
    attempts smallint DEFAULT 0 NOT NULL,
    max_attempts positive_int DEFAULT 25 NOT NULL,
    last_error text,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    key text UNIQUE,
    locked_at timestamptz,
    locked_by text,
    status job_status DEFAULT 'waiting' NOT NULL,
    name text COLLATE "C",
    is_available boolean GENERATED ALWAYS AS ((locked_at IS NULL) AND (attempts < max_attempts)) STORED NOT NULL,
    CONSTRAINT jobs_key_check CHECK (length(key) > 0 AND length(key) <= 512)
) WITH (fillfactor = 90);
CREATE INDEX jobs_main_index ON _private_jobs USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id) WHERE is_available = true;
CREATE INDEX jobs_key_lower ON _private_jobs (lower(key)) WHERE job_queue_id IS NULL;
COMMENT ON TABLE _private_jobs IS 'The jobs, one row each';
COMMENT ON COLUMN _private_jobs.payload IS 'What the task gets';
ALTER TABLE _private_jobs ALTER COLUMN payload SET STATISTICS 500;
CREATE FUNCTION tg__update_timestamp() RETURNS trigger LANGUAGE plpgsql AS $$
begin
  new.updated_at = greatest(now(), old.updated_at + interval '1 millisecond');
  return new;
end;
$$;
CREATE TRIGGER _100_timestamps BEFORE UPDATE ON _private_jobs FOR EACH ROW EXECUTE FUNCTION tg__update_timestamp();
CREATE FUNCTION add_job(identifier text, payload json DEFAULT NULL, queue_name text DEFAULT NULL)
RETURNS graphile_worker._private_jobs LANGUAGE plpgsql AS $$
#variable_conflict use_column
declare
  v_job graphile_worker._private_jobs;
  v_task int;
  v_queue int;
begin
  insert into graphile_worker._private_tasks as t (identifier) values (add_job.identifier)
    on conflict (identifier) do update set identifier = excluded.identifier returning t.id into v_task;
  if add_job.queue_name is not null then
    insert into graphile_worker._private_job_queues as q (queue_name) values (add_job.queue_name)
      on conflict (queue_name) do update set queue_name = excluded.queue_name returning q.id into v_queue;
  end if;
  insert into graphile_worker._private_jobs (job_queue_id, task_id, payload)
    values (v_queue, v_task, coalesce(add_job.payload, '{}'::json)) returning * into v_job;
  return v_job;
end;
$$;
CREATE FUNCTION jobs_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM graphile_worker._private_jobs $$;
COMMENT ON FUNCTION jobs_count() IS 'How many jobs';
CREATE VIEW jobs AS
  SELECT j.id, t.identifier AS task_identifier, q.queue_name, j.payload, j.priority, j.run_at, j.attempts,
         j.max_attempts, j.last_error, j.created_at, j.updated_at, j.key, j.locked_at, j.locked_by
    FROM _private_jobs j JOIN _private_tasks t ON t.id = j.task_id
    LEFT JOIN _private_job_queues q ON q.id = j.job_queue_id;
CREATE VIEW waiting_jobs AS SELECT id, task_identifier FROM jobs WHERE locked_at IS NULL;
CREATE SEQUENCE extra_seq START 100;
SELECT nextval('extra_seq');
SELECT graphile_worker.add_job('task_' || (g % 5), json_build_object('n', g, 'text', E'tab\there\nnewline \\ backslash'),
                               CASE WHEN g % 3 = 0 THEN 'q' || (g % 4) END)
  FROM generate_series(1, 300) g;
UPDATE _private_jobs SET key = 'key-' || id, name = 'n' || id WHERE id % 7 = 0;
"#;

#[test]
fn graphile_like_schema_round_trips_and_its_functions_work_after_the_swap() {
    let source = TestDb::empty();
    let mut src = source.client();
    src.exec(GRAPHILE_LIKE);
    let before = snapshot(&source, "graphile_worker");
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "gw.tar.gz");
    backup_graphile_to(&source, &archive);

    // Into an empty database: the staging schema becomes graphile_worker.
    let target = TestDb::empty();
    target.run(&["restore", path_str(&archive)]).expect(0);
    assert_same(&before, &snapshot(&target, "graphile_worker"));
    // Over an existing schema: the swap replaces it; bodies naming the schema still work.
    src.exec("SELECT graphile_worker.add_job('extra')");
    source
        .run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    assert_same(&before, &snapshot(&source, "graphile_worker"));
    assert!(common::leftover_schemas(&mut src).is_empty());
    for client in [&mut src, &mut target.client()] {
        let id: i64 = client
            .query_one("SELECT (graphile_worker.add_job('after_restore')).id", &[])
            .expect("add_job after restore")
            .get(0);
        assert_eq!(id, 301, "identity resumes after the backup's last id");
        assert_eq!(
            scalar_i64(client, "SELECT graphile_worker.jobs_count()"),
            301
        );
        assert_eq!(
            scalar_i64(
                client,
                "SELECT count(*) FROM graphile_worker.waiting_jobs WHERE task_identifier = 'after_restore'"
            ),
            1
        );
        // The trigger was recreated: updating bumps updated_at.
        client.exec(
            "UPDATE graphile_worker._private_jobs SET updated_at = '2000-01-01' WHERE id = 301",
        );
        assert_eq!(
            scalar_i64(
                client,
                "SELECT count(*) FROM graphile_worker._private_jobs WHERE id = 301 AND updated_at > '2001-01-01'"
            ),
            1
        );
    }

    // Jobs and queues locked by workers at backup time come back unlocked.
    src.exec("UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'w1' WHERE id % 10 = 0;
         UPDATE graphile_worker._private_job_queues SET locked_at = now(), locked_by = 'w1';");
    let locked = archive_in(&dir, "gw-locked.tar.gz");
    backup_graphile_to(&source, &locked);
    let third = TestDb::empty();
    third.run(&["restore", path_str(&locked)]).expect(0);
    let mut c = third.client();
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL OR locked_at IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM graphile_worker._private_jobs WHERE is_available"
        ),
        scalar_i64(&mut c, "SELECT count(*) FROM graphile_worker._private_jobs"),
        "generated column recomputed"
    );
}

#[test]
fn backup_taken_while_writers_run_is_consistent() {
    // Big enough that the jobs table is split across COPY streams (page ranges), so the
    // test also checks that the streams share one snapshot.
    let db = TestDb::with_migrations(100_000);
    let mut client = db.client();
    client
        .exec("CREATE TABLE jobdb.ledger (id int PRIMARY KEY, inserted bigint NOT NULL, bumps bigint NOT NULL, base bigint NOT NULL);
             INSERT INTO jobdb.ledger SELECT 1, 0, 0, sum(attempts) FROM jobdb.jobs;
             ANALYZE jobdb.jobs;");
    assert!(
        scalar_i64(
            &mut client,
            "SELECT relpages::int8 FROM pg_class WHERE oid = 'jobdb.jobs'::regclass"
        ) >= 2048,
        "jobs must be large enough to be split"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let stop = Arc::clone(&stop);
            let mut c = db.client();
            std::thread::spawn(move || {
                let mut done = 0u64;
                // Each transaction inserts a job, bumps another one's attempts, and records
                // both in the ledger: the invariant a consistent snapshot must show.
                while !stop.load(Ordering::Relaxed) && done < 200_000 {
                    let mut tx = c.transaction().expect("begin");
                    tx.batch_execute(&format!(
                        "INSERT INTO jobdb.jobs (task_identifier, attempts) VALUES ('writer-{w}', 0);
                         UPDATE jobdb.jobs SET attempts = attempts + 1 WHERE id = (SELECT 1 + (random() * 99999)::int8);
                         UPDATE jobdb.ledger SET inserted = inserted + 1, bumps = bumps + 1 WHERE id = 1;"
                    ))
                    .expect("writer transaction");
                    tx.commit().expect("commit");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let dir = common::temp_dir("bk");
    let mut archives = Vec::new();
    for i in 0..2 {
        // Let the writers get going before each backup.
        let seen = scalar_i64(&mut client, "SELECT inserted FROM jobdb.ledger");
        wait_until("writers commit", WAIT, || {
            scalar_i64(&mut client, "SELECT inserted FROM jobdb.ledger") > seen + 50
        });
        let path = archive_in(&dir, &format!("c{i}.tar.gz"));
        backup_to(&db, &path);
        archives.push(path);
    }
    stop.store(true, Ordering::Relaxed);
    let written: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(written > 0);
    for path in archives {
        let copy = TestDb::empty();
        copy.run(&["restore", path_str(&path)]).expect(0);
        let mut c = copy.client();
        let row = c
            .query_one(
                "SELECT (SELECT count(*) FROM jobdb.jobs WHERE task_identifier LIKE 'writer-%'),
                        (SELECT sum(attempts)::int8 FROM jobdb.jobs) - l.base, l.inserted, l.bumps
                   FROM jobdb.ledger l",
                &[],
            )
            .expect("invariant");
        let (inserted, bumps, ledger_inserted, ledger_bumps): (i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert!(ledger_inserted > 0, "backup taken while writers ran");
        assert_eq!(inserted, ledger_inserted, "jobs inserted vs ledger");
        assert_eq!(bumps, ledger_bumps, "attempt bumps vs ledger");
    }
}

/// A job row as the requeue sees it: id, state, lock released, run_at and updated_at (µs),
/// and everything else.
type JobRow = (i64, String, bool, i64, i64, String);

fn job_rows(client: &mut postgres::Client) -> Vec<JobRow> {
    client
        .query(
            "SELECT id, state, locked_by IS NULL AND locked_at IS NULL,
                    (extract(epoch FROM run_at) * 1000000)::int8,
                    (extract(epoch FROM updated_at) * 1000000)::int8,
                    (to_jsonb(j) - 'state' - 'locked_by' - 'locked_at' - 'run_at' - 'updated_at')::text
               FROM jobdb.jobs j ORDER BY id",
            &[],
        )
        .expect("jobs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

fn server_now(client: &mut postgres::Client) -> i64 {
    scalar_i64(
        client,
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
    )
}

/// Restore requeues running jobs as their rows load when the jobs table travels column-major
/// (no UPDATE, so no row is updated), and with an UPDATE after the load where it cannot (a
/// column of an enum type makes the table travel as text; an entry too big to regroup loads
/// row-major). All give the rows the values of the UPDATE: queued, unlocked,
/// run_at = greatest(run_at, now), updated_at = now.
#[test]
fn requeue_as_rows_load_and_requeue_by_update_give_the_same_rows() {
    let dir = common::temp_dir("rq");
    for (path, setup, updated) in [
        ("column-major", "", false),
        (
            "text",
            "CREATE TYPE jobdb.tint AS ENUM ('red');
             ALTER TABLE jobdb.jobs ADD COLUMN tint jobdb.tint DEFAULT 'red';",
            true,
        ),
        // A row of 17 MB makes its entry too big to regroup: that entry loads row-major,
        // without the edit, so the UPDATE runs after the load.
        (
            "row-major",
            "UPDATE jobdb.jobs SET last_error = repeat('x', 17000000)
              WHERE id = (SELECT max(id) FROM jobdb.jobs WHERE state = 'running');",
            true,
        ),
    ] {
        let db = TestDb::with_migrations(600);
        let mut client = db.client();
        client
            .batch_execute(&format!(
                "UPDATE jobdb.jobs SET run_at = now() + interval '1 day'
                  WHERE id IN (SELECT id FROM jobdb.jobs WHERE state = 'running' ORDER BY id LIMIT 2);
                 {setup}"
            ))
            .expect("setup");
        stop_workers(&mut client);
        let before = job_rows(&mut client);
        let running: Vec<i64> = before
            .iter()
            .filter(|r| r.1 == "running")
            .map(|r| r.0)
            .collect();
        assert!(running.len() >= 3, "{path}: running jobs to requeue");
        let archive = archive_in(&dir, &format!("{path}.tar.gz"));
        backup_to(&db, &archive);

        let start = server_now(&mut client);
        let restore = db.run(&["restore", path_str(&archive), "--yes", "--force", "--json"]);
        restore.expect(0);
        let end = server_now(&mut client);
        assert_eq!(restore.json()["rescheduled_jobs"], running.len(), "{path}");

        let after = job_rows(&mut client);
        assert_eq!(after.len(), before.len(), "{path}");
        for (b, a) in before.iter().zip(&after) {
            assert_eq!((a.0, &a.5), (b.0, &b.5), "{path}: the rest of the row");
            if running.contains(&b.0) {
                assert_eq!((a.1.as_str(), a.2), ("queued", true), "{path}: job {}", b.0);
                assert!(
                    a.3 >= b.3.max(start) && a.3 <= b.3.max(end),
                    "{path}: job {} run_at {} for {} in [{start}, {end}]",
                    b.0,
                    a.3,
                    b.3
                );
                assert!(a.4 >= start && a.4 <= end, "{path}: job {} updated_at", b.0);
            } else {
                assert_eq!(a, b, "{path}: job {} is not requeued", b.0);
            }
        }
        // The restore's sessions have ended, so their counts reach the statistics.
        let stat = |client: &mut postgres::Client, what: &str| {
            scalar_i64(
                client,
                &format!("SELECT {what} FROM pg_stat_user_tables WHERE schemaname = 'jobdb' AND relname = 'jobs'"),
            )
        };
        wait_until("the restore's row counts", Duration::from_secs(30), || {
            stat(&mut client, "n_tup_ins") == 600
        });
        let updated_rows = stat(&mut client, "n_tup_upd");
        if updated {
            assert!(updated_rows > 0, "{path}: the UPDATE ran");
        } else {
            assert_eq!(updated_rows, 0, "{path}: no row updated");
        }
    }
}

#[test]
fn downgrade_runbook_restores_old_jobs_counter_and_requeues_running_ones() {
    let db = TestDb::with_migrations(1000);
    let mut client = db.client();
    let running: Vec<i64> = common::column(
        &mut client,
        "SELECT id FROM jobdb.jobs WHERE state = 'running' ORDER BY id",
    );
    assert!(!running.is_empty());
    // Restore requeues by two block ranges at once; running jobs lie in both halves (the
    // archive keeps the rows' order, and one entry loads them in it).
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(DISTINCT (ctid::text::point)[0] * 2 >= pg_relation_size('jobdb.jobs') / 8192)
               FROM jobdb.jobs WHERE state = 'running'"
        ),
        2,
        "running jobs in both halves of the table"
    );
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "before-upgrade.tar.gz");
    backup_to(&db, &archive);

    // The upgrade runs for a while: more jobs arrive, then it is rolled back.
    client
        .exec("INSERT INTO jobdb.jobs (task_identifier) SELECT 'late' FROM generate_series(1, 50)");
    stop_workers(&mut client);
    let restore = db.run(&["restore", path_str(&archive), "--yes", "--force", "--json"]);
    restore.expect(0);
    let report = restore.json();
    assert_eq!(report["last_used_job_id"], 1000);
    assert_eq!(report["rescheduled_jobs"], running.len());

    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        1000
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE task_identifier = 'late'"
        ),
        0,
        "jobs created after the backup are gone"
    );
    let requeued: Vec<i64> = client
        .query(
            "SELECT id FROM jobdb.jobs WHERE id = ANY($1) AND state = 'queued' AND locked_by IS NULL AND locked_at IS NULL ORDER BY id",
            &[&running],
        )
        .expect("requeued")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(requeued, running, "formerly running jobs are queued again");
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.job_queues WHERE locked_by IS NOT NULL"
        ),
        0
    );
    let next: i64 = client
        .query_one(
            "INSERT INTO jobdb.jobs (task_identifier) VALUES ('n') RETURNING id",
            &[],
        )
        .expect("insert")
        .get(0);
    assert_eq!(
        next, 1001,
        "the next job gets the backup's last used ID + 1"
    );

    // --avoid-id-reuse keeps a higher current counter.
    client.exec("SELECT setval('jobdb.jobs_id_seq', 5000)");
    // The restored registry has the workers as they were at backup time: live again.
    stop_workers(&mut client);
    db.run(&[
        "restore",
        path_str(&archive),
        "--yes",
        "--force",
        "--avoid-id-reuse",
    ])
    .expect(0);
    let next: i64 = client
        .query_one(
            "INSERT INTO jobdb.jobs (task_identifier) VALUES ('n') RETURNING id",
            &[],
        )
        .expect("insert")
        .get(0);
    assert_eq!(next, 5001);
}

#[test]
fn killing_the_backup_at_any_point_leaves_no_archive_under_the_final_name() {
    let db = TestDb::with_migrations(100_000);
    let dir = common::temp_dir("bk");
    let earlier = archive_in(&dir, "earlier.tar.gz");
    backup_to(&db, &earlier);
    let earlier_sum = sha256_of(&earlier);
    let target = archive_in(&dir, "killed.tar.gz");
    let partial = PathBuf::from(format!("{}.partial", target.display()));
    let mut admin = common::shared().admin();
    let spawn = || {
        let mut cmd = db.cmd();
        cmd.args(["backup", "--output", path_str(&target)])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().expect("spawn backup")
    };

    // 1. Blocked on its table locks (a migration holds one).
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.workers IN ACCESS EXCLUSIVE MODE");
    kill_releasing(
        &db,
        spawn(),
        "the backup waits for its table locks",
        || activity(&mut admin, &db, "LOCK TABLE%"),
        || tx.rollback().expect("rollback"),
    );
    assert!(!target.exists());

    // 2. In the middle of COPY.
    kill_when(&db, spawn(), "COPY runs", || {
        activity(&mut admin, &db, "COPY%")
    });
    assert!(!target.exists());

    // 3. While the archive is being written.
    kill_when(&db, spawn(), "the partial archive grows", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    assert!(!target.exists(), "no archive under the final name");

    assert_eq!(
        sha256_of(&earlier),
        earlier_sum,
        "earlier archive untouched"
    );
    db.run(&["verify", path_str(&earlier)]).expect(0);
    // A killed run's leftovers do not get in the way of the next one.
    backup_to(&db, &target);
    db.run(&["verify", path_str(&target)]).expect(0);
    assert!(!partial.exists());
}

#[test]
fn killing_the_restore_at_any_point_leaves_the_database_as_it_was() {
    let db = TestDb::with_migrations(100_000);
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "r.tar.gz");
    backup_to(&db, &archive);
    let mut client = db.client();
    // The live database differs from the archive, so a partial restore would show.
    client
        .exec("INSERT INTO jobdb.jobs (task_identifier) SELECT 'since-backup' FROM generate_series(1, 100);
             DELETE FROM jobdb.jobs WHERE id % 1000 = 0;");
    stop_workers(&mut client);
    let before = snapshot(&db, "jobdb");
    let mut admin = common::shared().admin();
    let spawn = || {
        let mut cmd = db.cmd();
        cmd.args(["restore", path_str(&archive), "--yes", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().expect("spawn restore")
    };
    let staging_exists = |c: &mut postgres::Client| !common::leftover_schemas(c).is_empty();

    // 1. As soon as the staging schema exists.
    kill_when(&db, spawn(), "the staging schema appears", || {
        staging_exists(&mut admin_db(&db))
    });
    assert_same(&before, &snapshot(&db, "jobdb"));

    // 2. While COPY loads the staging tables (the leftover staging schema is dropped first).
    kill_when(&db, spawn(), "COPY loads", || {
        activity(&mut admin, &db, "COPY%FROM STDIN%")
    });
    assert_same(&before, &snapshot(&db, "jobdb"));

    // 3. While building indexes: a session holding the staging jobs table (compatible with
    // COPY, not with CREATE INDEX) keeps the restore there until it is killed.
    // (Waiting for COPY, not for the schema: the schema left by the kill above is still
    // there until the new run drops it.)
    let child = spawn();
    wait_until("COPY loads", WAIT, || {
        activity(&mut admin, &db, "COPY%FROM STDIN%")
    });
    let mut holder = db.client();
    let mut hold = holder.transaction().expect("begin");
    hold.exec("LOCK TABLE jobdbctl_restore_jobdb.jobs IN ROW EXCLUSIVE MODE");
    kill_releasing(
        &db,
        child,
        "an index build waits",
        || activity(&mut admin, &db, "CREATE%INDEX%"),
        || hold.rollback().expect("rollback"),
    );
    assert_same(&before, &snapshot(&db, "jobdb"));

    // 4. At the swap, everything loaded and indexed (a worker's open transaction holds it up).
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.jobs IN ROW EXCLUSIVE MODE");
    kill_releasing(
        &db,
        spawn(),
        "the swap waits for the jobs table",
        || activity(&mut admin, &db, "LOCK TABLE%"),
        || tx.rollback().expect("rollback"),
    );
    assert_same(&before, &snapshot(&db, "jobdb"));

    // A rerun cleans up after the killed ones and completes.
    db.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    assert!(common::leftover_schemas(&mut client).is_empty());
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE task_identifier = 'since-backup'"
        ),
        0
    );
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        100_000
    );
}

fn admin_db(db: &TestDb) -> postgres::Client {
    db.client()
}

// ---- hand-made archives -------------------------------------------------------------

struct RawEntry {
    name: String,
    kind: u8,
    data: Vec<u8>,
    /// Size written in the header when it should differ from the data's.
    declared: Option<u64>,
    link: String,
}

impl RawEntry {
    fn file(name: &str, data: Vec<u8>) -> RawEntry {
        RawEntry {
            name: name.to_string(),
            kind: b'0',
            data,
            declared: None,
            link: String::new(),
        }
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn octal(field: &[u8]) -> u64 {
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(text.trim(), 8).unwrap_or(0)
}

fn untar(raw: &[u8]) -> Vec<RawEntry> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 512 <= raw.len() && raw[pos..pos + 512].iter().any(|b| *b != 0) {
        let h = &raw[pos..pos + 512];
        let name: String = h[..100]
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as char)
            .collect();
        let size = octal(&h[124..136]) as usize;
        let data = raw[pos + 512..pos + 512 + size].to_vec();
        out.push(RawEntry {
            name,
            kind: h[156],
            data,
            declared: None,
            link: String::new(),
        });
        pos += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h[100..108].copy_from_slice(b"0000600\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        let size = e.declared.unwrap_or(e.data.len() as u64);
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn with_json(entry: &mut RawEntry, edit: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&entry.data).expect("json");
    edit(&mut v);
    entry.data = serde_json::to_vec(&v).expect("json");
}

/// Every kind of bad archive the issue names, built from a good one.
fn hostile_variants(good: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let entries = || untar(&gunzip(good));
    let first_data = |es: &[RawEntry]| {
        es.iter()
            .position(|e| e.name.starts_with("data/"))
            .expect("a data entry")
    };
    let rebuilt = |edit: &dyn Fn(&mut Vec<RawEntry>)| {
        let mut es = entries();
        edit(&mut es);
        gzip(&tar(&es))
    };
    let mut out = Vec::new();
    out.push(("truncated", good[..good.len() / 2].to_vec()));
    let mut flipped = good.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    out.push(("one flipped byte", flipped));
    out.push((
        "wrong checksum",
        rebuilt(&|es| {
            let last = es.len() - 1;
            with_json(&mut es[last], |m| {
                let entries = m["entries"].as_array_mut().expect("entries");
                let e = entries
                    .iter_mut()
                    .find(|e| e["name"].as_str().is_some_and(|n| n.starts_with("data/")))
                    .expect("data entry");
                e["sha256"] = serde_json::json!("0".repeat(64));
            })
        }),
    ));
    for (what, name) in [
        ("../ path", "../evil.txt"),
        ("absolute path", "/tmp/jobdbctl-evil.txt"),
    ] {
        out.push((
            what,
            rebuilt(&|es| es.insert(1, RawEntry::file(name, b"pwned\n".to_vec()))),
        ));
    }
    for (what, kind, link) in [
        ("symlink", b'2', "/etc/passwd"),
        ("hardlink", b'1', "schema.json"),
        ("device entry", b'3', ""),
    ] {
        out.push((
            what,
            rebuilt(&|es| {
                let i = first_data(es);
                es[i].kind = kind;
                es[i].link = link.to_string();
                es[i].data.clear();
            }),
        ));
    }
    out.push((
        "entry far larger than allowed",
        rebuilt(&|es| {
            let i = first_data(es);
            es[i].declared = Some(1 << 32);
            es.truncate(i + 1);
        }),
    ));
    out.push((
        "entry larger than the manifest says",
        rebuilt(&|es| {
            let i = first_data(es);
            let row = es[i]
                .data
                .split(|b| *b == b'\n')
                .next()
                .expect("row")
                .to_vec();
            es[i].data.extend_from_slice(&row);
            es[i].data.push(b'\n');
        }),
    ));
    out.push((
        "missing manifest",
        rebuilt(&|es| {
            es.pop();
        }),
    ));
    out.push((
        "manifest from a newer format",
        rebuilt(&|es| {
            let last = es.len() - 1;
            for i in [0, last] {
                with_json(&mut es[i], |m| m["format_version"] = serde_json::json!(99));
            }
        }),
    ));
    out
}

#[test]
fn hostile_archives_are_rejected_with_exit_5_and_change_nothing() {
    let db = TestDb::with_migrations(2000);
    let mut client = db.client();
    stop_workers(&mut client);
    let dir = common::temp_dir("bk");
    let good_path = archive_in(&dir, "good.tar.gz");
    backup_to(&db, &good_path);
    client.exec("INSERT INTO jobdb.jobs (task_identifier) VALUES ('since-backup')");
    let before = snapshot(&db, "jobdb");
    let good = std::fs::read(&good_path).expect("read");
    for (what, bytes) in hostile_variants(&good) {
        let path = archive_in(&dir, "bad.tar.gz");
        std::fs::write(&path, &bytes).expect("write");
        let verify = db.run(&["verify", path_str(&path)]);
        verify.expect(5);
        let line = verify.one_line_error().to_string();
        assert!(line.contains("invalid"), "{what}: {line}");
        let restore = db.run(&["restore", path_str(&path), "--yes", "--force"]);
        assert_eq!(
            restore.code, 5,
            "{what}: restore must refuse: {}",
            restore.stderr
        );
        restore.one_line_error();
        // From standard input the archive is checked while it loads into staging.
        let streamed = common::run({
            let mut cmd = db.cmd();
            cmd.args(["restore", "-", "--yes", "--force"])
                .stdin(std::fs::File::open(&path).expect("open"));
            cmd
        });
        assert_eq!(
            streamed.code, 5,
            "{what}: restore from stdin must refuse: {}",
            streamed.stderr
        );
        streamed.one_line_error();
        assert!(
            common::leftover_schemas(&mut client).is_empty(),
            "{what}: staging left behind"
        );
        assert!(!Path::new("/tmp/jobdbctl-evil.txt").exists(), "{what}");
        assert!(!dir.path().join("evil.txt").exists(), "{what}");
    }
    assert_same(&before, &snapshot(&db, "jobdb"));
    // The good archive still restores.
    db.run(&["verify", path_str(&good_path)]).expect(0);
}

/// The second read of a restore skips the entries' checksums: the file's bytes must hash as
/// they did in the check. A byte changed in place between the two reads, inside a value where
/// nothing but a checksum can see it, is refused at the end (exit 5), and nothing changes.
#[test]
fn an_archive_changed_between_the_check_and_the_load_is_refused() {
    let db = TestDb::with_migrations(200);
    let mut client = db.client();
    stop_workers(&mut client);
    // 12 MB, more than the restore reads ahead while it waits (below), the last row marked.
    client.exec(
        "CREATE TABLE jobdb.bulk (id int PRIMARY KEY, body text);
             INSERT INTO jobdb.bulk SELECT i, repeat('x', 1200) FROM generate_series(1, 10000) i;
             UPDATE jobdb.bulk SET body = 'MARKER' || body WHERE id = 10000;",
    );
    let dir = common::temp_dir("bk");
    let path = archive_in(&dir, "plain.tar");
    db.run(&[
        "backup",
        "--compression",
        "none",
        "--output",
        path_str(&path),
    ])
    .expect(0);
    let before = snapshot(&db, "jobdb");

    // A leftover staging schema whose table this session holds: the restore's second read
    // waits to drop it, after the check and after it opened the file.
    let staging = "jobdbctl_restore_jobdb";
    let mut holder = db.client();
    holder
        .batch_execute(&format!(
            "CREATE SCHEMA {staging}; CREATE TABLE {staging}.t ()"
        ))
        .expect("leftover");
    let mut tx = holder.transaction().expect("begin");
    tx.batch_execute(&format!("LOCK TABLE {staging}.t IN ACCESS EXCLUSIVE MODE"))
        .expect("lock");
    let child = db.spawn(&["restore", path_str(&path), "--yes", "--force"]);
    wait_until(
        "the restore waits on the leftover",
        Duration::from_secs(60),
        || {
            scalar_i64(
            &mut client,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DROP SCHEMA%'",
        ) == 1
        },
    );
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes
        .windows(6)
        .rposition(|w| w == b"MARKER")
        .expect("marker")
        + 6;
    assert!(
        at > 10_000_000,
        "the changed byte lies past what is read ahead"
    );
    bytes[at] = b'y';
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open in place");
        f.write_all(&bytes).expect("write in place");
    }
    tx.rollback().expect("release");
    let restore = common::finish(child);
    restore.expect(5);
    let line = restore.one_line_error();
    assert_has(line, "changed after it was checked");
    assert!(
        common::leftover_schemas(&mut client).is_empty(),
        "staging left behind"
    );
    assert_same(&before, &snapshot(&db, "jobdb"));
}

#[test]
fn hostile_cold_archive_changes_nothing_in_the_data_dir() {
    let c = TestCluster::started();
    c.run(&["stop"]).expect(0);
    let header = serde_json::json!({
        "format_version": 1, "jobdbctl_version": "0", "mode": "cold",
        "created_at": "2026-01-01T00:00:00Z", "server_version": "15", "server": "x",
        "database": "jobdb", "profile": null, "schema": null, "schema_version": null,
        "last_used_job_id": null, "max_entry_bytes": 100, "total_file_bytes": 100,
    });
    let dir = common::temp_dir("bk");
    for (what, entry) in [
        (
            "../ path",
            RawEntry::file("psql/../../evil.txt", b"x".to_vec()),
        ),
        (
            "outside psql/",
            RawEntry::file("other/evil.txt", b"x".to_vec()),
        ),
        (
            "symlink",
            RawEntry {
                name: "psql/pg_wal".into(),
                kind: b'2',
                data: Vec::new(),
                declared: None,
                link: "/etc".into(),
            },
        ),
    ] {
        let bytes = gzip(&tar(&[
            RawEntry::file("header.json", serde_json::to_vec(&header).expect("json")),
            RawEntry {
                name: "psql".into(),
                kind: b'5',
                data: Vec::new(),
                declared: None,
                link: String::new(),
            },
            entry,
        ]));
        let path = archive_in(&dir, "cold-bad.tar.gz");
        std::fs::write(&path, bytes).expect("write");
        let run = c.run(&["restore", path_str(&path), "--yes", "--force"]);
        assert_eq!(run.code, 5, "{what}: {}", run.stderr);
        run.one_line_error();
        assert!(!c.dir.path().join("evil.txt").exists(), "{what}");
        assert!(!c.data_dir().join("psql.restoring").exists(), "{what}");
        assert!(
            c.pgdata().join("PG_VERSION").is_file(),
            "{what}: cluster untouched"
        );
    }
    c.run(&["start"]).expect(0);
}

#[test]
fn restore_refuses_jobs_live_workers_missing_yes_and_a_held_lock() {
    let db = TestDb::with_migrations(500);
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "a.tar.gz");
    backup_to(&db, &archive);
    let mut client = db.client();
    client.exec("INSERT INTO jobdb.jobs (task_identifier) VALUES ('since-backup')");
    let before = snapshot(&db, "jobdb");

    // Live workers: refused even with --force.
    let live = db.run(&["restore", path_str(&archive), "--yes", "--force"]);
    live.expect(3).error_has("live worker");
    assert_same(&before, &snapshot(&db, "jobdb"));
    stop_workers(&mut client);
    let before = snapshot(&db, "jobdb");
    let jobs = db.run(&["restore", path_str(&archive), "--yes"]);
    jobs.expect(3);
    assert!(jobs.one_line_error().contains("--force"), "{}", jobs.stderr);
    let no_tty = db.run(&["restore", path_str(&archive), "--force"]);
    no_tty.expect(3).error_has("--yes");
    assert_same(&before, &snapshot(&db, "jobdb"));

    // A view elsewhere over the job tables would vanish with the old schema.
    client.exec("CREATE VIEW public.job_ids AS SELECT id FROM jobdb.jobs");
    let outside = db.run(&["restore", path_str(&archive), "--yes", "--force"]);
    outside.expect(3).error_has("view job_ids");
    client.exec("DROP VIEW public.job_ids");

    // Another backup or restore holds the lock.
    let mut holder = db.client();
    holder.exec("SELECT pg_advisory_lock(hashtextextended('jobdbctl:backup', 0))");
    let second = db.run(&[
        "backup",
        "--output",
        path_str(&archive_in(&dir, "b.tar.gz")),
    ]);
    second.expect(7).error_has("another jobdbctl");
    assert!(!archive_in(&dir, "b.tar.gz").exists());
    db.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(7);
    assert_same(&before, &snapshot(&db, "jobdb"));
    drop(holder);

    let junk = archive_in(&dir, "junk.tar.gz");
    std::fs::write(&junk, b"not an archive at all").expect("write");
    db.run(&["verify", path_str(&junk)]).expect(5);
    db.run(&["verify", path_str(&archive_in(&dir, "missing.tar.gz"))])
        .expect(1);
}

#[test]
fn archive_streams_through_stdout_and_stdin_quietly() {
    let db = TestDb::with_migrations(800);
    let mut client = db.client();
    release_locks(&mut client);
    let before = snapshot(&db, "jobdb");
    let out = db
        .cmd()
        .args(["-q", "backup", "--output", "-"])
        .output()
        .expect("backup");
    common::assert_success(&out, "backup --output -");
    assert!(
        out.stderr.is_empty(),
        "--quiet prints nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = common::temp_dir("bk");
    let path = archive_in(&dir, "stream.tar.gz");
    std::fs::write(&path, &out.stdout).expect("write");
    let verify = common::run({
        let mut cmd = db.cmd();
        cmd.args(["verify", "-", "--json"])
            .stdin(std::fs::File::open(&path).expect("open"));
        cmd
    });
    verify.expect(0);
    assert_eq!(verify.json()["tables"][1]["rows"], 800);

    let copy = TestDb::empty();
    let restore = common::run({
        let mut cmd = copy.cmd();
        cmd.args(["-q", "restore", "-"])
            .stdin(std::fs::File::open(&path).expect("open"));
        cmd
    });
    restore.expect(0);
    assert!(
        restore.stdout.is_empty() && restore.stderr.is_empty(),
        "{restore:?}"
    );
    assert_same(&before, &snapshot(&copy, "jobdb"));
}

#[test]
fn keep_prunes_only_older_complete_archives_of_the_same_database() {
    let db = TestDb::with_migrations(100);
    let other = TestDb::with_migrations(50);
    let dir = common::temp_dir("bk");
    let dest = path_str(dir.path());
    other.run(&["backup", "--output", dest]).expect(0);
    std::fs::write(dir.path().join("leftover.tar.gz.partial"), b"partial").expect("write");
    let mut ours = Vec::new();
    for _ in 0..3 {
        let run = db.run(&["backup", "--output", dest, "--keep", "2", "--json"]);
        run.expect(0);
        ours.push(PathBuf::from(run.json()["archive"].as_str().expect("path")));
    }
    assert!(!ours[0].exists(), "oldest pruned");
    assert!(ours[1].exists() && ours[2].exists(), "newest two kept");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "other database's archive and the partial stay: {names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with(&other.name)));
}

#[test]
fn destroy_backup_first_writes_a_restorable_archive() {
    let db = TestDb::with_migrations(300);
    let mut client = db.client();
    release_locks(&mut client);
    let before = snapshot(&db, "jobdb");
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "pre-destroy.tar.gz");
    db.run(&[
        "destroy",
        "--yes",
        "--force",
        "--backup-first",
        path_str(&archive),
    ])
    .expect(0);
    assert!(!schema_exists(&mut client, "jobdb"));
    db.run(&["verify", path_str(&archive)]).expect(0);
    db.run(&["restore", path_str(&archive)]).expect(0);
    assert_same(&before, &snapshot(&db, "jobdb"));
}

#[test]
fn disk_full_is_a_clean_error_with_no_partial_file() {
    if !common::is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    struct Mount(PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let db = TestDb::with_migrations(20_000);
    let dir = common::temp_dir("full");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128k", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount");
    assert!(ok.success(), "mount tmpfs");
    let _mount = Mount(mnt.clone());
    let target = mnt.join("x.tar.gz");

    let refused = db.run(&["backup", "--output", path_str(&target)]);
    refused.expect(3);
    let line = refused.one_line_error();
    assert!(
        line.contains("free") && line.contains("needs about"),
        "{line}"
    );

    let full = db.run(&["backup", "--output", path_str(&target), "--no-space-check"]);
    full.expect(1);
    let line = full.one_line_error();
    assert_has(line, "No space left");
    let left: Vec<_> = std::fs::read_dir(&mnt).expect("list").collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

#[test]
fn cold_backup_and_restore_round_trip_on_the_embedded_cluster() {
    let c = TestCluster::started();
    let mut client = c.client();
    generate::populate(&mut client, "jobdb", &Spec::jobs(500));
    stop_workers(&mut client);
    drop(client);
    let dir = common::temp_dir("bk");
    let archive = archive_in(&dir, "cold.tar.gz");
    c.run(&["backup", "--mode", "cold", "--output", path_str(&archive)])
        .expect(0);
    c.run(&["status"]).expect(0);
    c.run(&["verify", path_str(&archive)]).expect(0);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut client = c.client();
    client
        .exec("INSERT INTO jobdb.jobs (task_identifier) SELECT 'late' FROM generate_series(1, 10)");
    drop(client);
    let refused = c.run(&["restore", path_str(&archive), "--yes"]);
    refused.expect(3);
    c.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    c.run(&["status"]).expect(0);
    let mut client = c.client();
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        500
    );
    assert!(!c.data_dir().join("psql.restoring").exists());
    if common::is_root() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(c.pgdata().join("PG_VERSION"))
            .expect("stat")
            .uid();
        assert_ne!(owner, 0, "restored files belong to the server user");
    }
    drop(client);

    // A stopped server stays stopped.
    c.run(&["stop"]).expect(0);
    let again = archive_in(&dir, "cold2.tar.gz");
    c.run(&["backup", "--mode", "cold", "--output", path_str(&again)])
        .expect(0);
    c.run(&["status"]).expect(6);
    c.run(&["start"]).expect(0);
}
