//! `status` on a big job database vs one `SELECT count(*)` over its jobs table.
//! Run by hand: `cargo bench --bench status` (JOBS=10000000 by default).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::generate::{self, Spec};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let jobs: i64 = std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let db = common::TestDb::initialized();
    let mut client = db.client();
    let t = Instant::now();
    generate::populate(
        &mut client,
        "jobdb",
        &Spec {
            jobs,
            live_workers: 8,
            dead_workers: 4,
            migrations: true,
        },
    );
    client
        .batch_execute("VACUUM ANALYZE jobdb.jobs")
        .expect("vacuum analyze");
    println!("generated {jobs} jobs in {:.1?}", t.elapsed());

    let runs = 5;
    let mut count_times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let n: i64 = client
            .query_one("SELECT count(*) FROM jobdb.jobs", &[])
            .expect("count")
            .get(0);
        count_times.push(t.elapsed());
        assert_eq!(n, jobs);
    }
    let mut status_times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        db.run(&["status", "--json"]).expect(0);
        status_times.push(t.elapsed());
    }
    let (count, status) = (median(count_times), median(status_times));
    println!("SELECT count(*) on jobs (median of {runs}): {count:.1?}");
    println!("jobdbctl status --json, whole process (median of {runs}): {status:.1?}");
    println!(
        "ratio status / count(*) = {:.3} (goal <= 0.1)",
        status.as_secs_f64() / count.as_secs_f64()
    );
}
