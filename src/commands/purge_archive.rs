use serde_json::json;

use crate::cli::purge_archive::PurgeArchiveArgs;
use crate::context::Ctx;
use crate::db::purge::ArchiveTable;
use crate::error::{failure, Exit};
use crate::housekeeping::purge::{self, ArchiveDrop};
use crate::output::{confirm, human_bytes, table};

pub fn run(args: PurgeArchiveArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let to = parse_month(&args.to)?;
    let yes = args.confirmation.yes;
    let show = |tables: &[ArchiveTable]| -> anyhow::Result<()> {
        if !ctx.out.json {
            ctx.out.line(listing(tables))?;
        }
        let rows: i64 = tables.iter().map(|t| t.rows).sum();
        confirm(
            &format!(
                "drop {} archive table(s) holding {rows} job(s)",
                tables.len()
            ),
            yes,
        )
    };
    let report = purge::purge_archive(ctx, &to, args.dry_run, &show)?;
    print(ctx, &report)?;
    Ok(Exit::Ok)
}

/// `YYYY-MM` with a real month.
fn parse_month(text: &str) -> anyhow::Result<String> {
    let t = text.trim();
    let ok = t.len() == 7
        && t.as_bytes()[4] == b'-'
        && t[..4].bytes().all(|b| b.is_ascii_digit())
        && t[5..].bytes().all(|b| b.is_ascii_digit())
        && matches!(t[5..].parse::<u32>(), Ok(1..=12));
    if !ok {
        return Err(failure(
            Exit::Usage,
            format!("--to: invalid month {text:?}; use YYYY-MM, e.g. 2026-10"),
        ));
    }
    Ok(t.to_string())
}

fn listing(tables: &[ArchiveTable]) -> String {
    let mut t = table(&["month", "table", "jobs", "size"]);
    for a in tables {
        t.add_row(vec![
            a.month.clone(),
            a.table.clone(),
            a.rows.to_string(),
            human_bytes(a.bytes),
        ]);
    }
    t.to_string()
}

fn print(ctx: &Ctx, r: &ArchiveDrop) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!(r));
    }
    if r.tables.is_empty() {
        return ctx
            .out
            .line(format!("nothing to drop: no archive month up to {}", r.to));
    }
    let rows: i64 = r.tables.iter().map(|t| t.rows).sum();
    if r.dry_run {
        ctx.out.line(listing(&r.tables))?;
        return ctx.out.line(format!(
            "would drop {} archive table(s) holding {rows} job(s), up to {}",
            r.tables.len(),
            r.to
        ));
    }
    ctx.out.line(format!(
        "dropped {} archive table(s) holding {rows} job(s), up to {}",
        r.tables.len(),
        r.to
    ))
}
