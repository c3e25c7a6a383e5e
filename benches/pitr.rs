//! `cargo bench --bench pitr`: point-in-time recovery of the embedded cluster side by side
//! with pgBackRest (Debian's `pgbackrest`) on the same cluster, JOBS generated jobs (default
//! 1000000), ROUNDS rounds (default 2, best of each printed):
//! - physical backup: `jobdbctl backup --mode physical` (zstd) against `pgbackrest backup
//!   --type=full` (start-fast, zstd, process-max 2); goal ≤ 1.0.
//! - restore to a time: `jobdbctl restore --to-time T` (base backup laid down, recovery,
//!   job steps, stopping the old server, swap, start; the replaced cluster kept aside and
//!   removed after the timing) against `pgbackrest restore --type=time --target=T` into an empty
//!   directory plus the recovery of a server started on it until it is promoted; both fetch
//!   WAL from jobdbctl's archive (pgBackRest's own archive would need a second
//!   archive_command); goal ≤ 1.0.
//! - archiving under load: the largest backlog of `.ready` segments while jobs are inserted
//!   at full speed for LOAD_SECONDS (default 30); goal < 4.

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestCluster;
use shared::{env_num, timed};

fn jobdbctl(c: &TestCluster) -> Command {
    c.cmd_for_server_user()
}

fn ok(what: &str, mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// pgbackrest as the server user, with the benchmark's configuration.
fn pgbackrest(conf: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", "pgbackrest"])
        .arg(format!("--config={}", conf.display()))
        .arg("--stanza=jobs")
        .args(args)
        .current_dir("/");
    cmd
}

fn mkdir_for_postgres(path: &Path) {
    std::fs::create_dir_all(path).expect("mkdir");
    common::chown_to_server_user(path);
}

/// Segments waiting for the archiver.
fn backlog(pgdata: &Path) -> usize {
    std::fs::read_dir(pgdata.join("pg_wal/archive_status"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".ready"))
                .count()
        })
        .unwrap_or(0)
}

