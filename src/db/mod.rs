//! The only place that speaks SQL. Statements are named for what they do; parameters are
//! always bound; identifiers that come from data are checked against the catalog and quoted.

pub mod backfill;
pub mod batched_migrations;
pub mod counter;
pub mod dump;
pub mod health;
pub mod highwater;
pub mod load;
pub mod migrate;
pub mod pooler;
pub mod profile;
pub mod purge;
pub mod schema;
pub mod snapshot;
pub mod status;
pub mod tls;
pub mod unlock;
pub mod vacuum;
pub mod workers;

use std::time::Duration;

use anyhow::Context as _;
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Row, SimpleQueryMessage, Transaction};

use crate::archive::CopyFormat;
use crate::error::{failure, Exit, Failure};
use crate::target::Target;

pub use profile::{Profile, ProfileKind};

pub struct Db {
    client: Client,
    verbose: bool,
    /// Operation locks this session holds, released on every way out (see `Drop`).
    held_locks: Vec<String>,
    on_warning: Option<Warn>,
}

/// Where a `Db` sends warnings (the command's output).
type Warn = Box<dyn Fn(&str) + Send>;

const CONNECT_ATTEMPTS: u32 = 6;

/// Errors worth retrying at start-up: nothing listening yet, a dropped connection, or a
/// server that is starting up or shutting down.
fn is_transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        return *db.code() == SqlState::CANNOT_CONNECT_NOW;
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = inner.source();
    }
    false
}

fn is_authentication_failure(e: &postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        ]
        .contains(code)
    })
}

/// The server answered but refused the credentials: it is up, and retrying will not help.
#[derive(Debug)]
pub struct AuthenticationFailed;

impl std::fmt::Display for AuthenticationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the server is up but refused these credentials; check the user name and the password (PGPASSWORD, PGPASSFILE or ~/.pgpass)",
        )
    }
}

impl std::error::Error for AuthenticationFailed {}

/// The server (or the role or database) had no connection slot left.
#[derive(Debug)]
pub struct NoConnectionSlot;

impl std::fmt::Display for NoConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no connection slot left")
    }
}

impl std::error::Error for NoConnectionSlot {}

/// Whether connecting failed because no connection slot was left.
pub fn no_connection_slot(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<NoConnectionSlot>())
}

/// PostgreSQL's "too many connections" (for the server, a role or a database), or
/// PgBouncer's refusals past `max_client_conn` and its per-user and per-database client
/// limits.
fn is_out_of_slots(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
        || e.as_db_error().is_some_and(|db| {
            ["no more connections allowed", "client connections exceeded"]
                .iter()
                .any(|m| db.message().contains(m))
        })
}

/// Whether connecting failed because the server refused the credentials.
pub fn authentication_failed(err: &anyhow::Error) -> bool {
    err.downcast_ref::<AuthenticationFailed>().is_some()
        || err.chain().any(|e| e.is::<AuthenticationFailed>())
}

/// The option a `COPY` statement ends with for an archive table's format.
pub fn copy_option(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Text => "",
        CopyFormat::Binary => " (FORMAT binary)",
    }
}

/// A table of `pages` heap pages cut into `parts` (at least one) ranges `[from, to)`, in
/// order; the last is open-ended, so rows on pages past `pages` (the count is an estimate,
/// or the table grew) are still covered.
pub fn page_ranges(pages: i64, parts: i64) -> Vec<(i64, Option<i64>)> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| {
            let to = (i + 1 < parts).then(|| pages * (i + 1) / parts);
            (pages * i / parts, to)
        })
        .collect()
}

/// The condition on `ctid` for the heap pages `[from, to)`: a TID range scan on PostgreSQL
/// 14+ (older servers filter a full scan).
pub fn pages_condition((from, to): (i64, Option<i64>)) -> String {
    match to {
        Some(to) => format!("ctid >= '({from},0)'::tid AND ctid < '({to},0)'::tid"),
        None => format!("ctid >= '({from},0)'::tid"),
    }
}

