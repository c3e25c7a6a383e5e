//! The backup catalog end to end: `backups` listing and verifying, `backups prune`,
//! `restore latest`, `backup --pin`, and `--log-file`.

mod common;
use common::Exec;

use common::path_str;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use common::generate::{self, Spec};
use common::TestDb;

fn jobs_in(db: &TestDb) -> i64 {
    common::scalar_i64(&mut db.client(), "SELECT count(*) FROM jobdb.jobs")
}

/// Backs up into `dir` with `extra` flags and returns the archive's path.
fn backup(db: &TestDb, output: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["backup", "--output", path_str(output), "--json"];
    args.extend_from_slice(extra);
    let run = db.run(&args);
    run.expect(0);
    PathBuf::from(run.json()["archive"].as_str().expect("archive path"))
}

/// A name jobdbctl would have chosen for `archive`'s stem `days` ago.
fn own_name_at(archive: &Path, days: i64) -> PathBuf {
    let when: DateTime<Utc> = Utc::now() - chrono::Duration::days(days);
    let name = archive.file_name().and_then(|n| n.to_str()).expect("name");
    let stem = &name[..name.len() - "20240131T235959.123Z.tar.gz".len()];
    archive.with_file_name(format!(
        "{stem}{}.tar.gz",
        when.format("%Y%m%dT%H%M%S%.3fZ")
    ))
}

/// A complete copy of `archive` whose header and manifest say it was taken `days` ago,
/// under the name jobdbctl would have given it then.
fn backdated(archive: &Path, days: i64) -> PathBuf {
    let when: DateTime<Utc> = Utc::now() - chrono::Duration::days(days);
    let path = own_name_at(archive, days);
    let bytes = common::archive_edit::rewrite(&fs::read(archive).expect("read"), |m| {
        m.insert("created_at".into(), when.to_rfc3339().into());
    });
    fs::write(&path, bytes).expect("write backdated");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// The listing as JSON rows keyed by file name.
fn listing(db: &TestDb, dir: &Path, extra: &[&str]) -> (Vec<serde_json::Value>, i32) {
    let mut args = vec!["backups", "--dir", path_str(dir), "--json"];
    args.extend_from_slice(extra);
    let run = db.run(&args);
    assert!(
        run.code == 0 || run.code == 5,
        "backups: {}\n{}",
        run.stdout,
        run.stderr
    );
    let rows = run.json().as_array().expect("array").clone();
    (rows, run.code)
}

fn by_file(rows: &[serde_json::Value]) -> BTreeMap<String, serde_json::Value> {
    rows.iter()
        .map(|r| (r["file"].as_str().expect("file").to_string(), r.clone()))
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string()
}

/// Every file in `dir` with the SHA-256 of its content.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let data = fs::read(e.path()).expect("read");
            (
                e.file_name().to_string_lossy().into_owned(),
                hex::encode(Sha256::digest(&data)),
            )
        })
        .collect()
}

