//! Foundation: embedded cluster lifecycle, status, show-params, set-job-counter, destroy,
//! configuration and error paths — all against real PostgreSQL servers.

mod common;

use common::{insert_job, scalar_i64, schema_exists};

use common::generate::Spec;
use common::{TestCluster, TestDb};

/// The newest schema version this jobdbctl ships.
const LATEST: i64 = 3;

fn pid_of(cluster: &TestCluster) -> String {
    std::fs::read_to_string(cluster.pgdata().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn fresh_start_creates_the_latest_schema_with_no_jobs() {
    let c = TestCluster::started();
    let mut client = c.client();
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT max(version)::int8 FROM jobdb.schema_migrations"
        ),
        LATEST
    );
    let status = c.run(&["status", "--json"]);
    status.expect(0);
    let report = status.json();
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["profile"], "jobdb");
    assert_eq!(report["jobs"]["total"], 0);
    assert_eq!(report["ready_to_upgrade"], true);
}

#[test]
fn start_twice_is_harmless_and_init_is_idempotent() {
    let c = TestCluster::started();
    let pid = pid_of(&c);
    c.run(&["start"]).expect(0);
    assert_eq!(pid_of(&c), pid, "second start must not restart the server");
    let id = insert_job(&mut c.client());
    let init = c.run(&["init"]);
    init.expect(0);
    assert!(init.stdout.contains("already exists"), "{}", init.stdout);
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT count(*) FROM jobdb.jobs"),
        1
    );
    assert_eq!(id, 1);
}

#[test]
fn stopped_server_is_reported_down_with_exit_6() {
    let c = TestCluster::started();
    c.run(&["stop"]).expect(0);
    assert!(
        !c.pgdata().join("postmaster.pid").exists(),
        "clean shutdown removes the pid file"
    );
    let status = c.run(&["status"]);
    status.expect(6);
    assert!(status.stdout.contains("down"), "{}", status.stdout);
    c.run(&["status", "--check"]).expect(4);
    let counter = c.run(&["set-job-counter", "10"]);
    counter.expect(6);
    assert!(counter.one_line_error().contains("jobdbctl start"));
    c.run(&["stop"]).expect(0);
}

#[test]
fn stale_pid_file_from_a_crashed_server_is_removed_on_start() {
    let c = TestCluster::started();
    c.run(&["stop", "--mode", "immediate"]).expect(0);
    // A crash leaves postmaster.pid behind, naming a process that no longer exists.
    let pid_file = c.pgdata().join("postmaster.pid");
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = child.id();
    child.wait().expect("wait");
    std::fs::write(&pid_file, format!("{dead_pid}\n{}\n", c.pgdata().display()))
        .expect("write pid");
    c.run(&["start"]).expect(0);
    c.run(&["status"]).expect(0);
    assert_ne!(pid_of(&c), dead_pid.to_string());
}

#[test]
fn port_conflict_is_a_clear_error() {
    let c = TestCluster::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    c.write_config(&format!("listen_addresses = '127.0.0.1'\nport = {port}\n"));
    let start = c.run(&["start", "--create"]);
    start.expect(6);
    let line = start.one_line_error();
    assert!(
        line.contains("did not start") && line.contains("port"),
        "{line}"
    );
    drop(listener);
}

#[test]
fn set_job_counter_refuses_reuse_and_raises() {
    let db = TestDb::initialized();
    let mut client = db.client();
    for _ in 0..10 {
        insert_job(&mut client);
    }
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
    client
        .batch_execute("DELETE FROM jobdb.jobs WHERE id > 10")
        .expect("delete");
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
    let db = TestDb::initialized();
    let mut client = db.client();
    for _ in 0..5 {
        insert_job(&mut client);
    }
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
        .batch_execute(
            "UPDATE jobdb.jobs SET state = 'queued', locked_by = NULL, locked_at = NULL WHERE locked_by LIKE 'dead-%';
             UPDATE jobdb.job_queues SET locked_by = NULL, locked_at = NULL WHERE locked_by LIKE 'dead-%';
             UPDATE jobdb.batched_background_migrations SET status = 3;",
        )
        .expect("clean up");
    db.run(&["status", "--check"]).expect(0);
}

#[test]
fn status_estimates_large_tables_and_exact_counts_on_request() {
    let db = TestDb::populated(&Spec::jobs(60_000));
    let mut client = db.client();
    client.batch_execute("ANALYZE jobdb.jobs").expect("analyze");

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
    human.expect(0);
    assert!(human.stdout.contains("estimated"), "{}", human.stdout);
}

#[test]
fn unknown_config_key_is_named() {
    let db = TestDb::initialized();
    db.write_config("stale_afterr = '5m'\n");
    let r = db.run(&["status"]);
    r.expect(2);
    assert!(r.one_line_error().contains("stale_afterr"), "{}", r.stderr);
}