/// Quotes an identifier for SQL, as `quote_ident` does.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// One connection attempt to `target` with `pg`; the outer error is a TLS set-up problem.
fn open(
    target: &Target,
    pg: &tokio_postgres::Config,
) -> anyhow::Result<Result<Client, postgres::Error>> {
    let pg = postgres::Config::from(pg.clone());
    Ok(match target {
        Target::Remote(remote) if remote.tls.mode != tls::TlsMode::Disable => {
            pg.connect(tls::connector(&remote.tls)?)
        }
        _ => pg.connect(NoTls),
    })
}

/// A connection on a single-thread runtime of its own, for work that wants many messages per
/// poll ([`snapshot::Stream`]). Connects once: it joins a run whose first connection has
/// already reached the server.
fn open_driven(
    target: &Target,
    connect_timeout: Duration,
) -> anyhow::Result<(tokio::runtime::Runtime, tokio_postgres::Client)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime of a COPY stream")?;
    let pg = target.pg_config(connect_timeout);
    let client = match target {
        Target::Remote(remote) if remote.tls.mode != tls::TlsMode::Disable => {
            let tls = tls::connector(&remote.tls)?;
            rt.block_on(async {
                let (client, connection) = pg.connect(tls).await?;
                tokio::spawn(connection);
                Ok(client)
            })
        }
        _ => rt.block_on(async {
            let (client, connection) = pg.connect(NoTls).await?;
            tokio::spawn(connection);
            Ok(client)
        }),
    }
    .map_err(|e: postgres::Error| {
        failure(
            Exit::Connect,
            format!("cannot connect to {}: {}", target.describe(), one_line(&e)),
        )
    })?;
    Ok((rt, client))
}

/// See [`Db::server_facts`].
pub struct ServerFacts {
    pub tls: bool,
    pub version: String,
    pub database: String,
    pub database_size: i64,
    /// A standby.
    pub in_recovery: bool,
    /// Some standby (or base backup) streams from this server: only then is
    /// `pg_stat_replication` worth planning.
    pub wal_senders: bool,
}

impl Db {
    fn new(client: Client, verbose: bool) -> Db {
        Db {
            client,
            verbose,
            held_locks: Vec::new(),
            on_warning: None,
        }
    }

    /// Where warnings go (a lock found already released, say); by default nowhere.
    pub fn on_warning(&mut self, warn: impl Fn(&str) + Send + 'static) {
        self.on_warning = Some(Box::new(warn));
    }

    fn warn(&self, message: &str) {
        if let Some(warn) = &self.on_warning {
            warn(message);
        }
    }

