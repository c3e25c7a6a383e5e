//! An operator's first hour: installing, reading the manual, running as the wrong user,
//! typing the render-farm tool's flags, starting/stopping/restarting with bounded waits, and
//! reading `status` — each against real servers where one is involved.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, scalar_i64, schema_exists, TestCluster, TestDb};

#[test]
fn tractor_dbctl_flags_name_the_subcommand_and_change_nothing() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client
        .batch_execute("SELECT setval('jobdb.jobs_id_seq', 41)")
        .expect("set counter");
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
    typo.expect(2);
    assert!(typo.stderr.contains("--stale-after"), "{}", typo.stderr);
}

fn pid_of(c: &TestCluster) -> i32 {
    std::fs::read_to_string(c.pgdata().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid in postmaster.pid")
}

/// Whether `pid` runs (a zombie that nobody reaped yet has exited).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

fn insert_job(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "INSERT INTO jobdb.jobs (task_identifier) VALUES ('t') RETURNING id",
            &[],
        )
        .expect("insert job")
        .get(0)
}

/// A file in the cluster the server must be able to read (it runs as `postgres` under root).
fn write_server_file(c: &TestCluster, name: &str, text: &str) {
    let path = c.pgdata().join(name);
    std::fs::write(&path, text).expect("write server file");
    common::chown_to_server_user(&path);
}

#[test]
fn start_refuses_an_explicit_data_dir_without_a_cluster() {
    let c = TestCluster::new();
    let typo = c.dir.path().join("dtaa");
    // From the flag, the environment and the config file alike.
    let flag = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("--data-dir").arg(&typo).arg("start");
        cmd
    });
    let env = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.env("JOBDBCTL_DATA_DIR", &typo).arg("start");
        cmd
    });
    c.write_config(&format!("data_dir = '{}'\n", typo.display()));
    let file = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("start");
        cmd
    });
    for (origin, r) in [
        ("--data-dir", &flag),
        ("JOBDBCTL_DATA_DIR", &env),
        ("data_dir in", &file),
    ] {
        r.expect(3);
        let line = r.one_line_error();
        assert!(
            line.contains(origin) && line.contains("jobdbctl init") && line.contains("--create"),
            "{origin}: {line}"
        );
        assert!(
            !r.stderr.contains("creating embedded cluster"),
            "{}",
            r.stderr
        );
        assert!(!typo.exists(), "{origin}: created {}", typo.display());
    }
    // restart never creates either.
    let restart = run({
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("restart");
        cmd
    });
    restart.expect(3);
    assert!(restart.one_line_error().contains("jobdbctl init"));
    assert!(!typo.exists());

    // Asked to create: a fresh cluster with the job schema, job IDs from 1.
    std::fs::remove_file(c.configdir.join("jobdbctl.toml")).expect("remove config");
    c.run(&["start", "--create"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 1);
    // From then on a plain start is fine.
    c.run(&["stop"]).expect(0);
    c.run(&["start"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 2);
}

#[test]
fn restart_gives_a_new_server_process_and_keeps_the_data() {
    let c = TestCluster::started();
    let id = insert_job(&mut c.client());
    let before = pid_of(&c);
    let r = c.run(&["restart"]);
    r.expect(0);
    assert!(r.stdout.contains("restarted"), "{}", r.stdout);
    let after = pid_of(&c);
    assert_ne!(before, after);
    assert!(
        !process_alive(before),
        "old postmaster {before} still alive"
    );
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );

    c.run(&["stop"]).expect(0);
    let r = c.run(&["--json", "restart"]);
    r.expect(0);
    let report = r.json();
    assert_eq!(report["was_running"], false);
    assert_eq!(report["server"], "running");
    assert_eq!(report["pid"], pid_of(&c));
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );
}

#[test]
fn stop_timeout_gives_up_with_a_clear_exit_and_the_server_keeps_running() {
    let c = TestCluster::started();
    let pid = pid_of(&c);
    // A smart shutdown waits for this session to end, which it never does by itself.
    let mut held = c.client();
    let r = c.run(&["stop", "--mode", "smart", "--timeout", "1s"]);
    r.expect(1);
    let line = r.one_line_error();
    assert!(
        line.contains("still running after 1s") && line.contains("--mode fast"),
        "{line}"
    );
    assert!(process_alive(pid), "server exited");
    assert_eq!(
        scalar_i64(&mut held, "SELECT 1::int8"),
        1,
        "session was cut"
    );
    // The fast stop ends it: the waiting session is rolled back and the server exits.
    c.run(&["stop", "--timeout", "30s"]).expect(0);
    assert!(
        !process_alive(pid),
        "stop returned before the server exited"
    );
    assert!(held.simple_query("SELECT 1").is_err(), "session survived");

    let bad = c.run(&["stop", "--timeout", "0s"]);
    bad.expect(2);
    assert!(bad.stderr.contains("at least 1s"), "{}", bad.stderr);
}

