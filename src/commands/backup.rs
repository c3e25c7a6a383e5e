use std::path::{Path, PathBuf};

use serde_json::json;

use crate::archive::{Codec, Mode};
use crate::backup::{self, Done, Request};
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::job_ids::high_water;
use crate::output::human_bytes;

/// Back up the job database to an archive (.tar.gz by default, .tar.zst or .tar with
/// --compression): an online, consistent snapshot of the job schema (default), or a cold copy
/// of the embedded cluster's data directory.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// online: consistent snapshot through SQL while the engine runs (any server); cold:
    /// stop the embedded server, archive its data directory, start it again if it was running.
    #[arg(long, value_enum, default_value_t = Mode::Online)]
    pub mode: Mode,
    /// Archive to write, or - for standard output. A directory gets a timestamped name
    /// inside it. Default: a timestamped name in backup_dir (config). An existing file of
    /// the same name is replaced only if it is a regular file of this user.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// After a successful backup, keep only the newest N complete archives of this database
    /// that jobdbctl named itself in the destination directory, and delete older ones.
    /// Archives written to a name you chose and destroy --backup-first archives are never
    /// deleted; damaged ones are reported and kept.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Like --keep, but keep every such archive newer than DURATION (e.g. 30d). With both,
    /// an archive is kept if either rule keeps it.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_keep_within_arg)]
    pub keep_within: Option<std::time::Duration>,
    /// Mark the archive pinned: --keep, --keep-within and backups prune never delete it,
    /// even under a name jobdbctl chose. (An archive written to a file name you chose is
    /// always pinned.)
    #[arg(long)]
    pub pin: bool,
    /// Write the archive even when the destination's free space looks too small.
    #[arg(long)]
    pub no_space_check: bool,
    /// gzip (.tar.gz), zstd (.tar.zst: faster, under half the size) or none (.tar).
    /// Default: compression in jobdbctl.toml, else gzip. verify and restore read all three.
    #[arg(long, value_enum, value_name = "CODEC")]
    pub compression: Option<Codec>,
}

pub fn run(args: BackupArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
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
    let done = backup::backup(
        ctx,
        &Request {
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
    report(ctx, &done)?;
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, done: &Done) -> anyhow::Result<()> {
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
        "{} backup of {} written{}: {} in {:.1} s",
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
