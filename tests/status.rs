//! `status`: counts that match the database, locks by holder, readiness for an upgrade,
//! on the native schema and on Graphile Worker databases.

mod common;
use common::Exec;

use common::has_human_time;

use common::assert_has;

use common::generate::Spec;
use common::graphile_npm;
use common::scalar_i64;
use common::TestDb;
use std::collections::BTreeMap;

#[test]
fn status_counts_match_the_database_and_check_fails_on_stale_locks() {
    let db = TestDb::populated(&Spec {
        jobs: 5000,
        live_workers: 2,
        dead_workers: 3,
        migrations: true,
    });
    let mut client = db.client();
    let status = db.run(&["status", "--json"]);
    status.expect(0);
    let r = status.json();
    for state in ["queued", "running", "succeeded", "failed", "cancelled"] {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM jobdb.jobs WHERE state = $1",
                &[&state],
            )
            .expect("count")
            .get(0);
        assert_eq!(r["jobs"]["by_state"][state], n, "state {state}");
    }
    let stale: i64 = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.jobs j WHERE locked_by IS NOT NULL AND NOT EXISTS
           (SELECT 1 FROM jobdb.workers w WHERE w.worker_id = j.locked_by
               AND w.last_heartbeat_at > now() - interval '5 minutes')",
    );
    assert!(stale > 0);
    assert_eq!(r["stale_locked_jobs"], stale);
    let unfinished = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.batched_background_migrations WHERE status NOT IN (3, 6)",
    );
    assert_eq!(
        r["unfinished_background_migrations"]
            .as_array()
            .map(|a| a.len() as i64),
        Some(unfinished)
    );
    let live = r["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["live"] == true)
        .count();
    assert_eq!(live, 2);
    db.run(&["status", "--check"]).expect(4);

    // Once locks are released and migrations finished, the check passes.
    client
        .exec("UPDATE jobdb.jobs SET state = 'queued', locked_by = NULL, locked_at = NULL WHERE locked_by LIKE 'dead-%';
             UPDATE jobdb.job_queues SET locked_by = NULL, locked_at = NULL WHERE locked_by LIKE 'dead-%';
             UPDATE jobdb.batched_background_migrations SET status = 3;");
    db.run(&["status", "--check"]).expect(0);
}

#[test]
fn status_estimates_large_tables_and_exact_counts_on_request() {
    let db = TestDb::populated(&Spec::jobs(60_000));
    let mut client = db.client();
    client.exec("ANALYZE jobdb.jobs");

    let estimated = db.run(&["status", "--json"]);
    estimated.expect(0);
    let r = estimated.json();
    let marked: Vec<&str> = r["jobs"]["estimated"]
        .as_array()
        .expect("estimated")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(marked, ["succeeded", "failed", "cancelled"]);
    let succeeded = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.jobs WHERE state = 'succeeded'",
    );
    let estimate = r["jobs"]["by_state"]["succeeded"].as_i64().expect("number");
    assert!(
        (estimate - succeeded).abs() <= succeeded / 10,
        "estimate {estimate} vs {succeeded}"
    );
    // Active states are always exact.
    let queued = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.jobs WHERE state = 'queued'",
    );
    assert_eq!(r["jobs"]["by_state"]["queued"], queued);
    // Running jobs are the lock holders' jobs, counted once for both.
    let running = scalar_i64(
        &mut client,
        "SELECT count(*) FROM jobdb.jobs WHERE state = 'running'",
    );
    assert!(running > 0);
    assert_eq!(r["jobs"]["by_state"]["running"], running);
    assert_eq!(r["locked_jobs"], running);

    let exact = db.run(&["status", "--exact", "--json"]);
    exact.expect(0);
    assert_eq!(exact.json()["jobs"]["by_state"]["succeeded"], succeeded);
    assert_eq!(
        exact.json()["jobs"]["estimated"]
            .as_array()
            .map(|a| a.len()),
        Some(0)
    );
    let human = db.run(&["status"]);
    human.expect(0).stdout_has("estimated");
}

