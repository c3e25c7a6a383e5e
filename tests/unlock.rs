//! unlock-stale-jobs on the native profile, against a real server: what is released and what
//! is kept, a live fleet of workers, a heartbeat racing the unlock statement, and bad inputs.

mod common;
use common::Exec;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::generate::Spec;
use common::{locks_by_holder, released_by_worker, wait_until, TestDb};

/// Every row of the job tables and the registry, to prove a refused run changed nothing.
fn contents(client: &mut postgres::Client) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["jobs", "job_queues", "workers"] {
        for r in client
            .query(
                &format!("SELECT '{table}: ' || t::text FROM jobdb.{table} t ORDER BY 1"),
                &[],
            )
            .expect("read table")
        {
            rows.push(r.get(0));
        }
    }
    rows
}

/// Per worker (jobs, queues) released, from the command's JSON report; workers that
/// released nothing are left out.
fn reported(json: &serde_json::Value) -> BTreeMap<String, (i64, i64)> {
    released_by_worker(json)
        .into_iter()
        .filter(|(_, (jobs, queues))| jobs + queues > 0)
        .collect()
}

fn populated(jobs: i64) -> (TestDb, postgres::Client) {
    let db = TestDb::populated(&Spec::jobs(jobs));
    let client = db.client();
    (db, client)
}

