//! Continuous WAL archiving of the embedded cluster: `start` with wal_archive sets the real
//! server's archive_command to `jobdbctl wal-push`, and segments it switches away from land in
//! the archive; `wal-push` and `wal-fetch` keep PostgreSQL's rules for archive and restore
//! commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Run, TestCluster};

fn cmd(c: &TestCluster) -> Command {
    c.cmd_for_server_user()
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
    let segment = jobs_in_a_segment_of_their_own(&mut client);
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
    // An AWS variable the server inherited from someone's shell is nothing to a directory.
    let mut push = cmd(&c);
    push.env("AWS_ENDPOINT_URL", "not a url")
        .env("JOBDBCTL_S3_ADDRESSING", "sideways");
    common::run_with(push, &["wal-push", "--to", path(&archive), path(&history)]).expect(0);
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
    let latest = schema_version(&mut client);
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

    // wal_archive changed but the server not restarted: its WAL still goes to the old one,
    // where a point made now would never be found.
    let moved = c.dir.path().join("wal-moved");
    std::fs::create_dir(&moved).expect("mkdir");
    c.write_config(&format!("wal_archive = '{}'\n", moved.display()));
    run(&c, &["backup", "--mark", "elsewhere"])
        .expect(3)
        .error_has("jobdbctl restart");
    run(&c, &["backup", "--mode", "physical"])
        .expect(3)
        .error_has("jobdbctl restart");
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
    let version = schema_version(&mut client);
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

/// A started cluster archiving into `<its dir>/wal`, its backups in `<its dir>/backups`, at
/// schema version `version` (`None`: the newest).
fn recoverable(version: Option<&str>) -> (TestCluster, PathBuf) {
    let (c, archive) = not_started();
    c.write_config(&format!(
        "wal_archive = '{}'\nbackup_dir = '{}'\n",
        archive.display(),
        c.dir.path().join("backups").display()
    ));
    match version {
        Some(v) => run(&c, &["init", "--schema-version", v]).expect(0),
        None => run(&c, &["start", "--create"]).expect(0),
    };
    (c, archive)
}

fn schema_version(client: &mut postgres::Client) -> i64 {
    common::scalar_i64(
        client,
        "SELECT max(version)::int8 FROM jobdb.schema_migrations",
    )
}

fn job_ids(client: &mut postgres::Client) -> Vec<i64> {
    client
        .query("SELECT id FROM jobdb.jobs ORDER BY id", &[])
        .expect("jobs")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn insert_jobs_returning(client: &mut postgres::Client, n: usize) -> Vec<i64> {
    (0..n).map(|_| common::insert_job(client)).collect()
}

/// The server's clock, as psql prints it: what an operator copies into --to-time.
fn server_now(client: &mut postgres::Client) -> String {
    client
        .query_one("SELECT clock_timestamp()::text", &[])
        .expect("now")
        .get(0)
}

/// `restore ARGS --yes --force` with the engine known to be down.
fn pitr_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--stale-after", "0s", "restore"];
    all.extend_from_slice(args);
    all.extend(["--yes", "--force"]);
    all
}

fn pitr(c: &TestCluster, args: &[&str]) -> Run {
    run(c, &pitr_args(args))
}

fn replaced_dirs(c: &TestCluster) -> usize {
    std::fs::read_dir(c.data_dir())
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("psql.replaced-")
        })
        .count()
}

