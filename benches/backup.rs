//! `cargo bench --bench backup`: online backup and restore against pg_dump/pg_restore and raw
//! COPY on a generated job database (JOBS, default 2,000,000). Prints times, sizes and the
//! ratios the README's backup benchmark names. Each measurement is the best of RUNS (default 2), since the
//! machine may be shared; restores alternate with pg_restore round by round.

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::generate::{self, Spec};
use common::TestCluster;
use shared::{env_num, mb, pg_tool, size, timed};

fn best_of(runs: i64, mut f: impl FnMut() -> f64) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// Databases the restores write into.
const TARGETS: [&str; 4] = ["r_jz", "r_js", "r_pg", "r_jd"];

fn recreate_db(c: &TestCluster, name: &str) {
    shared::recreate_db(c, &TARGETS, name);
}

fn main() {
    let jobs = env_num("JOBS", 2_000_000);
    let runs = env_num("RUNS", 2).max(1);
    let c = TestCluster::started();
    let work = common::temp_dir("bench");
    eprintln!("generating {jobs} jobs ...");
    let start = Instant::now();
    let mut client = c.client();
    generate::populate(
        &mut client,
        "jobdb",
        &Spec {
            migrations: true,
            ..Spec::jobs(jobs)
        },
    );
    client.batch_execute("VACUUM ANALYZE").expect("vacuum");
    let heap: i64 = client
        .query_one(
            "SELECT sum(pg_relation_size(c.oid))::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'jobdb' AND c.relkind = 'r'",
            &[],
        )
        .expect("size")
        .get(0);
    let tables = common::table_names(&mut client, "jobdb");
    eprintln!(
        "generated in {:.0} s; tables' heap {:.0} MB",
        start.elapsed().as_secs_f64(),
        mb(heap as u64)
    );

    drop(client);

    let raw_copy = |format: &str| {
        best_of(runs, || {
            let mut cmd = pg_tool(&c, "psql");
            cmd.args(["-d", "jobdb", "-q"]);
            for t in &tables {
                cmd.args(["-c", &format!("COPY jobdb.\"{t}\" TO STDOUT{format}")]);
            }
            cmd.stdout(Stdio::null());
            timed("raw COPY", cmd)
        })
    };
    let raw = raw_copy("");
    let raw_binary = raw_copy(" (FORMAT binary)");

    let dump = work.path().join("dump.fc");
    let pg_dump = best_of(runs, || {
        let _ = std::fs::remove_file(&dump);
        let mut cmd = pg_tool(&c, "pg_dump");
        cmd.args(["-d", "jobdb", "-n", "jobdb", "-Fc", "-f"])
            .arg(&dump);
        timed("pg_dump -Fc", cmd)
    });

    let archive = work.path().join("jobdbctl.tar.gz");
    let ours = best_of(runs, || {
        let mut cmd = c.cmd();
        cmd.args(["-q", "backup", "--output"]).arg(&archive);
        timed("jobdbctl backup", cmd)
    });

    let zst = work.path().join("jobdbctl.tar.zst");
    let ours_zstd = best_of(runs, || {
        let mut cmd = c.cmd();
        cmd.args(["-q", "backup", "--compression", "zstd", "--output"])
            .arg(&zst);
        timed("jobdbctl backup --compression zstd", cmd)
    });
    codec_levels(&zst, size(&dump));
    // Restores alternate within each round, so a change in the machine's speed between
    // rounds (it moves by a fifth here) touches every tool alike; each round's ratios are
    // printed, and the best times compared.
    let mut rounds: Vec<[f64; 4]> = Vec::new();
    for _ in 0..runs {
        let pg = {
            recreate_db(&c, "r_pg");
            let mut cmd = pg_tool(&c, "pg_restore");
            cmd.args(["-d", "r_pg", "-j", "2"]).arg(&dump);
            timed("pg_restore -j 2", cmd)
        };
        rounds.push([
            pg,
            restore_into(&c, "r_jd", &archive),
            restore_into(&c, "r_jz", &zst),
            restore_with(&c, "r_js", &zst, true),
        ]);
    }
    let best = |i: usize| rounds.iter().map(|r| r[i]).fold(f64::INFINITY, f64::min);
    let (pg_restore, restore, restore_zstd, restore_zstd_stdin) =
        (best(0), best(1), best(2), best(3));

    let (ours_size, dump_size) = (size(&archive), size(&dump));
    println!("\nonline backup of {jobs} jobs (best of {runs}):");
    println!(
        "  raw COPY of all tables to /dev/null  {raw:6.2} s (text)  {raw_binary:6.2} s (binary)"
    );
    println!(
        "  pg_dump -Fc                          {pg_dump:6.2} s  {:6.1} MB",
        mb(dump_size)
    );
    println!(
        "  jobdbctl backup                      {ours:6.2} s  {:6.1} MB",
        mb(ours_size)
    );
    println!(
        "  jobdbctl backup --compression zstd   {ours_zstd:6.2} s  {:6.1} MB",
        mb(size(&zst))
    );
    println!("  pg_restore -j 2                      {pg_restore:6.2} s");
    println!("  jobdbctl restore                     {restore:6.2} s");
    println!("  jobdbctl restore (zstd)              {restore_zstd:6.2} s");
    println!("  jobdbctl restore - < archive (zstd)  {restore_zstd_stdin:6.2} s");
    println!("ratios (goal):");
    println!(
        "  backup / pg_dump time      {:.2}  (<= 0.55)",
        ours / pg_dump
    );
    println!(
        "  backup / pg_dump size      {:.2}  (<= 1.1)",
        ours_size as f64 / dump_size as f64
    );
    println!(
        "  zstd backup / pg_dump time {:.2}  (<= 0.35)",
        ours_zstd / pg_dump
    );
    println!(
        "  zstd backup / pg_dump size {:.2}  (<= 0.85)",
        size(&zst) as f64 / dump_size as f64
    );
    println!(
        "  backup / raw COPY time     {:.2}  (<= 1.3; {:.2} of raw binary COPY)",
        ours / raw,
        ours / raw_binary
    );
    println!(
        "  zstd backup / raw COPY     {:.2}  (<= 1.1; {:.2} of raw binary COPY)",
        ours_zstd / raw,
        ours_zstd / raw_binary
    );
    println!(
        "  restore / pg_restore -j 2  {:.2}  (<= 0.6)",
        restore / pg_restore
    );
    println!(
        "  zstd restore / pg_restore  {:.2}  (<= 0.6; {:.2} from standard input)",
        restore_zstd / pg_restore,
        restore_zstd_stdin / pg_restore
    );
    println!("restore / pg_restore -j 2 in each round (gzip, zstd, zstd from standard input):");
    for r in &rounds {
        println!(
            "  pg_restore {:5.2} s   {:.2}  {:.2}  {:.2}",
            r[0],
            r[1] / r[0],
            r[2] / r[0],
            r[3] / r[0]
        );
    }
}

