//! Is the job database ready to upgrade? Reads the server, schema, jobs, locks, workers and
//! background migrations, and names every reason it is not: stale locks, unfinished
//! background migrations, pending schema versions, live workers that cannot run against the
//! applied schema. Only reads.

pub mod report;

use serde::Serialize;

use crate::context::Ctx;
use crate::db::profile::LiveSet;
use crate::db::status::{self, Archiving, JobCounts, LockHolder, Replication, UnfinishedMigration};
use crate::db::workers::{self, Worker};
use crate::db::{counter, schema, Db, Profile};
use crate::output::{human_list, plural};

/// What `status` shows; `status --json` prints it as it is.
#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub target: String,
    pub tls: bool,
    pub server_version: Option<String>,
    pub replication: Option<Replication>,
    /// WAL archiving, when archive_mode is on.
    pub archiving: Option<Archiving>,
    pub database: Option<String>,
    pub database_size_bytes: Option<i64>,
    pub profile: Option<String>,
    pub graphile_generation: Option<&'static str>,
    pub schema: Option<String>,
    pub schema_version: Option<i32>,
    pub binary_schema_version: i32,
    /// Versions this jobdbctl would apply with `migrate`.
    pub pending_schema_versions: Vec<i32>,
    /// The newest applied breaking version; live workers below it are incompatible.
    pub breaking_level: Option<i32>,
    pub workers_by_version: Vec<WorkerGroup>,
    pub job_id_sequence: Option<String>,
    pub last_used_job_id: Option<i64>,
    pub jobs: Option<JobCounts>,
    /// Dead tuples, size and last (auto)vacuum of the jobs table (see `vacuum`).
    pub jobs_table_health: Option<crate::db::vacuum::TableStats>,
    /// The lock figures are null, and `lock_holders` empty, when job locks were not counted:
    /// on a big Graphile Worker jobs table only `--check` and `--exact` count them.
    pub locked_jobs: Option<i64>,
    pub stale_locked_jobs: Option<i64>,
    pub stale_locked_queues: Option<i64>,
    pub lock_holders: Vec<LockHolder>,
    pub workers: Vec<Worker>,
    pub unfinished_background_migrations: Vec<UnfinishedMigration>,
    /// Null when nothing else stands in the way but job locks were not counted.
    pub ready_to_upgrade: Option<bool>,
    pub not_ready_because: Vec<String>,
    /// This database's newest archive in the backup directory, when there is one (the
    /// command fills it in from the backup catalog).
    pub newest_backup: Option<NewestBackup>,
}

/// The newest archive: where, when, and how long ago.
#[derive(Debug, Serialize)]
pub struct NewestBackup {
    pub archive: String,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub age_seconds: u64,
}

/// What `status` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Count every job exactly.
    pub exact: bool,
    /// The answer decides an exit status: stale locks must be counted, whatever it costs.
    pub check: bool,
}

/// Workers of one version, counted.
#[derive(Debug, Serialize)]
pub struct WorkerGroup {
    pub version: Option<String>,
    pub schema_version: Option<i32>,
    pub live: usize,
    pub stale: usize,
    /// Reports a schema older than the database's (fine unless also incompatible).
    pub out_of_date: bool,
    /// Cannot run against the applied breaking level.
    pub incompatible: bool,
}

