use serde_json::json;

use crate::cli::logs::LogsArgs;
use crate::config::parse_duration;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::housekeeping::logs;
use crate::output::human_bytes;

pub fn run(args: LogsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let Some(cluster) = ctx.target.cluster() else {
        return Err(failure(
            Exit::Usage,
            format!(
                "logs reads the embedded cluster's log files; {} is a remote server whose logs are the server's own: \
                 read them where it keeps them (its log_directory, journald, or your provider's console)",
                ctx.target.describe()
            ),
        ));
    };
    if args.purge {
        let text = args.older_than.as_deref().unwrap_or_default();
        let older_than = parse_duration(text).map_err(|e| e.context("--older-than"))?;
        let removed = logs::purge(cluster, older_than, args.dry_run)?;
        if ctx.out.json {
            ctx.out
                .json(&json!({ "dry_run": args.dry_run, "files": removed }))?;
        } else {
            let verb = if args.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for f in &removed {
                ctx.out.line(format!(
                    "{verb} {} ({})",
                    f.path.display(),
                    human_bytes(f.bytes as i64)
                ))?;
            }
            ctx.out
                .line(format!("{verb} {} rotated log file(s)", removed.len()))?;
        }
        return Ok(Exit::Ok);
    }
    let since = match &args.since {
        Some(text) => {
            let d = parse_duration(text).map_err(|e| e.context("--since"))?;
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        }
        None => None,
    };
    let tail = match args.tail {
        Some(0) => None,
        Some(n) => Some(n),
        None if since.is_some() => None,
        None => Some(100),
    };
    let files = logs::files(cluster)?;
    let lines = logs::read_lines(cluster, &files, tail, since)?;
    if ctx.out.json && !args.follow {
        return ctx
            .out
            .json(&json!({ "files": files, "lines": lines }))
            .map(|()| Exit::Ok);
    }
    for line in &lines {
        ctx.out.line(line)?;
    }
    if args.follow {
        logs::follow(cluster, &mut |line| ctx.out.line(line))?;
    }
    Ok(Exit::Ok)
}
