//! Named restore points in the write-ahead log, for point-in-time recovery to a name.

use crate::db::{Db, Sql};

/// Where a restore point was written.
pub struct Made {
    pub lsn: String,
    /// The WAL segment holding it (its first 8 hex digits are the timeline), archived once
    /// the switch that follows it completes.
    pub segment: String,
}

/// Writes a restore point named `name`, then switches to a new WAL segment so the one holding
/// the point is archived now rather than whenever it fills.
pub fn create(db: &mut Db, name: &str) -> anyhow::Result<Made> {
    let row = db.query_one(
        "create_restore_point",
        "SELECT p::text, pg_walfile_name(p) FROM pg_create_restore_point($1) AS p",
        &[&name],
    )?;
    let made = Made {
        lsn: row.get(0),
        segment: row.get(1),
    };
    db.query_one("switch_wal", "SELECT pg_switch_wal()::text", &[])?;
    Ok(made)
}

/// The server's `archive_command`, as it runs now.
pub fn archive_command(db: &mut Db) -> anyhow::Result<String> {
    Ok(db
        .query_one(
            "archive_command",
            "SELECT current_setting('archive_command')",
            &[],
        )?
        .get(0))
}
