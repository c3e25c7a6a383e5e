//! Continuous WAL archiving of the embedded cluster: `start` with wal_archive sets the real
//! server's archive_command to `jobdbctl wal-push`, and segments it switches away from land in
//! the archive; `wal-push` and `wal-fetch` keep PostgreSQL's rules for archive and restore
//! commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, TestCluster, SCRUBBED_ENV};

/// jobdbctl at a path the server user can run (it runs `wal-push` as archive_command).
fn cmd(c: &TestCluster) -> Command {
    let mut cmd = Command::new(common::bin_for_other_users());
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.arg("--configdir")
        .arg(&c.configdir)
        .arg("--data-dir")
        .arg(c.data_dir());
    cmd
}

fn run(c: &TestCluster, args: &[&str]) -> Run {
    common::run_with(cmd(c), args)
}

/// `wal-fetch --from ARCHIVE NAME DEST`.
fn fetch(c: &TestCluster, archive: &Path, name: &str, dest: &Path) -> Run {
    run(c, &["wal-fetch", "--from", path(archive), name, path(dest)])
}

fn path(p: &Path) -> &str {
    common::path_str(p)
}

/// A cluster that is not started, and an empty archive directory beside it.
fn not_started() -> (TestCluster, PathBuf) {
    let c = TestCluster::new();
    let archive = c.dir.path().join("wal");
    std::fs::create_dir(&archive).expect("mkdir");
    (c, archive)
}

/// A started cluster archiving into `<its dir>/wal`.
fn archiving() -> (TestCluster, PathBuf) {
    let c = TestCluster::new();
    let archive = c.dir.path().join("wal");
    c.write_config(&format!("wal_archive = '{}'\n", archive.display()));
    run(&c, &["start", "--create"]).expect(0);
    (c, archive)
}

#[test]
fn start_archives_every_finished_segment_and_fetch_gives_it_back() {
    let (c, archive) = archiving();
    let mut client = c.client();
    common::insert_jobs(&mut client, 50);
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_current_wal_lsn())", &[])
        .expect("segment")
        .get(0);
    client
        .execute("SELECT pg_switch_wal()", &[])
        .expect("switch");
    archived_through(&mut client, &segment);
    let stored = archive.join(format!("{segment}.zst"));
    assert!(stored.is_file(), "{} is archived", stored.display());
    let original = std::fs::read(c.pgdata().join("pg_wal").join(&segment)).expect("segment");

    // wal-fetch restores it exactly.
    let dest = c.dir.path().join("fetched");
    fetch(&c, &archive, &segment, &dest).expect(0);
    assert!(
        std::fs::read(&dest).expect("fetched") == original,
        "same bytes"
    );

    // Pushed again with the same contents (a repeat after a crash): success.
    let in_wal = c.pgdata().join("pg_wal").join(&segment);
    run(&c, &["wal-push", "--to", path(&archive), path(&in_wal)]).expect(0);

    // Other contents under the name: a failure, and the archived one stays.
    let before = std::fs::read(&stored).expect("stored");
    let other_dir = c.dir.path().join("other");
    std::fs::create_dir(&other_dir).expect("mkdir");
    let mut changed = original.clone();
    changed[100] ^= 0xff;
    let forged = other_dir.join(&segment);
    std::fs::write(&forged, &changed).expect("write");
    run(&c, &["wal-push", "--to", path(&archive), path(&forged)])
        .expect(1)
        .error_has("other contents");
    assert!(
        std::fs::read(&stored).expect("stored") == before,
        "not replaced"
    );
}

