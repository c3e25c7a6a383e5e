//! The embedded server: init, start, stop, restart, where its data directory is, and
//! who may run it (root runs it as the server user; a normal user gets a cluster of its own).

mod common;
use common::Exec;

use common::Victim;

use common::path_str;

use common::insert_job;
use common::is_root;
use common::run;
use common::scalar_i64;
use common::schema_exists;
use common::TestCluster;
use common::TestDb;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

/// The newest schema version this jobdbctl ships.
const LATEST: i64 = 3;

fn pid_of(c: &TestCluster) -> i32 {
    std::fs::read_to_string(c.pgdata().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid in postmaster.pid")
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
    init.expect(0).stdout_has("already exists");
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
    status.expect(6).stdout_has("down");
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
    assert_ne!(pid_of(&c), dead_pid as i32);
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
fn init_refuses_a_foreign_schema_and_unknown_versions() {
    let db = TestDb::empty();
    db.client()
        .exec("CREATE SCHEMA jobdb; CREATE TABLE jobdb.mine (x int);");
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
    r.expect(0).stdout_has("restarted");
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
    bad.expect(2).stderr_has("at least 1s");
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
    r.expect(6)
        .error_has("within 1s")
        .error_has("still starting");
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
        .arg(common::bin_for_other_users())
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
    r.expect(0).stderr_has("creating embedded cluster");
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

/// `jobdbctl ARGS` run from `cwd`, with only the cluster's config dir given.
/// Runs jobdbctl from `cwd` on the cluster at `data_dir`, a path as the operator typed it.
fn run_in(c: &TestCluster, cwd: &Path, data_dir: &str, args: &[&str]) -> common::Run {
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.current_dir(cwd).arg("--data-dir").arg(data_dir);
    common::run_with(cmd, args)
}

fn jobs(c: &TestCluster) -> i64 {
    scalar_i64(&mut c.client(), "SELECT count(*) FROM jobdb.jobs")
}

#[test]
fn a_relative_data_dir_is_recorded_absolute_and_restore_latest_finds_every_archive() {
    let c = TestCluster::started();
    let top = c.dir.path();
    let data = c.data_dir();
    std::fs::create_dir(top.join("backups")).expect("mkdir");
    let mut client = c.client();
    insert_job(&mut client);
    // An older archive, given the absolute path; then a newer one from the parent directory
    // with relative paths, as `cd /srv/jobs && jobdbctl --data-dir data backup` writes it.
    let from_root = |args: &[&str]| run_in(&c, Path::new("/"), path_str(&data), args);
    let older = from_root(&[
        "backup",
        "--json",
        "--output",
        &format!("{}/backups/", top.display()),
    ]);
    older.expect(0);
    insert_job(&mut client);
    let newest_jobs = jobs(&c);
    let newer = run_in(
        &c,
        top,
        "data",
        &["backup", "--json", "--output", "backups/"],
    );
    newer.expect(0);
    let newer_path = PathBuf::from(newer.json()["archive"].as_str().expect("archive"));
    assert!(newer_path.is_absolute(), "{newer_path:?}");
    assert!(newer_path.starts_with(top), "{newer_path:?}");

    let listing = from_root(&[
        "backups",
        "--dir",
        &format!("{}/backups", top.display()),
        "--json",
    ]);
    listing.expect(0);
    let servers: Vec<String> = listing
        .json()
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["server"].as_str().expect("server").to_string())
        .collect();
    assert_eq!(servers.len(), 2);
    let expected = format!("embedded cluster {}", data.join("psql").display());
    assert!(servers.iter().all(|s| *s == expected), "{servers:?}");

    insert_job(&mut client);
    drop(client);
    // From another directory, with a path that takes a detour: the newer archive.
    let detour = format!(
        "{}/../{}/./data",
        top.display(),
        top.file_name().and_then(|n| n.to_str()).expect("name")
    );
    let restore = run_in(
        &c,
        Path::new("/tmp"),
        &detour,
        &[
            "restore",
            "latest",
            "--dir",
            &format!("{}/backups", top.display()),
            "--yes",
            "--force",
            "--json",
        ],
    );
    restore.expect(0);
    assert_eq!(restore.json()["latest_archive"], path_str(&newer_path));
    assert_eq!(jobs(&c), newest_jobs);

    // Both count as archives of one cluster: --keep 1 removes the older.
    run_in(
        &c,
        top,
        "data",
        &[
            "backups", "prune", "--dir", "backups", "--keep", "1", "--yes",
        ],
    )
    .expect(0);
    let left: Vec<_> = std::fs::read_dir(top.join("backups"))
        .expect("list")
        .collect();
    assert_eq!(left.len(), 1);
    assert!(newer_path.exists());
}

#[test]
fn a_relative_data_dir_in_the_config_file_is_relative_to_the_file() {
    let c = TestCluster::started();
    c.write_config("data_dir = \"../data\"\n");
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.current_dir("/").args(["--json", "status"]);
    let status = common::run(cmd);
    status.expect(0);
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.current_dir("/").args(["--json", "show-params"]);
    let params = common::run(cmd);
    params.expect(0).stdout_has(path_str(&c.data_dir()));
}

#[test]
fn a_mistyped_data_dir_is_not_a_stopped_server() {
    let c = TestCluster::started();
    let typo = c.dir.path().join("dta");
    let typo_arg = path_str(&typo);
    for args in [
        vec!["status"],
        vec!["status", "--check"],
        vec!["backup", "--output", "/tmp/"],
        vec!["backup", "--mode", "cold", "--output", "/tmp/"],
        vec!["set-job-counter", "10"],
        vec!["stop"],
        vec!["restart"],
        vec!["start"],
    ] {
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("--data-dir").arg(typo_arg).args(&args);
        let run = common::run(cmd);
        run.expect(3);
        let line = run.one_line_error();
        assert!(
            line.contains("no cluster in") && line.contains(typo_arg) && !line.contains("start it"),
            "{args:?}: {line}"
        );
        assert!(!typo.exists(), "{args:?} created the mistyped directory");
    }
    // The real one is untouched and running.
    c.run(&["status"]).expect(0);
}

#[test]
fn start_reports_on_stdout_in_one_piece() {
    let c = TestCluster::new();
    let first = c.run(&["start", "--create"]);
    first.expect(0);
    assert!(
        first.stdout.contains("created the embedded cluster at")
            && first.stdout.contains("server started (pid"),
        "{}",
        first.stdout
    );
    assert!(!first.stderr.contains("server started"), "{}", first.stderr);
    let again = c.run(&["start"]);
    again.expect(0).stdout_has("server already running (pid");
    assert!(again.stderr.is_empty(), "{}", again.stderr);
}

/// The data directory's files that root reads or writes on `start`, each replaced by a
/// link (and a hard link) to a root-only file as the server user could: `start` refuses
/// or fails, and the file behind it keeps its content, mode and owner.
#[test]
fn root_start_never_writes_reads_or_chowns_through_the_server_users_links() {
    if !is_root() {
        eprintln!("skipped: the server user is another user only when root runs jobdbctl");
        return;
    }
    let cluster = TestCluster::started();
    cluster.run(&["stop"]).expect(0);
    let pgdata = cluster.pgdata();
    let victim = Victim::new(cluster.dir.path());
    for name in [
        "jobdbctl.conf",
        "postgresql.conf",
        "postmaster.pid",
        "jobdbctl-server.log",
    ] {
        let at = pgdata.join(name);
        let aside = pgdata.join(format!("{name}.aside"));
        let existed = at.exists();
        if existed {
            fs::rename(&at, &aside).expect("move aside");
        }
        for kind in ["symlink", "hard link"] {
            match kind {
                "symlink" => symlink(&victim.path, &at).expect("plant link"),
                _ => fs::hard_link(&victim.path, &at).expect("plant hard link"),
            }
            let run = cluster.run(&["start"]);
            assert_ne!(
                run.code, 0,
                "{name} ({kind}): start went ahead: {}",
                run.stderr
            );
            victim.untouched(&format!("{name} ({kind})"));
            fs::remove_file(&at).expect("remove planted link");
            // A server that started anyway would be stopped here; none may have.
            assert!(!pgdata.join("postmaster.pid").exists() || name == "postmaster.pid");
        }
        if existed {
            fs::rename(&aside, &at).expect("move back");
        }
    }
    // With every file back, the cluster starts as before.
    cluster.run(&["start"]).expect(0);

    // A link planted among the server's log files is not read (or printed) by `logs`.
    let log_link = pgdata.join("log/postgresql-2000-01-01_000000.log");
    symlink(&victim.path, &log_link).expect("plant log link");
    let run = cluster.run(&["logs", "--tail", "0"]);
    assert!(
        !run.stdout.contains("secret") && !run.stderr.contains("secret: do not"),
        "{run:?}"
    );
    run.expect(3);
    assert!(
        run.one_line_error()
            .contains("postgresql-2000-01-01_000000.log"),
        "{}",
        run.stderr
    );
    let purge = cluster.run(&["logs", "--purge", "--older-than", "1d"]);
    assert_ne!(purge.code, 0);
    victim.untouched("log link");
    fs::remove_file(&log_link).expect("remove");
    cluster.run(&["logs", "--tail", "5"]).expect(0);
}
