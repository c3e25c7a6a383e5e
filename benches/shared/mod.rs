//! What the backup and restore benchmarks share: timing a tool, PostgreSQL's own tools on the
//! benchmark cluster, and a fresh target database on a quiet server for each restore.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::common::{self, TestCluster};

pub fn env_num(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Runs `cmd` to completion; its seconds. A failure ends the benchmark.
pub fn timed(what: &str, mut cmd: Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

pub fn pg_tool(c: &TestCluster, tool: &str) -> Command {
    let mut cmd = Command::new(common::pg_bindir().join(tool));
    cmd.arg("-h")
        .arg(c.pgdata())
        .args(["-p", "5432", "-U", "postgres"]);
    cmd
}

/// Creates `name` empty on a quiet server: every database in `targets` is dropped first
/// (which also cancels the autovacuum that a freshly loaded table sets off, and that would
/// otherwise run through the next timed restore), and a checkpoint writes out what the last
/// one left dirty. Each tool's run starts from the same state.
pub fn recreate_db(c: &TestCluster, targets: &[&str], name: &str) {
    let mut admin = c.client_for("postgres");
    // One statement each: DROP DATABASE cannot run inside the implicit transaction of a batch.
    for db in targets {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .expect("drop database");
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    admin.batch_execute("CHECKPOINT").expect("checkpoint");
}

pub fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Runs `cmd` under `/usr/bin/time`: its peak resident set in MiB.
pub fn peak_rss_mib(cmd: Command) -> f64 {
    let file = std::env::temp_dir().join(format!("jobdbctl-bench-{}.rss", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&file);
    timed.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    let out = timed.output().expect("run /usr/bin/time");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: f64 = std::fs::read_to_string(&file)
        .expect("rss file")
        .trim()
        .parse()
        .expect("rss");
    kib / 1024.0
}

/// Workers that stopped an hour ago (restore refuses live ones), fresh statistics, and a
/// checkpoint, so nothing measured waits for the server to write out what was generated.
pub fn settle(client: &mut postgres::Client) {
    // One statement a batch: VACUUM cannot run in the implicit transaction of several.
    for sql in [
        "UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'",
        "VACUUM ANALYZE",
        "CHECKPOINT",
    ] {
        client.batch_execute(sql).expect("settle");
    }
}

/// A started cluster holding `jobs` generated jobs, settled.
pub fn generated(jobs: i64) -> TestCluster {
    let c = TestCluster::started();
    eprintln!("generating {jobs} jobs ...");
    let start = Instant::now();
    let mut client = c.client();
    common::generate::populate(&mut client, "jobdb", &common::generate::Spec::jobs(jobs));
    settle(&mut client);
    eprintln!("generated in {:.0} s", start.elapsed().as_secs_f64());
    c
}
