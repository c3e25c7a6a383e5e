//! `cargo bench --bench restore_scale`: restore against `pg_restore -j 2` (and backup against
//! `pg_dump -Fc`) at several sizes
//! in one run (SIZES, default 1000000,4000000,10000000 jobs; ROUNDS rounds each, default 2,
//! alternating the two tools, each on a fresh database after a checkpoint). Prints per size
//! the best times, their ratio (goal ≤ 0.6 at every size), restore's peak RSS (goal < 256
//! MiB) and where restore's time went (its `phases`), so growth can be told from noise.

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::process::Command;

use common::generate::{self, Spec};
use common::TestCluster;
use shared::{env_num, mb, pg_tool, size, timed};

const TARGETS: [&str; 2] = ["r_pg", "r_jd"];

/// `jobdbctl restore ARCHIVE --json` into a fresh database: seconds, peak RSS in MiB and the
/// phases it reports.
fn restore(c: &TestCluster, archive: &std::path::Path) -> (f64, f64, Vec<(String, f64)>) {
    shared::recreate_db(c, &TARGETS, "r_jd");
    let rss_file = std::env::temp_dir().join(format!("jobdbctl-scale-{}.rss", std::process::id()));
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(common::BIN);
    for var in common::SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.arg("--configdir")
        .arg(&c.configdir)
        .arg("--database-url")
        .arg(format!(
            "postgresql://postgres@localhost/r_jd?host={}&port=5432",
            c.pgdata().display()
        ))
        .args(["--json", "restore"])
        .arg(archive);
    let start = std::time::Instant::now();
    let out = cmd.output().expect("run jobdbctl restore");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("restore JSON");
    let phases = json["phases"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["phase"].as_str().unwrap_or("?").to_string(),
                        p["seconds"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let kib: f64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    let _ = std::fs::remove_file(&rss_file);
    (secs, kib / 1024.0, phases)
}

fn main() {
    let sizes: Vec<i64> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1000000,4000000,10000000".to_string())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    let rounds = env_num("ROUNDS", 2).max(1);
    let c = TestCluster::started();
    let work = common::temp_dir("scale");
    let mut summary = Vec::new();
    let mut backups = Vec::new();
    for jobs in sizes {
        eprintln!("generating {jobs} jobs ...");
        {
            let mut client = c.client();
            client
                .batch_execute("DROP SCHEMA IF EXISTS jobdb CASCADE")
                .expect("drop schema");
        }
        c.run(&["init"]).expect(0);
        let mut client = c.client();
        generate::populate(
            &mut client,
            "jobdb",
            &Spec {
                migrations: true,
                ..Spec::jobs(jobs)
            },
        );
        // One statement each: VACUUM cannot run inside a batch's implicit transaction.
        for statement in ["DELETE FROM jobdb.workers", "VACUUM ANALYZE", "CHECKPOINT"] {
            client.batch_execute(statement).expect(statement);
        }
        drop(client);
        // Backups first, alternating with pg_dump round by round (issue 26 keeps their
        // figures: gzip <= 0.55, zstd <= 0.5 of pg_dump -Fc at every size).
        let dump = work.path().join("dump.fc");
        let archive = work.path().join("jobs.tar.zst");
        let gzip = work.path().join("jobs.tar.gz");
        let (mut best_dump, mut best_gzip, mut best_zstd) =
            (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for _ in 0..rounds {
            let _ = std::fs::remove_file(&dump);
            let mut cmd = pg_tool(&c, "pg_dump");
            cmd.args(["-d", "jobdb", "-n", "jobdb", "-Fc", "-f"])
                .arg(&dump);
            best_dump = best_dump.min(timed("pg_dump", cmd));
            for (path, codec, best) in [
                (&gzip, "gzip", &mut best_gzip),
                (&archive, "zstd", &mut best_zstd),
            ] {
                let _ = std::fs::remove_file(path);
                let mut cmd = c.cmd();
                cmd.args(["-q", "backup", "--compression", codec, "--output"])
                    .arg(path);
                *best = best.min(timed("backup", cmd));
            }
        }
        println!(
            "{jobs:>9} jobs: pg_dump -Fc {best_dump:6.2} s, backup gzip {best_gzip:6.2} s ({:.2}), zstd {best_zstd:6.2} s ({:.2})",
            best_gzip / best_dump,
            best_zstd / best_dump
        );
        backups.push((jobs, best_dump, best_gzip, best_zstd));
        let mut best_pg = f64::INFINITY;
        let mut best_ours = (f64::INFINITY, 0.0, Vec::new());
        let mut max_rss: f64 = 0.0;
        for round in 0..rounds {
            shared::recreate_db(&c, &TARGETS, "r_pg");
            let mut cmd = pg_tool(&c, "pg_restore");
            cmd.args(["-d", "r_pg", "-j", "2"]).arg(&dump);
            let pg = timed("pg_restore -j 2", cmd);
            let (ours, rss, phases) = restore(&c, &archive);
            max_rss = max_rss.max(rss);
            println!(
                "{jobs:>9} jobs, round {}: pg_restore -j 2 {pg:6.2} s, restore {ours:6.2} s, ratio {:.2}",
                round + 1,
                ours / pg
            );
            best_pg = best_pg.min(pg);
            if ours < best_ours.0 {
                best_ours = (ours, rss, phases);
            }
        }
        summary.push((
            jobs,
            size(&dump),
            size(&archive),
            best_pg,
            best_ours,
            max_rss,
        ));
    }
    println!(
        "\nrestore against pg_restore -j 2 (best of each; goal: ratio <= 0.6, peak RSS < 256 MiB):"
    );
    println!("| jobs | pg_dump -Fc | zstd archive | pg_restore -j 2 | restore | ratio | per million jobs (pg_restore, restore) | restore peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for (jobs, dump, archive, pg, (ours, _, _), rss) in &summary {
        let millions = *jobs as f64 / 1e6;
        println!(
            "| {jobs} | {:.0} MB | {:.0} MB | {pg:.2} s | {ours:.2} s | {:.2} | {:.2} s, {:.2} s | {rss:.0} MiB |",
            mb(*dump),
            mb(*archive),
            ours / pg,
            pg / millions,
            ours / millions
        );
    }
    println!("\nbackup against pg_dump -Fc (best of each; goal: gzip <= 0.55, zstd <= 0.5):");
    for (jobs, dump, gzip, zstd) in &backups {
        println!(
            "  {jobs:>9} jobs: pg_dump {dump:.2} s, gzip {gzip:.2} s ({:.2}), zstd {zstd:.2} s ({:.2})",
            gzip / dump,
            zstd / dump
        );
    }
    println!("\nrestore's phases in its best run (seconds):");
    for (jobs, _, _, _, (_, _, phases), _) in &summary {
        let line: Vec<String> = phases.iter().map(|(n, s)| format!("{n} {s:.2}")).collect();
        println!("  {jobs:>9} jobs: {}", line.join(", "));
    }
}
