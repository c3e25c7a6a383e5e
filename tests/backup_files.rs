//! The archive's file and its neighbours: what backup does with things already sitting at
//! `PATH.partial` and `PATH` in a directory another user can write to, and which archives
//! `--keep` / `--keep-within` count and delete.
//!
//! The planting tests run as root (as CI does) and plant as the existing `nobody` user in a
//! directory of mode 0777: a shared, group- or world-writable backup directory without the
//! sticky bit. Without the sticky bit the kernel's fs.protected_symlinks and
//! fs.protected_regular do not apply, so these tests check jobdbctl's own defences, not the
//! kernel's.

mod common;

use common::path_str;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};

use common::TestDb;

const NOBODY_UID: u32 = 65534;

fn skip_unless_root() -> bool {
    if !common::is_root() {
        eprintln!("skipped: planting files as another user needs root");
        return true;
    }
    false
}

/// A directory `nobody` can write to (0777, no sticky bit; see the module comment).
fn shared_dir() -> tempfile::TempDir {
    let dir = common::temp_dir("shared");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod 0777");
    dir
}

#[track_caller]
fn as_nobody(args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .args(args)
        .output()
        .expect("runuser");
    assert!(out.status.success(), "as nobody: {args:?}: {out:?}");
}

/// What `nobody` can read at `path`, if anything.
fn nobody_reads(path: &Path) -> Option<Vec<u8>> {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "cat"])
        .arg(path)
        .output()
        .expect("runuser cat");
    out.status.success().then_some(out.stdout)
}

/// Nothing in `dir` that `nobody` can read holds archive data (a gzip stream).
#[track_caller]
fn assert_no_leak(dir: &Path) {
    for e in fs::read_dir(dir).expect("list") {
        let path = e.expect("entry").path();
        if let Some(bytes) = nobody_reads(&path) {
            assert!(
                !bytes.starts_with(&[0x1f, 0x8b]),
                "nobody can read archive data at {}",
                path.display()
            );
        }
    }
}

