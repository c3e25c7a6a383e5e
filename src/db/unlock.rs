//! Releasing job and queue locks held by workers that are gone (docs/unlock-stale-jobs.md):
//! one set-based statement per table, each reporting, per lock holder, what it released.
//!
//! Every statement joins the table to the set of lock holders it may release and returns the
//! holder it matched. Under READ COMMITTED a row changed after the statement's snapshot is
//! re-checked against the join condition on its newest version, so a job that was completed
//! or re-locked meanwhile is left alone and each released lock is reported against the holder
//! that really held it. The holder set is read through a (no-op) `DISTINCT ON (id)`, which
//! tells the planner its ids are unique: it then hashes that small set and scans the table in
//! physical order, as the runbook's `NOT IN` does. Without it the planner hashes the table and
//! updates the rows in random order, about twice as slow on a million locked jobs.
//!
//! Native liveness is re-checked at execution time: the registry rows of the workers about to
//! lose their locks are locked (`FOR UPDATE`) inside the statement. A heartbeat in flight makes
//! the statement wait for it and then read the row's newest version, so that worker counts as
//! live and keeps its jobs; a heartbeat that starts later waits until this transaction ends,
//! so a worker found stale cannot come back to life half-way through.
//!
//! On Graphile Worker the statements have the effect of the Worker Pro runbook's SQL for the
//! detected generation (`locked_by not in (select <id> from <Pro table>)`), and nothing more.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::profile::LiveSet;
use crate::db::workers::interval_text;
use crate::db::{qualified, quote_ident, Profile, Sql};

/// Which locks to release.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only locks held by these ids (`--worker`); `None`: every holder.
    pub workers: Option<Vec<String>>,
    /// Release the named workers' locks even while they are live (`--force`).
    pub include_live: bool,
    /// Locks taken longer ago than this are stale whatever the registry says.
    pub older_than: Option<Duration>,
    /// Delete the registry rows of stale workers (native registry only).
    pub prune_workers: bool,
}

/// What happened to one lock holder.
#[derive(Debug, Clone, Serialize)]
pub struct HolderReport {
    pub worker_id: String,
    /// In the registry (native) or in Worker Pro's live set (graphile-worker).
    pub registered: bool,
    pub live: bool,
    /// Native registry only.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub jobs_released: i64,
    pub queues_released: i64,
    pub pruned: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub jobs_released: i64,
    pub queues_released: i64,
    pub workers_pruned: i64,
    pub workers: Vec<HolderReport>,
}

/// A worker named with `--worker`, as the database knows it.
#[derive(Debug)]
pub struct NamedWorker {
    pub id: String,
    pub registered: bool,
    pub live: bool,
    pub holds_locks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Release,
    /// The same selection without changing or locking anything (`--dry-run`).
    Preview,
}

/// Releases the locks `scope` selects. The caller owns the transaction: both tables (and the
/// pruning) must commit together.
pub fn release(
    sql: &mut impl Sql,
    profile: &Profile,
    scope: &Scope,
    stale_after: Duration,
) -> anyhow::Result<Report> {
    run(sql, profile, scope, stale_after, Mode::Release)
}

/// What [`release`] would release now, read with the same selection.
pub fn preview(
    sql: &mut impl Sql,
    profile: &Profile,
    scope: &Scope,
    stale_after: Duration,
) -> anyhow::Result<Report> {
    run(sql, profile, scope, stale_after, Mode::Preview)
}

/// Releases every lock held by `ids`, live or not: `unlock-stale-jobs --worker ID... --force`,
/// for callers that have already decided these workers must let go (migrate's holdouts).
pub fn release_workers(
    sql: &mut impl Sql,
    profile: &Profile,
    ids: &[String],
    stale_after: Duration,
) -> anyhow::Result<Report> {
    let scope = Scope {
        workers: Some(ids.to_vec()),
        include_live: true,
        ..Scope::default()
    };
    release(sql, profile, &scope, stale_after)
}