    /// A line for `-v` only.
    fn note(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// A statement over the simple query protocol: no prepared statement, nothing bound.
    fn simple(&mut self, name: &str, sql: &str) -> anyhow::Result<Vec<SimpleQueryMessage>> {
        log(self.verbose, name, sql);
        self.client
            .simple_query(sql)
            .map_err(|e| sql_error(name, e))
    }

    /// Connects, retrying a refused or reset connection (a server restarting, a failover in
    /// progress) a few times with backoff; each retry is reported through `on_retry`.
    pub fn connect(
        target: &Target,
        connect_timeout: Duration,
        verbose: bool,
        on_retry: &dyn Fn(String),
    ) -> anyhow::Result<Db> {
        let pg = target.pg_config(connect_timeout);
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match open(target, &pg)? {
                Ok(client) => return Ok(Db::new(client, verbose)),
                Err(e) if attempt < CONNECT_ATTEMPTS && is_transient(&e) => {
                    attempt += 1;
                    on_retry(format!(
                        "cannot connect to {} ({}); retrying in {delay:?} (attempt {attempt}/{CONNECT_ATTEMPTS})",
                        target.describe(),
                        one_line(&e),
                    ));
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(e) => {
                    let failed = |hint: &str| Failure {
                        exit: Exit::Connect,
                        message: format!(
                            "cannot connect to {}: {}{hint}",
                            target.describe(),
                            one_line(&e)
                        ),
                    };
                    // Kinds a caller tells apart travel as the error under the message.
                    return Err(if is_authentication_failure(&e) {
                        anyhow::Error::new(AuthenticationFailed).context(failed(""))
                    } else if is_out_of_slots(&e) {
                        anyhow::Error::new(NoConnectionSlot)
                            .context(failed("; wait for connections to end, or raise the limit"))
                    } else {
                        anyhow::Error::new(failed(match target {
                            Target::Embedded(_) => "; start it with `jobdbctl start`",
                            Target::Remote(_) => {
                                "; check the URL, that the server is up, and credentials"
                            }
                        }))
                    });
                }
            }
        }
    }

    /// What `status` says about the server and this session, in one round trip.
    pub fn server_facts(&mut self) -> anyhow::Result<ServerFacts> {
        let row = self.query_one(
            "server_facts",
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
                    current_setting('server_version'), current_database(),
                    pg_database_size(current_database()), pg_is_in_recovery(),
                    (SELECT count(*) FROM pg_stat_get_wal_senders()) > 0",
            &[],
        )?;
        Ok(ServerFacts {
            tls: row.get(0),
            version: row.get(1),
            database: row.get(2),
            database_size: row.get(3),
            in_recovery: row.get(4),
            wal_senders: row.get(5),
        })
    }

    /// A standby is read-only; commands that write must run on the primary.
    pub fn is_in_recovery(&mut self) -> anyhow::Result<bool> {
        Ok(self
            .query_one("is_in_recovery", "SELECT pg_is_in_recovery()", &[])?
            .get(0))
    }

    pub fn transaction(&mut self) -> anyhow::Result<Tx<'_>> {
        log(self.verbose, "begin", "BEGIN");
        let tx = self
            .client
            .transaction()
            .context("cannot begin transaction")?;
        Ok(Tx {
            tx,
            verbose: self.verbose,
        })
    }

    pub fn server_version(&mut self) -> anyhow::Result<String> {
        let row = self.query_one(
            "server_version",
            "SELECT current_setting('server_version')",
            &[],
        )?;
        Ok(row.get(0))
    }

    pub fn database_name(&mut self) -> anyhow::Result<String> {
        Ok(self
            .query_one("current_database", "SELECT current_database()", &[])?
            .get(0))
    }

    /// For sessions of short queries, where JIT compilation costs more than it saves.
    pub fn disable_jit(&mut self) -> anyhow::Result<()> {
        self.batch("jit_off", "SET jit = off")
    }

    /// Takes a session-level advisory lock named `name`, or fails with exit 7 when another
    /// session holds it. Released by [`Db::release_operation_lock`] or when this `Db` is
    /// dropped, and by the server when the connection closes, so a killed run frees it too.
    pub fn try_operation_lock(&mut self, name: &str, what: &str) -> anyhow::Result<()> {
        self.wait_operation_lock(name, what, Duration::ZERO)
    }

    /// As [`Db::try_operation_lock`], but waits up to `wait` for the holder to finish.
    pub fn wait_operation_lock(
        &mut self,
        name: &str,
        what: &str,
        wait: Duration,
    ) -> anyhow::Result<()> {
        // Advisory locks are re-entrant within a session; taking one twice would need two
        // releases.
        if self.held_locks.iter().any(|held| held == name) {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            let got: bool = self
                .query_typed_one(
                    "try_operation_lock",
                    "SELECT pg_try_advisory_lock(hashtextextended('jobdbctl:' || $1, 0))",
                    &[(&name, Type::TEXT)],
                )?
                .get(0);
            if got {
                self.held_locks.push(name.to_string());
                return Ok(());
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                let holder = self.lock_holder(name)?;
                return Err(failure(
                    Exit::Locked,
                    format!("another jobdbctl {what} is running on this database{holder}; wait for it to finish"),
                ));
            }
            // Advisory locks cannot be waited on with a timeout from here; poll.
            std::thread::sleep((deadline - now).min(Duration::from_millis(200)));
        }
    }

    /// Releases a lock taken by [`Db::try_operation_lock`] before the connection closes, for
    /// a run that goes on to other work (`finalize-migration --all`). Warns when the session
    /// no longer held it: then nothing kept another run out meanwhile.
    pub fn release_operation_lock(&mut self, name: &str) -> anyhow::Result<()> {
        self.held_locks.retain(|held| held != name);
        if !self.unlock(name)? {
            self.warn(&lock_gone(name));
        }
        Ok(())
    }