#[test]
fn restore_to_a_time_keeps_exactly_the_jobs_committed_by_then_and_queues_running_ones_again() {
    let (c, _archive) = recoverable(None);
    let mut client = c.client();
    let mut expected = insert_jobs_returning(&mut client, 5);
    let backup = run(&c, &["--json", "backup", "--mode", "physical"])
        .expect(0)
        .json();
    let archive_path = backup["archive"].as_str().expect("path").to_string();
    let verified = run(&c, &["--json", "verify", &archive_path])
        .expect(0)
        .json();
    assert_eq!(verified["wal"]["all_archived"], true);

    let after_backup = insert_jobs_returning(&mut client, 3);
    let running = after_backup[1];
    client
        .execute(
            "UPDATE jobdb.jobs SET state = 'running', locked_by = 'w1', locked_at = now() WHERE id = $1",
            &[&running],
        )
        .expect("run one");
    expected.extend(&after_backup);
    let target = server_now(&mut client);
    let too_late = insert_jobs_returning(&mut client, 3);
    let all = job_ids(&mut client);

    // After the last archived transaction: refused with the window, nothing replaced.
    pitr(&c, &["--to-time", "2999-01-01T00:00:00Z"])
        .expect(3)
        .error_has("recoverable window");
    let mut client = c.client();
    assert_eq!(job_ids(&mut client), all, "nothing replaced");
    assert_eq!(replaced_dirs(&c), 0);
    drop(client);

    let restored = pitr(&c, &["--to-time", &target, "--json"]).expect(0).json();
    let mut client = c.client();
    assert_eq!(
        job_ids(&mut client),
        expected,
        "jobs committed by {target}, none after"
    );
    assert!(!job_ids(&mut client).iter().any(|id| too_late.contains(id)));
    let row = client
        .query_one(
            "SELECT state, locked_by, locked_at IS NULL FROM jobdb.jobs WHERE id = $1",
            &[&running],
        )
        .expect("job");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, Option<String>>(1),
            row.get::<_, bool>(2)
        ),
        ("queued".to_string(), None, true),
        "running at the target: queued again, unlocked"
    );
    assert_eq!(restored["rescheduled_jobs"], 1);
    assert_eq!(replaced_dirs(&c), 1, "the replaced cluster is kept aside");

    // To the end: everything archived, also what the server had not switched away from.
    let newest = insert_jobs_returning(&mut client, 2);
    let now = job_ids(&mut client);
    drop(client);
    pitr(&c, &["--to-end", "--remove-old"]).expect(0);
    let mut client = c.client();
    assert_eq!(job_ids(&mut client), now);
    assert!(newest.iter().all(|id| now.contains(id)));
    assert_eq!(replaced_dirs(&c), 1, "--remove-old removed the second one");
}

#[test]
fn restore_to_the_point_migrate_made_brings_back_the_old_schema_and_its_jobs() {
    let (c, _archive) = recoverable(Some("1"));
    let mut client = c.client();
    insert_jobs_returning(&mut client, 3);
    run(&c, &["backup", "--mode", "physical"]).expect(0);
    insert_jobs_returning(&mut client, 2);
    let before = job_ids(&mut client);
    run(&c, &["migrate", "--finalize"]).expect(0);
    insert_jobs_returning(&mut client, 2);
    drop(client);

    // The downgrade runbook: stop the engine, restore to the point, start the old engine.
    run(
        &c,
        &[
            "restore",
            "--to-name",
            "before-migrate-2",
            "--yes",
            "--force",
        ],
    )
    .expect(0);
    let mut client = c.client();
    let version = schema_version(&mut client);
    assert_eq!(version, 1, "the schema as it was before migrate");
    assert_eq!(
        job_ids(&mut client),
        before,
        "every job committed before migrate"
    );

    run(
        &c,
        &["restore", "--to-name", "no-such-point", "--yes", "--force"],
    )
    .expect(2)
    .error_has("before-migrate-2");
}

#[test]
fn a_segment_missing_from_the_window_is_refused_with_exit_5_naming_it() {
    let (c, archive) = recoverable(None);
    let mut client = c.client();
    let backup = run(&c, &["--json", "backup", "--mode", "physical"])
        .expect(0)
        .json();
    let backup = backup["archive"].as_str().expect("path").to_string();
    let mut segments = Vec::new();
    for _ in 0..3 {
        segments.push(jobs_in_a_segment_of_their_own(&mut client));
    }
    let jobs = job_ids(&mut client);
    drop(client);
    let lost = &segments[1];
    std::fs::remove_file(archive.join(format!("{lost}.zst"))).expect("lose a segment");
    pitr(&c, &["--to-end"]).expect(5).error_has(lost);
    let mut client = c.client();
    assert_eq!(
        job_ids(&mut client),
        jobs,
        "nothing changed, the server still up"
    );
    assert!(!c.data_dir().join("psql.restoring").exists());
    assert_eq!(replaced_dirs(&c), 0);

    // The gap breaks the window: backups check names it, until a base backup starts after it.
    run(&c, &["backups", "check", "--max-age", "1h"])
        .expect(4)
        .error_has(lost);
    let listing = run(&c, &["backups"]);
    common::assert_has(&listing.expect(0).stdout, lost);

    // A segment of the base backup's own range: verify says the backup cannot be recovered.
    let verified = run(&c, &["--json", "verify", &backup]).expect(0).json();
    let first = verified["wal"]["first_segment"].as_str().expect("segment");
    std::fs::remove_file(archive.join(format!("{first}.zst"))).expect("lose it");
    run(&c, &["verify", &backup]).expect(5).error_has(first);
    run(&c, &["backup", "--mode", "physical"]).expect(0);
    run(&c, &["backups", "check", "--max-age", "1h"]).expect(0);
}

