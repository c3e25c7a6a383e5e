//! VACUUM of the job tables, with dead tuples and size before and after.
//!
//! What it guarantees: a plain VACUUM (the default) takes no lock that blocks the workers'
//! reads and writes. `--full` rewrites each table under an ACCESS EXCLUSIVE lock: it needs
//! confirmation, refuses while live workers exist unless forced, waits at most
//! `FULL_LOCK_WAIT_MS` for the lock (so it does not queue in front of the workers), and
//! vacuums one table at a time. A kill -9 mid-VACUUM leaves the table as it was (VACUUM FULL
//! writes a new file and switches to it only at commit); the next VACUUM finishes the work.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::context::Ctx;
use crate::db::purge::jobs_table_name;
use crate::db::vacuum::{self, TableStats};
use crate::db::{workers, Profile};
use crate::error::{failure, Exit};

const FULL_LOCK_WAIT_MS: u64 = 5_000;
/// A conservative rewrite rate for the lock-time estimate (table, TOAST and index rebuild).
const FULL_BYTES_PER_S: f64 = 50.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone)]
pub struct Request {
    pub table: Option<String>,
    pub analyze: bool,
    pub full: bool,
    pub force: bool,
}

#[derive(Debug, Serialize)]
pub struct TableResult {
    pub table: String,
    pub before: TableStats,
    pub after: TableStats,
    pub elapsed_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub schema: String,
    pub full: bool,
    pub analyze: bool,
    pub tables: Vec<TableResult>,
}

/// The tables `vacuum` works on by default: the profile's jobs and queues (and the native
/// worker registry).
pub fn job_tables(profile: &Profile) -> Vec<String> {
    let queues = if jobs_table_name(profile) == "jobs" {
        "job_queues"
    } else {
        "_private_job_queues"
    };
    let mut tables = vec![jobs_table_name(profile).to_string(), queues.to_string()];
    if profile.is_native() {
        tables.push("workers".to_string());
    }
    tables
}

/// Seconds VACUUM FULL is expected to hold its exclusive lock on tables of `bytes`.
pub fn full_lock_estimate(bytes: i64) -> Duration {
    Duration::from_secs_f64((bytes.max(0) as f64 / FULL_BYTES_PER_S).max(1.0))
}

pub fn vacuum(
    ctx: &Ctx,
    req: &Request,
    confirm_full: &dyn Fn(&[TableStats], Duration) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    let tables = match &req.table {
        Some(name) => {
            if !vacuum::table_exists(&mut db, &profile.schema, name)? {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "--table {name:?}: no such table in schema {:?}; the job tables are {}",
                        profile.schema,
                        job_tables(&profile).join(", ")
                    ),
                ));
            }
            vec![name.clone()]
        }
        None => job_tables(&profile),
    };
    let before = vacuum::table_stats(&mut db, &profile.schema, &tables)?;
    if req.full {
        let stale_after = ctx.config.stale_after.value;
        let live = workers::live(&mut db, &profile, stale_after)?;
        if !live.is_empty() && !req.force {
            return Err(workers::refusal(
                "run VACUUM FULL",
                &live,
                stale_after,
                "it locks each table against all reads and writes until rewritten; stop the workers first, or pass --force",
            ));
        }
        let largest = before.iter().map(|t| t.bytes).max().unwrap_or(0);
        confirm_full(&before, full_lock_estimate(largest))?;
    }
    let mut results = Vec::new();
    for stats in before {
        let started = Instant::now();
        vacuum::vacuum_table(
            &mut db,
            &profile.schema,
            &stats.table,
            req.full,
            req.analyze,
            FULL_LOCK_WAIT_MS,
        )?;
        let elapsed_s = started.elapsed().as_secs_f64();
        let after =
            vacuum::table_stats(&mut db, &profile.schema, std::slice::from_ref(&stats.table))?
                .pop()
                .unwrap_or_else(|| stats.clone());
        results.push(TableResult {
            table: stats.table.clone(),
            before: stats,
            after,
            elapsed_s,
        });
    }
    Ok(Summary {
        schema: profile.schema.clone(),
        full: req.full,
        analyze: req.analyze,
        tables: results,
    })
}