    fn unlock(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .query_typed_one(
                "release_operation_lock",
                "SELECT pg_advisory_unlock(hashtextextended('jobdbctl:' || $1, 0))",
                &[(&name, Type::TEXT)],
            )?
            .get(0))
    }

    /// A statement with its parameter types given, run as an unnamed statement: no named
    /// prepared statement is left in the session.
    fn query_typed_one(
        &mut self,
        name: &str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> anyhow::Result<Row> {
        log(self.verbose, name, sql);
        self.client
            .query_typed_one(sql, params)
            .map_err(|e| sql_error(name, e))
    }

    fn lock_holder(&mut self, name: &str) -> anyhow::Result<String> {
        let rows = self.query(
            "advisory_lock_holder",
            "SELECT a.pid, coalesce(a.client_hostname, a.client_addr::text, 'local'), a.backend_start::text
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('jobdbctl:' || $1, 0)",
            &[&name],
        )?;
        Ok(rows
            .first()
            .map(|r| {
                let pid: i32 = r.get(0);
                let host: String = r.get(1);
                let since: String = r.get(2);
                format!(" (backend pid {pid} from {host}, since {since})")
            })
            .unwrap_or_default())
    }
}

fn lock_gone(name: &str) -> String {
    format!(
        "the jobdbctl lock {name:?} was no longer held by this session when released; \
         another run may have worked alongside this one"
    )
}

impl Drop for Db {
    /// Releases the operation locks still held, whichever way the run ends (an error, a
    /// refusal, a panic), so none outlives it on a server connection a pooler hands on.
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.held_locks) {
            if self.client.is_closed() {
                return;
            }
            // Best effort: the server drops the lock with the session anyway.
            if let Ok(false) = self.unlock(&name) {
                self.warn(&lock_gone(&name));
            }
        }
    }
}

/// A transaction with the same logging and error wrapping as [`Db`].
pub struct Tx<'a> {
    tx: Transaction<'a>,
    verbose: bool,
}

impl<'a> Tx<'a> {
    pub fn commit(self) -> anyhow::Result<()> {
        log(self.verbose, "commit", "COMMIT");
        self.tx.commit().context("cannot commit")
    }
}

/// Statement execution shared by a plain connection and a transaction: every statement is
/// named, logged under `-v`, and its error says which statement failed.
pub trait Sql {
    type Client: GenericClient;
    fn parts(&mut self) -> (&mut Self::Client, bool);

