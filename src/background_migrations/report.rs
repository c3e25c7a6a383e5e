//! `background-migrations list` and `show` for people; `--json` prints the rows themselves.

use crate::db::batched_migrations::{BackgroundMigration, BatchJob};
use crate::output::{human_range, human_time, kv_table, table};

/// `background-migrations list`: one row per migration.
pub fn list(migrations: &[BackgroundMigration]) -> String {
    if migrations.is_empty() {
        return "no background migrations".to_string();
    }
    let mut t = table(&[
        "id",
        "job class",
        "table.column",
        "arguments",
        "status",
        "progress",
        "batch jobs",
        "failed jobs",
    ]);
    for m in migrations {
        t.add_row(vec![
            m.id.to_string(),
            m.job_class_name.clone(),
            format!("{}.{}", m.table_name, m.column_name),
            m.job_arguments.to_string(),
            m.status_name.to_string(),
            format!("{:.1}%", m.progress_pct),
            format!("{}/{} succeeded", m.jobs_succeeded, m.jobs_total),
            m.jobs_failed.to_string(),
        ]);
    }
    t.to_string()
}

/// `background-migrations show ID`: the migration, then its recent batch jobs.
pub fn show(m: &BackgroundMigration, jobs: &[BatchJob]) -> String {
    let mut t = kv_table();
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(human_time).unwrap_or_default();
    let rows: Vec<(&str, String)> = vec![
        ("id", m.id.to_string()),
        ("job class", m.job_class_name.clone()),
        (
            "table.column",
            format!("{}.{}", m.table_name, m.column_name),
        ),
        ("arguments", m.job_arguments.to_string()),
        ("status", m.status_name.to_string()),
        ("range", human_range(m.min_value, m.max_value)),
        ("progress", format!("{:.1}%", m.progress_pct)),
        (
            "batch jobs",
            format!(
                "{} total, {} succeeded, {} failed",
                m.jobs_total, m.jobs_succeeded, m.jobs_failed
            ),
        ),
        (
            "batch size",
            format!(
                "{} (sub-batch {}, max {}), pause {} ms",
                m.batch_size,
                m.sub_batch_size,
                m.max_batch_size.map_or("-".to_string(), |n| n.to_string()),
                m.pause_ms
            ),
        ),
        ("created", human_time(m.created_at)),
        ("started", time(m.started_at)),
        ("finished", time(m.finished_at)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    let mut text = t.to_string();
    if jobs.is_empty() {
        text.push_str("\nno batch jobs yet");
        return text;
    }
    let mut j = table(&[
        "job", "range", "size", "status", "attempts", "started", "duration", "rows", "error",
    ]);
    for job in jobs {
        let metric = |key: &str| job.metrics.get(key).cloned();
        j.add_row(vec![
            job.id.to_string(),
            human_range(job.min_value, job.max_value),
            job.batch_size.to_string(),
            job.status_name.to_string(),
            job.attempts.to_string(),
            time(job.started_at),
            metric("duration_ms")
                .and_then(|d| d.as_f64())
                .map(|d| format!("{d:.0} ms"))
                .unwrap_or_default(),
            metric("rows").map(|r| r.to_string()).unwrap_or_default(),
            metric("error")
                .and_then(|e| e.as_str().map(str::to_string))
                .unwrap_or_default(),
        ]);
    }
    text.push('\n');
    text.push_str(&j.to_string());
    text
}
