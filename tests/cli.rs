//! The command line itself: usage errors and configuration precedence, messages for
//! people, what is never printed (passwords, raw control characters), durations.

mod common;
use common::Exec;

use common::has_human_time;

use common::assert_has;

use common::scalar_i64;
use common::schema_exists;
use common::TestCluster;
use common::TestDb;

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
    bad.error_has("refused these credentials");
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
fn writing_commands_refuse_a_schema_newer_than_the_binary() {
    let db = TestDb::initialized();
    db.client().exec(
        "INSERT INTO jobdb.schema_migrations (version, name) VALUES (999, 'from the future')",
    );
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
            assert_has(line, "schema name");
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

#[test]
fn tractor_dbctl_flags_name_the_subcommand_and_change_nothing() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client.exec("SELECT setval('jobdb.jobs_id_seq', 41)");
    let cases: [(&[&str], &str); 13] = [
        (&["--status"], "jobdbctl status"),
        (&["--start"], "jobdbctl start"),
        (&["--start-for-engine"], "jobdbctl start"),
        (&["--stop"], "jobdbctl stop"),
        (
            &["--backup", "/srv/jobs.tar.gz"],
            "jobdbctl backup --output /srv/jobs.tar.gz",
        ),
        (&["--backup"], "jobdbctl backup --output FILE"),
        (
            &["--restore", "my jobs.tar.gz"],
            "jobdbctl restore 'my jobs.tar.gz'",
        ),
        (&["--destroy"], "jobdbctl destroy"),
        (&["--set-job-counter", "7"], "jobdbctl set-job-counter 7"),
        (&["--set-job-counter=9"], "jobdbctl set-job-counter 9"),
        (&["--show-params"], "jobdbctl show-params"),
        (&["--purge-jobs"], "purge-jobs"),
        (&["--vacuum"], "vacuum"),
    ];
    for (args, want) in cases {
        let run = db.run(args);
        run.expect(2);
        let line = run.one_line_error();
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(
            line.contains(args[0].split('=').next().expect("flag")),
            "{args:?}: names the flag: {line}"
        );
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert!(schema_exists(&mut client, "jobdb"), "--destroy destroyed");
    assert_eq!(
        scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq"),
        41,
        "--set-job-counter changed the counter"
    );
    // Another unknown flag keeps clap's own message and its suggestion.
    let typo = db.run(&["--stale-afte", "4m", "status"]);
    typo.expect(2).stderr_has("--stale-after");
}

#[test]
fn messages_read_as_english_with_plain_ranges_and_plurals() {
    let db = TestDb::with_queued(10);
    let mut client = db.client();
    let many = db.run(&["set-job-counter", "5"]);
    many.expect(3);
    let line = many.one_line_error();
    assert_has(line, "IDs 6 to 10 would be reused");
    let one = db.run(&["set-job-counter", "9"]);
    one.expect(3).error_has("ID 10 would be reused");
    db.run(&["set-job-counter", "500"]).expect(0);
    let lower = db.run(&["set-job-counter", "400"]);
    lower.expect(3);
    assert!(
        lower
            .one_line_error()
            .contains("IDs 401 to 500 would be reused"),
        "{}",
        lower.stderr
    );
    for r in [&many, &one, &lower] {
        assert!(!r.stderr.contains("..="), "{}", r.stderr);
    }
    assert_eq!(
        scalar_i64(&mut client, "SELECT last_value FROM jobdb.jobs_id_seq"),
        500
    );

    // One stale lock: singular nouns, and a time people read.
    client
        .exec("INSERT INTO jobdb.workers (worker_id, hostname, pid, last_heartbeat_at)
                  VALUES ('gone', 'render9', 1, now() - interval '2 hours');
             UPDATE jobdb.jobs SET state = 'running', locked_by = 'gone', locked_at = now() WHERE id = 1;");
    let dry = db.run(&["unlock-stale-jobs", "--dry-run"]);
    dry.expect(0).stdout_has("1 job lock and 0 queue locks");
    assert!(!dry.stdout.contains("(s)"), "{}", dry.stdout);
    assert!(has_human_time(&dry.stdout), "{}", dry.stdout);
    let check = db.run(&["status", "--check"]);
    check.expect(4).stdout_has("1 job and 0 queues are locked");
}

const ABSURD: [&str; 3] = ["300000y", "1000000000y", "18446744073709551615s"];

#[track_caller]
fn refused_as_usage(run: &common::Run, what: &str) {
    run.expect(2);
    // Flags are checked by clap ("error: invalid value …" and a usage hint), settings and
    // free-form values by jobdbctl (its one "jobdbctl: error:" line).
    let mut errors = run.stderr.lines().filter(|l| l.contains("error:"));
    let line = errors.next().unwrap_or_default();
    let one = !line.is_empty() && errors.next().is_none();
    assert!(one, "{what}: expected one error line: {}", run.stderr);
    assert!(
        line.contains("too long")
            || line.contains("invalid duration")
            || line.contains("retention window"),
        "{what}: the error does not say what is wrong with the duration: {line}"
    );
    assert!(
        !line.contains("out of range"),
        "{what}: raw SQL error: {line}"
    );
}

#[test]
fn absurd_durations_are_usage_errors_and_change_nothing() {
    let db = TestDb::populated_unlocked(300);
    let mut client = db.client();
    let jobs_before = scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs");
    let cluster = TestCluster::new();
    for value in ABSURD {
        let with_db: Vec<Vec<&str>> = vec![
            vec!["purge-jobs", "--older-than", value],
            vec!["unlock-stale-jobs", "--older-than", value],
            vec!["--stale-after", value, "unlock-stale-jobs", "--dry-run"],
            vec!["--stale-after", value, "status"],
            vec!["finalize-migration", "--all", "--statement-timeout", value],
            vec!["migrate", "--max-wait", value, "--dry-run"],
            vec!["backups", "prune", "--keep-within", value, "--yes"],
            vec![
                "backup",
                "--keep-within",
                value,
                "--output",
                "/nonexistent/x.tar.gz",
            ],
        ];
        for args in with_db {
            refused_as_usage(&db.run(&args), &args.join(" "));
        }
        let embedded: Vec<Vec<&str>> = vec![
            vec!["logs", "--since", value],
            vec!["logs", "--purge", "--older-than", value],
            vec!["start", "--timeout", value],
            vec!["stop", "--timeout", value],
        ];
        for args in embedded {
            refused_as_usage(&cluster.run(&args), &args.join(" "));
        }
        db.write_config(&format!("stale_after = \"{value}\"\n"));
        refused_as_usage(&db.run(&["status"]), "stale_after in jobdbctl.toml");
        db.remove_config();
    }
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.jobs"),
        jobs_before,
        "a refused purge removed jobs"
    );
    assert!(
        !cluster.pgdata().exists(),
        "a refused start created a cluster"
    );
}

#[test]
fn a_retention_window_shorter_than_a_minute_is_refused() {
    let db = TestDb::populated_unlocked(10);
    let dir = common::temp_dir("jdkeep");
    let out = dir.path().join("backups");
    std::fs::create_dir(&out).expect("mkdir");
    let out_arg = format!("{}/", out.display());
    for _ in 0..2 {
        db.run(&["backup", "--quiet", "--output", &out_arg])
            .expect(0);
    }
    let before = std::fs::read_dir(&out).expect("list").count();
    assert_eq!(before, 2);
    for window in ["0", "0s", "1ns", "59s"] {
        let run = db.run(&[
            "backups",
            "prune",
            "--dir",
            out.to_str().unwrap(),
            "--keep-within",
            window,
            "--yes",
        ]);
        refused_as_usage(&run, window);
        let run = db.run(&[
            "backup",
            "--quiet",
            "--output",
            &out_arg,
            "--keep-within",
            window,
        ]);
        refused_as_usage(&run, window);
    }
    assert_eq!(
        std::fs::read_dir(&out).expect("list").count(),
        before,
        "a refused window deleted or wrote archives"
    );
    // The smallest window allowed keeps what is younger than it.
    db.run(&[
        "backups",
        "prune",
        "--dir",
        out.to_str().unwrap(),
        "--keep-within",
        "1m",
        "--yes",
    ])
    .expect(0);
    assert_eq!(std::fs::read_dir(&out).expect("list").count(), before);
}
