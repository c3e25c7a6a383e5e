//! `status` for people: the summary table, the jobs-table health warning, lock holders
//! grouped by process, workers, unfinished background migrations and the reasons not to be
//! ready. `--json` prints the `Report` itself.

use crate::context::Ctx;
use crate::db::status::{JobCounts, GRAPHILE_BUCKETS, NATIVE_STATES};
use crate::output::{
    human_bytes, human_list, human_time, kv_table, plural, printable, table, MAX_SHOWN_ID,
};
use crate::status::Report;

pub fn print(ctx: &Ctx, r: &Report) -> anyhow::Result<()> {
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
        t.add_row(vec!["jobs".to_string(), job_counts_text(r, jobs)]);
        if let Some(h) = &r.jobs_table_health {
            t.add_row(vec!["jobs table".to_string(), table_health(h)]);
        }
        let locked_queues: i64 = r.lock_holders.iter().map(|h| h.queues).sum();
        let locks = match (r.locked_jobs, r.stale_locked_jobs, r.stale_locked_queues) {
            (Some(jobs), Some(stale_jobs), Some(stale_queues)) => format!(
                "{} and {} locked; stale: {}, {}",
                plural(jobs, "job", "jobs"),
                plural(locked_queues, "queue", "queues"),
                plural(stale_jobs, "job", "jobs"),
                plural(stale_queues, "queue", "queues")
            ),
            _ => "not counted: no index holds Graphile Worker's locked jobs, so counting them \
                  reads the whole jobs table; --check or --exact counts them"
                .to_string(),
        };
        t.add_row(vec!["locks".to_string(), locks]);
        let live = r.workers.iter().filter(|w| w.live).count();
        let mut workers = format!("{live} live, {} stale", r.workers.len() - live);
        if r.graphile_generation.is_some() && r.workers.is_empty() {
            workers = "unknown: no Worker Pro tables, so nothing says which workers are alive"
                .to_string();
        }
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
                format!(
                    "{}; run `jobdbctl migrate`",
                    human_list(&r.pending_schema_versions)
                ),
            ]);
        }
    }
    if let Some(a) = &r.archiving {
        let last = match (&a.last_archived_wal, a.last_archived_age_seconds) {
            (Some(wal), Some(age)) => format!("last {wal} {age:.0} s ago"),
            _ => "nothing archived yet".to_string(),
        };
        let failures = match (a.failing, &a.last_failed_wal) {
            (true, Some(wal)) => format!(", FAILING on {wal} ({} failures)", a.failed_count),
            _ if a.failed_count > 0 => format!(", {} failures before", a.failed_count),
            _ => String::new(),
        };
        let pg_wal = a
            .pg_wal_bytes
            .map_or(String::new(), |b| format!("; pg_wal {}", human_bytes(b)));
        t.add_row(vec![
            "WAL archiving".to_string(),
            format!("{last}{failures}{pg_wal}"),
        ]);
    }
    if let Some(b) = &r.newest_backup {
        t.add_row(vec![
            "newest backup".to_string(),
            format!(
                "{} ago, {} ({})",
                humantime::format_duration(std::time::Duration::from_secs(b.age_seconds)),
                printable(&b.archive, 400),
                human_time(b.taken_at)
            ),
        ]);
    }
    t.add_row(vec![
        "ready to upgrade".to_string(),
        match r.ready_to_upgrade {
            Some(true) => "yes".to_string(),
            Some(false) => "no".to_string(),
            None => "unknown until job locks are counted (`jobdbctl status --check`)".to_string(),
        },
    ]);
    ctx.out.line(t.to_string())?;
    if let Some(h) = r.jobs_table_health.as_ref().filter(|h| h.bloated()) {
        ctx.out.warn(format!(
            "the jobs table is bloated: {:.0}% of its tuples are dead ({}); run `jobdbctl vacuum --analyze`, and check that autovacuum keeps up",
            h.dead_ratio * 100.0,
            h.dead_tuples
        ));
    }
    if let Some(source) = r.jobs.as_ref().and_then(|j| j.estimated_from) {
        ctx.out
            .line(format!("~ estimated from {source}; --exact counts them"))?;
    }
    if !r.lock_holders.is_empty() {
        ctx.out.line(lock_holders_table(r))?;
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
                worker.last_heartbeat_at.map(human_time).unwrap_or_default(),
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

/// The jobs row: native states or Graphile Worker's buckets, estimates marked `~`.
fn job_counts_text(r: &Report, jobs: &JobCounts) -> String {
    let count = |key: &str| jobs.by_state.get(key).copied().unwrap_or(0);
    let approx = |key: &str| {
        if jobs.estimated.iter().any(|s| s == key) {
            "~"
        } else {
            ""
        }
    };
    if r.graphile_generation.is_some() {
        let parts: Vec<String> = GRAPHILE_BUCKETS
            .iter()
            .map(|bucket| {
                let label = match *bucket {
                    "due_now" => "due now",
                    "scheduled" => "scheduled later",
                    "retrying" => "retrying (attempts > 0)",
                    "failed" => "failed (out of attempts)",
                    other => other,
                };
                format!("{}{} {label}", approx(bucket), count(bucket))
            })
            .collect();
        let total_approx = if jobs.estimated.is_empty() { "" } else { "~" };
        return format!("{total_approx}{} in all: {}", jobs.total, parts.join(", "));
    }
    // In the order a job goes through them, then any state the schema does not define.
    let mut states: Vec<&String> = jobs.by_state.keys().collect();
    states.sort_by_key(|s| {
        NATIVE_STATES
            .iter()
            .position(|n| n == s)
            .unwrap_or(usize::MAX)
    });
    states
        .into_iter()
        .map(|s| format!("{s} {}{}", approx(s), count(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most this many lock holders are listed; `--json` has them all.
const MAX_HOLDER_ROWS: usize = 20;

/// Who holds locks: one row per process where the ids say which process they belong to
/// (see `LockHolder::process`), else per id; stale holders first, then by jobs held.
fn lock_holders_table(r: &Report) -> String {
    struct Row {
        process: Option<String>,
        ids: Vec<String>,
        jobs: i64,
        queues: i64,
        stale_jobs: i64,
        stale_queues: i64,
        oldest: Option<chrono::DateTime<chrono::Utc>>,
        live: bool,
        registered: bool,
    }
    let mut rows: Vec<Row> = Vec::new();
    for h in &r.lock_holders {
        let existing = h
            .process
            .as_ref()
            .and_then(|p| rows.iter_mut().find(|row| row.process.as_ref() == Some(p)));
        let row = match existing {
            Some(row) => row,
            None => {
                rows.push(Row {
                    process: h.process.clone(),
                    ids: Vec::new(),
                    jobs: 0,
                    queues: 0,
                    stale_jobs: 0,
                    stale_queues: 0,
                    oldest: None,
                    live: true,
                    registered: true,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.ids.push(h.locked_by.clone());
        row.jobs += h.jobs;
        row.queues += h.queues;
        row.stale_jobs += h.stale_jobs;
        row.stale_queues += h.stale_queues;
        row.oldest = match (row.oldest, h.oldest_lock) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        row.live &= h.live;
        row.registered &= h.registered;
    }
    rows.sort_by_key(|row| {
        (
            std::cmp::Reverse(row.stale_jobs + row.stale_queues),
            std::cmp::Reverse(row.jobs + row.queues),
        )
    });
    let without_live_set = r.graphile_generation.is_some() && r.workers.is_empty();
    let mut t = table(&["lock holder", "jobs", "queues", "oldest lock", "state"]);
    for row in rows.iter().take(MAX_HOLDER_ROWS) {
        let ids: Vec<String> = row.ids.iter().map(|i| printable(i, MAX_SHOWN_ID)).collect();
        let holder = match &row.process {
            Some(p) if row.ids.len() > 1 || row.ids[0] != *p => format!(
                "{} ({})",
                printable(p, MAX_SHOWN_ID),
                plural(row.ids.len() as i64, "worker", "workers") + ": " + &ids.join(", ")
            ),
            _ => ids.join(", "),
        };
        let state = if without_live_set {
            match row.stale_jobs + row.stale_queues {
                0 => "locked less than 4h ago".to_string(),
                n => format!("{} older than 4h (expired)", plural(n, "lock", "locks")),
            }
        } else if row.live {
            "live".to_string()
        } else if row.registered {
            "stale".to_string()
        } else {
            "stale (not registered)".to_string()
        };
        t.add_row(vec![
            holder,
            row.jobs.to_string(),
            row.queues.to_string(),
            row.oldest.map(human_time).unwrap_or_default(),
            state,
        ]);
    }
    let mut text = t.to_string();
    if rows.len() > MAX_HOLDER_ROWS {
        text.push_str(&format!(
            "\n… and {} more (`jobdbctl --json status` lists every one)",
            plural(
                (rows.len() - MAX_HOLDER_ROWS) as i64,
                "lock holder",
                "lock holders"
            )
        ));
    }
    text
}

/// Dead tuples, size and the last manual and automatic vacuum of the jobs table.
fn table_health(h: &crate::db::vacuum::TableStats) -> String {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "never".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    };
    format!(
        "{} dead tuples ({:.1}%), {}; last vacuum {}, last autovacuum {}",
        h.dead_tuples,
        h.dead_ratio * 100.0,
        crate::output::human_bytes(h.bytes),
        when(h.last_vacuum),
        when(h.last_autovacuum)
    )
}