#[test]
fn config_precedence_is_flag_then_env_then_file() {
    let db = TestDb::initialized();
    db.write_config("stale_after = '1m'\n");
    let source_of = |r: &common::Run, name: &str| -> (String, String) {
        let params = r.json()["params"].as_array().expect("params").clone();
        let p = params
            .iter()
            .find(|p| p["name"] == name)
            .expect("param")
            .clone();
        (
            p["value"].as_str().unwrap_or("").to_string(),
            p["source"].as_str().unwrap_or("").to_string(),
        )
    };
    let from_file = db.run(&["show-params", "--json"]);
    from_file.expect(0);
    let (value, source) = source_of(&from_file, "stale_after");
    assert_eq!(value, "1m");
    assert!(source.starts_with("file "), "{source}");

    let from_flag = db.run(&["show-params", "--json", "--stale-after", "90s"]);
    let (value, source) = source_of(&from_flag, "stale_after");
    assert_eq!((value.as_str(), source.as_str()), ("1m 30s", "flag"));

    // The environment beats the file for the database URL; the flag beats the environment.
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.env("JOBDBCTL_DATABASE_URL", db.url())
        .args(["show-params", "--json"]);
    let from_env = common::run(cmd);
    from_env.expect(0);
    assert_eq!(
        source_of(&from_env, "database_url").1,
        "env JOBDBCTL_DATABASE_URL"
    );
    let mut cmd = db.cmd();
    cmd.env(
        "JOBDBCTL_DATABASE_URL",
        "postgresql://nobody@127.0.0.1:1/none",
    )
    .args(["show-params", "--json"]);
    let flag_wins = common::run(cmd);
    flag_wins.expect(0);
    assert_eq!(source_of(&flag_wins, "database_url").1, "flag");
}

#[test]
fn unreachable_server_is_exit_6_naming_the_target() {
    let port = common::free_port();
    let configdir = common::temp_dir("jc");
    let mut cmd = common::jobdbctl(configdir.path());
    cmd.args([
        "--database-url",
        &format!("postgresql://ops@127.0.0.1:{port}/jobs"),
        "status",
        "--check",
    ]);
    common::run(cmd).expect(4);
    let mut cmd = common::jobdbctl(configdir.path());
    cmd.args([
        "--database-url",
        &format!("postgresql://ops@127.0.0.1:{port}/jobs"),
        "set-job-counter",
        "5",
    ]);
    let r = common::run(cmd);
    r.expect(6);
    assert!(
        r.one_line_error()
            .contains(&format!("postgresql://ops@127.0.0.1:{port}/jobs")),
        "{}",
        r.stderr
    );
}

#[test]
fn passwords_never_appear_in_output() {
    let db = TestDb::initialized();
    let secret = "s3cr3t-Pa55word";
    let role = format!("{}_op", db.name);
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{secret}';"
        ))
        .expect("create role");
    let port = common::shared().tcp_port;
    let url = format!("postgresql://{role}@127.0.0.1:{port}/{}", db.name);

    // PGPASSWORD works and is never echoed, even with SQL logging.
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.env("PGPASSWORD", secret)
        .args(["--database-url", &url, "-v", "status"]);
    let ok = common::run(cmd);
    ok.expect(0);
    assert!(!ok.stdout.contains(secret) && !ok.stderr.contains(secret));

    // A pgpass file works too.
    let pgpass = db.configdir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:*:{role}:{secret}\n")).expect("pgpass");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.env("PGPASSFILE", &pgpass)
        .args(["--database-url", &url, "show-params"]);
    let via_pgpass = common::run(cmd);
    via_pgpass.expect(0);
    assert!(!via_pgpass.stdout.contains(secret) && !via_pgpass.stderr.contains(secret));

    // A wrong password in the URL: exit 6, and neither password is shown.
    let bad_url = format!(
        "postgresql://{role}:wrong-{secret}@127.0.0.1:{port}/{}",
        db.name
    );
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.args(["--database-url", &bad_url, "show-params"]);
    let bad = common::run(cmd);
    bad.expect(6);
    assert!(
        !bad.stdout.contains(secret) && !bad.stderr.contains(secret),
        "{}{}",
        bad.stdout,
        bad.stderr
    );
    assert!(
        bad.stderr.contains("visible to other users"),
        "warns about argv passwords"
    );
    assert!(
        bad.one_line_error().contains("refused these credentials"),
        "{}",
        bad.stderr
    );
    // status tells a refused login from a server that is down.
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.env("PGPASSWORD", format!("wrong-{secret}"))
        .args(["--database-url", &url, "status"]);
    let refused = common::run(cmd);
    refused.expect(6);
    assert!(
        refused
            .stdout
            .contains("server: up, but authentication failed")
            && !refused.stdout.contains("down"),
        "{}",
        refused.stdout
    );
    assert!(!refused.stdout.contains(secret) && !refused.stderr.contains(secret));

    // A password in the config file is masked by show-params.
    db.write_config(&format!(
        "database_url = 'postgresql://{role}:{secret}@127.0.0.1:{port}/{}'\n",
        db.name
    ));
    let masked = common::run({
        let mut c = common::jobdbctl(db.configdir.path());
        c.args(["show-params"]);
        c
    });
    masked.expect(0);
    assert!(!masked.stdout.contains(secret) && !masked.stderr.contains(secret));
    assert!(masked.stdout.contains("********"));
}