#[test]
fn list_shows_every_kind_of_file_with_its_state_newest_first() {
    let db = TestDb::with_jobs(300);
    let other = TestDb::with_jobs(20);
    let dir = common::temp_dir("cat");
    let managed = backup(&db, dir.path(), &[]);
    let pinned = backup(&db, dir.path(), &["--pin"]);
    let mine = backup(&db, &dir.path().join("mine.tar.gz"), &[]);
    let others = backup(&other, dir.path(), &[]);
    // A truncated copy under a name jobdbctl would choose: the header is intact, the end
    // (manifest and tar end marker) is gone.
    let truncated = backdated(&managed, 3);
    let bytes = fs::read(&truncated).expect("read");
    fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).expect("write truncated");
    let partial = dir
        .path()
        .join(format!("{}.partial", file_name(&own_name_at(&managed, 1))));
    fs::write(&partial, b"half an archive").expect("write partial");
    let before = snapshot(dir.path());

    let (rows, code) = listing(&db, dir.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let rows_by = by_file(&rows);
    let row = |p: &Path| rows_by[&file_name(p)].clone();
    let jobs = jobs_in(&db);
    let last_id = common::scalar_i64(&mut db.client(), "SELECT max(id) FROM jobdb.jobs");

    let m = row(&managed);
    assert_eq!(m["state"], "unverified");
    assert_eq!(m["prunable"], true);
    assert_eq!(m["retention"], "managed");
    assert_eq!(m["mode"], "online");
    assert_eq!(m["database"], db.name.as_str());
    assert_eq!(m["schema"], "jobdb");
    assert_eq!(m["profile"], "jobdb");
    assert!(m["schema_version"].is_i64(), "{m}");
    assert_eq!(m["jobs"].as_i64(), Some(jobs), "{m}");
    assert!(m["last_used_job_id"].as_i64().expect("number") >= last_id);
    assert_eq!(
        m["bytes"].as_u64(),
        Some(fs::metadata(&managed).expect("stat").len())
    );
    DateTime::parse_from_rfc3339(m["taken_at"].as_str().expect("taken_at")).expect("RFC 3339");
    assert!(!m["server"].as_str().expect("server").is_empty());

    let p = row(&pinned);
    assert_eq!(
        (p["retention"].as_str(), &p["prunable"]),
        (Some("pinned"), &false.into())
    );
    assert_eq!(p["state"], "unverified");
    let n = row(&mine);
    assert_eq!(
        (&n["named_by_jobdbctl"], &n["prunable"]),
        (&false.into(), &false.into())
    );
    assert_eq!(n["retention"], "pinned");
    let o = row(&others);
    assert_eq!(o["database"], other.name.as_str());
    assert_eq!(o["jobs"].as_i64(), Some(jobs_in(&other)));
    let t = row(&truncated);
    assert_eq!(t["state"], "damaged", "{t}");
    assert_eq!(t["prunable"], false);
    assert!(
        t["problem"]
            .as_str()
            .expect("problem")
            .contains("truncated"),
        "{t}"
    );
    let q = row(&partial);
    assert_eq!(q["state"], "partial");
    assert_eq!(q["bytes"].as_u64(), Some(15));
    assert!(q["taken_at"].is_null());

    // Newest first: by when each was taken (a .partial by its mtime).
    let times: Vec<DateTime<Utc>> = rows
        .iter()
        .map(|r| {
            let t = r["taken_at"]
                .as_str()
                .or(r["modified_at"].as_str())
                .expect("time");
            DateTime::parse_from_rfc3339(t)
                .expect("rfc3339")
                .with_timezone(&Utc)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(
        rows.last().expect("row")["file"],
        file_name(&truncated).as_str()
    );

    let human = db.run(&["backups", "--dir", path_str(dir.path())]);
    human.expect(0).stdout_has("damaged:");
    human.stdout_has("partial:");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "listing changed the directory"
    );

    // --verify reads everything: the intact ones are complete now, exit 5 for the damaged.
    let (rows, code) = listing(&db, dir.path(), &["--verify"]);
    assert_eq!(code, 5);
    let rows_by = by_file(&rows);
    for p in [&managed, &pinned, &mine, &others] {
        assert_eq!(rows_by[&file_name(p)]["state"], "complete", "{p:?}");
    }
    assert_eq!(rows_by[&file_name(&truncated)]["state"], "damaged");
}

#[test]
fn verify_finds_a_bit_flipped_archive_the_listing_cannot() {
    let db = TestDb::with_jobs(3000);
    let dir = common::temp_dir("cat");
    let good = backup(&db, dir.path(), &[]);
    let mut bytes = fs::read(&good).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    let flipped = own_name_at(&good, 1);
    fs::write(&flipped, &bytes).expect("write");

    let (rows, _) = listing(&db, dir.path(), &[]);
    let rows = by_file(&rows);
    assert_eq!(
        rows[&file_name(&flipped)]["state"],
        "unverified",
        "{rows:#?}"
    );

    let run = db.run(&["backups", "verify", "--dir", path_str(dir.path()), "--json"]);
    run.expect(5);
    let rows = by_file(run.json().as_array().expect("array"));
    assert_eq!(rows[&file_name(&flipped)]["state"], "damaged");
    assert_eq!(rows[&file_name(&good)]["state"], "complete");
    // From cron (--quiet) the damage is still one error line on stderr.
    let quiet = db.run(&[
        "--quiet",
        "backups",
        "verify",
        "--dir",
        path_str(dir.path()),
    ]);
    quiet.expect(5);
    assert!(quiet.stdout.is_empty(), "{}", quiet.stdout);
    let error = quiet.one_line_error();
    assert!(
        error.contains("1 of 2 archive(s) damaged") && error.contains(&file_name(&flipped)),
        "{error}"
    );
    // Why, in the line itself: the plain listing shows the file unverified, with no reason.
    // (Which check a flipped bit trips depends on where it lands.)
    assert!(
        error.contains(&format!("{} (archive ", flipped.display())) && error.contains("is invalid"),
        "{error}"
    );
    assert!(!error.contains("see `jobdbctl backups`"), "{error}");
}

#[test]
fn prune_dry_run_changes_nothing_and_prune_removes_exactly_those() {
    let db = TestDb::with_jobs(100);
    let other = TestDb::with_jobs(10);
    let dir = common::temp_dir("cat");
    let newest = backup(&db, dir.path(), &[]);
    let d10 = backdated(&newest, 10);
    let d20 = backdated(&newest, 20);
    let d30 = backdated(&newest, 30);
    let pinned = backup(&db, dir.path(), &["--pin"]);
    let pinned_old = own_name_at(&pinned, 40);
    fs::rename(&pinned, &pinned_old).expect("rename pinned");
    let mine = backup(&db, &dir.path().join("pre-upgrade.tar.gz"), &[]);
    let others = backdated(&backup(&other, dir.path(), &[]), 50);
    let before = snapshot(dir.path());
    let dirarg = path_str(dir.path());

    let dry = db.run(&[
        "backups",
        "prune",
        "--dir",
        dirarg,
        "--keep",
        "2",
        "--dry-run",
        "--json",
    ]);
    dry.expect(0);
    let json = dry.json();
    let would = common::sorted_strings(&json["removed"]);
    let mut expected = vec![path_str(&d20).to_string(), path_str(&d30).to_string()];
    expected.sort();
    assert_eq!(would, expected, "{json}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "--dry-run changed the directory"
    );

    // Without a terminal and without --yes it refuses and deletes nothing.
    let refused = db.run(&["backups", "prune", "--dir", dirarg, "--keep", "2"]);
    refused.expect(3);
    assert!(refused.one_line_error().contains("--yes"));
    assert_eq!(snapshot(dir.path()), before);
    // No rule is a usage error.
    db.run(&["backups", "prune", "--dir", dirarg, "--yes"])
        .expect(2);

    let real = db.run(&[
        "backups", "prune", "--dir", dirarg, "--keep", "2", "--yes", "--json",
    ]);
    real.expect(0);
    let mut after = before.clone();
    after.remove(&file_name(&d20));
    after.remove(&file_name(&d30));
    assert_eq!(snapshot(dir.path()), after);
    for kept in [&newest, &d10, &pinned_old, &mine, &others] {
        assert!(kept.exists(), "{kept:?} was deleted");
    }
}

#[test]
fn restore_latest_restores_the_newest_complete_archive_skipping_a_damaged_newer_one() {
    // No live workers: restore refuses while workers are live.
    let db = TestDb::initialized();
    generate::populate(
        &mut db.client(),
        "jobdb",
        &Spec {
            jobs: 200,
            live_workers: 0,
            dead_workers: 1,
            migrations: false,
        },
    );
    let dir = common::temp_dir("cat");
    let dirarg = path_str(dir.path());
    let at_first = jobs_in(&db);
    backup(&db, dir.path(), &[]);
    db.client().exec("DELETE FROM jobdb.jobs WHERE id % 2 = 0");
    let at_second = jobs_in(&db);
    assert!(at_second < at_first && at_second > 0);
    let second = backup(&db, dir.path(), &[]);
    // A complete archive of another database, newer still, must not be picked.
    let other = TestDb::with_jobs(7);
    backup(&other, dir.path(), &[]);

    db.client().exec("DELETE FROM jobdb.jobs");
    let run = db.run(&[
        "restore", "latest", "--dir", dirarg, "--yes", "--force", "--json",
    ]);
    run.expect(0);
    assert_eq!(run.json()["latest_archive"], path_str(&second));
    assert_eq!(jobs_in(&db), at_second, "{}", run.stderr);

    // Damage the newest: restore latest falls back to the first, with a warning.
    let bytes = fs::read(&second).expect("read");
    fs::write(&second, &bytes[..bytes.len() - 100]).expect("truncate");
    db.client().exec("DELETE FROM jobdb.jobs");
    let run = db.run(&["restore", "latest", "--dir", dirarg, "--yes", "--force"]);
    run.expect(0);
    assert!(
        run.stderr.contains("skipping damaged archive") && run.stderr.contains(&file_name(&second)),
        "{}",
        run.stderr
    );
    assert_eq!(jobs_in(&db), at_first);

    // Nothing of this database: exit 2; --dir without latest: exit 2.
    let empty = common::temp_dir("cat");
    let none = db.run(&[
        "restore",
        "latest",
        "--dir",
        path_str(empty.path()),
        "--yes",
    ]);
    none.expect(2);
    assert!(none
        .one_line_error()
        .contains("no online or cold archive of database"));
    db.run(&["restore", path_str(&second), "--dir", dirarg, "--yes"])
        .expect(2);
    assert_eq!(
        jobs_in(&db),
        at_first,
        "a refused restore changed the database"
    );
}

#[test]
fn log_file_gets_a_line_per_run_without_the_password() {
    let db = TestDb::empty();
    let logdir = common::temp_dir("log");
    let log = logdir.path().join("jobdbctl.log");
    let logarg = path_str(&log);
    let dir = common::temp_dir("cat");

    db.run(&[
        "--log-file",
        logarg,
        "backups",
        "--dir",
        path_str(dir.path()),
    ])
    .expect(0);
    let mut cmd = common::jobdbctl(db.configdir.path());
    cmd.args([
        "--database-url",
        "postgresql://someone:s3cretpw@127.0.0.1:1/x?connect_timeout=2",
        &format!("--log-file={logarg}"),
        "backup",
        "--output",
        path_str(dir.path()),
    ]);
    let failed = common::run(cmd);
    failed.expect(6);

    // A usage error is logged too.
    db.run(&["--log-file", logarg, "no-such-command"]).expect(2);

    let text = fs::read_to_string(&log).expect("read log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].contains(" no-such-command: exit 2: error: "),
        "{}",
        lines[2]
    );
    assert!(!text.contains("s3cretpw"), "{text}");
    let time = |l: &str| {
        DateTime::parse_from_rfc3339(l.split(' ').next().expect("time")).expect("RFC 3339 time")
    };
    time(lines[0]);
    time(lines[1]);
    assert!(
        lines[0].contains(" backups --dir ") && lines[0].ends_with(": exit 0"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(" backup --output ") && lines[1].contains(": exit 6: "),
        "{}",
        lines[1]
    );
    let error = failed
        .one_line_error()
        .trim_start_matches("jobdbctl: error: ");
    assert!(lines[1].ends_with(error), "{}\n{error}", lines[1]);
    assert_eq!(
        fs::metadata(&log).expect("stat").permissions().mode() & 0o777,
        0o600
    );

    // A backup's line names the archive it wrote and its size.
    let populated_db = TestDb::with_jobs(5);
    let run = populated_db.run(&[
        "--log-file",
        logarg,
        "backup",
        "--output",
        path_str(dir.path()),
        "--json",
    ]);
    run.expect(0);
    let archive = run.json()["archive"].as_str().expect("archive").to_string();
    let text = fs::read_to_string(&log).expect("read log");
    let last = text.lines().last().expect("a line");
    assert!(
        last.contains(": exit 0: wrote ") && last.contains(&archive) && last.ends_with("B)"),
        "{last}"
    );

    // A link at the log's name is refused before anything runs; its target is untouched.
    let target = logdir.path().join("target");
    fs::write(&target, b"precious\n").expect("write");
    let link = logdir.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let refused = db.run(&[
        "--log-file",
        path_str(&link),
        "backups",
        "--dir",
        path_str(dir.path()),
    ]);
    refused.expect(3);
    assert!(refused.one_line_error().contains("symbolic link"));
    assert_eq!(fs::read(&target).expect("read"), b"precious\n");
}

#[test]
fn an_archive_dated_in_the_future_is_never_latest_and_holds_no_keep_slot() {
    let db = TestDb::populated_unlocked(100);
    let dir = common::temp_dir("cat");
    let dirarg = path_str(dir.path());
    let old = backup(&db, dir.path(), &[]);
    common::insert_job(&mut db.client());
    let newest_jobs = jobs_in(&db);
    let newest = backup(&db, dir.path(), &[]);
    // The older content, dated 30 days ahead: a wrong clock, or a planted file.
    let future = backdated(&old, -30);

    let (rows, code) = listing(&db, dir.path(), &[]);
    assert_eq!(code, 0);
    let rows = by_file(&rows);
    let row = &rows[&file_name(&future)];
    assert_eq!(row["future_dated"], true, "{row}");
    assert_eq!(row["prunable"], false, "{row}");
    let human = db.run(&["backups", "--dir", dirarg]);
    human.stdout_has("future-dated");

    common::insert_job(&mut db.client());
    let run = db.run(&[
        "restore", "latest", "--dir", dirarg, "--yes", "--force", "--json",
    ]);
    run.expect(0);
    assert_eq!(
        run.json()["latest_archive"],
        path_str(&newest),
        "{}",
        run.stderr
    );
    assert_eq!(
        jobs_in(&db),
        newest_jobs,
        "restore latest loaded another archive"
    );
    assert!(
        run.stderr.contains("in the future") && run.stderr.contains(&file_name(&future)),
        "the future-dated archive was passed by silently: {}",
        run.stderr
    );

    // --keep 1 keeps the newest real backup; the future one is neither counted nor deleted.
    db.run(&["backups", "prune", "--dir", dirarg, "--keep", "1", "--yes"])
        .expect(0);
    assert!(newest.exists(), "the newest real backup was pruned");
    assert!(future.exists(), "the future-dated archive was deleted");
    assert!(!old.exists(), "the older archive was kept beyond --keep 1");
}

#[test]
fn prunes_racing_each_other_and_a_backup_all_succeed_and_keep_the_newest() {
    let db = TestDb::with_jobs(3000);
    let dir = common::temp_dir("cat");
    let dirarg = path_str(dir.path()).to_string();
    for round in 0..3 {
        for _ in 0..4 {
            backup(&db, dir.path(), &[]);
        }
        let prunes: Vec<_> = (0..2)
            .map(|_| db.spawn(&["backups", "prune", "--dir", &dirarg, "--keep", "1", "--yes"]))
            .collect();
        let fresh = db.spawn(&[
            "backup",
            "--output",
            &format!("{dirarg}/"),
            "--keep",
            "1",
            "--json",
        ]);
        for p in prunes {
            common::finish(p).expect(0);
        }
        let run = common::finish(fresh);
        run.expect(0);
        assert!(
            run.json()["prune_error"].is_null(),
            "round {round}: {}",
            run.stdout
        );
        let newest = PathBuf::from(run.json()["archive"].as_str().expect("archive"));
        let left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![file_name(&newest)], "round {round}");
    }
}

#[test]
fn a_prune_that_fails_after_a_backup_is_a_warning_and_the_backup_succeeds() {
    let db = TestDb::with_jobs(10);
    let dir = common::temp_dir("cat");
    let old = backup(&db, dir.path(), &[]);
    // An immutable file cannot be removed, not even by root: the prune after the next
    // backup fails on it.
    let chattr = |flag: &str| {
        std::process::Command::new("chattr")
            .arg(flag)
            .arg(&old)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !chattr("+i") {
        eprintln!("skipped: chattr +i is not possible here (needs root and ext4 or the like)");
        return;
    }
    let run = db.run(&[
        "backup",
        "--output",
        &format!("{}/", path_str(dir.path())),
        "--keep",
        "1",
        "--json",
    ]);
    chattr("-i");
    run.expect(0);
    let json = run.json();
    let archive = PathBuf::from(json["archive"].as_str().expect("archive"));
    assert!(archive.exists(), "the new archive is missing");
    db.run(&["verify", path_str(&archive)]).expect(0);
    assert!(
        json["prune_error"]
            .as_str()
            .is_some_and(|e| e.contains(&file_name(&old))),
        "{json}"
    );
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("could not be pruned"),
        "{}",
        run.stderr
    );
    assert!(old.exists());
    // Alone, the prune's failure is the run's failure.
    chattr("+i");
    let prune = db.run(&[
        "backups",
        "prune",
        "--dir",
        path_str(dir.path()),
        "--keep",
        "1",
        "--yes",
    ]);
    chattr("-i");
    prune.expect(1);
}

#[test]
fn a_recompressed_archive_is_judged_alike_by_list_verify_and_prune() {
    let db = TestDb::with_jobs(50);
    let dir = common::temp_dir("cat");
    let original = backup(&db, dir.path(), &[]);
    // `gzip -dc | gzip`: one gzip member instead of the writer's many; still valid.
    let again = own_name_at(&original, 1);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc < '{}' | gzip > '{}'",
            original.display(),
            again.display()
        ))
        .status()
        .expect("gzip");
    assert!(status.success());
    fs::set_permissions(&again, fs::Permissions::from_mode(0o600)).expect("chmod");
    db.run(&["verify", path_str(&again)]).expect(0);
    let (rows, code) = listing(&db, dir.path(), &[]);
    assert_eq!(code, 0);
    let rows = by_file(&rows);
    let row = &rows[&file_name(&again)];
    assert_ne!(row["state"], "damaged", "{row}");
    assert_eq!(row["prunable"], true, "{row}");
    db.run(&["backups", "verify", "--dir", path_str(dir.path())])
        .expect(0);
}