/// Inserts jobs, switches WAL segments and waits until the one holding them is archived;
/// its name.
fn jobs_in_a_segment_of_their_own(client: &mut postgres::Client) -> String {
    insert_jobs_returning(client, 2);
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_current_wal_lsn())", &[])
        .expect("segment")
        .get(0);
    client
        .execute("SELECT pg_switch_wal()", &[])
        .expect("switch");
    archived_through(client, &segment);
    segment
}

fn segment_numbers(archive: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(archive)
        .expect("archive")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let seg = name.strip_suffix(".zst")?;
            (seg.len() == 24).then(|| u64::from_str_radix(&seg[8..], 16).ok())?
        })
        .collect();
    out.sort();
    out
}

#[test]
fn keep_prunes_the_wal_no_kept_base_backup_needs_and_nothing_a_kept_one_needs() {
    let (c, archive) = recoverable(None);
    let mut client = c.client();
    let switch = |client: &mut postgres::Client| jobs_in_a_segment_of_their_own(client);
    run(&c, &["backup", "--mode", "physical"]).expect(0);
    switch(&mut client);
    run(&c, &["backup", "--mark", "old-point"]).expect(0);
    switch(&mut client);
    // A logical backup's --keep counts logical archives only: the base backup stays, and
    // so does its WAL.
    run(&c, &["backup", "--keep", "1"]).expect(0);
    let modes = |c: &TestCluster| -> Vec<String> {
        let listed = run(c, &["--json", "backups"]).expect(0).json();
        let mut modes: Vec<String> = listed
            .as_array()
            .expect("array")
            .iter()
            .map(|a| a["mode"].as_str().unwrap_or_default().to_string())
            .collect();
        modes.sort();
        modes
    };
    assert_eq!(modes(&c), ["online", "physical"]);
    let all = segment_numbers(&archive);
    let kept = run(
        &c,
        &["--json", "backup", "--mode", "physical", "--keep", "1"],
    )
    .expect(0)
    .json();
    let kept = kept["archive"].as_str().expect("path").to_string();
    let first: String = run(&c, &["--json", "verify", &kept]).expect(0).json()["wal"]
        ["first_segment"]
        .as_str()
        .expect("segment")
        .to_string();
    let first = u64::from_str_radix(&first[8..], 16).expect("hex");
    assert_eq!(modes(&c), ["online", "physical"], "one of each kept");
    let left = segment_numbers(&archive);
    assert!(
        all.iter().any(|n| *n < first),
        "there was WAL to prune: {all:?}"
    );
    assert!(
        left.iter().all(|n| *n >= first),
        "nothing before {first}: {left:?}"
    );
    assert_eq!(left.first(), Some(&first), "the kept backup's WAL stays");
    let points = run(&c, &["--json", "backups", "points"]).expect(0).json();
    assert_eq!(points.as_array().map(Vec::len), Some(0), "{points}");
    run(&c, &["backups", "check", "--max-age", "1h"]).expect(0);
    let listing = run(&c, &["backups"]);
    common::assert_has(&listing.expect(0).stdout, "point-in-time restore: from");
}