/// Everything `status` shows, read in one pass, with the reasons the database is not ready
/// to upgrade. Job locks of a big Graphile Worker table are counted only for `check` or
/// `exact` (a scan of the whole table); otherwise readiness is left open when nothing else
/// decides it.
pub fn assess(db: &mut Db, ctx: &Ctx, request: Request) -> anyhow::Result<Report> {
    let stale_after = ctx.config.stale_after.value;
    db.disable_jit()?;
    let profile: Option<Profile> = ctx.detect_profile(db)?;
    let server = db.server_facts()?;
    let replication = status::replication(db, &server)?;
    let archiving = if server.archiving {
        Some(status::archiving(db)?)
    } else {
        None
    };
    let mut report = Report {
        server: "up".to_string(),
        target: ctx.target.describe(),
        tls: server.tls,
        server_version: Some(server.version),
        replication: Some(replication),
        archiving,
        database: Some(server.database),
        database_size_bytes: Some(server.database_size),
        profile: profile.as_ref().map(|p| p.name().to_string()),
        graphile_generation: profile.as_ref().and_then(|p| p.generation_label()),
        schema: profile.as_ref().map(|p| p.schema.clone()),
        schema_version: None,
        binary_schema_version: schema::latest_version(),
        pending_schema_versions: Vec::new(),
        breaking_level: None,
        workers_by_version: Vec::new(),
        job_id_sequence: None,
        last_used_job_id: None,
        jobs: None,
        jobs_table_health: None,
        locked_jobs: Some(0),
        stale_locked_jobs: Some(0),
        stale_locked_queues: Some(0),
        lock_holders: Vec::new(),
        workers: Vec::new(),
        unfinished_background_migrations: Vec::new(),
        ready_to_upgrade: Some(false),
        not_ready_because: Vec::new(),
        newest_backup: None,
    };
    if let Some(a) = report.archiving.as_ref().filter(|a| a.failing) {
        // A failing archive drops nothing: the server keeps every segment until it is
        // archived, so pg_wal grows until the disk is full.
        report.not_ready_because.push(format!(
            "WAL archiving is failing ({}, the last for {} {}); pg_wal holds {} and grows until it succeeds; `jobdbctl logs` shows the archive command's error",
            plural(a.failed_count, "failure", "failures"),
            a.last_failed_wal.as_deref().unwrap_or("a segment"),
            a.last_failed_age_seconds
                .map_or("just now".to_string(), |s| format!("{s:.0} s ago")),
            a.pg_wal_bytes
                .map_or("an unknown amount".to_string(), crate::output::human_bytes),
        ));
    }
    let Some(profile) = profile else {
        report
            .not_ready_because
            .push("no job schema; run `jobdbctl init`".to_string());
        return Ok(report);
    };
    report.schema_version = status::schema_version(db, &profile)?;
    let sequence = counter::sequence_name(db, &profile)?;
    report.last_used_job_id = Some(counter::last_used(db, &sequence)?);
    report.job_id_sequence = Some(sequence);
    // Native lock holders come from the small locked-jobs index, and they count the running
    // jobs too; a Graphile Worker table's locks are read only when that is cheap or asked for.
    let mut holders = if profile.is_native() {
        Some(status::lock_holders(db, &profile, stale_after)?)
    } else {
        None
    };
    let locked = holders.as_ref().map(|h| h.iter().map(|h| h.jobs).sum());
    let jobs = status::job_counts(db, &profile, request.exact, locked)?;
    let count_locks = request.check || request.exact || !jobs.locks_need_a_scan();
    if holders.is_none() && count_locks {
        holders = Some(status::lock_holders(db, &profile, stale_after)?);
    }
    report.lock_holders = holders.unwrap_or_default();
    report.jobs = Some(jobs);
    report.jobs_table_health = crate::db::vacuum::table_stats(
        db,
        &profile.schema,
        &[crate::db::purge::jobs_table_name(&profile).to_string()],
    )?
    .pop();
    report.workers = workers::list(db, &profile, stale_after)?;
    report.unfinished_background_migrations = status::unfinished_migrations(db, &profile)?;
    name_processes(&mut report.lock_holders, &report.workers, &profile);
    if profile.is_native() {
        let current = report.schema_version.unwrap_or(0);
        report.pending_schema_versions = schema::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| *v > current)
            .collect();
        report.breaking_level = status::breaking_level(db, &profile)?;
    }
    report.workers_by_version = group_workers(
        &report.workers,
        report.schema_version,
        report.breaking_level,
    );
    let (stale_jobs, stale_queues) = (
        report.lock_holders.iter().map(|h| h.stale_jobs).sum(),
        report.lock_holders.iter().map(|h| h.stale_queues).sum(),
    );
    if count_locks {
        report.locked_jobs = Some(report.lock_holders.iter().map(|h| h.jobs).sum());
        report.stale_locked_jobs = Some(stale_jobs);
        report.stale_locked_queues = Some(stale_queues);
    } else {
        report.locked_jobs = None;
        report.stale_locked_jobs = None;
        report.stale_locked_queues = None;
    }

    if stale_jobs + stale_queues > 0 {
        let (why, command) = if profile.live_set == LiveSet::Unknown {
            (
                "have been locked for more than 4 hours (Graphile Worker's lock expiry)",
                "unlock-stale-jobs --older-than 4h",
            )
        } else {
            (
                "are locked by workers that are not live",
                "unlock-stale-jobs",
            )
        };
        report.not_ready_because.push(format!(
            "{} and {} {why}; run `jobdbctl {command}`",
            plural(stale_jobs, "job", "jobs"),
            plural(stale_queues, "queue", "queues")
        ));
    }
    for m in &report.unfinished_background_migrations {
        report.not_ready_because.push(format!(
            "background migration {} ({} on {}.{}) is {} at {:.1}%; run `jobdbctl finalize-migration --id {}`",
            m.id, m.job_class_name, m.table_name, m.column_name, m.status_name, m.progress_pct, m.id
        ));
    }
    if let Some(v) = report
        .schema_version
        .filter(|v| profile.is_native() && *v > schema::latest_version())
    {
        report.not_ready_because.push(format!(
            "schema version {v} is newer than this jobdbctl knows ({})",
            schema::latest_version()
        ));
    }
    if !report.pending_schema_versions.is_empty() {
        let versions = &report.pending_schema_versions;
        let (noun, verb) = if versions.len() == 1 {
            ("version", "is")
        } else {
            ("versions", "are")
        };
        report.not_ready_because.push(format!(
            "schema {noun} {} {verb} pending; run `jobdbctl migrate`",
            human_list(versions)
        ));
    }
    for g in report
        .workers_by_version
        .iter()
        .filter(|g| g.incompatible && g.live > 0)
    {
        report.not_ready_because.push(format!(
            "{} of version {} (schema {}) cannot run against schema version {}; stop or upgrade them",
            plural(g.live as i64, "live worker", "live workers"),
            g.version.as_deref().unwrap_or("unknown"),
            g.schema_version.map_or("unknown".to_string(), |v| v.to_string()),
            report.breaking_level.unwrap_or(0)
        ));
    }
    report.ready_to_upgrade = if !report.not_ready_because.is_empty() {
        Some(false)
    } else if count_locks {
        Some(true)
    } else {
        None
    };
    Ok(report)
}