/// A root-owned file outside the shared directory, the target of planted links.
struct Precious {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

const PRECIOUS: &[u8] = b"root's precious file\n";

impl Precious {
    fn new() -> Precious {
        let dir = common::temp_dir("tgt");
        let path = dir.path().join("precious");
        fs::write(&path, PRECIOUS).expect("write precious");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        Precious { _dir: dir, path }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        let now = fs::read(&self.path).expect("read precious");
        assert!(
            now == PRECIOUS,
            "the link target was overwritten ({} bytes now)",
            now.len()
        );
        let meta = fs::metadata(&self.path).expect("stat precious");
        assert_eq!(meta.mode() & 0o7777, 0o644, "mode of the link target");
        assert_eq!(meta.uid(), 0, "owner of the link target");
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_symlink_planted_at_partial_is_refused_and_its_target_untouched() {
    if skip_unless_root() {
        return;
    }
    let db = TestDb::with_jobs(50);
    let dir = shared_dir();
    let precious = Precious::new();
    let archive = dir.path().join("x.tar.gz");
    let partial = dir.path().join("x.tar.gz.partial");
    as_nobody(&["ln", "-s", path_str(&precious.path), path_str(&partial)]);

    let run = db.run(&["backup", "--output", path_str(&archive)]);
    // The harm first: before this fix the backup wrote through the link and succeeded.
    precious.assert_untouched();
    assert_no_leak(dir.path());
    run.expect(3);
    let line = run.one_line_error();
    assert!(
        line.contains(path_str(&partial))
            && line.contains("symbolic link")
            && line.contains("nobody"),
        "names the path, what it is and its owner: {line}"
    );
    assert_eq!(fs::read_link(&partial).expect("link stays"), precious.path);
    assert_eq!(names(dir.path()), ["x.tar.gz.partial"], "nothing written");
}

#[test]
fn a_file_planted_at_partial_by_another_user_is_refused_and_gets_no_data() {
    if skip_unless_root() {
        return;
    }
    let db = TestDb::with_jobs(50);
    let dir = shared_dir();
    let archive = dir.path().join("x.tar.gz");
    let partial = dir.path().join("x.tar.gz.partial");
    as_nobody(&[
        "sh",
        "-c",
        &format!("printf planted > '{}'", path_str(&partial)),
    ]);

    let run = db.run(&["backup", "--output", path_str(&archive)]);
    // The harm first: before this fix the planter ended up owning the archive.
    assert_no_leak(dir.path());
    assert_eq!(
        nobody_reads(&partial).as_deref(),
        Some(&b"planted"[..]),
        "the planted file keeps its content"
    );
    run.expect(3);
    let line = run.one_line_error();
    assert!(
        line.contains(path_str(&partial))
            && line.contains("regular file")
            && line.contains("nobody"),
        "{line}"
    );
    let meta = fs::symlink_metadata(&partial).expect("stat");
    assert_eq!(meta.uid(), NOBODY_UID);
    assert_eq!(names(dir.path()), ["x.tar.gz.partial"], "nothing written");
    assert_no_leak(dir.path());
}

#[test]
fn a_symlink_or_foreign_file_at_the_final_name_is_refused() {
    if skip_unless_root() {
        return;
    }
    let db = TestDb::with_jobs(50);
    let dir = shared_dir();
    let precious = Precious::new();
    let archive = dir.path().join("x.tar.gz");
    as_nobody(&["ln", "-s", path_str(&precious.path), path_str(&archive)]);

    let run = db.run(&["backup", "--output", path_str(&archive)]);
    run.expect(3);
    let line = run.one_line_error();
    assert!(
        line.contains(path_str(&archive))
            && line.contains("symbolic link")
            && line.contains("nobody"),
        "{line}"
    );
    precious.assert_untouched();
    assert_eq!(fs::read_link(&archive).expect("link stays"), precious.path);
    assert_eq!(names(dir.path()), ["x.tar.gz"], "no .partial left");
    assert_no_leak(dir.path());

    // Another user's regular file under the final name is not ours to replace either.
    fs::remove_file(&archive).expect("remove link");
    as_nobody(&[
        "sh",
        "-c",
        &format!("printf theirs > '{}'", path_str(&archive)),
    ]);
    let run = db.run(&["backup", "--output", path_str(&archive)]);
    run.expect(3);
    assert!(run
        .one_line_error()
        .contains("regular file owned by nobody"));
    assert_eq!(nobody_reads(&archive).as_deref(), Some(&b"theirs"[..]));
    assert_eq!(
        fs::symlink_metadata(&archive).expect("stat").uid(),
        NOBODY_UID
    );
    assert_eq!(names(dir.path()), ["x.tar.gz"]);
}

#[test]
fn our_own_stale_partial_is_replaced_not_written_through() {
    let db = TestDb::with_jobs(50);
    let dir = common::temp_dir("bk");
    let elsewhere = common::temp_dir("keep");
    // A stale .partial of ours that is also a hard link to another file: truncating it in
    // place would destroy that file.
    let keepme = elsewhere.path().join("keepme");
    fs::write(&keepme, b"keep me\n").expect("write");
    fs::set_permissions(&keepme, fs::Permissions::from_mode(0o644)).expect("chmod");
    let archive = dir.path().join("x.tar.gz");
    let partial = dir.path().join("x.tar.gz.partial");
    fs::hard_link(&keepme, &partial).expect("hard link");

    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    assert_eq!(fs::read(&keepme).expect("read"), b"keep me\n");
    assert_eq!(
        fs::metadata(&keepme).expect("stat").nlink(),
        1,
        "only the stale name went"
    );
    assert_eq!(names(dir.path()), ["x.tar.gz"]);
    let meta = fs::symlink_metadata(&archive).expect("stat");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    // SAFETY: geteuid cannot fail.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    db.run(&["verify", path_str(&archive)]).expect(0);

    // Our own older archive of the same explicit name is simply replaced.
    let first = meta.ino();
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    assert_ne!(fs::symlink_metadata(&archive).expect("stat").ino(), first);
    db.run(&["verify", path_str(&archive)]).expect(0);
}

// ---------------------------------------------------------------------------------------
// Retention

/// Backs up into `dir` (a name jobdbctl chooses) and returns the archive's path.
fn backup_into(db: &TestDb, dir: &Path, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let mut args = vec!["backup", "--output", path_str(dir), "--json"];
    args.extend_from_slice(extra);
    let run = db.run(&args);
    run.expect(0);
    let json = run.json();
    let path = PathBuf::from(json["archive"].as_str().expect("archive path"));
    (path, json)
}

fn paths(json: &serde_json::Value, key: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = json[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {json}"))
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("path")))
        .collect();
    v.sort();
    v
}

/// A copy of `archive` (a managed one jobdbctl named) made `days` old, under the name
/// jobdbctl would have given it then.
fn backdated(archive: &Path, days: i64) -> PathBuf {
    let when: DateTime<Utc> = Utc::now() - chrono::Duration::days(days);
    let name = archive.file_name().and_then(|n| n.to_str()).expect("name");
    let stem = &name[..name.len() - "20240131T235959.123Z.tar.gz".len()];
    let path = archive.with_file_name(format!(
        "{stem}{}.tar.gz",
        when.format("%Y%m%dT%H%M%S%.3fZ")
    ));
    let bytes = common::archive_edit::rewrite(&fs::read(archive).expect("read"), |m| {
        m.insert("created_at".into(), when.to_rfc3339().into());
    });
    fs::write(&path, bytes).expect("write backdated");
    path
}

#[test]
fn keep_counts_only_complete_archives_and_never_deletes_a_damaged_one() {
    let db = TestDb::with_jobs(200);
    let other = TestDb::with_jobs(20);
    let dir = common::temp_dir("bk");
    let (theirs, _) = backup_into(&other, dir.path(), &[]);
    let (a, _) = backup_into(&db, dir.path(), &[]);
    let (b, _) = backup_into(&db, dir.path(), &[]);
    let (c, _) = backup_into(&db, dir.path(), &[]);
    // The newest but one is cut short: its header still reads, the rest does not.
    let len = fs::metadata(&c).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&c)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    db.run(&["verify", path_str(&c)]).expect(5);

