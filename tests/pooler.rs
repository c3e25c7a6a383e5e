//! jobdbctl behind a real PgBouncer (issue 15): transaction and statement pooling are refused
//! before anything changes; in session mode runs stay one at a time and leave no lock behind,
//! whether they succeed, are refused or are killed; the exit-7 message names a holder in this
//! database only.

mod common;
use common::Exec;

use common::path_str;

use common::assert_has;

use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pgbouncer::{PgBouncer, PoolMode};
use common::{Run, TestDb};
use postgres::Client;

/// Polls `cond` until it holds, for at most two minutes.
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every operation lock name jobdbctl uses on the `jobdb` schema (finalize locks per id).
fn lock_names() -> Vec<String> {
    let mut names = vec!["backup".to_string(), "migrate:jobdb".to_string()];
    names.extend((1..=200).map(|id| format!("finalize-migration:jobdb:{id}")));
    names
}

/// jobdbctl advisory locks in `db`'s database, as (backend pid, lock name), from the server.
fn jobdbctl_locks(db: &TestDb) -> Vec<(i32, String)> {
    db.client()
        .query(
            "SELECT l.pid, n.name
               FROM pg_locks l
               JOIN unnest($1::text[]) AS n(name)
                 ON ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('jobdbctl:' || n.name, 0)
              WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              ORDER BY 1, 2",
            &[&lock_names()],
        )
        .expect("pg_locks")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[track_caller]
fn assert_no_locks(db: &TestDb, after: &str) {
    let held = jobdbctl_locks(db);
    assert!(
        held.is_empty(),
        "jobdbctl locks still held after {after}: {held:?}"
    );
}

/// The backend holding lock `name` in `db`, once some run holds it.
fn wait_for_holder(db: &TestDb, name: &str) -> i32 {
    let mut holder = None;
    wait_until(&format!("a run holds the {name} lock"), || {
        holder = jobdbctl_locks(db)
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(pid, _)| pid);
        holder.is_some()
    });
    holder.unwrap_or_default()
}

/// Waits until the killed `child` is gone and PgBouncer no longer lists a client for `db`
/// other than the test's own `others`.
fn wait_gone(mut child: Child, bouncer: &PgBouncer, db: &TestDb, others: usize) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    wait_until("pgbouncer drops the killed run's connections", || {
        bouncer.clients_of(db) <= others
    });
}

/// Everything in the database that a command could change: the schemas, every table's rows
/// and every sequence's position, as text.
fn fingerprint(db: &TestDb) -> Vec<String> {
    let mut c = db.client();
    let relations: Vec<(String, String, String)> = c
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'S')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg_toast%'
              ORDER BY 1, 2",
            &[],
        )
        .expect("relations")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut out = Vec::new();
    for (schema, name, kind) in relations {
        let rel = format!("\"{schema}\".\"{name}\"");
        let sql = if kind == "S" {
            format!("SELECT last_value::text || '/' || is_called::text FROM {rel}")
        } else {
            format!(
                "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {rel} t"
            )
        };
        let value: String = c.query_one(&sql, &[]).expect(&sql).get(0);
        out.push(format!("{rel} {value}"));
    }
    out
}

fn spawn(mut cmd: std::process::Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn jobdbctl")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for jobdbctl"))
}

/// The exit-7 message names the lock's holder, and only it.
#[track_caller]
fn assert_names_holder(run: &Run, holder: i32) {
    let line = run.one_line_error();
    assert_has(line, "another jobdbctl");
    assert!(
        line.contains(&format!("backend pid {holder} ")),
        "the message should name backend {holder}: {line}"
    );
}

