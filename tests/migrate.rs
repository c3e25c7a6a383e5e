//! `migrate`: live schema upgrades that wait for old workers and refuse to skip unfinished
//! background migrations (README "migrate"), against real servers.

mod common;
use common::Exec;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::generate::{self, Spec};
use common::{scalar_i64, TestDb};
use postgres::fallible_iterator::FallibleIterator;

fn version(client: &mut postgres::Client) -> i32 {
    client
        .query_one("SELECT max(version) FROM jobdb.schema_migrations", &[])
        .expect("version")
        .get(0)
}

/// A database created at `version` with generated jobs (written as that version's workers
/// would write them).
fn database_at(version: i32, jobs: i64) -> TestDb {
    let db = TestDb::empty();
    db.run(&["init", "--schema-version", &version.to_string()])
        .expect(0);
    let mut client = db.client();
    generate::populate(
        &mut client,
        "jobdb",
        &Spec {
            jobs,
            live_workers: 0,
            dead_workers: 1,
            migrations: false,
        },
    );
    // The dead worker's locks would (rightly) block migrate; these tests are about other gates.
    client
        .exec("UPDATE jobdb.jobs SET state = 'queued', locked_by = NULL, locked_at = NULL WHERE locked_by IS NOT NULL;
             UPDATE jobdb.job_queues SET locked_by = NULL, locked_at = NULL;
             DELETE FROM jobdb.workers;");
    db
}

/// A worker of an old version heartbeating every 100 ms until stopped; on stop it leaves
/// the registry, as a worker does when it exits.
struct OldWorker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OldWorker {
    fn start(db: &TestDb, id: &str, schema_version: i32) -> OldWorker {
        let mut client = db.client();
        client
            .execute(
                "INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version)
                 VALUES ($1, 'old-host', 4242, '1.0.0', $2)",
                &[&id, &schema_version],
            )
            .expect("register worker");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let id = id.to_string();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                client
                    .execute(
                        "UPDATE jobdb.workers SET last_heartbeat_at = now() WHERE worker_id = $1",
                        &[&id],
                    )
                    .expect("heartbeat");
                std::thread::sleep(Duration::from_millis(100));
            }
            client
                .execute("DELETE FROM jobdb.workers WHERE worker_id = $1", &[&id])
                .expect("deregister");
        });
        OldWorker {
            stop,
            thread: Some(thread),
        }
    }

    fn exit(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("worker thread");
        }
    }
}

impl Drop for OldWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The finalize command migrate printed, split into arguments (it single-quotes JSON).
fn printed_finalize_command(stderr: &str) -> Vec<String> {
    let start = stderr.find("`jobdbctl ").expect("a command in backticks") + 1;
    let rest = &stderr[start..];
    let command = &rest[..rest.find('`').expect("closing backtick")];
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    args.push(current);
    assert_eq!(args[0], "jobdbctl");
    args.remove(0);
    args
}

#[test]
fn upgrade_waits_for_old_workers_and_refuses_unfinished_backfills() {
    let db = database_at(1, 3000);
    let mut client = db.client();
    let v1_worker = OldWorker::start(&db, "v1-worker", 1);

    // Version 2 is not breaking: it applies at once while the v1 worker runs.
    db.run(&["migrate", "--to", "2"]).expect(0);
    assert_eq!(version(&mut client), 2);

    // Version 3 needs the backfill that version 2 queued.
    let refused = db.run(&["migrate"]);
    refused.expect(3).error_has("finalize-migration");
    assert_eq!(version(&mut client), 2);
    let finalize = printed_finalize_command(&refused.stderr);
    let args: Vec<&str> = finalize.iter().map(String::as_str).collect();
    db.run(&args).expect(0);

    // Now it waits for the v1 worker: it notifies, the worker exits, migrate proceeds.
    let mut listener = db.client();
    listener.exec("LISTEN jobdb_migrate");
    let mut migrate = db.cmd();
    let child = migrate
        .args(["migrate", "--max-wait", "5m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn migrate");
    let note = listener
        .notifications()
        .timeout_iter(Duration::from_secs(120))
        .next()
        .expect("notification stream")
        .expect("a jobdb_migrate notification within the timeout");
    let payload: serde_json::Value = serde_json::from_str(note.payload()).expect("json payload");
    assert_eq!(payload["version"], 3);
    assert_eq!(
        version(&mut client),
        2,
        "nothing breaking is applied while the old worker lives"
    );
    v1_worker.exit();
    let out = child.wait_with_output().expect("wait migrate");
    common::assert_success(&out, "migrate");
    assert_eq!(version(&mut client), 3);

    // Every job points at its queue; no job lost.
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        3000
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs j LEFT JOIN jobdb.job_queues q ON q.id = j.job_queue_id
              WHERE j.queue_name IS DISTINCT FROM q.queue_name"
        ),
        0
    );
    assert!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE job_queue_id IS NOT NULL"
        ) > 0
    );
}