#[test]
fn releases_locks_of_dead_and_unregistered_workers_and_keeps_live_ones() {
    let (db, mut client) = populated(2000);
    // A holder that never registered (a crashed worker whose row was removed) is stale too.
    client
        .exec("UPDATE jobdb.jobs SET state = 'running', locked_by = 'ghost', locked_at = now() - interval '1 day',
                    run_at = now() + interval '1 hour', attempts = 4
              WHERE id IN (SELECT id FROM jobdb.jobs WHERE state = 'queued' ORDER BY id LIMIT 3)");
    let jobs_before = locks_by_holder(&mut client, "jobdb.jobs");
    let queues_before = locks_by_holder(&mut client, "jobdb.job_queues");
    let dead = ["dead-0", "dead-1", "ghost"];
    let released_ids: Vec<i64> = client
        .query(
            "SELECT id FROM jobdb.jobs WHERE locked_by = ANY($1) ORDER BY id",
            &[&&dead[..]],
        )
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let attempts_before: Vec<(i64, i32)> = client
        .query(
            "SELECT id, attempts FROM jobdb.jobs WHERE id = ANY($1) ORDER BY id",
            &[&released_ids],
        )
        .expect("attempts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(released_ids.len() > 10, "fixture has stale locks");

    let started: chrono::DateTime<chrono::Utc> =
        client.query_one("SELECT now()", &[]).expect("now").get(0);
    let out = db.run(&["--json", "unlock-stale-jobs"]);
    out.expect(0);
    let json = out.json();

    // Every number printed matches what the database held.
    let mut expected = BTreeMap::new();
    for id in dead {
        let jobs = jobs_before.get(id).copied().unwrap_or(0);
        let queues = queues_before.get(id).copied().unwrap_or(0);
        if jobs + queues > 0 {
            expected.insert(id.to_string(), (jobs, queues));
        }
    }
    assert_eq!(reported(&json), expected);
    assert_eq!(
        json["jobs_released"].as_i64(),
        Some(released_ids.len() as i64)
    );
    let ghost = worker(&json, "ghost");
    assert_eq!(ghost["registered"], false);
    let dead0 = worker(&json, "dead-0");
    assert_eq!(dead0["registered"], true);
    assert_eq!(dead0["live"], false);
    assert!(dead0["last_heartbeat_at"].is_string());

    // Released jobs are queued, unlocked, not scheduled in the past, attempts kept.
    let after: Vec<(i64, String, Option<String>, bool, i32)> = client
        .query(
            "SELECT id, state, locked_by, run_at >= $2 AND locked_at IS NULL, attempts
               FROM jobdb.jobs WHERE id = ANY($1) ORDER BY id",
            &[&released_ids, &started],
        )
        .expect("after")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    for ((id, state, locked_by, scheduled, attempts), (_, attempts_was)) in
        after.iter().zip(&attempts_before)
    {
        assert_eq!(state, "queued", "job {id}");
        assert_eq!(locked_by, &None, "job {id}");
        assert!(
            scheduled,
            "job {id}: run_at must be >= now and locked_at null"
        );
        assert_eq!(attempts, attempts_was, "job {id}: attempts kept");
    }
    // A job scheduled in the future keeps its run_at.
    let future: i64 = client
        .query_one(
            "SELECT count(*) FROM jobdb.jobs WHERE id = ANY($1) AND run_at > now() + interval '50 minutes'",
            &[&released_ids],
        )
        .expect("future")
        .get(0);
    assert_eq!(future, 3, "ghost's future run_at kept");
    // Live workers keep every lock.
    let jobs_after = locks_by_holder(&mut client, "jobdb.jobs");
    let queues_after = locks_by_holder(&mut client, "jobdb.job_queues");
    for live in ["live-0", "live-1"] {
        assert_eq!(jobs_after.get(live), jobs_before.get(live), "{live} jobs");
        assert_eq!(
            queues_after.get(live),
            queues_before.get(live),
            "{live} queues"
        );
    }
    assert!(dead
        .iter()
        .all(|d| !jobs_after.contains_key(*d) && !queues_after.contains_key(*d)));
    let status = db.run(&["--json", "status"]);
    status.expect(0);
    assert_eq!(status.json()["stale_locked_jobs"], 0);

    // Idempotent: a second run releases nothing and changes nothing.
    let before_second = contents(&mut client);
    let again = db.run(&["--json", "unlock-stale-jobs"]);
    again.expect(0);
    assert_eq!(again.json()["jobs_released"], 0);
    assert_eq!(again.json()["queues_released"], 0);
    assert_eq!(contents(&mut client), before_second);
    let human = db.run(&["unlock-stale-jobs"]);
    human.expect(0).stdout_has("nothing to release");
}

#[test]
fn dry_run_reports_exactly_what_the_real_run_then_releases() {
    let (db, mut client) = populated(1500);
    let before = contents(&mut client);
    let dry = db.run(&[
        "--json",
        "unlock-stale-jobs",
        "--dry-run",
        "--prune-workers",
    ]);
    dry.expect(0);
    assert_eq!(
        contents(&mut client),
        before,
        "--dry-run changed the database"
    );
    assert_eq!(dry.json()["dry_run"], true);
    let real = db.run(&["--json", "unlock-stale-jobs", "--prune-workers"]);
    real.expect(0);
    assert_eq!(reported(&dry.json()), reported(&real.json()));
    assert_eq!(dry.json()["workers_pruned"], 2);
    assert_eq!(real.json()["workers_pruned"], 2);
    let registered: Vec<String> = common::column(
        &mut client,
        "SELECT worker_id FROM jobdb.workers ORDER BY 1",
    );
    assert_eq!(
        registered,
        ["live-0", "live-1"],
        "stale rows pruned, live kept"
    );

    let human = db.run(&["unlock-stale-jobs", "--dry-run"]);
    human.expect(0).stdout_has("nothing to release");
}

#[test]
fn worker_flag_releases_only_named_workers_and_refuses_live_ones() {
    let (db, mut client) = populated(1000);
    let before = contents(&mut client);
    let jobs_before = locks_by_holder(&mut client, "jobdb.jobs");
    let queues_before = locks_by_holder(&mut client, "jobdb.job_queues");

    let live = db.run(&["unlock-stale-jobs", "--worker", "live-0"]);
    live.expect(3);
    assert!(live.one_line_error().contains("live-0"), "{}", live.stderr);
    let unknown = db.run(&[
        "unlock-stale-jobs",
        "--worker",
        "dead-0",
        "--worker",
        "nosuch",
    ]);
    unknown.expect(2).error_has("nosuch");
    assert_eq!(
        contents(&mut client),
        before,
        "refused runs changed nothing"
    );

    let one = db.run(&["--json", "unlock-stale-jobs", "--worker", "dead-0"]);
    one.expect(0);
    let mut expected = BTreeMap::new();
    expected.insert(
        "dead-0".to_string(),
        (
            jobs_before["dead-0"],
            queues_before.get("dead-0").copied().unwrap_or(0),
        ),
    );
    assert_eq!(reported(&one.json()), expected);
    let jobs_after = locks_by_holder(&mut client, "jobdb.jobs");
    assert!(!jobs_after.contains_key("dead-0"));
    assert_eq!(
        jobs_after.get("dead-1"),
        jobs_before.get("dead-1"),
        "dead-1 not named"
    );

    // A stale worker that holds nothing is known: nothing to do, not an error.
    let idle = db.run(&["--json", "unlock-stale-jobs", "--worker", "dead-0"]);
    idle.expect(0);
    assert_eq!(idle.json()["jobs_released"], 0);

    let forced = db.run(&[
        "--json",
        "unlock-stale-jobs",
        "--worker",
        "live-0",
        "--force",
    ]);
    forced.expect(0);
    assert_eq!(
        reported(&forced.json()).get("live-0").map(|r| r.0),
        jobs_before.get("live-0").copied()
    );
    let jobs_after = locks_by_holder(&mut client, "jobdb.jobs");
    assert!(!jobs_after.contains_key("live-0"));
    assert_eq!(jobs_after.get("live-1"), jobs_before.get("live-1"));
}

#[test]
fn older_than_releases_old_locks_whatever_the_registry_says() {
    let (db, mut client) = populated(1000);
    let old_ids: Vec<i64> = common::column(
        &mut client,
        "UPDATE jobdb.jobs SET locked_at = now() - interval '5 hours'
              WHERE id IN (SELECT id FROM jobdb.jobs WHERE locked_by = 'live-0' ORDER BY id LIMIT 2)
             RETURNING id",
    );
    let jobs_before = locks_by_holder(&mut client, "jobdb.jobs");
    let out = db.run(&["--json", "unlock-stale-jobs", "--older-than", "4h"]);
    out.expect(0);
    let report = reported(&out.json());
    assert_eq!(
        report.get("live-0").map(|r| r.0),
        Some(2),
        "old locks of a live worker"
    );
    assert_eq!(
        report.get("dead-0").map(|r| r.0),
        jobs_before.get("dead-0").copied()
    );
    let still_locked: i64 = client
        .query_one(
            "SELECT count(*) FROM jobdb.jobs WHERE id = ANY($1) AND locked_by IS NOT NULL",
            &[&old_ids],
        )
        .expect("count")
        .get(0);
    assert_eq!(still_locked, 0);
    assert_eq!(
        locks_by_holder(&mut client, "jobdb.jobs")
            .get("live-0")
            .copied(),
        jobs_before.get("live-0").map(|n| n - 2),
        "live-0's younger locks kept"
    );
}

#[test]
fn bad_inputs_are_one_line_errors_and_change_nothing() {
    let (db, mut client) = populated(500);
    let before = contents(&mut client);
    let bad_duration = db.run(&["unlock-stale-jobs", "--older-than", "soon"]);
    bad_duration.expect(2);
    let line = bad_duration.one_line_error();
    assert!(
        line.contains("--older-than") && line.contains("soon"),
        "{line}"
    );

    let unknown_worker = db.run(&["unlock-stale-jobs", "--worker", "nosuch"]);
    unknown_worker.expect(2);
    assert!(unknown_worker.one_line_error().contains("nosuch"));

    let unknown_profile = db.run(&["--profile", "nosuch", "unlock-stale-jobs"]);
    unknown_profile.expect(2).stderr_has("nosuch");

    db.write_config("profile = \"nosuch\"\n");
    let configured = db.run(&["unlock-stale-jobs"]);
    configured.expect(2);
    assert!(configured.one_line_error().contains("nosuch"));
    db.remove_config();

    let conflicting = db.run(&[
        "unlock-stale-jobs",
        "--worker",
        "dead-0",
        "--older-than",
        "1h",
    ]);
    conflicting.expect(2);
    let force_alone = db.run(&["unlock-stale-jobs", "--force"]);
    force_alone.expect(2);
    let bad_stale = db.run(&["--stale-after", "-1s", "unlock-stale-jobs"]);
    bad_stale.expect(2);
    assert_eq!(
        contents(&mut client),
        before,
        "bad inputs changed the database"
    );
}

#[test]
fn heartbeat_in_flight_during_the_unlock_statement_keeps_its_jobs() {
    let db = TestDb::initialized();
    let mut setup = db.client();
    setup
        .exec("INSERT INTO jobdb.workers (worker_id, last_heartbeat_at)
                  VALUES ('slow', now() - interval '10 minutes'), ('gone', now() - interval '10 minutes');
             INSERT INTO jobdb.jobs (task_identifier, state, locked_by, locked_at)
                  SELECT 't', 'running', CASE WHEN g % 2 = 0 THEN 'slow' ELSE 'gone' END, now() - interval '10 minutes'
                    FROM generate_series(1, 20) g;
             INSERT INTO jobdb.job_queues (queue_name, locked_by, locked_at)
                  VALUES ('q-slow', 'slow', now()), ('q-gone', 'gone', now());");

    // The heartbeat of 'slow' is in flight: its transaction has updated the row, not committed.
    let mut worker = db.client();
    let mut heartbeat = worker.transaction().expect("begin heartbeat");
    heartbeat
        .execute(
            "UPDATE jobdb.workers SET last_heartbeat_at = now() WHERE worker_id = 'slow'",
            &[],
        )
        .expect("heartbeat");
    let heartbeat_pid: i32 = heartbeat
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);

    let mut cmd = db.cmd();
    cmd.args(["--json", "unlock-stale-jobs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn unlock");

    // The unlock statement must wait for that heartbeat, not decide on the old row version.
    let mut observer = db.client();
    wait_until(
        "unlock to wait on the heartbeat's row lock",
        Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("unlock finished ({status}) without waiting for the in-flight heartbeat");
            }
            observer
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity a
                                 WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
                                   AND $1 = ANY(pg_blocking_pids(a.pid))
                                   AND a.query LIKE '%stale_workers%')",
                    &[&heartbeat_pid],
                )
                .expect("pg_stat_activity")
                .get::<_, bool>(0)
        },
    );
    heartbeat.commit().expect("commit heartbeat");

    let out = common::Run::from(child.wait_with_output().expect("unlock output"));
    out.expect(0);
    let report = reported(&out.json());
    assert!(
        !report.contains_key("slow"),
        "the heartbeating worker was reported: {report:?}"
    );
    assert_eq!(report.get("gone"), Some(&(10, 1)));
    let jobs = locks_by_holder(&mut setup, "jobdb.jobs");
    assert_eq!(
        jobs.get("slow"),
        Some(&10),
        "the heartbeating worker keeps its jobs"
    );
    assert_eq!(jobs.get("gone"), None);
    let queues = locks_by_holder(&mut setup, "jobdb.job_queues");
    assert_eq!(queues.get("slow"), Some(&1));
    assert_eq!(queues.get("gone"), None);
}

