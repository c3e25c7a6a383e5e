//! Data directories as scripts give them: relative ones are made absolute before anything
//! records them (so `restore latest` from elsewhere finds every archive of the cluster), a
//! relative path in jobdbctl.toml is relative to its directory, and a mistyped one is said
//! to hold no cluster instead of passing as a stopped server.

mod common;

use std::path::{Path, PathBuf};

use common::{insert_job, scalar_i64, TestCluster};

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `jobdbctl ARGS` run from `cwd`, with only the cluster's config dir given.
fn run_in(c: &TestCluster, cwd: &Path, args: &[&str]) -> common::Run {
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.current_dir(cwd).args(args);
    common::run(cmd)
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
    let older = run_in(
        &c,
        Path::new("/"),
        &[
            "--data-dir",
            path_str(&data),
            "backup",
            "--json",
            "--output",
            &format!("{}/backups/", top.display()),
        ],
    );
    older.expect(0);
    insert_job(&mut client);
    let newest_jobs = jobs(&c);
    let newer = run_in(
        &c,
        top,
        &[
            "--data-dir",
            "data",
            "backup",
            "--json",
            "--output",
            "backups/",
        ],
    );
    newer.expect(0);
    let newer_path = PathBuf::from(newer.json()["archive"].as_str().expect("archive"));
    assert!(newer_path.is_absolute(), "{newer_path:?}");
    assert!(newer_path.starts_with(top), "{newer_path:?}");

    let listing = run_in(
        &c,
        Path::new("/"),
        &[
            "--data-dir",
            path_str(&data),
            "backups",
            "--dir",
            &format!("{}/backups", top.display()),
            "--json",
        ],
    );
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
        &[
            "--data-dir",
            &detour,
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
        &[
            "--data-dir",
            "data",
            "backups",
            "prune",
            "--dir",
            "backups",
            "--keep",
            "1",
            "--yes",
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
    params.expect(0);
    assert!(
        params.stdout.contains(path_str(&c.data_dir())),
        "{}",
        params.stdout
    );
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
    again.expect(0);
    assert!(
        again.stdout.contains("server already running (pid"),
        "{}",
        again.stdout
    );
    assert!(again.stderr.is_empty(), "{}", again.stderr);
}