#[test]
fn a_holdout_past_max_wait_is_refused_with_nothing_changed() {
    let db = database_at(2, 200);
    let mut client = db.client();
    db.run(&["finalize-migration", "--all"]).expect(0);
    let _holdout = OldWorker::start(&db, "stubborn", 2);
    let r = db.run(&["migrate", "--max-wait", "2s"]);
    r.expect(3);
    assert!(r.one_line_error().contains("stubborn"), "{}", r.stderr);
    assert_eq!(version(&mut client), 2);
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM information_schema.table_constraints WHERE constraint_name = 'jobs_job_queue_id_fkey'"
        ),
        0
    );
}

#[test]
fn force_after_wait_releases_the_holdouts_jobs_and_proceeds() {
    let db = database_at(2, 200);
    let mut client = db.client();
    db.run(&["finalize-migration", "--all"]).expect(0);
    let _holdout = OldWorker::start(&db, "stubborn", 2);
    client.exec(
        "UPDATE jobdb.jobs SET state = 'running', locked_by = 'stubborn', locked_at = now()
              WHERE id IN (SELECT id FROM jobdb.jobs WHERE state = 'queued' ORDER BY id LIMIT 3)",
    );
    db.run(&["migrate", "--max-wait", "1s", "--force-after-wait"])
        .expect(0);
    assert_eq!(version(&mut client), 3);
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE locked_by = 'stubborn'"
        ),
        0
    );
}

#[test]
fn migrate_finalize_runs_the_backfill_itself() {
    let db = database_at(1, 500);
    let mut client = db.client();
    db.run(&["migrate", "--to", "2"]).expect(0);
    let dry = db.run(&["migrate", "--dry-run", "--json"]);
    dry.expect(0);
    assert_eq!(dry.json()["plan"][0]["version"], 3);
    assert_eq!(version(&mut client), 2, "--dry-run changes nothing");
    db.run(&["migrate", "--finalize"]).expect(0);
    assert_eq!(version(&mut client), 3);
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE queue_name IS NOT NULL AND job_queue_id IS NULL"
        ),
        0
    );
}

#[test]
fn jobs_locked_by_unregistered_workers_block_migrate() {
    let db = database_at(1, 100);
    let mut client = db.client();
    client.exec(
        "UPDATE jobdb.jobs SET state = 'running', locked_by = 'ghost', locked_at = now()
              WHERE id = (SELECT min(id) FROM jobdb.jobs WHERE state = 'queued')",
    );
    let r = db.run(&["migrate", "--to", "2"]);
    r.expect(3);
    assert!(r.one_line_error().contains("unlock-stale-jobs"));
    assert_eq!(version(&mut client), 1);
}

#[test]
fn concurrent_migrators_never_leave_a_half_state() {
    let db = database_at(1, 300);
    let mut client = db.client();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = db.cmd();
            cmd.args(["migrate", "--to", "2", "--lock-wait", "1m"]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 7,
            "exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(version(&mut client), 2);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.schema_migrations"),
        2
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.batched_background_migrations"
        ),
        1
    );
}

#[test]
fn a_second_migrator_gives_up_after_lock_wait_with_exit_7() {
    let db = database_at(1, 10);
    let mut holder = db.client();
    holder
        .query_one(
            "SELECT pg_advisory_lock(hashtextextended('jobdbctl:migrate:jobdb', 0))",
            &[],
        )
        .expect("hold migrator lock");
    let r = db.run(&["migrate", "--lock-wait", "1s"]);
    r.expect(7);
    assert_eq!(version(&mut db.client()), 1);
}

