//! `status` on schemas made by the real Graphile Worker (installed from npm, one pinned version
//! per generation), small and then past the 10 MB at which its job counts become estimates:
//! estimates are marked as native ones are, `--exact` counts every bucket exactly, and job
//! locks (no index holds them) are counted by `--check` and `--exact` only, so `--check`
//! still exits by the real stale locks.

mod common;

use std::collections::BTreeMap;

use common::graphile_npm;
use common::{scalar_i64, TestDb};

const BUCKETS: [&str; 5] = ["locked", "failed", "retrying", "due_now", "scheduled"];

/// status's threshold (`EXACT_BELOW_PAGES`): from this many heap pages on, counts are estimated.
const EXACT_BELOW_PAGES: i64 = 1280;

/// Jobs added to pass the threshold: each carries a ~1.8 kB payload (not compressible by
/// TOAST's threshold, which it stays under), four to a page.
const BULK_JOBS: i64 = 5600;

struct Version {
    npm: &'static str,
    jobs: &'static str,
    queues: &'static str,
}

const VERSIONS: [Version; 3] = [
    Version {
        npm: "0.15.1",
        jobs: "graphile_worker.jobs",
        queues: "graphile_worker.job_queues",
    },
    Version {
        npm: "0.16.6",
        jobs: "graphile_worker._private_jobs",
        queues: "graphile_worker._private_job_queues",
    },
    Version {
        npm: "0.18.0",
        jobs: "graphile_worker._private_jobs",
        queues: "graphile_worker._private_job_queues",
    },
];

/// Every bucket counted by SQL written here, independently of jobdbctl's.
fn truth(client: &mut postgres::Client, jobs: &str) -> BTreeMap<String, i64> {
    let conditions = [
        "locked_by IS NOT NULL",
        "locked_by IS NULL AND attempts >= max_attempts",
        "locked_by IS NULL AND attempts BETWEEN 1 AND max_attempts - 1",
        "locked_by IS NULL AND attempts = 0 AND run_at <= now()",
        "locked_by IS NULL AND attempts = 0 AND run_at > now()",
    ];
    BUCKETS
        .iter()
        .zip(conditions)
        .map(|(bucket, condition)| {
            (
                bucket.to_string(),
                scalar_i64(
                    client,
                    &format!("SELECT count(*) FROM {jobs} WHERE {condition}"),
                ),
            )
        })
        .collect()
}

fn by_state(status: &serde_json::Value) -> BTreeMap<String, i64> {
    status["jobs"]["by_state"]
        .as_object()
        .expect("by_state")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().expect("count")))
        .collect()
}

fn estimated(status: &serde_json::Value) -> Vec<&str> {
    status["jobs"]["estimated"]
        .as_array()
        .expect("estimated")
        .iter()
        .map(|s| s.as_str().expect("state"))
        .collect()
}

/// The human output's jobs row, as one string (the table may wrap it).
fn jobs_row(human: &str) -> String {
    let start = human.find("│ jobs ").expect("jobs row");
    let end = human[start..].find("│ jobs table").expect("jobs table row") + start;
    human[start..end].to_string()
}