#[test]
fn fetch_of_a_missing_file_is_a_silent_exit_1_and_damage_is_exit_5() {
    let (c, archive) = not_started();
    let dest = c.dir.path().join("dest");
    let missing = fetch(&c, &archive, "000000010000000000000009", &dest);
    missing.expect(1);
    assert_eq!((missing.stdout.as_str(), missing.stderr.as_str()), ("", ""));
    assert!(!dest.exists());

    // A timeline history file goes and comes back like a segment.
    let history = c.dir.path().join("00000002.history");
    std::fs::write(&history, "1\t0/3000000\tno recovery target specified\n").expect("write");
    run(&c, &["wal-push", "--to", path(&archive), path(&history)]).expect(0);
    fetch(&c, &archive, "00000002.history", &dest).expect(0);
    assert_eq!(
        std::fs::read(&dest).expect("dest"),
        std::fs::read(&history).expect("history")
    );

    // A damaged archived file is refused, and nothing appears at the destination.
    let stored = archive.join("00000002.history.zst");
    let mut bytes = std::fs::read(&stored).expect("stored");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, bytes).expect("damage");
    let dest2 = c.dir.path().join("dest2");
    fetch(&c, &archive, "00000002.history", &dest2)
        .expect(5)
        .error_has("damaged");
    assert!(!dest2.exists());

    // Only WAL file names: nothing else is read or written through the archive.
    fetch(&c, &archive, "../x", &dest2).expect(2);
    let passwd = c.dir.path().join("passwd");
    std::fs::write(&passwd, "x").expect("write");
    run(&c, &["wal-push", "--to", path(&archive), path(&passwd)]).expect(2);
}

#[test]
fn status_shows_archiving_and_a_failing_archive_is_not_ready() {
    let (c, archive) = archiving();
    let mut client = c.client();
    client
        .execute("SELECT pg_switch_wal()", &[])
        .expect("switch");
    common::wait_until("a segment to be archived", Duration::from_secs(60), || {
        run(&c, &["status", "--json"]).json()["archiving"]["archived_count"]
            .as_i64()
            .is_some_and(|n| n > 0)
    });
    let status = run(&c, &["status", "--json"]);
    status.expect(0);
    let json = status.json();
    let archived = json["archiving"]["last_archived_wal"]
        .as_str()
        .expect("wal");
    assert!(
        archive.join(format!("{archived}.zst")).is_file(),
        "status names what is in the archive: {json}"
    );
    assert!(json["archiving"]["pg_wal_bytes"]
        .as_i64()
        .is_some_and(|b| b > 0));

    // The archive becomes unwritable: pushes fail, status --check says so (exit 4).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    common::insert_jobs(&mut client, 5);
    client
        .execute("SELECT pg_switch_wal()", &[])
        .expect("switch");
    common::wait_until("a push to fail", Duration::from_secs(60), || {
        run(&c, &["status", "--json"]).json()["archiving"]["failing"] == true
    });
    run(&c, &["status", "--check"])
        .expect(4)
        .stdout_has("WAL archiving is failing");
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Nothing was dropped: once the archive is writable again the segment gets there.
    common::wait_until("archiving to recover", Duration::from_secs(120), || {
        run(&c, &["status", "--json"]).json()["archiving"]["failing"] == false
    });
}

#[test]
fn a_push_that_hangs_gives_up_at_its_time_limit() {
    let (c, archive) = not_started();
    // A FIFO with no writer: opening it blocks, as a hung disk would.
    let stuck = c.dir.path().join("000000010000000000000042");
    let status = Command::new("mkfifo").arg(&stuck).status().expect("mkfifo");
    assert!(status.success());
    let run = run(
        &c,
        &[
            "wal-push",
            "--to",
            path(&archive),
            "--timeout",
            "1s",
            path(&stuck),
        ],
    );
    run.expect(1).error_has("did not finish within 1s");
    assert_eq!(
        std::fs::read_dir(&archive).expect("ls").count(),
        0,
        "nothing archived"
    );
}

#[test]
fn a_wal_archive_path_archive_command_cannot_carry_is_refused_before_anything_is_made() {
    let c = TestCluster::new();
    run(&c, &["init"]).expect(0);
    run(&c, &["stop"]).expect(0);
    let archive = c.dir.path().join("wal archive");
    c.write_config(&format!("wal_archive = '{}'\n", archive.display()));
    run(&c, &["start"])
        .expect(2)
        .error_has("archive_command cannot carry");
    assert!(
        !archive.exists(),
        "no directory was made for a refused path"
    );
}

