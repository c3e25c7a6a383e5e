//! Purging finished jobs older than a cut-off, and dropping archived months.
//!
//! What it guarantees:
//! - Only finished jobs go (native: the chosen states among succeeded, failed, cancelled;
//!   Graphile Worker: permanently failed jobs), never one a worker holds: the predicate
//!   requires no lock. Each window is one plain `DELETE` (as fast as one `DELETE` of the
//!   same rows); one that meets a row a worker has locked at that instant gives up within the
//!   200 ms lock timeout and is taken again with `FOR UPDATE SKIP LOCKED`, which leaves that
//!   row for the next run. A worker waits on the purge only for a row it wants to change that
//!   the purge deletes, until the window commits (under a second).
//! - The jobs are visited in windows of ids; each window is one short transaction
//!   (statement timeout below 1 s, window size adapted toward `TARGET_BATCH` by the finalize
//!   engine's `BatchSizer`, halved and retried on a timeout).
//! - With `--archive` each deleted row is inserted into its finish month's table by the same
//!   statement, so a row is in the jobs table or in the archive, never both, never neither.
//! - The job-ID sequence is never touched, so purged ids are never handed out again.
//! - One purge or archive drop at a time per database (advisory lock, exit 7).
//!
//! A kill -9 rolls back the window in flight; the windows before it are committed. A rerun
//! starts over from the smallest id and finds only what is left.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use serde::Serialize;

use crate::context::Ctx;
use crate::db::purge::{self, ArchiveTable, Finished, MonthCount};
use crate::db::{sql_state, Db, Profile};
use crate::error::{failure, Exit};
use crate::shared::batch_sizer::BatchSizer;

/// The operation lock shared by purge-jobs and purge-archive.
pub const LOCK: &str = "purge";
const LOCK_WHAT: &str = "purge-jobs or purge-archive";

/// A window transaction aims at this long; the statement timeout keeps it under a second.
pub const TARGET_BATCH: Duration = Duration::from_millis(250);
/// The statement timeout of a window; with --archive, of its two statements together.
const STATEMENT_TIMEOUT_MS: u64 = 800;
/// What the moving statement gets at least, however long finding the months took.
const MIN_STATEMENT_MS: u64 = 100;
const LOCK_TIMEOUT_MS: u64 = 200;
const MIN_WINDOW: i64 = 500;
const MAX_WINDOW: i64 = 2_000_000;
const FIRST_WINDOW: i64 = 50_000;
/// Timeouts in a row at the smallest window before the purge gives up.
const MAX_TIMEOUTS: u32 = 5;

pub const NATIVE_STATES: [&str; 3] = ["succeeded", "failed", "cancelled"];