fn run(
    sql: &mut impl Sql,
    profile: &Profile,
    scope: &Scope,
    stale_after: Duration,
    mode: Mode,
) -> anyhow::Result<Report> {
    let mut holders: BTreeMap<String, HolderReport> = BTreeMap::new();
    let tables = [
        (Table::Jobs, profile.jobs_table()),
        (Table::Queues, profile.queues_table()),
    ];
    for (table, name) in tables {
        let rows = if profile.is_native() {
            native_release(sql, profile, &name, table, scope, stale_after, mode)?
        } else {
            graphile_release(sql, profile, &name, table, scope, mode)?
        };
        for row in rows {
            let entry = holders
                .entry(row.worker_id.clone())
                .or_insert_with(|| HolderReport {
                    worker_id: row.worker_id.clone(),
                    registered: row.registered,
                    live: row.live,
                    last_heartbeat_at: row.last_heartbeat_at,
                    jobs_released: 0,
                    queues_released: 0,
                    pruned: false,
                });
            match table {
                Table::Jobs => entry.jobs_released += row.released,
                Table::Queues => entry.queues_released += row.released,
            }
        }
    }
    if scope.prune_workers && profile.live_set == LiveSet::Heartbeats {
        for (id, last_heartbeat_at) in prune(sql, profile, scope, stale_after, mode)? {
            holders
                .entry(id.clone())
                .or_insert_with(|| HolderReport {
                    worker_id: id,
                    registered: true,
                    live: false,
                    last_heartbeat_at: Some(last_heartbeat_at),
                    jobs_released: 0,
                    queues_released: 0,
                    pruned: false,
                })
                .pruned = true;
        }
    }
    let workers: Vec<HolderReport> = holders.into_values().collect();
    Ok(Report {
        jobs_released: workers.iter().map(|w| w.jobs_released).sum(),
        queues_released: workers.iter().map(|w| w.queues_released).sum(),
        workers_pruned: workers.iter().filter(|w| w.pruned).count() as i64,
        workers,
    })
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Jobs,
    Queues,
}

struct Released {
    worker_id: String,
    registered: bool,
    live: bool,
    last_heartbeat_at: Option<DateTime<Utc>>,
    released: i64,
}

/// The native statement for one table. Parameters: $1 stale_after, $2 older_than (or NULL),
/// $3 the named workers (or NULL), $4 include live workers.
fn native_release(
    sql: &mut impl Sql,
    profile: &Profile,
    table: &str,
    which: Table,
    scope: &Scope,
    stale_after: Duration,
    mode: Mode,
) -> anyhow::Result<Vec<Released>> {
    let workers = qualified(&profile.schema, "workers");
    let lock = match mode {
        Mode::Release => "FOR UPDATE OF w",
        Mode::Preview => "",
    };
    let released = match mode {
        Mode::Release => {
            // Attempts are kept; like Graphile's lock reset, run_at moves up to now (a later
            // one is kept), so a released job queues behind work that was already due.
            let reschedule = match which {
                Table::Jobs => {
                    ", state = 'queued', run_at = greatest(t.run_at, now()), updated_at = now()"
                }
                Table::Queues => "",
            };
            format!(
                "UPDATE {table} AS t SET locked_at = NULL, locked_by = NULL{reschedule}
                   FROM (SELECT DISTINCT ON (id) * FROM scope) s
                  WHERE t.locked_by = s.id AND (s.stale OR t.locked_at < now() - $2::text::interval)
                 RETURNING s.id"
            )
        }
        Mode::Preview => format!(
            "SELECT s.id FROM {table} AS t JOIN scope s ON t.locked_by = s.id
              WHERE s.stale OR t.locked_at < now() - $2::text::interval"
        ),
    };
    // The holders come from a skip scan of the small locked-by index: one probe per holder,
    // not one row per locked job.
    let statement = format!(
        "WITH RECURSIVE holders(id) AS (
             SELECT min(locked_by) FROM {table} WHERE locked_by IS NOT NULL
           UNION ALL
             SELECT (SELECT min(t.locked_by) FROM {table} t WHERE t.locked_by > h.id)
               FROM holders h WHERE h.id IS NOT NULL
         ), candidates AS (
             SELECT id FROM holders
              WHERE id IS NOT NULL AND ($3::text[] IS NULL OR id = ANY($3::text[]))
         ), stale_workers AS MATERIALIZED (
             SELECT w.worker_id, w.last_heartbeat_at FROM {workers} w
              WHERE w.worker_id IN (SELECT id FROM candidates)
                AND ($4::bool OR w.last_heartbeat_at <= now() - $1::text::interval)
             {lock}
         ), scope AS MATERIALIZED (
             SELECT c.id,
                    w.worker_id IS NOT NULL AS registered,
                    coalesce(s.last_heartbeat_at, w.last_heartbeat_at) AS last_heartbeat_at,
                    coalesce(coalesce(s.last_heartbeat_at, w.last_heartbeat_at)
                             > now() - $1::text::interval, false) AS live,
                    s.worker_id IS NOT NULL OR w.worker_id IS NULL AS stale
               FROM candidates c
               LEFT JOIN {workers} w ON w.worker_id = c.id
               LEFT JOIN stale_workers s ON s.worker_id = c.id
         ), released AS ({released})
         SELECT s.id, s.registered, s.live, s.last_heartbeat_at, r.n
           FROM (SELECT id, count(*) AS n FROM released GROUP BY id) r JOIN scope s ON s.id = r.id
          ORDER BY s.id"
    );
    let stale = interval_text(stale_after);
    let older = scope.older_than.map(interval_text);
    let name = match (which, mode) {
        (Table::Jobs, Mode::Release) => "release_stale_job_locks",
        (Table::Queues, Mode::Release) => "release_stale_queue_locks",
        (Table::Jobs, Mode::Preview) => "preview_stale_job_locks",
        (Table::Queues, Mode::Preview) => "preview_stale_queue_locks",
    };
    let rows = sql.query(
        name,
        &statement,
        &[&stale, &older, &scope.workers, &scope.include_live],
    )?;
    Ok(rows
        .iter()
        .map(|r| Released {
            worker_id: r.get(0),
            registered: r.get(1),
            live: r.get(2),
            last_heartbeat_at: r.get(3),
            released: r.get(4),
        })
        .collect())
}

