//! The server going away mid-command: every such run exits 6 with one line that says the
//! server closed the connection and that a rerun is safe, keeps nothing half-done, and the
//! rerun succeeds.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::generate::{self, Spec};
use common::TestDb;

fn populated(jobs: i64) -> TestDb {
    let db = TestDb::initialized();
    generate::populate(
        &mut db.client(),
        "jobdb",
        &Spec {
            jobs,
            ..Spec::default()
        },
    );
    db
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    let mut cmd = db.cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn jobdbctl")
}

/// Polls until a jobdbctl session of `db` is active with a query like `pattern`.
fn wait_for_activity(db: &TestDb, pattern: &str) {
    let mut admin = common::shared().admin();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1
                   AND application_name = 'jobdbctl' AND state = 'active' AND query LIKE $2)",
                &[&db.name, &pattern],
            )
            .expect("pg_stat_activity")
            .get(0);
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {pattern}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What an administrator's `pg_terminate_backend` (or a server restart) does to jobdbctl.
fn end_jobdbctl_sessions(db: &TestDb) {
    common::shared()
        .admin()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = 'jobdbctl'",
            &[&db.name],
        )
        .expect("terminate");
}

#[track_caller]
fn assert_server_went_away(child: Child) {
    let r = common::Run::from(child.wait_with_output().expect("wait"));
    r.expect(6);
    let line = r.one_line_error();
    assert!(line.contains("closed the connection"), "{line}");
    assert!(line.contains("run the command again"), "{line}");
}

#[test]
fn backup_loses_its_server_exit_6_no_archive_and_the_rerun_works() {
    let db = populated(2_000);
    let dir = common::temp_dir("flt");
    let target: PathBuf = dir.path().join("b.tar.gz");
    let partial = dir.path().join("b.tar.gz.partial");
    // A migration's lock holds the backup at a known point: waiting for its table locks.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE jobdb.workers IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let child = spawn(&db, &["backup", "--output", path_str(&target)]);
    wait_for_activity(&db, "LOCK TABLE%");
    end_jobdbctl_sessions(&db);
    assert_server_went_away(child);
    tx.rollback().expect("rollback");
    assert!(!target.exists() && !partial.exists());

    db.run(&["backup", "--output", path_str(&target)]).expect(0);
    db.run(&["verify", path_str(&target)]).expect(0);
}

#[test]
fn restore_loses_its_server_at_the_swap_leaving_the_database_as_it_was() {
    let db = populated(2_000);
    let dir = common::temp_dir("flt");
    let archive = dir.path().join("r.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let mut client = db.client();
    client
        .batch_execute(
            "INSERT INTO jobdb.jobs (task_identifier) SELECT 'since-backup' FROM generate_series(1, 50);
             UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour';",
        )
        .expect("change");
    let count = |c: &mut postgres::Client| common::scalar_i64(c, "SELECT count(*) FROM jobdb.jobs");
    let before = count(&mut client);

    // A worker's open transaction on the jobs table holds the restore at its swap.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE jobdb.jobs IN ROW EXCLUSIVE MODE")
        .expect("lock");
    let child = spawn(&db, &["restore", path_str(&archive), "--yes", "--force"]);
    wait_for_activity(&db, "LOCK TABLE%");
    end_jobdbctl_sessions(&db);
    assert_server_went_away(child);
    tx.rollback().expect("rollback");
    assert_eq!(count(&mut client), before, "the live schema is untouched");

    db.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    assert_eq!(count(&mut client), 2_000);
}