/// What pg_waldump says of an archived segment, fetched back with wal-fetch.
fn dumped(c: &TestCluster, archive: &Path, segment: &str) -> String {
    let dir = c.dir.path().join(format!("dump-{segment}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    fetch(c, archive, segment, &dir.join(segment)).expect(0);
    let out = Command::new(common::pg_bindir().join("pg_waldump"))
        .arg("--path")
        .arg(&dir)
        .arg(segment)
        .output()
        .expect("pg_waldump");
    // It complains about the zeroed tail of a switched segment; the records are on stdout.
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn archived_through(client: &mut postgres::Client, segment: &str) {
    common::wait_until(
        "the segment to be archived",
        Duration::from_secs(60),
        || {
            let archived: Option<String> = client
                .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
                .expect("archiver")
                .get(0);
            archived.is_some_and(|a| a.as_str() >= segment)
        },
    );
}

#[test]
fn migrate_and_backup_mark_make_restore_points_in_the_archived_wal() {
    let (c, archive) = not_started();
    c.write_config(&format!("wal_archive = '{}'\n", archive.display()));
    run(&c, &["init", "--schema-version", "1"]).expect(0);
    let mut client = c.client();
    let lsn = |client: &mut postgres::Client| -> String {
        client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .expect("lsn")
            .get(0)
    };
    let start = lsn(&mut client);
    run(&c, &["migrate"]).expect(0);
    let latest: i32 = client
        .query_one("SELECT max(version) FROM jobdb.schema_migrations", &[])
        .expect("version")
        .get(0);
    assert!(latest > 1, "migrated");
    run(&c, &["backup", "--mark", "pre-deploy"]).expect(0);
    let end = lsn(&mut client);

    // Bad names and archive flags beside --mark are usage errors that make no point.
    run(&c, &["backup", "--mark", "two words"])
        .expect(2)
        .error_has("not allowed");
    run(&c, &["backup", "--mark", "x", "--compression", "zstd"]).expect(2);

    let listed = run(&c, &["--json", "backups", "points"]).expect(0).json();
    let points = listed.as_array().expect("array");
    let names: Vec<&str> = points
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["before-migrate-2", "pre-deploy"]);
    assert_eq!(points[0]["reason"], format!("migrate 1 -> {latest}"));
    for point in points {
        let name = point["name"].as_str().expect("name");
        let at = point["lsn"].as_str().expect("lsn");
        let inside: bool = client
            .query_one(
                "SELECT $1::text::pg_lsn > $2::text::pg_lsn AND $1::text::pg_lsn < $3::text::pg_lsn",
                &[&at, &start, &end],
            )
            .expect("compare")
            .get(0);
        assert!(inside, "{name} at {at} lies between {start} and {end}");
        // The point is a record of the WAL the archive holds (switched away from at once).
        let segment = point["segment"].as_str().expect("segment");
        archived_through(&mut client, segment);
        let dump = dumped(&c, &archive, segment);
        assert!(
            dump.contains(&format!("RESTORE_POINT {name}")),
            "{name} in the archived segment {segment}: {dump}"
        );
    }
    let records = std::fs::read_dir(&archive)
        .expect("archive")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("restore-point.")
        })
        .count();
    assert_eq!(records, 2, "one record per point beside the segments");
}

#[test]
fn without_archiving_no_restore_point_is_made_and_migrate_changes_nothing() {
    // wal_archive is set, but the server was started before it was: it archives nothing.
    let (c, archive) = not_started();
    run(&c, &["init", "--schema-version", "1"]).expect(0);
    c.write_config(&format!("wal_archive = '{}'\n", archive.display()));
    run(&c, &["backup", "--mark", "pre-deploy"])
        .expect(3)
        .error_has("jobdbctl restart");
    run(&c, &["migrate"])
        .expect(3)
        .error_has("jobdbctl restart");
    let mut client = c.client();
    let version: i32 = client
        .query_one("SELECT max(version) FROM jobdb.schema_migrations", &[])
        .expect("version")
        .get(0);
    assert_eq!(version, 1, "migrate changed nothing");
    run(&c, &["--json", "backups", "points"])
        .expect(0)
        .stdout_has("[]");

    // No wal_archive at all: --mark says what to set; migrate runs without a point.
    c.write_config("");
    run(&c, &["backup", "--mark", "pre-deploy"])
        .expect(2)
        .error_has("wal_archive");
    run(&c, &["migrate"]).expect(0);
}