fn main() {
    let jobs = env_num("JOBS", 1_000_000);
    let rounds = env_num("ROUNDS", 2).max(1);
    let load_seconds = env_num("LOAD_SECONDS", 30);
    let c = TestCluster::new();
    let work = c.dir.path().to_path_buf();
    let wal = work.join("wal");
    c.write_config(&format!(
        "wal_archive = '{}'\nbackup_dir = '{}'\ncompression = 'zstd'\n",
        wal.display(),
        work.join("backups").display()
    ));
    ok("start", {
        let mut cmd = jobdbctl(&c);
        cmd.args(["start", "--create"]);
        cmd
    });
    eprintln!("generating {jobs} jobs ...");
    let mut client = c.client();
    common::generate::populate(&mut client, "jobdb", &common::generate::Spec::jobs(jobs));
    shared::settle(&mut client);

    // Archiving under load: inserts at full speed, the backlog sampled every 20 ms.
    let load_end = Instant::now() + Duration::from_secs(load_seconds as u64);
    let pgdata = c.pgdata();
    let sampler = std::thread::spawn(move || {
        let mut worst = 0;
        while Instant::now() < load_end + Duration::from_secs(2) {
            worst = worst.max(backlog(&pgdata));
            std::thread::sleep(Duration::from_millis(20));
        }
        worst
    });
    let mut inserted = 0i64;
    while Instant::now() < load_end {
        inserted += client
            .execute(
                "INSERT INTO jobdb.jobs (task_identifier, payload)
                 SELECT 'load', jsonb_build_object('n', g, 'pad', repeat('x', 200))
                   FROM generate_series(1, 20000) g",
                &[],
            )
            .expect("insert") as i64;
    }
    let worst_backlog = sampler.join().expect("sampler");
    let wal_mb: f64 = client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0')::float8 / 1e6", &[])
        .expect("wal")
        .get(0);
    shared::settle(&mut client);

    // pgBackRest on the same cluster, its repository beside ours.
    let repo = work.join("pgbackrest");
    for d in ["repo", "log", "lock", "spool"] {
        mkdir_for_postgres(&repo.join(d));
    }
    let conf = repo.join("pgbackrest.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={r}/repo\nlog-path={r}/log\nlock-path={r}/lock\nspool-path={r}/spool\n\
             start-fast=y\nprocess-max=2\ncompress-type=zst\nlog-level-console=warn\narchive-check=n\n\
             [jobs]\npg1-path={p}\npg1-socket-path={p}\npg1-port=5432\npg1-user=postgres\n",
            r = repo.display(),
            p = c.pgdata().display()
        ),
    )
    .expect("conf");
    common::chown_to_server_user(&conf);
    ok("stanza-create", pgbackrest(&conf, &["stanza-create"]));

    let mut ours_backup = f64::MAX;
    let mut theirs_backup = f64::MAX;
    for round in 0..rounds {
        client.batch_execute("CHECKPOINT").expect("checkpoint");
        let t = timed(
            "pgbackrest backup",
            pgbackrest(&conf, &["backup", "--type=full"]),
        );
        theirs_backup = theirs_backup.min(t);
        client.batch_execute("CHECKPOINT").expect("checkpoint");
        let mut cmd = jobdbctl(&c);
        cmd.args(["backup", "--mode", "physical", "--quiet"]);
        let o = timed("backup --mode physical", cmd);
        ours_backup = ours_backup.min(o);
        eprintln!("round {round}: physical backup {o:.2} s, pgbackrest backup {t:.2} s");
    }

    // A target after both tools' last backups: a few jobs, a moment, a few more.
    client
        .batch_execute(
            "INSERT INTO jobdb.jobs (task_identifier) SELECT 'before' FROM generate_series(1, 100)",
        )
        .expect("insert");
    let target: String = client
        .query_one("SELECT clock_timestamp()::text", &[])
        .expect("now")
        .get(0);
    client
        .batch_execute(
            "INSERT INTO jobdb.jobs (task_identifier) SELECT 'after' FROM generate_series(1, 100)",
        )
        .expect("insert");
    // Both tools recover from the same archive: the WAL past the target is archived first
    // (jobdbctl's restore would do it itself; pgBackRest's cannot).
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_switch_wal() - 1)", &[])
        .expect("switch")
        .get(0);
    common::wait_until(
        "the target's WAL to be archived",
        Duration::from_secs(60),
        || wal.join(format!("{segment}.zst")).exists(),
    );
    drop(client);

    let mut ours_restore = f64::MAX;
    let mut phases = String::new();
    let mut theirs_restore = f64::MAX;
    let exe = common::bin_for_other_users();
    for round in 0..rounds {
        // pgBackRest: restore into an empty directory, then recover it with a server of its
        // own until it is promoted.
        let dest = work.join(format!("pgbr-restored-{round}"));
        mkdir_for_postgres(&dest);
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        let start = Instant::now();
        ok(
            "pgbackrest restore",
            pgbackrest(
                &conf,
                &[
                    "restore",
                    "--type=time",
                    &format!("--target={target}"),
                    "--target-action=promote",
                    // The base backup's timeline: after jobdbctl's first round the archive
                    // holds its restore's timeline 2, whose newest segment the restored server
                    // has not archived yet, and following it (PostgreSQL's default, latest)
                    // ends pgBackRest's recovery at the archive's end, before the target.
                    // jobdbctl has the running server archive that segment first.
                    "--target-timeline=1",
                    &format!("--pg1-path={}", dest.display()),
                    &format!(
                        "--recovery-option=restore_command={} wal-fetch --from {} %f %p",
                        exe.display(),
                        wal.display()
                    ),
                ],
            ),
        );
        let mut pg = Command::new("runuser");
        pg.args(["-u", "postgres", "--"])
            .arg(common::pg_bindir().join("pg_ctl"))
            .arg("-D")
            .arg(&dest)
            .arg("-o")
            .arg(format!(
                "-c port=5433 -c listen_addresses='' -c unix_socket_directories={} -c archive_mode=off -c logging_collector=off",
                dest.display()
            ))
            .args(["-w", "-s", "-t", "3600", "-l"])
            .arg(dest.join("start.log"))
            .arg("start")
            .current_dir("/");
        if !pg.status().expect("pg_ctl").success() {
            panic!(
                "pg_ctl start on pgbackrest's restore failed: {}",
                std::fs::read_to_string(dest.join("start.log")).unwrap_or_default()
            );
        }
        let mut recovered = postgres::Config::new()
            .host_path(&dest)
            .port(5433)
            .user("postgres")
            .dbname("jobdb")
            .connect(postgres::NoTls)
            .expect("connect to the pgbackrest restore");
        common::wait_until(
            "pgbackrest's restore to promote",
            Duration::from_secs(3600),
            || {
                !recovered
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .expect("in recovery")
                    .get::<_, bool>(0)
            },
        );
        let t = start.elapsed().as_secs_f64();
        theirs_restore = theirs_restore.min(t);
        drop(recovered);
        let mut stop = Command::new("runuser");
        stop.args(["-u", "postgres", "--"])
            .arg(common::pg_bindir().join("pg_ctl"))
            .arg("-D")
            .arg(&dest)
            .args(["-m", "immediate", "-w", "-s", "stop"])
            .current_dir("/");
        ok("pg_ctl stop", stop);
        std::fs::remove_dir_all(&dest).expect("remove");

        let mut cmd = jobdbctl(&c);
        cmd.args([
            "--stale-after",
            "0s",
            "restore",
            "--to-time",
            &target,
            "--yes",
            "--force",
            "--json",
        ]);
        let start = Instant::now();
        let report = ok("restore --to-time", cmd);
        let o = start.elapsed().as_secs_f64();
        let report: serde_json::Value = serde_json::from_str(&report).expect("restore --json");
        if o < ours_restore {
            phases = report["phases"].to_string();
        }
        // Like pgBackRest's restore into an empty directory, removing nothing: the replaced
        // cluster goes outside the timing.
        if let Some(aside) = report["recovery"]["replaced_cluster_kept_at"].as_str() {
            std::fs::remove_dir_all(aside).expect("remove the replaced cluster");
        }
        ours_restore = ours_restore.min(o);
        eprintln!(
            "round {round}: restore --to-time {o:.2} s, pgbackrest restore + recovery {t:.2} s"
        );
    }
    let data = dir_size(&c.pgdata());
    println!(
        "pitr bench: {jobs} jobs, data directory {:.0} MB",
        data as f64 / 1e6
    );
    println!(
        "physical backup: jobdbctl {ours_backup:.2} s, pgbackrest backup --type=full {theirs_backup:.2} s, ratio {:.2} (goal <= 1.0)",
        ours_backup / theirs_backup
    );
    println!(
        "restore to a time: jobdbctl {ours_restore:.2} s, pgbackrest restore --type=time + recovery {theirs_restore:.2} s, ratio {:.2} (goal <= 1.0)",
        ours_restore / theirs_restore
    );
    println!("restore --to-time phases (best round): {phases}");
    println!(
        "archiving under load: {inserted} jobs inserted in {load_seconds} s ({wal_mb:.0} MB of WAL written in all), largest backlog {worst_backlog} segment(s) (goal < 4)"
    );
}

fn dir_size(dir: &PathBuf) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += dir_size(&e.path()),
            Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => {}
        }
    }
    total
}