#[derive(Debug, Clone, Copy)]
pub enum Cutoff {
    OlderThan(Duration),
    Before(DateTime<Utc>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub cutoff: Cutoff,
    /// Native states to purge; None: all finished states.
    pub states: Option<Vec<String>>,
    pub archive: bool,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub profile: &'static str,
    pub schema: String,
    pub cutoff: DateTime<Utc>,
    pub states: Vec<String>,
    pub dry_run: bool,
    pub archive: bool,
    /// Jobs purged (or, dry run, that would be).
    pub jobs: i64,
    /// Per finish month (`YYYY-MM`), for a dry run (which also splits by state) and an
    /// archiving purge; a plain purge counts only the total.
    pub by_month: Vec<MonthCount>,
    pub batches: u64,
    pub retried_batches: u64,
    pub batch_ms_p99: Option<f64>,
    pub batch_ms_max: Option<f64>,
    pub elapsed_s: f64,
    pub jobs_per_s: f64,
}

pub fn purge_jobs(ctx: &Ctx, req: &Request) -> anyhow::Result<Summary> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    let finished = finished_for(&profile, req.states.as_deref())?;
    check_dependents(ctx, &mut db, &profile, req.archive)?;
    db.try_operation_lock(LOCK, LOCK_WHAT)?;
    db.disable_jit()?;
    let cutoff = match req.cutoff {
        Cutoff::OlderThan(d) => {
            purge::cutoff_before_now(&mut db, i64::try_from(d.as_millis()).unwrap_or(i64::MAX))?
        }
        Cutoff::Before(t) => t,
    };
    let mut summary = Summary {
        profile: profile.name(),
        schema: profile.schema.clone(),
        cutoff,
        states: match &finished {
            Finished::States(s) => s.clone(),
            Finished::GraphilePermanentlyFailed => vec!["failed".to_string()],
        },
        dry_run: req.dry_run,
        archive: req.archive,
        jobs: 0,
        by_month: Vec::new(),
        batches: 0,
        retried_batches: 0,
        batch_ms_p99: None,
        batch_ms_max: None,
        elapsed_s: 0.0,
        jobs_per_s: 0.0,
    };
    let Some((min_id, max_id)) = purge::id_bounds(&mut db, &profile)? else {
        return Ok(summary);
    };
    let started = Instant::now();
    if req.dry_run {
        summary.by_month =
            purge::preview(&mut db, &profile, &finished, cutoff, (min_id, max_id + 1))?;
        summary.jobs = summary.by_month.iter().map(|m| m.jobs).sum();
        summary.elapsed_s = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let columns = if req.archive {
        purge::job_columns(&mut db, &profile)?
    } else {
        Vec::new()
    };
    let mut ensured: HashSet<String> = HashSet::new();
    let mut by_month: BTreeMap<String, i64> = BTreeMap::new();
    let mut sizer = BatchSizer::new(FIRST_WINDOW, MIN_WINDOW, MAX_WINDOW, Some(TARGET_BATCH));
    let mut batch_ms = Vec::new();
    let mut timeouts_in_a_row = 0;
    let bar = ctx.out.progress(
        (max_id - min_id + 1) as u64,
        "purging {bar:40} {pos}/{len} ids, {msg} ({eta} left)",
    );
    let mut lo = min_id;
    let mut rows = purge::Rows::Delete;
    while lo <= max_id {
        let hi = lo.saturating_add(sizer.size()).min(max_id + 1);
        let t = Instant::now();
        let outcome = purge_one_window(
            &mut db,
            &profile,
            (&finished, cutoff),
            (lo, hi),
            req.archive.then_some(columns.as_slice()),
            &ensured,
            rows,
        );
        match outcome {
            Ok((result, created)) => {
                let took = t.elapsed();
                batch_ms.push(took.as_secs_f64() * 1000.0);
                summary.batches += 1;
                timeouts_in_a_row = 0;
                sizer.record(hi - lo, took);
                ensured.extend(created);
                for (month, n) in result.by_month {
                    *by_month.entry(month).or_default() += n;
                }
                summary.jobs += result.deleted;
                rows = purge::Rows::Delete;
                bar.inc((hi - lo) as u64);
                bar.set_message(format!("{} jobs purged", summary.jobs));
                lo = hi;
            }
            Err(e) if is_timeout(&e) => {
                summary.retried_batches += 1;
                // A row a worker holds right now: take the window again around it.
                if sql_state(&e) == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                    rows = purge::Rows::SkipLocked;
                }
                timeouts_in_a_row += 1;
                if timeouts_in_a_row > MAX_TIMEOUTS && sizer.size() <= MIN_WINDOW {
                    bar.finish_and_clear();
                    return Err(e.context(format!(
                        "a window of {MIN_WINDOW} ids still took longer than {STATEMENT_TIMEOUT_MS} ms {MAX_TIMEOUTS} times in a row \
                         (the server is overloaded, or DDL holds the jobs table); everything before id {lo} is purged, rerun later"
                    )));
                }
                sizer.on_timeout();
            }
            Err(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    summary.by_month = by_month
        .into_iter()
        .map(|(month, jobs)| MonthCount {
            month,
            state: summary.states.join(","),
            jobs,
        })
        .collect();
    (summary.batch_ms_p99, summary.batch_ms_max) = super::p99_and_max(batch_ms);
    summary.elapsed_s = elapsed;
    summary.jobs_per_s = if elapsed > 0.0 {
        summary.jobs as f64 / elapsed
    } else {
        0.0
    };
    Ok(summary)
}

/// One window in one transaction; returns the archive months it created. The pair after
/// `profile` says which jobs go: finished how, and before when.
fn purge_one_window(
    db: &mut Db,
    profile: &Profile,
    (finished, cutoff): (&Finished, DateTime<Utc>),
    window: (i64, i64),
    archive_columns: Option<&[String]>,
    ensured: &HashSet<String>,
    rows: purge::Rows,
) -> anyhow::Result<(purge::BatchResult, Vec<String>)> {
    let mut tx = db.transaction()?;
    purge::limit_batch(&mut tx, STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS)?;
    let mut created = Vec::new();
    let result = match archive_columns {
        None => purge::purge_window(&mut tx, profile, finished, cutoff, window, None, rows)?,
        Some(columns) => {
            let started = Instant::now();
            let months = purge::window_months(&mut tx, profile, finished, cutoff, window)?;
            for month in &months {
                if !ensured.contains(month) {
                    purge::ensure_archive_table(&mut tx, profile, month, columns)?;
                    created.push(month.clone());
                }
            }
            // The moving statement gets what is left of the window's budget, so the two
            // statements together stay under it (each alone is bounded by the timeout).
            let spent = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let left = STATEMENT_TIMEOUT_MS
                .saturating_sub(spent)
                .max(MIN_STATEMENT_MS);
            purge::limit_batch(&mut tx, left, LOCK_TIMEOUT_MS)?;
            purge::purge_window(
                &mut tx,
                profile,
                finished,
                cutoff,
                window,
                Some((&months, columns)),
                rows,
            )?
        }
    };
    tx.commit()?;
    Ok((result, created))
}

fn is_timeout(e: &anyhow::Error) -> bool {
    matches!(
        sql_state(e),
        Some(s) if *s == SqlState::QUERY_CANCELED || *s == SqlState::LOCK_NOT_AVAILABLE
    )
}

/// Which jobs count as finished on this profile, refusing states it does not have.
fn finished_for(profile: &Profile, states: Option<&[String]>) -> anyhow::Result<Finished> {
    if profile.is_native() {
        let states = states.map_or_else(
            || NATIVE_STATES.iter().map(|s| s.to_string()).collect(),
            <[String]>::to_vec,
        );
        return Ok(Finished::States(states));
    }
    if let Some(other) = states
        .unwrap_or_default()
        .iter()
        .find(|s| s.as_str() != "failed")
    {
        return Err(failure(
            Exit::Usage,
            format!(
                "--state {other} does not apply to graphile-worker: Graphile Worker deletes a job when it succeeds and has no cancelled state; \
                 only permanently failed jobs (attempts >= max_attempts) stay behind, so use --state failed or leave --state out"
            ),
        ));
    }
    Ok(Finished::GraphilePermanentlyFailed)
}

/// Rows of other tables that point at jobs must go with them or the purge refuses.
fn check_dependents(
    ctx: &Ctx,
    db: &mut Db,
    profile: &Profile,
    archive: bool,
) -> anyhow::Result<()> {
    let dependents = purge::dependents(db, profile)?;
    if dependents.is_empty() {
        return Ok(());
    }
    let names = dependents
        .iter()
        .map(|d| {
            format!(
                "{} on {} (ON DELETE {})",
                d.constraint, d.table, d.on_delete
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if archive {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to archive: foreign key {names} references the jobs table, and its rows would not be archived with their jobs; \
                 purge without --archive, or archive that table yourself first"
            ),
        ));
    }
    if let Some(blocking) = dependents
        .iter()
        .find(|d| d.on_delete == "restrict" || d.on_delete == "no action")
    {
        return Err(failure(
            Exit::Refused,
            format!(
                "refusing to purge: foreign key {} on {} references the jobs table with ON DELETE {}, so its rows would block the purge half-way; \
                 delete those rows first or make the key ON DELETE CASCADE",
                blocking.constraint, blocking.table, blocking.on_delete
            ),
        ));
    }
    ctx.out.warn(format!(
        "rows referencing purged jobs are changed with them: {names}"
    ));
    Ok(())
}

/// What purge-archive dropped (or would drop).
#[derive(Debug, Serialize)]
pub struct ArchiveDrop {
    pub schema: String,
    pub to: String,
    pub dry_run: bool,
    pub tables: Vec<ArchiveTable>,
}

/// Drops the archive months up to and including `to` (`YYYY-MM`), after `confirm` agrees.
pub fn purge_archive(
    ctx: &Ctx,
    to: &str,
    dry_run: bool,
    confirm: &dyn Fn(&[ArchiveTable]) -> anyhow::Result<()>,
) -> anyhow::Result<ArchiveDrop> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    db.try_operation_lock(LOCK, LOCK_WHAT)?;
    let tables: Vec<ArchiveTable> = purge::archive_tables(&mut db, &profile.schema)?
        .into_iter()
        .filter(|t| t.month.as_str() <= to)
        .collect();
    let report = ArchiveDrop {
        schema: profile.schema.clone(),
        to: to.to_string(),
        dry_run,
        tables,
    };
    if dry_run || report.tables.is_empty() {
        return Ok(report);
    }
    confirm(&report.tables)?;
    let names: Vec<String> = report.tables.iter().map(|t| t.table.clone()).collect();
    let mut tx = db.transaction()?;
    purge::drop_archive_tables(&mut tx, &profile.schema, &names)?;
    tx.commit()?;
    Ok(report)
}