/// The Graphile Worker statement for one table. Parameters: $1 older_than (or NULL), $2 the
/// named workers (or NULL), $3 include live workers.
fn graphile_release(
    sql: &mut impl Sql,
    profile: &Profile,
    table: &str,
    which: Table,
    scope: &Scope,
    mode: Mode,
) -> anyhow::Result<Vec<Released>> {
    let (in_live_set, stale) = match profile.pro_table() {
        // The runbook's own predicate, NOT IN and its NULL semantics included.
        Some((pro, column)) => {
            let ids = format!("SELECT {} FROM {pro}", quote_ident(column));
            (
                format!("h.id IN ({ids})"),
                format!("$3::bool OR h.id NOT IN ({ids})"),
            )
        }
        // No live set: only named workers are stale (like Graphile's force_unlock_workers).
        None => (
            "false".to_string(),
            "$3::bool OR $2::text[] IS NOT NULL".to_string(),
        ),
    };
    let released = match mode {
        Mode::Release => {
            // Locks released for their age get Graphile's own lock-reset treatment.
            let reschedule = match (which, scope.older_than) {
                (Table::Jobs, Some(_)) => {
                    ", run_at = CASE WHEN t.locked_at < now() - $1::text::interval
                                     THEN greatest(t.run_at, now()) ELSE t.run_at END"
                }
                _ => "",
            };
            format!(
                "UPDATE {table} AS t SET locked_at = NULL, locked_by = NULL{reschedule}
                   FROM (SELECT DISTINCT ON (id) * FROM scope) s
                  WHERE t.locked_by = s.id AND (s.stale OR t.locked_at < now() - $1::text::interval)
                 RETURNING s.id"
            )
        }
        Mode::Preview => format!(
            "SELECT s.id FROM {table} AS t JOIN scope s ON t.locked_by = s.id
              WHERE s.stale OR t.locked_at < now() - $1::text::interval"
        ),
    };
    let statement = format!(
        "WITH holders AS (
             SELECT DISTINCT locked_by AS id FROM {table} WHERE locked_by IS NOT NULL
         ), scope AS MATERIALIZED (
             SELECT h.id, {in_live_set} AS registered, {stale} AS stale
               FROM holders h WHERE $2::text[] IS NULL OR h.id = ANY($2::text[])
         ), released AS ({released})
         SELECT s.id, s.registered, r.n
           FROM (SELECT id, count(*) AS n FROM released GROUP BY id) r JOIN scope s ON s.id = r.id
          ORDER BY s.id"
    );
    let older = scope.older_than.map(interval_text);
    let name = match (which, mode) {
        (Table::Jobs, Mode::Release) => "release_graphile_job_locks",
        (Table::Queues, Mode::Release) => "release_graphile_queue_locks",
        (Table::Jobs, Mode::Preview) => "preview_graphile_job_locks",
        (Table::Queues, Mode::Preview) => "preview_graphile_queue_locks",
    };
    let rows = sql.query(
        name,
        &statement,
        &[&older, &scope.workers, &scope.include_live],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let registered: Option<bool> = r.get(1);
            Released {
                worker_id: r.get(0),
                registered: registered.unwrap_or(false),
                live: registered.unwrap_or(false),
                last_heartbeat_at: None,
                released: r.get(2),
            }
        })
        .collect())
}

