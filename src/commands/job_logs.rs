use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use crate::cli::job_logs::JobLogsArgs;
use crate::config::Setting;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::job_ids::high_water::thousands;
use crate::job_ids::log_dirs::{self, Pattern, Scan};
use crate::output::{confirm, printable, table};

pub fn run(args: JobLogsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let dir = match (&args.dir, &ctx.config.job_logs_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(Setting { value, .. })) => value.clone(),
        (None, None) => {
            return Err(failure(
                Exit::Usage,
                "no log directory given; pass --dir DIR (the engine's per-job log directory) or set job_logs_dir in jobdbctl.toml",
            ))
        }
    };
    let (pattern_text, source) = match &args.pattern {
        Some(p) => (p.clone(), "--pattern".to_string()),
        None => (
            ctx.config.job_logs_pattern.value.clone(),
            format!("job_logs_pattern ({})", ctx.config.job_logs_pattern.source),
        ),
    };
    let pattern = Pattern::parse(&pattern_text)
        .map_err(|why| failure(Exit::Usage, format!("{source} {pattern_text:?} {why}")))?;
    let listed = log_dirs::scan(&dir, &pattern, args.above)?;
    for s in &listed.skipped {
        ctx.out.warn(format!(
            "skipped {}: {}",
            printable(&s.path.display().to_string(), 300),
            s.reason
        ));
    }
    if !args.delete || args.dry_run || listed.found.is_empty() {
        return report(ctx, &args, &dir, &pattern, &listed, false);
    }
    confirm(
        &format!(
            "remove the logs of {} job(s) above {} under {} (IDs {} to {})",
            thousands(listed.found.len() as i64),
            args.above,
            dir.display(),
            listed.found.first().map_or(0, |f| f.job_id),
            listed.found.last().map_or(0, |f| f.job_id),
        ),
        args.confirmation.yes,
    )?;
    let shown: BTreeSet<PathBuf> = listed.found.iter().map(|f| f.path.clone()).collect();
    let done = log_dirs::remove(&dir, &pattern, args.above, &shown)?;
    report(ctx, &args, &dir, &pattern, &done, true)?;
    let failed: Vec<String> = done
        .found
        .iter()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| format!("{}: {e}", f.path.display()))
        })
        .collect();
    if let Some(first) = failed.first() {
        return Err(failure(
            Exit::Runtime,
            format!(
                "{} of {} job log entries could not be removed (first: {first}); fix that and run job-logs again",
                failed.len(),
                done.found.len()
            ),
        ));
    }
    Ok(Exit::Ok)
}

fn report(
    ctx: &Ctx,
    args: &JobLogsArgs,
    dir: &std::path::Path,
    pattern: &Pattern,
    scan: &Scan,
    deleting: bool,
) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(&json!({
            "dir": dir,
            "pattern": pattern.as_str(),
            "above": args.above,
            "delete": deleting,
            "dry_run": args.dry_run,
            "entries": scan.found,
            "skipped": scan.skipped,
            "kept": scan.kept,
            "ignored": scan.ignored,
        }))?;
        return Ok(Exit::Ok);
    }
    if !scan.found.is_empty() {
        let mut t = table(&["job", "user", "path", "state"]);
        for f in &scan.found {
            let state = match (&f.error, f.removed, deleting, args.delete && args.dry_run) {
                (Some(e), _, _, _) => format!("not removed: {e}"),
                (None, true, _, _) => "removed".to_string(),
                (None, false, true, _) => "left alone (appeared after the listing)".to_string(),
                (None, false, false, true) => "would be removed".to_string(),
                _ => String::new(),
            };
            t.add_row(vec![
                f.job_id.to_string(),
                printable(f.user.as_deref().unwrap_or(""), 80),
                printable(&f.path.display().to_string(), 300),
                state,
            ]);
        }
        ctx.out.line(t.to_string())?;
    }
    let removed = scan.found.iter().filter(|f| f.removed).count();
    let summary = if deleting {
        format!("removed the logs of {removed} job(s) above {}", args.above)
    } else {
        format!("{} job(s) above {} have logs", scan.found.len(), args.above)
    };
    ctx.out.line(format!(
        "{summary} in {} (pattern {}); {} skipped, {} at or below {} kept, {} other entries left alone",
        dir.display(),
        pattern.as_str(),
        scan.skipped.len(),
        scan.kept,
        args.above,
        scan.ignored
    ))?;
    if !args.delete && !scan.found.is_empty() {
        ctx.out.info("add --delete to remove them");
    }
    Ok(Exit::Ok)
}