const STALE_AFTER: &str = "3s";

/// Shared record of what the simulated fleet did.
#[derive(Default)]
struct FleetLog {
    /// A live worker found its job taken from it when completing it.
    robbed: Vec<(String, i64)>,
    /// Jobs each killed worker held when it died.
    held_at_death: BTreeMap<String, Vec<i64>>,
}

fn connect(db: &TestDb) -> postgres::Client {
    db.client()
}

fn register(client: &mut postgres::Client, id: &str) {
    client
        .execute(
            "INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version) VALUES ($1, 'fleet', 1, '1.0.0', 1)",
            &[&id],
        )
        .expect("register");
}

fn claim(client: &mut postgres::Client, id: &str, n: i64) -> Vec<i64> {
    client
        .query(
            "UPDATE jobdb.jobs SET state = 'running', locked_by = $1, locked_at = now(),
                    attempts = attempts + 1, updated_at = now()
              WHERE id IN (SELECT id FROM jobdb.jobs WHERE state = 'queued' AND run_at <= now()
                            ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id",
            &[&id, &n],
        )
        .expect("claim")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Completes a job if this worker still holds it; records the completion in the same
/// transaction so the test can count completions.
fn complete(client: &mut postgres::Client, id: &str, job: i64) -> bool {
    let mut tx = client.transaction().expect("begin");
    let n = tx
        .execute(
            "UPDATE jobdb.jobs SET state = 'succeeded', locked_by = NULL, locked_at = NULL, updated_at = now()
              WHERE id = $1 AND locked_by = $2",
            &[&job, &id],
        )
        .expect("complete");
    if n == 1 {
        tx.execute(
            "INSERT INTO fleet_completions (job_id, worker_id) VALUES ($1, $2)",
            &[&job, &id],
        )
        .expect("record completion");
    }
    tx.commit().expect("commit");
    n == 1
}

fn all_done(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM jobdb.jobs WHERE state <> 'succeeded')",
            &[],
        )
        .expect("done?")
        .get(0)
}