#[test]
fn transaction_and_statement_pooling_are_refused_by_every_command_before_anything_changes() {
    let db = TestDb::with_migrations(2000);
    let old = TestDb::empty();
    old.run(&["init", "--schema-version", "1"]).expect(0);
    let empty = TestDb::empty();
    let dir = common::temp_dir("pl");
    let archive = dir.path().join("earlier.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    // Since the backup: a restore would change the database again.
    db.client()
        .exec("INSERT INTO jobdb.jobs (task_identifier) SELECT 'since-backup' FROM generate_series(1, 10)");
    let id: i64 = db
        .client()
        .query_one(
            "SELECT min(id) FROM jobdb.batched_background_migrations WHERE status = 1",
            &[],
        )
        .expect("active migration")
        .get(0);
    let ids = id.to_string();
    let output = dir.path().join("new.tar.gz");
    let commands: Vec<(&TestDb, Vec<&str>)> = vec![
        (&db, vec!["status"]),
        (&db, vec!["show-params"]),
        (&db, vec!["backup", "--output", path_str(&output)]),
        (&db, vec!["restore", path_str(&archive), "--yes", "--force"]),
        (
            &db,
            vec!["finalize-migration", "--id", &ids, "--pause-ms", "0"],
        ),
        (&db, vec!["unlock-stale-jobs", "--prune-workers"]),
        (&db, vec!["set-job-counter", "900000"]),
        (&old, vec!["migrate"]),
        (&empty, vec!["init"]),
    ];
    let before: Vec<Vec<String>> = [&db, &old, &empty].map(fingerprint).to_vec();

    for mode in [PoolMode::Transaction, PoolMode::Statement] {
        let bouncer = PgBouncer::start(mode, 3);
        for (target, args) in &commands {
            let run = bouncer.run(target, args);
            run.expect(3);
            let line = run.one_line_error();
            let what = format!("{args:?} in {} mode", mode.name());
            assert!(
                line.contains(&format!("{} pooling mode", mode.name())),
                "{what}: {line}"
            );
            assert!(
                line.contains("connect directly to PostgreSQL, or through a pool in session mode"),
                "{what}: {line}"
            );
            assert!(!output.exists(), "{what} wrote an archive");
            for t in [&db, &old, &empty] {
                assert_no_locks(t, &what);
            }
        }
        let after: Vec<Vec<String>> = [&db, &old, &empty].map(fingerprint).to_vec();
        assert_eq!(before, after, "a refused run changed the database");
    }
    assert!(!common::schema_exists(&mut empty.client(), "jobdb"));
}

/// Clients that keep the pool busy: each connects, runs short transactions, disconnects,
/// again and again, so in session mode they also give their server connection back.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start(bouncer: &PgBouncer, db: &TestDb, clients: usize) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let url = bouncer.url(db);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut c = Client::connect(&url, postgres::NoTls).expect("busy client");
                        for _ in 0..20 {
                            c.simple_query("BEGIN; SELECT pg_sleep(0.002); COMMIT")
                                .expect("busy transaction");
                        }
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The check's second connection opens alongside the run's own. With one connection slot
/// (a role limited to one), whichever gets it first, the run gets it: the second gives way,
/// and the check makes do without it.
#[test]
fn with_one_connection_slot_the_runs_own_connection_gets_it() {
    let db = TestDb::with_migrations(50);
    let role = format!("one_slot_{}", db.name);
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
             GRANT USAGE ON SCHEMA jobdb TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA jobdb TO {role};
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA jobdb TO {role};"
        ))
        .expect("role with one slot");
    let url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    for i in 0..10 {
        let mut cmd = common::jobdbctl(db.configdir.path());
        cmd.args(["--database-url", &url, "--json", "status"]);
        let run = common::run(cmd);
        assert_eq!(run.code, 0, "run {i}: {}", run.stderr);
        assert_eq!(run.json()["jobs"]["total"], 50, "run {i}");
    }
}