/// Deletes (or, previewing, lists) the registry rows of stale workers in scope. A heartbeat in
/// flight makes the DELETE wait and then skip the row, as it re-reads the newest version.
fn prune(
    sql: &mut impl Sql,
    profile: &Profile,
    scope: &Scope,
    stale_after: Duration,
    mode: Mode,
) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
    let workers = qualified(&profile.schema, "workers");
    let predicate = "($2::text[] IS NULL OR w.worker_id = ANY($2::text[]))
                     AND w.last_heartbeat_at <= now() - $1::text::interval";
    let (name, statement) = match mode {
        Mode::Release => (
            "prune_stale_workers",
            format!(
                "DELETE FROM {workers} w WHERE {predicate} RETURNING w.worker_id, w.last_heartbeat_at"
            ),
        ),
        Mode::Preview => (
            "preview_stale_workers",
            format!("SELECT w.worker_id, w.last_heartbeat_at FROM {workers} w WHERE {predicate}"),
        ),
    };
    let stale = interval_text(stale_after);
    let rows = sql.query(name, &statement, &[&stale, &scope.workers])?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Looks up workers named with `--worker`: registered, live, holding anything.
pub fn inspect_named(
    sql: &mut impl Sql,
    profile: &Profile,
    ids: &[String],
    stale_after: Duration,
) -> anyhow::Result<Vec<NamedWorker>> {
    let holds = format!(
        "EXISTS (SELECT 1 FROM {} WHERE locked_by = n.id) OR EXISTS (SELECT 1 FROM {} WHERE locked_by = n.id)",
        profile.jobs_table(),
        profile.queues_table()
    );
    let stale = interval_text(stale_after);
    let rows = match (&profile.live_set, profile.pro_table()) {
        (LiveSet::Heartbeats, _) => sql.query(
            "inspect_named_workers",
            &format!(
                "SELECT n.id, w.worker_id IS NOT NULL,
                        coalesce(w.last_heartbeat_at > now() - $2::text::interval, false), {holds}
                   FROM unnest($1::text[]) AS n(id)
                   LEFT JOIN {} w ON w.worker_id = n.id",
                qualified(&profile.schema, "workers")
            ),
            &[&ids, &stale],
        )?,
        (_, Some((pro, column))) => sql.query(
            "inspect_named_pro_workers",
            &format!(
                "SELECT n.id, l.in_set, l.in_set, {holds}
                   FROM unnest($1::text[]) AS n(id),
                        LATERAL (SELECT EXISTS (SELECT 1 FROM {pro} p WHERE p.{col} = n.id) AS in_set) l",
                col = quote_ident(column)
            ),
            &[&ids],
        )?,
        (_, None) => sql.query(
            "inspect_named_graphile_workers",
            &format!("SELECT n.id, false, false, {holds} FROM unnest($1::text[]) AS n(id)"),
            &[&ids],
        )?,
    };
    Ok(rows
        .iter()
        .map(|r| NamedWorker {
            id: r.get(0),
            registered: r.get(1),
            live: r.get(2),
            holds_locks: r.get(3),
        })
        .collect())
}
