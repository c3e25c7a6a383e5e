//! `cargo bench --bench catalog`: the backup catalog with ARCHIVES (default 10,000) small
//! archives of one embedded cluster in one directory. Prints the time and peak RSS of
//! `backups` (listing), `backups prune --dry-run`, and `restore latest` (with the time of a
//! restore of the same archive by path beside it, so the choosing is the difference).
//! Goals (issue 21): listing ≤ 1 s, `restore latest` choosing ≤ 0.5 s, memory independent of
//! the number of archives beyond a few hundred bytes each. With STORE=s3 the archives are
//! objects in a local SeaweedFS bucket (issue 22: the catalog copes with 10,000+ objects).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use common::generate::{self, Spec};
use common::TestCluster;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `cmd` under `/usr/bin/time`, returning seconds, its peak RSS in MiB, and its output.
/// (The rusage of a child forked from this process would start from this process's own
/// resident set.)
fn measured(cmd: Command) -> (f64, f64, common::Run) {
    let rss_file = std::env::temp_dir().join(format!("jobdbctl-bench-{}.rss", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&rss_file);
    // PERF=DIR records each run with `perf record -g` into DIR (for profiling, not figures).
    if let Ok(dir) = std::env::var("PERF") {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        timed.args([
            "perf",
            "record",
            "-g",
            "-o",
            &format!("{dir}/perf-{n}.data"),
            "--",
        ]);
    }
    timed.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    let started = Instant::now();
    let out = timed.output().expect("run jobdbctl");
    let seconds = started.elapsed().as_secs_f64();
    let kib: f64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    let _ = std::fs::remove_file(&rss_file);
    (seconds, kib / 1024.0, common::Run::from(out))
}

/// A copy of `template` as jobdbctl would have named and dated it `age` ago, in the
/// directory `dir` or, when `bucket` names a prefix URL, there.
fn copy_at(
    template: &[u8],
    stem: &str,
    dir: &Path,
    bucket: Option<&str>,
    when: DateTime<Utc>,
) -> PathBuf {
    let name = format!("{stem}{}.tar.gz", when.format("%Y%m%dT%H%M%S%.3fZ"));
    let bytes = common::archive_edit::rewrite(template, |m| {
        m.insert("created_at".into(), when.to_rfc3339().into());
    });
    if let Some(prefix) = bucket {
        let key = format!("{}{name}", common::seaweed::direct::key_prefix(prefix));
        common::seaweed::direct::put(&key, &bytes);
        return PathBuf::from(format!("{prefix}{name}"));
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write archive");
    path
}

fn main() {
    let archives = env_usize("ARCHIVES").unwrap_or(10_000);
    let cluster = TestCluster::started();
    generate::populate(&mut cluster.client(), "jobdb", &Spec::jobs(20));
    cluster
        .client()
        .batch_execute("DELETE FROM jobdb.workers")
        .expect("no live workers");
    let dir = common::temp_dir("cb");
    if std::env::var_os("CATALOG_KEEP").is_some() {
        println!(
            "keeping {} (data dir {})",
            dir.path().display(),
            cluster.data_dir().display()
        );
    }
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    let run = cluster.run(&[
        "backup",
        "--json",
        "--output",
        &format!("{}/", backups.display()),
    ]);
    run.expect(0);
    let first = PathBuf::from(run.json()["archive"].as_str().expect("archive"));
    let template = std::fs::read(&first).expect("read archive");
    let name = first.file_name().and_then(|n| n.to_str()).expect("name");
    let stem = &name[..name.len() - "20240131T235959.123Z.tar.gz".len()];
    std::fs::remove_file(&first).expect("remove template");
    let now = Utc::now();
    let bucket =
        (std::env::var("STORE").as_deref() == Ok("s3")).then(|| common::seaweed::server().prefix());
    let dirarg = bucket
        .clone()
        .unwrap_or_else(|| backups.to_str().expect("utf-8").to_string());
    let cmd = || {
        let mut cmd = cluster.cmd();
        if bucket.is_some() {
            common::seaweed::server().env(&mut cmd);
        }
        cmd
    };
    let list = |count: usize| {
        let mut list = cmd();
        list.args(["backups", "--dir", &dirarg, "--json"]);
        let (secs, rss, run) = measured(list);
        run.expect(0);
        assert_eq!(run.json().as_array().map_or(0, Vec::len), count);
        (secs, rss)
    };
    // A fifth first, then all: the memory a listing adds per archive is the difference.
    let started = Instant::now();
    let mut newest = PathBuf::new();
    let fifth = archives / 5;
    let mut fifth_rss = f64::NAN;
    for i in 0..archives {
        let when = now - Duration::minutes((archives - i) as i64);
        newest = copy_at(&template, stem, &backups, bucket.as_deref(), when);
        if i + 1 == fifth {
            let (secs, rss) = list(fifth);
            fifth_rss = rss;
            println!("backups (list) of {fifth:5}  {secs:6.2} s   peak RSS {rss:6.1} MiB");
        }
    }
    println!(
        "{archives} archives of {} bytes each written in {:.1} s",
        template.len(),
        started.elapsed().as_secs_f64()
    );
    let (secs, rss) = list(archives);
    println!(
        "backups (list) of {archives:5}  {secs:6.2} s   peak RSS {rss:6.1} MiB   ({:.0} bytes more per archive)",
        (rss - fifth_rss) * 1048576.0 / (archives - fifth) as f64
    );
    let dirarg = dirarg.as_str();

    let mut prune = cmd();
    prune.args([
        "backups",
        "prune",
        "--dir",
        dirarg,
        "--keep",
        "5",
        "--dry-run",
        "--json",
    ]);
    let (secs, rss, run) = measured(prune);
    run.expect(0);
    println!("backups prune --dry-run  {secs:6.2} s   peak RSS {rss:6.1} MiB");

    let mut by_path = cmd();
    by_path.args([
        "restore",
        newest.to_str().expect("utf-8"),
        "--yes",
        "--force",
    ]);
    let (path_secs, path_rss, run) = measured(by_path);
    run.expect(0);
    let mut latest = cmd();
    latest.args([
        "restore", "latest", "--dir", dirarg, "--yes", "--force", "--json",
    ]);
    let (secs, rss, run) = measured(latest);
    run.expect(0);
    assert_eq!(
        run.json()["latest_archive"],
        newest.to_str().expect("utf-8")
    );
    println!(
        "restore latest           {secs:6.2} s   peak RSS {rss:6.1} MiB   (restore by path {path_secs:.2} s, {path_rss:.1} MiB: choosing took {:.2} s)",
        secs - path_secs
    );
    if std::env::var_os("CATALOG_KEEP").is_some() {
        std::mem::forget(dir);
    }
}
