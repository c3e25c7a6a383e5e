//! The server going away mid-command: every such run exits 6 with one line that says the
//! server closed the connection and that a rerun is safe, keeps nothing half-done, and the
//! rerun succeeds. Each run is first held at a known point by another session's lock, then
//! its sessions are ended as `pg_terminate_backend` (or a server restart) would.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use std::process::Child;
use std::time::Duration;

use common::generate::Spec;
use common::migrations::{differences_from_oracle, events_copy_migration};
use common::{finish, scalar_i64, wait_until, TestDb};

const WAIT: Duration = Duration::from_secs(120);

/// Polls until a jobdbctl session of `db` waits for a lock the test holds.
fn wait_for_lock_wait(db: &TestDb) {
    let mut admin = common::shared().admin();
    wait_until("jobdbctl waits for the test's lock", WAIT, || {
        admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1
                   AND application_name = 'jobdbctl' AND wait_event_type = 'Lock')",
                &[&db.name],
            )
            .expect("pg_stat_activity")
            .get(0)
    });
}

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
    let r = finish(child);
    r.expect(6);
    let line = r.one_line_error();
    assert_has(line, "closed the connection");
    assert_has(line, "run the command again");
}

#[test]
fn backup_loses_its_server_exit_6_no_archive_and_the_rerun_works() {
    let db = TestDb::populated(&Spec::jobs(2_000));
    let dir = common::temp_dir("flt");
    let target = dir.path().join("b.tar.gz");
    let partial = dir.path().join("b.tar.gz.partial");
    // A migration's lock holds the backup while it waits for its table locks.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.workers IN ACCESS EXCLUSIVE MODE");
    let child = db.spawn(&["backup", "--output", path_str(&target)]);
    wait_for_lock_wait(&db);
    end_jobdbctl_sessions(&db);
    assert_server_went_away(child);
    tx.rollback().expect("rollback");
    assert!(!target.exists() && !partial.exists());

    db.run(&["backup", "--output", path_str(&target)]).expect(0);
    db.run(&["verify", path_str(&target)]).expect(0);
}

#[test]
fn restore_loses_its_server_at_the_swap_leaving_the_database_as_it_was() {
    let db = TestDb::populated(&Spec::jobs(2_000));
    let dir = common::temp_dir("flt");
    let archive = dir.path().join("r.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let mut client = db.client();
    client
        .exec("INSERT INTO jobdb.jobs (task_identifier) SELECT 'since-backup' FROM generate_series(1, 50);
             UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour';");
    let count = |c: &mut postgres::Client| scalar_i64(c, "SELECT count(*) FROM jobdb.jobs");
    let before = count(&mut client);

    // A worker's open transaction on the jobs table holds the restore at its swap.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.jobs IN ROW EXCLUSIVE MODE");
    let child = db.spawn(&["restore", path_str(&archive), "--yes", "--force"]);
    wait_for_lock_wait(&db);
    end_jobdbctl_sessions(&db);
    assert_server_went_away(child);
    tx.rollback().expect("rollback");
    assert_eq!(count(&mut client), before, "the live schema is untouched");

    db.run(&["restore", path_str(&archive), "--yes", "--force"])
        .expect(0);
    assert_eq!(count(&mut client), 2_000);
}

#[test]
fn finalize_loses_its_server_mid_batch_and_the_rerun_finishes_exactly() {
    let (db, mut c, id) = events_copy_migration(20_000, 2_000, 500);
    let id = id.to_string();
    // A long transaction on the table holds the first batch's UPDATE.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.events IN EXCLUSIVE MODE");
    let child = db.spawn(&["finalize-migration", "--id", &id]);
    wait_for_lock_wait(&db);
    end_jobdbctl_sessions(&db);
    assert_server_went_away(child);
    tx.rollback().expect("rollback");

    db.run(&["finalize-migration", "--id", &id]).expect(0);
    assert_eq!(differences_from_oracle(&mut c, "events"), 0);
}
