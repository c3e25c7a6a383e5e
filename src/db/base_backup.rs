//! Non-exclusive base backups of the server: `pg_backup_start` and `pg_backup_stop` in one
//! session, which the caller holds for the whole copy (its end aborts the backup).

use std::time::Duration;

use crate::db::{Db, Sql};

/// Where the backup's WAL begins.
pub struct Started {
    pub lsn: String,
    /// The segment holding `lsn`; its first 8 hex digits are the timeline.
    pub wal: String,
}

/// What `pg_backup_stop` returned once the WAL the backup needs was archived.
pub struct Stopped {
    pub lsn: String,
    /// The `backup_label` the copy must hold for recovery to start from the right checkpoint.
    pub label_file: String,
    /// Non-empty only with tablespaces (which the embedded cluster has none of).
    pub tablespace_map: String,
}

/// Starts a backup labelled `label` with an immediate checkpoint.
pub fn start(db: &mut Db, label: &str) -> anyhow::Result<Started> {
    let row = db.query_one(
        "backup_start",
        "SELECT l::text, pg_walfile_name(l) FROM pg_backup_start($1, true) AS l",
        &[&label],
    )?;
    Ok(Started {
        lsn: row.get(0),
        wal: row.get(1),
    })
}

/// Ends the backup, waiting up to `wait` for its last WAL segment to be archived (the server
/// would wait forever while archiving fails).
pub fn stop(db: &mut Db, wait: Duration) -> anyhow::Result<Stopped> {
    db.batch(
        "backup_stop_timeout",
        &format!("SET statement_timeout = {}", wait.as_millis()),
    )?;
    let row = db.query_one(
        "backup_stop",
        "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop(true)",
        &[],
    )?;
    db.batch("backup_stop_timeout_reset", "RESET statement_timeout")?;
    Ok(Stopped {
        lsn: row.get(0),
        label_file: row.get(1),
        tablespace_map: row.get(2),
    })
}

/// Switches to a new WAL segment; the name of the segment it ended, which the archiver
/// archives next. (With no WAL written since the last switch there is nothing to end: the
/// name is then of the segment before, archived already.)
pub fn switch_wal(db: &mut Db) -> anyhow::Result<String> {
    Ok(db
        .query_one(
            "switch_wal_segment",
            "SELECT pg_walfile_name(pg_switch_wal() - 1)",
            &[],
        )?
        .get(0))
}

/// Whether the server is still recovering (a point-in-time restore's server until it
/// reaches its target and promotes).
pub fn in_recovery(db: &mut Db) -> anyhow::Result<bool> {
    Ok(db
        .query_one("in_recovery", "SELECT pg_is_in_recovery()", &[])?
        .get(0))
}

/// The commit time of the last transaction recovery replayed, as the server prints it.
pub fn last_replayed_commit(db: &mut Db) -> anyhow::Result<Option<String>> {
    Ok(db
        .query_one(
            "last_replayed_commit",
            "SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            &[],
        )?
        .get(0))
}

/// The timeline the server writes on now.
pub fn timeline(db: &mut Db) -> anyhow::Result<u32> {
    let name: String = db
        .query_one(
            "timeline",
            "SELECT pg_walfile_name(pg_current_wal_insert_lsn())",
            &[],
        )?
        .get(0);
    u32::from_str_radix(name.get(..8).unwrap_or_default(), 16)
        .map_err(|_| anyhow::anyhow!("the server named WAL segment {name:?}"))
}
