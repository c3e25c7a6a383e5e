//! finalize-migration throughput against one `UPDATE t SET to = from` over the same data,
//! and the batch transaction times (the README's finalize benchmark: ≥ 0.85 of the
//! UPDATE's throughput, batch p99 under 1 s), with the server's default settings:
//! autovacuum on, default max_wal_size and checkpoints, as the harness's server has them.
//!
//! `cargo bench --bench finalize` (rows: ROWS, default 5,000,000; pairs: ROUNDS, default 3).
//! Runs alternate UPDATE, finalize, UPDATE, finalize, ...; each run gets a table of its own,
//! generated, frozen and analyzed just before it and dropped after it, so no run pays for
//! vacuuming another's dead rows, and a CHECKPOINT before each run starts both from clean
//! buffers. Around every run the bench records what the server did meanwhile (WAL written,
//! checkpoints, how long autovacuum worked on the table, sampled) so a slow round says why.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::Client;

const COPY: &str = "CopyColumnUsingBackgroundMigrationJob";
const FLAGS: [&str; 2] = ["--pause-ms", "0"];
/// The shape: batches of 50k values, UPDATE statements of 5k rows.
const BATCH_SIZE: i32 = 50_000;
const SUB_BATCH_SIZE: i32 = 5_000;

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
    c.batch_execute("CHECKPOINT").expect("checkpoint");
}

/// What the server did during one run.
#[derive(Debug, Default, Clone, Copy)]
struct ServerWork {
    wal_mb: f64,
    checkpoints: i64,
    /// Seconds autovacuum was seen working on the run's table (sampled every 100 ms).
    autovacuum_s: f64,
    autovacuums: i64,
    autoanalyzes: i64,
    /// CPU seconds of the server backends doing the run (the bench's own session for the
    /// UPDATE, jobdbctl's for finalize): the work itself, whatever else the machine runs.
    backend_cpu_s: f64,
    /// Share of both cores busy during the run (anything on the machine).
    machine_busy: f64,
    /// Share of the table's row updates that were HOT (no new index entry).
    hot: f64,
}

/// CPU seconds a process has used (user + system), from /proc.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// Busy and total jiffies of all CPUs, from /proc/stat.
fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    // idle and iowait
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

struct Probe {
    lsn: String,
    checkpoints: i64,
    own_pid: i32,
    own_cpu: f64,
    jiffies: (f64, f64),
    stop: Arc<AtomicBool>,
    /// Seconds autovacuum was seen on the table, CPU seconds of jobdbctl's backends.
    sampler: std::thread::JoinHandle<(f64, f64)>,
}

fn checkpoints(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
        &[],
    )
    .expect("pg_stat_bgwriter")
    .get(0)
}

/// Starts recording: WAL position, checkpoint count, and a thread that polls
/// pg_stat_progress_vacuum for autovacuum on `table` (a measurement, not a wait).
fn probe(db: &common::TestDb, c: &mut Client, table: &str) -> Probe {
    let lsn: String = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .expect("wal lsn")
        .get(0);
    let checkpoints = checkpoints(c);
    let own_pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("backend pid")
        .get(0);
    let own_cpu = cpu_seconds(own_pid).unwrap_or(0.0);
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, mut sc, table) = (stop.clone(), db.client(), format!("jobdb.{table}"));
    let sampler = std::thread::spawn(move || {
        let tick = Duration::from_millis(100);
        let mut busy = Duration::ZERO;
        let mut jobdbctl_cpu = std::collections::HashMap::new();
        while !flag.load(Ordering::Relaxed) {
            let row = sc
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p
                                      JOIN pg_stat_activity a ON a.pid = p.pid
                                     WHERE p.relid = $1::text::regclass
                                       AND a.backend_type = 'autovacuum worker'),
                            ARRAY(SELECT pid FROM pg_stat_activity
                                   WHERE application_name = 'jobdbctl' AND datname = current_database())",
                    &[&table],
                )
                .expect("sample");
            if row.get::<_, bool>(0) {
                busy += tick;
            }
            for pid in row.get::<_, Vec<i32>>(1) {
                if let Some(cpu) = cpu_seconds(pid) {
                    jobdbctl_cpu.insert(pid, cpu);
                }
            }
            std::thread::sleep(tick);
        }
        (busy.as_secs_f64(), jobdbctl_cpu.values().sum())
    });
    Probe {
        lsn,
        checkpoints,
        own_pid,
        own_cpu,
        jiffies: machine_jiffies(),
        stop,
        sampler,
    }
}

