//! Statements `migrate` needs: its gates, the notification to workers, and applying one
//! version in its own transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::schema::{apply_in_tx, RequiredBackgroundMigration, SchemaVersion};
use crate::db::workers::interval_text;
use crate::db::{qualified, quote_ident, Db, Profile, Sql};

/// How long one migration's DDL may wait for a table lock before it gives up (and the
/// transaction rolls back whole) rather than stall the engine's queries behind it.
pub const LOCK_TIMEOUT: &str = "10s";

#[derive(Debug, Clone, Serialize)]
pub struct BackgroundMigrationState {
    pub id: i64,
    pub status: i16,
    pub job_class_name: String,
    pub table_name: String,
    pub column_name: String,
    pub job_arguments: serde_json::Value,
}

impl BackgroundMigrationState {
    pub fn is_finished(&self) -> bool {
        self.status == 3 || self.status == 6
    }
}

/// The background migration a version requires, matched on class, table, column and the
/// column it fills (the first job argument).
pub fn required_background_migration(
    db: &mut impl Sql,
    profile: &Profile,
    required: &RequiredBackgroundMigration,
) -> anyhow::Result<Option<BackgroundMigrationState>> {
    let rows = db.query(
        "find_required_background_migration",
        &format!(
            "SELECT id, status, job_class_name, table_name, column_name, job_arguments
               FROM {} WHERE job_class_name = $1 AND table_name = $2 AND column_name = $3
                AND job_arguments ->> 0 = $4
              ORDER BY id LIMIT 1",
            qualified(&profile.schema, "batched_background_migrations")
        ),
        &[
            &required.job_class_name,
            &required.table_name,
            &required.column_name,
            &required.fills_column,
        ],
    )?;
    Ok(rows.first().map(|r| BackgroundMigrationState {
        id: r.get(0),
        status: r.get(1),
        job_class_name: r.get(2),
        table_name: r.get(3),
        column_name: r.get(4),
        job_arguments: r.get(5),
    }))
}

#[derive(Debug, Clone, Serialize)]
pub struct Holdout {
    pub worker_id: String,
    pub version: Option<String>,
    pub schema_version: Option<i32>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

/// Live workers that cannot run against `version` (they report an older schema, or none).
pub fn live_workers_older_than(
    db: &mut impl Sql,
    profile: &Profile,
    version: i32,
    stale_after: Duration,
) -> anyhow::Result<Vec<Holdout>> {
    let rows = db.query(
        "live_workers_older_than",
        &format!(
            "SELECT worker_id, version, schema_version, last_heartbeat_at FROM {}
              WHERE last_heartbeat_at > now() - $1::text::interval
                AND (schema_version IS NULL OR schema_version < $2)
              ORDER BY worker_id",
            qualified(&profile.schema, "workers")
        ),
        &[&interval_text(stale_after), &version],
    )?;
    Ok(rows
        .iter()
        .map(|r| Holdout {
            worker_id: r.get(0),
            version: r.get(1),
            schema_version: r.get(2),
            last_heartbeat_at: r.get(3),
        })
        .collect())
}

/// Lock holders that are not in the worker registry at all: nobody will ever release them.
pub fn jobs_locked_by_unregistered(
    db: &mut impl Sql,
    profile: &Profile,
) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = db.query(
        "jobs_locked_by_unregistered_workers",
        &format!(
            "SELECT j.locked_by, count(*) FROM {jobs} j
              WHERE j.locked_by IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {workers} w WHERE w.worker_id = j.locked_by)
              GROUP BY j.locked_by ORDER BY j.locked_by",
            jobs = profile.jobs_table(),
            workers = qualified(&profile.schema, "workers"),
        ),
        &[],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Tells listening workers a breaking migration is about to run so old ones can exit.
pub fn notify_workers(db: &mut impl Sql, payload: &serde_json::Value) -> anyhow::Result<()> {
    db.execute(
        "notify_jobdb_migrate",
        "SELECT pg_notify('jobdb_migrate', $1)",
        &[&payload.to_string()],
    )?;
    Ok(())
}

/// Applies one version in its own transaction; returns false when another migrator had
/// already applied it (which counts as success).
pub fn apply(db: &mut Db, profile: &Profile, migration: &SchemaVersion) -> anyhow::Result<bool> {
    let mut tx = db.transaction()?;
    tx.batch(
        "migration_settings",
        &format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SET LOCAL search_path TO {}",
            quote_ident(&profile.schema)
        ),
    )?;
    let applied = !tx
        .query(
            "version_applied",
            "SELECT 1 FROM schema_migrations WHERE version = $1",
            &[&migration.version],
        )?
        .is_empty();
    if applied {
        return Ok(false);
    }
    apply_in_tx(&mut tx, migration)?;
    tx.commit()?;
    Ok(true)
}
