//! Test harness: real PostgreSQL servers started through the real `jobdbctl` binary.
//!
//! - [`shared`]: one server per test binary; each test gets its own database ([`TestDb`]).
//! - [`TestCluster`]: a test that manages a server's lifecycle gets its own data dir.
//!
//! A watchdog process stops every server this process started once the process is gone, so
//! a panicking or killed test run leaves no server behind.
#![allow(dead_code)]

pub mod archive_edit;
pub mod generate;
pub mod graphile_npm;
pub mod migrations;
pub mod pgbouncer;
pub mod s3_proxy;
pub mod seaweed;
pub mod tls;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_jobdbctl");
pub const PG_BINDIR_FALLBACK: &str = "/usr/lib/postgresql/15/bin";

/// Variables that would point jobdbctl elsewhere than the test's server.
pub const SCRUBBED_ENV: [&str; 22] = [
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "JOBDBCTL_DATABASE_URL",
    "JOBDBCTL_CONFIGDIR",
    "JOBDBCTL_DATA_DIR",
    "PGTARGETSESSIONATTRS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
];

/// The binary at a path every user can reach, for tests that run it as another user: the
/// clone may sit in a directory others cannot enter (root's home is 0700). A hard link in
/// `/tmp/jobdbctl-tests-<uid>/` (a copy across file systems), named after the build, so
/// the test binaries of one run share it; links of other builds there are removed.
pub fn bin_for_other_users() -> &'static Path {
    static SHARED: OnceLock<PathBuf> = OnceLock::new();
    SHARED.get_or_init(|| {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid cannot fail.
        let dir = PathBuf::from(format!("/tmp/jobdbctl-tests-{}", unsafe {
            libc::geteuid()
        }));
        let _ = std::fs::create_dir(&dir);
        let meta = std::fs::symlink_metadata(&dir).expect("stat shared binary dir");
        // SAFETY: geteuid cannot fail.
        assert!(
            meta.is_dir() && meta.uid() == unsafe { libc::geteuid() },
            "{} is not a directory of ours",
            dir.display()
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let built = std::fs::metadata(BIN).expect("stat binary");
        let name = format!(
            "jobdbctl-{}-{}",
            built.ino(),
            built.mtime_nsec() ^ built.mtime()
        );
        let path = dir.join(&name);
        for old in std::fs::read_dir(&dir).expect("list").flatten() {
            if old.file_name() != name.as_str() {
                let _ = std::fs::remove_file(old.path());
            }
        }
        if !path.exists() {
            let temp = dir.join(format!(".{name}.{}", std::process::id()));
            if std::fs::hard_link(BIN, &temp).is_err() {
                std::fs::copy(BIN, &temp).expect("copy binary");
            }
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::rename(&temp, &path).expect("place binary");
        }
        path
    })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A short, unique temp dir (Unix socket paths must stay under 108 bytes), traversable by
/// the server user when we are root.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod temp dir");
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The binary with a clean environment: no PG*/JOBDBCTL_* variables from the caller, and an
/// empty config dir unless the test writes one.
pub fn jobdbctl(configdir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.arg("--configdir").arg(configdir);
    cmd.stdin(Stdio::null());
    cmd
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "jobdbctl panicked: {}",
            self.stderr
        );
        self
    }

    /// Asserts that standard output holds `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert_has(&self.stdout, needle);
        self
    }

    /// Asserts that standard error holds `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert_has(&self.stderr, needle);
        self
    }

    /// An error is exactly one line on stderr, prefixed like every jobdbctl error.
    #[track_caller]
    pub fn one_line_error(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("jobdbctl: error:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {}",
            self.stderr
        );
        lines[0]
    }

    /// The run's one error line names `needle`.
    #[track_caller]
    pub fn error_has(&self, needle: &str) -> &Run {
        let line = self.one_line_error();
        assert!(line.contains(needle), "{needle:?} not in: {}", self.stderr);
        self
    }
}

pub fn run_with(mut cmd: Command, args: &[&str]) -> Run {
    cmd.args(args);
    run(cmd)
}

pub fn run(mut cmd: Command) -> Run {
    Run::from(cmd.output().expect("run jobdbctl"))
}

/// Starts `cmd` in the background with its output captured; [`finish`] collects it.
pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn jobdbctl")
}

pub fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for jobdbctl"))
}

