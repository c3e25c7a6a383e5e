//! Runbooks that cannot go wrong: the render-farm downgrade runbook end to end (destroy, then
//! restore an older archive) on a remote-style database and on the embedded cluster, the
//! job-ID high-water mark that survives both, `job-logs`, `show-params` without a job
//! schema, live-worker refusals that say until when a worker counts as live, and the
//! destroy/restore prompts answered through a real pseudo-terminal.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use common::{insert_job, scalar_i64, schema_exists, Run, TestCluster, TestDb};

/// The last used job ID as the sequence itself has it.
fn counter(client: &mut postgres::Client) -> i64 {
    scalar_i64(
        client,
        "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM jobdb.jobs_id_seq",
    )
}

/// The high-water mark stored on a server for the schema `jobdb`.
fn server_mark(client: &mut postgres::Client) -> Option<i64> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('jobdbctl.job_id_high_water') IS NOT NULL",
            &[],
        )
        .expect("catalog")
        .get(0);
    if !exists {
        return None;
    }
    client
        .query_opt(
            "SELECT last_used_job_id FROM jobdbctl.job_id_high_water WHERE schema_name = 'jobdb'",
            &[],
        )
        .expect("read mark")
        .map(|r| r.get(0))
}

fn file_mark(data_dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(data_dir.join("job-id-high-water.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).expect("mark file is JSON");
    json["schemas"]["jobdb"]["last_used_job_id"].as_i64()
}

/// A parameter's JSON value: numbers are JSON numbers, unset values null.
fn param(run: &Run, name: &str) -> Option<serde_json::Value> {
    run.json()["params"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["value"].clone())
}

#[test]
fn downgrade_runbook_on_a_remote_database_never_reuses_ids() {
    let db = TestDb::initialized();
    let mut client = db.client();
    let dir = common::temp_dir("rb");
    let old = dir.path().join("before-upgrade.tar.gz");
    common::insert_jobs(&mut client, 3);
    db.run(&["set-job-counter", "1000"]).expect(0);
    db.run(&["backup", "--output", path_str(&old)]).expect(0);
    // Jobs submitted after the backup, then the counter the issue names.
    assert_eq!(insert_job(&mut client), 1001);
    db.run(&["set-job-counter", "5000"]).expect(0);

    // destroy prints the last used ID and records it where destroy cannot reach.
    let destroyed = db.run(&["destroy", "--yes"]);
    destroyed
        .expect(0)
        .stdout_has("last used job ID 5000, recorded");
    assert!(!schema_exists(&mut client, "jobdb"));
    assert_eq!(server_mark(&mut client), Some(5000));

    // show-params works without the schema and shows the mark.
    let params = db.run(&["show-params", "--json"]);
    params.expect(0);
    assert_eq!(
        param(&params, "job_id_high_water"),
        Some(serde_json::json!(5000))
    );
    let mark_row = params.json()["params"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "job_id_high_water")
        .cloned()
        .expect("mark row");
    assert_eq!(mark_row["schema"], "jobdb");
    let human = db.run(&["show-params"]);
    human.stdout_has("5000 (schema \"jobdb\")");

    // Without --avoid-id-reuse: the backup's counter, and a warning naming the IDs.
    let plain = db.run(&["restore", path_str(&old), "--yes"]);
    plain.expect(0);
    assert!(
        plain
            .stderr
            .contains("IDs 1001 to 5000 were handed out before"),
        "{}",
        plain.stderr
    );
    assert!(
        plain
            .stderr
            .contains("job-logs --dir LOG_DIR --above 1000 --delete"),
        "{}",
        plain.stderr
    );
    assert!(!plain.stderr.contains("..="), "{}", plain.stderr);
    plain.stdout_has("job-ID high-water mark 5000");
    assert_eq!(counter(&mut client), 1000);
    assert_eq!(server_mark(&mut client), Some(5000));

    // set-job-counter below the mark is refused like below max(id), and changes nothing.
    let low = db.run(&["set-job-counter", "2000"]);
    low.expect(3).error_has("IDs 2001 to 5000");
    assert_eq!(counter(&mut client), 1000);

    // The runbook's order again, this time with --avoid-id-reuse: the next job gets 5001.
    let again = db.run(&["--json", "destroy", "--yes"]);
    again.expect(0);
    assert_eq!(again.json()["last_used_job_id"], 1000);
    assert_eq!(again.json()["job_id_high_water"], 5000);
    assert_eq!(again.json()["high_water_recorded"], true);
    assert!(!schema_exists(&mut client, "jobdb"));
    let avoided = db.run(&[
        "--json",
        "restore",
        path_str(&old),
        "--yes",
        "--avoid-id-reuse",
    ]);
    avoided.expect(0);
    let report = avoided.json();
    assert_eq!(report["last_used_job_id"], 5000);
    assert_eq!(report["counter_raised_from"], 1000);
    assert_eq!(report["reused_job_ids"], serde_json::Value::Null);
    assert_eq!(insert_job(&mut client), 5001);
    // Jobs submitted after the backup are gone, as the runbook says.
    assert_eq!(
        scalar_i64(
            &mut client,
            "SELECT count(*) FROM jobdb.jobs WHERE id = 1001"
        ),
        0
    );

    // The mark is not part of the job schema's backups.
    let later = dir.path().join("later.tar.gz");
    db.run(&["backup", "--output", path_str(&later)]).expect(0);
    let verified = db.run(&["--json", "verify", path_str(&later)]);
    verified.expect(0);
    let tables = verified.json()["tables"].to_string();
    assert!(!tables.contains("high_water"), "{tables}");
    assert_eq!(server_mark(&mut client), Some(5001));
}

#[test]
fn downgrade_runbook_on_the_embedded_cluster_survives_destroy_cluster() {
    let c = TestCluster::started();
    let mut client = c.client();
    common::insert_jobs(&mut client, 3);
    c.run(&["set-job-counter", "1000"]).expect(0);
    // The default destination: the backups directory inside the data dir.
    let backup = c.run(&["--json", "backup"]);
    backup.expect(0);
    let old = PathBuf::from(backup.json()["archive"].as_str().expect("archive path"));
    assert!(old.starts_with(c.data_dir().join("backups")));
    c.run(&["set-job-counter", "5000"]).expect(0);
    drop(client);

    // The server is stopped, as the runbook has it; destroy --cluster reads the counter anyway.
    c.run(&["stop"]).expect(0);
    let destroyed = c.run(&["destroy", "--cluster", "--yes"]);
    destroyed
        .expect(0)
        .stdout_has("last used job ID 5000, recorded");
    assert!(!c.pgdata().exists());
    assert!(old.is_file(), "destroy --cluster must keep the backups");
    assert_eq!(file_mark(&c.data_dir()), Some(5000));
    let mode = std::fs::metadata(c.data_dir().join("job-id-high-water.json"))
        .expect("mark file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // With the server gone, the mark is still there to read.
    let mark = c.run(&["show-params", "job_id_high_water"]);
    mark.expect(0);
    assert_eq!(mark.stdout.trim(), "5000");

    c.run(&["init"]).expect(0);
    let mut client = c.client();
    let plain = c.run(&["restore", path_str(&old), "--yes"]);
    plain.expect(0);
    assert!(
        plain
            .stderr
            .contains("IDs 1001 to 5000 were handed out before"),
        "{}",
        plain.stderr
    );
    assert_eq!(counter(&mut client), 1000);
    assert_eq!(
        c.run(&["show-params", "last_used_job_id"]).stdout.trim(),
        "1000"
    );

    c.run(&[
        "restore",
        path_str(&old),
        "--yes",
        "--force",
        "--avoid-id-reuse",
    ])
    .expect(0);
    assert_eq!(insert_job(&mut client), 5001);
    assert_eq!(file_mark(&c.data_dir()), Some(5000));
    // A read-only command records a higher counter it sees.
    c.run(&["show-params"]).expect(0);
    assert_eq!(file_mark(&c.data_dir()), Some(5001));
}

#[test]
fn cold_restore_avoids_id_reuse_too() {
    let c = TestCluster::started();
    let mut client = c.client();
    insert_job(&mut client);
    c.run(&["set-job-counter", "1000"]).expect(0);
    let dir = common::temp_dir("rb");
    let cold = dir.path().join("cold.tar.gz");
    c.run(&["backup", "--mode", "cold", "--output", path_str(&cold)])
        .expect(0);
    let mut client = c.client();
    c.run(&["set-job-counter", "5000"]).expect(0);
    drop(client);

    // The running server's counter joins the mark before the cluster is replaced.
    let plain = c.run(&["restore", path_str(&cold), "--yes", "--force"]);
    plain.expect(0);
    assert!(
        plain
            .stderr
            .contains("IDs 1001 to 5000 were handed out before"),
        "{}",
        plain.stderr
    );
    assert_eq!(file_mark(&c.data_dir()), Some(5000));
    client = c.client();
    assert_eq!(counter(&mut client), 1000);
    drop(client);

    // A stopped cluster: started for the moment it takes to set the counter, stopped again.
    c.run(&["stop"]).expect(0);
    let avoided = c.run(&[
        "--json",
        "restore",
        path_str(&cold),
        "--yes",
        "--force",
        "--avoid-id-reuse",
    ]);
    avoided.expect(0);
    assert_eq!(avoided.json()["last_used_job_id"], 5000);
    assert!(!c.pgdata().join("postmaster.pid").exists());
    c.run(&["start"]).expect(0);
    assert_eq!(insert_job(&mut c.client()), 5001);
}

#[test]
fn show_params_works_without_a_job_schema() {
    let db = TestDb::empty();
    let r = db.run(&["show-params", "--json"]);
    r.expect(0);
    assert_eq!(r.json()["error"], serde_json::Value::Null);
    assert!(param(&r, "profile (detected)")
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("profile row")
        .starts_with("none"));
    assert_eq!(
        param(&r, "job_id_high_water"),
        Some(serde_json::Value::Null)
    );
    assert_eq!(param(&r, "port"), Some(serde_json::json!(5432)));
    assert!(param(&r, "data_dir").is_some());
    let human = db.run(&["show-params"]);
    human.expect(0).stdout_has("jobdbctl init");
    // A value that needs a schema is a clear error for a script, not an empty line.
    let missing = db.run(&["show-params", "last_used_job_id"]);
    missing.expect(1);
    assert!(missing.one_line_error().contains("last_used_job_id"));
    db.run(&["show-params", "no_such_param"]).expect(2);
    db.run(&["--profile", "graphile-worker", "show-params"])
        .expect(0);
    // Showing it created nothing on the server.
    assert_eq!(server_mark(&mut db.client()), None);
    assert!(!schema_exists(&mut db.client(), "jobdbctl"));

    // After a destroy the mark is there, and what a new schema would reuse.
    db.run(&["init"]).expect(0);
    db.run(&["set-job-counter", "42"]).expect(0);
    db.run(&["destroy", "--yes"]).expect(0);
    let r = db.run(&["show-params", "--json"]);
    r.expect(0);
    assert_eq!(param(&r, "job_id_high_water"), Some(serde_json::json!(42)));
    assert_eq!(
        param(&r, "reused_job_ids"),
        Some(serde_json::json!(
            "IDs 1 to 42 if a new schema \"jobdb\" starts at 1"
        ))
    );
    // For a script, the bare number: `set-job-counter "$(show-params job_id_high_water)"`.
    let bare = db.run(&["show-params", "job_id_high_water"]);
    bare.expect(0);
    assert_eq!(bare.stdout.trim(), "42");
}

/// What jobdbctl says a worker's liveness is, computed here from the stored heartbeat.
fn live_until_text(worker: &str, beat: DateTime<Utc>) -> String {
    let until = beat + chrono::Duration::minutes(5);
    let until_text = if until.date_naive() == beat.date_naive() {
        until.format("%H:%M:%S UTC").to_string()
    } else {
        until.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    format!(
        "worker {worker} (last heartbeat {}) counts as live until {until_text}",
        beat.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

fn add_recently_stopped_worker(client: &mut postgres::Client) -> DateTime<Utc> {
    client
        .query_one(
            "INSERT INTO jobdb.workers (worker_id, hostname, pid, version, schema_version, last_heartbeat_at)
             VALUES ('w1', 'farm-1', 4242, '1.0', 3, date_trunc('second', now()) - interval '1 minute')
             RETURNING last_heartbeat_at",
            &[],
        )
        .expect("insert worker")
        .get(0)
}

#[test]
fn live_worker_refusals_say_until_when_and_how_to_go_on() {
    let db = TestDb::initialized();
    let mut client = db.client();
    insert_job(&mut client);
    let dir = common::temp_dir("rb");
    let archive = dir.path().join("a.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let beat = add_recently_stopped_worker(&mut client);
    let expected = live_until_text("w1", beat);

    let destroy = db.run(&["destroy", "--yes"]);
    destroy.expect(3);
    let line = destroy.one_line_error();
    assert!(line.contains(&expected), "{line}\nexpected: {expected}");
    assert_has(line, "--stale-after 0s");
    assert!(schema_exists(&mut client, "jobdb"));

    let restore = db.run(&["restore", path_str(&archive), "--yes", "--force"]);
    restore.expect(3);
    let line = restore.one_line_error();
    assert!(line.contains(&expected), "{line}\nexpected: {expected}");
    assert_has(line, "--stale-after 0s");
    // Not replaced: the worker row is not in the archive.
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.workers"),
        1
    );

    // The operator knows the engine is down.
    db.run(&[
        "--stale-after",
        "0s",
        "restore",
        path_str(&archive),
        "--yes",
        "--force",
    ])
    .expect(0);
    assert_eq!(
        scalar_i64(&mut client, "SELECT count(*) FROM jobdb.workers"),
        0
    );
    add_recently_stopped_worker(&mut client);
    db.run(&["--stale-after", "0s", "destroy", "--yes"])
        .expect(0);
    assert!(!schema_exists(&mut client, "jobdb"));
}

/// A job log tree in Tractor's layout with the traps the issue names: symlinked user and job
/// directories, names that do not match, and a link inside a job directory.
struct LogTree {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    outside: PathBuf,
}

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, b"log line\n").expect("write");
}

fn log_tree() -> LogTree {
    let dir = common::temp_dir("lg");
    let logs = dir.path().join("logs");
    let outside = dir.path().join("outside");
    for p in [
        "alice/J5/T1.log",
        "alice/J1500/T1.log",
        "alice/J1500/sub/T2.log",
        "bob/J999/T1.log",
        "bob/J2000/T1.log",
        "bob/Jabc/T1.log",
        "bob/notes.txt",
        "erin/J1700/T1.log",
        "README",
    ] {
        touch(&logs.join(p));
    }
    touch(&logs.join("dave/J2500"));
    touch(&outside.join("victim3000/keep.log"));
    touch(&outside.join("carol/J4000/keep.log"));
    touch(&outside.join("keepme.log"));
    symlink(outside.join("victim3000"), logs.join("bob/J3000")).expect("symlink job dir");
    symlink(outside.join("carol"), logs.join("carol")).expect("symlink user dir");
    symlink(outside.join("keepme.log"), logs.join("erin/J1700/link.log")).expect("symlink in job");
    LogTree {
        _dir: dir,
        logs,
        outside,
    }
}

/// jobdbctl with no database anywhere: no URL, and an embedded data dir that does not exist.
fn offline(configdir: &Path, args: &[&str]) -> Run {
    let mut cmd = common::jobdbctl(configdir);
    cmd.args(["--data-dir", "/nonexistent/jobdbctl-data"])
        .args(args);
    common::run(cmd)
}

fn job_ids(run: &Run) -> Vec<i64> {
    run.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["job_id"].as_i64().expect("job_id"))
        .collect()
}

#[test]
fn job_logs_removes_only_matching_entries_and_never_follows_links() {
    let tree = log_tree();
    let etc = common::temp_dir("jc");
    let logs = path_str(&tree.logs).to_string();
    let list = offline(
        etc.path(),
        &["--json", "job-logs", "--dir", &logs, "--above", "1000"],
    );
    list.expect(0);
    assert_eq!(job_ids(&list), vec![1500, 1700, 2000, 2500]);
    let skipped: Vec<String> = list.json()["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["path"].as_str().expect("path").to_string())
        .collect();
    assert_eq!(
        skipped,
        vec![format!("{logs}/bob/J3000"), format!("{logs}/carol")]
    );
    assert_eq!(list.json()["kept"], 2);
    assert!(tree.logs.join("alice/J1500/T1.log").exists());

    // Destructive: no terminal and no -y is a refusal, and nothing goes.
    let refused = offline(
        etc.path(),
        &["job-logs", "--dir", &logs, "--above", "1000", "--delete"],
    );
    refused.expect(3).error_has("--yes");
    assert!(tree.logs.join("alice/J1500").exists());
    let dry = offline(
        etc.path(),
        &[
            "job-logs",
            "--dir",
            &logs,
            "--above",
            "1000",
            "--delete",
            "--dry-run",
        ],
    );
    dry.expect(0).stdout_has("would be removed");
    assert!(tree.logs.join("bob/J2000").exists());

    let deleted = offline(
        etc.path(),
        &[
            "--json", "job-logs", "--dir", &logs, "--above", "1000", "--delete", "-y",
        ],
    );
    deleted.expect(0);
    assert!(deleted.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["removed"] == true));
    for gone in ["alice/J1500", "bob/J2000", "dave/J2500", "erin/J1700"] {
        assert!(
            std::fs::symlink_metadata(tree.logs.join(gone)).is_err(),
            "{gone} should be removed"
        );
    }
    for kept in [
        "alice/J5/T1.log",
        "bob/J999/T1.log",
        "bob/Jabc/T1.log",
        "bob/notes.txt",
        "README",
    ] {
        assert!(tree.logs.join(kept).exists(), "{kept} must be kept");
    }
    // Links are left as they were, and so is everything they point to.
    assert!(std::fs::symlink_metadata(tree.logs.join("bob/J3000"))
        .expect("job link")
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(tree.logs.join("carol"))
        .expect("user link")
        .file_type()
        .is_symlink());
    for kept in ["victim3000/keep.log", "carol/J4000/keep.log", "keepme.log"] {
        assert!(
            tree.outside.join(kept).exists(),
            "outside {kept} must be kept"
        );
    }
    let after = offline(
        etc.path(),
        &["--json", "job-logs", "--dir", &logs, "--above", "1000"],
    );
    after.expect(0);
    assert!(job_ids(&after).is_empty());

    // A flat layout from the config file.
    let flat = common::temp_dir("fl");
    for name in ["job-1.log", "job-2000.log", "job-20x.log", "other-3000.log"] {
        touch(&flat.path().join(name));
    }
    std::fs::write(
        etc.path().join("jobdbctl.toml"),
        format!(
            "job_logs_dir = '{}'\njob_logs_pattern = 'job-{{jid}}.log'\n",
            flat.path().display()
        ),
    )
    .expect("config");
    offline(
        etc.path(),
        &["job-logs", "--above", "1000", "--delete", "--yes"],
    )
    .expect(0);
    assert!(!flat.path().join("job-2000.log").exists());
    for kept in ["job-1.log", "job-20x.log", "other-3000.log"] {
        assert!(flat.path().join(kept).exists(), "{kept} must be kept");
    }
}

#[test]
fn job_logs_refuses_bad_patterns_and_directories() {
    let tree = log_tree();
    let etc = common::temp_dir("jc");
    let logs = path_str(&tree.logs).to_string();
    for pattern in [
        "../J{jid}",
        "{user}",
        "/abs/J{jid}",
        "J{jid}/{user}",
        "{who}/J{jid}",
    ] {
        let r = offline(
            etc.path(),
            &[
                "job-logs",
                "--dir",
                &logs,
                "--above",
                "0",
                "--pattern",
                pattern,
                "--delete",
                "-y",
            ],
        );
        r.expect(2);
        assert!(r.one_line_error().contains("--pattern"), "{}", r.stderr);
    }
    offline(
        etc.path(),
        &["job-logs", "--dir", "/nonexistent/logs", "--above", "0"],
    )
    .expect(2);
    offline(etc.path(), &["job-logs", "--above", "0"]).expect(2);
    offline(etc.path(), &["job-logs", "--dir", &logs, "--above", "-1"]).expect(2);
    assert!(tree.logs.join("alice/J1500/T1.log").exists());
}

/// Runs jobdbctl (as `inner` would) on a pseudo-terminal, answers its [y/N] prompt with
/// `answer`, and returns its exit code and everything it wrote to the terminal.
fn on_terminal(inner: &Command, answer: &str) -> (i32, String) {
    const DRIVER: &str = r#"
import os, pty, select, sys, time
argv = sys.argv[2:]
answer = sys.argv[1].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
sent = False
deadline = time.time() + 300
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 1.0)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not sent and b"[y/N] " in out:
        os.write(fd, answer)
        sent = True
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status) if sent else 99)
"#;
    let mut py = Command::new("python3");
    py.arg("-c")
        .arg(DRIVER)
        .arg(answer)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => py.env(key, v),
            None => py.env_remove(key),
        };
    }
    let out = py.output().expect("run python3 pty driver");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn jobs(client: &mut postgres::Client) -> i64 {
    scalar_i64(client, "SELECT count(*) FROM jobdb.jobs")
}