    let run = db.run(&[
        "backup",
        "--output",
        path_str(dir.path()),
        "--keep",
        "2",
        "--json",
    ]);
    run.expect(0);
    let json = run.json();
    let d = PathBuf::from(json["archive"].as_str().expect("path"));
    assert_eq!(
        paths(&json, "pruned"),
        std::slice::from_ref(&a),
        "only the oldest complete one goes"
    );
    assert_eq!(paths(&json, "damaged"), std::slice::from_ref(&c));
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains(path_str(&c)),
        "the damaged archive is reported: {}",
        run.stderr
    );
    for kept in [&b, &c, &d, &theirs] {
        assert!(kept.exists(), "{} kept", kept.display());
    }
    assert!(!a.exists());

    let (e, json) = backup_into(&db, dir.path(), &["--keep", "2"]);
    assert_eq!(paths(&json, "pruned"), std::slice::from_ref(&b));
    let mut left = vec![c.clone(), d.clone(), e.clone(), theirs.clone()];
    left.sort();
    let mut found: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    found.sort();
    assert_eq!(
        found, left,
        "two complete ones, the damaged one, the other database's"
    );
    other.run(&["verify", path_str(&theirs)]).expect(0);
}

#[test]
fn archives_a_person_named_or_destroy_wrote_are_never_pruned() {
    let db = TestDb::with_jobs(100);
    let dir = common::temp_dir("bk");
    // The upgrade runbook's backup, under a name the operator chose.
    let named = dir.path().join("pre-upgrade.tar.gz");
    db.run(&["backup", "--output", path_str(&named)]).expect(0);
    // An archive from before retention marks existed, under one of jobdbctl's names.
    let (managed, _) = backup_into(&db, dir.path(), &[]);
    let unmarked = backdated(&managed, 3);
    fs::write(
        &unmarked,
        common::archive_edit::rewrite(&fs::read(&unmarked).expect("read"), |m| {
            m.remove("retention");
        }),
    )
    .expect("write");
    fs::remove_file(&managed).expect("remove");
    db.run(&["verify", path_str(&unmarked)]).expect(0);

    // destroy --backup-first into the directory: jobdbctl picks the name, but the archive
    // is pinned.
    db.run(&[
        "destroy",
        "--yes",
        "--force",
        "--backup-first",
        path_str(dir.path()),
    ])
    .expect(0);
    let before: Vec<String> = names(dir.path());
    let pre_destroy: Vec<PathBuf> = before
        .iter()
        .map(|n| dir.path().join(n))
        .filter(|p| *p != named && *p != unmarked)
        .collect();
    assert_eq!(pre_destroy.len(), 1, "{before:?}");
    let pre_destroy = pre_destroy[0].clone();
    db.run(&["init"]).expect(0);

    let mut newest = PathBuf::new();
    for _ in 0..3 {
        let (path, json) = backup_into(&db, dir.path(), &["--keep", "1"]);
        for p in paths(&json, "pruned") {
            assert!(
                p != named && p != unmarked && p != pre_destroy,
                "pruned {}",
                p.display()
            );
        }
        newest = path;
    }
    let mut expected: Vec<String> = [&named, &unmarked, &pre_destroy, &newest]
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    for p in [&named, &unmarked, &pre_destroy] {
        db.run(&["verify", path_str(p)]).expect(0);
    }
}