/// Polls `cond` every 2 ms until it holds (never a fixed sleep); panics naming `what` after
/// `limit`.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts a watchdog that stops the server in `pgdata` and removes `dir` once this test
/// process has exited.
pub fn watchdog(pgdata: &Path, dir: &Path) {
    let pg_ctl = pg_bindir().join("pg_ctl");
    let stop = if is_root() {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            pgdata.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            pgdata.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    after_this_test(&script);
}

/// Runs the shell `script` once this test process has gone: `script` polls for that (there is
/// no portable way to be told of another process's death), and `setsid -f` forks it into its
/// own session, so it outlives a test killed by the harness.
pub fn after_this_test(script: &str) {
    Command::new("setsid")
        .args(["-f", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start watchdog");
}

/// Runs a PostgreSQL program as the server user (`postgres` when we are root).
pub fn pg_command(program: &str) -> Command {
    let path = pg_bindir().join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    };
    cmd.current_dir("/");
    cmd
}

/// Changes the owner of `path` to the server user when we are root.
pub fn chown_to_server_user(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .expect("chown")
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

pub fn pg_bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    if let Ok(out) = out {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    PathBuf::from(PG_BINDIR_FALLBACK)
}

/// A cluster of the test's own, managed through `jobdbctl --data-dir`.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub configdir: PathBuf,
}

impl TestCluster {
    /// A data dir with nothing in it yet; `start --create` (or `init`) creates the cluster.
    pub fn new() -> TestCluster {
        let dir = temp_dir("jd");
        let configdir = dir.path().join("etc");
        std::fs::create_dir(&configdir).expect("create configdir");
        watchdog(&dir.path().join("data/psql"), dir.path());
        TestCluster { dir, configdir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pgdata(&self) -> PathBuf {
        self.data_dir().join("psql")
    }

    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.configdir.join("jobdbctl.toml"), toml).expect("write config");
    }

    /// jobdbctl at a path the server user can run (it runs `wal-push` as archive_command,
    /// `wal-fetch` as restore_command), on this cluster.
    pub fn cmd_for_server_user(&self) -> Command {
        let mut cmd = Command::new(bin_for_other_users());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.arg("--configdir")
            .arg(&self.configdir)
            .arg("--data-dir")
            .arg(self.data_dir());
        cmd
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = jobdbctl(&self.configdir);
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_with(self.cmd(), args)
    }

    pub fn started() -> TestCluster {
        let c = TestCluster::new();
        // The data dir is given explicitly, so start creates the cluster only when asked.
        c.run(&["start", "--create"]).expect(0);
        c
    }

    pub fn client(&self) -> postgres::Client {
        self.client_for("jobdb")
    }

    /// The port in the name of the server's socket (`.s.PGSQL.<port>`): 5432 unless the
    /// test configured another.
    pub fn port(&self) -> u16 {
        std::fs::read_dir(self.pgdata())
            .expect("read pgdata")
            .flatten()
            .find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(".s.PGSQL.")
                    .filter(|rest| !rest.ends_with(".lock"))
                    .and_then(|p| p.parse().ok())
            })
            .expect("server socket in pgdata")
    }

    pub fn client_for(&self, dbname: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.pgdata())
            .port(self.port())
            .user("postgres")
            .dbname(dbname)
            .connect(postgres::NoTls)
            .expect("connect to test cluster")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.run(&["stop", "--mode", "immediate"]);
    }
}

/// The per-binary shared server, also listening on 127.0.0.1 so password auth can be tested.
pub struct SharedServer {
    cluster: TestCluster,
    pub tcp_port: u16,
}

static SHARED: OnceLock<SharedServer> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub fn shared() -> &'static SharedServer {
    SHARED.get_or_init(|| {
        let cluster = TestCluster::new();
        let tcp_port = free_port();
        cluster.write_config(&format!(
            "listen_addresses = '127.0.0.1'\nport = {tcp_port}\n"
        ));
        cluster.run(&["start", "--create"]).expect(0);
        SharedServer { cluster, tcp_port }
    })
}

impl SharedServer {
    pub fn admin(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.cluster.pgdata())
            .port(self.tcp_port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("connect to shared server")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.cluster.pgdata()
    }
}

/// A database of the test's own on the shared server, reached with `--database-url`.
pub struct TestDb {
    pub name: String,
    pub configdir: tempfile::TempDir,
}

impl TestDb {
    /// An empty database (no job schema).
    pub fn empty() -> TestDb {
        let server = shared();
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        server
            .admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        TestDb {
            name,
            configdir: temp_dir("jc"),
        }
    }