fn status_on(v: &Version) {
    let engine = graphile_npm::engine(v.npm);
    let db = TestDb::empty();
    // The engine's own data: jobs done, failed, waiting, and one (with its queue) held by a
    // worker that died.
    engine.populate(&db);
    let mut client = db.client();

    // Small: every bucket exact, and the locks too.
    let small = db.run(&["--json", "status"]).expect(0).json();
    assert_eq!(by_state(&small), truth(&mut client, v.jobs), "{}", v.npm);
    assert!(estimated(&small).is_empty(), "{small}");
    assert!(small["jobs"].get("estimated_from").is_none(), "{small}");
    assert_eq!(small["locked_jobs"], 1, "{small}");
    assert_eq!(small["ready_to_upgrade"], true, "{small}");

    // Past the threshold through the engine's own add_job, one statement; some of the jobs
    // then failed once and some for good, as the engine's fail_job leaves them.
    client
        .batch_execute(&format!(
            "SELECT count(graphile_worker.add_job(
                        'bulk',
                        json_build_object('n', g, 'pad', (SELECT string_agg(md5(g::text || i::text), '')
                                                            FROM generate_series(1, 55) i)),
                        run_at := now() + ((g % 4) - 2) * interval '1 hour',
                        max_attempts := 1 + g % 5))
               FROM generate_series(1, {BULK_JOBS}) g;
             UPDATE {jobs} SET attempts = max_attempts, last_error = 'gave up'
              WHERE locked_by IS NULL AND id % 10 = 0;
             UPDATE {jobs} SET attempts = 1, last_error = 'try again'
              WHERE locked_by IS NULL AND attempts = 0 AND id % 7 = 1 AND max_attempts > 1;
             -- The dead worker's lock is now older than Graphile's 4-hour expiry.
             UPDATE {jobs} SET locked_at = now() - interval '5 hours' WHERE locked_by IS NOT NULL;
             UPDATE {queues} SET locked_at = now() - interval '5 hours' WHERE locked_by IS NOT NULL;",
            jobs = v.jobs,
            queues = v.queues,
        ))
        .expect("add jobs");
    client
        .batch_execute(&format!("VACUUM ANALYZE {}", v.jobs))
        .expect("vacuum analyze");
    let pages = scalar_i64(
        &mut client,
        &format!(
            "SELECT pg_relation_size('{}') / current_setting('block_size')::int8",
            v.jobs
        ),
    );
    assert!(
        pages >= EXACT_BELOW_PAGES,
        "{}: the jobs table has {pages} pages, below the estimate threshold",
        v.npm
    );
    let exact = truth(&mut client, v.jobs);
    let total: i64 = exact.values().sum();
    assert!(
        exact
            .iter()
            .all(|(b, n)| *n > 0 && (b == "locked" || *n > 300)),
        "every bucket used: {exact:?}"
    );

    // Plain status: every bucket an estimate, marked; job locks not counted, so readiness
    // is left open.
    let plain = db.run(&["--json", "status"]).expect(0).json();
    assert_eq!(estimated(&plain), BUCKETS, "{plain}");
    assert_eq!(
        plain["jobs"]["estimated_from"], "a sample of the jobs table",
        "{plain}"
    );
    let estimate = plain["jobs"]["total"].as_i64().expect("total");
    assert!(
        (estimate - total).abs() * 10 <= total,
        "{}: total ~{estimate} vs {total}",
        v.npm
    );
    assert_eq!(by_state(&plain).values().sum::<i64>(), estimate);
    // The sample is an eighth of the pages: the biggest bucket cannot be far off.
    let due = by_state(&plain)["due_now"];
    assert!(
        (due - exact["due_now"]).abs() * 4 <= exact["due_now"],
        "{}: due now ~{due} vs {exact:?}",
        v.npm
    );
    assert!(plain["locked_jobs"].is_null(), "{plain}");
    assert!(plain["stale_locked_jobs"].is_null(), "{plain}");
    assert!(plain["stale_locked_queues"].is_null(), "{plain}");
    assert_eq!(plain["lock_holders"], serde_json::json!([]), "{plain}");
    assert!(plain["ready_to_upgrade"].is_null(), "{plain}");
    assert_eq!(plain["not_ready_because"], serde_json::json!([]), "{plain}");

    let human = db.run(&["status"]).expect(0).stdout.clone();
    let row = jobs_row(&human);
    for label in [
        "locked",
        "failed (out",
        "retrying (",
        "due now",
        "scheduled later",
    ] {
        let at = row.find(label).unwrap_or_else(|| panic!("{label}: {row}"));
        let number = row[..at]
            .trim_end()
            .rsplit([' ', ',', ':'])
            .next()
            .unwrap_or("");
        assert!(number.starts_with('~'), "{label} unmarked: {row}");
    }
    assert!(
        human.contains("~ estimated from a sample of the jobs table; --exact counts them"),
        "{human}"
    );
    assert!(human.contains("not counted"), "{human}");
    assert!(
        human.contains("unknown until job locks are counted"),
        "{human}"
    );

    // --exact: every bucket and every lock counted.
    let counted = db.run(&["--json", "status", "--exact"]).expect(0).json();
    assert_eq!(by_state(&counted), exact, "{}", v.npm);
    assert_eq!(counted["jobs"]["total"], total);
    assert!(estimated(&counted).is_empty(), "{counted}");
    assert!(counted["jobs"].get("estimated_from").is_none(), "{counted}");
    assert_eq!(counted["locked_jobs"], 1, "{counted}");
    assert_eq!(counted["stale_locked_jobs"], 1, "{counted}");
    assert_eq!(counted["stale_locked_queues"], 1, "{counted}");
    assert_eq!(counted["ready_to_upgrade"], false, "{counted}");
    let human = db.run(&["status", "--exact"]).expect(0).stdout.clone();
    assert!(!jobs_row(&human).contains('~'), "{human}");
    assert!(!human.contains("estimated from"), "{human}");

    // --check counts the locks (the buckets stay estimates) and exits by them.
    let checked = db.run(&["--json", "status", "--check"]);
    checked.expect(4);
    let checked = checked.json();
    assert_eq!(estimated(&checked), BUCKETS, "{checked}");
    assert_eq!(checked["stale_locked_jobs"], 1, "{checked}");
    assert_eq!(checked["stale_locked_queues"], 1, "{checked}");
    assert_eq!(checked["ready_to_upgrade"], false, "{checked}");
    let reasons = checked["not_ready_because"].to_string();
    assert!(reasons.contains("--older-than 4h"), "{reasons}");

    db.run(&["unlock-stale-jobs", "--older-than", "4h"])
        .expect(0);
    let checked = db.run(&["--json", "status", "--check"]);
    checked.expect(0);
    let checked = checked.json();
    assert_eq!(checked["locked_jobs"], 0, "{checked}");
    assert_eq!(checked["ready_to_upgrade"], true, "{checked}");
    // Plain status still cannot say without counting.
    assert!(db.run(&["--json", "status"]).expect(0).json()["ready_to_upgrade"].is_null());
}

#[test]
fn status_on_graphile_worker_0_15() {
    status_on(&VERSIONS[0]);
}

#[test]
fn status_on_graphile_worker_0_16() {
    status_on(&VERSIONS[1]);
}

#[test]
fn status_on_graphile_worker_0_18() {
    status_on(&VERSIONS[2]);
}