fn finish_probe(c: &mut Client, p: Probe, table: &str) -> ServerWork {
    let own_cpu = cpu_seconds(p.own_pid).unwrap_or(0.0) - p.own_cpu;
    let (busy, total) = machine_jiffies();
    let machine_busy = (busy - p.jiffies.0) / (total - p.jiffies.1).max(1.0);
    p.stop.store(true, Ordering::Relaxed);
    let (autovacuum_s, jobdbctl_cpu) = p.sampler.join().expect("sampler");
    let wal_mb: f64 = c
        .query_one(
            "SELECT (pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn) / 1048576)::float8",
            &[&p.lsn],
        )
        .expect("wal diff")
        .get(0);
    // Counters of vacuums that ended; one still running shows in autovacuum_s only.
    c.batch_execute("SELECT pg_stat_force_next_flush()")
        .expect("flush stats");
    let row = c
        .query_one(
            "SELECT autovacuum_count, autoanalyze_count,
                    n_tup_hot_upd::float8 / greatest(n_tup_upd, 1)::float8
               FROM pg_stat_user_tables
              WHERE relid = $1::text::regclass",
            &[&format!("jobdb.{table}")],
        )
        .expect("pg_stat_user_tables");
    ServerWork {
        wal_mb,
        checkpoints: checkpoints(c) - p.checkpoints,
        autovacuum_s,
        autovacuums: row.get(0),
        autoanalyzes: row.get(1),
        backend_cpu_s: own_cpu + jobdbctl_cpu,
        machine_busy,
        hot: row.get(2),
    }
}

fn time_update(db: &common::TestDb, c: &mut Client, table: &str) -> (Duration, ServerWork) {
    let p = probe(db, c, table);
    let began = Instant::now();
    c.execute(&format!("UPDATE jobdb.{table} SET to_col = from_col"), &[])
        .expect("update");
    let took = began.elapsed();
    let work = finish_probe(c, p, table);
    c.batch_execute(&format!("DROP TABLE jobdb.{table}"))
        .expect("drop");
    (took, work)
}

struct FinalizeRun {
    took: Duration,
    id: i64,
    work: ServerWork,
    /// Times the finalizer held off before a batch (its "paused:" lines).
    pauses: usize,
    batches: i64,
    /// Seconds inside batch transactions (their recorded duration_ms, summed).
    in_batches_s: f64,
    /// Seconds from one batch's end to the next one's start record (bookkeeping, health
    /// checks, holding off), summed.
    between_s: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn time_finalize(db: &common::TestDb, c: &mut Client, table: &str, rows: i64) -> FinalizeRun {
    let id: i64 = c
        .query_one(
            "INSERT INTO jobdb.batched_background_migrations
                 (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
                  table_name, column_name, job_arguments)
             VALUES ($1, $2, $3, 120, 1, $4, $5, 'id', '[[\"from_col\"],[\"to_col\"]]')
             RETURNING id",
            &[&rows, &BATCH_SIZE, &SUB_BATCH_SIZE, &COPY, &table],
        )
        .expect("queue migration")
        .get(0);
    let id_text = id.to_string();
    let mut args = vec!["--json", "finalize-migration", "--id", &id_text];
    args.extend(FLAGS);
    let p = probe(db, c, table);
    let began = Instant::now();
    let run = db.run(&args);
    let took = began.elapsed();
    let work = finish_probe(c, p, table);
    run.expect(0);
    let uncopied: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM jobdb.{table} WHERE to_col IS DISTINCT FROM from_col"),
            &[],
        )
        .expect("count uncopied")
        .get(0);
    assert_eq!(uncopied, 0, "finalize left rows uncopied");
    c.batch_execute(&format!("DROP TABLE jobdb.{table}"))
        .expect("drop");
    let s = batch_stats(c, &[id]);
    let between_s: f64 = c
        .query_one(
            "SELECT coalesce(sum(extract(epoch FROM started_at - prev)), 0)::float8
               FROM (SELECT started_at, lag(finished_at) OVER (ORDER BY min_value) AS prev
                       FROM jobdb.batched_background_migration_jobs
                      WHERE batched_background_migration_id = $1) j",
            &[&id],
        )
        .expect("gaps")
        .get(0);
    FinalizeRun {
        between_s,
        took,
        id,
        work,
        pauses: run.stderr.matches("paused:").count(),
        batches: s.0,
        in_batches_s: s.1,
        p99_ms: s.2,
        max_ms: s.3,
    }
}

/// Batches, seconds inside them, p99 and max batch transaction (ms) of the migrations.
fn batch_stats(c: &mut Client, ids: &[i64]) -> (i64, f64, f64, f64) {
    let r = c
        .query_one(
            "SELECT count(*), coalesce(sum((metrics->>'duration_ms')::float8), 0) / 1000,
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY (metrics->>'duration_ms')::float8),
                    max((metrics->>'duration_ms')::float8)
               FROM jobdb.batched_background_migration_jobs
              WHERE batched_background_migration_id = ANY($1) AND status = 3",
            &[&ids],
        )
        .expect("batch stats");
    (
        r.get(0),
        r.get(1),
        r.get::<_, Option<f64>>(2).unwrap_or(0.0),
        r.get::<_, Option<f64>>(3).unwrap_or(0.0),
    )
}

