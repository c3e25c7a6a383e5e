//! `cargo bench --bench s3`: a zstd backup of a generated job database (JOBS, default
//! 1,000,000) to a local SeaweedFS bucket against the same backup to a local file, and the
//! restores from each. Rounds (ROUNDS, default 3) alternate file and bucket runs; prints every
//! round's ratios, those of the best times, and the peak RSS of each. Then, unless BIG=0, the
//! payloads are grown until an uncompressed archive is over 1 GiB, which is backed up to the
//! bucket and restored from it with the peak RSS of each.
//! Goals (issue 22): bucket ≤ 1.15 × file for backup and restore; peak RSS ≤ 256 MiB.

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::process::Command;
use std::time::Instant;

use common::seaweed;
use common::TestCluster;
use shared::{env_num, mb, peak_rss_mib, size, timed};

const TARGETS: [&str; 2] = ["r_file", "r_bucket"];

fn main() {
    let jobs = env_num("JOBS", 1_000_000);
    let rounds = env_num("ROUNDS", 3).max(1);
    let c = shared::generated(jobs);
    let store = seaweed::server();
    let prefix = store.prefix();
    let work = common::temp_dir("bench");

    let with_store = |mut cmd: Command| {
        store.env(&mut cmd);
        cmd
    };
    let backup_cmd = |to: &str, codec: &str| {
        let mut cmd = c.cmd();
        cmd.args(["-q", "backup", "--compression", codec, "--output", to]);
        with_store(cmd)
    };
    let restore_cmd = |db: &str, archive: &str| {
        shared::recreate_db(&c, &TARGETS, db);
        let mut cmd = common::jobdbctl(&c.configdir);
        cmd.arg("--database-url")
            .arg(format!(
                "postgresql://postgres@localhost/{db}?host={}&port=5432",
                c.pgdata().display()
            ))
            .args(["-q", "restore", archive]);
        with_store(cmd)
    };
    let file = work.path().join("plain.tar.zst");
    let file_str = file.to_str().expect("utf-8").to_string();
    let mut times: Vec<[f64; 4]> = Vec::new();
    let mut last_object = String::new();
    for round in 0..rounds {
        let _ = std::fs::remove_file(&file);
        let object = format!("{prefix}round-{round}.tar.zst");
        let t_file = timed("backup to a file", backup_cmd(&file_str, "zstd"));
        let t_bucket = timed("backup to the bucket", backup_cmd(&object, "zstd"));
        let r_file = timed("restore from the file", restore_cmd("r_file", &file_str));
        let r_bucket = timed("restore from the bucket", restore_cmd("r_bucket", &object));
        times.push([t_file, t_bucket, r_file, r_bucket]);
        last_object = object;
    }
    println!("\nzstd backup and restore of {jobs} jobs, a local file against a local SeaweedFS bucket, {rounds} rounds:");
    println!("  archive: {:.1} MB", mb(size(&file)));
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
    let _ = std::fs::remove_file(&file);
    let rss_backup_file = peak_rss_mib(backup_cmd(&file_str, "zstd"));
    let rss_backup_bucket = peak_rss_mib(backup_cmd(&format!("{prefix}rss.tar.zst"), "zstd"));
    let rss_restore_file = peak_rss_mib(restore_cmd("r_file", &file_str));
    let rss_restore_bucket = peak_rss_mib(restore_cmd("r_bucket", &last_object));
    println!(
        "  peak RSS: backup file {rss_backup_file:.0} MiB, bucket {rss_backup_bucket:.0} MiB; restore file {rss_restore_file:.0} MiB, bucket {rss_restore_bucket:.0} MiB (goal <= 256)"
    );
    let best = |i: usize| times.iter().map(|t| t[i]).fold(f64::INFINITY, f64::min);
    println!(
        "best: backup bucket / file {:.3} (goal <= 1.15); restore bucket / file {:.3} (goal <= 1.15)",
        best(1) / best(0),
        best(3) / best(2)
    );

    if env_num("BIG", 1) == 0 {
        return;
    }
    // Over 1 GiB as stored: uncompressed, with a kilobyte more payload per job.
    let per_job = (1u64 << 30) / jobs.max(1) as u64 + 64;
    eprintln!("growing payloads by {per_job} bytes a job ...");
    let mut client = c.client();
    client
        .batch_execute(&format!(
            "UPDATE jobdb.jobs SET payload = jsonb_build_object('blob', repeat(md5(id::text), {}))",
            per_job / 32 + 1
        ))
        .expect("grow payloads");
    shared::settle(&mut client);
    drop(client);
    let big_file = work.path().join("big.tar");
    let rss_file = peak_rss_mib(backup_cmd(big_file.to_str().expect("utf-8"), "none"));
    let _ = std::fs::remove_file(&big_file);
    let big = format!("{prefix}big.tar");
    let started = Instant::now();
    let rss_up = peak_rss_mib(backup_cmd(&big, "none"));
    let up_secs = started.elapsed().as_secs_f64();
    let bytes = object_bytes(&c, store, &prefix, "big.tar");
    let started = Instant::now();
    let rss_down = peak_rss_mib(restore_cmd("r_bucket", &big));
    let down_secs = started.elapsed().as_secs_f64();
    println!(
        "big archive: {:.2} GiB in the bucket; backup {up_secs:.1} s, peak RSS {rss_up:.0} MiB (to a file: {rss_file:.0} MiB); restore {down_secs:.1} s, peak RSS {rss_down:.0} MiB (goal <= 256)",
        bytes as f64 / (1u64 << 30) as f64
    );
}

/// The stored size of `name` under `prefix`, as `backups --json` lists it.
fn object_bytes(c: &TestCluster, store: &seaweed::Seaweed, prefix: &str, name: &str) -> u64 {
    let mut list = c.cmd();
    store.env(&mut list);
    list.args(["backups", "--dir", prefix, "--json"]);
    let out = list.output().expect("backups");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("backups json");
    rows.as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(name)))
        })
        .and_then(|r| r["bytes"].as_u64())
        .unwrap_or(0)
}