#[test]
fn kill_during_a_migration_leaves_a_whole_version() {
    let db = database_at(1, 300);
    let mut client = db.client();
    // Hold a lock the migration's ALTER TABLE must wait for, so it can be killed mid-way.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.jobs IN ACCESS SHARE MODE");
    let mut child = db
        .cmd()
        .args(["migrate", "--to", "2"])
        .spawn()
        .expect("spawn");
    let waiting = |client: &mut postgres::Client| -> bool {
        client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                 WHERE application_name = 'jobdbctl' AND wait_event_type = 'Lock'
                                   AND datname = current_database())",
                &[],
            )
            .expect("activity")
            .get(0)
    };
    let mut polls = 0;
    while !waiting(&mut client) {
        polls += 1;
        assert!(polls < 1200, "migration never reached its ALTER TABLE");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    tx.rollback().expect("release");
    // The server notices the dead client and rolls its transaction back.
    let mut polls = 0;
    while waiting(&mut client) {
        polls += 1;
        assert!(polls < 1200, "killed migration's backend never went away");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(version(&mut client), 1);
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'jobdb' AND column_name = 'job_queue_id'"
        ),
        0,
        "no part of version 2 is left behind"
    );
    db.run(&["migrate", "--to", "2"]).expect(0);
    assert_eq!(version(&mut client), 2);
}

#[test]
fn a_schema_newer_than_the_binary_refuses_writing_commands() {
    let db = TestDb::initialized();
    db.client()
        .exec("INSERT INTO jobdb.schema_migrations (version, name, breaking) VALUES (4, 'from a newer jobdbctl', true)");
    for args in [
        &["migrate"][..],
        &["set-job-counter", "10"],
        &["unlock-stale-jobs"],
        &["finalize-migration", "--all"],
    ] {
        let r = db.run(args);
        r.expect(3);
        assert!(
            r.one_line_error().contains("version 4"),
            "{args:?}: {}",
            r.stderr
        );
    }
    db.run(&["status", "--check"]).expect(4);
}

#[test]
fn status_shows_pending_versions_and_flags_incompatible_workers() {
    let db = database_at(2, 50);
    let r = db.run(&["status", "--json"]);
    r.expect(0);
    assert_eq!(r.json()["pending_schema_versions"], serde_json::json!([3]));
    db.run(&["status", "--check"]).expect(4);

    db.run(&["migrate", "--finalize"]).expect(0);
    let mut client = db.client();
    assert_eq!(version(&mut client), 3);
    db.run(&["status", "--check"]).expect(0);

    // A live worker that only knows schema 2 runs against breaking level 3.
    let _old = OldWorker::start(&db, "old-one", 2);
    let r = db.run(&["status", "--json"]);
    r.expect(0);
    let groups = r.json()["workers_by_version"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        groups
            .iter()
            .any(|g| g["schema_version"] == 2 && g["incompatible"] == true && g["live"] == 1),
        "{groups:?}"
    );
    let check = db.run(&["status", "--check"]);
    check
        .expect(4)
        .stdout_has("cannot run against schema version 3");
}

#[test]
fn downgrade_by_restore_then_upgrade_again() {
    let db = database_at(1, 400);
    let mut client = db.client();
    db.run(&["migrate", "--to", "2"]).expect(0);
    let archive = db.configdir.path().join("before-upgrade.tar.gz");
    db.run(&["backup", "--output", archive.to_str().expect("utf-8 path")])
        .expect(0);

    db.run(&["migrate", "--finalize"]).expect(0);
    assert_eq!(version(&mut client), 3);

    // Downgrade: the archive brings back version 2 with its unfinished backfill.
    db.run(&[
        "restore",
        archive.to_str().expect("utf-8 path"),
        "--force",
        "--yes",
    ])
    .expect(0);
    assert_eq!(version(&mut client), 2);
    let unfinished = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.batched_background_migrations WHERE status NOT IN (3, 6)",
    );
    assert_eq!(unfinished, 1);
    db.run(&["status", "--check"]).expect(4);

    // And forward again.
    db.run(&["migrate", "--finalize"]).expect(0);
    assert_eq!(version(&mut client), 3);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        400
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE queue_name IS NOT NULL AND job_queue_id IS NULL"
        ),
        0
    );
}