#[test]
fn live_fleet_keeps_its_jobs_and_dead_workers_jobs_complete_exactly_once() {
    const JOBS: i64 = 400;
    const WORKERS: usize = 6;
    // Worker i dies after completing KILL_AFTER[i] jobs, holding DEATH_GRIP jobs.
    const KILL_AFTER: [Option<usize>; WORKERS] = [None, None, None, None, Some(5), Some(25)];
    const DEATH_GRIP: i64 = 3;

    let db = TestDb::initialized();
    let mut setup = db.client();
    setup
        .batch_execute(&format!(
            "CREATE TABLE fleet_completions (job_id bigint NOT NULL, worker_id text NOT NULL);
             -- Every release, as the database saw it: which job, held by whom.
             CREATE TABLE fleet_releases (job_id bigint NOT NULL, held_by text NOT NULL);
             CREATE FUNCTION fleet_log_release() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO fleet_releases VALUES (OLD.id, OLD.locked_by);
               RETURN NEW;
             END $$;
             CREATE TRIGGER fleet_log_release AFTER UPDATE ON jobdb.jobs FOR EACH ROW
               WHEN (OLD.state = 'running' AND NEW.state = 'queued') EXECUTE FUNCTION fleet_log_release();
             INSERT INTO jobdb.jobs (task_identifier, payload)
                  SELECT 'fleet', jsonb_build_object('n', g) FROM generate_series(1, {JOBS}) g;"
        ))
        .expect("fleet fixture");

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(FleetLog::default()));
    let mut handles = Vec::new();
    for (i, kill_after) in KILL_AFTER.iter().copied().enumerate() {
        let id = format!("fleet-{i}");
        let mut work = connect(&db);
        let mut beat = connect(&db);
        register(&mut work, &id);
        let alive = Arc::new(AtomicBool::new(true));
        let (stop_hb, alive_hb, id_hb) = (stop.clone(), alive.clone(), id.clone());
        handles.push(thread::spawn(move || {
            while alive_hb.load(Ordering::SeqCst) && !stop_hb.load(Ordering::SeqCst) {
                beat.execute(
                    "UPDATE jobdb.workers SET last_heartbeat_at = now() WHERE worker_id = $1",
                    &[&id_hb],
                )
                .expect("heartbeat");
                thread::sleep(Duration::from_millis(100));
            }
        }));
        let (stop, log) = (stop.clone(), log.clone());
        handles.push(thread::spawn(move || {
            let mut done = 0;
            while !stop.load(Ordering::SeqCst) {
                if kill_after == Some(done) {
                    // Killed: the heartbeat stops and the jobs it holds stay locked.
                    let held = claim(&mut work, &id, DEATH_GRIP);
                    alive.store(false, Ordering::SeqCst);
                    log.lock()
                        .expect("log")
                        .held_at_death
                        .insert(id.clone(), held);
                    return;
                }
                let jobs = claim(&mut work, &id, 1);
                if jobs.is_empty() {
                    if all_done(&mut work) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
                thread::sleep(Duration::from_millis(5));
                for job in jobs {
                    if complete(&mut work, &id, job) {
                        done += 1;
                    } else {
                        log.lock().expect("log").robbed.push((id.clone(), job));
                    }
                }
            }
        }));
    }

    // The operator's cron: unlock-stale-jobs again and again while the fleet runs.
    let mut reported_jobs = 0;
    let mut runs = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !all_done(&mut setup) {
        assert!(Instant::now() < deadline, "fleet did not finish in time");
        let out = db.run(&["--stale-after", STALE_AFTER, "--json", "unlock-stale-jobs"]);
        out.expect(0);
        reported_jobs += out.json()["jobs_released"].as_i64().expect("jobs_released");
        runs += 1;
        thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("fleet thread");
    }
    assert!(runs > 5, "unlock ran only {runs} times");

    let log = log.lock().expect("log");
    assert!(
        log.robbed.is_empty(),
        "live workers lost jobs: {:?}",
        log.robbed
    );
    let killed: BTreeSet<String> = log.held_at_death.keys().cloned().collect();
    assert_eq!(killed.len(), 2);
    let held: BTreeSet<i64> = log.held_at_death.values().flatten().copied().collect();
    assert_eq!(
        held.len() as i64,
        2 * DEATH_GRIP,
        "each killed worker held jobs"
    );

    // Every dead worker's job was released exactly once, and nothing else was.
    let releases: Vec<(i64, String)> = setup
        .query(
            "SELECT job_id, held_by FROM fleet_releases ORDER BY job_id",
            &[],
        )
        .expect("releases")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let released: BTreeSet<i64> = releases.iter().map(|r| r.0).collect();
    assert_eq!(
        released.len(),
        releases.len(),
        "a job was released twice: {releases:?}"
    );
    assert_eq!(
        released, held,
        "released jobs are exactly the dead workers' jobs"
    );
    assert!(
        releases.iter().all(|(_, by)| killed.contains(by)),
        "a live worker's job was released: {releases:?}"
    );
    assert_eq!(
        reported_jobs,
        releases.len() as i64,
        "reports match the releases"
    );

    // Every job completed exactly once, the released ones by live workers.
    let (completions, distinct): (i64, i64) = {
        let r = setup
            .query_one(
                "SELECT count(*), count(DISTINCT job_id) FROM fleet_completions",
                &[],
            )
            .expect("completions");
        (r.get(0), r.get(1))
    };
    assert_eq!((completions, distinct), (JOBS, JOBS));
    let by_dead: i64 = setup
        .query_one(
            "SELECT count(*) FROM fleet_completions WHERE job_id = ANY($1) AND worker_id = ANY($2)",
            &[
                &held.iter().copied().collect::<Vec<_>>(),
                &killed.iter().cloned().collect::<Vec<_>>(),
            ],
        )
        .expect("completions by dead")
        .get(0);
    assert_eq!(by_dead, 0);
}

#[track_caller]
fn worker<'a>(json: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let workers = json["workers"].as_array().map(|w| w.iter());
    let found = workers.and_then(|mut w| w.find(|w| w["worker_id"] == id));
    found.unwrap_or_else(|| panic!("worker {id} not reported: {json}"))
}