#[test]
fn destroy_and_restore_prompts_say_what_would_be_lost() {
    let db = TestDb::initialized();
    let mut client = db.client();
    client.exec(
        "INSERT INTO jobdb.jobs (task_identifier, created_at)
             SELECT 'old', now() - interval '3 days' FROM generate_series(1, 7)",
    );
    let dir = common::temp_dir("rb");
    let archive = dir.path().join("a.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    client.exec(
        "INSERT INTO jobdb.jobs (task_identifier, created_at)
             SELECT 'new', now() - interval '2 hours 5 minutes' FROM generate_series(1, 1227)",
    );

    let mut restore = db.cmd();
    restore.args(["restore", path_str(&archive), "--force"]);
    let (code, screen) = on_terminal(&restore, "n");
    assert_eq!(code, 3, "{screen}");
    assert_has(&screen, "replace schema \"jobdb\" (1,234 jobs, newest created 2 hours ago) with the backup taken 20");
    assert_has(&screen, "UTC? [y/N]");
    assert_eq!(jobs(&mut client), 1234);
    let (code, screen) = on_terminal(&restore, "y");
    assert_eq!(code, 0, "{screen}");
    assert_eq!(jobs(&mut client), 7);

    let mut destroy = db.cmd();
    destroy.args(["destroy"]);
    let (code, screen) = on_terminal(&destroy, "n");
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains(
            "drop schema \"jobdb\" (jobdb profile; 7 jobs, newest created 3 days ago) with all its jobs? [y/N]"
        ),
        "{screen}"
    );
    assert!(schema_exists(&mut client, "jobdb"));
    assert_eq!(jobs(&mut client), 7);
    let (code, screen) = on_terminal(&destroy, "y");
    assert_eq!(code, 0, "{screen}");
    assert!(!schema_exists(&mut client, "jobdb"));
    // The restore recorded the replaced schema's counter (1234), the destroy kept it.
    assert_eq!(server_mark(&mut client), Some(1234));
}