fn describe(w: &ServerWork) -> String {
    format!(
        "backend CPU {:.1} s, machine {:.0}% busy, {:.0}% HOT updates, WAL {:.0} MB, {} checkpoints, autovacuum on the table {:.1} s ({} vacuums, {} analyzes ended)",
        w.backend_cpu_s,
        w.machine_busy * 100.0,
        w.hot * 100.0,
        w.wal_mb,
        w.checkpoints,
        w.autovacuum_s,
        w.autovacuums,
        w.autoanalyzes
    )
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn main() {
    let env = |names: &[&str], default: i64| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().and_then(|v| v.parse().ok()))
            .unwrap_or(default)
    };
    let rows = env(&["ROWS", "BENCH_ROWS"], 5_000_000);
    let rounds = env(&["ROUNDS", "BENCH_ROUNDS"], 3).max(1);
    let db = common::TestDb::initialized();
    let mut c = db.client();
    let settings: Vec<String> = c
        .query(
            "SELECT name || '=' || setting || coalesce(unit, '') || CASE WHEN source <> 'default' THEN ' (' || source || ')' ELSE '' END
               FROM pg_settings
              WHERE name IN ('autovacuum', 'max_wal_size', 'checkpoint_timeout', 'shared_buffers',
                             'synchronous_commit', 'autovacuum_vacuum_scale_factor',
                             'autovacuum_vacuum_cost_limit', 'autovacuum_vacuum_cost_delay')
              ORDER BY name",
            &[],
        )
        .expect("settings")
        .iter()
        .map(|r| r.get(0))
        .collect();
    println!("finalize-migration benchmark: {rows} rows, {COPY} (integer -> bigint)");
    println!("server settings: {}", settings.join(", "));
    println!(
        "migration: batch_size {BATCH_SIZE}, sub_batch_size {SUB_BATCH_SIZE}; flags: {} (default --target-batch-time 300ms)",
        FLAGS.join(" ")
    );
    println!("rounds: UPDATE then finalize, alternating, each run on a fresh frozen table");
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut ids = Vec::new();
    let (mut update_total, mut finalize_total) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let table = format!("by_update_{round}");
        eprintln!("round {round}: generating {rows} rows for the UPDATE ...");
        make_table(&mut c, &table, rows);
        let (update, uw) = time_update(&db, &mut c, &table);
        let table = format!("by_finalize_{round}");
        eprintln!("round {round}: generating {rows} rows for finalize-migration ...");
        make_table(&mut c, &table, rows);
        let f = time_finalize(&db, &mut c, &table, rows);
        let ratio = update.as_secs_f64() / f.took.as_secs_f64();
        println!(
            "  round {round}: UPDATE {:.1} s, finalize {:.1} s, ratio {ratio:.3}; \
             finalize: {} batches, {:.1} s inside them, {:.1} s between them, batch p99 {:.0} ms, max {:.0} ms, held off {} times",
            update.as_secs_f64(),
            f.took.as_secs_f64(),
            f.batches,
            f.in_batches_s,
            f.between_s,
            f.p99_ms,
            f.max_ms,
            f.pauses
        );
        println!("           UPDATE:   {}", describe(&uw));
        println!("           finalize: {}", describe(&f.work));
        ratios.push(ratio);
        cpu_ratios.push(uw.backend_cpu_s / f.work.backend_cpu_s.max(0.001));
        ids.push(f.id);
        update_total += update;
        finalize_total += f.took;
    }
    let (batches, _, p99, max) = batch_stats(&mut c, &ids);
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let med = median(&sorted);
    let total_rows = (rows * rounds) as f64;
    println!("over {rounds} rounds:");
    println!(
        "  one UPDATE:          {:>7.1} s  {:>9.0} rows/s",
        update_total.as_secs_f64(),
        total_rows / update_total.as_secs_f64()
    );
    println!(
        "  finalize-migration:  {:>7.1} s  {:>9.0} rows/s  ({batches} batches)",
        finalize_total.as_secs_f64(),
        total_rows / finalize_total.as_secs_f64()
    );
    println!(
        "  throughput ratio:    median {med:.3}, spread {:.3}-{:.3} (goal >= 0.85) {}",
        sorted[0],
        sorted[sorted.len() - 1],
        if med >= 0.85 { "MET" } else { "NOT MET" }
    );
    cpu_ratios.sort_by(f64::total_cmp);
    println!(
        "  server CPU ratio:    median {:.3}, spread {:.3}-{:.3} (UPDATE's backend CPU / finalize's: the work, whatever the load)",
        median(&cpu_ratios),
        cpu_ratios[0],
        cpu_ratios[cpu_ratios.len() - 1]
    );
    println!(
        "  batch transaction:   p99 {p99:.0} ms, max {max:.0} ms (goal p99 < 1000 ms) {}",
        if p99 < 1000.0 { "MET" } else { "NOT MET" }
    );
}