/// Names the process behind each lock holder where that is known: a registered native
/// worker's host and pid, or a Graphile Worker v0.17+ pool id (the pool is the process; its
/// workers lock in its name). Graphile's older `worker-<random>` ids say nothing about their
/// process, so they stay apart.
fn name_processes(holders: &mut [LockHolder], workers: &[Worker], profile: &Profile) {
    for holder in holders.iter_mut() {
        holder.process = if profile.is_native() {
            workers
                .iter()
                .find(|w| w.worker_id == holder.locked_by)
                .and_then(|w| Some(format!("{}:{}", w.hostname.as_deref()?, w.pid?)))
        } else if profile.generation_label() == Some("v0.17+") {
            Some(holder.locked_by.clone())
        } else {
            None
        };
    }
}

fn group_workers(
    workers: &[Worker],
    current: Option<i32>,
    breaking: Option<i32>,
) -> Vec<WorkerGroup> {
    let mut groups: Vec<WorkerGroup> = Vec::new();
    for w in workers {
        let existing = groups
            .iter_mut()
            .find(|g| g.version == w.version && g.schema_version == w.schema_version);
        let group = match existing {
            Some(g) => g,
            None => {
                let below = |level: Option<i32>| match (w.schema_version, level) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(v), Some(l)) => v < l,
                };
                groups.push(WorkerGroup {
                    version: w.version.clone(),
                    schema_version: w.schema_version,
                    live: 0,
                    stale: 0,
                    out_of_date: below(current),
                    incompatible: below(breaking),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        if w.live {
            group.live += 1;
        } else {
            group.stale += 1;
        }
    }
    groups
}