    /// A database with the native job schema created by `jobdbctl init`.
    pub fn initialized() -> TestDb {
        let db = TestDb::empty();
        db.run(&["init"]).expect(0);
        db
    }

    /// An initialized database filled with generated jobs, workers and migrations.
    /// An initialized database with `n` queued jobs the test inserted (IDs 1 to `n`).
    pub fn with_queued(n: usize) -> TestDb {
        let db = TestDb::initialized();
        insert_jobs(&mut db.client(), n);
        db
    }

    pub fn populated(spec: &generate::Spec) -> TestDb {
        let db = TestDb::initialized();
        generate::populate(&mut db.client(), "jobdb", spec);
        db
    }

    /// A database with `jobs` jobs of every state (and workers, live and dead).
    pub fn with_jobs(jobs: i64) -> TestDb {
        TestDb::populated(&generate::Spec::jobs(jobs))
    }

    /// As [`TestDb::with_jobs`], with batched background migrations recorded too.
    pub fn with_migrations(jobs: i64) -> TestDb {
        TestDb::populated(&generate::Spec {
            migrations: true,
            ..generate::Spec::jobs(jobs)
        })
    }

    /// A populated database whose jobs and queues hold no locks, so a restore (which
    /// requeues locked jobs) gives back the same rows.
    pub fn populated_unlocked(jobs: i64) -> TestDb {
        let db = TestDb::populated(&generate::Spec {
            jobs,
            live_workers: 0,
            dead_workers: 1,
            migrations: false,
        });
        db.client()
            .exec("UPDATE jobdb.jobs SET state = 'succeeded', locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL;
                 UPDATE jobdb.job_queues SET locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL;");
        db
    }

    /// Writes the config file jobdbctl reads for this database.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.configdir.path().join("jobdbctl.toml"), toml).expect("write config");
    }

    pub fn remove_config(&self) {
        std::fs::remove_file(self.configdir.path().join("jobdbctl.toml")).expect("remove config");
    }

    pub fn url(&self) -> String {
        let s = shared();
        format!(
            "postgresql://postgres@localhost/{}?host={}&port={}",
            self.name,
            s.socket_dir().display(),
            s.tcp_port
        )
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = jobdbctl(self.configdir.path());
        cmd.arg("--database-url").arg(self.url());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_with(self.cmd(), args)
    }

    /// `jobdbctl ARGS` running in the background, its output captured.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.cmd();
        cmd.args(args);
        spawn(cmd)
    }

    pub fn client(&self) -> postgres::Client {
        let s = shared();
        postgres::Config::new()
            .host_path(s.socket_dir())
            .port(s.tcp_port)
            .user("postgres")
            .dbname(&self.name)
            .connect(postgres::NoTls)
            .expect("connect to test database")
    }
}

/// Adds one queued job, as the engine would, and returns its id.
pub fn insert_job(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "INSERT INTO jobdb.jobs (task_identifier) VALUES ('t') RETURNING id",
            &[],
        )
        .expect("insert job")
        .get(0)
}

/// `pg_dump` of one schema (`--schema-only` or `--data-only`), comments, `\\restrict` lines
/// (a random key per dump) and blank lines dropped and lines sorted, so row order and dump
/// order do not matter.
pub fn pg_dump_sorted(db: &TestDb, schema: &str, what: &str) -> Vec<String> {
    let s = shared();
    let out = Command::new(pg_bindir().join("pg_dump"))
        .arg("-h")
        .arg(s.socket_dir())
        .arg("-p")
        .arg(s.tcp_port.to_string())
        .args(["-U", "postgres", "-n", schema, what, "-d", &db.name])
        .output()
        .expect("run pg_dump");
    assert_success(&out, "pg_dump");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// A single bigint from `sql`.
pub fn scalar_i64(client: &mut postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).expect(sql).get(0)
}

/// A damaged or hostile archive both refuse: `verify` with exit 5 and one line, `restore`
/// into `target` (an empty database) with exit 5 and no schema created. Returns verify's run.
pub fn assert_archive_refused(db: &TestDb, target: &TestDb, archive: &Path, what: &str) -> Run {
    let archive = archive.to_str().expect("utf-8 path");
    let verified = db.run(&["verify", archive]);
    verified.expect(5);
    assert_eq!(
        verified.stderr.lines().count(),
        1,
        "{what}: {}",
        verified.stderr
    );
    target.run(&["restore", archive, "--yes"]).expect(5);
    assert!(
        !schema_exists(&mut target.client(), "jobdb"),
        "{what}: a refused restore created the schema"
    );
    verified
}