/// A pooler that serves one client at a time and keeps the others waiting at login, as
/// pgpool-II does with one child process: each client's bytes go to and from the real
/// server's socket, and only when that client has gone is the next one served. With
/// `latest_first`, a client arriving within 300 ms of a waiting one is served before it, so
/// that of two connections opened together the later one gets in first.
fn one_client_at_a_time(latest_first: bool) -> u16 {
    let server = common::shared()
        .socket_dir()
        .join(format!(".s.PGSQL.{}", common::shared().tcp_port));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (arrived, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if arrived.send(client).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        let mut waiting = std::collections::VecDeque::new();
        loop {
            let client = match waiting.pop_front() {
                Some(client) => client,
                None => match arrivals.recv() {
                    Ok(client) if latest_first => {
                        match arrivals.recv_timeout(Duration::from_millis(300)) {
                            Ok(later) => {
                                waiting.push_back(client);
                                later
                            }
                            Err(_) => client,
                        }
                    }
                    Ok(client) => client,
                    Err(_) => return,
                },
            };
            let Ok(upstream) = std::os::unix::net::UnixStream::connect(&server) else {
                continue;
            };
            let (Ok(mut from_client), Ok(mut to_server)) =
                (client.try_clone(), upstream.try_clone())
            else {
                continue;
            };
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_server);
                let _ = to_server.shutdown(std::net::Shutdown::Write);
            });
            let (mut from_server, mut to_client) = (upstream, client);
            let _ = std::io::copy(&mut from_server, &mut to_client);
            let _ = to_client.shutdown(std::net::Shutdown::Both);
            let _ = up.join();
        }
    });
    port
}

/// The check's second connection opens alongside the run's own. Behind a pooler that lets
/// one client in at a time the run finishes in seconds whichever gets in first: the second
/// connection, in first, makes way once the run's own has been kept out for a second, and
/// the check opens it again after (where it waits at the door, and the check goes on
/// without it). Without the making way, the run would wait for ever.
#[test]
fn behind_a_pooler_that_lets_one_client_in_at_a_time_the_run_still_finishes() {
    let db = TestDb::with_migrations(50);
    // A connection kept waiting at login is given up on after this (the probe's longest
    // wait); the default 10 s would only make the test slow.
    db.write_config("connect_timeout = \"2s\"\n");
    for latest_first in [false, true] {
        let port = one_client_at_a_time(latest_first);
        let url = format!(
            "postgresql://postgres@127.0.0.1:{port}/{}?sslmode=disable",
            db.name
        );
        for i in 0..2 {
            let what = format!("latest first {latest_first}, run {i}");
            let mut cmd = common::jobdbctl(db.configdir.path());
            cmd.args(["--database-url", &url, "--verbose", "--json", "status"]);
            let child = spawn(cmd);
            let pid = child.id();
            let deadline = Instant::now() + Duration::from_secs(60);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(finish(child));
            });
            let run = loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(run) => break run,
                    Err(_) if Instant::now() < deadline => {}
                    Err(_) => {
                        let _ = std::process::Command::new("kill")
                            .arg(pid.to_string())
                            .status();
                        panic!("{what}: status still waiting after 60 s");
                    }
                }
            };
            assert_eq!(run.code, 0, "{what}: {}", run.stderr);
            assert_eq!(run.json()["jobs"]["total"], 50, "{what}");
        }
    }
}

#[test]
fn the_pooling_check_holds_for_pool_sizes_1_3_and_10_with_and_without_busy_clients() {
    let db = TestDb::initialized();
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        for size in [1, 3, 10] {
            let bouncer = PgBouncer::start(mode, size);
            let expected = if mode == PoolMode::Session { 0 } else { 3 };
            let what = format!("{} mode, pool of {size}", mode.name());
            let run = bouncer.run(&db, &["status"]);
            assert_eq!(run.code, expected, "{what}, idle: {}", run.stderr);
            let busy = Busy::start(&bouncer, &db, 4);
            for i in 0..5 {
                let run = bouncer.run(&db, &["status"]);
                assert_eq!(run.code, expected, "{what}, busy, run {i}: {}", run.stderr);
            }
            drop(busy);
            assert_no_locks(&db, &what);
        }
    }
}

