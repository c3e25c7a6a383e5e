//! The only place that speaks SQL. Statements are named for what they do; parameters are
//! always bound; identifiers that come from data are checked against the catalog and quoted.

pub mod backfill;
pub mod base_backup;
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
pub mod restore_point;
pub mod schema;
pub mod snapshot;
pub mod status;
pub mod unlock;
pub mod vacuum;
pub mod workers;

pub mod connect;
mod errors;
mod locks;
mod sql;

use anyhow::Context as _;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Row, SimpleQueryMessage};

use crate::archive::CopyFormat;
use crate::error::{failure, Exit};

pub use connect::authentication_failed;
pub use errors::{connection_lost, exit_code_of, one_line, sql_state};
pub use profile::{Profile, ProfileKind};
pub use sql::{Sql, Tx};

use errors::sql_error;
use sql::log;

pub struct Db {
    client: Client,
    verbose: bool,
    /// Operation locks this session holds, released on every way out (see `Drop`).
    held_locks: Vec<String>,
    on_warning: Option<Warn>,
}

/// Where a `Db` sends warnings (the command's output).
type Warn = Box<dyn Fn(&str) + Send>;

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
    /// archive_mode is on: only then is `pg_stat_archiver` worth reading.
    pub archiving: bool,
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

    /// What `status` says about the server and this session, in one round trip.
    pub fn server_facts(&mut self) -> anyhow::Result<ServerFacts> {
        let row = self.query_one(
            "server_facts",
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
                    current_setting('server_version'), current_database(),
                    pg_database_size(current_database()), pg_is_in_recovery(),
                    (SELECT count(*) FROM pg_stat_get_wal_senders()) > 0,
                    current_setting('archive_mode') <> 'off'",
            &[],
        )?;
        Ok(ServerFacts {
            tls: row.get(0),
            version: row.get(1),
            database: row.get(2),
            database_size: row.get(3),
            in_recovery: row.get(4),
            wal_senders: row.get(5),
            archiving: row.get(6),
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
