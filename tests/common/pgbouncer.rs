//! A real PgBouncer in front of the shared test server, on a free loopback port.
//!
//! It reaches the server over the server's Unix socket (trust auth there) and lets clients
//! in on 127.0.0.1 with `auth_type = trust` (the user must still be in its auth file). As
//! root it runs as the server user through runuser, as the servers do. It is stopped on
//! Drop, and by a watchdog once this test process is gone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{chown_to_server_user, free_port, is_root, jobdbctl, shared, temp_dir, TestDb};

pub const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

impl PoolMode {
    pub fn name(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

pub struct PgBouncer {
    pub mode: PoolMode,
    pub port: u16,
    pub pool_size: u32,
    dir: tempfile::TempDir,
    child: Child,
}

/// The pgbouncer binary: `PGBOUNCER` env, else Debian's path, else whatever is on PATH.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("PGBOUNCER") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from(PGBOUNCER);
    if debian.is_file() {
        return debian;
    }
    PathBuf::from("pgbouncer")
}

impl PgBouncer {
    /// Starts PgBouncer in `mode` with `pool_size` server connections per database and user,
    /// and waits until it takes connections.
    pub fn start(mode: PoolMode, pool_size: u32) -> PgBouncer {
        PgBouncer::start_with(mode, pool_size, "DISCARD ALL")
    }

    /// As [`PgBouncer::start`], with this `server_reset_query` (empty: none, so a session's
    /// state stays on its server connection for the next client).
    pub fn start_with(mode: PoolMode, pool_size: u32, reset_query: &str) -> PgBouncer {
        let server = shared();
        let dir = temp_dir("pgb");
        let port = free_port();
        let d = dir.path();
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").expect("write auth file");
        std::fs::write(
            d.join("pgbouncer.ini"),
            format!(
                "[databases]\n\
                 * = host={socket} port={server_port} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {dir}/users.txt\n\
                 admin_users = postgres\n\
                 pool_mode = {mode}\n\
                 default_pool_size = {pool_size}\n\
                 min_pool_size = 0\n\
                 reserve_pool_size = 0\n\
                 max_client_conn = 200\n\
                 server_reset_query = {reset_query}\n\
                 logfile = {dir}/pgbouncer.log\n\
                 pidfile = {dir}/pgbouncer.pid\n",
                socket = server.socket_dir().display(),
                server_port = server.tcp_port,
                dir = d.display(),
                mode = mode.name(),
            ),
        )
        .expect("write pgbouncer.ini");
        chown_to_server_user(d);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary());
            c
        } else {
            Command::new(binary())
        };
        let child = cmd
            .arg(d.join("pgbouncer.ini"))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer (apt-get install pgbouncer)");
        let bouncer = PgBouncer {
            mode,
            port,
            pool_size,
            dir,
            child,
        };
        bouncer.watchdog();
        bouncer.wait_ready();
        bouncer
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.pid")
    }

    /// PgBouncer's own pid (under runuser the child is runuser).
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Stops PgBouncer once this test process is gone, however it ends.
    fn watchdog(&self) {
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; \
             kill -9 {runner} 2>/dev/null; [ -f {pid} ] && kill -9 $(cat {pid}) 2>/dev/null; true",
            me = std::process::id(),
            runner = self.child.id(),
            pid = self.pid_file().display(),
        );
        super::after_this_test(&script);
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.pid().is_some() && self.admin_try().is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not start; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    fn config(&self, dbname: &str) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(dbname)
            .connect_timeout(Duration::from_secs(30));
        c
    }

    fn admin_try(&self) -> Result<postgres::Client, postgres::Error> {
        self.config("pgbouncer").connect(postgres::NoTls)
    }

    /// PgBouncer's admin console (simple query protocol only: `SHOW CLIENTS`, …).
    pub fn admin(&self) -> postgres::Client {
        self.admin_try().expect("connect to the pgbouncer console")
    }

    /// A client of the test's own through the pooler.
    pub fn client(&self, db: &TestDb) -> postgres::Client {
        self.config(&db.name)
            .connect(postgres::NoTls)
            .expect("connect through pgbouncer")
    }

    /// The URL jobdbctl uses to reach `db` through the pooler.
    pub fn url(&self, db: &TestDb) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, db.name
        )
    }

    /// jobdbctl aimed at `db` through the pooler.
    pub fn cmd(&self, db: &TestDb) -> Command {
        let mut cmd = jobdbctl(db.configdir.path());
        cmd.arg("--database-url").arg(self.url(db));
        cmd
    }

    pub fn run(&self, db: &TestDb, args: &[&str]) -> super::Run {
        let mut cmd = self.cmd(db);
        cmd.args(args);
        super::run(cmd)
    }

    /// Client connections PgBouncer has for `db` (from its console).
    pub fn clients_of(&self, db: &TestDb) -> usize {
        count_rows_for(&mut self.admin(), "SHOW CLIENTS", &db.name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Rows of a console `SHOW …` whose `database` column is `dbname`.
fn count_rows_for(admin: &mut postgres::Client, show: &str, dbname: &str) -> usize {
    let messages = admin.simple_query(show).expect(show);
    messages
        .iter()
        .filter(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => {
                row.columns()
                    .iter()
                    .position(|c| c.name() == "database")
                    .and_then(|i| row.get(i))
                    == Some(dbname)
            }
            _ => false,
        })
        .count()
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill has no memory effects; a stale pid at worst gets a signal that a
            // pgbouncer of ours would have got anyway (the pid file is ours alone).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