#[test]
fn keep_within_keeps_recent_archives_and_either_rule_keeps_one() {
    let db = TestDb::with_jobs(100);
    let dir = common::temp_dir("bk");
    let (fresh, _) = backup_into(&db, dir.path(), &[]);
    let d60 = backdated(&fresh, 60);
    let d40 = backdated(&fresh, 40);
    let d10 = backdated(&fresh, 10);
    fs::remove_file(&fresh).expect("remove");

    // Newest 3: new, 10 days, 40 days; within 20 days: new, 10 days. Either rule keeps.
    let (new1, json) = backup_into(&db, dir.path(), &["--keep", "3", "--keep-within", "20d"]);
    assert_eq!(paths(&json, "pruned"), std::slice::from_ref(&d60));
    assert!(d40.exists() && d10.exists() && new1.exists());

    // --keep-within alone: the 40-day-old one goes, everything within 20 days stays.
    let (new2, json) = backup_into(&db, dir.path(), &["--keep-within", "20d"]);
    assert_eq!(paths(&json, "pruned"), std::slice::from_ref(&d40));
    for p in [&d10, &new1, &new2] {
        assert!(p.exists(), "{} kept", p.display());
    }
    assert_eq!(names(dir.path()).len(), 3);

    let bad = db.run(&["backup", "--output", "-", "--keep-within", "1d"]);
    bad.expect(2);
    assert!(bad.one_line_error().contains("--keep-within"));
}

#[test]
fn an_output_in_a_missing_directory_is_refused_unless_it_is_the_backup_dir() {
    let db = TestDb::with_jobs(50);
    let dir = common::temp_dir("bo");
    let typo = dir.path().join("bakcups/x.tar.gz");
    let refused = db.run(&["backup", "--output", path_str(&typo)]);
    refused.expect(2);
    assert!(
        refused
            .one_line_error()
            .contains("does not exist; create it or choose another --output"),
        "{}",
        refused.stderr
    );
    assert!(!dir.path().join("bakcups").exists(), "nothing is created");
    // A missing directory written as DIR/ is a directory, never a file named DIR.
    let slash = format!("{}/", dir.path().join("bakcups").display());
    db.run(&["backup", "--output", &slash]).expect(2);
    assert!(
        !dir.path().join("bakcups").exists(),
        "no file named like it"
    );

    // The configured backup directory is created for a named archive, as for a default one.
    let backup_dir = dir.path().join("backups");
    db.write_config(&format!("backup_dir = '{}'\n", backup_dir.display()));
    // backup_dir given as DIR/ before it exists: created, the archive inside it.
    let slash = format!("{}/", backup_dir.display());
    db.run(&["backup", "--output", &slash]).expect(0);
    assert!(backup_dir.is_dir(), "a directory, not a file named like it");
    assert_eq!(names(&backup_dir).len(), 1);
    let named = backup_dir.join("before-upgrade.tar.gz");
    db.run(&["backup", "--output", path_str(&named)]).expect(0);
    db.run(&["verify", path_str(&named)]).expect(0);
    assert_eq!(
        fs::metadata(&backup_dir).expect("backup dir").mode() & 0o777,
        0o700
    );
}
