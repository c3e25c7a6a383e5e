use std::path::Path;

use serde_json::json;

use crate::archive::Mode;
use crate::backup::{self, Done, Request};
use crate::cli::backup::BackupArgs;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::job_ids::high_water;
use crate::output::human_bytes;
use crate::wal::points;

pub fn run(args: BackupArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    if let Some(name) = &args.mark {
        return mark(ctx, name);
    }
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && ctx.out.json {
        return Err(failure(
            Exit::Usage,
            "--json cannot be used with --output - (standard output carries the archive)",
        ));
    }
    if to_stdout && (args.keep.is_some() || args.keep_within.is_some()) {
        return Err(failure(
            Exit::Usage,
            "--keep and --keep-within need a destination directory; they cannot be used with --output -",
        ));
    }
    let seal = args.seal.seal(&ctx.config)?;
    let done = backup::backup(
        ctx,
        &Request {
            seal: seal.as_ref(),
            mode: args.mode,
            output: args.output,
            keep: args.keep,
            keep_within: args.keep_within,
            pinned: args.pin,
            space_check: !args.no_space_check,
            codec: args.compression.unwrap_or(ctx.config.compression.value),
        },
    )?;
    // What the backup learned joins the job-ID high-water mark (never failing the backup).
    if let (Some(schema), Some(last)) = (&done.manifest.schema, done.manifest.last_used_job_id) {
        high_water::note_detached(ctx, schema, last);
    }
    report(ctx, &done, seal.is_some())?;
    Ok(Exit::Ok)
}

/// `--mark NAME`: a restore point instead of an archive.
fn mark(ctx: &Ctx, name: &str) -> anyhow::Result<Exit> {
    points::check_name(name)?;
    let archive = &points::open_archive(&ctx.target, &ctx.places)?;
    let mut db = ctx.connect()?;
    let point = points::mark(&mut db, archive, name, "backup --mark")?;
    crate::cli::runlog::note_outcome(format!("restore point {} at {}", point.name, point.lsn));
    if ctx.out.json {
        ctx.out.json(&point)?;
    } else {
        ctx.out.line(format!(
            "restore point {} at {} (WAL segment {})",
            point.name, point.lsn, point.segment
        ))?;
    }
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, done: &Done, encrypted: bool) -> anyhow::Result<()> {
    let rows: u64 = done.manifest.tables.iter().filter_map(|t| t.rows).sum();
    let path = done.path.as_ref().map(|p| p.display().to_string());
    crate::cli::runlog::note_outcome(format!(
        "wrote {} ({})",
        path.as_deref().unwrap_or("the archive to standard output"),
        human_bytes(done.bytes as i64)
    ));
    if ctx.out.json {
        return ctx.out.json(&json!({
            "archive": path,
            "bytes": done.bytes,
            "encrypted": encrypted,
            "mode": done.manifest.mode.name(),
            "database": done.manifest.database,
            "schema": done.manifest.schema,
            "schema_version": done.manifest.schema_version,
            "last_used_job_id": done.manifest.last_used_job_id,
            "tables": done.manifest.tables.iter().map(|t| json!({"name": t.name, "rows": t.rows})).collect::<Vec<_>>(),
            "seconds": done.seconds,
            "pruned": done.pruned.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "damaged": done.damaged.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "prune_error": done.prune_error,
        }));
    }
    let mut text = format!(
        "{}{} backup of {} written{}: {} in {:.1} s",
        if encrypted { "encrypted " } else { "" },
        done.manifest.mode.name(),
        done.manifest
            .schema
            .as_deref()
            .map(|s| format!("schema {s:?} of database {:?}", done.manifest.database))
            .unwrap_or_else(|| format!("the cluster's data directory ({})", done.manifest.server)),
        path.map(|p| format!(" to {p}")).unwrap_or_default(),
        human_bytes(done.bytes as i64),
        done.seconds
    );
    if done.manifest.mode == Mode::Online {
        text.push_str(&format!(
            ", {} tables, {rows} rows",
            done.manifest.tables.len()
        ));
    }
    if let Some(id) = done.manifest.last_used_job_id {
        text.push_str(&format!(", last used job ID {id}"));
    }
    if done.path.is_some() {
        ctx.out.line(text)
    } else {
        // stdout carries the archive.
        ctx.out.info(text);
        Ok(())
    }
}