#[test]
fn session_mode_two_backups_at_once_one_runs_the_other_gets_exit_7() {
    let db = TestDb::with_migrations(5000);
    let bouncer = PgBouncer::start(PoolMode::Session, 3);
    let dir = common::temp_dir("pl");
    let first_out = dir.path().join("first.tar.gz");
    let second_out = dir.path().join("second.tar.gz");

    // The first backup takes its lock, then waits for its table locks (a migration holds one).
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.workers IN ACCESS EXCLUSIVE MODE");
    let mut cmd = bouncer.cmd(&db);
    cmd.args(["backup", "--output", path_str(&first_out)]);
    let first = spawn(cmd);
    let holder = wait_for_holder(&db, "backup");

    let second = bouncer.run(&db, &["backup", "--output", path_str(&second_out)]);
    second.expect(7);
    assert_names_holder(&second, holder);
    assert!(!second_out.exists());
    assert_eq!(
        jobdbctl_locks(&db),
        vec![(holder, "backup".to_string())],
        "the refused run holds no lock"
    );

    tx.rollback().expect("rollback");
    finish(first).expect(0);
    assert_no_locks(&db, "a successful backup");
    db.run(&["verify", path_str(&first_out)]).expect(0);
}

#[test]
fn session_mode_two_restores_at_once_one_runs_the_other_gets_exit_7() {
    let db = TestDb::with_migrations(5000);
    let dir = common::temp_dir("pl");
    let archive = dir.path().join("a.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let bouncer = PgBouncer::start(PoolMode::Session, 3);
    let restore = |c: &mut std::process::Command| {
        c.args(["restore", path_str(&archive), "--yes", "--force"]);
    };

    // A refusal (live workers) comes before the restore changes anything, leftovers
    // included: with the workers gone, the first restore gets as far as the leftovers.
    db.client()
        .exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
    // What an interrupted restore left behind, held open by a reader: the first restore
    // takes its lock, then waits to drop it.
    let mut blocker = db.client();
    blocker
        .exec("CREATE SCHEMA jobdbctl_restore_jobdb; CREATE TABLE jobdbctl_restore_jobdb.leftover (x int)");
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdbctl_restore_jobdb.leftover IN ACCESS SHARE MODE");
    let mut cmd = bouncer.cmd(&db);
    restore(&mut cmd);
    let first = spawn(cmd);
    let holder = wait_for_holder(&db, "backup");

    let mut cmd = bouncer.cmd(&db);
    restore(&mut cmd);
    let second = common::run(cmd);
    second.expect(7);
    assert_names_holder(&second, holder);

    // Once the reader lets go, the first restore drops the leftovers and finishes.
    tx.rollback().expect("rollback");
    finish(first).expect(0);
    assert_no_locks(&db, "a restore that waited");

    // The archive brought its workers back, live: stop them again.
    db.client()
        .exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
    let mut cmd = bouncer.cmd(&db);
    restore(&mut cmd);
    common::run(cmd).expect(0);
    assert_no_locks(&db, "a successful restore");
    let mut c = db.client();
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT count(*) FROM jobdb.jobs"),
        5000
    );
}

/// A table to convert, and a migration (id returned) that copies `from_col` to `to_col`.
fn copy_migration(db: &TestDb, rows: i64) -> i64 {
    let mut c = db.client();
    c.batch_execute(&format!(
        "CREATE TABLE jobdb.events (id integer PRIMARY KEY, from_col integer, to_col bigint);
         INSERT INTO jobdb.events SELECT g, g * 7, NULL FROM generate_series(1, {rows}) g;
         ANALYZE jobdb.events;"
    ))
    .expect("events");
    c.query_one(
        "INSERT INTO jobdb.batched_background_migrations
             (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
              table_name, column_name, job_arguments)
         VALUES ($1, 1000, 250, 120, 1, 'CopyColumnUsingBackgroundMigrationJob', 'events', 'id',
                 '[[\"from_col\"],[\"to_col\"]]')
         RETURNING id",
        &[&rows],
    )
    .expect("queue migration")
    .get(0)
}

