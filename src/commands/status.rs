use serde::Serialize;

use crate::context::Ctx;
use crate::db::profile::LiveSet;
use crate::db::status::{self, JobCounts, LockHolder, Replication, UnfinishedMigration};
use crate::db::workers::{self, Worker};
use crate::db::{self, counter, schema, Db, Profile};
use crate::error::Exit;
use crate::output::{human_bytes, kv_table, printable, table, MAX_SHOWN_ID};

/// Is the job database up and ready to upgrade? Server, schema, jobs, locks, workers,
/// unfinished background migrations.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Exit 4 unless ready to upgrade: server up, no unfinished background migration, no
    /// stale lock.
    #[arg(long)]
    pub check: bool,
    /// Count every state exactly (a full scan of the jobs table) instead of estimating
    /// finished states from planner statistics.
    #[arg(long)]
    pub exact: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    target: String,
    tls: bool,
    server_version: Option<String>,
    replication: Option<Replication>,
    database: Option<String>,
    database_size_bytes: Option<i64>,
    profile: Option<String>,
    graphile_generation: Option<&'static str>,
    schema: Option<String>,
    schema_version: Option<i32>,
    binary_schema_version: i32,
    /// Versions this jobdbctl would apply with `migrate`.
    pending_schema_versions: Vec<i32>,
    /// The newest applied breaking version; live workers below it are incompatible.
    breaking_level: Option<i32>,
    workers_by_version: Vec<WorkerGroup>,
    job_id_sequence: Option<String>,
    last_used_job_id: Option<i64>,
    jobs: Option<JobCounts>,
    locked_jobs: i64,
    stale_locked_jobs: i64,
    stale_locked_queues: i64,
    lock_holders: Vec<LockHolder>,
    workers: Vec<Worker>,
    unfinished_background_migrations: Vec<UnfinishedMigration>,
    ready_to_upgrade: bool,
    not_ready_because: Vec<String>,
}

#[derive(Debug, Serialize)]
struct WorkerGroup {
    version: Option<String>,
    schema_version: Option<i32>,
    live: usize,
    stale: usize,
    /// Reports a schema older than the database's (fine unless also incompatible).
    out_of_date: bool,
    /// Cannot run against the applied breaking level.
    incompatible: bool,
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

pub fn run(args: StatusArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    // A stopped embedded server is reported by connect() itself, without retries.
    let mut db = match ctx.connect() {
        Ok(db) => db,
        Err(e) if crate::error::exit_code_of(&e) == Exit::Connect => {
            return report_down(ctx, args.check, &e)
        }
        Err(e) => return Err(e),
    };
    let report = gather(&mut db, ctx, args.exact)?;
    if ctx.out.json {
        ctx.out.json(&report)?;
    } else {
        print_human(ctx, &report)?;
    }
    Ok(if args.check && !report.ready_to_upgrade {
        Exit::NotReady
    } else {
        Exit::Ok
    })
}

fn report_down(ctx: &Ctx, check: bool, err: &anyhow::Error) -> anyhow::Result<Exit> {
    let why = format!("{err:#}");
    // A server that refuses our credentials is up: saying "down" would send the operator to
    // restart a healthy server.
    let server = if db::authentication_failed(err) {
        "up, but authentication failed"
    } else {
        "down"
    };
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "server": server,
            "target": ctx.target.describe(),
            "error": why,
            "ready_to_upgrade": false,
        }))?;
    } else {
        ctx.out
            .line(format!("server: {server} ({})", ctx.target.describe()))?;
    }
    eprintln!("jobdbctl: error: {why}");
    Ok(if check { Exit::NotReady } else { Exit::Connect })
}