#[test]
fn kill_9_during_a_point_in_time_restore_leaves_the_old_cluster_twice_then_it_succeeds() {
    let (c, _archive) = recoverable(None);
    let mut client = c.client();
    insert_jobs_returning(&mut client, 3);
    run(&c, &["backup", "--mode", "physical"]).expect(0);
    insert_jobs_returning(&mut client, 2);
    let target = server_now(&mut client);
    let wanted = job_ids(&mut client);
    insert_jobs_returning(&mut client, 2);
    let old = job_ids(&mut client);
    drop(client);
    let staging = c.data_dir().join("psql.restoring");
    let restore_args = pitr_args(&["--to-time", &target]);
    // Killed while extracting, then while its recovery server runs.
    for phase in [Path::new("PG_VERSION"), Path::new("postmaster.pid")] {
        let mut cmd = cmd(&c);
        cmd.args(&restore_args);
        let mut child = common::spawn(cmd);
        common::wait_until(
            "the restore to reach the phase",
            Duration::from_secs(60),
            || staging.join(phase).exists(),
        );
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        assert!(c.pgdata().join("PG_VERSION").exists(), "psql/ is whole");
        run(&c, &["start"]).expect(0);
        let mut client = c.client();
        assert_eq!(job_ids(&mut client), old, "the old cluster, untouched");
    }
    run(&c, &restore_args).expect(0);
    let mut client = c.client();
    assert_eq!(job_ids(&mut client), wanted);
    assert!(!staging.exists());
}

#[test]
fn a_graphile_worker_database_is_restored_to_a_time_with_its_dead_workers_locks_cleared() {
    let engine = common::graphile_npm::engine("0.16.6");
    let (c, archive) = not_started();
    c.write_config(&format!(
        "wal_archive = '{}'\nbackup_dir = '{}'\n",
        archive.display(),
        c.dir.path().join("backups").display()
    ));
    run(&c, &["start", "--create"]).expect(0);
    // The engine's own schema, its jobs, and a worker that died holding a job and its queue.
    engine.populate_at(&c.pgdata(), c.port(), "jobdb");
    let mut client = c.client();
    let jobs = "graphile_worker._private_jobs";
    let count = |client: &mut postgres::Client, sql: &str| common::scalar_i64(client, sql);
    let held = count(
        &mut client,
        &format!("SELECT count(*) FROM {jobs} WHERE locked_by IS NOT NULL"),
    );
    assert!(held > 0, "the dead worker holds a job");
    run(
        &c,
        &[
            "--profile",
            "graphile-worker",
            "backup",
            "--mode",
            "physical",
        ],
    )
    .expect(0);
    client
        .batch_execute("SELECT graphile_worker.add_job('before_target', '{}')")
        .expect("add job");
    let target = server_now(&mut client);
    client
        .batch_execute("SELECT graphile_worker.add_job('after_target', '{}')")
        .expect("add job");
    let wanted = count(&mut client, &format!("SELECT count(*) FROM {jobs}")) - 1;
    drop(client);

    pitr(&c, &["--to-time", &target, "--profile", "graphile-worker"]).expect(0);
    let mut client = c.client();
    assert_eq!(
        count(&mut client, &format!("SELECT count(*) FROM {jobs}")),
        wanted
    );
    let by_task = |client: &mut postgres::Client, task: &str| {
        count(
            client,
            &format!(
                "SELECT count(*) FROM {jobs} j JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = '{task}'"
            ),
        )
    };
    assert_eq!(by_task(&mut client, "before_target"), 1);
    assert_eq!(by_task(&mut client, "after_target"), 0);
    assert_eq!(
        count(
            &mut client,
            &format!("SELECT count(*) FROM {jobs} WHERE locked_by IS NOT NULL")
        ),
        0,
        "the dead worker's job is free again"
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL"
        ),
        0,
        "and its queue"
    );
    drop(client);
    // The engine starts on it and runs a job.
    let exercised = engine.exercise_at(&c.pgdata(), c.port(), "jobdb");
    assert_eq!(exercised["ran"], 1, "{exercised}");
}