    fn query(
        &mut self,
        name: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> anyhow::Result<Vec<Row>> {
        let (client, verbose) = self.parts();
        log(verbose, name, sql);
        client.query(sql, params).map_err(|e| sql_error(name, e))
    }

    fn query_one(
        &mut self,
        name: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> anyhow::Result<Row> {
        let (client, verbose) = self.parts();
        log(verbose, name, sql);
        client
            .query_one(sql, params)
            .map_err(|e| sql_error(name, e))
    }

    fn execute(
        &mut self,
        name: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> anyhow::Result<u64> {
        let (client, verbose) = self.parts();
        log(verbose, name, sql);
        client.execute(sql, params).map_err(|e| sql_error(name, e))
    }

    /// A statement with its parameter types given, sent unnamed with its values in one
    /// round trip (no separate prepare, so it is planned for these values every time);
    /// returns the rows it affected.
    fn execute_typed(
        &mut self,
        name: &str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> anyhow::Result<u64> {
        let (client, verbose) = self.parts();
        log(verbose, name, sql);
        let mut rows = client
            .query_typed_raw(sql, params.iter().cloned())
            .map_err(|e| sql_error(name, e))?;
        while postgres::fallible_iterator::FallibleIterator::next(&mut rows)
            .map_err(|e| sql_error(name, e))?
            .is_some()
        {}
        Ok(rows.rows_affected().unwrap_or(0))
    }

    fn batch(&mut self, name: &str, sql: &str) -> anyhow::Result<()> {
        let (client, verbose) = self.parts();
        log(verbose, name, sql);
        client.batch_execute(sql).map_err(|e| sql_error(name, e))
    }
}

impl Sql for Db {
    type Client = Client;
    fn parts(&mut self) -> (&mut Client, bool) {
        (&mut self.client, self.verbose)
    }
}

impl<'a> Sql for Tx<'a> {
    type Client = Transaction<'a>;
    fn parts(&mut self) -> (&mut Transaction<'a>, bool) {
        (&mut self.tx, self.verbose)
    }
}

fn log(verbose: bool, name: &str, sql: &str) {
    if verbose {
        let sql: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("sql {name}: {sql}");
    }
}

/// A failed statement: its name and the server's message on one line, keeping the SQLSTATE
/// for callers that react to a kind of failure (a timeout, say).
#[derive(Debug)]
pub struct SqlError {
    message: String,
    pub code: Option<SqlState>,
    /// The server went away (stopped, crashed, restarted, or ended this session).
    pub connection_lost: bool,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

/// The SQLSTATE of the failed statement anywhere in `err`'s chain.
pub fn sql_state(err: &anyhow::Error) -> Option<&SqlState> {
    err.chain()
        .find_map(|e| e.downcast_ref::<SqlError>())
        .and_then(|e| e.code.as_ref())
}

fn sql_error(name: &str, e: postgres::Error) -> anyhow::Error {
    anyhow::Error::new(SqlError {
        message: format!("{name}: {}", one_line(&e)),
        code: e.code().cloned(),
        connection_lost: is_connection_lost(&e),
    })
}

/// Whether `e` means the server is gone rather than that a statement failed: the connection
/// closed or broke, or the server ended the session (shutdown, crash, pg_terminate_backend).
pub fn is_connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code);
    }
    // Not a server message: an I/O error on the socket.
    e.as_db_error().is_none()
        && std::iter::successors(std::error::Error::source(e), |inner| inner.source())
            .any(|inner| inner.is::<std::io::Error>())
}

pub fn one_line(e: &postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    };
    text.replace('\n', " ")
}

/// Creates the embedded cluster's job database if it is missing. Connects to the maintenance
/// database `postgres`, since the job database may not exist yet.
pub fn ensure_database(
    cluster: &crate::cluster::Cluster,
    connect_timeout: std::time::Duration,
    verbose: bool,
) -> anyhow::Result<()> {
    let mut pg = cluster.pg_config(connect_timeout);
    pg.dbname("postgres");
    let client = postgres::Config::from(pg).connect(NoTls).map_err(|e| {
        failure(
            Exit::Connect,
            format!("cannot connect to {}: {}", cluster.describe(), one_line(&e)),
        )
    })?;
    let mut db = Db::new(client, verbose);
    let exists = !db
        .query(
            "job_database_exists",
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&crate::cluster::DATABASE],
        )?
        .is_empty();
    if !exists {
        db.batch(
            "create_job_database",
            &format!("CREATE DATABASE {}", quote_ident(crate::cluster::DATABASE)),
        )?;
    }
    Ok(())
}

/// Drops a job schema and everything in it, in one statement.
pub fn drop_schema(db: &mut Db, schema: &str) -> anyhow::Result<()> {
    db.batch(
        "drop_job_schema",
        &format!("DROP SCHEMA {} CASCADE", quote_ident(schema)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_cover_the_table_in_order_and_end_open() {
        for (pages, parts) in [(0, 1), (1, 2), (7, 2), (100_003, 4), (5, 0)] {
            let ranges = page_ranges(pages, parts);
            assert_eq!(ranges.len(), parts.max(1) as usize, "{pages}/{parts}");
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().map(|r| r.1), Some(None));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, Some(pair[1].0), "{pages}/{parts}");
            }
        }
        assert_eq!(
            pages_condition((3, Some(9))),
            "ctid >= '(3,0)'::tid AND ctid < '(9,0)'::tid"
        );
        assert_eq!(pages_condition((3, None)), "ctid >= '(3,0)'::tid");
    }
}