#[test]
fn status_shows_locks_by_holder_grouped_by_process_in_the_human_output() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client
        .exec("INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version, last_heartbeat_at) VALUES
                ('w-a', 'render1', 4711, '3.0', 3, now()),
                ('w-b', 'render1', 4711, '3.0', 3, now()),
                ('w-c', 'render2', 99, '3.0', 3, now() - interval '1 hour');
             INSERT INTO jobdb.jobs (task_identifier, state, locked_by, locked_at)
               SELECT 't', 'running', holder, now() - interval '10 minutes'
                 FROM unnest(ARRAY['w-a', 'w-a', 'w-b', 'w-c', 'w-c', 'w-c', 'ghost']) AS holder;
             INSERT INTO jobdb.jobs (task_identifier) SELECT 't' FROM generate_series(1, 5);
             INSERT INTO jobdb.job_queues (queue_name, locked_by, locked_at) VALUES ('q1', 'ghost', now());");
    let json = db.run(&["--json", "status"]);
    json.expect(0);
    let report = json.json();
    let process: BTreeMap<String, serde_json::Value> = report["lock_holders"]
        .as_array()
        .expect("lock_holders")
        .iter()
        .map(|h| {
            (
                h["locked_by"].as_str().expect("id").to_string(),
                h["process"].clone(),
            )
        })
        .collect();
    assert_eq!(process["w-a"], "render1:4711");
    assert_eq!(process["w-b"], "render1:4711");
    assert_eq!(process["w-c"], "render2:99");
    assert_eq!(process["ghost"], serde_json::Value::Null);
    assert_eq!(report["locked_jobs"], 7);
    assert_eq!(report["jobs"]["by_state"]["queued"], 5);
    assert_eq!(report["jobs"]["by_state"]["running"], 7);
    assert_eq!(report["jobs"]["total"], 12);

    let human = db.run(&["status"]);
    human.expect(0);
    let text = &human.stdout;
    let row = |needle: &str| -> String {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}:\n{text}"))
            .to_string()
    };
    let cells = |line: String| -> Vec<String> {
        line.split(['│', '┆'])
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let render1 = cells(row("render1:4711 (2 workers: w-a, w-b)"));
    assert_eq!(render1[1..3], ["3", "0"], "{render1:?}");
    assert_eq!(render1.last().map(String::as_str), Some("live"));
    let render2 = cells(row("render2:99 (1 worker: w-c)"));
    assert_eq!(render2[1..3], ["3", "0"], "{render2:?}");
    assert_eq!(render2.last().map(String::as_str), Some("stale"));
    let ghost = cells(row("│ ghost"));
    assert_eq!(ghost[1..3], ["1", "1"], "{ghost:?}");
    assert_eq!(
        ghost.last().map(String::as_str),
        Some("stale (not registered)")
    );
    assert!(
        text.contains("7 jobs and 1 queue locked; stale: 4 jobs, 1 queue"),
        "{text}"
    );
    assert!(has_human_time(&row("render1:4711")), "oldest lock: {text}");
    assert!(!text.contains("+00:00"), "RFC 3339 for people: {text}");
    // Stale holders come first.
    assert!(
        text.find("render2:99").expect("render2") < text.find("render1:4711").expect("render1")
    );
    let not_ready = db.run(&["status", "--check"]);
    not_ready.expect(4);
    assert!(
        not_ready
            .stdout
            .contains("not ready: 4 jobs and 1 queue are locked by workers that are not live"),
        "{}",
        not_ready.stdout
    );
}

