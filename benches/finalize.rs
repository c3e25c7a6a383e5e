//! finalize-migration throughput against one `UPDATE t SET to = from` over the same data,
//! and the p99 batch transaction time (SPEC §7: ≥ 0.7 of the UPDATE's throughput, every
//! batch under 1 s).
//!
//! `cargo bench --bench finalize` (rows: BENCH_ROWS, default 5,000,000). Two identical tables
//! are generated, frozen and analyzed; the UPDATE runs on one, the finalizer on the other.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use postgres::Client;

const COPY: &str = "CopyColumnUsingBackgroundMigrationJob";

fn make_table(c: &mut Client, name: &str, rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE jobdb.{name} (id integer PRIMARY KEY, from_col integer, to_col bigint,
                                    created_at timestamptz NOT NULL DEFAULT now(), payload text);
         INSERT INTO jobdb.{name} (id, from_col, payload)
           SELECT g, (g::int8 * 7919 % 1000003)::int4, md5(g::text) FROM generate_series(1, {rows}) g;"
    ))
    .expect("generate table");
    c.batch_execute(&format!("VACUUM (FREEZE, ANALYZE) jobdb.{name}"))
        .expect("vacuum");
}

fn main() {
    let rows: i64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let db = common::TestDb::initialized();
    let mut c = db.client();
    eprintln!("generating two tables of {rows} rows ...");
    make_table(&mut c, "by_update", rows);
    make_table(&mut c, "by_finalize", rows);
    c.batch_execute("CHECKPOINT").expect("checkpoint");

    eprintln!("one UPDATE over the whole table ...");
    let began = Instant::now();
    let updated = c
        .execute("UPDATE jobdb.by_update SET to_col = from_col", &[])
        .expect("update");
    let update_time = began.elapsed();
    c.batch_execute("CHECKPOINT").expect("checkpoint");

    let id: i64 = c
        .query_one(
            "INSERT INTO jobdb.batched_background_migrations
                 (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
                  table_name, column_name, job_arguments)
             VALUES ($1, 20000, 5000, 120, 1, $2, 'by_finalize', 'id', '[[\"from_col\"],[\"to_col\"]]')
             RETURNING id",
            &[&rows, &COPY],
        )
        .expect("queue migration")
        .get(0);
    let flags = ["--pause-ms", "0"];
    eprintln!("finalize-migration --id {id} {} ...", flags.join(" "));
    let began = Instant::now();
    let mut args = vec!["--json", "finalize-migration", "--id"];
    let id_text = id.to_string();
    args.push(&id_text);
    args.extend(flags);
    let run = db.run(&args);
    let finalize_time = began.elapsed();
    run.expect(0);
    let summary = run.json();

    let uncopied: i64 = c
        .query_one(
            "SELECT count(*) FROM jobdb.by_finalize WHERE to_col IS DISTINCT FROM from_col",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(uncopied, 0, "finalize left rows uncopied");
    let stats = c
        .query_one(
            "SELECT count(*),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    max((metrics->>'duration_ms')::float8),
                    max(extract(epoch FROM finished_at - started_at) * 1000)::float8,
                    min(batch_size), max(batch_size)
               FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = $1",
            &[&id],
        )
        .unwrap();
    let (batches, p50, p99, max, max_wall, min_size, max_size): (
        i64,
        f64,
        f64,
        f64,
        f64,
        i32,
        i32,
    ) = (
        stats.get(0),
        stats.get(1),
        stats.get(2),
        stats.get(3),
        stats.get(4),
        stats.get(5),
        stats.get(6),
    );

    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    let update_rate = per_s(updated, update_time);
    let finalize_rate = per_s(rows as u64, finalize_time);
    let ratio = finalize_rate / update_rate;
    println!("finalize-migration benchmark, {rows} rows (CopyColumnUsingBackgroundMigrationJob, integer -> bigint)");
    println!(
        "  one UPDATE:          {:>8.1} s  {:>10.0} rows/s",
        update_time.as_secs_f64(),
        update_rate
    );
    println!(
        "  finalize-migration:  {:>8.1} s  {:>10.0} rows/s  ({batches} batches, size {min_size}..{max_size}, flags: {}, default --target-batch-time 300ms)",
        finalize_time.as_secs_f64(),
        finalize_rate,
        flags.join(" ")
    );
    println!(
        "  throughput ratio:    {ratio:.3} (goal >= 0.70) {}",
        if ratio >= 0.7 { "MET" } else { "NOT MET" }
    );
    println!(
        "  batch transaction:   p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms (goal p99 < 1000 ms) {}",
        if p99 < 1000.0 { "MET" } else { "NOT MET" }
    );
    println!("  batch wall time incl. bookkeeping commits: max {max_wall:.0} ms");
    println!(
        "  finalizer's own summary: {} rows/s over {:.1} s",
        summary["rows_per_s"].as_f64().unwrap_or(0.0).round(),
        summary["elapsed_s"].as_f64().unwrap_or(0.0)
    );
}
