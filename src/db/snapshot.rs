//! The online backup's view of the database: one `REPEATABLE READ, READ ONLY` transaction
//! whose snapshot is exported and imported by the extra connections that stream table data,
//! so every stream sees the same instant.

use std::time::Duration;

use anyhow::bail;
use futures_util::StreamExt;

use crate::db::dump::TableDef;
use crate::db::{
    connect::open_driven, copy_option, log, pages_condition, qualified, quote_ident, sql_error, Db,
    Sql, Tx,
};
use crate::target::Target;

/// Starts the snapshot transaction and exports its snapshot; returns the snapshot id.
pub fn begin(db: &mut Db) -> anyhow::Result<(Tx<'_>, String)> {
    let mut tx = db.transaction()?;
    tx.batch(
        "snapshot_isolation",
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    )?;
    let id: String = tx
        .query_one("export_snapshot", "SELECT pg_export_snapshot()", &[])?
        .get(0);
    Ok((tx, id))
}

/// A connection that streams table data in the backup's snapshot. It is driven by a runtime
/// of its own, one poll loop per COPY: the blocking client enters its runtime once per
/// CopyData message, that is once per row of binary COPY, which cost a fifth of the
/// backup's CPU.
pub struct Stream {
    // Dropped before the runtime, which then ends the connection's task.
    client: tokio_postgres::Client,
    rt: tokio::runtime::Runtime,
    verbose: bool,
}

impl Stream {
    pub fn connect(
        target: &Target,
        connect_timeout: Duration,
        verbose: bool,
    ) -> anyhow::Result<Stream> {
        let (rt, client) = open_driven(target, connect_timeout)?;
        Ok(Stream {
            client,
            rt,
            verbose,
        })
    }

    /// Joins the exported snapshot.
    pub fn import(&mut self, snapshot: &str) -> anyhow::Result<()> {
        // SET TRANSACTION SNAPSHOT takes no parameters; the id comes from pg_export_snapshot
        // and is checked to be what the server produces (hex digits and dashes).
        if snapshot.is_empty() || !snapshot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            bail!("unexpected snapshot id {snapshot:?} from the server");
        }
        self.batch(
            "import_snapshot",
            &format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot}'"
            ),
        )
    }

    /// Streams a table (or the heap pages `[from, to)` of it) with COPY, binary where the
    /// table's column types allow it (`TableDef::format`), text otherwise, handing each
    /// piece the server sends to `each`. An error of `each` ends the COPY and is returned
    /// as it is.
    pub fn copy_out(
        &mut self,
        schema: &str,
        table: &TableDef,
        pages: Option<(i64, Option<i64>)>,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(c)).collect();
        let name = qualified(schema, &table.name);
        let format = copy_option(table.format);
        let sql = match pages {
            None => format!("COPY {name} ({}) TO STDOUT{format}", columns.join(", ")),
            Some(range) => format!(
                "COPY (SELECT {} FROM {name} WHERE {}) TO STDOUT{format}",
                columns.join(", "),
                pages_condition(range)
            ),
        };
        log(self.verbose, "copy_out", &sql);
        let client = &self.client;
        self.rt.block_on(async {
            let stream = client
                .copy_out(sql.as_str())
                .await
                .map_err(|e| sql_error("copy_out", e))?;
            let mut stream = std::pin::pin!(stream);
            while let Some(data) = stream.next().await {
                each(&data.map_err(|e| sql_error("copy_out", e))?)?;
            }
            Ok(())
        })
    }

    pub fn commit(&mut self) -> anyhow::Result<()> {
        self.batch("commit", "COMMIT")
    }

    fn batch(&mut self, name: &str, sql: &str) -> anyhow::Result<()> {
        log(self.verbose, name, sql);
        self.rt
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| sql_error(name, e))
    }
}

/// Holds off DDL on the schema's tables and views until the backup ends, as pg_dump does.
pub fn lock_relations(tx: &mut Tx<'_>, schema: &str) -> anyhow::Result<()> {
    let names: Vec<String> = tx
        .query(
            "list_relations",
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY c.oid",
            &[&schema],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = names.iter().map(|n| qualified(schema, n)).collect();
    tx.batch(
        "lock_relations",
        &format!("LOCK TABLE {} IN ACCESS SHARE MODE", list.join(", ")),
    )
}

/// `server_version_num`: TID range scans (PG 14+) make splitting a table across streams cheap.
pub fn server_version_num(db: &mut impl Sql) -> anyhow::Result<i32> {
    let text: String = db
        .query_one(
            "server_version_num",
            "SELECT current_setting('server_version_num')",
            &[],
        )?
        .get(0);
    Ok(text.trim().parse().unwrap_or(0))
}