#[test]
fn start_timeout_gives_up_with_a_clear_exit_while_the_server_recovers() {
    let c = TestCluster::started();
    c.run(&["stop"]).expect(0);
    // Archive recovery whose restore_command takes longer than the wait: the server cannot
    // accept connections before its first call returns.
    write_server_file(&c, "recovery.signal", "");
    let conf = c.pgdata().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read conf");
    text.push_str("\nrestore_command = 'sleep 60; false'\n");
    std::fs::write(&conf, text).expect("write conf");

    let r = c.run(&["start", "--timeout", "1s"]);
    r.expect(6);
    let line = r.one_line_error();
    assert!(
        line.contains("within 1s") && line.contains("still starting"),
        "{line}"
    );
    let pid = pid_of(&c);
    assert!(process_alive(pid), "the server should go on starting");
    c.run(&["stop", "--mode", "immediate"]).expect(0);
    assert!(!process_alive(pid));
}

/// `jobdbctl ARGS` as the unprivileged `nobody`, with a home of its own and nothing from our
/// environment.
fn as_nobody(home: &Path, args: &[&str]) -> common::Run {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", home.display()))
        .arg(common::BIN)
        .args(args)
        .stdin(std::process::Stdio::null());
    run(cmd)
}

/// A home directory `nobody` owns, inside a temp dir that is removed after the test.
fn nobody_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir(&home).expect("create home");
    let ok = Command::new("chown")
        .args(["nobody:nogroup"])
        .arg(&home)
        .status()
        .expect("chown")
        .success();
    assert!(ok, "chown home");
    home
}

#[test]
fn a_normal_user_pointed_at_roots_cluster_is_told_whose_it_is() {
    if !common::is_root() {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    let c = TestCluster::started();
    let id = insert_job(&mut c.client());
    let pid = pid_of(&c);
    let home = nobody_home(c.dir.path());
    let data_dir = c.data_dir();
    let data_dir = data_dir.to_str().expect("utf-8 path");
    for args in [
        &["status"][..],
        &["status", "--check"],
        &["start"],
        &["start", "--create"],
        &["stop"],
        &["restart"],
        &["init"],
        &["show-params"],
    ] {
        let mut full = vec!["--data-dir", data_dir];
        full.extend_from_slice(args);
        let r = as_nobody(&home, &full);
        r.expect(2);
        let line = r.one_line_error();
        assert!(
            line.contains("belongs to postgres")
                && line.contains("run jobdbctl as root (or as postgres)"),
            "{args:?}: {line}"
        );
        assert!(!r.stdout.contains("down"), "{args:?}: {}", r.stdout);
        assert!(
            !r.stderr.contains("creating embedded cluster"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nothing was touched: same server, same data.
    assert_eq!(pid_of(&c), pid);
    assert!(process_alive(pid));
    assert_eq!(
        scalar_i64(&mut c.client(), "SELECT max(id) FROM jobdb.jobs"),
        id
    );

    // A data dir closed to others names its owner instead.
    let mode = |m: u32| {
        std::fs::set_permissions(c.data_dir(), std::fs::Permissions::from_mode(m))
            .expect("chmod data dir")
    };
    mode(0o700);
    let r = as_nobody(&home, &["--data-dir", data_dir, "status"]);
    mode(0o711);
    r.expect(2);
    let line = r.one_line_error();
    assert!(
        line.contains("belongs to root") && line.contains("run jobdbctl as root"),
        "{line}"
    );
    assert!(!r.stdout.contains("down"), "{}", r.stdout);
}

#[test]
fn a_normal_user_gets_a_cluster_of_its_own_in_the_default_data_dir() {
    if !common::is_root() {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    let dir = common::temp_dir("jn");
    let home = nobody_home(dir.path());
    let pgdata = home.join(".local/share/jobdbctl/psql");
    nobody_watchdog(&pgdata);
    // The README's first command, on a machine with no configuration at all.
    let r = as_nobody(&home, &["start"]);
    r.expect(0);
    assert!(
        r.stderr.contains("creating embedded cluster"),
        "{}",
        r.stderr
    );
    assert!(pgdata.join("PG_VERSION").is_file());
    let status = as_nobody(&home, &["--json", "status"]);
    status.expect(0);
    assert_eq!(status.json()["schema_version"], 3);
    assert_eq!(status.json()["jobs"]["total"], 0);
    as_nobody(&home, &["stop"]).expect(0);
    assert!(!pgdata.join("postmaster.pid").exists());
}

/// Stops `nobody`'s server in `pgdata` once this test process is gone, whatever happened.
fn nobody_watchdog(pgdata: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         runuser -u nobody -- {pg_ctl} -D {pgdata} -m immediate stop >/dev/null 2>&1",
        pid = std::process::id(),
        pg_ctl = common::pg_bindir().join("pg_ctl").display(),
        pgdata = pgdata.display()
    );
    Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("start watchdog");
}
