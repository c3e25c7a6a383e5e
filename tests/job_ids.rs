//! Job IDs across destroy and set-job-counter: no ID is handed out twice unless asked.

mod common;
use common::Exec;

use common::generate::Spec;
use common::insert_job;
use common::scalar_i64;
use common::schema_exists;
use common::TestCluster;
use common::TestDb;

#[test]
fn set_job_counter_refuses_reuse_and_raises() {
    let db = TestDb::with_queued(10);
    let mut client = db.client();
    // Below the highest existing id: refused, nothing changes.
    let low = db.run(&["set-job-counter", "5"]);
    low.expect(3);
    assert!(low.one_line_error().contains("reused"));
    assert_eq!(
        scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq"),
        10
    );

    let raise = db.run(&["set-job-counter", "1000", "--json"]);
    raise.expect(0);
    assert_eq!(raise.json()["old_last_used_job_id"], 10);
    assert_eq!(raise.json()["new_last_used_job_id"], 1000);
    assert_eq!(insert_job(&mut client), 1001);

    // Lowering below the counter would hand out 501..=1001 again.
    db.run(&["set-job-counter", "500"]).expect(3);
    assert_eq!(insert_job(&mut client), 1002);

    // --dry-run changes nothing.
    db.run(&["set-job-counter", "5000", "--dry-run"]).expect(0);
    assert_eq!(insert_job(&mut client), 1003);

    // --force allows it (the operator removed those jobs' logs).
    client.exec("DELETE FROM jobdb.jobs WHERE id > 10");
    db.run(&["set-job-counter", "20", "--force"]).expect(0);
    assert_eq!(insert_job(&mut client), 21);
}

#[test]
fn set_job_counter_rejects_bad_numbers_as_usage_errors() {
    let db = TestDb::initialized();
    for bad in ["-1", "abc", "1.5", "99999999999999999999"] {
        let r = db.run(&["set-job-counter", "--", bad]);
        r.expect(2);
        assert!(r.stderr.contains("invalid value"), "{bad}: {}", r.stderr);
    }
    assert_eq!(
        scalar_i64(&mut db.client(), "SELECT last_value FROM jobdb.jobs_id_seq"),
        1
    );
}

#[test]
fn destroy_refuses_without_yes_and_with_live_workers() {
    let db = TestDb::populated(&Spec::jobs(200));
    let mut client = db.client();

    let no_yes = db.run(&["destroy", "--force"]);
    no_yes.expect(3);
    assert!(no_yes.one_line_error().contains("--yes"));
    assert!(schema_exists(&mut client, "jobdb"));

    let live = db.run(&["destroy", "--yes"]);
    live.expect(3);
    assert!(live.one_line_error().contains("live-0"), "{}", live.stderr);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        200
    );

    db.run(&["destroy", "--yes", "--force", "--dry-run"])
        .expect(0);
    assert!(schema_exists(&mut client, "jobdb"));

    db.run(&["destroy", "--yes", "--force"]).expect(0);
    assert!(!schema_exists(&mut client, "jobdb"));
}

#[test]
fn destroy_then_init_starts_job_ids_at_one() {
    let db = TestDb::with_queued(5);
    let mut client = db.client();
    db.run(&["destroy", "--yes"]).expect(0);
    db.run(&["init"]).expect(0);
    assert_eq!(insert_job(&mut client), 1);
    let params = db.run(&["show-params", "--json"]);
    params.expect(0);
    let last = params.json()["params"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "last_used_job_id")
        .map(|p| p["value"].clone());
    assert_eq!(last, Some(serde_json::json!(1)));
}

#[test]
fn destroy_cluster_removes_the_data_dir_and_init_recreates_it() {
    let c = TestCluster::started();
    insert_job(&mut c.client());
    c.run(&["destroy", "--cluster"]).expect(3);
    assert!(c.pgdata().join("PG_VERSION").exists());
    c.run(&["destroy", "--cluster", "--yes"]).expect(0);
    assert!(!c.pgdata().exists());
    // An explicitly given data dir is not re-created by a plain start.
    c.run(&["start"]).expect(3);
    assert!(!c.pgdata().exists());
    c.run(&["init"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 1);
}
