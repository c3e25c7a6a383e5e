use std::io::Read;
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::archive::reader::{self, Visitor};
use crate::archive::Mode;
use crate::archive::{server_config, Manifest};
use crate::cli::verify::VerifyArgs;
use crate::context::Ctx;
use crate::error::Exit;
use crate::output::{human_bytes, human_time, kv_table, printable, table};

/// How much of a value read from the archive a row shows.
const SHOWN: usize = 200;

pub fn run(args: VerifyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let (input, label): (Box<dyn Read + Send>, String) = if args.archive == Path::new("-") {
        (Box::new(std::io::stdin()), "<stdin>".to_string())
    } else {
        let stream = ctx
            .places
            .open_given(&args.archive)?
            .stream()
            .with_context(|| format!("cannot read archive {}", args.archive.display()))?;
        (stream, args.archive.display().to_string())
    };
    let keys = args.keys.keys(&ctx.config)?;
    let mut config = ConfigCheck::default();
    let summary = reader::read(input, &label, &keys, &mut config)?;
    let left_out: Vec<String> = config.left_out.iter().map(ToString::to_string).collect();
    let m = &summary.manifest;
    // A base backup is only as good as the WAL it needs: every segment of its range.
    let wal = match (&m.base, m.mode) {
        (Some(base), Mode::Physical) => {
            let archive = crate::wal::points::open_archive(&ctx.target, &ctx.places)?;
            Some(crate::wal::bases::check_range(&archive, &base.label)?)
        }
        _ => None,
    };
    if ctx.out.json {
        ctx.out.json(&json!({
            "archive": label,
            "valid": true,
            "encrypted": summary.encrypted,
            "format_version": m.format_version,
            "jobdbctl_version": m.jobdbctl_version,
            "mode": m.mode.name(),
            "created_at": m.created_at,
            "server_version": m.server_version,
            "server": m.server,
            "database": m.database,
            "profile": m.profile,
            "schema": m.schema,
            "schema_version": m.schema_version,
            "last_used_job_id": m.last_used_job_id,
            "entries": summary.entries,
            "uncompressed_bytes": summary.uncompressed_bytes,
            "tables": m.tables.iter().map(|t| json!({"name": t.name, "rows": t.rows})).collect::<Vec<_>>(),
            "config_left_out": left_out,
            "wal": wal.as_ref().map(|b| json!({
                "start_lsn": b.start_lsn,
                "stop_lsn": b.stop_lsn,
                "first_segment": b.start_wal,
                "last_segment": b.stop_wal,
                "backup_ended_at": b.stopped_at,
                "all_archived": true,
            })),
        }))?;
        return Ok(Exit::Ok);
    }
    let mut t = kv_table();
    let opt = |v: Option<String>| printable(v.as_deref().unwrap_or("-"), SHOWN);
    let label = printable(&label, 4 * SHOWN);
    t.add_row(vec!["archive".to_string(), label.clone()]);
    t.add_row(vec!["mode".to_string(), m.mode.name().to_string()]);
    if summary.encrypted {
        t.add_row(vec!["encrypted".to_string(), "yes (age)".to_string()]);
    }
    t.add_row(vec!["created at".to_string(), human_time(m.created_at)]);
    t.add_row(vec![
        "taken from".to_string(),
        format!(
            "{} database {}",
            printable(&m.server, SHOWN),
            printable(&m.database, SHOWN)
        ),
    ]);
    t.add_row(vec![
        "server version".to_string(),
        opt(m.server_version.clone()),
    ]);
    t.add_row(vec![
        "profile / schema".to_string(),
        format!("{} / {}", opt(m.profile.clone()), opt(m.schema.clone())),
    ]);
    t.add_row(vec![
        "schema version".to_string(),
        opt(m.schema_version.map(|v| v.to_string())),
    ]);
    t.add_row(vec![
        "last used job ID".to_string(),
        opt(m.last_used_job_id.map(|v| v.to_string())),
    ]);
    t.add_row(vec![
        "entries".to_string(),
        format!(
            "{} ({} uncompressed)",
            summary.entries,
            human_bytes(summary.uncompressed_bytes as i64)
        ),
    ]);
    if let Some(b) = &wal {
        t.add_row(vec![
            "WAL needed".to_string(),
            format!(
                "{} to {} ({} to {}), all archived",
                b.start_wal, b.stop_wal, b.start_lsn, b.stop_lsn
            ),
        ]);
    }
    ctx.out.line(t.to_string())?;
    if m.mode == Mode::Online {
        let mut rows = table(&["table", "rows"]);
        for tbl in &m.tables {
            rows.add_row(vec![
                printable(&tbl.name, SHOWN),
                tbl.rows.unwrap_or(0).to_string(),
            ]);
        }
        ctx.out.line(rows.to_string())?;
    }
    if !left_out.is_empty() {
        ctx.out.line(format!(
            "server configuration: restore leaves out (comments out) what runs commands, loads code or reads other files: {}",
            printable(&left_out.join(", "), 4 * SHOWN)
        ))?;
    }
    ctx.out.line(format!(
        "archive {label} is valid: every entry matches its SHA-256"
    ))?;
    Ok(Exit::Ok)
}

/// Reads nothing into a database; notes what a cold restore would leave out of the archive's
/// server configuration, as the restore itself decides it.
#[derive(Default)]
struct ConfigCheck {
    collecting: Option<server_config::Collected>,
    left_out: Vec<server_config::LeftOut>,
}

impl Visitor for ConfigCheck {
    fn header(&mut self, _: &Manifest) -> anyhow::Result<()> {
        Ok(())
    }
    fn dir(&mut self, _: &str, _: u32) -> anyhow::Result<()> {
        Ok(())
    }
    fn file(&mut self, name: &str, _: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        let Some(rel) = server_config::config_file(name) else {
            return Ok(());
        };
        let collected = self.collecting.get_or_insert_with(Default::default);
        collected.push(rel, &piece)?;
        if last {
            let (_, left_out) = self.collecting.take().unwrap_or_default().finish(rel);
            self.left_out.extend(left_out);
        }
        Ok(())
    }
}