/// The base backups and the WAL archive in a bucket, as off-host point-in-time recovery
/// has them: the endpoint in jobdbctl.toml, the keys in a shared credentials file only root
/// can read (the server's `wal-push` gets them from `start`, in its environment).
#[test]
fn a_bucket_holds_the_wal_archive_and_base_backups_for_a_restore_to_a_time() {
    use common::seaweed::{self, direct};
    use std::os::unix::fs::PermissionsExt;
    let store = seaweed::server();
    let prefix = store.prefix();
    let wal = format!("{prefix}wal/");
    let c = TestCluster::new();
    let credentials = c.dir.path().join("aws-credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            seaweed::ACCESS_KEY,
            seaweed::SECRET_KEY
        ),
    )
    .expect("credentials");
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    c.write_config(&format!(
        "wal_archive = '{wal}'\nbackup_dir = '{prefix}backups/'\ns3_endpoint = '{}'\n",
        store.endpoint()
    ));
    let s3 = |args: &[&str]| {
        let mut cmd = cmd(&c);
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        common::run_with(cmd, args)
    };
    // With no keys to give the server: refused before it starts.
    run(&c, &["start", "--create"])
        .expect(2)
        .error_has("no S3 credentials");
    assert!(!c.pgdata().exists(), "nothing made");
    s3(&["start", "--create"]).expect(0);
    let mut client = c.client();
    let command: String = client
        .query_one("SHOW archive_command", &[])
        .expect("archive_command")
        .get(0);
    assert!(command.contains(&wal), "{command}");
    assert!(!command.contains(seaweed::SECRET_KEY));

    let mut expected = insert_jobs_returning(&mut client, 4);
    let backup = s3(&["--json", "backup", "--mode", "physical"])
        .expect(0)
        .json();
    let url = backup["archive"].as_str().expect("url").to_string();
    assert!(url.starts_with(&prefix), "{url}");
    let verified = s3(&["--json", "verify", &url]).expect(0).json();
    assert_eq!(verified["wal"]["all_archived"], true);
    expected.extend(insert_jobs_returning(&mut client, 3));
    let target = server_now(&mut client);
    let too_late = insert_jobs_returning(&mut client, 2);
    let segment = jobs_in_a_segment_of_their_own(&mut client);
    let key = format!("{}{segment}.zst", direct::key_prefix(&wal));
    let stored = direct::get(&key).expect("the segment is in the bucket");
    drop(client);

    s3(&pitr_args(&["--to-time", &target])).expect(0);
    let mut client = c.client();
    assert_eq!(job_ids(&mut client), expected, "jobs committed by {target}");
    assert!(!job_ids(&mut client).iter().any(|id| too_late.contains(id)));
    drop(client);

    // Another file under an archived name: refused, the object untouched; the same
    // contents again: success.
    let push = |file: &Path| {
        let mut cmd = cmd(&c);
        store.env(&mut cmd);
        common::run_with(cmd, &["wal-push", "--to", &wal, path(file)])
    };
    let other = c.dir.path().join(&segment);
    std::fs::write(&other, vec![7u8; 16 << 20]).expect("other segment");
    push(&other).expect(1).error_has("other contents");
    assert_eq!(direct::get(&key).as_deref(), Some(&stored[..]));
    let original = zstd::decode_all(&stored[..]).expect("zstd");
    std::fs::write(&other, original).expect("same segment");
    push(&other).expect(0);
    assert_eq!(direct::get(&key).as_deref(), Some(&stored[..]));

    // Retention in the bucket: a new base backup with --keep 1 removes the older one and
    // exactly the WAL before the kept one's first segment; the window is whole.
    let numbers = || -> Vec<u64> {
        let mut n: Vec<u64> = direct::names(&direct::key_prefix(&wal))
            .iter()
            .filter_map(|name| {
                let seg = name.rsplit('/').next()?.strip_suffix(".zst")?;
                (seg.len() == 24).then(|| u64::from_str_radix(&seg[8..], 16).ok())?
            })
            .collect();
        n.sort();
        n
    };
    let before = numbers();
    let kept = s3(&["--json", "backup", "--mode", "physical", "--keep", "1"])
        .expect(0)
        .json();
    let kept = kept["archive"].as_str().expect("url").to_string();
    let first = s3(&["--json", "verify", &kept]).expect(0).json()["wal"]["first_segment"]
        .as_str()
        .map(|s| u64::from_str_radix(&s[8..], 16).expect("hex"))
        .expect("first segment");
    let after = numbers();
    assert!(
        before.iter().any(|n| *n < first),
        "WAL to prune: {before:?}"
    );
    assert_eq!(
        after.first(),
        Some(&first),
        "pruned to the kept base: {after:?}"
    );
    s3(&["backups", "check", "--max-age", "1h"]).expect(0);
    common::assert_has(
        &s3(&["backups"]).expect(0).stdout,
        "point-in-time restore: from",
    );
}