#[test]
fn session_mode_two_finalizers_at_once_one_runs_the_other_gets_exit_7() {
    let db = TestDb::initialized();
    let id = copy_migration(&db, 20_000);
    let ids = id.to_string();
    let bouncer = PgBouncer::start(PoolMode::Session, 3);
    let args = ["finalize-migration", "--id", &ids, "--pause-ms", "0"];

    // The first finalizer takes its lock, then waits to mark the migration finalizing.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.batched_background_migrations IN SHARE MODE");
    let mut cmd = bouncer.cmd(&db);
    cmd.args(args);
    let first = spawn(cmd);
    let holder = wait_for_holder(&db, &format!("finalize-migration:jobdb:{id}"));

    let second = bouncer.run(&db, &args);
    second.expect(7);
    assert_names_holder(&second, holder);

    tx.rollback().expect("rollback");
    finish(first).expect(0);
    assert_no_locks(&db, "a successful finalize-migration");
    let mut c = db.client();
    assert_eq!(
        common::scalar_i64(
            &mut c,
            "SELECT count(*) FROM jobdb.events WHERE to_col IS DISTINCT FROM from_col"
        ),
        0
    );
    // Finalizing a finished migration again, and migrate with nothing to do, leave no lock.
    bouncer.run(&db, &args).expect(0);
    assert_no_locks(&db, "finalize-migration of a finished migration");
    let old = TestDb::empty();
    old.run(&["init", "--schema-version", "1"]).expect(0);
    bouncer.run(&old, &["migrate"]).expect(0);
    assert_no_locks(&old, "a successful migrate");
}