#[test]
fn status_counts_graphile_worker_jobs_by_what_happens_next() {
    for version in ["0.16.6", "0.18.0"] {
        let engine = common::graphile_npm::engine(version);
        let db = TestDb::empty();
        engine.populate(&db);
        let mut client = db.client();
        // One due now, one out of attempts, on top of what the engine left.
        client.exec(
            "SELECT graphile_worker.add_job('due');
                 UPDATE graphile_worker._private_jobs SET attempts = max_attempts
                  WHERE id = (SELECT min(id) FROM graphile_worker._private_jobs
                               WHERE attempts > 0 AND locked_by IS NULL);",
        );
        // Classified here, independently, row by row.
        let mut want: BTreeMap<&str, i64> = BTreeMap::new();
        for row in client
            .query(
                "SELECT locked_by IS NOT NULL, attempts, max_attempts, run_at <= now()
                   FROM graphile_worker._private_jobs",
                &[],
            )
            .expect("jobs")
        {
            let (locked, attempts, max, due): (bool, i16, i16, bool) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let bucket = if locked {
                "locked"
            } else if attempts >= max {
                "failed"
            } else if attempts > 0 {
                "retrying"
            } else if due {
                "due_now"
            } else {
                "scheduled"
            };
            *want.entry(bucket).or_default() += 1;
        }
        for bucket in ["locked", "failed", "retrying", "due_now", "scheduled"] {
            assert!(
                want.get(bucket).copied().unwrap_or(0) > 0,
                "{version}: no {bucket} job: {want:?}"
            );
        }
        let r = db.run(&["--json", "status"]);
        r.expect(0);
        let report = r.json();
        for (bucket, n) in &want {
            assert_eq!(
                report["jobs"]["by_state"][bucket], *n,
                "{version}: {bucket}"
            );
        }
        assert_eq!(report["jobs"]["total"], want.values().sum::<i64>());
        assert_eq!(report["jobs"]["estimated"], serde_json::json!([]));
        let holder = report["lock_holders"][0].clone();
        let id = holder["locked_by"].as_str().expect("holder").to_string();
        assert_eq!(holder["jobs"], 1, "{version}");
        assert_eq!(holder["queues"], 1, "{version}");
        if version == "0.18.0" {
            // v0.17+ locks in the pool's name: the holder is the process.
            assert!(id.starts_with("pool-"), "{id}");
            assert_eq!(holder["process"], id.as_str());
        } else {
            assert!(id.starts_with("worker-"), "{id}");
            assert_eq!(holder["process"], serde_json::Value::Null);
        }

        let human = db.run(&["status"]);
        human.expect(0);
        let text = &human.stdout;
        let line = format!(
            "{} in all: {} locked, {} failed (out of attempts), {} retrying (attempts > 0), {} due now, {} scheduled later",
            want.values().sum::<i64>(),
            want["locked"],
            want["failed"],
            want["retrying"],
            want["due_now"],
            want["scheduled"]
        );
        // The table may wrap long cells; compare the words in order.
        let words = |s: &str| -> String {
            s.split(|c: char| c.is_whitespace() || c == '│' || c == '┆')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            words(text).contains(&words(&line)),
            "{version}: {line}\n{text}"
        );
        assert!(words(text).contains("1 job and 1 queue locked"), "{text}");
        assert!(text.contains(&id), "{version}: holder listed: {text}");
        assert!(
            words(text).contains("locked less than 4h ago"),
            "{version}: no Pro, so age is what counts: {text}"
        );
    }
}

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
    assert_has(&human, "not counted");
    assert_has(&human, "unknown until job locks are counted");

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
    assert_has(&reasons, "--older-than 4h");

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

#[test]
fn status_shows_how_old_the_newest_backup_is() {
    let db = TestDb::with_jobs(50);
    let dir = common::temp_dir("st");
    db.write_config(&format!("backup_dir = '{}'\n", dir.path().display()));
    let before = db.run(&["status", "--json"]);
    before.expect(0);
    assert!(before.json()["newest_backup"].is_null(), "no backup yet");
    let backup = db.run(&["backup", "--json"]);
    backup.expect(0);
    let archive = backup.json()["archive"].clone();
    let after = db.run(&["status", "--json"]);
    after.expect(0);
    let newest = &after.json()["newest_backup"];
    assert_eq!(newest["archive"], archive, "{newest}");
    assert!(newest["age_seconds"].as_u64() < Some(600), "{newest}");
    db.run(&["status"]).expect(0).stdout_has("newest backup");
}