fn gather(db: &mut Db, ctx: &Ctx, exact: bool) -> anyhow::Result<Report> {
    let stale_after = ctx.config.stale_after.value;
    db.disable_jit()?;
    let profile: Option<Profile> = ctx.detect_profile(db)?;
    let mut report = Report {
        server: "up".to_string(),
        target: ctx.target.describe(),
        tls: db.uses_tls()?,
        server_version: Some(db.server_version()?),
        replication: Some(status::replication(db)?),
        database: Some(db.database_name()?),
        database_size_bytes: Some(db.database_size()?),
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
        locked_jobs: 0,
        stale_locked_jobs: 0,
        stale_locked_queues: 0,
        lock_holders: Vec::new(),
        workers: Vec::new(),
        unfinished_background_migrations: Vec::new(),
        ready_to_upgrade: false,
        not_ready_because: Vec::new(),
    };
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
    report.jobs = Some(status::job_counts(db, &profile, exact)?);
    report.lock_holders = status::lock_holders(db, &profile, stale_after)?;
    report.workers = workers::list(db, &profile, stale_after)?;
    report.unfinished_background_migrations = status::unfinished_migrations(db, &profile)?;
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
    report.locked_jobs = report.lock_holders.iter().map(|h| h.jobs).sum();
    report.stale_locked_jobs = report.lock_holders.iter().map(|h| h.stale_jobs).sum();
    report.stale_locked_queues = report.lock_holders.iter().map(|h| h.stale_queues).sum();

    if report.stale_locked_jobs + report.stale_locked_queues > 0 {
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
            "{} jobs and {} queues {why}; run `jobdbctl {command}`",
            report.stale_locked_jobs, report.stale_locked_queues
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
        report.not_ready_because.push(format!(
            "schema versions {:?} are pending; run `jobdbctl migrate`",
            report.pending_schema_versions
        ));
    }
    for g in report
        .workers_by_version
        .iter()
        .filter(|g| g.incompatible && g.live > 0)
    {
        report.not_ready_because.push(format!(
            "{} live workers of version {} (schema {}) cannot run against schema version {}; stop or upgrade them",
            g.live,
            g.version.as_deref().unwrap_or("unknown"),
            g.schema_version.map_or("unknown".to_string(), |v| v.to_string()),
            report.breaking_level.unwrap_or(0)
        ));
    }
    report.ready_to_upgrade = report.not_ready_because.is_empty();
    Ok(report)
}

