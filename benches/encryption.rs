//! `cargo bench --bench encryption`: a zstd backup and its restore, encrypted to an age
//! recipient against the same unencrypted, on a generated job database (JOBS, default
//! 1,000,000). Rounds (ROUNDS, default 3) alternate plain and encrypted runs, so a change in
//! the machine's speed touches both alike; prints every round's ratios and those of the best
//! times. Goal (issue 23): encrypted ≤ 1.1 × plain, for backup and for restore.

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::path::Path;
use std::process::Command;

use shared::{env_num, mb, peak_rss_mib, size, timed};

const TARGETS: [&str; 2] = ["r_plain", "r_sealed"];

fn main() {
    let jobs = env_num("JOBS", 1_000_000);
    let rounds = env_num("ROUNDS", 3).max(1);
    let c = shared::generated(jobs);
    let work = common::temp_dir("bench");
    let key = work.path().join("key.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen");
    assert!(out.status.success(), "age-keygen failed");
    let recipient = std::fs::read_to_string(&key)
        .expect("key")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .expect("public key");

    let plain = work.path().join("plain.tar.zst");
    let sealed = work.path().join("sealed.tar.zst.age");
    let backup = |to: &Path, extra: &[&str]| {
        let _ = std::fs::remove_file(to);
        let mut cmd = c.cmd();
        cmd.args(["-q", "backup", "--compression", "zstd", "--output"])
            .arg(to)
            .args(extra);
        timed("jobdbctl backup", cmd)
    };
    let restore_cmd = |db: &str, archive: &Path, extra: &[&str]| {
        shared::recreate_db(&c, &TARGETS, db);
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("--database-url")
            .arg(format!(
                "postgresql://postgres@localhost/{db}?host={}&port=5432",
                c.pgdata().display()
            ))
            .args(["-q", "restore"])
            .arg(archive)
            .args(extra);
        cmd
    };
    let restore = |db: &str, archive: &Path, extra: &[&str]| {
        timed("jobdbctl restore", restore_cmd(db, archive, extra))
    };
    let mut times: Vec<[f64; 4]> = Vec::new();
    for _ in 0..rounds {
        times.push([
            backup(&plain, &[]),
            backup(&sealed, &["--encrypt-to", &recipient]),
            restore("r_plain", &plain, &[]),
            restore(
                "r_sealed",
                &sealed,
                &["--identity", key.to_str().expect("utf-8")],
            ),
        ]);
    }
    println!(
        "\nzstd backup and restore of {jobs} jobs, plain and encrypted (age X25519), {rounds} rounds:"
    );
    println!(
        "  archive: plain {:.1} MB, encrypted {:.1} MB",
        mb(size(&plain)),
        mb(size(&sealed))
    );
    for (i, t) in times.iter().enumerate() {
        println!(
            "  round {}: backup {:.2} s / {:.2} s ({:.3}); restore {:.2} s / {:.2} s ({:.3})",
            i + 1,
            t[0],
            t[1],
            t[1] / t[0],
            t[2],
            t[3],
            t[3] / t[2]
        );
    }
    let identity = ["--identity", key.to_str().expect("utf-8")];
    println!(
        "  peak RSS of a restore: plain {:.0} MiB, encrypted {:.0} MiB",
        peak_rss_mib(restore_cmd("r_plain", &plain, &[])),
        peak_rss_mib(restore_cmd("r_sealed", &sealed, &identity))
    );
    let best = |i: usize| times.iter().map(|t| t[i]).fold(f64::INFINITY, f64::min);
    println!(
        "best: backup encrypted / plain {:.3} (goal <= 1.1); restore encrypted / plain {:.3} (goal <= 1.1)",
        best(1) / best(0),
        best(3) / best(2)
    );
}