#[test]
fn no_lock_outlives_a_run_even_when_the_pool_does_not_reset_sessions() {
    // Without a reset query a server connection goes to the next client as the last one
    // left it: only the run itself can make sure its locks go.
    let db = TestDb::with_migrations(2000);
    let dir = common::temp_dir("pl");
    let archive = dir.path().join("a.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let id = copy_migration(&db, 5000);
    let ids = id.to_string();
    let bouncer = PgBouncer::start_with(PoolMode::Session, 3, "");

    bouncer
        .run(
            &db,
            &["backup", "--output", path_str(&dir.path().join("b.tar.gz"))],
        )
        .expect(0);
    assert_no_locks(&db, "a successful backup");
    // The generated workers are live.
    bouncer
        .run(&db, &["restore", path_str(&archive), "--yes", "--force"])
        .expect(3);
    assert_no_locks(&db, "a refused restore");
    bouncer
        .run(
            &db,
            &["finalize-migration", "--id", &ids, "--pause-ms", "0"],
        )
        .expect(0);
    assert_no_locks(&db, "a successful finalize-migration");
    let old = TestDb::empty();
    old.run(&["init", "--schema-version", "1"]).expect(0);
    bouncer.run(&old, &["migrate"]).expect(0);
    assert_no_locks(&old, "a successful migrate");
}

#[test]
fn session_mode_a_killed_run_leaves_no_lock_behind() {
    let db = TestDb::with_migrations(20_000);
    let dir = common::temp_dir("pl");
    let archive = dir.path().join("a.tar.gz");
    db.run(&["backup", "--output", path_str(&archive)])
        .expect(0);
    let bytes = std::fs::read(&archive).expect("read archive");
    db.client()
        .exec("UPDATE jobdb.workers SET last_heartbeat_at = now() - interval '1 hour'");
    let before = fingerprint(&db);
    let bouncer = PgBouncer::start(PoolMode::Session, 3);
    let mut admin = common::shared().admin();

    // 1. Idle between statements, lock held: a restore reading an archive from a pipe that
    // stops half way. PgBouncer resets the server connection (DISCARD ALL) when the client
    // goes and keeps the backend: the lock goes with the reset, not with the backend.
    let mut cmd = bouncer.cmd(&db);
    cmd.args(["restore", "-", "--yes", "--force"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn restore");
    let mut stdin = child.stdin.take().expect("stdin");
    let half = bytes[..bytes.len() / 2].to_vec();
    let feeder = std::thread::spawn(move || {
        // Fails once the restore is killed; the pipe stays open until then.
        let _ = stdin.write_all(&half);
        stdin
    });
    let holder = wait_for_holder(&db, "backup");
    // The main session goes idle for good only once it has built the staging schema and
    // handed the data to the loaders; before that it is idle for moments between statements,
    // and a kill in the next statement would make PgBouncer close the backend instead.
    wait_until(
        "a loader has started its COPY and the main session is idle, holding its lock",
        || {
            admin
                .query_one(
                    "SELECT coalesce((SELECT state FROM pg_stat_activity WHERE pid = $1), '') = 'idle'
                        AND EXISTS (SELECT 1 FROM pg_stat_activity
                                     WHERE datname = $2 AND pid <> $1 AND query LIKE 'COPY %')",
                    &[&holder, &db.name],
                )
                .expect("pg_stat_activity")
                .get::<_, bool>(0)
        },
    );
    wait_gone(child, &bouncer, &db, 0);
    drop(feeder.join().expect("feeder"));
    wait_until("the killed restore's lock is gone", || {
        jobdbctl_locks(&db).is_empty()
    });
    let alive: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
            &[&holder],
        )
        .expect("pg_stat_activity")
        .get(0);
    assert!(
        alive,
        "the backend should be back in the pool, reset by DISCARD ALL"
    );

    // 2. In the middle of a statement: a backup waiting for its table locks. PgBouncer
    // closes that server connection; the backend ends once its statement returns.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().expect("begin");
    tx.exec("LOCK TABLE jobdb.workers IN ACCESS EXCLUSIVE MODE");
    let mut cmd = bouncer.cmd(&db);
    cmd.args(["backup", "--output", path_str(&dir.path().join("k.tar.gz"))])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("spawn backup");
    wait_for_holder(&db, "backup");
    wait_gone(child, &bouncer, &db, 0);
    tx.rollback().expect("rollback");
    wait_until("the killed backup's lock is gone", || {
        jobdbctl_locks(&db).is_empty()
    });

    // The database is as it was, and the next runs get the lock.
    let leftover = db
        .client()
        .batch_execute("DROP SCHEMA IF EXISTS jobdbctl_restore_jobdb CASCADE");
    leftover.expect("drop the killed restore's staging schema");
    assert_eq!(before, fingerprint(&db));
    bouncer
        .run(
            &db,
            &["backup", "--output", path_str(&dir.path().join("b.tar.gz"))],
        )
        .expect(0);
    assert_no_locks(&db, "a backup after the killed runs");
}

#[test]
fn the_exit_7_message_names_a_holder_in_this_database_only() {
    let db = TestDb::initialized();
    let dir = common::temp_dir("pl");
    let out = dir.path().join("x.tar.gz");
    let name = "SELECT pg_advisory_lock(hashtextextended('jobdbctl:backup', 0)), pg_backend_pid()";
    // Other databases' backups hold the same lock name (advisory locks are per database).
    let others: Vec<TestDb> = (0..6).map(|_| TestDb::empty()).collect();
    let mut other_clients: Vec<Client> = others.iter().map(|o| o.client()).collect();
    let other_pids: Vec<i32> = other_clients
        .iter_mut()
        .map(|c| c.query_one(name, &[]).expect("hold elsewhere").get(1))
        .collect();
    let mut holder_client = db.client();
    let holder: i32 = holder_client.query_one(name, &[]).expect("hold").get(1);

    let bouncer = PgBouncer::start(PoolMode::Session, 3);
    for (how, run) in [
        ("direct", db.run(&["backup", "--output", path_str(&out)])),
        (
            "session pool",
            bouncer.run(&db, &["backup", "--output", path_str(&out)]),
        ),
    ] {
        run.expect(7);
        assert_names_holder(&run, holder);
        let line = run.one_line_error();
        for pid in &other_pids {
            assert!(
                !line.contains(&format!("pid {pid} ")),
                "{how}: names backend {pid} of another database: {line}"
            );
        }
    }
    assert!(!out.exists());
    // Only the test's own holder has it.
    assert_eq!(jobdbctl_locks(&db), vec![(holder, "backup".to_string())]);
    drop(other_clients);
    drop(holder_client);
}
