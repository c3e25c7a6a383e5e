use serde_json::json;

use crate::cli::vacuum::VacuumArgs;
use crate::context::Ctx;
use crate::db::vacuum::TableStats;
use crate::error::Exit;
use crate::housekeeping::vacuum::{self, Request, Summary};
use crate::output::{confirm, human_bytes, table};

pub fn run(args: VacuumArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let yes = args.confirmation.yes;
    let request = Request {
        table: args.table,
        analyze: args.analyze,
        full: args.full,
        force: args.force,
    };
    let ask = |tables: &[TableStats], lock: std::time::Duration| {
        let names: Vec<String> = tables
            .iter()
            .map(|t| format!("{} ({})", t.table, human_bytes(t.bytes)))
            .collect();
        ctx.out.info(format!(
            "VACUUM FULL locks each table against all reads and writes while rewriting it, one at a time: {}; \
             the largest for about {} (estimate)",
            names.join(", "),
            humantime::format_duration(lock)
        ));
        confirm("run VACUUM FULL", yes)
    };
    let summary = vacuum::vacuum(ctx, &request, &ask)?;
    print(ctx, &summary)?;
    Ok(Exit::Ok)
}

fn print(ctx: &Ctx, s: &Summary) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!(s));
    }
    let mut t = table(&["table", "dead tuples", "dead ratio", "size", "took"]);
    for r in &s.tables {
        t.add_row(vec![
            r.table.clone(),
            format!("{} -> {}", r.before.dead_tuples, r.after.dead_tuples),
            format!(
                "{:.1}% -> {:.1}%",
                r.before.dead_ratio * 100.0,
                r.after.dead_ratio * 100.0
            ),
            format!(
                "{} -> {}",
                human_bytes(r.before.bytes),
                human_bytes(r.after.bytes)
            ),
            format!("{:.1} s", r.elapsed_s),
        ]);
    }
    ctx.out.line(t.to_string())
}