fn print_human(ctx: &Ctx, r: &Report) -> anyhow::Result<()> {
    let mut t = kv_table();
    t.add_row(vec![
        "server".to_string(),
        format!(
            "up, PostgreSQL {}",
            r.server_version.as_deref().unwrap_or("?")
        ),
    ]);
    let encryption = if r.tls { "TLS" } else { "not encrypted" };
    t.add_row(vec![
        "target".to_string(),
        format!("{} ({encryption})", r.target),
    ]);
    if let Some(rep) = &r.replication {
        let mut role = rep.role.to_string();
        if let Some(delay) = rep.replay_delay_seconds {
            role.push_str(&format!(", last replayed transaction {delay:.1}s old"));
        }
        for s in &rep.standbys {
            role.push_str(&format!(
                "\nstandby {} ({}): {}, replay lag {}",
                s.application_name,
                s.client_addr.as_deref().unwrap_or("local"),
                s.state.as_deref().unwrap_or("?"),
                match (s.replay_lag_seconds, s.replay_lag_bytes) {
                    (Some(secs), Some(bytes)) => format!("{secs:.1}s / {}", human_bytes(bytes)),
                    (None, Some(bytes)) => format!("{} (no recent activity)", human_bytes(bytes)),
                    _ => "unknown".to_string(),
                }
            ));
        }
        t.add_row(vec!["role".to_string(), role]);
    }
    if let Some(size) = r.database_size_bytes {
        t.add_row(vec![
            "database".to_string(),
            format!(
                "{} ({})",
                r.database.as_deref().unwrap_or("?"),
                human_bytes(size)
            ),
        ]);
    }
    let profile = match (&r.profile, r.graphile_generation) {
        (Some(p), Some(generation)) => format!("{p} ({generation})"),
        (Some(p), None) => p.clone(),
        (None, _) => "none (no job schema; run `jobdbctl init`)".to_string(),
    };
    t.add_row(vec!["profile".to_string(), profile]);
    if let Some(schema) = &r.schema {
        let version = r.schema_version.map_or("?".to_string(), |v| v.to_string());
        let known = if r.profile.as_deref() == Some("jobdb") {
            format!(" (this jobdbctl knows up to {})", r.binary_schema_version)
        } else {
            String::new()
        };
        t.add_row(vec![
            "schema".to_string(),
            format!("{schema}, version {version}{known}"),
        ]);
    }
    if let (Some(sequence), Some(last)) = (&r.job_id_sequence, r.last_used_job_id) {
        t.add_row(vec![
            "job IDs".to_string(),
            format!("last used {last} (sequence {sequence})"),
        ]);
    }
    if let Some(jobs) = &r.jobs {
        let states: Vec<String> = jobs
            .by_state
            .iter()
            .map(|(s, n)| {
                let approx = if jobs.estimated.contains(s) { "~" } else { "" };
                format!("{s} {approx}{n}")
            })
            .collect();
        t.add_row(vec!["jobs".to_string(), states.join(", ")]);
        t.add_row(vec![
            "locks".to_string(),
            format!(
                "{} jobs locked; stale: {} jobs, {} queues",
                r.locked_jobs, r.stale_locked_jobs, r.stale_locked_queues
            ),
        ]);
        let live = r.workers.iter().filter(|w| w.live).count();
        let mut workers = format!("{live} live, {} stale", r.workers.len() - live);
        for g in &r.workers_by_version {
            let mark = match (g.incompatible, g.out_of_date) {
                (true, _) => " INCOMPATIBLE",
                (false, true) => " out of date",
                _ => "",
            };
            workers.push_str(&format!(
                "\n{} (schema {}): {} live, {} stale{mark}",
                g.version.as_deref().unwrap_or("unknown version"),
                g.schema_version.map_or("?".to_string(), |v| v.to_string()),
                g.live,
                g.stale
            ));
        }
        t.add_row(vec!["workers".to_string(), workers]);
        if !r.pending_schema_versions.is_empty() {
            t.add_row(vec![
                "pending migrations".to_string(),
                format!("{:?}; run `jobdbctl migrate`", r.pending_schema_versions),
            ]);
        }
    }
    t.add_row(vec![
        "ready to upgrade".to_string(),
        if r.ready_to_upgrade {
            "yes".to_string()
        } else {
            "no".to_string()
        },
    ]);
    ctx.out.line(t.to_string())?;
    if r.jobs.as_ref().is_some_and(|j| !j.estimated.is_empty()) {
        ctx.out
            .line("~ estimated from planner statistics; --exact counts them")?;
    }
    if !r.workers.is_empty() {
        let mut w = table(&[
            "worker",
            "host",
            "version",
            "schema",
            "last heartbeat",
            "live",
        ]);
        for worker in &r.workers {
            w.add_row(vec![
                printable(&worker.worker_id, MAX_SHOWN_ID),
                printable(worker.hostname.as_deref().unwrap_or(""), MAX_SHOWN_ID),
                printable(worker.version.as_deref().unwrap_or(""), MAX_SHOWN_ID),
                worker
                    .schema_version
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                worker
                    .last_heartbeat_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                if worker.live { "live" } else { "stale" }.to_string(),
            ]);
        }
        ctx.out.line(w.to_string())?;
    }
    if !r.unfinished_background_migrations.is_empty() {
        let mut m = table(&["id", "job class", "table.column", "status", "progress"]);
        for mig in &r.unfinished_background_migrations {
            m.add_row(vec![
                mig.id.to_string(),
                mig.job_class_name.clone(),
                format!("{}.{}", mig.table_name, mig.column_name),
                mig.status_name.to_string(),
                format!("{:.1}%", mig.progress_pct),
            ]);
        }
        ctx.out.line(m.to_string())?;
    }
    for reason in &r.not_ready_because {
        ctx.out.line(format!("not ready: {reason}"))?;
    }
    Ok(())
}
