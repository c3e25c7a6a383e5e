//! finalize-migration throughput against one `UPDATE t SET to = from` over the same data,
//! and the p99 batch transaction time (the README's finalize benchmark: ≥ 0.7 of the
//! UPDATE's throughput, every batch under 1 s).
//!
//! `cargo bench --bench finalize` (rows: BENCH_ROWS, default 5,000,000; rounds: BENCH_ROUNDS,
//! default 2). Each round generates two identical tables (frozen, analyzed, autovacuum off so
//! neither run pays for vacuuming the other's dead rows), runs the UPDATE on one and the
//! finalizer on the other, and drops both; rounds alternate which goes first.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use postgres::Client;

const COPY: &str = "CopyColumnUsingBackgroundMigrationJob";
const FLAGS: [&str; 2] = ["--pause-ms", "0"];

fn make_table(c: &mut Client, name: &str, rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE jobdb.{name} (id integer PRIMARY KEY, from_col integer, to_col bigint,
                                    created_at timestamptz NOT NULL DEFAULT now(), payload text)
           WITH (autovacuum_enabled = false);
         INSERT INTO jobdb.{name} (id, from_col, payload)
           SELECT g, (g::int8 * 7919 % 1000003)::int4, md5(g::text) FROM generate_series(1, {rows}) g;"
    ))
    .expect("generate table");
    c.batch_execute(&format!("VACUUM (FREEZE, ANALYZE) jobdb.{name}"))
        .expect("vacuum");
}

fn time_update(c: &mut Client, table: &str) -> Duration {
    c.batch_execute("CHECKPOINT").expect("checkpoint");
    let began = Instant::now();
    c.execute(&format!("UPDATE jobdb.{table} SET to_col = from_col"), &[])
        .expect("update");
    let took = began.elapsed();
    c.batch_execute(&format!("DROP TABLE jobdb.{table}"))
        .expect("drop");
    took
}

fn time_finalize(db: &common::TestDb, c: &mut Client, table: &str, rows: i64) -> (Duration, i64) {
    c.batch_execute("CHECKPOINT").expect("checkpoint");
    let id: i64 = c
        .query_one(
            "INSERT INTO jobdb.batched_background_migrations
                 (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
                  table_name, column_name, job_arguments)
             VALUES ($1, 20000, 5000, 120, 1, $2, $3, 'id', '[[\"from_col\"],[\"to_col\"]]')
             RETURNING id",
            &[&rows, &COPY, &table],
        )
        .expect("queue migration")
        .get(0);
    let id_text = id.to_string();
    let mut args = vec!["--json", "finalize-migration", "--id", &id_text];
    args.extend(FLAGS);
    let began = Instant::now();
    let run = db.run(&args);
    let took = began.elapsed();
    run.expect(0);
    let uncopied: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM jobdb.{table} WHERE to_col IS DISTINCT FROM from_col"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(uncopied, 0, "finalize left rows uncopied");
    c.batch_execute(&format!("DROP TABLE jobdb.{table}"))
        .expect("drop");
    (took, id)
}

fn main() {
    let env = |name: &str, default: i64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rows = env("BENCH_ROWS", 5_000_000);
    let rounds = env("BENCH_ROUNDS", 2);
    let db = common::TestDb::initialized();
    let mut c = db.client();
    let (mut update_total, mut finalize_total) = (Duration::ZERO, Duration::ZERO);
    let mut ids = Vec::new();
    println!("finalize-migration benchmark: {rows} rows, CopyColumnUsingBackgroundMigrationJob (integer -> bigint)");
    println!(
        "finalize flags: {} (default --target-batch-time 300ms, --statement-timeout 10s, --lock-timeout 2s)",
        FLAGS.join(" ")
    );
    for round in 0..rounds {
        eprintln!(
            "round {}: generating two tables of {rows} rows ...",
            round + 1
        );
        let (by_update, by_finalize) =
            (format!("by_update_{round}"), format!("by_finalize_{round}"));
        make_table(&mut c, &by_update, rows);
        make_table(&mut c, &by_finalize, rows);
        let (update, (finalize, id)) = if round % 2 == 0 {
            let u = time_update(&mut c, &by_update);
            (u, time_finalize(&db, &mut c, &by_finalize, rows))
        } else {
            let f = time_finalize(&db, &mut c, &by_finalize, rows);
            (time_update(&mut c, &by_update), f)
        };
        println!(
            "  round {} ({} first): UPDATE {:.1} s, finalize {:.1} s, ratio {:.3}",
            round + 1,
            if round % 2 == 0 { "UPDATE" } else { "finalize" },
            update.as_secs_f64(),
            finalize.as_secs_f64(),
            update.as_secs_f64() / finalize.as_secs_f64()
        );
        update_total += update;
        finalize_total += finalize;
        ids.push(id);
    }

    let stats = c
        .query_one(
            "SELECT count(*),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    max((metrics->>'duration_ms')::float8),
                    max(extract(epoch FROM finished_at - started_at) * 1000)::float8,
                    min(batch_size), max(batch_size)
               FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = ANY($1)",
            &[&ids],
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
    let total_rows = (rows * rounds) as f64;
    let update_rate = total_rows / update_total.as_secs_f64();
    let finalize_rate = total_rows / finalize_total.as_secs_f64();
    let ratio = finalize_rate / update_rate;
    println!("over {rounds} rounds:");
    println!(
        "  one UPDATE:          {:>7.1} s  {:>9.0} rows/s",
        update_total.as_secs_f64(),
        update_rate
    );
    println!(
        "  finalize-migration:  {:>7.1} s  {:>9.0} rows/s  ({batches} batches, sizes {min_size}..{max_size})",
        finalize_total.as_secs_f64(),
        finalize_rate
    );
    println!(
        "  throughput ratio:    {ratio:.3} (goal >= 0.70) {}",
        if ratio >= 0.7 { "MET" } else { "NOT MET" }
    );
    println!(
        "  batch transaction:   p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms (goal p99 < 1000 ms) {}",
        if p99 < 1000.0 { "MET" } else { "NOT MET" }
    );
    println!(
        "  every batch < 1 s:   {} (max incl. its attempt record: {max_wall:.0} ms)",
        if max < 1000.0 { "yes" } else { "no" }
    );
}
