//! Running statements: every one named, logged under `-v`, and its error saying which
//! statement failed; the same for a plain connection and a transaction.

use anyhow::Context as _;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, Row, Transaction};

use super::errors::sql_error;
use super::Db;

/// A transaction with the same logging and error wrapping as [`Db`].
pub struct Tx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) verbose: bool,
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

pub(super) fn log(verbose: bool, name: &str, sql: &str) {
    if verbose {
        let sql: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("sql {name}: {sql}");
    }
}