pub fn schema_exists(client: &mut postgres::Client, schema: &str) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .expect("catalog")
        .get(0)
}

/// The names of the ordinary tables in `schema`, sorted.
pub fn table_names(client: &mut postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
            &[&schema],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Locked rows of `table` (schema-qualified) per holder.
pub fn locks_by_holder(client: &mut postgres::Client, table: &str) -> BTreeMap<String, i64> {
    client
        .query(
            &format!(
                "SELECT locked_by, count(*) FROM {table} WHERE locked_by IS NOT NULL GROUP BY 1"
            ),
            &[],
        )
        .expect("count locks")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Per worker (jobs, queues) released, from unlock-stale-jobs' JSON report.
pub fn released_by_worker(json: &serde_json::Value) -> BTreeMap<String, (i64, i64)> {
    json["workers"]
        .as_array()
        .expect("workers array")
        .iter()
        .map(|w| {
            (
                w["worker_id"].as_str().expect("worker_id").to_string(),
                (
                    w["jobs_released"].as_i64().expect("jobs"),
                    w["queues_released"].as_i64().expect("queues"),
                ),
            )
        })
        .collect()
}

/// Asserts that `text` holds `needle`, showing both when it does not.
#[track_caller]
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not found in:\n{text}");
}

/// A path as the `&str` an argument list wants (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `YYYY-MM-DD HH:MM:SS UTC` somewhere in `text`.
pub fn has_human_time(text: &str) -> bool {
    text.as_bytes().windows(23).any(|w| {
        let s = String::from_utf8_lossy(w);
        let b = s.as_bytes();
        s.len() == 23
            && s.ends_with(" UTC")
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && b[16] == b':'
            && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
    })
}

/// A file only its owner may read, with content and metadata to compare afterwards.
pub struct Victim {
    pub path: PathBuf,
    body: &'static str,
}

impl Victim {
    pub fn new(dir: &Path) -> Victim {
        let path = dir.join("root-only-secret");
        let body = "secret: do not overwrite, chmod, chown or print me\n";
        fs::write(&path, body).expect("write victim");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod victim");
        Victim { path, body }
    }

    #[track_caller]
    pub fn untouched(&self, what: &str) {
        let meta = fs::symlink_metadata(&self.path).expect("victim still there");
        assert_eq!(
            fs::read_to_string(&self.path).expect("read victim"),
            self.body,
            "{what}: the file behind the link was overwritten"
        );
        assert_eq!(
            meta.mode() & 0o7777,
            0o600,
            "{what}: the file behind the link was chmod'ed"
        );
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            meta.uid(),
            me,
            "{what}: the file behind the link was chown'ed"
        );
    }
}

/// Runs SQL set-up statements on any client or transaction, panicking with the statement's
/// first line when one fails: the set-up of a test is not what it tests.
pub trait Exec {
    fn exec(&mut self, sql: &str);
}

impl<C: postgres::GenericClient> Exec for C {
    fn exec(&mut self, sql: &str) {
        if let Err(e) = self.batch_execute(sql) {
            panic!("{}: {e}", sql.trim().lines().next().unwrap_or_default());
        }
    }
}

/// Fails the test with `what` and the command's stderr unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `n` queued jobs, as the engine would.
pub fn insert_jobs(client: &mut postgres::Client, n: usize) {
    for _ in 0..n {
        insert_job(client);
    }
}

/// The first column of every row `sql` returns.
pub fn column<T, C>(client: &mut postgres::Client, sql: &str) -> C
where
    T: for<'a> postgres::types::FromSql<'a>,
    C: FromIterator<T>,
{
    client
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Schemas a restore or backup leaves behind when it fails to clean up (staging or replaced).
pub fn leftover_schemas(client: &mut postgres::Client) -> Vec<String> {
    column(
        client,
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'jobdbctl\\_%'",
    )
}

/// A JSON array of strings, sorted.
#[track_caller]
pub fn sorted_strings(list: &serde_json::Value) -> Vec<String> {
    let Some(items) = list.as_array() else {
        panic!("not an array: {list}")
    };
    let mut v: Vec<String> = items
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect();
    v.sort();
    v
}
