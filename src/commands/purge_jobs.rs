use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::json;

use crate::cli::purge_jobs::{FinishedState, PurgeJobsArgs};
use crate::config::parse_duration;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::housekeeping::purge::{self, Cutoff, Request, Summary};
use crate::output::table;

impl FinishedState {
    fn name(self) -> &'static str {
        match self {
            FinishedState::Succeeded => "succeeded",
            FinishedState::Failed => "failed",
            FinishedState::Cancelled => "cancelled",
        }
    }
}

pub fn run(args: PurgeJobsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cutoff = match (&args.older_than, &args.before) {
        (Some(text), _) => {
            Cutoff::OlderThan(parse_duration(text).map_err(|e| e.context("--older-than"))?)
        }
        (None, Some(text)) => Cutoff::Before(parse_timestamp(text)?),
        (None, None) => unreachable!("clap requires one of them"),
    };
    let mut states: Vec<String> = args.state.iter().map(|s| s.name().to_string()).collect();
    states.dedup();
    let request = Request {
        cutoff,
        states: (!states.is_empty()).then_some(states),
        archive: args.archive,
        dry_run: args.dry_run,
    };
    let summary = purge::purge_jobs(ctx, &request)?;
    print(ctx, &summary)?;
    Ok(Exit::Ok)
}

/// A cut-off time: RFC 3339, or a date or date and time taken as UTC.
pub fn parse_timestamp(text: &str) -> anyhow::Result<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Ok(ts.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(ts) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(ts.and_utc());
        }
    }
    if let Some(midnight) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(midnight.and_utc());
    }
    Err(failure(
        Exit::Usage,
        format!("--before: invalid timestamp {text:?}; use RFC 3339 (2026-10-01T00:00:00Z) or 2026-10-01 [12:00:00] (UTC)"),
    ))
}

fn print(ctx: &Ctx, s: &Summary) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!(s));
    }
    if s.jobs == 0 {
        return ctx.out.line(format!(
            "nothing to purge: no {} job finished before {}",
            s.states.join("/"),
            s.cutoff.to_rfc3339()
        ));
    }
    // Per month: a dry run, and a purge into archive tables (one table per month).
    if !s.by_month.is_empty() {
        let mut t = table(&["finish month", "state", "jobs"]);
        for m in &s.by_month {
            t.add_row(vec![m.month.clone(), m.state.clone(), m.jobs.to_string()]);
        }
        ctx.out.line(t.to_string())?;
    }
    let where_to = if s.archive {
        format!(" into {}.jobs_archive_YYYY_MM", s.schema)
    } else {
        String::new()
    };
    if s.dry_run {
        let verb = if s.archive { "move" } else { "delete" };
        return ctx.out.line(format!(
            "would {verb} {} job(s) finished before {}{where_to}",
            s.jobs,
            s.cutoff.to_rfc3339()
        ));
    }
    let verb = if s.archive { "moved" } else { "deleted" };
    let mut line = format!(
        "{verb} {} job(s) finished before {}{where_to} in {} batch(es), {:.1} s ({:.0} jobs/s)",
        s.jobs,
        s.cutoff.to_rfc3339(),
        s.batches,
        s.elapsed_s,
        s.jobs_per_s
    );
    if let (Some(p99), Some(max)) = (s.batch_ms_p99, s.batch_ms_max) {
        line.push_str(&format!("; batch p99 {p99:.0} ms, max {max:.0} ms"));
    }
    ctx.out.line(line)
}