#[test]
fn control_characters_from_an_archive_header_reach_no_terminal() {
    let db = TestDb::with_jobs(5);
    let dir = common::temp_dir("cat");
    let real = backup(&db, dir.path(), &[]);
    let hostile = real.with_file_name("hostile.tar.gz");
    let bytes = common::archive_edit::rewrite(&fs::read(&real).expect("read"), |m| {
        m.insert(
            "database".into(),
            "jobs\u{1b}[2J\u{1b}]0;owned\u{7}\ninjected line".into(),
        );
        m.insert("server".into(), "srv\u{1b}[31m\r".into());
    });
    fs::write(&hostile, bytes).expect("write");
    for args in [
        vec!["backups", "--wide", "--dir", path_str(dir.path())],
        vec!["backups", "verify", "--wide", "--dir", path_str(dir.path())],
        vec!["verify", path_str(&hostile)],
    ] {
        let run = db.run(&args);
        for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\r']),
                "{args:?}: a control character reached {what}: {text:?}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("injected line")),
                "{args:?}: the header made a line of its own on {what}: {text}"
            );
        }
        assert!(
            run.stdout.contains("\\u{1b}[2J"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn restore_says_where_archives_are_and_dry_run_checks_everything_changing_nothing() {
    let db = TestDb::populated_unlocked(60);
    let backups = common::temp_dir("cat");
    db.write_config(&format!("backup_dir = \"{}\"\n", backups.path().display()));
    let named = backups.path().join("before-upgrade.tar.gz");
    db.run(&["backup", "--output", path_str(&named)]).expect(0);
    common::insert_job(&mut db.client());
    let jobs_before = jobs_in(&db);

    // A name that is not in the working directory but in the backup directory.
    let mut cmd = db.cmd();
    cmd.current_dir("/")
        .args(["restore", "before-upgrade.tar.gz", "--yes", "--force"]);
    let missing = common::run(cmd);
    missing.expect(2);
    let line = missing.one_line_error();
    assert!(
        line.contains("no archive at /before-upgrade.tar.gz")
            && line.contains(&format!("jobdbctl restore {}", named.display())),
        "{line}"
    );
    let nowhere = db.run(&["restore", "/nonexistent/x.tar.gz", "--yes"]);
    nowhere.expect(2).error_has(path_str(backups.path()));

    // --dry-run: the same refusals as a restore, no question asked, nothing changed.
    let refused = db.run(&["restore", path_str(&named), "--dry-run"]);
    refused.expect(3).error_has("--force");
    let plan = db.run(&[
        "restore",
        path_str(&named),
        "--dry-run",
        "--force",
        "--json",
    ]);
    plan.expect(0);
    let json = plan.json();
    assert_eq!(json["dry_run"], true);
    let would = json["would_replace"].as_str().expect("would_replace");
    assert!(
        would.contains("schema \"jobdb\"") && would.contains(&format!("{jobs_before} jobs")),
        "{would}"
    );
    assert_eq!(json["rows"].as_u64().map(|r| r > 0), Some(true), "{json}");
    assert_eq!(jobs_in(&db), jobs_before, "a dry run changed the jobs");
    let leftovers = common::scalar_i64(
        &mut db.client(),
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'jobdbctl_%'",
    );
    assert_eq!(leftovers, 0, "a dry run left a staging schema");
    let human = db.run(&["restore", "latest", "--dry-run", "--force"]);
    human.expect(0);
    assert!(
        human.stdout.contains("dry run") && human.stdout.contains("nothing was changed"),
        "{}",
        human.stdout
    );

    // A damaged archive fails the dry run as it would fail the restore.
    let bytes = fs::read(&named).expect("read");
    let cut = backups.path().join("cut.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() - 200]).expect("write");
    db.run(&["restore", path_str(&cut), "--dry-run", "--force"])
        .expect(5);
    assert_eq!(jobs_in(&db), jobs_before);
}

#[test]
fn the_listing_fits_80_columns_and_wide_adds_the_rest() {
    let db = TestDb::with_jobs(5);
    let dir = common::temp_dir("cat");
    backup(&db, dir.path(), &[]);
    let pinned = dir.path().join("before-upgrade.tar.gz");
    db.run(&["backup", "--output", path_str(&pinned)]).expect(0);
    let mut cmd = db.cmd();
    cmd.env("COLUMNS", "80")
        .args(["backups", "--dir", path_str(dir.path())]);
    let narrow = common::run(cmd);
    narrow.expect(0);
    let table: Vec<&str> = narrow
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("unverified:"))
        .collect();
    for line in &table {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line}\n{}",
            narrow.stdout
        );
    }
    // Cells are whole, not cut into slivers: the time and the state on one line each.
    let time = Utc::now().format("%Y-%m-%d").to_string();
    assert!(table.iter().any(|l| l.contains(&time)), "{}", narrow.stdout);
    assert!(
        table.iter().any(|l| l.contains("unverified")),
        "{}",
        narrow.stdout
    );
    assert!(
        !narrow.stdout.contains("database @ server"),
        "{}",
        narrow.stdout
    );

    let wide = db.run(&["backups", "--dir", path_str(dir.path()), "--wide"]);
    wide.expect(0);
    assert!(
        wide.stdout.contains("database @ server") && wide.stdout.contains("last job ID"),
        "{}",
        wide.stdout
    );
    wide.stdout_has(&db.name);
}