#[test]
fn remote_targets_refuse_cluster_commands() {
    let db = TestDb::initialized();
    for args in [
        &["start"][..],
        &["stop"],
        &["destroy", "--cluster", "--yes"],
    ] {
        let r = db.run(args);
        r.expect(2);
        assert!(
            r.one_line_error().contains("embedded cluster only"),
            "{}",
            r.stderr
        );
    }
    assert!(schema_exists(&mut db.client(), "jobdb"));
}

#[test]
fn init_refuses_a_foreign_schema_and_unknown_versions() {
    let db = TestDb::empty();
    db.client()
        .batch_execute("CREATE SCHEMA jobdb; CREATE TABLE jobdb.mine (x int);")
        .expect("foreign");
    let r = db.run(&["init"]);
    r.expect(3);
    assert!(r.one_line_error().contains("not a jobdbctl job schema"));
    db.run(&["init", "--schema", "other", "--schema-version", "99"])
        .expect(2);
    assert!(!schema_exists(&mut db.client(), "other"));
    db.run(&["init", "--schema", "other"]).expect(0);
    assert!(schema_exists(&mut db.client(), "other"));
    db.run(&["--schema", "other", "status", "--check"])
        .expect(0);
}

#[test]
fn writing_commands_refuse_a_schema_newer_than_the_binary() {
    let db = TestDb::initialized();
    db.client()
        .batch_execute(
            "INSERT INTO jobdb.schema_migrations (version, name) VALUES (999, 'from the future')",
        )
        .expect("future version");
    let r = db.run(&["set-job-counter", "50"]);
    r.expect(3);
    assert!(r.one_line_error().contains("999"));
    db.run(&["status", "--check"]).expect(4);
}

#[test]
fn bad_invocations_never_panic() {
    let db = TestDb::initialized();
    let cases: &[&[&str]] = &[
        &["--profile", "nosuch", "status"],
        &["status", "--stale-after", "soon"],
        &["set-job-counter"],
        &["destroy", "--cluster"],
        &["nosuchcommand"],
        &["--schema", "missing", "set-job-counter", "5"],
    ];
    for args in cases {
        let r = db.run(args);
        assert!(r.code != 0, "{args:?} should fail");
        assert!(
            !r.stderr.contains("panicked"),
            "{args:?} panicked: {}",
            r.stderr
        );
        assert!(!r.stderr.trim().is_empty(), "{args:?} gave no message");
    }
}

#[test]
fn bad_schema_names_are_usage_errors_before_any_sql() {
    let db = TestDb::initialized();
    let long = "s".repeat(64);
    for name in ["", long.as_str()] {
        for command in [
            &["status"][..],
            &["set-job-counter", "5"],
            &["backup", "-o", "-"],
        ] {
            let mut args = vec!["--schema", name];
            args.extend_from_slice(command);
            let r = db.run(&args);
            r.expect(2);
            let line = r.one_line_error();
            assert!(line.contains("schema name"), "{line}");
            assert!(!line.contains("ERROR"), "a raw SQL error leaked: {line}");
        }
    }
}

#[test]
fn terminal_control_sequences_from_the_database_are_escaped() {
    let db = TestDb::initialized();
    let mut client = db.client();
    let hostile = format!("evil\u{1b}]0;owned\u{7}\u{1b}[2J{}", "w".repeat(500));
    client
        .execute(
            "INSERT INTO jobdb.workers (worker_id, hostname, version, schema_version, started_at, last_heartbeat_at)
             VALUES ($1, $1, '1.0', 3, now(), now() - interval '1 hour')",
            &[&hostile],
        )
        .expect("insert worker");
    for args in [&["status"][..], &["unlock-stale-jobs", "--dry-run"]] {
        let r = db.run(args);
        assert!(r.code == 0 || r.code == 4, "{args:?}: {}", r.stderr);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{7}'),
            "{args:?} printed raw control characters"
        );
        assert!(
            !all.contains(&"w".repeat(200)),
            "{args:?}: long id not capped"
        );
    }
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.workers"),
        1
    );
}

#[test]
fn concurrent_inits_create_the_schema_once() {
    let db = TestDb::empty();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = db.cmd();
            cmd.arg("init");
            cmd.spawn().expect("spawn init")
        })
        .collect();
    for mut child in runs {
        assert!(child.wait().expect("wait").success());
    }
    let mut client = db.client();
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.schema_migrations"),
        LATEST
    );
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.batched_background_migrations"
        ),
        1,
        "version 2 queues its backfill once"
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    for args in [&["completions", "bash"][..], &["man"]] {
        let mut child = std::process::Command::new(common::BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