/// `jobdbctl restore ARCHIVE` into a new, empty database `db` on the cluster; its seconds.
fn restore_into(c: &TestCluster, db: &str, archive: &std::path::Path) -> f64 {
    restore_with(c, db, archive, false)
}

/// `jobdbctl restore ARCHIVE`, or with `stdin` `jobdbctl restore -` reading it from standard
/// input (checked as it streams, not read whole first), into a new, empty database `db`.
fn restore_with(c: &TestCluster, db: &str, archive: &std::path::Path, stdin: bool) -> f64 {
    recreate_db(c, db);
    let mut cmd = common::jobdbctl(&c.configdir);
    cmd.arg("--database-url")
        .arg(format!(
            "postgresql://postgres@localhost/{db}?host={}&port=5432",
            c.pgdata().display()
        ))
        .args(["-q", "restore"]);
    if stdin {
        cmd.arg("-")
            .stdin(std::fs::File::open(archive).expect("open archive"));
    } else {
        cmd.arg(archive);
    }
    timed(&format!("jobdbctl restore {}", archive.display()), cmd)
}

/// The codecs linked in, one thread, at several levels, on what the writer compresses: the
/// uncompressed tar stream of a real archive, in blocks of the writer's size.
fn codec_levels(archive: &Path, pg_dump_bytes: u64) {
    let mut tar = Vec::new();
    zstd::stream::read::Decoder::new(std::fs::File::open(archive).expect("open archive"))
        .expect("zstd")
        .read_to_end(&mut tar)
        .expect("decompress archive");
    println!(
        "codecs on the archive's tar stream ({:.0} MB), blocks of 8 MiB, one thread:",
        mb(tar.len() as u64)
    );
    let report = |name: String, secs: f64, out: usize| {
        println!(
            "  {name:7} {:6.0} MB/s  {:5.1} MB  ({:.2} of pg_dump -Fc)",
            mb(tar.len() as u64) / secs,
            mb(out as u64),
            out as f64 / pg_dump_bytes as f64
        )
    };
    for level in [1u32, 2, 3, 4] {
        let t = Instant::now();
        let mut out = 0;
        for block in tar.chunks(8 << 20) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            gz.write_all(block).expect("compress");
            out += gz.finish().expect("compress").len();
        }
        report(format!("gzip {level}"), t.elapsed().as_secs_f64(), out);
    }
    for level in [1i32, 2, 3, 4] {
        let t = Instant::now();
        let mut out = 0;
        for block in tar.chunks(8 << 20) {
            out += zstd::bulk::compress(block, level).expect("compress").len();
        }
        report(format!("zstd {level}"), t.elapsed().as_secs_f64(), out);
    }
}