#[test]
fn backups_check_exits_4_when_the_newest_archive_is_old_missing_or_damaged() {
    let db = TestDb::with_jobs(100);
    let dir = common::temp_dir("cat");
    let check = |extra: &[&str]| {
        let mut args = vec!["backups", "check", "--max-age", "1d", "--dir"];
        args.push(path_str(dir.path()));
        args.extend_from_slice(extra);
        db.run(&args)
    };
    check(&[]).expect(4).error_has("no archive");

    let taken = backup(&db, dir.path(), &[]);
    let old = backdated(&taken, 3);
    fs::remove_file(&taken).expect("remove");
    check(&[]).expect(4).error_has("older than 1day");
    let stale = check(&["--json"]);
    stale.expect(4);
    let json = stale.json();
    assert_eq!(json["fresh"], false, "{json}");
    assert_eq!(json["archive"], path_str(&old), "{json}");
    assert!(
        json["age_seconds"].as_u64() >= Some(3 * 86_400 - 60),
        "{json}"
    );
    // Another database's newer archive is not this one's backup.
    let other = TestDb::with_jobs(10);
    backup(&other, dir.path(), &[]);
    check(&[]).expect(4);

    let newest = backup(&db, dir.path(), &[]);
    let fresh = check(&["--json"]);
    fresh.expect(0);
    assert_eq!(fresh.json()["fresh"], true);
    assert_eq!(fresh.json()["archive"], path_str(&newest));
    check(&[]).expect(0).stdout_has("within 1day");
    let quiet = check(&["--quiet"]);
    quiet.expect(0);
    assert_eq!(quiet.stdout, "", "silent for cron while all is well");

    // Cut in half: damaged, whether the end or the whole is read.
    let bytes = fs::read(&newest).expect("read");
    fs::write(&newest, &bytes[..bytes.len() / 2]).expect("truncate");
    check(&[]).expect(4).error_has("damaged");
    check(&["--verify"]).expect(4).error_has("damaged");

    // A byte changed in the middle: only the full read sees it.
    let newest = backup(&db, dir.path(), &[]);
    let mut bytes = fs::read(&newest).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&newest, &bytes).expect("write");
    check(&[]).expect(0);
    check(&["--verify"]).expect(4).error_has("damaged");
}
